package archive

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/nself/nself/internal/tenancy"
)

// maxMetaFile bounds the files read into memory: tenant.json and the
// manifest (which lists every file, so it grows with the object count).
const maxMetaFile = 256 << 20

// Verified is what a first pass over an archive learned.
type Verified struct {
	Manifest *tenancy.Manifest
	Tenant   tenancy.ExportedTenant
	// Logos are the archive's objects, each checked as a logo upload is,
	// by key.
	Logos map[string]*tenancy.Logo
	// sums are the files the manifest lists, as it lists them.
	sums map[string]tenancy.ManifestEntry
	// manifestSum is the manifest's own size and hash, for the second pass.
	manifestSum tenancy.ManifestEntry
}

var tableNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*$`)

// VerifyManifest checks an archive as Verify does, with the default logo
// limits, and returns its manifest.
func VerifyManifest(r io.Reader) (*tenancy.Manifest, error) {
	v, err := Verify(r, tenancy.DefaultLogoLimits)
	if err != nil {
		return nil, err
	}
	return v.Manifest, nil
}

// Verify reads the whole archive once and checks it against its manifest:
// every file listed is there with its size and SHA-256, nothing else is,
// no entry is anything but a regular file, no entry's name leaves the
// archive, the manifest is the last file, the format is one this program
// reads, and the gzip stream ends with a good checksum. Every object must
// be a logo as an upload makes it, under the key the product gives it
// (tenancy.LogoLimits.CheckLogoObject), and come after every table, as an
// export writes them: an import checks the rows before it stores any
// object. An archive that fails is refused (Refused), damage and tampering
// named before its content.
func Verify(r io.Reader, limits tenancy.LogoLimits) (*Verified, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, Refused("not a gzip-compressed archive (%v)", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]tenancy.ManifestEntry{}
	var manifestRaw, tenantRaw []byte
	var manifestSum tenancy.ManifestEntry
	logos := map[string]*tenancy.Logo{}
	objectsSeen := false
	// A content check's refusal waits for the manifest's checks: an
	// archive damaged or altered is told as such first.
	var contentErr error
	refuseContent := func(err error) {
		if contentErr == nil {
			contentErr = err
		}
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Refused("the archive is damaged (%v)", err)
		}
		if manifestRaw != nil {
			return nil, Refused("entry %s follows the manifest, which must be last", tenancy.Quote(hdr.Name))
		}
		if err := tenancy.CheckArchivePath(hdr.Name); err != nil {
			return nil, Refused("%s", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, Refused("entry %s is not a regular file", tenancy.Quote(hdr.Name))
		}
		if _, dup := seen[hdr.Name]; dup {
			return nil, Refused("entry %s appears twice", tenancy.Quote(hdr.Name))
		}
		h := newHashReader(tr)
		switch {
		case hdr.Name == tenancy.ManifestFile || hdr.Name == tenancy.TenantFile:
			if hdr.Size > maxMetaFile {
				return nil, Refused("%s is too large", hdr.Name)
			}
			b, err := io.ReadAll(h)
			if err != nil {
				return nil, Refused("the archive is damaged (%v)", err)
			}
			if hdr.Name == tenancy.ManifestFile {
				manifestRaw = b
				manifestSum = h.entry(hdr.Name)
				continue
			}
			tenantRaw = b
		case strings.HasPrefix(hdr.Name, tenancy.ObjectsDir):
			objectsSeen = true
			key := strings.TrimPrefix(hdr.Name, tenancy.ObjectsDir)
			if hdr.Size > int64(limits.MaxBytes) {
				refuseContent(Refused("object %s is %s; a logo may be at most %s", tenancy.Quote(key),
					tenancy.FormatBytes(hdr.Size), tenancy.FormatBytes(int64(limits.MaxBytes))))
				if _, err := io.Copy(io.Discard, h); err != nil {
					return nil, Refused("the archive is damaged (%v)", err)
				}
				break
			}
			b, err := io.ReadAll(h)
			if err != nil {
				return nil, Refused("the archive is damaged (%v)", err)
			}
			if l, err := limits.CheckLogoObject(key, b); err != nil {
				refuseContent(Refused("%s", tenancy.ErrorMessage(err)))
			} else {
				logos[key] = l
			}
		default:
			if objectsSeen && strings.HasPrefix(hdr.Name, tenancy.TablesDir) {
				refuseContent(Refused("entry %s follows the objects; an export writes every table first", tenancy.Quote(hdr.Name)))
			}
			if _, err := io.Copy(io.Discard, h); err != nil {
				return nil, Refused("the archive is damaged (%v)", err)
			}
		}
		seen[hdr.Name] = h.entry(hdr.Name)
	}
	// The gzip stream's own checksum is checked at its end.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, Refused("the archive is damaged (%v)", err)
	}
	if manifestRaw == nil {
		return nil, Refused("%s is missing", tenancy.ManifestFile)
	}
	var m tenancy.Manifest
	dec := json.NewDecoder(strings.NewReader(string(manifestRaw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, Refused("%s is not valid (%v)", tenancy.ManifestFile, err)
	}
	if m.Format != tenancy.ExportFormat {
		return nil, Refused("not a tenant export (format %s)", tenancy.Quote(m.Format))
	}
	if m.Version != tenancy.ExportVersion {
		return nil, Refused("format version %d; this program reads version %d", m.Version, tenancy.ExportVersion)
	}
	// Every file the manifest lists, as it lists it, and no other.
	listed := map[string]tenancy.ManifestEntry{}
	for _, f := range m.Files {
		if err := tenancy.CheckArchivePath(f.Path); err != nil {
			return nil, Refused("the manifest lists %s", err)
		}
		if _, dup := listed[f.Path]; dup {
			return nil, Refused("the manifest lists %s twice", tenancy.Quote(f.Path))
		}
		listed[f.Path] = f
		got, ok := seen[f.Path]
		switch {
		case !ok:
			return nil, Refused("%s is listed in the manifest but missing", tenancy.Quote(f.Path))
		case got.Size != f.Size:
			return nil, Refused("%s has %d bytes, the manifest says %d", tenancy.Quote(f.Path), got.Size, f.Size)
		case got.SHA256 != strings.ToLower(f.SHA256):
			return nil, Refused("%s does not match its SHA-256 in the manifest", tenancy.Quote(f.Path))
		}
	}
	for name := range seen {
		if _, ok := listed[name]; !ok {
			return nil, Refused("%s is not listed in the manifest", tenancy.Quote(name))
		}
	}
	// Every listed file has a meaning, and each meaning its file. The
	// definitions and the restore script are for restoring without nself
	// (archives made before them lack them); an import checks them against
	// the manifest like any file and reads nothing from them.
	used := map[string]bool{tenancy.TenantFile: true, tenancy.SchemaFile: true, tenancy.RestoreFile: true}
	if _, ok := listed[tenancy.TenantFile]; !ok {
		return nil, Refused("%s is missing", tenancy.TenantFile)
	}
	names := map[string]bool{}
	for _, t := range m.Tables {
		if !tableNameRE.MatchString(t.Name) || t.File != tenancy.TableFile(t.Name) || names[t.Name] {
			return nil, Refused("the manifest names table %s oddly", tenancy.Quote(t.Name))
		}
		if _, ok := listed[t.File]; !ok {
			return nil, Refused("%s is missing", tenancy.Quote(t.File))
		}
		if len(t.Columns) == 0 || !slices.Contains(t.Columns, "tenant_id") {
			return nil, Refused("table %s has no tenant_id column", t.Name)
		}
		names[t.Name], used[t.File] = true, true
	}
	for _, o := range m.Objects {
		if err := tenancy.CheckArchivePath(o.Key); err != nil || o.File != tenancy.ObjectFile(o.Key) || used[o.File] {
			return nil, Refused("the manifest names object %s oddly", tenancy.Quote(o.Key))
		}
		if _, ok := listed[o.File]; !ok {
			return nil, Refused("%s is missing", tenancy.Quote(o.File))
		}
		used[o.File] = true
	}
	for name := range listed {
		if !used[name] {
			return nil, Refused("%s is neither a table nor an object", tenancy.Quote(name))
		}
	}
	if contentErr != nil {
		return nil, contentErr
	}
	v := &Verified{Manifest: &m, sums: listed, manifestSum: manifestSum, Logos: logos}
	if err := json.Unmarshal(tenantRaw, &v.Tenant); err != nil {
		return nil, Refused("%s is not valid (%v)", tenancy.TenantFile, err)
	}
	if v.Tenant.ID != m.TenantID || v.Tenant.Name == "" {
		return nil, Refused("%s does not describe the exported tenant", tenancy.TenantFile)
	}
	return v, nil
}

// Reread is a second pass over the archive Verify checked, for a caller
// that uses the files as they stream (which it may not do from the first
// pass: the archive may have changed since). fn is called with each file
// in the archive's order, its name, its size and its bytes; what fn leaves
// unread is read for it. Every file is hashed again: each file the
// manifest lists (and the manifest) must come again, once, with the same
// size and hash, and nothing else may, else the archive is refused
// (Changed); the gzip stream must end with a good checksum. An error of
// fn ends the pass and is returned as it is.
func (v *Verified) Reread(r io.Reader, fn func(name string, size int64, body io.Reader) error) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return Changed()
	}
	tr := tar.NewReader(gz)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Refused("the archive is damaged (%v)", err)
		}
		want, ok := v.sums[hdr.Name]
		if hdr.Name == tenancy.ManifestFile {
			want, ok = v.manifestSum, true
		}
		if !ok || seen[hdr.Name] || hdr.Typeflag != tar.TypeReg {
			return Changed()
		}
		seen[hdr.Name] = true
		h := newHashReader(tr)
		if err := fn(hdr.Name, hdr.Size, h); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, h); err != nil {
			return Refused("the archive is damaged (%v)", err)
		}
		if h.n != want.Size || h.sum() != want.SHA256 {
			return Changed()
		}
	}
	// The gzip stream's own checksum is checked at its end.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return Refused("the archive is damaged (%v)", err)
	}
	if !seen[tenancy.ManifestFile] {
		return Changed()
	}
	for name := range v.sums {
		if !seen[name] {
			return Changed()
		}
	}
	return nil
}
