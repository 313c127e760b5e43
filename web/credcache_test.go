package web_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// TestCredentialsWithoutDatabase: once a key and a session have been
// verified, /v1 and the gateway serve them with the database frozen (no
// answer to anything), so a request costs no round trip; a key never seen
// still needs the database, and gets 503 while it is frozen.
func TestCredentialsWithoutDatabase(t *testing.T) {
	app := newUpstreamApp(t)
	db, proxy := proxiedDB(t)
	e := newEnvDB(t, db, func(s *web.Server, _ *postgres.DB) {
		s.Config.QueryTimeout = time.Second
		s.Config.Upstream = web.Upstream{URL: app.url(t)}
	})
	acme := e.mustTenant("acme")
	_, secret := mustAPIKey(t, e, acme)
	_, unseen := mustAPIKey(t, e, acme)
	e.mustMember(acme, "ann@acme.example", tenancy.RoleAdmin)
	c := e.client("acme." + baseDomain)
	c.signIn("ann@acme.example", passwordOf("ann@acme.example"))
	key := http.Header{"Authorization": {"Bearer " + secret}}
	for _, path := range []string{"/v1/tenant", "/api/x"} {
		if resp, body := apiCall(t, c, http.MethodGet, path, nil, key); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := apiCall(t, c, http.MethodGet, "/api/me", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("signed in: %d", resp.StatusCode)
	}

	// Nothing here sends mail, and delivering it would need the database.
	e.sender = nil
	proxy.Freeze()
	defer proxy.Restore()
	for range 20 {
		for _, path := range []string{"/v1/tenant", "/api/x"} {
			if resp, body := apiCall(t, c, http.MethodGet, path, nil, key); resp.StatusCode != 200 {
				t.Fatalf("%s with the database frozen: %d %s", path, resp.StatusCode, body)
			}
		}
		if resp, body := apiCall(t, c, http.MethodGet, "/api/me", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("signed in, the database frozen: %d %s", resp.StatusCode, body)
		}
	}
	if resp, _ := apiCall(t, c, http.MethodGet, "/v1/tenant", nil, http.Header{"Authorization": {"Bearer " + unseen}}); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a key never verified, the database frozen: %d", resp.StatusCode)
	}
}

// twoProcesses starts two servers on one database, each with its own
// caches, as two `nself serve` processes behind a load balancer.
func twoProcesses(t *testing.T, app *upstreamApp) (a, b *testEnv) {
	t.Helper()
	gw := func(s *web.Server, _ *postgres.DB) { s.Config.Upstream = web.Upstream{URL: app.url(t)} }
	a = newEnv(t, gw)
	b = newEnvDB(t, a.db, gw)
	return a, b
}

