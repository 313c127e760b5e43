package web

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
)

// siteRouter routes by host: the admin host to the platform console, a
// tenant's subdomain or verified custom domain to its portal and API, the platform's own hosts
// (BASE_DOMAIN, api.BASE_DOMAIN) to the API only, where a credential and a
// header name the tenant. Any other host is unknown: 404, never a default
// tenant.
func (s *Server) siteRouter() http.Handler {
	admin := chi.NewRouter()
	s.adminRoutes(admin)

	// The portal is a router of its own, so its middleware (sessions, CSRF,
	// read-only guests) runs for every request, matched or not.
	portal := chi.NewRouter()
	s.portalRoutes(portal)
	tenantRouter := chi.NewRouter()
	tenantRouter.Route("/v1", s.apiRoutes)
	tenantRouter.Mount("/", portal)
	// The application's paths (UPSTREAM_PATHS) go to the gateway.
	tenant := s.withGateway(tenantRouter)

	platform := chi.NewRouter()
	platform.Route("/v1", s.apiRoutes)
	platform.NotFound(s.notFound)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostOf(r)
		switch {
		case host == s.Config.AdminHost:
			admin.ServeHTTP(w, r)
		case host == s.Config.BaseDomain && s.Config.SingleTenant:
			t, err := s.Resolver.Lookup(r.Context(), tenancy.DefaultTenantSlug)
			if err != nil && tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
				s.Error(w, r, err)
				return
			}
			if !s.tenantServes(w, r, t) {
				return
			}
			tenant.ServeHTTP(w, routedTo(r, t))
		case host == s.Config.BaseDomain || host == "api."+s.Config.BaseDomain:
			platform.ServeHTTP(w, r)
		default:
			var t *tenancy.Tenant
			var err error
			if slug, ok := s.subdomainSlug(host); ok {
				t, err = s.Resolver.Lookup(r.Context(), slug)
			} else if s.customDomains() {
				t, err = s.Domains.LookupDomain(r.Context(), host)
			} else {
				s.respondError(w, r, http.StatusNotFound, "Not found", "There is nothing at this address.")
				return
			}
			if err != nil && tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
				s.Error(w, r, err)
				return
			}
			if !s.tenantServes(w, r, t) {
				return
			}
			tenant.ServeHTTP(w, routedTo(r, t))
		}
	})
}

// customDomains reports whether verified custom domains route to their
// tenants: whenever custom domains are enabled, whatever
// TENANT_ROUTING_METHOD says of subdomains.
func (s *Server) customDomains() bool {
	return s.on.routed
}

// subdomainSlug returns the tenant slug of a host SLUG.BASE_DOMAIN, when
// subdomain routing is on.
func (s *Server) subdomainSlug(host string) (string, bool) {
	if s.Config.RoutingMethod == "custom_domain" || s.Config.SingleTenant {
		return "", false
	}
	slug, ok := strings.CutSuffix(host, "."+s.Config.BaseDomain)
	if !ok || slug == "" || strings.Contains(slug, ".") || tenancy.ValidateSlug(slug) != nil {
		return "", false
	}
	return slug, true
}

// tenantServes writes the answer for a tenant that is not there to serve
// (unknown or deleted: 404; suspended: 403 saying so) and reports whether
// the request may go on.
func (s *Server) tenantServes(w http.ResponseWriter, r *http.Request, t *tenancy.Tenant) bool {
	switch {
	case t == nil || t.Status == tenancy.StatusDeleted:
		s.respondError(w, r, http.StatusNotFound, "Not found", "There is no workspace at this address.")
		return false
	case t.Status == tenancy.StatusSuspended:
		s.respondError(w, r, http.StatusForbidden, "Account suspended",
			"This account is suspended. Its owner can contact support to restore access.")
		return false
	}
	return true
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.respondError(w, r, http.StatusNotFound, "Not found", "There is nothing at this address.")
}

// formAddress answers a page opened at the address a form is sent to (a
// page drawn after a refused form, reloaded or bookmarked): a page that
// says so, not the browser's blank error.
func (s *Server) formAddress(w http.ResponseWriter, r *http.Request) {
	s.respondError(w, r, http.StatusMethodNotAllowed, "Nothing to show here",
		"This address is where a form is sent. Go back to the page with the form, or to the start page.")
}

// refuseForeignTenantHeader refuses a page request whose X-Tenant-ID or
// X-Tenant-Slug header names another tenant than its host: a header never
// moves a caller across tenants.
func (s *Server) refuseForeignTenantHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := TenantFrom(r.Context())
		if id := r.Header.Get("X-Tenant-ID"); id != "" && !strings.EqualFold(id, t.ID) {
			s.respondError(w, r, http.StatusForbidden, "Not allowed", "The X-Tenant-ID header names another tenant.")
			return
		}
		if slug := r.Header.Get("X-Tenant-Slug"); slug != "" && !strings.EqualFold(slug, t.Slug) {
			s.respondError(w, r, http.StatusForbidden, "Not allowed", "The X-Tenant-Slug header names another tenant.")
			return
		}
		next.ServeHTTP(w, r)
	})
}
