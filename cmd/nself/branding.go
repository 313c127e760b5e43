package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// branding opens the database, finds the tenant an argument names and
// returns it with the branding service.
func (a *app) branding(ctx context.Context, ref string) (*tenancy.Tenant, *postgres.BrandingService, error) {
	t, err := a.tenantArg(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	return t, a.svc.BrandingAdmin, nil
}

func (a *app) brandCommand() *cobra.Command {
	return group("brand", "Set a tenant's brand colors",
		a.brandSetCommand(),
		a.brandShowCommand(),
	)
}

func (a *app) brandSetCommand() *cobra.Command {
	var primary, secondary, accent string
	cmd := &cobra.Command{
		Use:   "set SLUG|ID [--primary-color C] [--secondary-color C] [--accent-color C]",
		Short: "Set brand colors (#RGB or #RRGGBB; an empty value removes one)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u tenancy.BrandUpdate
			for flag, dst := range map[string]**string{"primary-color": &u.Primary, "secondary-color": &u.Secondary, "accent-color": &u.Accent} {
				if cmd.Flags().Changed(flag) {
					v, _ := cmd.Flags().GetString(flag)
					*dst = &v
				}
			}
			if u.Primary == nil && u.Secondary == nil && u.Accent == nil {
				return usageError{"brand set needs --primary-color, --secondary-color or --accent-color"}
			}
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			changes, err := svc.SetBrand(ctx, t.ID, u)
			if err != nil {
				return err
			}
			if len(changes) == 0 {
				fmt.Fprintf(a.Out, "✓ Brand of %s unchanged\n", t.Slug)
				return nil
			}
			fmt.Fprintf(a.Out, "✓ Brand of %s updated\n", t.Slug)
			for _, c := range changes {
				fmt.Fprintf(a.Out, "  %s: %s → %s\n", c.Field, orUnset(c.From), orUnset(c.To))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&primary, "primary-color", "", "primary color, e.g. \"#FF6B35\"")
	cmd.Flags().StringVar(&secondary, "secondary-color", "", "secondary color")
	cmd.Flags().StringVar(&accent, "accent-color", "", "accent color")
	return cmd
}

func orUnset(s string) string {
	if s == "" {
		return "(not set)"
	}
	return s
}

func (a *app) brandShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show SLUG|ID",
		Short: "Show a tenant's brand colors and the colors in effect",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			b, err := svc.Brand(ctx, t.ID)
			if err != nil {
				return err
			}
			l, err := svc.Look(ctx, t.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "Brand of %s\n", t.Slug)
			fmt.Fprintf(a.Out, "  primary_color: %s\n  secondary_color: %s\n  accent_color: %s\n",
				orUnset(b.Primary), orUnset(b.Secondary), orUnset(b.Accent))
			p := l.Palette
			fmt.Fprintf(a.Out, "In effect (%s)\n", tenancy.LookRule)
			fmt.Fprintf(a.Out, "  primary: %s\n  secondary: %s\n  accent: %s\n  background: %s\n  text: %s\n",
				p.Primary, p.Secondary, p.Accent, p.Background, p.Text)
			return nil
		},
	}
}

const themeRefHelp = `THEME is a theme's id (the slug of its name: "Acme Light Theme" is
acme-light-theme), its name, or, to activate, any prefix of the id that
names one theme only (acme-light).`

func (a *app) themeCommand() *cobra.Command {
	g := group("theme", "Create, edit, activate, list and delete a tenant's themes",
		a.themeCreateCommand(),
		a.themeUpdateCommand(),
		a.themeActivateCommand(),
		a.themeDeactivateCommand(),
		a.themeListCommand(),
		a.themeDeleteCommand(),
	)
	g.Long = "Create, edit, activate, list and delete a tenant's themes.\n\n" + tenancy.LookRule + "\n\n" + themeRefHelp
	return g
}

