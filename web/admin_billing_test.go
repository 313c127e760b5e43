package web_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/billing"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// rowOf returns the element with data-testid=id whose attribute key is
// value, or nil.
func rowWith(t *testing.T, body, id, key, value string) *html.Node {
	t.Helper()
	for _, n := range byTestID(doc(t, body), id) {
		if attr(n, key) == value {
			return n
		}
	}
	return nil
}

// cell is the text of the element with data-testid=id inside n.
func cell(n *html.Node, id string) string {
	if n == nil {
		return ""
	}
	found := byTestID(n, id)
	if len(found) == 0 {
		return ""
	}
	return strings.Join(strings.Fields(text(found[0])), " ")
}

// planCells reads a plan's row of the plan list.
func planCells(t *testing.T, body, plan string) map[string]string {
	t.Helper()
	row := rowWith(t, body, "plan-row", "data-plan", plan)
	if row == nil {
		t.Fatalf("no row for plan %s", plan)
	}
	out := map[string]string{}
	for _, id := range []string{"plan-name", "plan-users", "plan-storage", "plan-api", "plan-compute", "plan-price", "plan-stripe", "plan-tenants"} {
		out[id] = cell(row, id)
	}
	return out
}

func TestAdminPlanList(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustTenant("acme")
	env.mustTenant("beta")
	if _, err := env.server.Tenants.CreateTenant(env.ctx, tenancy.NewTenant{Name: "Gamma", Slug: "gamma", Plan: "pro"}); err != nil {
		t.Fatal(err)
	}
	env.mustTenant("gone")
	if _, err := env.server.Tenants.DeleteTenant(env.ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.server.PlanAdmin.UpdatePlan(env.ctx, tenancy.PlanInput{Name: "pro", StripePriceID: ref("price_pro")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.server.PlanAdmin.ArchivePlan(env.ctx, "starter"); err != nil {
		t.Fatal(err)
	}
	c := signedInAdmin(t, env)

	resp, body := c.get("/tenants")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "nav-plans")) != 1 || len(byTestID(doc(t, body), "nav-billing")) != 1 {
		t.Fatalf("the console's menu has no plans or billing link: %d", resp.StatusCode)
	}
	resp, body = c.get("/plans")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /plans: %d\n%s", resp.StatusCode, body)
	}
	if got := texts(t, body, "plan-name"); strings.Join(got, ",") != "Free,Starter (archived),Pro,Enterprise" {
		t.Errorf("plans %q", got)
	}
	for plan, want := range map[string]map[string]string{
		// The deleted tenant is not counted.
		"free": {"plan-name": "Free", "plan-users": "5", "plan-storage": "1 GB", "plan-api": "10,000/month",
			"plan-compute": "10", "plan-price": "$0.00", "plan-stripe": "none", "plan-tenants": "2"},
		"starter": {"plan-name": "Starter (archived)", "plan-users": "10", "plan-storage": "10 GB", "plan-api": "50,000/month",
			"plan-compute": "100", "plan-price": "$29.00", "plan-stripe": "none", "plan-tenants": "0"},
		"pro": {"plan-name": "Pro", "plan-users": "50", "plan-storage": "100 GB", "plan-api": "100,000/month",
			"plan-compute": "Unlimited", "plan-price": "$99.00", "plan-stripe": "price_pro", "plan-tenants": "1"},
		"enterprise": {"plan-name": "Enterprise", "plan-users": "Unlimited", "plan-storage": "Unlimited", "plan-api": "Unlimited",
			"plan-compute": "Unlimited", "plan-price": "$499.00", "plan-stripe": "none", "plan-tenants": "0"},
	} {
		got := planCells(t, body, plan)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s %s = %q, want %q", plan, k, got[k], v)
			}
		}
	}
	// Neither the default plan nor an archived one offers to be archived.
	for plan, want := range map[string]int{"free": 0, "starter": 0, "pro": 1, "enterprise": 1} {
		if got := len(byTestID(rowWith(t, body, "plan-row", "data-plan", plan), "plan-archive")); got != want {
			t.Errorf("plan %s has %d archive links, want %d", plan, got, want)
		}
	}
}

