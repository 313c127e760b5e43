package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/archive"
	"github.com/nself/nself/internal/tenancy"
)

// ExportService writes a tenant's data into one archive and restores such
// an archive into a new tenant (see tenancy's description of the format).
type ExportService struct {
	db    *DB
	blobs tenancy.ObjectStreamer
	// Mode is the platform's TENANT_STRATEGY, which an import follows.
	Mode tenancy.StrategyMode
	// TempDir holds the spool files of tables while they are written into
	// the archive; the system's temporary directory when empty.
	TempDir string
	// Domains and Logos are the rules an import checks the archive's
	// domains and logos against, the ones adding a domain or uploading a
	// logo apply.
	Domains tenancy.DomainRules
	Logos   tenancy.LogoLimits
}

// NewExportService returns an ExportService on db and blobs.
func NewExportService(db *DB, blobs tenancy.ObjectStreamer, mode tenancy.StrategyMode) *ExportService {
	return &ExportService{db: db, blobs: blobs, Mode: mode, Logos: tenancy.DefaultLogoLimits}
}

// tenantTable is a table holding rows of tenants, found in the catalog.
type tenantTable struct {
	// name is the table as the archive names it; real is where it is in
	// this database (they differ for a schema tenant's own tables).
	name, real string
	// schema and table are where it is, unquoted.
	schema, table string
	columns       []column
	// readable says whether the application role may read it.
	readable bool
}

type column struct {
	name, typ string
}

// tenantTablesSQL lists the tables with a tenant_id column, whether the
// application role may read each, and whether its schema holds tenants'
// own data tables (the shared one, or a schema tenant's), told apart by the
// bookkeeping table tenant migrations leave in them. Of those, only the
// tenant's own is exported; the others' tables carry tenant_id too.
const tenantTablesSQL = `
	SELECT n.nspname, c.relname, has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'),
	       EXISTS (SELECT 1 FROM pg_class m WHERE m.relnamespace = n.oid AND m.relname = 'nself_migrations')
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
	WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
	  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
	  AND n.nspname NOT LIKE 'pg\_%'
	ORDER BY 1, 2`

const columnsSQL = `
	SELECT a.attname, format_type(a.atttypid, a.atttypmod)
	FROM pg_attribute a
	WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
	ORDER BY a.attnum`

