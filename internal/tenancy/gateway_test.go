package tenancy

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestIsUpstreamContextHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Tenant-Id": true, "x-tenant-slug": true, "X-TENANT-ANYTHING": true, "X_Tenant_Id": true,
		"X-Hasura-Role": true, "x-hasura-admin-secret": true, "X_HASURA_USER_ID": true, "x-hasura-": true,
		"X-Tenant": false, "X-Tenants-Id": false, "X-Hasura": false, "Authorization": false, "": false, "X-Forwarded-For": false,
	} {
		if got := IsUpstreamContextHeader(name); got != want {
			t.Errorf("%q: %v, want %v", name, got, want)
		}
	}
}

func TestValidateAnonymousRole(t *testing.T) {
	for role, ok := range map[string]bool{
		"": true, "anonymous": true, "public-read_1": true,
		"owner": false, "admin": false, "member": false, "guest": false, "api_key": false,
		"two words": false, "röle": false, string(make([]byte, 64)): false,
	} {
		if err := ValidateAnonymousRole(role); (err == nil) != ok {
			t.Errorf("%q: %v", role, err)
		}
	}
}

func TestUpstreamClaims(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tn := &Tenant{ID: "t1", Slug: "acme"}
	member := MemberCaller(tn, &Identity{User: &User{ID: "u1"}, Role: RoleGuest})
	c := member.UpstreamClaims(now, time.Minute)
	h := c[HasuraClaimsNamespace].(map[string]any)
	if c["sub"] != "u1" || c["exp"] != now.Add(time.Minute).Unix() || h["x-hasura-default-role"] != "guest" ||
		h["x-hasura-user-id"] != "u1" || h["x-hasura-tenant-id"] != "t1" || len(h["x-hasura-allowed-roles"].([]string)) != 1 {
		t.Errorf("member claims %v", c)
	}
	key := APIKeyCaller(tn, &APIKey{ID: "k1"}).UpstreamClaims(now, time.Minute)
	if h := key[HasuraClaimsNamespace].(map[string]any); key["sub"] != "api_key:k1" || h["x-hasura-user-id"] != nil || h["x-hasura-default-role"] != HasuraRoleAPIKey {
		t.Errorf("key claims %v", key)
	}
	if member.Key() == AnonymousCaller(tn, "guest").Key() {
		t.Error("a member and an anonymous caller share a token")
	}
}

func TestIsForwardingHeader(t *testing.T) {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "x-forwarded-port", "X_Forwarded_Ssl", "X-Real-IP", "True-Client-Ip", "X-Original-URL", "CF-Connecting-IP"} {
		if !IsForwardingHeader(h) {
			t.Errorf("%s is a forwarding header", h)
		}
	}
	for _, h := range []string{"Accept", "X-Request-Id", "X-Real", "Origin", "X-Forwarded", "User-Agent"} {
		if IsForwardingHeader(h) {
			t.Errorf("%s is not a forwarding header", h)
		}
	}
}

func TestValidateUpstreamURL(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8000":          "",
		"https://app.internal/v1/":       "",
		"http://user:pw@127.0.0.1:8000":  "leave out the user name and password",
		"http://127.0.0.1:8000/?a=1":     "leave out the query",
		"http://127.0.0.1:8000/?":        "leave out the query",
		"http://127.0.0.1:8000/#section": "leave out the fragment",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		err = ValidateUpstreamURL(u)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) || strings.Contains(fmt.Sprint(err), "pw") {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}
