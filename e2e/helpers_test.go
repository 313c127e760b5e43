// Package e2e drives the real nself binary with a real browser: each test
// gets a database of its own, runs the CLI as an operator would, starts
// `nself serve` on a loopback port and uses Debian's Chromium, through
// chromedp, as a person would.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
)

// chromiumPath is where scripts/services.sh installs Debian's Chromium.
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds one browser step; the browser itself lives as long as
// the test.
const stepTimeout = 10 * time.Second

// binary is the nself program, built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nself-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nself")
	// The tests run in e2e/; the command lives beside it.
	out, err := exec.Command("go", "build", "-o", binary, "../cmd/nself").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build nself: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// site is one installation of nself: its own database, the environment
// the CLI and the server share, and, once started, the server's port.
type site struct {
	t    *testing.T
	urls pgtest.URLs
	env  []string
	port string
}

func newSite(t *testing.T) *site {
	t.Helper()
	urls := pgtest.NewURLs(t)
	return &site{t: t, urls: urls, env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"DATABASE_URL=" + urls.App,
		"DATABASE_ADMIN_URL=" + urls.Admin,
		"BASE_DOMAIN=localhost",
		"PUBLIC_SCHEME=http",
		"SESSION_SECRET=e2e-session-secret-0123456789abcdef",
		"TOTP_ENCRYPTION_KEY=" + e2eTOTPKey,
	}}
}

// nself runs a CLI command that must succeed, with stdin as its standard
// input, and returns its output.
func (s *site) nself(stdin string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = s.env
	// A folder of its own, so no .env file of the developer is read.
	cmd.Dir = s.t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("nself %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

var idRE = regexp.MustCompile(`\(ID: ([0-9a-f-]{36})\)`)

// createdID reads the id from a "✓ … created: … (ID: …)" line.
func (s *site) createdID(out string) string {
	s.t.Helper()
	m := idRE.FindStringSubmatch(out)
	if m == nil {
		s.t.Fatalf("no ID in %q", out)
	}
	return m[1]
}

// withStorage gives the site the test MinIO: logos and exports need it.
func (s *site) withStorage() {
	s.env = append(s.env, blobtest.Env(s.t)...)
}

// createAcme creates the tenant the tests use, with an owner who can sign
// in, and returns the tenant's id.
func (s *site) createAcme(ownerPassword string) string {
	s.t.Helper()
	out := s.nself(ownerPassword+"\n", "tenant", "create", "Acme Corporation", "--slug", "acme",
		"--owner", "owner@acme.test", "--owner-password-stdin")
	return s.createdID(out)
}

// addMember makes a user a member of a tenant. No command does it yet, so
// it is done in SQL, as the owner role, inside the tenant's context as row
// security demands.
func (s *site) addMember(tenantID, userID, role string) {
	s.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.urls.Admin)
	if err != nil {
		s.t.Fatalf("connect as owner: %v", err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, $3)`,
			tenantID, userID, role)
		return err
	})
	if err != nil {
		s.t.Fatalf("add %s as %s: %v", userID, role, err)
	}
}

// serve starts `nself serve` on a free loopback port. Its log is shown
// when the test fails.
func (s *site) serve() {
	s.t.Helper()
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "1s")
	cmd.Env = s.env
	cmd.Dir = s.t.TempDir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	var log syncBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nself serve: %v", err)
	}
	s.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if s.t.Failed() {
			s.t.Logf("nself serve log:\n%s", log.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		s.t.Fatalf("nself serve printed nothing: %v\n%s", err, log.String())
	}
	m := regexp.MustCompile(`http://127\.0\.0\.1:(\d+)`).FindStringSubmatch(line)
	if m == nil {
		s.t.Fatalf("nself serve said %q", line)
	}
	go io.Copy(io.Discard, stdout)
	s.port = m[1]
}

// url is the address of a page on a host under BASE_DOMAIN (localhost,
// which Chromium resolves to loopback by itself).
func (s *site) url(host, path string) string {
	return "http://" + host + ".localhost:" + s.port + path
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// browser is one headless Chromium of the test's own, with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Chromium. A missing Chromium fails the test: these
// tests never skip for want of it. When the test fails, the page it ended
// on is saved as a screenshot in the test's artifact folder (a temporary
// folder, kept only with `go test -artifacts`).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser tests need Chromium at %s: install it with `scripts/services.sh start chromium` (%v)", chromiumPath, err)
	}
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // needed when the tests run as root, as in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1280, 800),
		// Chromium leaves folders in TMPDIR and a certificate store in
		// HOME; both belong to the test.
		chromedp.Env("TMPDIR="+tmp, "HOME="+dir),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit, before dir is removed
	})
	// The first run starts the browser: a deadline on it would end the
	// browser too, so steps get their own deadlines instead.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(b.screenshotOnFailure)
	return b
}

