package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nself/nself/internal/pgtest"
)

// A burst of 100 sign-ins at once (each an argon2id check of 64 MiB) keeps
// the running server under 300 MB: hashes run a few at a time, and serve
// sets a memory limit unless GOMEMLIMIT is set. Before, 24 sign-ins at once
// took a server to 1.07 GB. docs/benchmarks.md ("Sign-in bursts") records
// the numbers; SIGNIN_BURST changes the size of the burst and
// SIGNIN_GOMEMLIMIT passes GOMEMLIMIT to the server.
func TestSignInBurstMemory(t *testing.T) {
	t.Parallel()
	burst := 100
	if n, err := strconv.Atoi(os.Getenv("SIGNIN_BURST")); err == nil {
		burst = n
	}
	env := []string{"SESSION_SECRET=burst-test-secret-0123456789abcdef", "PUBLIC_SCHEME=http"}
	if v := os.Getenv("SIGNIN_GOMEMLIMIT"); v != "" {
		env = append(env, "GOMEMLIMIT="+v)
	}
	c := newCLI(t, pgtest.NewURLs(t), env...)
	if r := c.run("the owner's password\n", "tenant", "create", "Burst Co", "--slug", "burst",
		"--owner", "owner@burst.test", "--owner-password-stdin"); r.code != 0 {
		t.Fatalf("create: %q", r.err)
	}
	addr, cmd := startServer(t, c)
	status := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status"
	kib := func(field string) int {
		t.Helper()
		b, err := os.ReadFile(status)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s has no %s", status, field)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	before := kib("VmRSS")

	// Every client first opens the sign-in page (a CSRF token), then all
	// sign in at once.
	type visitor struct {
		client *http.Client
		csrf   string
	}
	do := func(v *visitor, method, path string, form url.Values) (int, string, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, body)
		req.Host = "burst.example.test"
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		u, _ := url.Parse("http://burst.example.test/")
		for _, ck := range v.client.Jar.Cookies(u) {
			req.AddCookie(ck)
		}
		resp, err := v.client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		v.client.Jar.SetCookies(u, resp.Cookies())
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	visitors := make([]*visitor, burst)
	for i := range visitors {
		jar, _ := cookiejar.New(nil)
		visitors[i] = &visitor{client: &http.Client{Jar: jar, Timeout: 5 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		_, page, err := do(visitors[i], "GET", "/", nil)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("sign-in page has no CSRF token")
		}
		visitors[i].csrf = m[1]
	}

	peak := 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if b, err := os.ReadFile(status); err == nil {
				if m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b); m != nil {
					n, _ := strconv.Atoi(string(m[1]))
					peak = max(peak, n)
				}
			}
		}
	}()
	start := time.Now()
	codes := make([]int, burst)
	var wg sync.WaitGroup
	for i, v := range visitors {
		wg.Go(func() {
			code, body, err := do(v, "POST", "/signin", url.Values{"email": {"owner@burst.test"},
				"password": {"the owner's password"}, "csrf_token": {v.csrf}})
			if err != nil {
				t.Error(err)
			}
			codes[i] = code
			if code != http.StatusSeeOther && i == 0 {
				t.Logf("%d: %s", code, regexp.MustCompile(`data-testid="(?:error-message|form-error)">[^<]*`).FindString(body))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	<-sampled
	hwm := kib("VmHWM")
	time.Sleep(2 * time.Second)
	after := kib("VmRSS")

	ok := 0
	for _, code := range codes {
		if code == http.StatusSeeOther {
			ok++
		}
	}
	mb := func(kib int) string { return fmt.Sprintf("%.0f MB", float64(kib)*1024/1e6) }
	t.Logf("RESULT %d sign-ins at once: %d signed in, in %.1f s (%.0f/s); RSS before %s, peak %s sampled, %s VmHWM, %s 2 s after",
		burst, ok, took.Seconds(), float64(ok)/took.Seconds(), mb(before), mb(peak), mb(hwm), mb(after))
	if ok != burst {
		t.Errorf("%d of %d sign-ins succeeded (answers: %v)", ok, burst, codes[:5])
	}
	if hwm*1024 > 300e6 {
		t.Errorf("the server's peak resident memory was %s, over 300 MB", mb(hwm))
	}
}
