// Package archive is the tenant export format: a gzip-compressed tar whose
// last file, the manifest, lists every other file with its size and
// SHA-256 (see tenancy's description of the layout). It writes such an
// archive as it streams, verifies one before anything of it is used, and
// reads it a second time checking each file against what the first pass
// saw. What the rows and objects mean, and where they come from or go, is
// the caller's: this package reads and writes files, not databases.
package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"

	"github.com/nself/nself/internal/tenancy"
)

// Refused is the error of an archive that does not pass the checks: an
// invalid-input error whose message says the archive was refused and why,
// on one line.
func Refused(format string, args ...any) error {
	return tenancy.Errorf(tenancy.EINVALID, "archive refused: "+format, args...)
}

// Changed is the error of a second pass that does not see what the first
// one verified.
func Changed() error {
	return Refused("the archive changed while it was read")
}

// hashReader hashes and counts what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashReader(r io.Reader) *hashReader { return &hashReader{r: r, h: sha256.New()} }

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

func (h *hashReader) entry(name string) tenancy.ManifestEntry {
	return tenancy.ManifestEntry{Path: name, Size: h.n, SHA256: h.sum()}
}
