package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// MULTI_TENANCY_ENABLED=false: the default tenant is served at BASE_DOMAIN
// (portal and API), no subdomain routes, and no other tenant can be made.
func TestSingleTenantInstallation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *web.Server, db *postgres.DB) {
		s.Config.SingleTenant = true
		db.SingleTenant = true
	})
	def := e.mustTenant(tenancy.DefaultTenantSlug)
	owner := e.mustMember(def, "owner@default.example", tenancy.RoleOwner)

	if _, err := e.server.Tenants.CreateTenant(e.ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme"}); err == nil ||
		!strings.Contains(err.Error(), "MULTI_TENANCY_ENABLED=false") {
		t.Errorf("create another tenant: %v", err)
	}

	c := e.client(baseDomain)
	resp, body := c.get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="password"`) {
		t.Fatalf("BASE_DOMAIN: %d, want the default tenant's sign-in page\n%s", resp.StatusCode, body)
	}
	c.signIn(owner.Email, passwordOf(owner.Email))
	if resp, body := c.get("/dashboard"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Default Inc") {
		t.Errorf("dashboard at BASE_DOMAIN: %d", resp.StatusCode)
	}
	for _, host := range []string{"default." + baseDomain, "acme." + baseDomain} {
		if resp, _ := e.client(host).get("/"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", host, resp.StatusCode)
		}
	}
	// The console still answers at its own host.
	if resp, _ := e.client("admin." + baseDomain).get("/"); resp.StatusCode == http.StatusNotFound {
		t.Errorf("console: %d", resp.StatusCode)
	}
}
