package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

func (s *Server) emailTemplateRoutes(r chi.Router) {
	r.Get("/settings/emails", s.h(s.handleEmailTemplateList))
	r.Get("/settings/emails/{name}", s.h(s.handleEmailTemplateEdit))
	r.Post("/settings/emails/{name}", s.h(s.handleEmailTemplateSave))
	r.Post("/settings/emails/{name}/reset", s.h(s.handleEmailTemplateReset))
	r.Post("/settings/emails/{name}/preview", s.h(s.handleEmailTemplatePreview))
	r.Get("/settings/emails/{name}/preview.html", s.h(s.handleEmailTemplatePreviewHTML))
	r.Post("/settings/emails/{name}/test", s.h(s.handleEmailTemplateTest))
}

// emailTitles name the emails for people.
var emailTitles = map[string]string{
	"welcome": "Welcome", "invitation": "Invitation", "password_reset": "Password reset", "password_set": "Choose a password",
	"payment_failed": "Payment failed", "quota_warning": "Quota warning",
}

// emailTemplateName is the {name} of an email template route, checked.
func emailTemplateName(r *http.Request) (string, error) {
	name := chi.URLParam(r, "name")
	return name, tenancy.CheckEmailTemplateName(name)
}

// emailTemplateService is the service, or a clear error when the server
// keeps no templates.
func (s *Server) emailTemplateService() (tenancy.EmailTemplateService, error) {
	return s.EmailTemplates, nil
}

// handleEmailTemplateList serves GET /settings/emails.
func (s *Server) handleEmailTemplateList(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.emailTemplateService()
	if err != nil {
		return err
	}
	list, err := svc.List(r.Context(), TenantFrom(r.Context()).ID)
	if err != nil {
		return err
	}
	actor := tenancy.MemberActor(IdentityFrom(r.Context()).Role)
	rows := make([]views.EmailTemplateRow, 0, len(list))
	for _, e := range list {
		rows = append(rows, views.EmailTemplateRow{Name: e.Name, Title: emailTitles[e.Name], Subject: e.Subject, Customized: e.Customized, UpdatedAt: e.UpdatedAt,
			OwnersOnly: tenancy.CarriesSecretLink(e.Name), ReadOnly: tenancy.CheckEmailTemplateEdit(actor, e.Name) != nil})
	}
	render(w, r, http.StatusOK, views.EmailTemplatesPage(s.page(r, "Email templates"), rows))
	return nil
}

// emailTemplateForm is an email template's form; its live preview posts
// it too.
type emailTemplateForm struct {
	Subject string `form:"subject"`
	HTML    string `form:"html"`
}

// renderEmailEditor renders the editor with the form's values, saved or
// not, and their preview.
func (s *Server) renderEmailEditor(w http.ResponseWriter, r *http.Request, status int, name string, customized bool, in emailTemplateForm, f views.Form) {
	e := views.EmailTemplateEditor{
		Name: name, Title: emailTitles[name], Customized: customized, Variables: tenancy.TemplateVariables, Form: f,
		Preview: s.emailPreview(r, name, in.Subject, in.HTML),
	}
	if tenancy.CarriesSecretLink(name) {
		e.SecretLink = tenancy.SecretLinkReason(name)
	}
	// Whoever may not change the email sees it, and why, without the
	// buttons that would be refused.
	if err := tenancy.CheckEmailTemplateEdit(tenancy.MemberActor(IdentityFrom(r.Context()).Role), name); err != nil {
		e.ReadOnly = tenancy.ErrorMessage(err) + "."
	}
	e.TestTo = IdentityFrom(r.Context()).User.Email
	p := s.page(r, e.Title+" email")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.EmailTemplateEditPage(p, e))
}

// handleEmailTemplateEdit serves GET /settings/emails/{name}.
func (s *Server) handleEmailTemplateEdit(w http.ResponseWriter, r *http.Request) error {
	name, err := emailTemplateName(r)
	if err != nil {
		return err
	}
	svc, err := s.emailTemplateService()
	if err != nil {
		return err
	}
	e, err := svc.Get(r.Context(), TenantFrom(r.Context()).ID, name)
	if err != nil {
		return err
	}
	in := emailTemplateForm{Subject: e.Subject, HTML: e.HTML}
	s.renderEmailEditor(w, r, http.StatusOK, name, e.Customized, in, formView(&in))
	return nil
}

// handleEmailTemplateSave serves POST /settings/emails/{name}.
func (s *Server) handleEmailTemplateSave(w http.ResponseWriter, r *http.Request) error {
	name, err := emailTemplateName(r)
	if err != nil {
		return err
	}
	svc, err := s.emailTemplateService()
	if err != nil {
		return err
	}
	ctx := r.Context()
	t := TenantFrom(ctx)
	var in emailTemplateForm
	f := parseForm(r, &in)
	if _, err := svc.Customize(ctx, t.ID, name, in.Subject, in.HTML, "", tenancy.MemberActor(IdentityFrom(ctx).Role)); err != nil {
		if tenancy.ErrorCode(err) != tenancy.EINVALID {
			return err
		}
		fieldError(&f, err)
		cur, err := svc.Get(ctx, t.ID, name)
		if err != nil {
			return err
		}
		s.renderEmailEditor(w, r, http.StatusUnprocessableEntity, name, cur.Customized, in, f)
		return nil
	}
	s.setFlash(w, r, tenantCookie, "The “"+emailTitles[name]+"” email is saved.")
	http.Redirect(w, r, "/settings/emails/"+name, http.StatusSeeOther)
	return nil
}

