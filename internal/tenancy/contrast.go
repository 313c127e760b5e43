package tenancy

import (
	"fmt"
	"math"
	"strconv"
)

// AALargeContrast is the least contrast WCAG 2 level AA asks of large
// text and of what sets a control apart from its surroundings (1.4.11).
const AALargeContrast = 3.0

// Colors a fill's text is chosen from.
const (
	Black = "#000000"
	White = "#ffffff"
)

// OnColor is the color of text drawn on fill: black or white, whichever
// contrasts more. One of the two always reaches 4.5:1, so text on a brand
// color is readable whatever the color.
func OnColor(fill string) string {
	if ContrastRatio(Black, fill) >= ContrastRatio(White, fill) {
		return Black
	}
	return White
}

// rgb reads a color ParseColor accepted; a color it refuses reads as
// black, as Luminance does.
func rgb(color string) [3]float64 {
	var out [3]float64
	c, err := ParseColor("color", color)
	if err != nil {
		return out
	}
	for i := range 3 {
		v, _ := strconv.ParseUint(c[1+2*i:3+2*i], 16, 8)
		out[i] = float64(v)
	}
	return out
}

// Mix is the color t of the way from a to b (t from 0, a, to 1, b), mixed
// channel by channel as CSS's color-mix in srgb does.
func Mix(a, b string, t float64) string {
	t = math.Max(0, math.Min(1, t))
	ca, cb := rgb(a), rgb(b)
	var out [3]int
	for i := range 3 {
		out[i] = int(math.Round(ca[i] + (cb[i]-ca[i])*t))
	}
	return fmt.Sprintf("#%02x%02x%02x", out[0], out[1], out[2])
}

// Readable is fg when it reaches min contrast on every one of bgs, and
// otherwise the shade of fg nearest to it, darker or lighter, that does:
// a pale yellow link on white becomes a dark yellow one, not black. When
// no shade reads on all of bgs (a light and a dark one), it is the shade
// that reads best on the worst of them.
func Readable(fg string, min float64, bgs ...string) string {
	worst := func(c string) float64 {
		r := math.Inf(1)
		for _, bg := range bgs {
			r = math.Min(r, ContrastRatio(c, bg))
		}
		return r
	}
	if worst(fg) >= min {
		return fg
	}
	// Steps of 1/64 move a channel by at most 4 of 255: a shade a person
	// cannot tell from the least one that reads.
	const steps = 64
	for i := 1; i <= steps; i++ {
		t := float64(i) / steps
		dark, light := Mix(fg, Black, t), Mix(fg, White, t)
		wd, wl := worst(dark), worst(light)
		switch {
		case wd >= min && wd >= wl:
			return dark
		case wl >= min:
			return light
		case wd >= min:
			return dark
		}
	}
	if worst(Black) >= worst(White) {
		return Black
	}
	return White
}

// Scheme is a palette as the portal draws it: the tenant's colors, and
// beside them the colors the portal derives so that every text it draws
// reads at level AA whatever the tenant picked. Every value is #rrggbb.
type Scheme struct {
	Palette
	// OnPrimary, OnSecondary and OnAccent are the text on those fills
	// (buttons, the brand mark): black or white, by contrast.
	OnPrimary, OnSecondary, OnAccent string
	// Surface is the color of cards, tables and the top bar: white on a
	// light background, a lighter shade of a dark one.
	Surface string
	// Ink is body text: Text, or its nearest shade that reads on the
	// background and on surfaces. Link (from Primary) and Nav (the menu
	// and the company name, from Secondary) are the same for theirs.
	Ink, Link, Nav string
	// Muted is secondary text, between Ink and the background yet
	// readable; Line is borders.
	Muted, Line string
	// Focus is the focus ring: Accent, or a shade of it that stands out
	// from the background and surfaces by 3:1.
	Focus string
	// Danger, Warning and Success are the portal's own red, amber and
	// green for messages and statuses, in shades readable on this
	// background.
	Danger, Warning, Success string
}

// The portal's own status colors, as drawn on a light background.
const (
	DangerColor  = "#b42318"
	WarningColor = "#b54708"
	SuccessColor = "#067647"
)

// schemeVersion changes whenever NewScheme derives other colors from the
// same palette.
const schemeVersion = "scheme-2\x00"

