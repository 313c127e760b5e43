package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
)

// BenchmarkCachedMemory measures the memory a server process holds for
// 100,000 tenants and 100,000 API keys in its caches (the tenant by id and
// by slug, the key by its hash): the heap in use after a collection, with
// everything cached, less the heap before; then with each tenant metered
// too (MiB-metered), as a process serving all of them holds it.
//
//	go test -run '^$' -bench CachedMemory -benchtime 1x ./internal/postgres/
func BenchmarkCachedMemory(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	db := pgtest.New(b)
	if _, err := db.Admin.Exec(ctx, fmt.Sprintf(`
		INSERT INTO tenants.tenants (slug, name)
		SELECT format('mem-%%s', lpad(g::text, 6, '0')), format('Memory Tenant %%s', g)
		FROM generate_series(1, %d) g`, n)); err != nil {
		b.Fatal(err)
	}
	// Keys as the CLI makes them, one per tenant.
	var keys []string
	rows, err := db.Admin.Query(ctx, `
		SELECT id, 'nsk_' || replace(id::text, '-', '') || '_' || md5(random()::text) || md5(random()::text)
		FROM tenants.tenants WHERE slug LIKE 'mem-%'`)
	if err != nil {
		b.Fatal(err)
	}
	type pair struct{ tenant, key string }
	pairs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pair, error) {
		var p pair
		return p, r.Scan(&p.tenant, &p.key)
	})
	if err != nil {
		b.Fatal(err)
	}
	tx, err := db.Admin.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	batch := &pgx.Batch{}
	for _, p := range pairs {
		batch.Queue(`SELECT tenants.set_context($1, NULL)`, p.tenant)
		batch.Queue(`INSERT INTO auth.api_keys (tenant_id, name, prefix, key_hash)
			VALUES ($1, 'bench', 'nsk_' || left(split_part($2, '_', 3), 12), sha256(convert_to($2, 'UTF8')))`, p.tenant, p.key)
		keys = append(keys, p.key)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	tc := postgres.NewTenantCache(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go tc.Listen(lctx)
	<-tc.Ready()
	apiKeys := postgres.NewAPIKeyService(db).Cached(listening(b, db))

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	for _, p := range pairs {
		t, err := tc.Lookup(ctx, p.tenant)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tc.Lookup(ctx, t.Slug); err != nil {
			b.Fatal(err)
		}
		if _, err := apiKeys.AuthenticateAPIKey(ctx, p.key, ""); err != nil {
			b.Fatal(err)
		}
	}
	after := heap()
	// A process serving every tenant also meters each of them.
	m := postgres.NewMeter(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, p := range pairs {
		if _, err := m.Admit(ctx, p.tenant, -1); err != nil {
			b.Fatal(err)
		}
	}
	metered := heap()
	// The requests' own data (pairs, keys) is live in every reading, so
	// none of it is counted, nor its release taken off the caches'.
	runtime.KeepAlive(pairs)
	runtime.KeepAlive(keys)
	runtime.KeepAlive(m)
	b.ReportMetric(float64(after-before)/(1<<20), "MiB")
	b.ReportMetric(float64(after-before)/n, "B/tenant+key")
	b.ReportMetric(float64(metered-before)/(1<<20), "MiB-metered")
}
