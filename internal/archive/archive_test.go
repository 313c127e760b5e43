package archive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/archive"
	"github.com/nself/nself/internal/tenancy"
)

const tenantID = "0b5d3a4e-7c1f-4e55-9a0b-3f1d2c4b5a69"

// fixture is an archive as an export writes it, with the parts tests
// rewrite.
type fixture struct {
	archive []byte
	logoKey string
}

func pngLogo(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func logoKey(t *testing.T, data []byte) string {
	t.Helper()
	img, err := tenancy.DefaultLogoLimits.Check(data)
	if err != nil {
		t.Fatal(err)
	}
	return tenancy.LogoObjectKey(tenancy.LogoMain, sum(data), img)
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// newFixture writes an archive with the Writer: tenant.json, the restore
// files, two tables and one logo, then the manifest.
func newFixture(t *testing.T) fixture {
	t.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var out bytes.Buffer
	w := archive.NewWriter(&out, now)
	m := &tenancy.Manifest{Format: tenancy.ExportFormat, Version: tenancy.ExportVersion, CreatedAt: now,
		TenantID: tenantID, TenantSlug: "acme"}
	add := func(name string, data []byte) {
		t.Helper()
		if err := w.Add(name, int64(len(data)), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddJSON(tenancy.TenantFile, tenancy.ExportedTenant{ID: tenantID, Slug: "acme", Name: "Acme", ExportedAt: now}); err != nil {
		t.Fatal(err)
	}
	add(tenancy.SchemaFile, []byte("-- schema\n"))
	add(tenancy.RestoreFile, []byte("-- restore\n"))
	for _, table := range []string{"app.orders", "auth.users"} {
		add(tenancy.TableFile(table), []byte("tenant_id,id\n"+tenantID+",1\n"+tenantID+",2\n"))
		m.Tables = append(m.Tables, tenancy.ExportTable{Name: table, File: tenancy.TableFile(table), Columns: []string{"tenant_id", "id"}, Rows: 2})
	}
	logo := pngLogo(t)
	key := logoKey(t, logo)
	add(tenancy.ObjectFile(key), logo)
	m.Objects = append(m.Objects, tenancy.ExportObject{Key: key, File: tenancy.ObjectFile(key), ContentType: "image/png"})
	if err := w.Finish(m); err != nil {
		t.Fatal(err)
	}
	if w.Written() != int64(out.Len()) {
		t.Errorf("Written = %d, the output has %d bytes", w.Written(), out.Len())
	}
	return fixture{archive: out.Bytes(), logoKey: key}
}

// entry is one file of an archive, for rewriting archives in tests.
type entry struct {
	name string
	data []byte
	typ  byte
}

func readEntries(t *testing.T, b []byte) []entry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out = append(out, entry{h.Name, data, h.Typeflag})
	}
}

func writeEntries(t *testing.T, entries []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, en := range entries {
		h := &tar.Header{Name: en.name, Typeflag: en.typ, Size: int64(len(en.data)), Mode: 0o644}
		switch en.typ {
		case 0:
			h.Typeflag = tar.TypeReg
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname, h.Size = "/etc/passwd", 0
		case tar.TypeDir:
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(en.data)
		}
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// withManifest returns a copy of entries whose manifest (the last one) fn
// rewrote; it recomputes nothing: what fn sets is what the reader sees.
func withManifest(t *testing.T, entries []entry, fn func(m *tenancy.Manifest)) []entry {
	t.Helper()
	last := entries[len(entries)-1]
	var m tenancy.Manifest
	if err := json.Unmarshal(last.data, &m); err != nil {
		t.Fatal(err)
	}
	fn(&m)
	b, _ := json.Marshal(m)
	out := append([]entry{}, entries[:len(entries)-1]...)
	return append(out, entry{name: tenancy.ManifestFile, data: b})
}

// relisted rewrites the manifest's file list to what entries hold (but the
// manifest), so a change passes the hash checks and meets the next ones.
func relisted(t *testing.T, entries []entry, fn func(m *tenancy.Manifest)) []entry {
	t.Helper()
	return withManifest(t, entries, func(m *tenancy.Manifest) {
		m.Files = nil
		for _, en := range entries[:len(entries)-1] {
			m.Files = append(m.Files, tenancy.ManifestEntry{Path: en.name, Size: int64(len(en.data)), SHA256: sum(en.data)})
		}
		if fn != nil {
			fn(m)
		}
	})
}

func wantRefused(t *testing.T, name string, err error, want string) {
	t.Helper()
	if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "archive refused: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: err = %v, want one line refusing the archive with %q", name, err, want)
	}
}

func TestWriterMakesWhatVerifyAccepts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v, err := archive.Verify(bytes.NewReader(f.archive), tenancy.DefaultLogoLimits)
	if err != nil {
		t.Fatal(err)
	}
	if v.Tenant.ID != tenantID || v.Tenant.Name != "Acme" || v.Manifest.TenantSlug != "acme" {
		t.Errorf("tenant %+v, manifest %+v", v.Tenant, v.Manifest)
	}
	if l := v.Logos[f.logoKey]; l == nil || l.ContentType != "image/png" {
		t.Errorf("logos = %v, want %s as a PNG", v.Logos, f.logoKey)
	}
	entries := readEntries(t, f.archive)
	if last := entries[len(entries)-1]; last.name != tenancy.ManifestFile {
		t.Errorf("the last file is %s, want the manifest", last.name)
	}
	// The manifest lists every other file, in order, with its size and hash.
	if len(v.Manifest.Files) != len(entries)-1 {
		t.Fatalf("the manifest lists %d files, the archive has %d besides it", len(v.Manifest.Files), len(entries)-1)
	}
	for i, en := range entries[:len(entries)-1] {
		if got := v.Manifest.Files[i]; got.Path != en.name || got.Size != int64(len(en.data)) || got.SHA256 != sum(en.data) {
			t.Errorf("manifest entry %d = %+v, want %s with %d bytes", i, got, en.name, len(en.data))
		}
	}
	m, err := archive.VerifyManifest(bytes.NewReader(f.archive))
	if err != nil || len(m.Files) != len(v.Manifest.Files) {
		t.Errorf("VerifyManifest = %v, %v", m, err)
	}
}

func TestWriterRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		file string
		size int64
		data string
		want string
	}{
		{"short file", "db/app.orders.csv", 10, "abc", "3 bytes, expected 10"},
		{"long file", "db/app.orders.csv", 1, "abc", "write db/app.orders.csv"},
		{"traversal", "../x", 1, "x", "leaves its directory"},
		{"absolute", "/etc/x", 1, "x", "absolute path"},
		{"the manifest's name", tenancy.ManifestFile, 1, "x", "written before"},
	}
	for _, c := range cases {
		w := archive.NewWriter(io.Discard, time.Now())
		err := w.Add(c.file, c.size, strings.NewReader(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	w := archive.NewWriter(io.Discard, time.Now())
	if err := w.Add("a.txt", 1, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("a.txt", 1, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "written before") {
		t.Errorf("a file twice: err = %v", err)
	}
}

func TestVerifyRefusesTamperedArchives(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	entries := readEntries(t, f.archive)
	find := func(name string) int {
		for i, en := range entries {
			if strings.HasPrefix(en.name, name) {
				return i
			}
		}
		t.Fatalf("no entry %s", name)
		return -1
	}
	users, logo, tenant := find("db/auth.users.csv"), find(tenancy.ObjectsDir), find(tenancy.TenantFile)
	manifest := len(entries) - 1
	changed := func(i int, fn func([]byte) []byte) []entry {
		out := append([]entry{}, entries...)
		out[i].data = fn(append([]byte{}, out[i].data...))
		return out
	}
	without := func(i int) []entry { return append(append([]entry{}, entries[:i]...), entries[i+1:]...) }
	before := func(extra ...entry) []entry { return append(append([]entry{}, extra...), entries...) }
	beforeManifest := func(extra ...entry) []entry {
		return append(append(append([]entry{}, entries[:manifest]...), extra...), entries[manifest])
	}
	// moved puts entry i at place to (the others keep their order).
	moved := func(i, to int) []entry {
		out := without(i)
		return append(out[:to:to], append([]entry{entries[i]}, out[to:]...)...)
	}
	badCRC := append([]byte{}, f.archive...)
	badCRC[len(badCRC)-8] ^= 0xff // the gzip trailer's CRC-32
	badSize := append([]byte{}, f.archive...)
	badSize[len(badSize)-1] ^= 0xff // the gzip trailer's length
	bigLogo := tenancy.LogoLimits{MaxBytes: 16, MaxWidth: 4096, MaxHeight: 4096}
	text := entry{name: "notes.txt", data: []byte("x")}

	cases := []struct {
		name    string
		archive []byte
		limits  *tenancy.LogoLimits
		want    string
	}{
		// The bytes against the manifest.
		{"changed byte", writeEntries(t, changed(users, func(b []byte) []byte { b[len(b)-3] ^= 1; return b })), nil, "does not match its SHA-256"},
		{"changed object", writeEntries(t, changed(logo, func(b []byte) []byte { b[10] ^= 0xff; return b })), nil, "does not match its SHA-256"},
		{"longer file", writeEntries(t, changed(users, func(b []byte) []byte { return append(b, "x\n"...) })), nil, "bytes, the manifest says"},
		{"wrong hash listed", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Files[1].SHA256 = strings.Repeat("0", 64) })), nil, "does not match its SHA-256"},
		{"missing file", writeEntries(t, without(logo)), nil, "listed in the manifest but missing"},
		{"unlisted file", writeEntries(t, beforeManifest(text)), nil, "not listed in the manifest"},
		{"file listed twice", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Files = append(m.Files, m.Files[0]) })), nil, "lists \"tenant.json\" twice"},
		{"listed traversal", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) {
			m.Files = append(m.Files, tenancy.ManifestEntry{Path: "../x", Size: 1, SHA256: sum([]byte("x"))})
		})), nil, "the manifest lists archive entry \"../x\" leaves its directory"},
		// Entries that would land elsewhere, or are not files.
		{"path traversal", writeEntries(t, before(entry{name: "../../etc/cron.d/x", data: []byte("x")})), nil, "leaves its directory"},
		{"absolute path", writeEntries(t, before(entry{name: "/etc/x", data: []byte("x")})), nil, "absolute path"},
		{"unclean path", writeEntries(t, before(entry{name: "db//x", data: []byte("x")})), nil, "not a clean path"},
		{"backslash", writeEntries(t, before(entry{name: `db\..\x`, data: []byte("x")})), nil, "backslash"},
		{"symlink", writeEntries(t, before(entry{name: "objects/link", typ: tar.TypeSymlink})), nil, "not a regular file"},
		{"hard link", writeEntries(t, before(entry{name: "objects/link", typ: tar.TypeLink})), nil, "not a regular file"},
		{"directory", writeEntries(t, before(entry{name: "db", typ: tar.TypeDir})), nil, "not a regular file"},
		{"entry twice", writeEntries(t, beforeManifest(entries[users])), nil, "appears twice"},
		// The manifest itself.
		{"missing manifest", writeEntries(t, entries[:manifest]), nil, "manifest.json is missing"},
		{"manifest not last", writeEntries(t, append(append([]entry{}, entries...), text)), nil, "follows the manifest, which must be last"},
		{"manifest not JSON", writeEntries(t, append(append([]entry{}, entries[:manifest]...), entry{name: tenancy.ManifestFile, data: []byte("{")})), nil, "manifest.json is not valid"},
		{"unknown manifest field", writeEntries(t, append(append([]entry{}, entries[:manifest]...), entry{name: tenancy.ManifestFile, data: []byte(`{"format":"nself-tenant-export","version":1,"extra":1}`)})), nil, "manifest.json is not valid"},
		{"other format", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Format = "zip" })), nil, "not a tenant export"},
		{"unknown version", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Version = 99 })), nil, "format version 99; this program reads version 1"},
		// What the listed files mean.
		{"listed file of no meaning", writeEntries(t, relisted(t, beforeManifest(text), nil)), nil, "neither a table nor an object"},
		{"table named oddly", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Tables[0].Name = "App.Orders" })), nil, "names table \"App.Orders\" oddly"},
		{"table's file elsewhere", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Tables[0].File = "db/other.csv" })), nil, "oddly"},
		{"table twice", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Tables = append(m.Tables, m.Tables[0]) })), nil, "oddly"},
		{"table without its file", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) {
			m.Tables = append(m.Tables, tenancy.ExportTable{Name: "app.items", File: "db/app.items.csv", Columns: []string{"tenant_id"}})
		})), nil, "\"db/app.items.csv\" is missing"},
		{"table without tenant_id", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Tables[0].Columns = []string{"id"} })), nil, "has no tenant_id column"},
		{"traversing object key", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Objects[0].Key = "../x" })), nil, "names object"},
		{"object listed twice", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Objects = append(m.Objects, m.Objects[0]) })), nil, "names object"},
		{"object not a logo key", writeEntries(t, relisted(t, beforeManifest(entry{name: "objects/secrets/x.png", data: entries[logo].data}), func(m *tenancy.Manifest) {
			m.Objects = append(m.Objects, tenancy.ExportObject{Key: "secrets/x.png", File: "objects/secrets/x.png"})
		})), nil, "is not a logo's key"},
		{"object not an image", writeEntries(t, relisted(t, changed(logo, func([]byte) []byte { return []byte("hello") }), nil)), nil, "is refused"},
		{"object over the limit", f.archive, &bigLogo, "a logo may be at most"},
		{"table after the objects", writeEntries(t, relisted(t, moved(users, manifest-1), nil)), nil, "follows the objects"},
		{"tenant.json missing", writeEntries(t, relisted(t, without(tenant), nil)), nil, "tenant.json is missing"},
		{"tenant.json of another tenant", writeEntries(t, relisted(t, changed(tenant, func(b []byte) []byte {
			return bytes.Replace(b, []byte(tenantID), []byte("00000000-0000-0000-0000-000000000000"), 1)
		}), nil)), nil, "does not describe the exported tenant"},
		{"tenant.json not JSON", writeEntries(t, relisted(t, changed(tenant, func([]byte) []byte { return []byte("[") }), nil)), nil, "tenant.json is not valid"},
		// The stream.
		{"not gzip", []byte("plain text"), nil, "not a gzip-compressed archive"},
		{"truncated", f.archive[:len(f.archive)/2], nil, "damaged"},
		{"no gzip trailer", f.archive[:len(f.archive)-8], nil, "damaged"},
		{"bad gzip checksum", badCRC, nil, "damaged"},
		{"bad gzip length", badSize, nil, "damaged"},
	}
	for _, c := range cases {
		limits := tenancy.DefaultLogoLimits
		if c.limits != nil {
			limits = *c.limits
		}
		v, err := archive.Verify(bytes.NewReader(c.archive), limits)
		if v != nil {
			t.Errorf("%s: verified", c.name)
		}
		wantRefused(t, c.name, err, c.want)
	}
}

