package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// svgPolicy is the Content-Security-Policy of a served SVG logo. Uploads
// with script are refused, and this is the second line: opened on its own,
// the image can run nothing, load nothing and is sandboxed from the site.
const svgPolicy = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

// logoServeRoutes serve a tenant's logos. They sit outside the role groups:
// the sign-in page shows the main logo to visitors who are not signed in.
func (s *Server) logoServeRoutes(r chi.Router) {
	if !s.on.logos {
		return
	}
	r.Get("/logo/{kind}", s.h(s.handleLogo))
}

// handleLogo serves GET /logo/{kind}: the logo of the request's tenant, the
// tenant being the one its host names, so no other tenant's logo can be
// asked for. A browser holding the current version gets 304 from the
// cached list, without the bytes being read.
func (s *Server) handleLogo(w http.ResponseWriter, r *http.Request) error {
	t := TenantFrom(r.Context())
	kind, err := tenancy.ParseLogoKind(chi.URLParam(r, "kind"))
	if t == nil || err != nil {
		s.notFound(w, r)
		return nil
	}
	l, err := s.currentLogo(r.Context(), t.ID, kind)
	if err != nil {
		return err
	}
	if l == nil {
		s.notFound(w, r)
		return nil
	}
	etag := `"` + l.SHA256 + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	if l.ContentType == tenancy.TypeSVG {
		h.Set("Content-Security-Policy", svgPolicy)
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	l, data, err := s.Logos.GetLogo(r.Context(), t.ID, kind)
	if err != nil {
		// The error page must not be cached as if it were the logo.
		for _, k := range []string{"ETag", "Cache-Control", "Content-Security-Policy"} {
			h.Del(k)
		}
		return err
	}
	// The list may have been a moment behind the bytes.
	h.Set("ETag", `"`+l.SHA256+`"`)
	h.Set("Content-Type", l.ContentType)
	w.Write(data)
	return nil
}

// currentLogo is the tenant's logo of that kind from the (cached) list, or
// nil when it has none.
func (s *Server) currentLogo(ctx context.Context, tenantID string, kind tenancy.LogoKind) (*tenancy.Logo, error) {
	list, err := s.Logos.ListLogos(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for _, l := range list {
		if l.Kind == kind {
			return l, nil
		}
	}
	return nil, nil
}

// logoURL is the address of the tenant's main logo, versioned by its hash
// so a new logo shows at once; "" when it has none, or it cannot be known,
// and the page then shows the initial rather than fail.
func (s *Server) logoURL(ctx context.Context, t *tenancy.Tenant) string {
	return s.logoURLOf(ctx, t, tenancy.LogoMain)
}

// logoURLOf is the versioned address of a tenant's logo of one kind, or ""
// when it has none. It reads the in-process logo cache, not the database.
func (s *Server) logoURLOf(ctx context.Context, t *tenancy.Tenant, kind tenancy.LogoKind) string {
	if !s.on.logos || t == nil {
		return ""
	}
	l, err := s.currentLogo(ctx, t.ID, kind)
	if err != nil {
		s.Log.Warn("read tenant logos", "tenant", t.Slug, "err", err)
		return ""
	}
	if l == nil {
		return ""
	}
	return "/logo/" + string(kind) + "?v=" + l.SHA256[:16]
}

// logoRoutes are the logos page, for admins.
func (s *Server) logoRoutes(r chi.Router) {
	if !s.on.logos {
		return
	}
	r.Get("/settings/logos", s.h(s.handleLogoList))
	r.Post("/settings/logos", s.h(s.handleLogoUpload))
	r.Post("/settings/logos/{kind}/remove", s.h(s.handleLogoRemove))
}

// logoUploadPath is the one route whose body may exceed the server's
// default limit: a logo of the largest size, and the form around it.
const logoUploadPath = "/settings/logos"

// bodyLimit is how large a request's body may be.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost && r.URL.Path == logoUploadPath {
		return max(s.Config.MaxBodyBytes, int64(tenancy.DefaultLogoLimits.MaxBytes)+64<<10)
	}
	return s.Config.MaxBodyBytes
}

var logoLabels = map[tenancy.LogoKind][2]string{
	tenancy.LogoMain:  {"Main", "Header and sign-in page"},
	tenancy.LogoIcon:  {"Icon", "Browser tab (favicon)"},
	tenancy.LogoEmail: {"Email", "Emails to members"},
	tenancy.LogoDark:  {"Dark", "Main logo on dark backgrounds"},
}

