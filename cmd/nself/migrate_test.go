package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
)

// copyExamples copies the example tenant migrations into a folder of the
// test's own.
func copyExamples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, err := filepath.Abs("../../examples/tenant-migrations")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The guide's custom tenant tables: the operator's folder rolled out by db
// migrate to the shared schema and every schema tenant, new schema tenants
// made with them, doctor telling schemas behind; a malformed folder and a
// schema that fails stop with one line, and a rerun continues.
func TestDBMigrateOperatorTables(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	schemaOf := func(slug string) string {
		var s string
		if err := admin.QueryRow(ctx, `SELECT schema_name FROM tenants.tenants WHERE slug = $1`, slug).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	hasInvoices := func(schema string) bool {
		var ok bool
		if err := admin.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, "invoices"}.Sanitize()).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}

	newCLI(t, urls).ok("tenant", "create", "Early", "--slug", "early", "--strategy", "schema", "--owner", "ann@early.example")
	early := schemaOf("early")
	dir := copyExamples(t)
	c := newCLI(t, urls, "TENANT_MIGRATIONS_DIR="+dir)

	r := c.run("", "tenant", "doctor")
	if r.code != 1 {
		t.Errorf("doctor before the rollout: exit %d", r.code)
	}
	mustMatch(t, r.out,
		`^✗ schema app: is at operator migration 0 of 2$`,
		`^✗ schema `+early+`: of tenant early is at operator migration 0 of 2$`,
		`^    fix: nself db migrate$`)

	r = c.run("", "db", "migrate")
	if r.code != 0 || r.err != "" {
		t.Fatalf("db migrate: exit %d, stderr %q", r.code, r.err)
	}
	mustMatch(t, r.out, `^✓ Tenant tables brought up to date in 2 of 2 schema\(s\): tenant tables at version 1, operator migrations at version 2$`)
	mustMatch(t, c.ok("db", "migrate"), `^✓ Database is up to date: schema at version \d+, tenant tables at version 1, operator migrations at version 2; nothing changed$`)
	c.ok("tenant", "create", "Late", "--slug", "late", "--strategy", "schema", "--owner", "bob@late.example")
	late := schemaOf("late")
	if !hasInvoices(postgres.SharedSchema) || !hasInvoices(early) || !hasInvoices(late) {
		t.Errorf("invoices missing: app %v, early %v, late %v", hasInvoices(postgres.SharedSchema), hasInvoices(early), hasInvoices(late))
	}
	mustMatch(t, c.ok("tenant", "doctor"), `^✓ No problems found$`)
	mustMatch(t, c.ok("tenant", "test-isolation"), `^✓ All tenant isolation tests passed$`)

	// A malformed folder is refused before anything is touched.
	bad := copyExamples(t)
	os.WriteFile(filepath.Join(bad, "invoices_v2.sql"), []byte("ALTER TABLE invoices ADD COLUMN note text;"), 0o644)
	r = newCLI(t, urls, "TENANT_MIGRATIONS_DIR="+bad).run("", "db", "migrate")
	if r.code != 1 || r.err != "error: TENANT_MIGRATIONS_DIR "+bad+": invoices_v2.sql: the name must be a positive number, an underscore and a name of letters, digits, _ . or -, ending in .sql (as 0002_invoices.sql)\n" {
		t.Errorf("malformed folder: exit %d, stderr %q", r.code, r.err)
	}

	// The late tenant's schema was changed by hand: the rollout stops there,
	// the schemas before it keep the migration, and after the repair a
	// rerun does the rest.
	if _, err := admin.Exec(ctx, `ALTER TABLE `+pgx.Identifier{late, "invoices"}.Sanitize()+` ADD COLUMN note text`); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "0003_invoice_notes.sql"), []byte("ALTER TABLE invoices ADD COLUMN note text;\n"), 0o644)
	r = c.run("", "db", "migrate")
	want := `error: migrate schema ` + late + ` (tenant late): operator migration 0003_invoice_notes.sql, line 1: ALTER TABLE invoices ADD COLUMN note text: ERROR: column "note" of relation "invoices" already exists (SQLSTATE 42701); 2 of 3 schemas done, the rest not started: fix this and run nself db migrate again to continue` + "\n"
	if r.code != 1 || r.err != want {
		t.Fatalf("failing rollout: exit %d, stderr\n%q\nwant\n%q", r.code, r.err, want)
	}
	r = c.run("", "tenant", "doctor")
	mustMatch(t, r.out, `^✗ schema `+late+`: of tenant late is at operator migration 2 of 3$`)
	if strings.Contains(r.out, "schema app:") || strings.Contains(r.out, "schema "+early) {
		t.Errorf("doctor reports schemas the rollout did:\n%s", r.out)
	}
	if _, err := admin.Exec(ctx, `ALTER TABLE `+pgx.Identifier{late, "invoices"}.Sanitize()+` DROP COLUMN note`); err != nil {
		t.Fatal(err)
	}
	mustMatch(t, c.ok("db", "migrate"), `^✓ Tenant tables brought up to date in 1 of 3 schema\(s\): tenant tables at version 1, operator migrations at version 3$`)
	mustMatch(t, c.ok("tenant", "doctor"), `^✓ No problems found$`)
}

// On a terminal, db migrate draws a bar of the schemas done.
func TestDBMigrateProgressBarOnATerminal(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	newCLI(t, urls).ok("tenant", "create", "Early", "--slug", "early", "--strategy", "schema")
	c := newCLI(t, urls, "TENANT_MIGRATIONS_DIR="+copyExamples(t))
	// script(1) runs the command on a pseudo-terminal.
	cmd := exec.Command("script", "-qec", binary+" db migrate", "/dev/null")
	cmd.Env = c.env
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("db migrate on a terminal: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\r["+strings.Repeat("█", 30)+"] 100%  schemas 2/2  tenant_") ||
		!strings.Contains(string(out), "✓ Tenant tables brought up to date in 2 of 2 schema(s)") {
		t.Errorf("terminal shows %q", out)
	}
}

func TestMigrateProgressBar(t *testing.T) {
	var b strings.Builder
	bar := &progress{w: &b, tty: true}
	bar.schemas(postgres.MigrateProgress{Schemas: 201, SchemasDone: 50, Schema: "tenant_0a1b2c3d"})
	bar.done()
	line := "\r[" + strings.Repeat("█", 7) + strings.Repeat("░", 23) + "]  25%  schemas 50/201  tenant_0a1b2c3d\x1b[K"
	if got := b.String(); got != line+line+"\n" {
		t.Errorf("bar = %q", got)
	}
	// Nothing to roll out: no bar at all.
	b.Reset()
	idle := &progress{w: &b, tty: true}
	idle.done()
	if b.Len() != 0 {
		t.Errorf("idle bar drew %q", b.String())
	}
}
