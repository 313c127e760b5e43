package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/password"
	"github.com/nself/nself/internal/tenancy"
)

// InvitationService implements tenancy.InvitationService on the
// application role.
type InvitationService struct {
	db *DB
	// Limits bound the invitation mails; DefaultInvitationLimits unless
	// changed before the service is used.
	Limits tenancy.InvitationLimits
}

var _ tenancy.InvitationService = (*InvitationService)(nil)

// NewInvitationService returns an InvitationService using db.
func NewInvitationService(db *DB) *InvitationService {
	return &InvitationService{db: db, Limits: tenancy.DefaultInvitationLimits}
}

// lockMails serializes a tenant's invitation mails until tx ends, so that
// two processes cannot both take the last place the limits leave. It is
// taken before any invitation row is locked.
func lockMails(ctx context.Context, tx pgx.Tx, tenantID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('nself.invitation-mails:' || $1::text, 0))`, tenantID)
	return err
}

// admitMail decides, under lockMails, whether the tenant's limits allow
// the invitation mail about to be sent to email.
func (s *InvitationService) admitMail(ctx context.Context, tx pgx.Tx, tenantID, email string) error {
	var now time.Time
	var toAddress, ofTenant []time.Time
	if err := tx.QueryRow(ctx, `
		SELECT now(),
		       coalesce(array_agg(sent_at) FILTER (WHERE email_lower = lower($2)), '{}'),
		       coalesce(array_agg(sent_at), '{}')
		FROM tenants.tenant_invitation_mails
		WHERE tenant_id = $1 AND sent_at > now() - $3::interval`,
		tenantID, email, interval(s.Limits.Longest())).Scan(&now, &toAddress, &ofTenant); err != nil {
		return err
	}
	return s.Limits.CheckMail(now, email, toAddress, ofTenant)
}

// recordMail counts an invitation mail admitted by admitMail, and forgets
// those too old to count.
func (s *InvitationService) recordMail(ctx context.Context, tx pgx.Tx, inv *tenancy.Invitation) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO tenants.tenant_invitation_mails (tenant_id, invitation_id, email_lower) VALUES ($1, $2, lower($3))`,
		inv.TenantID, inv.ID, inv.Email); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM tenants.tenant_invitation_mails WHERE tenant_id = $1 AND sent_at <= now() - $2::interval`,
		inv.TenantID, interval(s.Limits.Longest()))
	return err
}

const invitationColumns = `i.tenant_id, i.id, i.email, i.name, i.role, coalesce(i.invited_by::text, ''), i.created_at, i.expires_at`

func scanInvitation(row pgx.Row, extra ...any) (*tenancy.Invitation, error) {
	inv := &tenancy.Invitation{}
	dest := append([]any{&inv.TenantID, &inv.ID, &inv.Email, &inv.Name, &inv.Role, &inv.InvitedBy, &inv.CreatedAt, &inv.ExpiresAt}, extra...)
	return inv, row.Scan(dest...)
}

// Invite records an invitation after the actor's role is checked against
// the role it gives.
func (s *InvitationService) Invite(ctx context.Context, tenantID string, in tenancy.NewInvitation, actor tenancy.Actor) (*tenancy.Invitation, string, error) {
	if err := in.Validate(); err != nil {
		return nil, "", err
	}
	if in.InvitedBy != "" && !tenancy.IsUUID(in.InvitedBy) {
		return nil, "", tenancy.Errorf(tenancy.EINVALID, "inviter %s is not a user id", tenancy.Quote(in.InvitedBy))
	}
	var inv *tenancy.Invitation
	secret, hash := tenancy.NewSecret()
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		if err := holdTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		slug, err := liveTenantSlug(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		// The plan's limit is the accepting transaction's to check: here
		// only the actor's right to give the role counts.
		if err := tenancy.CheckMemberChange(actor, tenancy.MemberChange{Tenant: slug, To: in.Role,
			Plan: tenancy.Plan{MaxUsers: tenancy.Unlimited}}); err != nil {
			return err
		}
		var member bool
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (
				SELECT 1 FROM auth.users u
				JOIN tenants.tenant_members m ON m.tenant_id = u.tenant_id AND m.user_id = u.id
				WHERE u.tenant_id = $1 AND u.email_lower = lower($2))`, tenantID, in.Email).Scan(&member); err != nil {
			return err
		}
		if member {
			return tenancy.FieldErrorf(tenancy.ECONFLICT, "email", "%s is already a member of %s", in.Email, slug)
		}
		if err := lockMails(ctx, tx, tenantID); err != nil {
			return err
		}
		if err := s.admitMail(ctx, tx, tenantID, in.Email); err != nil {
			return err
		}
		// An expired invitation no longer holds the person's one pending
		// place: it is withdrawn so that a new one can be made.
		if _, err := tx.Exec(ctx, `
			UPDATE tenants.tenant_invitations SET revoked_at = now()
			WHERE tenant_id = $1 AND email_lower = lower($2)
			  AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= now()`, tenantID, in.Email); err != nil {
			return err
		}
		var invitedBy any
		if in.InvitedBy != "" {
			invitedBy = in.InvitedBy
		}
		inv, err = scanInvitation(tx.QueryRow(ctx, `
			INSERT INTO tenants.tenant_invitations AS i (tenant_id, email, name, role, invited_by, token_hash, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval)
			RETURNING `+invitationColumns,
			tenantID, in.Email, in.Name, in.Role, invitedBy, hash, interval(tenancy.InvitationTTL)))
		if err != nil {
			return err
		}
		if err := s.recordMail(ctx, tx, inv); err != nil {
			return err
		}
		if err := queueInvitation(ctx, tx, inv, secret); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "invitation.create", inv.Email,
			fmt.Sprintf("role: %s, expires: %s", inv.Role, inv.ExpiresAt.UTC().Format("2006-01-02 15:04")))
	})
	if err != nil {
		err = translate(err)
		if tenancy.ErrorCode(err) == tenancy.ECONFLICT && tenancy.ErrorMessage(err) == "already exists (tenant_invitations_pending)" {
			return nil, "", tenancy.FieldErrorf(tenancy.ECONFLICT, "email", "%s already has a pending invitation: resend it instead", in.Email)
		}
		return nil, "", invitationError("invite "+tenancy.Quote(in.Email), err)
	}
	return inv, secret, nil
}

