package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/migrations"
)

// On a distributed PostgreSQL (Citus), a table with tenant_id is spread
// over the worker nodes by tenant_id, all such tables co-located, so that a
// tenant's rows of every table sit on the same node and a query naming
// tenant_id = $1 runs on that node alone. A table without tenant_id is the
// platform's (the registry, plans, administrators, organizations, Stripe
// events, the platform audit log, domain claims): a reference table,
// copied whole to every node, which the tenant tables' foreign keys may
// point at. A schema tenant's schema becomes a schema-based shard: the
// whole schema on one node.

// citusSettings are what Citus needs for this schema, set on the database
// for every session: "local" forwards SET LOCAL "hasura.user" (the tenant
// context) to the workers, which otherwise see no tenant and return no
// rows; triggers (updated_at, append-only audit) run on the shards.
var citusSettings = []string{
	`citus.propagate_set_commands = 'local'`,
	`citus.enable_unsafe_triggers = on`,
}

// migrationTables are bookkeeping of the migration tools (schema, table),
// which stay on the coordinator.
var migrationTables = [][2]string{{"public", "goose_db_version"}, {SharedSchema, builtinTable}, {SharedSchema, operatorTable}}

// DistributeResult says what Distribute did.
type DistributeResult struct {
	Reference   []string // tables made reference tables
	Distributed []string // tables distributed by tenant_id
	Schemas     []string // schema tenants' schemas made schema-based shards
}

// Changed reports whether the run changed anything.
func (r *DistributeResult) Changed() bool {
	return len(r.Reference)+len(r.Distributed)+len(r.Schemas) > 0
}

// ErrNotCitus is returned by Distribute on a database without the citus
// extension.
var ErrNotCitus = errors.New("the database has no citus extension: run CREATE EXTENSION citus as a superuser on the coordinator and every worker, and register the workers (citus_add_node), then try again")

// IsCitus reports whether the database has the citus extension.
func (db *DB) IsCitus(ctx context.Context) (bool, error) {
	var ok bool
	err := db.Admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&ok)
	return ok, err
}

// Distribute makes the tables Citus tables: the global ones reference
// tables first, then every table with tenant_id distributed by it and
// co-located, each in foreign-key order (a table's referenced tables
// before it, or Citus would turn it into a local table that can no longer
// be distributed), and schema tenants' schemas schema-based shards. Tables
// already done are left alone, so it runs after every migration. The
// database's settings for Citus are applied each time.
func (db *DB) Distribute(ctx context.Context) (*DistributeResult, error) {
	ok, err := db.IsCitus(ctx)
	if err != nil {
		return nil, fmt.Errorf("distribute: %w", err)
	}
	if !ok {
		return nil, ErrNotCitus
	}
	conn, err := db.Admin.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	// Migrations run under the same lock: nothing changes the tables while
	// they are being distributed.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, rolloutLock); err != nil {
		return nil, fmt.Errorf("wait for another migration to finish: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, rolloutLock); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	return db.distribute(ctx, conn.Conn())
}

func (db *DB) distribute(ctx context.Context, conn *pgx.Conn) (*DistributeResult, error) {
	var dbName string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		return nil, err
	}
	for _, s := range citusSettings {
		if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{dbName}.Sanitize()+` SET `+s); err != nil {
			return nil, fmt.Errorf("distribute: set %s: %w", s, err)
		}
	}
	res := &DistributeResult{}
	local, err := localTables(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("distribute: list tables: %w", err)
	}
	var dist []localTable
	for _, t := range local {
		if t.tenantID {
			dist = append(dist, t)
		}
	}
	ref := globalTables(local, dist)
	for _, t := range fkSorted(ref) {
		if err := distributeTable(ctx, conn, t.name, false, `SELECT create_reference_table($1::regclass)`); err != nil {
			return res, fmt.Errorf("distribute: reference table %s: %w", t.name, err)
		}
		res.Reference = append(res.Reference, t.name)
	}
	if len(dist) > 0 {
		anchor, err := colocationAnchor(ctx, conn)
		if err != nil {
			return res, fmt.Errorf("distribute: %w", err)
		}
		for _, t := range fkSorted(dist) {
			if anchor == "" {
				err = distributeTable(ctx, conn, t.name, false, `SELECT create_distributed_table($1::regclass, 'tenant_id', colocate_with => 'none')`)
				anchor = t.name
			} else {
				err = distributeTable(ctx, conn, t.name, false, `SELECT create_distributed_table($1::regclass, 'tenant_id', colocate_with => $2)`, anchor)
			}
			if err != nil {
				return res, fmt.Errorf("distribute: table %s: %w", t.name, err)
			}
			res.Distributed = append(res.Distributed, t.name)
		}
	}
	schemas, err := undistributedSchemas(ctx, conn)
	if err != nil {
		return res, fmt.Errorf("distribute: list tenant schemas: %w", err)
	}
	for _, s := range schemas {
		if err := distributeTable(ctx, conn, s, true, `SELECT citus_schema_distribute($1::regnamespace)`); err != nil {
			return res, fmt.Errorf("distribute: schema %s: %w", s, err)
		}
		res.Schemas = append(res.Schemas, s)
	}
	return res, nil
}

