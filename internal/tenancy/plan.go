package tenancy

import (
	"context"
	"fmt"
)

// Unlimited is the value of a plan limit that never blocks.
const Unlimited = -1

// DefaultPlan is the plan a tenant gets when none is named.
const DefaultPlan = "free"

// Plan is a set of limits and a monthly price.
type Plan struct {
	ID               string
	Name             string
	MaxUsers         int64
	MaxStorageGB     int64
	MaxAPIRequests   int64 // per month
	MaxComputeHours  int64 // per month
	PriceMonthlyCent int64
	StripePriceID    string
	Archived         bool
}

// Holds refuses a plan too small for the members a tenant has.
func (p *Plan) Holds(tenant string, members int64) error {
	if p.MaxUsers != Unlimited && members > p.MaxUsers {
		return FieldErrorf(EQUOTA, "plan", "plan %s allows %s; %s has %d: remove members first",
			Quote(p.Name), plural(p.MaxUsers, "member"), tenant, members)
	}
	return nil
}

// FormatUsers renders a user limit: "50" or "Unlimited".
func FormatUsers(n int64) string { return formatLimit(n, "") }

// FormatStorage renders a storage limit: "100 GB" or "Unlimited".
func FormatStorage(gb int64) string { return formatLimit(gb, " GB") }

// FormatAPIRequests renders a monthly request limit: "100,000/month".
func FormatAPIRequests(n int64) string { return formatLimit(n, "/month") }

// FormatPrice renders cents as dollars: 9900 → "$99.00".
func FormatPrice(cents int64) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }

func formatLimit(n int64, unit string) string {
	if n < 0 {
		return "Unlimited"
	}
	return FormatCount(n) + unit
}

// PlanService reads plans.
type PlanService interface {
	FindPlan(ctx context.Context, name string) (*Plan, error)
	ListPlans(ctx context.Context) ([]*Plan, error)
}
