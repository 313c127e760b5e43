package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func TestCreateTenant(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewTenantService(db, tenancy.ModeRLS)
	ctx := context.Background()

	c, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Acme Corporation", Plan: "pro", Owner: "Ann@Acme.EXAMPLE"})
	if err != nil {
		t.Fatal(err)
	}
	tn := c.Tenant
	if tn.Slug != "acme-corporation" || tn.Plan != "pro" || tn.Status != tenancy.StatusActive || tn.Strategy != tenancy.StrategyRLS {
		t.Errorf("tenant = %+v", tn)
	}
	if c.Owner == nil || c.Owner.Email != "Ann@acme.example" || tn.OwnerID != c.Owner.ID {
		t.Fatalf("owner = %+v, tenant owner %q", c.Owner, tn.OwnerID)
	}
	if c.PasswordToken == "" {
		t.Error("an owner made from an email gets a set-password link")
	}
	// A department's two letters, as the guide's hr.corp.com.
	if hr, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "HR", Slug: "hr"}); err != nil || hr.Tenant.Slug != "hr" {
		t.Errorf("a two-letter slug: %v", err)
	}
	if n, err := svc.CountMembers(ctx, tn.ID); err != nil || n != 1 {
		t.Errorf("members = %d, %v; want the owner", n, err)
	}
	asTenant(t, db, tn.ID, func(tx pgx.Tx) {
		var role string
		if err := tx.QueryRow(ctx, `SELECT role FROM tenants.tenant_members WHERE user_id = $1`, c.Owner.ID).Scan(&role); err != nil || role != "owner" {
			t.Errorf("owner membership: %q, %v", role, err)
		}
		if n := count(t, tx, `SELECT count(*) FROM auth.password_tokens WHERE user_id = $1 AND purpose = 'set'`, c.Owner.ID); n != 1 {
			t.Errorf("password tokens = %d, want 1", n)
		}
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_settings WHERE key = 'branding.company_name' AND value = 'Acme Corporation'`); n != 1 {
			t.Errorf("company name setting missing")
		}
	})

	// An existing user's id makes the same person (same id, email,
	// password) the owner of another tenant.
	c2, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "TechCo", Slug: "techco", Plan: "enterprise", Owner: c.Owner.ID})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Owner.ID != c.Owner.ID || c2.Owner.Email != c.Owner.Email || c2.Owner.TenantID != c2.Tenant.ID {
		t.Errorf("copied owner = %+v", c2.Owner)
	}
	found, err := svc.FindTenant(ctx, c2.Tenant.ID)
	if err != nil || found.Slug != "techco" {
		t.Errorf("find by id: %+v, %v", found, err)
	}
	if found, err = svc.FindTenant(ctx, "TECHCO"); err != nil || found.ID != c2.Tenant.ID {
		t.Errorf("find by slug, any case: %+v, %v", found, err)
	}
}

func TestCreateTenantBadInput(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewTenantService(db, tenancy.ModeRLS)
	ctx := context.Background()
	mustCreateTenant(t, db, "taken", tenancy.StrategyRLS)

	tests := []struct {
		name string
		in   tenancy.NewTenant
		code string
		msg  string
	}{
		{"empty name", tenancy.NewTenant{Name: "  "}, tenancy.EINVALID, "name is required"},
		{"long name", tenancy.NewTenant{Name: strings.Repeat("x", 10000), Slug: "long"}, tenancy.EINVALID, "name is too long"},
		{"newline in name", tenancy.NewTenant{Name: "a\nb", Slug: "newline"}, tenancy.EINVALID, "control characters"},
		{"underivable slug", tenancy.NewTenant{Name: "東京"}, tenancy.EINVALID, "pass a slug"},
		{"short slug", tenancy.NewTenant{Name: "X", Slug: "a"}, tenancy.EINVALID, "too short"},
		{"reserved slug", tenancy.NewTenant{Name: "X", Slug: "admin"}, tenancy.EINVALID, "reserved"},
		{"upper slug", tenancy.NewTenant{Name: "X", Slug: "Acme"}, tenancy.EINVALID, "lowercase"},
		{"sql slug", tenancy.NewTenant{Name: "X", Slug: "a'; drop table x;--"}, tenancy.EINVALID, "only a-z, 0-9 and hyphens"},
		{"taken slug", tenancy.NewTenant{Name: "X", Slug: "taken"}, tenancy.ECONFLICT, "already taken"},
		{"unknown plan", tenancy.NewTenant{Name: "X", Slug: "plan-x", Plan: "gold"}, tenancy.ENOTFOUND, `plan "gold" does not exist (plans: free, starter, pro, enterprise)`},
		{"bad owner", tenancy.NewTenant{Name: "X", Slug: "owner-x", Owner: "not an email"}, tenancy.EINVALID, "neither a user id"},
		{"unknown owner id", tenancy.NewTenant{Name: "X", Slug: "owner-y", Owner: "00000000-0000-4000-8000-000000000000"}, tenancy.ENOTFOUND, "no user with id"},
		{"schema not allowed", tenancy.NewTenant{Name: "X", Slug: "schema-x", Strategy: tenancy.StrategySchema}, tenancy.EINVALID, "not allowed while TENANT_STRATEGY=rls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.CreateTenant(ctx, tt.in)
			if code := tenancy.ErrorCode(err); code != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v (%s), want %s containing %q", err, code, tt.code, tt.msg)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
	// Nothing was left behind by any of them.
	list, total, err := svc.ListTenants(ctx, tenancy.TenantFilter{IncludeDeleted: true})
	if err != nil || total != 1 || len(list) != 1 {
		t.Errorf("tenants after failed creates: %d (%v)", total, err)
	}
}

// Names are data: quotes, SQL and any script are stored as typed.
func TestCreateTenantStoresNamesSafely(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewTenantService(db, tenancy.ModeRLS)
	ctx := context.Background()
	for i, name := range []string{`O'Brien "Quotes" & Co`, `Robert'); DROP TABLE tenants.tenants;--`, "Zürich Café ☕", "東京 株式会社", strings.Repeat("é", 200)} {
		c, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: name, Slug: "name-" + string(rune('a'+i)) + "x"})
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		got, err := svc.FindTenant(ctx, c.Tenant.ID)
		if err != nil || got.Name != name {
			t.Errorf("stored %q, read back %q (%v)", name, got.Name, err)
		}
	}
}

// A create that fails after the tenant row, schema and settings were
// written leaves none of them behind.
func TestCreateTenantFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewTenantService(db, tenancy.ModeHybrid)
	ctx := context.Background()
	schemasBefore := countSchemas(t, db)
	_, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Doomed", Slug: "doomed", Strategy: tenancy.StrategySchema,
		Owner: "00000000-0000-4000-8000-000000000000"})
	if tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Fatalf("err = %v, want owner not found", err)
	}
	var tenants int
	if err := db.Admin.QueryRow(ctx, `SELECT count(*) FROM tenants.tenants`).Scan(&tenants); err != nil || tenants != 0 {
		t.Errorf("tenant rows = %d (%v), want 0", tenants, err)
	}
	if n := countSchemas(t, db); n != schemasBefore {
		t.Errorf("schemas = %d, want %d", n, schemasBefore)
	}
}

func countSchemas(t *testing.T, db *postgres.DB) int {
	var n int
	if err := db.Admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTenantStatusAndDelete(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewTenantService(db, tenancy.ModeRLS)
	ctx := context.Background()
	c, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme", Owner: "ann@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	other := mustCreateTenant(t, db, "other", tenancy.StrategyRLS)
	otherUser := mustCreateUser(t, db, other.ID, "olga@other.example")
	id := c.Tenant.ID
	mustCreateUser(t, db, id, "bob@acme.example")
	// Data in every kind of tenant table.
	err = pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		for _, sql := range []string{
			`SELECT tenants.set_context($1, NULL)`,
			`INSERT INTO tenants.tenant_domains (tenant_id, domain, verification_token) VALUES ($1, 'acme.example.com', 'tok')`,
			`INSERT INTO app.products (tenant_id, name) VALUES ($1, 'Widget')`,
			`INSERT INTO app.orders (tenant_id, product_id, quantity) SELECT $1, id, 2 FROM app.products`,
			`INSERT INTO auth.api_keys (tenant_id, name, prefix, key_hash) VALUES ($1, 'ci', 'nsk_abc', '\x00')`,
		} {
			if _, err := tx.Exec(ctx, sql, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := svc.SetTenantStatus(ctx, "acme", tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetTenantStatus(ctx, "acme", tenancy.StatusSuspended); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("suspending twice: %v, want conflict", err)
	}
	if tn, err := svc.SetTenantStatus(ctx, "acme", tenancy.StatusActive); err != nil || tn.Status != tenancy.StatusActive {
		t.Fatalf("activate: %+v, %v", tn, err)
	}

	tn, err := svc.DeleteTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != tenancy.StatusDeleted || tn.DeletedAt == nil || tn.OwnerID != "" {
		t.Errorf("deleted tenant = %+v", tn)
	}
	asTenant(t, db, id, func(tx pgx.Tx) {
		for _, table := range []string{"auth.users", "auth.password_tokens", "auth.api_keys", "tenants.tenant_members",
			"tenants.tenant_domains", "tenants.tenant_settings", "app.products", "app.orders"} {
			if n := count(t, tx, `SELECT count(*) FROM `+table); n != 0 {
				t.Errorf("%s keeps %d rows of the deleted tenant", table, n)
			}
		}
	})
	asTenant(t, db, other.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM auth.users WHERE id = $1`, otherUser.ID); n != 1 {
			t.Errorf("deleting acme touched another tenant's users")
		}
	})
	if _, err := svc.DeleteTenant(ctx, "acme"); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("deleting twice: %v, want conflict", err)
	}
	if _, err := svc.SetTenantStatus(ctx, "acme", tenancy.StatusActive); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("activating a deleted tenant: %v, want conflict", err)
	}
	if _, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Acme again", Slug: "acme"}); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("reusing a deleted slug: %v, want conflict", err)
	}
	if _, err := svc.FindTenant(ctx, "nope"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("find unknown: %v", err)
	}

	// Lists leave deleted tenants out unless asked.
	list, total, err := svc.ListTenants(ctx, tenancy.TenantFilter{})
	if err != nil || total != 1 || list[0].Slug != "other" {
		t.Errorf("list = %d tenants, %v", total, err)
	}
	if _, total, _ = svc.ListTenants(ctx, tenancy.TenantFilter{IncludeDeleted: true}); total != 2 {
		t.Errorf("list with deleted = %d, want 2", total)
	}
	if _, total, _ = svc.ListTenants(ctx, tenancy.TenantFilter{Query: "oth"}); total != 1 {
		t.Errorf("search = %d, want 1", total)
	}
	if _, total, _ = svc.ListTenants(ctx, tenancy.TenantFilter{Query: "%"}); total != 0 {
		t.Errorf("search for a literal %% = %d, want 0", total)
	}

	st, err := svc.TenantStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 2 || st.ByStatus[tenancy.StatusDeleted] != 1 || st.ByStatus[tenancy.StatusActive] != 1 || st.ByPlan["free"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	users := postgres.NewUserService(db)
	ctx := context.Background()

	u, token, err := users.CreateUser(ctx, a.ID, tenancy.NewUser{Email: "ann@example.com", Name: "Ann", Password: "correct horse battery"})
	if err != nil || token != "" {
		t.Fatalf("create with password: %v, token %q", err, token)
	}
	// The same person may hold an account in another tenant.
	if _, _, err := users.CreateUser(ctx, b.ID, tenancy.NewUser{Email: "ann@example.com"}); err != nil {
		t.Errorf("same email in another tenant: %v", err)
	}
	// But an email is unique within a tenant, whatever its case.
	if _, _, err := users.CreateUser(ctx, a.ID, tenancy.NewUser{Email: "ANN@example.com"}); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("duplicate email: %v, want conflict", err)
	}
	for _, bad := range []tenancy.NewUser{{Email: "nope"}, {Email: "a@b.com", Password: "short"}, {Email: "c@d.com", Name: "x\ny"}} {
		if _, _, err := users.CreateUser(ctx, a.ID, bad); tenancy.ErrorCode(err) != tenancy.EINVALID {
			t.Errorf("%+v: %v, want invalid", bad, err)
		}
	}
	list, total, err := users.ListUsers(ctx, a.ID, tenancy.UserFilter{})
	if err != nil || total != 1 || list[0].ID != u.ID {
		t.Errorf("list = %v (%d), %v", list, total, err)
	}
	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		var hash string
		if err := tx.QueryRow(ctx, `SELECT password_hash FROM auth.users WHERE id = $1`, u.ID).Scan(&hash); err != nil || !strings.HasPrefix(hash, "$argon2id$") {
			t.Errorf("password stored as %q, %v", hash, err)
		}
	})
}
