package tenancy

import (
	"context"
	"time"
)

// Mail is one mail in the outbox: recorded in the transaction of the
// change that causes it, and composed from the tenant's template and look
// when it is sent. The outbox keeps the recipient's own values, never the
// rendered message, so that every mail is composed in one place.
type Mail struct {
	ID       string
	TenantID string
	// TenantSlug and TenantName are the tenant's, read with the mail.
	TenantSlug string
	TenantName string
	// Template is one of EmailTemplateNames.
	Template string
	To       string
	// Vars are the recipient's values: USER_NAME, USER_EMAIL and, for an
	// invitation, INVITER_NAME and ROLE. The tenant's own (TENANT_NAME,
	// PRIMARY_COLOR, LOGO_URL, SUPPORT_URL) are added when it is composed.
	Vars map[string]string
	// Link is the path of the mail's button ({{ACTION_URL}}) on the
	// tenant's portal, query included: a one-time secret for an invitation
	// or a password link. It is made absolute when composed, with the
	// configured scheme, host and port, and cleared once the mail is sent.
	Link string
	// InvitationID ties an invitation's mail to it, so that the members
	// page can say how it fared.
	InvitationID string

	CreatedAt     time.Time
	Attempts      int
	NextAttemptAt time.Time
	// Subject is the subject of the latest attempt, for the console.
	Subject   string
	LastError string
	SentAt    *time.Time
	FailedAt  *time.Time
	// Claim is the sender's hold on the mail while it sends it.
	Claim string
}

// MailState is where a mail is on its way.
type MailState string

const (
	MailQueued   MailState = "queued"   // not tried yet
	MailRetrying MailState = "retrying" // tried, failed, to be tried again
	MailSent     MailState = "sent"
	MailFailed   MailState = "failed" // given up: see LastError
)

// State says where the mail is on its way.
func (m *Mail) State() MailState {
	switch {
	case m.SentAt != nil:
		return MailSent
	case m.FailedAt != nil:
		return MailFailed
	case m.LastError != "":
		return MailRetrying
	}
	return MailQueued
}

// Delivery says how an invitation's latest mail fared, for the members
// page: "" once it is sent.
func (m *Mail) Delivery() string {
	switch m.State() {
	case MailQueued:
		return "not delivered yet"
	case MailRetrying:
		return "not delivered yet: " + m.LastError + " (trying again)"
	case MailFailed:
		return "not delivered: " + m.LastError + " (resend to try again)"
	}
	return ""
}

// MailRetry is how the outbox tries again: after the nth failed attempt
// it waits MinDelay·2ⁿ⁻¹, at most MaxDelay, and gives the mail up after
// MaxAttempts attempts. A mail given up stays listed in the console,
// where it can be sent again.
type MailRetry struct {
	MinDelay    time.Duration
	MaxDelay    time.Duration
	MaxAttempts int
}

// DefaultMailRetry tries for about a day: seven attempts in the first
// hour, then one an hour.
var DefaultMailRetry = MailRetry{MinDelay: 30 * time.Second, MaxDelay: time.Hour, MaxAttempts: 30}

// After decides what follows the failure of attempt number attempts (the
// first is 1): how long to wait before the next, or giving up.
func (r MailRetry) After(attempts int) (wait time.Duration, giveUp bool) {
	if r.MaxAttempts > 0 && attempts >= r.MaxAttempts {
		return 0, true
	}
	wait = r.MinDelay
	for i := 1; i < attempts && wait < r.MaxDelay; i++ {
		wait *= 2
	}
	if r.MaxDelay > 0 && wait > r.MaxDelay {
		wait = r.MaxDelay
	}
	return max(wait, 0), false
}

// MailFilter selects the outbox's mail for the console.
type MailFilter struct {
	// Undelivered lists only mail not sent yet that failed at least once,
	// and mail given up.
	Undelivered bool
	TenantID    string
	Limit       int
	Offset      int
}

// Outbox is the mail waiting to be sent, and the sender's hold on it.
// Mail is put in by the services whose changes cause it, in their own
// transactions.
type Outbox interface {
	// Claim takes up to limit due mails for this sender, in short
	// transactions that skip mail another sender holds: each claimed mail
	// is due again only after hold, when the sender did not mark it.
	Claim(ctx context.Context, limit int, hold time.Duration) ([]*Mail, error)
	// Sent marks a claimed mail sent and forgets its secrets; false when
	// the claim had expired and another sender took the mail.
	Sent(ctx context.Context, m *Mail) (bool, error)
	// Failed records a failed attempt: the mail is due again after wait,
	// or, with giveUp, no more. reason is for people: the portal and the
	// console show it.
	Failed(ctx context.Context, m *Mail, reason string, wait time.Duration, giveUp bool) error
	// NextDue returns when the earliest mail not yet sent nor given up is
	// due (claimed mail when its claim ends); the zero time when none waits.
	NextDue(ctx context.Context) (time.Time, error)
	// Forget removes the mail sent or given up long ago, in every tenant.
	Forget(ctx context.Context) (int, error)
	// Release hands claimed mails back untried, due again after wait.
	Release(ctx context.Context, mails []*Mail, wait time.Duration) error
	// List lists mail, newest first, and the total matching.
	List(ctx context.Context, f MailFilter) ([]*Mail, int, error)
	// Retry makes a mail not sent yet due now, with its attempts counted
	// anew.
	Retry(ctx context.Context, tenantID, id string) (*Mail, error)
}

// SampleLink is the path a sample or test mail's button leads to: the
// page the real mail links to, with a stand-in for a secret.
func SampleLink(template string) string {
	switch template {
	case "invitation":
		return "/invitations/accept?token=…"
	case "password_reset":
		return "/password/reset?token=…"
	case "password_set":
		return "/password/set?token=…"
	case "payment_failed", "quota_warning":
		return "/billing"
	}
	return "/"
}