// tenantTables lists the tables whose rows of the tenant an export holds.
// dataSchema is where the tenant's own data tables are: the shared schema,
// or its own under the schema strategy.
func tenantTables(ctx context.Context, q querier, dataSchema string) ([]*tenantTable, error) {
	rows, err := q.Query(ctx, tenantTablesSQL)
	if err != nil {
		return nil, err
	}
	var out []*tenantTable
	for rows.Next() {
		var schema, name string
		var readable, data bool
		if err := rows.Scan(&schema, &name, &readable, &data); err != nil {
			rows.Close()
			return nil, err
		}
		t := &tenantTable{readable: readable, schema: schema, table: name}
		t.real = pgx.Identifier{schema, name}.Sanitize()
		switch {
		case data && schema != dataSchema:
			continue
		case data:
			t.name = tenancy.DataSchema + "." + name
		default:
			t.name = schema + "." + name
		}
		if _, skip := tenancy.NotExported[t.name]; skip {
			continue
		}
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, t := range out {
		rows, err := q.Query(ctx, columnsSQL, t.real)
		if err != nil {
			return nil, err
		}
		t.columns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
			var c column
			err := r.Scan(&c.name, &c.typ)
			return c, err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copySQL is the COPY statement that writes the tenant's rows of t as CSV
// with a header. COPY takes no parameters, so the tenant id is written into
// it; it is checked to be a uuid first, so it cannot leave the literal.
// Row-level security limits the rows too; the condition is there for the
// index, and for the owner role, whose platform_read policies see every
// tenant.
func (t *tenantTable) copySQL(tenantID string) string {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		id := pgx.Identifier{c.name}.Sanitize()
		if tenancy.IsRedacted(t.name, c.name) {
			cols[i] = "NULL::" + c.typ + " AS " + id
		} else {
			cols[i] = id
		}
	}
	return fmt.Sprintf(`COPY (SELECT %s FROM %s WHERE tenant_id = '%s'::uuid) TO STDOUT WITH (FORMAT csv, HEADER true)`,
		strings.Join(cols, ", "), t.real, strings.ToLower(tenantID))
}

func (t *tenantTable) columnNames() []string {
	out := make([]string, len(t.columns))
	for i, c := range t.columns {
		out[i] = c.name
	}
	return out
}

// Export writes the archive of the tenant (by id or slug) to w, calling
// progress as it goes (progress may be nil). Memory stays flat as the
// tenant grows: rows go from COPY into a spool file and from there into
// the archive, objects from the store into the archive, each as a stream.
func (s *ExportService) Export(ctx context.Context, ref string, w io.Writer, progress func(tenancy.ExportProgress)) (*tenancy.Manifest, error) {
	if progress == nil {
		progress = func(tenancy.ExportProgress) {}
	}
	// The registry row is found on the platform path, as a slug names no
	// tenant context yet; the rows are then read as the application role.
	t, err := findTenant(ctx, s.db.Admin, ref, false)
	if err != nil {
		return nil, err
	}
	if t.Status == tenancy.StatusDeleted {
		return nil, tenancy.Errorf(tenancy.ECONFLICT, "tenant %s is deleted; its data is gone", t.Slug)
	}
	now := s.db.Now().UTC()
	m := &tenancy.Manifest{Format: tenancy.ExportFormat, Version: tenancy.ExportVersion, CreatedAt: now,
		TenantID: t.ID, TenantSlug: t.Slug, Tables: []tenancy.ExportTable{}, Objects: []tenancy.ExportObject{}}
	a := archive.NewWriter(w, now)
	var p tenancy.ExportProgress
	report := func() { p.Bytes = a.Written(); progress(p) }

	if err := a.AddJSON(tenancy.TenantFile, tenancy.ExportedTenant{
		ID: t.ID, Slug: t.Slug, Name: t.Name, Status: t.Status, Plan: t.Plan, Strategy: t.Strategy,
		OwnerID: t.OwnerID, CreatedAt: t.CreatedAt, ExportedAt: now,
	}); err != nil {
		return nil, fmt.Errorf("export %s: %w", t.Slug, err)
	}

	bucket := tenancy.TenantBucket(t.ID)
	// The objects exported are those the exported rows refer to, read in
	// the same snapshot: an object left without a row (by a crash between
	// an upload and its commit) is not the tenant's data.
	referenced := map[string]bool{}

	dataSchema := SharedSchema
	if t.SchemaName != "" {
		dataSchema = t.SchemaName
	}
	// One snapshot for every table the application role may read, in the
	// tenant's context: the rows are consistent with each other.
	var adminTables []*tenantTable
	err = s.inSnapshot(ctx, s.db.App, t.ID, func(tx pgx.Tx) error {
		tables, err := tenantTables(ctx, tx, dataSchema)
		if err != nil {
			return err
		}
		var mine []*tenantTable
		for _, tt := range tables {
			if tt.readable {
				mine = append(mine, tt)
			} else {
				adminTables = append(adminTables, tt)
			}
		}
		p.Tables = len(tables)
		// How to make these tables elsewhere, for a restore with psql
		// alone: from the catalog, in the same snapshot.
		types, defs, err := tableDefinitions(ctx, tx, tables, dataSchema)
		if err != nil {
			return fmt.Errorf("table definitions: %w", err)
		}
		schemaSQL, restoreSQL := tenancy.RestoreScripts(t.Slug, types, defs)
		if err := a.Add(tenancy.SchemaFile, int64(len(schemaSQL)), bytes.NewReader(schemaSQL)); err != nil {
			return err
		}
		if err := a.Add(tenancy.RestoreFile, int64(len(restoreSQL)), bytes.NewReader(restoreSQL)); err != nil {
			return err
		}
		if err := referencedObjects(ctx, tx, t.ID, dataSchema, referenced); err != nil {
			return err
		}
		p.Objects = len(referenced)
		for _, tt := range tables {
			if !tt.readable {
				continue // the application role may not count them either
			}
			var n int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+tt.real+` WHERE tenant_id = $1`, t.ID).Scan(&n); err != nil {
				return fmt.Errorf("count %s: %w", tt.name, err)
			}
			p.Rows += n
			report() // a sign of progress: counting a large tenant takes a while
		}
		return s.writeTables(ctx, tx, t.ID, mine, a, m, &p, report)
	})
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", t.Slug, err)
	}
	if len(adminTables) > 0 {
		// A tenant table the application role was not granted (a platform
		// table that carries tenant_id) is read as the owner, still in the
		// tenant's context and with tenant_id in the condition: FORCE ROW
		// LEVEL SECURITY binds the owner too, but a platform_read policy
		// would let it see every tenant's rows.
		err = s.inSnapshot(ctx, s.db.Admin, t.ID, func(tx pgx.Tx) error {
			if err := referencedObjects(ctx, tx, t.ID, dataSchema, referenced); err != nil {
				return err
			}
			p.Objects = len(referenced)
			return s.writeTables(ctx, tx, t.ID, adminTables, a, m, &p, report)
		})
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", t.Slug, err)
		}
	}

	err = s.blobs.ListObjects(ctx, bucket, "", func(o tenancy.ObjectInfo) error {
		if !referenced[o.Key] {
			return nil
		}
		if err := tenancy.CheckArchivePath(o.Key); err != nil {
			return fmt.Errorf("object %s cannot be exported: %w", tenancy.Quote(o.Key), err)
		}
		r, info, err := s.blobs.OpenObject(ctx, bucket, o.Key)
		if err != nil {
			return err
		}
		defer r.Close()
		file := tenancy.ObjectFile(o.Key)
		if err := a.Add(file, info.Size, r); err != nil {
			return err
		}
		m.Objects = append(m.Objects, tenancy.ExportObject{Key: o.Key, File: file, ContentType: info.ContentType})
		p.ObjectsDone++
		p.Objects = max(p.Objects, p.ObjectsDone)
		report()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export %s: objects: %w", t.Slug, err)
	}

	// The manifest lists the files written before it; it is the last one.
	if err := a.Finish(m); err != nil {
		return nil, fmt.Errorf("export %s: %w", t.Slug, err)
	}
	report()
	return m, nil
}

