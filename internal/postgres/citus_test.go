//go:build citus

// Tests that need the Citus cluster (scripts/services.sh start citus); run
// by `make test-citus`, which builds with the citus tag.

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	ptotp "github.com/pquerna/otp/totp"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/secretbox"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/internal/totp"
)

// shardOf returns the worker port and the shard table name that hold a
// tenant's rows of table.
func shardOf(t *testing.T, db *postgres.DB, table, tenantID string) (port int, shard string) {
	t.Helper()
	err := db.Admin.QueryRow(context.Background(), `
		SELECT p.nodeport, shard_name($1::regclass, p.shardid)
		FROM pg_dist_shard_placement p
		WHERE p.shardid = get_shard_id_for_distribution_column($1::regclass, $2::uuid)`, table, tenantID).Scan(&port, &shard)
	if err != nil {
		t.Fatalf("shard of %s for %s: %v", table, tenantID, err)
	}
	return port, shard
}

// TestCitusTenantsOnWorkersIsolated places two tenants on different
// workers and checks, on each worker directly, as the application role,
// that the shard shows nothing without a tenant context and only the
// context's tenant with one.
func TestCitusTenantsOnWorkersIsolated(t *testing.T) {
	ctx := context.Background()
	urls := pgtest.NewURLs(t)
	db, err := postgres.Open(ctx, urls.App, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	// Tenants land on workers by the hash of their id: make them until
	// two workers hold one each.
	byPort := map[int]*tenancy.Tenant{}
	for i := 0; len(byPort) < 2; i++ {
		if i == 20 {
			t.Fatal("20 tenants all on one worker")
		}
		tn := mustCreateTenant(t, db, "spread-"+string(rune('a'+i)), tenancy.StrategyRLS)
		port, _ := shardOf(t, db, "auth.users", tn.ID)
		if byPort[port] == nil {
			byPort[port] = tn
		}
	}
	var tenants []*tenancy.Tenant
	for _, tn := range byPort {
		tenants = append(tenants, tn)
		mustCreateUser(t, db, tn.ID, "ann@"+tn.Slug+".example")
	}

	workers := pgtest.CitusWorkers(urls)
	for _, tn := range tenants {
		port, shard := shardOf(t, db, "auth.users", tn.ID)
		var worker string
		for _, w := range workers {
			if strings.Contains(w, ":"+itoa(port)+"/") {
				worker = w
			}
		}
		if worker == "" {
			t.Fatalf("no worker URL for port %d in %v", port, workers)
		}
		other := tenants[0]
		if other.ID == tn.ID {
			other = tenants[1]
		}
		conn, err := pgx.Connect(ctx, pgtest.CitusWorkerURL(urls.App, worker))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		countIn := func(tenantID string) int {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if tenantID != "" {
				if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1)`, tenantID); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+shard).Scan(&n); err != nil {
				t.Fatalf("read shard %s on worker %d: %v", shard, port, err)
			}
			return n
		}
		if n := countIn(""); n != 0 {
			t.Errorf("worker %d, shard %s: %d rows with no tenant context", port, shard, n)
		}
		if n := countIn(other.ID); n != 0 {
			t.Errorf("worker %d, shard %s: %d rows in the context of %s, which lives elsewhere", port, shard, n, other.Slug)
		}
		if n := countIn(tn.ID); n != 1 {
			t.Errorf("worker %d, shard %s: %d rows in %s's own context, want 1", port, shard, n, tn.Slug)
		}
		// Writing another tenant's row into the shard is refused there too.
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1)`, tn.ID); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+shard+` (tenant_id, email) VALUES ($1, 'mallory@example.test')`, other.ID)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != "42501" {
			t.Errorf("worker %d: insert of %s's row in %s's context: want 42501, got %v", port, other.Slug, tn.Slug, err)
		}
		tx.Rollback(ctx)
	}
}

