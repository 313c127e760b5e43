package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nself/nself/internal/pgtest"
)

// The guide's white-label steps, as written.
func TestWhitelabelGuide(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	c.ok("tenant", "create", "Acme", "--slug", "acme")

	mustMatch(t, c.ok("whitelabel", "brand", "set", "acme", "--primary-color", "#FF6B35"),
		`^✓ Brand of acme updated$`, `^  primary_color: \(not set\) → #ff6b35$`)
	c.ok("whitelabel", "brand", "set", "acme", "--secondary-color", "#004E89")
	mustMatch(t, c.ok("whitelabel", "brand", "set", "acme", "--accent-color", "#0C6"), `^  accent_color: \(not set\) → #00cc66$`)
	mustMatch(t, c.ok("whitelabel", "brand", "set", "acme", "--accent-color", "#00cc66"), `^✓ Brand of acme unchanged$`)
	mustMatch(t, c.ok("whitelabel", "brand", "show", "acme"),
		`^  primary_color: #ff6b35$`, `^  secondary_color: #004e89$`, `^  accent_color: #00cc66$`, `^  background: #f6f7fb$`)

	mustMatch(t, c.ok("tenant", "setting", "set", "acme", "branding.company_name", "Acme Corporation"),
		`^✓ Setting branding.company_name of acme set to "Acme Corporation"$`)
	c.ok("tenant", "setting", "set", "acme", "branding.tagline", "Innovation Delivered")
	c.ok("tenant", "setting", "set", "acme", "contact.support_email", "support@acme.com")
	if got := c.ok("tenant", "setting", "get", "acme", "branding.tagline"); got != "Innovation Delivered\n" {
		t.Errorf("setting get = %q", got)
	}
	mustMatch(t, c.ok("tenant", "setting", "list", "acme"), `\AKEY +VALUE +UPDATED_AT\n`,
		`^branding\.company_name +"Acme Corporation" `, `^branding\.primary_color +"#ff6b35" `, `^contact\.support_email +"support@acme\.com" `)
	var settings []struct{ Key, Value string }
	if err := json.Unmarshal([]byte(c.ok("tenant", "setting", "list", "acme", "--json")), &settings); err != nil || len(settings) != 6 {
		t.Fatalf("setting list --json: %+v, %v", settings, err)
	}

	mustMatch(t, c.ok("whitelabel", "theme", "create", "acme", "Acme Light Theme",
		"--primary", "#FF6B35", "--secondary", "#004E89", "--background", "#FFFFFF", "--text", "#1A1A1A"),
		`^✓ Theme created: Acme Light Theme \(ID: acme-light-theme\)$`)
	// Light grey on white is hard to read: created, with a warning.
	out := c.ok("whitelabel", "theme", "create", "acme", "Pale", "--primary", "#000", "--secondary", "#000", "--background", "#fff", "--text", "#777")
	mustMatch(t, out, `^✓ Theme created: Pale \(ID: pale\)$`, `^! Warning: text #777777 on background #ffffff has a contrast of 4\.47:1; WCAG AA asks at least 4\.5:1`)
	mustMatch(t, c.ok("whitelabel", "theme", "activate", "acme", "acme-light"), `^✓ Theme activated: Acme Light Theme \(ID: acme-light-theme\)$`)
	mustMatch(t, c.ok("whitelabel", "theme", "list", "acme"),
		`\AACTIVE +ID +NAME +PRIMARY +SECONDARY +BACKGROUND +TEXT +CONTRAST\n─+\n`,
		`^\*       acme-light-theme  Acme Light Theme  #ff6b35  #004e89    #ffffff     #1a1a1a  17\.40:1$`,
		`^        pale              Pale              #000000  #000000    #ffffff     #777777  4\.47:1$`)
	mustMatch(t, c.ok("whitelabel", "brand", "show", "acme"), `^  background: #ffffff$`, `^  text: #1a1a1a$`)
	mustMatch(t, c.ok("whitelabel", "theme", "delete", "acme", "pale"), `^✓ Theme deleted: Pale \(ID: pale\)$`)
	if out := c.ok("whitelabel", "theme", "list", "acme"); strings.Contains(out, "pale") {
		t.Errorf("deleted theme still listed:\n%s", out)
	}

	// The active theme is edited, switched off (the brand colors apply
	// again), switched on and deleted.
	mustMatch(t, c.ok("whitelabel", "theme", "update", "acme", "acme-light-theme", "--name", "Acme Teal", "--primary", "#0D9488"),
		`^✓ Theme updated: Acme Teal \(ID: acme-light-theme\)$`)
	mustMatch(t, c.ok("whitelabel", "brand", "show", "acme"), `^  primary: #0d9488$`)
	mustMatch(t, c.ok("whitelabel", "theme", "deactivate", "acme", "acme-light-theme"),
		`^✓ Theme deactivated: Acme Teal \(ID: acme-light-theme\); acme's pages use the brand colors now$`)
	mustMatch(t, c.ok("whitelabel", "brand", "show", "acme"), `^  primary: #ff6b35$`, `^  background: #f6f7fb$`)
	c.ok("whitelabel", "theme", "activate", "acme", "acme-light-theme")
	mustMatch(t, c.ok("whitelabel", "theme", "delete", "acme", "acme-light-theme"),
		`^✓ Theme deleted: Acme Teal \(ID: acme-light-theme\)$`, `^  It was the active theme: acme's pages use the brand colors now\.$`)
	mustMatch(t, c.ok("whitelabel", "brand", "show", "acme"), `^  primary: #ff6b35$`)
}

