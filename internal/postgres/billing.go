package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// BillingService keeps tenants' plans, subscriptions, payments and usage.
//
// Stripe's webhooks and the reconciler concern a tenant they name
// themselves, not one a signed-in person acts for: they take the platform
// path (the owner), like the rest of the registry's writes, and write a
// tenant's own rows (payments) in that tenant's context.
type BillingService struct {
	db    *DB
	plans *PlanService
}

var _ tenancy.UsageService = (*BillingService)(nil)

// NewBillingService returns a BillingService using db.
func NewBillingService(db *DB) *BillingService {
	return &BillingService{db: db, plans: NewPlanService(db)}
}

// SetTenantPlan moves a tenant to another plan, as a platform
// administrator does. The plan must be offered (not archived) and hold the
// tenant's members.
func (s *BillingService) SetTenantPlan(ctx context.Context, ref, plan string) (*tenancy.Tenant, error) {
	var out *tenancy.Tenant
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		t, err := findTenant(ctx, tx, ref, true)
		if err != nil {
			return err
		}
		if t.Status == tenancy.StatusDeleted {
			return tenancy.Errorf(tenancy.EINVALID, "tenant %s is deleted", tenancy.Quote(t.Slug))
		}
		if t.Plan == plan {
			out = t // nothing to change, record or announce
			return nil
		}
		p, err := usablePlan(ctx, tx, plan)
		if err != nil {
			return err
		}
		if err := setTenant(ctx, tx, t.ID, ""); err != nil {
			return err
		}
		var members int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenants.tenant_members WHERE tenant_id = $1`, t.ID).Scan(&members); err != nil {
			return err
		}
		if err := p.Holds(t.Slug, members); err != nil {
			return err
		}
		if out, err = scanTenant(tx.QueryRow(ctx, `
			UPDATE tenants.tenants SET plan = $2, updated_at = now() WHERE id = $1
			RETURNING `+tenantColumns, t.ID, plan)); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, t.ID, "tenant.plan", t.Slug, tenancy.Changed("plan", t.Plan, plan)); err != nil {
			return err
		}
		return notifyChange(ctx, tx, t.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("change plan of tenant %s: %w", ref, translate(err))
	}
	return out, nil
}

// TenantUsage reports a tenant's usage in the period holding at.
func (s *BillingService) TenantUsage(ctx context.Context, tenantID string, at time.Time) (*tenancy.Usage, error) {
	t, err := findTenant(ctx, s.db.Admin, tenantID, false)
	if err != nil {
		return nil, err
	}
	p, err := s.plans.FindPlan(ctx, t.Plan)
	if err != nil {
		return nil, err
	}
	u := &tenancy.Usage{Tenant: t, Plan: p, Period: tenancy.PeriodOf(at)}
	end := tenancy.PeriodEnd(at)
	err = inTenant(ctx, s.db.App, t.ID, "", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT service_name, used::float8, coalesce(gauge, 0)::bigint
			FROM public.billing_usage_counters
			WHERE tenant_id = $1 AND period = $2`, t.ID, u.Period)
		if err != nil {
			return err
		}
		var name string
		var used float64
		var gauge int64
		if _, err := pgx.ForEachRow(rows, []any{&name, &used, &gauge}, func() error {
			switch tenancy.Meter(name) {
			case tenancy.MeterAPIRequests:
				u.APIRequests = int64(used)
			case tenancy.MeterStorage:
				u.StorageGBHours, u.StorageBytes = used, gauge
			case tenancy.MeterCompute:
				u.ComputeHours = used
			}
			return nil
		}); err != nil {
			return err
		}
		// Active users: those who signed in during the period.
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM auth.users
			WHERE tenant_id = $1 AND last_sign_in_at >= $2 AND last_sign_in_at < $3`,
			t.ID, u.Period, end).Scan(&u.ActiveUsers); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `
			SELECT day, quantity::bigint FROM public.billing_usage_daily
			WHERE tenant_id = $1 AND service_name = 'api_requests' AND day >= $2 AND day < $3
			ORDER BY day`, t.ID, u.Period, end)
		if err != nil {
			return err
		}
		u.Daily, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (tenancy.DailyCount, error) {
			var d tenancy.DailyCount
			err := r.Scan(&d.Day, &d.Count)
			return d, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read usage of tenant %s: %w", t.Slug, translate(err))
	}
	return u, nil
}

// RecordStorage records a reading of the bytes a tenant stores, taken at
// at: the period's GB-hours grow by the previous reading times the hours
// since it, and the reading becomes the latest. The period's start goes
// in as a timestamp of its own ($5): Citus refuses the date's cast to one,
// which depends on the time zone, in ON CONFLICT DO UPDATE.
func (s *BillingService) RecordStorage(ctx context.Context, tenantID string, bytes int64, at time.Time) error {
	period := tenancy.PeriodOf(at)
	err := execInTenant(ctx, s.db.App, tenantID, `
		INSERT INTO public.billing_usage_counters AS c (tenant_id, period, service_name, used, gauge, gauge_at)
		VALUES ($1, $2, 'storage', 0, $3, $4)
		ON CONFLICT (tenant_id, period, service_name) DO UPDATE SET
		  used = c.used + coalesce(c.gauge, 0) / 1e9
		         * greatest(extract(epoch FROM $4 - coalesce(c.gauge_at, $5)), 0) / 3600,
		  gauge = $3, gauge_at = $4, updated_at = excluded.updated_at`, tenantID, period, bytes, at, period)
	if err != nil {
		return fmt.Errorf("record storage of tenant %s: %w", tenantID, translate(err))
	}
	return nil
}

// ActiveTenantIDs lists the tenants that are not deleted, for periodic
// jobs.
func (s *BillingService) ActiveTenantIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.Admin.Query(ctx, `SELECT id FROM tenants.tenants WHERE status <> 'deleted' ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// BillingTenant reads a tenant as stored now, for billing, which must not
// act on a cached copy (a Stripe customer stored a moment ago).
func (s *BillingService) BillingTenant(ctx context.Context, tenantID string) (*tenancy.Tenant, error) {
	t, err := findTenant(ctx, s.db.Admin, tenantID, false)
	if err != nil {
		return nil, fmt.Errorf("find tenant %s: %w", tenantID, translate(err))
	}
	return t, nil
}