// A damaged or altered archive is told as such before what its content
// holds.
func TestVerifyNamesTamperingBeforeContent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	entries := readEntries(t, f.archive)
	// An object that is no logo, and a table whose bytes are not the ones
	// listed: the second is named.
	out := append([]entry{}, entries...)
	for i, en := range out {
		switch {
		case strings.HasPrefix(en.name, tenancy.ObjectsDir):
			out[i].data = []byte("hello")
		case en.name == "db/app.orders.csv":
			out[i].data = append(append([]byte{}, en.data...), "x\n"...)
		}
	}
	_, err := archive.Verify(bytes.NewReader(writeEntries(t, out)), tenancy.DefaultLogoLimits)
	wantRefused(t, "content and tampering", err, "\"db/app.orders.csv\" has")
}

func TestRereadSeesEveryFileAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v, err := archive.Verify(bytes.NewReader(f.archive), tenancy.DefaultLogoLimits)
	if err != nil {
		t.Fatal(err)
	}
	entries := readEntries(t, f.archive)
	var names []string
	err = v.Reread(bytes.NewReader(f.archive), func(name string, size int64, body io.Reader) error {
		names = append(names, name)
		if name == tenancy.TenantFile {
			return nil // left unread: hashed all the same
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if int64(len(b)) != size {
			t.Errorf("%s: %d bytes, size %d", name, len(b), size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(entries) {
		t.Errorf("fn saw %v", names)
	}
	for i, en := range entries {
		if i < len(names) && names[i] != en.name {
			t.Errorf("file %d = %s, want %s", i, names[i], en.name)
		}
	}

	// An error of fn ends the pass as it is.
	stop := errors.New("stop")
	calls := 0
	err = v.Reread(bytes.NewReader(f.archive), func(string, int64, io.Reader) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("err = %v after %d calls, want stop after one", err, calls)
	}
}

// The second pass refuses what differs from the first, even an archive
// that would pass Verify on its own.
func TestRereadRefusesAnArchiveThatChanged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v, err := archive.Verify(bytes.NewReader(f.archive), tenancy.DefaultLogoLimits)
	if err != nil {
		t.Fatal(err)
	}
	entries := readEntries(t, f.archive)
	manifest := len(entries) - 1
	var logo, users int
	for i, en := range entries {
		switch {
		case strings.HasPrefix(en.name, tenancy.ObjectsDir):
			logo = i
		case en.name == "db/auth.users.csv":
			users = i
		}
	}
	changedUsers := append([]entry{}, entries...)
	changedUsers[users].data = append(append([]byte{}, entries[users].data...), tenantID+",3\n"...)
	badCRC := append([]byte{}, f.archive...)
	badCRC[len(badCRC)-8] ^= 0xff
	cases := []struct {
		name   string
		second []byte
		want   string
	}{
		{"a file missing", writeEntries(t, append(append([]entry{}, entries[:logo]...), entries[logo+1:]...)), "changed while it was read"},
		{"a file twice", writeEntries(t, append(append([]entry{}, entries[:logo+1]...), entries[logo:]...)), "changed while it was read"},
		{"a file more", writeEntries(t, append(append(append([]entry{}, entries[:manifest]...), entry{name: "notes.txt", data: []byte("x")}), entries[manifest])), "changed while it was read"},
		{"the manifest missing", writeEntries(t, entries[:manifest]), "changed while it was read"},
		{"other bytes, listed anew", writeEntries(t, relisted(t, changedUsers, nil)), "changed while it was read"},
		{"a link", writeEntries(t, append([]entry{{name: tenancy.TenantFile, typ: tar.TypeSymlink}}, entries[1:]...)), "changed while it was read"},
		{"not gzip", []byte("plain text"), "changed while it was read"},
		{"a bad gzip checksum", badCRC, "damaged"},
		{"truncated", f.archive[:len(f.archive)/2], "damaged"},
	}
	for _, c := range cases {
		err := v.Reread(bytes.NewReader(c.second), func(string, int64, io.Reader) error { return nil })
		wantRefused(t, c.name, err, c.want)
	}
}

// A spool has no name on disk: nothing of it stays behind a killed process.
func TestOpenSpoolLeavesNoName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := archive.OpenSpool(dir, "nself-export-*.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("rows"); err != nil {
		t.Fatal(err)
	}
	left, err := filepath.Glob(filepath.Join(dir, archive.SpoolPattern))
	if err != nil || len(left) != 0 {
		t.Errorf("files left: %v, %v", left, err)
	}
	if matched, _ := filepath.Match(archive.SpoolPattern, filepath.Base(f.Name())); !matched {
		t.Errorf("%s does not match %s", f.Name(), archive.SpoolPattern)
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("stat %s: %v, want gone", f.Name(), err)
	}
}
