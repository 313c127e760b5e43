package web

import (
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

func (s *Server) domainRoutes(r chi.Router) {
	if !s.on.domains {
		return
	}
	r.Get("/domains", s.h(s.handleDomainList))
	r.Post("/domains", s.h(s.handleDomainAdd))
	r.Post("/domains/preview", s.h(s.handleDomainPreview))
	r.Get("/domains/preview.html", s.h(s.handleDomainPreviewHTML))
	r.Get("/domains/{domain}/row", s.h(s.handleDomainRow))
	if s.on.verify {
		r.Post("/domains/{domain}/verify", s.h(s.handleDomainVerify))
	}
	r.Post("/domains/{domain}/primary", s.h(s.handleDomainPrimary))
	r.Post("/domains/{domain}/remove", s.h(s.handleDomainRemove))
}

// domainRules are the rules the domain service checks names against, as
// cmd/nself wires them: the preview and the path values are checked here
// with the same rules before the service sees them.
func (s *Server) domainRules() tenancy.DomainRules {
	return tenancy.DomainRules{BaseDomain: s.Config.BaseDomain, ToASCII: domainname.ToASCII}
}

// domainAdmin returns the domain service, or not found on a server
// started without one.
func (s *Server) domainAdmin() (tenancy.DomainService, error) {
	return s.DomainAdmin, nil
}

// domainRow shapes a domain for the list.
func domainRow(d *tenancy.Domain) views.DomainRow {
	return views.DomainRow{
		Name: d.Name, Display: domainname.ToUnicode(d.Name), State: string(d.State),
		Primary: d.Primary, Verified: d.Verified(), VerifiedAt: d.VerifiedAt, CheckedAt: d.CheckedAt,
		Failure: d.Failure, RecordName: d.RecordName(), RecordValue: d.RecordValue(),
	}
}

// renderDomains renders the domains page with the add form f.
func (s *Server) renderDomains(w http.ResponseWriter, r *http.Request, status int, in domainForm, f views.Form) error {
	ctx := r.Context()
	svc, err := s.domainAdmin()
	if err != nil {
		return err
	}
	// A tenant's domains are few; the page shows them all.
	list, _, err := svc.ListDomains(ctx, TenantFrom(ctx).ID, tenancy.DomainFilter{})
	if err != nil {
		return err
	}
	m := views.Domains{Routed: s.customDomains(), Off: s.Config.CustomDomainsOff, Add: f}
	for _, d := range list {
		m.Rows = append(m.Rows, domainRow(d))
	}
	if m.Add.Values == nil {
		m.Add = views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	m.Preview = s.domainPreview(r, in.Domain)
	p := s.page(r, "Domains")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.DomainsPage(p, m))
	return nil
}

// handleDomainList serves GET /domains.
func (s *Server) handleDomainList(w http.ResponseWriter, r *http.Request) error {
	return s.renderDomains(w, r, http.StatusOK, domainForm{}, views.Form{})
}

// domainForm claims a custom domain; its live preview posts it too.
type domainForm struct {
	Domain string `form:"domain"`
}

// handleDomainAdd serves POST /domains.
func (s *Server) handleDomainAdd(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	svc, err := s.domainAdmin()
	if err != nil {
		return err
	}
	var in domainForm
	f := parseForm(r, &in)
	d, err := svc.AddDomain(ctx, TenantFrom(ctx).ID, in.Domain)
	switch tenancy.ErrorCode(err) {
	case "":
	case tenancy.EINVALID, tenancy.ECONFLICT:
		fieldError(&f, err)
		return s.renderDomains(w, r, http.StatusUnprocessableEntity, in, f)
	default:
		return err
	}
	s.setFlash(w, r, tenantCookie, "Added "+domainname.ToUnicode(d.Name)+". Create its TXT record, then press Verify.")
	http.Redirect(w, r, "/domains", http.StatusSeeOther)
	return nil
}

// domainParam is the {domain} of a domain route, checked with the domain
// rules: a name that could never have been added is not found, whatever
// it holds.
func (s *Server) domainParam(r *http.Request) (string, error) {
	raw, err := url.PathUnescape(chi.URLParam(r, "domain"))
	if err == nil {
		var name string
		if name, err = s.domainRules().Normalize(raw); err == nil {
			return name, nil
		}
	}
	return "", tenancy.FieldErrorf(tenancy.ENOTFOUND, "domain", "domain %s not found", tenancy.Quote(raw))
}

// domainPollRecheck is how often a polled row that is still pending looks
// its TXT record up again. Polls come every few seconds; DNS needs no
// asking that often, and a lookup may take seconds to time out.
const domainPollRecheck = 15 * time.Second

// handleDomainRow serves GET /domains/{domain}/row: the row a pending
// domain polls for. So that the row turns verified without anyone pressing
// Verify once the record is in place, a pending domain's record is looked
// up again when the last check is older than domainPollRecheck; verified
// rows are only read (the platform re-checks those on its own schedule).
func (s *Server) handleDomainRow(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	svc, err := s.domainAdmin()
	if err != nil {
		return err
	}
	name, err := s.domainParam(r)
	if err != nil {
		return err
	}
	tenantID := TenantFrom(ctx).ID
	d, err := svc.FindDomain(ctx, tenantID, name)
	if err != nil {
		return err
	}
	if s.on.verify && d.State == tenancy.DomainPending &&
		(d.CheckedAt == nil || time.Since(*d.CheckedAt) > domainPollRecheck) {
		if d, _, err = svc.VerifyDomain(ctx, tenantID, name, s.DomainVerifier); err != nil {
			return err
		}
	}
	render(w, r, http.StatusOK, views.DomainRowView(CSRFFrom(ctx), domainRow(d)))
	return nil
}

// handleDomainVerify serves POST /domains/{domain}/verify: for htmx, the
// domain's row with what the check found; otherwise the page, with it as
// the flash.
func (s *Server) handleDomainVerify(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	svc, err := s.domainAdmin()
	if err != nil {
		return err
	}
	name, err := s.domainParam(r)
	if err != nil {
		return err
	}
	d, res, err := svc.VerifyDomain(ctx, TenantFrom(ctx).ID, name, s.DomainVerifier)
	if err != nil {
		return err
	}
	msg := res.Message()
	if res.Verified() {
		msg = domainname.ToUnicode(d.Name) + " is verified: " + msg + "."
	}
	if r.Header.Get("HX-Request") == "true" {
		row := domainRow(d)
		row.Message = msg
		render(w, r, http.StatusOK, views.DomainRowView(CSRFFrom(ctx), row))
		return nil
	}
	s.setFlash(w, r, tenantCookie, msg)
	http.Redirect(w, r, "/domains", http.StatusSeeOther)
	return nil
}

// handleDomainPrimary serves POST /domains/{domain}/primary.
func (s *Server) handleDomainPrimary(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	svc, err := s.domainAdmin()
	if err != nil {
		return err
	}
	name, err := s.domainParam(r)
	if err != nil {
		return err
	}
	d, err := svc.SetPrimaryDomain(ctx, TenantFrom(ctx).ID, name)
	if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, domainname.ToUnicode(d.Name)+" is now the primary domain.")
	backToDomains(w, r)
	return nil
}

