package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	// TenantVersion is the newest built-in tenant-table migration.
	TenantVersion int
	// OperatorVersion is the newest of the operator's own tenant-table
	// migrations (TENANT_MIGRATIONS_DIR); 0 when there are none.
	OperatorVersion int
	// Schemas counts the tenant data schemas, the shared one included.
	Schemas int
	// SchemasUpgraded counts schemas (the shared one included) that
	// received tenant-table migrations in this run.
	SchemasUpgraded int
	// Distributed says which tables became Citus tables in this run, on
	// a database with the citus extension; nil otherwise.
	Distributed *DistributeResult
}

// Changed reports whether the run changed anything.
func (r *MigrateResult) Changed() bool {
	return len(r.Applied) > 0 || r.SchemasUpgraded > 0 || (r.Distributed != nil && r.Distributed.Changed())
}

// MigrateProgress is how far the rollout of tenant-table migrations to the
// tenant data schemas has come.
type MigrateProgress struct {
	Schemas, SchemasDone int
	// Schema is the schema done last.
	Schema string
}

// Migrate applies the platform migrations, then the tenant-table migrations
// to the shared schema and to every tenant schema, and grants the
// application role what it needs. Running it again changes nothing.
func (db *DB) Migrate(ctx context.Context) (*MigrateResult, error) {
	return db.MigrateWithProgress(ctx, nil)
}

// MigrateWithProgress is Migrate, calling progress (when not nil) after
// each tenant data schema. A PostgreSQL advisory lock keeps two processes
// from migrating at once. Each schema is migrated in a transaction of its
// own: when one fails, the rollout stops there, the schemas done stay
// done, and running it again continues with the schemas left.
func (db *DB) MigrateWithProgress(ctx context.Context, progress func(MigrateProgress)) (*MigrateResult, error) {
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
	// Under the rollout's lock: two migrations granting the same objects
	// at once fail with "tuple concurrently updated", on Citus (which
	// grants on every node) nearly always.
	if err := inTx(ctx, db.Admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, rolloutLock); err != nil {
			return err
		}
		return db.grantApp(ctx, tx)
	}); err != nil {
		return nil, fmt.Errorf("grant application role: %w", err)
	}
	sources, err := db.tenantSources()
	if err != nil {
		return nil, err
	}
	res.TenantVersion = sources[0].newest()
	res.OperatorVersion = sources[1].newest()

	rolloutErr := db.rollout(ctx, sources, res, progress)
	// On Citus, the tables the migrations added (the operator's too) are
	// distributed at once, before any row is written to them.
	if rolloutErr == nil {
		if citus, err := db.IsCitus(ctx); err != nil {
			rolloutErr = err
		} else if citus {
			res.Distributed, rolloutErr = db.Distribute(ctx)
		}
	}
	if res.Changed() {
		summary := fmt.Sprintf("%d migration(s) applied, schema at version %d; tenant tables at version %d", len(res.Applied), res.Version, res.TenantVersion)
		if res.OperatorVersion > 0 {
			summary += fmt.Sprintf(", operator migrations at version %d", res.OperatorVersion)
		}
		summary += fmt.Sprintf(" in %d schema(s)", res.SchemasUpgraded)
		if rolloutErr != nil {
			summary += "; stopped: " + rolloutErr.Error()
		}
		// Recorded even when the rollout stopped or was interrupted: the
		// schemas done stay changed.
		actx := context.WithoutCancel(ctx)
		if err := inTx(actx, db.Admin, func(tx pgx.Tx) error {
			return recordAudit(actx, tx, "", "db.migrate", "", summary)
		}); err != nil && rolloutErr == nil {
			return nil, err
		}
	}
	if rolloutErr != nil {
		return res, rolloutErr
	}
	return res, nil
}

// rolloutLock is the advisory lock key held while tenant-table migrations
// roll out, so that two rollouts never work on the same schema.
const rolloutLock int64 = 0x6e73_656c_6674_6d // "nselftm"

// dataSchema is a tenant data schema: the shared one, or a schema tenant's.
type dataSchema struct {
	name, tenantID, slug string
}

