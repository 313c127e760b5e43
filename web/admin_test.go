package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/tenancy"
)

const (
	adminHost     = "admin." + baseDomain
	adminEmail    = "root@nself.test"
	adminPassword = "admin-password-0123"
)

// signedInAdmin creates the platform administrator and signs in on the
// admin host.
func signedInAdmin(t *testing.T, env *testEnv) *client {
	t.Helper()
	if _, err := env.server.Admins.CreateAdmin(env.ctx, adminEmail, "Root", adminPassword); err != nil {
		t.Fatal(err)
	}
	c := env.client(adminHost)
	c.signIn(adminEmail, adminPassword)
	return c
}

// getPartial sends a GET as htmx does.
func getPartial(c *client, path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.url(path), nil)
	req.Header.Set("HX-Request", "true")
	return c.do(req)
}

// texts returns the text of every element with data-testid=id.
func texts(t *testing.T, body, id string) []string {
	t.Helper()
	var out []string
	for _, n := range byTestID(doc(t, body), id) {
		out = append(out, strings.Join(strings.Fields(text(n)), " "))
	}
	return out
}

// pollStatus asks for path until it answers with want, for up to two
// seconds: tenant changes reach the host router's cache through NOTIFY.
func pollStatus(t *testing.T, c *client, path string, want int) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, body := c.get(path)
		if resp.StatusCode == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s%s: %d, want %d\n%s", c.host, path, resp.StatusCode, want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// follow reads the page a 303 points to.
func follow(t *testing.T, c *client, resp *http.Response, body string) string {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303\n%s", resp.StatusCode, body)
	}
	_, page := c.get(resp.Header.Get("Location"))
	return page
}

