package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
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
	h, err := password.Hash(context.Background(), secret)
	if err != nil {
		panic(err)
	}
	return h
})

// lastSeenGranularity bounds how often a session's last-seen time (and a
// key's last use) is written: every few minutes is precise enough for an
// idle timeout of hours and for the sessions page, and spares a write per
// request.
const lastSeenGranularity = 3 * time.Minute

// SignIn checks credentials and opens a session. The password is checked
// between two database calls, never inside a transaction: an argon2id check
// takes 64 MiB and a good part of a second, and waits its turn under load,
// which must not hold a pooled connection.
func (s *AuthService) SignIn(ctx context.Context, tenantID, email, pw string, meta tenancy.SessionMeta) (string, *tenancy.Identity, error) {
	email, err := tenancy.NormalizeEmail(email)
	if err != nil || pw == "" || !tenancy.IsUUID(tenantID) {
		return "", nil, tenancy.ErrBadCredentials
	}
	var userID, hash *string
	err = readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		return rows.Scan(&userID, &hash)
	}, `SELECT id, password_hash FROM auth.users WHERE tenant_id = $1 AND email_lower = lower($2)`, tenantID, email)
	if err != nil {
		return "", nil, fmt.Errorf("sign in: %w", err)
	}
	if userID == nil || hash == nil {
		if _, err := password.Check(ctx, pw, dummyHash()); err != nil {
			return "", nil, fmt.Errorf("sign in: %w", err)
		}
		return "", nil, tenancy.ErrBadCredentials
	}
	if ok, err := password.Check(ctx, pw, *hash); err != nil {
		return "", nil, fmt.Errorf("sign in: %w", err)
	} else if !ok {
		return "", nil, tenancy.ErrBadCredentials
	}

	var token string
	id := &tenancy.Identity{User: &tenancy.User{TenantID: tenantID, ID: *userID}}
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		// The account's row is locked first, so parallel sign-ins of one
		// account queue here. The session insert below takes a key-share
		// lock on the same row (its foreign key); had it come first, two
		// sign-ins holding that lock would each wait to update the row for
		// the other: a deadlock. The hash must still be the one checked: a
		// password reset in between wins.
		var role string
		err := tx.QueryRow(ctx, `
			UPDATE auth.users u SET last_sign_in_at = now()
			WHERE u.tenant_id = $1 AND u.id = $2 AND u.password_hash = $3
			RETURNING u.email, u.name, u.created_at`,
			tenantID, id.User.ID, *hash).Scan(&id.User.Email, &id.User.Name, &id.User.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenancy.ErrBadCredentials
		} else if err != nil {
			return err
		}
		// A statement of its own: a distributed PostgreSQL takes no
		// subquery in RETURNING.
		err = tx.QueryRow(ctx, `SELECT m.role FROM tenants.tenant_members m WHERE m.tenant_id = $1 AND m.user_id = $2`,
			tenantID, id.User.ID).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenancy.Errorf(tenancy.EFORBIDDEN, "Your account has no access to this workspace. Ask an owner or admin to add you.")
		} else if err != nil {
			return err
		}
		id.Role = tenancy.Role(role)
		secret, err := openSession(ctx, tx, tenantID, id, meta)
		if err != nil {
			return err
		}
		summary := "role: " + string(id.Role)
		if id.SecondFactor != "" {
			summary += ", password checked, second factor to come (" + id.SecondFactor + ")"
		}
		if meta.ClientIP != "" {
			a := tenancy.AuditActorFrom(ctx)
			a.Addr = meta.ClientIP
			ctx = tenancy.WithAuditActor(ctx, a)
		}
		if err := recordAudit(actingUser(ctx, id.User), tx, tenantID, "user.sign_in", id.User.Email, summary); err != nil {
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

// openSession starts a session of id, whose role is known, and returns its
// token. A second factor the tenant asks of the person (they set one up,
// or they are an owner or admin under the owners' rule) makes a session
// that grants nothing else yet and lasts only as long as the wait for it:
// a password, or a tenant's identity provider, stands for the first factor
// alone.
func openSession(ctx context.Context, tx pgx.Tx, tenantID string, id *tenancy.Identity, meta tenancy.SessionMeta) (string, error) {
	var enrolled, required bool
	if err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM auth.user_totp t WHERE t.tenant_id = $1 AND t.user_id = $2 AND t.confirmed_at IS NOT NULL),
		       coalesce((SELECT p.required_for_admins FROM tenants.tenant_mfa_policy p WHERE p.tenant_id = $1), false)`,
		tenantID, id.User.ID).Scan(&enrolled, &required); err != nil {
		return "", err
	}
	id.SecondFactor = tenancy.SecondFactorStep(enrolled, required, id.Role)
	lifetime := tenancy.AbsoluteTimeout
	if id.SecondFactor != "" {
		lifetime = tenancy.PendingSignInTTL
	}
	secret, tokenHash := tenancy.NewSecret()
	var ip any
	if meta.ClientIP != "" {
		ip = meta.ClientIP
	}
	err := tx.QueryRow(ctx, `
		INSERT INTO auth.sessions (tenant_id, user_id, token_hash, user_agent, client_ip, expires_at, second_factor)
		VALUES ($1, $2, $3, left($4, 300), $5::inet, now() + $6::interval, nullif($7, ''))
		RETURNING id`, tenantID, id.User.ID, tokenHash, meta.UserAgent, ip, interval(lifetime), id.SecondFactor).Scan(&id.SessionID)
	return secret, err
}

func interval(d time.Duration) string { return fmt.Sprintf("%d seconds", int(d.Seconds())) }

var errNoSession = tenancy.Errorf(tenancy.ENOTFOUND, "Your session has ended. Please sign in again.")

// Identify returns the identity behind a session token. It runs on every
// signed-in request, so the lookup is one round trip; only a session that
// has ended, or whose last-seen time is a minute old, is written to.
func (s *AuthService) Identify(ctx context.Context, tenantID, token string) (*tenancy.Identity, error) {
	id, _, err := s.identify(ctx, tenantID, token)
	return id, err
}

// identify is Identify, also returning when the session ends at the
// latest, for the CredentialCache.
func (s *AuthService) identify(ctx context.Context, tenantID, token string) (*tenancy.Identity, time.Time, error) {
	if token == "" || !tenancy.IsUUID(tenantID) {
		return nil, time.Time{}, errNoSession
	}
	id := &tenancy.Identity{User: &tenancy.User{TenantID: tenantID}}
	var lastSeen, expires, now time.Time
	var role, secondFactor *string
	found := false
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		found = true
		return rows.Scan(&id.SessionID, &lastSeen, &expires, &now, &id.User.ID, &id.User.Email, &id.User.Name, &id.User.CreatedAt, &role, &secondFactor)
	}, `
		SELECT s.id, s.last_seen_at, s.expires_at, now(),
		       u.id, u.email, u.name, u.created_at, m.role, s.second_factor
		FROM auth.sessions s
		JOIN auth.users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
		LEFT JOIN tenants.tenant_members m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id
		WHERE s.tenant_id = $1 AND s.token_hash = $2`, tenantID, tenancy.HashSecret(token))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("identify: %w", err)
	}
	if !found {
		return nil, time.Time{}, errNoSession
	}
	if !now.Before(expires) || now.Sub(lastSeen) > tenancy.IdleTimeout || role == nil {
		err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM auth.sessions WHERE tenant_id = $1 AND id = $2`, tenantID, id.SessionID)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			return announceCredentials(ctx, tx, "session", tenantID, id.SessionID)
		})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("end session: %w", err)
		}
		return nil, time.Time{}, errNoSession
	}
	id.Role = tenancy.Role(*role)
	if secondFactor != nil {
		id.SecondFactor = *secondFactor
	}
	if now.Sub(lastSeen) > lastSeenGranularity {
		err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE auth.sessions SET last_seen_at = now() WHERE tenant_id = $1 AND id = $2`, tenantID, id.SessionID)
			return err
		})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("touch session: %w", err)
		}
	}
	// On this process's clock, whatever the database's says.
	return id, time.Now().Add(expires.Sub(now)), nil
}

// SignOut ends the session with that token.
func (s *AuthService) SignOut(ctx context.Context, tenantID, token string) error {
	if token == "" || !tenancy.IsUUID(tenantID) {
		return nil
	}
	return inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		u := &tenancy.User{}
		var sessionID string
		err := tx.QueryRow(ctx, `
			DELETE FROM auth.sessions s USING auth.users u
			WHERE s.tenant_id = $1 AND s.token_hash = $2 AND u.tenant_id = s.tenant_id AND u.id = s.user_id
			RETURNING s.id, u.id, u.email`, tenantID, tenancy.HashSecret(token)).Scan(&sessionID, &u.ID, &u.Email)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		if err := announceCredentials(ctx, tx, "session", tenantID, sessionID); err != nil {
			return err
		}
		return recordAudit(actingUser(ctx, u), tx, tenantID, "user.sign_out", u.Email, "")
	})
}

// RequestPasswordReset issues a reset token for the account with email,
// voids every link the account had before, and queues the mail carrying
// the link, in one statement: the token and its mail commit together. An
// unknown email, and an account that already had
// tenancy.MaxResetLinksPerHour links in the last hour, get no token, no
// mail and no error. Both outcomes do the same database work as issuing
// one (that one statement and an audit entry, in one transaction, and the
// mail waits for the sender either way), so the time taken does not tell
// which accounts exist.
func (s *AuthService) RequestPasswordReset(ctx context.Context, tenantID, email string) (*tenancy.User, string, error) {
	email, err := tenancy.NormalizeEmail(email)
	if err != nil {
		return nil, "", err
	}
	var u *tenancy.User
	var token string
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		// The same round trips either way, so the time taken does not tell
		// which accounts exist: one read (the account, locked first, as
		// ResetPassword locks it, so a link issued and a link used at once
		// are ordered), then one pipelined batch of four statements, which
		// void the earlier links, store the new one, queue its mail and wake
		// the senders, or change nothing. Each names tenant_id = $1, so a distributed
		// PostgreSQL routes it to the tenant's shard, and the inserts are
		// VALUES (Citus runs INSERT … SELECT as a COPY, which row-level
		// security refuses).
		secret, tokenHash := tenancy.NewSecret()
		found := &tenancy.User{TenantID: tenantID}
		var recent int
		err := tx.QueryRow(ctx, `
			SELECT u.id, u.email, u.name, u.created_at,
			       (SELECT count(*) FROM auth.password_tokens t
			        WHERE t.tenant_id = $1 AND t.user_id = u.id AND t.purpose = 'reset'
			          AND t.created_at > now() - interval '1 hour')
			FROM auth.users u
			WHERE u.tenant_id = $1 AND u.email_lower = lower($2)
			FOR NO KEY UPDATE OF u`, tenantID, email).Scan(&found.ID, &found.Email, &found.Name, &found.CreatedAt, &recent)
		missing := errors.Is(err, pgx.ErrNoRows)
		if err != nil && !missing {
			return err
		}
		issued := !missing && recent < tenancy.MaxResetLinksPerHour
		b := &pgx.Batch{}
		if issued {
			name := found.Name
			if name == "" {
				name = found.Email
			}
			b.Queue(`
				UPDATE auth.password_tokens SET used_at = now()
				WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL`, tenantID, found.ID)
			b.Queue(`
				INSERT INTO auth.password_tokens (tenant_id, user_id, token_hash, purpose, expires_at)
				VALUES ($1, $2, $3, 'reset', now() + $4::interval)`,
				tenantID, found.ID, tokenHash, interval(tenancy.ResetTokenTTL))
			b.Queue(`
				INSERT INTO tenants.tenant_mail_outbox (tenant_id, template, recipient, vars, link)
				VALUES ($1, 'password_reset', $2, $3, $4)`,
				tenantID, found.Email, map[string]string{"USER_NAME": name, "USER_EMAIL": found.Email}, resetPath(secret))
			b.Queue(`SELECT pg_notify($1, '')`, MailChannel)
		} else {
			b.Queue(`
				UPDATE auth.password_tokens SET used_at = now()
				WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL`, tenantID, uuid.Nil)
			b.Queue(`UPDATE auth.password_tokens SET used_at = used_at WHERE tenant_id = $1 AND id = $2`, tenantID, uuid.Nil)
			b.Queue(`UPDATE tenants.tenant_mail_outbox SET link = link WHERE tenant_id = $1 AND id = $2`, tenantID, uuid.Nil)
			// No notice: it would wake every sender for nothing.
			b.Queue(`SELECT $1::text`, MailChannel)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if missing {
			err = pgx.ErrNoRows
		}
		summary := "reset link issued, earlier links void"
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			summary = "no account with this email: no link sent"
		case err != nil:
			return err
		case !issued:
			summary = fmt.Sprintf("no link sent: %d links in the last hour already", recent)
		default:
			u, token = found, secret
		}
		return recordAudit(ctx, tx, tenantID, "user.password_reset_request", email, summary)
	})
	if err != nil {
		return nil, "", fmt.Errorf("request password reset: %w", err)
	}
	return u, token, nil
}

var errBadToken = tenancy.FieldErrorf(tenancy.EINVALID, "token", "This link is invalid, already used or expired. Ask for a new one.")

// ResetPassword sets a new password with a one-time token and voids every
// other link of the account. The password is hashed before the transaction
// begins.
func (s *AuthService) ResetPassword(ctx context.Context, tenantID, token, pw string) (*tenancy.User, error) {
	if err := tenancy.ValidatePassword(pw); err != nil {
		return nil, err
	}
	if token == "" || !tenancy.IsUUID(tenantID) {
		return nil, errBadToken
	}
	hash, err := password.Hash(ctx, pw)
	if err != nil {
		return nil, fmt.Errorf("reset password: %w", err)
	}
	u := &tenancy.User{TenantID: tenantID}
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		// The account's row is locked before its tokens, as
		// RequestPasswordReset does: two links of one account used at once
		// then take turns, and the second finds itself void instead of
		// deadlocking with the first.
		err := tx.QueryRow(ctx, `
			SELECT u.id FROM auth.users u
			WHERE u.tenant_id = $1 AND u.id = (
				SELECT user_id FROM auth.password_tokens
				WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > now())
			FOR NO KEY UPDATE`, tenantID, tenancy.HashSecret(token)).Scan(&u.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadToken
		} else if err != nil {
			return err
		}
		// Used up in the statement that checks it again under the lock:
		// two requests with one token cannot both succeed, and every other
		// link of the account is void from now on.
		var used int
		if err := tx.QueryRow(ctx, `
			WITH mine AS (
				SELECT id FROM auth.password_tokens
				WHERE tenant_id = $1 AND user_id = $2 AND token_hash = $3 AND used_at IS NULL AND expires_at > now()
			), spent AS (
				UPDATE auth.password_tokens t SET used_at = now()
				WHERE t.tenant_id = $1 AND t.user_id = $2 AND t.used_at IS NULL AND EXISTS (SELECT 1 FROM mine)
				RETURNING t.id
			)
			SELECT count(*) FROM spent JOIN mine USING (id)`, tenantID, u.ID, tenancy.HashSecret(token)).Scan(&used); err != nil {
			return err
		}
		if used != 1 {
			return errBadToken
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
		if err := announceCredentials(ctx, tx, "user", tenantID, u.ID); err != nil {
			return err
		}
		return recordAudit(actingUser(ctx, u), tx, tenantID, "user.password_reset", u.Email,
			fmt.Sprintf("password changed, every other link void, %d session(s) ended", tag.RowsAffected()))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
