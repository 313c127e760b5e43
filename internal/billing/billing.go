// Package billing sells plans through Stripe: Checkout sessions for
// subscriptions, Billing Portal sessions, verified webhooks and
// reconciliation. It speaks to Stripe through stripe-go; what it learns is
// kept by a Store (PostgreSQL), so that access changes only with what
// Stripe says in a verified event, never with a browser's redirect.
package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/nself/nself/internal/tenancy"
)

// Config is how to reach Stripe.
type Config struct {
	SecretKey string
	// WebhookSecret verifies the signature of webhook deliveries.
	WebhookSecret string
	// APIBase replaces Stripe's API address (stripe-mock in tests).
	APIBase string
	// Tolerance is how old a signed delivery may be; 5 minutes when 0.
	Tolerance time.Duration
	// Timeout bounds each call to Stripe, its retries included
	// (STRIPE_TIMEOUT); DefaultTimeout when 0. stripe-go's own is 80
	// seconds per try, long enough for a Stripe that does not answer to
	// hold a request, and what it holds, for minutes.
	Timeout time.Duration
	// MaxRetries is how many times a call that could not reach Stripe is
	// tried again within Timeout (STRIPE_MAX_RETRIES); a call that timed
	// out is not. Every call that creates something carries an
	// idempotency key, so a retry never makes a second one.
	MaxRetries int
	// HTTPClient replaces the client made from Timeout (tests).
	HTTPClient *http.Client
}

// DefaultTimeout bounds a call to Stripe when Config.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Validate says what billing lacks to run.
func (cfg Config) Validate() error {
	switch {
	case cfg.SecretKey == "":
		return errors.New("STRIPE_SECRET_KEY is not set: billing needs it to call Stripe")
	case cfg.WebhookSecret == "":
		return errors.New("STRIPE_WEBHOOK_SECRET is not set: billing would accept no webhook, so it refuses to start")
	}
	return nil
}

// Store keeps what Stripe says about tenants.
type Store interface {
	// BillingTenant reads the tenant as stored now, not as cached.
	BillingTenant(ctx context.Context, tenantID string) (*tenancy.Tenant, error)
	// SetCustomer stores the tenant's Stripe customer unless it has one,
	// and returns the one it has then.
	SetCustomer(ctx context.Context, tenantID, customerID string) (string, error)
	ApplyEvent(ctx context.Context, ev *tenancy.BillingEvent) (*tenancy.EventOutcome, error)
	FindEvent(ctx context.Context, id string) (*tenancy.EventRecord, error)
	SubscribedTenants(ctx context.Context) ([]*tenancy.Tenant, error)
	ReconcileSubscription(ctx context.Context, tenantID string, sub tenancy.SubscriptionState, readAt time.Time) (string, error)
}

// Service sells plans to tenants through Stripe.
type Service struct {
	api   *client.API
	cfg   Config
	store Store
}

// New returns a Service. It fails when the webhook secret is missing:
// without it no event could be trusted, and billing must fail closed.
func New(cfg Config, store Store, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = webhook.DefaultTolerance
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		// Each call's context bounds it, retries included (call). The
		// client's own limit is only a backstop, a little later, so that
		// a call that timed out ends on its context and is not tried
		// again: stripe-go retries any other failure.
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout + time.Second, Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: min(5*time.Second, cfg.Timeout), KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: min(5*time.Second, cfg.Timeout),
			IdleConnTimeout:     90 * time.Second,
			MaxIdleConnsPerHost: 16,
			ForceAttemptHTTP2:   true,
		}}
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        cfg.HTTPClient,
		MaxNetworkRetries: stripe.Int64(int64(max(cfg.MaxRetries, 0))),
		LeveledLogger:     leveledLog{log},
	}
	if cfg.APIBase != "" {
		bc.URL = stripe.String(cfg.APIBase)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, bc),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, bc),
	}
	return &Service{api: client.New(cfg.SecretKey, backends), cfg: cfg, store: store}, nil
}

var _ tenancy.Billing = (*Service)(nil)

// leveledLog sends stripe-go's messages to the server's log. stripe-go
// logs every failed request as an error, and every retry as a warning,
// and returns the outcome as well; the caller says what failed, in its
// words (a form's message, a CLI's one line, a warning in the log), so
// stripe-go's own lines are information. A CLI's error stays one line.
type leveledLog struct{ log *slog.Logger }

func (l leveledLog) Debugf(string, ...any)         {}
func (l leveledLog) Infof(string, ...any)          {}
func (l leveledLog) Warnf(format string, v ...any) { l.Errorf(format, v...) }
func (l leveledLog) Errorf(format string, v ...any) {
	l.log.Info("stripe: " + fmt.Sprintf(format, v...))
}

