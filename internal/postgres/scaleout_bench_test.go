package postgres_test

// A tenant-scoped read and write through the services, one at a time, for
// comparing a single PostgreSQL with a Citus cluster (docs/benchmarks.md,
// "Citus"): run once with `eval "$(scripts/services.sh env)"` and once with
// `eval "$(scripts/services.sh env citus)"`.
//
//	go test -run '^$' -bench TenantReadWrite -benchtime 3000x -count 3 ./internal/postgres/

import (
	"context"
	"fmt"
	"testing"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func BenchmarkTenantReadWrite(b *testing.B) {
	db := pgtest.New(b)
	ctx := context.Background()
	tenants := postgres.NewTenantService(db, tenancy.ModeHybrid)
	settings := postgres.NewBrandingService(db)
	var ids []string
	for i := range 50 {
		c, err := tenants.CreateTenant(ctx, tenancy.NewTenant{Name: "Bench", Slug: fmt.Sprintf("bench-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := settings.SetSetting(ctx, c.Tenant.ID, "branding.company_name", "Bench"); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, c.Tenant.ID)
	}
	// One pipelined round trip: BEGIN, SET LOCAL, the read, COMMIT.
	b.Run("read", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := settings.Setting(ctx, ids[i%len(ids)], "branding.company_name"); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A transaction of its own: lock the setting, upsert it, audit entry.
	b.Run("write", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := settings.SetSetting(ctx, ids[i%len(ids)], "branding.company_name", fmt.Sprintf("Bench %d", i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
