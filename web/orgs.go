package web

import (
	"net/http"

	"github.com/nself/nself/views"
)

// handleOrgList serves GET /orgs on the admin host: organizations and the
// tenants each holds.
func (s *Server) handleOrgList(w http.ResponseWriter, r *http.Request) error {
	var rows []views.OrgRow
	orgs, err := s.Orgs.ListOrgs(r.Context())
	if err != nil {
		return err
	}
	for _, o := range orgs {
		row := views.OrgRow{Slug: o.Slug, Name: o.Name, Created: formatTime(o.CreatedAt)}
		tenants, err := s.Orgs.OrgTenants(r.Context(), o.ID)
		if err != nil {
			return err
		}
		for _, t := range tenants {
			row.Tenants = append(row.Tenants, views.OrgTenant{Slug: t.Slug, Name: t.Name, Status: string(t.Status), Href: tenantPath(t)})
		}
		rows = append(rows, row)
	}
	render(w, r, http.StatusOK, views.OrgsPage(s.page(r, "Organizations"), rows))
	return nil
}
