package postgres_test

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

var domainRules = tenancy.DomainRules{BaseDomain: "nself.test", ToASCII: domainname.ToASCII}

// domainEnv is a database, a DNS server and the services over them.
type domainEnv struct {
	t   *testing.T
	ctx context.Context
	db  *postgres.DB
	svc *postgres.DomainService
	dns *dnstest.Server
	v   *dnsverify.Verifier
	now time.Time
}

func newDomainEnv(t *testing.T) *domainEnv {
	t.Helper()
	e := &domainEnv{t: t, ctx: context.Background(), db: mustOpenDB(t), dns: dnstest.NewServer(t),
		now: time.Date(2025, 1, 20, 15, 30, 0, 0, time.UTC)}
	e.db.Now = func() time.Time { return e.now }
	e.svc = postgres.NewDomainService(e.db, domainRules)
	e.v = &dnsverify.Verifier{Resolver: e.dns.Addr, Timeout: 2 * time.Second}
	return e
}

func (e *domainEnv) mustAdd(tenantID, name string) *tenancy.Domain {
	e.t.Helper()
	d, err := e.svc.AddDomain(e.ctx, tenantID, name)
	if err != nil {
		e.t.Fatalf("add domain %s: %v", name, err)
	}
	return d
}

func (e *domainEnv) verify(tenantID, name string) (*tenancy.Domain, tenancy.VerifyResult) {
	e.t.Helper()
	d, res, err := e.svc.VerifyDomain(e.ctx, tenantID, name, e.v)
	if err != nil {
		e.t.Fatalf("verify domain %s: %v", name, err)
	}
	return d, res
}

// mustVerify publishes the record and verifies the domain.
func (e *domainEnv) mustVerify(d *tenancy.Domain) *tenancy.Domain {
	e.t.Helper()
	e.dns.SetTXT(d.RecordName(), d.RecordValue())
	got, res := e.verify(d.TenantID, d.Name)
	if got.State != tenancy.DomainVerified {
		e.t.Fatalf("domain %s: %s after verification: %s", d.Name, got.State, res.Message())
	}
	return got
}

