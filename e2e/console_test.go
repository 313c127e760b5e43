package e2e

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
)

const adminPassword = "platform admin password"

// selectAll is Ctrl+A, as a person selects a field's text to type over it.
var selectAll = chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl))

// consoleSite is a site with a platform administrator, its server started.
func consoleSite(t *testing.T, mail bool) *site {
	t.Helper()
	s := newSite(t)
	if mail {
		for _, name := range []string{"SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "MAILPIT_URL"} {
			if os.Getenv(name) == "" {
				t.Fatalf("%s is not set: run `eval \"$(scripts/services.sh env)\"` first", name)
			}
		}
		s.env = append(s.env, "SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"),
			"SMTP_FROM="+os.Getenv("SMTP_FROM"))
	}
	s.nself(adminPassword+"\n", "admin", "create", "admin@platform.test", "--password-stdin")
	return s
}

// waitText waits, within stepTimeout, until the element sel shows want:
// after a click that posts a form, the page before may still be showing.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.trim() === %q; })()`, sel, want)
	for deadline := time.Now().Add(stepTimeout); !run(b, "read "+sel, chromedp.Evaluate[bool](js)); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed %q; it shows %q", sel, want, b.text(sel))
		}
	}
}

// awaitMails polls mailpit, boundedly, until n messages to to arrived, and
// returns them.
func awaitMails(t *testing.T, api, to string, n int) []mailpitMessage {
	t.Helper()
	var found struct {
		Messages []struct{ ID string }
	}
	for deadline := time.Now().Add(15 * time.Second); len(found.Messages) < n; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d mails to %s arrived at mailpit, want %d", len(found.Messages), to, n)
		}
		mailpitGet(t, api+"/api/v1/search?query="+url.QueryEscape("to:"+to), &found)
	}
	out := make([]mailpitMessage, len(found.Messages))
	for i, m := range found.Messages {
		mailpitGet(t, api+"/api/v1/message/"+m.ID, &out[i])
	}
	return out
}

// An administrator creates a tenant with an owner's email in the console;
// the owner gets a welcome and a link to choose a password by mail (never
// on the administrator's screen), chooses one through it, and signs in.
// The tenant's page lists the owner among its members.
func TestConsoleTenantOwnerGetsTheirLink(t *testing.T) {
	t.Parallel()
	s := consoleSite(t, true)
	s.serveOwnPort()
	b := newBrowser(t)
	slug := "globex-" + uuid.NewString()[:6]
	owner := "owner-" + uuid.NewString()[:8] + "@example.test"

	b.signIn(s.url("admin", "/"), "admin-sign-in", "admin@platform.test", adminPassword, `[data-testid=tenant-list]`)
	b.do("fill the new tenant form",
		chromedp.Click(chromedp.CSS(`[data-testid=new-tenant]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-tenant-form]`)),
		chromedp.SendKeys(chromedp.ID(`name`), "Globex Corporation"),
		chromedp.SendKeys(chromedp.ID(`slug`), slug),
		chromedp.SendKeys(chromedp.ID(`owner`), owner),
		chromedp.Click(chromedp.CSS(`[data-testid=create-tenant]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=tenant-detail]`)),
	)
	flash := b.text(`[data-testid=flash]`)
	if !strings.Contains(flash, owner) || !strings.Contains(flash, "link to choose a password") || strings.Contains(flash, "token") {
		t.Errorf("flash after create: %q", flash)
	}
	if got := b.text(`[data-testid=detail-owner]`); got != owner {
		t.Errorf("owner shown as %q, want %s", got, owner)
	}
	if got := b.text(`[data-testid=tenant-member-role]`); got != "owner" {
		t.Errorf("the members section shows the owner as %q", got)
	}

	var link string
	linkRE := regexp.MustCompile(regexp.QuoteMeta(s.url(slug, "/password/set?token=")) + `[A-Za-z0-9_%-]+`)
	for _, m := range awaitMails(t, os.Getenv("MAILPIT_URL"), owner, 2) {
		if l := linkRE.FindString(m.Text); l != "" {
			link = l
		}
	}
	if link == "" {
		t.Fatalf("no mail to %s holds a link to set the password", owner)
	}
	const password = "globex owner password 1"
	b.do("choose a password through the mailed link",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=set-password]`)),
		chromedp.SendKeys(chromedp.ID(`password`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=set-password] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in]`)),
	)
	b.signIn(s.url(slug, "/"), "sign-in", owner, password, `[data-testid=dashboard]`)
}

