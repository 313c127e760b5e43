package web_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/websocket"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/internal/upstreamjwt"
	"github.com/nself/nself/web"
)

// upstreamApp is the application behind the gateway in these tests: it
// records every request it receives (headers and body size) and echoes
// WebSocket frames.
type upstreamApp struct {
	srv *httptest.Server

	mu   sync.Mutex
	seen []seenRequest

	// uploadStarted is closed when /upload has read its first bytes,
	// downloadGo lets /download send the rest of its body.
	uploadStarted chan struct{}
	downloadGo    chan struct{}
}

type seenRequest struct {
	Method string
	Path   string
	Query  string
	Host   string
	Header http.Header
	Body   int64
}

// downloadSize is what /download sends: far more than any buffer.
const downloadSize = 64 << 20

func newUpstreamApp(t *testing.T) *upstreamApp {
	t.Helper()
	a := &upstreamApp{uploadStarted: make(chan struct{}), downloadGo: make(chan struct{})}
	ws := websocket.Handler(func(c *websocket.Conn) {
		for {
			var msg string
			if err := websocket.Message.Receive(c, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(c, msg); err != nil {
				return
			}
		}
	})
	var once sync.Once
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := seenRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone()}
		switch {
		case strings.HasSuffix(r.URL.Path, "/ws"):
			a.record(rec)
			ws.ServeHTTP(w, r)
			return
		case strings.HasSuffix(r.URL.Path, "/slow"):
			a.record(rec)
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
			return
		case strings.HasSuffix(r.URL.Path, "/upload"):
			buf := make([]byte, 64<<10)
			for {
				n, err := r.Body.Read(buf)
				if n > 0 {
					once.Do(func() { close(a.uploadStarted) })
				}
				rec.Body += int64(n)
				if err != nil {
					break
				}
			}
			a.record(rec)
			writeJSONBody(w, map[string]any{"bytes": rec.Body})
			return
		case strings.HasSuffix(r.URL.Path, "/download"):
			a.record(rec)
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(chunk)
			w.(http.Flusher).Flush()
			select {
			case <-a.downloadGo:
			case <-time.After(10 * time.Second):
				return // the client never saw the first megabyte: cut short
			}
			for sent := len(chunk); sent < downloadSize; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		rec.Body = n
		a.record(rec)
		w.Header().Set("Set-Cookie", "app_seen=1; Path=/")
		writeJSONBody(w, map[string]any{"path": r.URL.Path})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func writeJSONBody(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (a *upstreamApp) record(r seenRequest) {
	a.mu.Lock()
	a.seen = append(a.seen, r)
	a.mu.Unlock()
}

// requests returns what the application has received so far.
func (a *upstreamApp) requests() []seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seenRequest(nil), a.seen...)
}

// last is the last request the application received; the test fails if
// there was none.
func (a *upstreamApp) last(t *testing.T) seenRequest {
	t.Helper()
	seen := a.requests()
	if len(seen) == 0 {
		t.Fatal("the application received no request")
	}
	return seen[len(seen)-1]
}

func (a *upstreamApp) url(t *testing.T) *url.URL {
	u, err := url.Parse(a.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newGatewayEnv starts a server proxying /api/ to app, with opts changing
// its upstream settings.
func newGatewayEnv(t *testing.T, app *upstreamApp, opts ...func(*web.Upstream)) *testEnv {
	t.Helper()
	return newEnv(t, func(s *web.Server, db *postgres.DB) {
		s.Config.Upstream = web.Upstream{URL: app.url(t)}
		for _, o := range opts {
			o(&s.Config.Upstream)
		}
	})
}

// apiCall sends a request to the tenant's host with extra raw headers,
// written as given (case and duplicates kept), and returns the response
// with its body read.
func apiCall(t *testing.T, c *client, method, path string, body io.Reader, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, c.url(path), body)
	for k, vs := range header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	return c.do(req)
}

func mustAPIKey(t *testing.T, e *testEnv, tn *tenancy.Tenant) (*tenancy.APIKey, string) {
	t.Helper()
	k, secret, err := e.server.APIKeys.CreateAPIKey(e.ctx, tn.ID, "gateway test", "")
	if err != nil {
		t.Fatal(err)
	}
	return k, secret
}

// spoofed are context headers a client might send to pass as another
// tenant or role: every case, with underscores, and repeated.
var spoofed = http.Header{
	"X-Tenant-Id":           {"00000000-0000-4000-8000-000000000000"},
	"x-tenant-id":           {"11111111-1111-4111-8111-111111111111"},
	"X-TENANT-SLUG":         {"other"},
	"X-Tenant-Anything":     {"x"},
	"X-Hasura-Role":         {"admin", "owner"},
	"x-hasura-role":         {"owner"},
	"X_Hasura_Role":         {"owner"},
	"x_tenant_id":           {"00000000-0000-4000-8000-000000000000"},
	"X-Hasura-User-Id":      {"00000000-0000-4000-8000-000000000001"},
	"X-Hasura-Tenant-Id":    {"00000000-0000-4000-8000-000000000000"},
	"X-Hasura-Admin-Secret": {"guess"},
	"X-Hasura-Api-Key-Id":   {"forged"},
	"X-Forwarded-For":       {"203.0.113.9"},
	"X-Forwarded-Host":      {"evil.example"},
	"X-Forwarded-Port":      {"443"},
	"X-Forwarded-Ssl":       {"on"},
	"X-Real-Ip":             {"203.0.113.9"},
	"True-Client-Ip":        {"203.0.113.9"},
	"X-Original-Url":        {"/admin"},
	"Forwarded":             {"for=203.0.113.9;host=evil.example"},
}

// wantContext checks the context headers the application received: exactly
// the gateway's, one value each, and nothing the client sent.
func wantContext(t *testing.T, got http.Header, want map[string]string) {
	t.Helper()
	for k, vs := range got {
		if !tenancy.IsUpstreamContextHeader(k) {
			continue
		}
		w, ok := want[http.CanonicalHeaderKey(k)]
		if !ok || len(vs) != 1 || vs[0] != w || k != http.CanonicalHeaderKey(k) {
			t.Errorf("the application received %s: %q; want only the gateway's %q", k, vs, w)
		}
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	if xff := got.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q: want the gateway's view of the client only", xff)
	}
	if got.Get("X-Forwarded-Host") != "acme."+baseDomain || got.Get("X-Forwarded-Proto") != "http" || got.Get("Forwarded") != "" {
		t.Errorf("forwarding headers: %v", got)
	}
	// What the client said about where it came from under other names
	// does not reach the application either.
	for k := range got {
		if tenancy.IsForwardingHeader(k) && k != "X-Forwarded-For" && k != "X-Forwarded-Host" && k != "X-Forwarded-Proto" {
			t.Errorf("the application received the client's %s: %q", k, got.Values(k))
		}
	}
}

func TestGatewayHeadersPerCredential(t *testing.T) {
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app)
	acme := e.mustTenant("acme")
	key, secret := mustAPIKey(t, e, acme)

	// An API key: the key's tenant, the api_key role, no user; the key
	// itself does not reach the application.
	c := e.client("acme." + baseDomain)
	h := spoofed.Clone()
	h["Authorization"] = []string{"Bearer " + secret}
	resp, body := apiCall(t, c, http.MethodPost, "/api/users?limit=5", strings.NewReader(`{"name":"x"}`), h)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with an API key: %d %s", resp.StatusCode, body)
	}
	got := app.last(t)
	wantContext(t, got.Header, map[string]string{
		"X-Tenant-Id": acme.ID, "X-Tenant-Slug": "acme", "X-Hasura-Tenant-Id": acme.ID,
		"X-Hasura-Role": "api_key", "X-Hasura-Api-Key-Id": key.ID,
	})
	if got.Header.Get("Authorization") != "" || got.Method != http.MethodPost || got.Path != "/api/users" || got.Query != "limit=5" || got.Body != 12 {
		t.Errorf("the application received %+v", got)
	}
	if resp.Header.Get("Content-Security-Policy") != "" || resp.Header.Get("Set-Cookie") != "app_seen=1; Path=/" {
		t.Errorf("answer headers: %v", resp.Header)
	}

	// A signed-in member of each role: their user id and role; the
	// portal's cookies stay with the gateway, the application's own go on.
	for _, role := range []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin, tenancy.RoleMember, tenancy.RoleGuest} {
		email := string(role) + "@acme.example"
		u := e.mustMember(acme, email, role)
		c := e.client("acme." + baseDomain)
		c.signIn(email, passwordOf(email))
		h := spoofed.Clone()
		h["Cookie"] = []string{"app_pref=dark"}
		resp, body := apiCall(t, c, http.MethodGet, "/api/me", nil, h)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", role, resp.StatusCode, body)
		}
		got := app.last(t)
		wantContext(t, got.Header, map[string]string{
			"X-Tenant-Id": acme.ID, "X-Tenant-Slug": "acme", "X-Hasura-Tenant-Id": acme.ID,
			"X-Hasura-Role": string(role), "X-Hasura-User-Id": u.ID,
		})
		if cookies := got.Header.Values("Cookie"); len(cookies) != 1 || cookies[0] != "app_pref=dark" {
			t.Errorf("%s: the application received cookies %q", role, cookies)
		}
	}

	// A CORS preflight, which carries no credential, reaches the
	// application with the tenant only.
	resp, body = apiCall(t, e.client("acme."+baseDomain), http.MethodOptions, "/api/users", nil,
		http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}, "X-Hasura-Role": {"admin"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("preflight: %d %s", resp.StatusCode, body)
	}
	wantContext(t, app.last(t).Header, map[string]string{"X-Tenant-Id": acme.ID, "X-Tenant-Slug": "acme", "X-Hasura-Tenant-Id": acme.ID})
}

