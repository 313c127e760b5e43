package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Finding is one problem in how tenant isolation is set up, with the SQL
// that fixes it.
type Finding struct {
	Table   string
	Problem string
	Fix     string
}

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
		       )
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("audit row-level security: %w", err)
	}
	type table struct {
		name                        string
		enabled, forced, policy, ix bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		err := r.Scan(&t.name, &t.enabled, &t.forced, &t.policy, &t.ix)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit row-level security: %w", err)
	}
	var out []Finding
	for _, t := range tables {
		if !t.enabled {
			out = append(out, Finding{t.name, "row-level security is not enabled",
				fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY;", t.name)})
		}
		if !t.forced {
			out = append(out, Finding{t.name, "row-level security is not forced (the table's owner bypasses it)",
				fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY;", t.name)})
		}
		if !t.policy {
			out = append(out, Finding{t.name, "no policy limits reads and writes to tenants.current_tenant_id()",
				fmt.Sprintf("SELECT tenants.enable_tenant_rls('%s');", t.name)})
		}
		if !t.ix {
			out = append(out, Finding{t.name, "no index leads with tenant_id",
				fmt.Sprintf("CREATE INDEX ON %s (tenant_id);", t.name)})
		}
	}
	if err := db.CheckAppRole(ctx); err != nil {
		out = append(out, Finding{Table: "(application role)", Problem: err.Error(),
			Fix: fmt.Sprintf("ALTER ROLE %s NOSUPERUSER NOBYPASSRLS;", pgx.Identifier{db.AppRole}.Sanitize())})
	}
	return out, nil
}
