package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func (a *app) tenantCommand() *cobra.Command {
	return group("tenant", "Manage tenants",
		a.tenantInitCommand(),
		a.tenantCreateCommand(),
		a.tenantListCommand(),
		a.tenantShowCommand(),
		a.tenantStatusCommand("suspend", tenancy.StatusSuspended),
		a.tenantStatusCommand("activate", tenancy.StatusActive),
		a.tenantDeleteCommand(),
		a.tenantStatsCommand(),
		a.tenantMemberCommand(),
		a.tenantDomainCommand(),
		a.tenantTestIsolationCommand(),
		a.tenantDoctorCommand(),
		a.tenantAdoptCommand(),
		a.tenantSettingCommand(),
		a.tenantAuditCommand(),
		a.tenantUpdateCommand(),
		a.tenantUsageCommand(),
		a.tenantExportCommand(),
		a.tenantImportCommand(),
		a.tenantPurgeStorageCommand(),
	)
}

// services opens the database and returns the tenant service.
func (a *app) tenants(ctx context.Context) (*postgres.TenantService, error) {
	svc, err := a.services(ctx)
	if err != nil {
		return nil, err
	}
	return svc.Tenants, nil
}

// tenantArg opens the database and finds the tenant an argument names.
func (a *app) tenantArg(ctx context.Context, ref string) (*tenancy.Tenant, error) {
	svc, err := a.tenants(ctx)
	if err != nil {
		return nil, err
	}
	return svc.FindTenant(ctx, ref)
}

func (a *app) tenantInitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Apply migrations and create the default tenant for existing data (safe to run again)",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := a.database(ctx)
			if err != nil {
				return err
			}
			res, err := db.Migrate(ctx)
			if err != nil {
				return err
			}
			svc := postgres.NewTenantService(db, a.cfg.Strategy)
			created := false
			t, err := svc.FindTenant(ctx, tenancy.DefaultTenantSlug)
			if tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
				var c *tenancy.Created
				// The default tenant takes TENANT_STRATEGY's default like any
				// other: a schema of its own when every tenant has one.
				if c, err = svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Default", Slug: tenancy.DefaultTenantSlug}); err == nil {
					t, created = c.Tenant, true
				}
			}
			if err != nil {
				return err
			}
			if !res.Changed() && !created {
				fmt.Fprintf(a.Out, "✓ Already initialized: schema at version %d, default tenant %s exists; nothing changed\n", res.Version, t.Slug)
				return nil
			}
			printMigrateResult(a, res)
			if created {
				fmt.Fprintf(a.Out, "✓ Default tenant created: %s (ID: %s)\n", t.Slug, t.ID)
			} else {
				fmt.Fprintf(a.Out, "✓ Default tenant exists: %s (ID: %s)\n", t.Slug, t.ID)
			}
			return nil
		},
	}
}

func (a *app) tenantCreateCommand() *cobra.Command {
	var in tenancy.NewTenant
	var strategy string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			in.Name = args[0]
			if pwStdin {
				if in.Owner == "" || tenancy.IsUUID(in.Owner) {
					return usageError{"--owner-password-stdin needs --owner with an email address"}
				}
				pw, err := readPassword(a.In)
				if err != nil {
					return err
				}
				in.OwnerPassword = pw
			}
			if strategy != "" {
				s, err := tenancy.ParseStrategy(strategy)
				if err != nil {
					return err
				}
				in.Strategy = s
			}
			svc, err := a.tenants(ctx)
			if err != nil {
				return err
			}
			c, err := svc.CreateTenant(ctx, in)
			if err != nil && in.Slug == tenancy.DefaultTenantSlug && in.Owner == "" && in.Plan == "" &&
				tenancy.ErrorCode(err) == tenancy.ECONFLICT {
				// The guide's migration path runs `tenant init` and then
				// creates the default tenant, which init already made.
				if t, ferr := svc.FindTenant(ctx, tenancy.DefaultTenantSlug); ferr == nil {
					fmt.Fprintf(a.Out, "✓ Tenant %s already exists: nself tenant init created it for existing data (ID: %s)\n", t.Slug, t.ID)
					return nil
				}
			}
			if err != nil {
				return err
			}
			t := c.Tenant
			url := a.cfg.TenantURL(t.Slug)
			fmt.Fprintf(a.Out, "✓ Tenant created: %s (ID: %s)\n", t.Slug, t.ID)
			switch {
			case c.Owner == nil:
				fmt.Fprintf(a.Out, "  Owner: none\n")
			default:
				fmt.Fprintf(a.Out, "  Owner: %s (%s)\n", c.Owner.ID, c.Owner.Email)
			}
			fmt.Fprintf(a.Out, "  Plan: %s\n", t.Plan)
			if t.SchemaName != "" {
				fmt.Fprintf(a.Out, "  Schema: %s\n", t.SchemaName)
			}
			fmt.Fprintf(a.Out, "  URL: %s\n", url)
			if c.PasswordToken != "" {
				fmt.Fprintf(a.Out, "  Set-password link for the owner (single use, expires in %s): %s\n",
					hours(tenancy.SetPasswordTokenTTL), passwordLink(url, c.PasswordToken))
			}
			if c.Owner != nil {
				a.queuedNote(welcomeMails(c.PasswordToken), c.Owner.Email)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Slug, "slug", "", "the tenant's slug (default: derived from NAME)")
	f.StringVar(&in.Plan, "plan", "", "plan name (default: "+tenancy.DefaultPlan+")")
	f.StringVar(&in.Owner, "owner", "", "owner: an existing user's id, or an email for a new account")
	f.StringVar(&strategy, "strategy", "", "rls or schema (default: from TENANT_STRATEGY)")
	f.BoolVar(&pwStdin, "owner-password-stdin", false, "read the new owner's password from the first line of standard input")
	return cmd
}

