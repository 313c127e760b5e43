package web

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
)

// Upstream is the application behind the gateway (UPSTREAM_URL): requests
// on a tenant's host whose path starts with one of Paths are proxied to it,
// with the tenant and the caller's identity verified here and told to it.
type Upstream struct {
	// URL is where requests go. Without a path, a request's path goes
	// unchanged; with one (even "/"), it replaces the matched prefix, as
	// nginx's proxy_pass does.
	URL *url.URL
	// Paths are the path prefixes proxied (UPSTREAM_PATHS), /api/ by
	// default.
	Paths []string
	// Signer signs a JWT for each caller (UPSTREAM_AUTH=jwt); nil sends
	// the caller in X-Tenant-* and X-Hasura-* headers instead.
	Signer UpstreamSigner
	// AnonymousRole lets requests without a credential through with the
	// tenant and this role only; empty answers them 401.
	AnonymousRole string
	// ConnectTimeout bounds connecting to the application, ResponseTimeout
	// its answer's first byte (then 504), and StreamTimeout a whole
	// proxied request with its bodies (0: unbounded). WebSockets are not
	// bounded.
	ConnectTimeout  time.Duration
	ResponseTimeout time.Duration
	StreamTimeout   time.Duration
	// Recheck is how often an open WebSocket's caller is checked again
	// (from memory: the caches follow revocations); one second when 0.
	Recheck time.Duration
}

// UpstreamSigner signs the token that tells the application who calls.
type UpstreamSigner interface {
	Sign(tenancy.UpstreamCaller) (string, error)
}

// DefaultUpstreamPaths are proxied when UPSTREAM_PATHS is not set.
var DefaultUpstreamPaths = []string{"/api/"}

// gateway proxies a tenant's application paths to the upstream.
type gateway struct {
	s   *Server
	cfg Upstream
	// transport carries what direct does not take: bodies, WebSocket
	// upgrades, HTTPS.
	transport http.RoundTripper
	direct    *directTransport
	cop       *http.CrossOriginProtection
	// errorLog hears what the proxy cannot answer with a status (a body
	// cut off midway).
	errorLog *log.Logger
}

func newGateway(s *Server, cfg Upstream) *gateway {
	if len(cfg.Paths) == 0 {
		cfg.Paths = DefaultUpstreamPaths
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = 60 * time.Second
	}
	dial := (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
	fallback := &http.Transport{
		// Never through a proxy from the environment: the application is
		// reached directly.
		Proxy:                 nil,
		DialContext:           dial,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		// Bodies pass as they are, compressed or not.
		DisableCompression: true,
	}
	// As many idle connections as clients a server keeps busy, so that
	// under load no request dials.
	direct := &directTransport{dial: dial, responseTimeout: cfg.ResponseTimeout,
		idleTimeout: fallback.IdleConnTimeout, maxIdle: fallback.MaxIdleConnsPerHost}
	return &gateway{s: s, cfg: cfg, cop: http.NewCrossOriginProtection(), transport: fallback, direct: direct,
		errorLog: slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn)}
}

// CheckUpstreamPaths refuses an UPSTREAM_PATHS prefix that would take
// over a page of the portal (the sign-in page, the dashboard), which the
// settings' own check, knowing only the platform's fixed paths, lets by.
func (s *Server) CheckUpstreamPaths(paths []string) error {
	s.on = s.features()
	portal := chi.NewRouter()
	s.portalRoutes(portal)
	var taken error
	_ = chi.Walk(portal, func(_, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		for _, p := range paths {
			catchAll, isCatchAll := strings.CutSuffix(route, "*")
			if strings.HasPrefix(route, p) || route == strings.TrimSuffix(p, "/") || (isCatchAll && strings.HasPrefix(p, catchAll)) {
				taken = fmt.Errorf("UPSTREAM_PATHS %s takes the portal's %s: choose a prefix the portal does not use, such as /api/", p, route)
				return taken
			}
		}
		return nil
	})
	return taken
}