// distributeTable runs one Citus call in a transaction of its own, with
// triggers allowed on shards and row-level security lifted for the table's
// owner while its existing rows (of the table, or of the schema's tables) are copied to the shards (the copy runs in
// no tenant's context, so FORCE would let no row through). A failure rolls
// the FORCE back with the rest.
func distributeTable(ctx context.Context, conn *pgx.Conn, name string, schema bool, call string, args ...any) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Sequential: a table with foreign keys to reference tables cannot
		// be distributed in parallel once those have been touched in the
		// same transaction.
		for _, set := range []string{`SET LOCAL citus.enable_unsafe_triggers = on`, `SET LOCAL citus.multi_shard_modify_mode = 'sequential'`} {
			if _, err := tx.Exec(ctx, set); err != nil {
				return err
			}
		}
		// Without this, a table with a foreign key to a reference table
		// would silently become a "Citus local table" when that reference
		// table is made.
		if _, err := tx.Exec(ctx, `SET LOCAL citus.enable_local_reference_table_foreign_keys = off`); err != nil {
			return err
		}
		var forced []string
		which := `c.oid = $1::regclass`
		if schema {
			which = `c.relnamespace = $1::regnamespace`
		}
		rows, err := tx.Query(ctx, `
			SELECT c.oid::regclass::text FROM pg_class c
			WHERE c.relforcerowsecurity AND c.relkind IN ('r', 'p') AND `+which, name)
		if err != nil {
			return err
		}
		if forced, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		for _, f := range forced {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+f+` NO FORCE ROW LEVEL SECURITY`); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, call, append([]any{name}, args...)...); err != nil {
			return err
		}
		for _, f := range forced {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+f+` FORCE ROW LEVEL SECURITY`); err != nil {
				return err
			}
		}
		return nil
	})
}

type localTable struct {
	name     string
	tenantID bool
	refs     []string // the tables its foreign keys point at
}

