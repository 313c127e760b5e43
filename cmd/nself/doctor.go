package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) tenantDoctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the database for weakened tenant isolation and tenancy problems, with the fix for each",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.database(cmd.Context())
			if err != nil {
				return err
			}
			findings, err := db.Doctor(cmd.Context())
			if err != nil {
				return err
			}
			if len(findings) == 0 {
				fmt.Fprintln(a.Out, "✓ No problems found")
				return nil
			}
			for _, f := range findings {
				fmt.Fprintf(a.Out, "✗ %s: %s\n    fix: %s\n", f.Table, f.Problem, f.Fix)
			}
			return fmt.Errorf("%d problem(s) found", len(findings))
		},
	}
}
