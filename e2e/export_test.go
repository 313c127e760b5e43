package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/nself/nself/internal/blob/blobtest"
)

// The owner requests a data export from the menu, watches it being built
// (the page polls) and downloads the archive.
func TestOwnerExportsTheTenant(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.env = append(s.env, blobtest.Env(t)...)
	s.createAcme(ownerPassword)
	s.serve()
	b := newBrowser(t)
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)

	b.do("open the export page from the menu and request an export",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-export]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=export-request]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=export-request]`)),
		// No reload: the panel is swapped in, polls, and shows the link.
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=export-download]`)),
	)
	type download struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Size   int    `json:"size"`
		Magic  []int  `json:"magic"`
	}
	got := run(b, "download the archive", chromedp.Evaluate[download](`(async () => {
		const a = document.querySelector('[data-testid=export-download]');
		const r = await fetch(a.href);
		const body = new Uint8Array(await r.arrayBuffer());
		return {status: r.status, type: r.headers.get('Content-Type'), size: body.length, magic: [body[0], body[1]]};
	})()`, chromedp.EvalAwaitPromise))
	if got.Status != 200 || got.Type != "application/gzip" || got.Size < 100 || len(got.Magic) != 2 || got.Magic[0] != 0x1f || got.Magic[1] != 0x8b {
		t.Errorf("download = %+v, want a gzip archive", got)
	}
}
