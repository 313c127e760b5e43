package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nself/nself/internal/billing"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/services"
	"github.com/nself/nself/internal/tenancy"
)

func (a *app) planCommand() *cobra.Command {
	return group("plan", "Manage the plans tenants subscribe to",
		a.planCreateCommand(),
		a.planListCommand(),
		a.planUpdateCommand(),
		a.planArchiveCommand(),
	)
}

// planFlags are the flags that set a plan's terms; only those given count.
type planFlags struct {
	users, storage, requests, compute string
	price, stripePrice                string
}

func (f *planFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.users, "max-users", "", "members allowed (-1: unlimited)")
	fl.StringVar(&f.storage, "max-storage-gb", "", "storage in GB (-1: unlimited)")
	fl.StringVar(&f.requests, "max-api-requests", "", "API requests a month (-1: unlimited)")
	fl.StringVar(&f.compute, "max-compute-hours", "", "compute hours a month (-1: unlimited)")
	fl.StringVar(&f.price, "price", "", "monthly price, e.g. 99.00")
	fl.StringVar(&f.stripePrice, "stripe-price", "", `Stripe price id (price_…) that sells the plan; "" removes it`)
}

func (f *planFlags) input(cmd *cobra.Command, name string) (tenancy.PlanInput, error) {
	values := map[string]*string{
		"max_users": &f.users, "max_storage_gb": &f.storage, "max_api_requests": &f.requests,
		"max_compute_hours": &f.compute, "price": &f.price, "stripe_price": &f.stripePrice,
	}
	in, errs := tenancy.ReadPlanInput(name, func(field string) (string, bool) {
		// Each flag is its field's name with hyphens.
		return *values[field], cmd.Flags().Changed(strings.ReplaceAll(field, "_", "-"))
	})
	if len(errs) > 0 {
		return in, errs[0]
	}
	return in, nil
}

func (a *app) plans(cmd *cobra.Command) (*postgres.PlanService, error) {
	svc, err := a.services(cmd.Context())
	if err != nil {
		return nil, err
	}
	return svc.PlanAdmin, nil
}

// agreeStripePrice keeps the plan's price and its Stripe price in
// agreement before the plan is saved (tenancy.AgreeStripePrice), as the
// console's plan form does. Without Stripe configured they are not
// checked, and the note says so.
func (a *app) agreeStripePrice(cmd *cobra.Command, b tenancy.Billing, old *tenancy.Plan, in *tenancy.PlanInput) (string, error) {
	if b == nil {
		id := in.SoldAt(old)
		if id == "" {
			return "", nil
		}
		return "! Warning: the price was not checked against Stripe price " + id + ", as Stripe is not configured here (" +
			a.stripeOff().Error() + "): they may disagree until the plan is saved with Stripe configured", nil
	}
	return tenancy.AgreeStripePrice(cmd.Context(), b, old, in)
}

// printNote prints what an administrator is told after a change, if
// anything.
func (a *app) printNote(note string) {
	if note != "" {
		fmt.Fprintln(a.Out, note)
	}
}

// warnOverMembers names the tenants on p that have more members than it
// now allows. They keep them; the plan refuses them new ones until they
// are under it, as it refuses a tenant that would not fit (tenant update).
func (a *app) warnOverMembers(ctx context.Context, svc *services.Services, p *tenancy.Plan) error {
	over, err := svc.Tenants.OverMemberLimit(ctx, p)
	if err != nil {
		return err
	}
	for _, slug := range slices.Sorted(maps.Keys(over)) {
		fmt.Fprintf(a.Out, "! Warning: %s has %d members, more than the %d plan %s now allows: it keeps them, and can add none until it has fewer\n",
			slug, over[slug], p.MaxUsers, p.Name)
	}
	return nil
}

func (a *app) printPlan(verb string, p *tenancy.Plan) {
	w := a.Out
	fmt.Fprintf(w, "✓ Plan %s: %s\n", verb, p.Name)
	fmt.Fprintf(w, "  Max Users: %s\n", tenancy.FormatUsers(p.MaxUsers))
	fmt.Fprintf(w, "  Max Storage: %s\n", tenancy.FormatStorage(p.MaxStorageGB))
	fmt.Fprintf(w, "  Max API Requests: %s\n", tenancy.FormatAPIRequests(p.MaxAPIRequests))
	fmt.Fprintf(w, "  Max Compute Hours: %s\n", tenancy.FormatUsers(p.MaxComputeHours))
	fmt.Fprintf(w, "  Price: %s/month\n", tenancy.FormatPrice(p.PriceMonthlyCent))
	if p.StripePriceID != "" {
		fmt.Fprintf(w, "  Stripe Price: %s\n", p.StripePriceID)
	}
	if p.Archived {
		fmt.Fprintln(w, "  Status: archived")
	}
}

