package web_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nself/nself/internal/certs"
	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// flakyResolver passes lookups to the real cache until told to fail, as a
// database outage would make it.
type flakyResolver struct {
	web.Resolver
	down atomic.Bool
}

func (f *flakyResolver) Lookup(ctx context.Context, ref string) (*tenancy.Tenant, error) {
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Resolver.Lookup(ctx, ref)
}

// domains is a DomainResolver over a fixed map.
type domains map[string]*tenancy.Tenant

func (d domains) LookupVerifiedDomain(ctx context.Context, name string) (*tenancy.Tenant, error) {
	return d.LookupDomain(ctx, name)
}

func (d domains) LookupDomain(_ context.Context, name string) (*tenancy.Tenant, error) {
	if t, ok := d[name]; ok {
		return t, nil
	}
	return nil, tenancy.Errorf(tenancy.ENOTFOUND, "no such domain")
}

func TestTLSPolicy(t *testing.T) {
	t.Parallel()
	named := domains{}
	e := newEnv(t, func(s *web.Server, _ *postgres.DB) {
		s.Domains = named
		s.Config.RoutingMethod = "both"
	})
	acme := e.mustTenant("acme")
	named["acme.example.com"], named["xn--bcher-kva.example"] = acme, acme
	e.mustTenant("sleepy")
	if _, err := e.server.Tenants.SetTenantStatus(e.ctx, "sleepy", tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	e.mustTenant("gone")
	if _, err := e.server.Tenants.DeleteTenant(e.ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	flaky := &flakyResolver{Resolver: e.server.Resolver}
	e.server.Resolver = flaky
	p := web.NewTLSPolicy(e.server)

	for name, want := range map[string]bool{
		"admin.nself.test":        true,
		"nself.test":              true,
		"api.nself.test":          true,
		"acme.nself.test":         true,
		"ACME.nself.test.":        true, // case and trailing dot
		"acme.example.com":        true, // a verified custom domain
		"bücher.example":          true, // the same, written in Unicode
		"sleepy.nself.test":       false,
		"gone.nself.test":         false,
		"nobody.nself.test":       false,
		"a.b.nself.test":          false,
		"evil.example":            false,
		"127.0.0.1":               false,
		"acme.nself.test:443":     false,
		"*.nself.test":            false,
		"":                        false,
		"acme.nself.test/../x":    false,
		"other.example.com":       false,
		"xn--invalid-.nself.test": false,
	} {
		if got := p.Allow(e.ctx, name) == nil; got != want {
			t.Errorf("Allow(%q) = %v, want %v", name, got, want)
		}
	}

	// The ask endpoint answers the same, on any host.
	c := e.client("anything.example")
	for q, want := range map[string]int{"acme.nself.test": 200, "nobody.nself.test": 404, "": 404} {
		if resp, _ := c.get("/internal/tls/allow?domain=" + q); resp.StatusCode != want {
			t.Errorf("ask %q: %d, want %d", q, resp.StatusCode, want)
		}
	}

	// While the database cannot answer, names admitted before stay
	// admitted, and new ones are refused.
	e.mustTenant("fresh")
	flaky.down.Store(true)
	if err := p.Allow(e.ctx, "acme.nself.test"); err != nil {
		t.Errorf("known name during an outage: %v", err)
	}
	if err := p.Allow(e.ctx, "fresh.nself.test"); err == nil {
		t.Error("a new name was admitted during an outage")
	}
	flaky.down.Store(false)
	if err := p.Allow(e.ctx, "fresh.nself.test"); err != nil {
		t.Errorf("new name after the outage: %v", err)
	}
}

// A real issuance from Pebble, the ACME test server that
// scripts/services.sh starts: an admitted name gets a certificate, a
// refused one never reaches the ACME server.
func TestCertificateFromACME(t *testing.T) {
	t.Parallel()
	dir, root := os.Getenv("ACME_TEST_DIRECTORY"), os.Getenv("ACME_TEST_ROOT")
	if dir == "" || root == "" {
		t.Fatal("ACME_TEST_DIRECTORY and ACME_TEST_ROOT must be set: run `make test` (scripts/services.sh starts Pebble)")
	}
	pem, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	e := newEnv(t)
	e.mustTenant("acme")
	m := certs.CertManager(web.NewTLSPolicy(e.server), certs.ACMEConfig{
		DirectoryURL: dir, Email: "ops@nself.test", CacheDir: t.TempDir(),
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	})
	cert, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "acme.nself.test"})
	if err != nil {
		t.Fatalf("certificate for an active tenant: %v", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "acme.nself.test" {
		t.Errorf("certificate names %v", leaf.DNSNames)
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "nobody.nself.test"}); err == nil {
		t.Error("a certificate was issued for an unknown tenant")
	}
}

// A verified custom domain that gets its certificate from the ACME server
// moves from verified to active.
func TestCustomDomainCertificateMakesItActive(t *testing.T) {
	t.Parallel()
	dir, root := os.Getenv("ACME_TEST_DIRECTORY"), os.Getenv("ACME_TEST_ROOT")
	if dir == "" || root == "" {
		t.Fatal("ACME_TEST_DIRECTORY and ACME_TEST_ROOT must be set: run `make test` (scripts/services.sh starts Pebble)")
	}
	pem, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	e := newEnv(t, withCustomDomains(false))
	acme := e.mustTenant("acme")
	dns := dnstest.NewServer(t)
	svc := postgres.NewDomainService(e.db, tenancy.DomainRules{BaseDomain: baseDomain, ToASCII: domainname.ToASCII})
	d, err := svc.AddDomain(e.ctx, acme.ID, "shop.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("shop.acme.example", "nself-verify="+d.Token)
	if _, res, err := svc.VerifyDomain(e.ctx, acme.ID, "shop.acme.example", dnsverify.New(dns.Addr)); err != nil || !res.Verified() {
		t.Fatalf("verify: %v %v", res.Message(), err)
	}

	m := certs.CertManager(web.NewTLSPolicy(e.server), certs.ACMEConfig{
		DirectoryURL: dir, CacheDir: t.TempDir(),
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	})
	cfg := e.server.TLSConfig(m, nil)
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "SHOP.acme.example."}); err != nil {
		t.Fatalf("certificate for a verified custom domain: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := svc.FindDomain(e.ctx, acme.ID, "shop.acme.example")
		if err == nil && got.State == tenancy.DomainActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("domain after its certificate: %+v, %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// It still routes once active.
	if id, err := svc.LookupVerifiedDomain(e.ctx, "shop.acme.example"); err != nil || id != acme.ID {
		t.Errorf("active domain lookup: %q %v", id, err)
	}
}

// A verified custom domain whose certificate cannot be obtained keeps
// routing and shows why; here the ACME server's certificate is not trusted.
func TestCustomDomainCertificateFailureIsShown(t *testing.T) {
	t.Parallel()
	dir := os.Getenv("ACME_TEST_DIRECTORY")
	if dir == "" {
		t.Fatal("ACME_TEST_DIRECTORY must be set: run `make test` (scripts/services.sh starts Pebble)")
	}
	e := newEnv(t, withCustomDomains(false))
	acme := e.mustTenant("acme")
	dns := dnstest.NewServer(t)
	svc := postgres.NewDomainService(e.db, tenancy.DomainRules{BaseDomain: baseDomain, ToASCII: domainname.ToASCII})
	d, err := svc.AddDomain(e.ctx, acme.ID, "shop.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("shop.acme.example", "nself-verify="+d.Token)
	if _, res, err := svc.VerifyDomain(e.ctx, acme.ID, "shop.acme.example", dnsverify.New(dns.Addr)); err != nil || !res.Verified() {
		t.Fatalf("verify: %v %v", res.Message(), err)
	}
	m := certs.CertManager(web.NewTLSPolicy(e.server), certs.ACMEConfig{DirectoryURL: dir, CacheDir: t.TempDir()})
	cfg := e.server.TLSConfig(m, nil)
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "shop.acme.example"}); err == nil {
		t.Fatal("a certificate from an untrusted ACME server")
	}
	var got *tenancy.Domain
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err = svc.FindDomain(e.ctx, acme.ID, "shop.acme.example")
		if err == nil && got.State == tenancy.DomainCertificateIssuing && strings.HasPrefix(got.Failure, "certificate: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("domain after a failed certificate request: %+v, %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if id, err := svc.LookupVerifiedDomain(e.ctx, "shop.acme.example"); err != nil || id != acme.ID {
		t.Errorf("the domain stopped routing: %q %v", id, err)
	}
	// Further failures within minutes are not recorded again.
	cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "shop.acme.example"})
	entries, _, err := postgres.NewAuditService(e.db).ListAudit(e.ctx, acme.ID, tenancy.AuditFilter{Action: "domain.certificate"})
	if err != nil || len(entries) != 1 {
		t.Errorf("audit entries: %d, %v", len(entries), err)
	}
}
