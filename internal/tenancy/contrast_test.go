package tenancy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

func TestOnColor(t *testing.T) {
	tests := []struct{ fill, want string }{
		{"#ffee88", tenancy.Black}, // the pale yellow that got white buttons
		{"#ff6b35", tenancy.Black}, // white on it is 2.84:1
		{"#0ea5e9", tenancy.Black},
		{"#4f46e5", tenancy.White},
		{"#1e293b", tenancy.White},
		{"#000000", tenancy.White},
		{"#ffffff", tenancy.Black},
		{"#777777", tenancy.Black}, // 4.69:1 against white's 4.48:1
		{"#757575", tenancy.White}, // the first grey down where white wins
	}
	for _, tt := range tests {
		got := tenancy.OnColor(tt.fill)
		if got != tt.want {
			t.Errorf("OnColor(%s) = %s, want %s", tt.fill, got, tt.want)
		}
		if r := tenancy.ContrastRatio(got, tt.fill); r < tenancy.AAContrast {
			t.Errorf("OnColor(%s) = %s reads at %s only", tt.fill, got, tenancy.FormatRatio(r))
		}
	}
	// Whatever the fill, the text chosen reads at level AA.
	for v := 0; v < 256; v += 5 {
		for _, fill := range []string{tenancy.Mix("#000000", "#ffffff", float64(v)/255), tenancy.Mix("#ff0000", "#00ff00", float64(v)/255), tenancy.Mix("#0000ff", "#ffff00", float64(v)/255)} {
			if r := tenancy.ContrastRatio(tenancy.OnColor(fill), fill); r < tenancy.AAContrast {
				t.Errorf("text on %s reads at %s", fill, tenancy.FormatRatio(r))
			}
		}
	}
}

func TestMix(t *testing.T) {
	tests := []struct {
		a, b string
		t    float64
		want string
	}{
		{"#000000", "#ffffff", 0, "#000000"},
		{"#000000", "#ffffff", 1, "#ffffff"},
		{"#000000", "#ffffff", 0.5, "#808080"},
		{"#ff6b35", "#000000", 0.25, "#bf5028"},
		{"#ff6b35", "#ffffff", 2, "#ffffff"},  // t is bounded
		{"#ff6b35", "#ffffff", -1, "#ff6b35"}, // both ways
		{"#F63", "#fff", 0, "#ff6633"},
	}
	for _, tt := range tests {
		if got := tenancy.Mix(tt.a, tt.b, tt.t); got != tt.want {
			t.Errorf("Mix(%s, %s, %v) = %s, want %s", tt.a, tt.b, tt.t, got, tt.want)
		}
	}
}

func TestReadable(t *testing.T) {
	tests := []struct {
		fg   string
		min  float64
		bgs  []string
		want string
	}{
		{"#4f46e5", 4.5, []string{"#ffffff"}, "#4f46e5"}, // reads already: kept
		{"#767676", 4.5, []string{"#ffffff"}, "#767676"},
		{"#777777", 4.5, []string{"#ffffff"}, "#757575"}, // the least darker shade
		{"#ffee88", 4.5, []string{"#f6f7fb", "#ffffff"}, "#787040"},
		{"#ff6b35", 4.5, []string{"#ffffff"}, "#c35229"},
		{"#0ea5e9", 3, []string{"#ffffff"}, "#0d9dde"},
		{"#4f46e5", 4.5, []string{"#000000"}, "#6b63e9"}, // lighter on a dark background
		{"#0f766e", 4.5, []string{"#0f172a", "#202739"}, "#4f9a95"},
		// No shade reads on both white and black at 4.5:1 (none beats
		// 4.58 on the worse): the best of black and white is taken.
		{"#808080", 7, []string{"#ffffff", "#000000"}, "#000000"},
	}
	for _, tt := range tests {
		got := tenancy.Readable(tt.fg, tt.min, tt.bgs...)
		if got != tt.want {
			t.Errorf("Readable(%s, %v, %v) = %s, want %s", tt.fg, tt.min, tt.bgs, got, tt.want)
		}
	}
}

