package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nself/nself/internal/billing"
	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// openDB opens a test database's two pools, as another process would.
func openDB(t *testing.T, app, admin string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), app, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// proxiedDB opens a test database whose every connection goes through a
// proxy the test can freeze or cut.
func proxiedDB(t *testing.T) (*postgres.DB, *faulttest.Proxy) {
	t.Helper()
	urls := pgtest.NewURLs(t)
	u, err := url.Parse(urls.App)
	if err != nil {
		t.Fatal(err)
	}
	p := faulttest.NewProxy(t, u.Host)
	via := func(raw string) string {
		u, _ := url.Parse(raw)
		u.Host = p.Addr()
		return u.String()
	}
	return openDB(t, via(urls.App), via(urls.Admin)), p
}

// withStripe turns billing on against the Stripe cfg describes.
func withStripe(t *testing.T, cfg billing.Config) func(*web.Server, *postgres.DB) {
	return func(s *web.Server, db *postgres.DB) {
		store := postgres.NewBillingService(db)
		cfg.SecretKey, cfg.WebhookSecret = "sk_test_123", webhookSecret
		svc, err := billing.New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		s.BillingStore = store
		s.Billing = svc
	}
}

// reply is a response read whole, or the error that prevented it.
type reply struct {
	status  int
	header  http.Header
	body    string
	elapsed time.Duration
	err     error
}

// send makes a request with c's cookies, from any goroutine.
func send(c *client, req *http.Request) reply {
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b), elapsed: time.Since(start)}
}

