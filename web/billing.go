package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// meterAPI counts every tenant API request against the month's limit of
// the tenant's plan. Over the limit it answers 429 with the limit, the
// count and when the month resets, as JSON, and a Retry-After header.
// Unlimited plans are counted and never refused.
func (s *Server) meterAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := TenantFrom(r.Context())
		if !s.admitQuota(w, r, t) {
			return
		}
		start := time.Now()
		next.ServeHTTP(w, r)
		s.Meter.AddCompute(t.ID, time.Since(start))
	})
}

// admitQuota counts a request of the tenant against its plan's monthly
// limit, for the API and the gateway alike. It answers the request itself
// (429, or the error) and reports false when it may not go on.
func (s *Server) admitQuota(w http.ResponseWriter, r *http.Request, t *tenancy.Tenant) bool {
	ctx := r.Context()
	plan, err := s.Plans.FindPlan(ctx, t.Plan)
	if err != nil {
		s.Error(w, r, err)
		return false
	}
	q, err := s.Meter.Admit(ctx, t.ID, plan.MaxAPIRequests)
	if err != nil {
		s.Error(w, r, err)
		return false
	}
	h := w.Header()
	if q.Limit >= 0 {
		h.Set("X-Quota-Limit", strconv.FormatInt(q.Limit, 10))
		h.Set("X-Quota-Remaining", strconv.FormatInt(max(q.Limit-q.Current, 0), 10))
		h.Set("X-Quota-Reset", q.ResetDate.UTC().Format(time.RFC3339))
	}
	if !q.Allowed {
		wait := math.Ceil(time.Until(q.ResetDate).Seconds())
		h.Set("Retry-After", strconv.Itoa(max(int(wait), 1)))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"error":     "API quota exceeded",
			"limit":     q.Limit,
			"current":   q.Current,
			"resetDate": q.ResetDate.UTC().Format(time.RFC3339),
		})
		return false
	}
	return true
}

// unmetered is the meter of a server given none: it counts nothing and
// refuses nothing. The services' constructor always gives one.
type unmetered struct{}

func (unmetered) Admit(context.Context, string, int64) (tenancy.APIQuota, error) {
	return tenancy.APIQuota{Allowed: true, Limit: tenancy.Unlimited}, nil
}

func (unmetered) AddCompute(string, time.Duration) {}

// handleStripeWebhook serves POST /webhooks/stripe. The signature is
// checked on the raw body before anything is read from it: a bad or
// missing one is 400 and changes nothing. A failure to process answers 500,
// so Stripe delivers the event again; a replay of a processed event is
// acknowledged and changes nothing.
func (s *Server) handleStripeWebhook(w http.ResponseWriter, r *http.Request) {
	payload, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "could not read the body"})
		return
	}
	ctx := tenancy.WithAuditActor(r.Context(), tenancy.AuditActor{Kind: tenancy.ActorSystem, Name: "stripe", Addr: clientIP(r)})
	out, err := s.Billing.HandleWebhook(ctx, payload, r.Header.Get("Stripe-Signature"))
	switch {
	case errors.Is(err, tenancy.ErrWebhookSignature):
		s.Log.Warn("stripe webhook: signature refused", "err", err)
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid signature"})
		return
	case err != nil:
		s.Log.Error("stripe webhook: processing failed; Stripe will deliver it again", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "processing failed"})
		return
	}
	// A failed payment's mails to the owners were queued with the event's
	// changes, as a replay from the console queues them.
	s.Log.Info("stripe webhook", "status", out.Status, "result", out.Result, "tenant", out.TenantID)
	writeJSON(w, http.StatusOK, map[string]any{"received": true, "status": out.Status})
}

// tenantBillingRoutes are the tenant's billing pages, for its owners.
func (s *Server) tenantBillingRoutes(r chi.Router) {
	if !s.on.billing {
		return
	}
	r.Get("/billing", s.h(s.handleBilling))
	r.Get("/billing/status", s.h(s.handleBillingStatus))
	r.Get("/billing/success", s.h(s.handleBillingReturn(true)))
	r.Get("/billing/cancel", s.h(s.handleBillingReturn(false)))
	r.Post("/billing/checkout", s.h(s.handleCheckout))
	r.Post("/billing/portal", s.h(s.handleBillingPortal))
}

