package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// An owner brands the tenant: a new primary color shows in the branding
// page's preview as it is typed, while nothing is saved; once saved, a
// visitor's sign-in page is drawn in it. A logo uploaded on the logos page
// then shows on the visitor's sign-in page in place of the initial.
func TestOwnerBrandsTheTenant(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	// Logos are kept in MinIO: without it the logos page is off.
	s.withStorage()
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	// A visitor who is not signed in, with cookies and a cache of their own.
	visitor := b.newVisitor()

	const (
		newPrimary = "#ff6b35"
		newMark    = "rgb(255, 107, 53)" // newPrimary as a computed color
	)
	oldPrimary := s.brandCSSPrimary()
	if oldPrimary == newPrimary {
		t.Fatalf("the tenant's primary color is already %s", newPrimary)
	}
	// The visitor has the old stylesheet in their cache before the change.
	if got := visitor.signInLook(s.url("acme", "/")); got.Primary != oldPrimary {
		t.Fatalf("before the change the sign-in page's --brand-primary is %q, /brand.css says %q", got.Primary, oldPrimary)
	}

	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the branding page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-branding]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=brand-form]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=preview-frame]`)),
	)
	if got := b.waitForBrandPreview(oldPrimary, ""); got.Readable {
		t.Error("the page can read the sign-in page in the preview frame: the frame is not sandboxed")
	}

	// The owner types over the color; htmx sends the unsaved form a moment
	// later and swaps the preview pane, whose frame loads the sign-in page
	// in the colors typed.
	b.do("type a new primary color",
		chromedp.Clear(chromedp.ID(`primary_color`)),
		chromedp.SendKeys(chromedp.ID(`primary_color`), newPrimary),
	)
	if got := run(b, "read the primary color field", chromedp.Value(chromedp.ID(`primary_color`))); got != newPrimary {
		t.Fatalf("the primary color field holds %q, want %q", got, newPrimary)
	}
	preview := b.waitForBrandPreview(newPrimary, newMark)
	if preview.Readable {
		t.Error("the page can read the sign-in page in the preview frame: the frame is not sandboxed")
	}
	if preview.Heading != "Sign in to Acme Corporation" {
		t.Errorf("the preview shows %q, want the tenant's sign-in page", preview.Heading)
	}
	if preview.Errors != "" {
		t.Errorf("the preview reports errors: %q", preview.Errors)
	}
	// Previewing saved nothing.
	if got := s.brandCSSPrimary(); got != oldPrimary {
		t.Fatalf("before saving, /brand.css already has --brand-primary %s (was %s)", got, oldPrimary)
	}

	b.do("save the brand colors",
		chromedp.Click(chromedp.CSS(`[data-testid=brand-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)),
	)
	if got := b.text(`[data-testid=flash]`); got != "Brand colors saved." {
		t.Errorf("flash = %q, want Brand colors saved.", got)
	}
	// The saved form is swapped in by htmx: read the field once it is the
	// new one, not a node about to be replaced.
	if got := run(b, "read the saved primary color", chromedp.Poll[string](`(() => {
		const el = document.getElementById('primary_color');
		return el && el.value === '`+newPrimary+`' ? el.value : false;
	})()`, chromedp.WithPollingTimeout(stepTimeout))); got != newPrimary {
		t.Errorf("after saving the primary color field holds %q, want %q", got, newPrimary)
	}

	// The server learns of the change through its branding cache, so the
	// visitor's page may take a moment to change.
	var look signInLook
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		look = visitor.signInLook(s.url("acme", "/"))
		if look.Primary == newPrimary || time.Now().After(deadline) {
			break
		}
	}
	if look.Primary != newPrimary || look.Mark != newMark {
		t.Errorf("after saving, the visitor's sign-in page has --brand-primary %q and a brand mark in %q, want %s (%s)",
			look.Primary, look.Mark, newPrimary, newMark)
	}
	if got := s.brandCSSPrimary(); got != newPrimary {
		t.Errorf("after saving, /brand.css has --brand-primary %s, want %s", got, newPrimary)
	}

	// The logo: a small PNG, chosen in the file input and sent by htmx.
	const logoWidth, logoHeight = 48, 24
	logo := writeLogoPNG(t, logoWidth, logoHeight)
	b.do("open the logos page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-logos]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logo-form]`)),
	)
	if b.present(`[data-testid=logo-row][data-kind=main] [data-testid=logo-image]`) {
		t.Fatal("a new tenant already has a main logo")
	}
	if got := run(b, "read the logo type", chromedp.Value(chromedp.ID(`logo-type`))); got != "main" {
		t.Errorf("the upload form's type is %q, want main", got)
	}
	b.do("choose the logo",
		chromedp.SetUploadFiles(chromedp.ID(`logo-file`), []string{logo}),
		chromedp.WaitVisible(chromedp.CSS(`[data-logo-preview]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-logo-preview-brand]`)),
	)
	// The sign-in preview shows the chosen logo in place of the initial,
	// not beside it.
	if shown := run(b, "look at the initial", chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector('[data-logo-preview-mark]')).display`)); shown != "none" {
		t.Errorf("the logo preview shows the initial beside the chosen logo (display %s)", shown)
	}
	b.do("upload the logo",
		chromedp.Click(chromedp.CSS(`[data-testid=logo-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logo-done]`)),
	)
	if got := b.text(`[data-testid=logo-done]`); got != "Main logo uploaded." {
		t.Errorf("after the upload the panel says %q, want Main logo uploaded.", got)
	}
	if got := b.text(`[data-testid=logo-row][data-kind=main]`); !strings.Contains(got, "image/png") ||
		!strings.Contains(got, fmt.Sprintf("%d×%d", logoWidth, logoHeight)) {
		t.Errorf("the main logo's row says %q, want image/png, %d×%d", got, logoWidth, logoHeight)
	}

	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		look = visitor.signInLook(s.url("acme", "/"))
		if look.Logo || time.Now().After(deadline) {
			break
		}
	}
	if !look.Logo {
		t.Fatal("after the upload the visitor's sign-in page shows no brand logo")
	}
	if look.Initial {
		t.Error("the sign-in page shows the initial beside the logo")
	}
	img := run(visitor, "wait for the logo to load", chromedp.Poll[logoImage](`(() => {
		const img = document.querySelector('[data-testid=brand-logo]');
		return img && img.complete && {src: img.currentSrc, width: img.naturalWidth, height: img.naturalHeight};
	})()`, chromedp.WithPollingTimeout(stepTimeout)))
	if img.Width != logoWidth || img.Height != logoHeight {
		t.Errorf("the brand logo (%s) loaded as %d×%d, want %d×%d", img.Src, img.Width, img.Height, logoWidth, logoHeight)
	}
	if u, err := url.Parse(img.Src); err != nil || u.Host != "acme.localhost:"+s.port || u.Path != "/logo/main" {
		t.Errorf("the brand logo comes from %s, want acme's /logo/main", img.Src)
	}
}

// logoImage is an <img> as loaded.
type logoImage struct {
	Src    string `json:"src"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// signInLook is how the tenant's sign-in page is drawn.