// queueInvitation records an invitation's mail, carrying its secret link,
// in the transaction that makes or renews the invitation. tx is in the
// tenant's context.
func queueInvitation(ctx context.Context, tx pgx.Tx, inv *tenancy.Invitation, secret string) error {
	var inviter string
	if err := tx.QueryRow(ctx, `
		SELECT coalesce(
		         (SELECT coalesce(nullif(u.name, ''), u.email) FROM auth.users u
		          WHERE u.tenant_id = $1 AND u.id = nullif($2, '')::uuid),
		         'The ' || t.name || ' team')
		FROM tenants.tenants t WHERE t.id = $1`, inv.TenantID, inv.InvitedBy).Scan(&inviter); err != nil {
		return err
	}
	vars := userVars(inv.Email, inv.Name)
	vars["INVITER_NAME"], vars["ROLE"] = inviter, string(inv.Role)
	return queueMail(ctx, tx, &tenancy.Mail{TenantID: inv.TenantID, Template: "invitation", To: inv.Email,
		Vars: vars, Link: acceptPath(secret), InvitationID: inv.ID})
}

// liveTenantSlug returns the tenant's slug, refusing a deleted or unknown
// tenant.
func liveTenantSlug(ctx context.Context, tx pgx.Tx, tenantID string) (string, error) {
	var slug string
	var status tenancy.Status
	err := tx.QueryRow(ctx, `SELECT slug, status FROM tenants.tenants WHERE id = $1`, tenantID).Scan(&slug, &status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", tenancy.Errorf(tenancy.ENOTFOUND, "tenant %s not found", tenantID)
	case err != nil:
		return "", err
	case status == tenancy.StatusDeleted:
		return "", tenancy.Errorf(tenancy.ECONFLICT, "tenant %s is deleted", slug)
	}
	return slug, nil
}

