package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/tenancy"
)

// withFiles creates tenant slug through the CLI with a logo, and puts an
// export archive where the portal keeps them; it returns the tenant's id.
func withFiles(t *testing.T, c *cli, store *blob.Store, slug string) string {
	t.Helper()
	out := c.ok("tenant", "create", "Tenant "+slug, "--slug", slug)
	id := regexp.MustCompile(`ID: ([0-9a-f-]{36})`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("tenant create said %q", out)
	}
	var logo bytes.Buffer
	png.Encode(&logo, image.NewRGBA(image.Rect(0, 0, 8, 8)))
	file := filepath.Join(t.TempDir(), "logo.png")
	os.WriteFile(file, logo.Bytes(), 0o644)
	c.ok("whitelabel", "logo", "upload", slug, file)
	if err := store.Put(context.Background(), tenancy.ExportBucket, tenancy.ExportKey(id[1], "00000000-0000-4000-8000-000000000002"),
		[]byte("an archive"), "application/gzip"); err != nil {
		t.Fatal(err)
	}
	if bucket, keys := storedFiles(t, store, id[1]); !bucket || len(keys) != 2 {
		t.Fatalf("tenant %s's files: bucket %v, %v", slug, bucket, keys)
	}
	return id[1]
}

// storedFiles says whether the tenant's bucket exists and lists its
// objects and export archives.
func storedFiles(t *testing.T, store *blob.Store, tenantID string) (bucket bool, keys []string) {
	t.Helper()
	ctx := context.Background()
	bucket, err := store.Client().BucketExists(ctx, tenancy.TenantBucket(tenantID))
	if err != nil {
		t.Fatal(err)
	}
	for _, where := range [][2]string{{tenancy.TenantBucket(tenantID), ""}, {tenancy.ExportBucket, tenancy.ExportPrefix(tenantID)}} {
		if err := store.ListObjects(ctx, where[0], where[1], func(o tenancy.ObjectInfo) error {
			keys = append(keys, where[0]+"/"+o.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return bucket, keys
}

func TestTenantDeleteRemovesItsFiles(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), blobtest.Env(t)...)
	store := blobtest.New(t)
	id := withFiles(t, c, store, "acme")

	if r := c.run("", "tenant", "purge-storage", "acme"); r.code != 1 || !regexp.MustCompile(`tenant acme is not deleted`).MatchString(r.err) {
		t.Errorf("purge-storage of a live tenant: exit %d, %q", r.code, r.err)
	}
	out := c.ok("tenant", "delete", "acme", "--yes")
	mustMatch(t, out, `^✓ Tenant deleted: acme$`, `^  Files removed: 2 object\(s\), bucket tenant-`+id+` and export archives$`)
	if bucket, keys := storedFiles(t, store, id); bucket || len(keys) != 0 {
		t.Errorf("after tenant delete: bucket %v, %v", bucket, keys)
	}
	mustMatch(t, c.ok("tenant", "doctor"), `^✓ No problems found$`)

	// A deleted tenant takes no change; a logo upload would make its
	// bucket again.
	logo := pngFile(t, "logo.png", 8, 8)
	for _, change := range [][]string{
		{"whitelabel", "brand", "set", "acme", "--primary-color", "#000"},
		{"tenant", "setting", "set", "acme", "branding.tagline", "still here"},
		{"whitelabel", "logo", "upload", "acme", logo},
		{"user", "create", "acme", "late@acme.example"},
	} {
		if r := c.run("", change...); r.code != 1 || !strings.Contains(r.err, "tenant acme is deleted") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("%s: exit %d, %q", strings.Join(change[:2], " "), r.code, r.err)
		}
	}
	if bucket, keys := storedFiles(t, store, id); bucket || len(keys) != 0 {
		t.Errorf("after the refused changes: bucket %v, %v", bucket, keys)
	}
}

// The default tenant cannot be deleted: it holds a single-tenant
// installation's data and adopted rows.
func TestDefaultTenantStays(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), blobtest.Env(t)...)
	c.ok("tenant", "init")
	r := c.run("", "tenant", "delete", "default", "--yes")
	if r.code != 1 || !strings.Contains(r.err, "the default tenant cannot be deleted") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("delete the default tenant: exit %d, %q", r.code, r.err)
	}
	mustMatch(t, c.ok("tenant", "show", "default"), `^  Status: active$`)
}

// With the store down the delete succeeds and says the files are left;
// doctor names them; once the store is back, nself serve removes them.
func TestTenantDeleteWhileStorageIsDown(t *testing.T) {
	t.Parallel()
	m := faulttest.StartMinIO(t)
	c := newCLI(t, pgtest.NewURLs(t), "MINIO_ENDPOINT="+m.Endpoint, "MINIO_ACCESS_KEY="+m.AccessKey,
		"MINIO_SECRET_KEY="+m.SecretKey, "MINIO_USE_SSL=false", "MINIO_TIMEOUT=2s")
	store, err := blob.New(blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	id := withFiles(t, c, store, "acme")

	m.Stop()
	r := c.run("", "tenant", "delete", "acme", "--yes")
	if r.code != 0 {
		t.Fatalf("tenant delete with the store down: exit %d, %q", r.code, r.err)
	}
	mustMatch(t, r.out, `^✓ Tenant deleted: acme$`)
	mustMatch(t, r.err, `^warning: the tenant's files are not removed yet: .*unavailable`,
		`nself serve removes them once file storage answers; or run: nself tenant purge-storage acme$`)
	d := c.run("", "tenant", "doctor")
	if d.code != 1 {
		t.Errorf("doctor with files left: exit %d", d.code)
	}
	mustMatch(t, d.out,
		`^✗ tenant acme: is deleted but its files are still in object storage \(bucket tenant-`+id+`, export archives\): removal pending since .*, 1 failed attempt\(s\)`,
		`^    fix: nself serve removes them .*; or now: nself tenant purge-storage acme$`)

	m.Restart(t)
	startServer(t, c, "--storage-retry", "200ms")
	deadline := time.Now().Add(20 * time.Second)
	for {
		bucket, keys := storedFiles(t, store, id)
		if !bucket && len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not remove the files: bucket %v, %v", bucket, keys)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustMatch(t, c.ok("tenant", "doctor"), `^✓ No problems found$`)
}
