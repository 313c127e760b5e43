package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nself/nself/internal/tenancy"
)

// Doctor checks the database for what breaks or weakens tenant isolation
// and tenancy: every finding of AuditRLS (tables with tenant_id lacking
// forced row-level security, the tenant policy or an index; an
// application role that could bypass it), tenants without an owner,
// tenant data schemas that are missing, behind the tenant-table
// migrations (built-in or the operator's) or hold a table without
// tenant_id, and custom domains left unverified for more than a week.
// Each finding carries the SQL (or command) that fixes it. It reads across
// tenants: the platform path.
func (db *DB) Doctor(ctx context.Context) ([]Finding, error) {
	out, err := db.AuditRLS(ctx)
	if err != nil {
		return nil, err
	}
	for _, check := range []func(context.Context) ([]Finding, error){
		db.ownerlessTenants, db.tenantSchemas, db.staleDomains, db.undistributed,
	} {
		f, err := check(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	return out, nil
}

// ownerlessTenants finds live tenants no member owns, except the default
// tenant that init makes for existing data.
func (db *DB) ownerlessTenants(ctx context.Context) ([]Finding, error) {
	// Memberships are tenant rows: each tenant is counted in its own
	// context, one transaction per tenant.
	rows, err := db.Admin.Query(ctx, `
		SELECT id::text, slug FROM tenants.tenants
		WHERE status <> 'deleted' AND slug <> $1
		ORDER BY slug`, tenancy.DefaultTenantSlug)
	if err != nil {
		return nil, fmt.Errorf("doctor: list tenants: %w", err)
	}
	type tenant struct{ id, slug string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tenant, error) {
		var t tenant
		err := r.Scan(&t.id, &t.slug)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("doctor: list tenants: %w", err)
	}
	var out []Finding
	for _, t := range list {
		var owners int
		err := readInTenant(ctx, db.App, t.id, "", func(rows pgx.Rows) error {
			if rows.Next() {
				return rows.Scan(&owners)
			}
			return nil
		}, `SELECT count(*) FROM tenants.tenant_members WHERE tenant_id = $1 AND role = 'owner'`, t.id)
		if err != nil {
			return nil, fmt.Errorf("doctor: owners of %s: %w", t.slug, err)
		}
		if owners == 0 {
			out = append(out, Finding{Table: "tenant " + t.slug, Problem: "has no owner",
				Fix: fmt.Sprintf("nself tenant member add %s USER owner", t.slug)})
		}
	}
	return out, nil
}

// tenantSchemas checks the tenant data schemas (the shared one and each
// schema tenant's): a schema missing, behind the built-in or the
// operator's tenant-table migrations, or whose applied operator migrations
// no longer match the files; and tables in them without a tenant_id
// column, which row-level security cannot split between tenants (tables
// with one are AuditRLS's).
func (db *DB) tenantSchemas(ctx context.Context) ([]Finding, error) {
	sources, err := db.tenantSources()
	if err != nil {
		return nil, err
	}
	targets, err := db.dataSchemas(ctx)
	if err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	var out []Finding
	for _, t := range targets {
		of := ""
		if t.slug != "" {
			of = "of tenant " + t.slug + " "
		}
		var exists bool
		if err := db.Admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, t.name).Scan(&exists); err != nil {
			return nil, fmt.Errorf("doctor: schema %s: %w", t.name, err)
		}
		if !exists {
			out = append(out, Finding{Table: "schema " + t.name, Problem: of + "is missing",
				Fix: "restore it from a backup; nself db migrate recreates an empty one"})
			continue
		}
		st, err := readSchemaState(ctx, db.Admin, t.name, sources)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("doctor: schema %s: %w", t.name, err)
			}
			out = append(out, Finding{Table: "schema " + t.name, Problem: of + "does not match TENANT_MIGRATIONS_DIR: " + err.Error(),
				Fix: "put back the files as they were applied (a change goes in a new migration), then nself db migrate"})
			continue
		}
		var behind []string
		for i, src := range sources {
			if st.current[i] < src.newest() {
				behind = append(behind, fmt.Sprintf("%s %d of %d", src.kind, st.current[i], src.newest()))
			}
		}
		if len(behind) > 0 {
			out = append(out, Finding{Table: "schema " + t.name, Problem: of + "is at " + strings.Join(behind, ", "),
				Fix: "nself db migrate"})
		}
		rows, err := db.Admin.Query(ctx, tenantTablesOfSchema, t.name)
		if err != nil {
			return nil, fmt.Errorf("doctor: tables of %s: %w", t.name, err)
		}
		for rows.Next() {
			var name string
			var hasTenant, secured, ix bool
			if err := rows.Scan(&name, &hasTenant, &secured, &ix); err != nil {
				rows.Close()
				return nil, fmt.Errorf("doctor: tables of %s: %w", t.name, err)
			}
			if !hasTenant {
				out = append(out, Finding{Table: name, Problem: "has no tenant_id column, so row-level security cannot keep tenants' rows apart",
					Fix: fmt.Sprintf("ALTER TABLE %s ADD COLUMN tenant_id uuid NOT NULL DEFAULT tenants.current_tenant_id(); SELECT tenants.enable_tenant_rls('%s'); CREATE INDEX ON %s (tenant_id);", name, name, name)})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("doctor: tables of %s: %w", t.name, err)
		}
	}
	return out, nil
}