// handleDomainRemove serves POST /domains/{domain}/remove. The form asks
// for confirmation through htmx (hx-confirm), so it may come either way.
func (s *Server) handleDomainRemove(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	svc, err := s.domainAdmin()
	if err != nil {
		return err
	}
	name, err := s.domainParam(r)
	if err != nil {
		return err
	}
	if err := svc.RemoveDomain(ctx, TenantFrom(ctx).ID, name); err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, domainname.ToUnicode(name)+" was removed.")
	backToDomains(w, r)
	return nil
}

// backToDomains sends the browser to the domains page: htmx follows
// HX-Redirect, a plain form the 303.
func backToDomains(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", "/domains")
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Redirect(w, r, "/domains", http.StatusSeeOther)
}

// domainPreview is the preview pane for what was typed in the add form:
// the normalized name in the address bar, or the rule it breaks.
func (s *Server) domainPreview(r *http.Request, typed string) views.DomainPreview {
	v := views.DomainPreview{TenantName: TenantFrom(r.Context()).Name, FrameURL: "/domains/preview.html"}
	if typed == "" {
		return v
	}
	name, err := s.domainRules().Normalize(typed)
	if err != nil {
		v.Error = tenancy.ErrorMessage(err)
		return v
	}
	v.Address = "https://" + domainname.ToUnicode(name)
	return v
}

// handleDomainPreview serves POST /domains/preview: the live preview's
// partial, from the unsaved form.
func (s *Server) handleDomainPreview(w http.ResponseWriter, r *http.Request) error {
	var in domainForm
	parseForm(r, &in)
	render(w, r, http.StatusOK, views.DomainPreviewPane(s.domainPreview(r, in.Domain)))
	return nil
}

// signInPreviewPolicy governs the sign-in page shown in the preview frame:
// the portal's own stylesheets and nothing else: no script, no fetching,
// no form that can be sent, and a sandbox giving it an origin of its own.
// Only the portal's own pages may frame it.
const signInPreviewPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"

// handleDomainPreviewHTML serves GET /domains/preview.html: the tenant's
// sign-in page as an anonymous visitor sees it, for the preview frame. The
// page is the same on every host of the tenant, so it takes no domain: the
// address bar around the frame names the domain.
func (s *Server) handleDomainPreviewHTML(w http.ResponseWriter, r *http.Request) error {
	p := s.page(r, "Sign in")
	// A visitor is nobody yet: no menu, no account, and never the
	// admin's CSRF token.
	p.UserEmail, p.Role, p.SignOutURL, p.Nav, p.CSRF = "", "", "", nil, ""
	p.Framed = true
	h := w.Header()
	h.Set("Content-Security-Policy", signInPreviewPolicy)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	render(w, r, http.StatusOK, views.SignIn(p, views.Form{}, "/signin"))
	return nil
}
