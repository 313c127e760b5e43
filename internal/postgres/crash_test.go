package postgres_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// ownerExec runs one statement as the owner in the tenant's context.
func ownerExec(t *testing.T, db *postgres.DB, tenantID, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func putObject(t *testing.T, store *blob.Store, bucket, key, body string) {
	t.Helper()
	if err := store.Put(context.Background(), bucket, key, []byte(body), "image/png"); err != nil {
		t.Fatal(err)
	}
}

// An object in the bucket that no row refers to (its upload's commit never
// came) is not part of the tenant's data: the export leaves it out.
func TestExportLeavesOutObjectsWithoutARow(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	for _, strategy := range []tenancy.Strategy{tenancy.StrategyRLS, tenancy.StrategySchema} {
		tn := mustCreateTenant(t, e.db, "orphans-"+string(strategy), strategy)
		l, err := postgres.NewLogoService(e.db, e.store).UploadLogo(e.ctx, tn.ID, tenancy.LogoMain, testPNG(t, 8, 8))
		if err != nil {
			t.Fatal(err)
		}
		putObject(t, e.store, tenancy.TenantBucket(tn.ID), "logos/icon/"+strings.Repeat("a", 64)+".png", "no row")
		m := e.manifestOf(e.export(tn.Slug))
		if len(m.Objects) != 1 || m.Objects[0].Key != l.ObjectKey {
			t.Errorf("%s: exported objects %+v, want only %s", strategy, m.Objects, l.ObjectKey)
		}
		for _, f := range m.Files {
			if strings.Contains(f.Path, strings.Repeat("a", 64)) {
				t.Errorf("%s: the object without a row is in the archive: %s", strategy, f.Path)
			}
		}
	}
}

// The sweep removes objects no row refers to once they are older than the
// grace period, in every tenant, and leaves objects with a row and young
// objects alone.
func TestObjectSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	store := blobtest.New(t)
	logos := postgres.NewLogoService(db, store)
	acme := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	beta := mustCreateTenant(t, db, "beta", tenancy.StrategySchema)
	main, err := logos.UploadLogo(ctx, acme.ID, tenancy.LogoMain, testPNG(t, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	betaLogo, err := logos.UploadLogo(ctx, beta.ID, tenancy.LogoIcon, testPNG(t, 16, 16))
	if err != nil {
		t.Fatal(err)
	}
	putObject(t, store, tenancy.TenantBucket(acme.ID), "logos/icon/old-orphan.png", "left by a crash")
	putObject(t, store, tenancy.TenantBucket(beta.ID), "logos/main/old-orphan.png", "left by a crash")
	time.Sleep(1500 * time.Millisecond)
	putObject(t, store, tenancy.TenantBucket(acme.ID), "logos/dark/young-orphan.png", "on its way in")

	sweeper := postgres.NewObjectSweeper(db, store)
	sweeper.Grace = time.Second
	n, err := sweeper.Sweep(ctx)
	if err != nil || n != 2 {
		t.Fatalf("sweep: removed %d, %v; want 2", n, err)
	}
	for _, c := range []struct {
		tenant, key string
		want        bool
	}{
		{acme.ID, main.ObjectKey, true},
		{acme.ID, "logos/icon/old-orphan.png", false},
		{acme.ID, "logos/dark/young-orphan.png", true},
		{beta.ID, betaLogo.ObjectKey, true},
		{beta.ID, "logos/main/old-orphan.png", false},
	} {
		ok, err := store.Exists(ctx, tenancy.TenantBucket(c.tenant), c.key)
		if err != nil || ok != c.want {
			t.Errorf("%s: present %v (%v), want %v", c.key, ok, err, c.want)
		}
	}
	if _, b, err := logos.GetLogo(ctx, acme.ID, tenancy.LogoMain); err != nil || len(b) == 0 {
		t.Errorf("logo after the sweep: %v", err)
	}
}

// A running job whose process is gone (its instance's lock free) is failed
// at once by any other process, and what its upload left in the store is
// removed; a job of a live process keeps running. The owner may ask again
// straight away.
func TestExportJobsOfStoppedProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	store := blobtest.New(t)
	newJobs := func() *postgres.ExportJobService {
		svc := postgres.NewExportService(db, store, tenancy.ModeHybrid)
		svc.TempDir = t.TempDir()
		j := postgres.NewExportJobService(svc)
		t.Cleanup(j.Close)
		return j
	}
	here, other := newJobs(), newJobs()
	if err := other.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dead, alive := mustCreateTenant(t, db, "dead-one", tenancy.StrategyRLS), mustCreateTenant(t, db, "alive-one", tenancy.StrategyRLS)
	deadOwner, aliveOwner := mustCreateUser(t, db, dead.ID, "o@dead.test"), mustCreateUser(t, db, alive.ID, "o@alive.test")
	const deadJob, aliveJob = "00000000-0000-4000-8000-00000000000d", "00000000-0000-4000-8000-00000000000a"
	// Both were moving a moment ago; the first one's process is gone.
	gone := postgres.ExportInstance(other) ^ 0x5a5a
	ownerExec(t, db, dead.ID, `INSERT INTO tenants.tenant_exports (tenant_id, id, requested_by, instance) VALUES ($1, $2, $3, $4)`,
		dead.ID, deadJob, deadOwner.ID, gone)
	ownerExec(t, db, alive.ID, `INSERT INTO tenants.tenant_exports (tenant_id, id, requested_by, instance) VALUES ($1, $2, $3, $4)`,
		alive.ID, aliveJob, aliveOwner.ID, postgres.ExportInstance(other))
	// What the dead job's upload left: parts of an unfinished upload, and
	// (killed between the upload and marking the job ready) the archive.
	key := tenancy.ExportKey(dead.ID, deadJob)
	core := minio.Core{Client: store.Client()}
	if err := store.EnsureBucket(ctx, tenancy.ExportBucket); err != nil {
		t.Fatal(err)
	}
	upload, err := core.NewMultipartUpload(ctx, tenancy.ExportBucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.PutObjectPart(ctx, tenancy.ExportBucket, key, upload, 1, strings.NewReader("tenant data"), 11, minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	putObject(t, store, tenancy.ExportBucket, key, "a whole archive")

	if err := here.Start(ctx); err != nil {
		t.Fatal(err)
	}
	state := func(tenantID, userID, id string) *tenancy.ExportJob {
		t.Helper()
		j, err := here.GetExport(ctx, tenantID, userID, id)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	if j := state(dead.ID, deadOwner.ID, deadJob); j.State != tenancy.ExportFailed || !strings.Contains(j.Failure, "stopped") || j.FinishedAt == nil {
		t.Errorf("the dead process's job: %s %q", j.State, j.Failure)
	}
	if j := state(alive.ID, aliveOwner.ID, aliveJob); j.State != tenancy.ExportRunning {
		t.Errorf("the live process's job: %s %q", j.State, j.Failure)
	}
	if ok, _ := store.Exists(ctx, tenancy.ExportBucket, key); ok {
		t.Error("the dead job's archive is still in the store")
	}
	if res, err := core.ListMultipartUploads(ctx, tenancy.ExportBucket, key, "", "", "", 10); err != nil || len(res.Uploads) != 0 {
		t.Errorf("unfinished uploads of the dead job: %+v, %v", res.Uploads, err)
	}
	if _, err := here.StartExport(ctx, alive.ID, aliveOwner.ID); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("a second export beside a live one: %v", err)
	}

	// The other process stops (its lock goes with its connection): its job
	// no longer holds the place, and the owner's new export runs.
	other.Close()
	j, err := here.StartExport(ctx, alive.ID, aliveOwner.ID)
	if err != nil {
		t.Fatalf("export after the other process stopped: %v", err)
	}
	here.Wait()
	if j := state(alive.ID, aliveOwner.ID, aliveJob); j.State != tenancy.ExportFailed {
		t.Errorf("the stopped process's job: %s", j.State)
	}
	if j := state(alive.ID, aliveOwner.ID, j.ID); j.State != tenancy.ExportReady {
		t.Errorf("the new export: %s %q", j.State, j.Failure)
	}
}

// stuckStore is object storage that accepts an upload and never finishes
// it.
type stuckStore struct{ *blob.Store }

func (stuckStore) PutObjectStream(ctx context.Context, _, _ string, r io.Reader, _ int64, _ string) error {
	io.CopyN(io.Discard, r, 10)
	<-ctx.Done()
	return ctx.Err()
}

// An export that makes no progress (its store stopped answering) is
// stopped after Stale instead of holding the tenant's place for as long as
// the process lives.
func TestExportStoppedWhenItMakesNoProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	svc := postgres.NewExportService(db, stuckStore{blobtest.New(t)}, tenancy.ModeHybrid)
	svc.TempDir = t.TempDir()
	jobs := postgres.NewExportJobService(svc)
	jobs.Stale = time.Second
	t.Cleanup(jobs.Close)
	tn := mustCreateTenant(t, db, "stuck", tenancy.StrategyRLS)
	u := mustCreateUser(t, db, tn.ID, "o@stuck.test")
	j, err := jobs.StartExport(ctx, tn.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the stuck export is still running")
	}
	got, err := jobs.GetExport(ctx, tn.ID, u.ID, j.ID)
	if err != nil || got.State != tenancy.ExportFailed || !strings.Contains(got.Failure, "no progress") {
		t.Errorf("stuck export: %+v, %v", got, err)
	}
}

// Export archives are storage: they count against the plan's limit for
// logos, and a tenant at its limit gets no new export.
func TestExportArchivesCountAsStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	store := blobtest.New(t)
	svc := postgres.NewExportService(db, store, tenancy.ModeHybrid)
	svc.TempDir = t.TempDir()
	jobs := postgres.NewExportJobService(svc)
	t.Cleanup(jobs.Close)
	tn := mustCreateTenant(t, db, "full", tenancy.StrategyRLS) // free: 1 GB
	u := mustCreateUser(t, db, tn.ID, "o@full.test")
	archive := func(id string, size int64, expires string) {
		ownerExec(t, db, tn.ID, `INSERT INTO tenants.tenant_exports
			(tenant_id, id, requested_by, state, object_key, size_bytes, finished_at, expires_at)
			VALUES ($1, $2, $3, 'ready', 'k', $4, now(), now() + $5::interval)`, tn.ID, id, u.ID, size, expires)
	}
	// An expired archive is no longer kept: it does not count.
	archive("00000000-0000-4000-8000-000000000001", 5e9, "-1 hour")
	archive("00000000-0000-4000-8000-000000000002", 999_999_999, "1 hour")
	logos := postgres.NewLogoService(db, store)
	if _, err := logos.UploadLogo(ctx, tn.ID, tenancy.LogoMain, testPNG(t, 40, 40)); tenancy.ErrorCode(err) != tenancy.EQUOTA {
		t.Errorf("a logo past the limit with the archive: %v", err)
	}
	if _, err := jobs.StartExport(ctx, tn.ID, u.ID); err != nil {
		t.Fatalf("export under the limit: %v", err)
	}
	jobs.Wait()
	archive("00000000-0000-4000-8000-000000000003", 1000, "1 hour")
	_, err := jobs.StartExport(ctx, tn.ID, u.ID)
	if tenancy.ErrorCode(err) != tenancy.EQUOTA || !strings.Contains(tenancy.ErrorMessage(err), `plan "free" includes 1 GB of storage`) {
		t.Errorf("export at the limit: %v", err)
	}
}
