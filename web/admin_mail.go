package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// mailListLimit is how many undelivered mails the console lists.
const mailListLimit = 200

// mailRoutes are the console's view of the mail outbox, there when the
// server has one.
func (s *Server) mailRoutes(r chi.Router) {
	if !s.on.mail {
		return
	}
	r.Get("/mail", s.h(s.handleMailList))
	r.Post("/mail/{tenant}/{id}/retry", s.h(s.handleMailRetry))
}

// handleMailList serves GET /mail: the mail not delivered, newest first.
func (s *Server) handleMailList(w http.ResponseWriter, r *http.Request) error {
	mails, total, err := s.Outbox.List(r.Context(), tenancy.MailFilter{Undelivered: true, Limit: mailListLimit})
	if err != nil {
		return err
	}
	m := views.MailOutbox{Total: total, Limit: mailListLimit}
	for _, ml := range mails {
		row := views.MailRow{
			Tenant: ml.TenantSlug, TenantHref: "/tenants/" + url.PathEscape(ml.TenantSlug),
			Template: ml.Template, To: ml.To, Subject: ml.Subject, State: string(ml.State()),
			Attempts: strconv.Itoa(ml.Attempts), LastError: ml.LastError, Created: formatTime(ml.CreatedAt),
			RetryURL: "/mail/" + url.PathEscape(ml.TenantID) + "/" + url.PathEscape(ml.ID) + "/retry",
		}
		if ml.FailedAt == nil {
			row.Next = formatTime(ml.NextAttemptAt)
		}
		m.Rows = append(m.Rows, row)
	}
	p := s.page(r, "Undelivered mail")
	p.Flash = s.takeFlash(w, r, adminCookie)
	render(w, r, http.StatusOK, views.MailOutboxPage(p, m))
	return nil
}

// handleMailRetry serves POST /mail/{tenant}/{id}/retry: the mail is due
// now, its attempts counted anew.
func (s *Server) handleMailRetry(w http.ResponseWriter, r *http.Request) error {
	m, err := s.Outbox.Retry(r.Context(), chi.URLParam(r, "tenant"), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	s.setFlash(w, r, adminCookie, "The "+m.Template+" mail to "+m.To+" is sent again.")
	http.Redirect(w, r, "/mail", http.StatusSeeOther)
	return nil
}
