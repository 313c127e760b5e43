package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

// A tenant's console page shows its members, usage, domains, billing and
// latest audit entries, each from that tenant only; a section with nothing
// to show says what comes next.
func TestAdminTenantPageSections(t *testing.T) {
	t.Parallel()
	e := newBillingEnv(t)
	acme, beta := e.mustTenant("acme"), e.mustTenant("beta")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	e.mustMember(acme, "ann@acme.test", tenancy.RoleMember)
	e.mustMember(beta, "bob@beta.test", tenancy.RoleOwner)
	if _, err := e.server.DomainAdmin.AddDomain(e.ctx, acme.ID, "portal.acme.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Admin.Exec(e.ctx, `UPDATE tenants.tenants SET stripe_customer_id = 'cus_acme' WHERE id = $1`, acme.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	paid := map[string]any{"id": "in_acme", "object": "invoice", "customer": "cus_acme", "amount_paid": 9900, "currency": "usd"}
	if code, _ := e.deliver(event("evt_pay", "invoice.paid", now, paid), webhookSecret, now); code != http.StatusOK {
		t.Fatal("invoice.paid")
	}
	c := signedInAdmin(t, e.testEnv)

	_, body := c.get("/tenants/acme")
	n := doc(t, body)
	var emails []string
	for _, row := range byTestID(n, "tenant-member") {
		emails = append(emails, strings.Fields(text(row))[0])
	}
	if strings.Join(emails, ",") != "ann@acme.test,owner@acme.test" && strings.Join(emails, ",") != "owner@acme.test,ann@acme.test" {
		t.Errorf("members %q", emails)
	}
	if got := textOf(t, body, "usage-text-members"); !strings.HasPrefix(got, "2 / ") {
		t.Errorf("members meter %q", got)
	}
	if len(byTestID(n, "usage-api")) != 1 {
		t.Error("no API request meter")
	}
	if d := byTestID(n, "tenant-domain"); len(d) != 1 || !strings.Contains(text(d[0]), "portal.acme.test") || !strings.Contains(text(d[0]), "pending") {
		t.Errorf("domains section: %d rows", len(d))
	}
	if p := byTestID(n, "tenant-payment"); len(p) != 1 || !strings.Contains(text(p[0]), "$99.00") {
		t.Errorf("payments: %d rows", len(p))
	}
	if got := textOf(t, body, "detail-subscription"); !strings.Contains(got, "none") {
		t.Errorf("subscription %q", got)
	}
	if len(byTestID(n, "tenant-audit-row")) == 0 {
		t.Error("no audit entries")
	}
	all := byTestID(n, "tenant-audit-all")
	if len(all) != 1 || attr(all[0], "href") != "/audit?tenant=acme" {
		t.Error("no link to the tenant's whole audit log")
	}
	if strings.Contains(body, "bob@beta.test") {
		t.Error("acme's page shows beta's member")
	}

	// beta: no domain, no payment; each section says what comes next.
	_, body = c.get("/tenants/beta")
	if got := textOf(t, body, "domains-empty"); !strings.Contains(got, "Domains page") {
		t.Errorf("empty domains %q", got)
	}
	if got := textOf(t, body, "payments-empty"); !strings.Contains(got, "Stripe") {
		t.Errorf("empty payments %q", got)
	}
	if strings.Contains(body, "in_acme") || strings.Contains(body, "portal.acme.test") {
		t.Error("beta's page shows acme's rows")
	}
}

// Organizations: a taken slug and an unknown tenant are said next to their
// fields; a forged post without the CSRF token changes nothing.
func TestAdminOrgForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustTenant("acme")
	c := signedInAdmin(t, e)
	c.get("/orgs")
	resp, _ := c.post("/orgs", url.Values{"name": {"Acme Group"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/orgs/acme-group" {
		t.Fatalf("create: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := c.post("/orgs", url.Values{"name": {"Acme Group"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "error-slug"), "already exists") {
		t.Errorf("a taken slug: %d %q", resp.StatusCode, textOf(t, body, "error-slug"))
	}
	if in := byTestID(doc(t, body), "error-slug"); len(in) != 1 || attr(in[0], "id") != "error-slug" {
		t.Error("the slug's error has no id for the field to name")
	}
	if !strings.Contains(body, `aria-describedby="org-slug-help error-slug"`) || !strings.Contains(body, `aria-invalid="true"`) {
		t.Error("the slug field is not tied to its error")
	}
	c.get("/orgs/acme-group")
	resp, body = c.post("/orgs/acme-group/tenants", url.Values{"tenant": {"nope"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "error-tenant"), "nope") {
		t.Errorf("an unknown tenant: %d %q", resp.StatusCode, textOf(t, body, "error-tenant"))
	}
	resp, _ = c.post("/orgs/acme-group/delete", url.Values{"csrf_token": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a forged delete: %d", resp.StatusCode)
	}
	if _, err := e.server.Orgs.FindOrg(e.ctx, "acme-group"); err != nil {
		t.Errorf("the forged delete deleted: %v", err)
	}
}
