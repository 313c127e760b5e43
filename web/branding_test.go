package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/static"
)

func brandingAdmin(t *testing.T, e *testEnv, slug string) *client {
	t.Helper()
	tn := e.mustTenant(slug)
	e.mustMember(tn, "admin@"+slug+".example", tenancy.RoleAdmin)
	c := e.client(slug + "." + baseDomain)
	c.signIn("admin@"+slug+".example", passwordOf("admin@"+slug+".example"))
	return c
}

// frameCSS follows a preview frame to the stylesheet its page links, and
// returns that stylesheet.
func frameCSS(t *testing.T, c *client, frameSrc string) string {
	t.Helper()
	resp, body := c.get(frameSrc)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("preview frame %s: %d, CSP %q", frameSrc, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	var href string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "link" && strings.HasPrefix(attr(n, "href"), "/brand.css?") {
			href = attr(n, "href")
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc(t, body))
	if href == "" {
		t.Fatalf("the preview frame links no /brand.css:\n%s", body)
	}
	_, css := c.get(href)
	return css
}

// previewFrame is the src of the preview frame in a page or partial.
func previewFrame(t *testing.T, body string) string {
	t.Helper()
	frame := byTestID(doc(t, body), "preview-frame")
	if len(frame) != 1 {
		t.Fatalf("no preview frame in:\n%s", body)
	}
	return attr(frame[0], "src")
}

// cssVar reads one custom property from a stylesheet.
func cssVar(css, name string) string {
	i := strings.Index(css, "--"+name+":")
	if i < 0 {
		return ""
	}
	v := css[i+len(name)+3:]
	return v[:strings.IndexAny(v, ";}")]
}

// texts are the texts of the elements with a data-testid inside the
// element with another.
func textsIn(t *testing.T, body, outer, inner string) []string {
	t.Helper()
	var out []string
	for _, o := range byTestID(doc(t, body), outer) {
		for _, n := range byTestID(o, inner) {
			out = append(out, strings.Join(strings.Fields(text(n)), " "))
		}
	}
	return out
}

// inputAttr is an attribute of the input with this id.
func inputAttr(t *testing.T, body, id, name string) string {
	t.Helper()
	var out string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "id") == id {
			out = attr(n, name)
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc(t, body))
	return out
}

func TestBrandingPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := brandingAdmin(t, e, "acme")
	resp, body := c.get("/settings/branding")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "brand-form")) != 1 {
		t.Fatalf("GET /settings/branding: %d\n%s", resp.StatusCode, body)
	}
	if got := textOf(t, body, "look-source"); got != "In use now: your brand colors (no theme is active)." {
		t.Errorf("look source = %q", got)
	}
	if got := textOf(t, body, "look-rule"); got != tenancy.LookRule {
		t.Errorf("the page states the rule as %q", got)
	}
	_, before := c.get("/brand.css")

	// Invalid colors: 422, the message next to the field, nothing saved.
	resp, body = c.post("/settings/branding/brand", url.Values{"primary_color": {"#fff;}body{"}, "accent_color": {"red"}})
	if resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(textOf(t, body, "error-primary_color"), "is not a color: write # and six digits") ||
		!strings.Contains(textOf(t, body, "error-accent_color"), `"red" is not a color`) ||
		len(byTestID(doc(t, body), "error-summary")) != 1 {
		t.Errorf("invalid colors: %d\n%s", resp.StatusCode, body)
	}

	// The live preview of a pale yellow primary: the warnings come out of
	// band into the field's checks, the pane lists what fails, and the
	// frame's stylesheet puts black text on the yellow and draws links in
	// a darker shade. Nothing is saved.
	_, body = c.post("/settings/branding/preview", url.Values{"form": {"brand"}, "primary_color": {"#FFEE88"}, "secondary_color": {""}, "accent_color": {""}})
	checks := byTestID(doc(t, body), "checks-primary_color")
	if len(checks) != 1 || attr(checks[0], "hx-swap-oob") != "true" {
		t.Fatalf("no out-of-band checks for the primary color:\n%s", body)
	}
	warnings := textsIn(t, body, "checks-primary_color", "contrast-warning")
	if len(warnings) != 2 || !strings.HasPrefix(warnings[0], "Links on the background: #ffee88 on #f6f7fb is 1.09:1") ||
		!strings.HasPrefix(warnings[1], "Buttons against the background: #ffee88 on #f6f7fb is 1.09:1") {
		t.Errorf("warnings next to the primary color: %q", warnings)
	}
	if w := textsIn(t, body, "checks-secondary_color", "contrast-warning"); len(w) != 0 {
		t.Errorf("warnings next to the secondary color: %q", w)
	}
	if got := textOf(t, body, "preview-aa-warning"); got != "2 pairings are below WCAG AA" {
		t.Errorf("preview summary = %q", got)
	}
	css := frameCSS(t, c, previewFrame(t, body))
	for name, want := range map[string]string{"brand-primary": "#ffee88", "brand-on-primary": "#000000", "brand-link": "#787040", "brand-background": "#f6f7fb"} {
		if got := cssVar(css, name); got != want {
			t.Errorf("preview --%s = %q, want %s\n%s", name, got, want, css)
		}
	}
	if _, pcss := c.get("/brand.css?preview=1&primary=%23fff;}x{"); strings.Contains(pcss, "}x{") {
		t.Errorf("unvalidated preview color reached CSS:\n%s", pcss)
	}
	if _, now := c.get("/brand.css"); now != before {
		t.Errorf("preview changed /brand.css")
	}
	// A color half typed is named next to its field, and the preview
	// keeps the stored one.
	_, body = c.post("/settings/branding/preview", url.Values{"form": {"brand"}, "primary_color": {"#ff"}})
	if got := textsIn(t, body, "checks-primary_color", "error-primary_color"); len(got) != 1 || !strings.Contains(got[0], `"#ff" is not a color`) {
		t.Errorf("half-typed color: %q", got)
	}
	if got := cssVar(frameCSS(t, c, previewFrame(t, body)), "brand-primary"); got != tenancy.DefaultPalette.Primary {
		t.Errorf("half-typed color previewed as %q", got)
	}

	// Saving changes /brand.css and the stylesheet URL at once; the page
	// then shows the warnings next to the saved color.
	_, page := c.get("/dashboard")
	resp, _ = c.post("/settings/branding/brand", url.Values{"primary_color": {"#FF6B35"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	_, now := c.get("/brand.css")
	if cssVar(now, "brand-primary") != "#ff6b35" || cssVar(now, "brand-on-primary") != "#000000" {
		t.Errorf("/brand.css after save:\n%s", now)
	}
	if _, page2 := c.get("/dashboard"); page2 == page || !strings.Contains(page2, "/brand.css?v=") {
		t.Errorf("stylesheet URL did not change")
	}
	_, body = c.get("/settings/branding")
	if w := textsIn(t, body, "checks-primary_color", "contrast-warning"); len(w) == 0 || !strings.Contains(w[0], "#ff6b35") {
		t.Errorf("saved primary's warnings: %q", w)
	}
	// An empty field shows, as its placeholder, the color it leaves in use.
	if v, ph := inputAttr(t, body, "secondary_color", "value"), inputAttr(t, body, "secondary_color", "placeholder"); v != "" || ph != tenancy.DefaultPalette.Secondary {
		t.Errorf("secondary field: value %q placeholder %q", v, ph)
	}

	// The settings by name say which names there are, and what each holds.
	if known := textOf(t, body, "known-settings"); !strings.Contains(known, "IANA time zone") || !strings.Contains(known, "custom.NAME") {
		t.Errorf("the known settings listed: %q", known)
	}

	resp, body = c.post("/settings/branding/settings", url.Values{"key": {"contact.support_url"}, "value": {"http://x.example"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "error-value") == "" {
		t.Errorf("bad setting: %d\n%s", resp.StatusCode, body)
	}
	c.post("/settings/branding/settings", url.Values{"key": {"branding.company_name"}, "value": {"Acme Corporation"}})
	if _, body := c.get("/dashboard"); !strings.Contains(textOf(t, body, "brand-name"), "Acme Corporation") {
		t.Errorf("company name not shown: %q", textOf(t, body, "brand-name"))
	}
}

// A theme previews as it activates: the stylesheet of the preview frame
// is the one the pages get once the theme is active, brand colors set or
// not. Themes are created, edited, deactivated and deleted through the
// page, the active one included, and the page says what each does.
func TestThemeLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := brandingAdmin(t, e, "acme")
	c.get("/settings/branding")
	c.post("/settings/branding/brand", url.Values{"primary_color": {"#ffee88"}, "accent_color": {"#a16207"}})

	// The editor of a new theme, with its live preview.
	resp, body := c.get("/settings/branding/themes/new")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "theme-form")) != 1 || len(byTestID(doc(t, body), "preview-frame")) != 1 {
		t.Fatalf("new theme page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = c.post("/settings/branding/themes", url.Values{"name": {"Teal"}, "primary": {"#0d9488"}, "secondary": {"#134e4a"}, "background": {"#f0fdfa"}, "text": {"nope"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "error-text") == "" || len(byTestID(doc(t, body), "theme-form")) != 1 {
		t.Errorf("bad theme: %d\n%s", resp.StatusCode, body)
	}
	_, body = c.post("/settings/branding/preview", url.Values{"form": {"theme"}, "name": {"Teal"}, "primary": {"#0d9488"}, "secondary": {"#134e4a"}, "background": {"#f0fdfa"}, "text": {"#99f6e4"}})
	if w := textsIn(t, body, "checks-text", "contrast-warning"); len(w) != 1 || !strings.HasPrefix(w[0], "Text on the background: #99f6e4 on #f0fdfa") {
		t.Errorf("pale text's warning: %q\n%s", w, body)
	}
	if resp, _ := c.post("/settings/branding/themes", url.Values{"name": {"Teal"}, "primary": {"#0d9488"}, "secondary": {"#134e4a"}, "background": {"#f0fdfa"}, "text": {"#042f2e"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", resp.StatusCode)
	}

	// Preview the stored theme, then activate it: the preview's
	// stylesheet is the page's, declaration for declaration.
	_, body = c.get("/settings/branding")
	if got := byTestID(doc(t, body), "theme-row"); len(got) != 1 || attr(got[0], "data-theme") != "teal" {
		t.Fatalf("theme list:\n%s", body)
	}
	resp, body = c.get("/settings/branding/preview?theme=teal")
	if resp.StatusCode != http.StatusOK || !strings.Contains(textOf(t, body, "branding-preview"), "as activating it will look") {
		t.Fatalf("theme preview: %d\n%s", resp.StatusCode, body)
	}
	previewed := frameCSS(t, c, previewFrame(t, body))
	if cssVar(previewed, "brand-primary") != "#0d9488" || cssVar(previewed, "brand-accent") != "#a16207" {
		t.Errorf("the theme's preview: %s", previewed)
	}
	if resp, _ := c.post("/settings/branding/themes/teal/activate", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("activate: %d", resp.StatusCode)
	}
	if _, now := c.get("/brand.css"); now != previewed {
		t.Errorf("activated:\n%s\npreviewed:\n%s", now, previewed)
	}
	_, body = c.get("/settings/branding")
	if got := textOf(t, body, "look-source"); got != "In use now: theme Teal , with your brand accent." {
		t.Errorf("look source = %q", got)
	}
	// The brand primary waits: the page says why, next to it.
	if got := textsIn(t, body, "checks-primary_color", "color-note"); len(got) != 1 || !strings.Contains(got[0], `Theme "Teal" is active`) {
		t.Errorf("note next to the brand primary: %q", got)
	}
	if got := textsIn(t, body, "checks-accent_color", "color-note"); len(got) != 0 {
		t.Errorf("note next to the brand accent: %q", got)
	}
	// An empty brand color still falls back to the platform's, which the
	// pages show once no theme is active: not the theme's.
	if ph := inputAttr(t, body, "secondary_color", "placeholder"); ph != tenancy.DefaultPalette.Secondary {
		t.Errorf("with a theme active, the empty secondary field's placeholder is %q", ph)
	}

	// Editing the active theme changes the pages at once.
	resp, body = c.get("/settings/branding/themes/teal/edit")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `value="#0d9488"`) {
		t.Fatalf("edit page: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = c.post("/settings/branding/themes/teal", url.Values{"name": {"Deep teal"}, "primary": {"#115e59"}, "secondary": {"#134e4a"}, "background": {"#f0fdfa"}, "text": {"#042f2e"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("update: %d", resp.StatusCode)
	}
	if _, now := c.get("/brand.css"); cssVar(now, "brand-primary") != "#115e59" {
		t.Errorf("after editing the active theme:\n%s", now)
	}
	if resp, body := c.post("/settings/branding/themes/teal", url.Values{"name": {"Deep teal"}, "primary": {"teal"}, "secondary": {"#134e4a"}, "background": {"#f0fdfa"}, "text": {"#042f2e"}}); resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "error-primary") == "" {
		t.Errorf("bad edit: %d\n%s", resp.StatusCode, body)
	}

	// Deactivating brings the brand colors back.
	resp, _ = c.post("/settings/branding/themes/teal/deactivate", nil)
	if _, body := c.get("/settings/branding"); resp.StatusCode != http.StatusSeeOther || textOf(t, body, "flash") != "Theme Deep teal is no longer active: the pages use the brand colors." {
		t.Errorf("deactivate: %d %q", resp.StatusCode, textOf(t, body, "flash"))
	}
	if _, now := c.get("/brand.css"); cssVar(now, "brand-primary") != "#ffee88" {
		t.Errorf("after deactivating:\n%s", now)
	}
	if resp, _ := c.post("/settings/branding/themes/teal/deactivate", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("deactivate again: %d", resp.StatusCode)
	}

	// Deleting asks first, and says what deleting the active theme does.
	c.post("/settings/branding/themes/teal/activate", nil)
	_, body = c.get("/settings/branding")
	confirm := textOf(t, body, "theme-delete-confirm")
	if !strings.Contains(confirm, "Delete theme Deep teal ?") || !strings.Contains(confirm, "the pages go back to your brand colors") {
		t.Errorf("delete confirmation: %q", confirm)
	}
	for _, n := range byTestID(doc(t, body), "theme-delete-confirm") {
		if n.Data != "details" || hasAttr(n, "open") {
			t.Errorf("the confirmation is open before Delete is clicked")
		}
	}
	resp, _ = c.post("/settings/branding/themes/teal/delete", nil)
	if _, body := c.get("/settings/branding"); resp.StatusCode != http.StatusSeeOther ||
		textOf(t, body, "flash") != "Theme Deep teal deleted. It was active: the pages use the brand colors now." ||
		len(byTestID(doc(t, body), "no-themes")) != 1 {
		t.Errorf("delete the active theme: %d %q", resp.StatusCode, textOf(t, body, "flash"))
	}
	if _, now := c.get("/brand.css"); cssVar(now, "brand-primary") != "#ffee88" {
		t.Errorf("after deleting the active theme:\n%s", now)
	}
	if resp, _ := c.get("/settings/branding/themes/teal/edit"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("edit a deleted theme: %d", resp.StatusCode)
	}
}

// The stylesheet's defaults in static/app.css are the scheme of the
// default palette, so a page without a tenant stylesheet (the console)
// looks as a tenant that set nothing.
func TestAppCSSDefaultsMatchDefaultScheme(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustTenant("acme")
	c := e.client("acme." + baseDomain)
	_, brand := c.get("/brand.css")
	app, err := static.FS.ReadFile("app.css")
	if err != nil {
		t.Fatal(err)
	}
	root := string(app)[strings.Index(string(app), ":root {"):]
	root = root[:strings.Index(root, "}")]
	decls := strings.Split(strings.Trim(strings.TrimSpace(brand), ":root{}"), ";")
	if len(decls) < 15 {
		t.Fatalf("/brand.css: %s", brand)
	}
	for _, d := range decls {
		name, value, _ := strings.Cut(d, ":")
		if !strings.Contains(root, name+": "+value+";") {
			t.Errorf("app.css's :root lacks %s: %s", name, value)
		}
	}
}

func TestBrandingAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := brandingAdmin(t, e, "acme")
	beta := e.mustTenant("beta")
	for _, role := range []tenancy.Role{tenancy.RoleMember, tenancy.RoleGuest} {
		email := string(role) + "@beta.example"
		e.mustMember(beta, email, role)
		c := e.client("beta." + baseDomain)
		c.signIn(email, passwordOf(email))
		if resp, _ := c.get("/settings/branding"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s GET: %d", role, resp.StatusCode)
		}
		if resp, _ := c.post("/settings/branding/brand", url.Values{"primary_color": {"#000"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s POST: %d", role, resp.StatusCode)
		}
	}
	// Acme's admin changes acme only.
	a.get("/settings/branding")
	if resp, _ := a.post("/settings/branding/brand", url.Values{"primary_color": {"#123456"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	b := e.client("beta." + baseDomain)
	if _, css := b.get("/brand.css"); strings.Contains(css, "#123456") {
		t.Errorf("beta's css has acme's color:\n%s", css)
	}
	if _, css := a.get("/brand.css"); !strings.Contains(css, "#123456") {
		t.Errorf("acme's css lacks its color:\n%s", css)
	}
	// A theme of beta is not there for acme's admin.
	if _, err := e.server.Branding.CreateTheme(e.ctx, beta.ID, tenancy.NewTheme{Name: "Beta", Primary: "#000", Secondary: "#000", Background: "#fff", Text: "#000"}); err != nil {
		t.Fatal(err)
	}
	a.get("/settings/branding")
	for _, action := range []string{"activate", "deactivate", "delete"} {
		if resp, _ := a.post("/settings/branding/themes/beta/"+action, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s beta's theme from acme: %d", action, resp.StatusCode)
		}
	}
	if resp, _ := a.post("/settings/branding/themes/beta", url.Values{"name": {"Mine"}, "primary": {"#111"}, "secondary": {"#000"}, "background": {"#fff"}, "text": {"#000"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("edit beta's theme from acme: %d", resp.StatusCode)
	}
	for _, path := range []string{"/settings/branding/themes/beta/edit", "/settings/branding/preview?theme=beta"} {
		if resp, _ := a.get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s from acme: %d", path, resp.StatusCode)
		}
	}
	if th, _ := e.server.Branding.ListThemes(e.ctx, beta.ID); len(th) != 1 || th[0].Active || th[0].Name != "Beta" {
		t.Errorf("beta's themes changed: %+v", th)
	}
	// /brand.css answers a matching ETag with 304.
	resp, _ := a.get("/brand.css")
	req, _ := http.NewRequest(http.MethodGet, a.url("/brand.css"), nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if resp, _ := a.do(req); resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") == "" {
		t.Errorf("conditional /brand.css: %d", resp.StatusCode)
	}
}
