package postgres_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func ref[T any](v T) *T { return &v }

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// mustPlan creates a plan with the given monthly API request limit.
func mustPlan(t *testing.T, db *postgres.DB, name string, apiLimit int64, price string) *tenancy.Plan {
	t.Helper()
	in := tenancy.PlanInput{Name: name, MaxAPIRequests: ref(apiLimit), StripePriceID: ref("price_" + name)}
	if price != "" {
		cents, err := tenancy.ParsePrice(price)
		if err != nil {
			t.Fatal(err)
		}
		in.PriceCents = &cents
	}
	p, err := postgres.NewPlanService(db).CreatePlan(context.Background(), in)
	if err != nil {
		t.Fatalf("create plan %s: %v", name, err)
	}
	return p
}

func mustSetPlan(t *testing.T, db *postgres.DB, tenant, plan string) {
	t.Helper()
	if _, err := postgres.NewBillingService(db).SetTenantPlan(context.Background(), tenant, plan); err != nil {
		t.Fatalf("set plan: %v", err)
	}
}

type counterRow struct{ used, reserved int64 }

func apiCounter(t *testing.T, db *postgres.DB, tenantID string, period time.Time) counterRow {
	t.Helper()
	var c counterRow
	asTenant(t, db, tenantID, func(tx pgx.Tx) {
		err := tx.QueryRow(context.Background(), `
			SELECT used::bigint, reserved FROM public.billing_usage_counters
			WHERE tenant_id = $1 AND period = $2 AND service_name = 'api_requests'`, tenantID, period).Scan(&c.used, &c.reserved)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
	})
	return c
}

