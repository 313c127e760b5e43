package tenancy

import (
	"fmt"
	"net/url"
	"time"
)

// The gateway proxies a tenant's application paths to the application
// (UPSTREAM_URL), telling it who calls: the tenant from the host, the user
// and role from the caller's credential. What it tells is decided here.

// HasuraRoleAPIKey is the role a request made with an API key acts as: a
// key belongs to its tenant, not to a person, so it carries no user id.
const HasuraRoleAPIKey = "api_key"

// UpstreamCaller is who a proxied request acts as, as the application is
// told: in headers (X-Tenant-Id, X-Hasura-Role…) or in a signed JWT carrying
// Hasura's claims.
type UpstreamCaller struct {
	TenantID   string
	TenantSlug string
	// UserID is the signed-in member; empty for an API key or an
	// anonymous caller.
	UserID string
	// APIKeyID is the key that authenticated the request, if one did.
	APIKeyID string
	// Role is the Hasura role: a member's role (owner, admin, member,
	// guest), HasuraRoleAPIKey, or the anonymous role.
	Role string
}

// MemberCaller is a signed-in member's caller: their role is their Hasura
// role, owner, admin, member or guest.
func MemberCaller(t *Tenant, id *Identity) UpstreamCaller {
	return UpstreamCaller{TenantID: t.ID, TenantSlug: t.Slug, UserID: id.User.ID, Role: string(id.Role)}
}

// APIKeyCaller is the caller behind an API key of the tenant.
func APIKeyCaller(t *Tenant, k *APIKey) UpstreamCaller {
	return UpstreamCaller{TenantID: t.ID, TenantSlug: t.Slug, APIKeyID: k.ID, Role: HasuraRoleAPIKey}
}

// AnonymousCaller is a caller without a credential, let through with the
// tenant and the configured anonymous role only.
func AnonymousCaller(t *Tenant, role string) UpstreamCaller {
	return UpstreamCaller{TenantID: t.ID, TenantSlug: t.Slug, Role: role}
}

// Key identifies the caller's claims, so a token signed for them can be
// reused while it is fresh.
func (c UpstreamCaller) Key() string {
	return c.TenantID + "|" + c.TenantSlug + "|" + c.UserID + "|" + c.APIKeyID + "|" + c.Role
}

// UpstreamHeaders are the headers the gateway sets in headers mode, in the
// order they are documented. Empty values are not sent.
func (c UpstreamCaller) UpstreamHeaders() [][2]string {
	h := make([][2]string, 0, 6)
	for _, kv := range [][2]string{
		{"X-Tenant-Id", c.TenantID},
		{"X-Tenant-Slug", c.TenantSlug},
		{"X-Hasura-Tenant-Id", c.TenantID},
		{"X-Hasura-Role", c.Role},
		{"X-Hasura-User-Id", c.UserID},
		{"X-Hasura-Api-Key-Id", c.APIKeyID},
	} {
		if kv[1] != "" {
			h = append(h, kv)
		}
	}
	return h
}

// PreflightCaller is the caller of a CORS preflight, which browsers send
// without credentials: the tenant alone, no role.
func PreflightCaller(t *Tenant) UpstreamCaller {
	return UpstreamCaller{TenantID: t.ID, TenantSlug: t.Slug}
}

// HasuraClaimsNamespace is where Hasura reads its session variables in a
// JWT (HASURA_GRAPHQL_JWT_SECRET without claims_namespace).
const HasuraClaimsNamespace = "https://hasura.io/jwt/claims"

// UpstreamTokenIssuer names nself as the issuer of the tokens it signs.
const UpstreamTokenIssuer = "nself"

