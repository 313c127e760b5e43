package web_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/ssotest"
	"github.com/nself/nself/internal/tenancy"
)

// afterTenantNotice runs change (in another process) and waits until e's
// tenant cache has heard of it; e's next request then shows its effect.
func afterTenantNotice(t *testing.T, e *testEnv, change func()) {
	t.Helper()
	tc := e.server.Resolver.(*postgres.TenantCache)
	heard := tc.Heard()
	change()
	deadline := time.Now().Add(10 * time.Second)
	for tc.Heard() == heard {
		if time.Now().After(deadline) {
			t.Fatal("the change was not announced")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSignInProviderAcrossProcesses: the sign-in page takes the tenant's
// provider from memory, and saving or removing the provider in one process
// shows on the other's sign-in page on its next request.
func TestSignInProviderAcrossProcesses(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	b := newEnvDB(t, a.db)
	acme := a.mustTenant("acme")
	owner := a.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	visitor := b.client("acme." + baseDomain)
	button := func() string {
		t.Helper()
		resp, body := visitor.get("/")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in page: %d", resp.StatusCode)
		}
		return textOf(t, body, "sso-sign-in")
	}
	// b remembers that acme has no provider.
	if got := button(); got != "" {
		t.Fatalf("before any provider: %q", got)
	}
	owner.get("/settings/sso")
	afterTenantNotice(t, b, func() {
		if resp, body := owner.post("/settings/sso", ssoForm(t, ssotest.ClientA, ssotest.SecretA)); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("save single sign-on: %d\n%s", resp.StatusCode, body)
		}
	})
	if got := button(); got != "Sign in with Test IdP" {
		t.Fatalf("after the provider was saved in the other process: %q", got)
	}
	// A change of name shows too.
	form := ssoForm(t, ssotest.ClientA, "")
	form.Set("display_name", "Acme Login")
	afterTenantNotice(t, b, func() {
		if resp, body := owner.post("/settings/sso", form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("rename the provider: %d\n%s", resp.StatusCode, body)
		}
	})
	if got := button(); got != "Sign in with Acme Login" {
		t.Fatalf("after the provider was renamed in the other process: %q", got)
	}
	owner.get("/settings/sso")
	afterTenantNotice(t, b, func() {
		if resp, body := owner.post("/settings/sso/remove", url.Values{}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("remove single sign-on: %d\n%s", resp.StatusCode, body)
		}
	})
	if got := button(); got != "" {
		t.Fatalf("after the provider was removed in the other process: %q", got)
	}
}
