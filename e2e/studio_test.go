package e2e

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
)

// waitForFrame waits until the preview frame of the page (data-testid
// preview-frame) shows a document whose text holds every one of want, and
// returns that text and the frame's address. The frame is sandboxed, so it
// is read as a target of its own.
func (b *browser) waitForFrame(what string, want ...string) (text, src string) {
	b.t.Helper()
	var err error
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(150 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
		src, err = chromedp.Run(ctx, chromedp.Evaluate[string](
			`(document.querySelector('[data-testid=preview-frame]') || {}).src || ''`))
		if err == nil && src != "" {
			text, err = frameEval[string](ctx, src, `document.readyState === 'complete' && document.body ? document.body.innerText : ''`)
		}
		cancel()
		ok := err == nil
		for _, w := range want {
			ok = ok && strings.Contains(text, w)
		}
		if ok {
			return text, src
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: the preview frame (%s) never showed %q; it shows %q (%v)", what, src, want, text, err)
		}
	}
}

// An owner fills the company details: each field's mistake is said next
// to it in plain words as they type, the preview draws the sign-in page,
// the dashboard and the welcome email with the unsaved details, and once
// saved the details show on the tenant's own pages.
func TestCompanyDetails(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the branding page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-branding]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=details-form]`)),
	)
	if b.present(`[data-testid=setting-row][data-key="branding.company_name"]`) {
		t.Error("the page lists the raw branding.company_name setting")
	}
	// The company name field holds the stored name, not a key.
	if got := run(b, "read the company name", chromedp.Value(chromedp.ID(`company_name`))); got != "Acme Corporation" {
		t.Errorf("company name field holds %q", got)
	}

	b.do("type the details, one of them wrong",
		chromedp.Clear(chromedp.ID(`company_name`)),
		chromedp.SendKeys(chromedp.ID(`company_name`), "Acme Books"),
		chromedp.SendKeys(chromedp.ID(`tagline`), "Books that balance"),
		chromedp.SendKeys(chromedp.ID(`support_url`), "help.acme.test"),
		chromedp.WaitVisible(chromedp.CSS(`#detail-checks-support_url [data-testid=error-support_url]`)),
	)
	if msg := b.text(`[data-testid=error-support_url]`); !strings.Contains(msg, "beginning with https://") || strings.Contains(msg, "contact.") {
		t.Errorf("support page message = %q", msg)
	}
	b.waitForFrame("sign-in page preview", "Sign in to Acme Books", "Books that balance")

	b.do("show the dashboard, then the welcome email",
		chromedp.SendKeys(chromedp.ID(`preview-surface`), "Dashboard"),
	)
	if got := run(b, "read the surface", chromedp.Value(chromedp.ID(`preview-surface`))); got != "dashboard" {
		t.Fatalf("surface select holds %q", got)
	}
	b.waitForFrame("dashboard preview", "Acme Books", "Books that balance", "Plan limits")
	// The next choice is the first email: the down arrow, as a person
	// moves through a list.
	b.do("show the welcome email", chromedp.Focus(chromedp.ID(`preview-surface`)), chromedp.KeyEvent(kb.ArrowDown))
	if got := run(b, "read the surface", chromedp.Value(chromedp.ID(`preview-surface`))); got != "email:welcome" {
		t.Fatalf("surface select holds %q", got)
	}
	b.waitForFrame("welcome email preview", "Your Acme Books account")

	// Back to the dashboard, with the dark logo: it is drawn on a bar in
	// the secondary color, where a dark logo goes.
	b.do("show the dashboard with the dark logo",
		chromedp.KeyEvent(kb.ArrowUp),
		chromedp.Click(chromedp.CSS(`[data-testid=preview-logo-dark]`)),
	)
	var src string
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(150 * time.Millisecond) {
		_, src = b.waitForFrame("dashboard preview", "Plan limits")
		bar, err := frameEval[string](b.ctx, src, `getComputedStyle(document.querySelector('.topbar')).backgroundColor`)
		if err == nil && bar == "rgb(30, 41, 59)" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dark logo's preview bar is %q (%v), not the secondary color", bar, err)
		}
	}

	// Saving with the mistake saves nothing and says so at the field,
	// with a summary at the top of the page.
	b.do("save with the mistake",
		chromedp.Click(chromedp.CSS(`[data-testid=details-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-summary]`)),
	)
	if got := run(b, "read aria-invalid", chromedp.Evaluate[string](`document.getElementById('support_url').getAttribute('aria-invalid') || ''`)); got != "true" {
		t.Errorf("the wrong field is not marked invalid: %q", got)
	}
	if out := s.nself("", "tenant", "setting", "list", "acme"); strings.Contains(out, "Books that balance") {
		t.Errorf("a refused form saved a setting:\n%s", out)
	}
	b.do("correct the field and save",
		chromedp.Clear(chromedp.ID(`support_url`)),
		chromedp.SendKeys(chromedp.ID(`support_url`), "https://help.acme.test"),
		chromedp.SendKeys(chromedp.ID(`support_email`), "help@acme.test"),
		chromedp.Click(chromedp.CSS(`[data-testid=details-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)),
	)
	if b.present(`[data-testid=error-summary]`) {
		t.Error("the corrected form was refused")
	}
	b.do("open the dashboard",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-dashboard]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
	)
	if got := b.text(`[data-testid=tagline]`); got != "Books that balance" {
		t.Errorf("dashboard tagline = %q", got)
	}
	if got := b.text(`[data-testid=brand-name]`); !strings.HasSuffix(got, "Acme Books") {
		t.Errorf("brand name = %q", got)
	}
	if got := run(b, "read the support link", chromedp.Evaluate[string](`document.querySelector('[data-testid=support-url]').href`)); got != "https://help.acme.test/" {
		t.Errorf("support link = %q", got)
	}
	b.do("sign out", chromedp.Click(chromedp.CSS(`[data-testid=sign-out]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in]`)))
	if got := b.text(`[data-testid=sign-in] [data-testid=tagline]`); got != "Books that balance" {
		t.Errorf("sign-in tagline = %q", got)
	}
	if got := b.text(`[data-testid=support-email]`); got != "help@acme.test" {
		t.Errorf("sign-in support email = %q", got)
	}
}

// The preview's frame is drawn by whichever server process its request
// reaches: an owner edits an email on one process, and the frame's
// address, opened on a second process that never saw the edit, shows the
// unsaved text. Nothing is kept between the two requests.
func TestPreviewTwoProcs(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.serve()
	first := s.port
	s.serve()
	second := s.port
	s.port = first
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the welcome email on the first process",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-email-templates]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=email-template-row][data-name=welcome] [data-testid=email-template-edit]`)),
		chromedp.WaitVisible(chromedp.ID(`email-html`)),
		chromedp.Clear(chromedp.ID(`email-subject`)),
		chromedp.SendKeys(chromedp.ID(`email-subject`), "Fresh off the press"),
		chromedp.SendKeys(chromedp.ID(`email-html`), "<p>Unsaved paragraph 4711</p>"),
	)
	_, src := b.waitForFrame("email preview on the first process", "Unsaved paragraph 4711")
	if !strings.Contains(src, ":"+first+"/") {
		t.Fatalf("the frame %s is not on the first process", src)
	}
	// The session cookie is the host's, whatever the port: the second
	// process knows the same signed-in person.
	other := strings.Replace(src, ":"+first+"/", ":"+second+"/", 1)
	b.do("open the frame's address on the second process", chromedp.Navigate(other))
	body := run(b, "read the page", chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if !strings.Contains(body, "Unsaved paragraph 4711") {
		t.Errorf("the second process drew %q", body)
	}
	// A tampered address shows nothing.
	b.do("open a tampered address", chromedp.Navigate(strings.Replace(other, "d=", "d=A", 1)))
	if body := run(b, "read the page", chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`)); strings.Contains(body, "Unsaved paragraph") ||
		!strings.Contains(body, "expired") {
		t.Errorf("a tampered draft showed %q", body)
	}
}

// An owner saves an email (the page says so, for screen readers too) and
// sends themselves a test: it goes through the outbox and arrives as real
// mail does, in the tenant's colors, with the saved subject.
func TestTestEmail(t *testing.T) {
	t.Parallel()
	api := os.Getenv("MAILPIT_URL")
	for _, name := range []string{"SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "MAILPIT_URL"} {
		if os.Getenv(name) == "" {
			t.Fatalf("%s is not set: run `eval \"$(scripts/services.sh env)\"` first", name)
		}
	}
	s := newSite(t)
	s.env = append(s.env, "SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"),
		"SMTP_FROM="+os.Getenv("SMTP_FROM"))
	// mailpit is shared: an address of this test's own.
	owner := "owner-" + uuid.NewString()[:8] + "@acme.test"
	s.nself(ownerPassword+"\n", "tenant", "create", "Acme Corporation", "--slug", "acme",
		"--owner", owner, "--owner-password-stdin")
	s.nself("", "whitelabel", "brand", "set", "acme", "--primary-color", "#0f766e")
	s.serveOwnPort()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", owner, ownerPassword, `[data-testid=dashboard]`)
	// The welcome mail of the new account is in mailpit too; the test's
	// mail is told apart by its subject.
	b.do("open the quota warning email",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-email-templates]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=email-template-row][data-name=quota_warning] [data-testid=email-template-edit]`)),
		chromedp.WaitVisible(chromedp.ID(`email-subject`)),
		chromedp.Clear(chromedp.ID(`email-subject`)),
		chromedp.SendKeys(chromedp.ID(`email-subject`), "Test 4711 for {{TENANT_NAME}}"),
		chromedp.Click(chromedp.CSS(`[data-testid=email-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)),
	)
	// At 1280 px the body's field is wide and the preview stands beside it.
	layout := run(b, "measure the editor", chromedp.Evaluate[map[string]float64](`(() => {
		const a = document.getElementById('email-html').getBoundingClientRect();
		const p = document.getElementById('email-preview').getBoundingClientRect();
		return {width: a.width, right: a.right, previewLeft: p.left, previewTop: p.top, top: a.top};
	})()`))
	if layout["width"] < 400 || layout["previewLeft"] < layout["right"] || layout["previewTop"] > layout["top"] {
		t.Errorf("the editor is not beside its preview, or its field is narrow: %v", layout)
	}
	if role := run(b, "read the flash's role", chromedp.Evaluate[string](`document.querySelector('[data-testid=flash]').getAttribute('role')`)); role != "status" {
		t.Errorf("the saved message has role %q, which screen readers do not announce", role)
	}
	if got := b.text(`[data-testid=flash]`); !strings.Contains(got, "saved") {
		t.Errorf("flash after saving = %q", got)
	}
	if got := b.text(`[data-testid=email-test-to]`); got != owner {
		t.Errorf("the test goes to %q", got)
	}
	// The page after the click is the editor again, with a new message.
	b.do("send a test", chromedp.Click(chromedp.CSS(`[data-testid=email-test-send]`)))
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		got := run(b, "read the flash", chromedp.Evaluate[string](`(document.querySelector('[data-testid=flash]') || {}).textContent || ''`))
		if strings.Contains(got, "on its way to "+owner) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flash after the test = %q", got)
		}
	}
	m := awaitMailWithSubject(t, api, owner, "Test 4711 for Acme Corporation")
	if !strings.Contains(m.HTML, "#0f766e") {
		t.Errorf("the test mail is not in the tenant's primary color:\n%s", m.HTML)
	}
	if !strings.Contains(m.HTML, s.url("acme", "/billing")) {
		t.Errorf("the test mail's button does not lead to the tenant's billing page:\n%s", m.HTML)
	}
}

