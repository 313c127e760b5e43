package web_test

import (
	"bytes"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/ssotest"
	"github.com/nself/nself/internal/tenancy"
)

// ssoForm is the provider form for the test provider's client.
func ssoForm(t *testing.T, clientID, secret string) url.Values {
	return url.Values{
		"display_name": {"Test IdP"}, "issuer": {ssotest.Issuer(t)}, "client_id": {clientID}, "client_secret": {secret},
		"domains": {ssotest.Domain}, "default_role": {"member"},
	}
}

// ssoTenant makes a tenant whose owner configures the test provider
// through the settings form.
func ssoTenant(t *testing.T, e *testEnv, slug, clientID, secret string) (*tenancy.Tenant, *client) {
	t.Helper()
	tn := e.mustTenant(slug)
	owner := e.signedIn(tn, "owner@"+slug+".test", tenancy.RoleOwner)
	owner.get("/settings/sso")
	if resp, body := owner.post("/settings/sso", ssoForm(t, clientID, secret)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save single sign-on: %d\n%s", resp.StatusCode, body)
	}
	return tn, owner
}

// ssoCallback starts a sign-in in c's browser and signs in at the
// provider as user; it returns the callback the provider sends back to.
func ssoCallback(t *testing.T, c *client, user string) *url.URL {
	t.Helper()
	c.get("/")
	resp, body := c.get("/sso/start")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), ssotest.Issuer(t)) {
		t.Fatalf("start: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return ssotest.Login(t, resp.Header.Get("Location"), user, ssotest.Password)
}

// inTenantTx runs fn in a transaction of the schema owner in tn's context.
func inTenantTx(t *testing.T, e *testEnv, tn *tenancy.Tenant, fn func(pgx.Tx)) {
	t.Helper()
	tx, err := e.db.Admin.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, tn.ID); err != nil {
		t.Fatal(err)
	}
	fn(tx)
	if err := tx.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
}

func signedInAs(t *testing.T, c *client) string {
	t.Helper()
	resp, body := c.get("/dashboard")
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return textOf(t, body, "user-email")
}

