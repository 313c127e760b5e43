package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// migrationsDir writes files (name → SQL) into a new folder, starting from
// a copy of the example folder when withExample.
func migrationsDir(t *testing.T, withExample bool, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if withExample {
		entries, err := os.ReadDir("../../examples/tenant-migrations")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join("../../examples/tenant-migrations", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	addMigrations(t, dir, files)
	return dir
}

func addMigrations(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, sql := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sql), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustUseDir(t *testing.T, db *postgres.DB, dir string) {
	t.Helper()
	if err := db.UseTenantMigrationsDir(dir); err != nil {
		t.Fatal(err)
	}
}

// asAppCommit runs fn as the application role in the tenant's context and
// commits.
func asAppCommit(t *testing.T, db *postgres.DB, tenantID string, fn func(tx pgx.Tx) error) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sell adds a product, an order, an invoice and a support ticket in the
// tenant's data schema, as the application does: through the defaults,
// the identity column and the serial key.
func sell(t *testing.T, db *postgres.DB, tenantID, schema string) {
	t.Helper()
	ctx := context.Background()
	s := pgx.Identifier{schema}.Sanitize()
	asAppCommit(t, db, tenantID, func(tx pgx.Tx) error {
		var product, order, invoice string
		var number, ticket int64
		if err := tx.QueryRow(ctx, `INSERT INTO `+s+`.products (name, price) VALUES ('Widget', 9.50) RETURNING id`).Scan(&product); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO `+s+`.orders (product_id, quantity) VALUES ($1, 2) RETURNING id`, product).Scan(&order); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO `+s+`.invoices (order_id, amount) VALUES ($1, 19) RETURNING id, number`, order).Scan(&invoice, &number); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO `+s+`.support_tickets (invoice_id, subject) VALUES ($1, 'Where is my widget?') RETURNING id`, invoice).Scan(&ticket); err != nil {
			return err
		}
		if number < 1 || ticket < 1 {
			t.Errorf("keys drawn: invoice number %d, ticket %d", number, ticket)
		}
		return nil
	})
}

// schemaFindings keeps doctor's findings about tenant data schemas and the
// tables in them.
func schemaFindings(t *testing.T, db *postgres.DB) []postgres.Finding {
	t.Helper()
	all, err := db.Doctor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []postgres.Finding
	for _, f := range all {
		if !strings.HasSuffix(f.Problem, "has no owner") {
			out = append(out, f)
		}
	}
	return out
}

func TestOperatorTenantTables(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	db, ctx := e.db, e.ctx
	svc := postgres.NewTenantService(db, tenancy.ModeHybrid)
	acme := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	globex := mustCreateTenant(t, db, "globex", tenancy.StrategyRLS)
	old := mustCreateTenant(t, db, "old", tenancy.StrategySchema)

	// The example folder, rolled out to the shared schema and the schema
	// tenant made before it.
	mustUseDir(t, db, migrationsDir(t, true, nil))
	res, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.OperatorVersion != 2 || res.Schemas != 2 || res.SchemasUpgraded != 2 || res.TenantVersion != 1 {
		t.Fatalf("migrate = %+v", res)
	}
	// A schema tenant made afterwards gets the tables at creation.
	fresh := mustCreateTenant(t, db, "fresh", tenancy.StrategySchema)
	if res, err := db.Migrate(ctx); err != nil || res.Changed() {
		t.Fatalf("second migrate: %+v, %v", res, err)
	}

	for _, s := range []string{postgres.SharedSchema, old.SchemaName, fresh.SchemaName} {
		var forced, bookkeepingHidden bool
		var applied []string
		err := db.Admin.QueryRow(ctx, `
			SELECT bool_and(c.relrowsecurity AND c.relforcerowsecurity),
			       NOT has_table_privilege($2, to_regclass($1 || '.nself_operator_migrations'), 'SELECT'),
			       (SELECT array_agg(name || ':' || length(checksum) ORDER BY version) FROM `+pgx.Identifier{s, "nself_operator_migrations"}.Sanitize()+`)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname IN ('invoices', 'support_tickets')`, s, db.AppRole).Scan(&forced, &bookkeepingHidden, &applied)
		if err != nil || !forced || !bookkeepingHidden || !reflect.DeepEqual(applied, []string{"0001_invoices.sql:64", "0002_support_tickets.sql:64"}) {
			t.Errorf("schema %s: forced %v, bookkeeping hidden %v, applied %v, %v", s, forced, bookkeepingHidden, applied, err)
		}
	}
	if f, err := db.AuditRLS(ctx); err != nil || len(f) != 0 {
		t.Errorf("AuditRLS = %+v, %v", f, err)
	}
	if f := schemaFindings(t, db); len(f) != 0 {
		t.Errorf("doctor: %+v", f)
	}

	// The application inserts through defaults, identity and serial keys;
	// each tenant sees its own rows only.
	sell(t, db, acme.ID, postgres.SharedSchema)
	sell(t, db, old.ID, old.SchemaName)
	sell(t, db, fresh.ID, fresh.SchemaName)
	asTenant(t, db, globex.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM app.invoices`) + count(t, tx, `SELECT count(*) FROM app.support_tickets`); n != 0 {
			t.Errorf("globex sees %d of acme's rows", n)
		}
		mustRefuse(t, tx, `INSERT INTO app.support_tickets (tenant_id, subject) VALUES ($1, 'planted')`, acme.ID)
	})
	asTenant(t, db, acme.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM app.invoices`); n != 1 {
			t.Errorf("acme sees %d invoices, want 1", n)
		}
		if n := count(t, tx, `SELECT count(*) FROM `+pgx.Identifier{fresh.SchemaName}.Sanitize()+`.invoices`); n != 0 {
			t.Errorf("acme sees %d invoices of fresh's schema", n)
		}
	})
	// A tenant's own schema holds its rows only.
	asTenant(t, db, old.ID, func(tx pgx.Tx) {
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.Exec(ctx, `INSERT INTO `+pgx.Identifier{fresh.SchemaName}.Sanitize()+`.support_tickets (subject) VALUES ('planted')`)
			return err
		})
		if err == nil {
			t.Error("old planted a ticket in fresh's schema")
		}
	})

	// Export and import carry the operator's tables, from the shared schema
	// and from a tenant's own.
	for _, src := range []*tenancy.Tenant{acme, old} {
		archive := e.export(src.Slug)
		got := map[string]int64{}
		for _, tb := range e.manifestOf(archive).Tables {
			got[tb.Name] = tb.Rows
		}
		if got["app.invoices"] != 1 || got["app.support_tickets"] != 1 {
			t.Errorf("export of %s: %v", src.Slug, got)
		}
		imp, err := e.svc.Import(ctx, bytes.NewReader(archive), tenancy.ImportOptions{Slug: src.Slug + "-copy"})
		if err != nil {
			t.Fatalf("import %s: %v", src.Slug, err)
		}
		from, to := postgres.SharedSchema, postgres.SharedSchema
		if src.SchemaName != "" {
			from, to = src.SchemaName, imp.Tenant.SchemaName
		}
		for _, table := range []string{"invoices", "support_tickets"} {
			a := e.rows(pgx.Identifier{from, table}.Sanitize(), src.ID)
			b := e.rows(pgx.Identifier{to, table}.Sanitize(), imp.Tenant.ID)
			if len(a) != 1 || !reflect.DeepEqual(a, b) {
				t.Errorf("%s of %s after import:\n%v\n%v", table, src.Slug, a, b)
			}
		}
	}

	// Delete removes them: the shared schema's rows, a tenant's schema.
	if _, err := svc.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteTenant(ctx, "fresh"); err != nil {
		t.Fatal(err)
	}
	if got := append(e.rows("app.invoices", acme.ID), e.rows("app.support_tickets", acme.ID)...); len(got) != 0 {
		t.Errorf("acme's rows after delete: %v", got)
	}
	var exists bool
	if err := db.Admin.QueryRow(ctx, `SELECT to_regnamespace($1) IS NOT NULL`, fresh.SchemaName).Scan(&exists); err != nil || exists {
		t.Errorf("fresh's schema after delete: %v, %v", exists, err)
	}
}

func TestOperatorMigrationsRefuseChangedFiles(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	s1 := mustCreateTenant(t, db, "sch-one", tenancy.StrategySchema)
	dir := migrationsDir(t, true, nil)
	mustUseDir(t, db, dir)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	invoices, err := os.ReadFile(filepath.Join(dir, "0001_invoices.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(dir string)
		msg    string
	}{
		{"changed", func(dir string) {
			addMigrations(t, dir, map[string]string{"0001_invoices.sql": string(invoices) + "\nCREATE INDEX ON invoices (tenant_id, status);\n"})
		}, "operator migration 0001_invoices.sql was changed after it was applied to schema app (its checksum differs): restore it and put the change in a new migration"},
		{"renumbered", func(dir string) {
			os.Rename(filepath.Join(dir, "0002_support_tickets.sql"), filepath.Join(dir, "0003_support_tickets.sql"))
		}, "operator migration 0002_support_tickets.sql was applied to schema app but is no longer in TENANT_MIGRATIONS_DIR"},
		{"renamed", func(dir string) {
			os.Rename(filepath.Join(dir, "0002_support_tickets.sql"), filepath.Join(dir, "0002_tickets.sql"))
		}, "operator migration 0002_support_tickets.sql was applied to schema app as version 2, which is now 0002_tickets.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := migrationsDir(t, true, nil)
			tc.change(d)
			mustUseDir(t, db, d)
			_, err := db.Migrate(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("migrate: %v\nwant one line with %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "migrate schema app: ") || !strings.Contains(err.Error(), "0 of 2 schemas done") {
				t.Errorf("migrate error names no schema: %v", err)
			}
			// A new schema tenant is refused too, rather than made with
			// tables other schemas do not have; doctor says why.
			if _, err := postgres.NewTenantService(db, tenancy.ModeHybrid).CreateTenant(ctx, tenancy.NewTenant{Name: "New", Strategy: tenancy.StrategySchema}); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("create schema tenant: %v", err)
			}
			f := schemaFindings(t, db)
			if len(f) != 2 || f[0].Table != "schema app" || !strings.Contains(f[0].Problem, tc.msg) || f[1].Table != "schema "+s1.SchemaName {
				t.Errorf("doctor: %+v", f)
			}
		})
	}

	// With the setting emptied, the applied migrations are still checked.
	mustUseDir(t, db, "")
	if _, err := db.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "operator migration 0001_invoices.sql was applied to schema app but is no longer in TENANT_MIGRATIONS_DIR") {
		t.Errorf("migrate without the folder: %v", err)
	}

	// A table without tenant_id is refused, and the schema keeps nothing of
	// the file.
	d := migrationsDir(t, true, map[string]string{"0003_lookup.sql": "CREATE TABLE countries (code text PRIMARY KEY);\n"})
	mustUseDir(t, db, d)
	_, err = db.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "migrate schema app: table app.countries has no tenant_id column") {
		t.Errorf("table without tenant_id: %v", err)
	}
	var exists bool
	if err := db.Admin.QueryRow(ctx, `SELECT to_regclass('app.countries') IS NOT NULL OR EXISTS (SELECT 1 FROM app.nself_operator_migrations WHERE version = 3)`).Scan(&exists); err != nil || exists {
		t.Errorf("refused migration left something: %v, %v", exists, err)
	}

	// A statement PostgreSQL points into is named with its line and column.
	d = migrationsDir(t, true, map[string]string{"0003_report.sql": "-- monthly report\nCREATE VIEW report AS\n  SELECT tenant_id, sum(amount) FROM invoices\n  WHERE issued_on > now() GROUP BY 1;\n"})
	mustUseDir(t, db, d)
	_, err = db.Migrate(ctx)
	want := `migrate schema app: operator migration 0003_report.sql, line 4, column 9: CREATE VIEW report AS SELECT tenant_id, sum(amount) FROM inv…: ERROR: column "issued_on" does not exist (SQLSTATE 42703); 0 of 2 schemas done, the rest not started: fix this and run nself db migrate again to continue`
	if err == nil || err.Error() != want {
		t.Errorf("failing statement:\n got %v\nwant %s", err, want)
	}
}

func TestDoctorReportsSchemasBehindAndTablesOutsideRLS(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	s1 := mustCreateTenant(t, db, "sch-one", tenancy.StrategySchema)
	dir := migrationsDir(t, true, nil)
	os.Remove(filepath.Join(dir, "0002_support_tickets.sql"))
	mustUseDir(t, db, dir)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if f := schemaFindings(t, db); len(f) != 0 {
		t.Fatalf("doctor after migrate: %+v", f)
	}
	// A new file not yet rolled out: every schema is behind.
	mustUseDir(t, db, migrationsDir(t, true, nil))
	f := schemaFindings(t, db)
	want := []postgres.Finding{
		{Table: "schema app", Problem: "is at operator migration 1 of 2", Fix: "nself db migrate"},
		{Table: "schema " + s1.SchemaName, Problem: "of tenant sch-one is at operator migration 1 of 2", Fix: "nself db migrate"},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("doctor:\n got %+v\nwant %+v", f, want)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Row-level security taken off an operator's table, and a table without
	// tenant_id put in a tenant's schema by hand.
	s := pgx.Identifier{s1.SchemaName}.Sanitize()
	for _, sql := range []string{
		`ALTER TABLE ` + s + `.invoices NO FORCE ROW LEVEL SECURITY`,
		`CREATE TABLE ` + s + `.notes (body text)`,
	} {
		if _, err := db.Admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	f = schemaFindings(t, db)
	var got []string
	for _, x := range f {
		got = append(got, x.Table+": "+x.Problem)
	}
	wantLines := []string{
		s1.SchemaName + ".invoices: row-level security is not forced (the table's owner bypasses it)",
		s1.SchemaName + ".notes: has no tenant_id column, so row-level security cannot keep tenants' rows apart",
	}
	if !reflect.DeepEqual(got, wantLines) {
		t.Errorf("doctor:\n got %q\nwant %q", got, wantLines)
	}
	// The missing-RLS fix is the one AuditRLS gives; migrate does not undo
	// what it did not do.
	if res, err := db.Migrate(ctx); err != nil || res.Changed() {
		t.Errorf("migrate: %+v, %v", res, err)
	}
}

// Two rollouts at once (two operators, or a deploy on two machines) take
// turns: neither fails, and each schema is migrated once.
func TestConcurrentRolloutsTakeTurns(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	for i := range 10 {
		mustCreateTenant(t, db, fmt.Sprintf("turns-%d", i), tenancy.StrategySchema)
	}
	mustUseDir(t, db, migrationsDir(t, true, nil))
	type result struct {
		res *postgres.MigrateResult
		err error
	}
	done := make(chan result, 2)
	for range 2 {
		go func() {
			res, err := db.Migrate(ctx)
			done <- result{res, err}
		}()
	}
	upgraded := 0
	for range 2 {
		r := <-done
		if r.err != nil {
			t.Fatalf("concurrent migrate: %v", r.err)
		}
		upgraded += r.res.SchemasUpgraded
	}
	if upgraded != 11 {
		t.Errorf("%d schema upgrades, want 11 (each schema once)", upgraded)
	}
}