// Organizations are managed in the console by clicks: created, given a
// tenant, renamed, the tenant removed (after a confirmation that can be
// declined), and deleted after a confirmation page.
func TestConsoleManagesOrganizations(t *testing.T) {
	t.Parallel()
	s := consoleSite(t, false)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	d := b.answerDialogs()

	b.signIn(s.url("admin", "/"), "admin-sign-in", "admin@platform.test", adminPassword, `[data-testid=tenant-list]`)
	b.do("open organizations",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-orgs]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=orgs-empty]`)),
	)
	// An empty name is said next to the field, tied to it.
	b.do("create with no name",
		chromedp.Click(chromedp.CSS(`[data-testid=create-org]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-name]`)),
	)
	if got := run(b, "read the name field's description", chromedp.Evaluate[string](
		`(() => { const i = document.getElementById('org-name'); return i.getAttribute('aria-invalid') + ' ' + document.getElementById(i.getAttribute('aria-describedby')).textContent.trim(); })()`)); !strings.HasPrefix(got, "true ") || len(got) < 8 {
		t.Errorf("the name field is not tied to its error: %q", got)
	}
	// Once the field is changed, its error is about an old value, and goes.
	b.do("type a name", chromedp.SendKeys(chromedp.ID(`org-name`), "Acme Group"))
	if b.present(`[data-testid=error-name]`) || run(b, "read the field's state", chromedp.Evaluate[bool](
		`document.getElementById('org-name').hasAttribute('aria-invalid')`)) {
		t.Error("the name's error stays after the name is typed")
	}
	b.do("create an organization",
		chromedp.Click(chromedp.CSS(`[data-testid=create-org]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=org-detail]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=org-tenants-empty]`)),
	)
	b.do("add a tenant that does not exist",
		chromedp.SendKeys(chromedp.ID(`add-tenant`), "nope"),
		chromedp.Click(chromedp.CSS(`[data-testid=org-add-tenant]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-tenant]`)),
	)
	b.do("add acme",
		chromedp.Click(chromedp.ID(`add-tenant`)),
		selectAll, chromedp.KeyEvent("\b"),
		chromedp.SendKeys(chromedp.ID(`add-tenant`), "acme"),
		chromedp.Click(chromedp.CSS(`[data-testid=org-add-tenant]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=org-tenant]`)),
	)
	if got := b.text(`[data-testid=org-tenant] a`); got != "Acme Corporation" {
		t.Errorf("tenant listed as %q", got)
	}
	b.do("rename it",
		chromedp.Click(chromedp.ID(`rename-name`)),
		selectAll, chromedp.KeyEvent("\b"),
		chromedp.SendKeys(chromedp.ID(`rename-name`), "Acme Holdings"),
		chromedp.Click(chromedp.CSS(`[data-testid=rename-org]`)),
	)
	b.waitText(`[data-testid=org-name]`, "Acme Holdings")

	// The tenant's own page names its organization.
	b.do("open the tenant from the organization",
		chromedp.Click(chromedp.CSS(`[data-testid=org-tenant] a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=tenant-detail]`)),
	)
	if got := b.text(`[data-testid=detail-orgs]`); got != "Acme Holdings" {
		t.Errorf("the tenant's organizations: %q", got)
	}
	b.do("back to the organization",
		chromedp.Click(chromedp.CSS(`[data-testid=detail-orgs] a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=org-detail]`)),
	)

	d.answer(false)
	b.do("decline removing the tenant",
		chromedp.Click(chromedp.CSS(`[data-testid=org-remove-tenant]`)),
		chromedp.Sleep(300*time.Millisecond),
	)
	if !b.present(`[data-testid=org-tenant]`) || len(d.questions()) != 1 {
		t.Fatalf("declining removed the tenant, or nothing was asked: %q", d.questions())
	}
	d.answer(true)
	b.do("remove the tenant",
		chromedp.Click(chromedp.CSS(`[data-testid=org-remove-tenant]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=org-tenants-empty]`)),
	)
	b.do("delete the organization",
		chromedp.Click(chromedp.CSS(`[data-testid=org-delete-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=delete-org]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=confirm-delete-org]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=orgs-empty]`)),
	)
	if got := b.text(`[data-testid=flash]`); !strings.Contains(got, "Acme Holdings") || !strings.Contains(got, "deleted") {
		t.Errorf("flash after delete %q", got)
	}
}

// On a phone the menu is behind a button that says whether it is open,
// works from the keyboard (Enter opens, Escape closes and gives focus
// back), and leads on; without scripts the menu is simply shown.
func TestMenuOnAPhone(t *testing.T) {
	t.Parallel()
	s := consoleSite(t, false)
	s.serve()
	b := newBrowser(t)
	b.do("phone size", chromedp.EmulateViewport(390, 844))
	b.signIn(s.url("admin", "/"), "admin-sign-in", "admin@platform.test", adminPassword, `[data-testid=tenant-list]`)

	visible := func(sel string) bool {
		return run(b, "look at "+sel, chromedp.Evaluate[bool](
			`(() => { const e = document.querySelector('`+sel+`'); return !!e && e.getClientRects().length > 0; })()`))
	}
	expanded := func() string {
		return run(b, "read aria-expanded", chromedp.Evaluate[string](
			`document.querySelector('[data-testid=menu-toggle]').getAttribute('aria-expanded')`))
	}
	if visible(`[data-testid=menu]`) || !visible(`[data-testid=menu-toggle]`) || expanded() != "false" {
		t.Fatalf("at 390 px: menu shown %v, button shown %v, aria-expanded %s",
			visible(`[data-testid=menu]`), visible(`[data-testid=menu-toggle]`), expanded())
	}
	if got := run(b, "read aria-controls", chromedp.Evaluate[string](
		`document.getElementById(document.querySelector('[data-testid=menu-toggle]').getAttribute('aria-controls')).dataset.testid`)); got != "menu" {
		t.Errorf("the button controls %q", got)
	}
	// Tab from the top of the page: the skip link, the brand, sign out,
	// the button.
	b.do("tab to the menu button", chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
	if got := run(b, "read the focus", chromedp.Evaluate[string](`document.activeElement.dataset.testid || document.activeElement.tagName`)); got != "menu-toggle" {
		t.Fatalf("four tabs reach %q, not the menu button", got)
	}
	if outline := run(b, "read the focus ring", chromedp.Evaluate[string](`getComputedStyle(document.activeElement).outlineStyle`)); outline == "none" {
		t.Error("the focused menu button shows no focus ring")
	}
	b.do("open with Enter", chromedp.KeyEvent("\r"))
	if !visible(`[data-testid=menu]`) || expanded() != "true" {
		t.Fatal("Enter did not open the menu")
	}
	b.do("tab into the menu and close it with Escape", chromedp.KeyEvent("\t"), chromedp.KeyEvent("\u001b"))
	if visible(`[data-testid=menu]`) || expanded() != "false" {
		t.Error("Escape did not close the menu")
	}
	if got := run(b, "read the focus", chromedp.Evaluate[string](`document.activeElement.dataset.testid || ''`)); got != "menu-toggle" {
		t.Errorf("after Escape the focus is on %q", got)
	}
	b.do("open by click and follow a link",
		chromedp.Click(chromedp.CSS(`[data-testid=menu-toggle]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=nav-stats]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=stats]`)),
	)

	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	b.do("reload without scripts",
		chromedp.Reload(),
		chromedp.WaitReady(chromedp.CSS(`body`)),
	)
	if !visible(`[data-testid=menu]`) || visible(`[data-testid=menu-toggle]`) {
		t.Error("without scripts the menu is hidden or the button that cannot work is shown")
	}
}
