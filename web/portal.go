package web

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// portalRoutes are a tenant's pages, on its own host.
func (s *Server) portalRoutes(r chi.Router) {
	r.Use(s.refuseForeignTenantHeader, s.loadTenantSession, s.holdPendingSessions, s.checkCSRF, s.guestsReadOnly, s.auditActor)
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.formAddress)
	r.Get("/", s.h(s.handleLanding))
	r.Get("/brand.css", s.handleBrandCSS)
	s.logoServeRoutes(r)
	s.authRoutes(r)
	s.ssoRoutes(r)
	s.invitationRoutes(r)
	s.secondFactorRoutes(r)
	r.Group(func(r chi.Router) {
		r.Use(s.requireRole(tenancy.RoleGuest))
		r.Get("/dashboard", s.h(s.handleDashboard))
		s.accountRoutes(r)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.requireRole(tenancy.RoleAdmin))
		s.apiKeyRoutes(r)
		s.memberRoutes(r)
		s.memberSessionRoutes(r)
		s.domainRoutes(r)
		s.brandingRoutes(r)
		s.logoRoutes(r)
		s.emailTemplateRoutes(r)
		r.Get("/audit", s.h(s.handleAuditLog))
	})
	r.Group(func(r chi.Router) {
		r.Use(s.requireRole(tenancy.RoleOwner))
		s.tenantBillingRoutes(r)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.requireRole(tenancy.RoleOwner))
		s.exportRoutes(r)
	})
}

// loadTenantSession identifies the signed-in user from the session
// cookie. A session of another tenant, or one that has ended, counts as
// none.
func (s *Server) loadTenantSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := TenantFrom(r.Context())
		sess := s.session(r, tenantCookie)
		ctx := r.Context()
		token, _ := sess.Values[keyToken].(string)
		tenantID, _ := sess.Values[keyTenant].(string)
		if token != "" && tenantID == t.ID {
			id, err := s.Auth.Identify(ctx, t.ID, token)
			switch {
			case err == nil:
				ctx = withSession(ctx, id, nil, s.csrfToken(token))
			case tenancy.ErrorCode(err) == tenancy.ENOTFOUND:
				s.endSession(w, r, tenantCookie)
			default:
				s.Error(w, r, err)
				return
			}
		} else if seed := anonSeed(r, tenantCookie); seed != "" {
			ctx = withCSRF(ctx, s.csrfToken(seed))
		}
		next.ServeHTTP(w, withContext(r, ctx))
	})
}

// withAnonCSRF gives an anonymous visitor a CSRF seed, so the forms on the
// page can be checked when posted. The seed is a random value in a cookie
// of its own: a token is worth something only with the cookie it was made
// from, and the cookie only on this host. It is set without the session
// machinery because landing pages are the hottest path of the portal.
func (s *Server) withAnonCSRF(w http.ResponseWriter, r *http.Request, cookie string) *http.Request {
	if CSRFFrom(r.Context()) != "" {
		return r
	}
	seed, _ := tenancy.NewSecret()
	http.SetCookie(w, &http.Cookie{
		Name: cookie + "_csrf", Value: seed, Path: "/",
		HttpOnly: true, Secure: s.Config.Secure, SameSite: http.SameSiteLaxMode,
	})
	return withContext(r, withCSRF(r.Context(), s.csrfToken(seed)))
}

// anonSeed returns an anonymous visitor's CSRF seed, if they have one.
func anonSeed(r *http.Request, cookie string) string {
	c, err := r.Cookie(cookie + "_csrf")
	if err != nil || len(c.Value) < 32 {
		return ""
	}
	return c.Value
}

