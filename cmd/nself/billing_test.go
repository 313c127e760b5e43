package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/billing/billingtest"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/pgtest"
)

func TestPlanCommands(t *testing.T) {
	c := newCLI(t, pgtest.NewURLs(t))
	out := c.ok("plan", "create", "team", "--max-users", "20", "--max-api-requests", "250000", "--price", "49", "--stripe-price", "price_team")
	mustMatch(t, out, `^✓ Plan created: team$`, `^  Max Users: 20$`, `^  Max Storage: 1 GB$`,
		`^  Max API Requests: 250,000/month$`, `^  Max Compute Hours: 10$`, `^  Price: \$49.00/month$`, `^  Stripe Price: price_team$`)
	out = c.ok("plan", "update", "team", "--max-storage-gb", "-1", "--price", "59.50")
	mustMatch(t, out, `^✓ Plan updated: team$`, `^  Max Storage: Unlimited$`, `^  Price: \$59.50/month$`, `^  Max Users: 20$`,
		`^! Warning: the price was not checked against Stripe price price_team, as Stripe is not configured here \(STRIPE_SECRET_KEY is not set`)
	if out := c.ok("plan", "update", "team", "--max-users", "25"); strings.Contains(out, "Warning") {
		t.Errorf("a change that leaves the price warns: %q", out)
	}
	out = c.ok("plan", "list")
	mustMatch(t, out, `^NAME\s+USERS\s+STORAGE\s+API_REQUESTS/MONTH\s+COMPUTE_HOURS\s+PRICE\s+STRIPE_PRICE\s+STATUS$`,
		`^free\s+5\s+1 GB\s+10,000\s+10\s+\$0.00\s+-\s+offered$`,
		`^enterprise\s+Unlimited\s+Unlimited\s+Unlimited\s+Unlimited\s+\$499.00\s+-\s+offered$`,
		`^team\s+25\s+Unlimited\s+250,000\s+10\s+\$59.50\s+price_team\s+offered$`)
	mustMatch(t, c.ok("plan", "archive", "team"), `^✓ Plan archived: team`)
	mustMatch(t, c.ok("plan", "list", "--json"), `"name": "team"`, `"archived": true`)

	for _, bad := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"plan", "create", "team"}, 1, `plan "team" already exists`},
		{[]string{"plan", "create", "Big Plan"}, 1, "plan name"},
		{[]string{"plan", "create", "big", "--price", "ten"}, 1, `price "ten" is not an amount`},
		{[]string{"plan", "create", "big", "--max-users", "-5"}, 1, `Member limit "-5" is not a whole number from 0 up, or -1 for unlimited`},
		{[]string{"plan", "create", "big", "--stripe-price", "prod_1"}, 1, "is not a price id"},
		{[]string{"plan", "update", "nope", "--price", "1"}, 1, `plan "nope" does not exist`},
		{[]string{"plan", "update", "team"}, 2, "nothing to change"},
		{[]string{"plan", "archive", "free"}, 1, "default plan"},
		{[]string{"tenant", "update", "nope", "--plan", "pro"}, 1, `tenant "nope" not found`},
	} {
		r := c.run("", bad.args...)
		if r.code != bad.code || !strings.Contains(r.err, bad.msg) || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("nself %s: exit %d, stderr %q; want exit %d and %q on one line", strings.Join(bad.args, " "), r.code, r.err, bad.code, bad.msg)
		}
	}
	// A refused create left nothing.
	if strings.Contains(c.ok("plan", "list"), "big") {
		t.Error("a refused plan was created")
	}

	// A member limit lowered below what a tenant on the plan has is
	// saved, and the tenant named.
	c.ok("plan", "create", "small", "--max-users", "3")
	c.ok("tenant", "create", "Acme", "--slug", "acme", "--plan", "small", "--owner", "ann@acme.example")
	c.ok("tenant", "create", "Beta", "--slug", "beta", "--plan", "small")
	c.ok("user", "create", "acme", "bob@acme.example")
	c.ok("tenant", "member", "add", "acme", "bob@acme.example")
	out = c.ok("plan", "update", "small", "--max-users", "1")
	mustMatch(t, out, `^  Max Users: 1$`,
		`^! Warning: acme has 2 members, more than the 1 plan small now allows: it keeps them, and can add none until it has fewer$`)
	if strings.Contains(out, "beta") {
		t.Errorf("a tenant within the limit is named:\n%s", out)
	}
}