// awaitMailWithSubject polls mailpit, boundedly, for a message to to
// with the subject.
func awaitMailWithSubject(t *testing.T, api, to, subject string) mailpitMessage {
	t.Helper()
	var found struct {
		Messages []struct {
			ID      string
			Subject string
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(150 * time.Millisecond) {
		mailpitGet(t, api+"/api/v1/search?query="+url.QueryEscape("to:"+to), &found)
		for _, m := range found.Messages {
			if m.Subject == subject {
				var msg mailpitMessage
				mailpitGet(t, api+"/api/v1/message/"+m.ID, &msg)
				return msg
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail %q to %s arrived at mailpit; found %+v", subject, to, found.Messages)
		}
	}
}

// The owner's own pages say what a person needs: the only owner's row
// offers no control that would be refused and says why, and the API key
// list shows how a new key really begins.
func TestOwnerPagesSayWhy(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the members page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-members]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=member-list]`)),
	)
	if b.present(`[data-testid=member-remove]`) || b.present(`[data-testid=member-role-select]`) {
		t.Error("the only owner can be removed or demoted from the page")
	}
	if got := b.text(`[data-testid=member-last-owner]`); !strings.Contains(got, "only owner") {
		t.Errorf("the reason reads %q", got)
	}

	b.do("create a key",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-api-keys]`)),
		chromedp.WaitVisible(chromedp.ID(`name`)),
		chromedp.SendKeys(chromedp.ID(`name`), "CI deploys"),
		chromedp.Click(chromedp.CSS(`[data-testid=create-key]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-key]`)),
	)
	key := b.text(`[data-testid=new-key]`)
	start := strings.TrimSuffix(b.text(`[data-testid=key-start]`), "…")
	if !strings.HasPrefix(key, start) || !strings.HasPrefix(start, "nsk_") || len(start) < 40 {
		t.Errorf("the list says the key begins %q; the key is %q", start, key)
	}
}

