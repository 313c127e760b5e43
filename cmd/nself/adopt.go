package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func (a *app) tenantAdoptCommand() *cobra.Command {
	var defaultTenant string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "adopt TABLE...",
		Short: "Put existing tables under tenancy: tenant_id, backfill, NOT NULL, index, forced row-level security",
		Long: `Adds tenant_id to each table, gives every existing row to the default
tenant, makes the column NOT NULL (new rows default to the current tenant),
indexes it, forces row-level security with the tenant policy and grants the
application role access, all in one transaction. Back the database up first
(nself db backup); --dry-run prints the SQL without running it. On Citus,
tenant_id is also put first in each table's primary key and unique
constraints, and the tables are then distributed by it.`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, tables []string) error {
			ctx := cmd.Context()
			t, err := a.tenantArg(ctx, defaultTenant)
			if err != nil {
				return err
			}
			plan, err := a.db.PlanAdopt(ctx, t.ID, tables)
			if err != nil {
				return err
			}
			for _, s := range plan.Skipped {
				fmt.Fprintf(a.Out, "  %s already has tenant_id: skipped\n", s)
			}
			if len(plan.Statements) == 0 {
				fmt.Fprintln(a.Out, "✓ Nothing to adopt")
				return nil
			}
			if dryRun {
				for _, s := range plan.Statements {
					fmt.Fprintf(a.Out, "%s;\n", s)
				}
				return nil
			}
			if err := a.db.Adopt(ctx, plan); errors.Is(err, postgres.ErrAdoptedNotDistributed) {
				return fmt.Errorf("adopt: %w", err)
			} else if err != nil {
				return fmt.Errorf("adopt: %w; nothing was changed", err)
			}
			fmt.Fprintf(a.Out, "✓ Adopted %d table(s); existing rows belong to tenant %s\n", len(tables)-len(plan.Skipped), t.Slug)
			return nil
		},
	}
	cmd.Flags().StringVar(&defaultTenant, "default-tenant", tenancy.DefaultTenantSlug, "the tenant that existing rows are given to")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the SQL instead of running it")
	return cmd
}
