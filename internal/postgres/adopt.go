package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// AdoptPlan is the SQL that puts existing tables under tenancy.
type AdoptPlan struct {
	Statements []string
	// Tables names the tables the statements adopt.
	Tables []string
	// Skipped names tables that already have a tenant_id column.
	Skipped []string
}

// PlanAdopt writes the statements that make existing tables tenant-aware,
// the guide's migration path: add tenant_id, give every existing row to
// tenantID, make it NOT NULL (defaulting to the current tenant), index it,
// force row-level security with the tenant policy, and grant the
// application role access to the table, its schema and the sequences its
// serial and identity columns draw from. Tables that already have tenant_id are skipped.
func (db *DB) PlanAdopt(ctx context.Context, tenantID string, tables []string) (*AdoptPlan, error) {
	if !tenancy.IsUUID(tenantID) {
		return nil, fmt.Errorf("tenant id %q is not a uuid", tenantID)
	}
	plan := &AdoptPlan{}
	app := pgx.Identifier{db.AppRole}.Sanitize()
	for _, name := range tables {
		var qualified, schema string
		var hasTenant bool
		var sequences []string
		err := db.Admin.QueryRow(ctx, `
			SELECT c.oid::regclass::text, c.relnamespace::regnamespace::text,
			       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
			       ARRAY(SELECT s.oid::regclass::text
			             FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
			             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
			               AND d.refobjid = c.oid AND d.deptype IN ('a', 'i')
			             ORDER BY 1)
			FROM pg_class c
			WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`, name).Scan(&qualified, &schema, &hasTenant, &sequences)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, tenancy.Errorf(tenancy.ENOTFOUND, "no table %s", tenancy.Quote(name))
		} else if err != nil {
			return nil, fmt.Errorf("adopt %s: %w", name, err)
		}
		if hasTenant {
			plan.Skipped = append(plan.Skipped, qualified)
			continue
		}
		// qualified comes from regclass output: already quoted where needed.
		t := qualified
		plan.Tables = append(plan.Tables, t)
		plan.Statements = append(plan.Statements,
			fmt.Sprintf("ALTER TABLE %s ADD COLUMN tenant_id uuid", t),
			fmt.Sprintf("UPDATE %s SET tenant_id = '%s' WHERE tenant_id IS NULL", t, strings.ToLower(tenantID)),
			fmt.Sprintf("ALTER TABLE %s ALTER COLUMN tenant_id SET NOT NULL", t),
			fmt.Sprintf("ALTER TABLE %s ALTER COLUMN tenant_id SET DEFAULT tenants.current_tenant_id()", t),
			fmt.Sprintf("CREATE INDEX ON %s (tenant_id)", t),
			fmt.Sprintf("SELECT tenants.enable_tenant_rls('%s')", strings.ReplaceAll(t, "'", "''")),
			fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", schema, app),
			fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s", t, app),
		)
		// Inserts draw from the sequences behind serial and identity
		// columns; without these grants the application role could read
		// its rows but never add one. USAGE only: SELECT would show
		// last_value, which counts every tenant's rows.
		for _, seq := range sequences {
			plan.Statements = append(plan.Statements, fmt.Sprintf("GRANT USAGE ON SEQUENCE %s TO %s", seq, app))
		}
	}
	return plan, nil
}

// Adopt runs a plan in one transaction: all tables are adopted, or none.
func (db *DB) Adopt(ctx context.Context, plan *AdoptPlan) error {
	return inTx(ctx, db.Admin, func(tx pgx.Tx) error {
		for _, stmt := range plan.Statements {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", stmt, err)
			}
		}
		if len(plan.Tables) == 0 {
			return nil
		}
		return recordAudit(ctx, tx, "", "table.adopt", strings.Join(plan.Tables, ", "),
			fmt.Sprintf("%d table(s) put under tenant row-level security", len(plan.Tables)))
	})
}