func TestAdminPlanCreate(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	c := signedInAdmin(t, env)
	c.get("/plans/new")

	for _, tc := range []struct {
		name   string
		form   url.Values
		errors map[string]string // field → part of its message
	}{
		{"empty name", url.Values{"name": {""}}, map[string]string{"name": "Plan name is empty"}},
		{"bad name", url.Values{"name": {"Team Plan"}}, map[string]string{"name": "may hold only"}},
		{"bad limits and price, all said at once", url.Values{"name": {"Team Plan"}, "max_users": {"many"}, "max_storage_gb": {"-2"},
			"max_api_requests": {"1.5"}, "max_compute_hours": {"x"}, "price": {"12.345"}},
			// Each limit is named as its label names it, not by a flag of
			// the command line.
			map[string]string{"name": "may hold only", "max_users": `Member limit "many" is not a whole number`, "max_storage_gb": `Storage limit (GB) "-2" is not a whole number`,
				"max_api_requests": `Monthly API request limit "1.5"`, "max_compute_hours": `Monthly compute hour limit "x"`, "price": "not an amount"}},
		{"limit too large", url.Values{"name": {"team"}, "max_users": {"3000000000"}}, map[string]string{"max_users": "Member limit is too large: at most 2,147,483,647"}},
		{"bad Stripe price", url.Values{"name": {"team"}, "stripe_price": {"prod_123"}}, map[string]string{"stripe_price": "is not a price id"}},
		{"taken name", url.Values{"name": {"pro"}}, map[string]string{"name": "already exists"}},
	} {
		resp, body := c.post("/plans", tc.form)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d, want 422", tc.name, resp.StatusCode)
			continue
		}
		for field, want := range tc.errors {
			if got := textOf(t, body, "error-"+field); !strings.Contains(got, want) || strings.Contains(got, "max-") {
				t.Errorf("%s: error of %s %q, want it to say %q", tc.name, field, got, want)
			}
		}
		if got := len(byTestID(doc(t, body), "form-error")); got != 0 {
			t.Errorf("%s: an error on the whole form: %q", tc.name, textOf(t, body, "form-error"))
		}
		// What was typed is kept.
		if n := doc(t, body); tc.form.Get("name") != "" && !hasInputValue(n, "name", tc.form.Get("name")) {
			t.Errorf("%s: the form lost the name typed", tc.name)
		}
	}
	if plans, _ := postgres.NewPlanService(env.db).ListPlans(env.ctx); len(plans) != 4 {
		t.Fatalf("%d plans after refused forms", len(plans))
	}

	resp, body := c.post("/plans", url.Values{"name": {"team"}, "max_users": {"20"}, "max_storage_gb": {"unlimited"},
		"max_api_requests": {"250000"}, "price": {"49.5"}, "stripe_price": {"price_team"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/plans" {
		t.Fatalf("create: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	page := follow(t, c, resp, body)
	if got := textOf(t, page, "flash"); !strings.Contains(got, "team") {
		t.Errorf("flash %q", got)
	}
	got := planCells(t, page, "team")
	for k, v := range map[string]string{"plan-users": "20", "plan-storage": "Unlimited", "plan-api": "250,000/month",
		"plan-compute": "10", "plan-price": "$49.50", "plan-stripe": "price_team", "plan-tenants": "0"} {
		if got[k] != v {
			t.Errorf("team %s = %q, want %q", k, got[k], v)
		}
	}
	// Another plan cannot take the same Stripe price.
	resp, body = c.post("/plans", url.Values{"name": {"team-two"}, "stripe_price": {"price_team"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "error-stripe_price"), "another plan") {
		t.Errorf("duplicate Stripe price: %d %q", resp.StatusCode, textOf(t, body, "error-stripe_price"))
	}
}

// hasInputValue reports whether the input named name has the value.
func hasInputValue(n *html.Node, name, value string) bool {
	found := false
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == name && attr(n, "value") == value {
			found = true
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return found
}

func TestAdminPlanEdit(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	c := signedInAdmin(t, env)

	resp, body := c.get("/plans/pro/edit")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET edit: %d", resp.StatusCode)
	}
	n := doc(t, body)
	for name, value := range map[string]string{"max_users": "50", "max_storage_gb": "100", "max_api_requests": "100000",
		"max_compute_hours": "-1", "price": "99.00", "stripe_price": ""} {
		if !hasInputValue(n, name, value) {
			t.Errorf("the edit form's %s is not %q", name, value)
		}
	}
	if hasInputValue(n, "name", "pro") {
		t.Error("the edit form lets the name change")
	}

	form := url.Values{"max_users": {"60"}, "max_storage_gb": {"200"}, "max_api_requests": {""},
		"max_compute_hours": {"-1"}, "price": {"abc"}, "stripe_price": {"price_pro"}}
	resp, body = c.post("/plans/pro", form)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad edit: %d", resp.StatusCode)
	}
	if got := textOf(t, body, "error-max_api_requests"); got == "" {
		t.Error("an empty limit is not said to be wrong")
	}
	if got := textOf(t, body, "error-price"); !strings.Contains(got, "not an amount") {
		t.Errorf("price error %q", got)
	}
	if p, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "pro"); p.MaxUsers != 50 {
		t.Errorf("a refused edit changed the plan: %+v", p)
	}

	form.Set("max_api_requests", "unlimited")
	form.Set("price", "$119")
	resp, body = c.post("/plans/pro", form)
	page := follow(t, c, resp, body)
	got := planCells(t, page, "pro")
	for k, v := range map[string]string{"plan-users": "60", "plan-storage": "200 GB", "plan-api": "Unlimited",
		"plan-compute": "Unlimited", "plan-price": "$119.00", "plan-stripe": "price_pro"} {
		if got[k] != v {
			t.Errorf("pro %s = %q, want %q", k, got[k], v)
		}
	}
	// An empty Stripe price takes it away.
	form.Set("stripe_price", "")
	resp, body = c.post("/plans/pro", form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", resp.StatusCode, body)
	}
	if p, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "pro"); p.StripePriceID != "" || p.MaxUsers != 60 {
		t.Errorf("pro after edit: %+v", p)
	}

	// A member limit lowered below what a tenant on the plan has: saved,
	// and the tenant named.
	acme := env.mustTenant("acme")
	if _, err := env.server.BillingStore.SetTenantPlan(env.ctx, acme.ID, "pro"); err != nil {
		t.Fatal(err)
	}
	env.mustMember(acme, "ann@acme.test", tenancy.RoleOwner)
	env.mustMember(acme, "bob@acme.test", tenancy.RoleMember)
	form.Set("max_users", "1")
	resp, body = c.post("/plans/pro", form)
	if got := textOf(t, follow(t, c, resp, body), "flash"); !strings.Contains(got, "1 tenant has more members than it now allows (acme)") {
		t.Errorf("flash after lowering the member limit: %q", got)
	}

	if resp, _ := c.get("/plans/nope/edit"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("edit of a missing plan: %d", resp.StatusCode)
	}
	if resp, _ := c.post("/plans/nope", form); resp.StatusCode != http.StatusNotFound {
		t.Errorf("post to a missing plan: %d", resp.StatusCode)
	}
}

func TestAdminPlanArchive(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	if _, err := env.server.Tenants.CreateTenant(env.ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme", Plan: "starter"}); err != nil {
		t.Fatal(err)
	}
	c := signedInAdmin(t, env)

	resp, body := c.get("/plans/starter/archive")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "confirm-archive")) != 1 {
		t.Fatalf("archive confirmation: %d", resp.StatusCode)
	}
	if got := textOf(t, body, "archive-tenants"); got != "1 tenant" {
		t.Errorf("tenants keeping the plan: %q", got)
	}
	// Only the confirmation's post archives.
	if p, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "starter"); p.Archived {
		t.Fatal("showing the confirmation archived the plan")
	}
	resp, body = c.post("/plans/starter/archive", nil)
	page := follow(t, c, resp, body)
	if got := planCells(t, page, "starter")["plan-name"]; got != "Starter (archived)" {
		t.Errorf("starter after archive: %q", got)
	}
	if got, _ := env.server.Tenants.FindTenant(env.ctx, "acme"); got.Plan != "starter" {
		t.Errorf("acme's plan after archive: %s", got.Plan)
	}
	if resp, _ := c.get("/plans/starter/archive"); resp.StatusCode != http.StatusConflict {
		t.Errorf("archive page of an archived plan: %d, want 409", resp.StatusCode)
	}
	// The default plan stays.
	c.get("/plans")
	resp, body = c.post("/plans/free/archive", nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "form-error"), "default plan") {
		t.Errorf("archive of the default plan: %d %q", resp.StatusCode, textOf(t, body, "form-error"))
	}
}