func TestPlanAdmin(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	plans := postgres.NewPlanService(db)

	p, err := plans.CreatePlan(ctx, tenancy.PlanInput{Name: "team", PriceCents: ref(int64(4900)), StripePriceID: ref("price_team")})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxUsers != 5 || p.MaxStorageGB != 1 || p.MaxAPIRequests != 10000 || p.MaxComputeHours != 10 || p.PriceMonthlyCent != 4900 {
		t.Errorf("defaults: %+v", p)
	}
	if _, err := plans.CreatePlan(ctx, tenancy.PlanInput{Name: "team"}); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := plans.CreatePlan(ctx, tenancy.PlanInput{Name: "other", StripePriceID: ref("price_team")}); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("duplicate Stripe price: %v", err)
	}
	for _, bad := range []tenancy.PlanInput{
		{Name: "Team Plan"}, {Name: ""}, {Name: "x", MaxUsers: ref(int64(-2))},
		{Name: "x", PriceCents: ref(int64(-1))}, {Name: "x", StripePriceID: ref("prod_123")},
	} {
		if _, err := plans.CreatePlan(ctx, bad); tenancy.ErrorCode(err) != tenancy.EINVALID {
			t.Errorf("create %+v: %v, want invalid", bad, err)
		}
	}

	p, err = plans.UpdatePlan(ctx, tenancy.PlanInput{Name: "team", MaxUsers: ref(int64(tenancy.Unlimited)), StripePriceID: ref("")})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxUsers != tenancy.Unlimited || p.StripePriceID != "" || p.PriceMonthlyCent != 4900 {
		t.Errorf("update: %+v", p)
	}
	if _, err := plans.UpdatePlan(ctx, tenancy.PlanInput{Name: "nope"}); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("update a missing plan: %v", err)
	}

	if _, err := plans.ArchivePlan(ctx, tenancy.DefaultPlan); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("archive the default plan: %v", err)
	}
	if p, err = plans.ArchivePlan(ctx, "team"); err != nil || !p.Archived {
		t.Fatalf("archive: %+v, %v", p, err)
	}
	a := mustCreateTenant(t, db, "plan-a", tenancy.StrategyRLS)
	billing := postgres.NewBillingService(db)
	if _, err := billing.SetTenantPlan(ctx, a.Slug, "team"); err == nil {
		t.Error("an archived plan was given to a tenant")
	}
	if _, err := billing.SetTenantPlan(ctx, a.Slug, "nope"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("missing plan: %v", err)
	}
	got, err := billing.SetTenantPlan(ctx, a.Slug, "pro")
	if err != nil || got.Plan != "pro" {
		t.Fatalf("set plan: %+v, %v", got, err)
	}

	// A plan too small for the tenant's members is refused.
	if _, err := plans.CreatePlan(ctx, tenancy.PlanInput{Name: "solo", MaxUsers: ref(int64(1))}); err != nil {
		t.Fatal(err)
	}
	members := postgres.NewMemberService(db)
	for _, email := range []string{"one@example.com", "two@example.com"} {
		u := mustCreateUser(t, db, a.ID, email)
		if _, err := members.AddMember(ctx, a.ID, u.ID, tenancy.RoleMember, tenancy.PlatformActor()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := billing.SetTenantPlan(ctx, a.Slug, "solo"); tenancy.ErrorCode(err) != tenancy.EQUOTA {
		t.Errorf("plan below the member count: %v", err)
	}
}

// Two meters stand for two server processes; together they never admit
// more requests than the limit, however the requests interleave.
func TestMeterNeverAdmitsBeyondTheLimit(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	mustPlan(t, db, "tiny", 500, "")
	a := mustCreateTenant(t, db, "meter-a", tenancy.StrategyRLS)
	mustSetPlan(t, db, a.Slug, "tiny")

	meters := []*postgres.Meter{postgres.NewMeter(db, discardLog()), postgres.NewMeter(db, discardLog())}
	meters[1].MaxBlock = 7
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := meters[g%2]
			for range 150 {
				q, err := m.Admit(ctx, a.ID, 500)
				if err != nil {
					t.Error(err)
					return
				}
				if q.Allowed {
					admitted.Add(1)
					if q.Current > 500 {
						t.Errorf("current %d beyond the limit", q.Current)
					}
				} else {
					refused.Add(1)
					if q.Limit != 500 || q.Current < 500 {
						t.Errorf("refusal: %+v", q)
					}
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 500 || refused.Load() != 700 {
		t.Errorf("admitted %d, refused %d; want 500 and 700", admitted.Load(), refused.Load())
	}
	for _, m := range meters {
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c := apiCounter(t, db, a.ID, tenancy.PeriodOf(time.Now()))
	if c.used != 500 || c.reserved != 500 {
		t.Errorf("counter %+v, want used and reserved 500", c)
	}
}

// What a process holds back is bounded, and given back: a process that
// stops without handing back its block costs the others at most that
// block; one that closes costs nothing.
func TestMeterBlocksAreBoundedAndHandedBack(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	mustPlan(t, db, "small", 100, "")
	a := mustCreateTenant(t, db, "meter-b", tenancy.StrategyRLS)
	mustSetPlan(t, db, a.Slug, "small")

	drain := func(m *postgres.Meter) int {
		n := 0
		for {
			q, err := m.Admit(ctx, a.ID, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !q.Allowed {
				return n
			}
			n++
		}
	}
	crashed := postgres.NewMeter(db, discardLog())
	crashed.MaxBlock = 10
	if q, _ := crashed.Admit(ctx, a.ID, 100); !q.Allowed {
		t.Fatal("first request refused")
	}
	// The crashed process never flushes nor hands back its block of 10.
	other := postgres.NewMeter(db, discardLog())
	if n := drain(other); n != 90 {
		t.Errorf("the other process admitted %d, want 90 (100 less the crashed block)", n)
	}

	b := mustCreateTenant(t, db, "meter-c", tenancy.StrategyRLS)
	mustSetPlan(t, db, b.Slug, "small")
	one, two := postgres.NewMeter(db, discardLog()), postgres.NewMeter(db, discardLog())
	if q, _ := one.Admit(ctx, b.ID, 100); !q.Allowed {
		t.Fatal("first request refused")
	}
	if err := one.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		q, err := two.Admit(ctx, b.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !q.Allowed {
			break
		}
		n++
	}
	if n != 99 {
		t.Errorf("after the first process closed, the second admitted %d, want 99", n)
	}
}

func TestMeterUnlimitedAndMonthRollover(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	mustPlan(t, db, "three", 3, "")
	a := mustCreateTenant(t, db, "roll-a", tenancy.StrategyRLS)
	mustSetPlan(t, db, a.Slug, "three")
	e := mustCreateTenant(t, db, "roll-e", tenancy.StrategyRLS)
	m := postgres.NewMeter(db, discardLog())

	// The enterprise plan is unlimited: never refused, still counted.
	for i := range 1000 {
		q, err := m.Admit(ctx, e.ID, tenancy.Unlimited)
		if err != nil || !q.Allowed {
			t.Fatalf("unlimited request %d: %+v %v", i, q, err)
		}
	}

	for range 3 {
		if q, _ := m.Admit(ctx, a.ID, 3); !q.Allowed {
			t.Fatal("refused within the limit")
		}
	}
	q, err := m.Admit(ctx, a.ID, 3)
	if err != nil || q.Allowed || q.Current != 3 || !q.ResetDate.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("over the limit: %+v %v", q, err)
	}
	m.AddCompute(a.ID, 90*time.Minute)

	// A new month starts over.
	now = time.Date(2026, 2, 1, 0, 0, 1, 0, time.UTC)
	q, err = m.Admit(ctx, a.ID, 3)
	if err != nil || !q.Allowed || q.Current != 1 || !q.ResetDate.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("first request of February: %+v %v", q, err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	jan, feb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if c := apiCounter(t, db, a.ID, jan); c.used != 3 {
		t.Errorf("January: %+v", c)
	}
	if c := apiCounter(t, db, a.ID, feb); c.used != 1 || c.reserved != 1 {
		t.Errorf("February: %+v", c)
	}
	// Requests admitted without a limit count as reserved too, against a
	// limit the tenant may move to this month.
	if c := apiCounter(t, db, e.ID, jan); c.used != 1000 || c.reserved != 1000 {
		t.Errorf("unlimited tenant: %+v", c)
	}
	u, err := postgres.NewBillingService(db).TenantUsage(ctx, a.ID, jan)
	if err != nil {
		t.Fatal(err)
	}
	if u.APIRequests != 3 || u.ComputeHours != 1.5 || len(u.Daily) != 1 || u.Daily[0].Count != 3 {
		t.Errorf("January usage: %+v", u)
	}
}

func TestMeterThresholdsHeardOnce(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	mustPlan(t, db, "ten", 10, "")
	a := mustCreateTenant(t, db, "warn-a", tenancy.StrategyRLS)
	mustSetPlan(t, db, a.Slug, "ten")
	var mu sync.Mutex
	heard := map[int]int{}
	meters := []*postgres.Meter{postgres.NewMeter(db, discardLog()), postgres.NewMeter(db, discardLog())}
	for _, m := range meters {
		m.OnThreshold = func(tenantID string, pct int, limit int64) {
			mu.Lock()
			heard[pct]++
			mu.Unlock()
			if tenantID != a.ID || limit != 10 {
				t.Errorf("threshold for %s, limit %d", tenantID, limit)
			}
		}
	}
	for i := range 30 {
		if _, err := meters[i%2].Admit(ctx, a.ID, 10); err != nil {
			t.Fatal(err)
		}
	}
	if heard[80] != 1 || heard[100] != 1 {
		t.Errorf("heard %v, want 80%% and 100%% once each", heard)
	}
}

func TestUsageIsTenantData(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "use-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "use-b", tenancy.StrategyRLS)
	m := postgres.NewMeter(db, discardLog())
	for range 5 {
		if _, err := m.Admit(ctx, a.ID, 10000); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	asTenant(t, db, b.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM public.billing_usage_counters WHERE tenant_id = $1`, a.ID); n != 0 {
			t.Errorf("tenant B sees %d of A's counters", n)
		}
		if n := count(t, tx, `SELECT count(*) FROM public.billing_usage_daily`); n != 0 {
			t.Errorf("tenant B sees %d daily rows", n)
		}
		if _, err := tx.Exec(ctx, `UPDATE public.billing_usage_counters SET used = 0`); err != nil {
			t.Fatal(err)
		}
	})
	if c := apiCounter(t, db, a.ID, tenancy.PeriodOf(time.Now())); c.used != 5 {
		t.Errorf("A's counter after B's update: %+v", c)
	}
	asTenant(t, db, "", func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM public.billing_usage_counters`); n != 0 {
			t.Errorf("no tenant set, yet %d counters visible", n)
		}
	})
}

func TestRecordStorageGBHours(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "store-a", tenancy.StrategyRLS)
	billing := postgres.NewBillingService(db)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := billing.RecordStorage(ctx, a.ID, 2e9, start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := billing.RecordStorage(ctx, a.ID, 4e9, start.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	u, err := billing.TenantUsage(ctx, a.ID, start)
	if err != nil {
		t.Fatal(err)
	}
	// 2 GB for the 3 hours between the readings.
	if u.StorageBytes != 4e9 || u.StorageGBHours != 6 {
		t.Errorf("storage: %d bytes, %v GB-hours", u.StorageBytes, u.StorageGBHours)
	}
}

func TestLogoRefusedBeyondTheStorageQuota(t *testing.T) {
	e := newLogoEnv(t)
	if _, err := postgres.NewPlanService(e.db).CreatePlan(e.ctx, tenancy.PlanInput{Name: "nostore", MaxStorageGB: ref(int64(0))}); err != nil {
		t.Fatal(err)
	}
	a := mustCreateTenant(t, e.db, "quota-a", tenancy.StrategyRLS)
	mustSetPlan(t, e.db, a.Slug, "nostore")
	png := testPNG(t, 64, 64)
	_, err := e.svc.UploadLogo(e.ctx, a.ID, tenancy.LogoMain, png)
	if tenancy.ErrorCode(err) != tenancy.EQUOTA {
		t.Fatalf("upload beyond the quota: %v", err)
	}
	if e.rows(a.ID) != 0 || e.exists(a.ID, "logos/main/"+sha(png)+".png") {
		t.Error("a refused upload left a row or an object")
	}
	mustSetPlan(t, e.db, a.Slug, "free")
	if _, err := e.svc.UploadLogo(e.ctx, a.ID, tenancy.LogoMain, png); err != nil {
		t.Fatalf("upload within the quota: %v", err)
	}
}

// A notice is sent once a month per mark, though blocks handed back and
// granted again cross the mark again.
func TestMeterNoticesOncePerMonth(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	// With a limit of 200 the grant that crosses 80% goes from 157 to 162.
	mustPlan(t, db, "twohundred", 200, "")
	a := mustCreateTenant(t, db, "notice-a", tenancy.StrategyRLS)
	mustSetPlan(t, db, a.Slug, "twohundred")
	var mu sync.Mutex
	heard := map[int]int{}
	listen := func(m *postgres.Meter) *postgres.Meter {
		m.OnThreshold = func(_ string, pct int, _ int64) {
			mu.Lock()
			heard[pct]++
			mu.Unlock()
		}
		return m
	}
	one := listen(postgres.NewMeter(db, discardLog()))
	admitted := 0
	for heard[80] == 0 {
		if q, err := one.Admit(ctx, a.ID, 200); err != nil || !q.Allowed {
			t.Fatalf("request %d: %+v %v", admitted, q, err)
		}
		admitted++
	}
	// Handing back the unused block takes the reserved count below 80%
	// again; the next grant crosses the mark a second time.
	if err := one.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c := apiCounter(t, db, a.ID, tenancy.PeriodOf(time.Now())); c.reserved >= 160 {
		t.Fatalf("reserved %d after the handback; the test needs it below 160", c.reserved)
	}
	two := listen(postgres.NewMeter(db, discardLog()))
	for range 60 {
		if _, err := two.Admit(ctx, a.ID, 200); err != nil {
			t.Fatal(err)
		}
	}
	if heard[80] != 1 || heard[100] != 1 {
		t.Errorf("heard %v, want each mark once", heard)
	}
}

// Requests admitted under an unlimited plan count against a limit the
// tenant moves to in the same month.
func TestMeterUnlimitedCountsAgainstALaterLimit(t *testing.T) {
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "later-a", tenancy.StrategyRLS)
	m := postgres.NewMeter(db, discardLog())
	for range 50 {
		if _, err := m.Admit(ctx, a.ID, tenancy.Unlimited); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range 100 {
		q, err := m.Admit(ctx, a.ID, 60)
		if err != nil {
			t.Fatal(err)
		}
		if q.Allowed {
			n++
		}
	}
	if n != 10 {
		t.Errorf("admitted %d under the new limit of 60 after 50, want 10", n)
	}
}
