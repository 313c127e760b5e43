package web

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

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
	render(w, r, status, views.EmailTemplateEditPage(s.page(r, e.Title+" email"), e))
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
// sample people, through the composer real mail goes through. The HTML
// body, which may be larger than an address can carry, waits in
// previewDrafts for the frame to fetch it.
func (s *Server) emailPreview(r *http.Request, name, subject, html string) views.EmailPreview {
	t := TenantFrom(r.Context())
	tpl := tenancy.EmailTemplate{Name: name, Subject: subject, HTML: html}
	if err := tenancy.ValidateEmailTemplate(tpl); err != nil {
		return views.EmailPreview{Error: previewFieldLabels[fieldOf(err)] + tenancy.ErrorMessage(err)}
	}
	msg, err := s.Mail.Sample(r.Context(), t, &tpl, "")
	if err != nil {
		return views.EmailPreview{Error: tenancy.ErrorMessage(err)}
	}
	key := previewDrafts.put(t.ID, msg.HTML)
	return views.EmailPreview{Subject: msg.Subject, FrameURL: "/settings/emails/" + name + "/preview.html?draft=" + key}
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
// /settings/emails/{name}/preview.html: a previewed HTML body, for the
// preview frame, under previewPolicy.
func (s *Server) handleEmailTemplatePreviewHTML(w http.ResponseWriter, r *http.Request) error {
	if _, err := emailTemplateName(r); err != nil {
		return err
	}
	body, ok := previewDrafts.get(TenantFrom(r.Context()).ID, r.URL.Query().Get("draft"))
	if !ok {
		return tenancy.Errorf(tenancy.ENOTFOUND, "the preview has expired: edit the template to see it again")
	}
	h := w.Header()
	h.Set("Content-Security-Policy", previewPolicy)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.Write([]byte(body))
	return nil
}

// draftStore keeps rendered previews for a few minutes, for the frame's
// request that follows the preview's. Each belongs to one tenant. It is
// bounded three ways, each O(1) per preview: drafts are dropped oldest
// first (a queue in insertion order, which is also expiry order), a tenant
// keeps at most maxTenantDrafts (so one tenant cannot push out the others'),
// and all drafts together hold at most maxDraftBytes, counting a fixed
// overhead per draft.
type draftStore struct {
	mu       sync.Mutex
	drafts   map[string]draft
	order    []string       // keys, oldest first
	byTenant map[string]int // drafts per tenant
	size     int
}

type draft struct {
	tenantID string
	html     string
	expires  time.Time
}

const (
	draftTTL        = 10 * time.Minute
	maxDraftBytes   = 64 << 20
	maxTenantDrafts = 50
	draftOverhead   = 256
)

var previewDrafts = newDraftStore()

func newDraftStore() *draftStore {
	return &draftStore{drafts: map[string]draft{}, byTenant: map[string]int{}}
}

func (d *draftStore) put(tenantID, html string) string {
	b := make([]byte, 18)
	rand.Read(b)
	key := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	// Expired drafts and, over a bound, the oldest ones go first. A tenant
	// over its own cap loses its oldest draft, wherever it is in the queue.
	for len(d.order) > 0 {
		oldest, ok := d.drafts[d.order[0]]
		if ok && now.Before(oldest.expires) && d.size+len(html)+draftOverhead <= maxDraftBytes {
			break
		}
		d.drop(0)
	}
	if d.byTenant[tenantID] >= maxTenantDrafts {
		for i, k := range d.order {
			if d.drafts[k].tenantID == tenantID {
				d.drop(i)
				break
			}
		}
	}
	d.drafts[key] = draft{tenantID: tenantID, html: html, expires: now.Add(draftTTL)}
	d.order = append(d.order, key)
	d.byTenant[tenantID]++
	d.size += len(html) + draftOverhead
	return key
}

// drop removes the draft at position i of the queue.
func (d *draftStore) drop(i int) {
	k := d.order[i]
	d.order = append(d.order[:i], d.order[i+1:]...)
	if v, ok := d.drafts[k]; ok {
		d.size -= len(v.html) + draftOverhead
		if d.byTenant[v.tenantID]--; d.byTenant[v.tenantID] <= 0 {
			delete(d.byTenant, v.tenantID)
		}
		delete(d.drafts, k)
	}
}

func (d *draftStore) get(tenantID, key string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.drafts[key]
	if !ok || v.tenantID != tenantID || time.Now().After(v.expires) {
		return "", false
	}
	return v.html, true
}
