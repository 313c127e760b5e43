package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// apikeyCreateCommand makes a key, with the scope and expiry the portal's
// form offers.
func (a *app) apikeyCreateCommand() *cobra.Command {
	var readOnly bool
	var surfaces []string
	var days int
	cmd := &cobra.Command{
		Use:   "create SLUG NAME",
		Short: "Create an API key; it is printed once",
		Long: "Create an API key; it is printed once. By default it reads and writes, reaches the tenant API (/v1) and the\n" +
			"gateway, and never expires.",
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			scope := tenancy.APIKeyScope{ReadOnly: readOnly}
			for _, s := range surfaces {
				switch strings.TrimSpace(s) {
				case tenancy.SurfaceAPI:
					scope.API = true
				case tenancy.SurfaceGateway:
					scope.Gateway = true
				default:
					return fmt.Errorf("invalid --surfaces %q: accepts api, gateway or both (api,gateway)", s)
				}
			}
			if days < 0 {
				return fmt.Errorf("invalid --expires-in-days %d: accepts 0 (never) or more", days)
			}
			if days > 0 {
				at := time.Now().Add(time.Duration(days) * 24 * time.Hour)
				scope.ExpiresAt = &at
			}
			t, err := a.tenantArg(ctx, args[0])
			if err != nil {
				return err
			}
			k, secret, err := postgres.NewAPIKeyService(a.db).CreateScopedAPIKey(ctx, t.ID, args[1], "", scope)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ API key created: %s (prefix %s)\n", k.Name, k.Prefix)
			fmt.Fprintf(a.Out, "  Key: %s\n", secret)
			fmt.Fprintln(a.Out, "  Copy it now: it is not shown again.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "allow GET, HEAD and OPTIONS requests only")
	cmd.Flags().StringSliceVar(&surfaces, "surfaces", []string{tenancy.SurfaceAPI, tenancy.SurfaceGateway}, "what the key reaches: api (/v1), gateway, or both")
	cmd.Flags().IntVar(&days, "expires-in-days", 0, "days until the key stops working; 0 never")
	return cmd
}
