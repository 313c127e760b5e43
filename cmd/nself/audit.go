package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// auditJSON is the shape of an audit entry for scripts.
type auditJSON struct {
	ID         string    `json:"id"`
	TenantID   string    `json:"tenant_id"`
	At         time.Time `json:"at"`
	ActorKind  string    `json:"actor_kind"`
	ActorID    string    `json:"actor_id"`
	Actor      string    `json:"actor"`
	ClientAddr string    `json:"client_addr"`
	Action     string    `json:"action"`
	Target     string    `json:"target"`
	Summary    string    `json:"summary"`
}

func (a *app) tenantAuditCommand() *cobra.Command {
	var f tenancy.AuditFilter
	var since, until string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit SLUG|ID",
		Short: "Show a tenant's audit log, newest first",
		Long: `Show a tenant's audit log, newest first: every change to the tenant, from
the command line or the portal, with who made it, from where and when.

--action takes an action (member.update) or all of an entity's (member).
--actor matches part of the actor: an email, an administrator, cli:USER.
--since and --until take a day (2025-01-31, in UTC, --until's day included)
or a time (2025-01-31T12:00:00Z).

Actions: ` + strings.Join(tenancy.AuditActions, ", "),
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var err error
			if f.Since, err = parseWhen("--since", since, false); err != nil {
				return err
			}
			if f.Until, err = parseWhen("--until", until, true); err != nil {
				return err
			}
			if f.Limit < 1 {
				return usageError{"--limit must be 1 or more"}
			}
			t, err := a.tenantArg(ctx, args[0])
			if err != nil {
				return err
			}
			list, total, err := postgres.NewAuditService(a.db).ListAudit(ctx, t.ID, f)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]auditJSON, 0, len(list))
				for _, e := range list {
					out = append(out, auditJSON{e.ID, e.TenantID, e.At, string(e.Actor.Kind), e.Actor.ID, e.Actor.Name,
						e.Actor.Addr, e.Action, e.Target, e.Summary})
				}
				return writeJSON(a.Out, out)
			}
			rows := make([][]string, 0, len(list))
			for _, e := range list {
				// The change, the longest column, comes last, where it needs
				// no padding.
				rows = append(rows, []string{timestamp(e.At), cell(e.Actor.String(), 32), e.Actor.Addr, e.Action,
					cell(e.Target, 32), cell(e.Summary, 120)})
			}
			table(a.Out, []string{"TIME", "ACTOR", "ADDRESS", "ACTION", "TARGET", "CHANGE"}, rows)
			if total > len(list) {
				fmt.Fprintf(a.Err, "%d of %d entries; raise --limit or narrow the filter to see more\n", len(list), total)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Action, "action", "", "only this action, or all of an entity's (member)")
	fl.StringVar(&f.Actor, "actor", "", "only entries whose actor contains this text")
	fl.StringVar(&since, "since", "", "only entries from this day or time on")
	fl.StringVar(&until, "until", "", "only entries up to this day (included) or time")
	fl.IntVar(&f.Limit, "limit", 50, "show at most this many entries")
	fl.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// parseWhen reads a day or a time of a flag. A day given as an end
// (endOfDay) means the end of that day.
func parseWhen(flag, v string, endOfDay bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, usageError{fmt.Sprintf("%s %s is neither a day (2025-01-31) nor a time (2025-01-31T12:00:00Z)", flag, tenancy.Quote(v))}
	}
	if endOfDay {
		t = t.Add(24 * time.Hour)
	}
	return t, nil
}
