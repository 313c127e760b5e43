package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/pgtest"
)

// mailpitMail is a message as mailpit's API returns it.
type mailpitMail struct {
	ID, Subject, HTML, Text string
}

// mailTo returns every message mailpit holds for an address, bodies
// included. mailpit is shared by every test: addresses are made unique.
func mailTo(t *testing.T, to string) []mailpitMail {
	t.Helper()
	api := os.Getenv("MAILPIT_URL")
	var found struct {
		Messages []struct{ ID, Subject string }
	}
	getJSON(t, api+"/api/v1/search?query="+url.QueryEscape("to:"+to), &found)
	var out []mailpitMail
	for _, m := range found.Messages {
		var msg struct{ HTML, Text string }
		getJSON(t, api+"/api/v1/message/"+m.ID, &msg)
		out = append(out, mailpitMail{ID: m.ID, Subject: m.Subject, HTML: msg.HTML, Text: msg.Text})
	}
	return out
}

// awaitMailTo waits until mailpit holds n messages for an address.
func awaitMailTo(t *testing.T, to string, n int, within time.Duration) []mailpitMail {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := mailTo(t, to)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d mails to %s arrived at mailpit", len(got), n, to)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func requireMailpit(t *testing.T) {
	t.Helper()
	if os.Getenv("MAILPIT_URL") == "" || os.Getenv("SMTP_HOST") == "" || os.Getenv("SMTP_PORT") == "" {
		t.Fatal("SMTP_HOST, SMTP_PORT and MAILPIT_URL must be set: run `make test`")
	}
}

