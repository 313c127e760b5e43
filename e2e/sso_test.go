package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nself/nself/internal/ssotest"
)

// TestSSOByClicks: an owner configures the tenant's provider in the
// portal and tests the connection; a person then signs in with it from the
// branded sign-in page, at the real provider's login form, and joins as a
// member; someone whose address the provider has not verified is turned
// back with the reason. Every page single sign-on adds is shot at 1366 and
// 390 px (into NSELF_SCREENSHOT_DIR when set) and must not scroll sideways.
func TestSSOByClicks(t *testing.T) {
	t.Parallel()
	issuer := ssotest.Issuer(t)
	dir := os.Getenv("NSELF_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	shoot := func(name string) {
		for _, size := range [][2]int64{{1366, 900}, {390, 844}} {
			b.do("resize for "+name, chromedp.EmulateViewport(size[0], size[1]), chromedp.Sleep(150*time.Millisecond))
			if wide := run(b, "measure "+name, chromedp.Evaluate[bool](
				`document.documentElement.scrollWidth > window.innerWidth + 1`)); wide {
				t.Errorf("%s scrolls sideways at %d px", name, size[0])
			}
			png := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("sso-%s-%d.png", name, size[0])), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b.do("back to the laptop's width", chromedp.EmulateViewport(1280, 800))
	}

	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the single sign-on settings",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-sso]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sso-form]`)),
	)
	if got := b.text(`[data-testid=sso-redirect-uri]`); got != s.url("acme", "/sso/callback") {
		t.Errorf("redirect URI shown: %q", got)
	}
	b.do("fill in the provider and test the connection",
		chromedp.SendKeys(chromedp.CSS(`#display_name`), "Test IdP"),
		chromedp.SendKeys(chromedp.CSS(`#issuer`), issuer),
		chromedp.SendKeys(chromedp.CSS(`#client_id`), ssotest.ClientA),
		chromedp.SendKeys(chromedp.CSS(`#client_secret`), ssotest.SecretA),
		chromedp.SendKeys(chromedp.CSS(`#domains`), ssotest.Domain),
		chromedp.Click(chromedp.CSS(`[data-testid=sso-test]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sso-test-ok]`)),
	)
	if got := b.text(`[data-testid=sso-found-issuer]`); got != issuer {
		t.Errorf("test connection found issuer %q", got)
	}
	shoot("settings-tested")
	b.do("save",
		chromedp.Click(chromedp.CSS(`[data-testid=sso-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)),
	)
	if got := b.text(`[data-testid=flash]`); !strings.Contains(got, "Single sign-on with Test IdP is saved") {
		t.Errorf("after saving: %q", got)
	}
	shoot("settings-saved")
	b.do("sign out",
		chromedp.Click(chromedp.CSS(`[data-testid=sign-out]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sso-sign-in]`)),
	)
	if got := b.text(`[data-testid=sso-sign-in]`); got != "Sign in with Test IdP" {
		t.Errorf("the sign-in page offers %q", got)
	}
	shoot("sign-in")

	// An address the provider covers, typed into the sign-in form, goes to
	// the provider; its login form signs her in and she lands on the
	// dashboard as a new member.
	b.do("sign in with the provider",
		chromedp.SendKeys(chromedp.CSS(`#email`), "ann@"+ssotest.Domain),
		chromedp.Click(chromedp.CSS(`[data-testid=sign-in-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "ann@"+ssotest.Domain),
		chromedp.SendKeys(chromedp.CSS(`#password`), ssotest.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
	)
	if got := b.text(`[data-testid=user-email]`); got != "ann@sso.example" {
		t.Errorf("signed in as %q", got)
	}
	if got := b.text(`[data-testid=user-role]`); got != "member" {
		t.Errorf("role %q, want member", got)
	}
	if got := b.text(`[data-testid=flash]`); !strings.Contains(got, "You joined as member by signing in with Test IdP") {
		t.Errorf("welcome: %q", got)
	}
	shoot("joined")

	// An address the provider has not verified is refused, with the reason.
	b.do("sign in unverified",
		chromedp.Click(chromedp.CSS(`[data-testid=sign-out]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sso-sign-in]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=sso-sign-in]`)),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), ssotest.Unverified),
		chromedp.SendKeys(chromedp.CSS(`#password`), ssotest.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=form-error]`)),
	)
	if got := b.text(`[data-testid=form-error]`); !strings.Contains(got, "una@sso.example is not verified") {
		t.Errorf("unverified: %q", got)
	}
	if b.present(`[data-testid=user-email]`) {
		t.Error("signed in although the address is not verified")
	}
	shoot("refused")
}
