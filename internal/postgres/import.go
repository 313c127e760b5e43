package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nself/nself/internal/archive"
	"github.com/nself/nself/internal/tenancy"
)

// refused is the error of an archive that does not pass the checks.
var refused = archive.Refused

// VerifyArchive checks an archive against its manifest and returns the
// manifest; it writes nothing. It is archive.VerifyManifest, kept under
// the name callers of this package know.
func VerifyArchive(r io.Reader) (*tenancy.Manifest, error) {
	return archive.VerifyManifest(r)
}

// importTable is a table of the archive and where its rows go.
type importTable struct {
	tenancy.ExportTable
	target    string // the table here, quoted
	stage     string // the temporary table its rows are copied into first
	generated map[string]bool
	// regen are columns whose values are unique across tenants and have a
	// default (a serial or uuid key of a table added later, such as a log):
	// the rows get new values here rather than collide with the originals.
	regen    map[string]bool
	identity map[string]bool // GENERATED ALWAYS identity columns
}

// Import restores an archive into a new tenant. It reads the archive twice
// (archive must seek): a first pass verifies it against its manifest and
// against this database before anything is written; the second stages the
// rows in temporary tables and copies the objects they use into the new
// tenant's bucket, outside any transaction (the tenant's id is drawn
// first); then one transaction creates the tenant and writes its rows.
// When anything fails after the first upload, the objects and the bucket
// are removed again.
//
// Ids: the tenant gets a new id (and, under the schema strategy, a new
// schema); every row's tenant_id becomes it. Other ids are kept: every
// tenant table's key leads with tenant_id, so they cannot collide, and a
// person keeps one user id across the tenants they hold accounts in.
// Values unique across the platform are not kept: custom domains come in
// as pending (ownership must be proven again), or are left out with a note
// while another tenant holds them; invitation secrets are made anew and
// pending invitations revoked. Billing identifiers are not carried over.
//
// The manifest proves the archive whole, not who wrote it, so nothing in
// it reaches beyond the new tenant: only the tables an export of the new
// tenant would hold are accepted; users get no password and no time later
// than now; a user id that is another tenant's account under another email
// is refused; and the records the platform keeps about a tenant (its audit
// log, usage and payments, tenancy.NotImported) are left out with a note.
// The new tenant's audit log starts with the import.
//
// A table added later whose key is unique across tenants and has a default
// (a serial or uuid id) gets new values in that column.
//
// The write runs as the owner, as CreateTenant does: it inserts the
// registry row and may create the tenant's schema, which the application
// role may not, and it must see every tenant's domains to leave out those
// held elsewhere (the owner's platform_read policy). Every tenant row is
// still written after setting the new tenant's context, so row-level
// security checks each one.
func (s *ExportService) Import(ctx context.Context, src io.ReadSeeker, opts tenancy.ImportOptions) (*tenancy.ImportResult, error) {
	v, err := archive.Verify(src, s.Logos)
	if err != nil {
		return nil, err
	}
	slug := opts.Slug
	if slug == "" {
		slug = v.Tenant.Slug
	}
	if err := tenancy.ValidateSlug(slug); err != nil {
		return nil, err
	}
	if err := s.db.mayAdd(slug); err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = v.Tenant.Name
	}
	res := &tenancy.ImportResult{Rows: map[string]int64{}}
	strategy, err := s.Mode.Resolve(v.Tenant.Strategy)
	if err != nil {
		strategy, _ = s.Mode.Resolve("")
		res.Notes = append(res.Notes, fmt.Sprintf("the archive's tenant used the %s strategy, which TENANT_STRATEGY=%s does not allow; imported with %s", v.Tenant.Strategy, s.Mode, strategy))
	}
	// Checks against this database that need no tenant yet, before
	// anything is written: the slug, the plan, the tables and columns.
	if _, err := findTenant(ctx, s.db.Admin, slug, false); err == nil {
		return nil, tenancy.FieldErrorf(tenancy.ECONFLICT, "slug", "slug %s is already taken; pass --slug NEW", tenancy.Quote(slug))
	} else if tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		return nil, err
	}
	// The plan is the platform's to give, never the archive's: the default,
	// or the one the operator names.
	plan := opts.Plan
	if plan == "" {
		plan = tenancy.DefaultPlan
		if v.Tenant.Plan != "" && v.Tenant.Plan != plan {
			res.Notes = append(res.Notes, fmt.Sprintf("the archive's plan %s is not carried over: the tenant is on %s", v.Tenant.Plan, plan))
		}
	}
	if err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error { _, err := usablePlan(ctx, tx, plan); return err }); err != nil {
		return nil, err
	}
	_, notes, err := s.importTables(ctx, s.db.Admin, v.Manifest, SharedSchema)
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, notes...)

	// The new tenant's id is drawn now: its objects are stored under it
	// before the transaction that creates the tenant begins, as no call to
	// the store is made inside a transaction.
	tenants := &TenantService{db: s.db, Mode: s.Mode}
	id, schema, err := tenants.newTenantID(ctx, s.db.Admin, strategy)
	if err != nil {
		return nil, fmt.Errorf("import into %s: %w", slug, err)
	}
	bucket := tenancy.TenantBucket(id)
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	// One connection of its own for the rest: the rows are staged in its
	// temporary tables, outside any transaction, while the objects go to
	// the store; then one transaction writes the tenant from them.
	conn, err := s.db.Admin.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("import into %s: %w", slug, err)
	}
	defer releaseStaging(ctx, conn)
	var uploaded []string
	err = s.stageArchive(ctx, conn, src, v, bucket, &uploaded, res)
	if err == nil {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			return s.writeTenant(ctx, tx, v, tenants, id, schema, slug, name, plan, strategy, res)
		})
	}
	if err != nil {
		s.removeObjects(ctx, bucket, uploaded)
		return nil, fmt.Errorf("import into %s: %w", slug, translate(err))
	}
	return res, nil
}

