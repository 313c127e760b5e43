package web

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

func (s *Server) brandingRoutes(r chi.Router) {
	r.Get("/settings/branding", s.h(s.handleBranding))
	r.Post("/settings/branding/brand", s.h(s.handleBrandSave))
	r.Post("/settings/branding/preview", s.h(s.handleBrandingPreview))
	r.Get("/settings/branding/preview.html", s.h(s.handleBrandingPreviewHTML))
	r.Post("/settings/branding/themes", s.h(s.handleThemeCreate))
	r.Post("/settings/branding/themes/{id}/activate", s.h(s.handleThemeActivate))
	r.Post("/settings/branding/themes/{id}/delete", s.h(s.handleThemeDelete))
	r.Post("/settings/branding/settings", s.h(s.handleSettingSave))
}

// previewKeys are the query parameters of a preview, one per palette color.
var previewKeys = []string{"primary", "secondary", "accent", "background", "text"}

// previewPalette is base with each color q sets and that validates.
func previewPalette(q url.Values, base tenancy.Palette) tenancy.Palette {
	for i, dst := range []*string{&base.Primary, &base.Secondary, &base.Accent, &base.Background, &base.Text} {
		if c, err := tenancy.ParseColor(previewKeys[i], q.Get(previewKeys[i])); err == nil {
			*dst = c
		}
	}
	return base
}

// brandFields are the brand form's fields; themeFields the theme form's.
var (
	brandFields = []string{"primary_color", "secondary_color", "accent_color"}
	themeFields = []string{"name", "primary", "secondary", "background", "text"}
)

// renderBranding renders the branding page with the forms given (a zero
// form is filled from what is stored).
func (s *Server) renderBranding(w http.ResponseWriter, r *http.Request, status int, m views.Branding) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	b, err := s.Branding.Brand(ctx, t.ID)
	if err != nil {
		return err
	}
	if m.Brand.Values == nil {
		m.Brand = views.Form{Values: map[string]string{"primary_color": b.Primary, "secondary_color": b.Secondary, "accent_color": b.Accent}, Errors: map[string]string{}}
	}
	themes, err := s.Branding.ListThemes(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, th := range themes {
		m.Themes = append(m.Themes, views.ThemeRow{ID: th.ID, Name: th.Name, Primary: th.Primary, Secondary: th.Secondary,
			Background: th.Background, Text: th.Text, Active: th.Active, Contrast: tenancy.FormatRatio(th.TextContrast()),
			AA: th.TextContrast() >= tenancy.AAContrast})
	}
	if m.Theme.Values == nil {
		m.Theme = views.Form{Values: map[string]string{"primary": "#4f46e5", "secondary": "#1e293b", "background": "#ffffff", "text": "#1f2430"}, Errors: map[string]string{}}
	}
	settings, err := s.Branding.ListSettings(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, st := range settings {
		m.Settings = append(m.Settings, views.SettingRow{Key: st.Key, Value: st.Value})
	}
	if m.Setting.Values == nil {
		m.Setting = views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	for _, k := range tenancy.KnownSettings() {
		m.KnownKeys = append(m.KnownKeys, k[0])
	}
	m.Preview = s.brandingPreview(r, m.Brand.Values)
	p := s.page(r, "Branding")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.BrandingPage(p, m))
	return nil
}

// handleBranding serves GET /settings/branding.
func (s *Server) handleBranding(w http.ResponseWriter, r *http.Request) error {
	return s.renderBranding(w, r, http.StatusOK, views.Branding{})
}

// handleBrandSave serves POST /settings/branding/brand: nothing is saved
// unless every color validates; an empty field removes that color.
func (s *Server) handleBrandSave(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f := formOf(r, brandFields...)
	var u tenancy.BrandUpdate
	for i, dst := range []**string{&u.Primary, &u.Secondary, &u.Accent} {
		v := f.Values[brandFields[i]]
		if v != "" {
			if _, err := tenancy.ParseColor(brandFields[i], v); err != nil {
				fieldError(&f, err)
				continue
			}
		}
		*dst = &v
	}
	if len(f.Errors) > 0 {
		return s.renderBranding(w, r, http.StatusUnprocessableEntity, views.Branding{Brand: f})
	}
	if _, err := s.Branding.SetBrand(ctx, TenantFrom(ctx).ID, u); err != nil {
		if tenancy.ErrorCode(err) == tenancy.EINVALID {
			fieldError(&f, err)
			return s.renderBranding(w, r, http.StatusUnprocessableEntity, views.Branding{Brand: f})
		}
		return err
	}
	return s.backToBranding(w, r, "Brand colors saved.")
}

func (s *Server) backToBranding(w http.ResponseWriter, r *http.Request, flash string) error {
	s.setFlash(w, r, tenantCookie, flash)
	http.Redirect(w, r, "/settings/branding", http.StatusSeeOther)
	return nil
}

// brandingPreview is the preview of the sign-in page with the unsaved
// values of a form: brand colors (primary_color…) or a theme's (primary,
// background…). Invalid values are named and left out.
func (s *Server) brandingPreview(r *http.Request, values map[string]string) views.BrandingPreview {
	v := views.BrandingPreview{}
	q := url.Values{"preview": {"1"}}
	pairs := [][2]string{
		{"primary_color", "primary"}, {"secondary_color", "secondary"}, {"accent_color", "accent"},
		{"primary", "primary"}, {"secondary", "secondary"}, {"background", "background"}, {"text", "text"},
	}
	for _, p := range pairs {
		raw, ok := values[p[0]]
		if !ok || raw == "" {
			continue
		}
		c, err := tenancy.ParseColor(p[0], raw)
		if err != nil {
			v.Errors = append(v.Errors, tenancy.ErrorMessage(err))
			continue
		}
		q.Set(p[1], c)
	}
	base := tenancy.DefaultPalette
	if l := s.look(r.Context(), TenantFrom(r.Context())); l != nil {
		base = l.Palette
	}
	pal := previewPalette(q, base)
	ratio := tenancy.ContrastRatio(pal.Text, pal.Background)
	v.Contrast, v.AA = tenancy.FormatRatio(ratio), ratio >= tenancy.AAContrast
	v.FrameURL = "/settings/branding/preview.html?" + q.Encode()
	return v
}

// handleBrandingPreview serves POST /settings/branding/preview: the live
// preview's partial, from the unsaved form. It saves nothing.
func (s *Server) handleBrandingPreview(w http.ResponseWriter, r *http.Request) error {
	r.ParseForm()
	values := map[string]string{}
	for k := range r.PostForm {
		values[k] = r.PostForm.Get(k)
	}
	render(w, r, http.StatusOK, views.BrandingPreviewPane(s.brandingPreview(r, values)))
	return nil
}

// handleBrandingPreviewHTML serves GET /settings/branding/preview.html:
// the sign-in page as a visitor would see it with the colors in the query,
// for the sandboxed preview frame. Its stylesheet is /brand.css with the
// same colors, each validated again there.
func (s *Server) handleBrandingPreviewHTML(w http.ResponseWriter, r *http.Request) error {
	p := s.page(r, "Sign in")
	p.UserEmail, p.Role, p.SignOutURL, p.Nav, p.CSRF = "", "", "", nil, ""
	q := url.Values{"preview": {"1"}}
	for _, k := range previewKeys {
		if c, err := tenancy.ParseColor(k, r.URL.Query().Get(k)); err == nil {
			q.Set(k, c)
		}
	}
	p.Brand.StyleURL = "/brand.css?" + q.Encode()
	h := w.Header()
	h.Set("Content-Security-Policy", signInPreviewPolicy)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	render(w, r, http.StatusOK, views.SignIn(p, views.Form{}, "/signin"))
	return nil
}

// handleThemeCreate serves POST /settings/branding/themes.
func (s *Server) handleThemeCreate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f := formOf(r, themeFields...)
	th, err := s.Branding.CreateTheme(ctx, TenantFrom(ctx).ID, tenancy.NewTheme{Name: f.Values["name"],
		Primary: f.Values["primary"], Secondary: f.Values["secondary"], Background: f.Values["background"], Text: f.Values["text"]})
	if err != nil {
		if code := tenancy.ErrorCode(err); code == tenancy.EINVALID || code == tenancy.ECONFLICT {
			fieldError(&f, err)
			return s.renderBranding(w, r, http.StatusUnprocessableEntity, views.Branding{Theme: f})
		}
		return err
	}
	return s.backToBranding(w, r, "Theme "+th.Name+" created.")
}

