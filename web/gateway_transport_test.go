package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/tenancy"
)

// newDirect is the gateway's direct transport.
func newDirect(responseTimeout time.Duration) *directTransport {
	dial := (&net.Dialer{Timeout: time.Second}).DialContext
	return &directTransport{dial: dial, responseTimeout: responseTimeout, idleTimeout: time.Minute, maxIdle: 8}
}

// roundTrip sends req, written by net/http, on the direct transport.
func (t *directTransport) roundTrip(req *http.Request) (*http.Response, error) {
	return t.do(req, req.URL.Host, func(bw *bufio.Writer) { req.Write(bw) }, nil)
}

func get(t *testing.T, d *directTransport, ctx context.Context, method, url string, body io.Reader) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := d.roundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// One kept-alive connection serves one request after another, and a body
// left unread closes its connection rather than leave the next answer
// behind the rest of it.
func TestDirectTransportKeepsConnections(t *testing.T) {
	var conns atomic.Int32
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write([]byte(strings.Repeat("x", 64<<10)))
			return
		}
		w.Header().Set("X-Seen-Method", r.Method)
		io.WriteString(w, "ok "+r.URL.RequestURI())
	}))
	app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	app.Start()
	defer app.Close()
	rt := newDirect(time.Second)
	for i := range 20 {
		resp, body, err := get(t, rt, context.Background(), http.MethodGet, app.URL+"/a?i=1", nil)
		if err != nil || resp.StatusCode != 200 || body != "ok /a?i=1" {
			t.Fatalf("request %d: %v %v %q", i, resp, err, body)
		}
	}
	resp, body, err := get(t, rt, context.Background(), http.MethodHead, app.URL+"/", nil)
	if err != nil || resp.Header.Get("X-Seen-Method") != "HEAD" || body != "" {
		t.Fatalf("HEAD: %v %v %q", resp, err, body)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 21 requests one after another, want 1", n)
	}

	req, _ := http.NewRequest(http.MethodGet, app.URL+"/big", nil)
	resp, err = rt.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, body, err := get(t, rt, context.Background(), http.MethodGet, app.URL+"/after", nil); err != nil || body != "ok /after" {
		t.Errorf("after a body left unread: %v %q", err, body)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the one whose body was left unread is not reused", n)
	}
}

// An application that closes a kept-alive connection between two requests
// (its idle timeout, a restart) costs the next request nothing: it goes
// again on a new connection.
func TestDirectTransportRetriesClosedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// One request per connection, answered as if the connection
				// stayed open, then closed.
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(20 * time.Millisecond)
			}()
		}
	}()
	rt := newDirect(time.Second)
	for i := range 5 {
		if _, body, err := get(t, rt, context.Background(), http.MethodGet, "http://"+ln.Addr().String()+"/", nil); err != nil || body != "ok" {
			t.Fatalf("request %d: %v %q", i, err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An application that does not answer in time is a timeout (504), and a
// client that goes away ends the wait at once.
func TestDirectTransportTimeouts(t *testing.T) {
	url := faulttest.NewBlackhole(t).URL() + "/" // accepts, never answers

	start := time.Now()
	_, _, err := get(t, newDirect(200*time.Millisecond), context.Background(), http.MethodGet, url, nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) > 2*time.Second {
		t.Errorf("silent application: %v after %s, want a timeout after 200ms", err, time.Since(start))
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, _, err = get(t, newDirect(time.Minute), ctx, http.MethodGet, url, nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Errorf("client gone: %v after %s, want context.Canceled at once", err, time.Since(start))
	}
}

// A client that goes away while the application holds back the rest of
// a body ends the read at once, and the connection is not reused.
func TestDirectTransportClientGoneMidBody(t *testing.T) {
	release := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "12345")
		w.(http.Flusher).Flush()
		<-release
	}))
	defer app.Close()
	defer close(release) // before Close, which waits for the handler
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, app.URL+"/", nil)
	d := newDirect(time.Second)
	resp, err := d.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(b) != "12345" || time.Since(start) > 2*time.Second {
		t.Errorf("read %q, %v after %s; want the first half, an error, at once", b, err, time.Since(start))
	}
	if c, _ := d.get(strings.TrimPrefix(app.URL, "http://")); c != nil {
		t.Error("the connection of a broken-off body went back to the pool")
	}
}

