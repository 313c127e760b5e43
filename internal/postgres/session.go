package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/password"
	"github.com/nself/nself/internal/tenancy"
)

// SessionService implements tenancy.SessionService on the application
// role. It announces every session it ends (announceCredentials), so every
// server process's credential cache drops them; the cached variant
// (Cached) also drops them here at once.
type SessionService struct {
	db *DB
	// forget, when set, drops ended sessions from this process's cache.
	forget func(sessionIDs []string)
}

var _ tenancy.SessionService = (*SessionService)(nil)

// NewSessionService returns a SessionService using db.
func NewSessionService(db *DB) *SessionService { return &SessionService{db: db} }

// Cached returns the service dropping the sessions it ends from c at once.
func (s *SessionService) Cached(c *CredentialCache) *SessionService {
	return &SessionService{db: s.db, forget: func(ids []string) {
		for _, id := range ids {
			c.forgetSession(id)
		}
	}}
}

func (s *SessionService) dropped(ids []string) {
	if s.forget != nil {
		s.forget(ids)
	}
}

// ListSessions lists the person's live, complete sessions.
func (s *SessionService) ListSessions(ctx context.Context, tenantID string, id *tenancy.Identity) ([]tenancy.SessionInfo, error) {
	var out []tenancy.SessionInfo
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			var si tenancy.SessionInfo
			if err := rows.Scan(&si.ID, &si.UserAgent, &si.ClientIP, &si.CreatedAt, &si.LastSeen); err != nil {
				return err
			}
			si.Current = si.ID == id.SessionID
			out = append(out, si)
		}
		return rows.Err()
	}, `
		SELECT id, user_agent, coalesce(host(client_ip), ''), created_at, last_seen_at FROM auth.sessions
		WHERE tenant_id = $1 AND user_id = $2 AND second_factor IS NULL
		  AND expires_at > now() AND last_seen_at > now() - $3::interval
		ORDER BY id = $4 DESC, last_seen_at DESC, created_at DESC`,
		tenantID, id.User.ID, interval(tenancy.IdleTimeout), id.SessionID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

var errNoSuchSession = tenancy.Errorf(tenancy.ENOTFOUND, "That session has ended already.")

// EndSession ends one of the person's own sessions.
func (s *SessionService) EndSession(ctx context.Context, tenantID string, id *tenancy.Identity, sessionID string) error {
	if !tenancy.IsUUID(sessionID) {
		return errNoSuchSession
	}
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var agent, addr string
		err := tx.QueryRow(ctx, `
			DELETE FROM auth.sessions WHERE tenant_id = $1 AND user_id = $2 AND id = $3
			RETURNING user_agent, coalesce(host(client_ip), '')`, tenantID, id.User.ID, sessionID).Scan(&agent, &addr)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoSuchSession
		} else if err != nil {
			return err
		}
		if err := announceCredentials(ctx, tx, "session", tenantID, sessionID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "session.end", id.User.Email, fmt.Sprintf("session signed in from %s ended", orUnknown(addr)))
	})
	if err != nil {
		return err
	}
	s.dropped([]string{sessionID})
	return nil
}

// EndOtherSessions ends every session of the person but the current one.
func (s *SessionService) EndOtherSessions(ctx context.Context, tenantID string, id *tenancy.Identity) (int, error) {
	var ended []string
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var err error
		if ended, err = endSessions(ctx, tx, tenantID, id.User.ID, id.SessionID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "session.end_others", id.User.Email, fmt.Sprintf("%d other session(s) ended", len(ended)))
	})
	if err != nil {
		return 0, fmt.Errorf("end other sessions: %w", err)
	}
	s.dropped(ended)
	return len(ended), nil
}

// EndMemberSessions ends every session of a member of at most the
// actor's role.
func (s *SessionService) EndMemberSessions(ctx context.Context, tenantID string, id *tenancy.Identity, userID string) (int, error) {
	if !tenancy.IsUUID(userID) {
		return 0, tenancy.Errorf(tenancy.ENOTFOUND, "no such member")
	}
	var ended []string
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var role, email string
		err := tx.QueryRow(ctx, `
			SELECT m.role, u.email FROM tenants.tenant_members m
			JOIN auth.users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
			WHERE m.tenant_id = $1 AND m.user_id = $2`, tenantID, userID).Scan(&role, &email)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenancy.Errorf(tenancy.ENOTFOUND, "no such member")
		} else if err != nil {
			return err
		}
		if !tenancy.CanEndSessionsOf(id.Role, tenancy.Role(role)) {
			return tenancy.Errorf(tenancy.EFORBIDDEN, "You may not end the sessions of %s: they hold a higher role (%s) than yours.", email, role)
		}
		keep := ""
		if userID == id.User.ID {
			keep = id.SessionID
		}
		if ended, err = endSessions(ctx, tx, tenantID, userID, keep); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "session.end_member", email, fmt.Sprintf("%d session(s) ended", len(ended)))
	})
	if err != nil {
		return 0, err
	}
	s.dropped(ended)
	return len(ended), nil
}

