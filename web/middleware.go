package web

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/nself/nself/internal/tenancy"
)

// logRequests writes one line per request, with its id and tenant. It
// also gives the request its context: the request id (X-Request-Id when
// the client sent one, as chi's RequestID middleware does), the state later
// middleware fills in, and the deadline of its database calls
// (Config.QueryTimeout, so that a frozen database costs a request seconds,
// not as long as the client waits), in one copy of the request instead of
// one per value.
func (s *Server) logRequests(next http.Handler) http.Handler {
	prefix := requestIDPrefix()
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(middleware.RequestIDHeader)
		if id == "" {
			id = prefix + strconv.FormatUint(seq.Add(1), 10)
		}
		ctx := r.Context()
		if s.Config.QueryTimeout > 0 {
			ctx = tenancy.WithQueryTimeout(ctx, s.Config.QueryTimeout)
		}
		// The tenant is known only after routing; the state is filled later.
		sc := newRequestScope(ctx, id, w)
		ww, holder := &sc.w, &sc.note
		next.ServeHTTP(ww, r.WithContext(sc))
		end := time.Now()
		attrs := make([]slog.Attr, 0, 11)
		attrs = append(attrs,
			slog.String("method", r.Method), slog.String("host", r.Host), slog.String("path", r.URL.Path),
			slog.Int("status", ww.status), slog.Int("bytes", ww.bytes),
			slog.Duration("duration", end.Sub(start)),
			slog.String("request_id", id))
		if holder.tenant != "" {
			attrs = append(attrs, slog.String("tenant", holder.tenant))
		}
		if holder.err != nil {
			attrs = append(attrs, slog.String("err", holder.err.Error()))
		}
		level := slog.LevelInfo
		if ww.status >= 500 {
			level = slog.LevelError
		}
		// The handler directly, as Logger.LogAttrs would call it but
		// without walking the stack for a source line this log never
		// shows: one line per request is the server's most frequent.
		if h := s.Log.Handler(); h.Enabled(ctx, level) {
			rec := slog.NewRecord(end, level, "request", 0)
			rec.AddAttrs(attrs...)
			_ = h.Handle(ctx, rec)
		}
	})
}

// statusWriter records the status and the size of an answer for the log
// line, and gives the answer the security headers when it starts.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
	// security are the headers every answer carries (securityHeaders),
	// each unless the handler set its own; a proxied answer carries the
	// application's page policies instead of the portal's.
	security map[string][]string
	proxied  bool
}

// begin starts the answer, once, with code as its status (the first one
// that counts): the security headers are set as its header goes out.
func (w *statusWriter) begin(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	h := w.ResponseWriter.Header()
	for k, v := range w.security {
		if w.proxied && pageOnlyHeader(k) {
			continue
		}
		if _, ok := h[k]; !ok {
			h[k] = v
		}
	}
}

func (w *statusWriter) WriteHeader(code int) {
	// Interim answers (103) come before the one that counts.
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.begin(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.begin(http.StatusOK)
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// ReadFrom lets the server's own copy (sendfile) serve io.Copy.
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	w.begin(http.StatusOK)
	n, err := io.Copy(w.ResponseWriter, src)
	w.bytes += int(n)
	return n, err
}

func (w *statusWriter) Flush() {
	w.begin(http.StatusOK)
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack starts the answer as a switch of protocols: ReverseProxy writes
// the 101 of a WebSocket upgrade itself, with the header it holds then.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.begin(http.StatusSwitchingProtocols)
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestIDPrefix starts this process's request ids: the host name and a
// random part, so ids from several processes do not collide.
func requestIDPrefix() string {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	if host == "" {
		host = "localhost"
	}
	return host + "/" + rand.Text()[:10] + "-"
}

// recoverPanics turns a panic in a handler into a 500 and a log line with
// the stack, instead of a dropped connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Error(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows the page's own scripts, styles and images
// only: no inline script, no framing, forms posting to this host only.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// billingPagePolicy is the policy of the billing page, whose Checkout and
// Manage forms are answered with a redirect to Stripe: browsers hold a
// form's redirects to its page's form-action too, so Stripe's two hosts are
// allowed there, on that page alone.
var billingPagePolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self' https://" + strings.Join(stripeFormHosts, " https://") + "; frame-ancestors 'none'"

// stripeFormHosts are the hosts billingPagePolicy lets the billing page's
// forms be redirected to: Checkout's and the Billing Portal's.
var stripeFormHosts = []string{"checkout.stripe.com", "billing.stripe.com"}

// securityHeaders sets the headers every response carries. The values are
// built once and shared: net/http never changes a header's slice.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	fixed := map[string][]string{
		"Content-Security-Policy":    {contentSecurityPolicy},
		"X-Content-Type-Options":     {"nosniff"},
		"X-Frame-Options":            {"DENY"},
		"Referrer-Policy":            {"strict-origin-when-cross-origin"},
		"Permissions-Policy":         {"camera=(), microphone=(), geolocation=()"},
		"Cross-Origin-Opener-Policy": {"same-origin"},
	}
	if s.Config.Secure {
		fixed["Strict-Transport-Security"] = []string{"max-age=31536000; includeSubDomains"}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Set when the answer starts, where a handler has not set its own:
		// no header map work for what a proxied answer drops. The request
		// log's writer does it; a writer of another kind gets one.
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
			w = sw
		}
		sw.security = fixed
		next.ServeHTTP(w, r)
	})
}

// limitBody bounds every request body. A request without one (most GETs)
// has nothing to bound.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && !s.gatewayPath(r.URL.Path) {
			r.Body = http.MaxBytesReader(w, r.Body, s.bodyLimit(r))
		}
		next.ServeHTTP(w, r)
	})
}

// hostOf returns the request's host, lowercased, without port or trailing dot.
func hostOf(r *http.Request) string {
	host := r.Host
	// Only a host with a port is split: SplitHostPort's error for one
	// without is an allocation on every request.
	if strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']') {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// forwardedClient makes a request that came through a trusted proxy look as
// if it came from its client: the last address of X-Forwarded-For that is
// not itself a trusted proxy. Every address before that one is the client's
// own claim, and so is the whole header on a request from anywhere else.
// Without this, behind a load balancer every client would share one
// address, and the per-address sign-in limits would lock out everyone.
func (s *Server) forwardedClient(next http.Handler) http.Handler {
	if len(s.Config.TrustedProxies) == 0 {
		return next
	}
	trusted := func(a netip.Addr) bool {
		for _, p := range s.Config.TrustedProxies {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !trusted(peer.Addr()) {
			next.ServeHTTP(w, r)
			return
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a garbled hop: trust nothing before it
			}
			if !trusted(a) {
				r2 := new(http.Request)
				*r2 = *r // a shallow copy, as WithContext makes
				r2.RemoteAddr = netip.AddrPortFrom(a.Unmap(), 0).String()
				next.ServeHTTP(w, r2)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// clientIP is the address the request came from. Forwarding headers are
// read only from trusted proxies (forwardedClient); otherwise they are the
// client's own claims.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func isSafeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}
