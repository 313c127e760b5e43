package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/migrations"
)

// SharedSchema holds the tenant data tables of tenants isolated by
// row-level security.
const SharedSchema = tenancy.DataSchema

// MigrateResult says what Migrate did.
type MigrateResult struct {
	// Applied lists the platform migration versions applied by this run.
	Applied []int64
	// Version is the platform schema version after the run.
	Version int64
	// TenantVersion is the newest tenant-table migration.
	TenantVersion int
	// SchemasUpgraded counts schemas (the shared one included) that
	// received tenant-table migrations in this run.
	SchemasUpgraded int
}

// Changed reports whether the run changed anything.
func (r *MigrateResult) Changed() bool { return len(r.Applied) > 0 || r.SchemasUpgraded > 0 }

// Migrate applies the platform migrations, then the tenant-table migrations
// to the shared schema and to every tenant schema, and grants the
// application role what it needs. Running it again changes nothing. A
// PostgreSQL advisory lock keeps two processes from migrating at once.
func (db *DB) Migrate(ctx context.Context) (*MigrateResult, error) {
	sqlDB := stdlib.OpenDBFromPool(db.Admin)
	defer sqlDB.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.Platform,
		goose.WithSessionLocker(locker),
		goose.WithSlog(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply migrations: %w", err)
	}
	res := &MigrateResult{}
	for _, r := range results {
		res.Applied = append(res.Applied, r.Source.Version)
	}
	if res.Version, err = p.GetDBVersion(ctx); err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	if err := inTx(ctx, db.Admin, func(tx pgx.Tx) error { return db.grantApp(ctx, tx) }); err != nil {
		return nil, fmt.Errorf("grant application role: %w", err)
	}
	tm, err := tenantMigrations()
	if err != nil {
		return nil, err
	}
	res.TenantVersion = tm[len(tm)-1].version

	// The shared schema first, then each tenant's own.
	n, err := db.upgradeSchema(ctx, SharedSchema, "", tm)
	if err != nil {
		return nil, err
	}
	res.SchemasUpgraded += n
	rows, err := db.Admin.Query(ctx, `
		SELECT id, schema_name FROM tenants.tenants
		WHERE strategy = 'schema' AND status <> 'deleted'
		ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("list tenant schemas: %w", err)
	}
	type target struct{ tenantID, schema string }
	targets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (target, error) {
		var t target
		err := r.Scan(&t.tenantID, &t.schema)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tenant schemas: %w", err)
	}
	for _, t := range targets {
		n, err := db.upgradeSchema(ctx, t.schema, t.tenantID, tm)
		if err != nil {
			return nil, err
		}
		res.SchemasUpgraded += n
	}
	if res.Changed() {
		summary := fmt.Sprintf("%d migration(s) applied, schema at version %d; tenant tables at version %d in %d schema(s)",
			len(res.Applied), res.Version, res.TenantVersion, res.SchemasUpgraded)
		if err := inTx(ctx, db.Admin, func(tx pgx.Tx) error {
			return recordAudit(ctx, tx, "", "db.migrate", "", summary)
		}); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// upgradeSchema applies pending tenant-table migrations to one schema in a
// transaction of its own, and reports whether it applied any.
func (db *DB) upgradeSchema(ctx context.Context, schema, tenantID string, tm []tenantMigration) (int, error) {
	var applied int
	err := inTx(ctx, db.Admin, func(tx pgx.Tx) error {
		if tenantID != "" {
			if err := setTenant(ctx, tx, tenantID, ""); err != nil {
				return err
			}
		}
		var err error
		applied, err = db.applyTenantMigrations(ctx, tx, schema, tenantID, tm)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	if applied > 0 {
		return 1, nil
	}
	return 0, nil
}

type tenantMigration struct {
	version int
	name    string
	sql     string
}

// tenantMigrations reads the embedded tenant-table migrations, ordered by
// the number their file name starts with.
func tenantMigrations() ([]tenantMigration, error) {
	files, err := fs.Glob(migrations.Tenant, "tenant/*.sql")
	if err != nil {
		return nil, err
	}
	var out []tenantMigration
	for _, f := range files {
		name := path.Base(f)
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("tenant migration %s: name must start with a positive number and an underscore", name)
		}
		b, err := fs.ReadFile(migrations.Tenant, f)
		if err != nil {
			return nil, err
		}
		out = append(out, tenantMigration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("tenant migrations %s and %s share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no tenant migrations embedded")
	}
	return out, nil
}

// applyTenantMigrations brings one schema up to the newest tenant-table
// migration inside tx, records each version in the schema's own
// nself_migrations table, and grants the application role its tables. For
// a tenant's own schema the version is also kept in tenants.tenant_schemas
// (tx must then be in that tenant's context). It returns how many
// migrations it applied.
func (db *DB) applyTenantMigrations(ctx context.Context, tx pgx.Tx, schema, tenantID string, tm []tenantMigration) (int, error) {
	s := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s+`.nself_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, err
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+s+`.nself_migrations`).Scan(&current); err != nil {
		return 0, err
	}
	// Unqualified names in the files land in this schema; functions such as
	// tenants.current_tenant_id() are always qualified.
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+s+`, public`); err != nil {
		return 0, err
	}
	applied := 0
	for _, m := range tm {
		if m.version <= current {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return 0, fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.nself_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return 0, err
		}
		current = m.version
		applied++
	}
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO DEFAULT`); err != nil {
		return 0, err
	}
	if err := db.grantSchema(ctx, tx, schema); err != nil {
		return 0, err
	}
	if tenantID != "" {
		if err := pinSchemaToTenant(ctx, tx, schema, tenantID); err != nil {
			return 0, err
		}
	}
	if tenantID != "" && applied > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE tenants.tenant_schemas SET version = $2, updated_at = now()
			WHERE tenant_id = $1`, tenantID, current); err != nil {
			return 0, err
		}
	}
	return applied, nil
}