func TestDomainAddAndVerify(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)

	d := e.mustAdd(acme.ID, "  Acme.Example.COM. ")
	if d.Name != "acme.example.com" || d.TenantID != acme.ID || d.State != tenancy.DomainPending || d.Primary ||
		d.Verified() || d.VerifiedAt != nil || d.CheckedAt != nil || d.Failure != "" || d.CreatedAt.IsZero() {
		t.Errorf("added domain = %+v", d)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(d.Token) {
		t.Errorf("token %q", d.Token)
	}
	rec := "_nself-verify.acme.example.com"

	// Each way of not finding the value is recorded, and the domain stays
	// pending.
	for _, step := range []struct {
		name    string
		setup   func()
		outcome tenancy.TXTOutcome
		failure string
	}{
		{"no names", func() {}, tenancy.TXTNXDomain,
			"verification record not found: " + rec + ": no such name in DNS (NXDOMAIN); acme.example.com: no such name in DNS (NXDOMAIN)"},
		{"wrong token", func() { e.dns.SetTXT(rec, "nself-verify=00000000000000000000000000000000") }, tenancy.TXTOtherValues,
			"verification record not found: " + rec + `: other values: "nself-verify=00000000000000000000000000000000"; acme.example.com: no TXT record`},
		{"names without TXT records", func() { e.dns.SetTXT(rec) }, tenancy.TXTNoRecord,
			"verification record not found: " + rec + ": no TXT record; acme.example.com: no TXT record"},
	} {
		step.setup()
		e.now = e.now.Add(time.Minute)
		got, res := e.verify(acme.ID, "acme.example.com")
		if res.Outcome() != step.outcome || got.State != tenancy.DomainPending || got.Failure != step.failure ||
			!got.CheckedAt.Equal(e.now) || got.VerifiedAt != nil {
			t.Errorf("%s: %s, %+v", step.name, res.Outcome(), got)
		}
		if again, _ := e.svc.FindDomain(e.ctx, acme.ID, "acme.example.com"); again.Failure != step.failure {
			t.Errorf("%s: stored failure %q", step.name, again.Failure)
		}
	}
	if _, err := e.svc.LookupVerifiedDomain(e.ctx, "acme.example.com"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a pending domain routes: %v", err)
	}

	// The value at _nself-verify.DOMAIN verifies it.
	e.dns.SetTXT(rec, "v=other", d.RecordValue())
	e.now = e.now.Add(time.Minute)
	got, res := e.verify(acme.ID, "ACME.example.com")
	if res.FoundAt() != rec || got.State != tenancy.DomainVerified || !got.Verified() || got.Failure != "" ||
		!got.VerifiedAt.Equal(e.now) || !got.LastSeenValidAt.Equal(e.now) || !got.CheckedAt.Equal(e.now) {
		t.Errorf("verified: found at %q, %+v", res.FoundAt(), got)
	}
	if id, err := e.svc.LookupVerifiedDomain(e.ctx, "ACME.example.com."); err != nil || id != acme.ID {
		t.Errorf("LookupVerifiedDomain = %q, %v; want %s", id, err, acme.ID)
	}

	// So does the value on the domain itself; an internationalized name is
	// stored, found and routed in its ASCII form.
	idn := e.mustAdd(acme.ID, "Bücher.example")
	if idn.Name != "xn--bcher-kva.example" {
		t.Fatalf("stored as %q", idn.Name)
	}
	e.dns.SetTXT("xn--bcher-kva.example", idn.RecordValue())
	got, res = e.verify(acme.ID, "bücher.example")
	if res.FoundAt() != "xn--bcher-kva.example" || got.State != tenancy.DomainVerified {
		t.Errorf("verified on the domain itself: %s, %+v", res.Message(), got)
	}
	if id, err := e.svc.LookupVerifiedDomain(e.ctx, "BÜCHER.example"); err != nil || id != acme.ID {
		t.Errorf("LookupVerifiedDomain(Unicode) = %q, %v", id, err)
	}

	list, total, err := e.svc.ListDomains(e.ctx, acme.ID, tenancy.DomainFilter{})
	if err != nil || total != 2 || len(list) != 2 || list[0].Name != "acme.example.com" || list[1].Name != "xn--bcher-kva.example" {
		t.Fatalf("list: %d of %d, %v", len(list), total, err)
	}
	page, total, err := e.svc.ListDomains(e.ctx, acme.ID, tenancy.DomainFilter{Limit: 1, Offset: 1})
	if err != nil || total != 2 || len(page) != 1 || page[0].Name != "xn--bcher-kva.example" {
		t.Errorf("page: %d of %d, %v", len(page), total, err)
	}
	if _, _, err := e.svc.ListDomains(e.ctx, acme.ID, tenancy.DomainFilter{State: "bogus"}); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("bogus state filter: %v", err)
	}
	e.mustAdd(acme.ID, "pending.example.org")
	if pending, total, err := e.svc.ListDomains(e.ctx, acme.ID, tenancy.DomainFilter{State: tenancy.DomainPending}); err != nil || total != 1 || pending[0].Name != "pending.example.org" {
		t.Errorf("pending only: %v, %d, %v", pending, total, err)
	}
}