func TestGatewayRefusals(t *testing.T) {
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app)
	acme := e.mustTenant("acme")
	globex := e.mustTenant("globex")
	_, acmeKey := mustAPIKey(t, e, acme)
	_, globexKey := mustAPIKey(t, e, globex)
	e.mustMember(acme, "ann@acme.example", tenancy.RoleOwner)
	c := e.client("acme." + baseDomain)

	for _, tc := range []struct {
		name   string
		header http.Header
		status int
		msg    string
	}{
		{"no credential", spoofed, 401, "sign in, or send an API key: Authorization: Bearer <key>"},
		{"unknown key", http.Header{"Authorization": {"Bearer nsk_" + strings.Repeat("0", 32) + "_" + strings.Repeat("a", 43)}}, 401, "invalid or revoked API key"},
		{"not a bearer", http.Header{"Authorization": {"Basic YTpi"}}, 401, "send one Authorization: Bearer <API key> header, or sign in"},
		{"two keys", http.Header{"Authorization": {"Bearer " + acmeKey, "Bearer " + globexKey}}, 401, "send one Authorization"},
		{"another tenant's key", http.Header{"Authorization": {"Bearer " + globexKey}}, 403, "this API key belongs to another tenant"},
	} {
		resp, body := apiCall(t, c, http.MethodGet, "/api/users", nil, tc.header)
		var v map[string]string
		if resp.StatusCode != tc.status || json.Unmarshal([]byte(body), &v) != nil || !strings.HasPrefix(v["error"], tc.msg) ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s, want %d %q", tc.name, resp.StatusCode, body, tc.status, tc.msg)
		}
	}
	// A path leaving the prefix is refused.
	resp, _ := apiCall(t, c, http.MethodGet, "/api/../dashboard", nil, http.Header{"Authorization": {"Bearer " + acmeKey}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("dot segments: %d", resp.StatusCode)
	}

	// A signed-in member's cookie does not carry a request from another
	// site, nor open a WebSocket from one.
	c.signIn("ann@acme.example", passwordOf("ann@acme.example"))
	resp, body := apiCall(t, c, http.MethodPost, "/api/users", strings.NewReader("{}"), http.Header{"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://globex." + baseDomain}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "another site") {
		t.Errorf("cross-site POST with the cookie: %d %s", resp.StatusCode, body)
	}
	if _, err := dialWS(t, e.srv, "acme."+baseDomain, "http://globex."+baseDomain, c.cookieHeader()); err == nil {
		t.Error("a WebSocket from another site opened with the member's cookie")
	}

	// Another tenant's host does not take acme's session either.
	other := e.client("globex." + baseDomain)
	other.http.Jar = c.http.Jar
	resp, _ = apiCall(t, other, http.MethodGet, "/api/users", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("acme's session on globex's host: %d", resp.StatusCode)
	}

	// A suspended tenant's requests never reach the application.
	if _, err := e.server.Tenants.SetTenantStatus(e.ctx, "acme", tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		t, err := e.server.Resolver.Lookup(e.ctx, "acme")
		return err == nil && t.Status == tenancy.StatusSuspended
	})
	if resp, _ := apiCall(t, e.client("acme."+baseDomain), http.MethodGet, "/api/users", nil, http.Header{"Authorization": {"Bearer " + acmeKey}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("suspended, with a key: %d", resp.StatusCode)
	}
	resp, body = apiCall(t, c, http.MethodGet, "/api/users", nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"error":"This account is suspended.`) {
		t.Errorf("suspended, signed in: %d %s", resp.StatusCode, body)
	}
	if seen := app.requests(); len(seen) != 0 {
		t.Errorf("the application received %d refused requests: %+v", len(seen), seen)
	}
}

