package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// The product guide's isolation script, with the tenant set the way the
// platform sets it.
func TestIsolationGuideScript(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	mustCreateUser(t, db, a.ID, "ann@a.example")
	mustCreateUser(t, db, b.ID, "bob@b.example")
	mustCreateUser(t, db, b.ID, "bea@b.example")

	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM auth.users WHERE tenant_id = $1`, b.ID); n != 0 {
			t.Errorf("tenant A sees %d of tenant B's users", n)
		}
		if n := count(t, tx, `SELECT count(*) FROM auth.users WHERE tenant_id = $1`, a.ID); n != 1 {
			t.Errorf("tenant A sees %d of its own users, want 1", n)
		}
	})
	asTenant(t, db, b.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM auth.users`); n != 2 {
			t.Errorf("tenant B sees %d users, want its 2", n)
		}
	})
}

func TestIsolationEscapeQuery(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	mustCreateUser(t, db, a.ID, "ann@a.example")
	mustCreateUser(t, db, b.ID, "bob@b.example")

	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		rows, err := tx.Query(context.Background(),
			`SELECT tenant_id::text FROM auth.users WHERE 1=1 OR tenant_id != tenants.current_tenant_id()`)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != a.ID {
			t.Errorf("escape query returned tenants %v, want only %s", ids, a.ID)
		}
	})
}

func TestIsolationNoTenantSet(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	mustCreateUser(t, db, a.ID, "ann@a.example")

	tables := []string{"auth.users", "auth.sessions", "auth.api_keys", "tenants.tenant_members",
		"tenants.tenant_settings", "tenants.tenant_domains", "tenants.tenants", "app.products"}
	for _, setting := range []string{"", `{}`, `{"x-hasura-tenant-id":""}`, `{"x-hasura-tenant-id":"not-a-uuid"}`} {
		asTenant(t, db, "", func(tx pgx.Tx) {
			if setting != "" {
				if _, err := tx.Exec(context.Background(), `SELECT set_config('hasura.user', $1, true)`, setting); err != nil {
					t.Fatal(err)
				}
			}
			for _, table := range tables {
				if n := count(t, tx, `SELECT count(*) FROM `+table); n != 0 {
					t.Errorf("setting %q: %s shows %d rows with no tenant", setting, table, n)
				}
			}
			mustRefuse(t, tx, `INSERT INTO auth.users (tenant_id, email) VALUES ($1, 'x@example.com')`, a.ID)
			mustRefuse(t, tx, `INSERT INTO tenants.tenant_settings (tenant_id, key, value) VALUES ($1, 'k', 'v')`, a.ID)
			if tag, err := tx.Exec(context.Background(), `UPDATE auth.users SET name = 'changed'`); err != nil || tag.RowsAffected() != 0 {
				t.Errorf("update with no tenant: %v rows, err %v", tag.RowsAffected(), err)
			}
			if tag, err := tx.Exec(context.Background(), `DELETE FROM auth.users`); err != nil || tag.RowsAffected() != 0 {
				t.Errorf("delete with no tenant: %v rows, err %v", tag.RowsAffected(), err)
			}
		})
	}
}

func TestIsolationCrossTenantWrites(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	ua := mustCreateUser(t, db, a.ID, "ann@a.example")
	ub := mustCreateUser(t, db, b.ID, "bob@b.example")

	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		mustRefuse(t, tx, `INSERT INTO auth.users (tenant_id, email) VALUES ($1, 'mallory@b.example')`, b.ID)
		mustRefuse(t, tx, `UPDATE auth.users SET tenant_id = $1 WHERE id = $2`, b.ID, ua.ID)
		mustRefuse(t, tx, `INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, 'owner')`, b.ID, ub.ID)
		mustRefuse(t, tx, `INSERT INTO app.products (tenant_id, name) VALUES ($1, 'x')`, b.ID)
		// B's rows are invisible, so they cannot be changed or deleted.
		for _, sql := range []string{
			`UPDATE auth.users SET name = 'pwned' WHERE id = $1`,
			`DELETE FROM auth.users WHERE id = $1`,
		} {
			tag, err := tx.Exec(context.Background(), sql, ub.ID)
			if err != nil || tag.RowsAffected() != 0 {
				t.Errorf("%s on tenant B's user: %d rows, err %v", sql, tag.RowsAffected(), err)
			}
		}
		// The registry row of another tenant is invisible too.
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenants WHERE id = $1`, b.ID); n != 0 {
			t.Errorf("tenant A sees tenant B's registry row")
		}
	})
	asTenant(t, db, b.ID, func(tx pgx.Tx) {
		var name string
		if err := tx.QueryRow(context.Background(), `SELECT name FROM auth.users WHERE id = $1`, ub.ID).Scan(&name); err != nil || name == "pwned" {
			t.Errorf("tenant B's user after A's attempts: name %q, err %v", name, err)
		}
	})
}

// A connection that served tenant A and goes back to the pool must carry
// nothing of A into the next transaction.
func TestIsolationPooledConnectionReuse(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	mustCreateUser(t, db, a.ID, "ann@a.example")

	ctx := context.Background()
	cfg := db.App.Config().Copy()
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	var pidA, pidNext int
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, a.ID); err != nil {
			return err
		}
		if n := count(t, tx, `SELECT count(*) FROM auth.users`); n != 1 {
			t.Errorf("tenant A sees %d users in its own transaction, want 1", n)
		}
		return tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pidA)
	})
	if err != nil {
		t.Fatal(err)
	}
	var users int
	var setting *string
	err = pool.QueryRow(ctx, `
		SELECT pg_backend_pid(), (SELECT count(*) FROM auth.users), NULLIF(current_setting('hasura.user', true), '')`).
		Scan(&pidNext, &users, &setting)
	if err != nil {
		t.Fatal(err)
	}
	if pidA != pidNext {
		t.Fatalf("the pool did not reuse the connection (pids %d, %d)", pidA, pidNext)
	}
	if users != 0 || setting != nil {
		t.Errorf("reused connection sees %d users and setting %v; want 0 and none", users, setting)
	}
}

// The policy functions must be STABLE, or the planner evaluates them per row
// and an indexed tenant query becomes a full scan.
func TestPolicyFunctionsAreStable(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	rows, err := db.Admin.Query(context.Background(), `
		SELECT p.proname, p.provolatile::text FROM pg_proc p
		JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'tenants' AND p.proname IN ('claim', 'current_tenant_id', 'current_user_id', 'is_tenant_member')`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var name, vol string
		if err := rows.Scan(&name, &vol); err != nil {
			t.Fatal(err)
		}
		got[name] = vol
	}
	for _, f := range []string{"claim", "current_tenant_id", "current_user_id", "is_tenant_member"} {
		if got[f] != "s" {
			t.Errorf("tenants.%s volatility %q, want s (STABLE)", f, got[f])
		}
	}
	// With the tenant set, a tenant query uses the tenant_id index.
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		if _, err := tx.Exec(context.Background(), `SET LOCAL enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(context.Background(), `EXPLAIN (FORMAT TEXT) SELECT * FROM auth.users`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, "Index Cond: (tenant_id = ") {
			t.Errorf("plan of a tenant query does not use an index: %s", plan)
		}
	})
}