// SetCustomer stores customerID as the tenant's Stripe customer unless it
// has one already, and returns the one it has then. The customer is made
// in Stripe before, outside any transaction: holding the tenant's row
// locked while Stripe answers (or does not) would block every change to
// the tenant and hold a connection of the pool. A conditional update
// replaces the lock: the first customer stored stays.
func (s *BillingService) SetCustomer(ctx context.Context, tenantID, customerID string) (string, error) {
	var id string
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			UPDATE tenants.tenants SET stripe_customer_id = $2, updated_at = now()
			WHERE id = $1 AND stripe_customer_id IS NULL
			RETURNING stripe_customer_id`, tenantID, customerID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			err = tx.QueryRow(ctx, `SELECT coalesce(stripe_customer_id, '') FROM tenants.tenants WHERE id = $1`, tenantID).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return tenancy.Errorf(tenancy.ENOTFOUND, "no tenant %s", tenantID)
			}
			return err
		}
		if err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return "", fmt.Errorf("Stripe customer of tenant %s: %w", tenantID, translate(err))
	}
	return id, nil
}

// ListPayments lists a tenant's recorded payments, newest first.
func (s *BillingService) ListPayments(ctx context.Context, tenantID string, limit int) ([]tenancy.Payment, error) {
	var out []tenancy.Payment
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (tenancy.Payment, error) {
			var p tenancy.Payment
			err := r.Scan(&p.InvoiceID, &p.Status, &p.AmountCents, &p.Currency, &p.InvoiceURL, &p.OccurredAt)
			return p, err
		})
		return err
	}, `
		SELECT stripe_invoice_id, status, amount_cents, currency, invoice_url, occurred_at
		FROM public.billing_payments
		WHERE tenant_id = $1
		ORDER BY occurred_at DESC
		LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return out, nil
}

