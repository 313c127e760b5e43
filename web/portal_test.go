package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

func TestLandingIsBrandedAndSecured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustTenant("acme")
	resp, body := e.client("acme.nself.test").get("/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("landing: %d", resp.StatusCode)
	}
	if got := textOf(t, body, "brand-name"); got != "A Acme Inc" {
		t.Errorf("brand = %q", got)
	}
	if len(byTestID(doc(t, body), "sign-in")) != 1 {
		t.Error("no sign-in form")
	}
	h := resp.Header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin", "X-Frame-Options": "DENY"} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Error("page has inline script or style")
	}
	for _, c := range resp.Cookies() {
		if c.Name == "nself_session" && (!c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Domain != "") {
			t.Errorf("session cookie = %+v", c)
		}
	}
}

func TestHostsAndTenantStates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustTenant("acme")
	sus := e.mustTenant("sleepy")
	gone := e.mustTenant("gone")
	if _, err := e.server.Tenants.SetTenantStatus(e.ctx, sus.Slug, tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if _, err := e.server.Tenants.DeleteTenant(e.ctx, gone.Slug); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{
		"acme.nself.test":      200,
		"nobody.nself.test":    404,
		"gone.nself.test":      404,
		"sleepy.nself.test":    403,
		"evil.example":         404,
		"a.b.nself.test":       404,
		"nself.test":           404,
		"acme.nself.test.evil": 404,
	} {
		resp, body := e.client(host).get("/")
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", host, resp.StatusCode, want)
		}
		if want == 403 && !strings.Contains(textOf(t, body, "error-message"), "suspended") {
			t.Errorf("%s: page does not say suspended: %q", host, textOf(t, body, "error-message"))
		}
	}
	resp, body := e.client("anything").get("/healthz")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	if resp, _ := e.client("anything").get("/readyz"); resp.StatusCode != 200 {
		t.Errorf("readyz: %d", resp.StatusCode)
	}
}

func TestSignInOutAndRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	e.mustMember(acme, "guest@acme.test", tenancy.RoleGuest)
	e.mustMember(acme, "member@acme.test", tenancy.RoleMember)
	if _, _, err := e.server.Users.CreateUser(e.ctx, acme.ID, tenancy.NewUser{Email: "norole@acme.test", Password: "norole-password"}); err != nil {
		t.Fatal(err)
	}

	owner := e.client("acme.nself.test")
	owner.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	resp, body := owner.get("/dashboard")
	if resp.StatusCode != 200 || textOf(t, body, "tenant-name") != "Acme Inc" || textOf(t, body, "dashboard-role") != "owner" {
		t.Fatalf("owner dashboard: %d %q %q", resp.StatusCode, textOf(t, body, "tenant-name"), textOf(t, body, "dashboard-role"))
	}
	if len(byTestID(doc(t, body), "nav-api-keys")) != 1 {
		t.Error("owner menu lacks API keys")
	}

	guest := e.client("acme.nself.test")
	guest.signIn("guest@acme.test", passwordOf("guest@acme.test"))
	_, body = guest.get("/dashboard")
	if len(byTestID(doc(t, body), "nav-api-keys")) != 0 {
		t.Error("guest menu shows API keys")
	}
	if resp, _ := guest.get("/settings/api-keys"); resp.StatusCode != 403 {
		t.Errorf("guest opens API keys: %d", resp.StatusCode)
	}
	// Every state-changing request of a guest is refused, with a valid token.
	for _, path := range []string{"/settings/api-keys", "/settings/api-keys/nsk_x/revoke", "/dashboard", "/anything"} {
		if resp, _ := guest.post(path, url.Values{"name": {"x"}}); resp.StatusCode != 403 {
			t.Errorf("guest POST %s: %d, want 403", path, resp.StatusCode)
		}
	}

	member := e.client("acme.nself.test")
	member.signIn("member@acme.test", passwordOf("member@acme.test"))
	if resp, _ := member.get("/settings/api-keys"); resp.StatusCode != 403 {
		t.Errorf("member opens API keys: %d", resp.StatusCode)
	}

	// An account without a role cannot sign in.
	nobody := e.client("acme.nself.test")
	nobody.get("/")
	resp, body = nobody.post("/signin", url.Values{"email": {"norole@acme.test"}, "password": {"norole-password"}})
	if resp.StatusCode != 403 || !strings.Contains(textOf(t, body, "form-error"), "no access") {
		t.Errorf("no-role sign in: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
	}

	// Sign out ends the session on the server too.
	owner.post("/signout", nil)
	if resp, _ := owner.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("dashboard after sign out: %d", resp.StatusCode)
	}
}

func TestSignInErrorsAndRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	c := e.client("acme.nself.test")
	c.get("/")
	resp, body := c.post("/signin", url.Values{"email": {"owner@acme.test"}, "password": {"wrong"}})
	if resp.StatusCode != 422 || textOf(t, body, "form-error") != "Email or password is incorrect." {
		t.Errorf("wrong password: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
	}
	resp, body2 := c.post("/signin", url.Values{"email": {"nobody@acme.test"}, "password": {"wrong"}})
	if resp.StatusCode != 422 || textOf(t, body2, "form-error") != textOf(t, body, "form-error") {
		t.Errorf("unknown account answers differently: %d %q", resp.StatusCode, textOf(t, body2, "form-error"))
	}
	for range 4 {
		c.post("/signin", url.Values{"email": {"owner@acme.test"}, "password": {"wrong"}})
	}
	// The account is now locked for a while, even with the right password.
	resp, body = c.post("/signin", url.Values{"email": {"owner@acme.test"}, "password": {passwordOf("owner@acme.test")}})
	if resp.StatusCode != 429 || !strings.Contains(textOf(t, body, "form-error"), "Too many sign-in attempts") {
		t.Errorf("after 5 failures: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
	}
}

func TestSessionsDoNotCrossTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustTenant("beta")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	a := e.client("acme.nself.test")
	a.signIn("owner@acme.test", passwordOf("owner@acme.test"))

	// Replay A's session cookie on B's host.
	u, _ := url.Parse("http://acme.nself.test/")
	b := e.client("beta.nself.test")
	bu, _ := url.Parse("http://beta.nself.test/")
	b.http.Jar.SetCookies(bu, a.http.Jar.Cookies(u))
	resp, _ := b.get("/dashboard")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("A's session on B's dashboard: %d, want a redirect to sign in", resp.StatusCode)
	}
	resp, body := b.get("/")
	if strings.Contains(body, "owner@acme.test") || len(byTestID(doc(t, body), "sign-in")) != 1 {
		t.Errorf("A's session shows on B's host: %d", resp.StatusCode)
	}
	// A header naming another tenant does not move a page request there.
	req, _ := http.NewRequest("GET", a.url("/dashboard"), nil)
	req.Header.Set("X-Tenant-Slug", "beta")
	if resp, _ := a.do(req); resp.StatusCode != 403 {
		t.Errorf("X-Tenant-Slug of another tenant on a page: %d", resp.StatusCode)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	c := e.client("acme.nself.test")
	c.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	c.get("/settings/api-keys")
	for name, form := range map[string]url.Values{
		"no token":    {"name": {"k"}, "csrf_token": {""}},
		"wrong token": {"name": {"k"}, "csrf_token": {"forged"}},
	} {
		if resp, _ := c.post("/settings/api-keys", form); resp.StatusCode != 403 {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	// A browser's cross-site request is refused even with a token.
	form := url.Values{"name": {"k"}, "csrf_token": {c.csrf}}
	req, _ := http.NewRequest("POST", c.url("/settings/api-keys"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := c.do(req); resp.StatusCode != 403 {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
	keys, _ := e.server.APIKeys.ListAPIKeys(e.ctx, acme.ID)
	if len(keys) != 0 {
		t.Errorf("refused requests made %d keys", len(keys))
	}
	// Signing in needs the token too (login CSRF).
	fresh := e.client("acme.nself.test")
	if resp, _ := fresh.post("/signin", url.Values{"email": {"owner@acme.test"}, "password": {passwordOf("owner@acme.test")}}); resp.StatusCode != 403 {
		t.Errorf("sign in without a token: %d", resp.StatusCode)
	}
}

var keyRE = regexp.MustCompile(`nsk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}`)

func TestAPIKeysAndTenantAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	beta := e.mustTenant("beta")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	e.mustMember(beta, "owner@beta.test", tenancy.RoleOwner)

	// An admin makes a key in the portal; it is shown once.
	c := e.client("acme.nself.test")
	c.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	c.get("/settings/api-keys")
	resp, body := c.post("/settings/api-keys", url.Values{"name": {"<script>alert(1)</script>"}})
	keyA := keyRE.FindString(textOf(t, body, "new-key"))
	if resp.StatusCode != 200 || keyA == "" {
		t.Fatalf("create key: %d %q", resp.StatusCode, textOf(t, body, "new-key"))
	}
	if strings.Contains(body, "<script>alert(1)</script>") {
		t.Error("key name is not escaped")
	}
	if _, body := c.get("/settings/api-keys"); strings.Contains(body, keyA) {
		t.Error("the key is shown again")
	}
	_, keyB, err := e.server.APIKeys.CreateAPIKey(e.ctx, beta.ID, "beta", "")
	if err != nil {
		t.Fatal(err)
	}

	api := func(host, key string, headers ...string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+host+"/v1/users", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, body := e.client(host).do(req)
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s: not JSON: %q", host, body)
		}
		return resp.StatusCode, v
	}
	if code, v := api("acme.nself.test", keyA); code != 200 || v["total"].(float64) != 1 {
		t.Errorf("own key on own host: %d %v", code, v)
	}
	if code, v := api("api.nself.test", keyA); code != 200 || v["users"].([]any)[0].(map[string]any)["email"] != "owner@acme.test" {
		t.Errorf("key alone on the API host: %d %v", code, v)
	}
	for name, tc := range map[string]struct {
		host, key string
		headers   []string
		want      int
	}{
		"no key":                   {"acme.nself.test", "", nil, 401},
		"garbage key":              {"acme.nself.test", "nsk_nope", nil, 401},
		"A's key on B's host":      {"beta.nself.test", keyA, nil, 403},
		"A's key, X-Tenant-ID B":   {"api.nself.test", keyA, []string{"X-Tenant-ID", beta.ID}, 403},
		"A's key, X-Tenant-Slug B": {"acme.nself.test", keyA, []string{"X-Tenant-Slug", "beta"}, 403},
		"B's key forged for A":     {"acme.nself.test", strings.Replace(keyB, strings.ReplaceAll(beta.ID, "-", ""), strings.ReplaceAll(acme.ID, "-", ""), 1), nil, 401},
		"internal token, header":   {"api.nself.test", internalToken, []string{"X-Tenant-ID", beta.ID}, 200},
		"internal token, no name":  {"api.nself.test", internalToken, nil, 400},
		"internal token, bad slug": {"api.nself.test", internalToken, []string{"X-Tenant-Slug", "Not A Slug"}, 422},
	} {
		if code, v := api(tc.host, tc.key, tc.headers...); code != tc.want || (code >= 400 && v["error"] == nil) {
			t.Errorf("%s: %d %v, want %d with an error message", name, code, v, tc.want)
		}
	}

	// The list shows how the key really begins.
	_, page := c.get("/settings/api-keys")
	found := false
	for _, n := range byTestID(doc(t, page), "key-start") {
		start := strings.TrimSuffix(strings.TrimSpace(text(n)), "…")
		found = found || strings.HasPrefix(keyA, start) && len(start) >= len("nsk_")+32+1+8
	}
	if !found {
		t.Errorf("no key in the list begins as %q does: %q", keyA, rowTexts(t, page, "key-row"))
	}

	// Revoked keys stop working at once.
	keys, _ := e.server.APIKeys.ListAPIKeys(e.ctx, acme.ID)
	if resp, _ := c.post("/settings/api-keys/"+keys[0].Prefix+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if code, _ := api("acme.nself.test", keyA); code != 401 {
		t.Errorf("revoked key: %d", code)
	}
	// Another tenant's key prefix cannot be revoked from here.
	bkeys, _ := e.server.APIKeys.ListAPIKeys(e.ctx, beta.ID)
	c.get("/settings/api-keys")
	if resp, _ := c.post("/settings/api-keys/"+bkeys[0].Prefix+"/revoke", nil); resp.StatusCode != 404 {
		t.Errorf("revoking B's key from A: %d", resp.StatusCode)
	}
	if code, _ := api("beta.nself.test", keyB); code != 200 {
		t.Errorf("B's key after A's attempt: %d", code)
	}
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	c := e.client("acme.nself.test")
	c.get("/password/forgot")
	resp, body := c.post("/password/forgot", url.Values{"email": {"owner@acme.test"}})
	if resp.StatusCode != 200 || len(byTestID(doc(t, body), "reset-sent")) != 1 {
		t.Fatalf("forgot: %d", resp.StatusCode)
	}
	c.get("/password/forgot")
	c.post("/password/forgot", url.Values{"email": {"stranger@acme.test"}})
	sent := e.mail.messages("password_reset")
	if len(sent) != 1 {
		t.Fatalf("mails sent = %d, want 1 (none for an unknown address)", len(sent))
	}
	m := sent[0]
	if m.To != "owner@acme.test" || m.Subject != "Reset your Acme Inc password" || m.Text == "" || !strings.Contains(m.HTML, "Acme Inc") {
		t.Errorf("mail = %+v", m)
	}
	link := regexp.MustCompile(`http://acme\.nself\.test/password/reset\?token=[A-Za-z0-9_-]+`).FindString(m.Text)
	if link == "" {
		t.Fatalf("no link in %q", m.Text)
	}
	token := strings.SplitN(link, "token=", 2)[1]
	resp, _ = c.get("/password/reset?token=" + token)
	if resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Error("reset page may leak its token through Referer")
	}
	resp, body = c.post("/password/set", url.Values{"token": {token}, "password": {"short"}})
	if resp.StatusCode != 422 || !strings.Contains(textOf(t, body, "error-password"), "too short") {
		t.Errorf("short password: %d %q", resp.StatusCode, textOf(t, body, "error-password"))
	}
	resp, _ = c.post("/password/set", url.Values{"token": {token}, "password": {"a brand new password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set password: %d", resp.StatusCode)
	}
	resp, body = c.post("/password/set", url.Values{"token": {token}, "password": {"another new password"}})
	if resp.StatusCode != 422 || !strings.Contains(textOf(t, body, "form-error"), "invalid, already used or expired") {
		t.Errorf("token reuse: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
	}
	c.signIn("owner@acme.test", "a brand new password")
}

// A change to a tenant reaches the cache of a running server: suspending
// takes effect on the next requests.
func TestTenantCacheFollowsChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustTenant("acme")
	c := e.client("acme.nself.test")
	if resp, _ := c.get("/"); resp.StatusCode != 200 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	if _, err := e.server.Tenants.SetTenantStatus(e.ctx, "acme", tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, _ := c.get("/")
		if resp.StatusCode == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after suspending", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A tenant created after a miss for its slug is found.
	if resp, _ := e.client("later.nself.test").get("/"); resp.StatusCode != 404 {
		t.Fatalf("unknown tenant: %d", resp.StatusCode)
	}
	e.mustTenant("later")
	deadline = time.Now().Add(3 * time.Second)
	for {
		resp, _ := e.client("later.nself.test").get("/")
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new tenant still %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An unauthenticated API request learns nothing about which tenants exist.
func TestAPIDoesNotRevealTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustTenant("acme")
	statuses := map[string]int{}
	for _, slug := range []string{"acme", "nobody"} {
		req, _ := http.NewRequest("GET", "http://api.nself.test/v1/tenant", nil)
		req.Header.Set("Authorization", "Bearer nsk_not_a_key")
		req.Header.Set("X-Tenant-Slug", slug)
		resp, _ := e.client("api.nself.test").do(req)
		statuses[slug] = resp.StatusCode
	}
	if statuses["acme"] != 401 || statuses["nobody"] != 401 {
		t.Errorf("statuses %v: a bad key must answer 401 whatever tenant it names", statuses)
	}
}