type signInLook struct {
	Primary string `json:"primary"` // --brand-primary on the root element
	Mark    string `json:"mark"`    // background of the brand mark, "" without one
	Initial bool   `json:"initial"` // the brand mark (the initial) is shown
	Logo    bool   `json:"logo"`    // the brand logo is shown
}

// signInLook opens a sign-in page and reads how it is drawn.
func (b *browser) signInLook(page string) signInLook {
	b.t.Helper()
	b.do("open the sign-in page",
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in]`)),
	)
	return run(b, "read the sign-in page's look", chromedp.Evaluate[signInLook](lookJS))
}

// lookJS reads a page's brand, as signInLook has it, in the page it is
// evaluated in.
const lookJS = `(() => {
	const mark = document.querySelector('[data-testid=brand-name] > .brand-mark');
	return {
		primary: getComputedStyle(document.documentElement).getPropertyValue('--brand-primary').trim(),
		mark: mark ? getComputedStyle(mark).backgroundColor : '',
		initial: mark !== null,
		logo: document.querySelector('[data-testid=brand-logo]') !== null,
	};
})()`

// newVisitor opens a tab in a browser context of its own, as a visitor
// who is not signed in. When the test fails, the
// page the visitor ended on is saved as visitor.png beside final.png.
func (b *browser) newVisitor() *browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open a browser context for the visitor: %v", err)
	}
	v := &browser{t: b.t, ctx: ctx}
	b.t.Cleanup(func() { v.screenshotAs("visitor.png") })
	return v
}

// screenshotAs saves the page the browser shows as name in the test's
// artifact folder, when the test has failed.
func (b *browser) screenshotAs(name string) {
	if !b.t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("no screenshot of %s: %v", loc, err)
		return
	}
	file := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		b.t.Logf("save screenshot: %v", err)
		return
	}
	b.t.Logf("the page %s is in %s", loc, file)
}

// brandPreview is what the branding page's preview pane shows.
type brandPreview struct {
	// Src is the frame element's address; Readable says whether the page
	// can look into the frame; Errors are the pane's messages.
	Src      string `json:"src"`
	Readable bool   `json:"readable"`
	Errors   string `json:"errors"`
	// Look and Heading are of the document the frame shows, read through
	// DevTools.
	Look    signInLook `json:"-"`
	Heading string     `json:"-"`
	Ready   bool       `json:"-"`
}

// waitForBrandPreview waits, boundedly, until the preview frame shows the
// sign-in page with primary as --brand-primary and, unless mark is "",
// the brand mark drawn in mark.
func (b *browser) waitForBrandPreview(primary, mark string) brandPreview {
	b.t.Helper()
	var got brandPreview
	var err error
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		got, err = b.readBrandPreview()
		if err == nil && got.Ready && got.Look.Primary == primary && (mark == "" || got.Look.Mark == mark) {
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the preview frame never showed the sign-in page in %s (%s): it shows %+v (%v)", primary, mark, got, err)
		}
	}
}

// readBrandPreview reads the preview pane. The frame is sandboxed, with an
// origin of its own, so the page cannot look into it; Chromium runs it as
// a target of its own, which the test attaches to by the frame's address.
func (b *browser) readBrandPreview() (brandPreview, error) {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	p, err := chromedp.Run(ctx, chromedp.Evaluate[brandPreview](`(() => {
		const frame = document.querySelector('[data-testid=preview-frame]');
		let readable = false;
		try { readable = !!(frame && frame.contentDocument); } catch (e) {}
		return {
			src: frame ? frame.src : '',
			readable,
			errors: Array.from(document.querySelectorAll('[data-testid=preview-error]'), e => e.textContent.trim()).join('; '),
		};
	})()`))
	if err != nil {
		return p, err
	}
	type shown struct {
		Ready   bool       `json:"ready"`
		Heading string     `json:"heading"`
		Look    signInLook `json:"look"`
	}
	f, err := frameEval[shown](ctx, p.Src, `(() => {
		const h = document.querySelector('[data-testid=sign-in] h1');
		return {ready: document.readyState === 'complete', heading: h ? h.textContent.trim() : '', look: `+lookJS+`};
	})()`)
	p.Ready, p.Heading, p.Look = f.Ready, f.Heading, f.Look
	return p, err
}

// frameEval evaluates expression in the frame of the page that shows src,
// attached to as a target of its own.
func frameEval[T any](ctx context.Context, src, expression string) (T, error) {
	var zero T
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		return zero, err
	}
	var seen []string
	for _, info := range infos {
		if info.Type != "iframe" {
			continue
		}
		if info.URL != src {
			seen = append(seen, info.URL)
			continue
		}
		fctx, fcancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID), chromedp.WithDetachOnCancel())
		defer fcancel()
		return chromedp.Run(fctx, chromedp.Evaluate[T](expression))
	}
	return zero, fmt.Errorf("no frame shows %s yet; frames show %q", src, seen)
}

var brandPrimaryRE = regexp.MustCompile(`--brand-primary:\s*(#[0-9a-fA-F]{6})\b`)

// brandCSSPrimary fetches acme's /brand.css as any client would, outside
// the browser, and returns the primary color it sets.
func (s *site) brandCSSPrimary() string {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+s.port+"/brand.css", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	// The tenant is the one the host names.
	req.Host = "acme.localhost:" + s.port
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("GET /brand.css: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET /brand.css: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /brand.css: %s\n%s", resp.Status, body)
	}
	m := brandPrimaryRE.FindSubmatch(body)
	if m == nil {
		s.t.Fatalf("/brand.css sets no --brand-primary:\n%s", body)
	}
	return strings.ToLower(string(m[1]))
}

// writeLogoPNG writes a small PNG of the given size, in two colors, and
// returns its path.
func writeLogoPNG(t *testing.T, width, height int) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		for x := range width {
			c := color.NRGBA{R: 0xff, G: 0x6b, B: 0x35, A: 0xff}
			if x < width/2 {
				c = color.NRGBA{R: 0x1e, G: 0x29, B: 0x3b, A: 0xff}
			}
			img.Set(x, y, c)
		}
	}
	name := filepath.Join(t.TempDir(), "logo.png")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// An owner who picks an SVG that carries a script clicks Upload and reads
