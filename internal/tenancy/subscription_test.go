package tenancy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

var (
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	before = t0.Add(-time.Second)
	after  = t0.Add(time.Second)
)

// onPro is a tenant whose subscription sub_1 gave it pro at t0.
func onPro(status string) tenancy.HeldSubscription {
	return tenancy.HeldSubscription{Plan: "pro", TenantStatus: tenancy.StatusActive, SubscriptionID: "sub_1", Status: status, AppliedAt: t0}
}

// fresh is a tenant on the free plan that never had a subscription.
var fresh = tenancy.HeldSubscription{Plan: tenancy.DefaultPlan, TenantStatus: tenancy.StatusActive}

func state(id, status string) tenancy.SubscriptionState {
	return tenancy.SubscriptionState{CustomerID: "cus_1", SubscriptionID: id, Status: status, PriceID: "price_pro"}
}

func deleted(id, status string) tenancy.SubscriptionState {
	s := state(id, status)
	s.Deleted = true
	return s
}

func TestDecideSubscription(t *testing.T) {
	for _, c := range []struct {
		name      string
		held      tenancy.HeldSubscription
		sub       tenancy.SubscriptionState
		at        time.Time
		pricePlan string
		// want: "" for nothing changed, else plan/status/tenant status.
		want   string
		result string
	}{
		// What a status does to the plan.
		{"active gives the plan sold at the price", fresh, state("sub_1", "active"), t0, "pro", "pro/active/active", "subscription sub_1 active: plan free → pro"},
		{"trialing gives it too", fresh, state("sub_1", "trialing"), t0, "pro", "pro/trialing/active", ""},
		{"past due keeps it", onPro("active"), state("sub_1", "past_due"), after, "pro", "pro/past_due/active", ""},
		{"past due on a new price moves with it", onPro("active"), state("sub_1", "past_due"), after, "team", "team/past_due/active", ""},
		{"unpaid falls back", onPro("past_due"), state("sub_1", "unpaid"), after, "", "free/unpaid/active", "plan pro → free"},
		{"canceled falls back", onPro("active"), state("sub_1", "canceled"), after, "", "free/canceled/active", ""},
		{"incomplete falls back", fresh, state("sub_1", "incomplete"), t0, "", "free/incomplete/active", ""},
		{"incomplete_expired falls back", fresh, state("sub_1", "incomplete_expired"), t0, "", "free/incomplete_expired/active", ""},
		{"paused falls back", onPro("active"), state("sub_1", "paused"), after, "", "free/paused/active", ""},
		{"deletion cancels, falls back and suspends", onPro("active"), deleted("sub_1", "active"), after, "", "free/canceled/suspended", "subscription sub_1 canceled: plan pro → free; tenant suspended"},
		{"deletion leaves a suspended tenant suspended", tenancy.HeldSubscription{Plan: "pro", TenantStatus: tenancy.StatusSuspended, SubscriptionID: "sub_1", Status: "active", AppliedAt: t0},
			deleted("sub_1", "active"), after, "", "free/canceled/suspended", ""},
		{"deletion of a subscription never applied", fresh, deleted("sub_1", "canceled"), t0, "", "free/canceled/suspended", ""},

		// Event ordering.
		{"an older state never rolls back a newer one", onPro("canceled"), state("sub_1", "active"), before, "pro", "", "older than the state applied (2026-03-01T12:00:00Z): nothing changed"},
		{"an older deletion neither", onPro("active"), deleted("sub_1", "active"), before, "", "", "older than the state applied"},
		{"a newer state applies", onPro("active"), state("sub_1", "past_due"), after, "pro", "pro/past_due/active", ""},
		{"same second, later in life: applies", onPro("trialing"), state("sub_1", "active"), t0, "pro", "pro/active/active", ""},
		{"same second, same state: applies again", onPro("active"), state("sub_1", "active"), t0, "pro", "pro/active/active", ""},
		{"same second, earlier in life: nothing", onPro("active"), state("sub_1", "trialing"), t0, "pro", "", "trialing, of the same second as the state applied (active), comes before it: nothing changed"},
		{"same second, created after the deletion: nothing", onPro("canceled"), state("sub_1", "active"), t0, "pro", "", "active, of the same second as the state applied (canceled), comes before it"},
		{"same second, deletion after an update: applies", onPro("past_due"), deleted("sub_1", "past_due"), t0, "", "free/canceled/suspended", ""},
		{"same second, past due after active: applies", onPro("active"), state("sub_1", "past_due"), t0, "pro", "pro/past_due/active", ""},
		{"same second, active after past due: nothing", onPro("past_due"), state("sub_1", "active"), t0, "pro", "", "comes before it"},

		// One live subscription gives the plan.
		{"a second subscription beside a live one", onPro("active"), state("sub_2", "active"), after, "team", "", "subscription sub_2 is not the tenant's current one (sub_1, active): nothing changed"},
		{"beside one past due", onPro("past_due"), state("sub_2", "active"), after, "team", "", "not the tenant's current one"},
		{"beside one unpaid", onPro("unpaid"), state("sub_2", "active"), after, "team", "", "not the tenant's current one"},
		{"beside one paused", onPro("paused"), state("sub_2", "active"), after, "team", "", "not the tenant's current one"},
		{"a replaced subscription ending", onPro("active"), deleted("sub_2", "active"), after, "", "", "not the tenant's current one"},
		{"another's deletion even when the current one is over", onPro("canceled"), deleted("sub_2", "active"), after, "", "", "not the tenant's current one"},
		{"a new one after the current one is canceled", onPro("canceled"), state("sub_2", "active"), after, "team", "team/active/active", "subscription sub_2 active: plan pro → team"},
		{"a new one stamped before the old one's end still replaces it", onPro("canceled"), state("sub_2", "trialing"), before, "team", "team/trialing/active", ""},
		{"after an incomplete one expired", onPro("incomplete_expired"), state("sub_2", "active"), before, "team", "team/active/active", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := tenancy.DecideSubscription(c.held, c.sub, c.at, c.pricePlan)
			if err != nil {
				t.Fatal(err)
			}
			desc := ""
			if got.Apply {
				desc = got.Plan + "/" + got.Status + "/" + string(got.TenantStatus)
			}
			if desc != c.want {
				t.Errorf("got %q (%s), want %q", desc, got.Result, c.want)
			}
			if !strings.Contains(got.Result, c.result) || got.Result == "" {
				t.Errorf("result %q, want it to hold %q", got.Result, c.result)
			}
		})
	}
}

