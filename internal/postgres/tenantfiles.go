package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// tenantMigration is one file of tenant-table migrations.
type tenantMigration struct {
	version  int
	name     string
	checksum string // SHA-256 of the file, hex
	stmts    []statement
}

// statement is one SQL statement of a migration file.
type statement struct {
	sql    string
	offset int // byte offset of sql in the file
	line   int // line of the file sql starts on
}

// migrationSource is one set of tenant-table migrations with the table,
// kept in every tenant data schema, that records which were applied. The
// built-in migrations and the operator's are numbered apart, so each
// source has its own table and the two can never collide.
type migrationSource struct {
	kind  string // "tenant migration", "operator migration": for messages
	table string
	list  []tenantMigration
	// checked sources keep each file's checksum, and refuse a folder whose
	// applied files were changed, renamed or removed.
	checked bool
}

// newest is the highest version of the source; 0 when it has none.
func (s *migrationSource) newest() int {
	if len(s.list) == 0 {
		return 0
	}
	return s.list[len(s.list)-1].version
}

const (
	builtinTable  = "nself_migrations"
	operatorTable = "nself_operator_migrations"
)

var migrationNameRE = regexp.MustCompile(`^([0-9]+)_[A-Za-z0-9_.-]+\.sql$`)

// readTenantMigrations reads the migration files (*.sql) directly under
// dir of fsys, ordered by the number their names start with, and checks
// that each can be applied: a well-formed name, a version of its own, and
// SQL that splits into statements with no transaction control (each schema
// is migrated in one transaction). Other files are left alone, so a folder
// may hold a README.
func readTenantMigrations(fsys fs.FS, dir string) ([]tenantMigration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []tenantMigration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") || strings.HasPrefix(name, ".") {
			continue
		}
		m := migrationNameRE.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("%s: the name must be a positive number, an underscore and a name of letters, digits, _ . or -, ending in .sql (as 0002_invoices.sql)", name)
		}
		v, err := strconv.Atoi(m[1])
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: the name must start with a positive number (as 0002_invoices.sql)", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%s: not UTF-8 text", name)
		}
		stmts, err := splitStatements(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(stmts) == 0 {
			return nil, fmt.Errorf("%s: holds no SQL statement", name)
		}
		for _, s := range stmts {
			if transactionControl(s.sql) {
				return nil, fmt.Errorf("%s, line %d: %s: each schema's migrations run in one transaction of their own; remove the transaction control", name, s.line, snippet(s.sql))
			}
		}
		sum := sha256.Sum256(b)
		out = append(out, tenantMigration{version: v, name: name, checksum: hex.EncodeToString(sum[:]), stmts: stmts})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("%s and %s share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// readOperatorMigrations reads and checks the operator's tenant-table
// migrations in dir (TENANT_MIGRATIONS_DIR); an empty dir means none.
func readOperatorMigrations(dir string) (*migrationSource, error) {
	src := &migrationSource{kind: "operator migration", table: operatorTable, checked: true}
	if dir == "" {
		return src, nil
	}
	list, err := readTenantMigrations(os.DirFS(dir), ".")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("TENANT_MIGRATIONS_DIR %s: %w", dir, err)
	}
	src.list = list
	return src, nil
}

// UseTenantMigrationsDir reads the operator's tenant-table migrations from
// dir (TENANT_MIGRATIONS_DIR; empty for none): migrations then apply them
// after the built-in ones, and new schema tenants get them at creation. A
// malformed folder is refused here, before any schema is touched.
func (db *DB) UseTenantMigrationsDir(dir string) error {
	src, err := readOperatorMigrations(dir)
	if err != nil {
		return err
	}
	db.operator = src
	return nil
}

// operatorSource is the operator's migrations, none unless
// UseTenantMigrationsDir was called.
func (db *DB) operatorSource() *migrationSource {
	if db.operator == nil {
		return &migrationSource{kind: "operator migration", table: operatorTable, checked: true}
	}
	return db.operator
}

// appliedMigration is a row of a schema's operator migration table.
type appliedMigration struct {
	version        int
	name, checksum string
}

// checkApplied compares what a schema's table says was applied with the
// source's files. An applied file must still be there, under the same
// name, unchanged, and no new file may be numbered below one applied:
// otherwise schemas would differ in ways no version number shows.
func (s *migrationSource) checkApplied(schema string, applied []appliedMigration) error {
	files := map[int]tenantMigration{}
	for _, m := range s.list {
		files[m.version] = m
	}
	done := map[int]bool{}
	last := appliedMigration{}
	for _, a := range applied {
		done[a.version] = true
		if a.version > last.version {
			last = a
		}
		m, ok := files[a.version]
		switch {
		case !ok:
			return fmt.Errorf("%s %s was applied to schema %s but is no longer in TENANT_MIGRATIONS_DIR: an applied file must stay as it was", s.kind, a.name, schema)
		case m.name != a.name:
			return fmt.Errorf("%s %s was applied to schema %s as version %d, which is now %s: applied migrations must not be renumbered or renamed", s.kind, a.name, schema, a.version, m.name)
		case m.checksum != a.checksum:
			return fmt.Errorf("%s %s was changed after it was applied to schema %s (its checksum differs): restore it and put the change in a new migration", s.kind, a.name, schema)
		}
	}
	for _, m := range s.list {
		if m.version < last.version && !done[m.version] {
			return fmt.Errorf("%s %s is numbered below %s, already applied to schema %s: number new migrations after the last applied one", s.kind, m.name, last.name, schema)
		}
	}
	return nil
}

// migrationError names the file, the line and the statement of a
// migration that failed, and the spot in it when PostgreSQL gives one.
func migrationError(kind string, m tenantMigration, s statement, err error) error {
	where := fmt.Sprintf("line %d", s.line)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Position > 0 {
		// Position counts characters from 1 within the statement.
		off := s.offset + len(s.sql)
		n := int(pe.Position) - 1
		for i := range s.sql {
			if n == 0 {
				off = s.offset + i
				break
			}
			n--
		}
		line, col := s.line, 1
		for _, r := range s.sql[:off-s.offset] {
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		where = fmt.Sprintf("line %d, column %d", line, col)
	}
	return fmt.Errorf("%s %s, %s: %s: %w", kind, m.name, where, snippet(s.sql), err)
}

// snippet is the start of a statement on one line, to name it in a message.
func snippet(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return s
}

// transactionControl reports whether a statement begins or ends a
// transaction (or a savepoint), which would break the one transaction a
// schema is migrated in.
func transactionControl(sql string) bool {
	f := strings.Fields(strings.ToUpper(sql))
	if len(f) == 0 {
		return false
	}
	switch strings.TrimRight(f[0], ";") {
	case "BEGIN", "COMMIT", "ROLLBACK", "END", "ABORT", "SAVEPOINT", "RELEASE":
		return true
	case "START":
		return len(f) > 1 && f[1] == "TRANSACTION"
	case "PREPARE":
		return len(f) > 1 && f[1] == "TRANSACTION"
	}
	return false
}

// splitStatements splits SQL text at the semicolons that end statements,
// following PostgreSQL's lexical rules for what can hold a semicolon
// without ending one: comments (-- and nested /* */), string constants
// ('…', E'…' with backslash escapes), quoted identifiers and dollar-quoted
// bodies ($$…$$, $tag$…$tag$). Running the statements one by one lets a
// failure name its statement; a file is otherwise run as written.
func splitStatements(src string) ([]statement, error) {
	var out []statement
	first := -1 // byte offset of the statement's first token, -1 before it
	lineAt := func(off int) int { return strings.Count(src[:off], "\n") + 1 }
	emit := func(end int) {
		if first >= 0 {
			out = append(out, statement{sql: strings.TrimSpace(src[first:end]), offset: first, line: lineAt(first)})
		}
		first = -1
	}
	unterminated := func(what string, at int) error {
		return fmt.Errorf("line %d: %s is never closed", lineAt(at), what)
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '-' && strings.HasPrefix(src[i:], "--"):
			if j := strings.IndexByte(src[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(src)
			}
			continue
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			depth, j := 1, i+2
			for depth > 0 && j < len(src) {
				switch {
				case strings.HasPrefix(src[j:], "/*"):
					depth, j = depth+1, j+2
				case strings.HasPrefix(src[j:], "*/"):
					depth, j = depth-1, j+2
				default:
					j++
				}
			}
			if depth > 0 {
				return nil, unterminated("the comment", i)
			}
			i = j
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		case c == ';':
			emit(i)
			i++
			continue
		}
		if first < 0 {
			first = i
		}
		switch {
		case c == '\'':
			escapes := i > 0 && (src[i-1] == 'E' || src[i-1] == 'e') && (i < 2 || !identChar(src[i-2]))
			j := i + 1
			for ; j < len(src); j++ {
				if escapes && src[j] == '\\' {
					j++
					continue
				}
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(src) {
				return nil, unterminated("the string", i)
			}
			i = j + 1
		case c == '"':
			j := i + 1
			for ; j < len(src); j++ {
				if src[j] == '"' {
					if j+1 < len(src) && src[j+1] == '"' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(src) {
				return nil, unterminated("the quoted name", i)
			}
			i = j + 1
		case c == '$' && (i == 0 || !identChar(src[i-1])):
			// $tag$ opens a dollar quote; $1 is a parameter.
			j := i + 1
			for j < len(src) && identChar(src[j]) && src[j] != '$' && !(j == i+1 && src[j] >= '0' && src[j] <= '9') {
				j++
			}
			if j < len(src) && src[j] == '$' {
				tag := src[i : j+1]
				end := strings.Index(src[j+1:], tag)
				if end < 0 {
					return nil, unterminated("the body quoted with "+tag, i)
				}
				i = j + 1 + end + len(tag)
			} else {
				i++
			}
		default:
			i++
		}
	}
	emit(len(src))
	return out, nil
}

// identChar reports whether c can be part of an unquoted name.
func identChar(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
