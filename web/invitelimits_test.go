package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/notify"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// sibling is a second server process on the same database: services of
// its own (so nothing is shared in memory) and a mailbox of its own.
func (e *testEnv) sibling() *testEnv {
	e.t.Helper()
	s := *e.server
	s.Invitations = postgres.NewInvitationService(e.db)
	mb := &mailbox{}
	srv := httptest.NewServer(s.Handler())
	e.t.Cleanup(srv.Close)
	sender := &notify.Sender{Outbox: postgres.NewMailOutbox(e.db), Mailer: mb, Composer: s.Mail, Retry: tenancy.DefaultMailRetry}
	return &testEnv{t: e.t, db: e.db, srv: srv, server: &s, mail: mb, ctx: e.ctx, sender: sender}
}

// Invitation mails are limited per address and per tenant, and the limits
// hold when two server processes share the database: resends alternate
// between them, and still the address gets 5 mails, not 16.
func TestInvitationMailLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := e.sibling()
	acme := e.mustTenant("acme")
	one := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	two := other.client("acme.nself.test")
	two.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	mails := func() int { return len(e.mail.messages("invitation")) + len(other.mail.messages("invitation")) }

	first := mustInviteThroughPage(t, e, one, "bob@example.test", "", "member")
	_, body := one.get("/members")
	id := attr(byTestID(doc(t, body), "invitation-row")[0], "data-invitation-id")
	refused := 0
	for i := 1; i <= 15; i++ {
		c := []*client{one, two}[i%2]
		c.get("/members")
		resp, body := c.post("/members/invitations/"+id+"/resend", nil)
		switch {
		case i <= 4 && resp.StatusCode != http.StatusSeeOther:
			t.Fatalf("resend %d: %d %s", i, resp.StatusCode, textOf(t, body, "invitation-error"))
		case i > 4:
			msg := textOf(t, body, "invitation-error")
			if resp.StatusCode != http.StatusTooManyRequests ||
				!strings.HasPrefix(msg, "bob@example.test has been sent 5 invitation emails in the last day, the most allowed: you can send another at ") ||
				!strings.Contains(msg, "UTC (in 24 hours)") && !strings.Contains(msg, "UTC (in 23 hours") {
				t.Fatalf("resend %d: %d %q", i, resp.StatusCode, msg)
			}
			refused++
		}
	}
	if got := mails(); got != 5 || refused != 11 {
		t.Errorf("15 resends: %d mails sent, %d refused; want 5 and 11", got, refused)
	}
	// A refused resend changes nothing: the last link mailed (by the
	// first server, at the fourth resend) still works.
	if len(other.mail.messages("invitation")) != 2 {
		t.Fatalf("the second server sent %d mails, want 2", len(other.mail.messages("invitation")))
	}
	last := e.mail.messages("invitation")
	token := linkRE.FindStringSubmatch(last[len(last)-1].Text)
	if token == nil || token[1] == first {
		t.Fatal("no new link in the last mail")
	}
	if resp, _ := e.client("acme.nself.test").get("/invitations/accept?token=" + token[1]); resp.StatusCode != http.StatusOK {
		t.Errorf("last link after refused resends: %d", resp.StatusCode)
	}
	// Revoking and inviting again does not reset the address's count.
	one.get("/members")
	if resp, _ := one.post("/members/invitations/"+id+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	one.get("/members")
	resp, body := one.post("/members/invite", url.Values{"email": {"Bob@example.test"}, "role": {"member"}})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(textOf(t, body, "error-email"), "has been sent 5 invitation emails") {
		t.Errorf("invite again after revoke: %d %q", resp.StatusCode, textOf(t, body, "error-email"))
	}

	// The tenant: 100 mails an hour, new and resent, from either server.
	for i := mails(); i < 100; i++ {
		c := []*client{one, two}[i%2]
		c.get("/members")
		resp, body := c.post("/members/invite", url.Values{"email": {fmt.Sprintf("p%d@example.test", i)}, "role": {"guest"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("invite %d: %d %q", i, resp.StatusCode, textOf(t, body, "error-email"))
		}
	}
	for _, c := range []*client{one, two} {
		c.get("/members")
		resp, body := c.post("/members/invite", url.Values{"email": {"late@example.test"}, "role": {"guest"}})
		msg := textOf(t, body, "error-email")
		if resp.StatusCode != http.StatusTooManyRequests ||
			!strings.HasPrefix(msg, "Your team has sent 100 invitation emails in the last hour, the most allowed: you can send more at ") {
			t.Errorf("101st mail: %d %q", resp.StatusCode, msg)
		}
		if got := textOf(t, body, "invitation-error"); got != "" {
			t.Errorf("an invitation shows an error: %q", got)
		}
	}
	if got := mails(); got != 100 {
		t.Errorf("%d mails sent, want 100", got)
	}
	// Another tenant has its own allowance.
	beta := e.mustTenant("beta")
	b := e.signedIn(beta, "owner@beta.test", tenancy.RoleOwner)
	b.get("/members")
	if resp, body := b.post("/members/invite", url.Values{"email": {"bob@example.test"}, "role": {"member"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another tenant's invitation: %d %q", resp.StatusCode, textOf(t, body, "error-email"))
	}
}