// tenantCount counts every tenant, deleted ones included.
func tenantCount(t *testing.T, env *testEnv) int {
	t.Helper()
	_, total, err := env.server.Tenants.ListTenants(env.ctx, tenancy.TenantFilter{IncludeDeleted: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

func TestAdminSignIn(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	if _, err := env.server.Admins.CreateAdmin(env.ctx, adminEmail, "Root", adminPassword); err != nil {
		t.Fatal(err)
	}
	c := env.client(adminHost)

	resp, body := c.get("/")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "admin-sign-in")) != 1 {
		t.Fatalf("GET /: %d\n%s", resp.StatusCode, body)
	}
	if len(byTestID(doc(t, body), "forgot-link")) != 0 || len(byTestID(doc(t, body), "menu")) != 0 {
		t.Error("the console's sign-in page offers a password reset or a menu")
	}

	resp, body = c.post("/signin", url.Values{"email": {adminEmail}, "password": {"wrong-password"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "form-error") != "Email or password is incorrect." {
		t.Fatalf("wrong password: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
	}

	resp, body = c.post("/signin", url.Values{"email": {adminEmail}, "password": {adminPassword}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants" {
		t.Fatalf("sign in: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, _ = c.get("/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants" {
		t.Errorf("GET / signed in: %d %s, want a redirect to /tenants", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = c.get("/tenants")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /tenants: %d", resp.StatusCode)
	}
	if got := textOf(t, body, "user-email"); got != adminEmail {
		t.Errorf("signed in as %q", got)
	}
	if len(byTestID(doc(t, body), "nav-tenants")) != 1 || len(byTestID(doc(t, body), "nav-stats")) != 1 {
		t.Error("the console's menu is missing")
	}

	// Signing out ends the session on the server too: the old cookie,
	// replayed, opens nothing.
	stale := env.client(adminHost)
	u, _ := url.Parse(c.url("/"))
	stale.http.Jar.SetCookies(u, c.http.Jar.Cookies(u))
	resp, _ = c.post("/signout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, cl := range []*client{c, stale} {
		if resp, _ := cl.get("/tenants"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("GET /tenants after sign out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestAdminSignInRateLimited(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	if _, err := env.server.Admins.CreateAdmin(env.ctx, adminEmail, "Root", adminPassword); err != nil {
		t.Fatal(err)
	}
	c := env.client(adminHost)
	c.get("/")
	for range 5 {
		if resp, _ := c.post("/signin", url.Values{"email": {adminEmail}, "password": {"wrong-password"}}); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("wrong password: %d", resp.StatusCode)
		}
	}
	resp, body := c.post("/signin", url.Values{"email": {adminEmail}, "password": {adminPassword}})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(textOf(t, body, "form-error"), "Too many sign-in attempts") {
		t.Fatalf("sixth attempt: %d %q, want 429", resp.StatusCode, textOf(t, body, "form-error"))
	}
}

func TestAdminTenantList(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for i := 1; i <= 25; i++ {
		env.mustTenant(fmt.Sprintf("shop-%02d", i))
	}
	env.mustTenant("acme")
	if _, err := env.server.Tenants.CreateTenant(env.ctx, tenancy.NewTenant{Name: "Globex Corporation", Slug: "gxc"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.server.Tenants.SetTenantStatus(env.ctx, "shop-03", tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if _, err := env.server.Tenants.DeleteTenant(env.ctx, "shop-04"); err != nil {
		t.Fatal(err)
	}
	c := signedInAdmin(t, env)

	// Deleted tenants are left out by default: 27 tenants, 26 listed.
	_, body := c.get("/tenants")
	if got := textOf(t, body, "tenant-total"); got != "26 tenants" {
		t.Errorf("total %q, want 26 tenants", got)
	}
	rows := texts(t, body, "tenant-slug")
	if len(rows) != 20 || rows[0] != "shop-01" {
		t.Errorf("page 1: %d rows %v", len(rows), rows)
	}
	if textOf(t, body, "page-info") != "Page 1 of 2" || len(byTestID(doc(t, body), "pager-prev")) != 0 {
		t.Errorf("pager on page 1: %q", textOf(t, body, "page-info"))
	}
	next := byTestID(doc(t, body), "pager-next")
	if len(next) != 1 || attr(next[0], "href") != "/tenants?page=2" {
		t.Fatalf("next link: %v", next)
	}
	_, body = c.get("/tenants?page=2")
	rows = texts(t, body, "tenant-slug")
	if len(rows) != 6 || rows[5] != "gxc" {
		t.Errorf("page 2: %v", rows)
	}
	if len(byTestID(doc(t, body), "pager-next")) != 0 || len(byTestID(doc(t, body), "pager-prev")) != 1 {
		t.Error("page 2 should link back only")
	}
	// Past the end: no rows, but the total and a way back.
	_, body = c.get("/tenants?page=9")
	if len(texts(t, body, "tenant-row")) != 0 || textOf(t, body, "tenant-total") != "26 tenants" {
		t.Errorf("page 9: %v %q", texts(t, body, "tenant-row"), textOf(t, body, "tenant-total"))
	}
	if prev := byTestID(doc(t, body), "pager-prev"); len(prev) != 1 || attr(prev[0], "href") != "/tenants?page=2" {
		t.Errorf("page 9 links back to %v", prev)
	}

	for _, tc := range []struct {
		query string
		total string
		slugs []string
	}{
		{"q=shop-2", "6 tenants", []string{"shop-20", "shop-21", "shop-22", "shop-23", "shop-24", "shop-25"}},
		{"q=GLOBEX", "1 tenant", []string{"gxc"}},
		{"q=%25", "0 tenants", nil},
		{"status=suspended", "1 tenant", []string{"shop-03"}},
		{"status=deleted", "1 tenant", []string{"shop-04"}},
		{"status=active&q=shop-0", "7 tenants", []string{"shop-01", "shop-02", "shop-05", "shop-06", "shop-07", "shop-08", "shop-09"}},
		{"status=all&q=shop-0", "9 tenants", []string{"shop-01", "shop-02", "shop-03", "shop-04", "shop-05", "shop-06", "shop-07", "shop-08", "shop-09"}},
	} {
		resp, body := c.get("/tenants?" + tc.query)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", tc.query, resp.StatusCode)
			continue
		}
		if got := textOf(t, body, "tenant-total"); got != tc.total {
			t.Errorf("%s: total %q, want %q", tc.query, got, tc.total)
		}
		if got := texts(t, body, "tenant-slug"); strings.Join(got, " ") != strings.Join(tc.slugs, " ") {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.slugs)
		}
	}
	_, body = c.get("/tenants?status=suspended")
	if got := textOf(t, body, "tenant-status"); got != "suspended" {
		t.Errorf("status cell %q", got)
	}

	// The search box's htmx request gets the table alone, and the pager
	// keeps the search.
	resp, body := getPartial(c, "/tenants?q=shop")
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Vary"), "HX-Request") {
		t.Fatalf("partial: %d, Vary %q", resp.StatusCode, resp.Header.Get("Vary"))
	}
	n := doc(t, body)
	if len(byTestID(n, "tenant-table")) != 1 || len(byTestID(n, "tenant-list")) != 0 || len(byTestID(n, "menu")) != 0 {
		t.Errorf("partial is not the table alone:\n%s", body)
	}
	if next := byTestID(n, "pager-next"); len(next) != 1 || attr(next[0], "href") != "/tenants?page=2&q=shop" {
		t.Errorf("next link of a search: %v", next)
	}

	for _, q := range []string{"status=gone", "page=0", "page=x", "page=99999999999999999999"} {
		if resp, _ := c.get("/tenants?" + q); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d, want 422", q, resp.StatusCode)
		}
	}
}

func TestAdminCreateTenant(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	if _, err := env.db.Admin.Exec(env.ctx, `UPDATE public.billing_plans SET archived_at = now() WHERE name = 'starter'`); err != nil {
		t.Fatal(err)
	}
	env.mustTenant("taken")
	c := signedInAdmin(t, env)

	_, body := c.get("/tenants/new")
	var plans []string
	for _, o := range byTestID(doc(t, body), "new-tenant-form") {
		var walk func(*html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "select" && attr(n, "name") == "plan" {
				for o := n.FirstChild; o != nil; o = o.NextSibling {
					if o.Type == html.ElementNode && o.Data == "option" {
						plans = append(plans, attr(o, "value"))
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(o)
	}
	if strings.Join(plans, " ") != "free pro enterprise" {
		t.Errorf("plans offered: %v, want the unarchived ones", plans)
	}

	before := tenantCount(t, env)
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"no name", url.Values{"name": {"  "}}, "name"},
		{"name with newline", url.Values{"name": {"Acme\nInc"}, "slug": {"acme"}}, "name"},
		{"bad slug", url.Values{"name": {"Acme"}, "slug": {"Acme!"}}, "slug"},
		{"short slug", url.Values{"name": {"Acme"}, "slug": {"a"}}, "slug"},
		{"reserved slug", url.Values{"name": {"Acme"}, "slug": {"admin"}}, "slug"},
		{"taken slug", url.Values{"name": {"Acme"}, "slug": {"taken"}}, "slug"},
		{"no slug from name", url.Values{"name": {"!!!"}}, "slug"},
		{"unknown plan", url.Values{"name": {"Acme"}, "plan": {"gold"}}, "plan"},
		{"archived plan", url.Values{"name": {"Acme"}, "plan": {"starter"}}, "plan"},
		{"bad strategy", url.Values{"name": {"Acme"}, "strategy": {"sharded"}}, "strategy"},
		{"bad owner", url.Values{"name": {"Acme"}, "owner": {"not an email"}}, "owner"},
	} {
		resp, body := c.post("/tenants", tc.form)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d, want 422", tc.name, resp.StatusCode)
			continue
		}
		if textOf(t, body, "error-"+tc.field) == "" {
			t.Errorf("%s: no error next to %s\n%s", tc.name, tc.field, body)
		}
		if textOf(t, body, "form-error") != "" {
			t.Errorf("%s: form-wide error %q", tc.name, textOf(t, body, "form-error"))
		}
	}
	if after := tenantCount(t, env); after != before {
		t.Fatalf("bad input created tenants: %d, then %d", before, after)
	}

	// What was typed is kept when the form comes back.
	_, body = c.post("/tenants", url.Values{"name": {"Acme <b>Corp</b>"}, "slug": {"admin"}, "plan": {"pro"}})
	if !strings.Contains(body, `value="Acme &lt;b&gt;Corp&lt;/b&gt;"`) || strings.Contains(body, "<b>Corp") {
		t.Error("the name is not kept, or not escaped")
	}

	// A tenant with an owner named by email: the owner is mailed a
	// welcome and the one-time link, which the console does not show, and
	// the link works.
	resp, body := c.post("/tenants", url.Values{
		"name": {"Acme Corporation"}, "slug": {"acme"}, "plan": {"pro"},
		"strategy": {"schema"}, "owner": {"owner@acme.test"},
	})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants/acme" {
		t.Fatalf("create: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	page := follow(t, c, resp, body)
	if flash := textOf(t, page, "flash"); flash != "Tenant “Acme Corporation” created. Its owner owner@acme.test is mailed a welcome and a link to choose a password." {
		t.Errorf("flash %q", flash)
	}
	var welcome, setMail *tenancy.Message
	for _, m := range env.mail.messages() {
		if m.To == "owner@acme.test" {
			switch m.Template {
			case "welcome":
				welcome = &m
			case "password_set":
				setMail = &m
			}
		}
	}
	if welcome == nil || setMail == nil || len(env.mail.messages()) != 2 {
		t.Fatalf("mails: %+v", env.mail.messages())
	}
	if !strings.Contains(welcome.Text, "Acme Corporation") || strings.Contains(welcome.Text, "token=") {
		t.Errorf("welcome: %s", welcome.Text)
	}
	i := strings.Index(setMail.Text, "http://acme."+baseDomain+"/password/set?token=")
	if i < 0 || strings.Contains(page, "token=") {
		t.Fatalf("set-password mail without its link, or the page shows one: %s", setMail.Text)
	}
	link, _ := url.Parse(strings.Fields(setMail.Text[i:])[0])
	for id, want := range map[string]string{
		"detail-slug": "acme", "detail-name": "Acme Corporation", "detail-status": "active",
		"detail-plan": "Pro", "detail-strategy": "schema", "detail-members": "1",
		"detail-portal": "http://acme." + baseDomain,
	} {
		if got := textOf(t, page, id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if textOf(t, page, "detail-schema") == "" || textOf(t, page, "detail-owner") == "" {
		t.Error("schema or owner missing from the tenant's page")
	}
	if _, again := c.get("/tenants/acme"); textOf(t, again, "flash") != "" {
		t.Error("the flash, with its link, is shown twice")
	}

	owner := env.client("acme." + baseDomain)
	if resp, _ := owner.get(link.RequestURI()); resp.StatusCode != http.StatusOK {
		t.Fatalf("set-password link: %d", resp.StatusCode)
	}
	resp, _ = owner.post("/password/set", url.Values{"token": {link.Query().Get("token")}, "password": {"owner-password-1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set password: %d", resp.StatusCode)
	}
	owner.signIn("owner@acme.test", "owner-password-1")

	// Without an owner: the slug comes from the name, and there is no link.
	resp, body = c.post("/tenants", url.Values{"name": {"Globex Corporation"}, "plan": {"free"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants/globex-corporation" {
		t.Fatalf("create without slug: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	page = follow(t, c, resp, body)
	if flash := textOf(t, page, "flash"); flash != "Tenant “Globex Corporation” created." {
		t.Errorf("flash %q", flash)
	}
	if got := textOf(t, page, "detail-strategy"); got != "rls" {
		t.Errorf("default strategy %q", got)
	}
	if got := textOf(t, page, "detail-members"); got != "0" {
		t.Errorf("members %q", got)
	}
}

func TestAdminSuspendActivate(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustTenant("acme")
	c := signedInAdmin(t, env)
	tenant := env.client("acme." + baseDomain)
	pollStatus(t, tenant, "/", http.StatusOK)

	_, page := c.get("/tenants/acme")
	if len(byTestID(doc(t, page), "suspend-tenant")) != 1 || len(byTestID(doc(t, page), "activate-tenant")) != 0 {
		t.Fatal("an active tenant's page should offer Suspend only")
	}
	resp, body := c.post("/tenants/acme/suspend", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants/acme" {
		t.Fatalf("suspend: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	page = follow(t, c, resp, body)
	if textOf(t, page, "detail-status") != "suspended" || !strings.Contains(textOf(t, page, "flash"), "suspended") {
		t.Errorf("after suspend: status %q, flash %q", textOf(t, page, "detail-status"), textOf(t, page, "flash"))
	}
	if len(byTestID(doc(t, page), "activate-tenant")) != 1 || len(byTestID(doc(t, page), "suspend-tenant")) != 0 {
		t.Error("a suspended tenant's page should offer Activate only")
	}
	body = pollStatus(t, tenant, "/", http.StatusForbidden)
	if got := textOf(t, body, "error-message"); !strings.Contains(got, "suspended") {
		t.Errorf("suspended tenant says %q", got)
	}

	resp, body = c.post("/tenants/acme/suspend", nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(textOf(t, body, "error-message"), "already suspended") {
		t.Errorf("suspend twice: %d %q", resp.StatusCode, textOf(t, body, "error-message"))
	}

	resp, body = c.post("/tenants/acme/activate", nil)
	page = follow(t, c, resp, body)
	if textOf(t, page, "detail-status") != "active" {
		t.Errorf("after activate: %q", textOf(t, page, "detail-status"))
	}
	pollStatus(t, tenant, "/", http.StatusOK)

	if resp, _ := c.post("/tenants/nobody/suspend", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("suspend an unknown tenant: %d", resp.StatusCode)
	}
	if resp, _ := c.get("/tenants/nobody"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown tenant's page: %d", resp.StatusCode)
	}
}

func TestAdminDeleteTenant(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	acme := env.mustTenant("acme")
	env.mustMember(acme, "ann@acme.test", tenancy.RoleOwner)
	c := signedInAdmin(t, env)
	tenant := env.client("acme." + baseDomain)
	pollStatus(t, tenant, "/", http.StatusOK)

	_, page := c.get("/tenants/acme")
	link := byTestID(doc(t, page), "delete-link")
	if len(link) != 1 || attr(link[0], "href") != "/tenants/acme/delete" {
		t.Fatalf("delete link: %v", link)
	}
	if resp, body := c.get("/tenants/acme/delete"); resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "delete-tenant")) != 1 {
		t.Fatalf("confirmation page: %d", resp.StatusCode)
	}
	for _, typed := range []string{"", "acm", "ACME", "Acme Inc"} {
		resp, body := c.post("/tenants/acme/delete", url.Values{"confirm": {typed}})
		if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "error-confirm") == "" {
			t.Errorf("confirm %q: %d %q", typed, resp.StatusCode, textOf(t, body, "error-confirm"))
		}
	}
	if got, err := env.server.Tenants.FindTenant(env.ctx, "acme"); err != nil || got.Status != tenancy.StatusActive {
		t.Fatalf("after unconfirmed deletes: %v %v", got, err)
	}

	resp, body := c.post("/tenants/acme/delete", url.Values{"confirm": {"acme"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants" {
		t.Fatalf("delete: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	page = follow(t, c, resp, body)
	if got := textOf(t, page, "flash"); !strings.Contains(got, "deleted") {
		t.Errorf("flash %q", got)
	}
	if len(texts(t, page, "tenant-row")) != 0 {
		t.Error("the deleted tenant is still listed by default")
	}
	got, err := env.server.Tenants.FindTenant(env.ctx, "acme")
	if err != nil || got.Status != tenancy.StatusDeleted {
		t.Fatalf("after delete: %v %v", got, err)
	}
	if n, err := env.server.Tenants.CountMembers(env.ctx, acme.ID); err != nil || n != 0 {
		t.Errorf("members after delete: %d %v", n, err)
	}

	_, page = c.get("/tenants/acme")
	if textOf(t, page, "detail-status") != "deleted" || textOf(t, page, "detail-deleted") == "" {
		t.Errorf("deleted tenant's page: status %q", textOf(t, page, "detail-status"))
	}
	for _, id := range []string{"suspend-tenant", "activate-tenant", "delete-link"} {
		if len(byTestID(doc(t, page), id)) != 0 {
			t.Errorf("a deleted tenant's page offers %s", id)
		}
	}
	if resp, _ := c.get("/tenants/acme/delete"); resp.StatusCode != http.StatusConflict {
		t.Errorf("delete page of a deleted tenant: %d", resp.StatusCode)
	}
	if resp, _ := c.post("/tenants/acme/delete", url.Values{"confirm": {"acme"}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("delete twice: %d", resp.StatusCode)
	}
	if resp, _ := c.post("/tenants/acme/activate", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("activate a deleted tenant: %d", resp.StatusCode)
	}
	pollStatus(t, tenant, "/", http.StatusNotFound)

	// The default tenant is not offered for deletion, and cannot be.
	env.mustTenant(tenancy.DefaultTenantSlug)
	if _, page := c.get("/tenants/default"); len(byTestID(doc(t, page), "delete-link")) != 0 {
		t.Error("the default tenant's page offers to delete it")
	}
	if resp, _ := c.get("/tenants/default/delete"); resp.StatusCode != http.StatusConflict {
		t.Errorf("delete page of the default tenant: %d", resp.StatusCode)
	}
	if resp, _ := c.post("/tenants/default/delete", url.Values{"confirm": {"default"}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("delete the default tenant: %d", resp.StatusCode)
	}
}

func TestAdminStats(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for _, in := range []tenancy.NewTenant{
		{Name: "One", Slug: "one"}, {Name: "Two", Slug: "two"}, {Name: "Three", Slug: "three"},
		{Name: "Four", Slug: "four", Plan: "pro"}, {Name: "Five", Slug: "five", Plan: "starter"},
	} {
		if _, err := env.server.Tenants.CreateTenant(env.ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.server.Tenants.SetTenantStatus(env.ctx, "four", tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if _, err := env.server.Tenants.DeleteTenant(env.ctx, "five"); err != nil {
		t.Fatal(err)
	}
	c := signedInAdmin(t, env)

	resp, body := c.get("/stats")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /stats: %d", resp.StatusCode)
	}
	for id, want := range map[string]string{
		"stat-total": "5", "stat-active": "3", "stat-suspended": "1", "stat-deleted": "1",
		"status-count-active": "3", "status-count-suspended": "1", "status-count-deleted": "1",
		"plan-count-free": "3", "plan-count-starter": "1", "plan-count-pro": "1", "plan-count-enterprise": "0",
	} {
		if got := textOf(t, body, id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}

	// The chart is drawn with meters, and nothing on the page carries an
	// inline style, which the Content-Security-Policy would block.
	var meters []*html.Node
	var styled []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if n.Data == "meter" {
				meters = append(meters, n)
			}
			if n.Data == "style" || attr(n, "style") != "" {
				styled = append(styled, n.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc(t, body))
	if len(meters) != 7 {
		t.Errorf("%d meters, want 3 statuses and 4 plans", len(meters))
	}
	for _, m := range meters {
		if attr(m, "max") != "5" {
			t.Errorf("meter max %q, want 5", attr(m, "max"))
		}
	}
	if len(styled) != 0 {
		t.Errorf("inline styles on %v", styled)
	}
}

// Every console page and action needs a signed-in administrator; nothing
// of the console answers to anyone else.
func TestAdminRequiresSignIn(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustTenant("acme")
	c := env.client(adminHost)
	c.get("/") // an anonymous CSRF token, so the refusals below are not about it

	for _, path := range []string{"/tenants", "/tenants?q=acme", "/tenants/new", "/tenants/acme", "/tenants/acme/delete", "/stats"} {
		resp, body := c.get(path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("GET %s: %d %s, want a redirect to /", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if strings.Contains(body, "acme") {
			t.Errorf("GET %s shows tenant data", path)
		}
		if resp, _ := getPartial(c, path); resp.StatusCode != http.StatusForbidden {
			t.Errorf("htmx GET %s: %d, want 403", path, resp.StatusCode)
		}
	}
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/tenants", url.Values{"name": {"Evil"}, "slug": {"evil"}}},
		{"/tenants/acme/suspend", nil},
		{"/tenants/acme/activate", nil},
		{"/tenants/acme/delete", url.Values{"confirm": {"acme"}}},
	} {
		if resp, _ := c.post(tc.path, tc.form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s: %d, want 403", tc.path, resp.StatusCode)
		}
	}
	if got, err := env.server.Tenants.FindTenant(env.ctx, "acme"); err != nil || got.Status != tenancy.StatusActive {
		t.Errorf("acme after anonymous posts: %v %v", got, err)
	}
	if tenantCount(t, env) != 1 {
		t.Error("an anonymous post created a tenant")
	}
}

// A tenant user's session, even copied onto the admin host, opens nothing
// there: the console has its own cookie and its own sessions.
func TestAdminRefusesTenantSession(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	acme := env.mustTenant("acme")
	env.mustMember(acme, "ann@acme.test", tenancy.RoleOwner)
	user := env.client("acme." + baseDomain)
	user.signIn("ann@acme.test", passwordOf("ann@acme.test"))

	tenantURL, _ := url.Parse(user.url("/"))
	var session string
	for _, ck := range user.http.Jar.Cookies(tenantURL) {
		if ck.Name == "nself_session" {
			session = ck.Value
		}
	}
	if session == "" {
		t.Fatal("no tenant session cookie")
	}
	c := env.client(adminHost)
	adminURL, _ := url.Parse(c.url("/"))
	c.http.Jar.SetCookies(adminURL, []*http.Cookie{{Name: "nself_session", Value: session}, {Name: "nself_admin", Value: session}})
	for _, path := range []string{"/tenants", "/stats"} {
		if resp, _ := c.get(path); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("GET %s with a tenant session: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, body := c.get("/")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "admin-sign-in")) != 1 {
		t.Errorf("GET / with a tenant session: %d, want the sign-in page", resp.StatusCode)
	}
}

func TestAdminCSRF(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustTenant("acme")
	c := signedInAdmin(t, env)
	c.get("/tenants/acme")

	for _, token := range []string{"", "forged-token"} {
		resp, _ := c.post("/tenants/acme/suspend", url.Values{"csrf_token": {token}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("suspend with token %q: %d, want 403", token, resp.StatusCode)
		}
		resp, _ = c.post("/tenants", url.Values{"csrf_token": {token}, "name": {"Evil"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("create with token %q: %d, want 403", token, resp.StatusCode)
		}
	}
	// A browser's cross-site post is refused even with the right token.
	form := url.Values{"csrf_token": {c.csrf}}
	req, _ := http.NewRequest(http.MethodPost, c.url("/tenants/acme/suspend"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := c.do(req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", resp.StatusCode)
	}
	if got, _ := env.server.Tenants.FindTenant(env.ctx, "acme"); got.Status != tenancy.StatusActive {
		t.Errorf("acme is %s after refused posts", got.Status)
	}
	if tenantCount(t, env) != 1 {
		t.Error("a refused post created a tenant")
	}

	// Signing in needs the token too.
	anon := env.client(adminHost)
	if resp, _ := anon.post("/signin", url.Values{"email": {adminEmail}, "password": {adminPassword}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign in without a token: %d, want 403", resp.StatusCode)
	}

	// With the token, the same post goes through.
	if resp, _ := c.post("/tenants/acme/suspend", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("suspend with the token: %d", resp.StatusCode)
	}
}

// The console lives on the admin host only: a tenant's host, or the
// platform's own, never serves it, whatever cookie comes along.
func TestConsoleOnlyOnAdminHost(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustTenant("acme")
	admin := signedInAdmin(t, env)
	adminURL, _ := url.Parse(admin.url("/"))
	cookies := admin.http.Jar.Cookies(adminURL)

	for _, host := range []string{"acme." + baseDomain, baseDomain, "api." + baseDomain} {
		c := env.client(host)
		u, _ := url.Parse(c.url("/"))
		c.http.Jar.SetCookies(u, cookies)
		for _, path := range []string{"/tenants", "/tenants/new", "/tenants/acme", "/tenants/acme/delete", "/stats"} {
			resp, body := c.get(path)
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusSeeOther {
				t.Errorf("GET %s%s: %d, want 404 or a redirect", host, path, resp.StatusCode)
			}
			n := doc(t, body)
			for _, id := range []string{"tenant-list", "tenant-detail", "new-tenant-form", "delete-tenant", "stats", "nav-tenants"} {
				if len(byTestID(n, id)) != 0 {
					t.Errorf("GET %s%s serves the console (%s)", host, path, id)
				}
			}
		}
	}
}

// The console shows organizations and their tenants.
func TestAdminOrganizations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustTenant("acme")
	e.mustTenant("beta")
	admin := signedInAdmin(t, e)
	_, body := admin.get("/orgs")
	if len(byTestID(doc(t, body), "orgs-empty")) != 1 {
		t.Fatal("no empty state")
	}
	if _, err := e.server.Orgs.CreateOrg(e.ctx, "Acme Holdings", ""); err != nil {
		t.Fatal(err)
	}
	for _, slug := range []string{"acme", "beta"} {
		if err := e.server.Orgs.AddOrgTenant(e.ctx, "acme-holdings", slug); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := admin.get("/orgs")
	if resp.StatusCode != 200 || len(byTestID(doc(t, body), "org-row")) != 1 || len(byTestID(doc(t, body), "org-tenant")) != 2 {
		t.Errorf("orgs page: %d, %s", resp.StatusCode, textOf(t, body, "orgs"))
	}
	// Tenants' users never reach it.
	if resp, _ := e.client(adminHost).get("/orgs"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("orgs without an admin session: %d", resp.StatusCode)
	}
}
