package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/password"
	"github.com/nself/nself/internal/tenancy"
)

// AdminService implements tenancy.AdminService. Platform administrators
// are the platform's own accounts, so this is the platform path (the owner
// role); the application role has no access to their tables.
type AdminService struct {
	db *DB
}

var _ tenancy.AdminService = (*AdminService)(nil)

// NewAdminService returns an AdminService using db.
func NewAdminService(db *DB) *AdminService { return &AdminService{db: db} }

// CreateAdmin creates a platform administrator.
func (s *AdminService) CreateAdmin(ctx context.Context, email, name, pw string) (*tenancy.Admin, error) {
	email, err := tenancy.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if name != "" {
		if err := tenancy.ValidateName("name", name); err != nil {
			return nil, err
		}
	}
	if err := tenancy.ValidatePassword(pw); err != nil {
		return nil, err
	}
	hash, err := password.Hash(ctx, pw)
	if err != nil {
		return nil, fmt.Errorf("create admin: %w", err)
	}
	a := &tenancy.Admin{Email: email, Name: name}
	err = inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
			INSERT INTO platform.admins (email, name, password_hash) VALUES ($1, $2, $3)
			RETURNING id, created_at`, email, name, hash).Scan(&a.ID, &a.CreatedAt); err != nil {
			return err
		}
		return recordAudit(ctx, tx, "", "admin.create", email, "administrator "+a.ID)
	})
	if err != nil {
		if tenancy.ErrorCode(translate(err)) == tenancy.ECONFLICT {
			return nil, tenancy.FieldErrorf(tenancy.ECONFLICT, "email", "an administrator with email %s already exists", tenancy.Quote(email))
		}
		return nil, fmt.Errorf("create admin: %w", err)
	}
	return a, nil
}

// AdminSignIn checks an administrator's credentials and opens a session.
func (s *AdminService) AdminSignIn(ctx context.Context, email, pw string) (string, *tenancy.Admin, error) {
	email, err := tenancy.NormalizeEmail(email)
	if err != nil || pw == "" {
		return "", nil, tenancy.ErrBadCredentials
	}
	a := &tenancy.Admin{}
	var hash string
	err = s.db.Admin.QueryRow(ctx, `
		SELECT id, email, name, created_at, password_hash FROM platform.admins
		WHERE lower(email) = lower($1)`, email).Scan(&a.ID, &a.Email, &a.Name, &a.CreatedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := password.Check(ctx, pw, dummyHash()); err != nil {
			return "", nil, fmt.Errorf("admin sign in: %w", err)
		}
		return "", nil, tenancy.ErrBadCredentials
	} else if err != nil {
		return "", nil, fmt.Errorf("admin sign in: %w", err)
	}
	if ok, err := password.Check(ctx, pw, hash); err != nil {
		return "", nil, fmt.Errorf("admin sign in: %w", err)
	} else if !ok {
		return "", nil, tenancy.ErrBadCredentials
	}
	secret, tokenHash := tenancy.NewSecret()
	err = inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		// The administrator's row first: concurrent sign-ins of one
		// administrator then queue on it before either writes a session.
		// The other way round, on Citus (where both are reference tables,
		// written on every node), the session's foreign-key check and the
		// update took their locks node by node and could deadlock.
		if _, err := tx.Exec(ctx, `UPDATE platform.admins SET last_sign_in_at = now() WHERE id = $1`, a.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO platform.admin_sessions (admin_id, token_hash, expires_at)
			VALUES ($1, $2, now() + $3::interval)`, a.ID, tokenHash, interval(tenancy.AbsoluteTimeout)); err != nil {
			return err
		}
		return recordAudit(actingAdmin(ctx, a), tx, "", "admin.sign_in", a.Email, "")
	})
	if err != nil {
		return "", nil, fmt.Errorf("admin sign in: %w", err)
	}
	return secret, a, nil
}

// IdentifyAdmin returns the administrator behind a session token.
func (s *AdminService) IdentifyAdmin(ctx context.Context, token string) (*tenancy.Admin, error) {
	if token == "" {
		return nil, errNoSession
	}
	a := &tenancy.Admin{}
	var sessionID string
	var stale bool
	err := s.db.Admin.QueryRow(ctx, `
		SELECT s.id, s.last_seen_at < now() - $2::interval, a.id, a.email, a.name, a.created_at
		FROM platform.admin_sessions s JOIN platform.admins a ON a.id = s.admin_id
		WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - $3::interval`,
		tenancy.HashSecret(token), interval(lastSeenGranularity), interval(tenancy.IdleTimeout)).
		Scan(&sessionID, &stale, &a.ID, &a.Email, &a.Name, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoSession
	} else if err != nil {
		return nil, fmt.Errorf("identify admin: %w", err)
	}
	if stale {
		if _, err := s.db.Admin.Exec(ctx, `UPDATE platform.admin_sessions SET last_seen_at = now() WHERE id = $1`, sessionID); err != nil {
			return nil, fmt.Errorf("identify admin: %w", err)
		}
	}
	return a, nil
}

// AdminSignOut ends an administrator's session.
func (s *AdminService) AdminSignOut(ctx context.Context, token string) error {
	return inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		a := &tenancy.Admin{}
		err := tx.QueryRow(ctx, `
			DELETE FROM platform.admin_sessions s USING platform.admins a
			WHERE s.token_hash = $1 AND a.id = s.admin_id
			RETURNING a.id, a.email`, tenancy.HashSecret(token)).Scan(&a.ID, &a.Email)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		return recordAudit(actingAdmin(ctx, a), tx, "", "admin.sign_out", a.Email, "")
	})
}

// actingAdmin returns ctx with the administrator as its actor, keeping the
// client address: signing in is how the request's actor becomes known.
func actingAdmin(ctx context.Context, a *tenancy.Admin) context.Context {
	return tenancy.WithAuditActor(ctx, tenancy.AdminActor(a, tenancy.AuditActorFrom(ctx).Addr))
}