// Names are checked by the domain rules before anything is stored.
func TestDomainAddRefusesBadNames(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	for name, want := range map[string]string{
		"":                     "domain is required",
		"https://acme.com":     "without http://",
		"*.acme.com":           "wildcard",
		"10.0.0.1":             "IP address",
		"acme.com:443":         "port",
		"acme":                 "at least two labels",
		"acme.nself.test":      "under the platform's domain",
		"nself.test":           "the platform's own domain",
		"a'; DROP TABLE x.com": "only letters, digits",
	} {
		_, err := e.svc.AddDomain(e.ctx, acme.ID, name)
		var field string
		if te, ok := err.(*tenancy.Error); ok {
			field = te.Field
		}
		if tenancy.ErrorCode(err) != tenancy.EINVALID || field != "domain" || !strings.Contains(err.Error(), want) {
			t.Errorf("add %q: %v (field %q), want invalid domain containing %q", name, err, field, want)
		}
	}
	if list, _, _ := e.svc.ListDomains(e.ctx, acme.ID, tenancy.DomainFilter{}); len(list) != 0 {
		t.Errorf("%d domains stored", len(list))
	}
	// A deleted tenant takes no domains.
	if _, err := postgres.NewTenantService(e.db, tenancy.ModeRLS).DeleteTenant(e.ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddDomain(e.ctx, acme.ID, "acme.com"); tenancy.ErrorCode(err) != tenancy.ECONFLICT || !strings.Contains(err.Error(), "tenant acme is deleted") {
		t.Errorf("add to a deleted tenant: %v", err)
	}
}

func TestDomainClaims(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	a := mustCreateTenant(t, e.db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, e.db, "tenant-b", tenancy.StrategySchema)

	da := e.mustAdd(a.ID, "shop.example.com")
	_, err := e.svc.AddDomain(e.ctx, b.ID, "SHOP.example.com")
	if tenancy.ErrorCode(err) != tenancy.ECONFLICT || err.Error() != `domain "shop.example.com" is already claimed by another tenant` {
		t.Errorf("claim of another tenant's domain: %v", err)
	}
	if strings.Contains(err.Error(), a.ID) || strings.Contains(err.Error(), a.Slug) {
		t.Errorf("the refusal names the other tenant: %v", err)
	}
	_, err = e.svc.AddDomain(e.ctx, a.ID, "shop.example.com")
	if tenancy.ErrorCode(err) != tenancy.ECONFLICT || err.Error() != `domain "shop.example.com" is already added to this tenant` {
		t.Errorf("adding twice: %v", err)
	}
	// Verified, it is still refused to others.
	e.mustVerify(da)
	if _, err := e.svc.AddDomain(e.ctx, b.ID, "shop.example.com"); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("claim of a verified domain: %v", err)
	}

	// Once given up, another tenant may claim it, with a new token, and
	// must verify it afresh.
	if err := e.svc.RemoveDomain(e.ctx, a.ID, "shop.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.LookupVerifiedDomain(e.ctx, "shop.example.com"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a removed domain routes: %v", err)
	}
	claim := e.mustAdd(b.ID, "shop.example.com")
	if claim.Token == da.Token || claim.State != tenancy.DomainPending || claim.TenantID != b.ID {
		t.Errorf("re-claimed domain = %+v", claim)
	}
	// A's record is still in DNS: it does not verify B's claim.
	got, res := e.verify(b.ID, "shop.example.com")
	if got.State != tenancy.DomainPending || res.Outcome() != tenancy.TXTOtherValues {
		t.Errorf("B verified with A's record: %s, %s", got.State, res.Message())
	}
	e.mustVerify(claim)
	if id, err := e.svc.LookupVerifiedDomain(e.ctx, "shop.example.com"); err != nil || id != b.ID {
		t.Errorf("after the re-claim the domain routes to %q, %v; want %s", id, err, b.ID)
	}
}

