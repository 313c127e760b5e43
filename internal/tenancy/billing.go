package tenancy

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Meter names a kind of usage counted per tenant and month.
type Meter string

const (
	MeterAPIRequests Meter = "api_requests"  // requests to the tenant API
	MeterStorage     Meter = "storage"       // GB-hours of stored objects
	MeterCompute     Meter = "compute_hours" // server time spent on the tenant's API requests
	MeterActiveUsers Meter = "active_users"  // users who signed in during the month
)

// PeriodOf is the billing period holding t: its calendar month in UTC,
// given as the month's first instant.
func PeriodOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// PeriodEnd is when the period holding t ends and its counters reset.
func PeriodEnd(t time.Time) time.Time { return PeriodOf(t).AddDate(0, 1, 0) }

// PlanInput is the input to create or change a plan. Nil fields are left
// as they are (or take the defaults, on create).
type PlanInput struct {
	Name            string
	MaxUsers        *int64
	MaxStorageGB    *int64
	MaxAPIRequests  *int64
	MaxComputeHours *int64
	PriceCents      *int64
	StripePriceID   *string
}

var stripePriceID = regexp.MustCompile(`^(price|plan)_[A-Za-z0-9_]{1,200}$`)

// Validate checks the input's fields, naming the first that is wrong.
func (in PlanInput) Validate() error {
	if err := ValidatePlanName(in.Name); err != nil {
		return err
	}
	limits := []struct {
		field string
		v     *int64
	}{
		{"max_users", in.MaxUsers}, {"max_storage_gb", in.MaxStorageGB},
		{"max_api_requests", in.MaxAPIRequests}, {"max_compute_hours", in.MaxComputeHours},
	}
	for _, l := range limits {
		if l.v == nil {
			continue
		}
		if *l.v < Unlimited {
			return FieldErrorf(EINVALID, l.field, "%s must be a whole number from 0 up, or -1 for unlimited", limitName(l.field))
		}
		if *l.v > math.MaxInt32 && l.field != "max_api_requests" {
			return FieldErrorf(EINVALID, l.field, "%s is too large: at most %s, or -1 for unlimited", limitName(l.field), FormatCount(math.MaxInt32))
		}
	}
	if in.PriceCents != nil && (*in.PriceCents < 0 || *in.PriceCents > 99_999_999_99) {
		return FieldErrorf(EINVALID, "price", "price must be from 0.00 to 99999999.99")
	}
	if in.StripePriceID != nil && *in.StripePriceID != "" && !stripePriceID.MatchString(*in.StripePriceID) {
		return FieldErrorf(EINVALID, "stripe_price", "Stripe price %s is not a price id (price_…)", Quote(*in.StripePriceID))
	}
	return nil
}

var planName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// ValidatePlanName checks a plan name: lower-case letters, digits and
// single hyphens, at most 50 characters.
func ValidatePlanName(name string) error {
	if name == "" {
		return FieldErrorf(EINVALID, "name", "plan name is empty")
	}
	if len(name) > 50 || !planName.MatchString(name) {
		return FieldErrorf(EINVALID, "name", "plan name %s may hold only a-z, 0-9 and single hyphens, up to 50 characters", Quote(name))
	}
	return nil
}

// ParsePrice reads a price in dollars ("99", "99.5", "99.00") as cents.
func ParsePrice(s string) (int64, error) {
	bad := FieldErrorf(EINVALID, "price", "price %s is not an amount such as 99.00", Quote(s))
	s = strings.TrimPrefix(strings.TrimSpace(s), "$")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || len(whole) > 10 {
		return 0, bad
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt((frac + "0")[:2], 10, 64)
	}
	return w*100 + f, nil
}

