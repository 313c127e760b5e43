package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/billing/billingtest"
	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/mail"
	"github.com/nself/nself/internal/tenancy"
)

// hungSMTP is a mailer whose server accepts connections and never answers.
func hungSMTP(t *testing.T) *mail.SMTP {
	t.Helper()
	hung := faulttest.NewBlackhole(t)
	port, _ := strconv.Atoi(hung.Addr()[strings.LastIndex(hung.Addr(), ":")+1:])
	return mail.New(mail.Config{Host: "127.0.0.1", Port: port, From: "no-reply@nself.test", Timeout: 200 * time.Millisecond})
}

// With the mail server hung, inviting answers at once: the invitation
// exists, its row says the email is not delivered yet and why, and the
// console lists the mail. Once the server is back the mail goes, once,
// and the row says nothing more.
func TestInvitationWhileMailIsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	e.sender.Mailer = hungSMTP(t)

	owner.get("/members")
	start := time.Now()
	resp, _ := owner.post("/members/invite", url.Values{"email": {"bob@example.test"}, "name": {"Bob"}, "role": {"member"}})
	if took := time.Since(start); resp.StatusCode != http.StatusSeeOther || took > 5*time.Second {
		t.Fatalf("invite with mail down: %d after %v", resp.StatusCode, took)
	}
	_, body := owner.get("/members")
	if got := rowTexts(t, body, "invitation-email"); len(got) != 1 || got[0] != "bob@example.test" {
		t.Fatalf("pending invitations: %q", got)
	}
	if got := textOf(t, body, "invitation-delivery"); got != "Email not delivered yet: the mail server could not be reached (trying again)" {
		t.Errorf("delivery note: %q", got)
	}

	admin := signedInAdmin(t, e)
	_, page := admin.get("/mail")
	if got := rowTexts(t, page, "mail-to"); len(got) != 1 || got[0] != "bob@example.test" {
		t.Fatalf("console's undelivered mail: %q", got)
	}
	if textOf(t, page, "mail-template") != "invitation" || textOf(t, page, "mail-state") != "retrying" ||
		!strings.Contains(textOf(t, page, "mail-error"), "could not be reached") || strings.Contains(page, "token=") {
		t.Errorf("console row: %q %q %q", textOf(t, page, "mail-template"), textOf(t, page, "mail-state"), textOf(t, page, "mail-error"))
	}

	// The server is back; the console sends the mail again now rather
	// than at its next attempt.
	e.sender.Mailer = e.mail
	form := byTestID(doc(t, page), "mail-retry")[0].Parent
	resp, _ = admin.post(attr(form, "action"), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("send again: %d", resp.StatusCode)
	}
	e.sendMail()
	sent := e.mail.messages("invitation")
	if len(sent) != 1 || sent[0].To != "bob@example.test" || !linkRE.MatchString(sent[0].Text) {
		t.Fatalf("invitation mails once the server is back: %+v", sent)
	}
	_, body = owner.get("/members")
	if got := textOf(t, body, "invitation-delivery"); got != "" {
		t.Errorf("delivery note after the mail went: %q", got)
	}
	if _, page = admin.get("/mail"); len(byTestID(doc(t, page), "mail-empty")) != 1 {
		t.Error("the console still lists the mail")
	}
}

