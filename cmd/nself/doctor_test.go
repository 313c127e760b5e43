package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/pgtest"
)

// doctor passes a clean database and finds each planted problem, with its
// fix, exiting non-zero.
func TestDoctor(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	c.ok("tenant", "create", "Acme", "--slug", "acme", "--owner", "ann@acme.example")
	mustMatch(t, c.ok("tenant", "doctor"), `^✓ No problems found$`)

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	c.ok("tenant", "create", "Ownerless", "--slug", "ownerless")
	c.ok("tenant", "create", "Schema Co", "--slug", "schema-co", "--strategy", "schema")
	c.ok("tenant", "domain", "add", "acme", "old.example")
	var schema string
	if err := admin.QueryRow(ctx, `SELECT schema_name FROM tenants.tenants WHERE slug = 'schema-co'`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`CREATE TABLE public.orders_legacy (tenant_id uuid, id int)`,
		`DELETE FROM ` + schema + `.nself_migrations`,
		`BEGIN`,
		`SELECT tenants.set_context((SELECT id FROM tenants.tenants WHERE slug = 'acme'), NULL)`,
		`UPDATE tenants.tenant_domains SET created_at = now() - interval '8 days'`,
		`COMMIT`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	r := c.run("", "tenant", "doctor")
	if r.code != 1 || !strings.Contains(r.err, "problem(s) found") {
		t.Errorf("doctor with problems: exit %d, %q", r.code, r.err)
	}
	mustMatch(t, r.out,
		`^✗ orders_legacy: row-level security is not enabled$`,
		`^    fix: ALTER TABLE orders_legacy ENABLE ROW LEVEL SECURITY;$`,
		`^✗ orders_legacy: no index leads with tenant_id$`,
		`^✗ tenant ownerless: has no owner$`,
		`^    fix: nself tenant member add ownerless USER owner$`,
		`^✗ tenant schema-co: has no owner$`,
		`^✗ schema `+schema+`: of tenant schema-co is at tenant migration 0 of \d+$`,
		`^    fix: nself db migrate$`,
		`^✗ domain old\.example: of tenant acme has been unverified for more than a week$`)
}
