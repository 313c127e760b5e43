package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// TestNoTransactionsPerRequest: once a caller's key or session and its
// tenant are cached, neither the gateway nor /v1 nor a tenant's sign-in
// page (with a single sign-on provider and without) costs a database round
// trip: the pools hand out no connection while they serve, and PostgreSQL
// counts no transaction of theirs (the meter's flush and the uses' writes
// are off the request path, on intervals longer than the test). A tenant on a limited plan admits
// from the block of requests granted to the process (bolt's first block,
// 256 requests, covers the test).
func TestNoTransactionsPerRequest(t *testing.T) {
	t.Parallel()
	app := newUpstreamApp(t)
	var meter *postgres.Meter
	e := newEnv(t, func(s *web.Server, db *postgres.DB) {
		s.Config.Upstream = web.Upstream{URL: app.url(t)}
		s.Config.QueryTimeout = time.Second
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		// Plans from memory, as serve has them.
		cache := postgres.NewTenantCache(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		go cache.Listen(ctx)
		<-cache.Ready()
		s.Plans = postgres.NewPlanService(db).Cached(cache)
		meter = postgres.NewMeter(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		go meter.Run(ctx, time.Hour)
		s.Meter = meter
	})
	acme, bolt := e.mustTenant("acme"), e.mustTenant("bolt")
	if _, err := e.server.BillingStore.SetTenantPlan(e.ctx, acme.ID, "enterprise"); err != nil {
		t.Fatal(err)
	}
	_, acmeKey := mustAPIKey(t, e, acme)
	_, boltKey := mustAPIKey(t, e, bolt)
	e.mustMember(acme, "ann@acme.example", tenancy.RoleMember)
	if _, err := e.server.SSO.SaveSSOConfig(e.ctx, bolt.ID, &tenancy.SSOConfig{Issuer: "https://login.bolt.example", ClientID: "bolt",
		ClientSecret: "bolt's secret", DisplayName: "Bolt Login", DefaultRole: tenancy.RoleMember}); err != nil {
		t.Fatal(err)
	}
	ac, bc := e.client("acme."+baseDomain), e.client("bolt."+baseDomain)
	ac.signIn("ann@acme.example", passwordOf("ann@acme.example"))
	// Anonymous visitors of the sign-in pages.
	av, bv := e.client("acme."+baseDomain), e.client("bolt."+baseDomain)
	if _, page := bv.get("/"); textOf(t, page, "sso-sign-in") != "Sign in with Bolt Login" {
		t.Fatal("bolt's sign-in page lacks its provider")
	}
	if _, page := av.get("/"); textOf(t, page, "sso-sign-in") != "" {
		t.Fatal("acme's sign-in page shows a provider")
	}
	type call struct {
		c      *client
		path   string
		header http.Header
	}
	calls := []call{
		{ac, "/api/x", http.Header{"Authorization": {"Bearer " + acmeKey}}},
		{ac, "/v1/tenant", http.Header{"Authorization": {"Bearer " + acmeKey}}},
		{ac, "/api/me", nil}, // the portal session
		{bc, "/api/x", http.Header{"Authorization": {"Bearer " + boltKey}}},
		{av, "/", nil},
		{bv, "/", nil},
	}
	serve := func(rounds int) {
		for range rounds {
			for _, c := range calls {
				if resp, body := apiCall(t, c.c, http.MethodGet, c.path, nil, c.header); resp.StatusCode != http.StatusOK {
					t.Fatalf("%s %s: %d %s", c.c.host, c.path, resp.StatusCode, body)
				}
			}
		}
	}
	// The test's client delivers mail after each request; nothing here
	// sends any.
	e.sender = nil
	serve(1) // every key, session, tenant and plan cached; bolt's first block granted
	// Whatever ran before has reached the statistics once its session has
	// been idle for 10 s; the pools' sessions report theirs as they end.
	time.Sleep(11 * time.Second)
	// Again: an entry loaded while a notice of the sign-in was on its way
	// is not kept, and loaded again now.
	serve(1)
	before := transactions(t, e.db)
	acquired := e.db.App.Stat().AcquireCount() + e.db.Admin.Stat().AcquireCount()
	serve(100)
	if n := e.db.App.Stat().AcquireCount() + e.db.Admin.Stat().AcquireCount() - acquired; n != 0 {
		t.Errorf("%d requests took %d connections from the pools, want none", 100*len(calls), n)
	}
	// No request made one (a request's own would be 600 at least). The
	// statistics may count a listener's LISTENs late, on a busy server,
	// whose sessions are not ended to report: a handful is theirs.
	if n := transactions(t, e.db) - before; n > 20 {
		t.Errorf("%d requests made %d database transactions, want none", 100*len(calls), n)
	}
}

// transactions is how many transactions db's database has committed or
// rolled back, read from another database so the reading counts none. The
// pools' sessions are ended first, which reports what they did.
func transactions(t *testing.T, db *postgres.DB) int64 {
	t.Helper()
	ctx := context.Background()
	db.App.Reset()
	db.Admin.Reset()
	cfg := db.Admin.Config().ConnConfig.Copy()
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Until the pools' sessions have ended (each reports what it did as it
	// exits) and two readings a little apart agree.
	var n, sessions int64
	for last, lastSessions := int64(-1), int64(-1); n != last || sessions != lastSessions; {
		last, lastSessions = n, sessions
		time.Sleep(300 * time.Millisecond)
		err := conn.QueryRow(ctx, `
			SELECT xact_commit + xact_rollback, (SELECT count(*) FROM pg_stat_activity WHERE datname = $1)
			FROM pg_stat_database WHERE datname = $1`, name).Scan(&n, &sessions)
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}
