package main

import (
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
	db := openRoles(t, urls)
	db.exec(
		`CREATE TABLE public.legacy_orders (id serial PRIMARY KEY, total numeric NOT NULL)`,
		`INSERT INTO public.legacy_orders (total) VALUES (10), (20), (30)`,
	)

	// --dry-run prints the SQL and changes nothing.
	out := c.ok("tenant", "adopt", "legacy_orders", "--dry-run")
	mustMatch(t, out, `^ALTER TABLE legacy_orders ADD COLUMN tenant_id uuid;$`, `^SELECT tenants\.enable_tenant_rls\('legacy_orders'\);$`)
	var cols int
	db.admin.QueryRow(db.ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'legacy_orders' AND column_name = 'tenant_id'`).Scan(&cols)
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
	count := func(slug string) (n int) {
		db.asTenant(slug, func(tx pgx.Tx) error { n = db.count(tx, "public.legacy_orders"); return nil })
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
	db := openRoles(t, urls)
	tables := []string{"users", "products", "shop.orders"}
	db.exec(
		`CREATE TABLE public.users (id serial PRIMARY KEY, email text NOT NULL)`,
		`CREATE TABLE public.products (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL)`,
		`CREATE SCHEMA shop`,
		`CREATE TABLE shop.orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), total bigserial)`,
		`INSERT INTO public.users (email) VALUES ('old@example.com')`,
	)
	mustMatch(t, c.ok(append([]string{"tenant", "adopt"}, tables...)...), `^✓ Adopted 3 table\(s\); existing rows belong to tenant default$`)

	for i, slug := range []string{"default", "other", "other"} {
		err := db.asTenant(slug, func(tx pgx.Tx) error {
			for _, sql := range []string{
				`INSERT INTO public.users (email) VALUES ('new@example.com')`,
				`INSERT INTO public.products (name) VALUES ('widget')`,
				`INSERT INTO shop.orders DEFAULT VALUES`,
			} {
				if _, err := tx.Exec(db.ctx, sql); err != nil {
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
		db.asTenant(slug, func(tx pgx.Tx) error {
			for i, table := range []string{"public.users", "public.products", "shop.orders"} {
				got[i] = db.count(tx, table)
			}
			return nil
		})
		if got != w {
			t.Errorf("%s sees users, products, orders = %v; want %v", slug, got, w)
		}
	}
	// The sequence's last_value counts every tenant's rows: the
	// application role may draw from it, not read it.
	err := db.asTenant("other", func(tx pgx.Tx) error {
		var n int64
		return tx.QueryRow(db.ctx, `SELECT last_value FROM public.users_id_seq`).Scan(&n)
	})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the application role reads a shared sequence: %v", err)
	}
	mustMatch(t, c.ok("tenant", "test-isolation"), `^✓ All tenant isolation tests passed$`)
}

// On Citus a table is distributed by tenant_id only when its keys hold
// it: adopt cannot change a key another table's foreign key points at, and
// says so, changing nothing. One PostgreSQL adopts the table as it is.
func TestAdoptOfAReferencedKeyOnCitus(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	c.ok("tenant", "init")
	db := openRoles(t, urls)
	db.exec(
		`CREATE TABLE public.parents (id serial PRIMARY KEY)`,
		`CREATE TABLE public.children (id serial PRIMARY KEY, parent_id int REFERENCES public.parents (id))`,
	)
	r := c.run("", "tenant", "adopt", "parents")
	if !pgtest.IsCitus() {
		if r.code != 0 {
			t.Fatalf("adopt: exit %d, %q", r.code, r.err)
		}
		return
	}
	want := "on Citus, parents cannot be adopted: its key parents_pkey is the target of a foreign key from children"
	if r.code != 1 || !strings.Contains(r.err, want) {
		t.Fatalf("adopt on Citus: exit %d, %q; want %q", r.code, r.err, want)
	}
	var cols int
	db.admin.QueryRow(db.ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'parents' AND column_name = 'tenant_id'`).Scan(&cols)
	if cols != 0 {
		t.Error("the refused adopt changed the table")
	}
}