// routedDB opens a test database whose application role's statements (and,
// with admin, the owner's too: the platform paths that work on one
// tenant) fail when Citus would run them on more than one shard.
func routedDB(t *testing.T, admin bool) *postgres.DB {
	t.Helper()
	urls := pgtest.NewURLs(t)
	routed := func(u string) string {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		return u + sep + "citus.multi_task_query_log_level=error"
	}
	adminURL := urls.Admin
	if admin {
		adminURL = routed(adminURL)
	}
	db, err := postgres.Open(context.Background(), routed(urls.App), adminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func itoa(n int) string {
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestCitusTenantStatementsRouteToOneShard runs the services' tenant-scoped
// work with the application role's multi-shard queries turned into errors
// (citus.multi_task_query_log_level = error): any statement that fans out
// to more than one shard fails the operation that sent it.
func TestCitusTenantStatementsRouteToOneShard(t *testing.T) {
	ctx := context.Background()
	db := routedDB(t, false)
	a := mustCreateTenant(t, db, "routed", tenancy.StrategyRLS)
	mustCreateTenant(t, db, "neighbour", tenancy.StrategyRLS)

	// The check itself: a read that leans on the policy alone fans out.
	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		_, err := tx.Exec(ctx, `SELECT count(*) FROM auth.users`)
		if err == nil || !strings.Contains(err.Error(), "multi-task") {
			t.Fatalf("a query without tenant_id = $1 ran without the multi-shard error: %v", err)
		}
	})

	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	users := postgres.NewUserService(db)
	owner, _, err := users.CreateUser(ctx, a.ID, tenancy.NewUser{Email: "owner@routed.example", Name: "Owner", Password: "a good long password"})
	step("create user", err)
	_, _, err = users.ListUsers(ctx, a.ID, tenancy.UserFilter{})
	step("list users", err)

	members := postgres.NewMemberService(db)
	_, err = members.AddMember(ctx, a.ID, owner.ID, tenancy.RoleOwner, tenancy.PlatformActor())
	step("add member", err)
	_, err = members.ListMembers(ctx, a.ID)
	step("list members", err)
	bob, _, err := users.CreateUser(ctx, a.ID, tenancy.NewUser{Email: "bob@routed.example", Name: "Bob"})
	step("create user", err)
	_, err = members.AddMember(ctx, a.ID, bob.ID, tenancy.RoleMember, tenancy.PlatformActor())
	step("add member", err)
	_, _, err = members.UpdateMember(ctx, a.ID, bob.ID, tenancy.RoleAdmin, tenancy.PlatformActor())
	step("update member", err)
	_, err = members.RemoveMember(ctx, a.ID, bob.ID, tenancy.PlatformActor())
	step("remove member", err)

	auth := postgres.NewAuthService(db)
	token, _, err := auth.SignIn(ctx, a.ID, "owner@routed.example", "a good long password", tenancy.SessionMeta{UserAgent: "test"})
	step("sign in", err)
	_, err = auth.Identify(ctx, a.ID, token)
	step("identify session", err)
	step("sign out", auth.SignOut(ctx, a.ID, token))
	_, reset, err := auth.RequestPasswordReset(ctx, a.ID, "owner@routed.example")
	step("request reset", err)
	_, err = auth.ResetPassword(ctx, a.ID, reset, "another long password")
	step("reset password", err)

	brand := postgres.NewBrandingService(db)
	color := "#123456"
	_, err = brand.SetBrand(ctx, a.ID, tenancy.BrandUpdate{Primary: &color})
	step("set brand", err)
	_, err = brand.SetSetting(ctx, a.ID, "branding.company_name", "Routed")
	step("set setting", err)
	_, err = brand.ListSettings(ctx, a.ID)
	step("list settings", err)
	th, err := brand.CreateTheme(ctx, a.ID, tenancy.NewTheme{Name: "Light", Primary: "#112233", Secondary: "#445566", Background: "#ffffff", Text: "#000000"})
	step("create theme", err)
	_, err = brand.ActivateTheme(ctx, a.ID, th.ID)
	step("activate theme", err)
	_, err = brand.Look(ctx, a.ID)
	step("look", err)

	domains := postgres.NewDomainService(db, tenancy.DomainRules{})
	_, err = domains.AddDomain(ctx, a.ID, "portal.routed.example")
	step("add domain", err)
	_, _, err = domains.ListDomains(ctx, a.ID, tenancy.DomainFilter{})
	step("list domains", err)
	step("remove domain", domains.RemoveDomain(ctx, a.ID, "portal.routed.example"))

	keys := postgres.NewAPIKeyService(db)
	k, _, err := keys.CreateAPIKey(ctx, a.ID, "ci", owner.ID)
	step("create API key", err)
	_, err = keys.ListAPIKeys(ctx, a.ID)
	step("list API keys", err)
	_, err = keys.RevokeAPIKey(ctx, a.ID, k.Prefix)
	step("revoke API key", err)

	inv := postgres.NewInvitationService(db)
	_, secret, err := inv.Invite(ctx, a.ID, tenancy.NewInvitation{Email: "carol@routed.example", Role: tenancy.RoleMember, InvitedBy: owner.ID}, tenancy.PlatformActor())
	step("invite", err)
	_, err = inv.ListPending(ctx, a.ID)
	step("list invitations", err)
	_, _, err = inv.Accept(ctx, a.ID, secret, "carol's long password")
	step("accept invitation", err)

	tpl := postgres.NewEmailTemplateService(db)
	_, err = tpl.Customize(ctx, a.ID, "welcome", "Hello", "<p>Hi</p>", "Hi", tenancy.PlatformActor())
	step("customize email", err)
	_, err = tpl.List(ctx, a.ID)
	step("list emails", err)

	_, _, err = postgres.NewAuditService(db).ListAudit(ctx, a.ID, tenancy.AuditFilter{})
	step("list audit", err)

	meter := postgres.NewMeter(db, slog.New(slog.DiscardHandler))
	_, err = meter.Admit(ctx, a.ID, 1000)
	step("admit a /v1 request", err)
	meter.AddCompute(a.ID, time.Second)
	step("flush usage", meter.Flush(ctx))
}

// foundVerifier finds every domain's verification record.
type foundVerifier struct{}

func (foundVerifier) CheckDomain(_ context.Context, domain, _ string) tenancy.VerifyResult {
	return tenancy.VerifyResult{Domain: domain, Lookups: []tenancy.TXTLookup{{Name: "_nself-verify." + domain, Outcome: tenancy.TXTFound}}}
}

// TestCitusFeatureStatementsRouteToOneShard is the test above for the
// features added since: exports, logos, billing (the subscription,
// payments and what a Stripe webhook writes of a tenant), single sign-on
// settings and sign-ins, two-factor, scoped keys, the credential cache's
// writes and notices, and the routing of a custom domain. The owner's
// statements on these paths concern one tenant too, and are held to the
// same rule.
func TestCitusFeatureStatementsRouteToOneShard(t *testing.T) {
	ctx := context.Background()
	db := routedDB(t, true)
	created, err := postgres.NewTenantService(db, tenancy.ModeHybrid).CreateTenant(ctx,
		tenancy.NewTenant{Name: "Routed", Slug: "routed", Owner: "owner@routed.example", OwnerPassword: "a good long password"})
	if err != nil {
		t.Fatal(err)
	}
	a := created.Tenant
	mustCreateTenant(t, db, "neighbour", tenancy.StrategyRLS)
	owner := created.Owner
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Scoped keys, verified through the credential cache, whose uses are
	// written in a batch and whose revocation is announced.
	creds := listening(t, db)
	keys := postgres.NewAPIKeyService(db).Cached(creds)
	expires := time.Now().Add(time.Hour)
	k, secret, err := keys.CreateScopedAPIKey(ctx, a.ID, "read-only", owner.ID, tenancy.APIKeyScope{ReadOnly: true, API: true, ExpiresAt: &expires})
	step("create scoped key", err)
	_, err = keys.AuthenticateAPIKey(ctx, secret, "192.0.2.1")
	step("authenticate scoped key", err)
	creds.AgeUses(4 * time.Minute)
	_, err = keys.AuthenticateAPIKey(ctx, secret, "192.0.2.2")
	step("authenticate from memory", err)
	creds.WriteUses(ctx)
	if list, err := keys.ListAPIKeys(ctx, a.ID); err != nil || len(list) != 1 || list[0].LastUsedAt == nil {
		t.Errorf("the key's use was not written: %+v %v", list, err)
	}
	_, err = keys.RevokeAPIKey(ctx, a.ID, k.Prefix)
	step("revoke scoped key", err)

	// Two-factor: enrol, sign in with a code, require it, turn it off.
	sealer, err := totp.NewSealer([]byte("a test key for sealing totp secrets!"))
	if err != nil {
		t.Fatal(err)
	}
	mfa := postgres.NewTwoFactorService(db, totp.TOTP{}, sealer)
	auth := postgres.NewAuthService(db).Cached(creds)
	token, id, err := auth.SignIn(ctx, a.ID, "owner@routed.example", "a good long password", tenancy.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = auth.Identify(ctx, a.ID, token)
	step("identify", err)
	_, err = mfa.Status(ctx, a.ID, id)
	step("two-factor status", err)
	enrolment, err := mfa.BeginEnrolment(ctx, a.ID, id.User, a.Name)
	step("begin enrolment", err)
	now := time.Now()
	code := func(at time.Time) string {
		c, err := ptotp.GenerateCode(enrolment.Secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	recovery, token, err := mfa.ConfirmEnrolment(ctx, a.ID, owner.ID, code(now), token)
	step("confirm enrolment", err)
	step("require two-factor", mfa.SetPolicy(ctx, a.ID, id, true))
	pending, id, err := auth.SignIn(ctx, a.ID, "owner@routed.example", "a good long password", tenancy.SessionMeta{})
	step("sign in, second factor to come", err)
	_, err = mfa.CompleteSignIn(ctx, a.ID, pending, code(now.Add(30*time.Second)))
	step("complete sign-in", err)
	step("no longer require two-factor", mfa.SetPolicy(ctx, a.ID, id, false))
	if len(recovery) == 0 {
		recovery = []string{"none"}
	}
	step("turn two-factor off with a recovery code", mfa.Disable(ctx, a.ID, id, recovery[0]))

	// Sessions: listed, ended, and by a password change.
	sessions := postgres.NewSessionService(db).Cached(creds)
	_, err = sessions.ListSessions(ctx, a.ID, id)
	step("list sessions", err)
	_, err = sessions.EndOtherSessions(ctx, a.ID, id)
	step("end other sessions", err)
	_, err = sessions.ChangePassword(ctx, a.ID, id, "a good long password", "another long password")
	step("change password", err)

	// Single sign-on: settings, a first sign-in (a new account), a second,
	// requiring it, removing it.
	ssoSealer, err := secretbox.New([]byte("a test key for sealing sso secrets"), "sso")
	if err != nil {
		t.Fatal(err)
	}
	sso := postgres.NewSSOService(db, ssoSealer)
	cfg := &tenancy.SSOConfig{Issuer: "https://id.routed.example", ClientID: "portal", ClientSecret: "s3cret",
		DisplayName: "Routed ID", Domains: []string{"routed.example"}, DefaultRole: tenancy.RoleMember}
	_, err = sso.SaveSSOConfig(ctx, a.ID, cfg)
	step("save single sign-on", err)
	_, err = sso.SSOConfig(ctx, a.ID)
	step("read single sign-on", err)
	who := tenancy.SSOIdentity{Issuer: cfg.Issuer, Subject: "dana-1", Email: "dana@routed.example", EmailVerified: true, Name: "Dana"}
	_, _, _, err = sso.SSOSignIn(ctx, a.ID, who, tenancy.SessionMeta{UserAgent: "test"})
	step("first single sign-on", err)
	_, _, _, err = sso.SSOSignIn(ctx, a.ID, who, tenancy.SessionMeta{UserAgent: "test"})
	step("single sign-on again", err)
	step("record a single sign-on event", sso.RecordSSOEvent(ctx, a.ID, "sso.sign_in_fail", "dana@routed.example", "test"))
	cfg.ClientSecret, cfg.RequireSSO = "", true
	_, err = sso.SaveSSOConfig(ctx, a.ID, cfg)
	step("require single sign-on", err)
	_, err = sessions.EndSessionsForRequiredSSO(ctx, a.ID)
	step("end sessions for single sign-on", err)
	step("remove single sign-on", sso.DeleteSSOConfig(ctx, a.ID))

	// Logos.
	store := blobtest.New(t)
	logos := postgres.NewLogoService(db, store)
	_, err = logos.UploadLogo(ctx, a.ID, tenancy.LogoMain, testPNG(t, 16, 16))
	step("upload logo", err)
	_, err = logos.ListLogos(ctx, a.ID)
	step("list logos", err)
	_, _, err = logos.GetLogo(ctx, a.ID, tenancy.LogoMain)
	step("get logo", err)
	_, err = logos.RemoveLogo(ctx, a.ID, tenancy.LogoMain)
	step("remove logo", err)

	// Billing: a customer, Stripe's events for the tenant (checkout,
	// subscription, an invoice paid and one failed), and what the portal
	// reads.
	billing := postgres.NewBillingService(db)
	_, err = billing.SetCustomer(ctx, a.ID, "cus_routed")
	step("set customer", err)
	_, err = billing.BillingTenant(ctx, a.ID)
	step("billing tenant", err)
	plans := postgres.NewPlanService(db)
	price := "price_routed_pro"
	_, err = plans.UpdatePlan(ctx, tenancy.PlanInput{Name: "pro", StripePriceID: &price})
	step("sell a plan through Stripe", err)
	sub := tenancy.SubscriptionState{CustomerID: "cus_routed", SubscriptionID: "sub_routed", Status: "active", PriceID: price,
		PeriodEnd: time.Now().Add(30 * 24 * time.Hour)}
	for i, ev := range []*tenancy.BillingEvent{
		{Type: tenancy.EventCheckoutCompleted, TenantHint: a.ID, Subscription: sub},
		{Type: tenancy.EventSubscriptionUpdated, Subscription: sub},
		{Type: tenancy.EventInvoicePaid, Subscription: sub, Payment: &tenancy.Payment{InvoiceID: "in_1", Status: "paid", AmountCents: 9900, Currency: "usd", OccurredAt: time.Now()}},
		{Type: tenancy.EventInvoicePaymentFailed, Subscription: sub, Payment: &tenancy.Payment{InvoiceID: "in_2", Status: "failed", AmountCents: 9900, Currency: "usd", OccurredAt: time.Now()}},
	} {
		ev.ID, ev.Created, ev.Payload = "evt_routed_"+itoa(i+1), time.Now().Add(time.Duration(i)*time.Second), []byte(`{}`)
		out, err := billing.ApplyEvent(ctx, ev)
		step("Stripe event "+ev.Type, err)
		if err == nil && out.Status != tenancy.EventStatusProcessed {
			t.Errorf("Stripe event %s: %s (%s)", ev.Type, out.Status, out.Result)
		}
	}
	_, err = billing.ReconcileSubscription(ctx, a.ID, sub, time.Now())
	step("reconcile subscription", err)
	_, err = billing.ListPayments(ctx, a.ID, 10)
	step("list payments", err)
	_, err = billing.TenantUsage(ctx, a.ID, time.Now())
	step("tenant usage", err)
	step("record storage", billing.RecordStorage(ctx, a.ID, 1<<20, time.Now()))
	_, err = billing.StorageBytes(ctx, a.ID)
	step("storage bytes", err)

	// A custom domain, verified, and the request routing that finds its
	// tenant: the claim, then the tenant's own row.
	domains := postgres.NewDomainService(db, domainRules)
	_, err = domains.AddDomain(ctx, a.ID, "portal.routed.example")
	step("add domain", err)
	_, _, err = domains.VerifyDomain(ctx, a.ID, "portal.routed.example", foundVerifier{})
	step("verify domain", err)
	if got, err := domains.LookupVerifiedDomain(ctx, "portal.routed.example"); err != nil || got != a.ID {
		t.Errorf("route a verified domain: %q %v", got, err)
	}
	if got, err := domains.LookupClaimedDomain(ctx, "portal.routed.example"); err != nil || got != a.ID {
		t.Errorf("route a claimed domain: %q %v", got, err)
	}
	if _, err := domains.LookupVerifiedDomain(ctx, "nobody.routed.example"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("route an unknown domain: %v", err)
	}

	// Exports: the job, its archive (every tenant table, read in one
	// snapshot), and the download.
	exports := postgres.NewExportService(db, store, tenancy.ModeHybrid)
	exports.TempDir = t.TempDir()
	// Not started: Start also fails the jobs of stopped processes in
	// every tenant, a platform-wide read.
	jobs := postgres.NewExportJobService(exports)
	t.Cleanup(jobs.Close)
	job, err := jobs.StartExport(ctx, a.ID, owner.ID)
	step("start export", err)
	if err == nil {
		jobs.Wait()
		job, err = jobs.GetExport(ctx, a.ID, owner.ID, job.ID)
		step("get export", err)
		if err == nil && job.State != tenancy.ExportReady {
			t.Errorf("export: %s %s", job.State, job.Failure)
		}
		_, err = jobs.LatestExport(ctx, a.ID, owner.ID)
		step("latest export", err)
		if _, r, err := jobs.OpenExport(ctx, a.ID, owner.ID, job.ID); err != nil {
			step("open export", err)
		} else {
			r.Close()
		}
	}
}

// onTwoWorkers makes tenants until two of them live on different workers.
func onTwoWorkers(t *testing.T, db *postgres.DB, prefix string) (a, b *tenancy.Tenant) {
	t.Helper()
	byPort := map[int]*tenancy.Tenant{}
	for i := 0; len(byPort) < 2; i++ {
		if i == 20 {
			t.Fatal("20 tenants all on one worker")
		}
		tn := mustCreateTenant(t, db, prefix+"-"+string(rune('a'+i)), tenancy.StrategyRLS)
		port, _ := shardOf(t, db, "auth.api_keys", tn.ID)
		if byPort[port] == nil {
			byPort[port] = tn
		}
	}
	var two []*tenancy.Tenant
	for _, tn := range byPort {
		two = append(two, tn)
	}
	return two[0], two[1]
}

// TestCitusCredentialNoticeInTwoPhaseCommit: a transaction that revokes
// keys of tenants on two workers (committed by Citus in two phases, the
// workers' parts prepared) and announces them on the coordinator commits,
// and the credential cache there hears both. A NOTIFY sent on a worker
// would have made its part impossible to prepare.
func TestCitusCredentialNoticeInTwoPhaseCommit(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t)
	a, b := onTwoWorkers(t, db, "twophase")
	c := listening(t, db)
	keys := postgres.NewAPIKeyService(db).Cached(c)
	var ids, secrets []string
	for _, tn := range []*tenancy.Tenant{a, b} {
		k, secret, err := keys.CreateAPIKey(ctx, tn.ID, "ci", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.AuthenticateAPIKey(ctx, secret, ""); err != nil {
			t.Fatal(err)
		}
		ids, secrets = append(ids, k.ID), append(secrets, secret)
	}
	heardBefore := c.Heard()
	err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		for i, tn := range []*tenancy.Tenant{a, b} {
			if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tn.ID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE auth.api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2`, tn.ID, ids[i]); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, 'key:' || $2 || ':' || $3)`, postgres.CredentialChannel, tn.ID, ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("a write on two workers with notices on the coordinator: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Heard() < heardBefore+2 {
		if time.Now().After(deadline) {
			t.Fatalf("heard %d notices, want 2", c.Heard()-heardBefore)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i, secret := range secrets {
		if _, err := keys.AuthenticateAPIKey(ctx, secret, ""); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
			t.Errorf("key %d still works after its revocation: %v", i, err)
		}
	}
}

// TestCitusCredentialTriggersDroppedInPlace: a database distributed before
// migration 00036, whose credential triggers Distribute had turned off,
// loses them on every node when it is migrated.
func TestCitusCredentialTriggersDroppedInPlace(t *testing.T) {
	ctx := context.Background()
	urls := pgtest.NewURLs(t)
	db, err := postgres.Open(ctx, urls.App, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	tables := map[string]string{"auth.api_keys": "'key', 'id'", "auth.sessions": "'session', 'id'", "auth.users": "'user', 'id'", "tenants.tenant_members": "'user', 'user_id'"}
	// As 00023 left them, and Distribute after it.
	err = pgx.BeginFunc(ctx, db.Admin, func(tx pgx.Tx) error {
		stmts := []string{`SET LOCAL citus.enable_unsafe_triggers = on`, `
			CREATE FUNCTION auth.notify_credential_change() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
			  PERFORM pg_notify('nself_credential_changed', TG_ARGV[0] || ':' || OLD.tenant_id || ':' || (to_jsonb(OLD) ->> TG_ARGV[1]));
			  RETURN NULL;
			END $$`}
		for table, args := range tables {
			stmts = append(stmts,
				`CREATE TRIGGER notify_credential_change AFTER DELETE ON `+table+` FOR EACH ROW EXECUTE FUNCTION auth.notify_credential_change(`+args+`)`,
				`ALTER TABLE `+table+` DISABLE TRIGGER notify_credential_change`)
		}
		stmts = append(stmts, `DELETE FROM public.goose_db_version WHERE version_id >= 36`)
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	triggers := func(url string) int {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname = 'notify_credential_change'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	workers := pgtest.CitusWorkers(urls)
	for _, w := range workers {
		if n := triggers(w); n == 0 {
			t.Fatalf("worker %s: the triggers were not made on the shards", w)
		}
	}
	res, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) == 0 || res.Applied[0] != 36 {
		t.Errorf("applied %v, want 36 and the later ones", res.Applied)
	}
	if n := triggers(urls.Admin); n != 0 {
		t.Errorf("coordinator: %d credential triggers left", n)
	}
	for _, w := range workers {
		if n := triggers(w); n != 0 {
			t.Errorf("worker %s: %d credential triggers left on the shards", w, n)
		}
	}
}