func TestGatewayAnonymousRole(t *testing.T) {
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app, func(u *web.Upstream) { u.AnonymousRole = "anonymous" })
	acme := e.mustTenant("acme")
	resp, body := apiCall(t, e.client("acme."+baseDomain), http.MethodGet, "/api/public", nil, spoofed)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	wantContext(t, app.last(t).Header, map[string]string{
		"X-Tenant-Id": acme.ID, "X-Tenant-Slug": "acme", "X-Hasura-Tenant-Id": acme.ID, "X-Hasura-Role": "anonymous",
	})
	// Other paths are the portal's, unknown hosts nobody's.
	if resp, _ := e.client("acme." + baseDomain).get("/apix"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/apix: %d", resp.StatusCode)
	}
	if resp, _ := e.client("nobody." + baseDomain).get("/api/public"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown tenant: %d", resp.StatusCode)
	}
	if len(app.requests()) != 1 {
		t.Errorf("the application received %d requests", len(app.requests()))
	}
}

// TestGatewayPathMapping: an upstream URL with a path replaces the matched
// prefix, as nginx's proxy_pass does.
func TestGatewayPathMapping(t *testing.T) {
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app, func(u *web.Upstream) {
		u.URL = u.URL.JoinPath("/v1/")
		u.Paths = []string{"/api/", "/graphql"}
		u.AnonymousRole = "anonymous"
	})
	e.mustTenant("acme")
	c := e.client("acme." + baseDomain)
	for path, want := range map[string]string{"/api/graphql": "/v1/graphql", "/graphql": "/v1/", "/api/a%2Fb": "/v1/a/b"} {
		if resp, body := apiCall(t, c, http.MethodGet, path, nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		if got := app.last(t).Path; got != want {
			t.Errorf("%s reached the application as %s, want %s", path, got, want)
		}
	}
}