// handleEmailTemplateReset serves POST /settings/emails/{name}/reset.
func (s *Server) handleEmailTemplateReset(w http.ResponseWriter, r *http.Request) error {
	name, err := emailTemplateName(r)
	if err != nil {
		return err
	}
	svc, err := s.emailTemplateService()
	if err != nil {
		return err
	}
	if _, err := svc.Reset(r.Context(), TenantFrom(r.Context()).ID, name, tenancy.MemberActor(IdentityFrom(r.Context()).Role)); err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, "The “"+emailTitles[name]+"” email is the default again.")
	http.Redirect(w, r, "/settings/emails/"+name, http.StatusSeeOther)
	return nil
}

// emailPreview renders unsaved values as the tenant's mail looks, with
// sample people, through the composer real mail goes through. The frame
// gets the draft in its address, sealed (see preview.go), and renders it
// again the same way, on whichever server process it reaches.
func (s *Server) emailPreview(r *http.Request, name, subject, html string) views.EmailPreview {
	t := TenantFrom(r.Context())
	d := previewDraft{Surface: "email:" + name, Draft: true, Subject: subject, HTML: html}
	msg, err := s.previewEmail(r, name, d)
	if err != nil {
		return views.EmailPreview{Error: previewFieldLabels[fieldOf(err)] + tenancy.ErrorMessage(err)}
	}
	token, err := s.sealPreview(t.ID, d)
	if err != nil {
		return views.EmailPreview{Subject: msg.Subject, Error: tenancy.ErrorMessage(err)}
	}
	return views.EmailPreview{Subject: msg.Subject, FrameURL: "/settings/emails/" + name + "/preview.html?d=" + token}
}

var previewFieldLabels = map[string]string{"subject": "Subject: ", "html": "HTML body: "}

func fieldOf(err error) string {
	var e *tenancy.Error
	if asDomain(err, &e) {
		return e.Field
	}
	return ""
}

// handleEmailTemplatePreview serves POST /settings/emails/{name}/preview:
// the live preview's partial, from the unsaved form.
func (s *Server) handleEmailTemplatePreview(w http.ResponseWriter, r *http.Request) error {
	name, err := emailTemplateName(r)
	if err != nil {
		return err
	}
	var in emailTemplateForm
	parseForm(r, &in)
	render(w, r, http.StatusOK, views.EmailPreviewPane(s.emailPreview(r, name, in.Subject, in.HTML)))
	return nil
}

// handleEmailTemplatePreviewHTML serves GET
// /settings/emails/{name}/preview.html?d=: the sealed draft's HTML body,
// rendered again, for the preview frame, under previewPolicy.
func (s *Server) handleEmailTemplatePreviewHTML(w http.ResponseWriter, r *http.Request) error {
	name, err := emailTemplateName(r)
	if err != nil {
		return err
	}
	d, err := s.openPreview(TenantFrom(r.Context()).ID, r.URL.Query().Get("d"))
	if err != nil {
		return err
	}
	if d.Surface != "email:"+name {
		return errPreviewExpired
	}
	msg, err := s.previewEmail(r, name, d)
	if err != nil {
		return err
	}
	writePreviewEmail(w, msg)
	return nil
}

// handleEmailTemplateTest serves POST /settings/emails/{name}/test: the
// saved email goes to the person asking, through the outbox, composed as
// real mail is.
func (s *Server) handleEmailTemplateTest(w http.ResponseWriter, r *http.Request) error {
	name, err := emailTemplateName(r)
	if err != nil {
		return err
	}
	svc, err := s.emailTemplateService()
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := IdentityFrom(ctx)
	if err := svc.SendTest(ctx, TenantFrom(ctx).ID, name, id.User.Email, id.User.Name); err != nil {
		if tenancy.ErrorCode(err) != tenancy.EQUOTA {
			return err
		}
		cur, gerr := svc.Get(ctx, TenantFrom(ctx).ID, name)
		if gerr != nil {
			return gerr
		}
		in := emailTemplateForm{Subject: cur.Subject, HTML: cur.HTML}
		f := formView(&in)
		f.Errors["test"] = tenancy.ErrorMessage(err) + "."
		s.renderEmailEditor(w, r, http.StatusTooManyRequests, name, cur.Customized, in, f)
		return nil
	}
	s.setFlash(w, r, tenantCookie, "A test of the “"+emailTitles[name]+"” email, as saved, is on its way to "+id.User.Email+".")
	http.Redirect(w, r, "/settings/emails/"+name, http.StatusSeeOther)
	return nil
}