// What the direct path does not take (a body, an upgrade, an application
// over HTTPS) goes through ReverseProxy and http.Transport; the plain
// reads, whatever their connection headers, take it.
func TestDirectRequest(t *testing.T) {
	plain, _ := url.Parse("http://127.0.0.1:1/")
	tls, _ := url.Parse("https://127.0.0.1:1/")
	req := func(method string, body io.Reader, header ...string) *http.Request {
		r := httptest.NewRequest(method, "http://acme.localhost/api/x", body)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	for _, c := range []struct {
		name     string
		r        *http.Request
		upstream *url.URL
		want     bool
	}{
		{"GET", req(http.MethodGet, nil), plain, true},
		{"HEAD", req(http.MethodHead, nil), plain, true},
		{"GET, Connection: keep-alive", req(http.MethodGet, nil, "Connection", "keep-alive"), plain, true},
		{"GET, Connection: close", req(http.MethodGet, nil, "Connection", "close"), plain, true},
		{"POST", req(http.MethodPost, strings.NewReader("x")), plain, false},
		{"DELETE", req(http.MethodDelete, nil), plain, false},
		{"GET with a body", req(http.MethodGet, strings.NewReader("x")), plain, false},
		{"WebSocket", req(http.MethodGet, nil, "Connection", "Upgrade", "Upgrade", "websocket"), plain, false},
		{"HTTPS application", req(http.MethodGet, nil), tls, false},
	} {
		if got := directRequest(c.r, c.upstream); got != c.want {
			t.Errorf("%s: direct %v, want %v", c.name, got, c.want)
		}
	}
}

// The direct path's request is the one ReverseProxy makes with the
// gateway's rewrite: the same request line, host and headers reach the
// application, whatever the client sent.
func TestDirectHeadMatchesReverseProxy(t *testing.T) {
	tn := &tenancy.Tenant{ID: "6f1c6bd6-8f1d-4e4c-9d44-5a7d1b8f5c11", Slug: "acme"}
	member := tenancy.UpstreamCaller{TenantID: tn.ID, TenantSlug: tn.Slug, UserID: "0b6a0c1e-6a43-4b8e-9a52-5c4f0f1d2e3a", Role: "admin"}
	type req struct {
		method, target string
		header         http.Header
	}
	requests := []req{
		{"GET", "/api/users?limit=5", spoofedHeaders()},
		{"HEAD", "/api/users", http.Header{"User-Agent": {"curl/8.0"}, "Accept": {"*/*"}}},
		{"GET", "/api/x", http.Header{"User-Agent": {""}, "Accept-Encoding": {"gzip, br"}}},
		{"GET", "/api/x", http.Header{"Cookie": {"nself_session=abc; app_pref=dark", "nself_session_csrf=x"}}},
		{"GET", "/api/x", http.Header{"Cookie": {"nself_session=abc"}}},
		{"GET", "/api/x", http.Header{"Connection": {"keep-alive, X-Custom"}, "X-Custom": {"hop"}, "X-Kept": {"1"}, "Keep-Alive": {"timeout=5"}}},
		{"GET", "/api/x", http.Header{"Connection": {"close"}, "Proxy-Authorization": {"Basic eA=="}, "Proxy-Connection": {"keep-alive"}, "Trailer": {"X-T"}}},
		{"GET", "/api/x", http.Header{"Te": {"gzip, trailers"}}},
		{"GET", "/api/x", http.Header{"Te": {"gzip"}}},
		{"GET", "/api/a%2Fb/c%20d?q=1;r=2", nil},
		{"GET", "/api/x?a=%zz&b=2", nil},
		{"GET", "/api/x?", nil},
		{"GET", "/api/", http.Header{"X-Multi": {"a", "b"}, "Accept": {"text/html", "application/json"}}},
	}
	for _, upstream := range []string{"http://127.0.0.1:9/", "http://app.internal:8080", "http://127.0.0.1:9/base/"} {
		for _, token := range []string{"", "eyJhbGciOiJIUzI1NiJ9.e30.sig"} {
			u, _ := url.Parse(upstream)
			g := &gateway{cfg: Upstream{URL: u, Paths: []string{"/api/", "/api/v2/"}}}
			for _, rq := range requests {
				name := fmt.Sprintf("%s %s %s via %s (token %v)", rq.method, rq.target, rq.header, upstream, token != "")
				in := httptest.NewRequest(rq.method, "http://acme.localhost:8080"+rq.target, nil)
				for k, vs := range rq.header {
					in.Header[k] = vs
				}

				var viaProxy *http.Request
				proxy := &httputil.ReverseProxy{
					Rewrite: func(pr *httputil.ProxyRequest) { g.rewrite(pr, member, token) },
					Transport: roundTripFunc(func(out *http.Request) (*http.Response, error) {
						var buf bytes.Buffer
						if err := out.Write(&buf); err != nil {
							return nil, err
						}
						var err error
						viaProxy, err = http.ReadRequest(bufio.NewReader(&buf))
						return &http.Response{StatusCode: 204, Body: http.NoBody, Request: out}, err
					}),
					ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { t.Errorf("%s: %v", name, err) },
				}
				proxy.ServeHTTP(httptest.NewRecorder(), in)

				var buf bytes.Buffer
				bw := bufio.NewWriter(&buf)
				g.writeHead(bw, in, member, token)
				bw.Flush()
				direct, err := http.ReadRequest(bufio.NewReader(&buf))
				if err != nil || viaProxy == nil {
					t.Fatalf("%s: %v (%q)", name, err, buf.String())
				}
				if direct.Method != viaProxy.Method || direct.RequestURI != viaProxy.RequestURI || direct.Host != viaProxy.Host {
					t.Errorf("%s: direct %s %s (Host %s), ReverseProxy %s %s (Host %s)", name,
						direct.Method, direct.RequestURI, direct.Host, viaProxy.Method, viaProxy.RequestURI, viaProxy.Host)
				}
				if !reflect.DeepEqual(direct.Header, viaProxy.Header) {
					t.Errorf("%s:\n direct       %v\n ReverseProxy %v", name, direct.Header, viaProxy.Header)
				}
			}
		}
	}
}

// spoofedHeaders is spoofed with an API key, as a client sends them.
func spoofedHeaders() http.Header {
	h := http.Header{"Authorization": {"Bearer nsk_x_y"}, "User-Agent": {"client/1"}}
	for k, vs := range map[string][]string{
		"X-Tenant-Id": {"00000000-0000-4000-8000-000000000000"}, "x-tenant-id": {"1"}, "X_Hasura_Role": {"owner"},
		"X-Hasura-Role": {"admin", "owner"}, "X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Host": {"evil.example"},
		"X-Forwarded-Proto": {"https"}, "Forwarded": {"for=203.0.113.9"},
	} {
		h[k] = vs
	}
	return h
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