func (s *Server) billingPage(r *http.Request, formErr *tenancy.Error) (views.BillingPage, error) {
	ctx := r.Context()
	t := TenantFrom(ctx)
	u, err := s.BillingStore.TenantUsage(ctx, t.ID, time.Now())
	if err != nil {
		return views.BillingPage{}, err
	}
	members, err := s.Tenants.CountMembers(ctx, t.ID)
	if err != nil {
		return views.BillingPage{}, err
	}
	plans, err := s.Plans.ListPlans(ctx)
	if err != nil {
		return views.BillingPage{}, err
	}
	payments, err := s.BillingStore.ListPayments(ctx, t.ID, 24)
	if err != nil {
		return views.BillingPage{}, err
	}
	attempt := make([]byte, 12)
	rand.Read(attempt)
	p := views.BillingPage{
		Usage:      u,
		Members:    int64(members),
		Status:     t.SubscriptionStatus,
		CanManage:  t.StripeCustomerID != "",
		CanBuy:     !tenancy.LiveSubscription(t.SubscriptionStatus),
		Payments:   payments,
		Attempt:    hex.EncodeToString(attempt),
		ChartTitle: "API requests per day, " + u.Period.Format("January 2006"),
	}
	for _, pl := range plans {
		if !pl.Archived && pl.StripePriceID != "" {
			p.Offers = append(p.Offers, pl)
		}
	}
	if formErr != nil {
		p.Error = formErr.Message
	}
	return p, nil
}

// handleBilling serves GET /billing: the plan, its usage, payments and the
// plans on offer.
func (s *Server) handleBilling(w http.ResponseWriter, r *http.Request) error {
	p, err := s.billingPage(r, nil)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Security-Policy", billingPagePolicy)
	render(w, r, http.StatusOK, views.Billing(s.page(r, "Billing"), p))
	return nil
}

// handleBillingStatus serves GET /billing/status, the plan and status
// panel the return pages poll until Stripe's word arrives.
func (s *Server) handleBillingStatus(w http.ResponseWriter, r *http.Request) error {
	t := TenantFrom(r.Context())
	render(w, r, http.StatusOK, views.BillingStatus(t.Plan, t.SubscriptionStatus))
	return nil
}

// handleBillingReturn serves the pages Stripe sends the owner back to. They
// say what happened; they change nothing: the plan changes when Stripe's
// verified event arrives.
func (s *Server) handleBillingReturn(success bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		t := TenantFrom(r.Context())
		render(w, r, http.StatusOK, views.BillingReturn(s.page(r, "Billing"), success, t.Plan, t.SubscriptionStatus))
		return nil
	}
}

// checkoutForm buys a plan; Attempt names the page it was sent from (see
// stripeSession), as does billingPortalForm's.
type checkoutForm struct {
	Plan    string `form:"plan"`
	Attempt string `form:"attempt"`
}

type billingPortalForm struct {
	Attempt string `form:"attempt"`
}

// handleCheckout serves POST /billing/checkout: it sends the owner to a
// Stripe Checkout session for the chosen plan.
func (s *Server) handleCheckout(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	var in checkoutForm
	parseForm(r, &in)
	attempt, done, err := s.stripeSession(t, in.Attempt)
	if err != nil {
		return err
	}
	plan, err := s.Plans.FindPlan(ctx, in.Plan)
	if err == nil && tenancy.LiveSubscription(t.SubscriptionStatus) {
		// A second subscription would bill twice; the current one changes
		// plan in Stripe's billing portal.
		err = tenancy.FieldErrorf(tenancy.EINVALID, "plan", "%s already has a subscription (%s): change plans with Manage subscription", t.Name, t.SubscriptionStatus)
	}
	var target string
	if err == nil {
		base := s.tenantURL(t.Slug) + "/billing"
		target, err = s.Billing.Checkout(ctx, tenancy.CheckoutInput{
			Tenant: t, OwnerEmail: IdentityFrom(ctx).User.Email, Plan: plan,
			SuccessURL: base + "/success?session_id={CHECKOUT_SESSION_ID}",
			CancelURL:  base + "/cancel",
			Attempt:    attempt,
		})
	}
	done(err == nil)
	switch tenancy.ErrorCode(err) {
	case "":
	case tenancy.EINVALID, tenancy.ENOTFOUND, tenancy.ECONFLICT:
		// Something to fix in the form: the page again, with the reason.
		// Anything else (Stripe unavailable, say) is for Error.
		var te *tenancy.Error
		errors.As(err, &te)
		p, perr := s.billingPage(r, te)
		if perr != nil {
			return perr
		}
		w.Header().Set("Content-Security-Policy", billingPagePolicy)
		render(w, r, http.StatusUnprocessableEntity, views.Billing(s.page(r, "Billing"), p))
		return nil
	default:
		return err
	}
	to, err := stripeAddress(target)
	if err != nil {
		return err
	}
	s.auditBilling(r, "billing.checkout", plan.Name, "Checkout started for plan "+plan.Name)
	s.toStripe(w, r, to)
	return nil
}

