package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// orgCandidates bounds the tenants suggested on an organization's page.
const orgCandidates = 200

// orgRoutes are the console's organization pages, there only when
// organizations are configured.
func (s *Server) orgRoutes(r chi.Router) {
	if s.Orgs == nil {
		return
	}
	r.Get("/orgs", s.h(s.handleOrgList))
	r.Post("/orgs", s.h(s.handleOrgCreate))
	r.Get("/orgs/{org}", s.h(s.handleOrgShow))
	r.Post("/orgs/{org}", s.h(s.handleOrgRename))
	r.Post("/orgs/{org}/tenants", s.h(s.handleOrgAddTenant))
	r.Post("/orgs/{org}/tenants/{ref}/remove", s.h(s.handleOrgRemoveTenant))
	r.Get("/orgs/{org}/delete", s.h(s.handleOrgDeleteForm))
	r.Post("/orgs/{org}/delete", s.h(s.handleOrgDelete))
}

// handleOrgList serves GET /orgs on the admin host: organizations and the
// tenants each holds, and the form to create one.
func (s *Server) handleOrgList(w http.ResponseWriter, r *http.Request) error {
	return s.renderOrgList(w, r, http.StatusOK, views.Form{})
}

func (s *Server) renderOrgList(w http.ResponseWriter, r *http.Request, status int, f views.Form) error {
	orgs, err := s.Orgs.ListOrgs(r.Context())
	if err != nil {
		return err
	}
	rows := make([]views.OrgRow, 0, len(orgs))
	for _, o := range orgs {
		row, err := s.orgRow(r, o)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	p := s.page(r, "Organizations")
	if status == http.StatusOK {
		p.Flash = s.takeFlash(w, r, adminCookie)
	}
	render(w, r, status, views.OrgsPage(p, rows, f))
	return nil
}

func (s *Server) orgRow(r *http.Request, o *tenancy.Organization) (views.OrgRow, error) {
	row := views.OrgRow{Slug: o.Slug, Name: o.Name, Created: formatTime(o.CreatedAt), Href: orgPath(o)}
	tenants, err := s.Orgs.OrgTenants(r.Context(), o.ID)
	if err != nil {
		return row, err
	}
	for _, t := range tenants {
		row.Tenants = append(row.Tenants, views.OrgTenant{Slug: t.Slug, Name: t.Name, Status: string(t.Status), Href: tenantPath(t)})
	}
	return row, nil
}

// handleOrgCreate serves POST /orgs.
func (s *Server) handleOrgCreate(w http.ResponseWriter, r *http.Request) error {
	var in orgForm
	f := parseForm(r, &in)
	o, err := s.Orgs.CreateOrg(r.Context(), strings.TrimSpace(in.Name), strings.TrimSpace(in.Slug))
	switch tenancy.ErrorCode(err) {
	case "":
	case tenancy.EINVALID, tenancy.ECONFLICT:
		fieldError(&f, err)
		return s.renderOrgList(w, r, http.StatusUnprocessableEntity, f)
	default:
		return err
	}
	s.setFlash(w, r, adminCookie, "Organization “"+o.Name+"” created. Add its tenants below.")
	http.Redirect(w, r, orgPath(o), http.StatusSeeOther)
	return nil
}

// handleOrgShow serves GET /orgs/{org}.
func (s *Server) handleOrgShow(w http.ResponseWriter, r *http.Request) error {
	return s.renderOrg(w, r, http.StatusOK, views.Form{}, views.Form{})
}

// renderOrg shows an organization's page with its two forms.
func (s *Server) renderOrg(w http.ResponseWriter, r *http.Request, status int, rename, add views.Form) error {
	ctx := r.Context()
	o, err := s.Orgs.FindOrg(ctx, chi.URLParam(r, "org"))
	if err != nil {
		return err
	}
	row, err := s.orgRow(r, o)
	if err != nil {
		return err
	}
	if rename.Values == nil {
		rename.Values = map[string]string{"name": o.Name}
	}
	d := views.OrgDetail{OrgRow: row, Rename: rename, Add: add}
	in := map[string]bool{}
	for _, t := range row.Tenants {
		in[t.Slug] = true
	}
	tenants, _, err := s.Tenants.ListTenants(ctx, tenancy.TenantFilter{Limit: orgCandidates})
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if !in[t.Slug] {
			d.Candidates = append(d.Candidates, views.Option{Value: t.Slug, Label: t.Name})
		}
	}
	p := s.page(r, o.Name)
	if status == http.StatusOK {
		p.Flash = s.takeFlash(w, r, adminCookie)
	}
	render(w, r, status, views.OrgPage(p, d))
	return nil
}

