package main

import "github.com/spf13/cobra"

// whitelabelCommand holds the commands that shape how a tenant looks:
// brand colors, themes, logos and email templates.
func (a *app) whitelabelCommand() *cobra.Command {
	return group("whitelabel", "Brand a tenant: colors, themes, logos, email templates",
		a.brandCommand(),
		a.themeCommand(),
		a.emailCommand(),
		a.logoCommand(),
	)
}
