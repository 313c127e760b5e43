package tenancy

import (
	"context"
	"fmt"
	"strings"
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

// PlanLimits says a plan's limits in one line, as a person reads them on
// a plan's offer: "50 members, 100 GB of storage, 100,000 API requests a
// month", or "Unlimited members, unlimited storage, unlimited API
// requests".
func PlanLimits(p *Plan) string {
	members := "unlimited members"
	if p.MaxUsers != Unlimited {
		members = plural(p.MaxUsers, "member")
	}
	storage := "unlimited storage"
	if p.MaxStorageGB != Unlimited {
		storage = FormatStorage(p.MaxStorageGB) + " of storage"
	}
	requests := "unlimited API requests"
	if p.MaxAPIRequests != Unlimited {
		requests = plural(p.MaxAPIRequests, "API request") + " a month"
	}
	line := members + ", " + storage + ", " + requests
	return strings.ToUpper(line[:1]) + line[1:]
}

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
