package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/tenancy"
)

// onlyFiles fails unless dir holds exactly the named files: no spool or
// temporary file is left behind.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestTenantExportImport(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), blobtest.Env(t)...)
	c.ok("tenant", "create", "Acme Corporation", "--slug", "acme", "--owner", "ann@acme.example")
	c.ok("whitelabel", "logo", "upload", "acme", pngFile(t, "logo.png", 120, 40))

	dir := t.TempDir()
	archive := filepath.Join(dir, "acme-data-export.tar.gz")
	out := c.ok("tenant", "export", "acme", "--output", archive)
	mustMatch(t, out,
		`^✓ Tenant exported: acme → .*acme-data-export\.tar\.gz \(.+\)$`,
		`^  Tables: \d+ \(\d+ rows\)$`,
		`^  Objects: 1$`)
	onlyFiles(t, dir, "acme-data-export.tar.gz")

	mustMatch(t, c.ok("tenant", "import", archive, "--verify"), `^✓ Archive verified: .*, tenant acme, \d+ files match the manifest$`)
	out = c.ok("tenant", "import", archive, "--slug", "acme-copy")
	mustMatch(t, out,
		`^✓ Tenant imported: acme-copy \(ID: `+uuidRE+`\)$`,
		`^  Objects: 1$`,
		`^  Set-password link for the owner \(single use, expires in \d+ hours\): https://acme-copy\.example\.test/password/set\?token=`,
		`^  Note: 1 user\(s\) imported without passwords`,
		`^  Note: audit\.events left out \(\d+ rows in the archive\): the new tenant's audit log starts with its import$`)
	mustMatch(t, c.ok("whitelabel", "logo", "list", "acme-copy"), `^main  image/png`)
	mustMatch(t, c.ok("tenant", "member", "list", "acme-copy"), `ann@acme\.example`)

	// The slug is taken now: refused before anything is written.
	r := c.run("", "tenant", "import", archive)
	if r.code != 1 || !strings.HasPrefix(r.err, "error: slug \"acme\" is already taken") || strings.Count(r.err, "\n") != 1 {
		t.Errorf("import onto a taken slug: exit %d, stderr %q", r.code, r.err)
	}

	// A changed byte anywhere is refused with one line, and nothing is made.
	b, _ := os.ReadFile(archive)
	b[len(b)/2] ^= 0x20
	bad := filepath.Join(dir, "bad.tar.gz")
	os.WriteFile(bad, b, 0o600)
	before := c.ok("tenant", "list")
	r = c.run("", "tenant", "import", bad, "--slug", "acme-bad")
	if r.code != 1 || !strings.HasPrefix(r.err, "error: archive refused: ") || strings.Count(r.err, "\n") != 1 {
		t.Errorf("tampered archive: exit %d, stderr %q", r.code, r.err)
	}
	if after := c.ok("tenant", "list"); after != before {
		t.Errorf("a refused import changed the tenants:\n%s\n%s", before, after)
	}
}

func TestTenantExportFailures(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, blobtest.Env(t)...)
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	c.ok("whitelabel", "logo", "upload", "acme", pngFile(t, "logo.png", 10, 10))
	dir := t.TempDir()
	out := filepath.Join(dir, "acme.tar.gz")

	// A directory where the archive should go: the export is complete when
	// the rename fails, and its temporary file must go too.
	if err := os.Mkdir(filepath.Join(dir, "taken.tar.gz"), 0o755); err != nil {
		t.Fatal(err)
	}
	unreachable := newCLI(t, urls, "MINIO_ENDPOINT=127.0.0.1:1", "MINIO_ACCESS_KEY=x", "MINIO_SECRET_KEY=y")
	tests := []struct {
		name string
		c    *cli
		args []string
		code int
		msg  string
	}{
		{"no output", c, []string{"tenant", "export", "acme"}, 2, "tenant export needs --output"},
		{"unknown tenant", c, []string{"tenant", "export", "nope", "-o", out}, 1, `tenant "nope" not found`},
		{"storage down", unreachable, []string{"tenant", "export", "acme", "-o", out}, 1, "object storage is unreachable"},
		{"output is a directory", c, []string{"tenant", "export", "acme", "-o", filepath.Join(dir, "taken.tar.gz")}, 1, "export: rename"},
		{"no such directory", c, []string{"tenant", "export", "acme", "-o", filepath.Join(dir, "missing", "a.tar.gz")}, 1, "no such file or directory"},
		{"no archive", c, []string{"tenant", "import", filepath.Join(dir, "none.tar.gz")}, 1, "no such file or directory"},
		{"not an archive", c, []string{"tenant", "import", pngFile(t, "x.png", 2, 2)}, 1, "archive refused: not a gzip-compressed archive"},
	}
	for _, tc := range tests {
		r := tc.c.run("", tc.args...)
		if r.code != tc.code || !strings.Contains(r.err, tc.msg) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and one line with %q", tc.name, r.code, r.err, tc.code, tc.msg)
		}
	}
	// No failure left a file at the output path, nor a temporary one.
	onlyFiles(t, dir, "taken.tar.gz")
}

func TestExportProgressBar(t *testing.T) {
	var b strings.Builder
	bar := &progress{w: &b, tty: true}
	bar.update(tenancy.ExportProgress{Rows: 1000, RowsDone: 250, Objects: 10, ObjectsDone: 0, Bytes: 2048})
	bar.done()
	if got := b.String(); !strings.HasPrefix(got, "\r[███████░░░") || !strings.Contains(got, " 25%  rows 250/1000  objects 0/10  2.0 KB") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar = %q", got)
	}
	b.Reset()
	quiet := &progress{w: &b}
	quiet.update(tenancy.ExportProgress{Rows: 1})
	quiet.done()
	if b.Len() != 0 {
		t.Errorf("not a terminal, yet the bar drew %q", b.String())
	}
}
