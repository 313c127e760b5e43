package postgres_test

import (
	"context"
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

// auditLog returns the tenant's entries, newest first, as the portal reads
// them.
func auditLog(t *testing.T, db *postgres.DB, tenantID string, f tenancy.AuditFilter) []*tenancy.AuditEntry {
	t.Helper()
	list, _, err := postgres.NewAuditService(db).ListAudit(context.Background(), tenantID, f)
	if err != nil {
		t.Fatalf("list audit log: %v", err)
	}
	return list
}

// actions returns the entries' actions, oldest first.
func actions(list []*tenancy.AuditEntry) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[len(list)-1-i] = e.Action
	}
	return out
}

func findEntry(t *testing.T, list []*tenancy.AuditEntry, action string) *tenancy.AuditEntry {
	t.Helper()
	for _, e := range list {
		if e.Action == action {
			return e
		}
	}
	t.Fatalf("no %s entry in %v", action, actions(list))
	return nil
}

var operator = tenancy.AuditActor{Kind: tenancy.ActorCLI, Name: "alice"}

func TestAuditEntriesForMemberChanges(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := tenancy.WithAuditActor(context.Background(), tenancy.AuditActor{
		Kind: tenancy.ActorUser, ID: "0d7f6b0e-4d2b-4f59-9a57-3f8e5a0b9c11", Name: "owner@acme.test", Addr: "203.0.113.7"})
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	u := mustCreateUser(t, db, tn.ID, "bob@acme.test")
	svc := postgres.NewMemberService(db)
	if _, err := svc.AddMember(ctx, tn.ID, u.Email, tenancy.RoleMember, platform); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.UpdateMember(ctx, tn.ID, u.Email, tenancy.RoleAdmin, platform); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RemoveMember(ctx, tn.ID, u.Email, platform); err != nil {
		t.Fatal(err)
	}
	list := auditLog(t, db, tn.ID, tenancy.AuditFilter{Action: "member"})
	if got := strings.Join(actions(list), " "); got != "member.add member.update member.remove" {
		t.Fatalf("actions %q", got)
	}
	e := findEntry(t, list, "member.update")
	if e.Summary != "role: member → admin" || e.Target != "bob@acme.test" {
		t.Errorf("summary %q, target %q", e.Summary, e.Target)
	}
	if e.Actor.Kind != tenancy.ActorUser || e.Actor.Name != "owner@acme.test" || e.Actor.Addr != "203.0.113.7" || e.TenantID != tn.ID {
		t.Errorf("actor %+v, tenant %s", e.Actor, e.TenantID)
	}
	if time.Since(e.At) > time.Minute {
		t.Errorf("time %v", e.At)
	}
}

func TestAuditFailedChangeLeavesNoEntry(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := tenancy.WithAuditActor(context.Background(), operator)
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	u := mustCreateUser(t, db, tn.ID, "bob@acme.test")
	svc := postgres.NewMemberService(db)
	if _, err := svc.AddMember(ctx, tn.ID, u.Email, tenancy.RoleOwner, platform); err != nil {
		t.Fatal(err)
	}
	before := len(auditLog(t, db, tn.ID, tenancy.AuditFilter{}))
	// The last owner cannot leave: the change fails, and so does its entry.
	_, err := svc.RemoveMember(ctx, tn.ID, u.Email, platform)
	wantError(t, err, tenancy.ECONFLICT, "owner")
	// An invalid color fails validation; a domain another tenant holds
	// fails in the database.
	_, err = postgres.NewBrandingService(db).SetBrand(ctx, tn.ID, tenancy.BrandUpdate{Primary: ptr("red-ish")})
	if err == nil {
		t.Fatal("bad color accepted")
	}
	other := mustCreateTenant(t, db, "other", tenancy.StrategyRLS)
	doms := postgres.NewDomainService(db, tenancy.DomainRules{BaseDomain: "nself.test"})
	if _, err := doms.AddDomain(ctx, other.ID, "shop.example.com"); err != nil {
		t.Fatal(err)
	}
	_, err = doms.AddDomain(ctx, tn.ID, "shop.example.com")
	wantError(t, err, tenancy.ECONFLICT, "claimed")
	if after := auditLog(t, db, tn.ID, tenancy.AuditFilter{}); len(after) != before {
		t.Fatalf("failed changes left entries: %v", actions(after))
	}
}

