package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
)

func (a *app) dbCommand() *cobra.Command {
	return group("db", "Manage the database",
		a.dbBackupCommand(),
		&cobra.Command{
			Use:   "distribute",
			Short: "On Citus, distribute the tables by tenant_id (safe to run again)",
			Long: `On a database with the citus extension (a coordinator with its workers
registered), make the global tables reference tables, then distribute every
table with tenant_id by tenant_id, co-located, in foreign-key order; schema
tenants' schemas become schema-based shards. Tables already distributed are
left alone. db migrate and tenant init do this by themselves on Citus.`,
			Args: args(0, 0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				db, err := a.database(cmd.Context())
				if err != nil {
					return err
				}
				res, err := db.Distribute(cmd.Context())
				if res != nil {
					printDistributed(a, res)
				}
				if err != nil {
					return err
				}
				if !res.Changed() {
					fmt.Fprintln(a.Out, "✓ Every table is already distributed; nothing changed")
				}
				return nil
			},
		},
		&cobra.Command{
			Use:   "migrate",
			Short: "Apply the migrations (safe to run again)",
			Long: `Apply the platform migrations, then the tenant-table migrations (the built-in
ones, then the operator's from TENANT_MIGRATIONS_DIR) to the shared tenant
schema and to every schema tenant's own schema, one transaction per schema.
A schema that fails stops the rollout with the schema, the file and the
statement named; the schemas done stay migrated, and running the command again
continues with the rest. On a terminal a bar shows the schemas done.`,
			Args: args(0, 0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				db, err := a.database(cmd.Context())
				if err != nil {
					return err
				}
				bar := a.progressBar()
				res, err := db.MigrateWithProgress(cmd.Context(), bar.schemas)
				bar.done()
				if err != nil {
					return err
				}
				if !res.Changed() {
					fmt.Fprintf(a.Out, "✓ Database is up to date: schema at version %d, %s; nothing changed\n", res.Version, tenantVersions(res))
					return nil
				}
				printMigrateResult(a, res)
				return nil
			},
		})
}

// schemas shows a rollout's progress.
func (b *progress) schemas(p postgres.MigrateProgress) {
	b.show(func() string {
		// Erase to the end of the line: schema names differ in length.
		return bar(int64(p.SchemasDone), int64(p.Schemas)) + fmt.Sprintf("  schemas %d/%d  %s\x1b[K", p.SchemasDone, p.Schemas, p.Schema)
	})
}

func tenantVersions(res *postgres.MigrateResult) string {
	s := fmt.Sprintf("tenant tables at version %d", res.TenantVersion)
	if res.OperatorVersion > 0 {
		s += fmt.Sprintf(", operator migrations at version %d", res.OperatorVersion)
	}
	return s
}

func printMigrateResult(a *app, res *postgres.MigrateResult) {
	if len(res.Applied) > 0 {
		fmt.Fprintf(a.Out, "✓ Migrations applied: %d (schema now at version %d)\n", len(res.Applied), res.Version)
	}
	if res.SchemasUpgraded > 0 {
		fmt.Fprintf(a.Out, "✓ Tenant tables brought up to date in %d of %d schema(s): %s\n", res.SchemasUpgraded, res.Schemas, tenantVersions(res))
	}
	if res.Distributed != nil {
		printDistributed(a, res.Distributed)
	}
}

func printDistributed(a *app, res *postgres.DistributeResult) {
	if len(res.Reference) > 0 {
		fmt.Fprintf(a.Out, "✓ Reference tables on every Citus node: %s\n", strings.Join(res.Reference, ", "))
	}
	if len(res.Distributed) > 0 {
		fmt.Fprintf(a.Out, "✓ Distributed by tenant_id: %s\n", strings.Join(res.Distributed, ", "))
	}
	if len(res.Schemas) > 0 {
		fmt.Fprintf(a.Out, "✓ Schema tenants' schemas as Citus schema shards: %s\n", strings.Join(res.Schemas, ", "))
	}
}
