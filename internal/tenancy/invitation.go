package tenancy

import (
	"context"
	"slices"
	"time"
)

// InvitationTTL is how long an invitation link stays valid.
const InvitationTTL = 7 * 24 * time.Hour

// Invitation asks a person, by email, to join a tenant with a role. It is
// accepted once through a link holding a secret, of which only a hash is
// kept.
type Invitation struct {
	ID       string
	TenantID string
	Email    string
	Name     string
	Role     Role
	// InvitedBy is the inviting user's id; empty when the platform invited.
	InvitedBy string
	CreatedAt time.Time
	ExpiresAt time.Time

	// Set by Find, for the page that accepts the invitation.
	TenantName   string
	InviterEmail string
	InviterName  string
	// NeedsPassword says that the invitee has no account in the tenant, or
	// one without a password, so that accepting must choose a password.
	NeedsPassword bool

	// Delivery says, in ListPending, how the latest mail of the
	// invitation fared when it is not sent yet (Mail.Delivery); "" once
	// it is.
	Delivery string
}

// Expired reports whether the invitation's link no longer works at now.
func (i *Invitation) Expired(now time.Time) bool { return !now.Before(i.ExpiresAt) }

// DisplayName is how the invitee is greeted: their name, or their email.
func (i *Invitation) DisplayName() string {
	if i.Name != "" {
		return i.Name
	}
	return i.Email
}

// Inviter is how the person who invited is named: their name, their email,
// or the tenant when the platform invited.
func (i *Invitation) Inviter() string {
	switch {
	case i.InviterName != "":
		return i.InviterName
	case i.InviterEmail != "":
		return i.InviterEmail
	}
	return "The " + i.TenantName + " team"
}

// NewInvitation is the input to invite someone.
type NewInvitation struct {
	Email string
	// Name is optional: how the invitee is greeted, and the new account's
	// name.
	Name string
	Role Role
	// InvitedBy is the inviting user's id; empty for the platform.
	InvitedBy string
}

// Validate checks the input and normalizes the email.
func (in *NewInvitation) Validate() error {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return err
	}
	in.Email = email
	if in.Name != "" {
		if err := ValidateName("name", in.Name); err != nil {
			return err
		}
	}
	_, err = ParseRole(string(in.Role))
	return err
}

// InvitationService invites people to a tenant. Who may invite with which
// role is decided by CheckMemberChange for the actor when inviting, resending
// or revoking; the plan's member limit is checked when the invitation is
// accepted, since that is when a member is added. Emails are compared
// without case.
type InvitationService interface {
	// Invite records an invitation, valid for InvitationTTL, and returns it
	// with its single-use secret. A person has at most one pending
	// invitation per tenant; a member cannot be invited again.
	Invite(ctx context.Context, tenantID string, in NewInvitation, actor Actor) (*Invitation, string, error)
	// ListPending lists the invitations neither accepted nor revoked,
	// expired ones included (they can be resent), newest first.
	ListPending(ctx context.Context, tenantID string) ([]*Invitation, error)
	// Resend gives a pending invitation a new secret and a new expiry; the
	// old link stops working.
	Resend(ctx context.Context, tenantID, invitationID string, actor Actor) (*Invitation, string, error)
	// Revoke withdraws a pending invitation.
	Revoke(ctx context.Context, tenantID, invitationID string, actor Actor) (*Invitation, error)
	// Find returns the pending, unexpired invitation with that secret; a
	// secret that is unknown, used, revoked or expired is EINVALID with a
	// message saying which.
	Find(ctx context.Context, tenantID, secret string) (*Invitation, error)
	// Accept uses up the invitation: it creates the invitee's account when
	// the tenant has none with that email (password is then required, as
	// it is for an account without one), makes the account a member with
	// the invitation's role, and marks the invitation accepted, all at once.
	Accept(ctx context.Context, tenantID, secret, password string) (*Invitation, *User, error)
}