// gatewayPath reports whether a request path is proxied to the upstream
// (on a tenant's host). Such requests stream their bodies: they are not
// bounded or read by the portal's input checks.
func (s *Server) gatewayPath(p string) bool {
	if s.gateway == nil {
		return false
	}
	for _, prefix := range s.gateway.cfg.Paths {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// withGateway sends a tenant's application paths to the gateway, and
// everything else to next.
func (s *Server) withGateway(next http.Handler) http.Handler {
	if s.gateway == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.gatewayPath(r.URL.Path) {
			s.gateway.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func gatewayFail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg})
}

// ServeHTTP proxies a request of the tenant in its context, which serves
// (suspended and deleted tenants are refused before).
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := tenantOf(r.Context())
	if hasDotSegment(r.URL.Path) {
		gatewayFail(w, http.StatusBadRequest, "the path may not contain . or .. segments")
		return
	}
	caller, still, ok := g.authenticate(w, r, t)
	if !ok {
		return
	}
	if !g.s.admitQuota(w, r, t) {
		return
	}
	var token string
	if g.cfg.Signer != nil && caller.Role != "" {
		var err error
		if token, err = g.cfg.Signer.Sign(caller); err != nil {
			g.s.Error(w, r, err)
			return
		}
	}
	upgrade := r.Header.Get("Upgrade") != ""
	if upgrade {
		// A WebSocket lives on after its handshake: it ends once its
		// caller may no longer call (a key revoked, a session ended, a
		// role changed, the tenant suspended). Ending the request's
		// context closes both connections.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go g.watch(ctx, cancel, t, still)
		r = r.WithContext(ctx)
	} else {
		// The server's read and write timeouts are for pages; a proxied
		// body streams as long as StreamTimeout allows. (A WebSocket lives
		// as long as both ends keep it open: taking over the connection
		// clears its deadlines.) A writer that cannot change them keeps
		// none anyway.
		deadline := time.Time{}
		if g.cfg.StreamTimeout > 0 {
			deadline = time.Now().Add(g.cfg.StreamTimeout)
		}
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(deadline)
		_ = rc.SetWriteDeadline(deadline)
	}
	// The portal's page policies are not the application's: its own
	// headers decide. HSTS and the quota headers stay. (securityHeaders
	// gives every request a statusWriter.)
	if sw, ok := w.(*statusWriter); ok {
		sw.proxied = true
	}
	start := time.Now()
	if directRequest(r, g.cfg.URL) {
		g.serveDirect(w, r, caller, token)
	} else {
		proxy := &httputil.ReverseProxy{
			Rewrite:      func(pr *httputil.ProxyRequest) { g.rewrite(pr, caller, token) },
			Transport:    g.transport,
			BufferPool:   proxyBuffers,
			ErrorHandler: g.fail,
			ErrorLog:     g.errorLog,
		}
		proxy.ServeHTTP(w, r)
	}
	if !upgrade {
		g.s.Meter.AddCompute(t.ID, time.Since(start))
	}
}

// stillAllowed reports, for an open WebSocket, whether its caller may
// still call: false once not. A check that cannot be made (the database
// away while a cache entry is being loaded again) keeps the socket open.
type stillAllowed func(ctx context.Context) (bool, error)

// watch ends an open WebSocket (cancel) once its tenant is no longer
// active or its caller no longer allowed, checking every Recheck until ctx
// ends.
func (g *gateway) watch(ctx context.Context, cancel context.CancelFunc, t *tenancy.Tenant, still stillAllowed) {
	every := g.cfg.Recheck
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		current, err := g.s.Resolver.Lookup(ctx, t.ID)
		allowed := err == nil && current.Status == tenancy.StatusActive
		if err == nil && allowed && still != nil {
			allowed, err = still(ctx)
		}
		switch {
		case err != nil && tenancy.ErrorCode(err) != tenancy.ENOTFOUND:
			continue // unknown now; checked again at the next tick
		case !allowed || err != nil:
			g.s.Log.Info("gateway: websocket closed: its caller may no longer call", "tenant", t.Slug)
			cancel()
			return
		}
	}
}

// pageOnlyHeaders are the security headers that describe the portal's
// pages; a proxied answer carries the application's instead.
var pageOnlyHeaders = []string{"Content-Security-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy", "Permissions-Policy", "X-Content-Type-Options", "Referrer-Policy"}

func pageOnlyHeader(k string) bool { return slices.Contains(pageOnlyHeaders, k) }

