package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/billing"
	"github.com/nself/nself/internal/billing/billingtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

const webhookSecret = "whsec_test_0123456789"

// stripeCall is one request the server made to the Stripe API.
type stripeCall struct {
	Method, Path, IdempotencyKey string
	Form                         url.Values
}

// recorder keeps the Stripe API requests that go through it, on their way
// to stripe-mock.
type recorder struct {
	mu    sync.Mutex
	calls []stripeCall
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	form, _ := url.ParseQuery(string(body))
	rec.mu.Lock()
	rec.calls = append(rec.calls, stripeCall{req.Method, req.URL.Path, req.Header.Get("Idempotency-Key"), form})
	rec.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (rec *recorder) to(path string) []stripeCall {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []stripeCall
	for _, c := range rec.calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// billingEnv is a server with billing on, speaking to stripe-mock.
type billingEnv struct {
	*testEnv
	stripe *recorder
	meter  *postgres.Meter
}

func newBillingEnv(t *testing.T) *billingEnv {
	t.Helper()
	base := os.Getenv("STRIPE_API_BASE")
	if base == "" {
		t.Fatal("STRIPE_API_BASE is not set: start the services with scripts/services.sh")
	}
	rec := &recorder{}
	var meter *postgres.Meter
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// What serve builds when BILLING_ENABLED=true.
	e := newEnv(t, func(s *web.Server, db *postgres.DB) {
		store := postgres.NewBillingService(db)
		svc, err := billing.New(billing.Config{SecretKey: "sk_test_123", WebhookSecret: webhookSecret, APIBase: base,
			HTTPClient: &http.Client{Transport: rec, Timeout: billing.DefaultTimeout + time.Second}}, store, log)
		if err != nil {
			t.Fatal(err)
		}
		meter = postgres.NewMeter(db, log)
		s.BillingStore = store
		s.Billing = svc
		s.PlanAdmin = postgres.NewPlanService(db)
		s.Meter = meter
	})
	return &billingEnv{testEnv: e, stripe: rec, meter: meter}
}

// sellPlan makes a plan sold at a Stripe price.
func (e *billingEnv) sellPlan(name string, apiLimit int64) *tenancy.Plan {
	e.t.Helper()
	price := "price_" + name
	p, err := postgres.NewPlanService(e.db).UpdatePlan(e.ctx, tenancy.PlanInput{Name: name, StripePriceID: &price, MaxAPIRequests: &apiLimit})
	if tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
		p, err = postgres.NewPlanService(e.db).CreatePlan(e.ctx, tenancy.PlanInput{Name: name, StripePriceID: &price, MaxAPIRequests: &apiLimit})
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// event is a Stripe event as a webhook delivers it.
func event(id, typ string, created time.Time, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": created.Unix(),
		"api_version": "2023-10-16", "livemode": false,
		"data": map[string]any{"object": object},
	})
	return b
}

func subscriptionObject(id, customer, tenantID, status, price string) map[string]any {
	return map[string]any{
		"id": id, "object": "subscription", "customer": customer, "status": status,
		"current_period_end": time.Now().Add(30 * 24 * time.Hour).Unix(),
		"metadata":           map[string]any{"tenant_id": tenantID},
		"items": map[string]any{"object": "list", "data": []any{
			map[string]any{"id": "si_1", "object": "subscription_item", "price": map[string]any{"id": price, "object": "price"}},
		}},
	}
}

// deliver posts a webhook signed with secret at signedAt.
func (e *billingEnv) deliver(payload []byte, secret string, signedAt time.Time) (int, string) {
	e.t.Helper()
	return e.deliverRaw(payload, billingtest.Signature(payload, secret, signedAt))
}

func (e *billingEnv) deliverRaw(payload []byte, signature string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://api."+baseDomain+"/webhooks/stripe", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, body := e.client("api." + baseDomain).do(req)
	return resp.StatusCode, body
}

func (e *billingEnv) tenant(slug string) *tenancy.Tenant {
	e.t.Helper()
	t, err := e.server.Tenants.FindTenant(e.ctx, slug)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

func (e *billingEnv) eventCount() int {
	e.t.Helper()
	var n int
	if err := e.db.Admin.QueryRow(e.ctx, `SELECT count(*) FROM public.billing_stripe_events`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// The owner picks a plan, is sent to Stripe Checkout, comes back; the plan
// changes only when the signed subscription event arrives.
func TestCheckoutRoundTrip(t *testing.T) {
	e := newBillingEnv(t)
	e.sellPlan("pro", 100000)
	acme := e.mustTenant("acme")
	c := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)

	resp, body := c.get("/billing")
	if resp.StatusCode != 200 || textOf(t, body, "billing-plan") != "Free" || len(byTestID(doc(t, body), "choose-pro")) != 1 {
		t.Fatalf("billing page: %d\n%s", resp.StatusCode, body)
	}
	if len(byTestID(doc(t, body), "nav-billing")) != 1 {
		t.Error("no Billing link for the owner")
	}
	attempt := attrOf(t, body, "offer-pro", "attempt")
	form := url.Values{"plan": {"pro"}, "attempt": {attempt}, "success_url": {"https://evil.example/"}}
	resp, _ = c.post("/billing/checkout", form)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Fatalf("checkout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The same form sent again reuses the customer and the session key.
	c.get("/billing")
	if resp, _ = c.post("/billing/checkout", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("checkout again: %d", resp.StatusCode)
	}

	customers := e.stripe.to("/v1/customers")
	if len(customers) != 1 {
		t.Fatalf("%d customers created, want 1", len(customers))
	}
	cu := customers[0]
	if cu.IdempotencyKey != "nself-customer-"+acme.ID || cu.Form.Get("metadata[tenant_id]") != acme.ID {
		t.Errorf("customer call: %+v", cu)
	}
	sessions := e.stripe.to("/v1/checkout/sessions")
	if len(sessions) != 2 {
		t.Fatalf("%d checkout calls, want 2", len(sessions))
	}
	s := sessions[0]
	wantBase := "http://acme." + baseDomain + "/billing"
	if s.Form.Get("mode") != "subscription" || s.Form.Get("client_reference_id") != acme.ID ||
		s.Form.Get("line_items[0][price]") != "price_pro" ||
		s.Form.Get("success_url") != wantBase+"/success?session_id={CHECKOUT_SESSION_ID}" ||
		s.Form.Get("cancel_url") != wantBase+"/cancel" ||
		s.Form.Get("subscription_data[metadata][tenant_id]") != acme.ID {
		t.Errorf("checkout session call: %v", s.Form)
	}
	if s.IdempotencyKey == "" || s.IdempotencyKey != sessions[1].IdempotencyKey {
		t.Errorf("idempotency keys of the same form: %q, %q", s.IdempotencyKey, sessions[1].IdempotencyKey)
	}
	stored := e.tenant("acme")
	if stored.StripeCustomerID == "" || stored.Plan != "free" {
		t.Fatalf("after checkout: customer %q, plan %q", stored.StripeCustomerID, stored.Plan)
	}

	// Coming back changes nothing by itself.
	resp, body = c.get("/billing/success?session_id=cs_test_1&plan=enterprise")
	if resp.StatusCode != 200 || len(byTestID(doc(t, body), "checkout-success")) != 1 || textOf(t, body, "billing-plan") != "Free" {
		t.Errorf("success page: %d\n%s", resp.StatusCode, body)
	}
	if _, body = c.get("/billing/cancel"); len(byTestID(doc(t, body), "checkout-cancelled")) != 1 {
		t.Error("cancel page")
	}
	if e.tenant("acme").Plan != "free" {
		t.Fatal("the redirect changed the plan")
	}

	now := time.Now()
	completed := event("evt_cs_1", "checkout.session.completed", now, map[string]any{
		"id": "cs_test_1", "object": "checkout.session", "customer": stored.StripeCustomerID,
		"subscription": "sub_1", "client_reference_id": acme.ID, "mode": "subscription",
	})
	if code, body := e.deliver(completed, webhookSecret, now); code != 200 {
		t.Fatalf("checkout.session.completed: %d %s", code, body)
	}
	created := event("evt_sub_1", "customer.subscription.created", now, subscriptionObject("sub_1", stored.StripeCustomerID, acme.ID, "active", "price_pro"))
	if code, body := e.deliver(created, webhookSecret, now); code != 200 {
		t.Fatalf("customer.subscription.created: %d %s", code, body)
	}
	got := e.tenant("acme")
	if got.Plan != "pro" || got.SubscriptionStatus != "active" || got.StripeSubscriptionID != "sub_1" {
		t.Fatalf("after the event: plan %q status %q sub %q", got.Plan, got.SubscriptionStatus, got.StripeSubscriptionID)
	}
	// The page reads the tenant cache, which hears of the change by NOTIFY.
	waitFor(t, func() bool {
		_, body := c.get("/billing/status")
		return strings.Contains(body, ">Pro<") && strings.Contains(body, ">active<")
	})
	// A replay of the event is acknowledged and changes nothing.
	before := e.eventCount()
	if code, body := e.deliver(created, webhookSecret, time.Now()); code != 200 || !strings.Contains(body, "duplicate") {
		t.Errorf("replay: %d %s", code, body)
	}
	if e.eventCount() != before {
		t.Error("a replay was stored again")
	}

	// With a live subscription, another Checkout would bill twice: plans
	// change through the portal instead.
	e.sellPlan("starter", 50000)
	_, body = c.get("/billing")
	if len(byTestID(doc(t, body), "choose-starter")) != 0 || len(byTestID(doc(t, body), "change-in-portal")) != 1 {
		t.Error("plans offered for Checkout beside a live subscription")
	}
	calls := len(e.stripe.to("/v1/checkout/sessions"))
	resp, body = c.post("/billing/checkout", url.Values{"plan": {"starter"}, "attempt": {attempt}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "billing-error"), "already has a subscription") {
		t.Errorf("second checkout: %d", resp.StatusCode)
	}
	if len(e.stripe.to("/v1/checkout/sessions")) != calls {
		t.Error("a second Checkout session was opened")
	}

	// The Billing Portal opens for the customer. stripe-mock's portal is
	// on a host of its own, which the billing page's form-action does not
	// hold: a page that moves on by itself takes the browser there.
	resp, body = c.post("/billing/portal", url.Values{"attempt": {attempt}})
	link := byTestID(doc(t, body), "to-stripe-link")
	if resp.StatusCode != http.StatusOK || len(link) != 1 || !strings.HasPrefix(attr(link[0], "href"), "https://") ||
		!strings.Contains(body, `<meta http-equiv="refresh" content="0; url=`+html.EscapeString(attr(link[0], "href"))+`"`) {
		t.Fatalf("portal: %d\n%s", resp.StatusCode, body)
	}
	portal := e.stripe.to("/v1/billing_portal/sessions")
	if len(portal) != 1 || portal[0].Form.Get("customer") != stored.StripeCustomerID ||
		portal[0].Form.Get("return_url") != wantBase || portal[0].IdempotencyKey == "" {
		t.Errorf("portal call: %+v", portal)
	}
}

// attrOf reads the value of the named hidden input inside the element
// with a data-testid.
func attrOf(t *testing.T, body, testID, input string) string {
	t.Helper()
	for _, n := range byTestID(doc(t, body), testID) {
		var find func(n *html.Node) string
		find = func(n *html.Node) string {
			if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == input {
				return attr(n, "value")
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if v := find(c); v != "" {
					return v
				}
			}
			return ""
		}
		if v := find(n); v != "" {
			return v
		}
	}
	t.Fatalf("no input %s in %s", input, testID)
	return ""
}

func TestWebhookSignatureRefused(t *testing.T) {
	e := newBillingEnv(t)
	e.sellPlan("pro", 100000)
	acme := e.mustTenant("acme")
	payload := event("evt_bad_1", "customer.subscription.created", time.Now(), subscriptionObject("sub_x", "cus_x", acme.ID, "active", "price_pro"))
	signature := billingtest.Signature(payload, webhookSecret, time.Now())

	cases := map[string]func() (int, string){
		"missing":   func() (int, string) { return e.deliverRaw(payload, "") },
		"garbage":   func() (int, string) { return e.deliverRaw(payload, "t=1,v1=abc") },
		"wrong key": func() (int, string) { return e.deliver(payload, "whsec_other", time.Now()) },
		"stale":     func() (int, string) { return e.deliver(payload, webhookSecret, time.Now().Add(-10*time.Minute)) },
		"tampered": func() (int, string) {
			return e.deliverRaw(bytes.Replace(payload, []byte("sub_x"), []byte("sub_y"), 1), signature)
		},
		"api version": func() (int, string) {
			p := bytes.Replace(payload, []byte("2023-10-16"), []byte("2020-08-27"), 1)
			return e.deliver(p, webhookSecret, time.Now())
		},
	}
	for name, send := range cases {
		if code, body := send(); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if n := e.eventCount(); n != 0 {
		t.Errorf("%d events stored from refused deliveries", n)
	}
	if got := e.tenant("acme"); got.Plan != "free" || got.SubscriptionStatus != "" {
		t.Errorf("a refused delivery changed the tenant: %+v", got)
	}
	// The good signature goes through.
	if code, body := e.deliverRaw(payload, signature); code != http.StatusOK {
		t.Errorf("good signature: %d %s", code, body)
	}
}

func TestWebhookOrderingFailuresAndPayments(t *testing.T) {
	e := newBillingEnv(t)
	e.sellPlan("pro", 100000)
	e.sellPlan("starter", 50000)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	cus := "cus_acme"
	if _, err := e.db.Admin.Exec(e.ctx, `UPDATE tenants.tenants SET stripe_customer_id = $2 WHERE id = $1`, acme.ID, cus); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	send := func(id, typ string, at time.Time, obj map[string]any) (int, string) {
		t.Helper()
		return e.deliver(event(id, typ, at, obj), webhookSecret, time.Now())
	}

	// Newer state first, then an older event: the older is ignored.
	if code, _ := send("evt_2", "customer.subscription.updated", t0.Add(2*time.Minute), subscriptionObject("sub_1", cus, acme.ID, "active", "price_pro")); code != 200 {
		t.Fatal("updated")
	}
	if code, _ := send("evt_1", "customer.subscription.created", t0.Add(time.Minute), subscriptionObject("sub_1", cus, acme.ID, "trialing", "price_starter")); code != 200 {
		t.Fatal("created")
	}
	if got := e.tenant("acme"); got.Plan != "pro" || got.SubscriptionStatus != "active" {
		t.Fatalf("an older event rolled back: %s %s", got.Plan, got.SubscriptionStatus)
	}

	// Events of the same second apply in the subscription's order, not
	// the order they arrive in.
	same := t0.Add(150 * time.Second)
	if code, _ := send("evt_2b", "customer.subscription.updated", same, subscriptionObject("sub_1", cus, acme.ID, "past_due", "price_pro")); code != 200 {
		t.Fatal("same-second update")
	}
	if code, body := send("evt_2c", "customer.subscription.updated", same, subscriptionObject("sub_1", cus, acme.ID, "active", "price_pro")); code != 200 || !strings.Contains(body, "processed") {
		t.Fatalf("same-second earlier state: %d %s", code, body)
	}
	if got := e.tenant("acme"); got.SubscriptionStatus != "past_due" {
		t.Fatalf("a same-second earlier state won: %s", got.SubscriptionStatus)
	}
	if code, _ := send("evt_2d", "customer.subscription.updated", same.Add(time.Second), subscriptionObject("sub_1", cus, acme.ID, "active", "price_pro")); code != 200 {
		t.Fatal("recovery")
	}
	// A second subscription beside the live one changes nothing.
	if code, _ := send("evt_2e", "customer.subscription.created", same.Add(2*time.Second), subscriptionObject("sub_2", cus, acme.ID, "active", "price_starter")); code != 200 {
		t.Fatal("second subscription")
	}
	if got := e.tenant("acme"); got.Plan != "pro" || got.StripeSubscriptionID != "sub_1" || got.SubscriptionStatus != "active" {
		t.Fatalf("another subscription took over: %s %s %s", got.Plan, got.StripeSubscriptionID, got.SubscriptionStatus)
	}
	// An event of a customer no tenant has is acknowledged, not retried.
	if code, body := send("evt_2f", "customer.subscription.updated", same, subscriptionObject("sub_9", "cus_nobody", "", "active", "price_pro")); code != 200 || !strings.Contains(body, "ignored") {
		t.Errorf("unknown customer: %d %s", code, body)
	}

	// A price no plan is sold at fails with 500, so Stripe retries; fixed,
	// the retry goes through.
	unknown := event("evt_3", "customer.subscription.updated", t0.Add(3*time.Minute), subscriptionObject("sub_1", cus, acme.ID, "active", "price_new"))
	if code, _ := e.deliver(unknown, webhookSecret, time.Now()); code != http.StatusInternalServerError {
		t.Fatalf("unknown price: %d", code)
	}
	if got := e.tenant("acme"); got.Plan != "pro" {
		t.Fatalf("a failed event changed the plan to %s", got.Plan)
	}
	var status, result string
	e.db.Admin.QueryRow(e.ctx, `SELECT status, result FROM public.billing_stripe_events WHERE id = 'evt_3'`).Scan(&status, &result)
	if status != "failed" || !strings.Contains(result, "price_new") {
		t.Errorf("failed event recorded as %q: %q", status, result)
	}
	e.sellPlan("business", 200000)
	if _, err := postgres.NewPlanService(e.db).UpdatePlan(e.ctx, tenancy.PlanInput{Name: "business", StripePriceID: ref("price_new")}); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.deliver(unknown, webhookSecret, time.Now()); code != 200 {
		t.Fatalf("retry after the fix: %d", code)
	}
	if got := e.tenant("acme"); got.Plan != "business" {
		t.Fatalf("after the retry: plan %s", got.Plan)
	}

	// A failed payment: past due, recorded, and the owner is told.
	inv := map[string]any{"id": "in_1", "object": "invoice", "customer": cus, "subscription": "sub_1",
		"amount_due": 9900, "amount_paid": 0, "currency": "usd", "hosted_invoice_url": "https://invoice.stripe.com/i/in_1"}
	if code, _ := send("evt_4", "invoice.payment_failed", t0.Add(4*time.Minute), inv); code != 200 {
		t.Fatal("payment_failed")
	}
	if got := e.tenant("acme"); got.SubscriptionStatus != "past_due" || got.Plan != "business" {
		t.Errorf("after a failed payment: %s %s", got.Plan, got.SubscriptionStatus)
	}
	if m := waitForMail(t, e.testEnv, "owner@acme.test", "payment_failed"); !strings.Contains(m.Text, "http://acme."+baseDomain+"/billing") {
		t.Errorf("payment mail links to %q", m.Text)
	}
	inv["amount_paid"] = 9900
	if code, _ := send("evt_5", "invoice.paid", t0.Add(5*time.Minute), inv); code != 200 {
		t.Fatal("paid")
	}
	c := e.client("acme." + baseDomain)
	c.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	_, body := c.get("/billing")
	if got := rowTexts(t, body, "payment"); len(got) != 1 || !strings.Contains(got[0], "$99.00") || !strings.Contains(got[0], "paid") {
		t.Errorf("payments: %q", got)
	}
	if len(byTestID(doc(t, body), "past-due")) != 1 {
		t.Error("no past-due notice")
	}

	// Other events are acknowledged and ignored.
	if code, body := send("evt_6", "customer.created", t0, map[string]any{"id": cus, "object": "customer"}); code != 200 || !strings.Contains(body, "ignored") {
		t.Errorf("other event: %d %s", code, body)
	}

	// The subscription ends: back to the default plan, tenant suspended.
	if code, _ := send("evt_7", "customer.subscription.deleted", t0.Add(6*time.Minute), subscriptionObject("sub_1", cus, acme.ID, "canceled", "price_new")); code != 200 {
		t.Fatal("deleted")
	}
	if got := e.tenant("acme"); got.Plan != tenancy.DefaultPlan || got.SubscriptionStatus != "canceled" || got.Status != tenancy.StatusSuspended {
		t.Errorf("after deletion: %s %s %s", got.Plan, got.SubscriptionStatus, got.Status)
	}
	// An update older than the deletion does not bring it back.
	if code, _ := send("evt_8", "customer.subscription.updated", t0.Add(5*time.Minute), subscriptionObject("sub_1", cus, acme.ID, "active", "price_pro")); code != 200 {
		t.Fatal("late update")
	}
	if got := e.tenant("acme"); got.Plan != tenancy.DefaultPlan {
		t.Errorf("a late update revived the subscription: %s", got.Plan)
	}
}

// waitForMail runs the outbox's sender until a mail of template reaches
// an address.
func waitForMail(t *testing.T, e *testEnv, to, template string) tenancy.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e.sendMail()
		for _, m := range e.mail.messages(template) {
			if m.To == to {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s mail to %s", template, to)
	return tenancy.Message{}
}

func TestBillingOnlyForOwners(t *testing.T) {
	e := newBillingEnv(t)
	acme := e.mustTenant("acme")
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)
	if resp, _ := admin.get("/billing"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin: %d", resp.StatusCode)
	}
	if _, body := admin.get("/dashboard"); len(byTestID(doc(t, body), "nav-billing")) != 0 {
		t.Error("Billing link shown to an admin")
	}
	if resp, _ := admin.post("/billing/checkout", url.Values{"plan": {"pro"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin checkout: %d", resp.StatusCode)
	}
	anon := e.client("acme." + baseDomain)
	if resp, _ := anon.get("/billing"); resp.StatusCode == http.StatusOK {
		t.Errorf("anonymous: %d", resp.StatusCode)
	}
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	owner.get("/billing")
	// Without the CSRF token, nothing goes to Stripe.
	if resp, _ := owner.post("/billing/checkout", url.Values{"plan": {"pro"}, "csrf_token": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged CSRF: %d", resp.StatusCode)
	}
	if n := len(e.stripe.to("/v1/customers")); n != 0 {
		t.Errorf("%d Stripe calls from refused requests", n)
	}

	// Billing off: no pages, no link, no webhook endpoint.
	off := newEnv(t)
	beta := off.mustTenant("beta")
	c := off.signedIn(beta, "owner@beta.test", tenancy.RoleOwner)
	if resp, _ := c.get("/billing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("billing off: %d", resp.StatusCode)
	}
	if _, body := c.get("/dashboard"); len(byTestID(doc(t, body), "nav-billing")) != 0 {
		t.Error("Billing link with billing off")
	}
	req, _ := http.NewRequest(http.MethodPost, "http://api."+baseDomain+"/webhooks/stripe", strings.NewReader("{}"))
	if resp, _ := off.client("api." + baseDomain).do(req); resp.StatusCode != http.StatusNotFound {
		t.Errorf("webhook with billing off: %d", resp.StatusCode)
	}
}

func TestAPIQuota(t *testing.T) {
	e := newBillingEnv(t)
	e.sellPlan("tiny", 40)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	if _, err := e.server.BillingStore.SetTenantPlan(e.ctx, acme.Slug, "tiny"); err != nil {
		t.Fatal(err)
	}
	_, key, err := e.server.APIKeys.CreateAPIKey(e.ctx, acme.ID, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	call := func() (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://api."+baseDomain+"/v1/tenant", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(withAddr(req, e.srv.Listener.Addr().String()))
		if err != nil {
			t.Error(err)
			return nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// 100 requests at once against a limit of 40: exactly 40 pass.
	var mu sync.Mutex
	codes := map[int]int{}
	var refusal string
	var retryAfter string
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				resp, body := call()
				if resp == nil {
					return
				}
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests {
					refusal, retryAfter = body, resp.Header.Get("Retry-After")
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if codes[200] != 40 || codes[429] != 60 {
		t.Fatalf("codes %v, want 40 × 200 and 60 × 429", codes)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(refusal), &v); err != nil {
		t.Fatal(err)
	}
	reset := tenancy.PeriodEnd(time.Now()).Format(time.RFC3339)
	if v["error"] != "API quota exceeded" || v["limit"] != 40.0 || v["current"] != 40.0 || v["resetDate"] != reset {
		t.Errorf("429 body: %s", refusal)
	}
	if retryAfter == "" || retryAfter == "0" {
		t.Errorf("Retry-After %q", retryAfter)
	}
	// The owner heard of 80% and 100%, once each.
	waitForMail(t, e.testEnv, "owner@acme.test", "quota_warning")
	deadline := time.Now().Add(5 * time.Second)
	for len(e.mail.messages("quota_warning")) < 2 && time.Now().Before(deadline) {
		e.sendMail()
		time.Sleep(20 * time.Millisecond)
	}
	e.sendMail()
	if n := len(e.mail.messages("quota_warning")); n != 2 {
		t.Errorf("%d quota emails, want 2 (80%% and 100%%)", n)
	}

	// A larger plan lets requests through again at once.
	if _, err := e.server.BillingStore.SetTenantPlan(e.ctx, acme.Slug, "enterprise"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		tt, err := e.server.Resolver.Lookup(e.ctx, acme.ID)
		return err == nil && tt.Plan == "enterprise"
	})
	for range 20 {
		if resp, body := call(); resp.StatusCode != 200 || resp.Header.Get("X-Quota-Limit") != "" {
			t.Fatalf("unlimited plan: %d %s", resp.StatusCode, body)
		}
	}
	if err := e.meter.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	u, err := e.server.BillingStore.TenantUsage(e.ctx, acme.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u.APIRequests != 60 {
		t.Errorf("counted %d requests, want 60", u.APIRequests)
	}
}

// withAddr sends a request for any host to the test server.
func withAddr(req *http.Request, addr string) *http.Request {
	req.URL.Host = addr
	req.Host = "api." + baseDomain
	return req
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// One tenant's billing never reaches another's: not its payments on the
// page, not an event naming the other tenant with its customer, not its
// owner's session on the other's host.
func TestBillingAcrossTenants(t *testing.T) {
	e := newBillingEnv(t)
	e.sellPlan("pro", 100000)
	acme, beta := e.mustTenant("acme"), e.mustTenant("beta")
	for id, cus := range map[string]string{acme.ID: "cus_acme", beta.ID: "cus_beta"} {
		if _, err := e.db.Admin.Exec(e.ctx, `UPDATE tenants.tenants SET stripe_customer_id = $2 WHERE id = $1`, id, cus); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	paid := map[string]any{"id": "in_acme", "object": "invoice", "customer": "cus_acme", "amount_paid": 9900, "currency": "usd"}
	if code, _ := e.deliver(event("evt_x1", "invoice.paid", now, paid), webhookSecret, now); code != 200 {
		t.Fatal("invoice.paid")
	}
	betaOwner := e.signedIn(beta, "owner@beta.test", tenancy.RoleOwner)
	if _, body := betaOwner.get("/billing"); len(byTestID(doc(t, body), "payment")) != 0 || len(byTestID(doc(t, body), "no-payments")) != 1 {
		t.Error("beta's billing page shows acme's payment")
	}

	// acme's customer with beta's id in the metadata: refused, nothing moves.
	mixed := event("evt_x2", "customer.subscription.created", now, subscriptionObject("sub_x", "cus_acme", beta.ID, "active", "price_pro"))
	if code, _ := e.deliver(mixed, webhookSecret, now); code != http.StatusInternalServerError {
		t.Errorf("an event naming another tenant than its customer's: %d", code)
	}
	for _, slug := range []string{"acme", "beta"} {
		if got := e.tenant(slug); got.Plan != "free" || got.SubscriptionStatus != "" {
			t.Errorf("%s changed: %s %s", slug, got.Plan, got.SubscriptionStatus)
		}
	}

	// beta's owner, with beta's cookies, on acme's host: not signed in there.
	stray := e.client("acme." + baseDomain)
	stray.http.Jar = betaOwner.http.Jar
	for _, c := range betaOwner.http.Jar.Cookies(&url.URL{Scheme: "http", Host: "beta." + baseDomain}) {
		stray.http.Jar.SetCookies(&url.URL{Scheme: "http", Host: "acme." + baseDomain}, []*http.Cookie{c})
	}
	if resp, _ := stray.get("/billing"); resp.StatusCode == http.StatusOK {
		t.Error("beta's session opened acme's billing page")
	}
	if resp, _ := stray.post("/billing/portal", url.Values{"attempt": {"0123456789abcdef01234567"}}); resp.StatusCode == http.StatusSeeOther {
		t.Error("beta's session opened acme's billing portal")
	}
	if n := len(e.stripe.to("/v1/billing_portal/sessions")); n != 0 {
		t.Errorf("%d portal sessions opened", n)
	}
}

// A tenant the platform put on a paid plan, with no subscription, sees
// that plan as its current one, not offered to it again; the offers say
// their limits in words, unlimited ones too.
func TestBillingOffersCurrentPlan(t *testing.T) {
	e := newBillingEnv(t)
	e.sellPlan("pro", 100000)
	e.sellPlan("enterprise", tenancy.Unlimited)
	c, err := e.server.Tenants.CreateTenant(e.ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme", Plan: "pro"})
	if err != nil {
		t.Fatal(err)
	}
	client := e.signedIn(c.Tenant, "owner@acme.test", tenancy.RoleOwner)
	resp, body := client.get("/billing")
	if resp.StatusCode != http.StatusOK || textOf(t, body, "billing-plan") != "Pro" {
		t.Fatalf("billing page: %d\n%s", resp.StatusCode, body)
	}
	page := doc(t, body)
	pro := byTestID(page, "offer-pro")
	if len(pro) != 1 || len(byTestID(pro[0], "current-plan")) != 1 || len(byTestID(page, "choose-pro")) != 0 {
		t.Errorf("the current plan is offered:\n%s", body)
	}
	if len(byTestID(page, "choose-enterprise")) != 1 {
		t.Errorf("enterprise is not offered:\n%s", body)
	}
	ent := byTestID(page, "offer-enterprise")
	if len(ent) != 1 {
		t.Fatalf("no enterprise offer")
	}
	if got := strings.Join(strings.Fields(text(ent[0])), " "); !strings.Contains(got, "Unlimited members, unlimited storage, unlimited API requests") {
		t.Errorf("enterprise's offer reads %q", got)
	}
}
