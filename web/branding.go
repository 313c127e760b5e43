package web

import (
	"maps"
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
	r.Post("/settings/branding/details", s.h(s.handleDetailsSave))
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
// stored brand colors and the themes, the active one among them, and the
// company details as the pages show them (by setting key).
type brandingState struct {
	brand   tenancy.Brand
	themes  []*tenancy.Theme
	active  *tenancy.Theme
	details map[string]string
}

// detailsOf are the company details a look shows, by setting key.
func detailsOf(l *tenancy.Look) map[string]string {
	return map[string]string{"branding.company_name": l.CompanyName, "branding.tagline": l.Contact.Tagline,
		"contact.support_email": l.Contact.SupportEmail, "contact.support_url": l.Contact.SupportURL, "contact.phone": l.Contact.SupportPhone}
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
	l, err := s.Branding.Look(ctx, t.ID)
	if err != nil {
		return st, err
	}
	st.details = detailsOf(l)
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
	return brandingState{brand: l.Brand, active: l.Theme, details: detailsOf(l)}, nil
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
			errs[name] = plainColorError(v)
			continue
		}
		*dst = c
	}
	return b, errs
}

// plainColorError says in plain words why v is not a color.
func plainColorError(v string) string {
	return tenancy.Quote(strings.TrimSpace(v)) + " is not a color: write # and six digits or letters a to f, such as #ff6b35 (or three, such as #f63)."
}

// detailSpec is one field of the company details form: the setting it
// holds, its label and what the pages do with it.
type detailSpec struct {
	name, key, label, help, typ, placeholder string
	max                                      int
}

var detailSpecs = []detailSpec{
	{"company_name", "branding.company_name", "Company name", "At the top of every page, and the sender's name on your mail. Empty: the workspace name.", "text", "", tenancy.NameMaxLen},
	{"tagline", "branding.tagline", "Tagline", "A line under the name on the sign-in page and the dashboard.", "text", "Invoices your customers understand", tenancy.TaglineMaxLen},
	{"support_email", "contact.support_email", "Support email", "Shown on the sign-in page and the dashboard; mail links to it when no support page is set.", "email", "help@example.com", 254},
	{"support_url", "contact.support_url", "Support page", "An https:// address. Mail's help links lead here.", "url", "https://help.example.com", 2000},
	{"support_phone", "contact.phone", "Support phone", "Shown beside the other ways to reach you.", "tel", "+1 555 010 0000", 40},
}

// detailsFrom checks a details form's values: each valid one, by setting
// key (an empty one removes its setting), and the plain message of each
// that is not, by field.
func detailsFrom(values map[string]string) (map[string]string, map[string]string) {
	out, errs := map[string]string{}, map[string]string{}
	for _, d := range detailSpecs {
		v := strings.TrimSpace(values[d.name])
		if v == "" {
			out[d.key] = ""
			continue
		}
		n, err := tenancy.NormalizeSetting(d.key, v)
		if err != nil {
			errs[d.name] = plainSettingError(d, err)
			continue
		}
		out[d.key] = n
	}
	return out, errs
}

