package postgres_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// TestRolloutTo200SchemaTenants rolls the operator's migrations out to 200
// schema tenants made through the tenant service, then a migration that
// fails on one tampered schema in the middle: the rollout stops there
// naming the schema and the statement, the schemas before it keep the
// migration, and once the schema is repaired a rerun continues with the
// rest. The times are logged for docs/benchmarks.md.
func TestRolloutTo200SchemaTenants(t *testing.T) {
	t.Parallel()
	const tenants, tampered = 200, 120
	db := mustOpenDB(t)
	ctx := context.Background()

	start := time.Now()
	list := make([]*tenancy.Tenant, tenants)
	for i := range list {
		list[i] = mustCreateTenant(t, db, fmt.Sprintf("tenant-%03d", i+1), tenancy.StrategySchema)
	}
	created := time.Since(start)

	// The example tables, to the shared schema and 200 tenant schemas.
	dir := migrationsDir(t, true, nil)
	mustUseDir(t, db, dir)
	var seen []postgres.MigrateProgress
	start = time.Now()
	res, err := db.MigrateWithProgress(ctx, func(p postgres.MigrateProgress) { seen = append(seen, p) })
	rollout := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Schemas != tenants+1 || res.SchemasUpgraded != tenants+1 || res.OperatorVersion != 2 {
		t.Fatalf("rollout = %+v", res)
	}
	if len(seen) != tenants+1 || seen[0].Schema != postgres.SharedSchema || seen[tenants].SchemasDone != tenants+1 ||
		seen[tenants].Schema != list[tenants-1].SchemaName || seen[tenants].Schemas != tenants+1 {
		t.Errorf("progress: %d reports, first %+v, last %+v", len(seen), seen[0], seen[len(seen)-1])
	}
	start = time.Now()
	if res, err := db.Migrate(ctx); err != nil || res.Changed() {
		t.Fatalf("rerun: %+v, %v", res, err)
	}
	noop := time.Since(start)

	// Someone added a column by hand to one schema in the middle; the next
	// migration adds the same column and fails there.
	bad := list[tampered-1]
	if _, err := db.Admin.Exec(ctx, `ALTER TABLE `+pgx.Identifier{bad.SchemaName, "invoices"}.Sanitize()+` ADD COLUMN due_on text`); err != nil {
		t.Fatal(err)
	}
	addMigrations(t, dir, map[string]string{"0003_due_dates.sql": "-- invoices fall due\nALTER TABLE invoices ADD COLUMN paid_on date;\n\nALTER TABLE invoices\n  ADD COLUMN due_on date;\n"})
	mustUseDir(t, db, dir)
	start = time.Now()
	_, err = db.Migrate(ctx)
	failed := time.Since(start)
	want := fmt.Sprintf(`migrate schema %s (tenant %s): operator migration 0003_due_dates.sql, line 4: ALTER TABLE invoices ADD COLUMN due_on date: ERROR: column "due_on" of relation "invoices" already exists (SQLSTATE 42701); %d of %d schemas done, the rest not started: fix this and run nself db migrate again to continue`,
		bad.SchemaName, bad.Slug, tampered, tenants+1)
	if err == nil || err.Error() != want {
		t.Fatalf("failing rollout:\n got %v\nwant %s", err, want)
	}
	versions := func() map[string]int {
		rows, err := db.Admin.Query(ctx, `SELECT schema_name FROM tenants.tenants WHERE strategy = 'schema'`)
		if err != nil {
			t.Fatal(err)
		}
		schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, s := range append(schemas, postgres.SharedSchema) {
			var v int
			if err := db.Admin.QueryRow(ctx, `SELECT max(version) FROM `+pgx.Identifier{s, "nself_operator_migrations"}.Sanitize()).Scan(&v); err != nil {
				t.Fatal(err)
			}
			out[s] = v
		}
		return out
	}
	v := versions()
	for i, tn := range list {
		want := 2
		if i < tampered-1 {
			want = 3
		}
		if v[tn.SchemaName] != want {
			t.Errorf("after the failure, schema %d (%s) is at operator migration %d, want %d", i+1, tn.SchemaName, v[tn.SchemaName], want)
		}
	}
	if v[postgres.SharedSchema] != 3 {
		t.Errorf("shared schema at %d, want 3", v[postgres.SharedSchema])
	}
	// The failed schema kept nothing of the file: not even its first
	// statement.
	var paidOn bool
	if err := db.Admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'invoices' AND column_name = 'paid_on')`, bad.SchemaName).Scan(&paidOn); err != nil || paidOn {
		t.Errorf("failed schema has paid_on: %v, %v", paidOn, err)
	}
	if f := schemaFindings(t, db); len(f) != tenants-tampered+1 {
		t.Errorf("doctor reports %d schemas behind, want %d", len(f), tenants-tampered+1)
	}

	// Repaired, the rerun continues from the failed schema.
	if _, err := db.Admin.Exec(ctx, `ALTER TABLE `+pgx.Identifier{bad.SchemaName, "invoices"}.Sanitize()+` DROP COLUMN due_on`); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	res, err = db.Migrate(ctx)
	resumed := time.Since(start)
	if err != nil || res.SchemasUpgraded != tenants-tampered+1 {
		t.Fatalf("resumed rollout: %+v, %v", res, err)
	}
	for s, n := range versions() {
		if n != 3 {
			t.Errorf("schema %s at operator migration %d after the rerun", s, n)
		}
	}
	if f := schemaFindings(t, db); len(f) != 0 {
		t.Errorf("doctor after the rerun: %+v", f)
	}
	// A schema tenant made now has all three.
	fresh := mustCreateTenant(t, db, "tenant-new", tenancy.StrategySchema)
	if v := versions()[fresh.SchemaName]; v != 3 {
		t.Errorf("new tenant at operator migration %d", v)
	}

	report := fmt.Sprintf("%d schema tenants (GOMAXPROCS %d): created in %s; 2 operator migrations rolled out to %d schemas in %s (%s per schema); "+
		"rerun with nothing to do %s; third migration failing at schema %d after %s; resumed rerun of %d schemas %s",
		tenants, runtime.GOMAXPROCS(0), created.Round(time.Millisecond), tenants+1, rollout.Round(time.Millisecond),
		(rollout / time.Duration(tenants+1)).Round(10*time.Microsecond), noop.Round(time.Millisecond),
		tampered, failed.Round(time.Millisecond), tenants-tampered+1, resumed.Round(time.Millisecond))
	t.Log(report)
}
