package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/mail"
	"github.com/nself/nself/internal/notify"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// smtp is the mail server the settings name.
func (a *app) smtp() *mail.SMTP {
	return mail.New(mail.Config{Host: a.cfg.SMTPHost, Port: int(a.cfg.SMTPPort),
		Username: a.cfg.SMTPUsername, Password: a.cfg.SMTPPassword, From: a.cfg.SMTPFrom, Timeout: time.Duration(a.cfg.SMTPTimeout)})
}

// queuedNote says that a command's mail waits in the outbox, and who
// sends it.
func (a *app) queuedNote(what, to string) {
	fmt.Fprintf(a.Out, "  Mail queued: %s to %s (a running `nself serve` sends it; without one, run `nself mail flush`)\n", what, to)
}

func (a *app) mailCommand() *cobra.Command {
	return group("mail", "See and send the mail waiting in the outbox",
		a.mailFlushCommand(),
		a.mailListCommand(),
	)
}

func (a *app) mailFlushCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "flush",
		Short: "Send the mail that is due now, through SMTP, and exit",
		Long: "Send the mail that is due now through the SMTP server (SMTP_HOST, SMTP_PORT,\n" +
			"SMTP_FROM), as `nself serve` does every second: for installations where no\n" +
			"server runs, or to send at once. A failed mail is tried again later\n" +
			"(MAIL_RETRY_MIN, doubling up to MAIL_RETRY_MAX) and given up after\n" +
			"MAIL_MAX_ATTEMPTS attempts. Running it beside servers is safe: each mail is\n" +
			"sent once.",
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if a.cfg.SMTPHost == "" {
				return fmt.Errorf("SMTP_HOST is not set: the mail stays in the outbox until a mail server is configured")
			}
			svc, err := a.services(ctx)
			if err != nil {
				return err
			}
			// Each mail that stays unsent is counted below and listed by
			// nself mail list: one line per mail here would drown it.
			svc.Sender.Log = slog.New(slog.NewTextHandler(a.Err, &slog.HandlerOptions{Level: slog.LevelError}))
			res, err := svc.Sender.RunOnce(ctx)
			if err != nil {
				return err
			}
			if res.Failed+res.GivenUp > 0 {
				// A script must see that mail is still waiting: an outage
				// or a refusal is no success.
				fmt.Fprintf(a.Out, "Mail sent: %d, failed (to be tried again): %d, given up: %d\n", res.Sent, res.Failed, res.GivenUp)
				return fmt.Errorf("%d mail(s) not sent: see why with nself mail list", res.Failed+res.GivenUp)
			}
			fmt.Fprintf(a.Out, "✓ Mail sent: %d\n", res.Sent)
			return nil
		},
	}
}

func (a *app) mailListCommand() *cobra.Command {
	var all bool
	var limit int
	cmd := &cobra.Command{
		Use:   "list [SLUG|ID]",
		Short: "List the mail not delivered (failed at least once, or given up)",
		Args:  args(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, err := a.database(ctx)
			if err != nil {
				return err
			}
			f := tenancy.MailFilter{Undelivered: !all, Limit: limit}
			if len(args) == 1 {
				t, err := a.tenantArg(ctx, args[0])
				if err != nil {
					return err
				}
				f.TenantID = t.ID
			}
			mails, total, err := postgres.NewMailOutbox(db).List(ctx, f)
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(mails))
			for _, m := range mails {
				next := "-"
				if m.SentAt == nil && m.FailedAt == nil {
					next = m.NextAttemptAt.UTC().Format("2006-01-02 15:04:05")
				}
				rows = append(rows, []string{m.TenantSlug, m.Template, cell(m.To, 40), string(m.State()),
					strconv.Itoa(m.Attempts), next, cell(m.LastError, 60)})
			}
			table(a.Out, []string{"TENANT", "TEMPLATE", "TO", "STATE", "ATTEMPTS", "NEXT_ATTEMPT", "WHY"}, rows)
			if total > len(mails) {
				fmt.Fprintf(a.Out, "(%d of %d shown)\n", len(mails), total)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list every mail kept (30 days), sent and queued too")
	cmd.Flags().IntVar(&limit, "limit", 50, "list at most this many, newest first")
	return cmd
}

// runMailSender delivers the outbox every interval until ctx ends; done is
// closed once the mail in hand is sent and marked.
func runMailSender(ctx context.Context, s *notify.Sender, every time.Duration) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, every)
	}()
	return done
}