func postForm(c *client, path string, form url.Values) *http.Request {
	form.Set("csrf_token", c.csrf)
	req, _ := http.NewRequest(http.MethodPost, c.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// wantUnavailable checks a 503 that asks to retry later and names what is
// unavailable, on a page or in a partial.
func wantUnavailable(t *testing.T, what string, r reply, service string) {
	t.Helper()
	if r.err != nil {
		t.Errorf("%s: %v", what, r.err)
		return
	}
	msg := textOf(t, r.body, "error-message")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
		!strings.Contains(msg, service+" is unavailable") {
		t.Errorf("%s: %d, Retry-After %q, message %q; want 503 naming %q\n%s", what, r.status, r.header.Get("Retry-After"), msg, service, r.body)
	}
}

// A Stripe that accepts connections and never answers costs the Checkouts
// that wait for it their timeout, and nothing else: while five of them
// wait, no database connection is held for them, another tenant's pages
// load, the tenant can be suspended from another process (no row is
// locked), and /readyz says the server is ready, which it is. Each then
// answers 503 naming Stripe within the configured timeout.
func TestHungStripeHoldsOnlyTheCheckouts(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	db := openDB(t, urls.App, urls.Admin)
	hole := faulttest.NewBlackhole(t)
	// Long enough for what is checked meanwhile on a loaded machine.
	const stripeTimeout = 6 * time.Second
	e := newEnvDB(t, db, withStripe(t, billing.Config{APIBase: hole.URL(), Timeout: stripeTimeout, MaxRetries: 2}))
	(&billingEnv{testEnv: e}).sellPlan("pro", 100000)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	beta := e.mustTenant("beta")
	member := e.signedIn(beta, "ann@beta.test", tenancy.RoleMember)
	_, body := owner.get("/billing")
	attempt := attrOf(t, body, "offer-pro", "attempt")

	replies := make(chan reply, 5)
	for range 5 {
		req := postForm(owner, "/billing/checkout", url.Values{"plan": {"pro"}, "attempt": {attempt}})
		go func() { replies <- send(owner, req) }()
	}
	waitFor(t, func() bool { return hole.Accepted() >= 1 })
	for deadline := time.Now().Add(3 * time.Second); hole.Accepted() < 5 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := hole.Accepted(); n != 5 {
		t.Errorf("%d of 5 Checkouts reached Stripe together; the others wait for something", n)
	}

	// Meanwhile: nothing held, nothing locked.
	if n := db.Admin.Stat().AcquiredConns() + db.App.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d connections held while Stripe does not answer", n)
	}
	cli := openDB(t, urls.App, urls.Admin) // the CLI is another process
	var idle int
	if err := cli.Admin.QueryRow(e.ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&idle); err != nil || idle != 0 {
		t.Errorf("%d sessions idle in transaction (%v)", idle, err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
	defer cancel()
	if _, err := postgres.NewTenantService(cli, tenancy.ModeHybrid).SetTenantStatus(ctx, "acme", tenancy.StatusSuspended); err != nil {
		t.Errorf("suspend acme while its Checkouts wait: %v", err)
	}
	start := time.Now()
	if r := send(member, httpGet(member, "/dashboard")); r.status != http.StatusOK || time.Since(start) > 2*time.Second {
		t.Errorf("another tenant's page: %d after %s", r.status, time.Since(start))
	}
	if r := send(member, httpGet(member, "/readyz")); r.status != http.StatusOK {
		t.Errorf("/readyz while Stripe hangs: %d %q", r.status, r.body)
	}
	if len(replies) != 0 {
		t.Error("a Checkout answered before the checks above were done: they did not run while Stripe hung")
	}

	for range 5 {
		r := <-replies
		wantUnavailable(t, "checkout", r, "Stripe (payments)")
		if r.elapsed > stripeTimeout+2*time.Second {
			t.Errorf("checkout answered after %s, the timeout is %s", r.elapsed, stripeTimeout)
		}
	}
	if stored, err := e.server.Tenants.FindTenant(e.ctx, acme.ID); err != nil || stored.StripeCustomerID != "" {
		t.Errorf("customer stored without Stripe: %+v %v", stored, err)
	}
}

func httpGet(c *client, path string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, c.url(path), nil)
	return req
}

// flakyStripe is the way to stripe-mock, or, while down, to an address
// that refuses connections.
type flakyStripe struct{ down atomic.Bool }

func (f *flakyStripe) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.down.Load() {
		req = req.Clone(req.Context())
		req.URL.Host = "127.0.0.1:1"
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Checkouts that fail to reach Stripe do not use up the tenant's
// allowance of sessions: once Stripe is back, the owner can still buy.
func TestStripeOutageSpendsNoAllowance(t *testing.T) {
	t.Parallel()
	base := os.Getenv("STRIPE_API_BASE")
	if base == "" {
		t.Fatal("STRIPE_API_BASE is not set: start the services with scripts/services.sh")
	}
	stripe := &flakyStripe{}
	e := newEnv(t, withStripe(t, billing.Config{APIBase: base, HTTPClient: &http.Client{Transport: stripe}}))
	(&billingEnv{testEnv: e}).sellPlan("pro", 100000)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	_, body := owner.get("/billing")
	attempt := attrOf(t, body, "offer-pro", "attempt")
	form := url.Values{"plan": {"pro"}, "attempt": {attempt}}

	stripe.down.Store(true)
	for i := range 25 { // more than the allowance (20)
		r := send(owner, postForm(owner, "/billing/checkout", form))
		wantUnavailable(t, "checkout with Stripe down", r, "Stripe (payments)")
		if t.Failed() {
			t.Fatalf("after %d attempts", i+1)
		}
	}
	stripe.down.Store(false)
	r := send(owner, postForm(owner, "/billing/checkout", form))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "https://") {
		t.Fatalf("checkout once Stripe is back: %d %q\n%s", r.status, r.header.Get("Location"), r.body)
	}
}

// A stopped MinIO makes a logo upload answer 503 with Retry-After and a
// message naming file storage, on the full page and in the htmx partial,
// in bounded time.
func TestStorageOutage(t *testing.T) {
	t.Parallel()
	m := faulttest.StartMinIO(t)
	store, err := blob.New(blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(s *web.Server, db *postgres.DB) {
		s.Logos = postgres.NewLogoService(db, store).Cached(s.Resolver.(*postgres.TenantCache))
	})
	acme := e.mustTenant("acme")
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)
	admin.get("/settings/logos")
	if resp, body := admin.upload("main", "logo.png", logoPNG(t, 4, 4), false); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload with storage up: %d\n%s", resp.StatusCode, body)
	}
	m.Stop()
	for _, htmx := range []bool{false, true} {
		admin.get("/settings/logos")
		start := time.Now()
		resp, body := admin.upload("icon", "icon.png", logoPNG(t, 2, 2), htmx)
		wantUnavailable(t, "upload with storage down", reply{status: resp.StatusCode, header: resp.Header, body: body}, "File storage")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("upload answered after %s", d)
		}
	}
}

