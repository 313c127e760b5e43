package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The owner reads the tenant's audit log: the sign-in from the browser and
// a setting changed at the command line, then filters it as they type.
func TestOwnerReadsAndFiltersTheAuditLog(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.createAcme(ownerPassword)
	s.nself("", "tenant", "setting", "set", "acme", "branding.company_name", "Acme <b>Corp</b>")
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)

	b.do("open the audit log from the menu",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-audit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=audit-table]`)),
	)
	actions := run(b, "read the actions", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid=audit-action]')].map(e => e.textContent.trim())`))
	joined := strings.Join(actions, " ")
	if !strings.Contains(joined, "user.sign_in") || !strings.Contains(joined, "setting.set") {
		t.Fatalf("actions shown: %q", actions)
	}

	b.do("type a filter", chromedp.SendKeys(chromedp.CSS(`[data-testid=audit-filter-action]`), "setting"))
	// The table alone is swapped in once the typing pauses.
	run(b, "only the setting's entry is left", chromedp.Poll[bool](`(() => {
		const rows = [...document.querySelectorAll('[data-testid=audit-action]')].map(e => e.textContent.trim());
		return rows.length > 0 && rows.every(a => a === 'setting.set');
	})()`, chromedp.WithPollingTimeout(stepTimeout)))
	summary := b.text(`[data-testid=audit-summary]`)
	if !strings.Contains(summary, "<b>Corp</b>") {
		t.Errorf("summary %q does not show the value as text", summary)
	}
	if b.present(`[data-testid=audit-summary] b`) {
		t.Error("the value's markup was rendered")
	}
	if got := run(b, "read the address", chromedp.Evaluate[string](`location.search`)); !strings.Contains(got, "action=setting") {
		t.Errorf("the filter is not in the address: %q", got)
	}
}