// handleThemeActivate serves POST /settings/branding/themes/{id}/activate.
func (s *Server) handleThemeActivate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	th, err := s.Branding.ActivateTheme(ctx, TenantFrom(ctx).ID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return s.backToBranding(w, r, "Theme "+th.Name+" is now active.")
}

// handleThemeDelete serves POST /settings/branding/themes/{id}/delete.
func (s *Server) handleThemeDelete(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	th, err := s.Branding.DeleteTheme(ctx, TenantFrom(ctx).ID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return s.backToBranding(w, r, "Theme "+th.Name+" deleted.")
}

// handleSettingSave serves POST /settings/branding/settings: one setting,
// checked against its key's rules; an empty value removes it.
func (s *Server) handleSettingSave(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f := formOf(r, "key", "value")
	var err error
	if f.Values["value"] == "" {
		err = s.Branding.DeleteSetting(ctx, TenantFrom(ctx).ID, f.Values["key"])
	} else {
		_, err = s.Branding.SetSetting(ctx, TenantFrom(ctx).ID, f.Values["key"], f.Values["value"])
	}
	if err != nil {
		if code := tenancy.ErrorCode(err); code == tenancy.EINVALID || code == tenancy.ENOTFOUND {
			// A setting's errors name its key; show them at the value.
			if e := (*tenancy.Error)(nil); asDomain(err, &e) && e.Field != "key" {
				f.Errors["value"] = e.Message
			} else {
				fieldError(&f, err)
			}
			return s.renderBranding(w, r, http.StatusUnprocessableEntity, views.Branding{Setting: f})
		}
		return err
	}
	return s.backToBranding(w, r, "Setting "+f.Values["key"]+" saved.")
}
