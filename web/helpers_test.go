package web_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/notify"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/services"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// testEnv is a running server on its own database, with real services.
type testEnv struct {
	t      testing.TB
	db     *postgres.DB
	srv    *httptest.Server
	server *web.Server
	mail   *mailbox
	ctx    context.Context
	// sender delivers the outbox to mail after every request, so that a
	// request's answer is read once the mail it recorded is in mail. A
	// test may give it another mailer (a real SMTP server, a hung one).
	sender *notify.Sender
	// creds verifies the server's keys and sessions.
	creds *postgres.CredentialCache
}

// mailbox records mail instead of sending it, for handler tests; the
// SMTP path has its own test against mailpit.
type mailbox struct {
	mu   sync.Mutex
	sent []tenancy.Message
}

func (m *mailbox) Send(_ context.Context, msg tenancy.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// messages returns the mail sent so far, of the templates named, or all.
func (m *mailbox) messages(templates ...string) []tenancy.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(templates) == 0 {
		return append([]tenancy.Message(nil), m.sent...)
	}
	var out []tenancy.Message
	for _, msg := range m.sent {
		if slices.Contains(templates, msg.Template) {
			out = append(out, msg)
		}
	}
	return out
}

const (
	// testTOTPKey seals authenticator secrets: 32 bytes.
	testTOTPKey   = "test-totp-key-0123456789abcdef01"
	testSSOKey    = "test-sso-secret-key-0123456789abcdef"
	baseDomain    = "nself.test"
	internalToken = "internal-service-token-0123456789abcdef"
)

// newEnv starts a server; opts change it before it starts serving.
func newEnv(t testing.TB, opts ...func(*web.Server, *postgres.DB)) *testEnv {
	t.Helper()
	return newEnvDB(t, pgtest.New(t), opts...)
}

// newEnvDB starts a server on db (one reached through a fault proxy, say).
func newEnvDB(t testing.TB, db *postgres.DB, opts ...func(*web.Server, *postgres.DB)) *testEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The services `nself serve` builds, with object storage; no Stripe,
	// SMTP or DNS: a test that needs one sets it.
	svc, err := services.New(db, services.Config{
		Log: log, Strategy: tenancy.ModeHybrid,
		Domains:   tenancy.DomainRules{BaseDomain: baseDomain, ToASCII: domainname.ToASCII},
		TenantURL: func(slug string) string { return "http://" + slug + "." + baseDomain },
		Objects:   blobtest.New(t),
		ExportDir: t.TempDir(),
		// Single sign-on and two-factor sign-in, as serve has them with
		// their keys set.
		SSOKey: []byte(testSSOKey), SSOTimeout: 5 * time.Second,
		TOTPKey: []byte(testTOTPKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Recorded uses are written as the test ends, not every 30 s in the
	// middle of one that counts the database's transactions.
	svc.Creds.TouchEvery = time.Hour
	if err := svc.Start(ctx, 10*time.Second); err != nil {
		t.Fatalf("start the services: %v", err)
	}
	t.Cleanup(svc.Close)
	creds := svc.Creds
	mb := &mailbox{}
	s := svc.Server(web.Config{
		BaseDomain: baseDomain, AdminHost: "admin." + baseDomain, RoutingMethod: "subdomain",
		SessionKey: []byte("test-session-key-0123456789abcdef0123"), InternalToken: internalToken,
	})
	for _, o := range opts {
		o(s, db)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	sender := &notify.Sender{Outbox: postgres.NewMailOutbox(db), Mailer: mb, Composer: s.Mail, Retry: tenancy.DefaultMailRetry, Log: log}
	return &testEnv{t: t, db: db, srv: srv, server: s, mail: mb, ctx: ctx, sender: sender, creds: creds}
}

// deliver runs the outbox's sender once, as a server process does every
// second: the mail due now is sent.
func (e *testEnv) sendMail() notify.Result {
	e.t.Helper()
	if e.sender == nil {
		return notify.Result{}
	}
	// Bounded: a test that freezes the database must not hang here.
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	res, err := e.sender.RunOnce(ctx)
	if err != nil {
		e.t.Fatalf("deliver mail: %v", err)
	}
	return res
}

// client is a browser-like client for one host: it keeps cookies and
// sends every request to the test server, whatever the host.
type client struct {
	t    testing.TB
	env  *testEnv
	host string
	http *http.Client
	// csrf is the token of the last page read.
	csrf string
}

func (e *testEnv) client(host string) *client {
	jar, _ := cookiejar.New(nil)
	addr := e.srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return &client{t: e.t, env: e, host: host, http: &http.Client{
		Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *client) url(path string) string { return "http://" + c.host + path }

// do sends a request and returns the response with its body read.
func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.env.sendMail()
	if tok := csrfOf(string(b)); tok != "" {
		c.csrf = tok
	}
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.url(path), nil)
	return c.do(req)
}

// post sends a form, with the CSRF token of the last page unless the form
// sets one.
func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", c.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, c.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// signIn signs in through the form, as a person would.
func (c *client) signIn(email, password string) *http.Response {
	c.t.Helper()
	c.get("/")
	resp, body := c.post("/signin", url.Values{"email": {email}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign in %s: %d\n%s", email, resp.StatusCode, body)
	}
	return resp
}

// mustTenant creates a tenant.
func (e *testEnv) mustTenant(slug string) *tenancy.Tenant {
	e.t.Helper()
	c, err := e.server.Tenants.CreateTenant(e.ctx, tenancy.NewTenant{Name: strings.ToUpper(slug[:1]) + slug[1:] + " Inc", Slug: slug})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Tenant
}

// mustMember creates a user with a password and gives it a role.
func (e *testEnv) mustMember(t *tenancy.Tenant, email string, role tenancy.Role) *tenancy.User {
	e.t.Helper()
	u, _, err := e.server.Users.CreateUser(e.ctx, t.ID, tenancy.NewUser{Email: email, Name: "Name of " + email, Password: "password-" + email})
	if err != nil {
		e.t.Fatal(err)
	}
	tx, err := e.db.App.Begin(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, t.ID); err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Exec(e.ctx, `INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, $3)`, t.ID, u.ID, role); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// passwordOf is the password mustMember gives an account.
func passwordOf(email string) string { return "password-" + email }

// doc parses an HTML page.
func doc(t *testing.T, body string) *html.Node {
	t.Helper()
	n, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// byTestID returns the elements with data-testid=id.
func byTestID(n *html.Node, id string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "data-testid") == id {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// textOf returns the text of the first element with data-testid=id, or "".
func textOf(t *testing.T, body, id string) string {
	t.Helper()
	nodes := byTestID(doc(t, body), id)
	if len(nodes) == 0 {
		return ""
	}
	return strings.Join(strings.Fields(text(nodes[0])), " ")
}

func text(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(text(c))
		b.WriteString(" ")
	}
	return b.String()
}

// textContent is n's text as a browser's textContent has it: the text
// nodes joined, with nothing between them (a <wbr> adds no space).
func textContent(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(textContent(c))
	}
	return b.String()
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// csrfOf reads the CSRF token a page carries on its body element.
func csrfOf(body string) string {
	if !strings.Contains(body, "data-csrf") {
		return ""
	}
	n, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return ""
	}
	var tok string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "body" {
			tok = attr(n, "data-csrf")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return tok
}

// citusOnly is sql on the Citus cluster, and nothing on one PostgreSQL.
func citusOnly(sql string) string {
	if pgtest.IsCitus() {
		return sql
	}
	return ""
}