// staleDomains finds custom domains added more than a week ago and never
// verified.
func (db *DB) staleDomains(ctx context.Context) ([]Finding, error) {
	rows, err := db.Admin.Query(ctx, `
		SELECT t.slug, d.domain
		FROM tenants.tenant_domains d
		JOIN tenants.tenants t ON t.id = d.tenant_id
		WHERE NOT d.verified AND d.created_at < $1
		ORDER BY t.slug, d.domain`, db.Now().Add(-7*24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("doctor: domains: %w", err)
	}
	type domain struct{ slug, name string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain, error) {
		var d domain
		err := r.Scan(&d.slug, &d.name)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("doctor: domains: %w", err)
	}
	var out []Finding
	for _, d := range list {
		out = append(out, Finding{Table: "domain " + d.name, Problem: fmt.Sprintf("of tenant %s has been unverified for more than a week", d.slug),
			Fix: fmt.Sprintf("nself tenant domain verify %s %s   (or: nself tenant domain remove %s %s)", d.slug, d.name, d.slug, d.name)})
	}
	return out, nil
}

// undistributed finds, on Citus, tenant tables that are not distributed by
// tenant_id: their rows stay on the coordinator, and a query joining them
// with the distributed tenant tables is refused or fans out.
func (db *DB) undistributed(ctx context.Context) ([]Finding, error) {
	tables, err := db.LocalTenantTables(ctx)
	if err != nil {
		return nil, fmt.Errorf("doctor: Citus tables: %w", err)
	}
	var out []Finding
	for _, t := range tables {
		// Citus distributes a table by tenant_id only when each of its
		// keys holds tenant_id; a key without it is the first thing to mend.
		var key string
		if err := db.Admin.QueryRow(ctx, `
			SELECT coalesce(min(k.conname), '') FROM pg_constraint k
			WHERE k.conrelid = $1::regclass AND k.contype IN ('p', 'u')
			  AND NOT EXISTS (SELECT 1 FROM pg_attribute a
			                  WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) AND a.attname = 'tenant_id')`, t).Scan(&key); err != nil {
			return nil, fmt.Errorf("doctor: keys of %s: %w", t, err)
		}
		fix := "nself db distribute (a table Citus made a local table must first be undistributed: SELECT undistribute_table('" + t + "'))"
		if key != "" {
			fix = "put tenant_id first in its key " + key + " (and in the foreign keys that point at it), then nself db distribute"
		}
		out = append(out, Finding{Table: t, Problem: "is a tenant table left local on Citus (not distributed by tenant_id)", Fix: fix})
	}
	return out, nil
}