// why it was refused, in the form, with no full progress bar left behind.
func TestRefusedLogoUploadSaysWhy(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.withStorage()
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	svg := filepath.Join(t.TempDir(), "logo.svg")
	if err := os.WriteFile(svg, []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><script>alert(1)</script><rect width="10" height="10"/></svg>`), 0o600); err != nil {
		t.Fatal(err)
	}
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("choose the SVG and upload it",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-logos]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logo-form]`)),
		chromedp.SetUploadFiles(chromedp.ID(`logo-file`), []string{svg}),
		chromedp.Click(chromedp.CSS(`[data-testid=logo-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logo-form] .field-error, [data-testid=logo-form] [role=alert]`)),
	)
	msg := run(b, "read the message", chromedp.Evaluate[string](`(() => {
		const el = document.querySelector('[data-testid=logo-form] .field-error, [data-testid=logo-form] [role=alert]');
		return el ? el.textContent.trim() : '';
	})()`))
	if !strings.Contains(strings.ToLower(msg), "script") {
		t.Errorf("the form says %q, want why the SVG was refused (its script)", msg)
	}
	if full := run(b, "look at the progress bar", chromedp.Evaluate[bool](`(() => {
		const bar = document.querySelector('[data-testid=logo-progress]');
		return !!bar && !bar.hidden && bar.value === 100;
	})()`)); full {
		t.Error("a full progress bar is left after the refusal")
	}
	if b.present(`[data-testid=logo-row][data-kind=main] [data-testid=logo-image]`) {
		t.Error("the refused logo was stored")
	}
}