// welcomeMails names the mails a new account is sent.
func welcomeMails(setToken string) string {
	if setToken != "" {
		return "welcome and set-password link"
	}
	return "welcome"
}

func hours(d time.Duration) string { return fmt.Sprintf("%d hours", int(d.Hours())) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func passwordLink(tenantURL, token string) string {
	return tenantURL + "/password/set?token=" + token
}

// tenantJSON is the shape of a tenant for scripts.
type tenantJSON struct {
	ID                 string     `json:"id"`
	Slug               string     `json:"slug"`
	Name               string     `json:"name"`
	Status             string     `json:"status"`
	Plan               string     `json:"plan"`
	OwnerID            string     `json:"owner_id,omitempty"`
	Strategy           string     `json:"strategy"`
	SchemaName         string     `json:"schema_name,omitempty"`
	SubscriptionStatus string     `json:"subscription_status,omitempty"`
	Members            *int       `json:"members,omitempty"`
	CreatedAt          time.Time  `json:"created_at"`
	UpdatedAt          time.Time  `json:"updated_at"`
	DeletedAt          *time.Time `json:"deleted_at,omitempty"`
}

func toJSON(t *tenancy.Tenant) tenantJSON {
	return tenantJSON{
		ID: t.ID, Slug: t.Slug, Name: t.Name, Status: string(t.Status), Plan: t.Plan,
		OwnerID: t.OwnerID, Strategy: string(t.Strategy), SchemaName: t.SchemaName,
		SubscriptionStatus: t.SubscriptionStatus,
		CreatedAt:          t.CreatedAt, UpdatedAt: t.UpdatedAt, DeletedAt: t.DeletedAt,
	}
}

func (a *app) tenantListCommand() *cobra.Command {
	var f tenancy.TenantFilter
	var status string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if status != "" {
				switch s := tenancy.Status(status); s {
				case tenancy.StatusActive, tenancy.StatusSuspended, tenancy.StatusDeleted:
					f.Status = s
				default:
					return usageError{fmt.Sprintf("--status %s is not one of active, suspended, deleted", tenancy.Quote(status))}
				}
			}
			svc, err := a.tenants(ctx)
			if err != nil {
				return err
			}
			list, _, err := svc.ListTenants(ctx, f)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]tenantJSON, 0, len(list))
				for _, t := range list {
					out = append(out, toJSON(t))
				}
				return writeJSON(a.Out, out)
			}
			rows := make([][]string, 0, len(list))
			for _, t := range list {
				rows = append(rows, []string{t.ID, t.Slug, cell(t.Name, 40), string(t.Status), t.Plan})
			}
			table(a.Out, []string{"ID", "SLUG", "NAME", "STATUS", "PLAN"}, rows)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	fl.StringVar(&status, "status", "", "only tenants with this status: active, suspended, deleted")
	fl.StringVar(&f.Plan, "plan", "", "only tenants on this plan")
	fl.StringVar(&f.Query, "search", "", "only tenants whose slug or name contains this text")
	fl.BoolVar(&f.IncludeDeleted, "all", false, "include deleted tenants")
	return cmd
}

