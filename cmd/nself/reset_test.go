package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nself/nself/internal/pgtest"
)

// The password reset flow end to end: the running server mails the link
// through the real SMTP server (mailpit), and the link sets the password.
func TestPasswordResetThroughSMTP(t *testing.T) {
	t.Parallel()
	api := os.Getenv("MAILPIT_URL")
	if api == "" || os.Getenv("SMTP_HOST") == "" {
		t.Fatal("SMTP_HOST, SMTP_PORT and MAILPIT_URL must be set: run `make test`")
	}
	c := newCLI(t, pgtest.NewURLs(t), "SESSION_SECRET=reset-test-secret-0123456789abcdef",
		"SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"), "SMTP_FROM=no-reply@example.test",
		"PUBLIC_SCHEME=http")
	// mailpit is shared by every test: an address of its own finds this mail.
	owner := "owner-" + uuid.NewString()[:8] + "@example.test"
	r := c.run("first password here\n", "tenant", "create", "Reset Co", "--slug", "reset-co", "--owner", owner, "--owner-password-stdin")
	if r.code != 0 {
		t.Fatalf("create: %q", r.err)
	}
	addr, _ := startServer(t, c)

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, body)
		req.Host = "reset-co.example.test"
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		// The jar keys cookies by the URL's host; send them for the tenant host.
		u, _ := url.Parse("http://reset-co.example.test/")
		for _, ck := range jar.Cookies(u) {
			req.AddCookie(ck)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		jar.SetCookies(u, resp.Cookies())
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	csrf := func(page string) string {
		m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("page has no CSRF token")
		}
		return m[1]
	}

	_, page := do("GET", "/password/forgot", nil)
	if code, page := do("POST", "/password/forgot", url.Values{"email": {owner}, "csrf_token": {csrf(page)}}); code != 200 || !strings.Contains(page, "reset-sent") {
		t.Fatalf("forgot: %d", code)
	}

	var link string
	deadline := time.Now().Add(10 * time.Second)
	for link == "" {
		if time.Now().After(deadline) {
			t.Fatal("no reset mail arrived at mailpit")
		}
		var found struct{ Messages []struct{ ID string } }
		getJSON(t, api+"/api/v1/search?query="+url.QueryEscape("to:"+owner), &found)
		// The owner's welcome is there too.
		for _, m := range found.Messages {
			var msg struct{ Text, HTML string }
			getJSON(t, api+"/api/v1/message/"+m.ID, &msg)
			if l := regexp.MustCompile(`http://reset-co\.example\.test/password/reset\?token=([A-Za-z0-9_-]+)`).FindString(msg.Text); l != "" {
				link = l
				if !strings.Contains(msg.HTML, "Reset Co") {
					t.Errorf("HTML part lacks the tenant name")
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	token := strings.SplitN(link, "token=", 2)[1]
	_, page = do("GET", "/password/reset?token="+token, nil)
	if code, _ := do("POST", "/password/set", url.Values{"token": {token}, "password": {"second password here"}, "csrf_token": {csrf(page)}}); code != 303 {
		t.Fatalf("set password: %d", code)
	}
	_, page = do("GET", "/", nil)
	if code, _ := do("POST", "/signin", url.Values{"email": {owner}, "password": {"second password here"}, "csrf_token": {csrf(page)}}); code != 303 {
		t.Fatalf("sign in with the new password: %d", code)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