var errWrongPassword = tenancy.FieldErrorf(tenancy.EINVALID, "current", "That is not your current password.")

// ChangePassword sets a new password, after checking the current one, and
// ends every other session of the person. The passwords are checked and
// hashed outside the transaction, as SignIn does.
func (s *SessionService) ChangePassword(ctx context.Context, tenantID string, id *tenancy.Identity, current, next string) (int, error) {
	if current == "" {
		return 0, errWrongPassword
	}
	if err := tenancy.ValidatePassword(next); err != nil {
		return 0, err
	}
	var hash *string
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		return rows.Scan(&hash)
	}, `SELECT password_hash FROM auth.users WHERE tenant_id = $1 AND id = $2`, tenantID, id.User.ID)
	if err != nil {
		return 0, fmt.Errorf("change password: %w", err)
	}
	if hash == nil {
		return 0, errWrongPassword
	}
	if ok, err := password.Check(ctx, current, *hash); err != nil {
		return 0, fmt.Errorf("change password: %w", err)
	} else if !ok {
		return 0, errWrongPassword
	}
	newHash, err := password.Hash(ctx, next)
	if err != nil {
		return 0, fmt.Errorf("change password: %w", err)
	}
	var ended []string
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		// Only if the password is still the one checked: a reset in
		// between wins.
		tag, err := tx.Exec(ctx, `UPDATE auth.users SET password_hash = $4 WHERE tenant_id = $1 AND id = $2 AND password_hash = $3`,
			tenantID, id.User.ID, *hash, newHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errWrongPassword
		}
		if ended, err = endSessions(ctx, tx, tenantID, id.User.ID, id.SessionID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "user.password_change", id.User.Email, fmt.Sprintf("password changed, %d other session(s) ended", len(ended)))
	})
	if err != nil {
		return 0, err
	}
	s.dropped(ended)
	return len(ended), nil
}

// EndSessionsForRequiredSSO ends the sessions of everyone in the tenant but
// its owners: once single sign-on is required, only owners may still sign
// in with a password, and everyone else signs in again through the
// provider. It records an audit entry and returns how many sessions ended.
func (s *SessionService) EndSessionsForRequiredSSO(ctx context.Context, tenantID string) (int, error) {
	var n int64
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var err error
		if n, err = EndNonOwnerSessions(ctx, tx, tenantID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "session.end_all", "everyone but owners", fmt.Sprintf("single sign-on required: %d session(s) ended", n))
	})
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	return int(n), nil
}

// EndNonOwnerSessions ends, in tx (already in the tenant), every session
// of a person who is not an owner of the tenant, for a change made in the
// same transaction (single sign-on becoming required). Every process
// drops them when tx commits.
func EndNonOwnerSessions(ctx context.Context, tx pgx.Tx, tenantID string) (int64, error) {
	rows, err := tx.Query(ctx, `
		DELETE FROM auth.sessions s WHERE s.tenant_id = $1 AND NOT EXISTS (
			SELECT 1 FROM tenants.tenant_members m
			WHERE m.tenant_id = s.tenant_id AND m.user_id = s.user_id AND m.role = 'owner')
		RETURNING s.id`, tenantID)
	if err != nil {
		return 0, err
	}
	ended, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	return int64(len(ended)), announceCredentials(ctx, tx, "session", tenantID, ended...)
}

// endSessions ends the user's sessions but keep's, returning their ids.
func endSessions(ctx context.Context, tx pgx.Tx, tenantID, userID, keep string) ([]string, error) {
	var keepArg any
	if keep != "" {
		keepArg = keep
	}
	rows, err := tx.Query(ctx, `
		DELETE FROM auth.sessions WHERE tenant_id = $1 AND user_id = $2 AND ($3::uuid IS NULL OR id <> $3::uuid)
		RETURNING id`, tenantID, userID, keepArg)
	if err != nil {
		return nil, err
	}
	ended, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	return ended, announceCredentials(ctx, tx, "session", tenantID, ended...)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown address"
	}
	return s
}