// The outbox through an SMTP outage, with two server processes sending:
// while the mail server is down (a proxy in front of mailpit that accepts
// and never answers), inviting answers at once, the invitation exists and
// its row says its email is not delivered yet; once the server is back,
// every mail queued meanwhile (the invitation, the welcomes of accounts
// the CLI made) reaches mailpit exactly once.
func TestOutboxThroughSMTPOutageWithTwoServers(t *testing.T) {
	t.Parallel()
	requireMailpit(t)
	smtp := faulttest.NewProxy(t, net.JoinHostPort(os.Getenv("SMTP_HOST"), os.Getenv("SMTP_PORT")))
	host, port, _ := net.SplitHostPort(smtp.Addr())
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, "SMTP_HOST="+host, "SMTP_PORT="+port, "SMTP_FROM=no-reply@example.test", "SMTP_TIMEOUT=1s",
		"MAIL_RETRY_MIN=200ms", "MAIL_RETRY_MAX=500ms", "PUBLIC_SCHEME=http", "SESSION_SECRET=outbox-test-secret-0123456789abcdef")
	run := uuid.NewString()[:8]
	owner := "owner-" + run + "@example.test"
	if r := c.run("the owner's password\n", "tenant", "create", "Outbox Co", "--slug", "outbox", "--owner", owner, "--owner-password-stdin"); r.code != 0 {
		t.Fatalf("create: %q", r.err)
	}
	smtp.Freeze()
	addrA, _ := startServer(t, c)
	addrB, _ := startServer(t, c)

	var users []string
	for i := range 6 {
		u := "user-" + run + "-" + string(rune('a'+i)) + "@example.test"
		users = append(users, u)
		mustMatch(t, c.ok("user", "create", "outbox", u, "--name", "User "+string(rune('A'+i))),
			`^  Mail queued: welcome and set-password link to `+regexp.QuoteMeta(u)+` \(a running `+"`nself serve`"+` sends it; without one, run `+"`nself mail flush`"+`\)$`)
	}

	p := newPortal(t, addrA, "outbox.example.test")
	p.signIn(owner, "the owner's password")
	_, members := p.do("GET", "/members", nil)
	invitee := "invitee-" + run + "@example.test"
	start := time.Now()
	code, _ := p.do("POST", "/members/invite", url.Values{"email": {invitee}, "name": {"Ivy"}, "role": {"member"}, "csrf_token": {p.csrf(members)}})
	if took := time.Since(start); code != http.StatusSeeOther || took > 3*time.Second {
		t.Fatalf("invite with SMTP down: %d after %v", code, took)
	}

	// The servers try, fail, and say so: while the mail server is down
	// each tries one mail at a time, the oldest first.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tried bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants.tenant_mail_outbox WHERE last_error LIKE '%could not be reached%')`).Scan(&tried); err != nil {
			t.Fatal(err)
		}
		if tried {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no server tried to send")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pb := newPortal(t, addrB, "outbox.example.test")
	pb.signIn(owner, "the owner's password")
	if _, page := pb.do("GET", "/members", nil); !strings.Contains(page, invitee) || !strings.Contains(page, "Email not delivered yet") {
		t.Errorf("members page while SMTP is down lacks the invitation or its delivery note")
	}
	mustMatch(t, c.ok("mail", "list", "outbox"), `^outbox +\w+ +\S+ +retrying +\d+ .*could not be reached`)
	mustMatch(t, c.ok("mail", "list", "outbox", "--all"), `^outbox +invitation +`+regexp.QuoteMeta(invitee)+` +(queued|retrying) `)
	if n := len(mailTo(t, invitee)); n != 0 {
		t.Fatalf("%d mails reached mailpit through a frozen server", n)
	}

	// The mail server is back.
	smtp.Restore()
	inv := awaitMailTo(t, invitee, 1, 30*time.Second)
	for _, u := range users {
		awaitMailTo(t, u, 2, 30*time.Second)
	}
	awaitMailTo(t, owner, 1, 30*time.Second)
	// Both servers keep running: any second send would arrive by now.
	time.Sleep(2 * time.Second)
	if got := mailTo(t, invitee); len(got) != 1 || got[0].Subject != owner+" invited you to Outbox Co" {
		t.Errorf("invitation mails: %+v", got)
	}
	if !strings.Contains(inv[0].Text, "http://outbox.example.test/invitations/accept?token=") {
		t.Errorf("invitation link: %s", inv[0].Text)
	}
	for _, u := range append(users, owner) {
		subjects := map[string]int{}
		for _, m := range mailTo(t, u) {
			subjects[m.Subject]++
		}
		for s, n := range subjects {
			if n != 1 {
				t.Errorf("%s got %q %d times", u, s, n)
			}
		}
	}
	var pending int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM tenants.tenant_mail_outbox WHERE sent_at IS NULL`).Scan(&pending); err != nil || pending != 0 {
		t.Errorf("%d mails not marked sent (%v)", pending, err)
	}
	if _, page := pb.do("GET", "/members", nil); strings.Contains(page, "not delivered") {
		t.Error("the members page still says the invitation is not delivered")
	}
}

// Accounts the CLI makes get the tenant's customized welcome, with real
// values for every variable, composed when sent: `user create` and
// `tenant create --owner`, sent by `nself mail flush` when no server runs.
func TestWelcomeMailFromTheCLI(t *testing.T) {
	t.Parallel()
	requireMailpit(t)
	c := newCLI(t, pgtest.NewURLs(t), append(blobtest.Env(t), "SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"),
		"SMTP_FROM=no-reply@example.test", "PUBLIC_SCHEME=http", "PUBLIC_PORT=8080")...)
	run := uuid.NewString()[:8]
	owner := "boss-" + run + "@example.test"
	out := c.ok("tenant", "create", "Welcome Co", "--slug", "welcome-co", "--owner", owner)
	mustMatch(t, out, `^  Set-password link for the owner .*: http://welcome-co\.example\.test:8080/password/set\?token=`,
		`^  Mail queued: welcome and set-password link to `+regexp.QuoteMeta(owner)+` `)
	c.ok("whitelabel", "brand", "set", "welcome-co", "--primary-color", "#FF6B35")
	c.ok("tenant", "setting", "set", "welcome-co", "branding.company_name", "Welcome Corporation")
	c.ok("tenant", "setting", "set", "welcome-co", "contact.support_email", "support@welcome.test")
	c.ok("whitelabel", "logo", "upload", "welcome-co", pngFile(t, "mail-logo.png", 120, 40), "--type", "email")
	page := writeFile(t, "welcome.html", `<img src="{{LOGO_URL}}" alt="logo"><h1 style="color:{{PRIMARY_COLOR}}">Welcome to {{TENANT_NAME}}, {{USER_NAME}}</h1>`+
		`<p>{{USER_EMAIL}}: <a href="{{ACTION_URL}}">start</a>. Help: {{SUPPORT_URL}}</p>`)
	c.ok("whitelabel", "email", "customize", "welcome-co", "welcome", "--subject", "Welcome to {{TENANT_NAME}}!", "--template-file", page)
	member := "member-" + run + "@example.test"
	r := c.run("a password for mia\n", "user", "create", "welcome-co", member, "--name", "Mia", "--password-stdin")
	if r.code != 0 {
		t.Fatal(r.err)
	}
	mustMatch(t, r.out, `^  Mail queued: welcome to `+regexp.QuoteMeta(member)+` `)
	if r := c.run("a password for mia\n", "user", "create", "welcome-co", "second-"+run+"@example.test", "--password-stdin"); r.code != 0 {
		t.Fatal(r.err)
	}

	mustMatch(t, c.ok("mail", "flush"), `^✓ Mail sent: 4$`)
	mustMatch(t, c.ok("mail", "flush"), `^✓ Mail sent: 0$`)
	for _, tc := range []struct{ to, name string }{{owner, owner}, {member, "Mia"}} {
		var welcome *mailpitMail
		for _, m := range awaitMailTo(t, tc.to, 1, 10*time.Second) {
			if m.Subject == "Welcome to Welcome Corporation!" {
				welcome = &m
			}
		}
		if welcome == nil {
			t.Fatalf("no customized welcome to %s: %+v", tc.to, mailTo(t, tc.to))
		}
		for _, want := range []string{
			`src="http://welcome-co.example.test:8080/logo/email?v=`, `color:#ff6b35`,
			`Welcome to Welcome Corporation, ` + tc.name, tc.to + `: <a href="http://welcome-co.example.test:8080/">start</a>`,
			`Help: mailto:support@welcome.test`,
		} {
			if !strings.Contains(welcome.HTML, want) {
				t.Errorf("welcome to %s lacks %s:\n%s", tc.to, want, welcome.HTML)
			}
		}
	}
	// The owner, made without a password, is mailed the link that sets one.
	var setLink string
	for _, m := range mailTo(t, owner) {
		if m.Subject == "Choose your Welcome Corporation password" {
			setLink = regexp.MustCompile(`http://welcome-co\.example\.test:8080/password/set\?token=[A-Za-z0-9_-]+`).FindString(m.Text)
		}
	}
	if setLink == "" {
		t.Errorf("no set-password mail to the owner: %+v", mailTo(t, owner))
	}
	mustMatch(t, c.ok("mail", "list", "--all"), `^welcome-co +welcome +`+regexp.QuoteMeta(member)+` +sent +1 +-`)
}

// Without an SMTP server, `mail flush` says why nothing can be sent.
func TestMailFlushNeedsSMTP(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	r := c.run("", "mail", "flush")
	if r.code != 1 || !strings.Contains(r.err, "SMTP_HOST is not set") {
		t.Errorf("flush without SMTP: %d %q", r.code, r.err)
	}
}

// A flush that could not send says so with a non-zero exit, so a script
// sees the mail is still waiting.
func TestMailFlushFailsWhileSMTPIsDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	c := newCLI(t, pgtest.NewURLs(t), "SMTP_HOST=127.0.0.1", "SMTP_PORT="+strconv.Itoa(addr.Port), "SMTP_FROM=no-reply@example.test")
	c.ok("tenant", "create", "Acme", "--slug", "acme", "--owner", "ann@acme.example")
	r := c.run("", "mail", "flush")
	if r.code != 1 || !strings.Contains(r.err, "not sent") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("flush with SMTP down: exit %d, %q", r.code, r.err)
	}
}
