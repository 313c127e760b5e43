package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func (a *app) userCommand() *cobra.Command {
	return group("user", "Manage the users of a tenant",
		a.userCreateCommand(),
		a.userListCommand(),
	)
}

func (a *app) userCreateCommand() *cobra.Command {
	var in tenancy.NewUser
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "create SLUG EMAIL",
		Short: "Create a user in a tenant",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			in.Email = args[1]
			if pwStdin {
				pw, err := readPassword(a.In)
				if err != nil {
					return err
				}
				in.Password = pw
			}
			t, err := a.tenantArg(ctx, args[0])
			if err != nil {
				return err
			}
			u, token, err := postgres.NewUserService(a.db).CreateUser(ctx, t.ID, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ User created: %s (ID: %s)\n", u.Email, u.ID)
			fmt.Fprintf(a.Out, "  Tenant: %s\n", t.Slug)
			if token != "" {
				fmt.Fprintf(a.Out, "  Set-password link (single use, expires in %s): %s\n",
					hours(tenancy.SetPasswordTokenTTL), passwordLink(a.cfg.TenantURL(t.Slug), token))
			}
			a.queuedNote(welcomeMails(token), u.Email)
			// An account is not a membership: until one is added, the
			// portal refuses the person's sign-in.
			fmt.Fprintf(a.Out, "  Not a member yet: nself tenant member add %s %s [ROLE] lets them sign in\n", t.Slug, u.Email)
			return nil
		},
	}
	cmd.Flags().StringVar(&in.Name, "name", "", "the user's display name")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

type userJSON struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// readPassword reads a password from the first line of r.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("no password on standard input")
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("the password on standard input is empty")
	}
	return pw, nil
}

func (a *app) userListCommand() *cobra.Command {
	var asJSON bool
	var f tenancy.UserFilter
	cmd := &cobra.Command{
		Use:   "list SLUG",
		Short: "List a tenant's users",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, err := a.tenantArg(ctx, args[0])
			if err != nil {
				return err
			}
			users, _, err := postgres.NewUserService(a.db).ListUsers(ctx, t.ID, f)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]userJSON, 0, len(users))
				for _, u := range users {
					out = append(out, userJSON{u.ID, u.TenantID, u.Email, u.Name, u.CreatedAt})
				}
				return writeJSON(a.Out, out)
			}
			rows := make([][]string, 0, len(users))
			for _, u := range users {
				rows = append(rows, []string{u.ID, cell(u.Email, 50), cell(u.Name, 40), date(u.CreatedAt)})
			}
			table(a.Out, []string{"ID", "EMAIL", "NAME", "CREATED_AT"}, rows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().StringVar(&f.Query, "search", "", "only users whose email or name contains this text")
	return cmd
}