// ApplyEvent processes a verified Stripe event once: the event's record
// and every change it makes commit together. An event already processed
// (or ignored) changes nothing again. When processing fails, nothing of it
// is kept but the failure, recorded on the event, and the error is
// returned so that Stripe delivers it again.
func (s *BillingService) ApplyEvent(ctx context.Context, ev *tenancy.BillingEvent) (*tenancy.EventOutcome, error) {
	var out *tenancy.EventOutcome
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO public.billing_stripe_events (id, type, created, payload, status)
			VALUES ($1, $2, $3, $4, 'received')
			ON CONFLICT (id) DO NOTHING`, ev.ID, ev.Type, ev.Created, ev.Payload); err != nil {
			return err
		}
		// Deliveries of one event wait for each other here.
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM public.billing_stripe_events WHERE id = $1 FOR UPDATE`, ev.ID).Scan(&status); err != nil {
			return err
		}
		if status == tenancy.EventStatusProcessed || status == tenancy.EventStatusIgnored {
			out = &tenancy.EventOutcome{Status: tenancy.EventStatusAlreadyProcessed, Result: "already " + status}
			return nil
		}
		var err error
		if out, err = s.apply(ctx, tx, ev); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE public.billing_stripe_events
			SET status = $2, result = $3, subject_tenant = nullif($4, '')::uuid,
			    attempts = attempts + 1, processed_at = now()
			WHERE id = $1`, ev.ID, out.Status, out.Result, out.TenantID)
		return err
	})
	if err == nil {
		return out, nil
	}
	err = translate(err)
	// Keep the failure for the console; the event's changes are gone.
	if _, rerr := s.db.Admin.Exec(context.WithoutCancel(ctx), `
		INSERT INTO public.billing_stripe_events (id, type, created, payload, status, result, attempts)
		VALUES ($1, $2, $3, $4, 'failed', $5, 1)
		ON CONFLICT (id) DO UPDATE SET status = 'failed', result = $5,
		  attempts = billing_stripe_events.attempts + 1, processed_at = excluded.received_at
		-- A delivery of the same event may have processed it meanwhile.
		WHERE billing_stripe_events.status NOT IN ('processed', 'ignored')`,
		ev.ID, ev.Type, ev.Created, ev.Payload, err.Error()); rerr != nil {
		return nil, fmt.Errorf("process Stripe event %s: %w (and recording the failure: %v)", ev.ID, err, rerr)
	}
	return nil, fmt.Errorf("process Stripe event %s: %w", ev.ID, err)
}

// apply makes an event's changes in tx.
func (s *BillingService) apply(ctx context.Context, tx pgx.Tx, ev *tenancy.BillingEvent) (*tenancy.EventOutcome, error) {
	switch ev.Type {
	case tenancy.EventCheckoutCompleted, tenancy.EventSubscriptionCreated, tenancy.EventSubscriptionUpdated,
		tenancy.EventSubscriptionDeleted, tenancy.EventInvoicePaid, tenancy.EventInvoicePaymentFailed:
	default:
		return &tenancy.EventOutcome{Status: tenancy.EventStatusIgnored, Result: "not an event the platform acts on"}, nil
	}
	t, err := eventTenant(ctx, tx, ev)
	if tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
		// Not a tenant's: a customer made in Stripe's dashboard, say.
		// Failing would have Stripe deliver it again for days.
		return &tenancy.EventOutcome{Status: tenancy.EventStatusIgnored, Result: tenancy.ErrorMessage(err)}, nil
	} else if err != nil {
		return nil, err
	}
	out := &tenancy.EventOutcome{Status: tenancy.EventStatusProcessed, TenantID: t.ID}
	sub := ev.Subscription
	switch ev.Type {
	case tenancy.EventCheckoutCompleted:
		held, err := heldSubscription(ctx, tx, t)
		if err != nil {
			return nil, err
		}
		link, result := tenancy.LinkCheckout(held, sub.SubscriptionID)
		if out.Result = result; !link {
			break
		}
		if _, err := tx.Exec(ctx, `
			UPDATE tenants.tenants
			SET stripe_customer_id = $2, stripe_subscription_id = coalesce(nullif($3, ''), stripe_subscription_id), updated_at = now()
			WHERE id = $1`, t.ID, sub.CustomerID, sub.SubscriptionID); err != nil {
			return nil, err
		}
	case tenancy.EventSubscriptionCreated, tenancy.EventSubscriptionUpdated, tenancy.EventSubscriptionDeleted:
		sub.Deleted = ev.Type == tenancy.EventSubscriptionDeleted
		if out.Result, err = applySubscription(ctx, tx, t, sub, ev.Created); err != nil {
			return nil, err
		}
	case tenancy.EventInvoicePaid, tenancy.EventInvoicePaymentFailed:
		if ev.Payment == nil {
			return nil, tenancy.Errorf(tenancy.EINVALID, "invoice event without an invoice")
		}
		if out.Result, err = recordPayment(ctx, tx, t, ev); err != nil {
			return nil, err
		}
		if ev.Type == tenancy.EventInvoicePaymentFailed {
			// The owners' mails commit with the payment's record: an event
			// that fails mails nobody, and its replay, once it succeeds,
			// mails them as the first delivery would have.
			n, err := queueOwnerMail(ctx, tx, t.ID, "payment_failed", billingPath)
			if err != nil {
				return nil, err
			}
			out.Result += fmt.Sprintf("; %d owner(s) mailed", n)
		}
	}
	if err := setTenant(ctx, tx, t.ID, ""); err != nil {
		return nil, err
	}
	if err := recordAudit(ctx, tx, t.ID, "billing.stripe_event", ev.Type+" "+ev.ID, out.Result); err != nil {
		return nil, err
	}
	if err := notifyChange(ctx, tx, t.ID); err != nil {
		return nil, err
	}
	return out, nil
}

// eventTenant finds the tenant an event concerns: the one whose Stripe
// customer it names, or, for a customer not linked yet, the tenant its
// metadata names, provided that tenant has no other customer.
func eventTenant(ctx context.Context, tx pgx.Tx, ev *tenancy.BillingEvent) (*tenancy.Tenant, error) {
	cust := ev.Subscription.CustomerID
	if cust != "" {
		t, err := scanTenant(tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants.tenants WHERE stripe_customer_id = $1 FOR UPDATE`, cust))
		switch {
		case err == nil:
			if ev.TenantHint != "" && ev.TenantHint != t.ID {
				return nil, tenancy.Errorf(tenancy.ECONFLICT, "customer %s belongs to tenant %s, but the event names tenant %s", cust, t.ID, ev.TenantHint)
			}
			return t, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, err
		}
	}
	if !tenancy.IsUUID(ev.TenantHint) {
		return nil, tenancy.Errorf(tenancy.ENOTFOUND, "no tenant has Stripe customer %s, and the event names no tenant", tenancy.Quote(cust))
	}
	t, err := findTenant(ctx, tx, ev.TenantHint, true)
	if err != nil {
		return nil, err
	}
	if t.StripeCustomerID != "" && t.StripeCustomerID != cust {
		return nil, tenancy.Errorf(tenancy.ECONFLICT, "tenant %s has Stripe customer %s, not %s", t.Slug, t.StripeCustomerID, cust)
	}
	return t, nil
}

