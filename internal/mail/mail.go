// Package mail sends email through SMTP.
package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	netmail "net/mail"
	"net/textproto"
	"time"

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
	// Timeout bounds connecting and each SMTP command (SMTP_TIMEOUT), and
	// twice that the whole delivery; DefaultTimeout when 0.
	Timeout time.Duration
}

// DefaultTimeout bounds connecting and each command when Config.Timeout
// is 0.
const DefaultTimeout = 10 * time.Second

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
	from, err := netmail.ParseAddress(s.cfg.From)
	if err != nil {
		return fmt.Errorf("send mail: SMTP_FROM %q: %w", s.cfg.From, err)
	}
	// The tenant's name beside the platform's address: "Acme Corporation
	// <no-reply@…>" rather than a bare no-reply.
	name := from.Name
	if m.FromName != "" {
		name = m.FromName
	}
	// net/mail quotes and encodes the name as the header needs.
	if err := msg.From((&netmail.Address{Name: name, Address: from.Address}).String()); err != nil {
		return fmt.Errorf("send mail: SMTP_FROM %q: %w", s.cfg.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("send mail: recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)

	timeout := s.cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// A server that accepts and never answers fails the greeting's
	// deadline; one that stalls mid-message, the delivery's.
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithTLSPolicy(gomail.TLSOpportunistic), gomail.WithTimeout(timeout)}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("send mail: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		err = fmt.Errorf("send mail to %s: %w", m.To, err)
		if unavailable(err) {
			return tenancy.Unavailable(tenancy.ServiceMail, err)
		}
		if refused(err) {
			return tenancy.Errorf(tenancy.EINVALID, "the mail server refused the message: %v", err)
		}
		return err
	}
	return nil
}

// refused tells a message the mail server refused for good: a 5xx reply.
func refused(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return !se.IsTemp()
	}
	var reply *textproto.Error
	return errors.As(err, &reply) && reply.Code >= 500
}

// unavailable tells a mail server that could not be reached, did not
// answer in time or deferred the message (a 4xx reply: try again later)
// from one that refused it for good.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		return se.IsTemp()
	}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return reply.Code >= 400 && reply.Code < 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
