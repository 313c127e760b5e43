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
		// Scripts do not run in the frame: the menu is drawn as they
		// leave it on a narrow screen, behind its button.
		{"dashboard", []string{"Acme Books", "Books that balance", "Plan limits", `<nav class="menu collapsed"`, `aria-expanded="false"`}},
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
		// Nothing the sandbox would refuse (and the browser complain of).
		if strings.Contains(page, "<script") {
			t.Errorf("%s: the frame links scripts, which the sandbox refuses", tc.surface)
		}
	}
	// Nothing was saved.
	if l, _ := e.server.Branding.Look(e.ctx, acme.ID); l.CompanyName == "Acme Books" || l.Contact.Tagline != "" {
		t.Errorf("the preview saved: %+v", l)
	}
}

// The company details form saves all its fields or none: one bad field
// refuses the lot, with its message at the field and a summary at the top;
// saved, the details show on the sign-in page and in mail.
func TestCompanyDetailsSave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "admin@acme.example", tenancy.RoleAdmin)
	c := e.client("acme." + baseDomain)
	c.signIn("admin@acme.example", passwordOf("admin@acme.example"))
	c.get("/settings/branding")
	form := url.Values{"company_name": {"Acme Books"}, "tagline": {"Books that balance"},
		"support_email": {"not an address"}, "support_url": {"https://help.acme.test"}, "support_phone": {"+1 555 010 0000"}}
	resp, body := c.post("/settings/branding/details", form)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad details: %d", resp.StatusCode)
	}
	if got := textOf(t, body, "error-support_email"); !strings.Contains(got, "not an email address") || strings.Contains(got, "contact.") {
		t.Errorf("support email message = %q", got)
	}
	if got := textOf(t, body, "error-summary"); !strings.Contains(got, "Support email") {
		t.Errorf("summary = %q", got)
	}
	if l, _ := e.server.Branding.Look(e.ctx, acme.ID); l.Contact.Tagline != "" || l.CompanyName == "Acme Books" {
		t.Errorf("a refused form saved some fields: %+v", l)
	}
	form.Set("support_email", "help@acme.test")
	if resp, _ := c.post("/settings/branding/details", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("good details: %d", resp.StatusCode)
	}
	_, body = c.get("/settings/branding")
	if textOf(t, body, "flash") == "" {
		t.Error("no confirmation after saving")
	}
	for _, row := range byTestID(doc(t, body), "setting-row") {
		if k := attr(row, "data-key"); strings.HasPrefix(k, "branding.") || strings.HasPrefix(k, "contact.") {
			t.Errorf("the page lists %s by its key", k)
		}
	}
	visitor := e.client("acme." + baseDomain)
	_, page := visitor.get("/")
	if textOf(t, page, "tagline") != "Books that balance" || textOf(t, page, "support-email") != "help@acme.test" {
		t.Errorf("sign-in page: tagline %q, support %q", textOf(t, page, "tagline"), textOf(t, page, "support-email"))
	}
	// An empty field removes its setting.
	form.Set("tagline", "")
	c.get("/settings/branding")
	c.post("/settings/branding/details", form)
	if l, _ := e.server.Branding.Look(e.ctx, acme.ID); l.Contact.Tagline != "" || l.Contact.SupportURL != "https://help.acme.test" {
		t.Errorf("after clearing the tagline: %+v", l.Contact)
	}
}

// "Send me a test" puts the saved email in the outbox for the person
// asking, composed as real mail is; too many in a row are refused on the
// editor, in words.
func TestEmailTemplateSendTest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "admin@acme.example", tenancy.RoleAdmin)
	c := e.client("acme." + baseDomain)
	c.signIn("admin@acme.example", passwordOf("admin@acme.example"))
	e.server.Branding.SetBrand(e.ctx, acme.ID, tenancy.BrandUpdate{Primary: ptr("#0f766e")})
	c.get("/settings/emails/welcome")
	if resp, _ := c.post("/settings/emails/welcome", url.Values{"subject": {"Hello from {{TENANT_NAME}}"}, "html": {`<p>Hi {{USER_NAME}} <a href="{{ACTION_URL}}" style="color:{{PRIMARY_COLOR}}">go</a></p>`}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	_, body := c.get("/settings/emails/welcome")
	if f := byTestID(doc(t, body), "flash"); len(f) != 1 || attr(f[0], "role") != "status" || !strings.Contains(text(f[0]), "saved") {
		t.Errorf("no status after saving: %q", textOf(t, body, "flash"))
	}
	if resp, _ := c.post("/settings/emails/welcome/test", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("send test: %d", resp.StatusCode)
	}
	e.sendMail()
	var got []tenancy.Message
	for _, m := range e.mail.messages("welcome") {
		if m.Subject == "Hello from Acme Inc" {
			got = append(got, m)
		}
	}
	if len(got) != 1 || got[0].To != "admin@acme.example" || !strings.Contains(got[0].HTML, "#0f766e") ||
		!strings.Contains(got[0].HTML, "http://acme."+baseDomain) {
		t.Fatalf("test mail: %+v", got)
	}
	for range tenancy.TestMailLimit {
		c.post("/settings/emails/welcome/test", nil)
	}
	resp, body := c.post("/settings/emails/welcome/test", nil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(textOf(t, body, "error-test"), "wait a few minutes") {
		t.Errorf("over the limit: %d %q", resp.StatusCode, textOf(t, body, "error-test"))
	}
}

func ptr(s string) *string { return &s }
