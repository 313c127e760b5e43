package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// dialogs answers the page's confirm() questions as a person would, and
// records what they asked.
type dialogs struct {
	mu     sync.Mutex
	asked  []string
	accept bool
}

func (b *browser) answerDialogs() *dialogs {
	b.t.Helper()
	d := &dialogs{}
	err := chromedp.Listen(b.ctx, func(ev any) {
		e, ok := ev.(*page.EventJavascriptDialogOpening)
		if !ok {
			return
		}
		d.mu.Lock()
		d.asked = append(d.asked, e.Message)
		accept := d.accept
		d.mu.Unlock()
		// A listener may not run commands itself.
		go chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

func (d *dialogs) answer(accept bool) {
	d.mu.Lock()
	d.accept = accept
	d.mu.Unlock()
}

func (d *dialogs) questions() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// Removing a member asks first: "Cancel" keeps them, "OK" removes them.
func TestRemovingAMemberAsksFirst(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	id := s.createAcme(ownerPassword)
	bobID := s.createdID(s.nself("bob-password-123\n", "user", "create", "acme", "bob@acme.test", "--password-stdin"))
	s.addMember(id, bobID, "member")
	s.serve()
	b := newBrowser(t)
	d := b.answerDialogs()
	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	remove := `[data-testid=member-row][data-user-id="` + bobID + `"] [data-testid=member-remove]`
	b.do("open members", chromedp.Click(chromedp.CSS(`[data-testid=nav-members]`)),
		chromedp.WaitVisible(chromedp.CSS(remove)))

	d.answer(false)
	b.do("click Remove, then Cancel", chromedp.Click(chromedp.CSS(remove)))
	for deadline := time.Now().Add(stepTimeout); len(d.questions()) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if q := d.questions(); len(q) != 1 || q[0] != "Remove bob@acme.test? They lose access to this workspace at once." {
		t.Fatalf("asked %q", q)
	}
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-testid=member-email]`)))
	if !b.present(`[data-testid=member-email]`) || !run(b, "find bob", chromedp.Evaluate[bool](
		`[...document.querySelectorAll('[data-testid=member-email]')].some(e => e.textContent.trim() === 'bob@acme.test')`)) {
		t.Fatal("Cancel removed the member")
	}

	d.answer(true)
	b.do("click Remove, then OK", chromedp.Click(chromedp.CSS(remove)))
	// The form posts and the page comes back: look once it has.
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		gone, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](
			`document.readyState === 'complete' && !!document.querySelector('[data-testid=member-list]') &&
			 ![...document.querySelectorAll('[data-testid=member-email]')].some(e => e.textContent.trim() === 'bob@acme.test')`))
		if err == nil && gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after OK the member is still listed (%v)", err)
		}
	}
	if q := d.questions(); len(q) != 2 {
		t.Errorf("asked %d times, want 2", len(q))
	}
}