// rollout brings the shared schema, then every schema tenant's own schema
// in the order they were created, up to the newest tenant-table migrations.
func (db *DB) rollout(ctx context.Context, sources []*migrationSource, res *MigrateResult, progress func(MigrateProgress)) error {
	conn, err := db.Admin.Acquire(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, rolloutLock); err != nil {
		conn.Release()
		return fmt.Errorf("wait for another migration to finish: %w", err)
	}
	defer func() {
		// A connection that cannot say it let go is closed, which lets go:
		// back in the pool it would hold the lock.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, rolloutLock); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}()

	targets, err := db.dataSchemas(ctx)
	if err != nil {
		return err
	}
	res.Schemas = len(targets)
	for i, t := range targets {
		n, err := db.upgradeSchema(ctx, t, sources)
		if err != nil {
			return fmt.Errorf("%w; %d of %d schemas done, the rest not started: fix this and run nself db migrate again to continue", err, i, len(targets))
		}
		if n > 0 {
			res.SchemasUpgraded++
		}
		if progress != nil {
			progress(MigrateProgress{Schemas: len(targets), SchemasDone: i + 1, Schema: t.name})
		}
	}
	return nil
}

// dataSchemas lists the shared schema, then the live schema tenants'.
func (db *DB) dataSchemas(ctx context.Context) ([]dataSchema, error) {
	rows, err := db.Admin.Query(ctx, `
		SELECT schema_name, id, slug FROM tenants.tenants
		WHERE strategy = 'schema' AND status <> 'deleted'
		ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tenant schemas: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dataSchema, error) {
		var t dataSchema
		err := r.Scan(&t.name, &t.tenantID, &t.slug)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tenant schemas: %w", err)
	}
	return append([]dataSchema{{name: SharedSchema}}, list...), nil
}

// upgradeSchema applies pending tenant-table migrations to one schema in a
// transaction of its own, and returns how many it applied.
func (db *DB) upgradeSchema(ctx context.Context, t dataSchema, sources []*migrationSource) (int, error) {
	var applied int
	err := inTx(ctx, db.Admin, func(tx pgx.Tx) error {
		if t.tenantID != "" {
			if err := setTenant(ctx, tx, t.tenantID, ""); err != nil {
				return err
			}
		}
		var err error
		applied, err = db.applyTenantMigrations(ctx, tx, t.name, t.tenantID, sources)
		return err
	})
	if err != nil {
		who := "schema " + t.name
		if t.slug != "" {
			who += " (tenant " + t.slug + ")"
		}
		return 0, fmt.Errorf("migrate %s: %w", who, err)
	}
	return applied, nil
}

// tenantSources are the built-in tenant-table migrations, then the
// operator's.
func (db *DB) tenantSources() ([]*migrationSource, error) {
	builtin, err := tenantMigrations()
	if err != nil {
		return nil, err
	}
	return []*migrationSource{
		{kind: "tenant migration", table: builtinTable, list: builtin},
		db.operatorSource(),
	}, nil
}

// tenantMigrations reads the embedded tenant-table migrations.
func tenantMigrations() ([]tenantMigration, error) {
	out, err := readTenantMigrations(migrations.Tenant, "tenant")
	if err != nil {
		return nil, fmt.Errorf("tenant migration %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no tenant migrations embedded")
	}
	return out, nil
}

// schemaState is what a tenant data schema's migration tables say.
type schemaState struct {
	// fresh: the schema has no built-in migration table yet.
	fresh bool
	// newest applied version of each source.
	current []int
	// operatorTable: the operator's migration table exists.
	operatorTable bool
}

// readSchemaState reads a schema's migration tables and checks the
// operator's applied migrations against the files.
func readSchemaState(ctx context.Context, q querier, schema string, sources []*migrationSource) (*schemaState, error) {
	st := &schemaState{current: make([]int, len(sources))}
	for i, src := range sources {
		table := pgx.Identifier{schema, src.table}.Sanitize()
		var exists bool
		if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
			return nil, err
		}
		if !exists {
			if i == 0 {
				st.fresh = true
			}
			continue
		}
		if src.table == operatorTable {
			st.operatorTable = true
		}
		checksum := `''`
		if src.checked {
			checksum = `checksum`
		}
		rows, err := q.Query(ctx, `SELECT version, name, `+checksum+` FROM `+table+` ORDER BY version`)
		if err != nil {
			return nil, err
		}
		applied, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (appliedMigration, error) {
			var a appliedMigration
			err := r.Scan(&a.version, &a.name, &a.checksum)
			return a, err
		})
		if err != nil {
			return nil, err
		}
		if src.checked {
			if err := src.checkApplied(schema, applied); err != nil {
				return nil, err
			}
		}
		if len(applied) > 0 {
			st.current[i] = applied[len(applied)-1].version
		}
	}
	return st, nil
}

// applyTenantMigrations brings one schema up to the newest tenant-table
// migrations inside tx: the built-in ones, then the operator's, each source
// recorded in its own table in the schema. The tables they create come
// under row-level security and are granted to the application role as the
// built-in ones are. For a tenant's own schema the built-in version is
// also kept in tenants.tenant_schemas (tx must then be in that tenant's
// context). It returns how many migrations it applied; a schema already up
// to date is left as it is.
func (db *DB) applyTenantMigrations(ctx context.Context, tx pgx.Tx, schema, tenantID string, sources []*migrationSource) (int, error) {
	st, err := readSchemaState(ctx, tx, schema, sources)
	if err != nil {
		return 0, err
	}
	if st.fresh && schema != SharedSchema {
		// A new schema takes the migrations the shared schema has: the
		// operator's files must still be those applied there.
		if _, err := readSchemaState(ctx, tx, SharedSchema, sources[1:]); err != nil {
			return 0, err
		}
	}
	pending := false
	for i, src := range sources {
		pending = pending || src.newest() > st.current[i]
	}
	if !st.fresh && !pending {
		return 0, nil
	}
	s := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s+`.`+builtinTable+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, err
	}
	if len(sources[1].list) > 0 {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s+`.`+operatorTable+` (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			checksum   text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return 0, err
		}
		st.operatorTable = true
	}
	// Unqualified names in the files land in this schema; functions such as
	// tenants.current_tenant_id() are always qualified.
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+s+`, public`); err != nil {
		return 0, err
	}
	applied, byOperator := 0, 0
	for i, src := range sources {
		for _, m := range src.list {
			if m.version <= st.current[i] {
				continue
			}
			for _, stmt := range m.stmts {
				if _, err := tx.Exec(ctx, stmt.sql); err != nil {
					if schema != SharedSchema && isCitusSerialRefusal(err) && db.onCitus(ctx) {
						return 0, fmt.Errorf("%s %s: %w", src.kind, m.name, ErrCitusSerialInSchema)
					}
					return 0, migrationError(src.kind, m, stmt, err)
				}
			}
			if src.checked {
				_, err = tx.Exec(ctx, `INSERT INTO `+s+`.`+src.table+` (version, name, checksum) VALUES ($1, $2, $3)`, m.version, m.name, m.checksum)
			} else {
				_, err = tx.Exec(ctx, `INSERT INTO `+s+`.`+src.table+` (version, name) VALUES ($1, $2)`, m.version, m.name)
			}
			if err != nil {
				return 0, err
			}
			st.current[i] = m.version
			applied++
			if src.checked {
				byOperator++
			}
		}
	}
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO DEFAULT`); err != nil {
		return 0, err
	}
	if err := secureTables(ctx, tx, schema, byOperator > 0); err != nil {
		return 0, err
	}
	if err := db.grantSchema(ctx, tx, schema, st.operatorTable); err != nil {
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
			WHERE tenant_id = $1`, tenantID, st.current[0]); err != nil {
			return 0, err
		}
	}
	return applied, nil
}

