package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
)

func (a *app) apikeyCommand() *cobra.Command {
	return group("apikey", "Manage a tenant's API keys",
		a.apikeyCreateCommand(),
		&cobra.Command{
			Use:   "list SLUG",
			Short: "List a tenant's API keys",
			Args:  args(1, 1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				t, err := a.tenantArg(ctx, args[0])
				if err != nil {
					return err
				}
				keys, err := postgres.NewAPIKeyService(a.db).ListAPIKeys(ctx, t.ID)
				if err != nil {
					return err
				}
				rows := make([][]string, 0, len(keys))
				for _, k := range keys {
					used, status := "never", "active"
					if k.LastUsedAt != nil {
						used = timestamp(*k.LastUsedAt)
					}
					if k.RevokedAt != nil {
						status = "revoked"
					}
					rows = append(rows, []string{k.Prefix, cell(k.Name, 40), status, timestamp(k.CreatedAt), used})
				}
				table(a.Out, []string{"PREFIX", "NAME", "STATUS", "CREATED_AT", "LAST_USED_AT"}, rows)
				return nil
			},
		},
		&cobra.Command{
			Use:   "revoke SLUG PREFIX",
			Short: "Revoke an API key",
			Args:  args(2, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				t, err := a.tenantArg(ctx, args[0])
				if err != nil {
					return err
				}
				k, err := postgres.NewAPIKeyService(a.db).RevokeAPIKey(ctx, t.ID, args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.Out, "✓ API key revoked: %s (prefix %s)\n", k.Name, k.Prefix)
				return nil
			},
		},
	)
}

func (a *app) adminCommand() *cobra.Command {
	var name string
	var pwStdin bool
	create := &cobra.Command{
		Use:   "create EMAIL",
		Short: "Create a platform administrator (asks for the password, or reads it with --password-stdin)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var pw string
			var err error
			switch {
			case pwStdin:
				pw, err = readPassword(a.In)
			case a.interactive():
				pw, err = a.askPassword()
			default:
				err = fmt.Errorf("no terminal to ask for the password on: pass --password-stdin")
			}
			if err != nil {
				return err
			}
			db, err := a.database(ctx)
			if err != nil {
				return err
			}
			ad, err := postgres.NewAdminService(db).CreateAdmin(ctx, args[0], name, pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Platform admin created: %s (ID: %s)\n", ad.Email, ad.ID)
			fmt.Fprintf(a.Out, "  Console: %s\n", a.cfg.AdminURL())
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "the administrator's name")
	create.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
	return group("admin", "Manage platform administrators", create)
}
