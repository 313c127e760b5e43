package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// Doctor checks the database for what breaks or weakens tenant isolation
// and tenancy: every finding of AuditRLS (tables with tenant_id lacking
// forced row-level security, the tenant policy or an index; an
// application role that could bypass it), tenants without an owner,
// schema-per-tenant tenants whose schema is missing or behind the tenant
// migrations, and custom domains left unverified for more than a week.
// Each finding carries the SQL (or command) that fixes it. It reads across
// tenants: the platform path.
func (db *DB) Doctor(ctx context.Context) ([]Finding, error) {
	out, err := db.AuditRLS(ctx)
	if err != nil {
		return nil, err
	}
	for _, check := range []func(context.Context) ([]Finding, error){
		db.ownerlessTenants, db.tenantSchemas, db.staleDomains,
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

// tenantSchemas finds schema-per-tenant tenants whose schema is missing or
// behind the newest tenant-table migration.
func (db *DB) tenantSchemas(ctx context.Context) ([]Finding, error) {
	tm, err := tenantMigrations()
	if err != nil {
		return nil, err
	}
	newest := tm[len(tm)-1].version
	rows, err := db.Admin.Query(ctx, `
		SELECT t.slug, t.schema_name, n.oid IS NOT NULL
		FROM tenants.tenants t
		LEFT JOIN pg_namespace n ON n.nspname = t.schema_name
		WHERE t.strategy = 'schema' AND t.status <> 'deleted'
		ORDER BY t.slug`)
	if err != nil {
		return nil, fmt.Errorf("doctor: tenant schemas: %w", err)
	}
	type schema struct {
		slug, name string
		exists     bool
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (schema, error) {
		var s schema
		err := r.Scan(&s.slug, &s.name, &s.exists)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("doctor: tenant schemas: %w", err)
	}
	var out []Finding
	for _, s := range list {
		if !s.exists {
			out = append(out, Finding{Table: "schema " + s.name, Problem: fmt.Sprintf("of tenant %s is missing", s.slug),
				Fix: "restore it from a backup; nself db migrate recreates an empty one"})
			continue
		}
		var version int
		err := db.Admin.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+pgx.Identifier{s.name, "nself_migrations"}.Sanitize()).Scan(&version)
		if err != nil {
			return nil, fmt.Errorf("doctor: version of %s: %w", s.name, err)
		}
		if version < newest {
			out = append(out, Finding{Table: "schema " + s.name, Problem: fmt.Sprintf("of tenant %s is at tenant migration %d of %d", s.slug, version, newest),
				Fix: "nself db migrate"})
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