func (a *app) planCreateCommand() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a plan (limits not given: 5 users, 1 GB, 10,000 requests, 10 compute hours)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := f.input(cmd, args[0])
			if err != nil {
				return err
			}
			svc, err := a.services(cmd.Context())
			if err != nil {
				return err
			}
			note, err := a.agreeStripePrice(cmd, svc.Billing, nil, &in)
			if err != nil {
				return err
			}
			p, err := svc.PlanAdmin.CreatePlan(cmd.Context(), in)
			if err != nil {
				return err
			}
			a.printPlan("created", p)
			a.printNote(note)
			return nil
		},
	}
	f.add(cmd.Flags())
	return cmd
}

func (a *app) planUpdateCommand() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a plan's limits, price or Stripe price; tenants on it get them at once",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := f.input(cmd, args[0])
			if err != nil {
				return err
			}
			if in == (tenancy.PlanInput{Name: args[0]}) {
				return usageError{"nothing to change: give at least one of --max-users, --max-storage-gb, --max-api-requests, --max-compute-hours, --price, --stripe-price"}
			}
			svc, err := a.services(cmd.Context())
			if err != nil {
				return err
			}
			old, err := svc.PlanAdmin.FindPlan(cmd.Context(), in.Name)
			if err != nil {
				return err
			}
			note, err := a.agreeStripePrice(cmd, svc.Billing, old, &in)
			if err != nil {
				return err
			}
			p, err := svc.PlanAdmin.UpdatePlan(cmd.Context(), in)
			if err != nil {
				return err
			}
			a.printPlan("updated", p)
			a.printNote(note)
			if p.MaxUsers != old.MaxUsers {
				return a.warnOverMembers(cmd.Context(), svc, p)
			}
			return nil
		},
	}
	f.add(cmd.Flags())
	return cmd
}

func (a *app) planArchiveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "archive NAME",
		Short: "Stop offering a plan (tenants on it keep it)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.plans(cmd)
			if err != nil {
				return err
			}
			p, err := svc.ArchivePlan(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Plan archived: %s (tenants on it keep it; it is no longer offered)\n", p.Name)
			return nil
		},
	}
}

type planJSON struct {
	Name            string `json:"name"`
	MaxUsers        int64  `json:"max_users"`
	MaxStorageGB    int64  `json:"max_storage_gb"`
	MaxAPIRequests  int64  `json:"max_api_requests_per_month"`
	MaxComputeHours int64  `json:"max_compute_hours"`
	PriceMonthly    string `json:"price_monthly"`
	StripePriceID   string `json:"stripe_price_id,omitempty"`
	Archived        bool   `json:"archived"`
}

