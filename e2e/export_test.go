package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// The owner requests a data export from the menu, watches it being built
// (the page polls) and downloads the archive.
func TestOwnerExportsTheTenant(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.withStorage()
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
	// The owner clicks the download link; the browser saves the file.
	dir := t.TempDir()
	done := make(chan string, 1)
	if err := chromedp.ListenBrowser(b.ctx, func(ev any) {
		if e, ok := ev.(*cdpbrowser.EventDownloadProgress); ok && e.State == cdpbrowser.DownloadProgressStateCompleted {
			select {
			case done <- e.GUID:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &[]bool{true}[0],
	}); err != nil {
		t.Fatal(err)
	}
	b.do("download the archive", chromedp.Click(chromedp.CSS(`[data-testid=export-download]`)))
	var guid string
	select {
	case guid = <-done:
	case <-time.After(stepTimeout):
		t.Fatal("the download did not complete")
	}
	body, err := os.ReadFile(filepath.Join(dir, guid))
	if err != nil || len(body) < 100 || body[0] != 0x1f || body[1] != 0x8b {
		t.Errorf("downloaded %d bytes (%v), want a gzip archive", len(body), err)
	}
}