func TestNewScheme(t *testing.T) {
	def := tenancy.NewScheme(tenancy.DefaultPalette)
	want := tenancy.Scheme{Palette: tenancy.DefaultPalette,
		OnPrimary: "#ffffff", OnSecondary: "#ffffff", OnAccent: "#000000",
		Surface: "#ffffff", Ink: "#1f2430", Link: "#4f46e5", Nav: "#1e293b", Muted: "#6e7179", Line: "#e0e0e2", Focus: "#0284c7",
		Danger: tenancy.DangerColor, Warning: tenancy.WarningColor, Success: tenancy.SuccessColor}
	if def != want {
		t.Errorf("default scheme = %+v\nwant %+v", def, want)
	}
	// Whatever the palette, the text the portal draws reads at AA on the
	// background and on surfaces, and on the fills it is drawn on.
	palettes := []tenancy.Palette{
		tenancy.DefaultPalette,
		{Primary: "#ffee88", Secondary: "#ffff00", Accent: "#ffffff", Background: "#ffffff", Text: "#eeeeee"},
		{Primary: "#000000", Secondary: "#111111", Accent: "#000000", Background: "#000000", Text: "#222222"},
		{Primary: "#14b8a6", Secondary: "#0f766e", Accent: "#0284c7", Background: "#0f172a", Text: "#e2e8f0"},
		{Primary: "#777777", Secondary: "#777777", Accent: "#777777", Background: "#777777", Text: "#777777"},
		{Primary: "#ff0000", Secondary: "#00ff00", Accent: "#0000ff", Background: "#ffff00", Text: "#ff00ff"},
	}
	for _, p := range palettes {
		s := tenancy.NewScheme(p)
		checks := []struct {
			name, fg, bg string
			min          float64
		}{
			{"ink on background", s.Ink, p.Background, 4.5}, {"ink on surface", s.Ink, s.Surface, 4.5},
			{"link on background", s.Link, p.Background, 4.5}, {"link on surface", s.Link, s.Surface, 4.5},
			{"nav on background", s.Nav, p.Background, 4.5}, {"nav on surface", s.Nav, s.Surface, 4.5},
			{"muted on background", s.Muted, p.Background, 4.5}, {"muted on surface", s.Muted, s.Surface, 4.5},
			{"on primary", s.OnPrimary, p.Primary, 4.5}, {"on secondary", s.OnSecondary, p.Secondary, 4.5},
			{"on accent", s.OnAccent, p.Accent, 4.5}, {"focus on background", s.Focus, p.Background, 3},
			{"danger on surface", s.Danger, s.Surface, 4.5}, {"warning on background", s.Warning, p.Background, 4.5},
			{"success on surface", s.Success, s.Surface, 4.5},
		}
		for _, c := range checks {
			if r := tenancy.ContrastRatio(c.fg, c.bg); r < c.min {
				t.Errorf("palette %+v: %s (%s on %s) is %s", p, c.name, c.fg, c.bg, tenancy.FormatRatio(r))
			}
		}
	}
	if s := tenancy.NewScheme(palettes[3]); s.Surface != "#202739" {
		t.Errorf("a dark background's surface is %s, want a lighter shade of it", s.Surface)
	}
}

