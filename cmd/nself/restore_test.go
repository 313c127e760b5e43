package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
)

// The guide's export, with the operator's own tables (the examples'
// invoices and support tickets), restores into an empty database with tar
// and psql alone, as the README tells.
func TestTenantExportRestoresWithPsql(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, append(blobtest.Env(t), "TENANT_MIGRATIONS_DIR="+copyExamples(t))...)
	c.ok("db", "migrate")
	c.ok("tenant", "create", "Acme Corporation", "--slug", "acme", "--owner", "ann@acme.example")
	c.ok("tenant", "create", "Globex", "--slug", "globex")
	var logo bytes.Buffer
	png.Encode(&logo, image.NewRGBA(image.Rect(0, 0, 8, 8)))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "logo.png"), logo.Bytes(), 0o644)
	c.ok("whitelabel", "logo", "upload", "acme", filepath.Join(dir, "logo.png"))
	r := openRoles(t, urls)
	// Globex first: acme's serial ids then start above 1, as they would
	// on a shared sequence.
	for _, tn := range []struct {
		slug string
		n    int
	}{{"globex", 3}, {"acme", 12}} {
		slug, n := tn.slug, tn.n
		// Row by row: Citus runs an INSERT … SELECT under row-level
		// security as a COPY, which it refuses.
		if err := r.asTenant(slug, func(tx pgx.Tx) error {
			for i := 1; i <= n; i++ {
				var id string
				for _, step := range []struct {
					sql string
					arg any
				}{
					{`INSERT INTO app.products (name, price) VALUES ('Product ' || $1::int, $1::int) RETURNING id`, i},
					{`INSERT INTO app.orders (product_id, quantity) VALUES ($1, 2) RETURNING id`, nil},
					{`INSERT INTO app.invoices (order_id, amount) VALUES ($1, 9.5) RETURNING id`, nil},
					{`INSERT INTO app.support_tickets (invoice_id, subject) VALUES ($1, 'Where is my order?') RETURNING id::text`, nil},
				} {
					arg := step.arg
					if arg == nil {
						arg = id
					}
					if err := tx.QueryRow(r.ctx, step.sql, arg).Scan(&id); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	archive := filepath.Join(dir, "acme-data-export.tar.gz")
	c.ok("tenant", "export", "acme", "--output", archive)
	unpacked := filepath.Join(dir, "acme")
	os.Mkdir(unpacked, 0o700)
	if out, err := exec.Command("tar", "-xzf", archive, "-C", unpacked).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	target := pgtest.NewEmptyURLs(t).Admin
	psql := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", "restore.sql")
	psql.Dir = unpacked
	if out, err := psql.CombinedOutput(); err != nil {
		t.Fatalf("psql -f restore.sql: %v\n%s", err, out)
	}

	ctx := context.Background()
	db, err := pgx.Connect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	for table, want := range map[string]int{
		"app.products": 12, "app.orders": 12, "app.invoices": 12, "app.support_tickets": 12,
		"auth.users": 1, "tenants.tenant_members": 1, "tenants.tenant_logos": 1,
	} {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows restored (%v), want %d", table, n, err, want)
		}
	}
	var email, ticket string
	if err := db.QueryRow(ctx, `
		SELECT u.email, s.subject || ' / ' || i.amount || ' / ' || p.name
		FROM auth.users u, app.support_tickets s
		JOIN app.invoices i ON i.id = s.invoice_id
		JOIN app.orders o ON o.id = i.order_id
		JOIN app.products p ON p.id = o.product_id
		ORDER BY p.price LIMIT 1`).Scan(&email, &ticket); err != nil {
		t.Fatal(err)
	}
	if email != "ann@acme.example" || ticket != "Where is my order? / 9.50 / Product 1" {
		t.Errorf("restored %q, %q", email, ticket)
	}
	// The serial and identity keys go on after the highest loaded.
	for table, column := range map[string]string{"app.support_tickets": "id", "app.invoices": "number"} {
		var max, next int64
		if err := db.QueryRow(ctx, `SELECT max(`+column+`) FROM `+table).Scan(&max); err != nil || max != 15 {
			t.Errorf("%s: highest %s %d (%v), want 15 (globex took 1 to 3)", table, column, max, err)
		}
		insert := `INSERT INTO app.support_tickets (tenant_id, subject) SELECT tenant_id, 'new' FROM app.products LIMIT 1 RETURNING id`
		if table == "app.invoices" {
			insert = `INSERT INTO app.invoices (tenant_id, order_id, amount) SELECT tenant_id, id, 1 FROM app.orders LIMIT 1 RETURNING number`
		}
		if err := db.QueryRow(ctx, insert).Scan(&next); err != nil || next != max+1 {
			t.Errorf("%s: a new row's %s is %d (%v), want %d", table, column, next, err, max+1)
		}
	}
}
