package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/tenancy"
)

// forgeArchive rewrites an archive's files with fn and recomputes the
// manifest, as someone altering an archive on purpose would.
func forgeArchive(t *testing.T, in, out string, fn func(name string, data []byte) []byte) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		files[h.Name] = fn(h.Name, b)
	}
	var m tenancy.Manifest
	if err := json.Unmarshal(files[tenancy.ManifestFile], &m); err != nil {
		t.Fatal(err)
	}
	for i := range m.Files {
		b := files[m.Files[i].Path]
		sum := sha256.Sum256(b)
		m.Files[i].Size, m.Files[i].SHA256 = int64(len(b)), hex.EncodeToString(sum[:])
	}
	files[tenancy.ManifestFile], _ = json.Marshal(m)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Size: int64(len(files[n])), Mode: 0o600})
		tw.Write(files[n])
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// An archive holding what the CLI would refuse is refused whole, with one
// line naming the file and row; the plan is the operator's, never the
// archive's.
func TestTenantImportChecksTheArchive(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), blobtest.Env(t)...)
	c.ok("tenant", "create", "Acme Corporation", "--slug", "acme", "--plan", "pro", "--owner", "ann@acme.example")
	c.ok("tenant", "domain", "add", "acme", "shop.acme.example")
	dir := t.TempDir()
	archive := filepath.Join(dir, "acme.tar.gz")
	c.ok("tenant", "export", "acme", "--output", archive)

	forged := filepath.Join(dir, "forged.tar.gz")
	forgeArchive(t, archive, forged, func(name string, b []byte) []byte {
		if name == "db/tenants.tenant_domains.csv" {
			return bytes.ReplaceAll(b, []byte("shop.acme.example"), []byte("shop.example.test"))
		}
		return b
	})
	before := c.ok("tenant", "list")
	r := c.run("", "tenant", "import", forged, "--slug", "acme-forged")
	want := `error: import into acme-forged: archive refused: db/tenants.tenant_domains.csv row 1: domain "shop.example.test" is under the platform's domain example.test`
	if r.code != 1 || !strings.HasPrefix(r.err, want) || strings.Count(r.err, "\n") != 1 {
		t.Errorf("forged domain: exit %d, stderr %q, want one line starting %q", r.code, r.err, want)
	}
	if after := c.ok("tenant", "list"); after != before {
		t.Errorf("a refused import changed the tenants:\n%s\n%s", before, after)
	}

	forgeArchive(t, archive, forged, func(name string, b []byte) []byte {
		if name == tenancy.TenantFile {
			var et map[string]any
			json.Unmarshal(b, &et)
			et["plan"] = "enterprise"
			b, _ = json.Marshal(et)
		}
		return b
	})
	mustMatch(t, c.ok("tenant", "import", forged, "--slug", "acme-free"),
		`^  Note: the archive's plan enterprise is not carried over: the tenant is on free$`)
	mustMatch(t, c.ok("tenant", "show", "acme-free"), `free`)
	c.ok("tenant", "import", forged, "--slug", "acme-pro", "--plan", "pro")
	mustMatch(t, c.ok("tenant", "show", "acme-pro"), `pro`)
}