// authenticate finds who calls: an API key (Authorization: Bearer), else
// a signed-in member of the tenant (the portal's session cookie), else the
// anonymous role when there is one. It answers the request itself, and
// reports false, when the caller may not go on.
func (g *gateway) authenticate(w http.ResponseWriter, r *http.Request, t *tenancy.Tenant) (tenancy.UpstreamCaller, stillAllowed, bool) {
	ctx := r.Context()
	upgrade := r.Header.Get("Upgrade") != ""
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" && r.Header.Get("Authorization") == "" {
		// A CORS preflight never carries credentials: the application
		// answers it (with its CORS policy) knowing the tenant only.
		return tenancy.PreflightCaller(t), nil, true
	}
	if auth := r.Header.Values("Authorization"); len(auth) > 0 {
		secret, ok := bearerToken(auth[0])
		if len(auth) > 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nself"`)
			gatewayFail(w, http.StatusUnauthorized, "send one Authorization: Bearer <API key> header, or sign in")
			return tenancy.UpstreamCaller{}, nil, false
		}
		ip := clientIP(r)
		key, err := g.checkKey(ctx, t, secret, ip, r.Method, upgrade)
		switch {
		case err == errKeyElsewhere:
			gatewayFail(w, http.StatusForbidden, "this API key belongs to another tenant")
			return tenancy.UpstreamCaller{}, nil, false
		case key != nil && err != nil: // the key's own limits (expiry, scope)
			gatewayFail(w, keyRefusalStatus(err), tenancy.ErrorMessage(err))
			return tenancy.UpstreamCaller{}, nil, false
		case tenancy.ErrorCode(err) == tenancy.ENOTFOUND:
			w.Header().Set("WWW-Authenticate", `Bearer realm="nself", error="invalid_token"`)
			gatewayFail(w, http.StatusUnauthorized, "invalid or revoked API key")
			return tenancy.UpstreamCaller{}, nil, false
		case err != nil:
			g.s.Error(w, r, err)
			return tenancy.UpstreamCaller{}, nil, false
		}
		// Made for a WebSocket only: a request is checked once, above.
		var still stillAllowed
		if upgrade {
			method := r.Method
			still = func(ctx context.Context) (bool, error) {
				_, err := g.checkKey(ctx, t, secret, ip, method, true)
				switch {
				case err == nil:
					return true, nil
				case tenancy.ErrorCode(err) == tenancy.ENOTFOUND || err == errKeyElsewhere ||
					tenancy.ErrorCode(err) == tenancy.EFORBIDDEN:
					return false, nil
				}
				return true, err
			}
		}
		return tenancy.APIKeyCaller(t, key), still, true
	}
	if _, err := r.Cookie(tenantCookie); err == nil {
		sess := g.s.session(r, tenantCookie)
		token, _ := sess.Values[keyToken].(string)
		tenantID, _ := sess.Values[keyTenant].(string)
		if token != "" && tenantID == t.ID {
			id, err := g.s.Auth.Identify(ctx, t.ID, token)
			switch {
			case err == nil && id.SecondFactor != "":
				// Still waiting for its second factor: no member yet.
			case err == nil:
				if !g.sameOrigin(w, r) {
					return tenancy.UpstreamCaller{}, nil, false
				}
				caller := tenancy.MemberCaller(t, id)
				var still stillAllowed
				if upgrade {
					role := caller.Role
					still = func(ctx context.Context) (bool, error) {
						id, err := g.s.Auth.Identify(ctx, t.ID, token)
						switch {
						case tenancy.ErrorCode(err) == tenancy.ENOTFOUND:
							return false, nil
						case err != nil:
							return true, err
						}
						// A new role is the socket's to take by opening again.
						return tenancy.MemberCaller(t, id).Role == role, nil
					}
				}
				return caller, still, true
			case tenancy.ErrorCode(err) == tenancy.ENOTFOUND:
				g.s.endSession(w, r, tenantCookie)
			default:
				g.s.Error(w, r, err)
				return tenancy.UpstreamCaller{}, nil, false
			}
		}
	}
	if g.cfg.AnonymousRole != "" {
		return tenancy.AnonymousCaller(t, g.cfg.AnonymousRole), nil, true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="nself"`)
	gatewayFail(w, http.StatusUnauthorized, "sign in, or send an API key: Authorization: Bearer <key>")
	return tenancy.UpstreamCaller{}, nil, false
}

// checkKey verifies an API key for a request to t's gateway with method:
// the key (nil when unknown) and, when it may not call, why.
func (g *gateway) checkKey(ctx context.Context, t *tenancy.Tenant, secret, ip, method string, upgrade bool) (*tenancy.APIKey, error) {
	key, err := g.s.APIKeys.AuthenticateAPIKey(ctx, secret, ip)
	switch {
	case err != nil:
		return nil, err
	case key.TenantID != t.ID:
		return key, errKeyElsewhere
	}
	err = key.Permits(tenancy.SurfaceGateway, method, time.Now())
	if err == nil && upgrade && key.ReadOnly {
		err = tenancy.ErrKeyReadOnlySocket
	}
	return key, err
}

// errKeyElsewhere is a key sent to another tenant's host.
var errKeyElsewhere = errors.New("the API key belongs to another tenant")

// bearerToken reads the token of an Authorization header's Bearer scheme,
// whose name is not case-sensitive (RFC 9110, 11.1).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// sameOrigin refuses a request that a browser sent from another site with
// the member's cookie: a state-changing one (as the portal's forms are
// guarded), and a WebSocket handshake, which browsers send as a GET from
// any page. Other tenants' hosts are other origins.
func (g *gateway) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if err := g.cop.Check(r); err != nil {
		gatewayFail(w, http.StatusForbidden, "this request came from another site and was refused")
		return false
	}
	if r.Header.Get("Upgrade") != "" {
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || !strings.EqualFold(u.Host, r.Host) {
				gatewayFail(w, http.StatusForbidden, "this WebSocket was opened from another site and was refused")
				return false
			}
		}
	}
	return true
}

// rewrite makes the request the application receives: the gateway's own
// context instead of anything the client said about tenants or roles.
func (g *gateway) rewrite(pr *httputil.ProxyRequest, c tenancy.UpstreamCaller, token string) {
	target := g.cfg.URL
	out := pr.Out
	out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
	out.URL.Path, out.URL.RawPath = g.targetPath(pr.In.URL)
	out.Host = ""
	h := out.Header
	for k := range h {
		if tenancy.IsUpstreamContextHeader(k) || tenancy.IsForwardingHeader(k) {
			delete(h, k)
		}
	}
	pr.SetXForwarded()
	delete(h, "Authorization")
	if lines := h["Cookie"]; lines != nil {
		if kept := applicationCookies(lines); kept != nil {
			h["Cookie"] = kept
		} else {
			delete(h, "Cookie")
		}
	}
	if token != "" {
		h["Authorization"] = []string{"Bearer " + token}
		return
	}
	for _, kv := range c.UpstreamHeaders() {
		h[kv[0]] = []string{kv[1]}
	}
}

// targetPath is the path the application receives for the client's in:
// unchanged when UPSTREAM_URL has no path, else with the matched prefix
// replaced by it.
func (g *gateway) targetPath(in *url.URL) (path, rawPath string) {
	target := g.cfg.URL
	if target.Path == "" {
		return in.Path, in.RawPath
	}
	prefix := g.prefixOf(in.Path)
	if rest, ok := strings.CutPrefix(in.EscapedPath(), prefix); ok {
		rawPath = joinPath(target.EscapedPath(), rest)
		path, _ = url.PathUnescape(rawPath)
		return path, rawPath
	}
	return joinPath(target.Path, strings.TrimPrefix(in.Path, prefix)), ""
}

// joinPath puts rest under base, with one slash between.
func joinPath(base, rest string) string {
	base, rest = strings.Trim(base, "/"), strings.TrimPrefix(rest, "/")
	if base == "" {
		return "/" + rest
	}
	return "/" + base + "/" + rest
}

// prefixOf is the longest configured prefix of p.
func (g *gateway) prefixOf(p string) string {
	best := ""
	for _, prefix := range g.cfg.Paths {
		if strings.HasPrefix(p, prefix) && len(prefix) > len(best) {
			best = prefix
		}
	}
	return best
}

// applicationCookies are the Cookie header lines without the portal's own
// cookies (the session and its CSRF seed), which are the gateway's
// credential, not the application's; nil when none is left.
func applicationCookies(lines []string) []string {
	var kept []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name == "" || name == tenantCookie || name == tenantCookie+"_csrf" || name == adminCookie || name == adminCookie+"_csrf" {
				continue
			}
			kept = append(kept, strings.TrimSpace(part))
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return []string{strings.Join(kept, "; ")}
}

// fail answers a request the application could not answer: 504 when it
// did not answer in time, 502 when it could not be reached or broke off.
// A client that went away gets nothing.
func (g *gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	noteError(r.Context(), err)
	if r.Context().Err() != nil {
		return
	}
	// A connection not made, in time or at all, is an application that
	// could not be reached (502); 504 is for one that did not answer.
	var oe *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &oe) && oe.Op == "dial":
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		gatewayFail(w, http.StatusGatewayTimeout, "the application did not answer in time")
		return
	}
	gatewayFail(w, http.StatusBadGateway, "the application could not be reached")
}

// hasDotSegment reports whether a path has a . or .. segment, which could
// lead the application out of the prefix it serves.
func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// proxyBuffers are the buffers bodies are copied through, reused across
// requests.
var proxyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
