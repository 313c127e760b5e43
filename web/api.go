package web

import (
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
)

// apiRoutes are the tenant API, JSON only, authenticated with API keys.
func (s *Server) apiRoutes(r chi.Router) {
	r.Use(s.authenticateAPI, s.meterAPI, s.auditActor)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such endpoint"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
	})
	r.Get("/tenant", s.h(s.handleAPITenant))
	r.Get("/users", s.h(s.handleAPIUsers))
	r.Get("/members", s.h(s.handleAPIMembers))
}

// authenticateAPI finds the caller and the tenant of an API request.
//
// An API key names its tenant. The X-Tenant-ID and X-Tenant-Slug headers
// (in that order of priority) and the host may name one too; with a key,
// any of them naming another tenant is refused with 403. The internal
// service token may name any tenant, through a header or the host.
func (s *Server) authenticateAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		fail := func(status int, msg string) { writeJSON(w, status, map[string]any{"error": msg}) }
		secret, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nself"`)
			fail(http.StatusUnauthorized, "missing API key: send Authorization: Bearer <key>")
			return
		}
		// The caller is authenticated before any header is looked up, so
		// an unauthenticated request learns nothing about which tenants
		// exist.
		var t *tenancy.Tenant
		var apiKey *tenancy.APIKey
		if s.Config.InternalToken != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(s.Config.InternalToken)) == 1 {
			named, err := s.namedTenant(r)
			if err != nil {
				s.Error(w, r, err)
				return
			}
			if named == nil {
				fail(http.StatusBadRequest, "name the tenant with the X-Tenant-ID or X-Tenant-Slug header")
				return
			}
			t = named
		} else {
			key, err := s.APIKeys.AuthenticateAPIKey(ctx, secret, clientIP(r))
			if tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
				fail(http.StatusUnauthorized, "invalid or revoked API key")
				return
			} else if err != nil {
				s.Error(w, r, err)
				return
			}
			if err := key.Permits(tenancy.SurfaceAPI, r.Method, time.Now()); err != nil {
				fail(keyRefusalStatus(err), tenancy.ErrorMessage(err))
				return
			}
			named, err := s.namedTenant(r)
			if err != nil && tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
				s.Error(w, r, err)
				return
			}
			// A header or host naming any other tenant, or none that
			// exists, is refused alike.
			if err != nil || (named != nil && named.ID != key.TenantID) {
				fail(http.StatusForbidden, "this API key belongs to another tenant")
				return
			}
			if t, err = s.Resolver.Lookup(ctx, key.TenantID); err != nil {
				s.Error(w, r, err)
				return
			}
			apiKey = key
		}
		switch t.Status {
		case tenancy.StatusDeleted:
			fail(http.StatusNotFound, "tenant not found")
			return
		case tenancy.StatusSuspended:
			fail(http.StatusForbidden, "this account is suspended")
			return
		}
		next.ServeHTTP(w, withContext(r, withKeyTenant(ctx, apiKey, t)))
	})
}

// keyRefusalStatus is the status of a key's refusal (APIKey.Permits): 401
// for a key that no longer works, 403 for one that may not do this.
func keyRefusalStatus(err error) int {
	if err == tenancy.ErrKeyExpired {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

// namedTenant returns the tenant the request names by header or host, or
// nil when it names none. A name that matches no tenant is ENOTFOUND.
func (s *Server) namedTenant(r *http.Request) (*tenancy.Tenant, error) {
	ctx := r.Context()
	if id := r.Header.Get("X-Tenant-ID"); id != "" {
		if !tenancy.IsUUID(id) {
			return nil, tenancy.Errorf(tenancy.EINVALID, "X-Tenant-ID is not a tenant id")
		}
		return s.Resolver.Lookup(ctx, id)
	}
	if slug := r.Header.Get("X-Tenant-Slug"); slug != "" {
		if tenancy.ValidateSlug(slug) != nil {
			return nil, tenancy.Errorf(tenancy.EINVALID, "X-Tenant-Slug is not a tenant slug")
		}
		return s.Resolver.Lookup(ctx, slug)
	}
	return TenantFrom(ctx), nil
}

type apiTenant struct {
	ID     string `json:"id"`
	Slug   string `json:"slug"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Plan   string `json:"plan"`
	// CreatedAt is written as time.Time writes itself (RFC 3339, to the
	// nanosecond), without the check encoding/json makes of every
	// MarshalJSON's output.
	CreatedAt string `json:"created_at"`
}

// handleAPITenant serves GET /v1/tenant.
func (s *Server) handleAPITenant(w http.ResponseWriter, r *http.Request) error {
	t := TenantFrom(r.Context())
	writeJSON(w, http.StatusOK, apiTenant{t.ID, t.Slug, t.Name, string(t.Status), t.Plan, t.CreatedAt.Format(time.RFC3339Nano)})
	return nil
}

type apiUser struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// handleAPIUsers serves GET /v1/users?limit=&offset=&q=.
func (s *Server) handleAPIUsers(w http.ResponseWriter, r *http.Request) error {
	t := TenantFrom(r.Context())
	p, err := apiPageOf(r)
	if err != nil {
		return err
	}
	users, total, err := s.Users.ListUsers(r.Context(), t.ID, tenancy.UserFilter{Query: r.URL.Query().Get("q"), Limit: p.Limit, Offset: p.Offset})
	if err != nil {
		return err
	}
	out := make([]apiUser, 0, len(users))
	for _, u := range users {
		out = append(out, apiUser{u.ID, u.Email, u.Name, u.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "total": total, "limit": p.Limit, "offset": p.Offset})
	return nil
}

type apiMember struct {
	UserID   string    `json:"user_id"`
	Email    string    `json:"email"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// handleAPIMembers serves GET /v1/members.
func (s *Server) handleAPIMembers(w http.ResponseWriter, r *http.Request) error {
	t := TenantFrom(r.Context())
	members, err := s.Members.ListMembers(r.Context(), t.ID)
	if err != nil {
		return err
	}
	out := make([]apiMember, 0, len(members))
	for _, m := range members {
		out = append(out, apiMember{m.UserID, m.Email, m.Name, string(m.Role), m.JoinedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": out})
	return nil
}
