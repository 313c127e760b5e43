package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

func (s *Server) brandingRoutes(r chi.Router) {
	r.Get("/settings/branding", s.h(s.handleBranding))
	r.Post("/settings/branding/brand", s.h(s.handleBrandSave))
	r.Post("/settings/branding/preview", s.h(s.handleBrandingPreview))
	r.Get("/settings/branding/preview", s.h(s.handleThemePreview))
	r.Get("/settings/branding/preview.html", s.h(s.handleBrandingPreviewHTML))
	r.Get("/settings/branding/themes/new", s.h(s.handleThemeNew))
	r.Post("/settings/branding/themes", s.h(s.handleThemeCreate))
	r.Get("/settings/branding/themes/{id}/edit", s.h(s.handleThemeEdit))
	r.Post("/settings/branding/themes/{id}", s.h(s.handleThemeUpdate))
	r.Post("/settings/branding/themes/{id}/activate", s.h(s.handleThemeActivate))
	r.Post("/settings/branding/themes/{id}/deactivate", s.h(s.handleThemeDeactivate))
	r.Post("/settings/branding/themes/{id}/delete", s.h(s.handleThemeDelete))
	r.Post("/settings/branding/settings", s.h(s.handleSettingSave))
}

// previewKeys are the query parameters of a preview, one per palette color.
var previewKeys = tenancy.PaletteFields()

// previewPalette is base with each color q sets and that validates.
func previewPalette(q url.Values, base tenancy.Palette) tenancy.Palette {
	for i, dst := range []*string{&base.Primary, &base.Secondary, &base.Accent, &base.Background, &base.Text} {
		if c, err := tenancy.ParseColor(previewKeys[i], q.Get(previewKeys[i])); err == nil {
			*dst = c
		}
	}
	return base
}

// The brand form's color fields, and the theme form's, each with the
// palette color it sets, its label and what the portal uses it for.
type colorSpec struct{ name, color, label, use string }

var (
	brandColors = []colorSpec{
		{"primary_color", "primary", "Primary", "Buttons, links and the brand mark."},
		{"secondary_color", "secondary", "Secondary", "The menu and the company name."},
		{"accent_color", "accent", "Accent", "The focus ring around the control in use."},
	}
	themeColors = []colorSpec{
		{"primary", "primary", "Primary", "Buttons, links and the brand mark."},
		{"secondary", "secondary", "Secondary", "The menu and the company name."},
		{"background", "background", "Background", "Behind everything; cards stay white on a light background."},
		{"text", "text", "Text", "Body text."},
	}
)

// brandForm is the brand colors' form; an empty color removes it.
type brandForm struct {
	PrimaryColor   string `form:"primary_color"`
	SecondaryColor string `form:"secondary_color"`
	AccentColor    string `form:"accent_color"`
}

// themeForm is a theme's form, to create or change one.
type themeForm struct {
	Name       string `form:"name"`
	Primary    string `form:"primary"`
	Secondary  string `form:"secondary"`
	Background string `form:"background"`
	Text       string `form:"text"`
}

// settingForm sets one setting; an empty value removes it.
type settingForm struct {
	Key   string `form:"key"`
	Value string `form:"value"`
}

// brandFields are the brand form's inputs, in the order of its fields.
var brandFields = formNames(brandForm{})

// brandingState is what a branding page or preview starts from: the
// stored brand colors and the themes, the active one among them.
type brandingState struct {
	brand  tenancy.Brand
	themes []*tenancy.Theme
	active *tenancy.Theme
}

func (s *Server) brandingState(r *http.Request) (brandingState, error) {
	ctx := r.Context()
	t := TenantFrom(ctx)
	var st brandingState
	var err error
	if st.brand, err = s.Branding.Brand(ctx, t.ID); err != nil {
		return st, err
	}
	if st.themes, err = s.Branding.ListThemes(ctx, t.ID); err != nil {
		return st, err
	}
	for _, th := range st.themes {
		if th.Active {
			st.active = th
		}
	}
	return st, nil
}

// lookState is the brand colors and the active theme as the tenant's
// pages have them now, from the look the pages are drawn from (kept in
// memory), so the live preview reads nothing from the database as the
// owner types. It lists no themes.
func (s *Server) lookState(r *http.Request) (brandingState, error) {
	l, err := s.Branding.Look(r.Context(), TenantFrom(r.Context()).ID)
	if err != nil {
		return brandingState{}, err
	}
	return brandingState{brand: l.Brand, active: l.Theme}, nil
}

