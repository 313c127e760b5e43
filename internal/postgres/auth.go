package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/password"
	"github.com/nself/nself/internal/tenancy"
)

// AuthService implements tenancy.AuthService on the application role.
type AuthService struct {
	db *DB
}

var _ tenancy.AuthService = (*AuthService)(nil)

// NewAuthService returns an AuthService using db. It makes the dummy hash
// in the background, so the first sign-in does not wait for it.
func NewAuthService(db *DB) *AuthService {
	go dummyHash()
	return &AuthService{db: db}
}

// dummyHash is compared against when an account does not exist, so a
// failed sign-in takes as long whether or not the email is known. It is
// made on first use, not when the package loads: an argon2id hash takes
// 64 MiB and a quarter of a second, which every command of the CLI would
// otherwise pay.
var dummyHash = sync.OnceValue(func() string {
	secret, _ := tenancy.NewSecret()
	h, err := password.Hash(secret)
	if err != nil {
		panic(err)
	}
	return h
})

// lastSeenGranularity bounds how often a session's last-seen time is
// written: once a minute is precise enough for an idle timeout of hours.
const lastSeenGranularity = time.Minute

// SignIn checks credentials and opens a session.
func (s *AuthService) SignIn(ctx context.Context, tenantID, email, pw string, meta tenancy.SessionMeta) (string, *tenancy.Identity, error) {
	email, err := tenancy.NormalizeEmail(email)
	if err != nil || pw == "" {
		return "", nil, tenancy.ErrBadCredentials
	}
	var token string
	id := &tenancy.Identity{User: &tenancy.User{TenantID: tenantID}}
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var hash *string
		var role *string
		err := tx.QueryRow(ctx, `
			SELECT u.id, u.email, u.name, u.created_at, u.password_hash, m.role
			FROM auth.users u
			LEFT JOIN tenants.tenant_members m ON m.tenant_id = u.tenant_id AND m.user_id = u.id
			WHERE u.tenant_id = $1 AND u.email_lower = lower($2)`, tenantID, email).
			Scan(&id.User.ID, &id.User.Email, &id.User.Name, &id.User.CreatedAt, &hash, &role)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && hash == nil) {
			password.Check(pw, dummyHash())
			return tenancy.ErrBadCredentials
		} else if err != nil {
			return err
		}
		if ok, err := password.Check(pw, *hash); err != nil {
			return err
		} else if !ok {
			return tenancy.ErrBadCredentials
		}
		if role == nil {
			return tenancy.Errorf(tenancy.EFORBIDDEN, "Your account has no access to this workspace yet. Ask an owner or admin to add you.")
		}
		id.Role = tenancy.Role(*role)
		secret, tokenHash := tenancy.NewSecret()
		var ip any
		if meta.ClientIP != "" {
			ip = meta.ClientIP
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO auth.sessions (tenant_id, user_id, token_hash, user_agent, client_ip, expires_at)
			VALUES ($1, $2, $3, left($4, 300), $5::inet, now() + $6::interval)
			RETURNING id`, tenantID, id.User.ID, tokenHash, meta.UserAgent, ip, interval(tenancy.AbsoluteTimeout)).Scan(&id.SessionID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE auth.users SET last_sign_in_at = now() WHERE tenant_id = $1 AND id = $2`, tenantID, id.User.ID); err != nil {
			return err
		}
		if meta.ClientIP != "" {
			a := tenancy.AuditActorFrom(ctx)
			a.Addr = meta.ClientIP
			ctx = tenancy.WithAuditActor(ctx, a)
		}
		if err := recordAudit(actingUser(ctx, id.User), tx, tenantID, "user.sign_in", id.User.Email, "role: "+string(id.Role)); err != nil {
			return err
		}
		token = secret
		return nil
	})
	if err != nil {
		if tenancy.ErrorCode(err) != tenancy.EINTERNAL {
			return "", nil, err
		}
		return "", nil, fmt.Errorf("sign in: %w", err)
	}
	return token, id, nil
}

func interval(d time.Duration) string { return fmt.Sprintf("%d seconds", int(d.Seconds())) }

var errNoSession = tenancy.Errorf(tenancy.ENOTFOUND, "Your session has ended. Please sign in again.")

