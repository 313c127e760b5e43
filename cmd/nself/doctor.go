package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
)

func (a *app) tenantDoctorCommand() *cobra.Command {
	var fix, yes bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the database for weakened tenant isolation and tenancy problems, with the fix for each",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := a.database(ctx)
			if err != nil {
				return err
			}
			findings, err := a.doctor(ctx, db)
			if err != nil {
				return err
			}
			if len(findings) == 0 {
				fmt.Fprintln(a.Out, "✓ No problems found")
				return nil
			}
			fixable := 0
			for _, f := range findings {
				fmt.Fprintf(a.Out, "✗ %s: %s\n    fix: %s\n", f.Table, f.Problem, f.Fix)
				if f.SQL {
					fixable++
				}
			}
			if !fix || fixable == 0 {
				if fix {
					fmt.Fprintln(a.Out, "Nothing here is fixed by SQL alone: apply the fixes above by hand.")
				}
				return fmt.Errorf("%d problem(s) found", len(findings))
			}
			if !yes {
				if err := a.confirmFixes(fixable); err != nil {
					return err
				}
			}
			n, err := db.ApplyFixes(ctx, findings)
			if err != nil {
				return fmt.Errorf("no fix was applied: %w", err)
			}
			fmt.Fprintf(a.Out, "✓ Applied %d fix(es)\n", n)
			// Doctor again, so what is left is what the operator sees.
			left, err := a.doctor(ctx, db)
			if err != nil {
				return err
			}
			if len(left) == 0 {
				fmt.Fprintln(a.Out, "✓ No problems found")
				return nil
			}
			for _, f := range left {
				fmt.Fprintf(a.Out, "✗ %s: %s\n    fix: %s\n", f.Table, f.Problem, f.Fix)
			}
			return fmt.Errorf("%d problem(s) left after the fixes", len(left))
		},
	}
	cmd.Flags().BoolVar(&fix, "fix", false, "apply the fixes that are SQL, in one transaction, after asking")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "with --fix: apply without asking")
	return cmd
}

// confirmFixes asks before changing the database. With no terminal to ask
// on, it refuses rather than guess.
func (a *app) confirmFixes(n int) error {
	if !a.interactive() {
		return fmt.Errorf("refusing to apply %d fix(es) without confirmation: no terminal to ask on; pass --yes", n)
	}
	fmt.Fprintf(a.Err, "Apply the %d SQL fix(es) above, in one transaction? [y/N] ", n)
	line, _ := bufio.NewReader(a.In).ReadString('\n')
	if answer := strings.ToLower(strings.TrimSpace(line)); answer != "y" && answer != "yes" {
		return fmt.Errorf("nothing was changed")
	}
	return nil
}

// doctor is the database's findings and, with object storage configured,
// the files of deleted tenants still in it. A store that cannot be reached
// is a finding too: what it holds could not be checked.
func (a *app) doctor(ctx context.Context, db *postgres.DB) ([]postgres.Finding, error) {
	findings, err := db.Doctor(ctx)
	if err != nil {
		return nil, err
	}
	r, err := a.storageRemover(ctx)
	if err != nil || r == nil {
		return findings, nil
	}
	pending, err := r.Pending(ctx)
	if err != nil {
		return nil, err
	}
	findings = append(findings, pending...)
	left, err := r.Leftovers(ctx)
	findings = append(findings, left...)
	if err != nil {
		findings = append(findings, postgres.Finding{Table: "(object storage)",
			Problem: "deleted tenants' files could not be looked for: " + oneLine(err.Error()),
			Fix:     "make " + string(a.cfg.MinioEndpoint) + " reachable, then run nself tenant doctor again"})
	}
	return findings, nil
}