// afterNotice runs change (in the other process) and waits until e's
// credential cache has heard of it; the caller's next request then shows
// its effect.
func afterNotice(t *testing.T, e *testEnv, change func()) {
	t.Helper()
	heard := e.creds.Heard()
	change()
	deadline := time.Now().Add(10 * time.Second)
	for e.creds.Heard() == heard {
		if time.Now().After(deadline) {
			t.Fatal("the change was not announced")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRevocationAcrossProcesses: what ends or changes a credential in one
// process takes effect in the other on its next request, though that one
// has the credential in memory: API key revocation, sign-out, password
// reset, member removal, role change, a second factor given (the token
// from before it is void), and the tenant's suspension.
func TestRevocationAcrossProcesses(t *testing.T) {
	app := newUpstreamApp(t)
	a, b := twoProcesses(t, app)
	acme := a.mustTenant("acme")
	host := "acme." + baseDomain

	// member signs in through a, and is served by b from then on.
	session := func(email string, role tenancy.Role) (viaA, viaB *client, u *tenancy.User) {
		u = a.mustMember(acme, email, role)
		viaA = a.client(host)
		viaA.signIn(email, passwordOf(email))
		viaB = b.client(host)
		viaB.http.Jar = viaA.http.Jar
		if resp, body := apiCall(t, viaB, http.MethodGet, "/api/me", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("%s through b: %d %s", email, resp.StatusCode, body)
		}
		return viaA, viaB, u
	}
	// onB is the status of b's next gateway request with the client's cookie.
	onB := func(c *client) int {
		resp, _ := apiCall(t, c, http.MethodGet, "/api/me", nil, nil)
		return resp.StatusCode
	}

	t.Run("API key revoked", func(t *testing.T) {
		k, secret := mustAPIKey(t, a, acme)
		c := b.client(host)
		key := http.Header{"Authorization": {"Bearer " + secret}}
		for _, p := range []string{"/v1/tenant", "/api/x"} {
			if resp, _ := apiCall(t, c, http.MethodGet, p, nil, key); resp.StatusCode != 200 {
				t.Fatalf("%s: %d", p, resp.StatusCode)
			}
		}
		afterNotice(t, b, func() {
			if _, err := a.server.APIKeys.RevokeAPIKey(a.ctx, acme.ID, k.Prefix); err != nil {
				t.Fatal(err)
			}
		})
		for _, p := range []string{"/v1/tenant", "/api/x"} {
			if resp, body := apiCall(t, c, http.MethodGet, p, nil, key); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s after revocation: %d %s", p, resp.StatusCode, body)
			}
		}
	})

	t.Run("sign-out", func(t *testing.T) {
		viaA, viaB, _ := session("out@acme.example", tenancy.RoleMember)
		// The cookie signed out on a is a copy kept by an attacker.
		stolen := b.client(host)
		stolen.http.Jar, _ = newJarLike(viaA, host)
		afterNotice(t, b, func() {
			viaA.get("/dashboard")
			if resp, _ := viaA.post("/signout", nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign out: %d", resp.StatusCode)
			}
		})
		if got := onB(stolen); got != http.StatusUnauthorized {
			t.Errorf("a signed-out session on b: %d", got)
		}
		_ = viaB
	})

	t.Run("password reset", func(t *testing.T) {
		_, viaB, u := session("reset@acme.example", tenancy.RoleMember)
		afterNotice(t, b, func() {
			_, token, err := a.server.Auth.RequestPasswordReset(a.ctx, acme.ID, u.Email)
			if err != nil || token == "" {
				t.Fatalf("reset link: %q %v", token, err)
			}
			if _, err := a.server.Auth.ResetPassword(a.ctx, acme.ID, token, "a new password for reset"); err != nil {
				t.Fatal(err)
			}
		})
		if got := onB(viaB); got != http.StatusUnauthorized {
			t.Errorf("a session after its password was reset, on b: %d", got)
		}
	})

	t.Run("member removed", func(t *testing.T) {
		_, viaB, u := session("gone@acme.example", tenancy.RoleAdmin)
		afterNotice(t, b, func() {
			if _, err := a.server.Members.RemoveMember(a.ctx, acme.ID, u.ID, tenancy.PlatformActor()); err != nil {
				t.Fatal(err)
			}
		})
		if got := onB(viaB); got != http.StatusUnauthorized {
			t.Errorf("a removed member on b: %d", got)
		}
		if resp, _ := viaB.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("a removed member's dashboard on b: %d", resp.StatusCode)
		}
	})

	t.Run("role changed", func(t *testing.T) {
		_, viaB, u := session("demoted@acme.example", tenancy.RoleAdmin)
		if resp, _ := viaB.get("/members"); resp.StatusCode != 200 {
			t.Fatalf("an admin's members page on b: %d", resp.StatusCode)
		}
		afterNotice(t, b, func() {
			if _, _, err := a.server.Members.UpdateMember(a.ctx, acme.ID, u.ID, tenancy.RoleGuest, tenancy.PlatformActor()); err != nil {
				t.Fatal(err)
			}
		})
		if got := onB(viaB); got != 200 || app.last(t).Header.Get("X-Hasura-Role") != "guest" {
			t.Errorf("after the change, b sent role %q (%d)", app.last(t).Header.Get("X-Hasura-Role"), got)
		}
		if resp, _ := viaB.get("/members"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a guest's members page on b: %d", resp.StatusCode)
		}
	})

	t.Run("second factor given", func(t *testing.T) {
		const email = "mfa@acme.example"
		a.mustMember(acme, email, tenancy.RoleMember)
		setup := a.client(host)
		setup.signIn(email, passwordOf(email))
		secret, _, used := enrol(t, setup)
		viaA := a.client(host)
		passwordStep(t, viaA, email)
		// The cookie of the password step, copied by someone who saw it:
		// b serves it from memory while the session waits for its code.
		stolen := b.client(host)
		stolen.http.Jar, _ = newJarLike(viaA, host)
		if resp, _ := stolen.get("/signin/2fa"); resp.StatusCode != 200 {
			t.Fatalf("the code's page on b, the session waiting: %d", resp.StatusCode)
		}
		afterNotice(t, b, func() {
			viaA.get("/signin/2fa")
			resp, _ := viaA.post("/signin/2fa", url.Values{"code": {code(t, secret, used.Add(30*time.Second))}})
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
				t.Fatalf("the code on a: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
		// The session goes on under a new token: the old one is worth
		// nothing on b either.
		if resp, _ := stolen.get("/signin/2fa"); resp.StatusCode == 200 {
			t.Errorf("the token from before the code, on b: %d", resp.StatusCode)
		}
		if got := onB(stolen); got != http.StatusUnauthorized {
			t.Errorf("the token from before the code, b's gateway: %d", got)
		}
	})

	t.Run("suspended", func(t *testing.T) {
		_, viaB, _ := session("susp@acme.example", tenancy.RoleOwner)
		_, secret := mustAPIKey(t, a, acme)
		key := http.Header{"Authorization": {"Bearer " + secret}}
		if resp, _ := apiCall(t, viaB, http.MethodGet, "/v1/tenant", nil, key); resp.StatusCode != 200 {
			t.Fatalf("/v1 on b: %d", resp.StatusCode)
		}
		if _, err := a.server.Tenants.SetTenantStatus(a.ctx, acme.ID, tenancy.StatusSuspended); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			t, err := b.server.Resolver.Lookup(b.ctx, acme.ID)
			return err == nil && t.Status == tenancy.StatusSuspended
		})
		if got := onB(viaB); got != http.StatusForbidden {
			t.Errorf("a suspended tenant's member on b: %d", got)
		}
		for _, p := range []string{"/v1/tenant", "/api/x"} {
			if resp, _ := apiCall(t, b.client(host), http.MethodGet, p, nil, key); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s of a suspended tenant on b: %d", p, resp.StatusCode)
			}
		}
	})
}

// newJarLike returns a cookie jar holding a copy of c's cookies for host.
func newJarLike(c *client, host string) (http.CookieJar, error) {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse("http://" + host + "/")
	jar.SetCookies(u, c.http.Jar.Cookies(u))
	return jar, nil
}
