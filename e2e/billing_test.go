package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/billing/billingtest"
)

// The owner opens billing from the menu, starts a Checkout for a plan,
// comes back to the success page, which says the plan is unchanged and
// polls; when Stripe's signed event arrives, the page shows the new plan
// without a reload.
func TestOwnerUpgradesThroughCheckout(t *testing.T) {
	t.Parallel()
	const secret = "whsec_e2e_secret"
	s := newSite(t)
	s.withBilling(secret)
	id := s.createAcme(ownerPassword)
	// stripe-mock asks $20.00/month for every price: the plan is sold at it.
	s.nself("", "plan", "update", "pro", "--stripe-price", "price_pro", "--price", "20")
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)

	b.do("open billing from the menu",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-billing]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=usage-api]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=choose-pro]`)),
	)
	if got := b.text(`[data-testid=billing-plan]`); got != "Free" {
		t.Fatalf("plan shown: %q", got)
	}
	// The person clicks the plan's button: the browser must leave for
	// Stripe's Checkout page (which does not load here, having no network),
	// and no Content-Security-Policy may stop it on the way.
	nav := b.watchNavigation()
	b.do("choose pro", chromedp.Click(chromedp.CSS(`[data-testid=choose-pro]`)))
	target := nav.waitFor(t, "https://checkout.stripe.com/")
	if !strings.Contains(target, "cs_test_") {
		t.Errorf("navigated to %q, want a Checkout session", target)
	}
	nav.noViolations(t)
	customer := customerOf(t, s, id)
	if customer == "" {
		t.Fatal("no Stripe customer recorded")
	}

	b.do("come back from Checkout",
		chromedp.Navigate(s.url("acme", "/billing/success?session_id=cs_test_1")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=checkout-success]`)),
	)
	if got := b.text(`[data-testid=billing-plan]`); got != "Free" {
		t.Fatalf("the redirect changed the plan to %q", got)
	}

	if code := s.deliverSubscriptionEvent(secret, "evt_e2e_1", "customer.subscription.created", "sub_e2e", customer, id, "price_pro"); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	// The panel polls every 3 s; no reload.
	run(b, "the page shows the new plan by itself", chromedp.Poll[bool](
		`document.querySelector('[data-testid=billing-plan]').textContent === 'Pro'`,
		chromedp.WithPollingTimeout(stepTimeout)))
	if got := b.text(`[data-testid=billing-subscription]`); got != "active" {
		t.Errorf("subscription shown: %q", got)
	}

	// Manage subscription leaves for Stripe's Billing Portal, on a host
	// the page's form-action does not name (stripe-mock's), by a click.
	b.do("open billing from the menu again",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-billing]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=manage-billing]`)),
	)
	portal := b.watchNavigation()
	b.do("manage the subscription", chromedp.Click(chromedp.CSS(`[data-testid=manage-billing]`)))
	if target := portal.waitFor(t, "https://"); !strings.Contains(target, "portal") {
		t.Errorf("navigated to %q, want the Billing Portal", target)
	}
	portal.noViolations(t)
}

func customerOf(t *testing.T, s *site, tenantID string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var id string
	if err := conn.QueryRow(ctx, `SELECT coalesce(stripe_customer_id, '') FROM tenants.tenants WHERE id = $1`, tenantID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// A Stripe event that failed (its price sells no plan) shows in the console
// as failed; once the plan is on sale at that price, the administrator
// replays it from the event's page and the tenant moves to the plan.
func TestAdminReplaysAFailedStripeEvent(t *testing.T) {
	t.Parallel()
	const secret = "whsec_e2e_replay"
	s := newSite(t)
	s.withBilling(secret)
	id := s.createAcme(ownerPassword)
	const adminPassword = "platform admin password"
	s.nself(adminPassword+"\n", "admin", "create", "admin@platform.test", "--password-stdin")
	s.serve()

	if code := s.deliverSubscriptionEvent(secret, "evt_e2e_replay", "customer.subscription.updated", "sub_replay", "cus_replay", id, "price_gold"); code != http.StatusInternalServerError {
		t.Fatalf("webhook for a price no plan is sold at: %d, want 500", code)
	}

	b := newBrowser(t)
	b.signIn(s.url("admin", "/"), "admin-sign-in", "admin@platform.test", adminPassword, `[data-testid=tenant-list]`)
	b.do("open billing and the failed event",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-billing]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=event-table]`)),
		chromedp.Click(chromedp.CSS(`[data-event=evt_e2e_replay] [data-testid=event-id] a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=event-detail]`)),
	)
	if got := b.text(`[data-testid=event-status]`); got != "failed" {
		t.Fatalf("event status %q, want failed", got)
	}
	s.nself("", "plan", "create", "gold", "--price", "20", "--stripe-price", "price_gold")
	b.do("replay it",
		chromedp.Click(chromedp.CSS(`[data-testid=replay-event]`)),
		// The page comes back with the outcome on top.
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)),
	)
	if got := b.text(`[data-testid=event-status]`); got != "processed" {
		t.Errorf("after the replay the event is %q (%s)", got, b.text(`[data-testid=flash]`))
	}
	if out := s.nself("", "tenant", "show", "acme"); !strings.Contains(out, "Plan: gold") {
		t.Errorf("after the replay:\n%s", out)
	}
}

// deliverSubscriptionEvent signs a subscription event with secret, as
// Stripe does, posts it to the server's webhook and returns the status.
func (s *site) deliverSubscriptionEvent(secret, id, typ, sub, customer, tenantID, price string) int {
	s.t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": time.Now().Unix(), "api_version": "2023-10-16",
		"data": map[string]any{"object": map[string]any{
			"id": sub, "object": "subscription", "customer": customer, "status": "active",
			"metadata": map[string]any{"tenant_id": tenantID},
			"items": map[string]any{"object": "list", "data": []any{
				map[string]any{"id": "si_1", "object": "subscription_item", "price": map[string]any{"id": price, "object": "price"}},
			}},
		}},
	})
	signature := billingtest.Signature(payload, secret, time.Time{})
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+s.port+"/webhooks/stripe", bytes.NewReader(payload))
	req.Host = "api.localhost"
	req.Header.Set("Stripe-Signature", signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// withBilling turns billing on, against stripe-mock, with webhooks signed
// with secret.
func (s *site) withBilling(secret string) {
	s.env = append(s.env, "BILLING_ENABLED=true", "STRIPE_SECRET_KEY=sk_test_123", "STRIPE_PUBLISHABLE_KEY=pk_test_123",
		"STRIPE_WEBHOOK_SECRET="+secret, "STRIPE_API_BASE="+os.Getenv("STRIPE_API_BASE"))
}
