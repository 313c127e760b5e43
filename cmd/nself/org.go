package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
)

func (a *app) orgCommand() *cobra.Command {
	var slug string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organization",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.database(cmd.Context())
			if err != nil {
				return err
			}
			o, err := postgres.NewOrgService(db).CreateOrg(cmd.Context(), args[0], slug)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Organization created: %s (ID: %s)\n", o.Slug, o.ID)
			return nil
		},
	}
	create.Flags().StringVar(&slug, "slug", "", "the organization's slug (default: derived from NAME)")
	member := func(use, short, done string, run func(*postgres.OrgService, *cobra.Command, []string) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: args(2, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				db, err := a.database(cmd.Context())
				if err != nil {
					return err
				}
				if err := run(postgres.NewOrgService(db), cmd, args); err != nil {
					return err
				}
				fmt.Fprintf(a.Out, "✓ %s: %s, %s\n", done, args[0], args[1])
				return nil
			},
		}
	}
	return group("org", "Manage organizations: groups of tenants of one customer",
		create,
		&cobra.Command{
			Use: "list", Short: "List organizations", Args: args(0, 0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				db, err := a.database(cmd.Context())
				if err != nil {
					return err
				}
				orgs, err := postgres.NewOrgService(db).ListOrgs(cmd.Context())
				if err != nil {
					return err
				}
				rows := make([][]string, 0, len(orgs))
				for _, o := range orgs {
					rows = append(rows, []string{o.ID, o.Slug, cell(o.Name, 40), fmt.Sprint(o.Tenants), date(o.CreatedAt)})
				}
				table(a.Out, []string{"ID", "SLUG", "NAME", "TENANTS", "CREATED_AT"}, rows)
				return nil
			},
		},
		member("add-tenant ORG TENANT", "Put a tenant in an organization", "Tenant added to organization",
			func(s *postgres.OrgService, cmd *cobra.Command, args []string) error {
				return s.AddOrgTenant(cmd.Context(), args[0], args[1])
			}),
		member("remove-tenant ORG TENANT", "Take a tenant out of an organization", "Tenant removed from organization",
			func(s *postgres.OrgService, cmd *cobra.Command, args []string) error {
				return s.RemoveOrgTenant(cmd.Context(), args[0], args[1])
			}),
		&cobra.Command{
			Use: "tenants ORG", Short: "List an organization's tenants", Args: args(1, 1),
			RunE: func(cmd *cobra.Command, args []string) error {
				db, err := a.database(cmd.Context())
				if err != nil {
					return err
				}
				list, err := postgres.NewOrgService(db).OrgTenants(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				rows := make([][]string, 0, len(list))
				for _, t := range list {
					rows = append(rows, []string{t.ID, t.Slug, cell(t.Name, 40), string(t.Status), t.Plan})
				}
				table(a.Out, []string{"ID", "SLUG", "NAME", "STATUS", "PLAN"}, rows)
				return nil
			},
		},
	)
}
