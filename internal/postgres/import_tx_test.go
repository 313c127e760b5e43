package postgres_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// txWatchStore is the real store, which notes, at each call that writes or
// removes, every session of the test database inside a transaction: a
// call made while the import's transaction is open finds it there.
type txWatchStore struct {
	*blob.Store
	t  *testing.T
	db *postgres.DB

	mu      sync.Mutex
	calls   int
	open    []string
	buckets map[string]bool
}

func (s *txWatchStore) look(call string) {
	s.t.Helper()
	rows, err := s.db.Admin.Query(context.Background(), `
		SELECT pid || ' ' || state || ': ' || left(query, 60)
		FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`)
	if err != nil {
		s.t.Errorf("read pg_stat_activity: %v", err)
		return
	}
	open, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.t.Errorf("read pg_stat_activity: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, o := range open {
		s.open = append(s.open, call+" during "+o)
	}
}

func (s *txWatchStore) PutObjectStream(ctx context.Context, bucket, key string, r io.Reader, size int64, contentType string) error {
	s.look("put " + key)
	s.mu.Lock()
	s.buckets[bucket] = true
	s.mu.Unlock()
	return s.Store.PutObjectStream(ctx, bucket, key, r, size, contentType)
}

func (s *txWatchStore) Put(ctx context.Context, bucket, key string, data []byte, contentType string) error {
	s.look("put " + key)
	return s.Store.Put(ctx, bucket, key, data, contentType)
}

func (s *txWatchStore) EnsureBucket(ctx context.Context, bucket string) error {
	s.look("make bucket " + bucket)
	return s.Store.EnsureBucket(ctx, bucket)
}

func (s *txWatchStore) Remove(ctx context.Context, bucket, key string) error {
	s.look("remove " + key)
	return s.Store.Remove(ctx, bucket, key)
}

func (s *txWatchStore) RemoveBucket(ctx context.Context, bucket string) error {
	s.look("remove bucket " + bucket)
	return s.Store.RemoveBucket(ctx, bucket)
}

// The import stores the new tenant's logos, and removes them when it
// fails, with no transaction open: a store that does not answer must not
// hold a transaction (and the rows and locks it has taken) while it waits.
func TestImportCallsTheStoreOutsideTransactions(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	src := e.richTenant("acme", tenancy.StrategySchema)
	archive := e.export("acme")
	watch := &txWatchStore{Store: e.store, t: t, db: e.db, buckets: map[string]bool{}}
	svc := postgres.NewExportService(e.db, watch, tenancy.ModeHybrid)
	svc.TempDir = t.TempDir()
	svc.Domains = e.svc.Domains

	res, err := svc.Import(e.ctx, bytes.NewReader(archive), tenancy.ImportOptions{Slug: "acme-copy"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if res.Objects != 2 || watch.calls < 2 {
		t.Fatalf("imported %d objects in %d store calls; the test needs the logos uploaded", res.Objects, watch.calls)
	}
	if len(watch.open) > 0 {
		t.Errorf("store calls made while a transaction was open:\n%s", strings.Join(watch.open, "\n"))
	}
	logos := postgres.NewLogoService(e.db, e.store)
	_, a, err := logos.GetLogo(e.ctx, src.ID, tenancy.LogoMain)
	if err != nil {
		t.Fatal(err)
	}
	if _, b, err := logos.GetLogo(e.ctx, res.Tenant.ID, tenancy.LogoMain); err != nil || !bytes.Equal(a, b) {
		t.Errorf("imported logo: %d bytes, %v", len(b), err)
	}

	// A transaction that fails after the uploads (an order pointing at no
	// product) leaves nothing behind: the objects, and their bucket, are
	// removed after it has rolled back.
	watch.calls, watch.open = 0, nil
	entries := readEntries(t, archive)
	entries = editCSV(t, entries, "app.orders", func(row map[string]string) {
		row["product_id"] = "00000000-0000-0000-0000-000000000000"
	})
	watch.buckets = map[string]bool{}
	_, err = svc.Import(e.ctx, bytes.NewReader(forge(t, entries)), tenancy.ImportOptions{Slug: "acme-broken"})
	if err == nil {
		t.Fatal("an import whose orders point at no product succeeded")
	}
	if watch.calls < 3 {
		t.Errorf("%d store calls: want the uploads and their removal", watch.calls)
	}
	if len(watch.open) > 0 {
		t.Errorf("store calls made while a transaction was open:\n%s", strings.Join(watch.open, "\n"))
	}
	if len(watch.buckets) != 1 {
		t.Errorf("the failed import wrote to buckets %v; want the new tenant's", watch.buckets)
	}
	for bucket := range watch.buckets {
		if ok, err := e.store.Client().BucketExists(e.ctx, bucket); ok || err != nil {
			t.Errorf("the failed import's bucket %s is still there (%v)", bucket, err)
		}
	}
	var n int
	if err := e.db.Admin.QueryRow(e.ctx, `SELECT count(*) FROM tenants.tenants WHERE slug = 'acme-broken'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed import left %d tenant(s), %v", n, err)
	}
	// The pooled connection the rows were staged on carries nothing to
	// the next user.
	var temp int
	if err := e.db.Admin.QueryRow(e.ctx, `SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname LIKE 'nself_import_%'`).Scan(&temp); err != nil || temp != 0 {
		t.Errorf("pooled connections still hold %d staging table(s), %v", temp, err)
	}
}
