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
	citus, err := db.IsCitus(ctx)
	if err != nil {
		return nil, fmt.Errorf("adopt: %w", err)
	}
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
		var rekey []string
		if citus {
			if rekey, err = citusAdoptKeys(ctx, db, t); err != nil {
				return nil, err
			}
		}
		plan.Tables = append(plan.Tables, t)
		plan.Statements = append(plan.Statements,
			fmt.Sprintf("ALTER TABLE %s ADD COLUMN tenant_id uuid", t),
			fmt.Sprintf("UPDATE %s SET tenant_id = '%s' WHERE tenant_id IS NULL", t, strings.ToLower(tenantID)),
			fmt.Sprintf("ALTER TABLE %s ALTER COLUMN tenant_id SET NOT NULL", t),
			fmt.Sprintf("ALTER TABLE %s ALTER COLUMN tenant_id SET DEFAULT tenants.current_tenant_id()", t),
			fmt.Sprintf("CREATE INDEX ON %s (tenant_id)", t),
		)
		plan.Statements = append(plan.Statements, rekey...)
		plan.Statements = append(plan.Statements,
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
// On Citus the adopted tables are then distributed by tenant_id with the
// other tenant tables.
func (db *DB) Adopt(ctx context.Context, plan *AdoptPlan) error {
	if err := db.adopt(ctx, plan); err != nil {
		return err
	}
	if citus, err := db.IsCitus(ctx); err != nil || !citus || len(plan.Tables) == 0 {
		return err
	}
	if _, err := db.Distribute(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrAdoptedNotDistributed, err)
	}
	return nil
}

// ErrAdoptedNotDistributed is returned by Adopt on Citus when the tables
// were adopted but distributing them failed.
var ErrAdoptedNotDistributed = errors.New("the tables were adopted but not distributed (run nself db distribute)")

func (db *DB) adopt(ctx context.Context, plan *AdoptPlan) error {
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

// citusAdoptKeys returns, for a table to adopt on Citus, the statements
// that put tenant_id first in its primary key and unique constraints:
// Citus distributes a table by tenant_id only when every such key holds
// it. A table Citus already holds (made a reference table as a global one)
// and a key another table's foreign key points at cannot be changed so,
// and are refused with the reason.
func citusAdoptKeys(ctx context.Context, db *DB, table string) ([]string, error) {
	var held bool
	if err := db.Admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass)`, table).Scan(&held); err != nil {
		return nil, fmt.Errorf("adopt %s: %w", table, err)
	}
	if held {
		return nil, tenancy.Errorf(tenancy.EINVALID, "on Citus, %s cannot be adopted: it is already a Citus table (made a reference table as a global one); run SELECT undistribute_table('%s') first", table, table)
	}
	rows, err := db.Admin.Query(ctx, `
		SELECT k.conname, k.contype = 'p',
		       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS c(n, i)
		             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = c.n ORDER BY c.i),
		       (SELECT f.conrelid::regclass::text FROM pg_constraint f
		        WHERE f.contype = 'f' AND f.confrelid = k.conrelid AND f.conindid = k.conindid LIMIT 1)
		FROM pg_constraint k
		WHERE k.conrelid = $1::regclass AND k.contype IN ('p', 'u')
		ORDER BY k.conname`, table)
	if err != nil {
		return nil, fmt.Errorf("adopt %s: %w", table, err)
	}
	type key struct {
		name     string
		primary  bool
		columns  []string
		referrer *string
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (key, error) {
		var k key
		err := r.Scan(&k.name, &k.primary, &k.columns, &k.referrer)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("adopt %s: %w", table, err)
	}
	var stmts []string
	for _, k := range keys {
		if k.referrer != nil {
			return nil, tenancy.Errorf(tenancy.EINVALID, "on Citus, %s cannot be adopted: its key %s is the target of a foreign key from %s, and Citus distributes by tenant_id only tables whose keys include it; adopt %s with it, both keys and the foreign key leading with tenant_id", table, k.name, *k.referrer, *k.referrer)
		}
		cols := []string{"tenant_id"}
		for _, c := range k.columns {
			cols = append(cols, pgx.Identifier{c}.Sanitize())
		}
		kind := "UNIQUE"
		if k.primary {
			kind = "PRIMARY KEY"
		}
		name := pgx.Identifier{k.name}.Sanitize()
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s (%s)", table, name, name, kind, strings.Join(cols, ", ")))
	}
	return stmts, nil
}