// theme finds a stored theme by its exact id.
func (st brandingState) theme(id string) (*tenancy.Theme, error) {
	for _, th := range st.themes {
		if th.ID == id {
			return th, nil
		}
	}
	return nil, tenancy.FieldErrorf(tenancy.ENOTFOUND, "theme", "no theme %s", tenancy.Quote(id))
}

// brandFrom is the brand a brand form's values give: stored colors
// overridden by each valid field, an empty field removing its color.
// Fields that are not colors yet get their message in errs, and keep the
// stored color.
func brandFrom(stored tenancy.Brand, values map[string]string) (tenancy.Brand, map[string]string) {
	b, errs := stored, map[string]string{}
	for i, dst := range []*string{&b.Primary, &b.Secondary, &b.Accent} {
		name := brandColors[i].name
		v, ok := values[name]
		if !ok {
			continue
		}
		if strings.TrimSpace(v) == "" {
			*dst = ""
			continue
		}
		c, err := tenancy.ParseColor(name, v)
		if err != nil {
			errs[name] = tenancy.ErrorMessage(err)
			continue
		}
		*dst = c
	}
	return b, errs
}

// themeFrom is the theme a theme form's values give, each color that is
// not valid (yet) taken from base.
func themeFrom(base tenancy.Theme, values map[string]string) (*tenancy.Theme, map[string]string) {
	t, errs := base, map[string]string{}
	for i, dst := range []*string{&t.Primary, &t.Secondary, &t.Background, &t.Text} {
		name := themeColors[i].name
		c, err := tenancy.ParseColor(name, values[name])
		if err != nil {
			if strings.TrimSpace(values[name]) != "" {
				errs[name] = tenancy.ErrorMessage(err)
			}
			continue
		}
		*dst = c
	}
	return &t, errs
}

// newThemeBase is what a new theme's form starts from.
var newThemeBase = tenancy.Theme{Primary: tenancy.DefaultPalette.Primary, Secondary: tenancy.DefaultPalette.Secondary,
	Background: "#ffffff", Text: tenancy.DefaultPalette.Text}

// colorFields builds a form's color fields: what each holds, what an
// empty one falls back to, the color the picker shows, and the contrast
// warnings of the palette it is used in. themeNote, when set, is said
// under the fields a theme decides.
func colorFields(specs []colorSpec, f views.Form, fallback, used tenancy.Palette, alone func(color string) tenancy.Palette, themeNote string) []views.ColorField {
	out := make([]views.ColorField, 0, len(specs))
	for _, sp := range specs {
		p := used
		cf := views.ColorField{Name: sp.name, Label: sp.label, Help: sp.use, Value: f.Value(sp.name), Error: f.Err(sp.name),
			Inherited: fallback.Color(sp.color)}
		if alone != nil && themeNote != "" && tenancy.ThemeSets(sp.color) {
			// The active theme decides this color: check it where it
			// will apply, once no theme is active.
			p = alone(sp.color)
			cf.Note = themeNote
		}
		cf.Effective = p.Color(sp.color)
		for _, c := range tenancy.CheckPalette(p) {
			if !c.OK() && slices.Contains(c.Fields, sp.color) {
				cf.Warnings = append(cf.Warnings, c.Warning())
			}
		}
		out = append(out, cf)
	}
	return out
}

// previewOf is the preview pane of a palette: what it shows, the checks
// of every pairing and the frame that draws it.
func previewOf(title string, p tenancy.Palette) views.BrandingPreview {
	v := views.BrandingPreview{Title: title}
	q := url.Values{"preview": {"1"}}
	for _, k := range previewKeys {
		q.Set(k, p.Color(k))
	}
	for _, c := range tenancy.CheckPalette(p) {
		v.Checks = append(v.Checks, views.ContrastCheck{Name: c.Name, Fg: c.Fg, Bg: c.Bg, Ratio: tenancy.FormatRatio(c.Ratio),
			Min: strconv.FormatFloat(c.Min, 'f', -1, 64) + ":1", OK: c.OK(), Drawn: c.Drawn})
	}
	v.FrameURL = "/settings/branding/preview.html?" + q.Encode()
	return v
}

