package tenancy

import (
	"context"
	"time"
)

// Session lifetimes. A session ends after IdleTimeout without a request, or
// AbsoluteTimeout after sign-in, whichever comes first.
const (
	IdleTimeout     = 2 * time.Hour
	AbsoluteTimeout = 24 * time.Hour
	// ResetTokenTTL is how long a password reset link stays valid.
	ResetTokenTTL = time.Hour
	// MaxResetLinksPerHour bounds the reset mails one account receives in
	// an hour, however many addresses ask for them: past it, a request is
	// answered as always but mails nothing.
	MaxResetLinksPerHour = 5
	// SetPasswordTokenTTL is how long the link that lets a new account
	// set its first password stays valid.
	SetPasswordTokenTTL = 72 * time.Hour
)

// ErrBadCredentials is the one answer to a failed sign-in, whether the
// account is unknown or the password wrong, so that sign-in does not tell
// which accounts exist.
var ErrBadCredentials = &Error{Code: EINVALID, Field: "password", Message: "Email or password is incorrect."}

// Identity is who a signed-in request acts as, in one tenant.
type Identity struct {
	User      *User
	Role      Role
	SessionID string
	// SecondFactor, when set, is the step the session still waits for
	// (SecondFactorCode, SecondFactorEnrol): until then it grants nothing
	// else.
	SecondFactor string
}

// Can reports whether the identity's role may do what needs role at
// least: owner > admin > member > guest.
func (i *Identity) Can(need Role) bool { return i != nil && RoleRank(i.Role) >= RoleRank(need) }

// RoleRank orders roles from guest (1) to owner (4); 0 is no role.
func RoleRank(r Role) int {
	switch r {
	case RoleOwner:
		return 4
	case RoleAdmin:
		return 3
	case RoleMember:
		return 2
	case RoleGuest:
		return 1
	}
	return 0
}

// SessionMeta describes where a sign-in came from.
type SessionMeta struct {
	UserAgent string
	ClientIP  string
}

// AuthService signs tenant users in and out and resets passwords. Every call
// is in one tenant's context.
type AuthService interface {
	// SignIn checks the email and password and opens a session, returning
	// its secret token. A user without a role in the tenant cannot sign in.
	SignIn(ctx context.Context, tenantID, email, password string, meta SessionMeta) (token string, id *Identity, err error)
	// Identify returns who holds a session token, extending its idle
	// expiry; an expired or unknown token is ENOTFOUND.
	Identify(ctx context.Context, tenantID, token string) (*Identity, error)
	// SignOut ends a session.
	SignOut(ctx context.Context, tenantID, token string) error
	// RequestPasswordReset makes a single-use reset token for the account
	// with that email, voiding the account's earlier links. For an unknown
	// email, or an account past MaxResetLinksPerHour, it returns no user
	// and no error, in about the same time: the caller answers the same
	// either way.
	RequestPasswordReset(ctx context.Context, tenantID, email string) (*User, string, error)
	// ResetPassword sets a new password with a set or reset token, uses up
	// the token, voids the account's other links and ends its sessions.
	ResetPassword(ctx context.Context, tenantID, token, password string) (*User, error)
}

// APIKey is a secret that lets a program call a tenant's API.
type APIKey struct {
	ID         string
	TenantID   string
	Name       string
	Prefix     string // shown in lists; the key starts with it
	CreatedBy  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	APIKeyScope
	// LastUsedFrom is the address of the last use written.
	LastUsedFrom string
}

// APIKeyScope is what a key may reach, and until when. The zero value
// reaches nothing; keys made before scopes existed read and write on both
// surfaces, for ever.
type APIKeyScope struct {
	ReadOnly bool
	API      bool // the tenant API at /v1
	Gateway  bool // the gateway to the tenant's application
	// ExpiresAt is when the key stops working; nil never.
	ExpiresAt *time.Time
}

