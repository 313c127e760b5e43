package web_test

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/billing"
	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// planForm is the pro plan's edit form with a price and a Stripe price.
func planForm(price, stripePrice string) url.Values {
	return url.Values{"max_users": {"50"}, "max_storage_gb": {"100"}, "max_api_requests": {"100000"},
		"max_compute_hours": {"-1"}, "price": {price}, "stripe_price": {stripePrice}}
}

// A plan's price and its Stripe price never silently disagree: changing
// the price of a plan sold through Stripe makes a new Stripe price at that
// amount (stripe-mock answers every price as $20.00/month and echoes what
// is created), a Stripe price typed in must ask the plan's price, and the
// plan list points out a price that differs in Stripe.
func TestAdminPlanPriceKeepsStripeInStep(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withStripe(t, billing.Config{APIBase: os.Getenv("STRIPE_API_BASE")}))
	c := signedInAdmin(t, env)
	c.get("/plans/pro/edit")

	// The Stripe price asks what the plan says: saved as typed.
	resp, body := c.post("/plans/pro", planForm("20.00", "price_pro"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save at Stripe's amount: %d\n%s", resp.StatusCode, textOf(t, body, "error-stripe_price"))
	}
	if p, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "pro"); p.StripePriceID != "price_pro" || p.PriceMonthlyCent != 2000 {
		t.Fatalf("pro after a matching save: %+v", p)
	}

	// A new price: a new Stripe price at that amount takes its place.
	resp, body = c.post("/plans/pro", planForm("29.00", "price_pro"))
	page := follow(t, c, resp, body)
	p, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "pro")
	if p.PriceMonthlyCent != 2900 || p.StripePriceID == "price_pro" || !strings.HasPrefix(p.StripePriceID, "price_") {
		t.Fatalf("pro after a new price: %+v", p)
	}
	if flash := textOf(t, page, "flash"); !strings.Contains(flash, p.StripePriceID) || !strings.Contains(flash, "$29.00/month") {
		t.Errorf("the flash does not name the new Stripe price: %q", flash)
	}

	// Another Stripe price typed in that asks another amount is refused.
	resp, body = c.post("/plans/pro", planForm("29.00", "price_other"))
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a Stripe price at another amount: %d", resp.StatusCode)
	}
	if got := textOf(t, body, "error-stripe_price"); !strings.Contains(got, "$20.00/month") || !strings.Contains(got, "$29.00/month") {
		t.Errorf("stripe price error %q", got)
	}
	if n := byTestID(doc(t, body), "stripe-price-help"); len(n) != 1 || !strings.Contains(text(n[0]), "makes a new Stripe price") {
		t.Error("the form does not say what a price change does in Stripe")
	}
	if q, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "pro"); q.StripePriceID != p.StripePriceID {
		t.Errorf("a refused edit changed the Stripe price: %+v", q)
	}

	// The list reads each Stripe price back: stripe-mock says $20.00.
	_, body = c.get("/plans")
	row := rowWith(t, body, "plan-row", "data-plan", "pro")
	if got := cell(row, "plan-stripe-mismatch"); !strings.Contains(got, "Stripe asks $20.00/month") {
		t.Errorf("pro's mismatch note %q", got)
	}
}

// A Stripe that never answers leaves the plan as it was, and says so on
// the form within the billing timeout.
func TestAdminPlanPriceWithStripeDown(t *testing.T) {
	t.Parallel()
	hole := faulttest.NewBlackhole(t)
	const timeout = 2 * time.Second
	env := newEnv(t, withStripe(t, billing.Config{APIBase: hole.URL(), Timeout: timeout}))
	id := "price_pro"
	if _, err := env.server.PlanAdmin.UpdatePlan(env.ctx, tenancy.PlanInput{Name: "pro", StripePriceID: &id}); err != nil {
		t.Fatal(err)
	}
	c := signedInAdmin(t, env)
	c.get("/plans/pro/edit")
	start := time.Now()
	resp, body := c.post("/plans/pro", planForm("149.00", "price_pro"))
	if took := time.Since(start); took > timeout+3*time.Second {
		t.Errorf("the form took %s to answer", took)
	}
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("save with Stripe down: %d", resp.StatusCode)
	}
	if got := textOf(t, body, "error-price"); !strings.Contains(got, "could not be reached") || !strings.Contains(got, "nothing was saved") {
		t.Errorf("price error %q", got)
	}
	if p, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "pro"); p.PriceMonthlyCent != 9900 || p.StripePriceID != "price_pro" {
		t.Errorf("pro changed while Stripe was down: %+v", p)
	}
}
