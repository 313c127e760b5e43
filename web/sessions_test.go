package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

const (
	firefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	safariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// withAgent makes a client send a User-Agent.
func withAgent(c *client, ua string) *client {
	c.http.Transport = uaTransport{c.http.Transport, ua}
	return c
}

type uaTransport struct {
	rt http.RoundTripper
	ua string
}

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r.Header.Set("User-Agent", u.ua)
	return u.rt.RoundTrip(r)
}

// TestSessionsAcrossProcesses: a person sees their sessions in plain
// words, and ending one (or all others) in one server process stops it at
// once in the other, though that one holds it in memory.
func TestSessionsAcrossProcesses(t *testing.T) {
	app := newUpstreamApp(t)
	a, b := twoProcesses(t, app)
	acme := a.mustTenant("acme")
	host := "acme." + baseDomain
	const email = "ann@acme.example"
	a.mustMember(acme, email, tenancy.RoleMember)

	laptop := withAgent(a.client(host), firefoxWindows)
	laptop.signIn(email, passwordOf(email))
	phone := withAgent(b.client(host), safariIPhone)
	phone.signIn(email, passwordOf(email))
	tablet := b.client(host)
	tablet.signIn(email, passwordOf(email))
	for _, c := range []*client{phone, tablet} {
		if resp, _ := c.get("/dashboard"); resp.StatusCode != 200 { // now in b's memory
			t.Fatalf("signed in: %d", resp.StatusCode)
		}
	}

	resp, body := laptop.get("/account/sessions")
	if resp.StatusCode != 200 {
		t.Fatalf("sessions page: %d", resp.StatusCode)
	}
	rows := byTestID(doc(t, body), "session-row")
	if len(rows) != 3 {
		t.Fatalf("%d sessions listed", len(rows))
	}
	if got := strings.TrimSpace(text(byTestID(rows[0], "session-browser")[0])); got != "Firefox on Windows" || len(byTestID(rows[0], "session-current")) != 1 {
		t.Errorf("current session first: %q", got)
	}
	if !strings.Contains(body, "Safari on iOS") {
		t.Errorf("the phone's session is not described:\n%s", body)
	}
	if got := strings.TrimSpace(text(byTestID(rows[0], "session-address")[0])); got != "127.0.0.1" {
		t.Errorf("address %q", got)
	}
	var phoneID string
	for _, r := range rows[1:] {
		if strings.Contains(text(r), "Safari") {
			phoneID = attr(r, "data-session-id")
		}
	}

	// One session, ended in a: b refuses it at its next request.
	afterNotice(t, b, func() {
		if resp, _ := laptop.post("/account/sessions/"+phoneID+"/end", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("end session: %d", resp.StatusCode)
		}
	})
	if resp, _ := phone.get("/dashboard"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/?next=") {
		t.Fatalf("ended session in the other process: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := tablet.get("/dashboard"); resp.StatusCode != 200 {
		t.Fatalf("a session not ended: %d", resp.StatusCode)
	}
	// Everywhere else: the tablet's session ends in b, the laptop's lives.
	laptop.get("/account/sessions")
	afterNotice(t, b, func() {
		if resp, _ := laptop.post("/account/sessions/end-others", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("end others: %d", resp.StatusCode)
		}
	})
	if resp, _ := tablet.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("other session after sign out everywhere else: %d", resp.StatusCode)
	}
	if resp, _ := apiCall(t, tablet, http.MethodGet, "/api/me", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("ended session at the gateway: %d", resp.StatusCode)
	}
	if resp, _ := laptop.get("/dashboard"); resp.StatusCode != 200 {
		t.Fatalf("current session after sign out everywhere else: %d", resp.StatusCode)
	}
	// Ending one's own current session signs out.
	_, body = laptop.get("/account/sessions")
	cur := attr(byTestID(doc(t, body), "session-row")[0], "data-session-id")
	if resp, _ := laptop.post("/account/sessions/"+cur+"/end", nil); resp.Header.Get("Location") != "/" {
		t.Fatalf("ending the current session: %d", resp.StatusCode)
	}
	if resp, _ := laptop.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after ending the current session: %d", resp.StatusCode)
	}
	if n, m := a.countAudit(acme.ID, "session.end"), a.countAudit(acme.ID, "session.end_others"); n != 2 || m != 1 {
		t.Errorf("audit log: %d session.end, %d session.end_others", n, m)
	}
}

