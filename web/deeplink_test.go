package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

// A person who opens a page while signed out signs in and lands on that
// page, not the dashboard; an address elsewhere is never followed.
func TestSignInReturnsToTheRequestedPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)

	c := e.client("acme." + baseDomain)
	resp, _ := c.get("/settings/branding?tab=colors")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?next="+url.QueryEscape("/settings/branding?tab=colors") {
		t.Fatalf("signed out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := c.get(resp.Header.Get("Location"))
	var got string
	if n := byTestID(doc(t, body), "sign-in-next"); len(n) == 1 {
		got = attr(n[0], "value")
	}
	if got != "/settings/branding?tab=colors" {
		t.Fatalf("the sign-in form carries next=%q", got)
	}
	resp, _ = c.post("/signin", url.Values{"email": {"owner@acme.test"}, "password": {passwordOf("owner@acme.test")}, "next": {"/settings/branding?tab=colors"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/branding?tab=colors" {
		t.Errorf("after sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "settings"} {
		c := e.client("acme." + baseDomain)
		c.get("/")
		resp, _ := c.post("/signin", url.Values{"email": {"owner@acme.test"}, "password": {passwordOf("owner@acme.test")}, "next": {next}})
		if resp.Header.Get("Location") != "/dashboard" {
			t.Errorf("next=%q sent the person to %q", next, resp.Header.Get("Location"))
		}
	}
}