func TestContextFunctions(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	u := mustCreateUser(t, db, a.ID, "ann@a.example")
	ctx := context.Background()
	tx, err := db.App.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, $2)`, a.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	var tenant, user string
	var member, stranger bool
	err = tx.QueryRow(ctx, `
		SELECT tenants.current_tenant_id()::text, tenants.current_user_id()::text,
		       tenants.is_tenant_member($1, $2), tenants.is_tenant_member($1, gen_random_uuid())`,
		a.ID, u.ID).Scan(&tenant, &user, &member, &stranger)
	if err != nil {
		t.Fatal(err)
	}
	if tenant != a.ID || user != u.ID {
		t.Errorf("context: tenant %s user %s, want %s %s", tenant, user, a.ID, u.ID)
	}
	if member || stranger {
		// The user has an account but no membership yet.
		t.Errorf("is_tenant_member: %v %v, want false false", member, stranger)
	}
	// Hasura's own form: the same JSON set by SET LOCAL works too.
	if _, err := tx.Exec(ctx, `SET LOCAL "hasura.user" = '{"x-hasura-tenant-id":"`+a.ID+`","x-hasura-role":"user"}'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT tenants.current_tenant_id()::text`).Scan(&tenant); err != nil || tenant != a.ID {
		t.Errorf("after SET LOCAL: %q, %v", tenant, err)
	}
}

// The one-round-trip reads of the services leave nothing of the tenant on
// the connection either.
func TestIsolationPipelinedReadsLeaveNoContext(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	mustCreateUser(t, db, a.ID, "ann@a.example")
	ctx := context.Background()
	cfg := db.App.Config().Copy()
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	one := &postgres.DB{App: pool, Admin: db.Admin, AppRole: db.AppRole, SchemaPrefix: db.SchemaPrefix}
	users, total, err := postgres.NewUserService(one).ListUsers(ctx, a.ID, tenancy.UserFilter{})
	if err != nil || total != 1 || len(users) != 1 {
		t.Fatalf("list: %d users, %v", total, err)
	}
	// A failing read must not leave its context behind either.
	if _, _, err := postgres.NewUserService(one).ListUsers(ctx, "not-a-uuid", tenancy.UserFilter{}); err == nil {
		t.Error("a bad tenant id was accepted")
	}
	var visible int
	var setting *string
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM auth.users), NULLIF(current_setting('hasura.user', true), '')`).Scan(&visible, &setting); err != nil {
		t.Fatal(err)
	}
	if visible != 0 || setting != nil {
		t.Errorf("after a pipelined read: %d users visible, setting %v", visible, setting)
	}
}

// Signing in looks a user up by email through an index, row-level
// security notwithstanding (lower(email) would not be allowed ahead of the
// policy; the stored email_lower column is).
func TestEmailLookupUsesIndexUnderRLS(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		if _, err := tx.Exec(context.Background(), `SET LOCAL enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(context.Background(), `EXPLAIN SELECT id FROM auth.users WHERE tenant_id = $1 AND email_lower = lower($2)`, a.ID, "Ann@A.example")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, "users_tenant_email") || !strings.Contains(plan, "email_lower = ") || strings.Contains(plan, "Filter: (email_lower") {
			t.Errorf("the email lookup does not use the email index:\n%s", plan)
		}
	})
}
