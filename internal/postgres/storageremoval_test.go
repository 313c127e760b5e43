package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// filesOf reports what of a tenant's is in the store: whether its bucket
// exists, and the keys of its objects and export archives.
func filesOf(t *testing.T, store *blob.Store, tenantID string) (bucket bool, keys []string) {
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

// tenantWithFiles makes a tenant with a logo and an export archive kept in
// the exports bucket, on store.
func tenantWithFiles(t *testing.T, db *postgres.DB, store *blob.Store, slug string) *tenancy.Tenant {
	t.Helper()
	ctx := context.Background()
	tn := mustCreateTenant(t, db, slug, tenancy.StrategyRLS)
	if _, err := postgres.NewLogoService(db, store).UploadLogo(ctx, tn.ID, tenancy.LogoMain, testPNG(t, 20, 10)); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, tenancy.ExportBucket, tenancy.ExportKey(tn.ID, "00000000-0000-4000-8000-000000000001"),
		[]byte("an archive of the tenant's data"), "application/gzip"); err != nil {
		t.Fatal(err)
	}
	if bucket, keys := filesOf(t, store, tn.ID); !bucket || len(keys) != 2 {
		t.Fatalf("the tenant's files: bucket %v, %v", bucket, keys)
	}
	return tn
}

// storageFindings are doctor's findings about deleted tenants' files.
func storageFindings(t *testing.T, db *postgres.DB, r *postgres.StorageRemover) []string {
	t.Helper()
	ctx := context.Background()
	all, err := r.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left, err := r.Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range append(all, left...) {
		if strings.Contains(f.Problem, "is deleted") {
			out = append(out, f.Table+": "+f.Problem+" | fix: "+f.Fix)
		}
	}
	return out
}

// Deleting a tenant removes its files after the commit: its logos, its
// bucket and its export archives. The removal is recorded in the delete's
// transaction and the record goes with the files.
func TestDeleteTenantRemovesItsFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	store := blobtest.New(t)
	r := postgres.NewStorageRemover(db, store)
	acme := tenantWithFiles(t, db, store, "acme")
	globex := tenantWithFiles(t, db, store, "globex")

	if _, err := r.RemoveTenantStorage(ctx, "acme"); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Fatalf("removing a live tenant's files: %v", err)
	}
	if _, err := postgres.NewTenantService(db, tenancy.ModeHybrid).DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if got := storageFindings(t, db, r); len(got) != 1 || !strings.Contains(got[0], "tenant acme: is deleted but its files are still") {
		t.Errorf("doctor between the commit and the removal: %q", got)
	}
	n, err := r.RemoveTenantStorage(ctx, acme.ID)
	if err != nil || n != 2 {
		t.Fatalf("remove: %d objects, %v", n, err)
	}
	if bucket, keys := filesOf(t, store, acme.ID); bucket || len(keys) != 0 {
		t.Errorf("after the removal: bucket %v, %v", bucket, keys)
	}
	if bucket, keys := filesOf(t, store, globex.ID); !bucket || len(keys) != 2 {
		t.Errorf("another tenant's files: bucket %v, %v", bucket, keys)
	}
	if got := storageFindings(t, db, r); len(got) != 0 {
		t.Errorf("doctor after the removal: %q", got)
	}
	var entries int
	asTenant(t, db, acme.ID, func(tx pgx.Tx) {
		entries = count(t, tx, `SELECT count(*) FROM audit.events WHERE tenant_id = $1 AND action = 'tenant.storage_remove'`, acme.ID)
	})
	if entries != 1 {
		t.Errorf("%d audit entries for the removal", entries)
	}

	// An upload that lands after the removal (it was under way when the
	// tenant was deleted) is found by doctor, and purge-storage removes it.
	if err := store.Put(ctx, tenancy.TenantBucket(acme.ID), "logos/main/late.png", testPNG(t, 4, 4), "image/png"); err != nil {
		t.Fatal(err)
	}
	if got := storageFindings(t, db, r); len(got) != 1 || !strings.Contains(got[0], `object "logos/main/late.png" is still in bucket`) ||
		!strings.Contains(got[0], "nself tenant purge-storage acme") {
		t.Errorf("doctor with a late upload: %q", got)
	}
	if n, err := r.RemoveTenantStorage(ctx, "acme"); err != nil || n != 1 {
		t.Errorf("purge the late upload: %d, %v", n, err)
	}
	if got := storageFindings(t, db, r); len(got) != 0 {
		t.Errorf("doctor after the purge: %q", got)
	}
}