// NewScheme derives the portal's scheme from a palette of validated
// colors.
func NewScheme(p Palette) Scheme {
	s := Scheme{Palette: p, OnPrimary: OnColor(p.Primary), OnSecondary: OnColor(p.Secondary), OnAccent: OnColor(p.Accent)}
	s.Surface = White
	if OnColor(p.Background) == White {
		s.Surface = Mix(p.Background, White, 0.07)
	}
	s.Ink = Readable(p.Text, AAContrast, p.Background, s.Surface)
	s.Link = Readable(p.Primary, AAContrast, p.Background, s.Surface)
	s.Nav = Readable(p.Secondary, AAContrast, p.Background, s.Surface)
	s.Muted = Readable(Mix(s.Ink, p.Background, 0.4), AAContrast, p.Background, s.Surface)
	s.Line = Mix(s.Surface, s.Ink, 0.14)
	s.Focus = Readable(p.Accent, AALargeContrast, p.Background, s.Surface)
	s.Danger = Readable(DangerColor, AAContrast, p.Background, s.Surface)
	s.Warning = Readable(WarningColor, AAContrast, p.Background, s.Surface)
	s.Success = Readable(SuccessColor, AAContrast, p.Background, s.Surface)
	return s
}

// Pairing is one place where a tenant's color meets another: text on a
// background, a label on a button.
type Pairing struct {
	// Name says where the colors meet, as an owner would put it.
	Name string
	// Fields are the palette's colors the pairing depends on: primary,
	// secondary, accent, background, text.
	Fields []string
	Fg, Bg string
	Ratio  float64
	// Min is what level AA asks: 4.5 for text, 3 for controls.
	Min float64
	// Drawn is the shade the portal draws instead of Fg so that its pages
	// stay readable; empty when Fg itself is drawn.
	Drawn string
}

// OK reports whether the pairing meets level AA.
func (p Pairing) OK() bool { return p.Ratio >= p.Min }

// Warning says in plain words what is wrong with a pairing and what the
// portal does about it; empty when the pairing meets level AA.
func (p Pairing) Warning() string {
	if p.OK() {
		return ""
	}
	msg := fmt.Sprintf("%s: %s on %s is %s; WCAG AA asks at least %s.", p.Name, p.Fg, p.Bg, FormatRatio(p.Ratio), formatMin(p.Min))
	if p.Drawn != "" {
		msg += " The portal draws them in " + p.Drawn + " instead."
	}
	return msg
}

func formatMin(m float64) string {
	return strconv.FormatFloat(m, 'f', -1, 64) + ":1"
}

// CheckPalette checks every pairing of colors the portal's pages draw,
// against WCAG 2 level AA, in the order an owner would read them.
func CheckPalette(p Palette) []Pairing {
	s := NewScheme(p)
	pair := func(name string, fields []string, fg, bg string, min float64, drawn string) Pairing {
		if drawn == fg {
			drawn = ""
		}
		return Pairing{Name: name, Fields: fields, Fg: fg, Bg: bg, Ratio: ContrastRatio(fg, bg), Min: min, Drawn: drawn}
	}
	return []Pairing{
		pair("Text on the background", []string{"text", "background"}, p.Text, p.Background, AAContrast, s.Ink),
		pair("Links on the background", []string{"primary", "background"}, p.Primary, p.Background, AAContrast, s.Link),
		pair("Buttons against the background", []string{"primary", "background"}, p.Primary, p.Background, AALargeContrast, ""),
		pair("Button text on the primary color", []string{"primary"}, s.OnPrimary, p.Primary, AAContrast, ""),
		pair("Menu and company name on the background", []string{"secondary", "background"}, p.Secondary, p.Background, AAContrast, s.Nav),
		pair("Text on the secondary color", []string{"secondary"}, s.OnSecondary, p.Secondary, AAContrast, ""),
		pair("Focus ring against the background", []string{"accent", "background"}, p.Accent, p.Background, AALargeContrast, s.Focus),
		pair("Text on the accent color", []string{"accent"}, s.OnAccent, p.Accent, AAContrast, ""),
	}
}

// paletteFields name a palette's colors as forms and pages do.
var paletteFields = []string{"primary", "secondary", "accent", "background", "text"}

// PaletteFields are the names of a palette's colors, in order.
func PaletteFields() []string { return append([]string(nil), paletteFields...) }

// Color returns the palette's color named by field (see PaletteFields).
func (p Palette) Color(field string) string {
	switch field {
	case "primary":
		return p.Primary
	case "secondary":
		return p.Secondary
	case "accent":
		return p.Accent
	case "background":
		return p.Background
	case "text":
		return p.Text
	}
	return ""
}
