package tenancy_test

import (
	"math"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

func TestParseColor(t *testing.T) {
	good := map[string]string{
		"#FF6B35": "#ff6b35", "#ff6b35": "#ff6b35", "#F63": "#ff6633", " #abc ": "#aabbcc", "#ff6b35\n": "#ff6b35", "#000000": "#000000",
	}
	for in, want := range good {
		if got, err := tenancy.ParseColor("primary", in); err != nil || got != want {
			t.Errorf("ParseColor(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "   ", "FF6B35", "#FF6B3", "#FF6B355", "#ff6b35ff", "#abcd", "#gg0000", "#12345z",
		"red", "rgb(1,2,3)", "#fff;}", "#fff}body{", "#ff6b35;x:y", "#ff6b35 !important",
		"#ff\x006b35", "#ff 6b35", "＃ff6b35", "#ｆｆ6b35", "##ff6b3", "url(x)", "#ff6b35/**/",
	}
	for _, in := range bad {
		_, err := tenancy.ParseColor("primary", in)
		var e *tenancy.Error
		if err == nil || !asError(err, &e) || e.Code != tenancy.EINVALID || e.Field != "primary" || !strings.Contains(e.Message, "primary") {
			t.Errorf("ParseColor(%q) = %v; want an invalid-primary error", in, err)
		}
	}
}

func asError(err error, e **tenancy.Error) bool {
	x, ok := err.(*tenancy.Error)
	*e = x
	return ok
}

func TestContrast(t *testing.T) {
	tests := []struct {
		a, b string
		want float64
		aa   bool
	}{
		{"#000000", "#ffffff", 21, true},
		{"#ffffff", "#ffffff", 1, false},
		{"#777777", "#ffffff", 4.48, false}, // the classic just-too-light grey
		{"#767676", "#ffffff", 4.54, true},
		{"#1a1a1a", "#ffffff", 17.4, true},
		{"#ff6b35", "#ffffff", 2.84, false},
	}
	for _, tt := range tests {
		r := tenancy.ContrastRatio(tt.a, tt.b)
		if math.Abs(r-tt.want) > 0.01 {
			t.Errorf("ContrastRatio(%s, %s) = %.3f, want %.2f", tt.a, tt.b, r, tt.want)
		}
		if r2 := tenancy.ContrastRatio(tt.b, tt.a); r2 != r {
			t.Errorf("ContrastRatio is not symmetric for %s, %s", tt.a, tt.b)
		}
		if got := tenancy.MeetsAA(tt.a, tt.b); got != tt.aa {
			t.Errorf("MeetsAA(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
	if got := tenancy.FormatRatio(tenancy.ContrastRatio("#777777", "#ffffff")); got != "4.47:1" {
		t.Errorf("FormatRatio = %s", got)
	}
}

func TestNewTheme(t *testing.T) {
	th, err := tenancy.NewTheme{Name: "Acme Light Theme", Primary: "#FF6B35", Secondary: "#004E89", Background: "#FFF", Text: "#1A1A1A"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if th.ID != "acme-light-theme" || th.Primary != "#ff6b35" || th.Background != "#ffffff" || th.Text != "#1a1a1a" {
		t.Errorf("theme = %+v", th)
	}
	ok := tenancy.NewTheme{Name: "x", Primary: "#000", Secondary: "#000", Background: "#fff", Text: "#000"}
	tests := []struct {
		name  string
		edit  func(*tenancy.NewTheme)
		field string
	}{
		{"no name", func(n *tenancy.NewTheme) { n.Name = " " }, "name"},
		{"symbols only", func(n *tenancy.NewTheme) { n.Name = "!!!" }, "name"},
		{"newline in name", func(n *tenancy.NewTheme) { n.Name = "a\nb" }, "name"},
		{"bad primary", func(n *tenancy.NewTheme) { n.Primary = "orange" }, "primary"},
		{"bad secondary", func(n *tenancy.NewTheme) { n.Secondary = "#12" }, "secondary"},
		{"bad background", func(n *tenancy.NewTheme) { n.Background = "#fff;}" }, "background"},
		{"bad text", func(n *tenancy.NewTheme) { n.Text = "" }, "text"},
	}
	for _, tt := range tests {
		n := ok
		tt.edit(&n)
		_, err := n.Validate()
		var e *tenancy.Error
		if err == nil || !asError(err, &e) || e.Field != tt.field {
			t.Errorf("%s: err %v, want field %s", tt.name, err, tt.field)
		}
	}
}

func TestMatchTheme(t *testing.T) {
	themes := []*tenancy.Theme{{ID: "acme-light-theme", Name: "Acme Light Theme"}, {ID: "acme-dark", Name: "Acme Dark"}, {ID: "acme", Name: "Acme"}}
	for ref, want := range map[string]string{"acme-light": "acme-light-theme", "acme": "acme", "acme-d": "acme-dark", "ACME-DARK": "acme-dark",
		"Acme Light Theme": "acme-light-theme", "acme light theme": "acme-light-theme"} {
		th, err := tenancy.MatchTheme(themes, ref)
		if err != nil || th.ID != want {
			t.Errorf("MatchTheme(%q) = %v, %v; want %s", ref, th, err, want)
		}
	}
	if _, err := tenancy.MatchTheme(themes, "acme-"); tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := tenancy.MatchTheme(themes, "zzz"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("no match: %v", err)
	}
	// Changing and deleting take the id or the name, exactly; the error
	// names what a prefix would have found.
	for ref, want := range map[string]string{"acme-light-theme": "acme-light-theme", "Acme Dark": "acme-dark", "ACME": "acme"} {
		if th, err := tenancy.ExactTheme(themes, ref); err != nil || th.ID != want {
			t.Errorf("ExactTheme(%q) = %v, %v; want %s", ref, th, err, want)
		}
	}
	// An id wins over a name, which another theme may have taken since.
	renamed := []*tenancy.Theme{{ID: "azure", Name: "Blue"}, {ID: "blue", Name: "Navy"}, {ID: "teal", Name: "Sea"}, {ID: "sea-2", Name: "sea"}}
	if th, err := tenancy.ExactTheme(renamed, "blue"); err != nil || th.ID != "blue" {
		t.Errorf("an id that is another theme's name: %v, %v", th, err)
	}
	if _, err := tenancy.ExactTheme(renamed, "Sea"); tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), "two themes are named") {
		t.Errorf("a name two themes share: %v", err)
	}
	if _, err := tenancy.ExactTheme(themes, "acme-light"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND ||
		!strings.Contains(err.Error(), `no theme "acme-light"; did you mean acme-light-theme?`) {
		t.Errorf("a prefix: %v", err)
	}
}

func TestNormalizeSetting(t *testing.T) {
	good := []struct{ key, in, want string }{
		{"branding.company_name", " Acme Corporation ", "Acme Corporation"},
		{"branding.tagline", "Innovation Delivered", "Innovation Delivered"},
		{"branding.primary_color", "#FF6B35", "#ff6b35"},
		{"contact.support_email", "support@ACME.com", "support@acme.com"},
		{"contact.support_url", "https://acme.com/help?x=1", "https://acme.com/help?x=1"},
		{"contact.phone", "+1 (555) 010-0000", "+1 (555) 010-0000"},
		{"locale.timezone", "Europe/Berlin", "Europe/Berlin"},
		{"locale.language", "pt-BR", "pt-BR"},
		{"custom.feature_flags.beta-1", "line one\nline two", "line one\nline two"},
	}
	for _, tt := range good {
		if got, err := tenancy.NormalizeSetting(tt.key, tt.in); err != nil || got != tt.want {
			t.Errorf("NormalizeSetting(%s, %q) = %q, %v", tt.key, tt.in, got, err)
		}
	}
	bad := []struct{ key, in, field string }{
		{"branding.company_name", "", "branding.company_name"},
		{"branding.company_name", "Acme\nCorp", "branding.company_name"},
		{"branding.company_name", strings.Repeat("a", 201), "branding.company_name"},
		{"branding.tagline", strings.Repeat("a", 201), "branding.tagline"},
		{"branding.tagline", "a\tb", "branding.tagline"},
		{"branding.tagline", "\xff", "branding.tagline"},
		{"branding.primary_color", "orange", "branding.primary_color"},
		{"branding.secondary_color", "#fff;}", "branding.secondary_color"},
		{"branding.accent_color", "", "branding.accent_color"},
		{"contact.support_email", "support", "contact.support_email"},
		{"contact.support_email", "Support <s@acme.com>", "contact.support_email"},
		{"contact.support_url", "http://acme.com", "contact.support_url"},
		{"contact.support_url", "javascript:alert(1)", "contact.support_url"},
		{"contact.support_url", "https://", "contact.support_url"},
		{"contact.support_url", "https://user:pw@acme.com", "contact.support_url"},
		{"contact.support_url", "https://acme.com/\"><script>", "contact.support_url"},
		{"contact.support_url", "//acme.com", "contact.support_url"},
		{"contact.phone", "call me", "contact.phone"},
		{"contact.phone", "123", "contact.phone"},
		{"contact.phone", "1+555 0100", "contact.phone"},
		{"locale.timezone", "Mars/Olympus", "locale.timezone"},
		{"locale.timezone", "", "locale.timezone"},
		{"locale.timezone", "Local", "locale.timezone"},
		{"locale.timezone", "../../etc/passwd", "locale.timezone"},
		{"locale.language", "english", "locale.language"},
		{"branding.unknown", "x", "key"},
		{"theme", "x", "key"},
		{"", "x", "key"},
		{"custom.", "x", "key"},
		{"custom.UPPER", "x", "key"},
		{"custom.a b", "x", "key"},
		{"custom." + strings.Repeat("a", 61), "x", "key"},
		{"custom.ok", strings.Repeat("a", 2001), "custom.ok"},
		{"custom.ok", "a\x00b", "custom.ok"},
	}
	for _, tt := range bad {
		_, err := tenancy.NormalizeSetting(tt.key, tt.in)
		var e *tenancy.Error
		if err == nil || !asError(err, &e) || e.Code != tenancy.EINVALID || e.Field != tt.field {
			t.Errorf("NormalizeSetting(%q, %q) = %v; want invalid %s", tt.key, tt.in, err, tt.field)
		}
	}
}

func TestResolveLook(t *testing.T) {
	def := tenancy.ResolveLook(tenancy.Brand{}, nil, "")
	if def.Palette != tenancy.DefaultPalette || def.CompanyName != "" {
		t.Errorf("default look = %+v", def)
	}
	th := &tenancy.Theme{Primary: "#111111", Secondary: "#222222", Background: "#333333", Text: "#444444"}
	l := tenancy.ResolveLook(tenancy.Brand{Primary: "#ff6b35", Accent: "bad;}"}, th, "Acme")
	want := tenancy.Palette{Primary: "#111111", Secondary: "#222222", Accent: tenancy.DefaultPalette.Accent, Background: "#333333", Text: "#444444"}
	if l.Palette != want || l.CompanyName != "Acme" {
		t.Errorf("look = %+v, want %+v", l, want)
	}
	if l.Version == def.Version || tenancy.ResolveLook(tenancy.Brand{}, nil, "Acme").Version == def.Version {
		t.Error("version does not change with the look")
	}
}
