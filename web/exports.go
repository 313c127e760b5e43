package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// exportRoutes are the data export page, for owners: an export holds every
// member's data, so only those who own the workspace may take it away.
func (s *Server) exportRoutes(r chi.Router) {
	if !s.on.exports {
		return
	}
	r.Get("/settings/export", s.h(s.handleExportPage))
	r.Post("/settings/export", s.h(s.handleExportStart))
	r.Get("/settings/export/{id}", s.h(s.handleExportStatus))
	r.Get("/settings/export/{id}/download", s.h(s.handleExportDownload))
}

// exportView is the page's model for a job (nil when there is none).
func (s *Server) exportView(j *tenancy.ExportJob, msg string) views.Export {
	v := views.Export{Enabled: true, Message: msg}
	if j == nil {
		return v
	}
	p := j.Progress
	v.Job = &views.ExportJob{
		ID: j.ID, State: string(j.StateAt(time.Now())), Failure: j.Failure, Created: j.CreatedAt,
		Rows: p.RowsDone, RowsTotal: p.Rows, Objects: p.ObjectsDone, ObjectsTotal: p.Objects,
		Size: tenancy.FormatBytes(j.Size), ExpiresAt: j.ExpiresAt,
	}
	if total := p.Rows + int64(p.Objects); total > 0 {
		v.Job.Percent = int(100 * (p.RowsDone + int64(p.ObjectsDone)) / total)
	}
	if v.Job.State == string(tenancy.ExportReady) {
		v.Job.DownloadURL = "/settings/export/" + j.ID + "/download"
	}
	return v
}

// renderExport answers with the page, or only the panel to htmx.
func (s *Server) renderExport(w http.ResponseWriter, r *http.Request, status int, j *tenancy.ExportJob, msg string) error {
	v := s.exportView(j, msg)
	if partialSwap(w, r) {
		render(w, r, status, views.ExportPanel(CSRFFrom(r.Context()), v))
		return nil
	}
	p := s.page(r, "Data export")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.ExportPage(p, v))
	return nil
}

// handleExportPage serves GET /settings/export: the owner's latest export.
func (s *Server) handleExportPage(w http.ResponseWriter, r *http.Request) error {
	j, err := s.Exports.LatestExport(r.Context(), TenantFrom(r.Context()).ID, IdentityFrom(r.Context()).User.ID)
	if err != nil {
		return err
	}
	return s.renderExport(w, r, http.StatusOK, j, "")
}

// handleExportStart serves POST /settings/export: starts an export, unless
// one is running for the workspace.
func (s *Server) handleExportStart(w http.ResponseWriter, r *http.Request) error {
	t, id := TenantFrom(r.Context()), IdentityFrom(r.Context())
	j, err := s.Exports.StartExport(r.Context(), t.ID, id.User.ID)
	// One running already, or no storage left for another archive: the
	// page says so next to the latest export.
	if code := tenancy.ErrorCode(err); code == tenancy.ECONFLICT || code == tenancy.EQUOTA {
		latest, lerr := s.Exports.LatestExport(r.Context(), t.ID, id.User.ID)
		if lerr != nil {
			return lerr
		}
		return s.renderExport(w, r, statusOf(code), latest, tenancy.ErrorMessage(err))
	}
	if err != nil {
		return err
	}
	if r.Header.Get("HX-Request") != "true" {
		http.Redirect(w, r, "/settings/export", http.StatusSeeOther)
		return nil
	}
	return s.renderExport(w, r, http.StatusOK, j, "")
}

// handleExportStatus serves GET /settings/export/{id}: the panel of one
// job, which htmx polls while it runs.
func (s *Server) handleExportStatus(w http.ResponseWriter, r *http.Request) error {
	j, err := s.Exports.GetExport(r.Context(), TenantFrom(r.Context()).ID, IdentityFrom(r.Context()).User.ID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return s.renderExport(w, r, http.StatusOK, j, "")
}

// handleExportDownload serves GET /settings/export/{id}/download: the
// archive, to the owner who requested it, until it expires. Anyone else,
// in this workspace or another, finds nothing there.
func (s *Server) handleExportDownload(w http.ResponseWriter, r *http.Request) error {
	t := TenantFrom(r.Context())
	j, body, err := s.Exports.OpenExport(r.Context(), t.ID, IdentityFrom(r.Context()).User.ID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	defer body.Close()
	name := fmt.Sprintf("%s-data-export-%s.tar.gz", t.Slug, j.CreatedAt.UTC().Format("2006-01-02"))
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.FormatInt(j.Size, 10))
	h.Set("Cache-Control", "private, no-store")
	// An archive may take longer to send than the server's write timeout
	// allows a page.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour))
	if _, err := io.Copy(w, body); err != nil {
		// The headers are gone; the client sees a short body.
		noteError(r.Context(), err)
	}
	return nil
}
