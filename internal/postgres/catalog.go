package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Finding is one problem in how tenant isolation is set up, with the SQL
// that fixes it.
type Finding struct {
	Table   string
	Problem string
	Fix     string
	// SQL says Fix is SQL the schema owner can run as it is, which
	// `nself tenant doctor --fix` does; other fixes are for a person.
	SQL bool
}

// platformOnly are tenant tables only the platform path uses: the
// application role is granted nothing on them, on purpose.
var platformOnly = map[string]bool{"organizations.org_tenants": true}

// AuditRLS checks every table with a tenant_id column, in every schema:
// row-level security must be enabled and forced, a policy must limit reads
// and writes to tenants.current_tenant_id(), and an index must lead with
// tenant_id. It also reports an application role that could bypass
// row-level security. No findings means isolation is set up everywhere.
func (db *DB) AuditRLS(ctx context.Context) ([]Finding, error) {
	rows, err := db.Admin.Query(ctx, `
		SELECT c.oid::regclass::text,
		       c.relrowsecurity,
		       c.relforcerowsecurity,
		       EXISTS (
		         SELECT 1 FROM pg_policy p
		         WHERE p.polrelid = c.oid
		           AND p.polcmd = '*'
		           AND p.polpermissive
		           AND pg_get_expr(p.polqual, p.polrelid) = '(tenant_id = tenants.current_tenant_id())'
		           AND pg_get_expr(p.polwithcheck, p.polrelid) = '(tenant_id = tenants.current_tenant_id())'
		       ),
		       EXISTS (
		         SELECT 1 FROM pg_index i
		         WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum
		       ),
		       c.relnamespace::regnamespace::text,
		       has_schema_privilege($1, c.relnamespace, 'USAGE')
		         AND has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE'),
		       ARRAY(SELECT s.oid::regclass::text
		             FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
		             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
		               AND d.refobjid = c.oid AND d.deptype IN ('a', 'i')
		               -- CASE keeps the check off non-sequences: the planner may
		               -- test it before the join's relkind condition.
		               AND CASE WHEN s.relkind = 'S' THEN NOT has_sequence_privilege($1, s.oid, 'USAGE') END
		             ORDER BY 1)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1`, db.AppRole)
	if err != nil {
		return nil, fmt.Errorf("audit row-level security: %w", err)
	}
	type table struct {
		name, schema                         string
		enabled, forced, policy, ix, granted bool
		sequences                            []string
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		err := r.Scan(&t.name, &t.enabled, &t.forced, &t.policy, &t.ix, &t.schema, &t.granted, &t.sequences)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit row-level security: %w", err)
	}
	var out []Finding
	app := pgx.Identifier{db.AppRole}.Sanitize()
	for _, t := range tables {
		if !t.enabled {
			out = append(out, Finding{t.name, "row-level security is not enabled",
				fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY;", t.name), true})
		}
		if !t.forced {
			out = append(out, Finding{t.name, "row-level security is not forced (the table's owner bypasses it)",
				fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY;", t.name), true})
		}
		if !t.policy {
			out = append(out, Finding{t.name, "no policy limits reads and writes to tenants.current_tenant_id()",
				fmt.Sprintf("SELECT tenants.enable_tenant_rls('%s');", strings.ReplaceAll(t.name, "'", "''")), true})
		}
		if !t.ix {
			out = append(out, Finding{t.name, "no index leads with tenant_id",
				fmt.Sprintf("CREATE INDEX ON %s (tenant_id);", t.name), true})
		}
		// The application reaches tenant rows as the application role
		// only; without any grant the table is isolated but unusable. (Some
		// tables are granted less on purpose, such as the audit log's
		// insert and select: any grant counts.)
		if !t.granted && !platformOnly[t.name] {
			out = append(out, Finding{t.name, "the application role has no access to it",
				fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s; GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s;", t.schema, app, t.name, app), true})
		}
		for _, seq := range t.sequences {
			out = append(out, Finding{t.name, fmt.Sprintf("the application role may not draw from its sequence %s, so it cannot insert", seq),
				fmt.Sprintf("GRANT USAGE ON SEQUENCE %s TO %s;", seq, app), true})
		}
	}
	if err := db.CheckAppRole(ctx); err != nil {
		out = append(out, Finding{Table: "(application role)", Problem: err.Error(),
			Fix: fmt.Sprintf("ALTER ROLE %s NOSUPERUSER NOBYPASSRLS;", pgx.Identifier{db.AppRole}.Sanitize())})
	}
	return out, nil
}

// ApplyFixes runs the SQL fixes of findings as the schema owner, in one
// transaction: every fix is applied, or none. Findings whose fix is for a
// person are skipped. It returns how many fixes it ran.
func (db *DB) ApplyFixes(ctx context.Context, findings []Finding) (int, error) {
	n := 0
	err := inTx(ctx, db.Admin, func(tx pgx.Tx) error {
		for _, f := range findings {
			if !f.SQL {
				continue
			}
			if _, err := tx.Exec(ctx, f.Fix); err != nil {
				return fmt.Errorf("%s: %s: %w", f.Table, f.Fix, err)
			}
			n++
		}
		if n == 0 {
			return nil
		}
		return recordAudit(ctx, tx, "", "doctor.fix", "", fmt.Sprintf("%d isolation fix(es) applied", n))
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
