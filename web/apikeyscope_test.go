package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

// errorOf reads the error of a JSON answer.
func errorOf(t *testing.T, body string) string {
	t.Helper()
	var v struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("not JSON: %q", body)
	}
	return v.Error
}

// TestAPIKeyScopes: a key made on the form with a scope and an expiry
// reaches what it may, and is refused elsewhere with a JSON reason, on
// /v1 and on the gateway; an expired key gets 401; a key made before
// scopes reaches everything; the list shows the scope and the last use
// with its address.
func TestAPIKeyScopes(t *testing.T) {
	t.Parallel()
	app := newUpstreamApp(t)
	e := newGatewayEnv(t, app)
	acme := e.mustTenant("acme")
	host := "acme." + baseDomain
	e.mustMember(acme, "adam@acme.example", tenancy.RoleAdmin)
	c := e.client(host)
	c.signIn("adam@acme.example", passwordOf("adam@acme.example"))

	create := func(form url.Values) string {
		t.Helper()
		c.get("/settings/api-keys")
		resp, body := c.post("/settings/api-keys", form)
		if resp.StatusCode != 200 {
			t.Fatalf("create key %v: %d\n%s", form, resp.StatusCode, body)
		}
		return textOf(t, body, "new-key")
	}
	readAPI := create(url.Values{"name": {"reader"}, "access": {"read_only"}, "api": {"1"}, "expires": {"30"}})
	gatewayOnly := create(url.Values{"name": {"app"}, "access": {"read_write"}, "gateway": {"1"}, "expires": {"0"}})
	expiring := create(url.Values{"name": {"soon"}, "access": {"read_write"}, "api": {"1"}, "gateway": {"1"}, "expires": {"7"}})
	_, legacy := mustAPIKey(t, e, acme)

	// Neither surface: refused on the form, nothing made.
	c.get("/settings/api-keys")
	if resp, body := c.post("/settings/api-keys", url.Values{"name": {"none"}, "access": {"read_write"}, "expires": {"0"}}); resp.StatusCode != http.StatusUnprocessableEntity ||
		len(byTestID(doc(t, body), "error-surfaces")) != 1 {
		t.Fatalf("a key reaching nothing: %d", resp.StatusCode)
	}

	// Expired since: the time is moved back in the database.
	e.execInTenant(acme.ID, `UPDATE auth.api_keys SET expires_at = now() - interval '1 minute' WHERE name = 'soon'`)

	bearer := func(k string) http.Header { return http.Header{"Authorization": {"Bearer " + k}} }
	for _, tc := range []struct {
		name, key, method, path string
		status                  int
		reason                  string
	}{
		{"read-only key reads /v1", readAPI, "GET", "/v1/tenant", 200, ""},
		{"read-only key writes /v1", readAPI, "POST", "/v1/tenant", 403, "read-only"},
		{"API-only key at the gateway", readAPI, "GET", "/api/x", 403, "may not call the gateway"},
		{"gateway key at /v1", gatewayOnly, "GET", "/v1/tenant", 403, "may not call the tenant API"},
		{"gateway key writes at the gateway", gatewayOnly, "POST", "/api/x", 200, ""},
		{"expired key at /v1", expiring, "GET", "/v1/tenant", 401, "expired"},
		{"expired key at the gateway", expiring, "GET", "/api/x", 401, "expired"},
		{"older key at /v1", legacy, "GET", "/v1/members", 200, ""},
		{"older key writes at the gateway", legacy, "PUT", "/api/x", 200, ""},
	} {
		resp, body := apiCall(t, c, tc.method, tc.path, strings.NewReader("{}"), bearer(tc.key))
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
			continue
		}
		if tc.reason != "" && !strings.Contains(errorOf(t, body), tc.reason) {
			t.Errorf("%s: reason %q", tc.name, errorOf(t, body))
		}
	}

	_, body := c.get("/settings/api-keys")
	rows := byTestID(doc(t, body), "key-row")
	found := map[string]string{}
	for _, r := range rows {
		found[strings.Fields(text(r))[0]] = text(r)
	}
	if !strings.Contains(found["reader"], "read-only, tenant API only") || !strings.Contains(found["reader"], "from 127.0.0.1") {
		t.Errorf("reader row: %q", found["reader"])
	}
	if !strings.Contains(found["app"], "read-write, gateway only") || !strings.Contains(found["app"], "never") {
		t.Errorf("app row: %q", found["app"])
	}
	if !strings.Contains(found["soon"], "expired") {
		t.Errorf("soon row: %q", found["soon"])
	}
	if !strings.Contains(found["gateway"], "read-write, tenant API and gateway") {
		t.Errorf("older key row: %q", found["gateway"])
	}
	if n := e.countAudit(acme.ID, "api_key.create"); n != 4 {
		t.Errorf("%d api_key.create entries", n)
	}
}