// CheckoutInput is what a Checkout session is made of.
type CheckoutInput = tenancy.CheckoutInput

// Checkout starts a subscription to a plan: it makes the tenant's Stripe
// customer the first time, then a Checkout session in subscription mode,
// and returns the session's address to send the owner to.
func (s *Service) Checkout(ctx context.Context, in CheckoutInput) (string, error) {
	if in.Plan.StripePriceID == "" {
		return "", tenancy.FieldErrorf(tenancy.EINVALID, "plan", "plan %s is not sold through Stripe", tenancy.Quote(in.Plan.Name))
	}
	if in.Plan.Archived {
		return "", tenancy.FieldErrorf(tenancy.EINVALID, "plan", "plan %s is no longer offered", tenancy.Quote(in.Plan.Name))
	}
	customer, err := s.customer(ctx, in)
	if err != nil {
		return "", err
	}
	p := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(customer),
		ClientReferenceID: stripe.String(in.Tenant.ID),
		SuccessURL:        stripe.String(in.SuccessURL),
		CancelURL:         stripe.String(in.CancelURL),
		LineItems: []*stripe.CheckoutSessionLineItemParams{
			{Price: stripe.String(in.Plan.StripePriceID), Quantity: stripe.Int64(1)},
		},
		SubscriptionData: &stripe.CheckoutSessionSubscriptionDataParams{
			Metadata: map[string]string{"tenant_id": in.Tenant.ID, "plan": in.Plan.Name},
		},
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	p.Context = ctx
	p.AddMetadata("tenant_id", in.Tenant.ID)
	p.AddMetadata("plan", in.Plan.Name)
	p.SetIdempotencyKey("nself-checkout-" + in.Tenant.ID + "-" + in.Plan.Name + "-" + in.Attempt)
	sess, err := s.api.CheckoutSessions.New(p)
	if err != nil {
		return "", stripeError("start Checkout", err)
	}
	if sess.URL == "" {
		return "", fmt.Errorf("start Checkout: Stripe returned no session address")
	}
	return sess.URL, nil
}

