package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/web"
)

// BenchmarkAPIRequest is one GET /v1/tenant at a time through the whole
// handler (API key, tenant, quota check with the meter, JSON), for the
// latency of a request on a single PostgreSQL against a Citus cluster
// (docs/benchmarks.md, "Citus"):
//
//	go test -run '^$' -bench APIRequest -benchtime 3000x -count 3 ./web/
func BenchmarkAPIRequest(b *testing.B) {
	e := newEnv(b, func(s *web.Server, d *postgres.DB) {
		s.Plans = postgres.NewPlanService(d).Cached(s.Resolver.(*postgres.TenantCache))
		s.Meter = postgres.NewMeter(d, slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	acme := e.mustTenant("acme")
	_, key, err := e.server.APIKeys.CreateAPIKey(e.ctx, acme.ID, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	h := e.server.Handler()
	req := httptest.NewRequest(http.MethodGet, "http://api."+baseDomain+"/v1/tenant", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