// ListPending lists the invitations still open, newest first, with the
// inviter's email and name.
func (s *InvitationService) ListPending(ctx context.Context, tenantID string) ([]*tenancy.Invitation, error) {
	var out []*tenancy.Invitation
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			var email, name *string
			var mail tenancy.Mail
			var queued bool
			inv, err := scanInvitation(rows, &email, &name, &queued, &mail.SentAt, &mail.FailedAt, &mail.LastError)
			if err != nil {
				return err
			}
			inv.InviterEmail, inv.InviterName = deref(email), deref(name)
			if queued {
				inv.Delivery = mail.Delivery()
			}
			out = append(out, inv)
		}
		return nil
	}, `
		SELECT `+invitationColumns+`, u.email, u.name,
		       d.last_error IS NOT NULL, d.sent_at, d.failed_at, coalesce(d.last_error, '')
		FROM tenants.tenant_invitations i
		LEFT JOIN auth.users u ON u.tenant_id = $1 AND u.id = i.invited_by
		-- How the invitation's latest mail fared.
		LEFT JOIN LATERAL (
			SELECT o.sent_at, o.failed_at, o.last_error FROM tenants.tenant_mail_outbox o
			WHERE o.tenant_id = $1 AND o.invitation_id = i.id
			ORDER BY o.created_at DESC LIMIT 1
		) d ON true
		WHERE i.tenant_id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL
		ORDER BY i.created_at DESC, i.id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Resend gives a pending invitation a new secret and expiry.
func (s *InvitationService) Resend(ctx context.Context, tenantID, invitationID string, actor tenancy.Actor) (*tenancy.Invitation, string, error) {
	secret, hash := tenancy.NewSecret()
	inv, err := s.changePending(ctx, tenantID, invitationID, actor, secret, "invitation.resend", `
		UPDATE tenants.tenant_invitations AS i SET token_hash = $3, created_at = now(), expires_at = now() + $4::interval
		WHERE tenant_id = $1 AND id = $2
		RETURNING `+invitationColumns, hash, interval(tenancy.InvitationTTL))
	if err != nil {
		return nil, "", invitationError("resend invitation", err)
	}
	return inv, secret, nil
}

// Revoke withdraws a pending invitation.
func (s *InvitationService) Revoke(ctx context.Context, tenantID, invitationID string, actor tenancy.Actor) (*tenancy.Invitation, error) {
	inv, err := s.changePending(ctx, tenantID, invitationID, actor, "", "invitation.revoke", `
		UPDATE tenants.tenant_invitations AS i SET revoked_at = now()
		WHERE tenant_id = $1 AND id = $2
		RETURNING `+invitationColumns)
	if err != nil {
		return nil, invitationError("revoke invitation", err)
	}
	return inv, nil
}

// changePending locks a pending invitation, checks that the actor may give
// its role, and runs update (whose $1 and $2 are the tenant and the
// invitation) on it, recorded in the audit log as action. With a secret,
// the change is for a mail to the invitee carrying it, which the limits
// must allow and which is queued with the change.
func (s *InvitationService) changePending(ctx context.Context, tenantID, invitationID string, actor tenancy.Actor, secret, action, update string, args ...any) (*tenancy.Invitation, error) {
	mail := secret != ""
	notFound := tenancy.Errorf(tenancy.ENOTFOUND, "no pending invitation %s", tenancy.Quote(invitationID))
	if !tenancy.IsUUID(invitationID) {
		return nil, notFound
	}
	var inv *tenancy.Invitation
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		if err := holdTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		slug, err := liveTenantSlug(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if mail {
			if err := lockMails(ctx, tx, tenantID); err != nil {
				return err
			}
		}
		var role tenancy.Role
		var email string
		err = tx.QueryRow(ctx, `
			SELECT role, email FROM tenants.tenant_invitations
			WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
			FOR UPDATE`, tenantID, invitationID).Scan(&role, &email)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound
		} else if err != nil {
			return err
		}
		if err := tenancy.CheckMemberChange(actor, tenancy.MemberChange{Tenant: slug, To: role,
			Plan: tenancy.Plan{MaxUsers: tenancy.Unlimited}}); err != nil {
			if tenancy.ErrorCode(err) == tenancy.EFORBIDDEN {
				return tenancy.Errorf(tenancy.EFORBIDDEN, "only an owner can change an invitation to be an owner")
			}
			return err
		}
		if mail {
			if err := s.admitMail(ctx, tx, tenantID, email); err != nil {
				return err
			}
		}
		inv, err = scanInvitation(tx.QueryRow(ctx, update, append([]any{tenantID, invitationID}, args...)...))
		if err != nil {
			return err
		}
		if mail {
			if err := s.recordMail(ctx, tx, inv); err != nil {
				return err
			}
			if err := queueInvitation(ctx, tx, inv, secret); err != nil {
				return err
			}
		}
		summary := "role: " + string(inv.Role)
		if action == "invitation.resend" {
			summary += ", expires: " + inv.ExpiresAt.UTC().Format("2006-01-02 15:04")
		}
		return recordAudit(ctx, tx, tenantID, action, inv.Email, summary)
	})
	return inv, translate(err)
}

// Find returns the pending invitation with secret, for the page that
// accepts it.
func (s *InvitationService) Find(ctx context.Context, tenantID, secret string) (*tenancy.Invitation, error) {
	var inv *tenancy.Invitation
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var err error
		inv, err = findInvitation(ctx, tx, tenantID, secret, false)
		return err
	})
	if err != nil {
		return nil, invitationError("find invitation", err)
	}
	return inv, nil
}

// findInvitation reads the invitation with secret, with what the accept
// page shows, and refuses one that cannot be accepted. With lock, the
// invitation's row is locked until tx ends.
func findInvitation(ctx context.Context, tx pgx.Tx, tenantID, secret string, lock bool) (*tenancy.Invitation, error) {
	if secret == "" || !tenancy.IsUUID(tenantID) {
		return nil, errBadInvitation
	}
	forUpdate := ""
	if lock {
		forUpdate = "FOR UPDATE OF i"
	}
	var accepted, revoked *time.Time
	var inviterEmail, inviterName *string
	var hasPassword *bool
	var now time.Time
	var tenantName string
	inv, err := scanInvitation(tx.QueryRow(ctx, `
		SELECT `+invitationColumns+`, i.accepted_at, i.revoked_at, t.name, iu.email, iu.name,
		       CASE WHEN u.id IS NOT NULL THEN u.password_hash IS NOT NULL END,
		       now()
		FROM tenants.tenant_invitations i
		JOIN tenants.tenants t ON t.id = i.tenant_id
		LEFT JOIN auth.users iu ON iu.tenant_id = $1 AND iu.id = i.invited_by
		LEFT JOIN auth.users u ON u.tenant_id = $1 AND u.email_lower = i.email_lower
		WHERE i.tenant_id = $1 AND i.token_hash = $2 `+forUpdate, tenantID, tenancy.HashSecret(secret)),
		&accepted, &revoked, &tenantName, &inviterEmail, &inviterName, &hasPassword, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errBadInvitation
	} else if err != nil {
		return nil, err
	}
	switch {
	case accepted != nil:
		return nil, tenancy.FieldErrorf(tenancy.EINVALID, "token", "This invitation has already been accepted. Sign in instead.")
	case revoked != nil:
		return nil, tenancy.FieldErrorf(tenancy.EINVALID, "token", "This invitation was withdrawn. Ask for a new one if you still need access.")
	case inv.Expired(now):
		return nil, tenancy.FieldErrorf(tenancy.EINVALID, "token", "This invitation expired on %s. Ask for a new one.", inv.ExpiresAt.UTC().Format("2 January 2006"))
	}
	inv.TenantName = tenantName
	inv.InviterEmail, inv.InviterName = deref(inviterEmail), deref(inviterName)
	inv.NeedsPassword = hasPassword == nil || !*hasPassword
	return inv, nil
}

var errBadInvitation = tenancy.FieldErrorf(tenancy.EINVALID, "token", "This invitation link is not valid. Check that you opened the whole link, or ask for a new one.")

// Accept makes the invitee a member, creating the account if needed.
func (s *InvitationService) Accept(ctx context.Context, tenantID, secret, pw string) (*tenancy.Invitation, *tenancy.User, error) {
	// A password given is hashed before the transaction, which holds the
	// tenant's members lock: a hash takes a good part of a second and
	// waits its turn under load (see package password).
	var newHash any
	if pw != "" && tenancy.ValidatePassword(pw) == nil {
		h, err := password.Hash(ctx, pw)
		if err != nil {
			return nil, nil, fmt.Errorf("accept invitation: %w", err)
		}
		newHash = h
	}
	var inv *tenancy.Invitation
	var u *tenancy.User
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		// The same locks as MemberService's changes: two acceptances cannot
		// both take the plan's last free place, and none lands after a
		// delete.
		if err := lockMembers(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		if inv, err = findInvitation(ctx, tx, tenantID, secret, true); err != nil {
			return err
		}
		var hash any
		if inv.NeedsPassword {
			if err := tenancy.ValidatePassword(pw); err != nil {
				return err
			}
			hash = newHash
		}
		var slug string
		var plan tenancy.Plan
		var status tenancy.Status
		var members int
		if err := tx.QueryRow(ctx, `
			SELECT t.slug, t.status, p.name, p.max_users,
			       (SELECT count(*) FROM tenants.tenant_members m WHERE m.tenant_id = $1)
			FROM tenants.tenants t
			JOIN public.billing_plans p ON p.name = t.plan
			WHERE t.id = $1`, tenantID).Scan(&slug, &status, &plan.Name, &plan.MaxUsers, &members); err != nil {
			return err
		}
		if status == tenancy.StatusDeleted {
			return tenancy.Errorf(tenancy.ECONFLICT, "tenant %s is deleted", slug)
		}
		// The inviter's right to give the role was checked when inviting;
		// what remains is the room on the plan, now.
		if err := tenancy.CheckMemberChange(tenancy.PlatformActor(), tenancy.MemberChange{
			Tenant: slug, To: inv.Role, Members: members, Plan: plan}); err != nil {
			if tenancy.ErrorCode(err) == tenancy.EQUOTA {
				return tenancy.Errorf(tenancy.EQUOTA, "%s has no room for another member on its plan. Ask whoever invited you to make room, then try again.", inv.TenantName)
			}
			return err
		}

		u = &tenancy.User{TenantID: tenantID}
		var member bool
		err = tx.QueryRow(ctx, `
			SELECT u.id, u.email, u.name, u.created_at,
			       EXISTS (SELECT 1 FROM tenants.tenant_members m WHERE m.tenant_id = $1 AND m.user_id = u.id)
			FROM auth.users u WHERE u.tenant_id = $1 AND u.email_lower = lower($2)
			FOR UPDATE OF u`, tenantID, inv.Email).Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt, &member)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			u.Email, u.Name = inv.Email, inv.Name
			if err := tx.QueryRow(ctx, `
				INSERT INTO auth.users (tenant_id, email, name, password_hash) VALUES ($1, $2, $3, $4)
				RETURNING id, created_at`, tenantID, inv.Email, inv.Name, hash).Scan(&u.ID, &u.CreatedAt); err != nil {
				return err
			}
			// A new account: it chose its password here, so the welcome
			// comes alone.
			if err := queueWelcome(ctx, tx, tenantID, u, ""); err != nil {
				return err
			}
		case err != nil:
			return err
		case member:
			return tenancy.Errorf(tenancy.ECONFLICT, "%s is already a member of %s. Sign in instead.", u.Email, inv.TenantName)
		case hash != nil:
			if _, err := tx.Exec(ctx, `UPDATE auth.users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2`,
				tenantID, u.ID, hash); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, $3)`,
			tenantID, u.ID, inv.Role); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `
			UPDATE tenants.tenant_invitations SET accepted_at = now() WHERE tenant_id = $1 AND id = $2`,
			tenantID, inv.ID); err != nil {
			return err
		}
		return recordAudit(actingUser(ctx, u), tx, tenantID, "invitation.accept", u.Email, tenancy.Changed("role", "", string(inv.Role)))
	})
	if err != nil {
		return nil, nil, invitationError("accept invitation", translate(err))
	}
	if inv.Role == tenancy.RoleOwner {
		if err := (&MemberService{db: s.db}).syncOwner(ctx, tenantID); err != nil {
			return inv, u, fmt.Errorf("invitation accepted, but recording the tenant's owner failed: %w", err)
		}
	}
	return inv, u, nil
}

// invitationError wraps a failure; domain errors pass unwrapped, their
// message is for the person who caused them.
func invitationError(what string, err error) error {
	if tenancy.ErrorCode(err) != tenancy.EINTERNAL {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}
