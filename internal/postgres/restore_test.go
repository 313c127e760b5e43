package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/tenancy"
)

// An export restores into any PostgreSQL with the standard tools: tar
// unpacks it, and psql runs its restore.sql in an empty database, which
// then holds every exported table with the tenant's rows, the operator's
// own tables included.
func TestExportRestoresWithPsql(t *testing.T) {
	t.Parallel()
	for _, strategy := range []tenancy.Strategy{tenancy.StrategyRLS, tenancy.StrategySchema} {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			e := newExportEnv(t)
			app := pgx.Identifier{e.db.AppRole}.Sanitize()
			// Tables of the operator's own: one in the tenant's data schema
			// with a serial key, an enum, a check, a partial index and a
			// foreign key to orders; one in a schema of its own with an
			// identity key.
			invoices := func(schema string) []string {
				s := pgx.Identifier{schema}.Sanitize()
				return []string{
					`CREATE TYPE ` + s + `.invoice_state AS ENUM ('draft', 'sent', 'paid')`,
					`CREATE TABLE ` + s + `.invoices (
						tenant_id uuid NOT NULL DEFAULT tenants.current_tenant_id(),
						id        serial,
						order_id  uuid NOT NULL,
						state     ` + s + `.invoice_state NOT NULL DEFAULT 'draft',
						total     numeric(12,2) NOT NULL CHECK (total >= 0),
						note      text,
						PRIMARY KEY (tenant_id, id),
						FOREIGN KEY (tenant_id, order_id) REFERENCES ` + s + `.orders (tenant_id, id))`,
					`CREATE INDEX invoices_state ON ` + s + `.invoices (tenant_id, state) WHERE state <> 'paid'`,
					`SELECT tenants.enable_tenant_rls('` + schema + `.invoices')`,
					`GRANT SELECT, INSERT, UPDATE, DELETE ON ` + s + `.invoices TO ` + app,
					`GRANT USAGE ON SEQUENCE ` + s + `.invoices_id_seq TO ` + app,
				}
			}
			admin := func(stmts []string) {
				for _, sql := range stmts {
					if _, err := e.db.Admin.Exec(e.ctx, sql); err != nil {
						t.Fatalf("%s: %v", sql, err)
					}
				}
			}
			admin(append(invoices("app"),
				`CREATE SCHEMA extra`,
				`CREATE TABLE extra.events (
					tenant_id uuid NOT NULL REFERENCES tenants.tenants (id),
					id        bigint GENERATED ALWAYS AS IDENTITY,
					action    text NOT NULL,
					PRIMARY KEY (tenant_id, id))`,
				`SELECT tenants.enable_tenant_rls('extra.events')`,
				`GRANT USAGE ON SCHEMA extra TO `+app,
				`GRANT SELECT, INSERT ON extra.events TO `+app,
			))
			src := e.richTenant("acme", strategy)
			e.richTenant("globex", strategy) // rows that must not travel
			dataSchema := "app"
			if strategy == tenancy.StrategySchema {
				dataSchema = src.SchemaName
				admin(invoices(dataSchema))
			}
			e.asOwner(src.ID, func(tx pgx.Tx) {
				d := pgx.Identifier{dataSchema}.Sanitize()
				// INSERT … VALUES: Citus runs an INSERT … SELECT under
				// row-level security as a COPY, which it refuses.
				rows, err := tx.Query(e.ctx, `SELECT id::text FROM `+d+`.orders WHERE tenant_id = $1 ORDER BY id`, src.ID)
				if err != nil {
					t.Fatal(err)
				}
				orders, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				var invoices, events []string
				for n, id := range orders {
					i := n + 1
					note := "NULL"
					if i%2 == 0 {
						note = `'a "quoted", note'`
					}
					invoices = append(invoices, fmt.Sprintf("($1, '%s', '%s', %d, %s)", id, []string{"draft", "sent", "paid"}[i%3], i*10, note))
				}
				for i := 1; i <= 7; i++ {
					events = append(events, fmt.Sprintf("($1, 'action %d')", i))
				}
				for _, sql := range []string{
					`INSERT INTO ` + d + `.invoices (tenant_id, order_id, state, total, note) VALUES ` + strings.Join(invoices, ", "),
					`INSERT INTO extra.events (tenant_id, action) VALUES ` + strings.Join(events, ", "),
				} {
					if _, err := tx.Exec(e.ctx, sql, src.ID); err != nil {
						t.Fatalf("%s: %v", sql, err)
					}
				}
			})
			archive := e.export("acme")
			m := e.manifestOf(archive)

			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "acme.tar.gz"), archive, 0o600); err != nil {
				t.Fatal(err)
			}
			unpacked := filepath.Join(dir, "acme")
			os.Mkdir(unpacked, 0o700)
			if out, err := exec.Command("tar", "-xzf", filepath.Join(dir, "acme.tar.gz"), "-C", unpacked).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			target := pgtest.NewEmptyURLs(t).Admin
			psql := exec.Command("psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", "restore.sql")
			psql.Dir = unpacked
			out, err := psql.CombinedOutput()
			if err != nil {
				schema, _ := os.ReadFile(filepath.Join(unpacked, tenancy.SchemaFile))
				t.Fatalf("psql -f restore.sql: %v\n%s\n--- schema.sql:\n%s", err, out, schema)
			}

			ctx := context.Background()
			restored, err := pgx.Connect(ctx, target)
			if err != nil {
				t.Fatal(err)
			}
			defer restored.Close(ctx)
			// Every exported table, with as many rows as the source holds
			// of the tenant.
			for _, tb := range m.Tables {
				var got int64
				if err := restored.QueryRow(ctx, `SELECT count(*) FROM `+tb.Name).Scan(&got); err != nil {
					t.Errorf("%s: %v", tb.Name, err)
					continue
				}
				real := tb.Name
				if strings.HasPrefix(real, "app.") {
					real = dataSchema + strings.TrimPrefix(real, "app")
				}
				var want int64
				e.asOwner(src.ID, func(tx pgx.Tx) {
					if err := tx.QueryRow(e.ctx, `SELECT count(*) FROM `+real+` WHERE tenant_id = $1`, src.ID).Scan(&want); err != nil {
						t.Fatal(err)
					}
				})
				if got != want || got != tb.Rows {
					t.Errorf("%s: %d rows restored, the source has %d, the manifest says %d", tb.Name, got, want, tb.Rows)
				}
			}
			for _, name := range []string{"app.products", "app.orders", "auth.users", "tenants.tenant_logos", "extra.events", "app.invoices"} {
				if !tableIn(m, name) {
					t.Errorf("%s is not in the archive", name)
				}
			}
			// A few values, as the source has them.
			same := func(sql, srcSQL string) {
				t.Helper()
				rows, err := restored.Query(ctx, sql)
				if err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				got, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				e.asOwner(src.ID, func(tx pgx.Tx) {
					rows, err := tx.Query(e.ctx, srcSQL, src.ID)
					if err != nil {
						t.Fatalf("%s: %v", srcSQL, err)
					}
					if want, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
						t.Fatal(err)
					}
				})
				if len(want) == 0 || !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n restored %q\n source   %q", sql, got, want)
				}
			}
			same(`SELECT name || ' ' || price FROM app.products ORDER BY name`,
				`SELECT name || ' ' || price FROM `+dataSchema+`.products WHERE tenant_id = $1 ORDER BY name`)
			same(`SELECT o.quantity || ' of ' || p.name FROM app.orders o JOIN app.products p ON p.id = o.product_id ORDER BY 1`,
				`SELECT o.quantity || ' of ' || p.name FROM `+dataSchema+`.orders o JOIN `+dataSchema+`.products p ON p.id = o.product_id WHERE o.tenant_id = $1 ORDER BY 1`)
			same(`SELECT email || ' ' || email_lower || ' ' || (password_hash IS NULL) FROM auth.users ORDER BY email`,
				`SELECT email || ' ' || email_lower || ' true' FROM auth.users WHERE tenant_id = $1 ORDER BY email`)
			same(`SELECT kind || ' ' || object_key || ' ' || sha256 FROM tenants.tenant_logos ORDER BY kind`,
				`SELECT kind || ' ' || object_key || ' ' || sha256 FROM tenants.tenant_logos WHERE tenant_id = $1 ORDER BY kind`)
			same(`SELECT id || ' ' || action FROM extra.events ORDER BY id`,
				`SELECT id || ' ' || action FROM extra.events WHERE tenant_id = $1 ORDER BY id`)
			{
				same(`SELECT id || ' ' || state || ' ' || total || ' ' || coalesce(note, '-') FROM app.invoices ORDER BY id`,
					`SELECT id || ' ' || state || ' ' || total || ' ' || coalesce(note, '-') FROM `+dataSchema+`.invoices WHERE tenant_id = $1 ORDER BY id`)
			}
			// The restored tables work as tables: keys and checks hold, new
			// rows take the next ids, the enum is there.
			var next int64
			if err := restored.QueryRow(ctx, `INSERT INTO extra.events (tenant_id, action) VALUES ($1, 'new') RETURNING id`, src.ID).Scan(&next); err != nil || next != 8 {
				t.Errorf("a new event got id %d (%v); want 8, after the 7 loaded", next, err)
			}
			if _, err := restored.Exec(ctx, `INSERT INTO app.orders (tenant_id, product_id, quantity) VALUES ($1, gen_random_uuid(), 1)`, src.ID); err == nil {
				t.Error("an order for no product was accepted: the foreign key is missing")
			}
			if _, err := restored.Exec(ctx, `UPDATE app.products SET price = -1`); err == nil {
				t.Error("a negative price was accepted: the check is missing")
			}
			{
				var id int64
				err := restored.QueryRow(ctx, `INSERT INTO app.invoices (tenant_id, order_id, total)
					SELECT tenant_id, id, 1 FROM app.orders LIMIT 1 RETURNING id`).Scan(&id)
				if err != nil || id != 51 {
					t.Errorf("a new invoice got id %d (%v); want 51, after the 50 loaded", id, err)
				}
			}
			// The logos are the archive's files, as the store holds them.
			logo, err := os.ReadFile(filepath.Join(unpacked, tenancy.ObjectsDir, m.Objects[0].Key))
			if err != nil {
				t.Fatal(err)
			}
			if stored, err := e.store.Get(e.ctx, tenancy.TenantBucket(src.ID), m.Objects[0].Key); err != nil || !bytes.Equal(logo, stored) {
				t.Errorf("logo %s: %d bytes unpacked, %d stored (%v)", m.Objects[0].Key, len(logo), len(stored), err)
			}
		})
	}
}