func TestGatewayQuota(t *testing.T) {
	app := newUpstreamApp(t)
	var meter *postgres.Meter
	e := newEnv(t, func(s *web.Server, db *postgres.DB) {
		s.Config.Upstream = web.Upstream{URL: app.url(t)}
		meter = postgres.NewMeter(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		s.Meter = meter
	})
	limit := int64(3)
	if _, err := postgres.NewPlanService(e.db).CreatePlan(e.ctx, tenancy.PlanInput{Name: "tiny", MaxAPIRequests: &limit}); err != nil {
		t.Fatal(err)
	}
	acme := e.mustTenant("acme")
	if _, err := e.server.BillingStore.SetTenantPlan(e.ctx, acme.ID, "tiny"); err != nil {
		t.Fatal(err)
	}
	_, secret := mustAPIKey(t, e, acme)
	c := e.client("acme." + baseDomain)
	auth := http.Header{"Authorization": {"Bearer " + secret}}
	waitFor(t, func() bool {
		t, _ := e.server.Resolver.Lookup(e.ctx, "acme")
		return t.Plan == "tiny"
	})
	// The gateway and /v1 count against the same month.
	if resp, body := apiCall(t, c, http.MethodGet, "/v1/tenant", nil, auth); resp.StatusCode != 200 {
		t.Fatalf("/v1: %d %s", resp.StatusCode, body)
	}
	for i := range 2 {
		resp, body := apiCall(t, c, http.MethodGet, "/api/x", nil, auth)
		if resp.StatusCode != 200 || resp.Header.Get("X-Quota-Remaining") != fmt.Sprint(1-i) {
			t.Fatalf("request %d: %d %v %s", i, resp.StatusCode, resp.Header, body)
		}
	}
	resp, body := apiCall(t, c, http.MethodGet, "/api/x", nil, auth)
	var v map[string]any
	json.Unmarshal([]byte(body), &v)
	if resp.StatusCode != http.StatusTooManyRequests || v["error"] != "API quota exceeded" || v["limit"] != 3.0 || v["current"] != 3.0 ||
		resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if n := len(app.requests()); n != 2 {
		t.Errorf("the application received %d requests, want 2", n)
	}
}

func TestGatewayUnreachableAndSlow(t *testing.T) {
	app := newUpstreamApp(t)
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	ln.Close()
	e := newGatewayEnv(t, app, func(u *web.Upstream) { u.ResponseTimeout = 300 * time.Millisecond; u.AnonymousRole = "anonymous" })
	e.mustTenant("acme")
	c := e.client("acme." + baseDomain)
	start := time.Now()
	resp, body := apiCall(t, c, http.MethodGet, "/api/slow", nil, nil)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, `"error":"the application did not answer in time"`) || time.Since(start) > 2*time.Second {
		t.Errorf("slow application: %d %s after %s", resp.StatusCode, body, time.Since(start))
	}

	down := newGatewayEnv(t, app, func(u *web.Upstream) { u.URL = closed; u.AnonymousRole = "anonymous" })
	down.mustTenant("acme")
	resp, body = apiCall(t, down.client("acme."+baseDomain), http.MethodGet, "/api/x", nil, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"error":"the application could not be reached"`) {
		t.Errorf("unreachable application: %d %s", resp.StatusCode, body)
	}

	// A connection not made in time is an application not reached (502),
	// not one that did not answer (504), by either way to it.
	late := newGatewayEnv(t, app, func(u *web.Upstream) { u.ConnectTimeout = time.Nanosecond; u.AnonymousRole = "anonymous" })
	late.mustTenant("acme")
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		resp, body = apiCall(t, late.client("acme."+baseDomain), method, "/api/x", strings.NewReader("x"), nil)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"error":"the application could not be reached"`) {
			t.Errorf("%s, connecting timed out: %d %s", method, resp.StatusCode, body)
		}
	}
}