func TestAdminPlanChangeTenantPlan(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	acme := env.mustTenant("acme")
	for _, email := range []string{"a@acme.test", "b@acme.test", "c@acme.test"} {
		env.mustMember(acme, email, tenancy.RoleMember)
	}
	if _, err := env.server.PlanAdmin.CreatePlan(env.ctx, tenancy.PlanInput{Name: "tiny", MaxUsers: ref(int64(2))}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.server.PlanAdmin.ArchivePlan(env.ctx, "starter"); err != nil {
		t.Fatal(err)
	}
	c := signedInAdmin(t, env)

	resp, body := c.get("/tenants/acme")
	if resp.StatusCode != http.StatusOK || len(byTestID(doc(t, body), "change-plan")) != 1 {
		t.Fatalf("tenant page without a plan change: %d", resp.StatusCode)
	}
	if got := texts(t, body, "tenant-plan-select"); len(got) != 1 || strings.Contains(got[0], "starter") {
		t.Errorf("plan choices %q offer an archived plan", got)
	}

	for _, tc := range []struct{ plan, want string }{
		{"tiny", "allows 2 members"},
		{"starter", "archived"},
		{"nope", "does not exist"},
	} {
		resp, body := c.post("/tenants/acme/plan", url.Values{"plan": {tc.plan}})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("plan %s: %d, want 422", tc.plan, resp.StatusCode)
		}
		if got := textOf(t, body, "error-plan"); !strings.Contains(got, tc.want) {
			t.Errorf("plan %s: error %q, want it to say %q", tc.plan, got, tc.want)
		}
		if textOf(t, body, "detail-slug") != "acme" {
			t.Errorf("plan %s: the refusal is not shown on the tenant's page", tc.plan)
		}
	}
	resp, body = c.post("/tenants/acme/plan", url.Values{"plan": {"pro"}})
	page := follow(t, c, resp, body)
	if got := textOf(t, page, "detail-plan"); got != "Pro" {
		t.Errorf("plan after change: %q", got)
	}
	if got := textOf(t, page, "flash"); !strings.Contains(got, "pro") {
		t.Errorf("flash %q", got)
	}
	if resp, _ := c.post("/tenants/nope/plan", url.Values{"plan": {"pro"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("change of a missing tenant's plan: %d", resp.StatusCode)
	}
}

// subscription is a customer.subscription.updated event for a tenant, as
// Stripe sends it and as the webhook would have read it.
func subscription(t *testing.T, id string, tn *tenancy.Tenant, price, status string, created time.Time, metadata map[string]string) *tenancy.BillingEvent {
	t.Helper()
	meta := map[string]string{"tenant_id": tn.ID}
	for k, v := range metadata {
		meta[k] = v
	}
	sub := tenancy.SubscriptionState{CustomerID: "cus_" + tn.Slug, SubscriptionID: "sub_" + tn.Slug, Status: status, PriceID: price}
	payload, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": tenancy.EventSubscriptionUpdated, "created": created.Unix(), "api_version": "2023-10-16",
		"data": map[string]any{"object": map[string]any{
			"id": sub.SubscriptionID, "object": "subscription", "customer": sub.CustomerID, "status": status, "metadata": meta,
			"items": map[string]any{"object": "list", "data": []any{map[string]any{
				"id": "si_" + tn.Slug, "object": "subscription_item", "price": map[string]any{"id": price, "object": "price"},
			}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &tenancy.BillingEvent{ID: id, Type: tenancy.EventSubscriptionUpdated, Created: created.UTC().Truncate(time.Second),
		Payload: payload, TenantHint: tn.ID, Subscription: sub}
}

// applyEvent processes an event as the webhook does; a failure is
// recorded on the event and returned.
func (e *testEnv) applyEvent(ev *tenancy.BillingEvent) error {
	_, err := postgres.NewBillingService(e.db).ApplyEvent(e.ctx, ev)
	return err
}

func (e *testEnv) mustApply(ev *tenancy.BillingEvent) {
	e.t.Helper()
	if err := e.applyEvent(ev); err != nil {
		e.t.Fatalf("apply %s: %v", ev.ID, err)
	}
}

// mustStripePrices sells the paid plans at Stripe prices named after them.
func (e *testEnv) mustStripePrices(plans ...string) {
	e.t.Helper()
	for _, p := range plans {
		if _, err := e.server.PlanAdmin.UpdatePlan(e.ctx, tenancy.PlanInput{Name: p, StripePriceID: ref("price_" + p)}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func ref[T any](v T) *T { return &v }

func TestAdminBillingRevenueAndPastDue(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustStripePrices("starter", "pro")
	now := time.Now()
	acme, beta, gamma, delta := env.mustTenant("acme"), env.mustTenant("beta"), env.mustTenant("gamma"), env.mustTenant("delta")
	env.mustTenant("free-one")
	env.mustApply(subscription(t, "evt_acme", acme, "price_pro", "active", now, nil))
	env.mustApply(subscription(t, "evt_beta", beta, "price_starter", "trialing", now, nil))
	env.mustApply(subscription(t, "evt_gamma", gamma, "price_pro", "past_due", now, nil))
	// A canceled subscription brings nothing in.
	env.mustApply(subscription(t, "evt_delta", delta, "price_pro", "canceled", now, nil))
	c := signedInAdmin(t, env)

	resp, body := c.get("/billing")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /billing: %d\n%s", resp.StatusCode, body)
	}
	if got := texts(t, body, "revenue-plan"); strings.Join(got, ",") != "Starter,Pro" {
		t.Errorf("revenue plans %q", got)
	}
	for plan, want := range map[string][2]string{"starter": {"1", "$29.00"}, "pro": {"2", "$198.00"}} {
		row := rowWith(t, body, "revenue-row", "data-plan", plan)
		if got := [2]string{cell(row, "revenue-tenants"), cell(row, "revenue-monthly")}; got != want {
			t.Errorf("revenue of %s: %v, want %v", plan, got, want)
		}
	}
	if got, want := [2]string{textOf(t, body, "revenue-total-tenants"), textOf(t, body, "revenue-total")}, [2]string{"3", "$227.00"}; got != want {
		t.Errorf("total %v, want %v", got, want)
	}
	if got := texts(t, body, "past-due-slug"); strings.Join(got, ",") != "gamma" {
		t.Errorf("past due %q", got)
	}
	links := byTestID(doc(t, body), "past-due-slug")
	if len(links) == 1 {
		if a := links[0].FirstChild; a == nil || attr(a, "href") != "/tenants/gamma" {
			t.Errorf("past-due tenant does not link to its page")
		}
	}
	// With billing off, the page says so.
	if len(byTestID(doc(t, body), "billing-off")) != 1 {
		t.Error("billing is off, and the page does not say so")
	}
}

func TestAdminBillingEvents(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustStripePrices("pro")
	acme, beta := env.mustTenant("acme"), env.mustTenant("beta")
	now := time.Now()
	env.mustApply(subscription(t, "evt_ok", acme, "price_pro", "active", now, nil))
	if err := env.applyEvent(subscription(t, "evt_bad", beta, "price_unknown", "active", now, nil)); err == nil {
		t.Fatal("an event at an unknown price was processed")
	}
	env.mustApply(&tenancy.BillingEvent{ID: "evt_other", Type: "customer.created", Created: now, Payload: []byte(`{"id":"evt_other"}`)})
	c := signedInAdmin(t, env)

	_, body := c.get("/billing")
	if got := texts(t, body, "event-id"); len(got) != 3 {
		t.Fatalf("events %q", got)
	}
	row := rowWith(t, body, "event-row", "data-event", "evt_ok")
	for id, want := range map[string]string{"event-type": "customer.subscription.updated", "event-status": "processed",
		"event-tenant": "acme", "event-attempts": "1"} {
		if got := cell(row, id); got != want {
			t.Errorf("evt_ok %s = %q, want %q", id, got, want)
		}
	}
	if got := cell(row, "event-result"); !strings.Contains(got, "plan free → pro") {
		t.Errorf("evt_ok result %q", got)
	}
	bad := rowWith(t, body, "event-row", "data-event", "evt_bad")
	if cell(bad, "event-status") != "failed" || !strings.Contains(cell(bad, "event-result"), "price_unknown") {
		t.Errorf("evt_bad: %q %q", cell(bad, "event-status"), cell(bad, "event-result"))
	}

	for status, want := range map[string]string{"failed": "evt_bad", "processed": "evt_ok", "ignored": "evt_other"} {
		resp, part := getPartial(c, "/billing?status="+status)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("filter %s: %d", status, resp.StatusCode)
		}
		if strings.Contains(part, "<html") || len(byTestID(doc(t, part), "event-table")) != 1 {
			t.Errorf("filter %s: not only the table", status)
		}
		if got := texts(t, part, "event-id"); strings.Join(got, ",") != want {
			t.Errorf("filter %s: %q, want %s", status, got, want)
		}
	}
	resp, part := getPartial(c, "/billing?status=bogus")
	if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, part, "error-status") == "" || len(texts(t, part, "event-id")) != 0 {
		t.Errorf("unknown status: %d %q", resp.StatusCode, textOf(t, part, "error-status"))
	}
	// The filtered page, opened as a page, is whole and keeps the choice.
	_, body = c.get("/billing?status=failed")
	if len(byTestID(doc(t, body), "revenue-table")) != 1 || strings.Join(texts(t, body, "event-id"), ",") != "evt_bad" {
		t.Error("the filtered page is not whole or not filtered")
	}

	resp, body = c.get("/billing/events/evt_bad")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event page: %d", resp.StatusCode)
	}
	if textOf(t, body, "event-status") != "failed" || !strings.Contains(textOf(t, body, "event-payload"), `"object": "subscription"`) {
		t.Errorf("event page: %q\n%s", textOf(t, body, "event-status"), textOf(t, body, "event-payload"))
	}
	// Billing is off here: no replay.
	if len(byTestID(doc(t, body), "replay-event")) != 0 || len(byTestID(doc(t, body), "billing-off")) != 1 {
		t.Error("with billing off the event page offers a replay or does not say billing is off")
	}
	if resp, _ := c.post("/billing/events/evt_bad/replay", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("replay with billing off: %d, want 404: there is no replay without Stripe", resp.StatusCode)
	}
	if resp, _ := c.get("/billing/events/evt_nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing event: %d", resp.StatusCode)
	}
}

// withBilling gives the server Stripe billing, on stripe-mock; a replay
// calls no Stripe API.
func withBilling(t *testing.T) func(*web.Server, *postgres.DB) {
	return func(s *web.Server, db *postgres.DB) {
		svc, err := billing.New(billing.Config{SecretKey: "sk_test_123", WebhookSecret: "whsec_x", APIBase: os.Getenv("STRIPE_API_BASE")},
			postgres.NewBillingService(db), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		s.Billing = svc
	}
}

func TestAdminBillingReplay(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withBilling(t))
	acme := env.mustTenant("acme")
	if err := env.applyEvent(subscription(t, "evt_late", acme, "price_team", "active", time.Now(), nil)); err == nil {
		t.Fatal("an event at an unknown price was processed")
	}
	c := signedInAdmin(t, env)

	_, body := c.get("/billing/events/evt_late")
	if len(byTestID(doc(t, body), "replay-event")) != 1 {
		t.Fatal("a failed event offers no replay")
	}
	// Still failing: the outcome says why, and the attempt is counted.
	resp, body := c.post("/billing/events/evt_late/replay", nil)
	page := follow(t, c, resp, body)
	if got := textOf(t, page, "flash"); !strings.Contains(got, "failed again") || !strings.Contains(got, "price_team") {
		t.Errorf("flash after a failing replay: %q", got)
	}
	if textOf(t, page, "event-status") != "failed" || textOf(t, page, "event-attempts") != "2" {
		t.Errorf("after a failing replay: %s, %s attempts", textOf(t, page, "event-status"), textOf(t, page, "event-attempts"))
	}

	// Once a plan is sold at the price, the replay goes through.
	if _, err := env.server.PlanAdmin.CreatePlan(env.ctx, tenancy.PlanInput{Name: "team", StripePriceID: ref("price_team")}); err != nil {
		t.Fatal(err)
	}
	resp, body = c.post("/billing/events/evt_late/replay", nil)
	if resp.Header.Get("Location") != "/billing/events/evt_late" {
		t.Errorf("replay goes to %q", resp.Header.Get("Location"))
	}
	page = follow(t, c, resp, body)
	if got := textOf(t, page, "flash"); !strings.Contains(got, "processed") || !strings.Contains(got, "plan free → team") {
		t.Errorf("flash after the replay: %q", got)
	}
	if textOf(t, page, "event-status") != "processed" || textOf(t, page, "event-tenant") != "acme" {
		t.Errorf("after the replay: %q %q", textOf(t, page, "event-status"), textOf(t, page, "event-tenant"))
	}
	if len(byTestID(doc(t, page), "replay-event")) != 0 {
		t.Error("a processed event offers a replay")
	}
	if got, _ := env.server.Tenants.FindTenant(env.ctx, "acme"); got.Plan != "team" || got.SubscriptionStatus != "active" {
		t.Errorf("acme after the replay: %s %s", got.Plan, got.SubscriptionStatus)
	}
	// A processed event is not replayed again.
	if resp, _ := c.post("/billing/events/evt_late/replay", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("replay of a processed event: %d, want 409", resp.StatusCode)
	}
	_, body = c.get("/billing?status=failed")
	if got := texts(t, body, "event-id"); len(got) != 0 {
		t.Errorf("failed events after the replay: %q", got)
	}
}

func TestAdminBillingPayloadEscaped(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.mustStripePrices("pro")
	acme := env.mustTenant("acme")
	const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	env.mustApply(subscription(t, "evt_evil", acme, "price_pro", "active", time.Now(), map[string]string{"note": evil}))
	c := signedInAdmin(t, env)

	resp, body := c.get("/billing/events/evt_evil")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event page: %d", resp.StatusCode)
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatal("the payload's markup reaches the page unescaped")
	}
	n := doc(t, body)
	for _, tag := range []string{"script", "img"} {
		var found bool
		var walk func(*html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == tag {
				found = true
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(byTestID(n, "event-payload")[0])
		if found {
			t.Errorf("a %s element in the payload", tag)
		}
	}
	// The text is shown as it is, indented.
	payload := text(byTestID(n, "event-payload")[0])
	if !strings.Contains(payload, `"note": "<script>alert(\"x\")</script><img src=x onerror=alert(1)>"`) {
		t.Errorf("payload shown as\n%s", payload)
	}
}

// Neither anonymous visitors nor tenants' users reach plans or billing.
func TestAdminBillingAccess(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	acme := env.mustTenant("acme")
	env.mustStripePrices("pro")
	env.mustApply(subscription(t, "evt_one", acme, "price_pro", "active", time.Now(), nil))
	gets := []string{"/plans", "/plans/new", "/plans/pro/edit", "/plans/pro/archive", "/billing", "/billing?status=failed", "/billing/events/evt_one"}
	posts := []string{"/plans", "/plans/pro", "/plans/pro/archive", "/tenants/acme/plan", "/billing/events/evt_one/replay"}

	anon := env.client(adminHost)
	anon.get("/")
	for _, path := range gets {
		resp, body := anon.get(path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("anonymous GET %s: %d %s, want a redirect to /", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if strings.Contains(body, "evt_one") || strings.Contains(body, "price_pro") {
			t.Errorf("anonymous GET %s shows billing data", path)
		}
	}
	for _, path := range posts {
		if resp, _ := anon.post(path, url.Values{"plan": {"enterprise"}, "name": {"evil"}, "max_users": {"1"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("anonymous POST %s: %d, want 403", path, resp.StatusCode)
		}
	}

	// A tenant's owner, on the tenant's host (whose own pages may share
	// an address) or with its session copied onto the admin host, gets
	// nothing of the console either.
	owner := env.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	for _, path := range gets {
		_, body := owner.get(path)
		for _, id := range []string{"plan-list", "plan-form", "billing-overview", "event-detail", "archive-plan"} {
			if len(byTestID(doc(t, body), id)) != 0 {
				t.Errorf("tenant GET %s serves the console (%s)", path, id)
			}
		}
	}
	tenantURL, _ := url.Parse(owner.url("/"))
	copied := env.client(adminHost)
	adminURL, _ := url.Parse(copied.url("/"))
	for _, ck := range owner.http.Jar.Cookies(tenantURL) {
		copied.http.Jar.SetCookies(adminURL, []*http.Cookie{{Name: ck.Name, Value: ck.Value}, {Name: "nself_admin", Value: ck.Value}})
	}
	for _, path := range gets {
		if resp, _ := copied.get(path); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("GET %s with a tenant session: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	if plans, _ := postgres.NewPlanService(env.db).ListPlans(env.ctx); len(plans) != 4 {
		t.Errorf("%d plans after refused posts", len(plans))
	}
	if p, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "pro"); p.Archived || p.MaxUsers != 50 {
		t.Errorf("pro after refused posts: %+v", p)
	}
	if got, _ := env.server.Tenants.FindTenant(env.ctx, "acme"); got.Plan != "pro" {
		t.Errorf("acme's plan after refused posts: %s", got.Plan)
	}
}

func TestAdminBillingCSRF(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withBilling(t))
	acme := env.mustTenant("acme")
	if err := env.applyEvent(subscription(t, "evt_late", acme, "price_team", "active", time.Now(), nil)); err == nil {
		t.Fatal("an event at an unknown price was processed")
	}
	if _, err := env.server.PlanAdmin.CreatePlan(env.ctx, tenancy.PlanInput{Name: "team", StripePriceID: ref("price_team")}); err != nil {
		t.Fatal(err)
	}
	c := signedInAdmin(t, env)
	c.get("/plans")

	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/plans", url.Values{"name": {"evil"}}},
		{"/plans/pro", url.Values{"max_users": {"1"}, "max_storage_gb": {"1"}, "max_api_requests": {"1"}, "max_compute_hours": {"1"}, "price": {"1"}}},
		{"/plans/pro/archive", nil},
		{"/tenants/acme/plan", url.Values{"plan": {"pro"}}},
		{"/billing/events/evt_late/replay", nil},
	} {
		for _, token := range []string{"", "forged-token"} {
			form := url.Values{"csrf_token": {token}}
			for k, v := range tc.form {
				form[k] = v
			}
			if resp, _ := c.post(tc.path, form); resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with token %q: %d, want 403", tc.path, token, resp.StatusCode)
			}
		}
	}
	if plans, _ := postgres.NewPlanService(env.db).ListPlans(env.ctx); len(plans) != 5 {
		t.Errorf("%d plans after refused posts", len(plans))
	}
	if p, _ := postgres.NewPlanService(env.db).FindPlan(env.ctx, "pro"); p.Archived || p.MaxUsers != 50 {
		t.Errorf("pro after refused posts: %+v", p)
	}
	if got, _ := env.server.Tenants.FindTenant(env.ctx, "acme"); got.Plan != "free" {
		t.Errorf("acme's plan after refused posts: %s", got.Plan)
	}
	if e, _ := env.server.BillingStore.FindEvent(env.ctx, "evt_late"); e.Status != "failed" || e.Attempts != 1 {
		t.Errorf("event after a refused replay: %s, %d attempts", e.Status, e.Attempts)
	}
	// With the token, the posts go through.
	if resp, _ := c.post("/tenants/acme/plan", url.Values{"plan": {"pro"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("change of plan with the token: %d", resp.StatusCode)
	}
}

// Without billing records the billing pages are not there; without plan
// administration, neither are the plan pages.
func TestAdminBillingHiddenWhenOff(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(s *web.Server, _ *postgres.DB) { s.BillingStore, s.PlanAdmin = nil, nil })
	env.mustTenant("acme")
	c := signedInAdmin(t, env)

	_, body := c.get("/tenants/acme")
	n := doc(t, body)
	for _, id := range []string{"nav-billing", "nav-plans", "change-plan"} {
		if len(byTestID(n, id)) != 0 {
			t.Errorf("%s shown with billing off", id)
		}
	}
	for _, path := range []string{"/billing", "/billing/events/evt_1", "/plans", "/plans/new", "/plans/pro/edit"} {
		if resp, _ := c.get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/plans", "/plans/pro/archive", "/tenants/acme/plan", "/billing/events/evt_1/replay"} {
		if resp, _ := c.post(path, url.Values{"plan": {"pro"}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
