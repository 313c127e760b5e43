package web

import (
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"testing"
)

// Every answer carries the security headers, however it starts (a status,
// a first write, a flush), unless its handler set its own; an interim 103
// does not take them, and a proxied answer carries the application's page
// policies instead of the portal's, but keeps HSTS.
func TestSecurityHeadersAtTheStartOfEveryAnswer(t *testing.T) {
	s := &Server{}
	s.Config.Secure = true
	serve := func(h http.HandlerFunc) http.Header {
		rec := httptest.NewRecorder()
		sc := newRequestScope(t.Context(), "req-1", rec)
		s.securityHeaders(h).ServeHTTP(&sc.w, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Result().Header
	}
	for name, h := range map[string]http.HandlerFunc{
		"status": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) },
		"write":  func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) },
		"flush":  func(w http.ResponseWriter, r *http.Request) { http.NewResponseController(w).Flush() },
		"error":  func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadRequest) },
	} {
		got := serve(h)
		if got.Get("Content-Security-Policy") != contentSecurityPolicy || got.Get("X-Frame-Options") != "DENY" || got.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: %v", name, got)
		}
	}

	got := serve(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", billingPagePolicy)
		w.Write([]byte("ok"))
	})
	if v := got.Values("Content-Security-Policy"); len(v) != 1 || v[0] != billingPagePolicy {
		t.Errorf("a page's own policy: %q", v)
	}

	// An interim answer, on a real connection (a recorder takes the first
	// status as the final one).
	var status int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := newRequestScope(r.Context(), "req-1", w)
		s.securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.WriteHeader(http.StatusOK)
		})).ServeHTTP(&sc.w, r)
		status = sc.w.status
	}))
	defer srv.Close()
	var interim http.Header
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(_ int, h textproto.MIMEHeader) error { interim = http.Header(h); return nil },
	}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if interim == nil || interim.Get("Content-Security-Policy") != "" || resp.Header.Get("Content-Security-Policy") == "" || status != http.StatusOK {
		t.Errorf("103 %v, then %v, status %d", interim, resp.Header, status)
	}

	got = serve(func(w http.ResponseWriter, r *http.Request) {
		w.(*statusWriter).proxied = true
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		w.Write([]byte("from the application"))
	})
	if got.Get("Content-Security-Policy") != "" || got.Values("X-Frame-Options")[0] != "SAMEORIGIN" || len(got.Values("X-Frame-Options")) != 1 || got.Get("Strict-Transport-Security") == "" {
		t.Errorf("proxied: %v", got)
	}

	// A WebSocket upgrade: ReverseProxy writes the 101 itself, after taking
	// the connection, with the header the writer holds then.
	rec := httptest.NewRecorder()
	sc := newRequestScope(t.Context(), "req-1", rec)
	s.securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(*statusWriter).proxied = true
		http.NewResponseController(w).Hijack() // a recorder cannot be taken; the answer has begun all the same
	})).ServeHTTP(&sc.w, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Header().Get("Strict-Transport-Security") == "" || rec.Header().Get("Content-Security-Policy") != "" || sc.w.status != http.StatusSwitchingProtocols {
		t.Errorf("upgrade: %v, status %d", rec.Header(), sc.w.status)
	}
}