// UPSTREAM_PATHS may not take a page of the portal.
func TestGatewayPathsLeaveThePortal(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/signin", "/dashboard", "/password/", "/logo/", "/d", "/brand.css"} {
		if err := e.server.CheckUpstreamPaths([]string{"/api/", p}); err == nil || !strings.Contains(err.Error(), "takes the portal's") {
			t.Errorf("UPSTREAM_PATHS /api/,%s: %v", p, err)
		}
	}
	if err := e.server.CheckUpstreamPaths([]string{"/api/", "/graphql", "/app/"}); err != nil {
		t.Errorf("paths the portal does not use: %v", err)
	}
}

// TestGatewayStreams: bodies pass through as they come, both ways. The
// application answers the upload once it has the first bytes while the
// client holds back the rest until then, and the client confirms the first
// megabyte of the download before the application sends more: a gateway
// that read either body whole would stall.
//
// Both pause longer than the server's read and write timeouts, which are
// for pages: a proxied body has UPSTREAM_STREAM_TIMEOUT instead.
func TestGatewayStreams(t *testing.T) {
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app, func(u *web.Upstream) { u.StreamTimeout = time.Minute })
	acme := e.mustTenant("acme")
	_, secret := mustAPIKey(t, e, acme)
	c := e.clientVia(shortTimeouts(t, e), "acme."+baseDomain)

	pr, pw := io.Pipe()
	const uploadSize = 32 << 20
	go func() {
		chunk := bytes.Repeat([]byte("y"), 1<<20)
		pw.Write(chunk)
		select {
		case <-app.uploadStarted:
		case <-time.After(10 * time.Second):
			pw.CloseWithError(errors.New("the application did not see the first megabyte while the client held the rest"))
			return
		}
		time.Sleep(1500 * time.Millisecond)
		for sent := len(chunk); sent < uploadSize; sent += len(chunk) {
			pw.Write(chunk)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, c.url("/api/upload"), pr)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json") // what the portal's input checks would read whole
	resp, body := c.do(req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"bytes":%d`, uploadSize)) {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}

	req, _ = http.NewRequest(http.MethodGet, c.url("/api/download"), nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first megabyte did not arrive while the application held the rest: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	close(app.downloadGo)
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n+int64(len(first)) != downloadSize {
		t.Errorf("download: %d bytes, %v", n+int64(len(first)), err)
	}
}

// shortTimeouts serves e's handler with the read and write timeouts
// `nself serve` sets, shortened to a second.
func shortTimeouts(t *testing.T, e *testEnv) *httptest.Server {
	srv := httptest.NewUnstartedServer(e.server.Handler())
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = time.Second, time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// clientVia is a client for host that sends its requests to srv.
func (e *testEnv) clientVia(srv *httptest.Server, host string) *client {
	c := e.client(host)
	addr := srv.Listener.Addr().String()
	c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return c
}

// dialWS opens a WebSocket to path /api/ws on host through srv.
func dialWS(t *testing.T, srv *httptest.Server, host, origin string, header http.Header) (*websocket.Conn, error) {
	t.Helper()
	cfg, err := websocket.NewConfig("ws://"+host+"/api/ws", origin)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header = header
	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	t.Cleanup(func() { ws.Close() })
	return ws, nil
}

// cookieHeader is the Cookie header the client's browser would send.
func (c *client) cookieHeader() http.Header {
	u, _ := url.Parse(c.url("/"))
	var parts []string
	for _, ck := range c.http.Jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return http.Header{"Cookie": {strings.Join(parts, "; ")}}
}

func echo(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	ws.SetDeadline(time.Now().Add(5 * time.Second))
	if err := websocket.Message.Send(ws, msg); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

// TestGatewayWebSocket: a WebSocket (a GraphQL subscription) passes under
// the same rules, with the caller's context on its handshake, and outlives
// the server's read and write timeouts, which are for pages.
func TestGatewayWebSocket(t *testing.T) {
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app)
	acme := e.mustTenant("acme")
	_, secret := mustAPIKey(t, e, acme)
	u := e.mustMember(acme, "ann@acme.example", tenancy.RoleMember)
	c := e.client("acme." + baseDomain)
	c.signIn("ann@acme.example", passwordOf("ann@acme.example"))

	srv := shortTimeouts(t, e)

	h := c.cookieHeader()
	for k, v := range spoofed {
		h[k] = v
	}
	ws, err := dialWS(t, srv, "acme."+baseDomain, "http://acme."+baseDomain, h)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, ws, "hello")
	time.Sleep(1500 * time.Millisecond)
	echo(t, ws, strings.Repeat("subscription data ", 1000))
	wantContext(t, app.last(t).Header, map[string]string{
		"X-Tenant-Id": acme.ID, "X-Tenant-Slug": "acme", "X-Hasura-Tenant-Id": acme.ID,
		"X-Hasura-Role": "member", "X-Hasura-User-Id": u.ID,
	})

	// No credential, no WebSocket; an API key opens one.
	if _, err := dialWS(t, srv, "acme."+baseDomain, "http://acme."+baseDomain, nil); err == nil {
		t.Error("a WebSocket opened without a credential")
	}
	ws, err = dialWS(t, srv, "acme."+baseDomain, "http://client.example", http.Header{"Authorization": {"Bearer " + secret}})
	if err != nil {
		t.Fatal(err)
	}
	echo(t, ws, "with a key")
}

// hasuraVerify checks a token as Hasura does with HASURA_GRAPHQL_JWT_SECRET
// set to secretJSON: the algorithm and key it names, the issuer, the
// expiry; it returns Hasura's claims.
func hasuraVerify(t *testing.T, secretJSON, token string) map[string]any {
	t.Helper()
	var cfg struct{ Type, Key, Issuer string }
	if err := json.Unmarshal([]byte(secretJSON), &cfg); err != nil {
		t.Fatalf("HASURA_GRAPHQL_JWT_SECRET %s: %v", secretJSON, err)
	}
	var key any
	var err error
	alg := cfg.Type
	switch cfg.Type {
	case "HS256":
		key = []byte(cfg.Key)
	case "RS256":
		key, err = jwt.ParseRSAPublicKeyFromPEM([]byte(cfg.Key))
	case "Ed25519":
		alg = "EdDSA"
		key, err = jwt.ParseEdPublicKeyFromPEM([]byte(cfg.Key))
	default:
		t.Fatalf("type %q", cfg.Type)
	}
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(cfg.Issuer), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("Hasura would refuse the token: %v", err)
	}
	if exp, _ := claims.GetExpirationTime(); exp == nil || time.Until(exp.Time) > 6*time.Minute {
		t.Errorf("the token is not short-lived: expires %v", exp)
	}
	h, ok := claims[tenancy.HasuraClaimsNamespace].(map[string]any)
	if !ok {
		t.Fatalf("no Hasura claims: %v", claims)
	}
	return h
}

func writeKey(t *testing.T, block *pem.Block) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGatewayJWT(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	signers := map[string]func() (*upstreamjwt.Signer, error){
		"HS256": func() (*upstreamjwt.Signer, error) {
			return upstreamjwt.NewHS256([]byte("a-shared-secret-of-32-characters-at-least"), 0)
		},
		"RS256": func() (*upstreamjwt.Signer, error) {
			return upstreamjwt.LoadKeyFile(writeKey(t, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), 0)
		},
		"EdDSA": func() (*upstreamjwt.Signer, error) {
			return upstreamjwt.LoadKeyFile(writeKey(t, &pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), 0)
		},
	}
	for alg, mk := range signers {
		t.Run(alg, func(t *testing.T) {
			signer, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			secretJSON, err := signer.HasuraJWTSecret()
			if err != nil {
				t.Fatal(err)
			}
			app := newUpstreamApp(t)
			e := newGatewayEnv(t, app, func(u *web.Upstream) { u.Signer = signer })
			acme := e.mustTenant("acme")
			key, secret := mustAPIKey(t, e, acme)
			u := e.mustMember(acme, "ann@acme.example", tenancy.RoleAdmin)
			c := e.client("acme." + baseDomain)

			bearer := func() map[string]any {
				t.Helper()
				got := app.last(t).Header
				wantContext(t, got, map[string]string{})
				token, ok := strings.CutPrefix(got.Get("Authorization"), "Bearer ")
				if !ok || len(got.Values("Authorization")) != 1 {
					t.Fatalf("Authorization %q", got.Values("Authorization"))
				}
				return hasuraVerify(t, secretJSON, token)
			}
			h := spoofed.Clone()
			h["Authorization"] = []string{"Bearer " + secret}
			if resp, body := apiCall(t, c, http.MethodGet, "/api/x", nil, h); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			claims := bearer()
			if claims["x-hasura-default-role"] != "api_key" || claims["x-hasura-tenant-id"] != acme.ID || claims["x-hasura-api-key-id"] != key.ID ||
				claims["x-hasura-user-id"] != nil || fmt.Sprint(claims["x-hasura-allowed-roles"]) != "[api_key]" {
				t.Errorf("API key claims: %v", claims)
			}

			c.signIn("ann@acme.example", passwordOf("ann@acme.example"))
			if resp, body := apiCall(t, c, http.MethodGet, "/api/x", nil, spoofed); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			claims = bearer()
			if claims["x-hasura-default-role"] != "admin" || claims["x-hasura-tenant-id"] != acme.ID || claims["x-hasura-user-id"] != u.ID ||
				claims["x-hasura-tenant-slug"] != "acme" || fmt.Sprint(claims["x-hasura-allowed-roles"]) != "[admin]" {
				t.Errorf("member claims: %v", claims)
			}
		})
	}
}

// TestGatewayAnswers: what the application answers reaches the client as
// the application meant it, on reads (the direct path) and writes alike:
// interim 103 hints, trailers, events one by one, its headers without the
// ones that describe its connection to the gateway; and an answer the
// application breaks off reaches the client broken, never as if whole.
func TestGatewayAnswers(t *testing.T) {
	next := make(chan struct{}, 1)
	app := &upstreamApp{srv: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/api/hints":
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "ok")
		case "/api/trailers":
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
		case "/api/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(10 * time.Second):
			}
			io.WriteString(w, "data: 2\n\n")
		case "/api/hop":
			w.Header().Set("Connection", "X-Internal")
			w.Header().Set("X-Internal", "secret")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("X-App", "1")
			io.WriteString(w, "ok")
		case "/api/cut":
			conn, bw, _ := http.NewResponseController(w).Hijack()
			bw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
			bw.Flush()
			conn.Close()
		}
	}))}
	t.Cleanup(app.srv.Close)
	e := newGatewayEnv(t, app)
	acme := e.mustTenant("acme")
	_, secret := mustAPIKey(t, e, acme)
	c := e.client("acme." + baseDomain)
	send := func(method, path string) *http.Request {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("{}")
		}
		req, _ := http.NewRequest(method, c.url(path), body)
		req.Header.Set("Authorization", "Bearer "+secret)
		return req
	}

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var hints []string
		req := send(method, "/api/hints")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, fmt.Sprint(code, " ", h.Get("Link")))
				return nil
			},
		}))
		resp, body := c.do(req)
		if resp.StatusCode != 200 || body != "ok" || len(hints) != 1 || hints[0] != "103 </app.css>; rel=preload" || resp.Header.Get("Link") != "" {
			t.Errorf("%s hints: %d %q, interim %q, final Link %q", method, resp.StatusCode, body, hints, resp.Header.Get("Link"))
		}

		resp, body = c.do(send(method, "/api/trailers"))
		if body != "body" || resp.Trailer.Get("X-Checksum") != "abc" {
			t.Errorf("%s trailers: %q, %v", method, body, resp.Trailer)
		}

		resp, body = c.do(send(method, "/api/hop"))
		if resp.Header.Get("X-App") != "1" || resp.Header.Get("X-Internal") != "" || resp.Header.Get("Keep-Alive") != "" {
			t.Errorf("%s answer headers: %v", method, resp.Header)
		}

		start := time.Now()
		resp, err := c.http.Do(send(method, "/api/events"))
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, len("data: 1\n\n"))
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: 1\n\n" || time.Since(start) > 5*time.Second {
			t.Errorf("%s events: the first event did not arrive while the application held the second: %q %v after %s", method, first, err, time.Since(start))
		}
		next <- struct{}{}
		rest, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(rest) != "data: 2\n\n" {
			t.Errorf("%s events: then %q, %v", method, rest, err)
		}

		resp, err = c.http.Do(send(method, "/api/cut"))
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				t.Errorf("%s: an answer the application broke off reached the client whole: %d %q", method, resp.StatusCode, b)
			}
		}
	}

	resp, body := c.do(send(http.MethodHead, "/api/hop"))
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("X-App") != "1" {
		t.Errorf("HEAD: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// wsClosed reports whether the gateway closed ws within wait: a read then
// ends with an error other than a timeout.
func wsClosed(ws *websocket.Conn, wait time.Duration) bool {
	ws.SetReadDeadline(time.Now().Add(wait))
	var got string
	err := websocket.Message.Receive(ws, &got)
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// An open WebSocket ends once its caller may no longer call: a key
// revoked, a member's role changed, the tenant suspended. A read-only key
// opens none: what it would send on it could change data. An untouched
// socket stays open.
func TestGatewayWebSocketEndsWithItsCaller(t *testing.T) {
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app, func(u *web.Upstream) { u.Recheck = 50 * time.Millisecond })
	acme := e.mustTenant("acme")
	globex := e.mustTenant("globex")
	host := "acme." + baseDomain
	key, secret := mustAPIKey(t, e, acme)
	_, kept := mustAPIKey(t, e, acme)
	_, globexKey := mustAPIKey(t, e, globex)
	u := e.mustMember(acme, "ann@acme.example", tenancy.RoleMember)
	c := e.client(host)
	c.signIn("ann@acme.example", passwordOf("ann@acme.example"))
	srv := e.srv
	open := func(what, host string, h http.Header) *websocket.Conn {
		t.Helper()
		ws, err := dialWS(t, srv, host, "http://"+host, h)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		echo(t, ws, what)
		return ws
	}
	byKey := open("a key", host, http.Header{"Authorization": {"Bearer " + secret}})
	byKeptKey := open("another key", host, http.Header{"Authorization": {"bearer " + kept}})
	byMember := open("a member", host, c.cookieHeader())
	byGlobex := open("another tenant's key", "globex."+baseDomain, http.Header{"Authorization": {"Bearer " + globexKey}})

	if _, err := e.server.APIKeys.RevokeAPIKey(e.ctx, acme.ID, key.Prefix); err != nil {
		t.Fatal(err)
	}
	if !wsClosed(byKey, 5*time.Second) {
		t.Error("a WebSocket stayed open after its key was revoked")
	}
	if _, _, err := e.server.Members.UpdateMember(e.ctx, acme.ID, u.ID, tenancy.RoleGuest, tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	if !wsClosed(byMember, 5*time.Second) {
		t.Error("a WebSocket stayed open after its member's role changed")
	}
	if _, err := e.server.Tenants.SetTenantStatus(e.ctx, globex.ID, tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if !wsClosed(byGlobex, 5*time.Second) {
		t.Error("a WebSocket stayed open after its tenant was suspended")
	}
	echo(t, byKeptKey, "still here")

	_, readOnly, err := e.server.APIKeys.CreateScopedAPIKey(e.ctx, acme.ID, "reader", "", tenancy.APIKeyScope{ReadOnly: true, Gateway: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialWS(t, srv, host, "http://"+host, http.Header{"Authorization": {"Bearer " + readOnly}}); err == nil {
		t.Error("a read-only key opened a WebSocket")
	}
}
