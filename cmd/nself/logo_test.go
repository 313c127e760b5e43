package main

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
)

func writeLogoFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pngFile(t *testing.T, name string, w, h int) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return writeLogoFile(t, name, b.Bytes())
}

func TestWhitelabelLogo(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), blobtest.Env(t)...)
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	c.ok("tenant", "create", "Beta", "--slug", "beta")

	// The type comes from the bytes: a PNG named .jpg is a PNG.
	mustMatch(t, c.ok("whitelabel", "logo", "upload", "acme", pngFile(t, "logo.jpg", 120, 40)),
		`^✓ Logo uploaded: acme main \(image/png, 120×40, \d+ bytes\)$`)
	svg := writeLogoFile(t, "icon.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>`))
	mustMatch(t, c.ok("whitelabel", "logo", "upload", "acme", svg, "--type", "icon"),
		`^✓ Logo uploaded: acme icon \(image/svg\+xml, scalable, \d+ bytes\)$`)
	mustMatch(t, c.ok("whitelabel", "logo", "upload", "acme", pngFile(t, "b.png", 60, 20), "--type", "main"),
		`^✓ Logo uploaded: acme main \(image/png, 60×20, `)

	out := c.ok("whitelabel", "logo", "list", "acme")
	mustMatch(t, out,
		`\ATYPE +CONTENT_TYPE +SIZE +DIMENSIONS +UPDATED\n─+\n`,
		`^main  image/png      \d+ bytes  60×20       \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`,
		`^icon  image/svg\+xml  \d+ bytes  scalable    \d{4}`)
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 4 {
		t.Errorf("list has %d lines:\n%s", n, out)
	}
	if n := len(strings.Split(strings.TrimSpace(c.ok("whitelabel", "logo", "list", "beta")), "\n")); n != 2 {
		t.Errorf("beta lists logos")
	}

	mustMatch(t, c.ok("whitelabel", "logo", "remove", "acme", "--type", "icon"), `^✓ Logo removed: acme icon$`)
	if out := c.ok("whitelabel", "logo", "list", "acme"); strings.Contains(out, "icon") {
		t.Errorf("removed logo listed:\n%s", out)
	}
}

func TestWhitelabelLogoBadInput(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, blobtest.Env(t)...)
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	big := make([]byte, 3<<20)
	copy(big, "\x89PNG\r\n\x1a\n")
	tests := []struct {
		args []string
		env  []string
		code int
		msg  string
	}{
		{args: []string{"upload", "acme", writeLogoFile(t, "a.gif", []byte("GIF89a......"))}, code: 1, msg: "the file is not a PNG, JPEG, WebP or SVG image"},
		{args: []string{"upload", "acme", writeLogoFile(t, "big.png", big)}, code: 1, msg: "a logo may be at most 2.0 MB"},
		{args: []string{"upload", "acme", writeLogoFile(t, "x.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))}, code: 1, msg: "<script> element"},
		{args: []string{"upload", "acme", pngFile(t, "a.png", 2, 2), "--type", "banner"}, code: 1, msg: `logo type "banner" is not one of main, icon, email, dark`},
		{args: []string{"upload", "acme", "/no/such/file.png"}, code: 1, msg: "no such file"},
		{args: []string{"upload", "nope", pngFile(t, "a.png", 2, 2)}, code: 1, msg: `tenant "nope" not found`},
		{args: []string{"upload", "acme"}, code: 2, msg: "takes 2 argument(s), got 1"},
		{args: []string{"remove", "acme"}, code: 2, msg: "logo remove needs --type"},
		{args: []string{"remove", "acme", "--type", "main"}, code: 1, msg: "no main logo"},
		{args: []string{"list", "nope"}, code: 1, msg: `tenant "nope" not found`},
		{args: []string{"upload", "acme", pngFile(t, "a.png", 2, 2)}, env: []string{"MINIO_ENDPOINT=127.0.0.1:1"}, code: 1, msg: "object storage is unreachable at 127.0.0.1:1"},
		{args: []string{"list", "acme"}, env: []string{"MINIO_ENDPOINT="}, code: 1, msg: "MINIO_ENDPOINT is not set"},
	}
	for _, tt := range tests {
		cc := newCLI(t, urls, append(blobtest.Env(t), tt.env...)...)
		r := cc.run("", append([]string{"whitelabel", "logo"}, tt.args...)...)
		if r.code != tt.code || !strings.Contains(r.err, tt.msg) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("logo %v: exit %d, stderr %q; want %d, %q", tt.args, r.code, r.err, tt.code, tt.msg)
		}
	}
	if out := c.ok("whitelabel", "logo", "list", "acme"); len(strings.Split(strings.TrimSpace(out), "\n")) != 2 {
		t.Errorf("a failed upload left a logo:\n%s", out)
	}
}
