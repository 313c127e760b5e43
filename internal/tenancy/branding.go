package tenancy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ParseColor accepts a color as #RGB or #RRGGBB hex and returns it as
// lowercase #rrggbb. Colors are written into CSS, so nothing else is
// accepted: no names, no functions, nothing that could end a declaration.
func ParseColor(field, s string) (string, error) {
	c := strings.TrimSpace(s)
	if c == "" {
		return "", FieldErrorf(EINVALID, field, "%s is required: a hex color such as #ff6b35", field)
	}
	if (len(c) != 4 && len(c) != 7) || c[0] != '#' {
		return "", FieldErrorf(EINVALID, field, "%s %s is not a hex color such as #ff6b35 or #f63", field, Quote(s))
	}
	for i := 1; i < len(c); i++ {
		if !isHexDigit(c[i]) {
			return "", FieldErrorf(EINVALID, field, "%s %s is not a hex color such as #ff6b35 or #f63", field, Quote(s))
		}
	}
	c = strings.ToLower(c)
	if len(c) == 4 {
		c = string([]byte{'#', c[1], c[1], c[2], c[2], c[3], c[3]})
	}
	return c, nil
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Luminance is the WCAG 2 relative luminance of a color ParseColor
// accepted, from 0 (black) to 1 (white).
func Luminance(color string) float64 {
	var l [3]float64
	for i, v := range rgb(color) {
		s := v / 255
		if s <= 0.03928 {
			l[i] = s / 12.92
		} else {
			l[i] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

// ContrastRatio is the WCAG 2 contrast ratio of two colors, from 1 to 21.
func ContrastRatio(a, b string) float64 {
	la, lb := Luminance(a), Luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// AAContrast is the least contrast WCAG 2 level AA asks of normal text.
const AAContrast = 4.5

// MeetsAA reports whether text in color fg on bg is readable at level AA.
func MeetsAA(fg, bg string) bool { return ContrastRatio(fg, bg) >= AAContrast }

// FormatRatio writes a contrast ratio the way WCAG tools show it: "4.48:1".
// It is cut, not rounded, so a ratio just under 4.5 never reads as 4.50.
func FormatRatio(r float64) string { return fmt.Sprintf("%.2f:1", math.Floor(r*100)/100) }

// Palette is the full set of colors a tenant's pages use, every one a
// validated #rrggbb.
type Palette struct {
	Primary, Secondary, Accent, Background, Text string
}

// DefaultPalette is the platform's own look, for whatever a tenant has not
// set.
var DefaultPalette = Palette{
	Primary: "#4f46e5", Secondary: "#1e293b", Accent: "#0284c7",
	Background: "#f6f7fb", Text: "#1f2430",
}

// Brand is a tenant's brand colors; an empty color is not set.
type Brand struct {
	Primary, Secondary, Accent string
}

// BrandUpdate changes brand colors: a nil field is left as it is, an
// empty one is removed.
type BrandUpdate struct {
	Primary, Secondary, Accent *string
}

// BrandChange is one color a BrandUpdate changed.
type BrandChange struct {
	Field    string // primary_color, secondary_color, accent_color
	From, To string // "" when not set
}

// brandFields are the brand colors, each with its setting key.
var brandFields = []struct{ field, key string }{
	{"primary_color", "branding.primary_color"},
	{"secondary_color", "branding.secondary_color"},
	{"accent_color", "branding.accent_color"},
}

// BrandKeys are the setting keys that hold the brand colors.
func BrandKeys() []string {
	out := make([]string, len(brandFields))
	for i, f := range brandFields {
		out[i] = f.key
	}
	return out
}

// Theme is a named set of colors a tenant can switch to; one at most is
// active.
type Theme struct {
	TenantID   string
	ID         string // the slug of the name
	Name       string
	Primary    string
	Secondary  string
	Background string
	Text       string
	Active     bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TextContrast is the contrast of the theme's text on its background.
func (t *Theme) TextContrast() float64 { return ContrastRatio(t.Text, t.Background) }

// NewTheme is the input to create a theme.
type NewTheme struct {
	Name                                 string
	Primary, Secondary, Background, Text string
}

// ThemeIDMaxLen bounds a theme's id.
const ThemeIDMaxLen = 63

// Validate checks a new theme and returns it normalized, with its id.
// Every color is checked, and the first bad one named.
func (n NewTheme) Validate() (*Theme, error) {
	if err := ValidateName("name", n.Name); err != nil {
		return nil, err
	}
	id := SlugFromName(n.Name)
	if len(id) > ThemeIDMaxLen {
		id = strings.TrimRight(id[:ThemeIDMaxLen], "-")
	}
	if id == "" {
		return nil, FieldErrorf(EINVALID, "name", "name %s needs a letter or digit (a-z, 0-9) to make the theme's id", Quote(n.Name))
	}
	t := &Theme{ID: id, Name: strings.TrimSpace(n.Name)}
	for _, c := range []struct {
		field string
		in    string
		out   *string
	}{
		{"primary", n.Primary, &t.Primary},
		{"secondary", n.Secondary, &t.Secondary},
		{"background", n.Background, &t.Background},
		{"text", n.Text, &t.Text},
	} {
		v, err := ParseColor(c.field, c.in)
		if err != nil {
			return nil, err
		}
		*c.out = v
	}
	return t, nil
}

// MatchTheme finds the theme ref names: its id or its name, exactly, or
// else a prefix of exactly one theme's id (the guide activates
// "acme-light" after creating "Acme Light Theme").
func MatchTheme(themes []*Theme, ref string) (*Theme, error) {
	t, err := ExactTheme(themes, ref)
	if ErrorCode(err) != ENOTFOUND {
		return t, err
	}
	ref = strings.ToLower(strings.TrimSpace(ref))
	var matches []*Theme
	for _, t := range themes {
		if strings.HasPrefix(t.ID, ref) {
			matches = append(matches, t)
		}
	}
	switch len(matches) {
	case 0:
		return nil, err
	case 1:
		return matches[0], nil
	}
	ids := make([]string, len(matches))
	for i, t := range matches {
		ids[i] = t.ID
	}
	sort.Strings(ids)
	return nil, FieldErrorf(EINVALID, "theme", "theme %s is ambiguous: it begins %s; give more of the id", Quote(ref), strings.Join(ids, ", "))
}

// ExactTheme finds the theme ref names exactly: its id, or else its name
// in any case (a name two themes share names neither). Changing and
// deleting a theme take no prefix, a convenience for switching, not for
// destroying; the error names the one theme a prefix would have found.
func ExactTheme(themes []*Theme, ref string) (*Theme, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, FieldErrorf(EINVALID, "theme", "theme is required")
	}
	id := strings.ToLower(ref)
	for _, t := range themes {
		if t.ID == id {
			return t, nil
		}
	}
	var named *Theme
	var near []string
	for _, t := range themes {
		if strings.EqualFold(t.Name, ref) {
			if named != nil {
				return nil, FieldErrorf(EINVALID, "theme", "two themes are named %s: give the id of one (%s or %s)", Quote(ref), named.ID, t.ID)
			}
			named = t
		}
		if strings.HasPrefix(t.ID, id) {
			near = append(near, t.ID)
		}
	}
	switch {
	case named != nil:
		return named, nil
	case len(near) == 1:
		return nil, FieldErrorf(ENOTFOUND, "theme", "no theme %s; did you mean %s? Give a theme's full id or name", Quote(ref), near[0])
	}
	return nil, FieldErrorf(ENOTFOUND, "theme", "no theme %s", Quote(ref))
}

// Setting is one of a tenant's settings.
type Setting struct {
	Key       string
	Value     string
	UpdatedAt time.Time
}

// Value limits.
const (
	TaglineMaxLen     = 200
	CustomValueMaxLen = 2000
	urlMaxLen         = 2000
)

// settingRule checks and normalizes one known setting's value.
type settingRule struct {
	help  string
	check func(key, value string) (string, error)
}

// settingRules are the settings the platform knows, by key.
var settingRules = map[string]settingRule{
	"branding.company_name": {"the name shown on the tenant's pages", func(k, v string) (string, error) {
		v = strings.TrimSpace(v)
		return v, ValidateName(k, v)
	}},
	"branding.tagline": {"a line under the name, at most 200 characters", func(k, v string) (string, error) {
		return v, checkText(k, v, TaglineMaxLen, false)
	}},
	"branding.primary_color":   {"brand primary color, #rrggbb", colorRule},
	"branding.secondary_color": {"brand secondary color, #rrggbb", colorRule},
	"branding.accent_color":    {"brand accent color, #rrggbb", colorRule},
	"contact.support_email": {"support email address", func(k, v string) (string, error) {
		e, err := NormalizeEmail(v)
		if err != nil {
			return "", FieldErrorf(EINVALID, k, "%s %s is not a valid email address", k, Quote(v))
		}
		return e, nil
	}},
	"contact.support_url": {"support page, an https:// URL", checkHTTPSURL},
	"contact.phone":       {"support phone number", checkPhone},
	"locale.timezone": {"IANA time zone, such as Europe/Berlin", func(k, v string) (string, error) {
		v = strings.TrimSpace(v)
		// "" and "Local" load without error but name no zone.
		if v == "" || v == "Local" {
			return "", FieldErrorf(EINVALID, k, "%s %s is not an IANA time zone such as Europe/Berlin", k, Quote(v))
		}
		if _, err := time.LoadLocation(v); err != nil {
			return "", FieldErrorf(EINVALID, k, "%s %s is not an IANA time zone such as Europe/Berlin", k, Quote(v))
		}
		return v, nil
	}},
	"locale.language": {"language tag, such as en or pt-BR", func(k, v string) (string, error) {
		if !languageRE.MatchString(v) {
			return "", FieldErrorf(EINVALID, k, "%s %s is not a language tag such as en or pt-BR", k, Quote(v))
		}
		return v, nil
	}},
}

var (
	languageRE  = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$`)
	customKeyRE = regexp.MustCompile(`^custom\.[a-z0-9_.-]{1,60}$`)
)

func colorRule(k, v string) (string, error) { return ParseColor(k, v) }

// KnownSettings lists the known setting keys with what each holds, sorted.
func KnownSettings() [][2]string {
	out := make([][2]string, 0, len(settingRules))
	for k, r := range settingRules {
		out = append(out, [2]string{k, r.help})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// ValidateSettingKey checks that key is a known setting or a custom one.
func ValidateSettingKey(key string) error {
	if _, ok := settingRules[key]; ok {
		return nil
	}
	if strings.HasPrefix(key, "custom.") {
		if !customKeyRE.MatchString(key) {
			return FieldErrorf(EINVALID, "key", "setting %s: a custom key is custom. followed by 1 to 60 of a-z, 0-9, _ . -", Quote(key))
		}
		return nil
	}
	return FieldErrorf(EINVALID, "key", "unknown setting %s; known: %s, or custom.NAME", Quote(key), strings.Join(knownKeys(), ", "))
}

func knownKeys() []string {
	out := make([]string, 0, len(settingRules))
	for k := range settingRules {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NormalizeSetting checks a setting's key and value and returns the value
// to store. Errors name the key as their field.
func NormalizeSetting(key, value string) (string, error) {
	if err := ValidateSettingKey(key); err != nil {
		return "", err
	}
	if r, ok := settingRules[key]; ok {
		return r.check(key, value)
	}
	return value, checkText(key, value, CustomValueMaxLen, true)
}

// checkText refuses invalid UTF-8, values over max characters, and control
// characters (but for newlines and tabs when multiline).
func checkText(field, v string, max int, multiline bool) error {
	if !utf8.ValidString(v) {
		return FieldErrorf(EINVALID, field, "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return FieldErrorf(EINVALID, field, "%s is too long: %d characters, at most %d", field, n, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return FieldErrorf(EINVALID, field, "%s must not contain control characters", field)
		}
	}
	return nil
}

func checkHTTPSURL(k, v string) (string, error) {
	v = strings.TrimSpace(v)
	bad := func() (string, error) {
		return "", FieldErrorf(EINVALID, k, "%s %s is not an https:// URL", k, Quote(v))
	}
	if len(v) > urlMaxLen || checkText(k, v, urlMaxLen, false) != nil || strings.ContainsAny(v, " \\\"'<>") {
		return bad()
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Hostname() == "" {
		return bad()
	}
	return v, nil
}

func checkPhone(k, v string) (string, error) {
	v = strings.TrimSpace(v)
	digits := 0
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("+-(). ", r):
		default:
			return "", FieldErrorf(EINVALID, k, "%s %s may contain only digits, spaces and + - ( ) .", k, Quote(v))
		}
	}
	if digits < 5 || digits > 20 || strings.LastIndexByte(v, '+') > 0 {
		return "", FieldErrorf(EINVALID, k, "%s %s is not a phone number such as +1 555 010 0000", k, Quote(v))
	}
	return v, nil
}

// Look is how a tenant's pages look: the colors in effect and the name
// shown. Version changes whenever either does, so a stylesheet URL that
// carries it is fetched again.
type Look struct {
	Palette     Palette
	CompanyName string
	Version     string
	// Brand and Theme are what the palette was resolved from: the brand
	// colors as stored, and the active theme (nil when none is), so that
	// a preview can resolve unsaved values against the same.
	Brand Brand
	Theme *Theme
	// Contact is what the pages say about the company besides its name.
	Contact Contact
}

// Contact is what a tenant's pages and mail say about the company
// besides its name, from its settings; an empty field is not shown.
type Contact struct {
	Tagline, SupportEmail, SupportURL, SupportPhone string
}

// ContactKeys are the settings a Contact is read from.
var ContactKeys = []string{"branding.tagline", "contact.support_email", "contact.support_url", "contact.phone"}

// ContactFrom reads a Contact from settings by key, ignoring values that
// do not validate (the database could hold anything).
func ContactFrom(settings map[string]string) Contact {
	get := func(k string) string {
		v, err := NormalizeSetting(k, settings[k])
		if err != nil || settings[k] == "" {
			return ""
		}
		return v
	}
	return Contact{Tagline: get("branding.tagline"), SupportEmail: get("contact.support_email"),
		SupportURL: get("contact.support_url"), SupportPhone: get("contact.phone")}
}

// LookRule says, for the pages that set colors, how ResolveLook decides
// a tenant's colors.
const LookRule = "An active theme decides the primary, secondary, background and text colors. " +
	"The brand colors are used while no theme is active; the brand accent is used always, since themes have none. " +
	"The platform's defaults fill in what neither sets."

// ResolveLook computes a tenant's look, the one rule for its pages, their
// previews and its mail: the active theme's colors, the brand colors for
// what the theme does not set (all of them without a theme), the defaults
// for the rest (see LookRule). The theme wins because activating one is
// the owner's latest word on how the pages look, and it is what its
// preview showed. Values that do not validate are ignored, so only
// validated colors reach CSS even if the database holds something else.
func ResolveLook(brand Brand, theme *Theme, companyName string) *Look {
	p := DefaultPalette
	set := func(dst *string, v string) {
		if c, err := ParseColor("color", v); err == nil {
			*dst = c
		}
	}
	set(&p.Primary, brand.Primary)
	set(&p.Secondary, brand.Secondary)
	set(&p.Accent, brand.Accent)
	if theme != nil {
		set(&p.Primary, theme.Primary)
		set(&p.Secondary, theme.Secondary)
		set(&p.Background, theme.Background)
		set(&p.Text, theme.Text)
	}
	if ValidateName("name", companyName) != nil {
		companyName = ""
	}
	// The scheme's version is in the sum too: when the stylesheet derived
	// from a palette changes, its URL does.
	sum := sha256.Sum256([]byte(schemeVersion + p.Primary + p.Secondary + p.Accent + p.Background + p.Text + "\x00" + companyName))
	l := &Look{Palette: p, CompanyName: companyName, Version: hex.EncodeToString(sum[:6]), Brand: brand}
	if theme != nil {
		th := *theme
		l.Theme = &th
	}
	return l
}

// ThemeSets reports whether an active theme decides a brand color (a
// field of Brand: primary, secondary, accent), so that the brand's own
// value waits until no theme is active.
func ThemeSets(field string) bool { return field == "primary" || field == "secondary" }

// BrandingService keeps a tenant's brand colors, settings and themes.
// Every change is announced, so cached looks are dropped everywhere.
type BrandingService interface {
	Brand(ctx context.Context, tenantID string) (Brand, error)
	SetBrand(ctx context.Context, tenantID string, u BrandUpdate) ([]BrandChange, error)

	Setting(ctx context.Context, tenantID, key string) (*Setting, error)
	ListSettings(ctx context.Context, tenantID string) ([]*Setting, error)
	SetSetting(ctx context.Context, tenantID, key, value string) (*Setting, error)
	DeleteSetting(ctx context.Context, tenantID, key string) error
	// SetSettings stores several settings at once, or none: each value is
	// checked first, and an empty one removes its setting.
	SetSettings(ctx context.Context, tenantID string, values map[string]string) error

	CreateTheme(ctx context.Context, tenantID string, n NewTheme) (*Theme, error)
	ListThemes(ctx context.Context, tenantID string) ([]*Theme, error)
	// UpdateTheme changes the name and colors of the theme with the id;
	// the id stays, so links and the command line still find it.
	UpdateTheme(ctx context.Context, tenantID, id string, n NewTheme) (*Theme, error)
	ActivateTheme(ctx context.Context, tenantID, ref string) (*Theme, error)
	// DeactivateTheme makes the theme with the id inactive, so the brand
	// colors apply again; ECONFLICT when it is not the active one.
	DeactivateTheme(ctx context.Context, tenantID, id string) (*Theme, error)
	// DeleteTheme deletes the theme with the id, the active one too (the
	// brand colors then apply); the theme returned says if it was active.
	DeleteTheme(ctx context.Context, tenantID, id string) (*Theme, error)

	// Look is the tenant's look; implementations may serve it from memory.
	Look(ctx context.Context, tenantID string) (*Look, error)
}