// The sign-in preview on the logos page shows what uploading gives: a
// file that is no image, or one too large, is refused as it is chosen,
// next to the field, and leaves the preview as saved; an image the server
// refuses (too wide) is shown while chosen, and once refused the preview
// is as saved again.
func TestRefusedLogoLeavesThePreviewAsSaved(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.withStorage()
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.png")
	if err := os.WriteFile(notImage, []byte("meeting notes, not a picture\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.png")
	noise := image.NewNRGBA(image.Rect(0, 0, 1000, 1000))
	if _, err := rand.Read(noise.Pix); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, noise); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wide := writeLogoPNG(t, 5000, 10)

	// asSaved: the tenant has no logo yet, so its initial.
	asSaved := func(when string) {
		t.Helper()
		if shown := run(b, "look at the sign-in preview", chromedp.Evaluate[bool](`(() => {
			const logo = document.querySelector('[data-logo-preview-brand]');
			const mark = document.querySelector('[data-logo-preview-mark]');
			const chosen = document.querySelector('[data-logo-preview]');
			return logo.hidden && !mark.hidden && (!chosen || chosen.hidden);
		})()`)); !shown {
			t.Errorf("%s: the sign-in preview does not show the initial alone, as saved", when)
		}
	}
	refusedAsChosen := func(what, file, want string) {
		t.Helper()
		b.do(what,
			chromedp.SetUploadFiles(chromedp.ID(`logo-file`), []string{file}),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-file-chosen]`)),
		)
		if got := b.text(`[data-testid=error-file-chosen]`); !strings.Contains(got, want) {
			t.Errorf("%s: the field says %q", what, got)
		}
		asSaved(what)
	}
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the logos page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-logos]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logo-form]`)),
	)
	refusedAsChosen("choose a text file", notImage, "not an image")
	refusedAsChosen("choose a file too large", big, "larger than 2.0 MB")

	b.do("choose an image too wide",
		chromedp.SetUploadFiles(chromedp.ID(`logo-file`), []string{wide}),
		chromedp.WaitVisible(chromedp.CSS(`[data-logo-preview-brand]`)),
	)
	if b.present(`[data-testid=error-file-chosen]`) {
		t.Error("the last choice's message stays beside an image that may be uploaded")
	}
	b.do("upload it",
		chromedp.Click(chromedp.CSS(`[data-testid=logo-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-file]`)),
	)
	if got := b.text(`[data-testid=error-file]`); !strings.Contains(got, "5000") {
		t.Errorf("the server's refusal says %q", got)
	}
	asSaved("after the server refused the upload")

	// An accepted main logo is the saved one; removed, the initial is.
	b.do("upload a logo",
		chromedp.SetUploadFiles(chromedp.ID(`logo-file`), []string{writeLogoPNG(t, 40, 20)}),
		chromedp.WaitVisible(chromedp.CSS(`[data-logo-preview]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=logo-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logo-done]`)),
	)
	if src := run(b, "look at the sign-in preview", chromedp.Evaluate[string](`(() => {
		const logo = document.querySelector('[data-logo-preview-brand]');
		return logo.hidden ? '' : logo.getAttribute('src');
	})()`)); !strings.HasPrefix(src, "/logo/main?v=") {
		t.Errorf("after the upload the sign-in preview shows %q, want the saved logo", src)
	}
	b.answerDialogs().answer(true)
	b.do("remove it",
		chromedp.Click(chromedp.CSS(`[data-testid=logo-row][data-kind=main] [data-testid=logo-remove]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logo-row][data-kind=main] [data-testid=logo-none]`)),
	)
	asSaved("after the logo was removed")
}
