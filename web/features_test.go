package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// A server built without Stripe has no billing: the owner's menu has no
// Billing entry, and the billing pages, Checkout, the webhook and the
// console's replay are not there (404), rather than there and refusing.
// With Stripe they are.
func TestBillingOnlyWithStripe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   []func(*web.Server, *postgres.DB)
		status int
	}{
		{"without Stripe", nil, http.StatusNotFound},
		{"with Stripe", []func(*web.Server, *postgres.DB){withBilling(t)}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.opts...)
			acme := e.mustTenant("acme")
			e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
			c := e.client("acme." + baseDomain)
			c.signIn("owner@acme.test", passwordOf("owner@acme.test"))
			_, body := c.get("/dashboard")
			if got := len(byTestID(doc(t, body), "nav-billing")) > 0; got != (tc.status == http.StatusOK) {
				t.Errorf("the menu has a Billing entry: %v", got)
			}
			if resp, _ := c.get("/billing"); resp.StatusCode != tc.status {
				t.Errorf("GET /billing: %d, want %d", resp.StatusCode, tc.status)
			}
			off := tc.status == http.StatusNotFound
			if resp, _ := c.post("/billing/checkout", url.Values{"plan": {"pro"}}); off != (resp.StatusCode == http.StatusNotFound) {
				t.Errorf("POST /billing/checkout: %d", resp.StatusCode)
			}
			req, _ := http.NewRequest(http.MethodPost, "http://api."+baseDomain+"/webhooks/stripe", strings.NewReader("{}"))
			resp, _ := e.client("api." + baseDomain).do(req)
			if off != (resp.StatusCode == http.StatusNotFound) {
				t.Errorf("POST /webhooks/stripe: %d", resp.StatusCode)
			}
			admin := signedInAdmin(t, e)
			admin.get("/billing")
			// With Stripe, an unknown event is not found too: only the
			// route's absence is checked.
			if resp, _ := admin.post("/billing/events/evt_1/replay", nil); off && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST /billing/events/evt_1/replay: %d", resp.StatusCode)
			}
		})
	}
}

// Without object storage there are no logos and no data exports: no menu
// entry, no page.
func TestLogosAndExportsOnlyWithObjectStorage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *web.Server, _ *postgres.DB) { s.Logos, s.Exports = nil, nil })
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	c := e.client("acme." + baseDomain)
	c.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	_, body := c.get("/dashboard")
	for _, id := range []string{"nav-logos", "nav-export"} {
		if len(byTestID(doc(t, body), id)) > 0 {
			t.Errorf("the menu has %s", id)
		}
	}
	for _, path := range []string{"/settings/logos", "/settings/export", "/logo/main"} {
		if resp, _ := c.get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