// applySubscription makes a tenant's plan and status follow its
// subscription as of at, as tenancy.DecideSubscription decides, and says
// what it did. t's row is locked.
func applySubscription(ctx context.Context, tx pgx.Tx, t *tenancy.Tenant, sub tenancy.SubscriptionState, at time.Time) (string, error) {
	held, err := heldSubscription(ctx, tx, t)
	if err != nil {
		return "", err
	}
	pricePlan, err := pricePlanOf(ctx, tx, sub)
	if err != nil {
		return "", err
	}
	c, err := tenancy.DecideSubscription(held, sub, at, pricePlan)
	if err != nil || !c.Apply {
		return c.Result, err
	}
	var periodEnd any
	if !sub.PeriodEnd.IsZero() {
		periodEnd = sub.PeriodEnd
	}
	if _, err := tx.Exec(ctx, `
		UPDATE tenants.tenants SET
		  plan = $2, subscription_status = $3, status = $4,
		  stripe_customer_id = coalesce(stripe_customer_id, nullif($5, '')),
		  stripe_subscription_id = nullif($6, ''),
		  subscription_period_end = $7, subscription_event_at = $8, updated_at = now()
		WHERE id = $1`,
		t.ID, c.Plan, c.Status, c.TenantStatus, sub.CustomerID, sub.SubscriptionID, periodEnd, at); err != nil {
		return "", err
	}
	return c.Result, announceSuspended(ctx, tx, t.ID, t.Status, c.TenantStatus)
}