func TestCheckPalette(t *testing.T) {
	failing := func(p tenancy.Palette) []string {
		var out []string
		for _, c := range tenancy.CheckPalette(p) {
			if !c.OK() {
				out = append(out, c.Name)
			}
		}
		return out
	}
	with := func(f func(*tenancy.Palette)) tenancy.Palette {
		p := tenancy.DefaultPalette
		f(&p)
		return p
	}
	tests := []struct {
		name string
		p    tenancy.Palette
		want []string
	}{
		{"the defaults", tenancy.DefaultPalette, nil},
		{"a pale yellow primary", with(func(p *tenancy.Palette) { p.Primary = "#ffee88" }),
			[]string{"Links on the background", "Buttons against the background"}},
		{"an orange primary", with(func(p *tenancy.Palette) { p.Primary = "#ff6b35" }),
			[]string{"Links on the background", "Buttons against the background"}},
		{"light grey text", with(func(p *tenancy.Palette) { p.Text, p.Background = "#777777", "#ffffff" }),
			[]string{"Text on the background"}},
		{"a pale secondary", with(func(p *tenancy.Palette) { p.Secondary = "#cbd5e1" }),
			[]string{"Menu and company name on the background"}},
		{"a pale accent", with(func(p *tenancy.Palette) { p.Accent = "#bae6fd" }),
			[]string{"Focus ring against the background"}},
		{"a dark background under dark colors", with(func(p *tenancy.Palette) { p.Background = "#000000" }),
			[]string{"Text on the background", "Links on the background", "Menu and company name on the background"}},
	}
	for _, tt := range tests {
		if got := failing(tt.p); !slices.Equal(got, tt.want) {
			t.Errorf("%s: failing pairings %q, want %q", tt.name, got, tt.want)
		}
	}

	// The pale yellow of the report: its warning names the colors, the
	// ratio, what AA asks and what the portal draws instead; its buttons
	// get black text.
	checks := tenancy.CheckPalette(with(func(p *tenancy.Palette) { p.Primary = "#ffee88" }))
	link, label := checks[1], checks[3]
	if w := link.Warning(); w != "Links on the background: #ffee88 on #f6f7fb is 1.09:1; WCAG AA asks at least 4.5:1. The portal draws them in #787040 instead." {
		t.Errorf("link warning = %q", w)
	}
	if !slices.Equal(link.Fields, []string{"primary", "background"}) {
		t.Errorf("link pairing fields = %q", link.Fields)
	}
	if label.Fg != tenancy.Black || !label.OK() || label.Warning() != "" {
		t.Errorf("button text on #ffee88 = %+v", label)
	}
	if w := checks[2].Warning(); !strings.HasSuffix(w, "WCAG AA asks at least 3:1.") {
		t.Errorf("button edge warning = %q", w)
	}
}

func TestResolveLookRule(t *testing.T) {
	teal := &tenancy.Theme{Primary: "#0d9488", Secondary: "#134e4a", Background: "#f0fdfa", Text: "#042f2e"}
	yellow := tenancy.Brand{Primary: "#ffee88", Secondary: "#854d0e", Accent: "#a16207"}
	def := tenancy.DefaultPalette
	tests := []struct {
		name  string
		brand tenancy.Brand
		theme *tenancy.Theme
		want  tenancy.Palette
	}{
		{"nothing set", tenancy.Brand{}, nil, def},
		{"brand colors without a theme", yellow, nil,
			tenancy.Palette{Primary: "#ffee88", Secondary: "#854d0e", Accent: "#a16207", Background: def.Background, Text: def.Text}},
		{"the active theme over the brand colors, the brand accent kept", yellow, teal,
			tenancy.Palette{Primary: "#0d9488", Secondary: "#134e4a", Accent: "#a16207", Background: "#f0fdfa", Text: "#042f2e"}},
		{"a theme without brand colors", tenancy.Brand{}, teal,
			tenancy.Palette{Primary: "#0d9488", Secondary: "#134e4a", Accent: def.Accent, Background: "#f0fdfa", Text: "#042f2e"}},
		{"a brand color that does not validate", tenancy.Brand{Primary: "red;}", Accent: "#ABC"}, nil,
			tenancy.Palette{Primary: def.Primary, Secondary: def.Secondary, Accent: "#aabbcc", Background: def.Background, Text: def.Text}},
		{"a theme color that does not validate", tenancy.Brand{Primary: "#111111"}, &tenancy.Theme{Primary: "x", Secondary: "#222222", Background: "#ffffff", Text: "#000000"},
			tenancy.Palette{Primary: "#111111", Secondary: "#222222", Accent: def.Accent, Background: "#ffffff", Text: "#000000"}},
	}
	for _, tt := range tests {
		if got := tenancy.ResolveLook(tt.brand, tt.theme, "Acme").Palette; got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	for _, f := range []string{"primary", "secondary"} {
		if !tenancy.ThemeSets(f) {
			t.Errorf("a theme does not set %s", f)
		}
	}
	if tenancy.ThemeSets("accent") {
		t.Error("a theme sets the accent")
	}
}
