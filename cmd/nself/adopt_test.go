package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/pgtest"
)

// adopt puts an existing table with rows under tenancy; afterwards the
// isolation checks hold for it.
func TestAdopt(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	c.ok("tenant", "init")
	c.ok("tenant", "create", "Other", "--slug", "other")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, sql := range []string{
		`CREATE TABLE public.legacy_orders (id serial PRIMARY KEY, total numeric NOT NULL)`,
		`INSERT INTO public.legacy_orders (total) VALUES (10), (20), (30)`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}

	// --dry-run prints the SQL and changes nothing.
	out := c.ok("tenant", "adopt", "legacy_orders", "--dry-run")
	mustMatch(t, out, `^ALTER TABLE legacy_orders ADD COLUMN tenant_id uuid;$`, `^SELECT tenants\.enable_tenant_rls\('legacy_orders'\);$`)
	var cols int
	admin.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'legacy_orders' AND column_name = 'tenant_id'`).Scan(&cols)
	if cols != 0 {
		t.Fatal("--dry-run changed the table")
	}

	if r := c.run("", "tenant", "adopt", "legacy_orders", "no_such_table"); r.code != 1 || !strings.Contains(r.err, `no table "no_such_table"`) {
		t.Errorf("unknown table: %d %q", r.code, r.err)
	}
	mustMatch(t, c.ok("tenant", "adopt", "legacy_orders"), `^✓ Adopted 1 table\(s\); existing rows belong to tenant default$`)
	mustMatch(t, c.ok("tenant", "adopt", "legacy_orders"), `already has tenant_id: skipped$`, `^✓ Nothing to adopt$`)
	// The table passes every isolation check (the tenants here have no
	// owners, which doctor reports too).
	if r := c.run("", "tenant", "doctor"); strings.Contains(r.out, "legacy_orders") {
		t.Fatalf("doctor after adopt: %s", r.out)
	}

	// As the application role: the default tenant sees its three rows,
	// another tenant none, and nobody without a tenant.
	app, err := pgx.Connect(ctx, urls.App)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	count := func(slug string) int {
		tx, err := app.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if slug != "" {
			var id string
			if err := admin.QueryRow(ctx, `SELECT id FROM tenants.tenants WHERE slug = $1`, slug).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, id); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM public.legacy_orders`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if d, o, none := count("default"), count("other"), count(""); d != 3 || o != 0 || none != 0 {
		t.Errorf("rows seen: default %d, other %d, no tenant %d; want 3, 0, 0", d, o, none)
	}
	mustMatch(t, c.ok("tenant", "test-isolation"), `^✓ All tenant isolation tests passed$`)
}

// After adopt, the application role adds rows to adopted tables whatever
// their key: a serial (a sequence it must be granted), an identity column
// and a uuid default, in the public schema and in one of the operator's
// own. Each tenant then sees exactly the rows it inserted.
func TestAdoptedTablesTakeNewRows(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	c.ok("tenant", "init")
	c.ok("tenant", "create", "Other", "--slug", "other")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	tables := []string{"users", "products", "shop.orders"}
	for _, sql := range []string{
		`CREATE TABLE public.users (id serial PRIMARY KEY, email text NOT NULL)`,
		`CREATE TABLE public.products (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL)`,
		`CREATE SCHEMA shop`,
		`CREATE TABLE shop.orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), total bigserial)`,
		`INSERT INTO public.users (email) VALUES ('old@example.com')`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	mustMatch(t, c.ok(append([]string{"tenant", "adopt"}, tables...)...), `^✓ Adopted 3 table\(s\); existing rows belong to tenant default$`)

	app, err := pgx.Connect(ctx, urls.App)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	inTenant := func(slug string, fn func(tx pgx.Tx) error) error {
		tx, err := app.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		var id string
		if err := admin.QueryRow(ctx, `SELECT id FROM tenants.tenants WHERE slug = $1`, slug).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, id); err != nil {
			t.Fatal(err)
		}
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	for i, slug := range []string{"default", "other", "other"} {
		err := inTenant(slug, func(tx pgx.Tx) error {
			for _, sql := range []string{
				`INSERT INTO public.users (email) VALUES ('new@example.com')`,
				`INSERT INTO public.products (name) VALUES ('widget')`,
				`INSERT INTO shop.orders DEFAULT VALUES`,
			} {
				if _, err := tx.Exec(ctx, sql); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("insert %d as %s: %v", i, slug, err)
		}
	}
	want := map[string][3]int{"default": {2, 1, 1}, "other": {2, 2, 2}}
	for slug, w := range want {
		var got [3]int
		inTenant(slug, func(tx pgx.Tx) error {
			for i, table := range []string{"public.users", "public.products", "shop.orders"} {
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&got[i]); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		})
		if got != w {
			t.Errorf("%s sees users, products, orders = %v; want %v", slug, got, w)
		}
	}
	mustMatch(t, c.ok("tenant", "test-isolation"), `^✓ All tenant isolation tests passed$`)
}