// do runs browser steps, each call within stepTimeout.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// run runs one browser action that returns a value, within stepTimeout.
func run[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// present reports whether the page has an element matching a CSS selector,
// without waiting for one to appear.
func (b *browser) present(selector string) bool {
	b.t.Helper()
	return run(b, "look for "+selector, chromedp.Evaluate[bool](
		fmt.Sprintf(`document.querySelector(%q) !== null`, selector)))
}

// text waits for an element to show and returns its text as written, before
// CSS changes its case.
func (b *browser) text(selector string) string {
	b.t.Helper()
	return strings.TrimSpace(run(b, "read "+selector, chromedp.TextContent(chromedp.CSS(selector), chromedp.NodeVisible)))
}

// signIn opens url, fills and sends the sign-in form found there (in the
// element with data-testid form), and waits for the page that follows.
func (b *browser) signIn(url, form, email, password, landing string) {
	b.t.Helper()
	b.do("sign in at "+url,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=`+form+`]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=sign-in-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(landing)),
	)
}

func (b *browser) screenshotOnFailure() {
	if !b.t.Failed() && os.Getenv("NSELF_SCREENSHOTS") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("no screenshot of %s: %v", loc, err)
		return
	}
	name := filepath.Join(b.t.ArtifactDir(), "final.png")
	if dir := os.Getenv("NSELF_SCREENSHOTS"); dir != "" {
		// Screenshots of where each browser test ends, for people to look at.
		name = filepath.Join(dir, strings.ReplaceAll(b.t.Name(), "/", "_")+".png")
	}
	if err := os.WriteFile(name, png, 0o644); err != nil {
		b.t.Logf("save screenshot: %v", err)
		return
	}
	b.t.Logf("the page the test ended on (%s) is in %s", loc, name)
}

// navigation records what the page's top-level navigations requested and
// any request the browser blocked or any Content-Security-Policy message it
// logged, so that a test can follow a click that leaves the site.
type navigation struct {
	mu         sync.Mutex
	urls       []string
	violations []string
}

// watchNavigation starts recording the tab's navigations.
func (b *browser) watchNavigation() *navigation {
	b.t.Helper()
	n := &navigation{}
	err := chromedp.Listen(b.ctx, func(ev any) {
		n.mu.Lock()
		defer n.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if e.Type == network.ResourceTypeDocument {
				n.urls = append(n.urls, e.Request.URL)
			}
		case *network.EventLoadingFailed:
			if e.BlockedReason != "" {
				n.violations = append(n.violations, "blocked: "+e.BlockedReason.String())
			}
		case *cdplog.EventEntryAdded:
			if strings.Contains(e.Entry.Text, "Content Security Policy") {
				n.violations = append(n.violations, e.Entry.Text)
			}
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

// waitFor returns the first navigation to a URL starting with prefix,
// failing the test when none comes within stepTimeout.
func (n *navigation) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		n.mu.Lock()
		for _, u := range n.urls {
			if strings.HasPrefix(u, prefix) {
				n.mu.Unlock()
				return u
			}
		}
		violations := slices.Clone(n.violations)
		n.mu.Unlock()
		if len(violations) > 0 {
			t.Fatalf("no navigation to %s: %s", prefix, strings.Join(violations, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t.Fatalf("no navigation to %s; navigations: %q", prefix, n.urls)
	return ""
}

// noViolations fails the test if the browser blocked anything.
func (n *navigation) noViolations(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, v := range n.violations {
		t.Errorf("the browser reported: %s", v)
	}
}
