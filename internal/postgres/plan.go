package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// PlanService implements tenancy.PlanService. Plans are platform data that
// every tenant may read, so it uses the application role without a tenant.
type PlanService struct {
	db *DB
}

var _ tenancy.PlanService = (*PlanService)(nil)

// NewPlanService returns a PlanService using db.
func NewPlanService(db *DB) *PlanService { return &PlanService{db: db} }

const planColumns = `
	id, name, max_users, max_storage_gb, max_api_requests_per_month, max_compute_hours,
	(price_monthly * 100)::bigint, coalesce(stripe_price_id, ''), archived_at IS NOT NULL`

func scanPlan(row pgx.Row) (*tenancy.Plan, error) {
	var p tenancy.Plan
	err := row.Scan(&p.ID, &p.Name, &p.MaxUsers, &p.MaxStorageGB, &p.MaxAPIRequests,
		&p.MaxComputeHours, &p.PriceMonthlyCent, &p.StripePriceID, &p.Archived)
	return &p, err
}

// FindPlan finds a plan by name.
func (s *PlanService) FindPlan(ctx context.Context, name string) (*tenancy.Plan, error) {
	p, err := scanPlan(s.db.App.QueryRow(ctx, `SELECT `+planColumns+` FROM public.billing_plans WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenancy.Errorf(tenancy.ENOTFOUND, "plan %s does not exist", tenancy.Quote(name))
	} else if err != nil {
		return nil, fmt.Errorf("find plan: %w", err)
	}
	return p, nil
}

// ListPlans lists all plans, archived ones included, in display order.
func (s *PlanService) ListPlans(ctx context.Context) ([]*tenancy.Plan, error) {
	rows, err := s.db.App.Query(ctx, `SELECT `+planColumns+` FROM public.billing_plans ORDER BY sort_order, name`)
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	plans, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.Plan, error) { return scanPlan(r) })
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	return plans, nil
}

// PlansChanged is the payload announced on ChangeChannel when a plan
// changes: every process then forgets the plans and the tenants it cached.
const PlansChanged = "plans"

var _ tenancy.PlanAdmin = (*PlanService)(nil)

// CreatePlan adds a plan, with the guide's defaults for limits not given,
// after the existing plans in display order. Plans are the platform's: the
// owner writes them.
func (s *PlanService) CreatePlan(ctx context.Context, in tenancy.PlanInput) (*tenancy.Plan, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	p, err := s.writePlan(ctx, in.Name, "plan.create", planSummary, `
		INSERT INTO public.billing_plans
			(name, max_users, max_storage_gb, max_api_requests_per_month, max_compute_hours,
			 price_monthly, stripe_price_id, sort_order)
		VALUES ($1, coalesce($2, 5), coalesce($3, 1), coalesce($4, 10000), coalesce($5, 10),
			coalesce($6::bigint, 0) / 100.0, nullif($7, ''), $8)
		RETURNING `+planColumns,
		in.Name, in.MaxUsers, in.MaxStorageGB, in.MaxAPIRequests, in.MaxComputeHours, in.PriceCents, in.StripePriceID, nextSortOrder{})
	if err != nil {
		return nil, planError("create", in, err)
	}
	return p, nil
}

// UpdatePlan changes the given fields of a plan. Tenants on it get the new
// limits at once, in every process.
func (s *PlanService) UpdatePlan(ctx context.Context, in tenancy.PlanInput) (*tenancy.Plan, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	p, err := s.writePlan(ctx, in.Name, "plan.update", planSummary, `
		UPDATE public.billing_plans SET
			max_users = coalesce($2, max_users),
			max_storage_gb = coalesce($3, max_storage_gb),
			max_api_requests_per_month = coalesce($4, max_api_requests_per_month),
			max_compute_hours = coalesce($5, max_compute_hours),
			price_monthly = coalesce($6::bigint / 100.0, price_monthly),
			stripe_price_id = CASE WHEN $7::text IS NULL THEN stripe_price_id ELSE nullif($7, '') END,
			updated_at = now()
		WHERE name = $1
		RETURNING `+planColumns,
		in.Name, in.MaxUsers, in.MaxStorageGB, in.MaxAPIRequests, in.MaxComputeHours, in.PriceCents, in.StripePriceID)
	if err != nil {
		return nil, planError("update", in, err)
	}
	return p, nil
}

// ArchivePlan stops offering a plan: new tenants and Checkout cannot pick
// it; tenants on it keep it. The default plan cannot be archived.
func (s *PlanService) ArchivePlan(ctx context.Context, name string) (*tenancy.Plan, error) {
	if name == tenancy.DefaultPlan {
		return nil, tenancy.Errorf(tenancy.EINVALID, "plan %s is the default plan for new tenants and cannot be archived", tenancy.Quote(name))
	}
	p, err := s.writePlan(ctx, name, "plan.archive", func(*tenancy.Plan) string { return "archived" }, `
		UPDATE public.billing_plans SET archived_at = coalesce(archived_at, $2), updated_at = $2
		WHERE name = $1
		RETURNING `+planColumns, name, s.db.Now())
	if err != nil {
		return nil, planError("archive", tenancy.PlanInput{Name: name}, err)
	}
	return p, nil
}

// writePlan runs one statement that writes a plan and returns it, records
// it in the platform's audit log and announces it, in one transaction.
func (s *PlanService) writePlan(ctx context.Context, name, action string, summary func(*tenancy.Plan) string, sql string, args ...any) (*tenancy.Plan, error) {
	var p *tenancy.Plan
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		args := slices.Clone(args)
		for i, a := range args {
			// Read in a statement of its own: a distributed PostgreSQL
			// refuses a subquery in INSERT … VALUES. Plans are written
			// one at a time (the transaction below locks the table).
			if _, ok := a.(nextSortOrder); ok {
				if _, err := tx.Exec(ctx, `LOCK TABLE public.billing_plans IN SHARE ROW EXCLUSIVE MODE`); err != nil {
					return err
				}
				var next int
				if err := tx.QueryRow(ctx, `SELECT coalesce(max(sort_order), 0) + 1 FROM public.billing_plans`).Scan(&next); err != nil {
					return err
				}
				args[i] = next
			}
		}
		var err error
		p, err = scanPlan(tx.QueryRow(ctx, sql, args...))
		if errors.Is(err, pgx.ErrNoRows) {
			return tenancy.Errorf(tenancy.ENOTFOUND, "plan %s does not exist", tenancy.Quote(name))
		} else if err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, "", action, p.Name, summary(p)); err != nil {
			return err
		}
		return notifyChange(ctx, tx, PlansChanged)
	})
	return p, err
}

// nextSortOrder stands, among writePlan's arguments, for the sort order
// after the last plan's.
type nextSortOrder struct{}

// planSummary describes a plan's terms for the audit log.
func planSummary(p *tenancy.Plan) string {
	return fmt.Sprintf("users %s, storage %s, API requests %s, compute hours %s, price %s/month, Stripe price %s",
		tenancy.FormatUsers(p.MaxUsers), tenancy.FormatStorage(p.MaxStorageGB), tenancy.FormatAPIRequests(p.MaxAPIRequests),
		tenancy.FormatUsers(p.MaxComputeHours), tenancy.FormatPrice(p.PriceMonthlyCent), orNone(p.StripePriceID))
}

// planError names what another plan already has (the name or the Stripe
// price) on a conflict, and wraps any other error.
func planError(verb string, in tenancy.PlanInput, err error) error {
	err = translate(err)
	if tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		return fmt.Errorf("%s plan %s: %w", verb, in.Name, err)
	}
	if strings.Contains(err.Error(), "stripe_price") && in.StripePriceID != nil {
		return tenancy.FieldErrorf(tenancy.ECONFLICT, "stripe_price", "Stripe price %s already belongs to another plan", tenancy.Quote(*in.StripePriceID))
	}
	return tenancy.FieldErrorf(tenancy.ECONFLICT, "name", "plan %s already exists", tenancy.Quote(in.Name))
}

// FindPlanByPrice finds the plan sold at a Stripe price.
func (s *PlanService) FindPlanByPrice(ctx context.Context, priceID string) (*tenancy.Plan, error) {
	p, err := scanPlan(s.db.App.QueryRow(ctx, `SELECT `+planColumns+` FROM public.billing_plans WHERE stripe_price_id = $1`, priceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenancy.Errorf(tenancy.ENOTFOUND, "no plan is sold at Stripe price %s", tenancy.Quote(priceID))
	} else if err != nil {
		return nil, fmt.Errorf("find plan by price: %w", err)
	}
	return p, nil
}

// PlanCache answers plan lookups from memory. It follows the tenant
// cache's invalidation: a plan change drops every plan in every process.
type PlanCache struct {
	*PlanService
	mu    sync.RWMutex
	plans map[string]*tenancy.Plan
	gen   uint64
	live  func() bool
}

// Cached returns the plans cached in memory, invalidated with cache.
func (s *PlanService) Cached(cache *TenantCache) *PlanCache {
	c := &PlanCache{PlanService: s, live: cache.live.Load}
	cache.OnChange(func(tenantID string) {
		if tenantID == "" {
			c.mu.Lock()
			c.plans = nil
			c.gen++
			c.mu.Unlock()
		}
	})
	return c
}

// FindPlan finds a plan by name, from memory when the cache is live.
func (c *PlanCache) FindPlan(ctx context.Context, name string) (*tenancy.Plan, error) {
	if !c.live() {
		return c.PlanService.FindPlan(ctx, name)
	}
	c.mu.RLock()
	plans, gen := c.plans, c.gen
	c.mu.RUnlock()
	if plans == nil {
		list, err := c.PlanService.ListPlans(ctx)
		if err != nil {
			return nil, err
		}
		plans = make(map[string]*tenancy.Plan, len(list))
		for _, p := range list {
			plans[p.Name] = p
		}
		c.mu.Lock()
		if c.gen == gen {
			c.plans = plans
		}
		c.mu.Unlock()
	}
	if p, ok := plans[name]; ok {
		return p, nil
	}
	return nil, tenancy.Errorf(tenancy.ENOTFOUND, "plan %s does not exist", tenancy.Quote(name))
}
