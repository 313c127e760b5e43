package tenancy

import (
	"context"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Single sign-on: a tenant may sign its people in with its own OpenID
// Connect provider. The rules here decide what a configuration may hold,
// whom a provider's answer signs in, and when a password still may.

// SSOFlowTTL is how long a sign-in started at the provider may take to
// come back.
const SSOFlowTTL = 10 * time.Minute

// SSOConfig is a tenant's identity provider.
type SSOConfig struct {
	TenantID string
	// Issuer is the provider's issuer URL; discovery is read below it.
	Issuer   string
	ClientID string
	// ClientSecret is in the clear only in memory: it is stored sealed.
	ClientSecret string
	// DisplayName names the provider on the sign-in page.
	DisplayName string
	// Domains are the email domains the provider signs in for, lower case.
	Domains []string
	// DefaultRole is given to a person who signs in for the first time.
	DefaultRole Role
	// RequireSSO refuses password sign-in to all but owners.
	RequireSSO bool
	UpdatedAt  time.Time
	// SecretUnreadable is set when the stored secret no longer opens (the
	// key setting changed): the owner must enter it again.
	SecretUnreadable bool
}

// SSOInput is what an owner types into the provider form.
type SSOInput struct {
	Issuer, ClientID, ClientSecret, DisplayName, Domains, DefaultRole string
	RequireSSO                                                        bool
}

// ParseSSOConfig validates an owner's input. A blank secret keeps the
// stored one (keptSecret says whether there is one): the form never shows
// it again. Every wrong field is reported, by name.
func ParseSSOConfig(in SSOInput, keptSecret bool) (*SSOConfig, map[string]string) {
	errs := map[string]string{}
	c := &SSOConfig{
		Issuer:       strings.TrimSpace(in.Issuer),
		ClientID:     strings.TrimSpace(in.ClientID),
		ClientSecret: strings.TrimSpace(in.ClientSecret),
		DisplayName:  strings.TrimSpace(in.DisplayName),
		RequireSSO:   in.RequireSSO,
	}
	if err := ValidateIssuer(c.Issuer); err != nil {
		errs["issuer"] = ErrorMessage(err)
	}
	switch {
	case c.ClientID == "":
		errs["client_id"] = "Enter the client id the provider gave this application."
	case len(c.ClientID) > 255 || strings.ContainsFunc(c.ClientID, isControl):
		errs["client_id"] = "A client id is at most 255 characters, without control characters."
	}
	switch {
	case c.ClientSecret == "" && !keptSecret:
		errs["client_secret"] = "Enter the client secret the provider gave this application."
	case len(c.ClientSecret) > 1000 || strings.ContainsFunc(c.ClientSecret, isControl):
		errs["client_secret"] = "A client secret is at most 1000 characters, without control characters."
	}
	switch {
	case c.DisplayName == "":
		errs["display_name"] = "Enter the name people know the provider by, such as Okta or Google Workspace."
	case len([]rune(c.DisplayName)) > 60 || strings.ContainsFunc(c.DisplayName, isControl):
		errs["display_name"] = "The name is at most 60 characters, on one line."
	}
	domains, err := ParseEmailDomains(in.Domains)
	if err != nil {
		errs["domains"] = ErrorMessage(err)
	}
	c.Domains = domains
	switch r := Role(in.DefaultRole); r {
	case RoleAdmin, RoleMember, RoleGuest:
		c.DefaultRole = r
	case RoleOwner:
		errs["default_role"] = "New people cannot become owners by signing in: choose admin, member or guest."
	default:
		errs["default_role"] = "Choose admin, member or guest."
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// ValidateIssuer accepts an https URL, or an http one on this machine
// (localhost, 127.0.0.1, ::1) for development: a provider reached in the
// clear elsewhere could be impersonated on the way.
func ValidateIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(issuer) > 500 {
		return FieldErrorf(EINVALID, "issuer", "Enter the issuer URL, such as https://login.example.com (no query or #).")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return FieldErrorf(EINVALID, "issuer", "The issuer must use https:// (http:// is accepted only for a provider on this machine).")
	}
	return FieldErrorf(EINVALID, "issuer", "Enter the issuer URL, starting with https://.")
}

// ParseEmailDomains reads a list of email domains separated by commas,
// spaces or lines: lower-cased, without duplicates, each a name with a dot.
func ParseEmailDomains(s string) ([]string, error) {
	var out []string
	for _, d := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' || r == ';' }) {
		d = strings.TrimPrefix(strings.TrimSuffix(d, "."), "@")
		if !validEmailDomain(d) {
			return nil, FieldErrorf(EINVALID, "domains", "%s is not an email domain such as example.com.", Quote(d))
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) > 50 {
		return nil, FieldErrorf(EINVALID, "domains", "At most 50 domains.")
	}
	return out, nil
}

func validEmailDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Covers reports whether the provider signs in the address's domain.
func (c *SSOConfig) Covers(email string) bool {
	at := strings.LastIndexByte(email, '@')
	return c != nil && at > 0 && slices.Contains(c.Domains, strings.ToLower(email[at+1:]))
}

// SSOIdentity is who a provider's verified ID token (and its userinfo)
// says signed in.
type SSOIdentity struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// CheckSSOIdentity decides whether a provider's answer may sign someone in
// to the tenant: only by an email address the provider has verified (else
// anyone could register the address of a member at the provider and become
// them here), and, when the owner named domains, one of those.
func CheckSSOIdentity(c *SSOConfig, who SSOIdentity) (email string, err error) {
	email, err = NormalizeEmail(who.Email)
	if err != nil {
		return "", Errorf(EFORBIDDEN, "%s did not send an email address for your account, so you cannot be matched to a member of this workspace. Ask your administrator to release the email claim to this application.", c.DisplayName)
	}
	if !who.EmailVerified {
		return email, Errorf(EFORBIDDEN, "%s says your email address %s is not verified. Verify it there, then sign in again.", c.DisplayName, email)
	}
	if len(c.Domains) > 0 && !c.Covers(email) {
		return email, Errorf(EFORBIDDEN, "%s is not in a domain that %s signs in for this workspace (%s).", email, c.DisplayName, strings.Join(c.Domains, ", "))
	}
	return email, nil
}

// SSOSeatsFull is the refusal of a first sign-in when the plan has no
// room: the person cannot fix it, an owner can.
func SSOSeatsFull(tenant string, p Plan) error {
	return Errorf(EQUOTA, "%s has no room for another member on its plan (%s allows %s). Ask an owner to make room or move to a larger plan, then sign in again.",
		tenant, Quote(p.Name), plural(p.MaxUsers, "member"))
}

// PasswordSignIn decides whether someone with role may sign in with a
// password. With single sign-on required only owners may, so that a
// broken provider cannot lock the tenant out; they are warned each time.
func PasswordSignIn(c *SSOConfig, role Role) (warning string, err error) {
	if c == nil || !c.RequireSSO {
		return "", nil
	}
	if role == RoleOwner {
		return "This workspace requires single sign-on with " + c.DisplayName + ". You signed in with your password because you are an owner; use it only when " + c.DisplayName + " is not working.", nil
	}
	return "", Errorf(EFORBIDDEN, "This workspace signs in with %s only. Use “Sign in with %s”.", c.DisplayName, c.DisplayName)
}

// SSODiscovery is what a provider's discovery document (and key set)
// says, for the owner's "Test connection".
type SSODiscovery struct {
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	UserinfoEndpoint      string
	JWKSURI               string
	Keys                  int
	Scopes                []string
	SigningAlgs           []string
	PKCEMethods           []string
}

// SSOFlow is what binds a provider's answer to the browser that asked:
// the state it must echo, the nonce the ID token must carry and the PKCE
// verifier only this server knows.
type SSOFlow struct {
	State, Nonce, Verifier string
}

// SSOProvider talks OpenID Connect to tenants' providers. Every call is
// bounded in time and never made inside a database transaction.
type SSOProvider interface {
	// Discover reads the issuer's discovery document and key set.
	Discover(ctx context.Context, issuer string) (*SSODiscovery, error)
	// AuthURL is where to send the browser to sign in.
	AuthURL(ctx context.Context, c *SSOConfig, redirectURL string, f SSOFlow) (string, error)
	// Exchange trades the code for tokens and returns who the verified ID
	// token names: issued by c.Issuer, for c.ClientID, carrying f.Nonce.
	Exchange(ctx context.Context, c *SSOConfig, redirectURL, code string, f SSOFlow) (*SSOIdentity, error)
}

// Sealer encrypts secrets for storage; context binds a sealed value to
// where it belongs (a tenant), so it cannot be moved elsewhere.
type Sealer interface {
	Seal(plain []byte, context string) ([]byte, error)
	Open(sealed []byte, context string) ([]byte, error)
}

// SSOService stores tenants' providers and signs people in with them.
type SSOService interface {
	// SSOConfig returns the tenant's provider with its secret opened;
	// ENOTFOUND when there is none.
	SSOConfig(ctx context.Context, tenantID string) (*SSOConfig, error)
	// SignInProvider returns the provider as the sign-in page shows it,
	// without its secret; nil when the tenant has none. Anonymous visitors
	// reach it: it is answered from memory where it can be.
	SignInProvider(ctx context.Context, tenantID string) (*SSOConfig, error)
	// SaveSSOConfig stores the provider; a blank ClientSecret keeps the
	// stored one. Turning RequireSSO on ends the password sessions of
	// everyone but owners.
	SaveSSOConfig(ctx context.Context, tenantID string, c *SSOConfig) (*SSOConfig, error)
	// DeleteSSOConfig removes the provider: everyone signs in with a
	// password again.
	DeleteSSOConfig(ctx context.Context, tenantID string) error
	// SSOSignIn opens a session for the tenant's user with the identity's
	// email, creating the user with the default role when unknown and the
	// plan has room.
	SSOSignIn(ctx context.Context, tenantID string, who SSOIdentity, meta SessionMeta) (token string, id *Identity, created bool, err error)
	// RecordSSOEvent adds an entry about single sign-on to the audit log,
	// for what happens outside the service (a refused answer).
	RecordSSOEvent(ctx context.Context, tenantID, action, target, summary string) error
}
