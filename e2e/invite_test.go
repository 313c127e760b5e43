package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
)

// An owner invites someone from the members page: the preview pane shows
// the email as it is typed, the email goes out through SMTP (mailpit), and
// its link lets the invitee choose a password and land on the tenant's
// dashboard with the role given. The link works once.
func TestOwnerInvitesAMember(t *testing.T) {
	t.Parallel()
	api := os.Getenv("MAILPIT_URL")
	for _, name := range []string{"SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "MAILPIT_URL"} {
		if os.Getenv(name) == "" {
			t.Fatalf("%s is not set: run `eval \"$(scripts/services.sh env)\"` first", name)
		}
	}
	s := newSite(t)
	s.env = append(s.env, "SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"),
		"SMTP_FROM="+os.Getenv("SMTP_FROM"))
	s.createAcme(ownerPassword)
	s.serveOwnPort()
	b := newBrowser(t)

	// mailpit is shared by every test and every run: an address of its own
	// finds this test's mail.
	invitee := "invitee-" + uuid.NewString()[:8] + "@example.test"
	const (
		inviteeName     = "Ada Lovelace"
		role            = "admin" // not the form's default, so the role shown is the one chosen
		inviteePassword = "invitee password 5678"
	)

	b.signIn(s.url("acme", "/"), "sign-in", "owner@acme.test", ownerPassword, `[data-testid=dashboard]`)
	b.do("open the members page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-members]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=invite-form]`)),
	)
	if !b.present(`[data-testid=no-invitations]`) {
		t.Error("a new tenant's members page lists pending invitations")
	}

	// The owner types; htmx sends the unsaved form a moment later and swaps
	// the preview pane, whose frame then loads the email's HTML.
	b.do("fill the invite form",
		chromedp.SendKeys(chromedp.ID(`invite-email`), invitee),
		chromedp.SendKeys(chromedp.ID(`invite-name`), inviteeName),
		chromedp.SendKeys(chromedp.ID(`invite-role`), role),
	)
	if got := run(b, "read the role chosen", chromedp.Value(chromedp.ID(`invite-role`))); got != role {
		t.Fatalf("role select holds %q, want %q", got, role)
	}
	preview := b.waitForPreview(invitee, inviteeName, role)
	if preview.Readable {
		t.Error("the page can read the email in the preview frame: the frame is not sandboxed")
	}
	if want := "owner@acme.test invited you to Acme Corporation"; preview.Subject != want {
		t.Errorf("preview subject = %q, want %q", preview.Subject, want)
	}

	b.do("send the invitation",
		chromedp.Click(chromedp.CSS(`[data-testid=invite-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=invitation-list]`)),
	)
	if got, want := b.text(`[data-testid=flash]`), "Invitation to "+invitee+" saved: its email is on its way."; got != want {
		t.Errorf("flash = %q, want %q", got, want)
	}
	if got := b.text(`[data-testid=invitation-email]`); got != invitee {
		t.Errorf("pending invitation for %q, want %q", got, invitee)
	}

	mail := awaitMail(t, api, invitee)
	if mail.Subject != preview.Subject {
		t.Errorf("mail subject = %q, the preview said %q", mail.Subject, preview.Subject)
	}
	if mail.Text == "" || mail.HTML == "" {
		t.Fatalf("the mail lacks a part: text %d bytes, HTML %d bytes", len(mail.Text), len(mail.HTML))
	}
	linkRE := regexp.MustCompile(regexp.QuoteMeta(s.url("acme", "/invitations/accept?token=")) + `[A-Za-z0-9_%-]+`)
	link := linkRE.FindString(mail.Text)
	if link == "" {
		t.Fatalf("no accept link to %s in the text part:\n%s", s.url("acme", ""), mail.Text)
	}
	if !strings.Contains(mail.HTML, `href="`+link+`"`) {
		t.Errorf("the HTML part does not link to %s:\n%s", link, mail.HTML)
	}
	for _, part := range []struct{ name, body string }{{"text", mail.Text}, {"HTML", mail.HTML}} {
		for _, want := range []string{"Hello " + inviteeName, "Acme Corporation", invitee, role} {
			if !strings.Contains(part.body, want) {
				t.Errorf("the %s part lacks %q", part.name, want)
			}
		}
	}

	// The owner is still signed in on this browser: the link says so and
	// offers to sign out first.
	b.do("open the link while signed in as the owner", chromedp.Navigate(link))
	if !strings.Contains(b.text(`[data-testid=signed-in-other]`), "owner@acme.test") {
		t.Error("the accept page does not say who is signed in")
	}
	b.do("sign out from the accept page",
		chromedp.Click(chromedp.CSS(`[data-testid=invitation-sign-out]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in]`)),
	)

	b.do("open the link signed out",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=accept-invitation]`)),
	)
	summary := b.text(`[data-testid=invitation-summary]`)
	for _, want := range []string{"owner@acme.test", invitee, "Acme Corporation", role} {
		if !strings.Contains(summary, want) {
			t.Errorf("the invitation summary %q lacks %q", summary, want)
		}
	}
	b.do("choose a password and accept",
		chromedp.SendKeys(chromedp.ID(`password`), inviteePassword),
		chromedp.Click(chromedp.CSS(`[data-testid=accept-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
	)
	if loc := run(b, "read the location", chromedp.Location()); loc != s.url("acme", "/dashboard") {
		t.Errorf("after accepting the browser is at %s, want /dashboard", loc)
	}
	if got := b.text(`[data-testid=tenant-name]`); got != "Acme Corporation" {
		t.Errorf("tenant name = %q, want Acme Corporation", got)
	}
	if got := b.text(`[data-testid=user-email]`); got != invitee {
		t.Errorf("signed in as %q, want %q", got, invitee)
	}
	if got := b.text(`[data-testid=user-role]`); got != role {
		t.Errorf("role = %q, want %q", got, role)
	}
	if got := b.text(`[data-testid=flash]`); !strings.Contains(got, "Acme Corporation") || !strings.Contains(got, role) {
		t.Errorf("flash = %q, want a welcome naming the tenant and the role", got)
	}

	// The link worked once.
	b.do("sign out", chromedp.Click(chromedp.CSS(`[data-testid=sign-out]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in]`)))
	b.do("open the link again", chromedp.Navigate(link))
	if got := b.text(`[data-testid=invitation-problem]`); !strings.Contains(got, "already") {
		t.Errorf("the used link says %q, want that it was already used", got)
	}
	if b.present(`[data-testid=accept-submit]`) {
		t.Error("the used link still offers to accept")
	}
}

