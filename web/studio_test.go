package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

// The branding preview draws each surface from the unsaved forms: the
// sign-in page and the dashboard with the typed company details, and each
// email with them too; a bad detail is named next to its field and the
// stored value is drawn meanwhile.
func TestBrandingPreviewSurfaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "admin@acme.example", tenancy.RoleAdmin)
	c := e.client("acme." + baseDomain)
	c.signIn("admin@acme.example", passwordOf("admin@acme.example"))
	c.get("/settings/branding")
	form := url.Values{"form": {"brand"}, "primary_color": {"#0f766e"}, "company_name": {"Acme Books"},
		"tagline": {"Books that balance"}, "support_email": {"help@acme.test"}, "support_url": {"help.acme.test"}}
	for _, tc := range []struct {
		surface string
		want    []string
	}{
		{"signin", []string{"Sign in to Acme Books", "Books that balance", "help@acme.test"}},
		{"dashboard", []string{"Acme Books", "Books that balance", "Plan limits"}},
		{"email:welcome", []string{"Your Acme Books account", "#0f766e", "mailto:help@acme.test"}},
		{"email:password_reset", []string{"Acme Books"}},
		{"nonsense", []string{"Sign in to Acme Books"}},
	} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("surface", tc.surface)
		resp, body := htmxPost(c, "/settings/branding/preview", f)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: preview %d\n%s", tc.surface, resp.StatusCode, body)
		}
		if got := textsIn(t, body, "detail-checks-support_url", "error-support_url"); len(got) != 1 || !strings.Contains(got[0], "https://") {
			t.Errorf("%s: support page error = %q", tc.surface, got)
		}
		resp, page := c.get(previewFrame(t, body))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: frame %d\n%s", tc.surface, resp.StatusCode, page)
		}
		for _, w := range tc.want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: the frame lacks %q:\n%s", tc.surface, w, page)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: frame CSP %q", tc.surface, csp)
		}
	}
	// Nothing was saved.
	if l, _ := e.server.Branding.Look(e.ctx, acme.ID); l.CompanyName == "Acme Books" || l.Contact.Tagline != "" {
		t.Errorf("the preview saved: %+v", l)
	}
}