// With a dark logo uploaded, the preview's Dark choice draws it, on the
// dark bar, where the Light choice draws the main logo.
func TestPreviewDarkLogo(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.withStorage()
	s.createAcme(ownerPassword)
	s.nself("", "whitelabel", "logo", "upload", "acme", writeLogoPNG(t, 40, 20), "--type", "main")
	s.nself("", "whitelabel", "logo", "upload", "acme", writeLogoPNG(t, 30, 30), "--type", "dark")
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the branding page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-branding]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=preview-controls]`)),
	)
	if b.present(`[data-testid=preview-controls] a[href="/settings/logos"]`) {
		t.Error("the switch asks for a dark logo that is uploaded")
	}
	logo := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(stepTimeout); ; time.Sleep(150 * time.Millisecond) {
			_, src := b.waitForFrame("sign-in preview", "Sign in to")
			got, err := frameEval[string](b.ctx, src, `(document.querySelector('[data-testid=brand-logo]') || {}).src || ''`)
			if err == nil && strings.Contains(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the preview's logo is %q (%v), want %s", got, err, want)
			}
		}
	}
	logo("/logo/main")
	b.do("choose the dark logo", chromedp.Click(chromedp.CSS(`[data-testid=preview-logo-dark]`)))
	logo("/logo/dark")
	b.do("choose the light logo", chromedp.Click(chromedp.CSS(`[data-testid=preview-logo-main]`)))
	logo("/logo/main")
}