// activeNote says, next to the brand colors a theme decides, why they do
// not show; empty without an active theme.
func activeNote(active *tenancy.Theme) string {
	if active == nil {
		return ""
	}
	return "Theme " + tenancy.Quote(active.Name) + " is active and sets this color; yours applies when no theme is active."
}

// brandEditor fills the brand form's fields and its preview from the
// form's values (stored ones when f is zero).
func brandEditor(st brandingState, f views.Form) ([]views.ColorField, views.BrandingPreview) {
	b, errs := brandFrom(st.brand, f.Values)
	for k, v := range errs {
		if f.Errors[k] == "" {
			f.Errors[k] = v
		}
	}
	look := tenancy.ResolveLook(b, st.active, "")
	alone := func(string) tenancy.Palette { return tenancy.ResolveLook(b, nil, "").Palette }
	// An empty brand color falls back to the platform's.
	fields := colorFields(brandColors, f, tenancy.DefaultPalette, look.Palette, alone, activeNote(st.active))
	title := "Sign-in page with these brand colors (not saved)"
	if st.active != nil {
		title = "Sign-in page with these brand colors and the active theme " + tenancy.Quote(st.active.Name) + " (not saved)"
	}
	return fields, previewOf(title, look.Palette)
}

// themeEditor fills a theme form's fields and its preview: the theme as
// it will look once active, with the stored brand colors.
func themeEditor(st brandingState, base tenancy.Theme, f views.Form) ([]views.ColorField, views.BrandingPreview) {
	th, errs := themeFrom(base, f.Values)
	for k, v := range errs {
		if f.Errors[k] == "" {
			f.Errors[k] = v
		}
	}
	p := tenancy.ResolveLook(st.brand, th, "").Palette
	fallback := tenancy.Palette{Primary: base.Primary, Secondary: base.Secondary, Background: base.Background, Text: base.Text}
	return colorFields(themeColors, f, fallback, p, nil, ""), previewOf("Sign-in page with this theme, as activating it will look (not saved)", p)
}

// renderBranding renders the branding page with the brand form given (a
// zero form is filled from what is stored).
func (s *Server) renderBranding(w http.ResponseWriter, r *http.Request, status int, m views.Branding) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	st, err := s.brandingState(r)
	if err != nil {
		return err
	}
	if m.Brand.Values == nil {
		m.Brand = views.Form{Values: map[string]string{"primary_color": st.brand.Primary, "secondary_color": st.brand.Secondary, "accent_color": st.brand.Accent}, Errors: map[string]string{}}
	}
	m.BrandFields, m.Preview = brandEditor(st, m.Brand)
	m.Rule = tenancy.LookRule
	if st.active != nil {
		m.ActiveTheme = st.active.Name
	}
	for _, th := range st.themes {
		m.Themes = append(m.Themes, themeRow(st, th))
	}
	// A theme named in the address is previewed, for browsers without
	// scripts that follow a theme's Preview link.
	if id := r.URL.Query().Get("preview"); id != "" {
		if th, err := st.theme(id); err == nil {
			m.Preview = themePreview(st, th)
		}
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
	p := s.page(r, "Branding")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.BrandingPage(p, m))
	return nil
}

// themeRow is a theme in the list, with what its colors fail of level AA
// once active.
func themeRow(st brandingState, th *tenancy.Theme) views.ThemeRow {
	row := views.ThemeRow{ID: th.ID, Name: th.Name, Active: th.Active, Colors: []views.Swatch{
		{Label: "Primary", Color: th.Primary}, {Label: "Secondary", Color: th.Secondary},
		{Label: "Background", Color: th.Background}, {Label: "Text", Color: th.Text},
	}}
	for _, c := range tenancy.CheckPalette(tenancy.ResolveLook(st.brand, th, "").Palette) {
		if !c.OK() {
			row.Failing = append(row.Failing, c.Name)
		}
	}
	return row
}

// themePreview is the preview of a stored theme as activating it will
// look.
func themePreview(st brandingState, th *tenancy.Theme) views.BrandingPreview {
	title := "Sign-in page with theme " + tenancy.Quote(th.Name) + ", as activating it will look"
	if th.Active {
		title = "Sign-in page with theme " + tenancy.Quote(th.Name) + ", the active one"
	}
	v := previewOf(title, tenancy.ResolveLook(st.brand, th, "").Palette)
	v.Theme = th.ID
	return v
}

