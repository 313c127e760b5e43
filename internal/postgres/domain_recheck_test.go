package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// Verified domains are checked again; one whose record is gone keeps
// routing through the grace period, then fails and stops routing.
func TestDomainRecheckDue(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	dns := dnstest.NewServer(t)
	v := dnsverify.New(dns.Addr)
	svc := postgres.NewDomainService(db, tenancy.DomainRules{BaseDomain: "nself.test", ToASCII: domainname.ToASCII})
	for _, x := range []struct{ tenant, name string }{{a.ID, "a.example"}, {b.ID, "b.example"}} {
		d, err := svc.AddDomain(ctx, x.tenant, x.name)
		if err != nil {
			t.Fatal(err)
		}
		dns.SetTXT("_nself-verify."+x.name, "nself-verify="+d.Token)
		if _, res, err := svc.VerifyDomain(ctx, x.tenant, x.name, v); err != nil || !res.Verified() {
			t.Fatalf("verify %s: %v %v", x.name, res.Message(), err)
		}
	}
	// a.example is the primary domain: failing it later must take that
	// away too, not break the check.
	if _, err := svc.SetPrimaryDomain(ctx, a.ID, "a.example"); err != nil {
		t.Fatal(err)
	}
	// Nothing is due right after verification.
	if n, err := svc.RecheckDue(ctx, v, time.Now().Add(-time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("right after verifying: %d checked, %v", n, err)
	}
	// a.example loses its record; both are due.
	dns.ClearTXT("_nself-verify.a.example")
	if n, err := svc.RecheckDue(ctx, v, time.Now().Add(time.Minute), 10); err != nil || n != 2 {
		t.Fatalf("recheck: %d checked, %v", n, err)
	}
	if id, err := svc.LookupVerifiedDomain(ctx, "a.example"); err != nil || id != a.ID {
		t.Errorf("within the grace period a.example still routes: %q %v", id, err)
	}
	// Past the grace period it fails and stops routing; b.example stays.
	execInTenant(t, db, a.ID, `UPDATE tenants.tenant_domains SET verified_at = now() - interval '4 days', last_seen_valid_at = now() - interval '4 days'`)
	if _, err := svc.RecheckDue(ctx, v, time.Now().Add(time.Minute), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.LookupVerifiedDomain(ctx, "a.example"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("after the grace period a.example: %v, want not found", err)
	}
	d, err := svc.FindDomain(ctx, a.ID, "a.example")
	if err != nil || d.State != tenancy.DomainFailed || d.Failure == "" || d.Primary {
		t.Errorf("a.example = %+v, %v", d, err)
	}
	if id, err := svc.LookupVerifiedDomain(ctx, "b.example"); err != nil || id != b.ID {
		t.Errorf("b.example: %q %v", id, err)
	}
}

// A claim never verified gives way to another tenant after StaleClaimAge;
// a fresh claim, or a verified one, does not.
func TestStaleDomainClaimGivesWay(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	dns := dnstest.NewServer(t)
	svc := postgres.NewDomainService(db, tenancy.DomainRules{BaseDomain: "nself.test", ToASCII: domainname.ToASCII})

	if _, err := svc.AddDomain(ctx, a.ID, "squat.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddDomain(ctx, b.ID, "squat.example"); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Fatalf("a fresh claim of another tenant: %v, want conflict", err)
	}
	execInTenant(t, db, a.ID, `UPDATE tenants.tenant_domains SET created_at = now() - interval '8 days'`)
	if _, err := svc.AddDomain(ctx, b.ID, "squat.example"); err != nil {
		t.Fatalf("a stale claim should give way: %v", err)
	}
	if _, err := svc.FindDomain(ctx, a.ID, "squat.example"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("tenant A's stale claim remains: %v", err)
	}

	// A verified claim holds, however old.
	d, err := svc.AddDomain(ctx, a.ID, "owned.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("owned.example", "nself-verify="+d.Token)
	if _, res, err := svc.VerifyDomain(ctx, a.ID, "owned.example", dnsverify.New(dns.Addr)); err != nil || !res.Verified() {
		t.Fatalf("verify: %v %v", res.Message(), err)
	}
	execInTenant(t, db, a.ID, `UPDATE tenants.tenant_domains SET created_at = now() - interval '30 days' WHERE domain = 'owned.example'`)
	if _, err := svc.AddDomain(ctx, b.ID, "owned.example"); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("a verified claim gave way: %v", err)
	}
}

// A domain verified once stays its tenant's when a later re-check fails:
// another tenant cannot take it over a week after the claim, and the
// holder's log records no release.
func TestVerifiedDomainHoldsAfterAFailedRecheck(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	dns := dnstest.NewServer(t)
	v := dnsverify.New(dns.Addr)
	svc := postgres.NewDomainService(db, tenancy.DomainRules{BaseDomain: "nself.test", ToASCII: domainname.ToASCII})

	d, err := svc.AddDomain(ctx, a.ID, "lapsed.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("_nself-verify.lapsed.example", "nself-verify="+d.Token)
	d, _, err = svc.VerifyDomain(ctx, a.ID, "lapsed.example", v)
	if err != nil || d.State != tenancy.DomainVerified || d.FirstVerifiedAt == nil {
		t.Fatalf("verify: %+v %v", d, err)
	}
	first := *d.FirstVerifiedAt
	// The record lapses past the grace period: the re-check fails the
	// domain. The claim is a month old.
	dns.ClearTXT("_nself-verify.lapsed.example")
	execInTenant(t, db, a.ID, `UPDATE tenants.tenant_domains SET created_at = now() - interval '30 days',
		verified_at = now() - interval '4 days', last_seen_valid_at = now() - interval '4 days'`)
	if _, err := svc.RecheckDue(ctx, v, time.Now().Add(time.Minute), 10); err != nil {
		t.Fatal(err)
	}
	d, err = svc.FindDomain(ctx, a.ID, "lapsed.example")
	if err != nil || d.State != tenancy.DomainFailed || d.FirstVerifiedAt == nil || !d.FirstVerifiedAt.Equal(first) {
		t.Fatalf("after the failed re-check: %+v %v", d, err)
	}

	_, err = svc.AddDomain(ctx, b.ID, "lapsed.example")
	if tenancy.ErrorCode(err) != tenancy.ECONFLICT || !strings.Contains(err.Error(), "already claimed by another tenant") {
		t.Fatalf("tenant B claims a domain verified once: %v, want a conflict", err)
	}
	if _, err := svc.FindDomain(ctx, a.ID, "lapsed.example"); err != nil {
		t.Errorf("tenant A lost its domain: %v", err)
	}
	entries, _, err := postgres.NewAuditService(db).ListAudit(ctx, a.ID, tenancy.AuditFilter{Action: "domain.release"})
	if err != nil || len(entries) != 0 {
		t.Errorf("tenant A's log records a release: %v %v", entries, err)
	}

	// Verified again, it routes to A again; the first verification stays.
	dns.SetTXT("_nself-verify.lapsed.example", "nself-verify="+d.Token)
	d, _, err = svc.VerifyDomain(ctx, a.ID, "lapsed.example", v)
	if err != nil || d.State != tenancy.DomainVerified || !d.FirstVerifiedAt.Equal(first) {
		t.Errorf("verified again: %+v %v", d, err)
	}
}