func TestTenantUpdateAndUsage(t *testing.T) {
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	c.ok("tenant", "create", "Acme Corp", "--slug", "acme")
	mustMatch(t, c.ok("tenant", "update", "acme", "--plan", "pro"), `^✓ Tenant updated: acme$`, `^  Plan: pro \(was free\)$`)
	mustMatch(t, c.ok("tenant", "update", "acme", "--plan", "pro"), `\A✓ Plan of acme unchanged: pro\n\z`)
	mustMatch(t, c.ok("tenant", "audit", "acme", "--action", "tenant.plan"), `free → pro`)
	if out := c.ok("tenant", "audit", "acme", "--action", "tenant.plan"); strings.Contains(out, "pro → pro") {
		t.Errorf("an unchanged plan was recorded:\n%s", out)
	}
	if r := c.run("", "tenant", "update", "acme", "--plan", "gold"); r.code != 1 || !strings.Contains(r.err, "gold") {
		t.Errorf("unknown plan: %d %q", r.code, r.err)
	}
	if r := c.run("", "tenant", "update", "acme"); r.code != 2 {
		t.Errorf("no change given: %d %q", r.code, r.err)
	}

	// Usage as the guide prints it, from counters as the meter leaves them.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	if err := tx.QueryRow(ctx, `SELECT id FROM tenants.tenants WHERE slug = 'acme'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	month := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, stmt := range []string{
		// A tenant of a year's standing.
		`UPDATE tenants.tenants SET created_at = '2025-12-01' WHERE id = $1`,
		`SELECT tenants.set_context($1, NULL)`,
		`INSERT INTO public.billing_usage_counters (tenant_id, period, service_name, used) VALUES ($1, '2026-01-01', 'api_requests', 45230)`,
		`INSERT INTO public.billing_usage_counters (tenant_id, period, service_name, used, gauge, gauge_at) VALUES ($1, '2026-01-01', 'storage', 1000, 42000000000, '2026-01-20')`,
		`INSERT INTO public.billing_usage_counters (tenant_id, period, service_name, used) VALUES ($1, '2026-01-01', 'compute_hours', 18.5)`,
	} {
		if _, err := tx.Exec(ctx, stmt, id); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	for i := range 23 {
		if _, err := tx.Exec(ctx, `INSERT INTO auth.users (tenant_id, email, last_sign_in_at) VALUES ($1, $2, $3)`,
			id, "user"+strings.Repeat("x", i)+"@acme.test", month.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	out := c.ok("tenant", "usage", "acme", "--month", "2026-01")
	want := "Tenant Usage: acme (January 2026)\n\n" +
		"API Requests: 45,230 / 100,000 (45%)\n" +
		"Storage: 42 GB / 100 GB (42%)\n" +
		"Compute Hours: 18.5 / Unlimited\n" +
		"Active Users: 23 / 50 (46%)\n\n" +
		"Estimated Charges: $99.00/month\n"
	if out != want {
		t.Errorf("usage:\n%s\nwant:\n%s", out, want)
	}
	mustMatch(t, c.ok("tenant", "usage", "acme", "--month", "2026-01", "--json"), `"api_requests": 45230`, `"storage_bytes": 42000000000`)
	if r := c.run("", "tenant", "usage", "acme", "--month", "January"); r.code != 2 {
		t.Errorf("bad month: %d %q", r.code, r.err)
	}
	if r := c.run("", "tenant", "usage", "acme", "--month", "2025-11"); r.code != 1 ||
		!strings.Contains(r.err, "acme was created in December 2025: November 2025 has no usage") {
		t.Errorf("a month before the tenant: %d %q", r.code, r.err)
	}
}

// The server enforces the quota, and what it admitted survives a restart.
func TestServeQuotaSurvivesRestart(t *testing.T) {
	c := newCLI(t, pgtest.NewURLs(t))
	c.ok("plan", "create", "five", "--max-api-requests", "5")
	c.ok("tenant", "create", "Acme Corp", "--slug", "acme", "--plan", "five")
	key := regexp.MustCompile(`Key: (\S+)`).FindStringSubmatch(c.ok("apikey", "create", "acme", "ci"))[1]
	call := func(addr string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/tenant", nil)
		req.Host = "api.example.test"
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	addr, cmd := startServer(t, c)
	for i := range 3 {
		if code := call(addr); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("server stopped with %v", err)
	}
	addr, _ = startServer(t, c)
	codes := []int{}
	for range 4 {
		codes = append(codes, call(addr))
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 || codes[3] != 429 {
		t.Errorf("after a restart: %v, want 200 200 429 429", codes)
	}
}

func TestServeRefusesBillingWithoutWebhookSecret(t *testing.T) {
	c := newCLI(t, pgtest.NewURLs(t), "BILLING_ENABLED=true", "STRIPE_SECRET_KEY=sk_test_123", "STRIPE_PUBLISHABLE_KEY=pk_test_123", "STRIPE_WEBHOOK_SECRET=")
	r := c.run("", "serve", "--addr", "127.0.0.1:0")
	if r.code == 0 || !strings.Contains(r.err, "STRIPE_WEBHOOK_SECRET") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("serve: exit %d, %q", r.code, r.err)
	}
}

// serve checks the publishable key at start: present, and of the secret
// key's mode.
func TestServeChecksStripePublishableKey(t *testing.T) {
	urls := pgtest.NewURLs(t)
	for key, want := range map[string]string{
		"":          "STRIPE_PUBLISHABLE_KEY is not set",
		"pk_live_1": "STRIPE_SECRET_KEY is a test key but STRIPE_PUBLISHABLE_KEY is a live key",
	} {
		c := newCLI(t, urls, "BILLING_ENABLED=true", "STRIPE_SECRET_KEY=sk_test_123", "STRIPE_PUBLISHABLE_KEY="+key, "STRIPE_WEBHOOK_SECRET=whsec_test")
		r := c.run("", "serve", "--addr", "127.0.0.1:0")
		if r.code == 0 || !strings.Contains(r.err, want) || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("serve with publishable key %q: exit %d, %q", key, r.code, r.err)
		}
	}
}

// Reconciling repairs a subscription that drifted from Stripe's, here the
// one stripe-mock holds (active, at its fixture price).
func TestBillingReconcile(t *testing.T) {
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, "STRIPE_API_BASE="+os.Getenv("STRIPE_API_BASE"), "STRIPE_SECRET_KEY=sk_test_123", "STRIPE_PUBLISHABLE_KEY=pk_test_123", "STRIPE_WEBHOOK_SECRET=whsec_test")
	c.ok("tenant", "create", "Acme Corp", "--slug", "acme")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		UPDATE tenants.tenants SET stripe_customer_id = 'cus_QXg1o8vcGmoR32', stripe_subscription_id = 'sub_123',
		  subscription_status = 'past_due' WHERE slug = 'acme'`); err != nil {
		t.Fatal(err)
	}
	// No plan is sold at the subscription's price yet: reported, nothing changed.
	r := c.run("", "billing", "reconcile")
	if r.code != 1 || !strings.Contains(r.out, "✗ acme:") || !strings.Contains(r.out, "no plan is sold at Stripe price") {
		t.Fatalf("unknown price: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// stripe-mock asks $20.00/month for every price.
	c.ok("plan", "update", "pro", "--stripe-price", "price_1PgafmB7WZ01zgkW6dKueIc5", "--price", "20.00")
	mustMatch(t, c.ok("billing", "reconcile"), `^✓ acme: repaired: was free/past_due; now subscription sub_123 active: plan free → pro$`, `^1 subscription\(s\) checked, 0 failed$`)
	mustMatch(t, c.ok("tenant", "show", "acme"), `^  Plan: pro$`, `^  Subscription: active \(sub_123, customer cus_QXg1o8vcGmoR32\)$`)
	mustMatch(t, c.ok("billing", "reconcile"), `^✓ acme: matches Stripe$`)
	mustMatch(t, c.ok("tenant", "audit", "acme"), `billing\.reconcile`)
}

// A plan's price and its Stripe price never silently disagree through the
// CLI either: a Stripe price given must ask the plan's price, a new price
// on a plan sold through Stripe makes a new Stripe price at that amount
// (stripe-mock asks $20.00/month for every price and echoes what is
// created), and a Stripe that cannot be reached leaves the plan as it was.
func TestPlanPriceKeepsStripeInStep(t *testing.T) {
	urls := pgtest.NewURLs(t)
	stripeEnv := []string{"STRIPE_SECRET_KEY=sk_test_123", "STRIPE_PUBLISHABLE_KEY=pk_test_123", "STRIPE_WEBHOOK_SECRET=whsec_test"}
	c := newCLI(t, urls, append(stripeEnv, "STRIPE_API_BASE="+os.Getenv("STRIPE_API_BASE"))...)
	r := c.run("", "plan", "update", "pro", "--stripe-price", "price_pro")
	if r.code != 1 || !strings.Contains(r.err, "Stripe price price_pro asks $20.00/month, not the $99.00/month of this plan") ||
		strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Fatalf("a Stripe price at another amount: exit %d, %q", r.code, r.err)
	}
	mustMatch(t, c.ok("plan", "update", "pro", "--stripe-price", "price_pro", "--price", "20"), `^  Stripe Price: price_pro$`, `^  Price: \$20.00/month$`)
	out := c.ok("plan", "update", "pro", "--price", "29")
	mustMatch(t, out, `^  Price: \$29.00/month$`,
		`^Its new price is Stripe price price_\w+ at \$29.00/month; subscriptions already on price_pro keep paying its amount until they change plan\.$`)
	if strings.Contains(out, "Stripe Price: price_pro\n") {
		t.Errorf("the plan kept the old Stripe price:\n%s", out)
	}
	// A create is checked as well.
	if r := c.run("", "plan", "create", "team", "--price", "49", "--stripe-price", "price_team"); r.code != 1 || !strings.Contains(r.err, "asks $20.00/month") {
		t.Errorf("create with a Stripe price at another amount: exit %d, %q", r.code, r.err)
	}

	before := c.ok("plan", "list")
	// A Stripe that refuses (here a key it does not take) is no outage.
	refusing := newCLI(t, urls, "STRIPE_API_BASE="+os.Getenv("STRIPE_API_BASE"), "STRIPE_SECRET_KEY=sk_live_123",
		"STRIPE_PUBLISHABLE_KEY=pk_live_123", "STRIPE_WEBHOOK_SECRET=whsec_test")
	r = refusing.run("", "plan", "update", "pro", "--price", "39")
	if r.code != 1 || !strings.Contains(r.err, "Stripe refused to check the price, so nothing was saved: read the Stripe price: Stripe said: Please authenticate") ||
		strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("with Stripe refusing: exit %d, %q", r.code, r.err)
	}

	hole := faulttest.NewBlackhole(t)
	down := newCLI(t, urls, append(stripeEnv, "STRIPE_API_BASE="+hole.URL(), "STRIPE_TIMEOUT=2s")...)
	// Input that will not save is refused before Stripe is asked: here
	// Stripe never answers, so asking it would take the whole timeout.
	if r := down.run("", "plan", "update", "pro", "--price", "39", "--max-users", "-7"); r.code != 1 || !strings.Contains(r.err, "Member limit") ||
		hole.Accepted() != 0 {
		t.Errorf("a bad limit with a new price: exit %d, %q, %d call(s) to Stripe", r.code, r.err, hole.Accepted())
	}
	start := time.Now()
	r = down.run("", "plan", "update", "pro", "--price", "39")
	if r.code != 1 || !strings.Contains(r.err, "Stripe could not be reached to check the price, so nothing was saved") ||
		strings.Count(strings.TrimSpace(r.err), "\n") != 0 || hole.Accepted() != 1 {
		t.Errorf("with Stripe down: exit %d, %q, %d call(s) to Stripe, want 1: a call that timed out is not tried again", r.code, r.err, hole.Accepted())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("with Stripe down the command took %s", took)
	}
	if after := c.ok("plan", "list"); after != before {
		t.Errorf("the plans changed with Stripe down:\n%s\n%s", before, after)
	}
}

// A running server mails the owner through SMTP from the outbox: the
// welcome queued when the CLI created the tenant, and the notices queued
// when the API quota passed 80% and 100% and when Stripe reported a failed
// payment.
func TestServeMailsOwnersAboutQuotaAndPayments(t *testing.T) {
	t.Parallel()
	api := os.Getenv("MAILPIT_URL")
	if api == "" || os.Getenv("SMTP_HOST") == "" || os.Getenv("STRIPE_API_BASE") == "" {
		t.Fatal("SMTP_HOST, SMTP_PORT, MAILPIT_URL and STRIPE_API_BASE must be set: run `make test`")
	}
	const secret = "whsec_serve_test"
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, "SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"),
		"SMTP_FROM=no-reply@example.test", "PUBLIC_SCHEME=http", "BILLING_ENABLED=true",
		"STRIPE_SECRET_KEY=sk_test_123", "STRIPE_PUBLISHABLE_KEY=pk_test_123", "STRIPE_WEBHOOK_SECRET="+secret, "STRIPE_API_BASE="+os.Getenv("STRIPE_API_BASE"))
	owner := "owner-" + uuid.NewString()[:8] + "@example.test"
	c.ok("plan", "create", "ten", "--max-api-requests", "10")
	if r := c.run("a password here\n", "tenant", "create", "Mail Co", "--slug", "mail-co", "--plan", "ten", "--owner", owner, "--owner-password-stdin"); r.code != 0 {
		t.Fatalf("create: %q", r.err)
	}
	key := regexp.MustCompile(`Key: (\S+)`).FindStringSubmatch(c.ok("apikey", "create", "mail-co", "ci"))[1]
	addr, _ := startServer(t, c)
	for range 12 {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/tenant", nil)
		req.Host = "mail-co.example.test"
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE tenants.tenants SET stripe_customer_id = 'cus_mailco', subscription_status = 'active' WHERE slug = 'mail-co'`); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"id":"evt_mail_1","object":"event","type":"invoice.payment_failed","created":` +
		strconv.FormatInt(time.Now().Unix(), 10) + `,"api_version":"2023-10-16","data":{"object":{"id":"in_mail_1","object":"invoice",` +
		`"customer":"cus_mailco","amount_due":2900,"currency":"usd"}}}`)
	signature := billingtest.Signature(payload, secret, time.Time{})
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhooks/stripe", bytes.NewReader(payload))
	req.Host = "api.example.test"
	req.Header.Set("Stripe-Signature", signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}

	var subjects []string
	deadline := time.Now().Add(10 * time.Second)
	for len(subjects) < 4 && time.Now().Before(deadline) {
		var found struct{ Messages []struct{ Subject string } }
		getJSON(t, api+"/api/v1/search?query="+url.QueryEscape("to:"+owner), &found)
		subjects = subjects[:0]
		for _, m := range found.Messages {
			subjects = append(subjects, m.Subject)
		}
		time.Sleep(100 * time.Millisecond)
	}
	joined := strings.Join(subjects, " | ")
	if len(subjects) != 4 || strings.Count(joined, "close to its plan limits") != 2 || !strings.Contains(joined, "Your Mail Co payment did not go through") ||
		!strings.Contains(joined, "Welcome to Mail Co!") {
		t.Errorf("mail to the owner: %q; want the welcome, two quota warnings and one about the payment", subjects)
	}
}

// The server measures each tenant's bucket for storage usage.
func TestServeSamplesStorage(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), blobtest.Env(t)...)
	c.ok("tenant", "create", "Acme Corp", "--slug", "acme")
	c.ok("whitelabel", "logo", "upload", "acme", pngFile(t, "logo.png", 120, 40))
	startServer(t, c, "--storage-sample", "100ms")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := c.ok("tenant", "usage", "acme", "--json")
		if m := regexp.MustCompile(`"storage_bytes": (\d+)`).FindStringSubmatch(out); m != nil && m[1] != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no storage measured:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Two server processes on one database never admit more than the month's
// limit between them.
func TestTwoServersShareTheQuota(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	c.ok("plan", "create", "small", "--max-api-requests", "25")
	c.ok("tenant", "create", "Acme Corp", "--slug", "acme", "--plan", "small")
	key := regexp.MustCompile(`Key: (\S+)`).FindStringSubmatch(c.ok("apikey", "create", "acme", "ci"))[1]
	addrs := []string{}
	for range 2 {
		addr, _ := startServer(t, c)
		addrs = append(addrs, addr)
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				req, _ := http.NewRequest("GET", "http://"+addrs[i%2]+"/v1/tenant", nil)
				req.Host = "api.example.test"
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if codes[200] > 25 || codes[200]+codes[429] != 80 {
		t.Errorf("codes %v: more than the limit of 25 admitted, or other answers", codes)
	}
	// Blocks are at most an eighth of what is left: near the limit the
	// processes hold back few requests from each other.
	if codes[200] < 20 {
		t.Errorf("only %d admitted of a limit of 25", codes[200])
	}
}
