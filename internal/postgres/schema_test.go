package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func TestSchemaStrategy(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "schema-a", tenancy.StrategySchema)
	b := mustCreateTenant(t, db, "schema-b", tenancy.StrategySchema)
	if a.SchemaName != "tenant_"+a.ID[:8] || a.Strategy != tenancy.StrategySchema {
		t.Fatalf("schema tenant = %+v", a)
	}
	sa, sb := pgx.Identifier{a.SchemaName}.Sanitize(), pgx.Identifier{b.SchemaName}.Sanitize()

	// Recorded, and migrated to the newest tenant-table version.
	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		var schema string
		var version int
		if err := tx.QueryRow(ctx, `SELECT schema_name, version FROM tenants.tenant_schemas`).Scan(&schema, &version); err != nil || schema != a.SchemaName || version < 1 {
			t.Errorf("tenant_schemas: %q v%d, %v", schema, version, err)
		}
	})
	// Each tenant writes a row into its own schema, in its own context.
	for _, w := range []struct{ id, schema string }{{a.ID, sa}, {b.ID, sb}} {
		err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, w.id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+w.schema+`.products (name) VALUES ('widget')`)
			return err
		})
		if err != nil {
			t.Fatalf("tenant writes its own schema: %v", err)
		}
	}

	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		// Tenant A reaching into B's schema finds nothing and can write nothing.
		if n := count(t, tx, `SELECT count(*) FROM `+sb+`.products`); n != 0 {
			t.Errorf("tenant A sees %d rows in tenant B's schema", n)
		}
		mustRefuse(t, tx, `INSERT INTO `+sb+`.products (tenant_id, name) VALUES ($1, 'planted')`, b.ID)
		// Nor can it plant rows of its own in B's schema.
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.Exec(ctx, `INSERT INTO `+sb+`.products (name) VALUES ('planted')`)
			return err
		})
		if tenancy.ErrorCode(postgres.PostgresTranslate(err)) != tenancy.EINVALID {
			t.Errorf("tenant A planting its own row in B's schema: %v, want a check violation", err)
		}
	})
	asTenant(t, db, "", func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM `+sb+`.products`); n != 0 {
			t.Errorf("with no tenant, %d rows of tenant B's schema are visible", n)
		}
	})
	asTenant(t, db, b.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM `+sb+`.products`); n != 1 {
			t.Errorf("tenant B sees %d of its own rows, want 1", n)
		}
		// Migration bookkeeping is not the application's.
		mustRefuse(t, tx, `SELECT count(*) FROM `+sb+`.nself_migrations`)
	})

	// Migrate again: nothing to do, and the schemas stay as they are.
	res, err := db.Migrate(ctx)
	if err != nil || res.Changed() {
		t.Errorf("second migrate: %+v, %v", res, err)
	}

	// Delete drops the schema and leaves the other tenant's alone.
	svc := postgres.NewTenantService(db, tenancy.ModeHybrid)
	if _, err := svc.DeleteTenant(ctx, b.Slug); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := db.Admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, b.SchemaName).Scan(&exists); err != nil || exists {
		t.Errorf("schema of deleted tenant exists: %v, %v", exists, err)
	}
	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM `+sa+`.products`); n != 1 {
			t.Errorf("tenant A's schema rows after B's deletion = %d, want 1", n)
		}
	})
}
