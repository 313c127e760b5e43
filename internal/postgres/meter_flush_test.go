package postgres_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// A flush writes every tenant's counts in one transaction, however many
// tenants had requests; a tenant whose counts cannot be written (gone
// since its requests) holds back only its own.
func TestMeterFlushIsOneTransaction(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	mustPlan(t, db, "small", 100, "")
	var tenants []*tenancy.Tenant
	for _, slug := range []string{"flush-a", "flush-b", "flush-c", "flush-d"} {
		tenants = append(tenants, mustCreateTenant(t, db, slug, tenancy.StrategyRLS))
	}
	mustSetPlan(t, db, "flush-a", "small")
	m := postgres.NewMeter(db, discardLog())
	for i, tn := range tenants {
		limit := int64(tenancy.Unlimited)
		if tn.Slug == "flush-a" {
			limit = 100
		}
		for range i + 1 {
			if q, err := m.Admit(ctx, tn.ID, limit); err != nil || !q.Allowed {
				t.Fatalf("admit %s: %+v %v", tn.Slug, q, err)
			}
			m.AddCompute(tn.ID, 90*time.Second)
		}
	}
	acquired := db.App.Stat().AcquireCount()
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := db.App.Stat().AcquireCount() - acquired; n != 1 {
		t.Errorf("the flush of %d tenants took %d transactions, want 1", len(tenants), n)
	}
	period := tenancy.PeriodOf(time.Now())
	for i, tn := range tenants {
		if c := apiCounter(t, db, tn.ID, period); c.used != int64(i+1) {
			t.Errorf("%s: used %d, want %d", tn.Slug, c.used, i+1)
		}
		daily := map[string]float64{}
		asTenant(t, db, tn.ID, func(tx pgx.Tx) {
			rows, err := tx.Query(ctx, `SELECT service_name, quantity::float8 FROM public.billing_usage_daily WHERE tenant_id = $1`, tn.ID)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var s string
				var q float64
				if err := rows.Scan(&s, &q); err != nil {
					t.Fatal(err)
				}
				daily[s] = q
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		})
		if want := float64(i + 1); daily["api_requests"] != want || math.Abs(daily["compute_hours"]-want*0.025) > 1e-9 {
			t.Errorf("%s: daily %v, want %v requests and %v compute hours", tn.Slug, daily, want, want*0.025)
		}
	}
	// flush-a's block: granted, not handed back while in use.
	if c := apiCounter(t, db, tenants[0].ID, period); c.reserved < 1 {
		t.Errorf("flush-a: reserved %d after a grant", c.reserved)
	}

	// A tenant that no longer exists fails its statement: the others are
	// written all the same, and its counts are kept for the next flush.
	gone := "00000000-0000-4000-8000-000000000001"
	if _, err := m.Admit(ctx, gone, tenancy.Unlimited); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Admit(ctx, tenants[1].ID, tenancy.Unlimited); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(ctx); err == nil {
		t.Error("a flush with a missing tenant reported no error")
	}
	if c := apiCounter(t, db, tenants[1].ID, period); c.used != 3 {
		t.Errorf("flush-b beside a failing tenant: used %d, want 3", c.used)
	}
}

// A flush with nothing to write asks the database nothing: no counter
// moved and no block is left to hand back, so a server with no API
// traffic makes no transaction for its meter.
func TestMeterFlushWithNothingNewTakesNoConnection(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	mustPlan(t, db, "idlesmall", 1000, "")
	limited := mustCreateTenant(t, db, "idle-limited", tenancy.StrategyRLS)
	mustSetPlan(t, db, "idle-limited", "idlesmall")
	unlimited := mustCreateTenant(t, db, "idle-unlimited", tenancy.StrategyRLS)
	m := postgres.NewMeter(db, discardLog())
	m.IdleRelease = time.Nanosecond
	for _, a := range []struct {
		id    string
		limit int64
	}{{limited.ID, 1000}, {unlimited.ID, tenancy.Unlimited}} {
		if q, err := m.Admit(ctx, a.id, a.limit); err != nil || !q.Allowed {
			t.Fatalf("admit: %+v %v", q, err)
		}
	}
	acquired := func() int64 { return db.App.Stat().AcquireCount() + db.Admin.Stat().AcquireCount() }
	before := acquired()
	// The counts, and the limited tenant's idle block handed back.
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := acquired() - before; n != 1 {
		t.Errorf("the flush of two tenants' counts took %d connections, want 1", n)
	}
	before = acquired()
	for range 3 {
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := acquired() - before; n != 0 {
		t.Errorf("flushes with nothing new took %d connections, want none", n)
	}
	if c := apiCounter(t, db, limited.ID, tenancy.PeriodOf(time.Now())); c.used != 1 || c.reserved != 1 {
		t.Errorf("limited tenant: used %d reserved %d, want 1 and 1 (its block handed back)", c.used, c.reserved)
	}
}