// Tenant A's entries are invisible to B: through the service, and through
// SQL as the application role in B's context or in none.
func TestAuditIsolation(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := tenancy.WithAuditActor(context.Background(), operator)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategySchema)
	if _, err := postgres.NewBrandingService(db).SetSetting(ctx, a.ID, "contact.support_email", "help@a.test"); err != nil {
		t.Fatal(err)
	}
	for _, e := range auditLog(t, db, b.ID, tenancy.AuditFilter{}) {
		if e.Action == "setting.set" || e.TenantID != b.ID {
			t.Fatalf("B sees %+v", e)
		}
	}
	if n := len(auditLog(t, db, a.ID, tenancy.AuditFilter{Action: "setting.set"})); n != 1 {
		t.Fatalf("A sees %d setting.set entries, want 1", n)
	}
	asTenant(t, db, b.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM audit.events WHERE tenant_id = $1`, a.ID); n != 0 {
			t.Errorf("B reads %d of A's entries", n)
		}
		if n := count(t, tx, `SELECT count(*) FROM audit.events WHERE 1=1 OR tenant_id <> tenants.current_tenant_id()`); n != count(t, tx, `SELECT count(*) FROM audit.events WHERE tenant_id = $1`, b.ID) {
			t.Errorf("a query escaping the filter reads other tenants' entries")
		}
		// Writing into A's log from B is refused; so is changing or
		// removing any entry.
		mustRefuse(t, tx, `INSERT INTO audit.events (tenant_id, actor_kind, action) VALUES ($1, 'cli', 'tenant.create')`, a.ID)
		mustRefuse(t, tx, `UPDATE audit.events SET summary = 'x'`)
		mustRefuse(t, tx, `DELETE FROM audit.events`)
		mustRefuse(t, tx, `SELECT count(*) FROM audit.platform_events`)
	})
	asTenant(t, db, "", func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM audit.events`); n != 0 {
			t.Errorf("%d entries visible with no tenant set", n)
		}
	})
	// The owner, on the platform path, cannot change an entry either.
	if _, err := postgres.NewOrgService(db).CreateOrg(ctx, "Holding", ""); err != nil {
		t.Fatal(err)
	}
	_, err := db.Admin.Exec(context.Background(), `UPDATE audit.platform_events SET summary = 'x'`)
	if tenancy.ErrorCode(postgres.PostgresTranslate(err)) != tenancy.EFORBIDDEN {
		t.Fatalf("owner changed an entry: %v", err)
	}
}

func TestAuditRLSCatalog(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	findings, err := db.AuditRLS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		if strings.HasPrefix(f.Table, "audit.") {
			t.Errorf("%s: %s", f.Table, f.Problem)
		}
	}
}

