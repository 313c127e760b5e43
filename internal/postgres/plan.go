package postgres

import (
	"context"
	"errors"
	"fmt"

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
