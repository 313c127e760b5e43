package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

const rolesHelp = `Roles:
  owner   full control (billing, deletion)
  admin   management (users, settings)
  member  standard access
  guest   read-only access

USER is the id or the email of one of the tenant's accounts (nself user
create makes one). The operator acts for the platform and may do what an
owner may; a tenant keeps at least one owner, and its plan limits how many
members it has.`

func (a *app) tenantMemberCommand() *cobra.Command {
	g := group("member", "Manage who is a member of a tenant, and with which role",
		a.memberAddCommand(),
		a.memberListCommand(),
		a.memberUpdateCommand(),
		a.memberRemoveCommand(),
	)
	g.Long = "Manage who is a member of a tenant, and with which role.\n\n" + rolesHelp
	return g
}

// members opens the database, finds the tenant an argument names and
// returns it with the member service.
func (a *app) members(ctx context.Context, ref string) (*tenancy.Tenant, *postgres.MemberService, error) {
	t, err := a.tenantArg(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	return t, a.svc.MemberAdmin, nil
}

func (a *app) memberAddCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "add SLUG|ID USER [ROLE]",
		Short: "Make one of a tenant's users a member (ROLE defaults to member)",
		Long:  "Make one of a tenant's users a member, with ROLE (default member).\n\n" + rolesHelp,
		Args:  args(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			role := tenancy.RoleMember
			if len(args) == 3 {
				var err error
				if role, err = tenancy.ParseRole(args[2]); err != nil {
					return err
				}
			}
			t, svc, err := a.members(ctx, args[0])
			if err != nil {
				return err
			}
			m, err := svc.AddMember(ctx, t.ID, args[1], role, tenancy.PlatformActor())
			if tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
				// A user of another tenant is another account.
				return fmt.Errorf("%w: each tenant has its own users; nself user create %s EMAIL makes one here", err, t.Slug)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Member added: %s (%s)\n", m.UserID, m.Role)
			return nil
		},
	}
}

// memberJSON is the shape of a member for scripts.
type memberJSON struct {
	UserID   string    `json:"user_id"`
	Email    string    `json:"email"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

func (a *app) memberListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list SLUG|ID",
		Short: "List a tenant's members, owners first",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.members(ctx, args[0])
			if err != nil {
				return err
			}
			list, err := svc.ListMembers(ctx, t.ID)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]memberJSON, 0, len(list))
				for _, m := range list {
					out = append(out, memberJSON{m.UserID, m.Email, m.Name, string(m.Role), m.JoinedAt})
				}
				return writeJSON(a.Out, out)
			}
			// The guide's columns, then the email: an operator names members
			// by either, and an id alone says little.
			rows := make([][]string, 0, len(list))
			for _, m := range list {
				rows = append(rows, []string{m.UserID, string(m.Role), date(m.JoinedAt), cell(m.Email, 50)})
			}
			table(a.Out, []string{"USER_ID", "ROLE", "JOINED_AT", "EMAIL"}, rows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func (a *app) memberUpdateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "update SLUG|ID USER ROLE",
		Short: "Change a member's role",
		Long:  "Change a member's role.\n\n" + rolesHelp,
		Args:  args(3, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			role, err := tenancy.ParseRole(args[2])
			if err != nil {
				return err
			}
			t, svc, err := a.members(ctx, args[0])
			if err != nil {
				return err
			}
			m, from, err := svc.UpdateMember(ctx, t.ID, args[1], role, tenancy.PlatformActor())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Member updated: %s (%s → %s)\n", m.UserID, from, m.Role)
			return nil
		},
	}
}

func (a *app) memberRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove SLUG|ID USER",
		Short: "Remove a member from a tenant (the account stays)",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.members(ctx, args[0])
			if err != nil {
				return err
			}
			m, err := svc.RemoveMember(ctx, t.ID, args[1], tenancy.PlatformActor())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Member removed: %s\n", m.UserID)
			return nil
		},
	}
}