// With the store down the delete still succeeds; doctor reports the files
// left behind, and once the store is back the retry removes them.
func TestDeleteTenantWhileStorageIsDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	m := faulttest.StartMinIO(t)
	store, err := blob.New(blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	r := postgres.NewStorageRemover(db, store)
	acme := tenantWithFiles(t, db, store, "acme")

	m.Stop()
	if _, err := postgres.NewTenantService(db, tenancy.ModeHybrid).DeleteTenant(ctx, "acme"); err != nil {
		t.Fatalf("delete with the store down: %v", err)
	}
	if _, err := r.RemoveTenantStorage(ctx, "acme"); tenancy.ErrorCode(err) != tenancy.EUNAVAILABLE {
		t.Fatalf("remove with the store down: %v", err)
	}
	if n, _, err := r.RemovePending(ctx); n != 0 || tenancy.ErrorCode(err) != tenancy.EUNAVAILABLE {
		t.Fatalf("retry with the store down: %d, %v", n, err)
	}
	all, err := r.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range all {
		if strings.Contains(f.Problem, "is deleted") {
			found = append(found, f.Table+": "+f.Problem+" | fix: "+f.Fix)
		}
	}
	if len(found) != 1 || !strings.Contains(found[0], "tenant acme: is deleted but its files are still in object storage (bucket "+tenancy.TenantBucket(acme.ID)) ||
		!strings.Contains(found[0], "2 failed attempt(s)") || !strings.Contains(found[0], "nself tenant purge-storage acme") {
		t.Errorf("doctor with the store down: %q", found)
	}

	m.Restart(t)
	// Tried again as serve does, until it succeeds: a store that has just
	// started refuses until it has loaded its buckets.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		n, left, err := r.RemovePending(ctx)
		if n == 1 && left == 0 && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry with the store back: %d, %v", n, err)
		}
	}
	if bucket, keys := filesOf(t, store, acme.ID); bucket || len(keys) != 0 {
		t.Errorf("after the retry: bucket %v, %v", bucket, keys)
	}
	if got := storageFindings(t, db, r); len(got) != 0 {
		t.Errorf("doctor after the retry: %q", got)
	}
}

// A deleted tenant takes no change, by any of the services an operator's
// commands use: its brand, settings, themes, logos (whose upload would make
// its bucket again), users and keys stay as the delete left them.
func TestDeletedTenantTakesNoChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	store := blobtest.New(t)
	acme := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	if _, err := postgres.NewTenantService(db, tenancy.ModeHybrid).DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	brand := postgres.NewBrandingService(db)
	logos := postgres.NewLogoService(db, store)
	black := "#000000"
	for what, change := range map[string]func() error{
		"brand":   func() error { _, err := brand.SetBrand(ctx, acme.ID, tenancy.BrandUpdate{Primary: &black}); return err },
		"setting": func() error { _, err := brand.SetSetting(ctx, acme.ID, "branding.tagline", "still here"); return err },
		"settings": func() error {
			return brand.SetSettings(ctx, acme.ID, map[string]string{"branding.tagline": "still here"})
		},
		"theme": func() error {
			_, err := brand.CreateTheme(ctx, acme.ID, tenancy.NewTheme{Name: "Night", Primary: "#111111", Secondary: "#222222", Background: "#000000", Text: "#ffffff"})
			return err
		},
		"logo": func() error { _, err := logos.UploadLogo(ctx, acme.ID, tenancy.LogoMain, testPNG(t, 4, 4)); return err },
		"user": func() error {
			_, _, err := postgres.NewUserService(db).CreateUser(ctx, acme.ID, tenancy.NewUser{Email: "late@acme.test"})
			return err
		},
		"key": func() error {
			_, _, err := postgres.NewAPIKeyService(db).CreateAPIKey(ctx, acme.ID, "late", "")
			return err
		},
	} {
		if err := change(); tenancy.ErrorCode(err) != tenancy.ECONFLICT || !strings.Contains(err.Error(), "tenant acme is deleted") {
			t.Errorf("%s of a deleted tenant: %v, want refused as deleted", what, err)
		}
	}
	if bucket, keys := filesOf(t, store, acme.ID); bucket || len(keys) != 0 {
		t.Errorf("the refused upload left: bucket %v, %v", bucket, keys)
	}
}

// A change that read the tenant live before a delete began does not land
// after it. Here the upload's transaction has read the tenant live and
// waits for the logos table, which another session holds, while the
// tenant is deleted; then the table is let go. The delete waits for the
// change, and removes what it wrote.
func TestDeleteWaitsForAChangeUnderWay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	store := blobtest.New(t)
	acme := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	logos := postgres.NewLogoService(db, store)
	hold, err := db.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `LOCK TABLE tenants.tenant_logos IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	uploaded := make(chan error, 1)
	go func() { _, err := logos.UploadLogo(ctx, acme.ID, tenancy.LogoMain, testPNG(t, 4, 4)); uploaded <- err }()
	waiting := func(what string, n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var waits int
			if err := db.Admin.QueryRow(ctx, `SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waits); err != nil {
				t.Fatal(err)
			}
			if waits >= n {
				return
			}
			select {
			case err := <-uploaded:
				t.Fatalf("%s does not wait: the upload ended (%v)", what, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not wait", what)
			}
		}
	}
	waiting("the upload", 1)
	deleted := make(chan error, 1)
	go func() {
		_, err := postgres.NewTenantService(db, tenancy.ModeHybrid).DeleteTenant(ctx, acme.ID)
		deleted <- err
	}()
	waiting("the delete", 2)
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-uploaded; err != nil {
		t.Fatalf("the change under way: %v", err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if list, err := logos.ListLogos(ctx, acme.ID); err != nil || len(list) != 0 {
		t.Errorf("after the delete the tenant has logos: %v, %v", list, err)
	}
	// And once deleted, a change is refused.
	if _, err := logos.UploadLogo(ctx, acme.ID, tenancy.LogoMain, testPNG(t, 4, 4)); !strings.Contains(fmt.Sprint(err), "tenant acme is deleted") {
		t.Errorf("an upload after the delete: %v", err)
	}
}
