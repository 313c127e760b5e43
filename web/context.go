package web

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/nself/nself/internal/tenancy"
)

// The request context carries only cross-cutting values: the tenant, the
// signed-in user (with the role of their membership) or administrator, the
// API key, the CSRF token, and what the request's log line should say.
//
// The values are immutable. Each is copied in when middleware sets it, and
// each helper that reads one hands out a copy of its own: the tenant and
// the identity come from caches shared by every request, so a handler that
// changed what it was given would otherwise change it for the requests
// that follow, and for the rest of its own. Setting a value makes a new
// state in a new context rather than changing the one a context already
// holds, so a context handed to a goroutine never changes under it.
//
// The only shared, mutable part is the log note, which exists so that
// handlers can tell the outermost middleware what to log. One exception to
// making a new state: the request's tenant is set in its first state when
// routing finds it (routedTo), before any handler has run or any goroutine
// could hold the context.
type requestState struct {
	tenant   *tenancy.Tenant
	identity *tenancy.Identity
	admin    *tenancy.Admin
	apiKey   *tenancy.APIKey
	csrf     string
	log      *logNote
}

// logNote is what the request's log line should say beyond the request
// itself; the outermost middleware makes it and reads it when the handler
// is done.
type logNote struct {
	tenant string
	err    error
}

type stateKey struct{}