// customer returns the tenant's Stripe customer, making it the first time.
// Stripe is called with no transaction open and no row locked: a Stripe
// that does not answer then holds only this request. Two first Checkouts
// at once both ask Stripe, with the same idempotency key derived from the
// tenant, and get the same customer back; the first to store it wins, and
// a customer made by an attempt that could not store it comes back to the
// next one rather than a second customer.
func (s *Service) customer(ctx context.Context, in CheckoutInput) (string, error) {
	t, err := s.store.BillingTenant(ctx, in.Tenant.ID)
	if err != nil {
		return "", err
	}
	if t.StripeCustomerID != "" {
		return t.StripeCustomerID, nil
	}
	p := &stripe.CustomerParams{
		Email: stripe.String(in.OwnerEmail),
		Name:  stripe.String(t.Name),
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	p.Context = cctx
	p.AddMetadata("tenant_id", t.ID)
	p.AddMetadata("tenant_slug", t.Slug)
	p.SetIdempotencyKey("nself-customer-" + t.ID)
	c, err := s.api.Customers.New(p)
	if err != nil {
		return "", stripeError("create the Stripe customer", err)
	}
	return s.store.SetCustomer(ctx, t.ID, c.ID)
}

// call bounds one call to Stripe, its retries included.
func (s *Service) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// Portal opens a Billing Portal session where the owner manages payment
// methods and cancels, and returns its address.
func (s *Service) Portal(ctx context.Context, t *tenancy.Tenant, returnURL, attempt string) (string, error) {
	if t.StripeCustomerID == "" {
		return "", tenancy.Errorf(tenancy.EINVALID, "there is no subscription to manage yet: choose a plan first")
	}
	p := &stripe.BillingPortalSessionParams{
		Customer:  stripe.String(t.StripeCustomerID),
		ReturnURL: stripe.String(returnURL),
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	p.Context = ctx
	p.SetIdempotencyKey("nself-portal-" + t.ID + "-" + attempt)
	sess, err := s.api.BillingPortalSessions.New(p)
	if err != nil {
		return "", stripeError("open the billing portal", err)
	}
	return sess.URL, nil
}

// ErrSignature marks a webhook delivery whose signature does not verify.
var ErrSignature = tenancy.ErrWebhookSignature

// HandleWebhook verifies a delivery's signature on its raw body, then
// processes the event once. A bad signature is ErrSignature and changes
// nothing; a processing failure is returned so that Stripe retries.
func (s *Service) HandleWebhook(ctx context.Context, payload []byte, signature string) (*tenancy.EventOutcome, error) {
	ev, err := webhook.ConstructEventWithOptions(payload, signature, s.cfg.WebhookSecret,
		webhook.ConstructEventOptions{Tolerance: s.cfg.Tolerance})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	be, err := readEvent(ev, payload)
	if err != nil {
		return nil, err
	}
	return s.store.ApplyEvent(ctx, be)
}

// Replay processes a received event again from its stored payload, which
// was verified when it arrived. Only failed events change anything: a
// processed one is recognised as such.
func (s *Service) Replay(ctx context.Context, eventID string) (*tenancy.EventOutcome, error) {
	rec, err := s.store.FindEvent(ctx, eventID)
	if err != nil {
		return nil, err
	}
	var ev stripe.Event
	if err := json.Unmarshal(rec.Payload, &ev); err != nil {
		return nil, fmt.Errorf("read stored event %s: %w", eventID, err)
	}
	be, err := readEvent(ev, rec.Payload)
	if err != nil {
		return nil, err
	}
	return s.store.ApplyEvent(ctx, be)
}

// readEvent reads what the platform acts on out of an event.
func readEvent(ev stripe.Event, payload []byte) (*tenancy.BillingEvent, error) {
	be := &tenancy.BillingEvent{ID: ev.ID, Type: string(ev.Type), Created: time.Unix(ev.Created, 0).UTC(), Payload: payload}
	if ev.Data == nil {
		return be, nil
	}
	bad := func(err error) error {
		return tenancy.Errorf(tenancy.EINVALID, "event %s (%s) does not hold the expected object: %v", ev.ID, ev.Type, err)
	}
	switch be.Type {
	case tenancy.EventCheckoutCompleted:
		var cs stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil {
			return nil, bad(err)
		}
		be.TenantHint = cs.ClientReferenceID
		be.Subscription.CustomerID = idOf(cs.Customer)
		if cs.Subscription != nil {
			be.Subscription.SubscriptionID = cs.Subscription.ID
		}
	case tenancy.EventSubscriptionCreated, tenancy.EventSubscriptionUpdated, tenancy.EventSubscriptionDeleted:
		var sub stripe.Subscription
		if err := json.Unmarshal(ev.Data.Raw, &sub); err != nil {
			return nil, bad(err)
		}
		be.TenantHint = sub.Metadata["tenant_id"]
		be.Subscription = subscriptionState(&sub)
	case tenancy.EventInvoicePaid, tenancy.EventInvoicePaymentFailed:
		var inv stripe.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
			return nil, bad(err)
		}
		be.Subscription.CustomerID = idOf(inv.Customer)
		if inv.Subscription != nil {
			be.Subscription.SubscriptionID = inv.Subscription.ID
			be.TenantHint = inv.Subscription.Metadata["tenant_id"]
		}
		p := &tenancy.Payment{InvoiceID: inv.ID, Currency: string(inv.Currency), InvoiceURL: inv.HostedInvoiceURL,
			OccurredAt: be.Created, Status: "paid", AmountCents: inv.AmountPaid}
		if be.Type == tenancy.EventInvoicePaymentFailed {
			p.Status, p.AmountCents = "failed", inv.AmountDue
		}
		if inv.ID == "" {
			return nil, bad(errors.New("no invoice id"))
		}
		be.Payment = p
	}
	return be, nil
}

func idOf(c *stripe.Customer) string {
	if c == nil {
		return ""
	}
	return c.ID
}

func subscriptionState(sub *stripe.Subscription) tenancy.SubscriptionState {
	st := tenancy.SubscriptionState{
		CustomerID:     idOf(sub.Customer),
		SubscriptionID: sub.ID,
		Status:         string(sub.Status),
	}
	if sub.CurrentPeriodEnd > 0 {
		st.PeriodEnd = time.Unix(sub.CurrentPeriodEnd, 0).UTC()
	}
	if sub.Items != nil && len(sub.Items.Data) > 0 && sub.Items.Data[0].Price != nil {
		st.PriceID = sub.Items.Data[0].Price.ID
	}
	return st
}

// ReconcileResult is what reconciling one tenant found.
type ReconcileResult = tenancy.ReconcileResult

// Reconcile compares each subscribed tenant with its subscription in
// Stripe and repairs what drifted (a webhook lost, a change made in
// Stripe's dashboard).
func (s *Service) Reconcile(ctx context.Context) ([]ReconcileResult, error) {
	tenants, err := s.store.SubscribedTenants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ReconcileResult, 0, len(tenants))
	for _, t := range tenants {
		r := ReconcileResult{Tenant: t}
		p := &stripe.SubscriptionParams{}
		cctx, cancel := s.call(ctx)
		p.Context = cctx
		// Stripe stamps events in whole seconds: one of the second the
		// state is read in may come after it.
		readAt := time.Now().Truncate(time.Second).Add(-time.Second)
		sub, err := s.api.Subscriptions.Get(t.StripeSubscriptionID, p)
		cancel()
		if err != nil {
			r.Err = stripeError("read subscription "+t.StripeSubscriptionID, err)
			out = append(out, r)
			continue
		}
		st := subscriptionState(sub)
		st.Deleted = sub.Status == stripe.SubscriptionStatusCanceled
		if st.CustomerID == "" {
			st.CustomerID = t.StripeCustomerID
		}
		r.Changed, r.Err = s.store.ReconcileSubscription(ctx, t.ID, st, readAt)
		out = append(out, r)
	}
	return out, nil
}