// FullAPIKeyScope is what a key reaches unless told otherwise, and what
// keys made before scopes existed keep.
var FullAPIKeyScope = APIKeyScope{API: true, Gateway: true}

// Surfaces an API key may reach.
const (
	SurfaceAPI     = "api"
	SurfaceGateway = "gateway"
)

// ValidateAPIKeyScope checks a scope chosen for a new key at now.
func ValidateAPIKeyScope(sc APIKeyScope, now time.Time) error {
	if !sc.API && !sc.Gateway {
		return FieldErrorf(EINVALID, "surfaces", "choose what the key may reach: the tenant API, the gateway, or both")
	}
	if sc.ExpiresAt != nil && !sc.ExpiresAt.After(now) {
		return FieldErrorf(EINVALID, "expires", "the expiry must be in the future")
	}
	return nil
}

// Key refusals, with the status they are answered with.
var (
	ErrKeyExpired   = &Error{Code: ENOTFOUND, Message: "this API key has expired"}
	ErrKeyNoAPI     = &Error{Code: EFORBIDDEN, Message: "this API key may not call the tenant API (/v1): its scope is the gateway only"}
	ErrKeyNoGateway = &Error{Code: EFORBIDDEN, Message: "this API key may not call the gateway: its scope is the tenant API (/v1) only"}
	ErrKeyReadOnly  = &Error{Code: EFORBIDDEN, Message: "this API key is read-only: only GET, HEAD and OPTIONS requests are allowed"}
	// ErrKeyReadOnlySocket refuses a WebSocket to a read-only key: what is
	// sent on it could change data, and the gateway cannot tell reads from
	// writes there.
	ErrKeyReadOnlySocket = &Error{Code: EFORBIDDEN, Message: "this API key is read-only: it may not open a WebSocket, whose messages could change data"}
)

// Permits returns why the key may not make a request with method on
// surface at now, or nil when it may. The errors are shared values, so a
// request let through costs no allocation.
func (k *APIKey) Permits(surface, method string, now time.Time) error {
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return ErrKeyExpired
	}
	switch surface {
	case SurfaceAPI:
		if !k.API {
			return ErrKeyNoAPI
		}
	case SurfaceGateway:
		if !k.Gateway {
			return ErrKeyNoGateway
		}
	}
	if k.ReadOnly && method != "GET" && method != "HEAD" && method != "OPTIONS" {
		return ErrKeyReadOnly
	}
	return nil
}

// APIKeyService manages API keys.
type APIKeyService interface {
	// CreateAPIKey makes a key and returns it with its secret, shown once.
	CreateAPIKey(ctx context.Context, tenantID, name, createdBy string) (*APIKey, string, error)
	// CreateScopedAPIKey makes a key limited to scope.
	CreateScopedAPIKey(ctx context.Context, tenantID, name, createdBy string, scope APIKeyScope) (*APIKey, string, error)
	ListAPIKeys(ctx context.Context, tenantID string) ([]*APIKey, error)
	// RevokeAPIKey revokes the tenant's key with that prefix.
	RevokeAPIKey(ctx context.Context, tenantID, prefix string) (*APIKey, error)
	// AuthenticateAPIKey returns the key matching secret, unless revoked;
	// the tenant is read from the key itself. Its scope and expiry are the
	// caller's to check (APIKey.Permits). addr is recorded as its last use.
	AuthenticateAPIKey(ctx context.Context, secret, addr string) (*APIKey, error)
}

// Admin is a platform administrator: not a tenant user.
type Admin struct {
	ID        string
	Email     string
	Name      string
	CreatedAt time.Time
}

// AdminService manages platform administrators and their sessions.
type AdminService interface {
	CreateAdmin(ctx context.Context, email, name, password string) (*Admin, error)
	AdminSignIn(ctx context.Context, email, password string) (string, *Admin, error)
	IdentifyAdmin(ctx context.Context, token string) (*Admin, error)
	AdminSignOut(ctx context.Context, token string) error
}