func auditActions(t *testing.T, e *testEnv, tn *tenancy.Tenant, action string) []*tenancy.AuditEntry {
	t.Helper()
	list, _, err := e.server.Audit.ListAudit(e.ctx, tn.ID, tenancy.AuditFilter{Action: action, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestSSOSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, owner := ssoTenant(t, e, "acme", ssotest.ClientA, ssotest.SecretA)

	// Test connection runs discovery on the issuer typed in the form.
	_, body := owner.get("/settings/sso")
	if got := textOf(t, body, "sso-redirect-uri"); got != "http://acme.nself.test/sso/callback" {
		t.Errorf("redirect URI shown = %q", got)
	}
	if textOf(t, body, "nav-sso") == "" {
		t.Error("owners have no menu entry for single sign-on")
	}
	_, body = owner.post("/settings/sso/test", url.Values{"issuer": {ssotest.Issuer(t)}})
	if textOf(t, body, "sso-test-ok") == "" || !strings.HasPrefix(textOf(t, body, "sso-found-keys"), "1 ") && textOf(t, body, "sso-found-keys") == "" {
		t.Fatalf("test connection:\n%s", body)
	}
	if got := textOf(t, body, "sso-found-issuer"); got != ssotest.Issuer(t) {
		t.Errorf("issuer found = %q", got)
	}

	// The branded sign-in page offers the provider; an address it covers,
	// typed without a password, goes to it.
	ann := e.client("acme.nself.test")
	resp, body := ann.get("/")
	// Its form may be answered with a redirect to the provider, which
	// browsers hold to the page's form-action.
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+ssotest.Issuer(t)+";") {
		t.Errorf("the sign-in page's policy does not let its form go to the provider: %s", csp)
	}
	if got := textOf(t, body, "sso-sign-in"); got != "Sign in with Test IdP" {
		t.Fatalf("sign-in page offers %q", got)
	}
	resp, _ = ann.post("/signin", url.Values{"email": {"Ann@SSO.example"}, "password": {""}, "next": {"/members"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sso/start?next=%2Fmembers" {
		t.Fatalf("covered address: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Another address, without a password, is a failed password sign-in.
	if resp, _ := ann.post("/signin", url.Values{"email": {"someone@acme.test"}, "password": {""}}); resp.StatusCode == http.StatusSeeOther {
		t.Fatal("an address the provider does not cover went to it")
	}

	// The whole flow: a first sign-in creates the member with the default role.
	cb := ssoCallback(t, ann, "ann@"+ssotest.Domain)
	resp, body = ann.get(cb.RequestURI())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("callback: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = ann.get("/dashboard")
	if resp.StatusCode != http.StatusOK || !strings.Contains(textOf(t, body, "flash"), "You joined as member by signing in with Test IdP") {
		t.Fatalf("dashboard: %d flash %q", resp.StatusCode, textOf(t, body, "flash"))
	}
	members, err := e.server.Members.ListMembers(e.ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	var role tenancy.Role
	for _, m := range members {
		if m.Email == "ann@sso.example" {
			role = m.Role
		}
	}
	if role != tenancy.RoleMember {
		t.Fatalf("ann's role = %q, want member", role)
	}

	// The next sign-in finds her; the same code cannot be used again.
	again := e.client("acme.nself.test")
	resp, _ = again.get(ssoCallback(t, again, "ann@"+ssotest.Domain).RequestURI())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d", resp.StatusCode)
	}
	if n := len(auditActions(t, e, acme, "member.add")); n != 1 {
		t.Errorf("%d member.add entries, want 1", n)
	}
	signIns := auditActions(t, e, acme, "user.sign_in")
	ssoSignIns := 0
	for _, a := range signIns {
		if strings.HasPrefix(a.Summary, "single sign-on with Test IdP") && a.Target == "ann@sso.example" {
			ssoSignIns++
		}
	}
	if ssoSignIns != 2 {
		t.Errorf("%d single sign-on entries in the audit log, want 2", ssoSignIns)
	}
	if len(auditActions(t, e, acme, "sso.configure")) != 1 {
		t.Error("the configuration is not in the audit log")
	}
}

func TestSSORefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, _ := ssoTenant(t, e, "acme", ssotest.ClientA, ssotest.SecretA)
	beta, _ := ssoTenant(t, e, "beta", ssotest.ClientB, ssotest.SecretB)
	_ = beta

	// A code acme already used.
	first := e.client("acme.nself.test")
	used := ssoCallback(t, first, "ann@"+ssotest.Domain)
	if resp, _ := first.get(used.RequestURI()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d", resp.StatusCode)
	}
	// A code beta's client was given.
	betaClient := e.client("beta.nself.test")
	betaCode := ssoCallback(t, betaClient, "ann@"+ssotest.Domain).Query().Get("code")

	for _, tc := range []struct {
		name  string
		run   func(c *client) (*http.Response, string)
		words string
	}{
		{"tampered state", func(c *client) (*http.Response, string) {
			cb := ssoCallback(t, c, "ann@"+ssotest.Domain)
			q := cb.Query()
			q.Set("state", q.Get("state")+"x")
			return c.get(cb.Path + "?" + q.Encode())
		}, "its state differs"},
		{"callback in a browser that did not start it", func(c *client) (*http.Response, string) {
			other := e.client("acme.nself.test")
			return c.get(ssoCallback(t, other, "ann@"+ssotest.Domain).RequestURI())
		}, "started in another browser"},
		{"replayed code", func(c *client) (*http.Response, string) {
			cb := ssoCallback(t, c, "bob@"+ssotest.Domain)
			q := cb.Query()
			q.Set("code", used.Query().Get("code"))
			return c.get(cb.Path + "?" + q.Encode())
		}, "refused the sign-in code"},
		{"code of another tenant's provider client", func(c *client) (*http.Response, string) {
			cb := ssoCallback(t, c, "bob@"+ssotest.Domain)
			q := cb.Query()
			q.Set("code", betaCode)
			return c.get(cb.Path + "?" + q.Encode())
		}, "refused the sign-in code"},
		{"unverified email", func(c *client) (*http.Response, string) {
			return c.get(ssoCallback(t, c, ssotest.Unverified).RequestURI())
		}, "is not verified"},
		{"address outside the covered domains", func(c *client) (*http.Response, string) {
			return c.get(ssoCallback(t, c, ssotest.Elsewhere).RequestURI())
		}, "is not in a domain"},
		{"provider's error", func(c *client) (*http.Response, string) {
			cb := ssoCallback(t, c, "bob@"+ssotest.Domain)
			return c.get("/sso/callback?error=access_denied&state=" + cb.Query().Get("state"))
		}, "did not sign you in (access_denied)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(auditActions(t, e, acme, "sso.sign_in_refused"))
			c := e.client("acme.nself.test")
			resp, body := tc.run(c)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(textOf(t, body, "form-error"), tc.words) {
				t.Fatalf("%d %q, want 403 with %q", resp.StatusCode, textOf(t, body, "form-error"), tc.words)
			}
			if who := signedInAs(t, c); who != "" {
				t.Fatalf("signed in as %s after a refusal", who)
			}
			if after := len(auditActions(t, e, acme, "sso.sign_in_refused")); after != before+1 {
				t.Errorf("audit entries of refusals: %d, then %d", before, after)
			}
		})
	}
	// Nobody refused was created.
	for _, email := range []string{ssotest.Unverified, ssotest.Elsewhere, "bob@sso.example"} {
		if list, _, _ := e.server.Users.ListUsers(e.ctx, acme.ID, tenancy.UserFilter{Query: email}); len(list) != 0 {
			t.Errorf("%s was created", email)
		}
	}
}

func TestSSOMemberLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, _ := ssoTenant(t, e, "acme", ssotest.ClientA, ssotest.SecretA)
	plan, err := e.server.Plans.FindPlan(e.ctx, acme.Plan)
	if err != nil {
		t.Fatal(err)
	}
	// The plan is full: the owner, dee (a member already), and others.
	e.mustMember(acme, "dee@"+ssotest.Domain, tenancy.RoleMember)
	for i := 3; i <= int(plan.MaxUsers); i++ {
		e.mustMember(acme, "m"+string(rune('0'+i))+"@acme.test", tenancy.RoleMember)
	}

	cy := e.client("acme.nself.test")
	resp, body := cy.get(ssoCallback(t, cy, "cy@"+ssotest.Domain).RequestURI())
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(textOf(t, body, "form-error"), "has no room for another member") {
		t.Fatalf("first sign-in at the limit: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
	}
	if list, _, _ := e.server.Users.ListUsers(e.ctx, acme.ID, tenancy.UserFilter{Query: "cy@"}); len(list) != 0 {
		t.Fatal("cy was created past the member limit")
	}
	if refused := auditActions(t, e, acme, "sso.sign_in_refused"); len(refused) != 1 || refused[0].Target != "cy@sso.example" {
		t.Errorf("refusal in the audit log: %+v", refused)
	}
	// A member already there still signs in.
	dee := e.client("acme.nself.test")
	if resp, _ := dee.get(ssoCallback(t, dee, "dee@"+ssotest.Domain).RequestURI()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("member at the limit: %d", resp.StatusCode)
	}
}

func TestSSORequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, owner := ssoTenant(t, e, "acme", ssotest.ClientA, ssotest.SecretA)
	bob := e.signedIn(acme, "bob@acme.test", tenancy.RoleAdmin)
	eveSSO := e.client("acme.nself.test")
	if resp, _ := eveSSO.get(ssoCallback(t, eveSSO, "eve@"+ssotest.Domain).RequestURI()); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("eve's single sign-on failed")
	}

	owner.get("/settings/sso")
	form := ssoForm(t, ssotest.ClientA, "")
	form.Set("require_sso", "on")
	if resp, body := owner.post("/settings/sso", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("require: %d\n%s", resp.StatusCode, body)
	}
	// Bob's password session ended; eve's single sign-on session and the
	// owner's stay.
	if who := signedInAs(t, bob); who != "" {
		t.Errorf("bob's password session survived requiring single sign-on (%s)", who)
	}
	if who := signedInAs(t, eveSSO); who != "eve@sso.example" {
		t.Errorf("eve's single sign-on session ended (%q)", who)
	}
	if who := signedInAs(t, owner); who != "owner@acme.test" {
		t.Errorf("the owner's session ended (%q)", who)
	}

	// Passwords are refused to everyone but owners, who are warned.
	bob = e.client("acme.nself.test")
	bob.get("/")
	_, body := bob.get("/")
	if textOf(t, body, "sso-required") == "" {
		t.Error("the sign-in page does not say single sign-on is required")
	}
	resp, body := bob.post("/signin", url.Values{"email": {"bob@acme.test"}, "password": {passwordOf("bob@acme.test")}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(textOf(t, body, "form-error"), "signs in with Test IdP only") {
		t.Fatalf("bob's password: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
	}
	if who := signedInAs(t, bob); who != "" {
		t.Fatalf("bob is signed in as %s", who)
	}
	boss := e.client("acme.nself.test")
	boss.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	_, body = boss.get("/dashboard")
	if !strings.Contains(textOf(t, body, "flash"), "You signed in with your password because you are an owner") {
		t.Errorf("the owner was not warned: %q", textOf(t, body, "flash"))
	}
	if n := len(auditActions(t, e, acme, "sso.password_refused")); n != 1 {
		t.Errorf("%d sso.password_refused entries, want 1", n)
	}
	conf := auditActions(t, e, acme, "sso.configure")
	if len(conf) != 2 || !strings.Contains(conf[0].Summary, "1 password session(s) of non-owners ended") {
		t.Errorf("configure entries: %+v", conf)
	}
}

func TestSSOSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)

	// Owners only.
	if resp, _ := admin.get("/settings/sso"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an admin opened the settings: %d", resp.StatusCode)
	}
	if _, body := admin.get("/dashboard"); textOf(t, body, "nav-sso") != "" {
		t.Error("an admin sees the single sign-on menu entry")
	}

	// Every wrong field is named, and nothing is stored.
	owner.get("/settings/sso")
	resp, body := owner.post("/settings/sso", url.Values{"issuer": {"http://login.example.com"}, "domains": {"not a domain"}, "default_role": {"owner"}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad form: %d", resp.StatusCode)
	}
	for _, field := range []string{"issuer", "client_id", "client_secret", "display_name", "domains", "default_role"} {
		if textOf(t, body, "error-"+field) == "" {
			t.Errorf("no error next to %s", field)
		}
	}
	if _, err := e.server.SSO.SSOConfig(e.ctx, acme.ID); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Fatalf("a bad form stored something: %v", err)
	}

	// Test connection says in plain words what went wrong.
	_, body = owner.post("/settings/sso/test", url.Values{"issuer": {"http://127.0.0.1:1"}})
	if got := textOf(t, body, "sso-test-error"); !strings.Contains(got, "connection refused") {
		t.Errorf("test of a closed port: %q", got)
	}

	// The secret is stored sealed, kept when left blank, and bound to
	// its tenant.
	owner.get("/settings/sso")
	if resp, _ := owner.post("/settings/sso", ssoForm(t, ssotest.ClientA, ssotest.SecretA)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	var sealed []byte
	inTenantTx(t, e, acme, func(tx pgx.Tx) {
		if err := tx.QueryRow(e.ctx, `SELECT client_secret FROM tenants.tenant_sso WHERE tenant_id = $1`, acme.ID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
	})
	if bytes.Contains(sealed, []byte(ssotest.SecretA)) {
		t.Fatal("the client secret is stored in the clear")
	}
	owner.get("/settings/sso")
	form := ssoForm(t, ssotest.ClientA, "")
	form.Set("display_name", "Renamed IdP")
	if resp, _ := owner.post("/settings/sso", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save without the secret: %d", resp.StatusCode)
	}
	c, err := e.server.SSO.SSOConfig(e.ctx, acme.ID)
	if err != nil || c.ClientSecret != ssotest.SecretA || c.DisplayName != "Renamed IdP" {
		t.Fatalf("after saving without a secret: %+v, %v", c, err)
	}
	beta := e.mustTenant("beta")
	inTenantTx(t, e, beta, func(tx pgx.Tx) {
		if _, err := tx.Exec(e.ctx, `
			INSERT INTO tenants.tenant_sso (tenant_id, issuer, client_id, client_secret, display_name)
			VALUES ($1, 'https://login.example.com', 'copied', $2, 'Copied')`, beta.ID, sealed); err != nil {
			t.Fatal(err)
		}
	})
	if c, err := e.server.SSO.SSOConfig(e.ctx, beta.ID); err != nil || !c.SecretUnreadable || c.ClientSecret != "" {
		t.Errorf("a secret copied to another tenant opened: %+v, %v", c, err)
	}

	// Removing it puts the password back for everyone.
	owner.get("/settings/sso")
	if resp, _ := owner.post("/settings/sso/remove", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	anon := e.client("acme.nself.test")
	if _, body := anon.get("/"); textOf(t, body, "sso-sign-in") != "" {
		t.Error("the sign-in page still offers the removed provider")
	}
	if len(auditActions(t, e, acme, "sso.remove")) != 1 {
		t.Error("the removal is not in the audit log")
	}
}

// An address whose sign-ins through the provider are refused again and
// again on a tenant is stopped there, at the start and at the callback;
// another tenant, and another address, sign in as usual. Callbacks of no
// sign-in the browser started (what any page can make its visitors'
// browsers send) are refused without counting, so no page can lock its
// visitors out, and only the first few reach the audit log.
func TestSSORefusalsLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, _ := ssoTenant(t, e, "acme", ssotest.ClientA, ssotest.SecretA)
	ssoTenant(t, e, "beta", ssotest.ClientB, ssotest.SecretB)

	visitor := e.clientFrom("acme.nself.test", "127.0.0.6")
	visitor.get("/")
	logged := len(auditActions(t, e, acme, "sso.sign_in_refused"))
	for i := range 40 {
		if resp, _ := visitor.get("/sso/callback?error=access_denied&state=forged"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("callback %d of no sign-in started: %d, want 403", i+1, resp.StatusCode)
		}
	}
	if n := len(auditActions(t, e, acme, "sso.sign_in_refused")) - logged; n != 5 {
		t.Errorf("%d of 40 callbacks of no sign-in started logged, want the first 5", n)
	}
	if resp, _ := visitor.get("/sso/start"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the visitor's own sign-in after them: %d, want on to the provider", resp.StatusCode)
	}

	// Sign-ins started in the browser and refused (a changed state) count.
	forger := e.clientFrom("acme.nself.test", "127.0.0.7")
	for i := range 30 {
		cb := ssoCallback(t, forger, "ann@"+ssotest.Domain)
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		if resp, _ := forger.get(cb.Path + "?" + q.Encode()); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("refused sign-in %d: %d, want 403", i+1, resp.StatusCode)
		}
	}
	logged = len(auditActions(t, e, acme, "sso.sign_in_refused"))
	for _, path := range []string{"/sso/callback?code=forged&state=forged", "/sso/start"} {
		resp, body := forger.get(path)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(textOf(t, body, "form-error"), "Too many refused single sign-on attempts from your network. Try again in 15 minutes.") {
			t.Errorf("%s after 30 refusals: %d %q", path, resp.StatusCode, textOf(t, body, "form-error"))
		}
	}
	if n := len(auditActions(t, e, acme, "sso.sign_in_refused")); n != logged {
		t.Errorf("refusals logged: %d, then %d after the address was stopped", logged, n)
	}
	elsewhere := e.clientFrom("beta.nself.test", "127.0.0.7")
	elsewhere.get("/")
	if resp, _ := elsewhere.get("/sso/start"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the same address on another tenant: %d, want on to the provider", resp.StatusCode)
	}
	person := e.clientFrom("acme.nself.test", "127.0.0.8")
	if resp, _ := person.get(ssoCallback(t, person, "ann@"+ssotest.Domain).RequestURI()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("another address's sign-in: %d", resp.StatusCode)
	}
	if who := signedInAs(t, person); who != "ann@"+ssotest.Domain {
		t.Errorf("another address signed in as %q", who)
	}
}

// A provider that cannot be reached turns the sign-in back with the
// reason, in bounded time, and the password form still works.
func TestSSOProviderDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := e.server.SSO.SaveSSOConfig(e.ctx, acme.ID, &tenancy.SSOConfig{
		Issuer: closed, ClientID: ssotest.ClientA, ClientSecret: ssotest.SecretA, DisplayName: "Gone IdP",
		Domains: []string{ssotest.Domain}, DefaultRole: tenancy.RoleMember,
	}); err != nil {
		t.Fatal(err)
	}
	c := e.client("acme.nself.test")
	c.get("/")
	// A person trying again and again while the provider is down is not
	// taken for someone forging sign-ins.
	for range 31 {
		resp, body := c.get("/sso/start")
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(textOf(t, body, "form-error"), "connection refused") {
			t.Fatalf("start with the provider down: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
		}
	}
	c.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	if who := signedInAs(t, c); who != "owner@acme.test" {
		t.Fatalf("password sign-in with the provider down: %q", who)
	}
}

// Signing in with the provider stands for the password only: a person who
// set up two-factor sign-in still gives their code, and an admin the
// tenant requires it of is taken to set it up.
func TestSSOKeepsTheSecondFactor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, owner := ssoTenant(t, e, "acme", ssotest.ClientA, ssotest.SecretA)
	ann := e.client("acme.nself.test")
	if resp, _ := ann.get(ssoCallback(t, ann, "ann@"+ssotest.Domain).RequestURI()); resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("first sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	enrol(t, ann)

	again := e.client("acme.nself.test")
	resp, _ := again.get(ssoCallback(t, again, "ann@"+ssotest.Domain).RequestURI())
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/signin/2fa" {
		t.Fatalf("enrolled, through the provider: %d to %q", resp.StatusCode, loc)
	}
	if who := signedInAs(t, again); who != "" {
		t.Fatalf("the provider alone signed %s in past the second factor", who)
	}

	// An admin under the owners' rule, not enrolled, is taken to set-up.
	owner.get("/account/security")
	if resp, _ := owner.post("/account/2fa/policy", url.Values{"required": {"1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set policy: %d", resp.StatusCode)
	}
	bob := e.client("acme.nself.test")
	bob.get(ssoCallback(t, bob, "bob@"+ssotest.Domain).RequestURI())
	inTenantTx(t, e, acme, func(tx pgx.Tx) {
		if _, err := tx.Exec(e.ctx, `UPDATE tenants.tenant_members SET role = 'admin' WHERE user_id = (SELECT id FROM auth.users WHERE email = $1)`, "bob@"+ssotest.Domain); err != nil {
			t.Fatal(err)
		}
	})
	bob2 := e.client("acme.nself.test")
	resp, _ = bob2.get(ssoCallback(t, bob2, "bob@"+ssotest.Domain).RequestURI())
	if loc := resp.Header.Get("Location"); loc != "/account/2fa/setup" {
		t.Fatalf("admin under the rule, through the provider: %d to %q", resp.StatusCode, loc)
	}
}