// A state that gives the plan sold at a price no plan is sold at is an
// error, so that Stripe delivers it again once the plan is set; a state
// that changes nothing, or gives the default plan, needs no plan.
func TestDecideSubscriptionWithoutAPlanAtThePrice(t *testing.T) {
	for _, status := range []string{"active", "trialing", "past_due"} {
		_, err := tenancy.DecideSubscription(fresh, state("sub_1", status), t0, "")
		if tenancy.ErrorCode(err) != tenancy.ENOTFOUND || !strings.Contains(err.Error(), `no plan is sold at Stripe price "price_pro": set it with nself plan update NAME --stripe-price price_pro`) {
			t.Errorf("%s: %v", status, err)
		}
	}
	if c, err := tenancy.DecideSubscription(onPro("active"), state("sub_1", "active"), before, ""); err != nil || c.Apply {
		t.Errorf("an older state: %+v, %v", c, err)
	}
	for _, sub := range []tenancy.SubscriptionState{state("sub_1", "unpaid"), deleted("sub_1", "active")} {
		if c, err := tenancy.DecideSubscription(onPro("active"), sub, after, ""); err != nil || c.Plan != tenancy.DefaultPlan {
			t.Errorf("%+v: %+v, %v", sub, c, err)
		}
	}
}

func TestGivesPricePlan(t *testing.T) {
	for status, want := range map[string]bool{
		"active": true, "trialing": true, "past_due": true,
		"canceled": false, "unpaid": false, "paused": false, "incomplete": false, "incomplete_expired": false, "": false,
	} {
		if got := state("sub_1", status).GivesPricePlan(); got != want {
			t.Errorf("%q: %v, want %v", status, got, want)
		}
		if deleted("sub_1", status).GivesPricePlan() {
			t.Errorf("deleted %q gives a plan", status)
		}
	}
}

