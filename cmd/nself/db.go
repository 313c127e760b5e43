package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
)

func (a *app) dbCommand() *cobra.Command {
	return group("db", "Manage the database",
		a.dbBackupCommand(),
		&cobra.Command{
			Use:   "migrate",
			Short: "Apply the migrations (safe to run again)",
			Args:  args(0, 0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				db, err := a.database(cmd.Context())
				if err != nil {
					return err
				}
				res, err := db.Migrate(cmd.Context())
				if err != nil {
					return err
				}
				if !res.Changed() {
					fmt.Fprintf(a.Out, "✓ Database is up to date: schema at version %d, tenant tables at version %d; nothing changed\n", res.Version, res.TenantVersion)
					return nil
				}
				printMigrateResult(a, res)
				return nil
			},
		})
}

func printMigrateResult(a *app, res *postgres.MigrateResult) {
	if len(res.Applied) > 0 {
		fmt.Fprintf(a.Out, "✓ Migrations applied: %d (schema now at version %d)\n", len(res.Applied), res.Version)
	}
	if res.SchemasUpgraded > 0 {
		fmt.Fprintf(a.Out, "✓ Tenant tables at version %d in %d schema(s) brought up to date\n", res.TenantVersion, res.SchemasUpgraded)
	}
}
