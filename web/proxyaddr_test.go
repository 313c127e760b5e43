package web_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// forwarded is a client behind the load balancer at lb: it connects from
// lb and the balancer names it in X-Forwarded-For (after whatever the
// client itself sent).
func (e *testEnv) forwarded(host, lb, client string) *client {
	c := e.clientFrom(host, lb)
	base := c.http.Transport
	c.http.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Add("X-Forwarded-For", client)
		return base.RoundTrip(r)
	})
	return c
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Behind a trusted load balancer (TRUSTED_PROXIES), sign-in limits count
// each client's own address: a stranger's failures never lock out the
// owner, who comes through the same balancer. A client that is not the
// balancer cannot pick its address with the header.
func TestSignInLimitsBehindATrustedProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *web.Server, _ *postgres.DB) {
		s.Config.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}
	})
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	wrong := func() url.Values { return url.Values{"email": {"owner@acme.test"}, "password": {"a wrong guess"}} }

	for i := range 30 {
		stranger := e.forwarded("acme.nself.test", "127.0.0.9", fmt.Sprintf("203.0.113.%d", i%10))
		stranger.get("/")
		stranger.post("/signin", wrong())
	}
	e.forwarded("acme.nself.test", "127.0.0.9", "198.51.100.7").signIn("owner@acme.test", passwordOf("owner@acme.test"))

	// Not the balancer: the header is the client's own claim, and its
	// address is the one it connects from.
	spoofer := e.clientFrom("acme.nself.test", "127.0.0.10")
	base, n := spoofer.http.Transport, 0
	spoofer.http.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		n++
		r = r.Clone(r.Context())
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", n))
		return base.RoundTrip(r)
	})
	spoofer.get("/")
	for range 5 {
		spoofer.post("/signin", wrong())
	}
	if resp, _ := spoofer.post("/signin", url.Values{"email": {"owner@acme.test"}, "password": {passwordOf("owner@acme.test")}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a client changing X-Forwarded-For itself escaped its limit: %d", resp.StatusCode)
	}
}
