package web_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// Every form struct's inputs are on the page that posts it, inside the
// form that posts there: a field whose name is misspelt, in the struct or
// in the template, fails here rather than read "" in production.
func TestFormsMatchTheirPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withBilling(t))
	ctx := e.ctx
	acme := e.mustTenant("acme")
	owner := e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	e.mustMember(acme, "member@acme.test", tenancy.RoleMember)
	price := "price_pro"
	if _, err := e.server.PlanAdmin.UpdatePlan(ctx, tenancy.PlanInput{Name: "pro", StripePriceID: &price}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Admin.Exec(ctx, `UPDATE tenants.tenants SET stripe_customer_id = 'cus_forms' WHERE id = $1`, acme.ID); err != nil {
		t.Fatal(err)
	}
	th, err := e.server.Branding.CreateTheme(ctx, acme.ID, tenancy.NewTheme{Name: "Night", Primary: "#112233", Secondary: "#445566", Background: "#FFFFFF", Text: "#000000"})
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := e.server.Invitations.Invite(ctx, acme.ID, tenancy.NewInvitation{Email: "new@acme.test", Role: tenancy.RoleMember, InvitedBy: owner.ID}, tenancy.MemberActor(tenancy.RoleOwner))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := e.server.Orgs.CreateOrg(ctx, "Forms Group", "forms-group"); err != nil {
		t.Fatal(err)
	}

	ownerC := e.client("acme." + baseDomain)
	ownerC.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	anon := func() *client { return e.client("acme." + baseDomain) }
	admin := signedInAdmin(t, e)
	anonAdmin := e.client("admin." + baseDomain)

	pages := map[string]struct {
		c      *client
		page   string
		posted string // the form's action or hx-post, a path.Match pattern
	}{
		"adminSignIn":     {anonAdmin, "/", "/signin"},
		"tenant":          {admin, "/tenants/new", "/tenants"},
		"confirm":         {admin, "/tenants/acme/delete", "/tenants/*/delete"},
		"plan":            {admin, "/plans/new", "/plans"},
		"tenantPlan":      {admin, "/tenants/acme", "/tenants/*/plan"},
		"signIn":          {anon(), "/?next=%2Fmembers", "/signin"},
		"forgot":          {anon(), "/password/forgot", "/password/forgot"},
		"setPassword":     {anon(), "/password/set?token=abc", "/password/set"},
		"apiKey":          {ownerC, "/settings/api-keys", "/settings/api-keys"},
		"checkout":        {ownerC, "/billing", "/billing/checkout"},
		"billingPortal":   {ownerC, "/billing", "/billing/portal"},
		"brand":           {ownerC, "/settings/branding", "/settings/branding/brand"},
		"theme":           {ownerC, "/settings/branding/themes/new", "/settings/branding/themes"},
		"setting":         {ownerC, "/settings/branding", "/settings/branding/settings"},
		"brandingPreview": {ownerC, "/settings/branding/themes/" + th.ID + "/edit", "/settings/branding/preview"},
		"domain":          {ownerC, "/domains", "/domains"},
		"emailTemplate":   {ownerC, "/settings/emails/welcome", "/settings/emails/welcome"},
		"logo":            {ownerC, "/settings/logos", "/settings/logos"},
		"memberRole":      {ownerC, "/members", "/members/*/role"},
		"invite":          {ownerC, "/members", "/members/invite"},
		"accept":          {anon(), "/invitations/accept?token=" + url.QueryEscape(token), "/invitations/accept"},
		"companyDetails":  {ownerC, "/settings/branding", "/settings/branding/details"},
		"code":            {ownerC, "/account/2fa/setup", "/account/2fa/confirm"},
		"org":             {admin, "/orgs", "/orgs"},
		"orgRename":       {admin, "/orgs/forms-group", "/orgs/*"},
		"orgTenant":       {admin, "/orgs/forms-group", "/orgs/*/tenants"},
		"passwordChange":  {ownerC, "/account/security", "/account/password"},
		"ssoSettings":     {ownerC, "/settings/sso", "/settings/sso"},
	}
	for name, form := range web.Forms {
		pg, ok := pages[name]
		if !ok {
			t.Errorf("form %s has no page to check it against", name)
			continue
		}
		resp, body := pg.c.get(pg.page)
		if resp.StatusCode != 200 {
			t.Errorf("%s: GET %s: %d", name, pg.page, resp.StatusCode)
			continue
		}
		inputs, found := formInputs(t, body, pg.posted)
		if !found {
			t.Errorf("%s: %s has no form posting to %s", name, pg.page, pg.posted)
			continue
		}
		for _, field := range web.FormNames(form) {
			if !slices.Contains(inputs, field) {
				t.Errorf("%s: the form posting to %s on %s has no input %q (it has %v)", name, pg.posted, pg.page, field, inputs)
			}
		}
	}
}

// formInputs returns the names of the inputs of the forms on the page
// whose action or hx-post matches pattern.
func formInputs(t *testing.T, body, pattern string) (names []string, found bool) {
	var walk func(n *html.Node, in bool)
	walk = func(n *html.Node, in bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				for _, a := range []string{"action", "hx-post"} {
					if ok, _ := path.Match(pattern, attr(n, a)); ok {
						in, found = true, true
					}
				}
			case "input", "select", "textarea":
				if in && attr(n, "name") != "" {
					names = append(names, attr(n, "name"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, in)
		}
	}
	walk(doc(t, body), false)
	return names, found
}

// Every struct of the web package with form tags is in web.Forms, so the
// test above checks it.
func TestEveryFormIsChecked(t *testing.T) {
	listed := map[string]bool{}
	for _, f := range web.Forms {
		listed[reflect.TypeOf(f).Name()] = true
	}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			for _, fl := range st.Fields.List {
				if fl.Tag != nil && strings.Contains(fl.Tag.Value, `form:"`) && !listed[ts.Name.Name] {
					t.Errorf("%s: form %s is not in web.Forms", name, ts.Name.Name)
					break
				}
			}
			return true
		})
	}
}
