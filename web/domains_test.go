package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// A verified custom domain routes to its tenant; an unverified one never
// does; removing it stops routing at once.
func TestCustomDomainRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withCustomDomains(false))
	acme := e.mustTenant("acme")
	beta := e.mustTenant("beta")
	dns := dnstest.NewServer(t)
	svc := postgres.NewDomainService(e.db, tenancy.DomainRules{BaseDomain: baseDomain, ToASCII: domainname.ToASCII})

	d, err := svc.AddDomain(e.ctx, acme.ID, "portal.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddDomain(e.ctx, beta.ID, "beta.example"); err != nil {
		t.Fatal(err)
	}
	c := e.client("portal.acme.example")
	if resp, _ := c.get("/"); resp.StatusCode != 404 {
		t.Errorf("unverified domain: %d, want 404", resp.StatusCode)
	}
	if resp, _ := e.client("beta.example").get("/"); resp.StatusCode != 404 {
		t.Errorf("another unverified domain: %d", resp.StatusCode)
	}

	dns.SetTXT("_nself-verify.portal.acme.example", "nself-verify="+d.Token)
	if _, res, err := svc.VerifyDomain(e.ctx, acme.ID, "portal.acme.example", dnsverify.New(dns.Addr)); err != nil || !res.Verified() {
		t.Fatalf("verify: %v %v", res.Message(), err)
	}
	waitStatus(t, c, "/", 200)
	_, body := c.get("/")
	if got := textOf(t, body, "brand-name"); !strings.Contains(got, "Acme Inc") {
		t.Errorf("custom domain shows %q", got)
	}
	// The guide's own settings (TENANT_ROUTING_METHOD=subdomain with
	// custom domains enabled): verified custom domains route too.
	e.server.Config.RoutingMethod = "subdomain"
	if resp, _ := c.get("/"); resp.StatusCode != 200 {
		t.Errorf("subdomain routing with custom domains enabled: %d, want 200", resp.StatusCode)
	}
	// custom_domain routing: the custom domain routes, subdomains do not.
	e.server.Config.RoutingMethod = "custom_domain"
	if resp, _ := c.get("/"); resp.StatusCode != 200 {
		t.Errorf("custom_domain routing: %d, want 200", resp.StatusCode)
	}
	if resp, _ := e.client("acme." + baseDomain).get("/"); resp.StatusCode != 404 {
		t.Errorf("subdomain under custom_domain routing: %d, want 404", resp.StatusCode)
	}
	e.server.Config.RoutingMethod = "both"

	if err := svc.RemoveDomain(e.ctx, acme.ID, "portal.acme.example"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "/", 404)
}

func waitStatus(t *testing.T, c *client, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, _ := c.get(path)
		if resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%s: %d, want %d", c.host, path, resp.StatusCode, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With TENANT_REQUIRE_DOMAIN_VERIFICATION=false an added domain routes
// before it is verified, but no certificate is ever allowed for it.
func TestUnverifiedDomainRoutingWhenAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withCustomDomains(true))
	acme := e.mustTenant("acme")
	svc := postgres.NewDomainService(e.db, tenancy.DomainRules{BaseDomain: baseDomain, ToASCII: domainname.ToASCII})
	if _, err := svc.AddDomain(e.ctx, acme.ID, "early.acme.example"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e.client("early.acme.example"), "/", 200)
	if err := web.NewTLSPolicy(e.server).Allow(e.ctx, "early.acme.example"); err == nil {
		t.Error("a certificate was allowed for an unverified domain")
	}
	if resp, _ := e.client("unknown.example").get("/"); resp.StatusCode != 404 {
		t.Errorf("a domain nobody added: %d", resp.StatusCode)
	}
}

// withCustomDomains routes tenants' verified custom domains (and, with
// routeUnverified, pending ones), beside subdomains.
func withCustomDomains(routeUnverified bool) func(*web.Server, *postgres.DB) {
	return func(s *web.Server, db *postgres.DB) {
		cache := s.Resolver.(*postgres.TenantCache)
		cache.Domains = postgres.NewDomainService(db, tenancy.DomainRules{BaseDomain: baseDomain, ToASCII: domainname.ToASCII})
		cache.RouteUnverified = routeUnverified
		s.Domains = cache
		s.Config.RoutingMethod = "both"
	}
}