// plainSettingError is a setting's error with the field's label in place
// of the setting's key.
func plainSettingError(d detailSpec, err error) string {
	msg := tenancy.ErrorMessage(err)
	if rest, ok := strings.CutPrefix(msg, d.key+" "); ok {
		msg = d.label + " " + rest
	}
	switch d.typ {
	case "email":
		msg = "This is not an email address: write it as name@example.com."
	case "url":
		msg = "Write the whole address of the page, beginning with https://, such as https://help.example.com."
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// detailFields fills the details form's fields from f.
func detailFields(f views.Form) []views.DetailField {
	out := make([]views.DetailField, 0, len(detailSpecs))
	for _, d := range detailSpecs {
		out = append(out, views.DetailField{Name: d.name, Label: d.label, Help: d.help, Type: d.typ, MaxLen: d.max,
			Placeholder: d.placeholder, Value: f.Value(d.name), Error: f.Err(d.name)})
	}
	return out
}

// detailsForm is the details form holding the stored details.
func detailsForm(stored map[string]string) views.Form {
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, d := range detailSpecs {
		f.Values[d.name] = stored[d.key]
	}
	return f
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
				errs[name] = plainColorError(values[name])
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
func colorFields(specs []colorSpec, f views.Form, fallback tenancy.Palette, fallbackFrom string, used tenancy.Palette, alone func(color string) tenancy.Palette, themeNote string) []views.ColorField {
	out := make([]views.ColorField, 0, len(specs))
	for _, sp := range specs {
		p := used
		cf := views.ColorField{Name: sp.name, Label: sp.label, Help: sp.use, Value: strings.TrimSpace(f.Value(sp.name)), Error: f.Err(sp.name),
			Inherited: fallback.Color(sp.color), InheritedFrom: fallbackFrom}
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

// previewOf is the preview pane of a palette: what it shows, the colors,
// the checks of every pairing. The frame that draws it is added by
// framePreview.
func previewOf(title string, p tenancy.Palette) views.BrandingPreview {
	v := views.BrandingPreview{Title: title}
	for _, k := range previewKeys {
		v.Palette = append(v.Palette, views.Swatch{Label: paletteLabels[k], Color: p.Color(k)})
	}
	for _, c := range tenancy.CheckPalette(p) {
		v.Checks = append(v.Checks, views.ContrastCheck{Name: c.Name, Fg: c.Fg, Bg: c.Bg, Ratio: tenancy.FormatRatio(c.Ratio),
			Min: strconv.FormatFloat(c.Min, 'f', -1, 64) + ":1", OK: c.OK(), Drawn: c.Drawn})
	}
	return v
}

var paletteLabels = map[string]string{"primary": "Primary", "secondary": "Secondary", "accent": "Accent", "background": "Background", "text": "Text"}

// framePreview seals what the preview draws (the palette, the company
// details, the surface and the logo) into the frame's address.
func (s *Server) framePreview(r *http.Request, v *views.BrandingPreview, p tenancy.Palette, details map[string]string, surface, logo string) {
	for _, o := range previewSurfaces() {
		if o.Value == surface {
			v.Title = strings.Replace(v.Title, "Sign-in page", o.Label, 1)
		}
	}
	token, err := s.sealPreview(TenantFrom(r.Context()).ID, previewDraft{Surface: surface, Logo: logo, Colors: &p, Settings: details})
	if err != nil {
		v.Error = tenancy.ErrorMessage(err)
		return
	}
	v.FrameURL = "/settings/branding/preview.html?d=" + token
}

// controls is the preview switch of a page, showing surface and logo.
func (s *Server) controls(r *http.Request, surface, logo, include string) views.PreviewControls {
	return views.PreviewControls{Surfaces: previewSurfaces(), Surface: surface, Logo: logo, Include: include,
		HasDarkLogo: s.logoURLOf(r.Context(), TenantFrom(r.Context()), tenancy.LogoDark) != ""}
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
// form's values (stored ones when f is zero), and gives the palette shown.
func brandEditor(st brandingState, f views.Form) ([]views.ColorField, views.BrandingPreview, tenancy.Palette) {
	b, errs := brandFrom(st.brand, f.Values)
	for k, v := range errs {
		if f.Errors[k] == "" {
			f.Errors[k] = v
		}
	}
	look := tenancy.ResolveLook(b, st.active, "")
	alone := func(string) tenancy.Palette { return tenancy.ResolveLook(b, nil, "").Palette }
	// An empty brand color falls back to the platform's.
	fields := colorFields(brandColors, f, tenancy.DefaultPalette, "(the platform's default)", look.Palette, alone, activeNote(st.active))
	title := "Sign-in page with these brand colors and company details (not saved)"
	if st.active != nil {
		title = "Sign-in page with these brand colors and company details, and the active theme " + tenancy.Quote(st.active.Name) + " (not saved)"
	}
	return fields, previewOf(title, look.Palette), look.Palette
}

// themeEditor fills a theme form's fields and its preview: the theme as
// it will look once active, with the stored brand colors; and gives the
// palette shown.
func themeEditor(st brandingState, base tenancy.Theme, f views.Form) ([]views.ColorField, views.BrandingPreview, tenancy.Palette) {
	th, errs := themeFrom(base, f.Values)
	for k, v := range errs {
		if f.Errors[k] == "" {
			f.Errors[k] = v
		}
	}
	p := tenancy.ResolveLook(st.brand, th, "").Palette
	fallback := tenancy.Palette{Primary: base.Primary, Secondary: base.Secondary, Background: base.Background, Text: base.Text}
	from := "(the theme's saved color)"
	if base.ID == "" {
		from = "(the starting color)"
	}
	return colorFields(themeColors, f, fallback, from, p, nil, ""), previewOf("Sign-in page with this theme, as activating it will look (not saved)", p), p
}

// renderBranding renders the branding page with the brand and details
// forms given (a zero form is filled from what is stored).
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
	if m.Details.Values == nil {
		m.Details = detailsForm(st.details)
	}
	m.DetailFields = detailFields(m.Details)
	var palette tenancy.Palette
	m.BrandFields, m.Preview, palette = brandEditor(st, m.Brand)
	details, _ := detailsFrom(m.Details.Values)
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
			m.Preview, palette = themePreview(st, th)
		}
	}
	surface, logo := previewControls(r.URL.Query().Get)
	s.framePreview(r, &m.Preview, palette, details, surface, logo)
	m.Controls = s.controls(r, surface, logo, "#brand-form, #details-form")
	settings, err := s.Branding.ListSettings(ctx, t.ID)
	if err != nil {
		return err
	}
	// The settings the forms above hold are not listed again by key.
	shown := map[string]bool{}
	for _, k := range append(tenancy.BrandKeys(), detailKeys()...) {
		shown[k] = true
	}
	for _, st := range settings {
		if !shown[st.Key] {
			m.Settings = append(m.Settings, views.SettingRow{Key: st.Key, Value: st.Value})
		}
	}
	if m.Setting.Values == nil {
		m.Setting = views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	for _, k := range tenancy.KnownSettings() {
		if !shown[k[0]] {
			m.KnownKeys = append(m.KnownKeys, views.SettingRow{Key: k[0], Value: k[1]})
		}
	}
	m.Invalid = invalidFields(m.Brand, brandColors, m.Details)
	// The settings by key are last on the page: their errors are named
	// at the top too, so they are seen without scrolling.
	for _, k := range []struct{ id, label string }{{"key", "Other settings: setting"}, {"value", "Other settings: value"}} {
		if m.Setting.Err(k.id) != "" {
			m.Invalid = append(m.Invalid, views.InvalidField{ID: k.id, Label: k.label})
		}
	}
	p := s.page(r, "Branding")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.BrandingPage(p, m))
	return nil
}

func detailKeys() []string {
	out := make([]string, len(detailSpecs))
	for i, d := range detailSpecs {
		out[i] = d.key
	}
	return out
}

// invalidFields lists the fields with an error, colors then details, for
// the summary at the top of the page.
func invalidFields(colors views.Form, specs []colorSpec, details views.Form) []views.InvalidField {
	var out []views.InvalidField
	for _, c := range specs {
		if colors.Err(c.name) != "" {
			out = append(out, views.InvalidField{ID: c.name, Label: c.label})
		}
	}
	for _, d := range detailSpecs {
		if details.Err(d.name) != "" {
			out = append(out, views.InvalidField{ID: d.name, Label: d.label})
		}
	}
	return out
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
func themePreview(st brandingState, th *tenancy.Theme) (views.BrandingPreview, tenancy.Palette) {
	title := "Sign-in page with theme " + tenancy.Quote(th.Name) + ", as activating it will look"
	if th.Active {
		title = "Sign-in page with theme " + tenancy.Quote(th.Name) + ", the active one"
	}
	p := tenancy.ResolveLook(st.brand, th, "").Palette
	v := previewOf(title, p)
	v.Theme = th.ID
	return v, p
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
		v, dst := strings.TrimSpace(c.v), c.dst
		if v != "" {
			if _, err := tenancy.ParseColor(brandFields[i], v); err != nil {
				f.Errors[brandFields[i]] = plainColorError(v)
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
// preview's partial from the unsaved forms (the brand colors and company
// details, or a theme's, form=theme, with theme_id when editing one) and
// the preview switch, and out of band the checks next to each of the
// forms' fields. It saves nothing.
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
	var p tenancy.Palette
	details := st.details
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
		fields, v, p = themeEditor(st, base, f)
	} else {
		var in brandForm
		f = parseForm(r, &in)
		fields, v, p = brandEditor(st, f)
		if _, ok := r.PostForm["company_name"]; ok {
			df := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
			for _, d := range detailSpecs {
				df.Values[d.name] = r.PostForm.Get(d.name)
			}
			typed, errs := detailsFrom(df.Values)
			df.Errors = errs
			// What is not valid yet shows as stored.
			details = maps.Clone(st.details)
			maps.Copy(details, typed)
			v.Details = detailFields(df)
		}
	}
	surface, logo := previewControls(r.PostForm.Get)
	s.framePreview(r, &v, p, details, surface, logo)
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
	v, p := themePreview(st, th)
	surface, logo := previewControls(r.URL.Query().Get)
	s.framePreview(r, &v, p, st.details, surface, logo)
	render(w, r, http.StatusOK, views.BrandingPreviewPane(v))
	return nil
}

// handleBrandingPreviewHTML serves GET /settings/branding/preview.html?d=:
// the page or email a sealed draft names, drawn with its colors and
// details, for the sandboxed preview frame; whichever server process
// made the draft.
func (s *Server) handleBrandingPreviewHTML(w http.ResponseWriter, r *http.Request) error {
	d, err := s.openPreview(TenantFrom(r.Context()).ID, r.URL.Query().Get("d"))
	if err != nil {
		return err
	}
	if name, ok := strings.CutPrefix(d.Surface, "email:"); ok {
		if err := tenancy.CheckEmailTemplateName(name); err != nil {
			return err
		}
		msg, err := s.previewEmail(r, name, d)
		if err != nil {
			return err
		}
		writePreviewEmail(w, msg)
		return nil
	}
	return s.previewPage(w, r, d)
}

// renderThemeEditor renders the page that creates (th nil) or edits a
// theme, with its live preview.
func (s *Server) renderThemeEditor(w http.ResponseWriter, r *http.Request, status int, th *tenancy.Theme, f views.Form) error {
	st, err := s.brandingState(r)
	if err != nil {
		return err
	}
	m := views.ThemeEditor{Form: f, Rule: tenancy.LookRule}
	surface, logo := previewControls(r.URL.Query().Get)
	m.Controls = s.controls(r, surface, logo, "#theme-form")
	base, title := newThemeBase, "New theme"
	if th != nil {
		base, title = *th, "Edit theme "+th.Name
		m.ID, m.Name, m.Active = th.ID, th.Name, th.Active
	}
	if m.Form.Values == nil {
		m.Form = views.Form{Values: map[string]string{"name": base.Name, "primary": base.Primary, "secondary": base.Secondary,
			"background": base.Background, "text": base.Text}, Errors: map[string]string{}}
	}
	var p tenancy.Palette
	m.Fields, m.Preview, p = themeEditor(st, base, m.Form)
	s.framePreview(r, &m.Preview, p, st.details, surface, logo)
	m.Invalid = invalidFields(m.Form, themeColors, views.Form{})
	if m.Form.Err("name") != "" {
		m.Invalid = append([]views.InvalidField{{ID: "name", Label: "Name"}}, m.Invalid...)
	}
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
	return tenancy.NewTheme{Name: in.Name, Primary: strings.TrimSpace(in.Primary), Secondary: strings.TrimSpace(in.Secondary),
		Background: strings.TrimSpace(in.Background), Text: strings.TrimSpace(in.Text)}
}

// handleThemeCreate serves POST /settings/branding/themes.
func (s *Server) handleThemeCreate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in themeForm
	f := parseForm(r, &in)
	th, err := s.Branding.CreateTheme(ctx, TenantFrom(ctx).ID, themeInput(in))
	if err != nil {
		if code := tenancy.ErrorCode(err); code == tenancy.EINVALID || code == tenancy.ECONFLICT {
			themeFieldError(&f, err)
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
			themeFieldError(&f, err)
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

// themeFieldError puts a theme's error next to its field, in plain words
// for a color.
func themeFieldError(f *views.Form, err error) {
	fieldError(f, err)
	for _, c := range themeColors {
		if f.Errors[c.name] != "" {
			f.Errors[c.name] = plainColorError(f.Values[c.name])
		}
	}
}

// handleDetailsSave serves POST /settings/branding/details: the company
// details, all saved or, when one is not valid, none, with each message
// next to its field.
func (s *Server) handleDetailsSave(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in companyDetailsForm
	f := parseForm(r, &in)
	values, errs := detailsFrom(f.Values)
	if len(errs) > 0 {
		f.Errors = errs
		return s.renderBranding(w, r, http.StatusUnprocessableEntity, views.Branding{Details: f})
	}
	if err := s.Branding.SetSettings(ctx, TenantFrom(ctx).ID, values); err != nil {
		if tenancy.ErrorCode(err) == tenancy.EINVALID {
			f.Error = tenancy.ErrorMessage(err)
			return s.renderBranding(w, r, http.StatusUnprocessableEntity, views.Branding{Details: f})
		}
		return err
	}
	return s.backToBranding(w, r, "Company details saved: your pages and mail show them now.")
}

// handleSettingSave serves POST /settings/branding/settings: one setting,
// checked against its key's rules; an empty value removes it.
func (s *Server) handleSettingSave(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in settingForm
	f := parseForm(r, &in)
	in.Key = strings.TrimSpace(in.Key)
	f.Values["key"] = in.Key
	var err error
	if in.Value == "" {
		err = s.Branding.DeleteSetting(ctx, TenantFrom(ctx).ID, in.Key)
	} else {
		_, err = s.Branding.SetSetting(ctx, TenantFrom(ctx).ID, in.Key, in.Value)
	}
	if err != nil {
		if code := tenancy.ErrorCode(err); code == tenancy.EINVALID || code == tenancy.ENOTFOUND {
			// A setting's errors name its key; show them at the value,
			// with the key said as "this setting".
			msg := tenancy.ErrorMessage(err)
			if e := (*tenancy.Error)(nil); asDomain(err, &e) && e.Field != "key" {
				setFieldError(&f, "value", strings.Replace(msg, in.Key+" ", "The value ", 1))
			} else {
				f.Errors["key"] = msg
			}
			return s.renderBranding(w, r, http.StatusUnprocessableEntity, views.Branding{Setting: f})
		}
		return err
	}
	return s.backToBranding(w, r, "Setting "+in.Key+" saved.")
}

// companyDetailsForm is the company details form; detailSpecs says how each
// field is shown and which setting it is.
type companyDetailsForm struct {
	CompanyName  string `form:"company_name"`
	Tagline      string `form:"tagline"`
	SupportEmail string `form:"support_email"`
	SupportURL   string `form:"support_url"`
	SupportPhone string `form:"support_phone"`
}
