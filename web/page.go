package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// handlerFunc is a handler that returns its error to Error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// h adapts a handlerFunc to http.HandlerFunc.
func (s *Server) h(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.Error(w, r, err)
		}
	}
}

// page builds the frame of a page for the request's site and visitor.
func (s *Server) page(r *http.Request, title string) views.Page {
	p := views.Page{Title: title, CSRF: CSRFFrom(r.Context())}
	switch t, admin := TenantFrom(r.Context()), AdminFrom(r.Context()); {
	case t != nil:
		p.Brand = s.tenantBrand(r, t)
		p.Brand.LogoURL = s.logoURL(r.Context(), t)
		p.Brand.IconURL = s.logoURLOf(r.Context(), t, tenancy.LogoIcon)
		if id := IdentityFrom(r.Context()); id != nil {
			p.UserEmail, p.Role, p.SignOutURL = id.User.Email, string(id.Role), "/signout"
			p.Nav = tenantNav(id.Role, r.URL.Path, s.on)
			if s.on.billing && id.Role == tenancy.RoleOwner {
				p.Nav = append(p.Nav, views.NavItem{Label: "Billing", Href: "/billing", TestID: "nav-billing", Active: strings.HasPrefix(r.URL.Path, "/billing")})
			}
			if s.SSO != nil && s.SSOProvider != nil && id.Role == tenancy.RoleOwner {
				p.Nav = append(p.Nav, views.NavItem{Label: "Single sign-on", Href: "/settings/sso", TestID: "nav-sso", Active: strings.HasPrefix(r.URL.Path, "/settings/sso")})
			}
		}
	case hostOf(r) == s.Config.AdminHost:
		p.Brand = views.Brand{Name: "Platform admin", Initial: "A"}
		if admin != nil {
			p.UserEmail, p.Role, p.SignOutURL = admin.Email, "platform admin", "/signout"
			p.Nav = adminNav(r.URL.Path, s.on)
		}
	default:
		p.Brand = views.Brand{Name: "nself", Initial: "n"}
	}
	return p
}

// initial is the letter shown in place of a logo.
func initial(name string) string {
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return strings.ToUpper(string(r))
		}
	}
	return "•"
}

// tenantNav is the portal menu, holding only what the role may open.
func tenantNav(role tenancy.Role, path string, on features) []views.NavItem {
	items := []struct {
		label, href, testID string
		need                tenancy.Role
		on                  bool
	}{
		{"Dashboard", "/dashboard", "nav-dashboard", tenancy.RoleGuest, true},
		{"Members", "/members", "nav-members", tenancy.RoleAdmin, true},
		{"API keys", "/settings/api-keys", "nav-api-keys", tenancy.RoleAdmin, true},
		{"Domains", "/domains", "nav-domains", tenancy.RoleAdmin, on.domains},
		{"Branding", "/settings/branding", "nav-branding", tenancy.RoleAdmin, true},
		{"Logos", "/settings/logos", "nav-logos", tenancy.RoleAdmin, on.logos},
		{"Email templates", "/settings/emails", "nav-email-templates", tenancy.RoleAdmin, true},
		{"Audit log", "/audit", "nav-audit", tenancy.RoleAdmin, true},
		{"Data export", "/settings/export", "nav-export", tenancy.RoleOwner, on.exports},
		{"Security", "/account/security", "nav-security", tenancy.RoleGuest, true},
		{"Sessions", "/account/sessions", "nav-sessions", tenancy.RoleGuest, true},
	}
	var out []views.NavItem
	for _, it := range items {
		if it.on && tenancy.RoleRank(role) >= tenancy.RoleRank(it.need) {
			out = append(out, views.NavItem{Label: it.label, Href: it.href, TestID: it.testID, Active: strings.HasPrefix(path, it.href)})
		}
	}
	return out
}

// adminNav is the platform console's menu; plans, billing and mail are
// there when their services are.
func adminNav(path string, on features) []views.NavItem {
	nav := []views.NavItem{
		{Label: "Tenants", Href: "/tenants", TestID: "nav-tenants", Active: strings.HasPrefix(path, "/tenants")},
		{Label: "Organizations", Href: "/orgs", TestID: "nav-orgs", Active: strings.HasPrefix(path, "/orgs")},
	}
	if on.plans {
		nav = append(nav, views.NavItem{Label: "Plans", Href: "/plans", TestID: "nav-plans", Active: strings.HasPrefix(path, "/plans")})
	}
	if on.usage {
		nav = append(nav, views.NavItem{Label: "Billing", Href: "/billing", TestID: "nav-billing", Active: strings.HasPrefix(path, "/billing")})
	}
	if on.mail {
		nav = append(nav, views.NavItem{Label: "Mail", Href: "/mail", TestID: "nav-mail", Active: strings.HasPrefix(path, "/mail")})
	}
	return append(nav,
		views.NavItem{Label: "Statistics", Href: "/stats", TestID: "nav-stats", Active: strings.HasPrefix(path, "/stats")},
		views.NavItem{Label: "Audit log", Href: "/audit", TestID: "nav-audit", Active: strings.HasPrefix(path, "/audit")},
	)
}

// fieldError puts a domain error next to its field, or on the form.
func fieldError(f *views.Form, err error) {
	var e *tenancy.Error
	if tenancy.ErrorCode(err) != tenancy.EINTERNAL && asDomain(err, &e) && e.Field != "" {
		if _, ok := f.Values[e.Field]; ok {
			f.Errors[e.Field] = sentence(e.Message)
			return
		}
	}
	f.Error = sentence(tenancy.ErrorMessage(err))
}

// sentence starts a message with a capital letter, as a page shows it: the
// domain's messages are written to follow "error: " on a command line.
func sentence(msg string) string {
	r, n := utf8.DecodeRuneInString(msg)
	if !unicode.IsLower(r) {
		return msg
	}
	return string(unicode.ToUpper(r)) + msg[n:]
}

// look is the tenant's look, from the branding cache; nil when it cannot
// be had, and the page then shows the platform's defaults rather than fail.
func (s *Server) look(ctx context.Context, t *tenancy.Tenant) *tenancy.Look {
	if t == nil {
		return nil
	}
	l, err := s.Branding.Look(ctx, t.ID)
	if err != nil {
		s.Log.Warn("read tenant look", "tenant", t.Slug, "err", err)
		return nil
	}
	return l
}

// tenantBrand is the brand frame of a tenant's pages: the company name when
// set, and a stylesheet URL that changes whenever the look does, so
// browsers fetch the new colors at once.
func (s *Server) tenantBrand(r *http.Request, t *tenancy.Tenant) views.Brand {
	name, version := t.Name, strconv.FormatInt(t.UpdatedAt.Unix(), 36)
	var contact tenancy.Contact
	if l := s.look(r.Context(), t); l != nil {
		version, contact = l.Version, l.Contact
		if l.CompanyName != "" {
			name = l.CompanyName
		}
	}
	return views.Brand{Name: name, Initial: initial(name), StyleURL: "/brand.css?v=" + version, Contact: contact}
}
