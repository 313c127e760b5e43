package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// hx sends an htmx request: the CSRF token in its header, as app.js sends
// it.
func (c *client) hx(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body *strings.Reader
	if form == nil {
		body = strings.NewReader("")
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.url(path), body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", c.csrf)
	return c.do(req)
}

// rowDoc parses a row partial in the table it lives in: outside one, an
// HTML parser drops the <tr>.
func rowDoc(t *testing.T, body string) *html.Node {
	t.Helper()
	return doc(t, "<table><tbody>"+body+"</tbody></table>")
}

// domainRows returns the domain rows of a page or partial by name.
func domainRows(t *testing.T, n *html.Node) map[string]*html.Node {
	t.Helper()
	out := map[string]*html.Node{}
	for _, r := range byTestID(n, "domain-row") {
		out[attr(r, "data-domain")] = r
	}
	return out
}

// nodeText is the text of the first element under n with data-testid=id.
func nodeText(n *html.Node, id string) string {
	nodes := byTestID(n, id)
	if len(nodes) == 0 {
		return ""
	}
	return strings.Join(strings.Fields(text(nodes[0])), " ")
}

// currentStep is the state a row marks as current.
func currentStep(row *html.Node) string {
	for _, li := range byTestID(row, "domain-states") {
		for c := li.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && attr(c, "aria-current") == "step" {
				return attr(c, "data-step")
			}
		}
	}
	return ""
}

func TestDomainsPageListAndAdd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	beta := e.mustTenant("beta")
	if _, err := e.server.DomainAdmin.AddDomain(e.ctx, beta.ID, "taken.example"); err != nil {
		t.Fatal(err)
	}
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)

	resp, body := owner.get("/domains")
	if resp.StatusCode != 200 {
		t.Fatalf("domains: %d", resp.StatusCode)
	}
	if len(byTestID(doc(t, body), "no-domains")) != 1 {
		t.Error("an empty list does not say so")
	}
	if len(byTestID(doc(t, body), "nav-domains")) != 1 {
		t.Error("no Domains item in the menu")
	}

	resp, body = owner.post("/domains", url.Values{"domain": {"  Portal.Acme.Example. "}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d\n%s", resp.StatusCode, body)
	}
	_, body = owner.get("/domains")
	if got := textOf(t, body, "flash"); !strings.Contains(got, "portal.acme.example") {
		t.Errorf("flash = %q", got)
	}
	rows := domainRows(t, doc(t, body))
	row := rows["portal.acme.example"]
	if row == nil || len(rows) != 1 {
		t.Fatalf("rows after add: %v", rows)
	}
	d, err := e.server.DomainAdmin.FindDomain(e.ctx, acme.ID, "portal.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeText(row, "record-name"); got != "_nself-verify.portal.acme.example" {
		t.Errorf("record name = %q", got)
	}
	if got := nodeText(row, "record-value"); got != "nself-verify="+d.Token {
		t.Errorf("record value = %q, want the token %s", got, d.Token)
	}
	for _, b := range byTestID(row, "record-value") {
		if id := attr(b, "id"); id == "" || !strings.Contains(body, `data-copy="`+id+`"`) {
			t.Errorf("no copy button for the record value (id %q)", id)
		}
	}
	if got := currentStep(row); got != "pending" {
		t.Errorf("current step = %q, want pending", got)
	}
	if attr(row, "hx-get") != "/domains/portal.acme.example/row" || attr(row, "hx-trigger") != "every 5s" {
		t.Errorf("pending row does not poll: hx-get=%q hx-trigger=%q", attr(row, "hx-get"), attr(row, "hx-trigger"))
	}
	if len(byTestID(row, "domain-make-primary")) != 0 {
		t.Error("a pending domain offers Make primary")
	}

	// An internationalized name is stored in punycode and shown in Unicode.
	if resp, body := owner.post("/domains", url.Values{"domain": {"bücher.example"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add IDN: %d\n%s", resp.StatusCode, body)
	}
	_, body = owner.get("/domains")
	if row := domainRows(t, doc(t, body))["xn--bcher-kva.example"]; row == nil || nodeText(row, "domain-name") != "bücher.example" {
		t.Errorf("IDN row: %v", row)
	}

	for _, tc := range []struct{ name, typed, want string }{
		{"empty", "", "Domain is required"},
		{"scheme", "https://acme.example", "without http://"},
		{"path", "acme.example/x", "without a path"},
		{"ip", "192.0.2.1", "IP address"},
		{"port", "acme.example:8080", "port"},
		{"wildcard", "*.acme.example", "wildcard"},
		{"one label", "localhost", "at least two labels"},
		{"platform", "x." + baseDomain, "platform's domain"},
		{"same tenant", "portal.acme.example", "already added to this tenant"},
		{"another tenant", "taken.example", "claimed by another tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := owner.post("/domains", url.Values{"domain": {tc.typed}})
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("%q: %d, want 422", tc.typed, resp.StatusCode)
			}
			if got := textOf(t, body, "error-domain"); !strings.Contains(got, tc.want) {
				t.Errorf("%q: error %q, want %q", tc.typed, got, tc.want)
			}
			if tc.typed != "" {
				if in := byTestID(doc(t, body), "domain-input"); len(in) != 1 || attr(in[0], "value") != tc.typed {
					t.Errorf("%q: the field does not keep what was typed", tc.typed)
				}
			}
		})
	}
	_, body = owner.get("/domains")
	if rows := domainRows(t, doc(t, body)); len(rows) != 2 || rows["taken.example"] != nil {
		t.Errorf("rows after failed adds: %d", len(rows))
	}
}