// TestMemberSessions: an admin ends a member's sessions, in the other
// process too, but not an owner's; nobody ends another's one by one.
func TestMemberSessions(t *testing.T) {
	app := newUpstreamApp(t)
	a, b := twoProcesses(t, app)
	acme := a.mustTenant("acme")
	host := "acme." + baseDomain
	a.mustMember(acme, "adam@acme.example", tenancy.RoleAdmin)
	mia := a.mustMember(acme, "mia@acme.example", tenancy.RoleMember)
	owner := a.mustMember(acme, "olga@acme.example", tenancy.RoleOwner)

	admin := a.client(host)
	admin.signIn("adam@acme.example", passwordOf("adam@acme.example"))
	m := b.client(host)
	m.signIn("mia@acme.example", passwordOf("mia@acme.example"))
	m.get("/dashboard")
	o := b.client(host)
	o.signIn("olga@acme.example", passwordOf("olga@acme.example"))

	_, body := admin.get("/members")
	if len(byTestID(doc(t, body), "member-end-sessions")) == 0 {
		t.Fatal("no sign-out button on the members page")
	}
	afterNotice(t, b, func() {
		if resp, _ := admin.post("/members/"+mia.ID+"/sessions/end", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("end member's sessions: %d", resp.StatusCode)
		}
	})
	if resp, _ := m.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("member after an admin ended their sessions: %d", resp.StatusCode)
	}
	if resp, _ := admin.post("/members/"+owner.ID+"/sessions/end", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("admin ending an owner's sessions: %d", resp.StatusCode)
	}
	if resp, _ := o.get("/dashboard"); resp.StatusCode != 200 {
		t.Fatalf("owner after a refused attempt: %d", resp.StatusCode)
	}
	// A member's sessions page shows only their own; another's session id
	// ends nothing.
	m.signIn("mia@acme.example", passwordOf("mia@acme.example"))
	_, body = o.get("/account/sessions")
	ownerSession := attr(byTestID(doc(t, body), "session-row")[0], "data-session-id")
	m.get("/account/sessions")
	if resp, _ := m.post("/account/sessions/"+ownerSession+"/end", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("ending another person's session: %d", resp.StatusCode)
	}
	if resp, _ := o.get("/dashboard"); resp.StatusCode != 200 {
		t.Fatalf("owner's session after another's attempt: %d", resp.StatusCode)
	}
}

// TestPasswordChangeEndsOtherSessions: a new password ends the person's
// other sessions, in the other process too, and keeps the current one.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	app := newUpstreamApp(t)
	a, b := twoProcesses(t, app)
	acme := a.mustTenant("acme")
	host := "acme." + baseDomain
	const email = "ann@acme.example"
	a.mustMember(acme, email, tenancy.RoleGuest)
	here := a.client(host)
	here.signIn(email, passwordOf(email))
	there := b.client(host)
	there.signIn(email, passwordOf(email))
	there.get("/dashboard")

	here.get("/account/security")
	if resp, body := here.post("/account/password", url.Values{"current": {"wrong"}, "password": {"a-new-password-123"}}); resp.StatusCode != http.StatusUnprocessableEntity ||
		len(byTestID(doc(t, body), "error-current")) != 1 {
		t.Fatalf("wrong current password: %d", resp.StatusCode)
	}
	afterNotice(t, b, func() {
		if resp, body := here.post("/account/password", url.Values{"current": {passwordOf(email)}, "password": {"a-new-password-123"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("change password (a guest): %d\n%s", resp.StatusCode, body)
		}
	})
	if resp, _ := there.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("other session after a password change: %d", resp.StatusCode)
	}
	if resp, _ := here.get("/dashboard"); resp.StatusCode != 200 {
		t.Fatalf("current session after a password change: %d", resp.StatusCode)
	}
	there.signIn(email, "a-new-password-123")
	if a.countAudit(acme.ID, "user.password_change") != 1 {
		t.Error("password change not in the audit log")
	}
}
