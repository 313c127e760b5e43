package web

import (
	"context"

	"github.com/nself/nself/internal/tenancy"
)

// The request context carries only cross-cutting values, each through a
// small typed helper.
type ctxKey int

const (
	tenantKey ctxKey = iota
	identityKey
	adminKey
	csrfKey
	apiKeyKey
)

// TenantFrom returns the tenant the request is for, or nil.
func TenantFrom(ctx context.Context) *tenancy.Tenant {
	t, _ := ctx.Value(tenantKey).(*tenancy.Tenant)
	return t
}

func withTenant(ctx context.Context, t *tenancy.Tenant) context.Context {
	return context.WithValue(ctx, tenantKey, t)
}

// IdentityFrom returns the signed-in tenant user, or nil.
func IdentityFrom(ctx context.Context) *tenancy.Identity {
	id, _ := ctx.Value(identityKey).(*tenancy.Identity)
	return id
}

func withIdentity(ctx context.Context, id *tenancy.Identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

// AdminFrom returns the signed-in platform administrator, or nil.
func AdminFrom(ctx context.Context) *tenancy.Admin {
	a, _ := ctx.Value(adminKey).(*tenancy.Admin)
	return a
}

func withAdmin(ctx context.Context, a *tenancy.Admin) context.Context {
	return context.WithValue(ctx, adminKey, a)
}

// CSRFFrom returns the CSRF token for the request's session.
func CSRFFrom(ctx context.Context) string {
	t, _ := ctx.Value(csrfKey).(string)
	return t
}

func withCSRF(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, csrfKey, token)
}

// APIKeyFrom returns the API key that authenticated the request, or nil.
func APIKeyFrom(ctx context.Context) *tenancy.APIKey {
	k, _ := ctx.Value(apiKeyKey).(*tenancy.APIKey)
	return k
}

func withAPIKey(ctx context.Context, k *tenancy.APIKey) context.Context {
	return context.WithValue(ctx, apiKeyKey, k)
}