// The Verify button reports what DNS holds, row by row, and the record
// once in place verifies the domain; the row then stops polling.
func TestDomainsPageVerify(t *testing.T) {
	t.Parallel()
	dns := dnstest.NewServer(t)
	e := newEnv(t, withDNS(dns.Addr))
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	d, err := e.server.DomainAdmin.AddDomain(e.ctx, acme.ID, "portal.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	owner.get("/domains")

	resp, body := owner.hx(http.MethodPost, "/domains/portal.acme.example/verify", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("verify: %d %s", resp.StatusCode, body)
	}
	row := domainRows(t, rowDoc(t, body))["portal.acme.example"]
	if row == nil {
		t.Fatalf("verify answered without the row:\n%s", body)
	}
	msg := nodeText(row, "domain-message")
	if !strings.Contains(msg, "_nself-verify.portal.acme.example: no such name in DNS (NXDOMAIN)") {
		t.Errorf("message = %q", msg)
	}
	if currentStep(row) != "pending" || attr(row, "hx-trigger") != "every 5s" {
		t.Errorf("after a failed check: step %q, polling %q", currentStep(row), attr(row, "hx-trigger"))
	}

	dns.SetTXT("_nself-verify.portal.acme.example", "nself-verify="+d.Token)
	_, body = owner.hx(http.MethodPost, "/domains/portal.acme.example/verify", nil)
	row = domainRows(t, rowDoc(t, body))["portal.acme.example"]
	if row == nil || currentStep(row) != "verified" {
		t.Fatalf("after the record: %s", body)
	}
	if msg := nodeText(row, "domain-message"); !strings.Contains(msg, "is verified") {
		t.Errorf("message = %q", msg)
	}
	if attr(row, "hx-trigger") != "" || len(byTestID(row, "domain-record")) != 0 {
		t.Error("a verified row still polls or still asks for the record")
	}
	if nodeText(row, "domain-verified-at") == "" {
		t.Error("no verified time")
	}

	// Without htmx, the form posts and the result comes back as the flash.
	resp, _ = owner.post("/domains/portal.acme.example/verify", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("plain verify: %d", resp.StatusCode)
	}
	if _, body := owner.get("/domains"); !strings.Contains(textOf(t, body, "flash"), "verification record found") {
		t.Errorf("flash = %q", textOf(t, body, "flash"))
	}
}

// The polling endpoint looks a pending domain's record up, so the row
// turns verified by itself once the record is in place.
func TestDomainsRowPolling(t *testing.T) {
	t.Parallel()
	dns := dnstest.NewServer(t)
	e := newEnv(t, withDNS(dns.Addr))
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	d, err := e.server.DomainAdmin.AddDomain(e.ctx, acme.ID, "portal.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("portal.acme.example", "nself-verify="+d.Token)
	resp, body := owner.hx(http.MethodGet, "/domains/portal.acme.example/row", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("row: %d %s", resp.StatusCode, body)
	}
	row := domainRows(t, rowDoc(t, body))["portal.acme.example"]
	if row == nil || currentStep(row) != "verified" || attr(row, "hx-trigger") != "" {
		t.Fatalf("polled row: %s", body)
	}
	// A verified row is only read.
	queries := dns.Queries()
	owner.hx(http.MethodGet, "/domains/portal.acme.example/row", nil)
	if dns.Queries() != queries {
		t.Error("polling a verified row asked DNS")
	}
	if resp, _ := owner.hx(http.MethodGet, "/domains/nothing.example/row", nil); resp.StatusCode != 404 {
		t.Errorf("row of an unknown domain: %d", resp.StatusCode)
	}
	if resp, _ := owner.hx(http.MethodGet, "/domains/not%20a%20domain/row", nil); resp.StatusCode != 404 {
		t.Errorf("row of a malformed name: %d", resp.StatusCode)
	}
}

func TestDomainsPrimaryAndRemove(t *testing.T) {
	t.Parallel()
	dns := dnstest.NewServer(t)
	e := newEnv(t, withDNS(dns.Addr))
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	for _, name := range []string{"one.example", "two.example"} {
		d, err := e.server.DomainAdmin.AddDomain(e.ctx, acme.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		dns.SetTXT("_nself-verify."+name, "nself-verify="+d.Token)
	}
	if _, _, err := e.server.DomainAdmin.VerifyDomain(e.ctx, acme.ID, "one.example", e.server.DomainVerifier); err != nil {
		t.Fatal(err)
	}
	owner.get("/domains")

	// Only a verified domain can be primary.
	if resp, _ := owner.post("/domains/two.example/primary", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("pending primary: %d, want 409", resp.StatusCode)
	}
	owner.get("/domains")
	if resp, _ := owner.post("/domains/ONE.example./primary", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("primary: %d", resp.StatusCode)
	}
	_, body := owner.get("/domains")
	rows := domainRows(t, doc(t, body))
	if len(byTestID(rows["one.example"], "domain-primary")) != 1 || len(byTestID(rows["two.example"], "domain-primary")) != 0 {
		t.Error("primary flag not shown on one.example alone")
	}
	if len(byTestID(rows["one.example"], "domain-make-primary")) != 0 {
		t.Error("the primary domain offers Make primary")
	}
	if f := byTestID(rows["two.example"], "domain-remove"); len(f) != 1 {
		t.Fatal("no Remove button")
	} else if form := f[0].Parent; !strings.HasPrefix(attr(form, "hx-confirm"), "Remove two.example?") {
		t.Errorf("Remove asks no confirmation: %q", attr(form, "hx-confirm"))
	}

	resp, _ := owner.hx(http.MethodPost, "/domains/two.example/remove", nil)
	if resp.StatusCode != 200 || resp.Header.Get("HX-Redirect") != "/domains" {
		t.Fatalf("htmx remove: %d %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
	if resp, _ := owner.post("/domains/one.example/remove", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	_, body = owner.get("/domains")
	if rows := domainRows(t, doc(t, body)); len(rows) != 0 {
		t.Errorf("rows after removing both: %d", len(rows))
	}
	if resp, _ := owner.post("/domains/one.example/remove", nil); resp.StatusCode != 404 {
		t.Errorf("remove twice: %d", resp.StatusCode)
	}
}

func TestDomainsPreview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)
	_, page := admin.get("/domains")
	if in := byTestID(doc(t, page), "domain-input"); len(in) != 1 || attr(in[0], "hx-post") != "/domains/preview" ||
		attr(in[0], "hx-trigger") != "input changed delay:250ms" || attr(in[0], "hx-target") != "#domain-preview" {
		t.Fatalf("the input is not wired to the preview")
	}

	resp, body := admin.hx(http.MethodPost, "/domains/preview", url.Values{"domain": {" Bücher.Example. "}})
	if resp.StatusCode != 200 {
		t.Fatalf("preview: %d %s", resp.StatusCode, body)
	}
	if got := textOf(t, body, "preview-address"); got != "https://bücher.example" {
		t.Errorf("address bar = %q", got)
	}
	if got := textOf(t, body, "domain-preview"); !strings.Contains(got, "Acme Inc") {
		t.Errorf("preview does not name the tenant: %q", got)
	}
	_, body = admin.hx(http.MethodPost, "/domains/preview", url.Values{"domain": {"xn--bcher-kva.example"}})
	if got := textOf(t, body, "preview-address"); got != "https://bücher.example" {
		t.Errorf("punycode address bar = %q", got)
	}

	evil := `<script>alert(1)</script>.example`
	_, body = admin.hx(http.MethodPost, "/domains/preview", url.Values{"domain": {evil}})
	if strings.Contains(body, "<script>") {
		t.Error("preview does not escape input")
	}
	if got := textOf(t, body, "domain-preview-error"); !strings.Contains(got, "without a path") {
		t.Errorf("invalid input shows %q", got)
	}
	if len(byTestID(doc(t, body), "preview-frame")) != 0 {
		t.Error("invalid input still shows the frame")
	}

	_, body = admin.hx(http.MethodPost, "/domains/preview", url.Values{"domain": {"portal.acme.example"}})
	frames := byTestID(doc(t, body), "preview-frame")
	if len(frames) != 1 || attr(frames[0], "sandbox") != "" {
		t.Fatalf("frame: %v", frames)
	}
	resp, signIn := admin.get(attr(frames[0], "src"))
	if resp.StatusCode != 200 {
		t.Fatalf("preview.html: %d", resp.StatusCode)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'none'", "frame-ancestors 'self'", "sandbox"} {
		if !strings.Contains(csp, want) {
			t.Errorf("preview policy %q lacks %q", csp, want)
		}
	}
	if got := resp.Header.Get("X-Frame-Options"); got != "SAMEORIGIN" {
		t.Errorf("X-Frame-Options = %q", got)
	}
	n := doc(t, signIn)
	if got := nodeText(n, "sign-in"); !strings.Contains(got, "Sign in to Acme Inc") {
		t.Errorf("framed page: %q", got)
	}
	if len(byTestID(n, "user-email")) != 0 || len(byTestID(n, "menu")) != 0 || csrfOf(signIn) != "" {
		t.Error("the visitor's page shows the admin's account, menu or CSRF token")
	}
}

// Guests and members get 403 on every domains route.
func TestDomainsRoles(t *testing.T) {
	t.Parallel()
	// A DNS that is never asked: the roles are refused before.
	e := newEnv(t, withDNS("127.0.0.1:1"))
	acme := e.mustTenant("acme")
	if _, err := e.server.DomainAdmin.AddDomain(e.ctx, acme.ID, "portal.acme.example"); err != nil {
		t.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{"GET", "/domains"},
		{"POST", "/domains"},
		{"POST", "/domains/preview"},
		{"GET", "/domains/preview.html"},
		{"GET", "/domains/portal.acme.example/row"},
		{"POST", "/domains/portal.acme.example/verify"},
		{"POST", "/domains/portal.acme.example/primary"},
		{"POST", "/domains/portal.acme.example/remove"},
	}
	for _, role := range []tenancy.Role{tenancy.RoleGuest, tenancy.RoleMember} {
		c := e.signedIn(acme, string(role)+"@acme.test", role)
		c.get("/dashboard")
		if _, body := c.get("/dashboard"); len(byTestID(doc(t, body), "nav-domains")) != 0 {
			t.Errorf("%s sees the Domains menu item", role)
		}
		for _, rt := range routes {
			var resp *http.Response
			if rt.method == "GET" {
				resp, _ = c.get(rt.path)
			} else {
				resp, _ = c.post(rt.path, url.Values{"domain": {"x.example"}})
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s %s: %d, want 403", role, rt.method, rt.path, resp.StatusCode)
			}
		}
	}
	if _, err := e.server.DomainAdmin.FindDomain(e.ctx, acme.ID, "portal.acme.example"); err != nil {
		t.Errorf("the domain did not survive: %v", err)
	}
}

// Tenant A's URLs never reach tenant B's domain.
func TestDomainsTenantIsolation(t *testing.T) {
	t.Parallel()
	dns := dnstest.NewServer(t)
	e := newEnv(t, withDNS(dns.Addr))
	acme := e.mustTenant("acme")
	beta := e.mustTenant("beta")
	d, err := e.server.DomainAdmin.AddDomain(e.ctx, beta.ID, "beta.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("_nself-verify.beta.example", "nself-verify="+d.Token)
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)

	_, body := owner.get("/domains")
	if strings.Contains(body, "beta.example") || strings.Contains(body, d.Token) {
		t.Error("tenant B's domain shows on A's page")
	}
	for _, rt := range []struct{ method, path string }{
		{"GET", "/domains/beta.example/row"},
		{"POST", "/domains/beta.example/verify"},
		{"POST", "/domains/beta.example/primary"},
		{"POST", "/domains/beta.example/remove"},
	} {
		var resp *http.Response
		var body string
		if rt.method == "GET" {
			resp, body = owner.get(rt.path)
		} else {
			resp, body = owner.post(rt.path, nil)
		}
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404", rt.method, rt.path, resp.StatusCode)
		}
		if strings.Contains(body, d.Token) {
			t.Errorf("%s %s shows B's token", rt.method, rt.path)
		}
	}
	got, err := e.server.DomainAdmin.FindDomain(e.ctx, beta.ID, "beta.example")
	if err != nil {
		t.Fatalf("B's domain is gone: %v", err)
	}
	if got.State != tenancy.DomainPending || got.CheckedAt != nil {
		t.Errorf("B's domain was touched: %s, checked %v", got.State, got.CheckedAt)
	}
}

// TENANT_CUSTOM_DOMAINS_ENABLED=false: the Domains page says custom
// domains are off and offers no form, and adding one anyway is refused
// next to the field.
func TestDomainsPageWhenCustomDomainsAreOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *web.Server, db *postgres.DB) {
		s.Config.CustomDomainsOff = true
		s.DomainAdmin = postgres.NewDomainService(db, tenancy.DomainRules{BaseDomain: baseDomain, ToASCII: domainname.ToASCII, Disabled: true})
	})
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	_, body := owner.get("/domains")
	page := doc(t, body)
	if got := nodeText(page, "domains-off"); !strings.Contains(got, "turned off") {
		t.Errorf("the page does not say custom domains are off: %q", got)
	}
	if len(byTestID(page, "domain-add-form")) != 0 {
		t.Error("the page offers to add a domain")
	}
	resp, body := owner.post("/domains", url.Values{"domain": {"portal.acme.example"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "domains-off"), "turned off") {
		t.Errorf("add anyway: %d", resp.StatusCode)
	}
	if list, _, _ := e.server.DomainAdmin.ListDomains(e.ctx, acme.ID, tenancy.DomainFilter{}); len(list) != 0 {
		t.Errorf("a domain was stored: %v", list)
	}
}

// withDNS verifies domains against the DNS server at addr.
func withDNS(addr string) func(*web.Server, *postgres.DB) {
	return func(s *web.Server, _ *postgres.DB) { s.DomainVerifier = dnsverify.New(addr) }
}