// stageArchive is the second pass over the archive, outside any
// transaction: each table's rows go into a temporary table of conn's
// session, checked once all are there, and the objects the rows use go
// into the new tenant's bucket (uploaded collects their keys).
func (s *ExportService) stageArchive(ctx context.Context, conn *pgxpool.Conn, src io.Reader, v *archive.Verified,
	bucket string, uploaded *[]string, res *tenancy.ImportResult) error {
	// The staging tables take the shape of the shared schema's: a schema
	// tenant's tables are made from the same migrations.
	tables, _, err := s.importTables(ctx, conn, v.Manifest, SharedSchema)
	if err != nil {
		return err
	}
	checkRows := func() (map[string]bool, error) { return s.checkRows(ctx, conn, tables, v.Logos, res) }
	if err := s.readArchive(ctx, conn.Conn(), src, v, tables, bucket, uploaded, checkRows); err != nil {
		return err
	}
	res.Objects = len(*uploaded)
	return nil
}

// writeTenant creates the tenant under the id drawn before, and writes the
// staged rows as its own, in tx.
func (s *ExportService) writeTenant(ctx context.Context, tx pgx.Tx, v *archive.Verified, tenants *TenantService,
	id, schema, slug, name, plan string, strategy tenancy.Strategy, res *tenancy.ImportResult) error {
	t, err := tenants.insertTenantAs(ctx, tx, id, schema, slug, name, plan, strategy)
	if err != nil {
		return err
	}
	res.Tenant = t
	dataSchema := SharedSchema
	if t.SchemaName != "" {
		dataSchema = t.SchemaName
	}
	// The same tables, in the same order, as staged: each finds its
	// staging table by its place in the manifest.
	tables, _, err := s.importTables(ctx, tx, v.Manifest, dataSchema)
	if err != nil {
		return err
	}
	if err := checkUserIDs(ctx, tx, t.ID, tables); err != nil {
		return err
	}
	if err := s.insertRows(ctx, tx, t.ID, tables, res); err != nil {
		return err
	}
	if v.Tenant.OwnerID != "" {
		// Read, then write the registry: a distributed PostgreSQL does
		// not write a reference table in a statement that reads a
		// distributed one.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM auth.users WHERE tenant_id = $1 AND id = $2)`,
			t.ID, v.Tenant.OwnerID).Scan(&exists); err != nil {
			return err
		}
		if exists {
			if _, err := tx.Exec(ctx, `UPDATE tenants.tenants SET owner_user_id = $2 WHERE id = $1`, t.ID, v.Tenant.OwnerID); err != nil {
				return err
			}
		}
		if exists {
			t.OwnerID = v.Tenant.OwnerID
			if res.PasswordToken, err = issuePasswordToken(ctx, tx, t.ID, t.OwnerID, "set", tenancy.SetPasswordTokenTTL); err != nil {
				return err
			}
		}
	}
	var rows int64
	for _, n := range res.Rows {
		rows += n
	}
	// The new tenant's audit log starts here: the archive's entries
	// are not imported.
	summary := fmt.Sprintf("from the export of %s (tenant %s) made %s: %d rows, %d objects",
		tenancy.Quote(v.Tenant.Slug), v.Tenant.ID, v.Tenant.ExportedAt.UTC().Format(time.RFC3339), rows, res.Objects)
	if err := recordAudit(ctx, tx, t.ID, "tenant.import", slug, summary); err != nil {
		return err
	}
	return notifyChange(ctx, tx, t.ID)
}

