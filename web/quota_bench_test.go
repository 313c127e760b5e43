package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// countingMeter is the guide's quota check, for comparison: an INSERT of a
// usage record per request and a COUNT(*) over the month's records, in
// the tenant's context as the application role.
type countingMeter struct{ db *postgres.DB }

func (m countingMeter) Admit(ctx context.Context, tenantID string, limit int64) (tenancy.APIQuota, error) {
	q := tenancy.APIQuota{Limit: limit, ResetDate: tenancy.PeriodEnd(time.Now())}
	err := pgx.BeginFunc(ctx, m.db.App, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM public.billing_usage_records
			WHERE tenant_id = $1 AND service_name = 'api_requests' AND recorded_at > date_trunc('month', now())`,
			tenantID).Scan(&q.Current); err != nil {
			return err
		}
		if limit >= 0 && q.Current >= limit {
			return nil
		}
		q.Allowed = true
		_, err := tx.Exec(ctx, `
			INSERT INTO public.billing_usage_records (tenant_id, service_name, quantity, recorded_at)
			VALUES ($1, 'api_requests', 1, now())`, tenantID)
		return err
	})
	return q, err
}

func (countingMeter) AddCompute(string, time.Duration) {}

// BenchmarkQuotaCheckedAPI measures GET /v1/tenant through the whole
// handler (API key, tenant, quota) with n usage records of the tenant
// already stored this month: with the meter, and with the guide's INSERT
// plus COUNT(*), and (at 10,000) without any check. Requests run in
// parallel, as a server's would.
//
//	go test -run '^$' -bench QuotaCheckedAPI -benchtime 5s ./web/
func BenchmarkQuotaCheckedAPI(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		kinds := []string{"meter", "count"}
		if n == 10_000 {
			// The same request without a quota check, for what the check
			// itself costs.
			kinds = append(kinds, "none")
		}
		for _, kind := range kinds {
			b.Run(fmt.Sprintf("records=%d/%s", n, kind), func(b *testing.B) {
				var db *postgres.DB
				e := newEnv(b, func(s *web.Server, d *postgres.DB) {
					db = d
					// Plans from memory, as serve reads them.
					s.Plans = postgres.NewPlanService(d).Cached(s.Resolver.(*postgres.TenantCache))
					switch kind {
					case "meter":
						s.Meter = postgres.NewMeter(d, slog.New(slog.NewTextHandler(io.Discard, nil)))
					case "count":
						s.Meter = countingMeter{d}
					}
				})
				acme := e.mustTenant("acme")
				if _, err := postgres.NewBillingService(db).SetTenantPlan(e.ctx, acme.Slug, "enterprise"); err != nil {
					b.Fatal(err)
				}
				// A plan whose limit is never reached, so every request
				// does the whole check.
				if _, err := postgres.NewPlanService(db).UpdatePlan(e.ctx, tenancy.PlanInput{Name: "enterprise", MaxAPIRequests: ref(int64(1 << 40))}); err != nil {
					b.Fatal(err)
				}
				seedUsage(b, db, acme.ID, n)
				_, key, err := e.server.APIKeys.CreateAPIKey(e.ctx, acme.ID, "bench", "")
				if err != nil {
					b.Fatal(err)
				}
				h := e.server.Handler()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					req := httptest.NewRequest(http.MethodGet, "http://api."+baseDomain+"/v1/tenant", nil)
					req.Header.Set("Authorization", "Bearer "+key)
					for pb.Next() {
						w := httptest.NewRecorder()
						h.ServeHTTP(w, req)
						if w.Code != 200 {
							b.Errorf("%d %s", w.Code, w.Body)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			})
		}
	}
}

// seedUsage stores n API request records of the tenant in this month, as
// the guide's approach leaves them.
func seedUsage(b *testing.B, db *postgres.DB, tenantID string, n int) {
	b.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.Admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO public.billing_usage_records (tenant_id, service_name, quantity, recorded_at)
			SELECT $1, 'api_requests', 1, date_trunc('month', now()) + (i % 1000) * interval '1 second'
			FROM generate_series(1, $2) i`, tenantID, n)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Admin.Exec(ctx, `ANALYZE public.billing_usage_records`); err != nil {
		b.Fatal(err)
	}
}