// handleOrgRename serves POST /orgs/{org}.
func (s *Server) handleOrgRename(w http.ResponseWriter, r *http.Request) error {
	var in orgRenameForm
	f := parseForm(r, &in)
	o, err := s.Orgs.RenameOrg(r.Context(), chi.URLParam(r, "org"), strings.TrimSpace(in.Name))
	if tenancy.ErrorCode(err) == tenancy.EINVALID {
		fieldError(&f, err)
		return s.renderOrg(w, r, http.StatusUnprocessableEntity, f, views.Form{})
	} else if err != nil {
		return err
	}
	s.setFlash(w, r, adminCookie, "Organization renamed “"+o.Name+"”.")
	http.Redirect(w, r, orgPath(o), http.StatusSeeOther)
	return nil
}

// handleOrgAddTenant serves POST /orgs/{org}/tenants. A tenant that cannot
// join (unknown, deleted, already in) is said next to the field.
func (s *Server) handleOrgAddTenant(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	o, err := s.Orgs.FindOrg(ctx, chi.URLParam(r, "org"))
	if err != nil {
		return err
	}
	var in orgTenantForm
	f := parseForm(r, &in)
	ref := strings.TrimSpace(in.Tenant)
	if ref == "" {
		err = tenancy.FieldErrorf(tenancy.EINVALID, "tenant", "Type the slug of the tenant to add.")
	} else {
		err = s.Orgs.AddOrgTenant(ctx, o.ID, ref)
	}
	switch tenancy.ErrorCode(err) {
	case "":
	case tenancy.EINVALID, tenancy.ENOTFOUND, tenancy.ECONFLICT:
		f.Errors["tenant"] = tenancy.ErrorMessage(err)
		return s.renderOrg(w, r, http.StatusUnprocessableEntity, views.Form{}, f)
	default:
		return err
	}
	s.setFlash(w, r, adminCookie, "Tenant "+ref+" added to “"+o.Name+"”.")
	http.Redirect(w, r, orgPath(o), http.StatusSeeOther)
	return nil
}

// handleOrgRemoveTenant serves POST /orgs/{org}/tenants/{ref}/remove.
func (s *Server) handleOrgRemoveTenant(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	o, err := s.Orgs.FindOrg(ctx, chi.URLParam(r, "org"))
	if err != nil {
		return err
	}
	ref := chi.URLParam(r, "ref")
	if err := s.Orgs.RemoveOrgTenant(ctx, o.ID, ref); err != nil {
		return err
	}
	s.setFlash(w, r, adminCookie, "Tenant "+ref+" removed from “"+o.Name+"”; the tenant itself is unchanged.")
	http.Redirect(w, r, orgPath(o), http.StatusSeeOther)
	return nil
}

// handleOrgDeleteForm serves GET /orgs/{org}/delete: the confirmation.
func (s *Server) handleOrgDeleteForm(w http.ResponseWriter, r *http.Request) error {
	o, err := s.Orgs.FindOrg(r.Context(), chi.URLParam(r, "org"))
	if err != nil {
		return err
	}
	row, err := s.orgRow(r, o)
	if err != nil {
		return err
	}
	render(w, r, http.StatusOK, views.DeleteOrgPage(s.page(r, "Delete "+o.Name), row))
	return nil
}

// handleOrgDelete serves POST /orgs/{org}/delete.
func (s *Server) handleOrgDelete(w http.ResponseWriter, r *http.Request) error {
	o, err := s.Orgs.FindOrg(r.Context(), chi.URLParam(r, "org"))
	if err != nil {
		return err
	}
	if err := s.Orgs.DeleteOrg(r.Context(), o.ID); err != nil {
		return err
	}
	s.setFlash(w, r, adminCookie, "Organization “"+o.Name+"” deleted; its tenants are unchanged.")
	http.Redirect(w, r, "/orgs", http.StatusSeeOther)
	return nil
}

// orgPath is an organization's page in the console.
func orgPath(o *tenancy.Organization) string { return "/orgs/" + url.PathEscape(o.Slug) }

// orgForm creates an organization.
type orgForm struct {
	Name string `form:"name"`
	Slug string `form:"slug"`
}

// orgRenameForm renames one.
type orgRenameForm struct {
	Name string `form:"name"`
}

// orgTenantForm adds a tenant to one, by slug.
type orgTenantForm struct {
	Tenant string `form:"tenant"`
}