// Every bad branding command is one line on stderr, exit 1 (2 for wrong
// usage), and changes nothing.
func TestWhitelabelBadInput(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	c.ok("whitelabel", "theme", "create", "acme", "Acme Light", "--primary", "#000", "--secondary", "#000", "--background", "#fff", "--text", "#000")
	c.ok("whitelabel", "theme", "create", "acme", "Acme Dark", "--primary", "#000", "--secondary", "#000", "--background", "#000", "--text", "#fff")
	c.ok("whitelabel", "theme", "activate", "acme", "acme-dark")
	theme := func(extra ...string) []string {
		return append([]string{"whitelabel", "theme", "create", "acme", "New"}, extra...)
	}
	colors := []string{"--primary", "#000", "--secondary", "#000", "--background", "#fff"}
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"whitelabel", "brand", "set", "nope", "--primary-color", "#fff"}, 1, `tenant "nope" not found`},
		{[]string{"whitelabel", "brand", "set", "acme", "--primary-color", "orange"}, 1, `primary_color "orange" is not a hex color`},
		{[]string{"whitelabel", "brand", "set", "acme", "--secondary-color", "#fff;}body{"}, 1, `secondary_color "#fff;}body{" is not a hex color`},
		{[]string{"whitelabel", "brand", "set", "acme", "--primary-color", "#fff", "--accent-color", "#12"}, 1, `accent_color "#12" is not a hex color`},
		{[]string{"whitelabel", "brand", "set", "acme"}, 2, "needs --primary-color, --secondary-color or --accent-color"},
		{[]string{"whitelabel", "brand", "show"}, 2, "takes 1 argument(s), got 0"},
		{theme(append(colors, "--text", "red")...), 1, `text "red" is not a hex color`},
		{theme(colors...), 2, "theme create needs --text"},
		{[]string{"whitelabel", "theme", "create", "acme", "!!!", "--primary", "#000", "--secondary", "#000", "--background", "#fff", "--text", "#000"}, 1, `needs a letter or digit`},
		{[]string{"whitelabel", "theme", "create", "acme", "acme light", "--primary", "#000", "--secondary", "#000", "--background", "#fff", "--text", "#000"}, 1, `a theme with the id "acme-light" already exists`},
		{[]string{"whitelabel", "theme", "activate", "acme", "acme"}, 1, `theme "acme" is ambiguous: it begins acme-dark, acme-light`},
		{[]string{"whitelabel", "theme", "activate", "acme", "zzz"}, 1, `no theme "zzz"`},
		{[]string{"whitelabel", "theme", "deactivate", "acme", "acme-light"}, 1, `theme "Acme Light" is not the active one`},
		{[]string{"whitelabel", "theme", "update", "acme", "acme-dark", "--primary", "teal"}, 1, `primary "teal" is not a hex color`},
		{[]string{"whitelabel", "theme", "update", "acme", "acme-d", "--primary", "#000"}, 1, `no theme "acme-d"`},
		{[]string{"whitelabel", "theme", "update", "acme", "acme-dark"}, 2, "theme update needs --name"},
		{[]string{"whitelabel", "theme", "delete", "acme", "acme-l"}, 1, `no theme "acme-l"`},
		{[]string{"whitelabel", "theme", "list"}, 2, "takes 1 argument(s), got 0"},
		{[]string{"whitelabel", "bogus"}, 2, `unknown command "bogus"`},
		{[]string{"tenant", "setting", "set", "acme", "contact.support_url", "http://acme.com"}, 1, `contact.support_url "http://acme.com" is not an https:// URL`},
		{[]string{"tenant", "setting", "set", "acme", "locale.timezone", "Mars/Base"}, 1, `locale.timezone "Mars/Base" is not an IANA time zone`},
		{[]string{"tenant", "setting", "set", "acme", "branding.company_name", "Acme\nCorp"}, 1, "must not contain control characters"},
		{[]string{"tenant", "setting", "set", "acme", "favourite.color", "blue"}, 1, `unknown setting "favourite.color"`},
		{[]string{"tenant", "setting", "set", "acme", "custom.Bad", "x"}, 1, `a custom key is custom. followed by`},
		{[]string{"tenant", "setting", "get", "acme", "contact.phone"}, 1, `setting "contact.phone" is not set`},
		{[]string{"tenant", "setting", "set", "acme", "custom.x"}, 2, "takes 3 argument(s), got 2"},
	}
	before := c.ok("whitelabel", "theme", "list", "acme", "--json") + c.ok("tenant", "setting", "list", "acme", "--json")
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := newCLI(t, urls).run("", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.err)
			}
			lines := strings.Split(strings.TrimRight(r.err, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.msg) {
				t.Errorf("stderr %q, want one line `error: …%s…`", r.err, tt.msg)
			}
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
		})
	}
	if after := c.ok("whitelabel", "theme", "list", "acme", "--json") + c.ok("tenant", "setting", "list", "acme", "--json"); after != before {
		t.Errorf("state changed:\n%s\nwant\n%s", after, before)
	}
}
