package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeSHA256 is the digest of testdata/axe.min.js, axe-core 4.14.1 as
// published on npm (testdata/README.md).
const axeSHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"

// loadAxe reads the vendored axe-core and checks it is the copy recorded.
func loadAxe(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("testdata/axe.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(src); hex.EncodeToString(sum[:]) != axeSHA256 {
		t.Fatalf("testdata/axe.min.js has SHA-256 %x, not the recorded %s", sum, axeSHA256)
	}
	return string(src)
}

// axeViolation is one rule axe-core found broken, with the elements that
// break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// axeCheck runs axe-core in the page and returns its serious and critical
// violations. The source is evaluated through DevTools, which the page's
// Content-Security-Policy does not govern.
func axeCheck(b *browser, axe string) []axeViolation {
	b.t.Helper()
	if !run(b, "load axe-core", chromedp.Evaluate[bool](`typeof window.axe === "object"`)) {
		run(b, "inject axe-core", chromedp.Evaluate[any](axe+";0"))
	}
	out := run(b, "run axe-core", chromedp.Evaluate[string](
		`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`,
		chromedp.EvalAwaitPromise))
	var all []axeViolation
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		b.t.Fatalf("read axe-core's answer: %v", err)
	}
	var bad []axeViolation
	for _, v := range all {
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, v)
		}
	}
	return bad
}

// focusWalk presses Tab through the page, as a keyboard user does, and
// returns each control it reaches that shows no focus ring, and whether the
// walk ended before it came round. Inside a frame (the previews) the
// page's focus stays on the frame while Tab moves through the frame's own
// document, whose ring the page cannot see, so frames are not judged.
func focusWalk(b *browser) []string {
	b.t.Helper()
	var missing []string
	seen := map[string]bool{}
	first := ""
	for range 300 {
		b.do("press Tab", chromedp.KeyEvent("\t"))
		el := run(b, "read the focus", chromedp.Evaluate[[2]string](`(() => {
			const e = document.activeElement;
			if (!e || e === document.body) return ["", ""];
			const s = getComputedStyle(e);
			const ring = e.tagName === "IFRAME" || (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
			const name = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.dataset.testid ? "[" + e.dataset.testid + "]" : "") +
				" " + (e.textContent || e.value || "").trim().slice(0, 30) + " @" + [...document.querySelectorAll("*")].indexOf(e);
			return [name, ring ? "" : "no focus ring"];
		})()`))
		if el[0] == "" || el[0] == first {
			return missing
		}
		if first == "" {
			first = el[0]
		}
		if !seen[el[0]] && el[1] != "" {
			missing = append(missing, el[0]+": "+el[1])
		}
		seen[el[0]] = true
	}
	return append(missing, "300 tabs did not come round")
}

// TestScreenshots visits every page of the portal and the console at a
// laptop's width (1366 px) and a phone's (390 px), fails on a page that
// scrolls sideways or on which axe-core finds a serious or critical
// accessibility violation, and saves a PNG of each into NSELF_SCREENSHOT_DIR for
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
	// Billing on, so that its pages (usage meters, plans on offer) are
	// walked too.
	s.withBilling("whsec_walk")
	s.createAcme(ownerPassword)
	// Company details, so the pages that show them are seen with them.
	s.nself("", "tenant", "setting", "set", "acme", "branding.tagline", "Invoices your customers understand")
	s.nself("", "tenant", "setting", "set", "acme", "contact.support_email", "help@acme.test")
	s.nself(adminPassword+"\n", "admin", "create", "admin@platform.test", "--password-stdin")
	s.nself("", "org", "create", "Acme Group", "--slug", "acme-group")
	s.nself("", "org", "add-tenant", "acme-group", "acme")
	s.serve()
	b := newBrowser(t)
	axe := loadAxe(t)
	// shoot opens url at each width, does what then says (to show a form's
	// errors, say), and checks and saves the page.
	shoot := func(name, url string, then ...chromedp.Action[chromedp.Void]) {
		for _, size := range [][2]int64{{1366, 900}, {390, 844}} {
			b.do("open "+url, chromedp.EmulateViewport(size[0], size[1]), chromedp.Navigate(url),
				chromedp.WaitReady(chromedp.CSS(`body`)))
			b.do("act on "+url, then...)
			// Time for the live previews' frames to draw.
			b.do("settle", chromedp.Sleep(700*time.Millisecond))
			if wide := run(b, "measure "+url, chromedp.Evaluate[bool](
				`document.documentElement.scrollWidth > window.innerWidth + 1`)); wide {
				t.Errorf("%s scrolls sideways at %d px", url, size[0])
			}
			if size[0] > 720 {
				for _, miss := range focusWalk(b) {
					t.Errorf("%s: %s", url, miss)
				}
			}
			for _, v := range axeCheck(b, axe) {
				for _, n := range v.Nodes {
					t.Errorf("%s at %d px: %s (%s, %s): %v\n%s", url, size[0], v.Help, v.ID, v.Impact, n.Target, n.Summary)
				}
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
	shoot("signed-out-home-invalid", s.url("acme", "/"),
		chromedp.SendKeys(chromedp.ID(`email`), "nobody@acme.test"),
		chromedp.SendKeys(chromedp.ID(`password`), "not the password"),
		chromedp.Click(chromedp.CSS(`[data-testid=sign-in-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=form-error]`)))
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	for _, p := range []string{"/dashboard", "/members", "/settings/api-keys", "/domains", "/settings/branding",
		"/settings/branding/themes/new", "/settings/logos", "/settings/emails", "/settings/emails/welcome", "/audit", "/settings/export", "/billing",
		"/account/security", "/account/sessions"} {
		shoot(name("portal", p), s.url("acme", p))
	}
	b.signIn(s.url("admin", "/"), "admin-sign-in", "admin@platform.test", adminPassword, `[data-testid=tenant-list]`)
	for _, p := range []string{"/", "/tenants/new", "/tenants/acme", "/tenants/acme/delete", "/orgs", "/orgs/acme-group",
		"/orgs/acme-group/delete", "/plans", "/plans/new", "/plans/pro/edit", "/plans/pro/archive", "/billing", "/mail", "/stats", "/audit"} {
		shoot(name("console", p), s.url("admin", p))
	}
	// Forms as they come back with their errors.
	shoot("console-tenants-new-invalid", s.url("admin", "/tenants/new"),
		chromedp.Click(chromedp.CSS(`[data-testid=create-tenant]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-name]`)))
	shoot("console-orgs-invalid", s.url("admin", "/orgs"),
		chromedp.Click(chromedp.CSS(`[data-testid=create-org]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-name]`)))
	shoot("console-plans-pro-edit-invalid", s.url("admin", "/plans/pro/edit"),
		chromedp.Click(chromedp.ID(`price`)), selectAll, chromedp.SendKeys(chromedp.ID(`price`), "abc"),
		chromedp.Click(chromedp.CSS(`[data-testid=save-plan]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-price]`)))
	t.Logf("screenshots in %s", dir)
}
