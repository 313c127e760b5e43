package tenancy

import (
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