// InvitationLimits bound the invitation mails a tenant sends: each carries
// HTML the tenant wrote to an address the tenant chose, so without a
// bound the platform would mail anyone, as often as asked, at its own
// speed. Every mail counts, new or resent, whether or not it was
// delivered; the counts are kept in the database, so they hold however
// many server processes send.
type InvitationLimits struct {
	// PerAddress mails to one address within AddressWindow (resends,
	// and new invitations after a revoke, alike).
	PerAddress    int
	AddressWindow time.Duration
	// PerTenant mails of one tenant, to anyone, within TenantWindow.
	PerTenant    int
	TenantWindow time.Duration
}

// DefaultInvitationLimits: an address gets at most 5 invitation mails a
// day from a tenant (the invitation and 4 resends, enough when a mail went
// astray), and a tenant sends at most 100 an hour (a team of hundreds is
// invited within the day).
var DefaultInvitationLimits = InvitationLimits{PerAddress: 5, AddressWindow: 24 * time.Hour, PerTenant: 100, TenantWindow: time.Hour}

// Longest is the longest window: older mails no longer count.
func (l InvitationLimits) Longest() time.Duration { return max(l.AddressWindow, l.TenantWindow) }

// CheckMail decides whether one more invitation mail to email may go out
// at now, given when the earlier ones went out (to that address, and of
// the whole tenant; older ones may be included). A refusal is EQUOTA on
// the field "email" and says when a mail may go out again.
func (l InvitationLimits) CheckMail(now time.Time, email string, toAddress, ofTenant []time.Time) error {
	if at, over := nextSlot(now, toAddress, l.PerAddress, l.AddressWindow); over {
		return FieldErrorf(EQUOTA, "email", "%s has been sent %s in the last %s, the most allowed: you can send another %s",
			email, plural(int64(l.PerAddress), "invitation email"), windowName(l.AddressWindow), whenAgain(now, at))
	}
	if at, over := nextSlot(now, ofTenant, l.PerTenant, l.TenantWindow); over {
		return FieldErrorf(EQUOTA, "email", "Your team has sent %s in the last %s, the most allowed: you can send more %s",
			plural(int64(l.PerTenant), "invitation email"), windowName(l.TenantWindow), whenAgain(now, at))
	}
	return nil
}

// nextSlot reports whether limit mails went out within window before now
// and, if so, when the one that frees a place leaves the window.
func nextSlot(now time.Time, sent []time.Time, limit int, window time.Duration) (time.Time, bool) {
	var recent []time.Time
	for _, t := range sent {
		if t.After(now.Add(-window)) {
			recent = append(recent, t)
		}
	}
	if len(recent) < limit {
		return time.Time{}, false
	}
	slices.SortFunc(recent, func(a, b time.Time) int { return a.Compare(b) })
	// With n mails in the window, a place opens when the (n-limit+1)th
	// oldest leaves it.
	return recent[len(recent)-limit].Add(window), true
}

func windowName(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "hour"
	case d == 24*time.Hour:
		return "day"
	case d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	}
	return plural(int64(d.Round(time.Minute)/time.Minute), "minute")
}

// whenAgain says when at comes, in UTC and from now: "at 14:05 UTC (in 3
// hours 12 minutes)".
func whenAgain(now, at time.Time) string {
	wait := at.Sub(now)
	mins := int64((wait + time.Minute - 1) / time.Minute)
	// Shown to the minute, and never before the place opens.
	if r := at.Truncate(time.Minute); r.Before(at) {
		at = r.Add(time.Minute)
	}
	in := plural(mins, "minute")
	if h := mins / 60; h > 0 {
		in = plural(h, "hour")
		if m := mins % 60; m > 0 {
			in += " " + plural(m, "minute")
		}
	}
	day := ""
	if at.UTC().YearDay() != now.UTC().YearDay() {
		day = at.UTC().Format("2 Jan ")
	}
	return "at " + day + at.UTC().Format("15:04") + " UTC (in " + in + ")"
}