// stripeAddress checks the address of a session Stripe made: https, with a
// host, or the browser is not sent there.
func stripeAddress(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("Stripe answered with an address that is not https: %q", target)
	}
	return u, nil
}

// toStripe sends the browser to a Checkout or portal session's address.
// Stripe's own hosts are in the billing page's form-action, and a redirect
// takes the browser there. The browser holds a redirect anywhere else (a
// host Stripe adds, or a Stripe test double's) to that form-action, and
// the button would do nothing: a page that moves on by itself, which
// form-action does not govern, takes it there instead.
func (s *Server) toStripe(w http.ResponseWriter, r *http.Request, to *url.URL) {
	if slices.Contains(stripeFormHosts, to.Host) {
		http.Redirect(w, r, to.String(), http.StatusSeeOther)
		return
	}
	p := s.page(r, "Taking you to Stripe")
	p.Refresh = to.String()
	w.Header().Set("Cache-Control", "no-store")
	render(w, r, http.StatusOK, views.ToStripe(p, to.String()))
}

// handleBillingPortal serves POST /billing/portal: it sends the owner to
// Stripe's Billing Portal to manage payment methods or cancel.
func (s *Server) handleBillingPortal(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	var in billingPortalForm
	parseForm(r, &in)
	attempt, done, err := s.stripeSession(t, in.Attempt)
	if err != nil {
		return err
	}
	target, err := s.Billing.Portal(ctx, t, s.tenantURL(t.Slug)+"/billing", attempt)
	done(err == nil)
	if err != nil {
		return err
	}
	to, err := stripeAddress(target)
	if err != nil {
		return err
	}
	s.auditBilling(r, "billing.portal", t.Slug, "billing portal opened")
	s.toStripe(w, r, to)
	return nil
}

// maxStripeCalls bounds the Checkout and portal sessions one tenant opens
// per window (attemptWindow), so that no tenant spends the platform's
// Stripe rate limit, which all tenants share.
const maxStripeCalls = 20

// stripeSession admits a form that opens a Stripe session (Checkout or the
// portal) and returns its attempt token: billing must be on, the token the
// one the page made, and the tenant within maxStripeCalls. The caller
// calls done once Stripe has answered, saying whether a session was
// created: only those count against the allowance, so that a Stripe
// outage does not use it up. Until then the request holds a place, so
// that requests at once cannot pass the limit together.
func (s *Server) stripeSession(t *tenancy.Tenant, attempt string) (string, func(created bool), error) {
	if !validAttempt(attempt) {
		return "", nil, tenancy.Errorf(tenancy.EINVALID, "the form has expired: reload the page")
	}
	key := "stripe:" + t.ID
	o := s.stripeOpening
	o.mu.Lock()
	defer o.mu.Unlock()
	opening := o.n[key]
	blocked, wait := s.limiter.blocked(key, maxStripeCalls-opening)
	if opening >= maxStripeCalls {
		blocked, wait = true, time.Minute
	}
	if blocked {
		return "", nil, tenancy.Errorf(tenancy.EQUOTA, "too many billing sessions opened: try again in %d minutes", int(wait.Minutes())+1)
	}
	o.n[key]++
	return attempt, func(created bool) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.n[key]--; o.n[key] <= 0 {
			delete(o.n, key)
		}
		if created {
			s.limiter.fail(key)
		}
	}, nil
}

// openingCounts counts requests in flight per key.
type openingCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// auditBilling records a billing action that changed nothing here yet
// (Stripe's events, which do, are recorded with their changes).
func (s *Server) auditBilling(r *http.Request, action, target, summary string) {
	t := TenantFrom(r.Context())
	if err := s.Audit.Record(r.Context(), tenancy.AuditEntry{TenantID: t.ID, Action: action, Target: target, Summary: summary}); err != nil {
		s.Log.Error("audit billing action", "tenant", t.Slug, "action", action, "err", err)
	}
}

// validAttempt checks the attempt token of a billing form: the hex the page
// made, which becomes part of a Stripe idempotency key.
func validAttempt(s string) bool {
	if len(s) != 24 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
