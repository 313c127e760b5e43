package tenancy

import (
	"context"
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
