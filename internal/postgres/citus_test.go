//go:build citus

// Tests that need the Citus cluster (scripts/services.sh start citus); run
// by `make test-citus`, which builds with the citus tag.

package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
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
	urls := pgtest.NewURLs(t)
	sep := "?"
	if strings.Contains(urls.App, "?") {
		sep = "&"
	}
	db, err := postgres.Open(ctx, urls.App+sep+"citus.multi_task_query_log_level=error", urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
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