// heldSubscription reads the subscription state t holds now. The plan and
// the tenant's status are t's, read with its row locked.
func heldSubscription(ctx context.Context, tx pgx.Tx, t *tenancy.Tenant) (tenancy.HeldSubscription, error) {
	h := tenancy.HeldSubscription{Plan: t.Plan, TenantStatus: t.Status}
	var appliedAt *time.Time
	if err := tx.QueryRow(ctx, `
		SELECT subscription_event_at, coalesce(stripe_subscription_id, ''), coalesce(subscription_status, '')
		FROM tenants.tenants WHERE id = $1`,
		t.ID).Scan(&appliedAt, &h.SubscriptionID, &h.Status); err != nil {
		return h, err
	}
	if appliedAt != nil {
		h.AppliedAt = *appliedAt
	}
	return h, nil
}

// pricePlanOf finds the plan sold at sub's price when sub gives that plan;
// "" when it does not, or when no plan is sold there.
func pricePlanOf(ctx context.Context, tx pgx.Tx, sub tenancy.SubscriptionState) (string, error) {
	if !sub.GivesPricePlan() {
		return "", nil
	}
	var name string
	err := tx.QueryRow(ctx, `SELECT name FROM public.billing_plans WHERE stripe_price_id = $1`, sub.PriceID).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return name, err
}

// recordPayment records an invoice paid or failed, once per invoice (a
// failed invoice later paid becomes paid). A failure marks an entitled
// subscription past due.
func recordPayment(ctx context.Context, tx pgx.Tx, t *tenancy.Tenant, ev *tenancy.BillingEvent) (string, error) {
	p := ev.Payment
	if err := setTenant(ctx, tx, t.ID, ""); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO public.billing_payments (tenant_id, stripe_invoice_id, status, amount_cents, currency, invoice_url, occurred_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, stripe_invoice_id) DO UPDATE SET
		  status = CASE WHEN billing_payments.status = 'paid' THEN 'paid' ELSE excluded.status END,
		  amount_cents = excluded.amount_cents, invoice_url = excluded.invoice_url, occurred_at = excluded.occurred_at`,
		t.ID, p.InvoiceID, p.Status, p.AmountCents, p.Currency, p.InvoiceURL, p.OccurredAt); err != nil {
		return "", err
	}
	if p.Status == "paid" {
		return fmt.Sprintf("invoice %s paid: %s", p.InvoiceID, tenancy.FormatAmount(p.AmountCents, p.Currency)), nil
	}
	desc := fmt.Sprintf("invoice %s payment failed: %s", p.InvoiceID, tenancy.FormatAmount(p.AmountCents, p.Currency))
	held, err := heldSubscription(ctx, tx, t)
	if err != nil {
		return "", err
	}
	if !tenancy.PaymentFailureMarksPastDue(held, ev.Subscription.SubscriptionID, ev.Created) {
		return desc, nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE tenants.tenants SET subscription_status = $2, updated_at = now() WHERE id = $1`,
		t.ID, tenancy.SubscriptionPastDue); err != nil {
		return "", err
	}
	return desc + "; subscription past due", nil
}

// ReconcileSubscription makes a tenant's subscription match sub, Stripe's
// current state of it, and says what changed ("" when nothing did).
//
// readAt is when Stripe's state was read: an event stamped later still
// applies after it.
func (s *BillingService) ReconcileSubscription(ctx context.Context, tenantID string, sub tenancy.SubscriptionState, readAt time.Time) (string, error) {
	var desc string
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		t, err := findTenant(ctx, tx, tenantID, true)
		if err != nil {
			return err
		}
		pricePlan, err := pricePlanOf(ctx, tx, sub)
		if err != nil {
			return err
		}
		if needed, err := tenancy.ReconcileNeeded(t.Plan, t.SubscriptionStatus, sub, pricePlan); err != nil || !needed {
			return err
		}
		if desc, err = applySubscription(ctx, tx, t, sub, readAt); err != nil {
			return err
		}
		desc = "was " + t.Plan + "/" + orNone(t.SubscriptionStatus) + "; now " + desc
		if err := setTenant(ctx, tx, t.ID, ""); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, t.ID, "billing.reconcile", t.Slug, desc); err != nil {
			return err
		}
		return notifyChange(ctx, tx, t.ID)
	})
	if err != nil {
		return "", fmt.Errorf("reconcile tenant %s: %w", tenantID, translate(err))
	}
	return desc, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// SubscribedTenants lists the tenants that have a Stripe subscription, for