// handleBranding serves GET /settings/branding.
func (s *Server) handleBranding(w http.ResponseWriter, r *http.Request) error {
	return s.renderBranding(w, r, http.StatusOK, views.Branding{})
}

// handleBrandSave serves POST /settings/branding/brand: nothing is saved
// unless every color validates; an empty field removes that color.
func (s *Server) handleBrandSave(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in brandForm
	f := parseForm(r, &in)
	var u tenancy.BrandUpdate
	for i, c := range []struct {
		v   string
		dst **string
	}{{in.PrimaryColor, &u.Primary}, {in.SecondaryColor, &u.Secondary}, {in.AccentColor, &u.Accent}} {
		v, dst := c.v, c.dst
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

// brandingPreviewForm says which form a live preview comes from: the
// brand's, or a theme's (Form "theme", with ThemeID when editing one).
type brandingPreviewForm struct {
	Form    string `form:"form"`
	ThemeID string `form:"theme_id"`
}

// handleBrandingPreview serves POST /settings/branding/preview: the live
// preview's partial from an unsaved form, the brand form's or a theme's
// (form=theme, with theme_id when editing one), and out of band the
// contrast warnings next to each of the form's fields. It saves nothing.
func (s *Server) handleBrandingPreview(w http.ResponseWriter, r *http.Request) error {
	r.ParseForm()
	st, err := s.lookState(r)
	if err != nil {
		return err
	}
	var which brandingPreviewForm
	parseForm(r, &which)
	var f views.Form
	var fields []views.ColorField
	var v views.BrandingPreview
	if which.Form == "theme" {
		var in themeForm
		f = parseForm(r, &in)
		// A stored theme's colors stand in for fields not valid yet.
		base := newThemeBase
		if id := which.ThemeID; id != "" {
			if st, err = s.brandingState(r); err != nil {
				return err
			}
			if th, err := st.theme(id); err == nil {
				base = *th
			}
		}
		fields, v = themeEditor(st, base, f)
	} else {
		var in brandForm
		f = parseForm(r, &in)
		fields, v = brandEditor(st, f)
	}
	v.Fields = fields
	render(w, r, http.StatusOK, views.BrandingPreviewSwap(v))
	return nil
}

// handleThemePreview serves GET /settings/branding/preview?theme=ID: the
// preview pane with a stored theme as activating it will look.
func (s *Server) handleThemePreview(w http.ResponseWriter, r *http.Request) error {
	st, err := s.brandingState(r)
	if err != nil {
		return err
	}
	th, err := st.theme(r.URL.Query().Get("theme"))
	if err != nil {
		return err
	}
	render(w, r, http.StatusOK, views.BrandingPreviewPane(themePreview(st, th)))
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

// renderThemeEditor renders the page that creates (th nil) or edits a
// theme, with its live preview.
func (s *Server) renderThemeEditor(w http.ResponseWriter, r *http.Request, status int, th *tenancy.Theme, f views.Form) error {
	st, err := s.brandingState(r)
	if err != nil {
		return err
	}
	m := views.ThemeEditor{Form: f, Rule: tenancy.LookRule}
	base, title := newThemeBase, "New theme"
	if th != nil {
		base, title = *th, "Edit theme "+th.Name
		m.ID, m.Name, m.Active = th.ID, th.Name, th.Active
	}
	if m.Form.Values == nil {
		m.Form = views.Form{Values: map[string]string{"name": base.Name, "primary": base.Primary, "secondary": base.Secondary,
			"background": base.Background, "text": base.Text}, Errors: map[string]string{}}
	}
	m.Fields, m.Preview = themeEditor(st, base, m.Form)
	render(w, r, status, views.ThemeEditorPage(s.page(r, title), m))
	return nil
}

// storedTheme is the theme the address names, of this tenant.
func (s *Server) storedTheme(r *http.Request) (*tenancy.Theme, error) {
	st, err := s.brandingState(r)
	if err != nil {
		return nil, err
	}
	return st.theme(chi.URLParam(r, "id"))
}

// handleThemeNew serves GET /settings/branding/themes/new.
func (s *Server) handleThemeNew(w http.ResponseWriter, r *http.Request) error {
	return s.renderThemeEditor(w, r, http.StatusOK, nil, views.Form{})
}

// handleThemeEdit serves GET /settings/branding/themes/{id}/edit.
func (s *Server) handleThemeEdit(w http.ResponseWriter, r *http.Request) error {
	th, err := s.storedTheme(r)
	if err != nil {
		return err
	}
	return s.renderThemeEditor(w, r, http.StatusOK, th, views.Form{})
}

// themeInput is a theme form's values as the service takes them.
func themeInput(in themeForm) tenancy.NewTheme {
	return tenancy.NewTheme{Name: in.Name, Primary: in.Primary, Secondary: in.Secondary,
		Background: in.Background, Text: in.Text}
}

// handleThemeCreate serves POST /settings/branding/themes.
func (s *Server) handleThemeCreate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in themeForm
	f := parseForm(r, &in)
	th, err := s.Branding.CreateTheme(ctx, TenantFrom(ctx).ID, themeInput(in))
	if err != nil {
		if code := tenancy.ErrorCode(err); code == tenancy.EINVALID || code == tenancy.ECONFLICT {
			fieldError(&f, err)
			return s.renderThemeEditor(w, r, http.StatusUnprocessableEntity, nil, f)
		}
		return err
	}
	return s.backToBranding(w, r, "Theme "+th.Name+" created. Preview it below, then activate it.")
}

// handleThemeUpdate serves POST /settings/branding/themes/{id}.
func (s *Server) handleThemeUpdate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	old, err := s.storedTheme(r)
	if err != nil {
		return err
	}
	var in themeForm
	f := parseForm(r, &in)
	th, err := s.Branding.UpdateTheme(ctx, TenantFrom(ctx).ID, old.ID, themeInput(in))
	if err != nil {
		if code := tenancy.ErrorCode(err); code == tenancy.EINVALID || code == tenancy.ECONFLICT {
			fieldError(&f, err)
			return s.renderThemeEditor(w, r, http.StatusUnprocessableEntity, old, f)
		}
		return err
	}
	if th.Active {
		return s.backToBranding(w, r, "Theme "+th.Name+" saved; it is active, so the pages show it now.")
	}
	return s.backToBranding(w, r, "Theme "+th.Name+" saved.")
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

// handleThemeDeactivate serves POST
// /settings/branding/themes/{id}/deactivate.
func (s *Server) handleThemeDeactivate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	th, err := s.Branding.DeactivateTheme(ctx, TenantFrom(ctx).ID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return s.backToBranding(w, r, "Theme "+th.Name+" is no longer active: the pages use the brand colors.")
}

// handleThemeDelete serves POST /settings/branding/themes/{id}/delete,
// sent from the confirmation under the theme's Delete button.
func (s *Server) handleThemeDelete(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	th, err := s.Branding.DeleteTheme(ctx, TenantFrom(ctx).ID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if th.Active {
		return s.backToBranding(w, r, "Theme "+th.Name+" deleted. It was active: the pages use the brand colors now.")
	}
	return s.backToBranding(w, r, "Theme "+th.Name+" deleted.")
}

// handleSettingSave serves POST /settings/branding/settings: one setting,
// checked against its key's rules; an empty value removes it.
func (s *Server) handleSettingSave(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in settingForm
	f := parseForm(r, &in)
	var err error
	if in.Value == "" {
		err = s.Branding.DeleteSetting(ctx, TenantFrom(ctx).ID, in.Key)
	} else {
		_, err = s.Branding.SetSetting(ctx, TenantFrom(ctx).ID, in.Key, in.Value)
	}
	if err != nil {
		if code := tenancy.ErrorCode(err); code == tenancy.EINVALID || code == tenancy.ENOTFOUND {
			// A setting's errors name its key; show them at the value.
			if e := (*tenancy.Error)(nil); asDomain(err, &e) && e.Field != "key" {
				setFieldError(&f, "value", e.Message)
			} else {
				fieldError(&f, err)
			}
			return s.renderBranding(w, r, http.StatusUnprocessableEntity, views.Branding{Setting: f})
		}
		return err
	}
	return s.backToBranding(w, r, "Setting "+in.Key+" saved.")
}