// UpstreamClaims are the claims of a token the gateway signs for the
// application: the registered ones and Hasura's namespace. Hasura reads
// x-hasura-default-role and x-hasura-allowed-roles and passes every other
// x-hasura-* value to permissions as a session variable.
func (c UpstreamCaller) UpstreamClaims(now time.Time, ttl time.Duration) map[string]any {
	hasura := map[string]any{
		"x-hasura-allowed-roles": []string{c.Role},
		"x-hasura-default-role":  c.Role,
		"x-hasura-tenant-id":     c.TenantID,
		"x-hasura-tenant-slug":   c.TenantSlug,
	}
	sub := "tenant:" + c.TenantID
	if c.UserID != "" {
		hasura["x-hasura-user-id"] = c.UserID
		sub = c.UserID
	}
	if c.APIKeyID != "" {
		hasura["x-hasura-api-key-id"] = c.APIKeyID
		sub = "api_key:" + c.APIKeyID
	}
	return map[string]any{
		"iss":                 UpstreamTokenIssuer,
		"sub":                 sub,
		"iat":                 now.Unix(),
		"nbf":                 now.Add(-30 * time.Second).Unix(),
		"exp":                 now.Add(ttl).Unix(),
		HasuraClaimsNamespace: hasura,
	}
}

// IsUpstreamContextHeader reports whether a request header is one only the
// gateway may set: every X-Tenant-* and X-Hasura-* header, in any case,
// and with underscores for dashes, since some servers read X_Hasura_Role
// as X-Hasura-Role.
func IsUpstreamContextHeader(name string) bool {
	return hasHeaderPrefix(name, "x-tenant-") || hasHeaderPrefix(name, "x-hasura-")
}

// ValidateUpstreamURL refuses the parts of UPSTREAM_URL the gateway would
// not send on: a query, a fragment, and a user name or password (the
// application learns who calls from the gateway, not from the URL).
func ValidateUpstreamURL(u *url.URL) error {
	switch {
	case u.User != nil:
		return Errorf(EINVALID, "UPSTREAM_URL %s: leave out the user name and password; the gateway tells the application who calls", Quote(u.Redacted()))
	case u.RawQuery != "" || u.ForceQuery:
		return Errorf(EINVALID, "UPSTREAM_URL %s: leave out the query; each request's own goes on", Quote(u.String()))
	case u.Fragment != "":
		return Errorf(EINVALID, "UPSTREAM_URL %s: leave out the fragment", Quote(u.String()))
	}
	return nil
}

// IsForwardingHeader reports whether a request header tells where the
// request came from or how it arrived: the gateway says that itself
// (X-Forwarded-For, -Host, -Proto), and the application must not read a
// client's word for it under another name either. Forwarded, every
// X-Forwarded-*, and the other names proxies and frameworks trust.
func IsForwardingHeader(name string) bool {
	if hasHeaderPrefix(name, "x-forwarded-") {
		return true
	}
	for _, h := range clientForwardingHeaders {
		if len(name) == len(h) && hasHeaderPrefix(name, h) {
			return true
		}
	}
	return false
}

var clientForwardingHeaders = []string{"forwarded", "x-real-ip", "true-client-ip", "x-client-ip", "client-ip",
	"x-cluster-client-ip", "cf-connecting-ip", "fastly-client-ip", "x-original-forwarded-for", "x-original-url",
	"x-rewrite-url", "x-original-host", "x-host", "x-url-scheme", "front-end-https", "x-proxyuser-ip"}

// hasHeaderPrefix compares without case, "_" matching "-", and without
// allocating: it runs for every header of every proxied request.
func hasHeaderPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// ValidateAnonymousRole checks UPSTREAM_ANONYMOUS_ROLE: a Hasura role name
// that is not one a credential gives.
func ValidateAnonymousRole(role string) error {
	if role == "" {
		return nil
	}
	if len(role) > 63 {
		return fmt.Errorf("accepts a role name of at most 63 characters")
	}
	for _, r := range role {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("accepts a role name of letters, digits, _ and -, at most 63 characters, such as anonymous")
		}
	}
	switch Role(role) {
	case RoleOwner, RoleAdmin, RoleMember, RoleGuest:
		return fmt.Errorf("names a member's role: callers without a credential cannot act as %s", role)
	}
	if role == HasuraRoleAPIKey {
		return fmt.Errorf("is the role of API keys: callers without a credential cannot act as it")
	}
	return nil
}