// tenantTablesOfSchema lists the tables of a tenant data schema other than
// migration bookkeeping, with what isolation each has: a tenant_id column,
// row-level security enabled and forced under the tenant policy (as
// tenants.enable_tenant_rls sets it), and an index leading with tenant_id.
const tenantTablesOfSchema = `
	SELECT c.oid::regclass::text,
	       a.attnum IS NOT NULL,
	       c.relrowsecurity AND c.relforcerowsecurity AND EXISTS (
	         SELECT 1 FROM pg_policy p
	         WHERE p.polrelid = c.oid AND p.polcmd = '*' AND p.polpermissive
	           AND pg_get_expr(p.polqual, p.polrelid) = '(tenant_id = tenants.current_tenant_id())'
	           AND pg_get_expr(p.polwithcheck, p.polrelid) = '(tenant_id = tenants.current_tenant_id())'),
	       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum)
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
	WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
	  AND c.relname NOT IN ('` + builtinTable + `', '` + operatorTable + `')
	ORDER BY 1`

// secureTables puts every table of a tenant data schema that carries
// tenant_id under the tenant policy, forced, with an index leading with
// tenant_id, so an operator's migration needs none of that written out.
// After operator migrations (strict), a table without tenant_id is refused:
// in the shared schema its rows would be every tenant's.
func secureTables(ctx context.Context, tx pgx.Tx, schema string, strict bool) error {
	rows, err := tx.Query(ctx, tenantTablesOfSchema, schema)
	if err != nil {
		return err
	}
	type table struct {
		name                   string
		hasTenant, secured, ix bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		err := r.Scan(&t.name, &t.hasTenant, &t.secured, &t.ix)
		return t, err
	})
	if err != nil {
		return err
	}
	for _, t := range tables {
		switch {
		case !t.hasTenant && strict:
			return fmt.Errorf("table %s has no tenant_id column: every table of the tenant schema needs one (tenant_id uuid NOT NULL DEFAULT tenants.current_tenant_id()), or its rows would be shared by all tenants", t.name)
		case !t.hasTenant:
			continue
		}
		if !t.secured {
			if _, err := tx.Exec(ctx, `SELECT tenants.enable_tenant_rls($1::regclass)`, t.name); err != nil {
				return fmt.Errorf("row-level security on %s: %w", t.name, err)
			}
		}
		if !t.ix {
			// t.name comes from regclass output: already quoted where needed.
			if _, err := tx.Exec(ctx, `CREATE INDEX ON `+t.name+` (tenant_id)`); err != nil {
				return fmt.Errorf("index tenant_id of %s: %w", t.name, err)
			}
		}
	}
	return nil
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
			tenants.tenant_sso, auth.sso_sessions,
			public.billing_usage_records,
			auth.user_totp, auth.recovery_codes, tenants.tenant_mfa_policy
		 TO ` + role,
		// Counters are added to, never removed; payments are Stripe's word,
		// written on the platform path.
		`GRANT SELECT, INSERT, UPDATE ON public.billing_usage_counters, public.billing_usage_daily TO ` + role,
		`GRANT SELECT ON public.billing_payments TO ` + role,
		// A tenant claims and gives up its own domains (the policy on
		// claimed_by); the key keeps a name to one tenant.
		`GRANT SELECT, INSERT, DELETE ON tenants.domain_claims TO ` + role,
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
// schema's tables, and the sequences their serial and identity columns
// draw from; row-level security inside still decides which rows. USAGE on
// a sequence is enough to draw from it; SELECT would also show its last
// value, which in the shared schema counts every tenant's rows.
func (db *DB) grantSchema(ctx context.Context, tx pgx.Tx, schema string, hasOperatorTable bool) error {
	role := pgx.Identifier{db.AppRole}.Sanitize()
	s := pgx.Identifier{schema}.Sanitize()
	stmts := []string{
		`GRANT USAGE ON SCHEMA ` + s + ` TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + s + ` TO ` + role,
		`GRANT USAGE ON ALL SEQUENCES IN SCHEMA ` + s + ` TO ` + role,
		`REVOKE ALL ON ` + s + `.` + builtinTable + ` FROM ` + role,
	}
	if hasOperatorTable {
		stmts = append(stmts, `REVOKE ALL ON `+s+`.`+operatorTable+` FROM `+role)
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// ErrCitusSerialInSchema is the refusal of a serial column in a schema
// tenant's schema on Citus: creating one there fails as Citus records the
// column's sequence on the nodes that do not hold the schema (the
// sequence "does not exist"), and the migration cannot go on.
var ErrCitusSerialInSchema = errors.New("Citus cannot create a serial column in a schema tenant's schema: use an identity column (bigint GENERATED BY DEFAULT AS IDENTITY) or a uuid key instead")

// isCitusSerialRefusal reports whether err is Citus failing to record a
// serial column's sequence on the other nodes.
func isCitusSerialRefusal(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "42P01" && strings.HasSuffix(pg.Message, `_seq" does not exist`)
}

// onCitus reports whether the database has the citus extension; false
// when that cannot be told.
func (db *DB) onCitus(ctx context.Context) bool {
	ok, err := db.IsCitus(ctx)
	return err == nil && ok
}
