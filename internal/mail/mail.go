// Package mail sends email through SMTP.
package mail

import (
	"context"
	"fmt"

	gomail "github.com/wneessen/go-mail"

	"github.com/nself/nself/internal/tenancy"
)

// Config says how to reach the SMTP server.
type Config struct {
	Host     string
	Port     int
	Username string
	Password string
	From     string
}

// SMTP implements tenancy.Mailer.
type SMTP struct {
	cfg Config
}

var _ tenancy.Mailer = (*SMTP)(nil)

// New returns a mailer for cfg.
func New(cfg Config) *SMTP { return &SMTP{cfg: cfg} }

// Send sends one message with an HTML and a plain-text part. STARTTLS is
// used when the server offers it; credentials are sent only when set.
func (s *SMTP) Send(ctx context.Context, m tenancy.Message) error {
	if s.cfg.Host == "" {
		return fmt.Errorf("send mail: SMTP_HOST is not set")
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("send mail: SMTP_FROM %q: %w", s.cfg.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("send mail: recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)

	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithTLSPolicy(gomail.TLSOpportunistic)}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("send mail: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("send mail to %s: %w", m.To, err)
	}
	return nil
}