// logosView is the logos page's model for the tenant.
func (s *Server) logosView(r *http.Request, upload views.Form, done string) (views.Logos, error) {
	v := views.Logos{Enabled: true, Upload: upload, Done: done,
		MaxSize:  tenancy.FormatBytes(int64(tenancy.DefaultLogoLimits.MaxBytes)),
		MaxBytes: int64(tenancy.DefaultLogoLimits.MaxBytes)}
	if upload.Values == nil {
		v.Upload = views.Form{Values: map[string]string{"type": string(tenancy.LogoMain)}, Errors: map[string]string{}}
	}
	if !v.Enabled {
		return v, nil
	}
	list, err := s.Logos.ListLogos(r.Context(), TenantFrom(r.Context()).ID)
	if err != nil {
		return v, err
	}
	for _, k := range tenancy.LogoKinds {
		row := views.LogoRow{Kind: string(k), Label: logoLabels[k][0], Hint: logoLabels[k][1]}
		v.Kinds = append(v.Kinds, row)
		for _, l := range list {
			if l.Kind == k {
				row.Present, row.URL = true, "/logo/"+string(k)+"?v="+l.SHA256[:16]
				row.ContentType, row.Size, row.Updated = l.ContentType, tenancy.FormatBytes(l.Size), l.CreatedAt
				row.Dimensions = "scalable"
				if l.Width > 0 && l.Height > 0 {
					row.Dimensions = strconv.Itoa(l.Width) + "×" + strconv.Itoa(l.Height)
				}
			}
		}
		v.Rows = append(v.Rows, row)
	}
	return v, nil
}

// renderLogos answers with the whole page, or only the panel to htmx.
func (s *Server) renderLogos(w http.ResponseWriter, r *http.Request, status int, upload views.Form, done string) error {
	v, err := s.logosView(r, upload, done)
	if err != nil {
		return err
	}
	if r.Header.Get("HX-Request") == "true" {
		render(w, r, status, views.LogoPanel(CSRFFrom(r.Context()), v))
		return nil
	}
	p := s.page(r, "Logos")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.LogosPage(p, v))
	return nil
}

// handleLogoList serves GET /settings/logos.
func (s *Server) handleLogoList(w http.ResponseWriter, r *http.Request) error {
	return s.renderLogos(w, r, http.StatusOK, views.Form{}, "")
}

// logoForm uploads a logo: its type, and the file, which is read as a
// file rather than a value.
type logoForm struct {
	Type string `form:"type"`
	File string `form:"file"`
}

// handleLogoUpload serves POST /settings/logos: a multipart form with the
// type and the file.
func (s *Server) handleLogoUpload(w http.ResponseWriter, r *http.Request) error {
	var in logoForm
	f := formView(&in)
	invalid := func(field, msg string) error {
		setFieldError(&f, field, msg)
		return s.renderLogos(w, r, http.StatusUnprocessableEntity, f, "")
	}
	// Parts beyond 1 MB go to a temporary file; the body is bounded by
	// bodyLimit.
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return invalid("file", "The file is larger than "+tenancy.FormatBytes(int64(tenancy.DefaultLogoLimits.MaxBytes))+", the most a logo may be.")
		}
		return invalid("file", "The upload could not be read; try again.")
	}
	defer r.MultipartForm.RemoveAll()
	f = parseForm(r, &in)
	kind, err := tenancy.ParseLogoKind(in.Type)
	if err != nil {
		fieldError(&f, err)
		return s.renderLogos(w, r, http.StatusUnprocessableEntity, f, "")
	}
	file, _, err := r.FormFile("file")
	if err != nil {
		return invalid("file", "Choose an image to upload.")
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, int64(tenancy.DefaultLogoLimits.MaxBytes)+1))
	if err != nil {
		return err
	}
	t := TenantFrom(r.Context())
	l, err := s.Logos.UploadLogo(r.Context(), t.ID, kind, data)
	if tenancy.ErrorCode(err) == tenancy.EINVALID {
		fieldError(&f, err)
		return s.renderLogos(w, r, http.StatusUnprocessableEntity, f, "")
	}
	if err != nil {
		return err
	}
	done := logoLabels[l.Kind][0] + " logo uploaded."
	if r.Header.Get("HX-Request") == "true" {
		return s.renderLogos(w, r, http.StatusOK, views.Form{}, done)
	}
	s.setFlash(w, r, tenantCookie, done)
	http.Redirect(w, r, "/settings/logos", http.StatusSeeOther)
	return nil
}

// handleLogoRemove serves POST /settings/logos/{kind}/remove.
func (s *Server) handleLogoRemove(w http.ResponseWriter, r *http.Request) error {
	kind, err := tenancy.ParseLogoKind(chi.URLParam(r, "kind"))
	if err != nil {
		return tenancy.Errorf(tenancy.ENOTFOUND, "no such logo type")
	}
	l, err := s.Logos.RemoveLogo(r.Context(), TenantFrom(r.Context()).ID, kind)
	if err != nil {
		return err
	}
	done := logoLabels[l.Kind][0] + " logo removed."
	if r.Header.Get("HX-Request") == "true" {
		return s.renderLogos(w, r, http.StatusOK, views.Form{}, done)
	}
	s.setFlash(w, r, tenantCookie, done)
	http.Redirect(w, r, "/settings/logos", http.StatusSeeOther)
	return nil
}