func TestReconcileNeeded(t *testing.T) {
	for _, c := range []struct {
		name         string
		plan, status string
		sub          tenancy.SubscriptionState
		pricePlan    string
		want         bool
	}{
		{"in step", "pro", "active", state("sub_1", "active"), "pro", false},
		{"past due in step", "pro", "past_due", state("sub_1", "past_due"), "pro", false},
		{"status drifted", "pro", "active", state("sub_1", "past_due"), "pro", true},
		{"plan drifted", "free", "active", state("sub_1", "active"), "pro", true},
		{"price changed", "pro", "active", state("sub_1", "active"), "team", true},
		{"canceled in Stripe", "pro", "active", state("sub_1", "canceled"), "", true},
		{"canceled in step", "free", "canceled", state("sub_1", "canceled"), "", false},
		{"deleted in Stripe", "pro", "active", deleted("sub_1", "active"), "", true},
		{"deleted in step", "free", "canceled", deleted("sub_1", "active"), "", false},
	} {
		got, err := tenancy.ReconcileNeeded(c.plan, c.status, c.sub, c.pricePlan)
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := tenancy.ReconcileNeeded("pro", "active", state("sub_1", "active"), ""); tenancy.ErrorCode(err) != tenancy.ENOTFOUND ||
		!strings.Contains(err.Error(), `no plan is sold at Stripe price "price_pro"`) {
		t.Errorf("no plan at the price: %v", err)
	}
}

func TestLinkCheckout(t *testing.T) {
	for _, c := range []struct {
		name   string
		held   tenancy.HeldSubscription
		sub    string
		want   bool
		result string
	}{
		{"a first subscription", fresh, "sub_1", true, "Checkout completed: subscription sub_1 linked; the plan follows its subscription events"},
		{"the current one again", onPro("active"), "sub_1", true, "linked"},
		{"beside a live one", onPro("active"), "sub_2", false, "Checkout completed for subscription sub_2, but the tenant's subscription sub_1 is active: not linked"},
		{"beside one trialing", onPro("trialing"), "sub_2", false, "not linked"},
		{"beside one past due", onPro("past_due"), "sub_2", false, "not linked"},
		{"beside one unpaid", onPro("unpaid"), "sub_2", false, "not linked"},
		{"beside one paused", onPro("paused"), "sub_2", false, "not linked"},
		{"after one canceled", onPro("canceled"), "sub_2", true, "linked"},
		{"after one incomplete_expired", onPro("incomplete_expired"), "sub_2", true, "linked"},
	} {
		got, result := tenancy.LinkCheckout(c.held, c.sub)
		if got != c.want || !strings.Contains(result, c.result) {
			t.Errorf("%s: %v %q; want %v %q", c.name, got, result, c.want, c.result)
		}
	}
}

func TestPaymentFailureMarksPastDue(t *testing.T) {
	for _, c := range []struct {
		name string
		held tenancy.HeldSubscription
		sub  string
		at   time.Time
		want bool
	}{
		{"active", onPro("active"), "sub_1", after, true},
		{"trialing", onPro("trialing"), "sub_1", after, true},
		{"same second as the state applied", onPro("active"), "sub_1", t0, true},
		{"older than the state applied", onPro("active"), "sub_1", before, false},
		{"an invoice naming no subscription", onPro("active"), "", after, true},
		{"another subscription's invoice", onPro("active"), "sub_2", after, false},
		{"no subscription linked, no state applied", tenancy.HeldSubscription{Plan: "pro", Status: "active"}, "sub_9", before, true},
		{"already past due", onPro("past_due"), "sub_1", after, false},
		{"canceled", onPro("canceled"), "sub_1", after, false},
		{"unpaid", onPro("unpaid"), "sub_1", after, false},
		{"no subscription", fresh, "sub_1", after, false},
	} {
		if got := tenancy.PaymentFailureMarksPastDue(c.held, c.sub, c.at); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPlanKeepingStatuses(t *testing.T) {
	for _, s := range []string{"active", "trialing", "past_due", "canceled", "unpaid", "paused", "incomplete", "incomplete_expired", ""} {
		listed := false
		for _, k := range tenancy.PlanKeepingStatuses() {
			listed = listed || k == s
		}
		if listed != tenancy.KeepsPlan(s) {
			t.Errorf("%q: listed %v, KeepsPlan %v", s, listed, tenancy.KeepsPlan(s))
		}
	}
}
