package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

var emailHelp = `Templates: ` + strings.Join(tenancy.EmailTemplateNames, ", ") + `

Variables, written {{NAME}} or <<NAME>>:
  ` + strings.Join(tenancy.TemplateVariables, ", ") + `

Values are HTML-escaped in the HTML body. A tenant without its own version
of a template is sent the default.

{{ACTION_URL}}, the link a mail exists for, may be in the HTML body only as
a link's whole address (<a href="{{ACTION_URL}}">), in the text body only
standing alone, and never in the subject. password_reset, password_set and
invitation carry a secret link: in the portal only owners change them.

Every mail goes through the outbox and is sent by a running ` + "`nself serve`" + `
(or ` + "`nself mail flush`" + `); welcome goes to every new account, password_set to
one made without a password.`

func (a *app) emailCommand() *cobra.Command {
	g := group("email", "Customize the emails a tenant's users receive",
		a.emailCustomizeCommand(),
		a.emailShowCommand(),
		a.emailResetCommand(),
		a.emailTestCommand(),
		a.emailListCommand(),
	)
	g.Long = "Customize the emails a tenant's users receive.\n\n" + emailHelp
	return g
}

// emailTemplates opens the database, finds the tenant an argument names and
// returns it with the email template service.
func (a *app) emailTemplates(ctx context.Context, ref string) (*tenancy.Tenant, *postgres.EmailTemplateService, error) {
	t, err := a.tenantArg(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	return t, a.svc.EmailTemplates, nil
}

// readTemplateFile reads a template body, refusing a file far larger than
// a template may be before reading it whole.
func readTemplateFile(flag, path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	if info.Size() > tenancy.MaxEmailBody {
		return "", tenancy.FieldErrorf(tenancy.EINVALID, flag, "--%s: %s is larger than %d KB", flag, path, tenancy.MaxEmailBody/1024)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	return string(b), nil
}

func (a *app) emailCustomizeCommand() *cobra.Command {
	var subject, htmlFile, textFile string
	cmd := &cobra.Command{
		Use:   "customize SLUG|ID TEMPLATE --template-file FILE [--subject TEXT] [--text-file FILE]",
		Short: "Give a tenant its own version of an email template",
		Long: "Give a tenant its own version of an email template: the HTML body from\n" +
			"--template-file, the subject from --subject (the current one when left out),\n" +
			"and the plain-text body from --text-file, or, without it, the text of the\n" +
			"HTML body with each link's address after its label.\n\n" + emailHelp,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if htmlFile == "" {
				return usageError{"--template-file is required"}
			}
			if err := tenancy.CheckEmailTemplateName(args[1]); err != nil {
				return err
			}
			html, err := readTemplateFile("template-file", htmlFile)
			if err != nil {
				return err
			}
			var text string
			if textFile != "" {
				if text, err = readTemplateFile("text-file", textFile); err != nil {
					return err
				}
			}
			t, svc, err := a.emailTemplates(ctx, args[0])
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("subject") {
				cur, err := svc.Get(ctx, t.ID, args[1])
				if err != nil {
					return err
				}
				subject = cur.Subject
			}
			e, err := svc.Customize(ctx, t.ID, args[1], subject, html, text, tenancy.PlatformActor())
			if err != nil {
				return err
			}
			how := "text from --text-file"
			if textFile == "" {
				how = "text derived from the HTML"
			}
			fmt.Fprintf(a.Out, "✓ Email template customized: %s for %s (%s)\n", e.Name, t.Slug, how)
			fmt.Fprintf(a.Out, "  Subject: %s\n", e.Subject)
			return nil
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "the subject line; may use variables")
	cmd.Flags().StringVar(&htmlFile, "template-file", "", "file with the HTML body")
	cmd.Flags().StringVar(&textFile, "text-file", "", "file with the plain-text body")
	return cmd
}

func (a *app) emailShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show SLUG|ID TEMPLATE",
		Short: "Print a tenant's email template: subject, HTML and text",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := tenancy.CheckEmailTemplateName(args[1]); err != nil {
				return err
			}
			t, svc, err := a.emailTemplates(ctx, args[0])
			if err != nil {
				return err
			}
			e, err := svc.Get(ctx, t.ID, args[1])
			if err != nil {
				return err
			}
			state := "default"
			if e.Customized {
				state = "customized " + e.UpdatedAt.UTC().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(a.Out, "Template: %s (%s)\nSubject: %s\n\n--- HTML ---\n%s\n--- Text ---\n%s\n",
				e.Name, state, e.Subject, strings.TrimRight(e.HTML, "\n"), strings.TrimRight(e.Text, "\n"))
			return nil
		},
	}
}

func (a *app) emailResetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "reset SLUG|ID TEMPLATE",
		Short: "Go back to the default version of an email template",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := tenancy.CheckEmailTemplateName(args[1]); err != nil {
				return err
			}
			t, svc, err := a.emailTemplates(ctx, args[0])
			if err != nil {
				return err
			}
			done, err := svc.Reset(ctx, t.ID, args[1], tenancy.PlatformActor())
			if err != nil {
				return err
			}
			if !done {
				fmt.Fprintf(a.Out, "✓ Email template %s of %s is already the default\n", args[1], t.Slug)
				return nil
			}
			fmt.Fprintf(a.Out, "✓ Email template reset: %s of %s is the default again\n", args[1], t.Slug)
			return nil
		},
	}
}

func (a *app) emailTestCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "test SLUG|ID TEMPLATE --to ADDRESS",
		Short: "Send a tenant's email template, as its mail looks, through SMTP",
		Long: "Send a tenant's email template to ADDRESS through the SMTP server\n" +
			"(SMTP_HOST, SMTP_PORT, SMTP_FROM), composed as the platform composes the\n" +
			"tenant's mail: its own version of the template (or the default, also when\n" +
			"its own breaks the rules), its colors, company name, email logo and support\n" +
			"address, and links on its portal (PUBLIC_SCHEME, BASE_DOMAIN, PUBLIC_PORT).\n" +
			"Sample people stand in for the recipient, and the secret links of\n" +
			"invitations and password mails for a real one. It is sent at once, not\n" +
			"through the outbox.",
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if to == "" {
				return usageError{"--to is required"}
			}
			if err := tenancy.CheckEmailTemplateName(args[1]); err != nil {
				return err
			}
			t, err := a.tenantArg(ctx, args[0])
			if err != nil {
				return err
			}
			svc, err := a.services(ctx)
			if err != nil {
				return err
			}
			c := svc.Mail
			tpl, err := c.Template(ctx, t.ID, args[1])
			if err != nil {
				return err
			}
			msg, err := c.Sample(ctx, t, tpl, to)
			if err != nil {
				return err
			}
			if err := a.smtp().Send(ctx, msg); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Test email sent to %s: %s\n", to, msg.Subject)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the address to send it to")
	return cmd
}

func (a *app) emailListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list SLUG|ID",
		Short: "List a tenant's email templates, and which are customized",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.emailTemplates(ctx, args[0])
			if err != nil {
				return err
			}
			list, err := svc.List(ctx, t.ID)
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(list))
			for _, e := range list {
				state, updated := "default", "-"
				if e.Customized {
					state, updated = "customized", date(e.UpdatedAt)
				}
				rows = append(rows, []string{e.Name, state, updated, cell(e.Subject, 60)})
			}
			table(a.Out, []string{"TEMPLATE", "VERSION", "UPDATED", "SUBJECT"}, rows)
			return nil
		},
	}
}
