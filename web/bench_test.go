package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkLanding measures a tenant's branded landing page served from the
// tenant cache, in process, to find where its time goes
// (go test -run '^$' -bench Landing -cpuprofile cpu.out ./web/).
// scripts/bench/portal.sh measures it over the network against a bare handler.
func BenchmarkLanding(b *testing.B) {
	e := newEnv(b)
	e.mustTenant("acme")
	h := e.server.Handler()
	req := httptest.NewRequest(http.MethodGet, "http://acme.nself.test/", nil)
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		io.Discard.Write(w.Body.Bytes())
	}
}