// ParseLimit reads a plan limit: a whole number, or -1 / "unlimited".
func ParseLimit(field, s string) (int64, error) {
	if strings.EqualFold(s, "unlimited") {
		return Unlimited, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < Unlimited {
		return 0, FieldErrorf(EINVALID, field, "%s %s is not a whole number from 0 up, or -1 for unlimited", limitName(field), Quote(s))
	}
	return n, nil
}

// limitNames name a plan's limits in messages, as the console's plan form
// labels them, for the form and the command line alike.
var limitNames = map[string]string{
	"max_users":         "Member limit",
	"max_storage_gb":    "Storage limit (GB)",
	"max_api_requests":  "Monthly API request limit",
	"max_compute_hours": "Monthly compute hour limit",
}

func limitName(field string) string {
	if n, ok := limitNames[field]; ok {
		return n
	}
	return field
}

// ReadPlanInput reads a plan's terms from text, as a form or the command
// line gives them: value returns a field's text (fields as PlanInput's
// errors name them: max_users, max_storage_gb, max_api_requests,
// max_compute_hours, price, stripe_price) and whether it was given. Fields
// not given are left out. Every field that cannot be read has its error.
func ReadPlanInput(name string, value func(field string) (string, bool)) (PlanInput, []error) {
	in := PlanInput{Name: name}
	var errs []error
	for _, l := range []struct {
		field string
		dst   **int64
	}{
		{"max_users", &in.MaxUsers}, {"max_storage_gb", &in.MaxStorageGB},
		{"max_api_requests", &in.MaxAPIRequests}, {"max_compute_hours", &in.MaxComputeHours},
	} {
		if v, ok := value(l.field); ok {
			n, err := ParseLimit(l.field, strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			*l.dst = &n
		}
	}
	if v, ok := value("price"); ok {
		cents, err := ParsePrice(v)
		if err != nil {
			errs = append(errs, err)
		} else {
			in.PriceCents = &cents
		}
	}
	if v, ok := value("stripe_price"); ok {
		v = strings.TrimSpace(v)
		in.StripePriceID = &v
	}
	return in, errs
}

// PlanAdmin creates and changes plans, for platform administrators.
type PlanAdmin interface {
	// FindPlan reads a plan as stored now, never from a cache: a change
	// is decided against it.
	FindPlan(ctx context.Context, name string) (*Plan, error)
	CreatePlan(ctx context.Context, in PlanInput) (*Plan, error)
	UpdatePlan(ctx context.Context, in PlanInput) (*Plan, error)
	// ArchivePlan hides a plan from new subscriptions; tenants on it keep it.
	ArchivePlan(ctx context.Context, name string) (*Plan, error)
}

// APIQuota is the answer to a metered API request.
type APIQuota struct {
	Allowed bool
	// Limit is the plan's monthly limit; Unlimited never refuses.
	Limit int64
	// Current is the month's count, this request included when allowed.
	Current int64
	// ResetDate is when the month's count starts again.
	ResetDate time.Time
}

// Usage is a tenant's consumption in one period, against its plan.
type Usage struct {
	Tenant      *Tenant
	Plan        *Plan
	Period      time.Time
	APIRequests int64
	// StorageBytes is the latest reading of what the tenant stores;
	// StorageGBHours is the period's sum of readings over time.
	StorageBytes   int64
	StorageGBHours float64
	ComputeHours   float64
	ActiveUsers    int64
	// Daily holds the API requests of each day of the period so far.
	Daily []DailyCount
}

// DailyCount is one day's count.
type DailyCount struct {
	Day   time.Time
	Count int64
}

// StorageGB is the stored bytes in GB (10^9 bytes, as storage is sold).
func (u *Usage) StorageGB() float64 { return float64(u.StorageBytes) / 1e9 }

// Percent is used/limit in whole percent, or -1 for an unlimited limit.
func Percent(used float64, limit int64) int {
	if limit < 0 {
		return -1
	}
	if limit == 0 {
		if used > 0 {
			return 100
		}
		return 0
	}
	return int(used * 100 / float64(limit))
}

// FormatUsageLine renders "45,230 / 100,000 (45%)" or "18.5 / Unlimited".
func FormatUsageLine(used string, usedValue float64, limit int64, unit string) string {
	if limit < 0 {
		return used + unit + " / Unlimited"
	}
	return used + unit + " / " + FormatCount(limit) + unit + " (" + strconv.Itoa(Percent(usedValue, limit)) + "%)"
}

// FormatDecimal renders a quantity with at most two decimals and no
// trailing zeros: 18.5, 42, 0.01.
func FormatDecimal(v float64) string {
	s := strconv.FormatFloat(math.Round(v*100)/100, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

// UsageService reports usage.
type UsageService interface {
	TenantUsage(ctx context.Context, tenantID string, period time.Time) (*Usage, error)
}

// Subscription states, as Stripe names them.
const (
	SubscriptionActive   = "active"
	SubscriptionTrialing = "trialing"
	SubscriptionPastDue  = "past_due"
	SubscriptionCanceled = "canceled"
)

// Entitled reports whether a subscription in this state gives its plan.
// Active and trialing subscriptions do; a past-due one keeps its plan
// while Stripe retries the payment; the rest (canceled, unpaid,
// incomplete, incomplete_expired, paused) fall back to the default plan.
func Entitled(status string) bool {
	return status == SubscriptionActive || status == SubscriptionTrialing
}

// KeepsPlan reports whether a tenant in this subscription state keeps its
// paid plan: entitled, or in the grace of a failed payment.
func KeepsPlan(status string) bool { return Entitled(status) || status == SubscriptionPastDue }

// LiveSubscription reports whether a subscription in this state still
// bills, or may again: a tenant with one must change plans through it (in
// the billing portal), not by starting another.
func LiveSubscription(status string) bool {
	switch status {
	case SubscriptionActive, SubscriptionTrialing, SubscriptionPastDue, "unpaid", "paused":
		return true
	}
	return false
}

// LaterState reports whether, of two states of one subscription that Stripe
// stamped with the same second, next comes after prev in a subscription's
// life (incomplete, then trialing or active, then past due or unpaid, then
// canceled), so that events of the same second apply in that order
// whatever order they arrive in.
func LaterState(prev, next string) bool {
	rank := map[string]int{
		"incomplete": 0, "incomplete_expired": 1, SubscriptionTrialing: 2, SubscriptionActive: 3,
		SubscriptionPastDue: 4, "unpaid": 5, "paused": 5, SubscriptionCanceled: 6,
	}
	return rank[next] >= rank[prev]
}

// Payment is an invoice Stripe reported paid or failed.
type Payment struct {
	InvoiceID   string
	Status      string // paid or failed
	AmountCents int64
	Currency    string
	InvoiceURL  string
	OccurredAt  time.Time
}

// FormatAmount renders an amount in a currency: "$99.00", "99.00 EUR".
func FormatAmount(cents int64, currency string) string {
	if currency == "" || strings.EqualFold(currency, "usd") {
		return FormatPrice(cents)
	}
	return FormatPrice(cents)[1:] + " " + strings.ToUpper(currency)
}

// SubscriptionState is what Stripe says of a tenant's subscription.
type SubscriptionState struct {
	CustomerID     string
	SubscriptionID string
	Status         string
	PriceID        string
	PeriodEnd      time.Time
	// Deleted marks a subscription that ended for good.
	Deleted bool
}

// Stripe event types the platform acts on.
const (
	EventCheckoutCompleted      = "checkout.session.completed"
	EventSubscriptionCreated    = "customer.subscription.created"
	EventSubscriptionUpdated    = "customer.subscription.updated"
	EventSubscriptionDeleted    = "customer.subscription.deleted"
	EventInvoicePaid            = "invoice.paid"
	EventInvoicePaymentFailed   = "invoice.payment_failed"
	EventStatusProcessed        = "processed"
	EventStatusIgnored          = "ignored"
	EventStatusFailed           = "failed"
	EventStatusReceived         = "received"
	EventStatusAlreadyProcessed = "duplicate"
)

// BillingEvent is a verified Stripe event, with the fields the platform
// acts on read out of it.
type BillingEvent struct {
	ID      string
	Type    string
	Created time.Time
	Payload []byte
	// TenantHint is the tenant the event's metadata or client reference
	// names; the customer, when known, decides.
	TenantHint   string
	Subscription SubscriptionState
	Payment      *Payment
}

// EventOutcome is what processing an event did.
type EventOutcome struct {
	Status   string // processed, ignored, failed, or duplicate for a replay
	Result   string
	TenantID string
}

// EventRecord is a received event as the console lists it.
type EventRecord struct {
	ID          string
	Type        string
	Created     time.Time
	Status      string
	Result      string
	TenantID    string
	TenantSlug  string
	Attempts    int
	ReceivedAt  time.Time
	ProcessedAt *time.Time
	Payload     []byte
}

// PlanRevenue is the monthly revenue of one plan's paying tenants.
type PlanRevenue struct {
	Plan       string
	Tenants    int
	MonthlyCts int64
}

// Billing sells plans through a payment provider (Stripe, in
// internal/billing). The portal, the console and the CLI reach it through
// this interface only, so that none of them depends on the provider's
// client library.
type Billing interface {
	// Checkout starts a subscription to a plan and returns the address of
	// the provider's payment page.
	Checkout(ctx context.Context, in CheckoutInput) (string, error)
	// Portal opens the provider's page where the owner manages payment
	// methods and cancels, and returns its address.
	Portal(ctx context.Context, t *Tenant, returnURL, attempt string) (string, error)
	// HandleWebhook verifies a delivery's signature on its raw body and
	// processes the event once; a bad signature is ErrWebhookSignature.
	HandleWebhook(ctx context.Context, payload []byte, signature string) (*EventOutcome, error)
	// Replay processes a received event again from its stored payload.
	Replay(ctx context.Context, eventID string) (*EventOutcome, error)
	// Reconcile compares each subscribed tenant with the provider and
	// repairs what drifted.
	Reconcile(ctx context.Context) ([]ReconcileResult, error)
	// Price reads one of the provider's prices; one it does not know is
	// an EINVALID error on the plan form's stripe_price field.
	Price(ctx context.Context, id string) (*BillingPrice, error)
	// PriceAt returns a monthly price of cents for plan: from when it
	// asks that already, or a new one on from's product (created true).
	PriceAt(ctx context.Context, plan, from string, cents int64) (p *BillingPrice, created bool, err error)
}

// BillingPrice is a price as the payment provider holds it.
type BillingPrice struct {
	ID          string
	AmountCents int64
	Currency    string
	// Monthly is true for a price that recurs every month.
	Monthly bool
	Product string
}

// ErrWebhookSignature marks a webhook delivery whose signature does not
// verify.
var ErrWebhookSignature = errors.New("webhook signature does not verify")

// CheckoutInput is what a Checkout session is made of.
type CheckoutInput struct {
	Tenant     *Tenant
	OwnerEmail string
	Plan       *Plan
	// SuccessURL and CancelURL come from the platform's configuration,
	// never from the request: the provider sends the browser there.
	SuccessURL string
	CancelURL  string
	// Attempt names this purchase attempt (one per rendered billing page),
	// so that a form sent twice makes one session.
	Attempt string
}

// ReconcileResult is what reconciling one tenant found.
type ReconcileResult struct {
	Tenant  *Tenant
	Changed string // what was repaired; "" when the tenant matched the provider
	Err     error
}

// CheckUsageMonth refuses a month that has no usage to show: one before
// the month the tenant was created in, or one after now's.
func CheckUsageMonth(t *Tenant, month, now time.Time) error {
	first := func(at time.Time) time.Time {
		at = at.UTC()
		return time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	switch m := first(month); {
	case m.Before(first(t.CreatedAt)):
		return Errorf(EINVALID, "%s was created in %s: %s has no usage", t.Slug, first(t.CreatedAt).Format("January 2006"), m.Format("January 2006"))
	case m.After(first(now)):
		return Errorf(EINVALID, "%s has not begun", m.Format("January 2006"))
	}
	return nil
}
