package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

// auditRows returns the audit page's rows as "action | actor | target |
// summary | address" lines, newest first.
func auditRows(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, row := range byTestID(doc(t, body), "audit-row") {
		cell := func(id string) string {
			n := byTestID(row, id)
			if len(n) == 0 {
				return ""
			}
			return strings.Join(strings.Fields(textContent(n[0])), " ")
		}
		out = append(out, strings.Join([]string{cell("audit-action"), cell("audit-actor"), cell("audit-target"), cell("audit-summary"), cell("audit-addr")}, " | "))
	}
	return out
}

func hasRow(rows []string, prefix string) bool {
	for _, r := range rows {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

func TestAuditPortalActionsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	bob := e.mustMember(acme, "bob@acme.test", tenancy.RoleMember)

	owner.get("/settings/branding")
	for _, color := range []string{"#112233", "#445566"} {
		if resp, body := owner.post("/settings/branding/brand", url.Values{"primary_color": {color}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("save brand: %d\n%s", resp.StatusCode, body)
		}
	}
	owner.get("/members")
	if resp, body := owner.post("/members/"+bob.ID+"/role", url.Values{"role": {"admin"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("change role: %d\n%s", resp.StatusCode, body)
	}
	// A failed change records nothing: the last owner cannot go.
	owner.get("/members")
	if resp, _ := owner.post("/members/"+IdentityOf(t, e, acme, "owner@acme.test")+"/remove", nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("removing the last owner: %d", resp.StatusCode)
	}
	// Text a person typed is shown as text.
	owner.get("/settings/api-keys")
	if resp, body := owner.post("/settings/api-keys", url.Values{"name": {`<script>alert("x")</script>`}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("create key: %d\n%s", resp.StatusCode, body)
	}

	resp, body := owner.get("/audit")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("audit: %d\n%s", resp.StatusCode, body)
	}
	rows := auditRows(t, body)
	for _, want := range []string{
		"branding.update | owner@acme.test | brand colors | primary color: #112233 → #445566 | 127.0.0.1",
		"branding.update | owner@acme.test | brand colors | primary color: (none) → #112233 | 127.0.0.1",
		"member.update | owner@acme.test | bob@acme.test | role: member → admin | 127.0.0.1",
		"user.sign_in | owner@acme.test | owner@acme.test | role: owner | 127.0.0.1",
		`api_key.create | owner@acme.test | nsk_`,
	} {
		if !hasRow(rows, want) {
			t.Errorf("no row %q in\n%s", want, strings.Join(rows, "\n"))
		}
	}
	if hasRow(rows, "member.remove") {
		t.Error("the refused removal left an entry")
	}
	if strings.Contains(body, `<script>alert`) || !strings.Contains(strings.Join(rows, "\n"), `name: <script>alert("x")</script>`) {
		t.Error("the key's name is not escaped as text")
	}
	if len(byTestID(doc(t, body), "nav-audit")) != 1 {
		t.Error("an owner's menu lacks the audit log")
	}

	// Filters: by action (an entity matches its actions), by actor, by
	// days; the htmx request gets the table only.
	_, body = owner.get("/audit?action=member")
	if rows := auditRows(t, body); len(rows) != 1 || !strings.HasPrefix(rows[0], "member.update") {
		t.Errorf("action filter: %v", rows)
	}
	_, body = owner.get("/audit?actor=nobody")
	if rows := auditRows(t, body); len(rows) != 0 || textOf(t, body, "audit-total") != "0 entries" {
		t.Errorf("actor filter: %v", rows)
	}
	_, body = owner.get("/audit?since=2999-01-01")
	if rows := auditRows(t, body); len(rows) != 0 {
		t.Errorf("since filter: %v", rows)
	}
	_, body = owner.get("/audit?until=2000-01-01")
	if rows := auditRows(t, body); len(rows) != 0 {
		t.Errorf("until filter: %v", rows)
	}
	resp, body = getPartial(owner, "/audit?action=branding.update&actor=owner@acme")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "audit-log")) != 0 || len(auditRows(t, body)) != 2 {
		t.Errorf("htmx filter: %d, %d rows\n%s", resp.StatusCode, len(auditRows(t, body)), body)
	}
	resp, body = owner.get("/audit?since=yesterday")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "audit-filter-error"), "not a date") {
		t.Errorf("bad date: %d %q", resp.StatusCode, textOf(t, body, "audit-filter-error"))
	}
	resp, _ = owner.get("/audit?action=" + url.QueryEscape("x'; drop"))
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad action: %d", resp.StatusCode)
	}
}

// IdentityOf returns the id of a tenant's user by email.
func IdentityOf(t *testing.T, e *testEnv, tn *tenancy.Tenant, email string) string {
	t.Helper()
	list, _, err := e.server.Users.ListUsers(e.ctx, tn.ID, tenancy.UserFilter{Query: email})
	if err != nil || len(list) != 1 {
		t.Fatalf("find %s: %v", email, err)
	}
	return list[0].ID
}

func TestAuditPortalNeedsAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)
	if resp, _ := admin.get("/audit"); resp.StatusCode != http.StatusOK {
		t.Errorf("admin: %d", resp.StatusCode)
	}
	for _, role := range []tenancy.Role{tenancy.RoleMember, tenancy.RoleGuest} {
		c := e.signedIn(acme, string(role)+"@acme.test", role)
		resp, body := c.get("/audit")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d", role, resp.StatusCode)
		}
		_, body = c.get("/dashboard")
		if len(byTestID(doc(t, body), "nav-audit")) != 0 {
			t.Errorf("%s's menu shows the audit log", role)
		}
	}
	if resp, _ := e.client("acme." + baseDomain).get("/audit"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous: %d", resp.StatusCode)
	}
}

// Tenant A's log is invisible to B: on B's page, through any query
// parameter, and through a header naming A.
func TestAuditPortalIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustTenant("tenant-a")
	b := e.mustTenant("tenant-b")
	ownerA := e.signedIn(a, "owner@a.test", tenancy.RoleOwner)
	ownerA.get("/settings/branding")
	if resp, _ := ownerA.post("/settings/branding/settings", url.Values{"key": {"branding.tagline"}, "value": {"marker of tenant A"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save setting: %d", resp.StatusCode)
	}
	_, body := ownerA.get("/audit?action=setting")
	if rows := auditRows(t, body); len(rows) != 1 || !strings.Contains(rows[0], "marker of tenant A") {
		t.Fatalf("A's own log: %v", rows)
	}

	ownerB := e.signedIn(b, "owner@b.test", tenancy.RoleOwner)
	for _, path := range []string{"/audit", "/audit?action=setting", "/audit?actor=owner@a.test",
		"/audit?tenant=" + a.ID, "/audit?tenant=tenant-a"} {
		resp, body := ownerB.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		// The filter's own value is echoed in its field; the rows are
		// what must hold nothing of A.
		rows := strings.Join(auditRows(t, body), "\n")
		if strings.Contains(body, "marker of tenant A") || strings.Contains(rows, "owner@a.test") || strings.Contains(rows, "tenant-a") {
			t.Errorf("%s shows tenant A's entries", path)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ownerB.url("/audit"), nil)
	req.Header.Set("X-Tenant-ID", a.ID)
	if resp, body := ownerB.do(req); resp.StatusCode != http.StatusForbidden || strings.Contains(body, "marker of tenant A") {
		t.Errorf("header naming A: %d", resp.StatusCode)
	}
	// B's session on A's host is no session at all.
	cross := e.client("tenant-a." + baseDomain)
	cross.http.Jar = ownerB.http.Jar
	if resp, body := cross.get("/audit"); resp.StatusCode == http.StatusOK || strings.Contains(body, "marker of tenant A") {
		t.Errorf("B's cookies on A's host: %d", resp.StatusCode)
	}
}

func TestAuditAdminConsole(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustTenant("acme")
	env.mustTenant("globex")
	c := signedInAdmin(t, env)
	c.get("/tenants/acme")
	if resp, _ := c.post("/tenants/acme/suspend", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("suspend: %d", resp.StatusCode)
	}
	resp, body := c.get("/audit")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("console audit: %d\n%s", resp.StatusCode, body)
	}
	rows := auditRows(t, body)
	for _, want := range []string{
		"tenant.suspend | " + adminEmail + " | acme | status: active → suspended | 127.0.0.1",
		"admin.sign_in | " + adminEmail,
		"admin.create | system | " + adminEmail,
		"tenant.create | system | globex",
		"tenant.create | system | acme",
	} {
		if !hasRow(rows, want) {
			t.Errorf("no row %q in\n%s", want, strings.Join(rows, "\n"))
		}
	}
	var tenants []string
	for _, n := range byTestID(doc(t, body), "audit-tenant") {
		tenants = append(tenants, strings.TrimSpace(text(n)))
	}
	if !strings.Contains(strings.Join(tenants, ","), "platform") || !strings.Contains(strings.Join(tenants, ","), "globex") {
		t.Errorf("tenant column: %v", tenants)
	}
	if len(byTestID(doc(t, body), "nav-audit")) != 1 {
		t.Error("the console's menu lacks the audit log")
	}

	_, body = c.get("/audit?tenant=acme")
	rows = auditRows(t, body)
	if len(rows) != 2 || !hasRow(rows, "tenant.suspend") || !hasRow(rows, "tenant.create | system | acme") {
		t.Errorf("tenant filter: %v", rows)
	}
	_, body = c.get("/audit?tenant=globex&action=tenant.suspend")
	if rows := auditRows(t, body); len(rows) != 0 {
		t.Errorf("tenant and action: %v", rows)
	}
	// A slug half typed is said above an empty table, which the filter's
	// live search swaps in (422), as any wrong filter.
	resp, body = c.get("/audit?tenant=nobody")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "audit-filter-error"), `"nobody"`) {
		t.Errorf("unknown tenant: %d %q", resp.StatusCode, textOf(t, body, "audit-filter-error"))
	}

	// Only administrators: a tenant's owner has no way in.
	acmeOwner := env.client(adminHost)
	if resp, _ := acmeOwner.get("/audit"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous on the console: %d", resp.StatusCode)
	}
}
