package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// wokenBy starts a tenant cache on db whose notices on channel wake the
// returned channel, and waits until it listens (its first wake-up, for the
// connection, is taken).
func wokenBy(t *testing.T, db *postgres.DB, channel string) (*postgres.TenantCache, <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tc := postgres.NewTenantCache(db, discardLog())
	wake := tc.Woken(channel)
	go tc.Listen(ctx)
	<-tc.Ready()
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up when the listener connected")
	}
	return tc, wake
}

func awaitWake(t *testing.T, wake <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatalf("no notice: %s", what)
	}
}

// The watch for exports of dead processes asks the database nothing while
// no export runs, however often its interval comes round; an export
// started in another process wakes it, and it then fails a job whose
// process is gone.
func TestExportWatchSleepsUntilAnExportStarts(t *testing.T) {
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
	_, wake := wokenBy(t, db, postgres.ExportChannel)
	here := newJobs()
	here.RecoverEvery = 50 * time.Millisecond
	here.Wake = wake
	if err := here.Start(ctx); err != nil {
		t.Fatal(err)
	}
	acquired := func() int64 { return db.App.Stat().AcquireCount() + db.Admin.Stat().AcquireCount() }
	before := acquired()
	time.Sleep(time.Second)
	if n := acquired() - before; n != 0 {
		t.Errorf("the watch took %d connections in 20 rounds with no export running, want none", n)
	}

	// Another process, then a job whose process is gone (written as its
	// process left it), then an export started by the other process.
	other := newJobs()
	if err := other.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dead, busy := mustCreateTenant(t, db, "watch-dead", tenancy.StrategyRLS), mustCreateTenant(t, db, "watch-busy", tenancy.StrategyRLS)
	deadOwner, busyOwner := mustCreateUser(t, db, dead.ID, "o@dead.test"), mustCreateUser(t, db, busy.ID, "o@busy.test")
	const deadJob = "00000000-0000-4000-8000-00000000000d"
	ownerExec(t, db, dead.ID, `INSERT INTO tenants.tenant_exports (tenant_id, id, requested_by, instance) VALUES ($1, $2, $3, $4)`,
		dead.ID, deadJob, deadOwner.ID, postgres.ExportInstance(here)^0x5a5a)
	if _, err := other.StartExport(ctx, busy.ID, busyOwner.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		j, err := here.GetExport(ctx, dead.ID, deadOwner.ID, deadJob)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == tenancy.ExportFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead process's job is still %s: the export started elsewhere did not wake the watch", j.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	other.Wait()
}

// Recording a deleted tenant's files for removal, and a failed attempt at
// removing them, wake the retries of every process.
func TestStorageRemovalIsAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	_, wake := wokenBy(t, db, postgres.StorageChannel)
	mustCreateTenant(t, db, "gone-soon", tenancy.StrategyRLS)
	if _, err := postgres.NewTenantService(db, tenancy.ModeHybrid).DeleteTenant(ctx, "gone-soon"); err != nil {
		t.Fatal(err)
	}
	awaitWake(t, wake, "a tenant's deletion recorded its files' removal")
}
