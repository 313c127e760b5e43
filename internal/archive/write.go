package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

// Writer writes files into a gzip-compressed tar as they stream, keeping
// the manifest entry of each; Finish writes the manifest last. A tar
// header carries the file's size before its bytes, so a caller whose size
// is not known up front spools the file first (OpenSpool).
type Writer struct {
	out   *countWriter
	gz    *gzip.Writer
	tw    *tar.Writer
	files []tenancy.ManifestEntry
	names map[string]bool
	now   time.Time
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewWriter returns a Writer onto w whose entries carry the time now.
func NewWriter(w io.Writer, now time.Time) *Writer {
	out := &countWriter{w: w}
	gz := gzip.NewWriter(out)
	return &Writer{out: out, gz: gz, tw: tar.NewWriter(gz), names: map[string]bool{}, now: now}
}

// Written is the number of compressed bytes written to the output so far.
func (a *Writer) Written() int64 { return a.out.n }

// Add writes a file of size bytes read from r, hashing it on the way. A
// name the reader would refuse (one that leaves the archive's folder, or
// one written before) is refused here, so a Writer never makes an
// archive Verify turns down for its layout.
func (a *Writer) Add(name string, size int64, r io.Reader) error {
	if err := tenancy.CheckArchivePath(name); err != nil {
		return err
	}
	if a.names[name] || name == tenancy.ManifestFile {
		return fmt.Errorf("write %s: written before", name)
	}
	if err := a.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: a.now, Format: tar.FormatPAX,
	}); err != nil {
		return err
	}
	h := newHashReader(r)
	n, err := io.Copy(a.tw, h)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("write %s: %d bytes, expected %d", name, n, size)
	}
	a.names[name] = true
	a.files = append(a.files, h.entry(name))
	return nil
}

// AddJSON writes v as an indented JSON file.
func (a *Writer) AddJSON(name string, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	return a.add(name, b)
}

func (a *Writer) add(name string, b []byte) error {
	return a.Add(name, int64(len(b)), bytes.NewReader(b))
}

func marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Finish sets m.Files to the files written so far, writes m as the
// manifest, the last file, and ends the tar and the gzip stream. w, the
// Writer's output, is not closed.
func (a *Writer) Finish(m *tenancy.Manifest) error {
	m.Files = a.files
	b, err := marshal(m)
	if err != nil {
		return err
	}
	if err := a.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: tenancy.ManifestFile, Size: int64(len(b)), Mode: 0o644, ModTime: a.now, Format: tar.FormatPAX,
	}); err != nil {
		return err
	}
	if _, err := a.tw.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", tenancy.ManifestFile, err)
	}
	if err := a.tw.Close(); err != nil {
		return err
	}
	return a.gz.Close()
}

// SpoolPattern matches the names of the files exports spool to; a folder
// of spools may be emptied of them when no export runs.
const SpoolPattern = "nself-export-*"

// OpenSpool creates a file in dir (the system's temporary directory when
// empty) and removes its name at once: the file is this process's alone,
// its space is freed when it is closed or the process ends, and a process
// killed midway leaves nothing on disk, neither part of a tenant's data
// nor a whole archive of it. pattern must match SpoolPattern.
func OpenSpool(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	// Another process clearing the folder at its start may have removed
	// the name already; either way it is gone.
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.Close()
		return nil, err
	}
	return f, nil
}
