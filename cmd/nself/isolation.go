package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func (a *app) tenantTestIsolationCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "test-isolation [SLUG_A SLUG_B]",
		Short: "Test that tenants cannot reach each other's data, as the application role",
		Long: `Runs the isolation tests against the database as the application role.
With two tenants named, tenant A (which must have users) is checked against
tenant B. With none, two scratch tenants with a user each are created for the
test and removed afterwards.`,
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) != 0 && len(a) != 2 {
				return usageError{fmt.Sprintf("%s takes no arguments or two (SLUG_A SLUG_B), got %d", cmd.CommandPath(), len(a))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.tenants(ctx)
			if err != nil {
				return err
			}
			var idA, idB string
			if len(args) == 2 {
				ta, err := svc.FindTenant(ctx, args[0])
				if err != nil {
					return err
				}
				tb, err := svc.FindTenant(ctx, args[1])
				if err != nil {
					return err
				}
				if ta.ID == tb.ID {
					return fmt.Errorf("tenants A and B are the same tenant; name two different ones")
				}
				idA, idB = ta.ID, tb.ID
			} else {
				cleanup, err := a.scratchTenants(ctx, svc, &idA, &idB)
				defer cleanup()
				if err != nil {
					return err
				}
			}
			return a.runIsolation(ctx, idA, idB)
		},
	}
}

// scratchTenants creates two tenants with one user each and returns a
// function that removes them.
func (a *app) scratchTenants(ctx context.Context, svc *postgres.TenantService, idA, idB *string) (func(), error) {
	var made []string
	cleanup := func() {
		for _, id := range made {
			if err := svc.PurgeTenant(context.WithoutCancel(ctx), id); err != nil {
				fmt.Fprintf(a.Err, "warning: could not remove scratch tenant %s: %s\n", id, oneLine(err.Error()))
			}
		}
	}
	tag := strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	users := postgres.NewUserService(a.db)
	for i, id := range []*string{idA, idB} {
		name := fmt.Sprintf("isolation-check-%s-%c", tag, 'a'+i)
		c, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: name, Slug: name})
		if err != nil {
			return cleanup, err
		}
		made = append(made, c.Tenant.ID)
		*id = c.Tenant.ID
		if _, _, err := users.CreateUser(ctx, c.Tenant.ID, tenancy.NewUser{Email: "user@" + name + ".example", Unmailed: true}); err != nil {
			return cleanup, err
		}
	}
	return cleanup, nil
}

func (a *app) runIsolation(ctx context.Context, idA, idB string) error {
	fmt.Fprintln(a.Out, "Testing tenant data isolation...")
	checks, err := a.db.CheckIsolation(ctx, idA, idB)
	if err != nil {
		return err
	}
	findings, err := a.db.AuditRLS(ctx)
	if err != nil {
		return err
	}
	audit := postgres.IsolationCheck{Name: "Every tenant table has forced row-level security, a tenant policy and a tenant_id index", Passed: len(findings) == 0}
	if len(findings) > 0 {
		audit.Detail = fmt.Sprintf("%d problem(s), first: %s: %s", len(findings), findings[0].Table, findings[0].Problem)
	}
	checks = append(checks, audit)
	failed := 0
	for _, c := range checks {
		if c.Passed {
			fmt.Fprintf(a.Out, "✓ PASS: %s\n", c.Name)
		} else {
			failed++
			fmt.Fprintf(a.Out, "✗ FAIL: %s (%s)\n", c.Name, c.Detail)
		}
	}
	if failed > 0 {
		return fmt.Errorf("tenant isolation breach: %d of %d checks failed", failed, len(checks))
	}
	fmt.Fprintln(a.Out, "✓ All tenant isolation tests passed")
	return nil
}
