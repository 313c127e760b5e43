package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	ptotp "github.com/pquerna/otp/totp"

	"github.com/nself/nself/internal/tenancy"
)

// code makes the authenticator's code for secret at t, as a phone would.
func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := ptotp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// execInTenant runs SQL as the owner in the tenant's context.
func (e *testEnv) execInTenant(tenantID, sql string, args ...any) {
	e.t.Helper()
	tx, err := e.db.Admin.Begin(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// enrol sets up an authenticator through the pages, for a signed-in
// client, and returns its secret, the recovery codes shown and the time
// step the confirming code was for.
func enrol(t *testing.T, c *client) (secret string, recovery []string, used time.Time) {
	t.Helper()
	resp, body := c.get("/account/2fa/setup")
	if resp.StatusCode != 200 {
		t.Fatalf("set-up page: %d\n%s", resp.StatusCode, body)
	}
	secret = textOf(t, body, "totp-secret")
	if n := byTestID(doc(t, body), "qr"); len(n) != 1 || !strings.HasPrefix(attr(n[0], "src"), "data:image/png;base64,") {
		t.Fatal("no QR code on the set-up page")
	}
	// A wrong code first: refused, the same secret still shown.
	resp, body = c.post("/account/2fa/confirm", url.Values{"code": {"000000"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "totp-secret") != secret {
		t.Fatalf("wrong code at set-up: %d", resp.StatusCode)
	}
	used = time.Now()
	resp, body = c.post("/account/2fa/confirm", url.Values{"code": {code(t, secret, used)}})
	if resp.StatusCode != 200 {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, body)
	}
	for _, n := range byTestID(doc(t, body), "recovery-code") {
		recovery = append(recovery, text(n))
	}
	if len(recovery) != tenancy.RecoveryCodeCount {
		t.Fatalf("%d recovery codes shown", len(recovery))
	}
	return secret, recovery, used
}

// passwordStep signs in with the password, and checks the session waits
// for its code.
func passwordStep(t *testing.T, c *client, email string) {
	t.Helper()
	resp := c.signIn(email, passwordOf(email))
	if loc := resp.Header.Get("Location"); loc != "/signin/2fa" {
		t.Fatalf("after the password: to %q", loc)
	}
}

// TestTwoFactorSignIn: an enrolled person's password alone grants
// nothing; the authenticator's code (made by a real generator) completes
// the sign-in, once; a recovery code works once; wrong codes are limited.
func TestTwoFactorSignIn(t *testing.T) {
	t.Parallel()
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app)
	acme := e.mustTenant("acme")
	const email = "ann@acme.example"
	e.mustMember(acme, email, tenancy.RoleMember)
	host := "acme." + baseDomain

	c := e.client(host)
	c.signIn(email, passwordOf(email))
	secret, recovery, used := enrol(t, c)
	if resp, body := c.get("/account/security"); byTestID(doc(t, body), "two-factor-status") == nil ||
		attr(byTestID(doc(t, body), "two-factor-status")[0], "data-enrolled") != "true" || resp.StatusCode != 200 {
		t.Fatalf("security page after enrolment: %d", resp.StatusCode)
	}

	// The password alone: every page leads to the code, the gateway sees
	// no member, forms are refused.
	d := e.client(host)
	passwordStep(t, d, email)
	for _, path := range []string{"/dashboard", "/account/sessions", "/", "/settings/api-keys"} {
		if resp, _ := d.get(path); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin/2fa" {
			t.Errorf("GET %s before the code: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := apiCall(t, d, http.MethodGet, "/api/me", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("gateway before the code: %d", resp.StatusCode)
	}
	d.get("/signin/2fa")
	if resp, _ := d.post("/account/sessions/end-others", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a form before the code: %d", resp.StatusCode)
	}

	// The code used to enrol is used up: replaying it fails.
	if resp, body := d.post("/signin/2fa", url.Values{"code": {code(t, secret, used)}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("replayed enrolment code: %d\n%s", resp.StatusCode, body)
	}
	// The next step's code (the app's clock a little ahead) is taken.
	next := code(t, secret, used.Add(30*time.Second))
	resp, _ := d.post("/signin/2fa", url.Values{"code": {next}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("right code: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := d.get("/dashboard"); resp.StatusCode != 200 {
		t.Fatalf("dashboard after the code: %d", resp.StatusCode)
	}
	if resp, _ := apiCall(t, d, http.MethodGet, "/api/me", nil, nil); resp.StatusCode != 200 {
		t.Errorf("gateway after the code: %d", resp.StatusCode)
	}

	// Another sign-in cannot replay that code.
	f := e.client(host)
	passwordStep(t, f, email)
	f.get("/signin/2fa")
	if resp, _ := f.post("/signin/2fa", url.Values{"code": {next}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("replayed sign-in code: %d", resp.StatusCode)
	}
	// A recovery code, typed in capitals without its dash, works once.
	typed := strings.ToUpper(strings.ReplaceAll(recovery[3], "-", ""))
	if resp, _ := f.post("/signin/2fa", url.Values{"code": {typed}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("recovery code: %d", resp.StatusCode)
	}
	g := e.client(host)
	passwordStep(t, g, email)
	g.get("/signin/2fa")
	if resp, _ := g.post("/signin/2fa", url.Values{"code": {recovery[3]}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("recovery code used twice: %d", resp.StatusCode)
	}
	// Wrong codes are limited per account: four more, then 429 even for
	// a right one.
	for i := range 4 {
		if resp, _ := g.post("/signin/2fa", url.Values{"code": {"12345" + string(rune('0'+i))}}); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("wrong code %d: %d", i, resp.StatusCode)
		}
	}
	if resp, body := g.post("/signin/2fa", url.Values{"code": {recovery[4]}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after 5 wrong codes: %d\n%s", resp.StatusCode, body)
	}

	for _, action := range []string{"user.two_factor_enable", "user.two_factor", "user.two_factor_fail"} {
		if n := e.countAudit(acme.ID, action); n == 0 {
			t.Errorf("no %s in the audit log", action)
		}
	}
	// The secret is stored sealed, never as typed in the app.
	var sealed []byte
	tx, _ := e.db.Admin.Begin(e.ctx)
	defer tx.Rollback(e.ctx)
	tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, acme.ID)
	if err := tx.QueryRow(e.ctx, `SELECT secret_enc FROM auth.user_totp WHERE tenant_id = $1`, acme.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), secret) {
		t.Error("the TOTP secret is stored in clear")
	}
}

// countAudit counts a tenant's audit entries of an action.
func (e *testEnv) countAudit(tenantID, action string) int {
	e.t.Helper()
	entries, _, err := e.server.Audit.ListAudit(e.ctx, tenantID, tenancy.AuditFilter{Action: action, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(entries)
}

// TestTwoFactorRequired: once an owner requires it, an admin without an
// authenticator is taken to set one up after the password, and reaches
// nothing else until it is done; a member is not asked.
func TestTwoFactorRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	host := "acme." + baseDomain
	e.mustMember(acme, "owner@acme.example", tenancy.RoleOwner)
	e.mustMember(acme, "adam@acme.example", tenancy.RoleAdmin)
	e.mustMember(acme, "mia@acme.example", tenancy.RoleMember)

	o := e.client(host)
	o.signIn("owner@acme.example", passwordOf("owner@acme.example"))
	o.get("/account/security")
	if resp, _ := o.post("/account/2fa/policy", url.Values{"required": {"1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set policy: %d", resp.StatusCode)
	}
	// An admin may not change the rule.
	a0 := e.client(host)
	a0.signIn("mia@acme.example", passwordOf("mia@acme.example"))
	a0.get("/account/security")
	if resp, _ := a0.post("/account/2fa/policy", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a member changing the rule: %d", resp.StatusCode)
	}
	if resp, _ := a0.get("/dashboard"); resp.StatusCode != 200 {
		t.Errorf("member, not enrolled, under the rule: %d", resp.StatusCode)
	}

	a := e.client(host)
	resp := a.signIn("adam@acme.example", passwordOf("adam@acme.example"))
	if loc := resp.Header.Get("Location"); loc != "/account/2fa/setup" {
		t.Fatalf("admin without two-factor: to %q", loc)
	}
	if resp, _ := a.get("/members"); resp.Header.Get("Location") != "/account/2fa/setup" {
		t.Fatalf("admin before enrolling: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := a.get("/account/2fa/setup")
	if resp.StatusCode != 200 || len(byTestID(doc(t, body), "enrol-required")) != 1 {
		t.Fatalf("forced set-up page: %d", resp.StatusCode)
	}
	secret := textOf(t, body, "totp-secret")
	resp, body = a.post("/account/2fa/confirm", url.Values{"code": {code(t, secret, time.Now())}})
	if resp.StatusCode != 200 || len(byTestID(doc(t, body), "recovery-code")) != 10 {
		t.Fatalf("confirm: %d", resp.StatusCode)
	}
	if resp, _ := a.get("/members"); resp.StatusCode != 200 {
		t.Fatalf("admin after enrolling: %d", resp.StatusCode)
	}
	// Required of admins: it cannot be turned off.
	a.get("/account/security")
	if resp, _ := a.post("/account/2fa/disable", url.Values{"code": {code(t, secret, time.Now().Add(30*time.Second))}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("turning off a required second factor: %d", resp.StatusCode)
	}
	if e.countAudit(acme.ID, "mfa_policy.set") != 1 {
		t.Error("the rule's change is not in the audit log")
	}
}

// TestRecoveryCodesRenewed: a person running out of recovery codes is
// warned on the Security page, and after a current code gets new ones;
// the old ones stop working. Without two factors there is nothing to
// renew.
func TestRecoveryCodesRenewed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	const email = "ann@acme.test"
	e.mustMember(acme, email, tenancy.RoleMember)
	c := e.client("acme.nself.test")
	c.signIn(email, passwordOf(email))
	c.get("/account/security")
	if resp, _ := c.post("/account/2fa/recovery-codes", url.Values{"code": {"123456"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("renew without two factors: %d", resp.StatusCode)
	}
	if _, body := c.get("/account/security"); !strings.Contains(textOf(t, body, "flash"), "Two-factor authentication is off") {
		t.Fatalf("renew without two factors: %q", textOf(t, body, "flash"))
	}

	_, recovery, _ := enrol(t, c)
	if _, body := c.get("/account/security"); byTestID(doc(t, body), "recovery-low") != nil {
		t.Error("warned with ten codes left")
	}
	e.execInTenant(acme.ID, `UPDATE auth.recovery_codes SET used_at = now() WHERE tenant_id = $1 AND code_hash = ANY($2)`,
		acme.ID, hashesOf(recovery[:8]))
	if _, body := c.get("/account/security"); !strings.Contains(textOf(t, body, "recovery-low"), "Only 2 recovery codes left") {
		t.Errorf("with 2 codes left: %q", textOf(t, body, "recovery-low"))
	}
	if resp, body := c.post("/account/2fa/recovery-codes", url.Values{"code": {recovery[0]}}); resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(textOf(t, body, "error-renew-code"), "used already") {
		t.Fatalf("renew with a used code: %d %q", resp.StatusCode, textOf(t, body, "error-renew-code"))
	}
	resp, body := c.post("/account/2fa/recovery-codes", url.Values{"code": {recovery[8]}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("renew: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	var renewed []string
	for _, n := range byTestID(doc(t, body), "recovery-code") {
		renewed = append(renewed, text(n))
	}
	if len(renewed) != tenancy.RecoveryCodeCount || renewed[0] == recovery[0] {
		t.Fatalf("new codes: %q", renewed)
	}
	if _, body := c.get("/account/security"); !strings.Contains(textOf(t, body, "two-factor-status"), "10 recovery codes left") {
		t.Errorf("after renewal: %q", textOf(t, body, "two-factor-status"))
	}
	// The last old code is refused at sign-in; a new one signs in.
	d := e.client("acme.nself.test")
	passwordStep(t, d, email)
	d.get("/signin/2fa")
	if resp, _ := d.post("/signin/2fa", url.Values{"code": {recovery[9]}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("an old recovery code after renewal: %d", resp.StatusCode)
	}
	if resp, _ := d.post("/signin/2fa", url.Values{"code": {renewed[0]}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a new recovery code: %d", resp.StatusCode)
	}
	if n := e.countAudit(acme.ID, "user.recovery_codes_renew"); n != 1 {
		t.Errorf("%d renewals in the audit log", n)
	}
}

// hashesOf is how recovery codes are stored.
func hashesOf(codes []string) [][]byte {
	out := make([][]byte, len(codes))
	for i, c := range codes {
		out[i] = tenancy.HashSecret(tenancy.NormalizeRecoveryCode(c))
	}
	return out
}
