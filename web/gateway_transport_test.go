package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newDirect is the gateway's transport to addr, with http.Transport for
// what it does not take itself.
func newDirect(responseTimeout time.Duration) *directTransport {
	dial := (&net.Dialer{Timeout: time.Second}).DialContext
	return &directTransport{fallback: &http.Transport{DialContext: dial}, dial: dial,
		responseTimeout: responseTimeout, idleTimeout: time.Minute, maxIdle: 8}
}

func get(t *testing.T, rt http.RoundTripper, ctx context.Context, method, url string, body io.Reader) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
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
	resp, err = rt.RoundTrip(req)
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
			defer c.Close() // accepted, never answered
		}
	}()
	url := "http://" + ln.Addr().String() + "/"

	start := time.Now()
	_, _, err = get(t, newDirect(200*time.Millisecond), context.Background(), http.MethodGet, url, nil)
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
	resp, err := d.RoundTrip(req)
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

// What the direct path does not take (a body, an upgrade, HTTPS) goes to
// http.Transport.
func TestDirectTransportFallsBack(t *testing.T) {
	var fell atomic.Int32
	d := newDirect(time.Second)
	d.fallback = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fell.Add(1)
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	})
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1/", strings.NewReader("x")),
		httptest.NewRequest(http.MethodGet, "https://127.0.0.1:1/", nil),
		func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			return r
		}(),
	} {
		r.RequestURI = ""
		if _, err := d.RoundTrip(r); err != nil {
			t.Errorf("%s %s: %v", r.Method, r.URL, err)
		}
	}
	if fell.Load() != 3 {
		t.Errorf("%d of 3 requests went to http.Transport", fell.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
