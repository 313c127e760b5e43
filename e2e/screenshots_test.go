package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestScreenshots visits every page of the portal and the console at a
// laptop's width (1366 px) and a phone's (390 px), fails on a page that
// scrolls sideways, and saves a PNG of each into NSELF_SCREENSHOT_DIR for
// people to look at (`make screenshots`); without the setting the PNGs go
// to a folder the test removes.
func TestScreenshots(t *testing.T) {
	t.Parallel()
	dir := os.Getenv("NSELF_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSite(t)
	s.createAcme(ownerPassword)
	// Company details, so the pages that show them are seen with them.
	s.nself("", "tenant", "setting", "set", "acme", "branding.tagline", "Invoices your customers understand")
	s.nself("", "tenant", "setting", "set", "acme", "contact.support_email", "help@acme.test")
	const adminPassword = "platform admin password"
	s.nself(adminPassword+"\n", "admin", "create", "admin@platform.test", "--password-stdin")
	s.serve()
	b := newBrowser(t)
	shoot := func(name, url string) {
		for _, size := range [][2]int64{{1366, 900}, {390, 844}} {
			b.do("open "+url, chromedp.EmulateViewport(size[0], size[1]), chromedp.Navigate(url),
				chromedp.WaitReady(chromedp.CSS(`body`)), chromedp.Sleep(700*time.Millisecond))
			if wide := run(b, "measure "+url, chromedp.Evaluate[bool](
				`document.documentElement.scrollWidth > window.innerWidth + 1`)); wide {
				t.Errorf("%s scrolls sideways at %d px", url, size[0])
			}
			png := run(b, "screenshot "+url, chromedp.FullScreenshot(100))
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, size[0]))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	name := func(prefix, path string) string {
		if path == "/" {
			return prefix + "-home"
		}
		return prefix + strings.ReplaceAll(path, "/", "-")
	}
	for _, p := range []string{"/", "/password/forgot"} {
		shoot(name("signed-out", p), s.url("acme", p))
	}
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	for _, p := range []string{"/dashboard", "/members", "/settings/api-keys", "/domains", "/settings/branding",
		"/settings/branding/themes/new", "/settings/logos", "/settings/emails", "/settings/emails/welcome", "/audit", "/settings/export", "/billing",
		"/account/security", "/account/sessions"} {
		shoot(name("portal", p), s.url("acme", p))
	}
	b.signIn(s.url("admin", "/"), "admin-sign-in", "admin@platform.test", adminPassword, `[data-testid=tenant-list]`)
	for _, p := range []string{"/", "/tenants/new", "/orgs", "/plans", "/billing", "/mail", "/stats", "/audit"} {
		shoot(name("console", p), s.url("admin", p))
	}
	t.Logf("screenshots in %s", dir)
}
