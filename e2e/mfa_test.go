package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	ptotp "github.com/pquerna/otp/totp"
)

// e2eTOTPKey seals the site's authenticator secrets (TOTP_ENCRYPTION_KEY).
const e2eTOTPKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// totpCode is what an authenticator app shows for secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := ptotp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// shoot saves the page shown at a laptop's and a phone's width into
// NSELF_SCREENSHOT_DIR (or a folder the test removes), failing if it
// scrolls sideways, and goes back to the browser's size.
func (b *browser) shoot(name string) {
	b.t.Helper()
	dir := os.Getenv("NSELF_SCREENSHOT_DIR")
	if dir == "" {
		dir = b.t.TempDir()
	}
	for _, size := range [][2]int64{{1366, 900}, {390, 844}} {
		b.do("resize for "+name, chromedp.EmulateViewport(size[0], size[1]), chromedp.Sleep(150*time.Millisecond))
		if run(b, "measure "+name, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
			b.t.Errorf("%s scrolls sideways at %d px", name, size[0])
		}
		png := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, size[0])), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do("resize back", chromedp.EmulateViewport(1280, 800))
}

// codeStep types a code on the second-factor page and waits for what
// follows.
func (b *browser) codeStep(code, then string) {
	b.t.Helper()
	b.do("enter code "+code,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=second-factor]`)),
		chromedp.SendKeys(chromedp.CSS(`#code`), code),
		chromedp.Click(chromedp.CSS(`[data-testid=code-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(then)),
	)
}

func (b *browser) signOut() {
	b.t.Helper()
	b.do("sign out", chromedp.Click(chromedp.CSS(`[data-testid=sign-out]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in]`)))
}

// TestTwoFactorByClicks: the owner sets up an authenticator from the
// Security page, signs in again with a code from it (a used one refused),
// then with a recovery code, which works once; then requires two factors
// of admins, and an admin who signs in is taken to set-up before anything
// else.
func TestTwoFactorByClicks(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	tenantID := s.createAcme(ownerPassword)
	const adminPassword = "admin password 12345"
	adminID := s.createdID(s.nself(adminPassword+"\n", "user", "create", "acme", "adam@acme.test", "--password-stdin"))
	s.addMember(tenantID, adminID, "admin")
	s.serve()
	b := newBrowser(t)
	home := s.url("acme", "/")

	b.signIn(home, "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open Security", chromedp.Click(chromedp.CSS(`[data-testid=nav-security]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=security]`)))
	b.shoot("account-security")
	b.do("set up", chromedp.Click(chromedp.CSS(`[data-testid=two-factor-setup]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=qr]`)))
	b.shoot("account-2fa-setup")
	secret := b.text(`[data-testid=totp-secret]`)
	// A wrong code while setting up: there are no recovery codes yet, and
	// the message does not mention them.
	b.do("confirm a wrong code", chromedp.SendKeys(chromedp.CSS(`#code`), "000000"),
		chromedp.Click(chromedp.CSS(`[data-testid=enrol-confirm]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-code]`)))
	if msg := b.text(`[data-testid=error-code]`); !strings.Contains(msg, "not right") || strings.Contains(msg, "recovery") {
		t.Errorf("a wrong code while setting up: %q", msg)
	}
	enrolled := time.Now()
	b.do("confirm", chromedp.Clear(chromedp.CSS(`#code`)), chromedp.SendKeys(chromedp.CSS(`#code`), totpCode(t, secret, enrolled)),
		chromedp.Click(chromedp.CSS(`[data-testid=enrol-confirm]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=recovery-codes]`)))
	b.shoot("account-2fa-recovery-codes")
	codes := run(b, "read recovery codes", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid=recovery-code]')].map(e => e.textContent.trim())`))
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown", len(codes))
	}
	b.do("done", chromedp.Click(chromedp.CSS(`[data-testid=recovery-done]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=two-factor-status][data-enrolled=true]`)))
	b.signOut()

	// The password, then the code: the one used at set-up is refused.
	b.signIn(home, "sign-in", "owner@acme.test", ownerPassword, `[data-testid=second-factor]`)
	b.shoot("signin-2fa")
	b.codeStep(totpCode(t, secret, enrolled), `[data-testid=error-code]`)
	if msg := b.text(`[data-testid=error-code]`); !strings.Contains(msg, "used already") {
		t.Errorf("replayed code: %q", msg)
	}
	b.codeStep(totpCode(t, secret, enrolled.Add(30*time.Second)), `[data-testid=dashboard]`)
	b.signOut()

	// A recovery code instead, once.
	b.signIn(home, "sign-in", "owner@acme.test", ownerPassword, `[data-testid=second-factor]`)
	b.codeStep(codes[0], `[data-testid=dashboard]`)
	b.signOut()
	b.signIn(home, "sign-in", "owner@acme.test", ownerPassword, `[data-testid=second-factor]`)
	b.codeStep(codes[0], `[data-testid=error-code]`)
	b.codeStep(codes[1], `[data-testid=dashboard]`)

	// New recovery codes, after a current code: the old ones stop working.
	b.do("open Security", chromedp.Click(chromedp.CSS(`[data-testid=nav-security]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=recovery-renew]`)))
	if got := b.text(`[data-testid=two-factor-status]`); !strings.Contains(got, "8 recovery codes left") {
		t.Errorf("status after two codes used: %q", got)
	}
	b.shoot("account-security-two-factor-on")
	b.do("renew with a wrong code", chromedp.SendKeys(chromedp.CSS(`#renew-code`), "000000"),
		chromedp.Click(chromedp.CSS(`[data-testid=recovery-renew-submit]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-renew-code]`)))
	if msg := b.text(`[data-testid=error-renew-code]`); !strings.Contains(msg, "not right") {
		t.Errorf("wrong code to renew: %q", msg)
	}
	b.do("renew with a recovery code", chromedp.SendKeys(chromedp.CSS(`#renew-code`), codes[2]),
		chromedp.Click(chromedp.CSS(`[data-testid=recovery-renew-submit]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=recovery-codes]`)))
	if h := b.text(`[data-testid=recovery-codes] h1`); h != "New recovery codes" {
		t.Errorf("renewed codes page: %q", h)
	}
	b.shoot("account-2fa-recovery-codes-renewed")
	renewed := run(b, "read new recovery codes", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid=recovery-code]')].map(e => e.textContent.trim())`))
	if len(renewed) != 10 || renewed[0] == codes[0] {
		t.Fatalf("new recovery codes: %q", renewed)
	}
	b.do("done", chromedp.Click(chromedp.CSS(`[data-testid=recovery-done]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=recovery-renew]`)))
	if got := b.text(`[data-testid=two-factor-status]`); !strings.Contains(got, "10 recovery codes left") {
		t.Errorf("status after renewal: %q", got)
	}
	b.signOut()
	b.signIn(home, "sign-in", "owner@acme.test", ownerPassword, `[data-testid=second-factor]`)
	b.codeStep(codes[3], `[data-testid=error-code]`)
	b.codeStep(renewed[0], `[data-testid=dashboard]`)

	// The rule: owners and admins need two factors.
	b.do("require two factors", chromedp.Click(chromedp.CSS(`[data-testid=nav-security]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=policy-required]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=policy-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)))
	if !b.present(`[data-testid=policy-required]:checked`) {
		t.Fatal("the rule is not shown as on")
	}

	admin := b.newVisitor()
	admin.signIn(home, "sign-in", "adam@acme.test", adminPassword, `[data-testid=enrol-required]`)
	admin.do("try the members page", chromedp.Navigate(s.url("acme", "/members")), chromedp.WaitVisible(chromedp.CSS(`[data-testid=enrol-required]`)))
	adminSecret := admin.text(`[data-testid=totp-secret]`)
	admin.do("confirm", chromedp.SendKeys(chromedp.CSS(`#code`), totpCode(t, adminSecret, time.Now())),
		chromedp.Click(chromedp.CSS(`[data-testid=enrol-confirm]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=recovery-codes]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=recovery-done]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=nav-members]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=members]`)))
}

// TestSessionsByClicks: signed in on two browsers, a person sees both on
// the Sessions page and signs out everywhere else; the other browser is
// signed out at its next click.
func TestSessionsByClicks(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	home := s.url("acme", "/")
	other := b.newVisitor()
	other.signIn(home, "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.signIn(home, "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	d := b.answerDialogs()
	d.answer(true)
	b.do("open Sessions", chromedp.Click(chromedp.CSS(`[data-testid=nav-sessions]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=sessions]`)))
	if n := run(b, "count sessions", chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=session-row]').length`)); n != 2 {
		t.Fatalf("%d sessions listed", n)
	}
	if got := b.text(`[data-testid=session-row][data-current] [data-testid=session-browser]`); !strings.Contains(got, "Chrome") {
		t.Errorf("browser shown as %q", got)
	}
	b.shoot("account-sessions")
	b.do("sign out everywhere else", chromedp.Click(chromedp.CSS(`[data-testid=end-others]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)))
	if n := run(b, "count sessions", chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=session-row]').length`)); n != 1 {
		t.Fatalf("%d sessions after signing out everywhere else", n)
	}
	other.do("click in the other browser", chromedp.Click(chromedp.CSS(`[data-testid=nav-members]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in]`)))
	b.do("still signed in here", chromedp.Click(chromedp.CSS(`[data-testid=nav-dashboard]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)))

	// The key form's scope and expiry, as a person fills it.
	b.do("make a read-only key for /v1", chromedp.Click(chromedp.CSS(`[data-testid=nav-api-keys]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=api-keys]`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "reports"),
		chromedp.SetValue(chromedp.CSS(`#access`), "read_only"),
		chromedp.Click(chromedp.CSS(`[data-testid=key-gateway]`)),
		chromedp.SetValue(chromedp.CSS(`#expires`), "30"),
		chromedp.Click(chromedp.CSS(`[data-testid=create-key]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-key]`)))
	if got := b.text(`[data-testid=key-row] [data-testid=key-scope]`); got != "read-only, tenant API only" {
		t.Errorf("the new key's scope reads %q", got)
	}
	if got := b.text(`[data-testid=key-row] [data-testid=key-expiry]`); got == "never" {
		t.Error("the new key shows no expiry")
	}
	b.shoot("portal-api-keys")
}
