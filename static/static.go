// Package static holds the portal's CSS, JavaScript and images, embedded in
// the binary. htmx.min.js is htmx 2.0.11 from the npm package htmx.org
// (sha256 d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717),
// vendored so no page loads code from elsewhere.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
)

//go:embed *.js *.css *.svg
var FS embed.FS

// versions maps each file to a short hash of its content, so URLs change
// when the file does and can be cached forever.
var versions = func() map[string]string {
	m := map[string]string{}
	fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := FS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[p] = hex.EncodeToString(sum[:])[:12]
		return nil
	})
	return m
}()

// URL returns the address of a static file, versioned by its content.
func URL(name string) string { return "/static/" + name + "?v=" + versions[name] }