// stateOf returns the request's state, or nil outside a request. Nothing
// changes a state once it is in a context.
func stateOf(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// requestScope is the context a request starts with, made in one
// allocation by the outermost middleware: the request id, the request's
// first state with its log note, and the writer that records the answer's
// status for the log line. A context per value, each copying the request,
// was the server's most frequent allocation.
type requestScope struct {
	context.Context
	id    string
	state requestState
	note  logNote
	w     statusWriter
}

func newRequestScope(parent context.Context, id string, w http.ResponseWriter) *requestScope {
	sc := &requestScope{Context: parent, id: id}
	sc.state.log = &sc.note
	sc.w.ResponseWriter = w
	return sc
}

func (sc *requestScope) Value(key any) any {
	switch key {
	case stateKey{}:
		return &sc.state
	case middleware.RequestIDKey:
		return sc.id
	}
	return sc.Context.Value(key)
}

// routedTo returns r for tenant t: its first state gets the tenant in
// place when r still has the context it started with, as it has on every
// request routed by host; otherwise a new context holds a copy.
func routedTo(r *http.Request, t *tenancy.Tenant) *http.Request {
	if sc, ok := r.Context().(*requestScope); ok && sc.state.tenant == nil {
		// The cached tenant itself: readers get copies (TenantFrom), and
		// the package's own readers (tenantOf) only read it.
		sc.state.tenant = t
		sc.note.tenant = t.Slug
		return r
	}
	return withContext(r, withTenant(r.Context(), t))
}

// with returns a context whose state is ctx's with set applied to a copy.
func with(ctx context.Context, set func(*requestState)) context.Context {
	var st requestState
	if old := stateOf(ctx); old != nil {
		st = *old
	}
	set(&st)
	return context.WithValue(ctx, stateKey{}, &st)
}

// withContext returns r with ctx, copying the request only when ctx is new.
func withContext(r *http.Request, ctx context.Context) *http.Request {
	if ctx == r.Context() {
		return r
	}
	return r.WithContext(ctx)
}

// TenantFrom returns a copy of the tenant the request is for, or nil.
func TenantFrom(ctx context.Context) *tenancy.Tenant {
	if st := stateOf(ctx); st != nil {
		return copyTenant(st.tenant)
	}
	return nil
}

// tenantOf is the request's tenant as the context holds it, without a
// copy: for the package's own readers on the hot path (the gateway) that
// only read it and hand it to no one.
func tenantOf(ctx context.Context) *tenancy.Tenant {
	if st := stateOf(ctx); st != nil {
		return st.tenant
	}
	return nil
}

func withTenant(ctx context.Context, t *tenancy.Tenant) context.Context {
	ctx = with(ctx, func(st *requestState) { st.tenant = copyTenant(t) })
	noteTenant(ctx, t.Slug)
	return ctx
}

// IdentityFrom returns a copy of the signed-in tenant user, or nil.
// A session still waiting for its second factor is no identity: it
// reaches only the second-factor pages (pendingIdentityFrom).
func IdentityFrom(ctx context.Context) *tenancy.Identity {
	if st := stateOf(ctx); st != nil && st.identity != nil && st.identity.SecondFactor == "" {
		return copyIdentity(st.identity)
	}
	return nil
}

// withIdentity returns ctx with id (copied) as the signed-in user.
func withIdentity(ctx context.Context, id *tenancy.Identity) context.Context {
	return with(ctx, func(st *requestState) { st.identity = copyIdentity(id) })
}

// withSession sets the signed-in user (or administrator) and the session's
// CSRF token at once, in one new context.
func withSession(ctx context.Context, id *tenancy.Identity, a *tenancy.Admin, csrf string) context.Context {
	return with(ctx, func(st *requestState) {
		if id != nil {
			st.identity = copyIdentity(id)
		}
		if a != nil {
			st.admin = copyAdmin(a)
		}
		st.csrf = csrf
	})
}

// AdminFrom returns a copy of the signed-in platform administrator, or nil.
func AdminFrom(ctx context.Context) *tenancy.Admin {
	if st := stateOf(ctx); st != nil {
		return copyAdmin(st.admin)
	}
	return nil
}

// CSRFFrom returns the CSRF token for the request's session.
func CSRFFrom(ctx context.Context) string {
	if st := stateOf(ctx); st != nil {
		return st.csrf
	}
	return ""
}

func withCSRF(ctx context.Context, token string) context.Context {
	return with(ctx, func(st *requestState) { st.csrf = token })
}

// APIKeyFrom returns a copy of the API key that authenticated the request,
// or nil.
func APIKeyFrom(ctx context.Context) *tenancy.APIKey {
	if st := stateOf(ctx); st != nil {
		return copyAPIKey(st.apiKey)
	}
	return nil
}

// withKeyTenant sets the API key that authenticated the request, when
// there is one, and the tenant it is for, in one new context.
func withKeyTenant(ctx context.Context, k *tenancy.APIKey, t *tenancy.Tenant) context.Context {
	ctx = with(ctx, func(st *requestState) {
		if k != nil {
			st.apiKey = copyAPIKey(k)
		}
		st.tenant = copyTenant(t)
	})
	noteTenant(ctx, t.Slug)
	return ctx
}

// noteTenant names the tenant in the request's log line, for requests
// whose tenant is known without being the request's tenant (the console).
func noteTenant(ctx context.Context, slug string) {
	if st := stateOf(ctx); st != nil && st.log != nil {
		st.log.tenant = slug
	}
}

// noteError puts an error in the request's log line.
func noteError(ctx context.Context, err error) {
	if st := stateOf(ctx); st != nil && st.log != nil {
		st.log.err = err
	}
}

func copyTenant(t *tenancy.Tenant) *tenancy.Tenant {
	if t == nil {
		return nil
	}
	c := *t
	if t.DeletedAt != nil {
		d := *t.DeletedAt
		c.DeletedAt = &d
	}
	return &c
}

func copyIdentity(id *tenancy.Identity) *tenancy.Identity {
	if id == nil {
		return nil
	}
	c := *id
	if id.User != nil {
		u := *id.User
		c.User = &u
	}
	return &c
}

func copyAdmin(a *tenancy.Admin) *tenancy.Admin {
	if a == nil {
		return nil
	}
	c := *a
	return &c
}

func copyAPIKey(k *tenancy.APIKey) *tenancy.APIKey {
	if k == nil {
		return nil
	}
	c := *k
	if k.LastUsedAt != nil {
		v := *k.LastUsedAt
		c.LastUsedAt = &v
	}
	if k.RevokedAt != nil {
		v := *k.RevokedAt
		c.RevokedAt = &v
	}
	return &c
}
