package postgres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestSplitStatements(t *testing.T) {
	src := `-- a comment; not a statement
CREATE TABLE a (s text DEFAULT 'x;y''z', "odd;name" int);
/* a /* nested ; */ comment */ SELECT E'it\'s; here', $1::text;
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
  RETURN 1; -- $$ inside
END
$body$;
DO $$ BEGIN PERFORM 1; END $$;
SELECT a$b FROM t;;
  -- trailing comment only
`
	got, err := splitStatements(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line   int
		prefix string
	}{
		{2, `CREATE TABLE a (s text DEFAULT 'x;y''z', "odd;name" int)`},
		{3, `SELECT E'it\'s; here', $1::text`},
		{4, `CREATE FUNCTION f()`},
		{9, `DO $$ BEGIN PERFORM 1; END $$`},
		{10, `SELECT a$b FROM t`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d statements: %+v", len(got), got)
	}
	for i, w := range want {
		if got[i].line != w.line || !strings.HasPrefix(got[i].sql, w.prefix) || src[got[i].offset:got[i].offset+len(got[i].sql)] != got[i].sql {
			t.Errorf("statement %d = line %d %q, want line %d %q", i, got[i].line, got[i].sql, w.line, w.prefix)
		}
	}
	if !strings.HasSuffix(got[2].sql, "$body$") {
		t.Errorf("function body cut: %q", got[2].sql)
	}

	for _, bad := range []struct{ src, msg string }{
		{"SELECT 'open;\n", "line 1: the string is never closed"},
		{"SELECT 1;\nSELECT \"x;", "line 2: the quoted name is never closed"},
		{"SELECT 1; /* /* */", "line 1: the comment is never closed"},
		{"DO $f$ BEGIN END $g$;", "line 1: the body quoted with $f$ is never closed"},
	} {
		if _, err := splitStatements(bad.src); err == nil || err.Error() != bad.msg {
			t.Errorf("%q: %v, want %q", bad.src, err, bad.msg)
		}
	}
}

func TestReadTenantMigrations(t *testing.T) {
	good := &fstest.MapFile{Data: []byte("CREATE TABLE x (tenant_id uuid);\n")}
	list, err := readTenantMigrations(fstest.MapFS{
		"m/0010_b.sql": good, "m/0002_a.sql": good, "m/README.md": {Data: []byte("notes")},
		"m/.0003_hidden.sql": good, "m/sub/0004_c.sql": good,
	}, "m")
	if err != nil || len(list) != 2 || list[0].name != "0002_a.sql" || list[1].version != 10 || len(list[0].checksum) != 64 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		msg  string
	}{
		{"no number", fstest.MapFS{"m/invoices.sql": good}, "invoices.sql: the name must be a positive number"},
		{"zero", fstest.MapFS{"m/0_x.sql": good}, "0_x.sql: the name must start with a positive number"},
		{"space", fstest.MapFS{"m/1_new table.sql": good}, "1_new table.sql: the name must be"},
		{"duplicate", fstest.MapFS{"m/1_a.sql": good, "m/01_b.sql": good}, "01_b.sql and 1_a.sql share version 1"},
		{"empty", fstest.MapFS{"m/1_a.sql": {Data: []byte("-- nothing yet\n")}}, "1_a.sql: holds no SQL statement"},
		{"unterminated", fstest.MapFS{"m/1_a.sql": {Data: []byte("\nSELECT 'x;\n")}}, "1_a.sql: line 2: the string is never closed"},
		{"not text", fstest.MapFS{"m/1_a.sql": {Data: []byte{0xff, 0xfe}}}, "1_a.sql: not UTF-8 text"},
		{"commit", fstest.MapFS{"m/1_a.sql": {Data: []byte("CREATE TABLE x (a int);\ncommit;\n")}}, "1_a.sql, line 2: commit: each schema's migrations run in one transaction"},
		{"begin", fstest.MapFS{"m/1_a.sql": {Data: []byte("BEGIN;")}}, "1_a.sql, line 1: BEGIN: each schema's"},
		{"start transaction", fstest.MapFS{"m/1_a.sql": {Data: []byte("start  transaction;")}}, "start transaction: each schema's"},
	} {
		_, err := readTenantMigrations(tc.fs, "m")
		if err == nil || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tc.name, err, tc.msg)
		}
	}
}

func TestOperatorMigrationsDir(t *testing.T) {
	src, err := readOperatorMigrations("")
	if err != nil || len(src.list) != 0 {
		t.Fatalf("empty setting: %+v, %v", src, err)
	}
	if _, err := readOperatorMigrations(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.HasPrefix(err.Error(), "TENANT_MIGRATIONS_DIR ") || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("missing folder: %v", err)
	}
	src, err = readOperatorMigrations("../../examples/tenant-migrations")
	if err != nil || len(src.list) != 2 {
		t.Fatalf("example folder: %+v, %v", src, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "2_x.sql"), []byte("SELECT 1"), 0o644)
	os.WriteFile(filepath.Join(dir, "3_x.sql"), []byte("SELECT 'x"), 0o644)
	if _, err := readOperatorMigrations(dir); err == nil || err.Error() != "TENANT_MIGRATIONS_DIR "+dir+": 3_x.sql: line 1: the string is never closed" {
		t.Errorf("malformed file: %v", err)
	}
}

func TestCheckApplied(t *testing.T) {
	src := &migrationSource{kind: "operator migration", checked: true, list: []tenantMigration{
		{version: 1, name: "0001_a.sql", checksum: "aa"},
		{version: 2, name: "0002_b.sql", checksum: "bb"},
		{version: 3, name: "0003_c.sql", checksum: "cc"},
	}}
	if err := src.checkApplied("app", []appliedMigration{{1, "0001_a.sql", "aa"}, {2, "0002_b.sql", "bb"}}); err != nil {
		t.Errorf("in order: %v", err)
	}
	for _, tc := range []struct {
		applied []appliedMigration
		msg     string
	}{
		{[]appliedMigration{{1, "0001_a.sql", "a0"}}, "operator migration 0001_a.sql was changed after it was applied to schema app (its checksum differs)"},
		{[]appliedMigration{{2, "0002_old.sql", "bb"}}, "operator migration 0002_old.sql was applied to schema app as version 2, which is now 0002_b.sql: applied migrations must not be renumbered or renamed"},
		{[]appliedMigration{{4, "0004_d.sql", "dd"}}, "operator migration 0004_d.sql was applied to schema app but is no longer in TENANT_MIGRATIONS_DIR"},
		{[]appliedMigration{{1, "0001_a.sql", "aa"}, {3, "0003_c.sql", "cc"}}, "operator migration 0002_b.sql is numbered below 0003_c.sql, already applied to schema app"},
	} {
		if err := src.checkApplied("app", tc.applied); err == nil || !strings.HasPrefix(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want %q", tc.applied, err, tc.msg)
		}
	}
}