// localTables lists the tables not yet known to Citus, outside the schema
// tenants' schemas and the migration tools' tables.
func localTables(ctx context.Context, conn *pgx.Conn) ([]localTable, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.oid::regclass::text,
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
		       coalesce((SELECT array_agg(DISTINCT f.confrelid::regclass::text) FROM pg_constraint f
		                 WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid), '{}')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'citus', 'citus_internal', 'columnar', 'columnar_internal')
		  AND n.nspname NOT LIKE 'pg\_%'
		  AND NOT EXISTS (SELECT 1 FROM tenants.tenants t WHERE t.schema_name = n.nspname)
		  AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
		  AND (n.nspname, c.relname) NOT IN (($1, $2), ($3, $4), ($5, $6))
		ORDER BY 1`,
		migrationTables[0][0], migrationTables[0][1], migrationTables[1][0], migrationTables[1][1], migrationTables[2][0], migrationTables[2][1])
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (localTable, error) {
		var t localTable
		err := r.Scan(&t.name, &t.tenantID, &t.refs)
		return t, err
	})
}

// fkSorted orders tables so that one referenced by another's foreign key
// comes first; tables outside the list (done already) are ignored.
func fkSorted(tables []localTable) []localTable {
	byName := map[string]localTable{}
	for _, t := range tables {
		byName[t.name] = t
	}
	var out []localTable
	done := map[string]bool{}
	var visit func(t localTable)
	visit = func(t localTable) {
		if done[t.name] {
			return
		}
		done[t.name] = true
		refs := slices.Clone(t.refs)
		slices.Sort(refs)
		for _, r := range refs {
			if rt, ok := byName[r]; ok {
				visit(rt)
			}
		}
		out = append(out, t)
	}
	for _, t := range tables {
		visit(t)
	}
	return out
}

// colocationAnchor names a table already distributed by tenant_id, which
// new ones are co-located with; "" when there is none yet.
func colocationAnchor(ctx context.Context, conn *pgx.Conn) (string, error) {
	var name string
	err := conn.QueryRow(ctx, `
		SELECT p.logicalrelid::regclass::text FROM pg_dist_partition p
		WHERE p.partmethod = 'h' AND column_to_column_name(p.logicalrelid, p.partkey) = 'tenant_id'
		ORDER BY p.colocationid, p.logicalrelid LIMIT 1`).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return name, err
}

// undistributedSchemas lists schema tenants' schemas that are not yet
// schema-based shards.
func undistributedSchemas(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `
		SELECT n.nspname FROM tenants.tenants t
		JOIN pg_namespace n ON n.nspname = t.schema_name
		WHERE NOT EXISTS (SELECT 1 FROM pg_dist_schema s WHERE s.schemaid = n.oid)
		ORDER BY t.created_at`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// LocalTenantTables lists, on a Citus database, the tables with tenant_id
// that are not distributed (left local or made Citus local tables): their
// rows stay on the coordinator and their queries cannot run with the other
// tenant tables on a worker. Empty on a single PostgreSQL.
func (db *DB) LocalTenantTables(ctx context.Context) ([]string, error) {
	if ok, err := db.IsCitus(ctx); err != nil || !ok {
		return nil, err
	}
	rows, err := db.Admin.Query(ctx, `
		SELECT c.oid::regclass::text
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p
		                  WHERE p.logicalrelid = c.oid AND (p.partmethod = 'h' OR p.colocationid IN
		                    (SELECT colocationid FROM pg_dist_schema)))
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// globalTables picks, among the local tables without tenant_id, those that
// become reference tables: the platform's own (made by its migrations),
// the tables a tenant table's foreign key points at, and what those point
// at in turn. Any other table without tenant_id (an application's tables
// before tenant adopt, say) stays as it is, on the coordinator: made a
// reference table, it could no longer be adopted and distributed by
// tenant_id.
func globalTables(local, tenant []localTable) []localTable {
	byName := map[string]localTable{}
	for _, t := range local {
		if !t.tenantID {
			byName[t.name] = t
		}
	}
	chosen := map[string]bool{}
	var pick func(name string)
	pick = func(name string) {
		t, ok := byName[name]
		if !ok || chosen[name] {
			return
		}
		chosen[name] = true
		for _, r := range t.refs {
			pick(r)
		}
	}
	platform := platformTables()
	for name := range byName {
		if platform[name] {
			pick(name)
		}
	}
	for _, t := range tenant {
		for _, r := range t.refs {
			pick(r)
		}
	}
	var out []localTable
	for _, t := range local {
		if chosen[t.name] {
			out = append(out, t)
		}
	}
	return out
}

var (
	platformOnce  sync.Once
	platformNames map[string]bool
)

// createdTable finds the tables a platform migration creates; they name
// their schema always (regclass text leaves public out).
var createdTable = regexp.MustCompile(`(?i)CREATE TABLE (?:IF NOT EXISTS )?(?:public\.)?([a-z_][a-z0-9_.]*)`)

// platformTables names the tables the platform's migrations create, as
// regclass text.
func platformTables() map[string]bool {
	platformOnce.Do(func() {
		platformNames = map[string]bool{}
		fs.WalkDir(migrations.Platform, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(migrations.Platform, p)
			if err != nil {
				return err
			}
			for _, m := range createdTable.FindAllSubmatch(b, -1) {
				platformNames[string(m[1])] = true
			}
			return nil
		})
	})
	return platformNames
}