// A Stripe invoice.payment_failed event that failed to process, replayed
// from the console once the cause is fixed, mails every owner, as the
// first delivery would have; the failed delivery mailed nobody.
func TestReplayedPaymentFailureMailsOwners(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withBilling(t))
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	e.mustMember(acme, "second-owner@acme.test", tenancy.RoleOwner)
	e.mustMember(acme, "admin@acme.test", tenancy.RoleAdmin)
	for _, sql := range []string{
		`UPDATE tenants.tenants SET stripe_customer_id = 'cus_acme', subscription_status = 'active' WHERE slug = 'acme'`,
		// The fault: while public.refuse_events holds a row, recording a
		// Stripe event's changes fails.
		`CREATE TABLE public.refuse_events (on_purpose boolean)`,
		// On Citus the trigger runs on the workers: the table must be
		// there too.
		citusOnly(`SELECT create_reference_table('public.refuse_events')`),
		`INSERT INTO public.refuse_events VALUES (true)`,
		`CREATE FUNCTION public.refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN
		   IF NEW.action = 'billing.stripe_event' AND EXISTS (SELECT 1 FROM public.refuse_events) THEN
		     RAISE EXCEPTION 'refused for the test';
		   END IF;
		   RETURN NEW;
		 END $$`,
		`CREATE TRIGGER refuse BEFORE INSERT ON audit.events FOR EACH ROW EXECUTE FUNCTION public.refuse_event()`,
	} {
		if sql == "" {
			continue
		}
		if _, err := e.db.Admin.Exec(e.ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	payload := []byte(`{"id":"evt_pf","object":"event","type":"invoice.payment_failed","created":` +
		strconv.FormatInt(time.Now().Unix(), 10) + `,"api_version":"2023-10-16","data":{"object":{"id":"in_pf","object":"invoice",` +
		`"customer":"cus_acme","amount_due":4900,"currency":"usd"}}}`)
	signature := billingtest.Signature(payload, "whsec_x", time.Now())
	if _, err := e.server.Billing.HandleWebhook(e.ctx, payload, signature); err == nil {
		t.Fatal("the event was processed despite the fault")
	}
	e.sendMail()
	if sent := e.mail.messages("payment_failed"); len(sent) != 0 {
		t.Fatalf("the failed event mailed: %+v", sent)
	}

	if _, err := e.db.Admin.Exec(e.ctx, `DELETE FROM public.refuse_events`); err != nil {
		t.Fatal(err)
	}
	c := signedInAdmin(t, e)
	c.get("/billing/events/evt_pf")
	resp, body := c.post("/billing/events/evt_pf/replay", nil)
	if got := textOf(t, follow(t, c, resp, body), "flash"); !strings.Contains(got, "replayed: processed") || !strings.Contains(got, "2 owner(s) mailed") {
		t.Errorf("flash after the replay: %q", got)
	}
	got := map[string]tenancy.Message{}
	for _, m := range e.mail.messages("payment_failed") {
		got[m.To] = m
	}
	if len(got) != 2 || got["owner@acme.test"].Subject != "Your Acme Inc payment did not go through" || got["second-owner@acme.test"].To == "" {
		t.Fatalf("payment mails after the replay: %+v", e.mail.messages("payment_failed"))
	}
	if m := got["owner@acme.test"]; !strings.Contains(m.Text, "http://acme."+baseDomain+"/billing") || !strings.Contains(m.Text, "Hello Name of owner@acme.test") {
		t.Errorf("payment mail:\n%s", m.Text)
	}
}

// Every new account of a tenant gets the tenant's customized welcome,
// composed when it is sent: an invitation accepted as a new account, and
// the owner of a tenant made in the console (who is also mailed the link
// that sets a password, which the console no longer shows).
func TestWelcomeMailForNewAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	customize := func(tn *tenancy.Tenant) {
		t.Helper()
		if _, err := e.server.EmailTemplates.Customize(e.ctx, tn.ID, "welcome", "{{TENANT_NAME}} says hi to {{USER_NAME}}",
			`<p style="color:{{PRIMARY_COLOR}}">{{USER_EMAIL}} <a href="{{ACTION_URL}}">in</a> <img src="{{LOGO_URL}}" alt=""> {{SUPPORT_URL}}</p>`,
			"", tenancy.PlatformActor()); err != nil {
			t.Fatal(err)
		}
	}
	customize(acme)
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	token := mustInviteThroughPage(t, e, owner, "new@example.test", "New Person", "member")
	guest := e.client("acme.nself.test")
	guest.get("/invitations/accept?token=" + token)
	if resp, _ := guest.post("/invitations/accept", url.Values{"token": {token}, "password": {"a new password here"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: %d", resp.StatusCode)
	}
	var welcome *tenancy.Message
	for _, m := range e.mail.messages("welcome") {
		if m.To == "new@example.test" {
			welcome = &m
		}
	}
	if welcome == nil || welcome.Subject != "Acme Inc says hi to New Person" ||
		!strings.Contains(welcome.HTML, `<p style="color:#4f46e5">new@example.test <a href="http://acme.nself.test/">in</a>`) ||
		!strings.Contains(welcome.HTML, "http://acme.nself.test</p>") {
		t.Errorf("welcome of an accepted invitation: %+v", welcome)
	}

	// The console's new tenant: the mail is composed when sent, so the
	// template customized meanwhile is the one that goes.
	admin := signedInAdmin(t, e)
	admin.get("/tenants/new")
	e.sender.Mailer = hungSMTP(t)
	resp, _ := admin.post("/tenants", url.Values{"name": {"Globex"}, "slug": {"globex"}, "plan": {"free"}, "owner": {"boss@globex.test"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	globex, err := e.server.Tenants.FindTenant(e.ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	customize(globex)
	e.sender.Mailer = e.mail
	mails, _, err := e.server.Outbox.List(e.ctx, tenancy.MailFilter{TenantID: globex.ID})
	if err != nil || len(mails) != 2 {
		t.Fatalf("globex's mail: %d %v", len(mails), err)
	}
	for _, m := range mails {
		if _, err := e.server.Outbox.Retry(e.ctx, globex.ID, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.sendMail()
	byTemplate := map[string]tenancy.Message{}
	for _, m := range e.mail.messages("welcome", "password_set") {
		if m.To == "boss@globex.test" {
			byTemplate[m.Template] = m
		}
	}
	if w := byTemplate["welcome"]; w.Subject != "Globex says hi to boss@globex.test" || !strings.Contains(w.HTML, `<a href="http://globex.nself.test/">in</a>`) {
		t.Errorf("welcome of the console's owner: %+v", w)
	}
	set := byTemplate["password_set"]
	link := regexp.MustCompile(`http://globex\.nself\.test/password/set\?token=[A-Za-z0-9_-]+`).FindString(set.Text)
	if link == "" || !strings.Contains(set.HTML, `href="`+link+`"`) {
		t.Fatalf("set-password mail: %+v", set)
	}
	u, _ := url.Parse(link)
	boss := e.client("globex.nself.test")
	boss.get(u.RequestURI())
	if resp, _ := boss.post("/password/set", url.Values{"token": {u.Query().Get("token")}, "password": {"the boss's password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set password from the mail: %d", resp.StatusCode)
	}
	boss.signIn("boss@globex.test", "the boss's password")
}