func TestAuditFilters(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	svc := postgres.NewAuditService(db)
	alice := tenancy.WithAuditActor(context.Background(), operator)
	bob := tenancy.WithAuditActor(context.Background(), tenancy.AuditActor{Kind: tenancy.ActorUser, ID: "5b0c7d56-8a43-4d0c-9f40-0b8d8e7f3a21", Name: "bob@acme.test"})
	br := postgres.NewBrandingService(db)
	if _, err := br.SetSetting(alice, tn.ID, "contact.support_email", "a@acme.test"); err != nil {
		t.Fatal(err)
	}
	mid := time.Now()
	time.Sleep(10 * time.Millisecond)
	if _, err := br.SetSetting(bob, tn.ID, "contact.support_email", "b@acme.test"); err != nil {
		t.Fatal(err)
	}
	if err := br.DeleteSetting(bob, tn.ID, "contact.support_email"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		f    tenancy.AuditFilter
		want string
	}{
		{"entity", tenancy.AuditFilter{Action: "setting"}, "setting.set setting.set setting.delete"},
		{"action", tenancy.AuditFilter{Action: "setting.delete"}, "setting.delete"},
		{"no such action", tenancy.AuditFilter{Action: "sett"}, ""},
		{"actor by name", tenancy.AuditFilter{Actor: "BOB@"}, "setting.set setting.delete"},
		{"actor by kind", tenancy.AuditFilter{Actor: "cli:"}, "setting.set"},
		{"actor by id", tenancy.AuditFilter{Actor: "5b0c7d56"}, "setting.set setting.delete"},
		{"actor like is literal", tenancy.AuditFilter{Actor: "%"}, ""},
		{"since", tenancy.AuditFilter{Action: "setting", Since: mid}, "setting.set setting.delete"},
		{"until", tenancy.AuditFilter{Action: "setting", Until: mid}, "setting.set"},
		{"limit", tenancy.AuditFilter{Action: "setting", Limit: 1}, "setting.delete"},
		{"offset", tenancy.AuditFilter{Action: "setting", Limit: 1, Offset: 2}, "setting.set"},
	}
	for _, c := range cases {
		list, total, err := svc.ListAudit(context.Background(), tn.ID, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := strings.Join(actions(list), " "); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if c.f.Limit == 0 && total != len(list) {
			t.Errorf("%s: total %d for %d entries", c.name, total, len(list))
		}
		if c.f.Limit == 1 && total != 3 {
			t.Errorf("%s: total %d, want 3", c.name, total)
		}
	}
	e := findEntry(t, auditLog(t, db, tn.ID, tenancy.AuditFilter{Action: "setting.delete"}), "setting.delete")
	if e.Summary != "contact.support_email: b@acme.test → (none)" {
		t.Errorf("summary %q", e.Summary)
	}
	for _, f := range []tenancy.AuditFilter{{Action: "Member"}, {Action: "a..b"}, {Action: "x'; --"}, {Limit: -1},
		{Since: mid, Until: mid.Add(-time.Hour)}} {
		if _, _, err := svc.ListAudit(context.Background(), tn.ID, f); tenancy.ErrorCode(err) != tenancy.EINVALID {
			t.Errorf("filter %+v: %v", f, err)
		}
	}
}

func TestAuditSummariesHoldNoSecrets(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := tenancy.WithAuditActor(context.Background(), operator)
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	if _, _, err := postgres.NewUserService(db).CreateUser(ctx, tn.ID, tenancy.NewUser{Email: "carol@acme.test", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := postgres.NewAPIKeyService(db).CreateAPIKey(ctx, tn.ID, "deploy", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.NewBrandingService(db).SetSetting(ctx, tn.ID, "custom.smtp_password", "hunter2hunter2"); err != nil {
		t.Fatal(err)
	}
	for _, e := range auditLog(t, db, tn.ID, tenancy.AuditFilter{}) {
		text := e.Target + " " + e.Summary
		for _, s := range []string{"correct horse", secret, secret[len(secret)-20:], "hunter2"} {
			if strings.Contains(text, s) {
				t.Errorf("%s entry holds a secret: %q", e.Action, text)
			}
		}
	}
	e := findEntry(t, auditLog(t, db, tn.ID, tenancy.AuditFilter{}), "setting.set")
	if e.Summary != "custom.smtp_password: (none) → (hidden)" {
		t.Errorf("summary %q", e.Summary)
	}
}

// A deleted tenant keeps its log, the deletion included; a purged one
// leaves its fact in the platform's log.
func TestAuditTenantLifecycle(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := tenancy.WithAuditActor(context.Background(), operator)
	svc := postgres.NewTenantService(db, tenancy.ModeHybrid)
	c, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme", Owner: "owner@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	id := c.Tenant.ID
	if _, err := svc.SetTenantStatus(ctx, "acme", tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetTenantStatus(ctx, "acme", tenancy.StatusActive); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	list, _, err := postgres.NewAuditService(db).ListAllAudit(context.Background(), tenancy.AuditFilter{TenantID: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(actions(list), " "); got != "tenant.create tenant.suspend tenant.activate tenant.delete" {
		t.Fatalf("actions %q", got)
	}
	cr := findEntry(t, list, "tenant.create")
	if cr.Summary != "name: Acme, plan: free, strategy: rls, owner: owner@acme.test" || cr.Actor.String() != "cli:alice" || cr.TenantSlug != "acme" {
		t.Errorf("create entry %+v", cr)
	}
	if s := findEntry(t, list, "tenant.suspend").Summary; s != "status: active → suspended" {
		t.Errorf("suspend summary %q", s)
	}

	tmp := mustCreateTenant(t, db, "scratch", tenancy.StrategyRLS)
	if err := svc.PurgeTenant(ctx, tmp.ID); err != nil {
		t.Fatal(err)
	}
	all, _, err := postgres.NewAuditService(db).ListAllAudit(context.Background(), tenancy.AuditFilter{Action: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	p := findEntry(t, all, "tenant.purge")
	if p.TenantID != "" || p.Target != "scratch" {
		t.Errorf("purge entry %+v", p)
	}
	for _, e := range all {
		if e.TenantID == tmp.ID {
			t.Errorf("purged tenant's entry left: %+v", e)
		}
	}
}

// Every service records its changes; one pass through each.
func TestAuditCoverage(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := tenancy.WithAuditActor(context.Background(), operator)
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	owner := mustCreateUser(t, db, tn.ID, "owner@acme.test")
	if _, err := postgres.NewMemberService(db).AddMember(ctx, tn.ID, owner.Email, tenancy.RoleOwner, platform); err != nil {
		t.Fatal(err)
	}
	br := postgres.NewBrandingService(db)
	if _, err := br.SetBrand(ctx, tn.ID, tenancy.BrandUpdate{Primary: ptr("#112233")}); err != nil {
		t.Fatal(err)
	}
	if _, err := br.SetBrand(ctx, tn.ID, tenancy.BrandUpdate{Primary: ptr("#445566")}); err != nil {
		t.Fatal(err)
	}
	if _, err := br.CreateTheme(ctx, tn.ID, tenancy.NewTheme{Name: "Dark", Primary: "#000000", Secondary: "#111111", Background: "#222222", Text: "#ffffff"}); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ActivateTheme(ctx, tn.ID, "dark"); err != nil {
		t.Fatal(err)
	}
	keys := postgres.NewAPIKeyService(db)
	k, _, err := keys.CreateAPIKey(ctx, tn.ID, "deploy", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.RevokeAPIKey(ctx, tn.ID, k.Prefix); err != nil {
		t.Fatal(err)
	}
	inv := postgres.NewInvitationService(db)
	i, secret, err := inv.Invite(ctx, tn.ID, tenancy.NewInvitation{Email: "dan@acme.test", Role: tenancy.RoleMember}, platform)
	if err != nil {
		t.Fatal(err)
	}
	if _, secret, err = inv.Resend(ctx, tn.ID, i.ID, platform); err != nil {
		t.Fatal(err)
	}
	if _, _, err := inv.Accept(ctx, tn.ID, secret, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	tpl := postgres.NewEmailTemplateService(db)
	if _, err := tpl.Customize(ctx, tn.ID, "welcome", "Hello {{TENANT_NAME}}", "<p>Hi</p>", "", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Reset(ctx, tn.ID, "welcome", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	auth := postgres.NewAuthService(db)
	token, _, err := auth.SignIn(ctx, tn.ID, "dan@acme.test", "a long enough password", tenancy.SessionMeta{ClientIP: "198.51.100.4"})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.SignOut(ctx, tn.ID, token); err != nil {
		t.Fatal(err)
	}
	orgs := postgres.NewOrgService(db)
	if _, err := orgs.CreateOrg(ctx, "Holding", "holding"); err != nil {
		t.Fatal(err)
	}
	if err := orgs.AddOrgTenant(ctx, "holding", "acme"); err != nil {
		t.Fatal(err)
	}
	if err := orgs.RemoveOrgTenant(ctx, "holding", "acme"); err != nil {
		t.Fatal(err)
	}

	list := auditLog(t, db, tn.ID, tenancy.AuditFilter{})
	want := "tenant.create user.create member.add branding.update branding.update theme.create theme.activate " +
		"api_key.create api_key.revoke invitation.create invitation.resend invitation.accept " +
		"email_template.customize email_template.reset user.sign_in user.sign_out org.add_tenant org.remove_tenant"
	if got := strings.Join(actions(list), " "); got != want {
		t.Fatalf("actions\n got %s\nwant %s", got, want)
	}
	if s := list[len(list)-5].Summary; s != "primary color: #112233 → #445566" {
		t.Errorf("brand summary %q", s)
	}
	signIn := findEntry(t, list, "user.sign_in")
	if signIn.Actor.Name != "dan@acme.test" || signIn.Actor.Kind != tenancy.ActorUser || signIn.Actor.Addr != "198.51.100.4" {
		t.Errorf("sign-in actor %+v", signIn.Actor)
	}
	if a := findEntry(t, list, "invitation.accept"); a.Actor.Name != "dan@acme.test" || a.Summary != "role: (none) → member" {
		t.Errorf("accept entry %+v", a)
	}
	all, _, err := postgres.NewAuditService(db).ListAllAudit(context.Background(), tenancy.AuditFilter{Action: "org.create"})
	if err != nil || len(all) != 1 || all[0].TenantID != "" || all[0].Target != "holding" {
		t.Fatalf("platform log: %v %+v", err, all)
	}
}

func TestAuditRecord(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	svc := postgres.NewAuditService(db)
	ctx := tenancy.WithAuditActor(context.Background(), tenancy.AuditActor{Kind: tenancy.ActorSystem, Name: "stripe webhook"})
	if err := svc.Record(ctx, tenancy.AuditEntry{TenantID: tn.ID, Action: "billing.plan_change", Target: "acme", Summary: tenancy.Changed("plan", "free", "pro")}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Record(ctx, tenancy.AuditEntry{Action: "nodot"}); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Fatalf("bad action: %v", err)
	}
	e := findEntry(t, auditLog(t, db, tn.ID, tenancy.AuditFilter{Action: "billing"}), "billing.plan_change")
	if e.Summary != "plan: free → pro" || e.Actor.Name != "stripe webhook" {
		t.Errorf("entry %+v", e)
	}
	// The migrations that made this database are in the platform's log.
	all, _, err := svc.ListAllAudit(context.Background(), tenancy.AuditFilter{Action: "db.migrate"})
	if err != nil || len(all) != 1 || !strings.Contains(all[0].Summary, "migration(s) applied") {
		t.Errorf("db.migrate: %v %+v", err, all)
	}
}

// Domain changes are recorded, those of the periodic re-check as the
// system's and only when the state changes; a stale claim given up says so
// in its holder's log.
func TestAuditDomainEntries(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := tenancy.WithAuditActor(context.Background(), operator)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	dns := dnstest.NewServer(t)
	v := dnsverify.New(dns.Addr)
	svc := postgres.NewDomainService(db, tenancy.DomainRules{BaseDomain: "nself.test", ToASCII: domainname.ToASCII})
	d, err := svc.AddDomain(ctx, a.ID, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("_nself-verify.a.example", "nself-verify="+d.Token)
	if _, _, err := svc.VerifyDomain(ctx, a.ID, "a.example", v); err != nil {
		t.Fatal(err)
	}
	p, err := svc.AddDomain(ctx, a.ID, "p.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("_nself-verify.p.example", "nself-verify="+p.Token)
	if _, _, err := svc.VerifyDomain(ctx, a.ID, "p.example", v); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetPrimaryDomain(ctx, a.ID, "p.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecheckDue(ctx, v, time.Now().Add(time.Minute), 10); err != nil {
		t.Fatal(err)
	}
	dns.ClearTXT("_nself-verify.a.example")
	execInTenant(t, db, a.ID, `UPDATE tenants.tenant_domains SET verified_at = now() - interval '4 days', last_seen_valid_at = now() - interval '4 days' WHERE domain = 'a.example'`)
	if _, err := svc.RecheckDue(ctx, v, time.Now().Add(time.Minute), 10); err != nil {
		t.Fatal(err)
	}
	list := auditLog(t, db, a.ID, tenancy.AuditFilter{Action: "domain"})
	if got := strings.Join(actions(list), " "); got != "domain.add domain.verify domain.add domain.verify domain.primary domain.recheck" {
		t.Fatalf("actions %q", got)
	}
	if e := findEntry(t, list, "domain.verify"); e.Summary != "state: pending → verified" || e.Actor.String() != "cli:alice" {
		t.Errorf("verify entry %+v", e)
	}
	if e := findEntry(t, list, "domain.primary"); e.Summary != "primary domain: (none) → p.example" {
		t.Errorf("primary entry %+v", e)
	}
	re := findEntry(t, list, "domain.recheck")
	if !strings.HasPrefix(re.Summary, "state: verified → failed, failure: ") || re.Actor.Kind != tenancy.ActorSystem || re.Actor.Name != "domain recheck" {
		t.Errorf("recheck entry %+v", re)
	}
	if err := svc.RemoveDomain(ctx, a.ID, "a.example"); err != nil {
		t.Fatal(err)
	}
	if e := findEntry(t, auditLog(t, db, a.ID, tenancy.AuditFilter{Action: "domain.remove"}), "domain.remove"); e.Summary != "state: failed" {
		t.Errorf("remove entry %+v", e)
	}

	if _, err := svc.AddDomain(ctx, a.ID, "squat.example"); err != nil {
		t.Fatal(err)
	}
	execInTenant(t, db, a.ID, `UPDATE tenants.tenant_domains SET created_at = now() - interval '8 days' WHERE domain = 'squat.example'`)
	if _, err := svc.AddDomain(ctx, b.ID, "squat.example"); err != nil {
		t.Fatal(err)
	}
	rel := findEntry(t, auditLog(t, db, a.ID, tenancy.AuditFilter{Action: "domain.release"}), "domain.release")
	if rel.Target != "squat.example" || rel.Actor.Kind != tenancy.ActorSystem || strings.Contains(rel.Summary, "tenant-b") {
		t.Errorf("release entry %+v", rel)
	}
	findEntry(t, auditLog(t, db, b.ID, tenancy.AuditFilter{Action: "domain.add"}), "domain.add")
}