func (a *app) tenantShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show SLUG|ID",
		Short: "Show a tenant's details",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.tenants(ctx)
			if err != nil {
				return err
			}
			t, err := svc.FindTenant(ctx, args[0])
			if err != nil {
				return err
			}
			members, err := svc.CountMembers(ctx, t.ID)
			if err != nil {
				return err
			}
			plan, err := postgres.NewPlanService(a.db).FindPlan(ctx, t.Plan)
			if err != nil {
				return err
			}
			if asJSON {
				j := toJSON(t)
				j.Members = &members
				return writeJSON(a.Out, j)
			}
			owner := t.OwnerID
			if owner == "" {
				owner = "none"
			}
			w := a.Out
			fmt.Fprintln(w, "Tenant Details:")
			fmt.Fprintf(w, "  ID: %s\n", t.ID)
			fmt.Fprintf(w, "  Slug: %s\n", t.Slug)
			fmt.Fprintf(w, "  Name: %s\n", t.Name)
			fmt.Fprintf(w, "  Status: %s\n", t.Status)
			fmt.Fprintf(w, "  Plan: %s\n", t.Plan)
			fmt.Fprintf(w, "  Owner: %s\n", owner)
			fmt.Fprintf(w, "  Members: %d\n", members)
			fmt.Fprintf(w, "  Max Users: %s\n", tenancy.FormatUsers(plan.MaxUsers))
			fmt.Fprintf(w, "  Max Storage: %s\n", tenancy.FormatStorage(plan.MaxStorageGB))
			fmt.Fprintf(w, "  Max API Requests: %s\n", tenancy.FormatAPIRequests(plan.MaxAPIRequests))
			if t.SchemaName != "" {
				fmt.Fprintf(w, "  Schema: %s\n", t.SchemaName)
			}
			if t.StripeSubscriptionID != "" || t.SubscriptionStatus != "" {
				fmt.Fprintf(w, "  Subscription: %s (%s, customer %s)\n", orDash(t.SubscriptionStatus), orDash(t.StripeSubscriptionID), orDash(t.StripeCustomerID))
			}
			fmt.Fprintf(w, "  Created: %s\n", timestamp(t.CreatedAt))
			if t.DeletedAt != nil {
				fmt.Fprintf(w, "  Deleted: %s\n", timestamp(*t.DeletedAt))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func (a *app) tenantStatusCommand(verb string, status tenancy.Status) *cobra.Command {
	short := map[tenancy.Status]string{
		tenancy.StatusSuspended: "Suspend a tenant (its users lose access; nothing is deleted)",
		tenancy.StatusActive:    "Activate a suspended tenant",
	}[status]
	return &cobra.Command{
		Use:   verb + " SLUG|ID",
		Short: short,
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.tenants(ctx)
			if err != nil {
				return err
			}
			t, err := svc.SetTenantStatus(ctx, args[0], status)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Tenant %s: %s\n", status, t.Slug)
			return nil
		},
	}
}

func (a *app) tenantDeleteCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete SLUG|ID",
		Short: "Delete a tenant: drop its schema and data, remove its files, keep a record that it existed",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.tenants(ctx)
			if err != nil {
				return err
			}
			t, err := svc.FindTenant(ctx, args[0])
			if err != nil {
				return err
			}
			// Refused before the confirmation is asked for.
			if err := tenancy.CanDelete(t); err != nil {
				return err
			}
			if !yes {
				if err := a.confirmDelete(t); err != nil {
					return err
				}
			}
			if t, err = svc.DeleteTenant(ctx, t.ID); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Tenant deleted: %s\n", t.Slug)
			if t.SchemaName != "" {
				fmt.Fprintf(a.Out, "  Schema dropped: %s\n", t.SchemaName)
			}
			fmt.Fprintln(a.Out, "  Status set to deleted; users, memberships, domains, settings and data removed")
			a.removeDeletedStorage(ctx, a.db, t)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}

// confirmDelete asks a person to type the slug. With no terminal to ask
// on, it refuses rather than guess.
func (a *app) confirmDelete(t *tenancy.Tenant) error {
	if !a.interactive() {
		return fmt.Errorf("refusing to delete tenant %s without confirmation: no terminal to ask on; pass --yes", t.Slug)
	}
	fmt.Fprintf(a.Err, "Delete tenant %s (%s) and all its data? Type its slug to confirm: ", t.Slug, t.Name)
	line, _ := bufio.NewReader(a.In).ReadString('\n')
	if strings.TrimSpace(line) != t.Slug {
		return fmt.Errorf("confirmation did not match %s; nothing was deleted", t.Slug)
	}
	return nil
}

func (a *app) tenantStatsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Count tenants by status and by plan",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, err := a.tenants(ctx)
			if err != nil {
				return err
			}
			st, err := svc.TenantStats(ctx)
			if err != nil {
				return err
			}
			w := a.Out
			fmt.Fprintln(w, "Tenant Statistics")
			fmt.Fprintln(w)
			fmt.Fprintf(w, "Total Tenants: %d\n", st.Total)
			fmt.Fprintf(w, "  Active: %d\n", st.ByStatus[tenancy.StatusActive])
			fmt.Fprintf(w, "  Suspended: %d\n", st.ByStatus[tenancy.StatusSuspended])
			fmt.Fprintf(w, "  Deleted: %d\n", st.ByStatus[tenancy.StatusDeleted])
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Tenants by Plan:")
			for _, p := range st.PlanOrder {
				fmt.Fprintf(w, "  %s: %d\n", p, st.ByPlan[p])
			}
			return nil
		},
	}
}
