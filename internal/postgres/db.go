// Package postgres stores the tenancy domain in PostgreSQL through pgx.
//
// It holds two pools. App connects as the application role: a NOSUPERUSER,
// NOBYPASSRLS role that owns no table, used for all tenant data, always inside
// a transaction that first sets the tenant for that transaction only. Admin
// connects as the owner of the schema and is the platform path: migrations,
// creating and deleting tenants, listing all tenants, platform statistics.
// Those operations are about the tenant registry itself (tenants.tenants,
// which has no tenant_id) or about many tenants at once, so no single tenant
// context can serve them. Even there, rows of tenant tables are written only
// after setting that tenant's context: FORCE ROW LEVEL SECURITY binds the
// owner too.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nself/nself/internal/tenancy"
)

// DB is the database behind every service in this package.
type DB struct {
	App   *pgxpool.Pool
	Admin *pgxpool.Pool

	// AppRole is the name of the application role, to grant it access to
	// the tables migrations and tenant schemas create.
	AppRole string

	// SchemaPrefix starts the name of each schema-per-tenant schema.
	SchemaPrefix string

	// SingleTenant is MULTI_TENANCY_ENABLED=false: the registry holds the
	// default tenant only, and creating (or importing) another is refused.
	SingleTenant bool

	// Now returns the current time; tests replace it.
	Now func() time.Time

	// appGate and adminGate space out each pool's connection attempts
	// while the database is unreachable (see gate).
	appGate, adminGate *gate

	// operator holds the operator's tenant-table migrations
	// (UseTenantMigrationsDir); nil for none.
	operator *migrationSource
}

// Open connects both pools and refuses an application role that could
// bypass row-level security.
//
// During an outage the pools reconnect with backoff (see gate), and each
// call made under tenancy.WithQueryTimeout has that deadline.
func Open(ctx context.Context, appURL, adminURL string) (*DB, error) {
	appCfg, err := pgxpool.ParseConfig(appURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	adminCfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_ADMIN_URL: %w", err)
	}
	db := &DB{AppRole: appCfg.ConnConfig.User, SchemaPrefix: "tenant_", Now: time.Now}
	db.appGate = withHealth(appCfg, "application")
	db.adminGate = withHealth(adminCfg, "owner")
	if db.App, err = pgxpool.NewWithConfig(ctx, appCfg); err != nil {
		return nil, fmt.Errorf("connect DATABASE_URL: %w", err)
	}
	if db.Admin, err = pgxpool.NewWithConfig(ctx, adminCfg); err != nil {
		db.App.Close()
		return nil, fmt.Errorf("connect DATABASE_ADMIN_URL: %w", err)
	}
	if err := db.CheckAppRole(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// mayAdd refuses a new tenant other than the default on a single-tenant
// installation, whether created or imported.
func (db *DB) mayAdd(slug string) error {
	if db.SingleTenant && slug != tenancy.DefaultTenantSlug {
		return tenancy.ErrSingleTenant
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() {
	db.App.Close()
	db.Admin.Close()
}

// ErrUnsafeRole is wrapped by CheckAppRole's errors.
var ErrUnsafeRole = errors.New("unsafe application role")

// CheckAppRole verifies that the role behind the App pool is bound by
// row-level security: not a superuser, without BYPASSRLS, not a member of a
// role that is either, and owning no tenant table (through membership
// either). Isolation must never silently depend on configuration, so the
// program refuses to run otherwise.
func (db *DB) CheckAppRole(ctx context.Context) error {
	var role string
	var super, bypass bool
	err := db.App.QueryRow(ctx, `
		SELECT rolname, rolsuper, rolbypassrls
		FROM pg_roles WHERE rolname = current_user`).Scan(&role, &super, &bypass)
	if err != nil {
		return fmt.Errorf("connect DATABASE_URL: %w", err)
	}
	unsafe := func(why string) error {
		return fmt.Errorf("%w: DATABASE_URL connects as role %q, which %s; tenant isolation would silently not apply: connect as a LOGIN NOSUPERUSER NOBYPASSRLS role that owns no table", ErrUnsafeRole, role, why)
	}
	switch {
	case super:
		return unsafe("is a superuser and bypasses row-level security")
	case bypass:
		return unsafe("has BYPASSRLS")
	}
	var other string
	err = db.App.QueryRow(ctx, `
		SELECT rolname FROM pg_roles
		WHERE rolname <> current_user
		  AND pg_has_role(current_user, oid, 'MEMBER')
		  AND (rolsuper OR rolbypassrls)
		LIMIT 1`).Scan(&other)
	switch {
	case err == nil:
		return unsafe(fmt.Sprintf("is a member of %q, a role that bypasses row-level security", other))
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("check application role: %w", err)
	}
	var table string
	err = db.App.QueryRow(ctx, `
		SELECT c.oid::regclass::text
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p')
		  AND pg_has_role(current_user, c.relowner, 'MEMBER')
		  AND (n.nspname IN ('tenants', 'auth', 'app')
		       OR EXISTS (SELECT 1 FROM pg_attribute a
		                  WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
		LIMIT 1`).Scan(&table)
	switch {
	case err == nil:
		return unsafe(fmt.Sprintf("owns table %s (a table's owner is the one role that can turn its row-level security off)", table))
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("check application role: %w", err)
	}
	return nil
}