// releaseStaging drops the staging tables and hands the connection back;
// a connection that cannot be cleaned (its statement was cancelled, the
// server went away) is closed instead, so no other caller inherits them.
func releaseStaging(ctx context.Context, conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `DISCARD TEMP`); err != nil {
		conn.Conn().Close(ctx)
	}
	conn.Release()
}

// removeObjects undoes the uploads of a failed import, and the bucket they
// made, even when ctx has ended (often the reason it failed).
func (s *ExportService) removeObjects(ctx context.Context, bucket string, keys []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, k := range keys {
		_ = s.blobs.Remove(ctx, bucket, k)
	}
	if len(keys) > 0 {
		_ = s.blobs.RemoveBucket(ctx, bucket)
	}
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// importTables matches the archive's tables to this database's: each must
// be one the export would write for a tenant whose own data is in
// dataSchema (the same catalog listing), with every column the archive has
// (columns it lacks take their defaults). An archive written by hand could
// otherwise name another schema tenant's tables, or any platform table
// that carries tenant_id. Tables the platform writes about a tenant (its
// audit log, its usage and payments) are left out with a note.
func (s *ExportService) importTables(ctx context.Context, q querier, m *tenancy.Manifest, dataSchema string) ([]*importTable, []string, error) {
	catalog, err := tenantTables(ctx, q, dataSchema)
	if err != nil {
		return nil, nil, err
	}
	here := map[string]*tenantTable{}
	for _, t := range catalog {
		here[t.name] = t
	}
	var out []*importTable
	var notes []string
	for i, et := range m.Tables {
		if why, ok := tenancy.NotExported[et.Name]; ok {
			return nil, nil, refused("it holds %s, which is never imported (%s)", et.Name, why)
		}
		if why, ok := tenancy.NotImported[et.Name]; ok {
			notes = append(notes, fmt.Sprintf("%s left out (%d rows in the archive): %s", et.Name, et.Rows, why))
			continue
		}
		tt := here[et.Name]
		if tt == nil {
			schema, _, _ := strings.Cut(et.Name, ".")
			if schema != tenancy.DataSchema {
				var data bool
				if err := q.QueryRow(ctx, `
					SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
					               WHERE n.nspname = $1 AND c.relname = 'nself_migrations')`, schema).Scan(&data); err != nil {
					return nil, nil, err
				}
				if data {
					return nil, nil, refused("table %s is in a schema of tenant data; an archive names the tenant's own tables %s.*", et.Name, tenancy.DataSchema)
				}
			}
			return nil, nil, refused("table %s does not exist here as a tenant table", et.Name)
		}
		schema, table := tt.schema, tt.table
		it := &importTable{ExportTable: et, target: tt.real,
			stage: fmt.Sprintf("nself_import_%d", i), generated: map[string]bool{},
			regen: map[string]bool{}, identity: map[string]bool{}}
		rows, err := q.Query(ctx, `
			SELECT a.attname, a.attgenerated <> '', a.attidentity = 'a'
			FROM pg_attribute a
			JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
			  AND a.attnum > 0 AND NOT a.attisdropped`, schema, table)
		if err != nil {
			return nil, nil, err
		}
		cols := map[string]bool{}
		for rows.Next() {
			var name string
			var gen, ident bool
			if err := rows.Scan(&name, &gen, &ident); err != nil {
				rows.Close()
				return nil, nil, err
			}
			cols[name] = true
			it.generated[name] = gen
			it.identity[name] = ident
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		rows, err = q.Query(ctx, `
			SELECT DISTINCT a.attname
			FROM pg_index i
			JOIN pg_class c ON c.oid = i.indrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
			WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique
			  AND NOT EXISTS (SELECT 1 FROM pg_attribute t
			                  WHERE t.attrelid = i.indrelid AND t.attname = 'tenant_id' AND t.attnum = ANY (i.indkey))
			  AND (a.attidentity <> '' OR a.atthasdef)`, schema, table)
		if err != nil {
			return nil, nil, err
		}
		regen, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, nil, err
		}
		for _, c := range regen {
			it.regen[c] = true
		}
		for _, c := range et.Columns {
			if !cols[c] || it.generated[c] {
				return nil, nil, refused("table %s has no column %s here", et.Name, tenancy.Quote(c))
			}
		}
		out = append(out, it)
	}
	return out, notes, nil
}

// readArchive is the second pass (archive.Verified.Reread, which hashes
// every file again): each table's rows are copied into a temporary table,
// each object into the new tenant's bucket. Once every table is staged,
// before the first object is stored, checkRows checks the rows and names
// the objects they use; the others are not stored. uploaded collects the
// keys written.
func (s *ExportService) readArchive(ctx context.Context, conn *pgx.Conn, r io.Reader, v *archive.Verified,
	tables []*importTable, bucket string, uploaded *[]string, checkRows func() (map[string]bool, error)) error {
	byFile := map[string]*importTable{}
	for _, t := range tables {
		byFile[t.File] = t
	}
	objects := map[string]tenancy.ExportObject{}
	for _, o := range v.Manifest.Objects {
		objects[o.File] = o
	}
	var used map[string]bool // the objects the rows use, once checked
	err := v.Reread(r, func(name string, size int64, body io.Reader) error {
		switch t, o := byFile[name], objects[name]; {
		case t != nil:
			if used != nil {
				return archive.Changed() // a table after the objects: its rows would go unchecked
			}
			if err := s.stageTable(ctx, conn, t, body); err != nil {
				return fmt.Errorf("table %s: %w", t.Name, err)
			}
		case o.File != "":
			if used == nil {
				var err error
				if used, err = checkRows(); err != nil {
					return err
				}
			}
			logo := v.Logos[o.Key]
			if !used[o.Key] || logo == nil {
				break
			}
			// The key is recorded before the upload: a failed upload may
			// still have left something to remove.
			*uploaded = append(*uploaded, o.Key)
			if err := s.blobs.PutObjectStream(ctx, bucket, o.Key, body, size, logo.ContentType); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if used == nil {
		_, err := checkRows()
		return err
	}
	return nil
}

// checkRows puts the staged rows of the tables a save path checks through
// the same checks (tenancy.ImportChecks), and returns the keys of the
// objects the logo rows use; the archive's other objects are left out
// with a note. A refused row refuses the archive, naming its file and row.
func (s *ExportService) checkRows(ctx context.Context, q querier, tables []*importTable,
	logos map[string]*tenancy.Logo, res *tenancy.ImportResult) (map[string]bool, error) {
	checks := tenancy.ImportChecks{Domains: s.Domains}
	used := map[string]bool{}
	for _, t := range tables {
		cols, ok := tenancy.ImportCheckedColumns[t.Name]
		if !ok {
			continue
		}
		sel := make([]string, len(cols))
		for i, c := range cols {
			if !slices.Contains(t.Columns, c) {
				return nil, refused("%s has no column %s, which its rows must have", t.File, tenancy.Quote(c))
			}
			sel[i] = pgx.Identifier{c}.Sanitize() + "::text"
		}
		// Rows come back in the order COPY wrote them, the file's order.
		rows, err := q.Query(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+t.stage+` ORDER BY ctid`)
		if err != nil {
			return nil, err
		}
		vals := make([]*string, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		for n := 1; rows.Next(); n++ {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, err
			}
			row := make(map[string]string, len(cols))
			for i, c := range cols {
				if vals[i] != nil {
					row[c] = *vals[i]
				}
			}
			if err := checks.CheckRow(t.Name, row, logos); err != nil {
				rows.Close()
				return nil, refused("%s row %d: %s", t.File, n, tenancy.ErrorMessage(err))
			}
			if t.Name == "tenants.tenant_logos" {
				used[row["object_key"]] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	keys := make([]string, 0, len(logos))
	for k := range logos {
		if !used[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		res.Notes = append(res.Notes, fmt.Sprintf("object %s left out: no logo refers to it", k))
	}
	return used, nil
}

// checkUserIDs refuses users of the archive whose id is another tenant's
// account under another email. A person keeps one id across tenants, so an
// id names a person: an archive must not give someone else's id to an
// account of its own (CreateTenant --owner ID copies an account by id).
// Emails are compared without case.
func checkUserIDs(ctx context.Context, tx pgx.Tx, tenantID string, tables []*importTable) error {
	for _, t := range tables {
		if t.Name != "auth.users" || !slices.Contains(t.Columns, "id") {
			continue
		}
		// The staged pairs are read first: a distributed PostgreSQL joins no
		// temporary table with a distributed one. The owner's platform_read
		// policy shows every tenant's users.
		var ids, emails []string
		rows, err := tx.Query(ctx, `SELECT id::text, coalesce(email, '') FROM `+t.stage+` WHERE id IS NOT NULL`)
		if err != nil {
			return err
		}
		var id, email string
		if _, err := pgx.ForEachRow(rows, []any{&id, &email}, func() error {
			ids, emails = append(ids, id), append(emails, email)
			return nil
		}); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `
			SELECT s.id::text FROM unnest($2::uuid[], $3::text[]) s(id, email)
			JOIN auth.users u ON u.id = s.id AND u.tenant_id <> $1 AND u.email_lower <> lower(s.email)
			ORDER BY 1 LIMIT 1`, tenantID, ids, emails).Scan(&id)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			return refused("user %s has an account in another tenant under another email; an id names one person", id)
		}
	}
	return nil
}

// stageTable copies a table's CSV into a temporary table shaped like its
// columns here: the rows are inserted from there, with tenant_id and the
// platform-unique values replaced, once every table is staged. The table
// lasts as long as conn's session (releaseStaging drops it), so the rows
// are staged outside the transaction that writes them.
func (s *ExportService) stageTable(ctx context.Context, conn *pgx.Conn, t *importTable, r io.Reader) error {
	cols := quoteAll(t.Columns)
	// Columns typed as the table's, read from the catalog: a SELECT from
	// the table itself would be a distributed query on Citus.
	var defs string
	if err := conn.QueryRow(ctx, `
		SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY c.i)
		FROM unnest($2::text[]) WITH ORDINALITY c(name, i)
		JOIN pg_attribute a ON a.attrelid = $1::regclass AND a.attname = c.name AND NOT a.attisdropped`,
		t.target, t.Columns).Scan(&defs); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TEMP TABLE %s (%s)`, t.stage, defs)); err != nil {
		return err
	}
	// HEADER MATCH refuses a file whose header names other columns than the
	// manifest does.
	_, err := conn.PgConn().CopyFrom(ctx, r, fmt.Sprintf(`COPY %s (%s) FROM STDIN WITH (FORMAT csv, HEADER MATCH)`, t.stage, cols))
	return err
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// importRules rewrite columns whose values cannot be carried into another
// tenant as they are, or cannot be trusted from an archive: SQL over the
// staged row (alias s). A column tenancy.Redacted names and no rule
// rewrites is written empty.
var importRules = map[string]map[string]string{
	// The archive's author controls every byte: a password hash would let
	// them sign in as the user, and a time in the future would make the
	// account look like the person's newest.
	"auth.users": {
		"password_hash":   "NULL",
		"created_at":      notLaterThanNow("created_at"),
		"updated_at":      notLaterThanNow("updated_at"),
		"last_sign_in_at": notLaterThanNow("last_sign_in_at"),
	},
	// Ownership of a domain is proven per tenant: the new one starts over,
	// with a token of its own, and is not primary until verified. Its claim
	// is made now, never verified: a time from the archive (one in the
	// future) would keep it from giving way after a week like any other.
	"tenants.tenant_domains": {
		"is_primary":         "false",
		"state":              "'pending'",
		"verification_token": "encode(uuid_send(gen_random_uuid()), 'hex')",
		"verified_at":        "NULL",
		"first_verified_at":  "NULL",
		"created_at":         "now()",
		"checked_at":         "NULL",
		"last_seen_valid_at": "NULL",
		"failure":            "NULL",
	},
	// The secrets behind invitation links are not in the archive: a fresh
	// hash no link matches, and a pending invitation is revoked.
	"tenants.tenant_invitations": {
		"token_hash": "sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))",
		"revoked_at": "CASE WHEN s.accepted_at IS NULL AND s.revoked_at IS NULL THEN now() ELSE s.revoked_at END",
	},
}

// notLaterThanNow is the staged column, or now when it is later (NULL
// stays NULL, which LEAST would not keep).
func notLaterThanNow(column string) string {
	c := "s." + pgx.Identifier{column}.Sanitize()
	return "CASE WHEN " + c + " > now() THEN now() ELSE " + c + " END"
}

// insertRows writes the staged rows into their tables, parents before
// children along the foreign keys here, as the new tenant's.
func (s *ExportService) insertRows(ctx context.Context, tx pgx.Tx, tenantID string, tables []*importTable, res *tenancy.ImportResult) error {
	order, err := fkOrder(ctx, tx, tables)
	if err != nil {
		return err
	}
	for _, t := range order {
		rules := importRules[t.Name]
		var cols, exprs []string
		override := ""
		for _, c := range t.Columns {
			if t.regen[c] {
				continue
			}
			cols = append(cols, c)
			if t.identity[c] {
				override = " OVERRIDING SYSTEM VALUE"
			}
			switch expr, ok := rules[c]; {
			case c == "tenant_id":
				exprs = append(exprs, "$1::uuid")
			case ok:
				exprs = append(exprs, expr)
			case tenancy.IsRedacted(t.Name, c):
				exprs = append(exprs, "NULL")
			default:
				exprs = append(exprs, "s."+pgx.Identifier{c}.Sanitize())
			}
		}
		where, args := "", []any{tenantID}
		if t.Name == "tenants.tenant_domains" {
			claimed, err := claimImportedDomains(ctx, tx, tenantID, t.stage, res)
			if err != nil {
				return err
			}
			where, args = ` WHERE s.domain = ANY($2)`, append(args, claimed)
		}
		n, err := insertBatches(ctx, tx, t, cols, exprs, override, where, args)
		if err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
		res.Rows[t.Name] = n
		switch t.Name {
		case "tenants.tenant_domains":
			if n > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("%d domain(s) imported as pending: verify them again", n))
			}
		case "auth.users":
			if n > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("%d user(s) imported without passwords (never carried over): they set one with a reset link", n))
			}
		}
	}
	return nil
}

// importBatchParams bounds the parameters of one INSERT (PostgreSQL takes
// at most 65,535).
const importBatchParams = 30000

// insertBatches writes a staged table's rows into their table as the new
// tenant's: the values are computed from the temporary table alone, read
// as text, and inserted with batched INSERT … VALUES casting each back to
// its column's type. A distributed PostgreSQL (Citus) joins no temporary
// table with a distributed one, and would run INSERT … SELECT as a COPY,
// which row-level security refuses; VALUES naming one tenant go to its
// shard. It returns the rows written.
func insertBatches(ctx context.Context, tx pgx.Tx, t *importTable, cols, exprs []string, override, where string, args []any) (int64, error) {
	rows, err := tx.Query(ctx, `
		SELECT format_type(a.atttypid, a.atttypmod) FROM unnest($2::text[]) WITH ORDINALITY c(name, i)
		JOIN pg_attribute a ON a.attrelid = $1::regclass AND a.attname = c.name
		ORDER BY c.i`, t.target, cols)
	if err != nil {
		return 0, err
	}
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	if len(types) != len(cols) {
		return 0, fmt.Errorf("columns of %s changed", t.target)
	}
	texts := make([]string, len(exprs))
	for i, e := range exprs {
		texts[i] = "(" + e + ")::text"
	}
	rows, err = tx.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s s%s ORDER BY ctid`, strings.Join(texts, ", "), t.stage, where), args...)
	if err != nil {
		return 0, err
	}
	staged, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]*string, error) {
		v := make([]*string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range v {
			ptrs[i] = &v[i]
		}
		return v, r.Scan(ptrs...)
	})
	if err != nil {
		return 0, err
	}
	per := max(1, importBatchParams/len(cols))
	var written int64
	for start := 0; start < len(staged); start += per {
		batch := staged[start:min(start+per, len(staged))]
		var sb strings.Builder
		params := make([]any, 0, len(batch)*len(cols))
		for i, row := range batch {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(")
			for j, v := range row {
				if j > 0 {
					sb.WriteString(", ")
				}
				params = append(params, v)
				fmt.Fprintf(&sb, "$%d::%s", len(params), types[j])
			}
			sb.WriteString(")")
		}
		tag, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (%s)%s VALUES %s`, t.target, quoteAll(cols), override, sb.String()), params...)
		if err != nil {
			return written, err
		}
		written += tag.RowsAffected()
	}
	return written, nil
}

// claimImportedDomains claims the staged domains for the new tenant and
// returns those it got; one another tenant holds is left out with a note.
// The names are read first and claimed in a statement of their own: a
// distributed PostgreSQL does not write a reference table in a statement
// that reads others.
func claimImportedDomains(ctx context.Context, tx pgx.Tx, tenantID, stage string, res *tenancy.ImportResult) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT domain FROM `+stage+` ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	staged, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `
		INSERT INTO tenants.domain_claims (domain, claimed_by)
		SELECT d, $1 FROM unnest($2::text[]) d
		ON CONFLICT (domain) DO NOTHING
		RETURNING domain`, tenantID, staged)
	if err != nil {
		return nil, err
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	got := make(map[string]bool, len(claimed))
	for _, d := range claimed {
		got[d] = true
	}
	for _, d := range staged {
		if !got[d] {
			res.Notes = append(res.Notes, fmt.Sprintf("domain %s left out: another tenant holds it", d))
		}
	}
	return claimed, nil
}

// fkOrder sorts tables so that a table referenced by another's foreign key
// comes first.
func fkOrder(ctx context.Context, tx pgx.Tx, tables []*importTable) ([]*importTable, error) {
	byReg := map[string]*importTable{}
	regs := make([]string, len(tables))
	for i, t := range tables {
		if err := tx.QueryRow(ctx, `SELECT $1::regclass::text`, t.target).Scan(&regs[i]); err != nil {
			return nil, err
		}
		byReg[regs[i]] = t
	}
	rows, err := tx.Query(ctx, `
		SELECT conrelid::regclass::text, confrelid::regclass::text
		FROM pg_constraint
		WHERE contype = 'f' AND conrelid <> confrelid AND conrelid::regclass::text = ANY($1)`, regs)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return nil, err
		}
		deps[child] = append(deps[child], parent)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []*importTable
	done := map[string]bool{}
	var visit func(reg string, depth int)
	visit = func(reg string, depth int) {
		if done[reg] || byReg[reg] == nil || depth > len(tables) {
			return
		}
		for _, p := range deps[reg] {
			visit(p, depth+1)
		}
		if !done[reg] {
			done[reg] = true
			out = append(out, byReg[reg])
		}
	}
	for _, r := range regs {
		visit(r, 0)
	}
	return out, nil
}