func TestDomainPrimary(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	one := e.mustAdd(acme.ID, "one.example.com")
	two := e.mustAdd(acme.ID, "two.example.com")

	if _, err := e.svc.SetPrimaryDomain(e.ctx, acme.ID, "one.example.com"); tenancy.ErrorCode(err) != tenancy.ECONFLICT ||
		!strings.Contains(err.Error(), "only a verified domain can be primary") {
		t.Errorf("pending domain as primary: %v", err)
	}
	if _, err := e.svc.SetPrimaryDomain(e.ctx, acme.ID, "three.example.com"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("unknown domain as primary: %v", err)
	}
	e.mustVerify(one)
	e.mustVerify(two)

	primaries := func() []string {
		list, _, err := e.svc.ListDomains(e.ctx, acme.ID, tenancy.DomainFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range list {
			if d.Primary {
				out = append(out, d.Name)
			}
		}
		return out
	}
	for _, name := range []string{"one.example.com", "two.example.com", "two.example.com", "One.Example.com"} {
		d, err := e.svc.SetPrimaryDomain(e.ctx, acme.ID, name)
		if err != nil || !d.Primary {
			t.Fatalf("set primary %s: %+v, %v", name, d, err)
		}
		if got := primaries(); len(got) != 1 || got[0] != strings.ToLower(name) {
			t.Errorf("after setting %s: primaries %v", name, got)
		}
	}
	// The database holds the same rule.
	e.mustAdd(acme.ID, "three.example.com")
	asTenant(t, e.db, acme.ID, func(tx pgx.Tx) {
		_, err := tx.Exec(e.ctx, `UPDATE tenants.tenant_domains SET is_primary = true WHERE domain = 'three.example.com'`)
		if tenancy.ErrorCode(postgres.PostgresTranslate(err)) != tenancy.EINVALID {
			t.Errorf("an unverified primary in SQL: %v", err)
		}
	})
	// Removing the primary leaves the tenant without one.
	if err := e.svc.RemoveDomain(e.ctx, acme.ID, "one.example.com"); err != nil {
		t.Fatal(err)
	}
	if got := primaries(); len(got) != 0 {
		t.Errorf("primaries after removing it: %v", got)
	}
}

// A tenant cannot see, verify, make primary or remove another tenant's
// domain: to it, the domain does not exist.
func TestDomainTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	a := mustCreateTenant(t, e.db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, e.db, "tenant-b", tenancy.StrategyRLS)
	da := e.mustVerify(e.mustAdd(a.ID, "a.example.com"))
	e.mustAdd(b.ID, "b.example.com")
	queries := e.dns.Queries()

	if list, total, err := e.svc.ListDomains(e.ctx, b.ID, tenancy.DomainFilter{}); err != nil || total != 1 || list[0].Name != "b.example.com" {
		t.Errorf("B lists %v (%d), %v", list, total, err)
	}
	if _, err := e.svc.FindDomain(e.ctx, b.ID, "a.example.com"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("B finds A's domain: %v", err)
	}
	if _, _, err := e.svc.VerifyDomain(e.ctx, b.ID, "a.example.com", e.v); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("B verifies A's domain: %v", err)
	}
	if e.dns.Queries() != queries {
		t.Error("verifying another tenant's domain asked DNS")
	}
	if _, err := e.svc.SetPrimaryDomain(e.ctx, b.ID, "a.example.com"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("B makes A's domain primary: %v", err)
	}
	if err := e.svc.RemoveDomain(e.ctx, b.ID, "a.example.com"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("B removes A's domain: %v", err)
	}
	if d, err := e.svc.FindDomain(e.ctx, a.ID, "a.example.com"); err != nil || d.Token != da.Token || d.State != tenancy.DomainVerified {
		t.Errorf("A's domain after B's attempts: %+v, %v", d, err)
	}
	// In SQL too: B's context neither sees nor changes A's row.
	asTenant(t, e.db, b.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_domains WHERE domain = 'a.example.com'`); n != 0 {
			t.Errorf("B sees A's domain in SQL")
		}
		if tag, err := tx.Exec(e.ctx, `UPDATE tenants.tenant_domains SET state = 'pending', verified_at = NULL WHERE domain = 'a.example.com'`); err != nil || tag.RowsAffected() != 0 {
			t.Errorf("B updates A's domain: %v rows, %v", tag.RowsAffected(), err)
		}
		mustRefuse(t, tx, `INSERT INTO tenants.tenant_domains (tenant_id, domain, verification_token) VALUES ($1, 'x.example.com', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')`, a.ID)
	})
}

