package e2e

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// An owner types a pale yellow primary color into the branding editor and
// reads, next to the field, why it is hard to read and what the portal
// does about it; the preview draws black text on the yellow buttons and
// links in a darker shade. Typing a darker color clears the warnings.
func TestContrastWarningsAsTheOwnerTypes(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the branding page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-branding]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=brand-form]`)),
	)
	if got := b.fieldWarnings("primary_color"); len(got) != 0 {
		t.Fatalf("the default primary color has warnings: %q", got)
	}

	b.do("type a pale yellow primary color",
		chromedp.Clear(chromedp.ID(`primary_color`)),
		chromedp.SendKeys(chromedp.ID(`primary_color`), "#ffee88"),
	)
	warnings := b.waitForFieldWarnings("primary_color", func(w []string) bool { return len(w) > 0 })
	want := []string{
		"Links on the background: #ffee88 on #f6f7fb is 1.09:1; WCAG AA asks at least 4.5:1. The portal draws them in #787040 instead.",
		"Buttons against the background: #ffee88 on #f6f7fb is 1.09:1; WCAG AA asks at least 3:1.",
	}
	if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("next to the primary color:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
	if got := b.fieldWarnings("secondary_color"); len(got) != 0 {
		t.Errorf("the secondary color has warnings: %q", got)
	}
	if got := run(b, "read the color picker", chromedp.Evaluate[string](`document.querySelector('[data-color-picker=primary_color]').value`)); got != "#ffee88" {
		t.Errorf("the picker beside the field shows %s", got)
	}
	if got := b.text(`[data-testid=preview-aa-warning]`); got != "2 pairings are below WCAG AA" {
		t.Errorf("the preview says %q", got)
	}

	// The preview draws what the pages will: black text on the yellow
	// button, links in the darker shade.
	b.waitForBrandPreview("#ffee88", "rgb(255, 238, 136)")
	colors := b.previewColors()
	for k, want := range map[string]string{
		"button": "rgb(255, 238, 136)", "buttonText": "rgb(0, 0, 0)", "markText": "rgb(0, 0, 0)", "link": "rgb(120, 112, 64)",
	} {
		if colors[k] != want {
			t.Errorf("in the preview, %s is %s, want %s", k, colors[k], want)
		}
	}

	// As a person would: erase what was typed, then type anew.
	b.do("type a darker primary color",
		chromedp.SendKeys(chromedp.ID(`primary_color`), kb.End+strings.Repeat(kb.Backspace, 7)+"#1d4ed8"),
	)
	if got := run(b, "read the field", chromedp.Value(chromedp.ID(`primary_color`))); got != "#1d4ed8" {
		t.Fatalf("the primary color field holds %q", got)
	}
	b.waitForFieldWarnings("primary_color", func(w []string) bool { return len(w) == 0 })
	if got := b.text(`[data-testid=preview-aa]`); got != "Every pairing meets WCAG AA" {
		t.Errorf("the preview says %q", got)
	}
}

// fieldWarnings are the contrast warnings shown in the color field of the
// input with this id.
func (b *browser) fieldWarnings(id string) []string {
	b.t.Helper()
	return run(b, "read the warnings of "+id, chromedp.Evaluate[[]string](`(() => {
		const field = document.getElementById('`+id+`').closest('.color-field');
		return Array.from(field.querySelectorAll('[data-testid=contrast-warning]'), e => e.textContent.trim());
	})()`))
}

// waitForFieldWarnings waits, boundedly, until a field's warnings satisfy
// ok (the live preview answers a moment after the keystrokes).
func (b *browser) waitForFieldWarnings(id string, ok func([]string) bool) []string {
	b.t.Helper()
	var got []string
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		got = b.fieldWarnings(id)
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the warnings next to %s never changed: %q", id, got)
		}
	}
}

// colorsJS reads the colors a sign-in page is drawn in, as computed.
const colorsJS = `(() => {
	const cs = (sel, prop) => { const el = document.querySelector(sel); return el ? getComputedStyle(el)[prop] : 'missing ' + sel; };
	return {
		background: cs('body', 'backgroundColor'),
		text: cs('[data-testid=sign-in] h1', 'color'),
		card: cs('[data-testid=sign-in]', 'backgroundColor'),
		label: cs('label[for=email]', 'color'),
		button: cs('[data-testid=sign-in-submit]', 'backgroundColor'),
		buttonText: cs('[data-testid=sign-in-submit]', 'color'),
		link: cs('[data-testid=forgot-link]', 'color'),
		muted: cs('[data-testid=sign-in] .muted', 'color'),
		mark: cs('[data-testid=brand-name] > .brand-mark', 'backgroundColor'),
		markText: cs('[data-testid=brand-name] > .brand-mark', 'color'),
		name: cs('[data-testid=brand-name]', 'color'),
		topbar: cs('.topbar', 'backgroundColor'),
		topbarEdge: cs('.topbar', 'borderBottomColor'),
	};
})()`

// previewColors reads the colors of the page in the preview frame.
func (b *browser) previewColors() map[string]string {
	b.t.Helper()
	src := run(b, "read the frame's address", chromedp.Evaluate[string](`document.querySelector('[data-testid=preview-frame]').src`))
	var colors map[string]string
	var err error
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		colors, err = frameEval[map[string]string](b.ctx, src, `document.readyState === 'complete' ? `+colorsJS+` : null`)
		if err == nil && colors != nil {
			return colors
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the preview frame %s never loaded: %v", src, err)
		}
	}
}

// An owner previews a teal theme while the brand colors are yellow, then
// activates it: a visitor's sign-in page is drawn in exactly the colors
// the preview showed (the theme's, not the brand's). Deleting the active
// theme, confirmed, brings the brand colors back.
func TestThemePreviewIsWhatActivationGives(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.nself("", "whitelabel", "brand", "set", "acme", "--primary-color", "#ffee88", "--accent-color", "#a16207")
	s.nself("", "whitelabel", "theme", "create", "acme", "Teal", "--primary", "#0d9488", "--secondary", "#134e4a", "--background", "#f0fdfa", "--text", "#042f2e")
	s.serve()
	b := newBrowser(t)
	visitor := b.newVisitor()
	before := visitor.signInColors(s.url("acme", "/"))
	if before["button"] != "rgb(255, 238, 136)" {
		t.Fatalf("before the theme, the sign-in button is %s, want the brand's yellow", before["button"])
	}

	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("preview the teal theme",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-branding]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-theme=teal] [data-testid=theme-preview]`)),
		chromedp.Click(chromedp.CSS(`[data-theme=teal] [data-testid=theme-preview]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=branding-preview][data-theme=teal]`)),
	)
	previewed := b.previewColors()
	if previewed["button"] != "rgb(13, 148, 136)" || previewed["background"] != "rgb(240, 253, 250)" {
		t.Errorf("the preview of the teal theme is drawn in %v", previewed)
	}

	b.do("activate the theme",
		chromedp.Click(chromedp.CSS(`[data-theme=teal] [data-testid=theme-activate]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)),
	)
	if got := b.text(`[data-testid=flash]`); got != "Theme Teal is now active." {
		t.Errorf("flash = %q", got)
	}
	// The server learns of the change through its branding cache.
	var activated map[string]string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		activated = visitor.signInColors(s.url("acme", "/"))
		if maps.Equal(activated, previewed) || time.Now().After(deadline) {
			break
		}
	}
	if !maps.Equal(activated, previewed) {
		for k := range previewed {
			if activated[k] != previewed[k] {
				t.Errorf("%s: previewed %s, activated %s", k, previewed[k], activated[k])
			}
		}
	}
	if got := b.text(`[data-testid=look-source]`); got != "In use now: theme Teal, with your brand accent." {
		t.Errorf("the page says %q", got)
	}

	// Deleting the active theme asks first, and says what happens.
	b.do("ask to delete the theme",
		chromedp.Click(chromedp.CSS(`[data-theme=teal] [data-testid=theme-delete]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-theme=teal] [data-testid=theme-delete-confirmed]`)),
	)
	if got := b.text(`[data-theme=teal] .confirm-body p`); !strings.Contains(got, "It is the active theme: the pages go back to your brand colors at once.") {
		t.Errorf("the confirmation says %q", got)
	}
	b.do("confirm",
		chromedp.Click(chromedp.CSS(`[data-theme=teal] [data-testid=theme-delete-confirmed]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=no-themes]`)),
	)
	if got := b.text(`[data-testid=flash]`); got != "Theme Teal deleted. It was active: the pages use the brand colors now." {
		t.Errorf("flash = %q", got)
	}
	var after map[string]string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		after = visitor.signInColors(s.url("acme", "/"))
		if maps.Equal(after, before) || time.Now().After(deadline) {
			break
		}
	}
	if !maps.Equal(after, before) {
		t.Errorf("after deleting the active theme the sign-in page is drawn in %v, want the brand's %v", after, before)
	}
}

// signInColors opens a sign-in page and reads the colors it is drawn in.
func (b *browser) signInColors(page string) map[string]string {
	b.t.Helper()
	b.do("open the sign-in page",
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in]`)),
	)
	return run(b, "read the sign-in page's colors", chromedp.Evaluate[map[string]string](colorsJS))
}

