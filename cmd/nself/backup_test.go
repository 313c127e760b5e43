package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nself/nself/internal/pgtest"
)

func TestDBBackup(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	backupURL := strings.Replace(urls.Admin, "nself_owner:nself_owner@", "nself_backup:nself_backup@", 1)
	c := newCLI(t, urls, "DATABASE_BACKUP_URL="+backupURL)
	c.ok("tenant", "create", "Acme Backup Co", "--slug", "acme")
	out := filepath.Join(t.TempDir(), "pre-migration-backup.sql")
	mustMatch(t, c.ok("db", "backup", "--output", out), `^✓ Backup written: `+regexpQuote(out)+` \(.+\)$`)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CREATE TABLE tenants.tenants", "CREATE POLICY tenant_isolation", "Acme Backup Co"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("backup lacks %q", want)
		}
	}
	// A failed dump leaves nothing at the output path.
	bad := filepath.Join(t.TempDir(), "bad.sql")
	r := newCLI(t, urls, "DATABASE_BACKUP_URL=postgres://nobody:wrong@127.0.0.1:1/x?sslmode=disable").run("", "db", "backup", "--output", bad)
	if r.code != 1 || !strings.HasPrefix(r.err, "error: ") {
		t.Errorf("failed backup: exit %d, %q", r.code, r.err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a failed backup left %s", bad)
	}
	if entries, _ := os.ReadDir(filepath.Dir(bad)); len(entries) != 0 {
		t.Errorf("a failed backup left %d files", len(entries))
	}
	if r := newCLI(t, urls).run("", "db", "backup", "--output", bad); r.code != 1 || !strings.Contains(r.err, "DATABASE_BACKUP_URL is not set") {
		t.Errorf("no backup role: exit %d, %q", r.code, r.err)
	}
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(`.`, `\.`, `(`, `\(`, `)`, `\)`, `+`, `\+`, `?`, `\?`, `*`, `\*`, `[`, `\[`, `]`, `\]`, `^`, `\^`, `$`, `\$`, `|`, `\|`, `{`, `\{`, `}`, `\}`)
	return r.Replace(s)
}