// The platform path reads domains across tenants as the owner, through the
// platform_read policy; it cannot write them without a tenant context, as
// FORCE ROW LEVEL SECURITY still binds it.
func TestDomainPlatformPathReadsOnly(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	a := mustCreateTenant(t, e.db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, e.db, "tenant-b", tenancy.StrategyRLS)
	e.mustAdd(a.ID, "a.example.com")
	e.mustAdd(b.ID, "b.example.com")

	var n int
	if err := e.db.Admin.QueryRow(e.ctx, `SELECT count(*) FROM tenants.tenant_domains`).Scan(&n); err != nil || n != 2 {
		t.Errorf("the owner reads %d domains across tenants, %v; want 2", n, err)
	}
	tag, err := e.db.Admin.Exec(e.ctx, `UPDATE tenants.tenant_domains SET state = 'verified', verified_at = now()`)
	if err != nil || tag.RowsAffected() != 0 {
		t.Errorf("the owner updated %d domains with no tenant context, %v", tag.RowsAffected(), err)
	}
	if tag, err := e.db.Admin.Exec(e.ctx, `DELETE FROM tenants.tenant_domains`); err != nil || tag.RowsAffected() != 0 {
		t.Errorf("the owner deleted %d domains with no tenant context, %v", tag.RowsAffected(), err)
	}
	_, err = e.db.Admin.Exec(e.ctx, `INSERT INTO tenants.tenant_domains (tenant_id, domain, verification_token) VALUES ($1, 'c.example.com', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')`, a.ID)
	if tenancy.ErrorCode(postgres.PostgresTranslate(err)) != tenancy.EFORBIDDEN {
		t.Errorf("the owner inserted a domain with no tenant context: %v", err)
	}
	// The application role with no tenant sees none.
	asTenant(t, e.db, "", func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_domains`); n != 0 {
			t.Errorf("the application role with no tenant sees %d domains", n)
		}
	})
}

// The DNS lookup runs outside any transaction: while it waits, the domain
// can be removed without waiting on a lock, and the check then reports
// what happened rather than write over it.
func TestDomainVerifyHoldsNoTransaction(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	e.mustAdd(acme.ID, "slow.example.com")

	for _, readd := range []bool{false, true} {
		if readd {
			e.mustAdd(acme.ID, "slow.example.com")
		}
		v := &blockingVerifier{started: make(chan struct{}), release: make(chan struct{})}
		type result struct {
			d   *tenancy.Domain
			err error
		}
		done := make(chan result)
		go func() {
			d, _, err := e.svc.VerifyDomain(e.ctx, acme.ID, "slow.example.com", v)
			done <- result{d, err}
		}()
		<-v.started
		ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
		err := e.svc.RemoveDomain(ctx, acme.ID, "slow.example.com")
		cancel()
		if err != nil {
			t.Fatalf("remove during the check: %v", err)
		}
		if readd {
			e.mustAdd(acme.ID, "slow.example.com")
		}
		close(v.release)
		r := <-done
		switch {
		case !readd && tenancy.ErrorCode(r.err) != tenancy.ENOTFOUND:
			t.Errorf("check of a domain removed meanwhile: %+v, %v", r.d, r.err)
		case readd && (tenancy.ErrorCode(r.err) != tenancy.ECONFLICT || !strings.Contains(r.err.Error(), "removed and added again")):
			t.Errorf("check of a domain re-added meanwhile: %+v, %v", r.d, r.err)
		}
	}
	if d, err := e.svc.FindDomain(e.ctx, acme.ID, "slow.example.com"); err != nil || d.State != tenancy.DomainPending || d.CheckedAt != nil {
		t.Errorf("the re-added domain was written by the old check: %+v, %v", d, err)
	}
}

type blockingVerifier struct{ started, release chan struct{} }

func (v *blockingVerifier) CheckDomain(ctx context.Context, domain, token string) tenancy.VerifyResult {
	close(v.started)
	<-v.release
	return tenancy.VerifyResult{Domain: domain, Lookups: []tenancy.TXTLookup{
		{Name: tenancy.VerificationRecordName(domain), Outcome: tenancy.TXTFound}}}
}

// A verified domain whose record disappears keeps routing through the
// grace period, and fails after it; a timeout does not fail it.
func TestDomainRecheckGracePeriod(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	d := e.mustVerify(e.mustAdd(acme.ID, "acme.example.com"))
	e.dns.ClearTXT(d.RecordName())

	e.now = e.now.Add(tenancy.DomainGracePeriod - time.Hour)
	got, _ := e.verify(acme.ID, d.Name)
	if got.State != tenancy.DomainVerified || !strings.Contains(got.Failure, "NXDOMAIN") {
		t.Errorf("within the grace period: %+v", got)
	}
	if _, err := e.svc.LookupVerifiedDomain(e.ctx, d.Name); err != nil {
		t.Errorf("within the grace period the domain stops routing: %v", err)
	}

	e.now = e.now.Add(2 * time.Hour)
	silent := &dnsverify.Verifier{Resolver: deadResolver(t), Timeout: 200 * time.Millisecond}
	got, res, err := e.svc.VerifyDomain(e.ctx, acme.ID, d.Name, silent)
	if err != nil || res.Outcome() != tenancy.TXTTimeout || got.State != tenancy.DomainVerified || !strings.Contains(got.Failure, "timeout") {
		t.Errorf("timeout past the grace period: %s, %+v, %v", res.Outcome(), got, err)
	}

	got, _ = e.verify(acme.ID, d.Name)
	if got.State != tenancy.DomainFailed || !strings.HasPrefix(got.Failure, "verification record missing since 2025-01-20 15:30 UTC: ") {
		t.Errorf("past the grace period: %+v", got)
	}
	if _, err := e.svc.LookupVerifiedDomain(e.ctx, d.Name); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a failed domain still routes: %v", err)
	}
	if _, err := e.svc.SetPrimaryDomain(e.ctx, acme.ID, d.Name); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("a failed domain as primary: %v", err)
	}
	// Back in DNS, it is verified again.
	e.mustVerify(got)
}

// deadResolver is an address where a socket is open but nothing answers.
func deadResolver(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// Every change to a domain is announced on ChangeChannel with the tenant's
// id, so every server process drops its cached view of that tenant.
func TestDomainChangesNotify(t *testing.T) {
	t.Parallel()
	e := newDomainEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	conn, err := pgx.ConnectConfig(e.ctx, e.db.App.Config().ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(e.ctx)
	if _, err := conn.Exec(e.ctx, `LISTEN `+postgres.ChangeChannel); err != nil {
		t.Fatal(err)
	}
	expect := func(what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("%s: no notification: %v", what, err)
		}
		if n.Channel != postgres.ChangeChannel || n.Payload != acme.ID {
			t.Errorf("%s: notification %s %q, want %s %q", what, n.Channel, n.Payload, postgres.ChangeChannel, acme.ID)
		}
	}
	d := e.mustAdd(acme.ID, "acme.example.com")
	expect("add")
	e.verify(acme.ID, d.Name)
	expect("failed check")
	e.mustVerify(d)
	expect("verify")
	if _, err := e.svc.SetPrimaryDomain(e.ctx, acme.ID, d.Name); err != nil {
		t.Fatal(err)
	}
	expect("set primary")
	if err := e.svc.RemoveDomain(e.ctx, acme.ID, d.Name); err != nil {
		t.Fatal(err)
	}
	expect("remove")

	// Refused changes announce nothing.
	e.svc.AddDomain(e.ctx, acme.ID, "bad name")
	e.svc.RemoveDomain(e.ctx, acme.ID, "nothere.example.com")
	ctx, cancel := context.WithTimeout(e.ctx, 200*time.Millisecond)
	defer cancel()
	if n, err := conn.WaitForNotification(ctx); err == nil {
		t.Errorf("notification %q after refused changes", n.Payload)
	}
}