// inSnapshot runs fn in a read-only repeatable-read transaction in the
// tenant's context.
func (s *ExportService) inSnapshot(ctx context.Context, pool interface {
	BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
}, tenantID string, fn func(pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := setTenant(ctx, tx, tenantID, ""); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// writeTables copies each table's rows into a spool file, then the file
// into the archive: a tar entry's size must precede its bytes.
func (s *ExportService) writeTables(ctx context.Context, tx pgx.Tx, tenantID string, tables []*tenantTable,
	a *archive.Writer, m *tenancy.Manifest, p *tenancy.ExportProgress, report func()) error {
	for _, tt := range tables {
		n, err := s.writeTable(ctx, tx, tenantID, tt, a, p, report)
		if err != nil {
			return fmt.Errorf("table %s: %w", tt.name, err)
		}
		m.Tables = append(m.Tables, tenancy.ExportTable{
			Name: tt.name, File: tenancy.TableFile(tt.name), Columns: tt.columnNames(), Rows: n,
		})
		p.TablesDone++
		report()
	}
	return nil
}

func (s *ExportService) writeTable(ctx context.Context, tx pgx.Tx, tenantID string, tt *tenantTable,
	a *archive.Writer, p *tenancy.ExportProgress, report func()) (int64, error) {
	spool, err := archive.OpenSpool(s.TempDir, "nself-export-*.csv")
	if err != nil {
		return 0, err
	}
	defer spool.Close()
	lines := &lineCounter{w: spool, every: 1 << 20, tick: func(n int64) {
		p.RowsDone += n
		p.Rows = max(p.Rows, p.RowsDone)
		report()
	}}
	tag, err := tx.Conn().PgConn().CopyTo(ctx, lines, tt.copySQL(tenantID))
	if err != nil {
		return 0, err
	}
	lines.flush()
	rows := tag.RowsAffected()
	// Lines and rows differ when values hold line breaks, and by the
	// header: the count is set right once the table is done.
	p.RowsDone += rows - lines.total
	p.Rows = max(p.Rows, p.RowsDone)
	size, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if err := a.Add(tenancy.TableFile(tt.name), size, spool); err != nil {
		return 0, err
	}
	return rows, nil
}

// objectKeyTablesSQL lists the tenant tables with an object_key column
// the current role may read, told apart as tenantTablesSQL does.
const objectKeyTablesSQL = `
	SELECT n.nspname, c.relname,
	       EXISTS (SELECT 1 FROM pg_class m WHERE m.relnamespace = n.oid AND m.relname = 'nself_migrations')
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
	JOIN pg_attribute k ON k.attrelid = c.oid AND k.attname = 'object_key' AND NOT k.attisdropped
	WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
	  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
	  AND n.nspname NOT LIKE 'pg\_%'
	  AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
	ORDER BY 1, 2`

// referencedObjects adds to keys the objects of the tenant's bucket that
// its rows refer to: every object_key of a tenant table (found in the
// catalog, so tables added later count), but those naming another bucket.
func referencedObjects(ctx context.Context, q querier, tenantID, dataSchema string, keys map[string]bool) error {
	rows, err := q.Query(ctx, objectKeyTablesSQL)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var schema, name string
		var data bool
		if err := rows.Scan(&schema, &name, &data); err != nil {
			rows.Close()
			return err
		}
		named := schema + "." + name
		switch {
		case data && schema != dataSchema:
			continue
		case data:
			named = tenancy.DataSchema + "." + name
		}
		if _, other := tenancy.OtherBucketKeys[named]; other {
			continue
		}
		tables = append(tables, pgx.Identifier{schema, name}.Sanitize())
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, table := range tables {
		rows, err := q.Query(ctx, `SELECT object_key FROM `+table+` WHERE tenant_id = $1 AND object_key IS NOT NULL`, tenantID)
		if err != nil {
			return fmt.Errorf("objects of %s: %w", table, err)
		}
		list, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("objects of %s: %w", table, err)
		}
		for _, k := range list {
			keys[k] = true
		}
	}
	return nil
}

// lineCounter counts the lines written through it, and reports them every
// so many bytes: progress for a large COPY.
type lineCounter struct {
	w         io.Writer
	every     int
	tick      func(int64)
	pending   int64
	total     int64
	sinceTick int
}

func (l *lineCounter) Write(b []byte) (int, error) {
	n := int64(bytes.Count(b, newline))
	l.pending += n
	l.total += n
	l.sinceTick += len(b)
	if l.sinceTick >= l.every {
		l.flush()
	}
	return l.w.Write(b)
}

func (l *lineCounter) flush() {
	if l.pending > 0 {
		l.tick(l.pending)
	}
	l.pending, l.sinceTick = 0, 0
}

var newline = []byte{'\n'}
