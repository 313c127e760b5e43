package tenancy

import (
	"fmt"
	"time"
)

// The rules by which Stripe's word on a subscription becomes a tenant's
// plan and status. They are pure: the postgres package reads what the
// tenant holds (its row locked), asks here what to do, and writes that.

// HeldSubscription is the subscription state a tenant holds, as last
// applied to it.
type HeldSubscription struct {
	Plan           string
	TenantStatus   Status
	SubscriptionID string
	// Status is the subscription's status as applied ("" when none was).
	Status string
	// AppliedAt is when Stripe stamped the state applied last; zero when
	// none was.
	AppliedAt time.Time
}

// State is the status a subscription event leaves the tenant in: Stripe
// reports a deleted subscription's last status, but it ended.
func (s SubscriptionState) State() string {
	if s.Deleted {
		return SubscriptionCanceled
	}
	return s.Status
}

// GivesPricePlan reports whether the state gives the tenant the plan sold
// at the subscription's price, which the caller must then find for
// DecideSubscription and ReconcileNeeded.
func (s SubscriptionState) GivesPricePlan() bool { return !s.Deleted && KeepsPlan(s.Status) }

// SubscriptionChange is what a subscription's state does to the tenant.
type SubscriptionChange struct {
	// Apply is false when the state changes nothing; Result says why.
	Apply        bool
	Plan         string
	Status       string
	TenantStatus Status
	// Result describes the change (or why there is none) for the event's
	// record and the audit log.
	Result string
}

// DecideSubscription decides what sub, a state of a subscription Stripe
// stamped at, does to a tenant holding held. pricePlan is the plan sold at
// sub's price ("" when none is, or when GivesPricePlan is false).
//
//   - One subscription gives the plan: while the tenant's current
//     subscription is live, another one's events (a second subscription
//     started beside it) change nothing, and another one's deletion (a
//     replaced subscription ending) never does.
//   - An older state never rolls back a newer one; states stamped with the
//     same second apply in the order of a subscription's life (LaterState),
//     whatever order they arrive in.
//   - Active and trialing give the plan sold at the price; past due keeps
//     it while Stripe retries; any other status falls back to the default
//     plan; deletion cancels, falls back to the default plan and suspends
//     an active tenant.
//
// A state that gives the plan sold at a price no plan is sold at is an
// error (ENOTFOUND), so that Stripe delivers the event again once the
// plan is set.
func DecideSubscription(held HeldSubscription, sub SubscriptionState, at time.Time, pricePlan string) (SubscriptionChange, error) {
	other := held.SubscriptionID != "" && held.SubscriptionID != sub.SubscriptionID
	applied := !held.AppliedAt.IsZero()
	switch {
	case other && (sub.Deleted || LiveSubscription(held.Status)):
		return SubscriptionChange{Result: fmt.Sprintf("subscription %s is not the tenant's current one (%s, %s): nothing changed",
			sub.SubscriptionID, held.SubscriptionID, held.Status)}, nil
	case other:
		// The current one is over: the new one replaces it, whenever its
		// state was stamped.
	case applied && at.Before(held.AppliedAt):
		return SubscriptionChange{Result: fmt.Sprintf("older than the state applied (%s): nothing changed",
			held.AppliedAt.UTC().Format(time.RFC3339))}, nil
	case applied && at.Equal(held.AppliedAt) && !LaterState(held.Status, sub.State()):
		return SubscriptionChange{Result: fmt.Sprintf("%s, of the same second as the state applied (%s), comes before it: nothing changed",
			sub.State(), held.Status)}, nil
	}
	c := SubscriptionChange{Apply: true, Plan: held.Plan, Status: sub.Status, TenantStatus: held.TenantStatus}
	switch {
	case sub.Deleted:
		c.Plan, c.Status = DefaultPlan, SubscriptionCanceled
		if c.TenantStatus == StatusActive {
			c.TenantStatus = StatusSuspended
		}
	case KeepsPlan(sub.Status):
		if pricePlan == "" {
			return SubscriptionChange{}, Errorf(ENOTFOUND, "no plan is sold at Stripe price %s: set it with nself plan update NAME --stripe-price %s",
				Quote(sub.PriceID), sub.PriceID)
		}
		c.Plan = pricePlan
	default:
		c.Plan = DefaultPlan
	}
	c.Result = fmt.Sprintf("subscription %s %s: plan %s → %s", sub.SubscriptionID, c.Status, held.Plan, c.Plan)
	if c.TenantStatus != held.TenantStatus {
		c.Result += fmt.Sprintf("; tenant %s", c.TenantStatus)
	}
	return c, nil
}

// ReconcileNeeded reports whether a tenant on plan with subscription
// status status differs from sub, Stripe's current state of its
// subscription: the plan sub gives (pricePlan, as for DecideSubscription)
// or the status. A state whose price no plan is sold at is an error.
func ReconcileNeeded(plan, status string, sub SubscriptionState, pricePlan string) (bool, error) {
	want := DefaultPlan
	if sub.GivesPricePlan() {
		if pricePlan == "" {
			return false, Errorf(ENOTFOUND, "no plan is sold at Stripe price %s", Quote(sub.PriceID))
		}
		want = pricePlan
	}
	return want != plan || sub.State() != status, nil
}

// LinkCheckout decides whether the subscription a completed Checkout
// started becomes the tenant's, and says what was done. A tenant has one
// live subscription: while another one is live, the new one is not
// linked (the tenant changes plans in the billing portal instead); the
// plan itself follows the subscription's own events.
func LinkCheckout(held HeldSubscription, subscriptionID string) (bool, string) {
	if held.SubscriptionID != "" && held.SubscriptionID != subscriptionID && LiveSubscription(held.Status) {
		return false, "Checkout completed for subscription " + subscriptionID + ", but the tenant's subscription " +
			held.SubscriptionID + " is " + held.Status + ": not linked"
	}
	return true, "Checkout completed: subscription " + subscriptionID + " linked; the plan follows its subscription events"
}

// PaymentFailureMarksPastDue reports whether an invoice of subscription
// subscriptionID ("" when the invoice names none) failing at at marks the
// tenant's subscription past due: only an entitled one, and only by an
// invoice of that subscription, not older than the state applied (a
// failure older than a later recovery does not undo it).
func PaymentFailureMarksPastDue(held HeldSubscription, subscriptionID string, at time.Time) bool {
	if !Entitled(held.Status) {
		return false
	}
	if !held.AppliedAt.IsZero() && at.Before(held.AppliedAt) {
		return false
	}
	// Another subscription's invoice says nothing of the current one.
	return subscriptionID == "" || held.SubscriptionID == "" || held.SubscriptionID == subscriptionID
}

// PlanKeepingStatuses are the subscription statuses that keep a paid
// plan (KeepsPlan), for queries that select them.
func PlanKeepingStatuses() []string {
	return []string{SubscriptionActive, SubscriptionTrialing, SubscriptionPastDue}
}