// guestsReadOnly answers 403 to every state-changing request of a guest,
// whatever the route; signing out and looking after their own account
// (password, second factor, sessions) are the exceptions.
func (s *Server) guestsReadOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := IdentityFrom(r.Context())
		if id != nil && id.Role == tenancy.RoleGuest && !isSafeMethod(r.Method) && r.URL.Path != "/signout" && !ownAccountPath(r.URL.Path) {
			s.respondError(w, r, http.StatusForbidden, "Not allowed", "Guests have read-only access.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireRole lets through only signed-in users with at least role need;
// others are sent to sign in, or refused.
func (s *Server) requireRole(need tenancy.Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := IdentityFrom(r.Context())
			switch {
			case id == nil && isSafeMethod(r.Method) && r.Header.Get("HX-Request") == "":
				// Signed in, the person comes back to the page they asked for.
				http.Redirect(w, r, "/?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			case id == nil:
				s.respondError(w, r, http.StatusForbidden, "Not allowed", "Please sign in.")
			case !id.Can(need):
				s.respondError(w, r, http.StatusForbidden, "Not allowed",
					fmt.Sprintf("This page needs the %s role or higher; you are %s.", need, id.Role))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// handleLanding serves GET /: the branded sign-in page, or the dashboard
// for someone signed in.
func (s *Server) handleLanding(w http.ResponseWriter, r *http.Request) error {
	if IdentityFrom(r.Context()) != nil {
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
		return nil
	}
	r = s.withAnonCSRF(w, r, tenantCookie)
	c, err := s.signInProvider(r)
	if err != nil {
		return err
	}
	next := localPath(r.URL.Query().Get("next"))
	p := s.signInPage(w, r, c, next)
	p.Flash = s.takeFlash(w, r, tenantCookie)
	f := formView(&signInForm{Next: next})
	render(w, r, http.StatusOK, views.SignIn(p, f, "/signin"))
	return nil
}

// handleDashboard serves GET /dashboard.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) error {
	d, err := s.dashboard(r)
	if err != nil {
		return err
	}
	p := s.page(r, "Dashboard")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, http.StatusOK, views.DashboardPage(p, d))
	return nil
}

// dashboard is what the signed-in person's dashboard shows; the branding
// preview draws it too.
func (s *Server) dashboard(r *http.Request) (views.Dashboard, error) {
	ctx := r.Context()
	t, id := TenantFrom(ctx), IdentityFrom(ctx)
	members, err := s.Tenants.CountMembers(ctx, t.ID)
	if err != nil {
		return views.Dashboard{}, err
	}
	_, users, err := s.Users.ListUsers(ctx, t.ID, tenancy.UserFilter{Limit: 1})
	if err != nil {
		return views.Dashboard{}, err
	}
	plan, err := s.Plans.FindPlan(ctx, t.Plan)
	if err != nil {
		return views.Dashboard{}, err
	}
	return views.Dashboard{
		TenantName: t.Name, Slug: t.Slug, Plan: t.Plan, Members: members, Users: users, Role: string(id.Role),
		Limits: []views.Limit{
			{Label: "Users", Value: tenancy.FormatUsers(plan.MaxUsers)},
			{Label: "Storage", Value: tenancy.FormatStorage(plan.MaxStorageGB)},
			{Label: "API requests", Value: tenancy.FormatAPIRequests(plan.MaxAPIRequests)},
			{Label: "Price", Value: tenancy.FormatPrice(plan.PriceMonthlyCent) + "/month"},
		},
	}, nil
}

// handleBrandCSS serves GET /brand.css: the tenant's colors as CSS custom
// properties, from its look (tenancy.ResolveLook), with the colors the
// portal derives from them so that its text stays readable. Only
// validated colors are ever written here.
func (s *Server) handleBrandCSS(w http.ResponseWriter, r *http.Request) {
	p := tenancy.DefaultPalette
	if l := s.look(r.Context(), TenantFrom(r.Context())); l != nil {
		p = l.Palette
	}
	// The branding page's preview asks for unsaved colors: each is used
	// only if it validates, and the answer is not kept anywhere.
	if r.URL.Query().Get("preview") == "1" {
		p = previewPalette(r.URL.Query(), p)
		css := brandCSS(tenancy.NewScheme(p))
		if r.URL.Query().Get("bar") == "dark" {
			// The preview of the dark logo draws it where a dark logo
			// goes: on a bar in the secondary color.
			css += ".topbar{background:var(--brand-secondary)}.topbar .brand{color:var(--brand-on-secondary)}\n"
		}
		serveCSS(w, r, css, "no-store")
		return
	}
	serveCSS(w, r, brandCSS(tenancy.NewScheme(p)), "public, max-age=300")
}

// serveCSS writes a stylesheet with an ETag of its content.
func serveCSS(w http.ResponseWriter, r *http.Request, css, cacheControl string) {
	sum := sha256.Sum256([]byte(css))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", cacheControl)
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write([]byte(css))
}

// brandCSS writes a scheme as the custom properties static/app.css uses:
// the tenant's palette (--brand-primary…) and what the portal draws with
// (--brand-on-primary for text on primary fills, --brand-link…). Every
// value is a #rrggbb that tenancy derived from colors ParseColor passed.
func brandCSS(s tenancy.Scheme) string {
	var b strings.Builder
	b.WriteString(":root{")
	for i, v := range [][2]string{
		{"primary", s.Primary}, {"secondary", s.Secondary}, {"accent", s.Accent}, {"background", s.Background}, {"text", s.Text},
		{"on-primary", s.OnPrimary}, {"on-secondary", s.OnSecondary}, {"on-accent", s.OnAccent},
		{"surface", s.Surface}, {"ink", s.Ink}, {"link", s.Link}, {"nav", s.Nav}, {"muted", s.Muted}, {"line", s.Line}, {"focus", s.Focus},
		{"danger", s.Danger}, {"warning", s.Warning}, {"success", s.Success},
	} {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString("--brand-" + v[0] + ":" + v[1])
	}
	b.WriteString("}\n")
	return b.String()
}
