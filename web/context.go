package web

import (
	"context"
	"net/http"

	"github.com/nself/nself/internal/tenancy"
)

// The request context carries only cross-cutting values: the tenant, the
// signed-in user or administrator, the API key, the CSRF token, and what the
// request's log line should say. They live in one requestState that the
// outermost middleware puts in the context, and that later middleware fills
// in: copying the request for each value would cost an allocation apiece on
// the portal's hottest path. Small typed helpers read and write them.
type requestState struct {
	tenant   *tenancy.Tenant
	identity *tenancy.Identity
	admin    *tenancy.Admin
	apiKey   *tenancy.APIKey
	csrf     string
	// logTenant and err are for the request's log line.
	logTenant string
	err       error
}

type stateKey struct{}

// stateOf returns the request's state, or nil outside a request.
func stateOf(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// withState makes sure ctx carries a state, and returns both.
func withState(ctx context.Context) (context.Context, *requestState) {
	if st := stateOf(ctx); st != nil {
		return ctx, st
	}
	st := &requestState{}
	return context.WithValue(ctx, stateKey{}, st), st
}

// withContext returns r with ctx, copying the request only when ctx is new.
func withContext(r *http.Request, ctx context.Context) *http.Request {
	if ctx == r.Context() {
		return r
	}
	return r.WithContext(ctx)
}

// TenantFrom returns the tenant the request is for, or nil.
func TenantFrom(ctx context.Context) *tenancy.Tenant {
	if st := stateOf(ctx); st != nil {
		return st.tenant
	}
	return nil
}

func withTenant(ctx context.Context, t *tenancy.Tenant) context.Context {
	ctx, st := withState(ctx)
	st.tenant = t
	st.logTenant = t.Slug
	return ctx
}

// IdentityFrom returns the signed-in tenant user, or nil.
// A session still waiting for its second factor is no identity: it
// reaches only the second-factor pages (pendingIdentityFrom).
func IdentityFrom(ctx context.Context) *tenancy.Identity {
	if st := stateOf(ctx); st != nil && st.identity != nil && st.identity.SecondFactor == "" {
		return st.identity
	}
	return nil
}

func withIdentity(ctx context.Context, id *tenancy.Identity) context.Context {
	ctx, st := withState(ctx)
	st.identity = id
	return ctx
}

// AdminFrom returns the signed-in platform administrator, or nil.
func AdminFrom(ctx context.Context) *tenancy.Admin {
	if st := stateOf(ctx); st != nil {
		return st.admin
	}
	return nil
}

func withAdmin(ctx context.Context, a *tenancy.Admin) context.Context {
	ctx, st := withState(ctx)
	st.admin = a
	return ctx
}

// CSRFFrom returns the CSRF token for the request's session.
func CSRFFrom(ctx context.Context) string {
	if st := stateOf(ctx); st != nil {
		return st.csrf
	}
	return ""
}

func withCSRF(ctx context.Context, token string) context.Context {
	ctx, st := withState(ctx)
	st.csrf = token
	return ctx
}

// APIKeyFrom returns the API key that authenticated the request, or nil.
func APIKeyFrom(ctx context.Context) *tenancy.APIKey {
	if st := stateOf(ctx); st != nil {
		return st.apiKey
	}
	return nil
}

func withAPIKey(ctx context.Context, k *tenancy.APIKey) context.Context {
	ctx, st := withState(ctx)
	st.apiKey = k
	return ctx
}

// noteTenant names the tenant in the request's log line, for requests
// whose tenant is known without being the request's tenant (the console).
func noteTenant(ctx context.Context, slug string) {
	if st := stateOf(ctx); st != nil {
		st.logTenant = slug
	}
}

// noteError puts an error in the request's log line.
func noteError(ctx context.Context, err error) {
	if st := stateOf(ctx); st != nil {
		st.err = err
	}
}