func (a *app) planListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List plans",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.plans(cmd)
			if err != nil {
				return err
			}
			plans, err := svc.ListPlans(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]planJSON, 0, len(plans))
				for _, p := range plans {
					out = append(out, planJSON{p.Name, p.MaxUsers, p.MaxStorageGB, p.MaxAPIRequests, p.MaxComputeHours,
						tenancy.FormatPrice(p.PriceMonthlyCent)[1:], p.StripePriceID, p.Archived})
				}
				return writeJSON(a.Out, out)
			}
			rows := make([][]string, 0, len(plans))
			for _, p := range plans {
				status := "offered"
				if p.Archived {
					status = "archived"
				}
				stripe := p.StripePriceID
				if stripe == "" {
					stripe = "-"
				}
				rows = append(rows, []string{p.Name, tenancy.FormatUsers(p.MaxUsers), tenancy.FormatStorage(p.MaxStorageGB),
					tenancy.FormatUsers(p.MaxAPIRequests), tenancy.FormatUsers(p.MaxComputeHours),
					tenancy.FormatPrice(p.PriceMonthlyCent), stripe, status})
			}
			table(a.Out, []string{"NAME", "USERS", "STORAGE", "API_REQUESTS/MONTH", "COMPUTE_HOURS", "PRICE", "STRIPE_PRICE", "STATUS"}, rows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func (a *app) tenantUpdateCommand() *cobra.Command {
	var plan string
	cmd := &cobra.Command{
		Use:   "update SLUG|ID --plan PLAN",
		Short: "Change a tenant's plan",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if plan == "" {
				return usageError{"nothing to change: give --plan"}
			}
			ctx := cmd.Context()
			db, err := a.database(ctx)
			if err != nil {
				return err
			}
			before, err := a.tenantArg(ctx, args[0])
			if err != nil {
				return err
			}
			t, err := postgres.NewBillingService(db).SetTenantPlan(ctx, before.ID, plan)
			if err != nil {
				return err
			}
			if t.Plan == before.Plan {
				fmt.Fprintf(a.Out, "✓ Plan of %s unchanged: %s\n", t.Slug, t.Plan)
				return nil
			}
			fmt.Fprintf(a.Out, "✓ Tenant updated: %s\n  Plan: %s (was %s)\n", t.Slug, t.Plan, before.Plan)
			if t.StripeSubscriptionID != "" {
				fmt.Fprintf(a.Err, "note: %s has a Stripe subscription; its next event or reconciliation sets the plan it pays for\n", t.Slug)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&plan, "plan", "", "the plan to move the tenant to")
	return cmd
}

type usageJSON struct {
	Tenant          string  `json:"tenant"`
	Period          string  `json:"period"`
	Plan            string  `json:"plan"`
	APIRequests     int64   `json:"api_requests"`
	APIRequestLimit int64   `json:"api_requests_limit"`
	StorageBytes    int64   `json:"storage_bytes"`
	StorageGBHours  float64 `json:"storage_gb_hours"`
	StorageLimitGB  int64   `json:"storage_limit_gb"`
	ComputeHours    float64 `json:"compute_hours"`
	ComputeLimit    int64   `json:"compute_hours_limit"`
	ActiveUsers     int64   `json:"active_users"`
	UserLimit       int64   `json:"users_limit"`
	EstimatedCharge string  `json:"estimated_charges"`
}

func (a *app) tenantUsageCommand() *cobra.Command {
	var month string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "usage SLUG|ID",
		Short: "Show a tenant's usage this month against its plan",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			at := time.Now()
			if month != "" {
				m, err := time.Parse("2006-01", month)
				if err != nil {
					return usageError{fmt.Sprintf("--month %q is not a month such as 2026-01", month)}
				}
				at = m
			}
			db, err := a.database(ctx)
			if err != nil {
				return err
			}
			t, err := a.tenantArg(ctx, args[0])
			if err != nil {
				return err
			}
			if err := tenancy.CheckUsageMonth(t, at, time.Now()); err != nil {
				return err
			}
			u, err := postgres.NewBillingService(db).TenantUsage(ctx, t.ID, at)
			if err != nil {
				return err
			}
			p := u.Plan
			if asJSON {
				return writeJSON(a.Out, usageJSON{t.Slug, u.Period.Format("2006-01"), p.Name,
					u.APIRequests, p.MaxAPIRequests, u.StorageBytes, u.StorageGBHours, p.MaxStorageGB,
					u.ComputeHours, p.MaxComputeHours, u.ActiveUsers, p.MaxUsers, tenancy.FormatPrice(p.PriceMonthlyCent)})
			}
			w := a.Out
			fmt.Fprintf(w, "Tenant Usage: %s (%s)\n\n", t.Slug, u.Period.Format("January 2006"))
			fmt.Fprintf(w, "API Requests: %s\n", tenancy.FormatUsageLine(tenancy.FormatCount(u.APIRequests), float64(u.APIRequests), p.MaxAPIRequests, ""))
			fmt.Fprintf(w, "Storage: %s\n", tenancy.FormatUsageLine(tenancy.FormatDecimal(u.StorageGB()), u.StorageGB(), p.MaxStorageGB, " GB"))
			fmt.Fprintf(w, "Compute Hours: %s\n", tenancy.FormatUsageLine(tenancy.FormatDecimal(u.ComputeHours), u.ComputeHours, p.MaxComputeHours, ""))
			fmt.Fprintf(w, "Active Users: %s\n\n", tenancy.FormatUsageLine(tenancy.FormatCount(u.ActiveUsers), float64(u.ActiveUsers), p.MaxUsers, ""))
			fmt.Fprintf(w, "Estimated Charges: %s/month\n", tenancy.FormatPrice(p.PriceMonthlyCent))
			return nil
		},
	}
	cmd.Flags().StringVar(&month, "month", "", "another month, as 2026-01")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// stripeOff says why Stripe is not configured, or nil when it is: its
// keys, of one mode, and the billing settings.
func (a *app) stripeOff() error {
	if err := a.cfg.RequireStripeKeys(); err != nil {
		return err
	}
	return a.billingConfig().Validate()
}

func (a *app) billingConfig() billing.Config {
	return billing.Config{
		SecretKey:     a.cfg.StripeSecretKey,
		WebhookSecret: a.cfg.StripeWebhookSecret,
		APIBase:       string(a.cfg.StripeAPIBase),
		Timeout:       time.Duration(a.cfg.StripeTimeout),
		MaxRetries:    int(a.cfg.StripeMaxRetries),
	}
}

func (a *app) billingCommand() *cobra.Command {
	return group("billing", "Subscriptions through Stripe",
		&cobra.Command{
			Use:   "reconcile",
			Short: "Compare each tenant's subscription with Stripe's and repair what drifted",
			Args:  args(0, 0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				if err := a.cfg.RequireStripeKeys(); err != nil {
					return err
				}
				if err := a.billingConfig().Validate(); err != nil {
					return err
				}
				svc, err := a.services(ctx)
				if err != nil {
					return err
				}
				results, err := svc.Billing.Reconcile(ctx)
				if err != nil {
					return err
				}
				failed := 0
				for _, r := range results {
					switch {
					case r.Err != nil:
						failed++
						fmt.Fprintf(a.Out, "✗ %s: %v\n", r.Tenant.Slug, r.Err)
					case r.Changed != "":
						fmt.Fprintf(a.Out, "✓ %s: repaired: %s\n", r.Tenant.Slug, r.Changed)
					default:
						fmt.Fprintf(a.Out, "✓ %s: matches Stripe\n", r.Tenant.Slug)
					}
				}
				fmt.Fprintf(a.Out, "%d subscription(s) checked, %d failed\n", len(results), failed)
				if failed > 0 {
					return fmt.Errorf("%d subscription(s) could not be reconciled", failed)
				}
				return nil
			},
		},
	)
}