// On the members page, the label of a member's role control is for
// screen readers only, and the role is shown once: as the control.
func TestMemberRoleShownOnce(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	tenantID := s.createAcme(ownerPassword)
	bobID := s.createdID(s.nself("bob-password-123\n", "user", "create", "acme", "bob@acme.test", "--password-stdin"))
	s.addMember(tenantID, bobID, "member")
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the members page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-members]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=member-role-select]`)),
	)
	type shown struct {
		LabelWidth float64 `json:"labelWidth"`
		Selects    int     `json:"selects"`
		InRoleCell bool    `json:"inRoleCell"`
		PlainRoles int     `json:"plainRoles"`
	}
	got := run(b, "look at bob's row", chromedp.Evaluate[shown](`(() => {
		const row = document.querySelector('[data-testid=member-row][data-user-id="`+bobID+`"]');
		const label = row.querySelector('label');
		return {
			labelWidth: label.getBoundingClientRect().width,
			selects: row.querySelectorAll('select').length,
			inRoleCell: !!row.querySelector('[data-testid=member-role] select'),
			plainRoles: Array.from(row.querySelectorAll('td')).filter(td => td.textContent.trim() === 'member').length,
		};
	})()`))
	if got.LabelWidth > 1 {
		t.Errorf("the role control's label is shown, %.0f px wide", got.LabelWidth)
	}
	if got.Selects != 1 || !got.InRoleCell || got.PlainRoles != 0 {
		t.Errorf("bob's role is shown as %+v, want once, as the control in the Role column", got)
	}
}
