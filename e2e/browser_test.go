package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const ownerPassword = "correct horse battery staple"

// A tenant's owner opens the tenant's own host, signs in and lands on the
// dashboard, which carries the tenant's name and brand colors.
func TestOwnerSignsInOnTheTenantHost(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)

	b.do("open the sign-in page", chromedp.Navigate(s.url("acme", "/")))
	if got := b.text(`[data-testid=sign-in] h1`); got != "Sign in to Acme Corporation" {
		t.Errorf("sign-in heading = %q", got)
	}
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)

	if loc := run(b, "read the location", chromedp.Location()); loc != s.url("acme", "/dashboard") {
		t.Errorf("after sign-in the browser is at %s, want /dashboard", loc)
	}
	if got := b.text(`[data-testid=tenant-name]`); got != "Acme Corporation" {
		t.Errorf("tenant name = %q, want Acme Corporation", got)
	}
	if got := b.text(`[data-testid=user-email]`); got != "owner@acme.test" {
		t.Errorf("signed in as %q", got)
	}
	if got := b.text(`[data-testid=user-role]`); got != "owner" {
		t.Errorf("role = %q, want owner", got)
	}
	if !b.present(`[data-testid=nav-api-keys]`) {
		t.Error("the owner's menu has no API keys link")
	}

	// The brand color comes from the tenant's stylesheet and reaches the
	// elements drawn in it.
	type brand struct {
		Primary string `json:"primary"` // computed on the root element
		Sheet   string `json:"sheet"`   // as /brand.css sets it
		Mark    string `json:"mark"`    // background of the brand mark
		Want    string `json:"want"`    // Primary as a computed color
	}
	got := run(b, "read the brand color", chromedp.Evaluate[brand](`(() => {
		const primary = getComputedStyle(document.documentElement).getPropertyValue('--brand-primary').trim();
		const sheet = Array.from(document.styleSheets).find(s => s.href && new URL(s.href).pathname === '/brand.css');
		const rule = sheet && Array.from(sheet.cssRules).find(r => r.style && r.style.getPropertyValue('--brand-primary'));
		const probe = document.createElement('span');
		probe.style.color = primary;
		document.body.append(probe);
		const want = getComputedStyle(probe).color;
		probe.remove();
		const mark = document.querySelector('[data-testid=brand-name] > span');
		return {
			primary,
			sheet: rule ? rule.style.getPropertyValue('--brand-primary').trim() : '',
			mark: mark ? getComputedStyle(mark).backgroundColor : '',
			want,
		};
	})()`))
	if !regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`).MatchString(got.Primary) {
		t.Errorf("--brand-primary = %q, want a color", got.Primary)
	}
	if got.Sheet == "" || got.Sheet != got.Primary {
		t.Errorf("--brand-primary is %q, /brand.css sets %q: the tenant's stylesheet is not applied", got.Primary, got.Sheet)
	}
	if got.Mark != got.Want {
		t.Errorf("brand mark is drawn in %q, want the brand color %q", got.Mark, got.Want)
	}
}

// A guest sees the dashboard but no control that changes anything, and a
// change forged from the page, with the page's own CSRF token, is refused.
func TestGuestCannotChangeAnything(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	tenantID := s.createAcme(ownerPassword)
	const guestPassword = "guest password 1234"
	guestID := s.createdID(s.nself(guestPassword+"\n", "user", "create", "acme", "guest@acme.test", "--password-stdin"))
	s.addMember(tenantID, guestID, "guest")
	s.serve()
	b := newBrowser(t)

	b.signIn(s.url("acme", "/"), "sign-in", "guest@acme.test", guestPassword, `[data-testid=dashboard]`)
	if got := b.text(`[data-testid=user-role]`); got != "guest" {
		t.Fatalf("role = %q, want guest", got)
	}
	if !b.present(`[data-testid=nav-dashboard]`) {
		t.Error("the guest's menu has no dashboard link")
	}
	if b.present(`[data-testid=nav-api-keys]`) {
		t.Error("the guest's menu links to API keys")
	}
	// The only form a guest gets is the one that signs out.
	forms := run(b, "list the forms", chromedp.Evaluate[[]string](
		`Array.from(document.forms, f => new URL(f.action).pathname)`))
	if len(forms) != 1 || forms[0] != "/signout" {
		t.Errorf("forms on the guest's dashboard post to %v, want only /signout", forms)
	}

	type answer struct {
		Status  int    `json:"status"`
		Token   string `json:"token"`
		Message string `json:"message"`
	}
	got := run(b, "post a new API key from the page", chromedp.Evaluate[answer](`(async () => {
		const token = document.body.dataset.csrf;
		const r = await fetch('/settings/api-keys', {
			method: 'POST',
			headers: {'X-CSRF-Token': token},
			body: new URLSearchParams({csrf_token: token, name: 'forged by a guest'}),
		});
		const page = new DOMParser().parseFromString(await r.text(), 'text/html');
		const msg = page.querySelector('[data-testid=error-message]');
		return {status: r.status, token, message: msg ? msg.textContent : ''};
	})()`, chromedp.EvalAwaitPromise))
	if got.Token == "" {
		t.Error("the page carries no CSRF token")
	}
	if got.Status != 403 {
		t.Errorf("forged POST answered %d, want 403", got.Status)
	}
	// Refused for the role, not for a bad token.
	if !strings.Contains(got.Message, "read-only") {
		t.Errorf("forged POST refused with %q, want the guests' read-only message", got.Message)
	}
	if out := s.nself("", "apikey", "list", "acme"); strings.Count(strings.TrimSpace(out), "\n") != 1 {
		t.Errorf("the forged POST created a key:\n%s", out)
	}
}

// A platform administrator suspends a tenant in the console; from then on
// the tenant's pages say it is suspended, to a member already signed in
// as to anyone else.
func TestAdminSuspendsATenantInTheConsole(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	const adminPassword = "platform admin password"
	s.nself(adminPassword+"\n", "admin", "create", "admin@platform.test", "--password-stdin")
	s.serve()
	b := newBrowser(t)

	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)

	b.signIn(s.url("admin", "/"), "admin-sign-in", "admin@platform.test", adminPassword, `[data-testid=tenant-list]`)
	b.do("open acme's page from the list",
		chromedp.Click(chromedp.Search(`//td[@data-testid="tenant-slug"]/a[normalize-space()="acme"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=tenant-detail]`)),
	)
	if got := b.text(`[data-testid=detail-name]`); got != "Acme Corporation" {
		t.Fatalf("the console shows tenant %q", got)
	}
	if got := b.text(`[data-testid=detail-status]`); got != "active" {
		t.Errorf("status before = %q, want active", got)
	}
	// Suspending asks first; the administrator answers OK.
	d := b.answerDialogs()
	d.answer(true)
	b.do("suspend acme",
		chromedp.Click(chromedp.CSS(`[data-testid=suspend-tenant]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=activate-tenant]`)),
	)
	if got := b.text(`[data-testid=detail-status]`); got != "suspended" {
		t.Errorf("status after = %q, want suspended", got)
	}
	if b.present(`[data-testid=suspend-tenant]`) {
		t.Error("a suspended tenant can still be suspended")
	}
	if q := d.questions(); len(q) != 1 || !strings.HasPrefix(q[0], "Suspend acme?") {
		t.Errorf("the console asked %q before suspending", q)
	}
	if got := b.text(`[data-testid=flash]`); !strings.Contains(got, "suspended") {
		t.Errorf("flash = %q", got)
	}

	// The server learns of the change through PostgreSQL NOTIFY, so the
	// tenant's page may take a moment to change.
	type page struct {
		Status    string `json:"status"`
		Message   string `json:"message"`
		Dashboard bool   `json:"dashboard"`
	}
	var got page
	for deadline := time.Now().Add(5 * time.Second); ; {
		b.do("open acme's dashboard", chromedp.Navigate(s.url("acme", "/dashboard")))
		got = run(b, "read the page", chromedp.Evaluate[page](`(() => {
			const err = document.querySelector('[data-testid=error-page]');
			const msg = document.querySelector('[data-testid=error-message]');
			return {
				status: err ? err.dataset.status : '',
				message: msg ? msg.textContent.trim() : '',
				dashboard: document.querySelector('[data-testid=dashboard]') !== null,
			};
		})()`))
		if got.Status != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got.Status != "403" || !strings.Contains(got.Message, "suspended") || got.Dashboard {
		t.Errorf("acme's dashboard after the suspension: %+v, want a 403 page saying suspended", got)
	}
	b.do("open acme's sign-in page", chromedp.Navigate(s.url("acme", "/")))
	if b.present(`[data-testid=sign-in]`) || !strings.Contains(b.text(`[data-testid=error-message]`), "suspended") {
		t.Error("a visitor to the suspended tenant is offered to sign in")
	}
}