// pinSchemaToTenant adds to every table of a tenant's own schema a check
// that its rows belong to that tenant. Row-level security alone would let
// tenant A, in its own context, write rows marked as A's into B's schema;
// with the check, a tenant's schema holds that tenant's rows only.
func pinSchemaToTenant(ctx context.Context, tx pgx.Tx, schema, tenantID string) error {
	if !tenancy.IsUUID(tenantID) {
		return fmt.Errorf("tenant id %q is not a uuid", tenantID)
	}
	rows, err := tx.Query(ctx, `
		SELECT c.oid::regclass::text
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.conname = 'tenant_only')`, schema)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, t := range tables {
		// The id was checked to be a uuid above: it cannot break out of the literal.
		if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT tenant_only CHECK (tenant_id = '%s'::uuid)`, t, tenantID)); err != nil {
			return err
		}
	}
	return nil
}

// grantApp grants the application role exactly what it needs on the
// platform's tables: data access to tenant tables (row-level security
// decides which rows), adding to and reading its tenant's audit log,
// reading plans and its own tenant's registry row, and nothing on migration
// bookkeeping or the platform's own audit log.
func (db *DB) grantApp(ctx context.Context, tx pgx.Tx) error {
	role := pgx.Identifier{db.AppRole}.Sanitize()
	stmts := []string{
		`GRANT USAGE ON SCHEMA tenants, auth, audit, ` + SharedSchema + ` TO ` + role,
		`GRANT SELECT ON tenants.tenants, tenants.tenant_schemas, public.billing_plans TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON
			tenants.tenant_domains, tenants.tenant_members, tenants.tenant_settings, tenants.tenant_invitations,
			tenants.tenant_invitation_mails,
			tenants.tenant_mail_outbox,
			tenants.tenant_email_templates,
			auth.users, auth.sessions, auth.refresh_tokens, auth.api_keys, auth.password_tokens,
			tenants.tenant_themes,
			tenants.tenant_logos,
			tenants.tenant_exports,
			public.billing_usage_records
		 TO ` + role,
		// Counters are added to, never removed; payments are Stripe's word,
		// written on the platform path.
		`GRANT SELECT, INSERT, UPDATE ON public.billing_usage_counters, public.billing_usage_daily TO ` + role,
		`GRANT SELECT ON public.billing_payments TO ` + role,
		// The audit log is append-only: entries are added and read, never
		// changed or removed by the application.
		`GRANT SELECT, INSERT ON audit.events TO ` + role,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// grantSchema grants the application role data access to a tenant data
// schema's tables; row-level security inside still decides which rows.
func (db *DB) grantSchema(ctx context.Context, tx pgx.Tx, schema string) error {
	role := pgx.Identifier{db.AppRole}.Sanitize()
	s := pgx.Identifier{schema}.Sanitize()
	for _, stmt := range []string{
		`GRANT USAGE ON SCHEMA ` + s + ` TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + s + ` TO ` + role,
		`REVOKE ALL ON ` + s + `.nself_migrations FROM ` + role,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}