// A frozen database (connections open, nothing answered) costs a request
// the request database timeout: pages and the API answer 503 naming the
// database, instead of hanging until the client gives up. Once the
// database answers again, so does the server.
func TestFrozenDatabase(t *testing.T) {
	t.Parallel()
	db, proxy := proxiedDB(t)
	const timeout = time.Second
	e := newEnvDB(t, db, func(s *web.Server, _ *postgres.DB) { s.Config.QueryTimeout = timeout })
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	_, key, err := e.server.APIKeys.CreateAPIKey(e.ctx, acme.ID, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	owner.http.Timeout = 15 * time.Second
	api := func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, owner.url("/v1/users"), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		return req
	}
	if r := send(owner, api()); r.status != http.StatusOK {
		t.Fatalf("API before the freeze: %d %s", r.status, r.body)
	}

	proxy.Freeze()
	r := send(owner, httpGet(owner, "/dashboard"))
	wantUnavailable(t, "dashboard, database frozen", r, "The database")
	if r.elapsed > 3*timeout {
		t.Errorf("page answered after %s; the database timeout is %s", r.elapsed, timeout)
	}
	r = send(owner, api())
	var v map[string]any
	if r.err != nil || r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.elapsed > 3*timeout ||
		json.Unmarshal([]byte(r.body), &v) != nil || !strings.Contains(v["error"].(string), "The database is unavailable") {
		t.Errorf("API, database frozen: %d after %s, Retry-After %q: %s (%v)", r.status, r.elapsed, r.header.Get("Retry-After"), r.body, r.err)
	}
	if r := send(owner, httpGet(owner, "/readyz")); r.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz, database frozen: %d %q", r.status, r.body)
	}

	proxy.Restore()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := send(owner, api())
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back 15 s after the database answers again: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// While the database refuses connections (restarting), the server tries a
// new connection only as its backoff allows, not once per request; the
// requests meanwhile fail fast with 503, and the server comes back by
// itself once the database does.
func TestDatabaseRestartBackoff(t *testing.T) {
	t.Parallel()
	db, proxy := proxiedDB(t)
	e := newEnvDB(t, db, func(s *web.Server, _ *postgres.DB) { s.Config.QueryTimeout = 2 * time.Second })
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	if r := send(owner, httpGet(owner, "/dashboard")); r.status != http.StatusOK {
		t.Fatalf("dashboard: %d", r.status)
	}

	before := proxy.Opened()
	proxy.Cut()
	const outage = 3 * time.Second
	var mu sync.Mutex
	codes := map[int]int{}
	var requests int
	var slowest time.Duration
	stop := time.Now().Add(outage)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				r := send(owner, httpGet(owner, "/dashboard"))
				mu.Lock()
				requests++
				codes[r.status]++
				slowest = max(slowest, r.elapsed)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	attempts := proxy.Opened() - before
	t.Logf("%d requests in %s of outage: %v; %d connection attempts; slowest answer %s", requests, outage, codes, attempts, slowest)
	if requests < 100 || codes[http.StatusServiceUnavailable] != requests {
		t.Errorf("requests during the outage: %d, answers %v; want them many and 503", requests, codes)
	}
	// Two pools and the change listener, each backing off from 100 ms up
	// to 5 s, plus the first attempts of the moment the outage began.
	if attempts > 30 {
		t.Errorf("%d connection attempts in %s for %d requests; want them spaced out", attempts, outage, requests)
	}
	r := send(owner, httpGet(owner, "/readyz"))
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d %q", r.status, r.body)
	}

	proxy.Restore()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := send(owner, httpGet(owner, "/dashboard"))
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back 15 s after the database is: %d", r.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := send(owner, httpGet(owner, "/readyz")); r.status != http.StatusOK {
		t.Errorf("/readyz after the outage: %d %q", r.status, r.body)
	}
}

// /readyz answers 503 while a pool has no connection to give, which is
// when requests would wait: here every connection of the owner's pool is
// taken, as by transactions stuck behind a lock.
func TestReadyzReportsExhaustedPool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("any.nself.test")
	if r := send(c, httpGet(c, "/readyz")); r.status != http.StatusOK {
		t.Fatalf("/readyz: %d %q", r.status, r.body)
	}
	var held []*pgxpool.Conn
	for range e.db.Admin.Stat().MaxConns() {
		conn, err := e.db.Admin.Acquire(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	r := send(c, httpGet(c, "/readyz"))
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "pool exhausted") {
		t.Errorf("/readyz with the pool exhausted: %d %q", r.status, r.body)
	}
	for _, conn := range held {
		conn.Release()
	}
	if r := send(c, httpGet(c, "/readyz")); r.status != http.StatusOK {
		t.Errorf("/readyz once released: %d %q", r.status, r.body)
	}
}