// stripeError turns a Stripe failure into one line: Stripe's own message
// for a request it refused; EUNAVAILABLE when Stripe could not be reached,
// did not answer in time, or failed on its side (5xx, or too many
// requests), since the same call may succeed later.
func stripeError(what string, err error) error {
	var se *stripe.Error
	switch {
	case errors.As(err, &se) && (se.HTTPStatusCode >= 500 || se.HTTPStatusCode == http.StatusTooManyRequests):
		return tenancy.Unavailable(tenancy.ServiceStripe, fmt.Errorf("%s: Stripe answered %d: %s", what, se.HTTPStatusCode, se.Msg))
	case se != nil && se.Msg != "":
		return fmt.Errorf("%s: Stripe said: %s", what, se.Msg)
	case se != nil, errors.Is(err, context.Canceled):
		// Canceled: the caller left; nothing to tell anyone.
		return fmt.Errorf("%s: %w", what, err)
	}
	// A connection refused or cut, a timeout, an answer that is not
	// Stripe's: the transport failed.
	return tenancy.Unavailable(tenancy.ServiceStripe, fmt.Errorf("%s: %w", what, err))
}

// Price is what a Stripe price asks.
type Price = tenancy.BillingPrice

// Price reads a Stripe price. A price Stripe does not know is an EINVALID
// error on the plan form's stripe_price field.
func (s *Service) Price(ctx context.Context, id string) (*Price, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	p, err := s.api.Prices.Get(id, &stripe.PriceParams{Params: stripe.Params{Context: ctx}})
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
			return nil, tenancy.FieldErrorf(tenancy.EINVALID, "stripe_price", "Stripe has no price %s", id)
		}
		return nil, stripeError("read the Stripe price", err)
	}
	out := &Price{ID: p.ID, AmountCents: p.UnitAmount, Currency: string(p.Currency),
		Monthly: p.Recurring != nil && p.Recurring.Interval == stripe.PriceRecurringIntervalMonth && p.Recurring.IntervalCount <= 1}
	if p.Product != nil {
		out.Product = p.Product.ID
	}
	return out, nil
}

// PriceAt returns a Stripe price that sells a plan at cents a month: from,
// when it asks that already, or a new monthly price on from's product, in
// its currency (a Stripe price's amount can never change). Subscriptions
// on the old price keep paying it until they change plan. Stripe is called
// with no transaction open; the caller stores the id it gets.
func (s *Service) PriceAt(ctx context.Context, plan, from string, cents int64) (p *Price, created bool, err error) {
	old, err := s.Price(ctx, from)
	if err != nil {
		return nil, false, err
	}
	if old.AmountCents == cents && old.Monthly {
		return old, false, nil
	}
	params := &stripe.PriceParams{
		Product:    stripe.String(old.Product),
		Currency:   stripe.String(old.Currency),
		UnitAmount: stripe.Int64(cents),
		Recurring:  &stripe.PriceRecurringParams{Interval: stripe.String(string(stripe.PriceRecurringIntervalMonth))},
		Nickname:   stripe.String(plan),
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	params.Context = cctx
	params.AddMetadata("plan", plan)
	// The same change asked twice (a form sent again) makes one price.
	params.SetIdempotencyKey(fmt.Sprintf("nself-price-%s-%s-%d", plan, from, cents))
	np, err := s.api.Prices.New(params)
	if err != nil {
		return nil, false, stripeError("create the new Stripe price", err)
	}
	return &Price{ID: np.ID, AmountCents: np.UnitAmount, Currency: string(np.Currency), Monthly: true, Product: old.Product}, true, nil
}
