package tenancy

import (
	"context"
	"time"
)

// User is an account inside one tenant. The same person may hold accounts in
// several tenants; each is its own row, and an email is unique only within
// its tenant.
type User struct {
	ID        string
	TenantID  string
	Email     string
	Name      string
	CreatedAt time.Time
}

// NewUser is the input to create a user.
type NewUser struct {
	Email string
	Name  string
	// Password is optional; without one the account cannot sign in until a
	// password is set through a one-time link, which is mailed.
	Password string
	// Unmailed creates the account without the welcome mail (and the
	// password link's): for the scratch accounts of the isolation check,
	// which nobody reads.
	Unmailed bool
}

// PasswordMinLen is the shortest password accepted.
const PasswordMinLen = 10

// ValidatePassword checks a new password.
func ValidatePassword(pw string) error {
	switch {
	case len([]rune(pw)) < PasswordMinLen:
		return FieldErrorf(EINVALID, "password", "password is too short: use at least %d characters", PasswordMinLen)
	case len(pw) > 1024:
		return FieldErrorf(EINVALID, "password", "password is too long: at most 1024 bytes")
	}
	return nil
}

// UserFilter selects users of a tenant.
type UserFilter struct {
	// Query matches email or name, case-insensitively.
	Query  string
	Offset int
	Limit  int
}

// UserService manages the users of one tenant. Every call runs in that
// tenant's context, so row-level security bounds what it can touch.
type UserService interface {
	// CreateUser creates a user in the tenant. When in.Password is empty it
	// also returns a one-time secret with which the user sets a password.
	CreateUser(ctx context.Context, tenantID string, in NewUser) (*User, string, error)
	ListUsers(ctx context.Context, tenantID string, f UserFilter) ([]*User, int, error)
}