// invitePreview is what the preview pane shows.
type invitePreview struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	// Src is the frame element's address; URL and Text are those of the
	// document the frame shows.
	Src      string `json:"src"`
	Readable bool   `json:"readable"`
	URL      string `json:"-"`
	Text     string `json:"-"`
}

// waitForPreview waits, boundedly, until the preview pane shows the email
// for the values typed, and returns what it shows.
func (b *browser) waitForPreview(email, name, role string) invitePreview {
	b.t.Helper()
	var got invitePreview
	var err error
	shows := func() bool {
		if got.To != email || got.URL != got.Src {
			return false
		}
		q, _ := url.Parse(got.URL)
		if q == nil || q.Query().Get("email") != email || q.Query().Get("name") != name || q.Query().Get("role") != role {
			return false
		}
		for _, want := range []string{"Hello " + name + ",", "Acme Corporation", email, " as " + role + "."} {
			if !strings.Contains(got.Text, want) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		got, err = b.readPreview()
		if err == nil && shows() {
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the preview pane never showed the email to %q (%s, %s): it shows %+v (%v)", email, name, role, got, err)
		}
	}
}

// readPreview reads the preview pane. The frame is sandboxed, with an
// origin of its own, so the page cannot look into it (Readable says if it
// can); the test reads the frame's document through DevTools.
func (b *browser) readPreview() (invitePreview, error) {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	p, err := chromedp.Run(ctx, chromedp.Evaluate[invitePreview](`(() => {
		const text = s => { const e = document.querySelector(s); return e ? e.textContent.trim() : ''; };
		const frame = document.querySelector('[data-testid=preview-frame]');
		let readable = false;
		try { readable = !!(frame && frame.contentDocument); } catch (e) {}
		return {
			to: text('[data-testid=preview-to]'),
			subject: text('[data-testid=preview-subject]'),
			src: frame ? frame.src : '',
			readable,
		};
	})()`))
	if err != nil {
		return p, err
	}
	f, err := b.frameDocument(p.Src)
	p.URL, p.Text = f.URL, f.Text
	return p, err
}

// frameShown is a frame's document as the frame shows it.
type frameShown struct{ URL, Text string }

// frameDocument returns the rendered text of the document that a frame
// of the page shows from src. Chromium runs a sandboxed frame in a process
// of its own, as a target of its own: the test attaches to it there.
func (b *browser) frameDocument(src string) (frameShown, error) {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		return frameShown{}, err
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
		text, err := chromedp.Run(fctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		return frameShown{info.URL, text}, err
	}
	return frameShown{}, fmt.Errorf("no frame shows %s yet; frames show %q", src, seen)
}

// mailpitMessage is one message as mailpit's API gives it.
type mailpitMessage struct {
	Subject string
	To      []struct{ Address string }
	Text    string
	HTML    string
}

// awaitMail polls mailpit, boundedly, for the one message sent to to.
func awaitMail(t *testing.T, api, to string) mailpitMessage {
	t.Helper()
	var found struct {
		Messages []struct{ ID string }
	}
	for deadline := time.Now().Add(10 * time.Second); len(found.Messages) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s arrived at mailpit", to)
		}
		mailpitGet(t, api+"/api/v1/search?query="+url.QueryEscape("to:"+to), &found)
	}
	if len(found.Messages) != 1 {
		t.Errorf("%d mails to %s, want 1", len(found.Messages), to)
	}
	var m mailpitMessage
	mailpitGet(t, api+"/api/v1/message/"+found.Messages[0].ID, &m)
	if len(m.To) != 1 || m.To[0].Address != to {
		t.Errorf("mail addressed to %+v, want %s", m.To, to)
	}
	return m
}

func mailpitGet(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("mailpit: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("mailpit: GET %s: %s\n%s", u, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit: GET %s: %v", u, err)
	}
}

// serveOwnPort starts `nself serve` as serve does, but on a port chosen
// first and given to it as PUBLIC_PORT, so that the links it mails lead
// back to it. Another process may take the port between its choice and
// the server's start, so a failed start is tried again.
func (s *site) serveOwnPort() {
	s.t.Helper()
	var err error
	for range 3 {
		if err = s.tryServeOn(freePort(s.t)); err == nil {
			return
		}
	}
	s.t.Fatal(err)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// tryServeOn starts the server on port and waits for its first line.
func (s *site) tryServeOn(port string) error {
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:"+port, "--shutdown-grace", "1s")
	cmd.Env = append(s.env[:len(s.env):len(s.env)], "PUBLIC_PORT="+port)
	cmd.Dir = s.t.TempDir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var log syncBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nself serve: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "http://127.0.0.1:"+port) {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("nself serve on port %s said %q (%v)\n%s", port, line, err, log.String())
	}
	go io.Copy(io.Discard, stdout)
	s.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if s.t.Failed() {
			s.t.Logf("nself serve log:\n%s", log.String())
		}
	})
	s.port = port
	return nil
}