func (a *app) themeCreateCommand() *cobra.Command {
	var n tenancy.NewTheme
	cmd := &cobra.Command{
		Use:   "create SLUG|ID NAME --primary C --secondary C --background C --text C",
		Short: "Create a theme (inactive until activated)",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, f := range []string{"primary", "secondary", "background", "text"} {
				if !cmd.Flags().Changed(f) {
					return usageError{fmt.Sprintf("theme create needs --%s", f)}
				}
			}
			n.Name = args[1]
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			th, err := svc.CreateTheme(ctx, t.ID, n)
			if err != nil {
				return err
			}
			a.reportTheme("created", th)
			return nil
		},
	}
	themeColorFlags(cmd, &n)
	return cmd
}

func (a *app) themeActivateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "activate SLUG|ID THEME",
		Short: "Make a theme the active one (THEME: its id, its name or an unambiguous prefix)",
		Long:  "Make a theme the active one.\n\n" + themeRefHelp,
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			th, err := svc.ActivateTheme(ctx, t.ID, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Theme activated: %s (ID: %s)\n", th.Name, th.ID)
			return nil
		},
	}
}

// themeJSON is the shape of a theme for scripts.
type themeJSON struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Primary    string    `json:"primary"`
	Secondary  string    `json:"secondary"`
	Background string    `json:"background"`
	Text       string    `json:"text"`
	Active     bool      `json:"active"`
	CreatedAt  time.Time `json:"created_at"`
}

func (a *app) themeListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list SLUG|ID",
		Short: "List a tenant's themes; the active one is marked *",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			list, err := svc.ListThemes(ctx, t.ID)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]themeJSON, 0, len(list))
				for _, th := range list {
					out = append(out, themeJSON{th.ID, th.Name, th.Primary, th.Secondary, th.Background, th.Text, th.Active, th.CreatedAt})
				}
				return writeJSON(a.Out, out)
			}
			rows := make([][]string, 0, len(list))
			for _, th := range list {
				mark := ""
				if th.Active {
					mark = "*"
				}
				rows = append(rows, []string{mark, th.ID, cell(th.Name, 40), th.Primary, th.Secondary, th.Background, th.Text,
					tenancy.FormatRatio(th.TextContrast())})
			}
			table(a.Out, []string{"ACTIVE", "ID", "NAME", "PRIMARY", "SECONDARY", "BACKGROUND", "TEXT", "CONTRAST"}, rows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func (a *app) themeDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete SLUG|ID THEME",
		Short: "Delete a theme (THEME: its full id or its name); deleting the active one brings back the brand colors",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			th, err := svc.DeleteTheme(ctx, t.ID, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Theme deleted: %s (ID: %s)\n", th.Name, th.ID)
			if th.Active {
				fmt.Fprintf(a.Out, "  It was the active theme: %s's pages use the brand colors now.\n", t.Slug)
			}
			return nil
		},
	}
}

func (a *app) themeDeactivateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "deactivate SLUG|ID THEME",
		Short: "Switch the active theme off, so the brand colors apply (THEME: its full id or its name)",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			th, err := svc.DeactivateTheme(ctx, t.ID, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Theme deactivated: %s (ID: %s); %s's pages use the brand colors now\n", th.Name, th.ID, t.Slug)
			return nil
		},
	}
}

func (a *app) themeUpdateCommand() *cobra.Command {
	var n tenancy.NewTheme
	cmd := &cobra.Command{
		Use:   "update SLUG|ID THEME [--name N] [--primary C] [--secondary C] [--background C] [--text C]",
		Short: "Change a theme's name or colors (THEME: its full id or its name; the id stays)",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := []string{"name", "primary", "secondary", "background", "text"}
			changed := false
			for _, f := range flags {
				changed = changed || cmd.Flags().Changed(f)
			}
			if !changed {
				return usageError{"theme update needs --name, --primary, --secondary, --background or --text"}
			}
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			themes, err := svc.ListThemes(ctx, t.ID)
			if err != nil {
				return err
			}
			var old *tenancy.Theme
			for _, th := range themes {
				if th.ID == args[1] {
					old = th
				}
			}
			if old == nil {
				return tenancy.FieldErrorf(tenancy.ENOTFOUND, "theme", "no theme %s", tenancy.Quote(args[1]))
			}
			in := tenancy.NewTheme{Name: old.Name, Primary: old.Primary, Secondary: old.Secondary, Background: old.Background, Text: old.Text}
			for i, dst := range []*string{&in.Name, &in.Primary, &in.Secondary, &in.Background, &in.Text} {
				if cmd.Flags().Changed(flags[i]) {
					*dst, _ = cmd.Flags().GetString(flags[i])
				}
			}
			th, err := svc.UpdateTheme(ctx, t.ID, old.ID, in)
			if err != nil {
				return err
			}
			a.reportTheme("updated", th)
			return nil
		},
	}
	cmd.Flags().StringVar(&n.Name, "name", "", "new name (the id stays)")
	themeColorFlags(cmd, &n)
	return cmd
}