// Identify returns the identity behind a session token. It runs on every
// signed-in request, so the lookup is one round trip; only a session that
// has ended, or whose last-seen time is a minute old, is written to.
func (s *AuthService) Identify(ctx context.Context, tenantID, token string) (*tenancy.Identity, error) {
	if token == "" || !tenancy.IsUUID(tenantID) {
		return nil, errNoSession
	}
	id := &tenancy.Identity{User: &tenancy.User{TenantID: tenantID}}
	var lastSeen, expires, now time.Time
	var role *string
	found := false
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		found = true
		return rows.Scan(&id.SessionID, &lastSeen, &expires, &now, &id.User.ID, &id.User.Email, &id.User.Name, &id.User.CreatedAt, &role)
	}, `
		SELECT s.id, s.last_seen_at, s.expires_at, now(),
		       u.id, u.email, u.name, u.created_at, m.role
		FROM auth.sessions s
		JOIN auth.users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
		LEFT JOIN tenants.tenant_members m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id
		WHERE s.tenant_id = $1 AND s.token_hash = $2`, tenantID, tenancy.HashSecret(token))
	if err != nil {
		return nil, fmt.Errorf("identify: %w", err)
	}
	if !found {
		return nil, errNoSession
	}
	if !now.Before(expires) || now.Sub(lastSeen) > tenancy.IdleTimeout || role == nil {
		err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `DELETE FROM auth.sessions WHERE tenant_id = $1 AND id = $2`, tenantID, id.SessionID)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("end session: %w", err)
		}
		return nil, errNoSession
	}
	id.Role = tenancy.Role(*role)
	if now.Sub(lastSeen) > lastSeenGranularity {
		err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE auth.sessions SET last_seen_at = now() WHERE tenant_id = $1 AND id = $2`, tenantID, id.SessionID)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
	}
	return id, nil
}

// SignOut ends the session with that token.
func (s *AuthService) SignOut(ctx context.Context, tenantID, token string) error {
	if token == "" || !tenancy.IsUUID(tenantID) {
		return nil
	}
	return inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		u := &tenancy.User{}
		err := tx.QueryRow(ctx, `
			DELETE FROM auth.sessions s USING auth.users u
			WHERE s.tenant_id = $1 AND s.token_hash = $2 AND u.tenant_id = s.tenant_id AND u.id = s.user_id
			RETURNING u.id, u.email`, tenantID, tenancy.HashSecret(token)).Scan(&u.ID, &u.Email)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		return recordAudit(actingUser(ctx, u), tx, tenantID, "user.sign_out", u.Email, "")
	})
}

// RequestPasswordReset issues a reset token for the account with email.
func (s *AuthService) RequestPasswordReset(ctx context.Context, tenantID, email string) (*tenancy.User, string, error) {
	email, err := tenancy.NormalizeEmail(email)
	if err != nil {
		return nil, "", err
	}
	var u *tenancy.User
	var token string
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		found := &tenancy.User{TenantID: tenantID}
		err := tx.QueryRow(ctx, `
			SELECT id, email, name, created_at FROM auth.users
			WHERE tenant_id = $1 AND email_lower = lower($2)`, tenantID, email).
			Scan(&found.ID, &found.Email, &found.Name, &found.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		u = found
		if token, err = issuePasswordToken(ctx, tx, tenantID, u.ID, "reset", tenancy.ResetTokenTTL); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "user.password_reset_request", u.Email, "reset link issued")
	})
	if err != nil {
		return nil, "", fmt.Errorf("request password reset: %w", err)
	}
	return u, token, nil
}

var errBadToken = tenancy.FieldErrorf(tenancy.EINVALID, "token", "This link is invalid, already used or expired. Ask for a new one.")

// ResetPassword sets a new password with a one-time token.
func (s *AuthService) ResetPassword(ctx context.Context, tenantID, token, pw string) (*tenancy.User, error) {
	if err := tenancy.ValidatePassword(pw); err != nil {
		return nil, err
	}
	if token == "" || !tenancy.IsUUID(tenantID) {
		return nil, errBadToken
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return nil, err
	}
	u := &tenancy.User{TenantID: tenantID}
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		// Used up in the same statement that finds it: two requests with one
		// token cannot both succeed.
		err := tx.QueryRow(ctx, `
			UPDATE auth.password_tokens SET used_at = now()
			WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > now()
			RETURNING user_id`, tenantID, tenancy.HashSecret(token)).Scan(&u.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadToken
		} else if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
			UPDATE auth.users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2
			RETURNING email, name, created_at`, tenantID, u.ID, hash).Scan(&u.Email, &u.Name, &u.CreatedAt); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM auth.sessions WHERE tenant_id = $1 AND user_id = $2`, tenantID, u.ID)
		if err != nil {
			return err
		}
		return recordAudit(actingUser(ctx, u), tx, tenantID, "user.password_reset", u.Email,
			fmt.Sprintf("password changed, %d session(s) ended", tag.RowsAffected()))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