// the reconciler.
func (s *BillingService) SubscribedTenants(ctx context.Context) ([]*tenancy.Tenant, error) {
	rows, err := s.db.Admin.Query(ctx, `
		SELECT `+tenantColumns+` FROM tenants.tenants
		WHERE stripe_subscription_id IS NOT NULL AND status <> 'deleted'
		ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("list subscribed tenants: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.Tenant, error) { return scanTenant(r) })
}

// ListEvents lists received Stripe events, newest first; status filters
// when set.
func (s *BillingService) ListEvents(ctx context.Context, status string, limit int) ([]*tenancy.EventRecord, error) {
	rows, err := s.db.Admin.Query(ctx, `
		SELECT e.id, e.type, e.created, e.status, e.result, coalesce(e.subject_tenant::text, ''),
		       coalesce(t.slug, ''), e.attempts, e.received_at, e.processed_at, e.payload::text
		FROM public.billing_stripe_events e
		LEFT JOIN tenants.tenants t ON t.id = e.subject_tenant
		WHERE $1 = '' OR e.status = $1
		ORDER BY e.received_at DESC, e.id
		LIMIT $2`, status, limit)
	if err != nil {
		return nil, fmt.Errorf("list Stripe events: %w", err)
	}
	return pgx.CollectRows(rows, scanEvent)
}

func scanEvent(r pgx.CollectableRow) (*tenancy.EventRecord, error) {
	var e tenancy.EventRecord
	var payload string
	err := r.Scan(&e.ID, &e.Type, &e.Created, &e.Status, &e.Result, &e.TenantID, &e.TenantSlug,
		&e.Attempts, &e.ReceivedAt, &e.ProcessedAt, &payload)
	e.Payload = []byte(payload)
	return &e, err
}

// FindEvent returns one received event.
func (s *BillingService) FindEvent(ctx context.Context, id string) (*tenancy.EventRecord, error) {
	rows, err := s.db.Admin.Query(ctx, `
		SELECT e.id, e.type, e.created, e.status, e.result, coalesce(e.subject_tenant::text, ''),
		       coalesce(t.slug, ''), e.attempts, e.received_at, e.processed_at, e.payload::text
		FROM public.billing_stripe_events e
		LEFT JOIN tenants.tenants t ON t.id = e.subject_tenant
		WHERE e.id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("find Stripe event: %w", err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanEvent)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenancy.Errorf(tenancy.ENOTFOUND, "no Stripe event %s", tenancy.Quote(id))
	}
	return e, err
}

// Revenue sums the monthly price of the tenants whose subscription is
// entitled, by plan.
func (s *BillingService) Revenue(ctx context.Context) ([]tenancy.PlanRevenue, error) {
	rows, err := s.db.Admin.Query(ctx, `
		SELECT p.name, count(t.id), coalesce(sum((p.price_monthly * 100)::bigint), 0)
		FROM public.billing_plans p
		JOIN tenants.tenants t ON t.plan = p.name
		WHERE t.status <> 'deleted' AND t.subscription_status = ANY($1)
		GROUP BY p.name, p.sort_order
		ORDER BY p.sort_order, p.name`, tenancy.PlanKeepingStatuses())
	if err != nil {
		return nil, fmt.Errorf("revenue by plan: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (tenancy.PlanRevenue, error) {
		var p tenancy.PlanRevenue
		err := r.Scan(&p.Plan, &p.Tenants, &p.MonthlyCts)
		return p, err
	})
}

// PastDue lists the tenants whose subscription is past due.
func (s *BillingService) PastDue(ctx context.Context) ([]*tenancy.Tenant, error) {
	rows, err := s.db.Admin.Query(ctx, `
		SELECT `+tenantColumns+` FROM tenants.tenants
		WHERE subscription_status = 'past_due' AND status <> 'deleted'
		ORDER BY updated_at`)
	if err != nil {
		return nil, fmt.Errorf("list tenants past due: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.Tenant, error) { return scanTenant(r) })
}

// StorageBytes is what a tenant's stored objects (its logos) take.
func (s *BillingService) StorageBytes(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if rows.Next() {
			return rows.Scan(&n)
		}
		return nil
	}, `SELECT coalesce(sum(size_bytes), 0)::bigint FROM tenants.tenant_logos WHERE tenant_id = $1`, tenantID)
	return n, err
}