func (a *app) tenantSettingCommand() *cobra.Command {
	g := group("setting", "Set, read and list a tenant's settings",
		a.settingSetCommand(),
		a.settingGetCommand(),
		a.settingListCommand(),
		a.settingDeleteCommand(),
	)
	g.Long = "Set, read and list a tenant's settings.\n\nKnown keys:\n"
	for _, k := range tenancy.KnownSettings() {
		g.Long += fmt.Sprintf("  %-26s %s\n", k[0], k[1])
	}
	g.Long += "  custom.NAME                NAME of a-z 0-9 _ . - (at most 60); any text up to 2000 characters\n"
	return g
}

func (a *app) settingSetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "set SLUG|ID KEY VALUE",
		Short: "Set a setting (checked against its key's rules)",
		Args:  args(3, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			st, err := svc.SetSetting(ctx, t.ID, args[1], args[2])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Setting %s of %s set to %s\n", st.Key, t.Slug, tenancy.Quote(st.Value))
			return nil
		},
	}
}

func (a *app) settingGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get SLUG|ID KEY",
		Short: "Print a setting's value",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			st, err := svc.Setting(ctx, t.ID, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintln(a.Out, st.Value)
			return nil
		},
	}
}

func (a *app) settingDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete SLUG|ID KEY",
		Short: "Remove a setting",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			if err := svc.DeleteSetting(ctx, t.ID, args[1]); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Setting %s of %s removed\n", args[1], t.Slug)
			return nil
		},
	}
}

// settingJSON is the shape of a setting for scripts.
type settingJSON struct {
	Key       string    `json:"key"`
	Value     string    `json:"value"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (a *app) settingListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list SLUG|ID",
		Short: "List a tenant's settings",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.branding(ctx, args[0])
			if err != nil {
				return err
			}
			list, err := svc.ListSettings(ctx, t.ID)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]settingJSON, 0, len(list))
				for _, st := range list {
					out = append(out, settingJSON{st.Key, st.Value, st.UpdatedAt})
				}
				return writeJSON(a.Out, out)
			}
			rows := make([][]string, 0, len(list))
			for _, st := range list {
				rows = append(rows, []string{st.Key, cell(tenancy.Quote(st.Value), 60), timestamp(st.UpdatedAt)})
			}
			table(a.Out, []string{"KEY", "VALUE", "UPDATED_AT"}, rows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// reportTheme says what happened to a theme, and warns when its text is
// hard to read on its background.
func (a *app) reportTheme(done string, th *tenancy.Theme) {
	fmt.Fprintf(a.Out, "✓ Theme %s: %s (ID: %s)\n", done, th.Name, th.ID)
	if r := th.TextContrast(); r < tenancy.AAContrast {
		fmt.Fprintf(a.Out, "! Warning: text %s on background %s has a contrast of %s; WCAG AA asks at least 4.5:1 for normal text\n",
			th.Text, th.Background, tenancy.FormatRatio(r))
	}
}

// themeColorFlags are the color flags of theme create and update.
func themeColorFlags(cmd *cobra.Command, n *tenancy.NewTheme) {
	cmd.Flags().StringVar(&n.Primary, "primary", "", "primary color (#RGB or #RRGGBB)")
	cmd.Flags().StringVar(&n.Secondary, "secondary", "", "secondary color")
	cmd.Flags().StringVar(&n.Background, "background", "", "background color")
	cmd.Flags().StringVar(&n.Text, "text", "", "text color")
}
