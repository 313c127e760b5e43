package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// The console's delete removes the tenant's files after the delete has
// committed, and says so.
func TestAdminDeleteTenantRemovesItsFiles(t *testing.T) {
	t.Parallel()
	store := blobtest.New(t)
	env := newEnv(t, func(s *web.Server, db *postgres.DB) {
		s.Storage = postgres.NewStorageRemover(db, store)
	})
	acme := env.mustTenant("acme")
	if _, err := env.server.Logos.UploadLogo(env.ctx, acme.ID, tenancy.LogoMain, logoPNG(t, 12, 12)); err != nil {
		t.Fatal(err)
	}
	bucket := tenancy.TenantBucket(acme.ID)
	if ok, err := store.Client().BucketExists(env.ctx, bucket); !ok || err != nil {
		t.Fatalf("the logo's bucket: %v %v", ok, err)
	}
	c := signedInAdmin(t, env)
	c.get("/tenants/acme/delete")
	resp, body := c.post("/tenants/acme/delete", url.Values{"confirm": {"acme"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d\n%s", resp.StatusCode, body)
	}
	page := follow(t, c, resp, body)
	if got := textOf(t, page, "flash"); !strings.Contains(got, "deleted") || !strings.Contains(got, "Its files were removed") {
		t.Errorf("flash %q", got)
	}
	if ok, err := store.Client().BucketExists(env.ctx, bucket); ok || err != nil {
		t.Errorf("the deleted tenant's bucket is still there (%v)", err)
	}
}