func tableIn(m *tenancy.Manifest, name string) bool {
	for _, t := range m.Tables {
		if t.Name == name {
			return true
		}
	}
	return false
}

// The import checks the definitions and the restore script against the
// manifest like any file, and reads nothing from them; archives made
// before they existed still import.
func TestImportTakesArchivesWithOrWithoutRestoreFiles(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	entries := readEntries(t, e.export("acme"))
	restoreFiles := func(name string) bool { return name == tenancy.SchemaFile || name == tenancy.RestoreFile }
	if n := len(slices.DeleteFunc(slices.Clone(entries), func(en entry) bool { return !restoreFiles(en.name) })); n != 2 {
		t.Fatalf("the archive holds %d of schema.sql and restore.sql", n)
	}

	// Altered without the manifest knowing: refused.
	altered := slices.Clone(entries)
	for i := range altered {
		if altered[i].name == tenancy.RestoreFile {
			altered[i].data = append([]byte("\\! rm -rf ~\n"), altered[i].data...)
		}
	}
	if _, err := e.svc.Import(e.ctx, bytes.NewReader(writeEntries(t, altered)), tenancy.ImportOptions{Slug: "altered"}); err == nil ||
		!strings.Contains(err.Error(), "restore.sql") {
		t.Errorf("an altered restore.sql: %v", err)
	}

	// An archive of before: no definitions, no script.
	old := slices.DeleteFunc(slices.Clone(entries), func(en entry) bool { return restoreFiles(en.name) })
	old = withManifest(t, old, func(m *tenancy.Manifest) {
		m.Files = slices.DeleteFunc(m.Files, func(f tenancy.ManifestEntry) bool { return restoreFiles(f.Path) })
	})
	if _, err := e.svc.Import(e.ctx, bytes.NewReader(writeEntries(t, old)), tenancy.ImportOptions{Slug: "before"}); err != nil {
		t.Errorf("an archive without the restore files: %v", err)
	}
	if _, err := e.svc.Import(e.ctx, bytes.NewReader(writeEntries(t, entries)), tenancy.ImportOptions{Slug: "now"}); err != nil {
		t.Errorf("an archive with them: %v", err)
	}
}
