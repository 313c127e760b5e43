package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/password"
	"github.com/nself/nself/internal/tenancy"
)

// UserService implements tenancy.UserService on the application role, in
// the tenant's context.
type UserService struct {
	db *DB
}

var _ tenancy.UserService = (*UserService)(nil)

// NewUserService returns a UserService using db.
func NewUserService(db *DB) *UserService { return &UserService{db: db} }

// CreateUser creates an account in the tenant, and queues its welcome
// mail (and, without a password, the mail with the link that sets one) in
// the same transaction.
func (s *UserService) CreateUser(ctx context.Context, tenantID string, in tenancy.NewUser) (*tenancy.User, string, error) {
	email, err := tenancy.NormalizeEmail(in.Email)
	if err != nil {
		return nil, "", err
	}
	if in.Name != "" {
		if err := tenancy.ValidateName("name", in.Name); err != nil {
			return nil, "", err
		}
	}
	var hash any
	if in.Password != "" {
		if err := tenancy.ValidatePassword(in.Password); err != nil {
			return nil, "", err
		}
		if hash, err = password.Hash(ctx, in.Password); err != nil {
			return nil, "", fmt.Errorf("create user: %w", err)
		}
	}
	u := &tenancy.User{TenantID: tenantID, Email: email, Name: in.Name}
	var token string
	err = changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
			INSERT INTO auth.users (tenant_id, email, name, password_hash)
			VALUES ($1, $2, $3, $4)
			RETURNING id, created_at`, tenantID, email, in.Name, hash).Scan(&u.ID, &u.CreatedAt); err != nil {
			return err
		}
		summary := "password set"
		if hash == nil {
			var err error
			if token, err = issuePasswordToken(ctx, tx, tenantID, u.ID, "set", tenancy.SetPasswordTokenTTL); err != nil {
				return err
			}
			summary = "password link issued"
		}
		if in.Name != "" {
			summary = "name: " + in.Name + ", " + summary
		}
		if !in.Unmailed {
			if err := queueWelcome(ctx, tx, tenantID, u, token); err != nil {
				return err
			}
		}
		return recordAudit(ctx, tx, tenantID, "user.create", email, summary)
	})
	if err != nil {
		if duplicate(err, "users_tenant_email") {
			return nil, "", tenancy.FieldErrorf(tenancy.ECONFLICT, "email", "a user with email %s already exists in this tenant", tenancy.Quote(email))
		}
		return nil, "", fmt.Errorf("create user: %w", translate(err))
	}
	return u, token, nil
}

// requireLiveTenant refuses changes to a tenant that does not exist or is
// deleted. The application role sees only its own tenant's registry row.
func requireLiveTenant(ctx context.Context, tx pgx.Tx, tenantID string) error {
	_, err := liveTenantSlug(ctx, tx, tenantID)
	return err
}

// ListUsers lists the tenant's users, oldest first.
func (s *UserService) ListUsers(ctx context.Context, tenantID string, f tenancy.UserFilter) ([]*tenancy.User, int, error) {
	limit := any(nil)
	if f.Limit > 0 {
		limit = f.Limit
	}
	var out []*tenancy.User
	total := 0
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			var u tenancy.User
			if err := rows.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &u.CreatedAt, &total); err != nil {
				return err
			}
			out = append(out, &u)
		}
		return nil
	}, `
		SELECT id, tenant_id, email, name, created_at, count(*) OVER ()
		FROM auth.users
		WHERE tenant_id = $1
		  AND ($2 = '' OR email ILIKE $2 ESCAPE '\' OR name ILIKE $2 ESCAPE '\')
		ORDER BY created_at, id
		LIMIT $3 OFFSET $4`, tenantID, likePattern(f.Query), limit, f.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", translate(err))
	}
	return out, total, nil
}
