package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

func brandingAdmin(t *testing.T, e *testEnv, slug string) *client {
	t.Helper()
	tn := e.mustTenant(slug)
	e.mustMember(tn, "admin@"+slug+".example", tenancy.RoleAdmin)
	c := e.client(slug + "." + baseDomain)
	c.signIn("admin@"+slug+".example", passwordOf("admin@"+slug+".example"))
	return c
}

func TestBrandingPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := brandingAdmin(t, e, "acme")
	resp, body := c.get("/settings/branding")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "brand-form")) != 1 {
		t.Fatalf("GET /settings/branding: %d\n%s", resp.StatusCode, body)
	}
	_, before := c.get("/brand.css")

	// Invalid colors: 422, the message next to the field, nothing saved.
	resp, body = c.post("/settings/branding/brand", url.Values{"primary_color": {"#fff;}body{"}, "accent_color": {"red"}})
	if resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(textOf(t, body, "error-primary_color"), "is not a hex color") ||
		!strings.Contains(textOf(t, body, "error-accent_color"), `"red" is not a hex color`) {
		t.Errorf("invalid colors: %d\n%s", resp.StatusCode, body)
	}

	// The preview reflects unsaved values, and saves nothing.
	_, body = c.post("/settings/branding/preview", url.Values{"primary_color": {"#FF6B35"}, "background": {"#fff"}, "text": {"#777"}})
	frame := byTestID(doc(t, body), "preview-frame")
	if len(frame) != 1 || !strings.Contains(attr(frame[0], "src"), "primary=%23ff6b35") || textOf(t, body, "preview-aa-warning") == "" {
		t.Fatalf("preview:\n%s", body)
	}
	resp, body = c.get(attr(frame[0], "src"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("preview frame: %d", resp.StatusCode)
	}
	css := ""
	for _, l := range strings.Split(body, "<link") {
		if strings.Contains(l, "/brand.css?") {
			css = l[strings.Index(l, "/brand.css?"):]
			css = strings.ReplaceAll(css[:strings.IndexByte(css, '"')], "&amp;", "&")
		}
	}
	if _, pcss := c.get(css); !strings.Contains(pcss, "--brand-primary:#ff6b35") || !strings.Contains(pcss, "--brand-text:#777777") {
		t.Errorf("preview css %s:\n%s", css, pcss)
	}
	if _, pcss := c.get("/brand.css?preview=1&primary=%23fff;}x{"); strings.Contains(pcss, "}x{") {
		t.Errorf("unvalidated preview color reached CSS:\n%s", pcss)
	}
	if _, now := c.get("/brand.css"); now != before {
		t.Errorf("preview changed /brand.css")
	}

	// Saving changes /brand.css and the stylesheet URL at once.
	_, page := c.get("/dashboard")
	resp, _ = c.post("/settings/branding/brand", url.Values{"primary_color": {"#FF6B35"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	if _, now := c.get("/brand.css"); !strings.Contains(now, "--brand-primary:#ff6b35") {
		t.Errorf("/brand.css after save:\n%s", now)
	}
	if _, page2 := c.get("/dashboard"); page2 == page || !strings.Contains(page2, "/brand.css?v=") {
		t.Errorf("stylesheet URL did not change")
	}

	// Themes and settings through the page.
	resp, body = c.post("/settings/branding/themes", url.Values{"name": {"Acme Light Theme"}, "primary": {"#000"}, "secondary": {"#000"}, "background": {"#fff"}, "text": {"nope"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "error-text") == "" {
		t.Errorf("bad theme: %d\n%s", resp.StatusCode, body)
	}
	c.post("/settings/branding/themes", url.Values{"name": {"Acme Light Theme"}, "primary": {"#000"}, "secondary": {"#000"}, "background": {"#fff"}, "text": {"#000"}})
	if resp, _ := c.post("/settings/branding/themes/acme-light-theme/activate", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("activate: %d", resp.StatusCode)
	}
	if _, now := c.get("/brand.css"); !strings.Contains(now, "--brand-background:#ffffff") || !strings.Contains(now, "--brand-primary:#ff6b35") {
		t.Errorf("/brand.css with theme and brand:\n%s", now)
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
	for _, action := range []string{"activate", "delete"} {
		if resp, _ := a.post("/settings/branding/themes/beta/"+action, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s beta's theme from acme: %d", action, resp.StatusCode)
		}
	}
	if th, _ := e.server.Branding.ListThemes(e.ctx, beta.ID); len(th) != 1 || th[0].Active {
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
