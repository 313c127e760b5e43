// Package config reads nself's settings from the environment and an optional
// .env file. Every value is checked at start: a wrong one stops the program
// with a message naming the variable and what it accepts.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/internal/totp"
)

// Config holds every setting. The names follow the product guide.
type Config struct {
	MultiTenancyEnabled       bool                 `env:"MULTI_TENANCY_ENABLED" envDefault:"true"`
	RoutingMethod             RoutingMethod        `env:"TENANT_ROUTING_METHOD" envDefault:"subdomain"`
	BaseDomain                Hostname             `env:"BASE_DOMAIN" envDefault:"localhost"`
	SubdomainWildcard         bool                 `env:"TENANT_SUBDOMAIN_WILDCARD" envDefault:"true"`
	CustomDomainsEnabled      bool                 `env:"TENANT_CUSTOM_DOMAINS_ENABLED" envDefault:"true"`
	RequireDomainVerification bool                 `env:"TENANT_REQUIRE_DOMAIN_VERIFICATION" envDefault:"true"`
	Strategy                  tenancy.StrategyMode `env:"TENANT_STRATEGY" envDefault:"rls"`
	SchemaPrefix              SchemaPrefix         `env:"TENANT_SCHEMA_PREFIX" envDefault:"tenant_"`
	// TenantMigrationsDir holds the operator's own tenant-table migrations,
	// applied after the built-in ones; empty for none.
	TenantMigrationsDir string `env:"TENANT_MIGRATIONS_DIR"`

	BillingEnabled       bool            `env:"BILLING_ENABLED" envDefault:"false"`
	BillingProvider      BillingProvider `env:"BILLING_PROVIDER" envDefault:"stripe"`
	StripeSecretKey      string          `env:"STRIPE_SECRET_KEY"`
	StripePublishableKey string          `env:"STRIPE_PUBLISHABLE_KEY"`
	StripeWebhookSecret  string          `env:"STRIPE_WEBHOOK_SECRET"`
	StripeAPIBase        HTTPURL         `env:"STRIPE_API_BASE"`
	// StripeTimeout bounds each call to Stripe, retries included, and
	// StripeMaxRetries is how often one that could not reach Stripe is
	// tried again.
	StripeTimeout    Duration `env:"STRIPE_TIMEOUT" envDefault:"10s"`
	StripeMaxRetries Retries  `env:"STRIPE_MAX_RETRIES" envDefault:"1"`

	DatabaseURL      string `env:"DATABASE_URL"`
	DatabaseAdminURL string `env:"DATABASE_ADMIN_URL"`
	// DatabaseBackupURL connects as a read-only role with BYPASSRLS for
	// `nself db backup`: the owner is bound by FORCE ROW LEVEL SECURITY and
	// cannot dump tenant rows.
	DatabaseBackupURL string `env:"DATABASE_BACKUP_URL"`
	// DatabaseRequestTimeout bounds each database call a web request
	// makes, so that a frozen database answers 503 in bounded time.
	DatabaseRequestTimeout Duration `env:"DATABASE_REQUEST_TIMEOUT" envDefault:"5s"`

	MinioEndpoint  HostPort `env:"MINIO_ENDPOINT"`
	MinioAccessKey string   `env:"MINIO_ACCESS_KEY"`
	MinioSecretKey string   `env:"MINIO_SECRET_KEY"`
	MinioUseSSL    bool     `env:"MINIO_USE_SSL" envDefault:"false"`
	// ExportSpoolDir is the server's private folder (0700) where portal
	// exports are built; nself-spool-UID in the system's temporary
	// directory when empty.
	ExportSpoolDir string `env:"EXPORT_SPOOL_DIR"`
	// MinioTimeout bounds each call to object storage (a streamed export
	// or import is bounded by its own progress instead).
	MinioTimeout Duration `env:"MINIO_TIMEOUT" envDefault:"10s"`

	SMTPHost     string `env:"SMTP_HOST"`
	SMTPPort     Port   `env:"SMTP_PORT" envDefault:"25"`
	SMTPUsername string `env:"SMTP_USERNAME"`
	SMTPPassword string `env:"SMTP_PASSWORD"`
	SMTPFrom     string `env:"SMTP_FROM"`
	// SMTPTimeout bounds connecting and each SMTP command.
	SMTPTimeout Duration `env:"SMTP_TIMEOUT" envDefault:"10s"`
	// The mail outbox tries a mail again after a failed attempt, waiting
	// MailRetryMin, doubled after each failure up to MailRetryMax, and
	// gives it up after MailMaxAttempts attempts (the console can send it
	// again).
	MailMaxAttempts Attempts `env:"MAIL_MAX_ATTEMPTS" envDefault:"30"`
	MailRetryMin    Duration `env:"MAIL_RETRY_MIN" envDefault:"30s"`
	MailRetryMax    Duration `env:"MAIL_RETRY_MAX" envDefault:"1h"`

	// DNSResolver is the DNS server used to verify domains; the system
	// resolver when empty.
	DNSResolver HostPort `env:"DNS_RESOLVER"`

	// SessionSecret signs and encrypts session cookies and CSRF tokens; at
	// least 32 characters. Every server process of one platform needs the
	// same value.
	SessionSecret string `env:"SESSION_SECRET"`
	// SessionSecretPrevious is the secret being replaced, during a
	// rollover: sessions and forms made with it stay valid.
	SessionSecretPrevious string `env:"SESSION_SECRET_PREVIOUS"`
	// SSOSecretKey seals tenants' single sign-on client secrets in the
	// database (AES-256-GCM); at least 32 characters. Empty: the key is
	// derived from SessionSecret, and with neither set single sign-on is
	// off.
	SSOSecretKey string `env:"SSO_SECRET_KEY"`
	// SSOTimeout bounds each call to a tenant's identity provider.
	SSOTimeout Duration `env:"SSO_TIMEOUT" envDefault:"10s"`
	// TOTPEncryptionKey encrypts people's authenticator secrets in the
	// database (AES-256-GCM): 32 random bytes, as 64 hex digits or in
	// base64. Every server process needs the same value, and changing it
	// makes enrolled authenticators unusable. Empty turns two-factor
	// authentication off.
	TOTPEncryptionKey string `env:"TOTP_ENCRYPTION_KEY"`
	// InternalServiceToken lets internal services call the tenant API for
	// any tenant named in X-Tenant-ID or X-Tenant-Slug; empty disables it.
	InternalServiceToken string `env:"INTERNAL_SERVICE_TOKEN"`
	// AdminHost serves the platform console; admin.BASE_DOMAIN by default.
	AdminHost Hostname `env:"ADMIN_HOST"`

	// PublicScheme and PublicPort shape the addresses printed and mailed to
	// people: https://acme.BASE_DOMAIN, or http://acme.localhost:8080 locally.
	PublicScheme Scheme `env:"PUBLIC_SCHEME" envDefault:"https"`
	PublicPort   Port   `env:"PUBLIC_PORT"`

	// TrustedProxies are the load balancers and proxies in front of the
	// server (comma-separated addresses or CIDRs); a request from one of
	// them is taken to come from the client its X-Forwarded-For names.
	TrustedProxies Prefixes `env:"TRUSTED_PROXIES"`

	// TLSAddr makes `nself serve` terminate TLS itself on this address
	// (--tls-addr overrides it); the CLI reads it too, to say how a
	// domain's certificate will be obtained. Empty: TLS is terminated
	// elsewhere.
	TLSAddr ListenAddr `env:"TLS_ADDR"`
	// TLSCertDir keeps ACME certificates and the account key (--cert-dir).
	TLSCertDir string `env:"TLS_CERT_DIR"`
	// ACMEDirectory is the ACME server certificates come from
	// (--acme-directory); Let's Encrypt when empty.
	ACMEDirectory HTTPURL `env:"ACME_DIRECTORY"`
	// ACMEEmail is the ACME account's contact (--acme-email).
	ACMEEmail string `env:"ACME_EMAIL"`
	// WildcardCertFile and WildcardKeyFile are the operator's certificate
	// for *.BASE_DOMAIN and its key, in PEM. With SubdomainWildcard
	// (TENANT_SUBDOMAIN_WILDCARD) and TLS served here, tenants' subdomains
	// get that one certificate instead of one ACME certificate each: Let's
	// Encrypt issues at most 50 certificates per registered domain a week.
	WildcardCertFile string `env:"TENANT_WILDCARD_CERT_FILE"`
	WildcardKeyFile  string `env:"TENANT_WILDCARD_KEY_FILE"`

	// ShutdownDrain is how long `nself serve` keeps serving after SIGTERM
	// with /readyz answering 503, before it closes its listener
	// (--shutdown-drain overrides it).
	ShutdownDrain Duration `env:"SHUTDOWN_DRAIN" envDefault:"5s"`

	Upstream Upstream
}

// Upstream is the application the gateway serves under tenants' hosts
// (UPSTREAM_URL; `nself serve --upstream` overrides it).
type Upstream struct {
	URL HTTPURL `env:"UPSTREAM_URL"`
	// Paths are the path prefixes proxied, comma-separated.
	Paths PathPrefixes `env:"UPSTREAM_PATHS" envDefault:"/api/"`
	// Auth is how the application learns who calls: headers or jwt.
	Auth UpstreamAuth `env:"UPSTREAM_AUTH" envDefault:"headers"`
	// JWTSecret signs HS256 tokens; JWTKeyFile holds an RSA or Ed25519
	// private key (PEM) that signs RS256 or EdDSA ones. One of them with
	// UPSTREAM_AUTH=jwt.
	JWTSecret  string   `env:"UPSTREAM_JWT_SECRET"`
	JWTKeyFile string   `env:"UPSTREAM_JWT_KEY_FILE"`
	JWTTTL     Duration `env:"UPSTREAM_JWT_TTL" envDefault:"5m"`
	// AnonymousRole lets requests without a credential through with this
	// role; empty answers them 401.
	AnonymousRole   string   `env:"UPSTREAM_ANONYMOUS_ROLE"`
	ConnectTimeout  Duration `env:"UPSTREAM_CONNECT_TIMEOUT" envDefault:"5s"`
	ResponseTimeout Duration `env:"UPSTREAM_RESPONSE_TIMEOUT" envDefault:"60s"`
	StreamTimeout   Duration `env:"UPSTREAM_STREAM_TIMEOUT" envDefault:"10m"`
}

// Check reports a gateway setting that contradicts another.
func (u Upstream) Check() error {
	switch {
	case u.Auth == "jwt" && u.JWTSecret == "" && u.JWTKeyFile == "":
		return errors.New("UPSTREAM_AUTH=jwt needs UPSTREAM_JWT_SECRET (HS256) or UPSTREAM_JWT_KEY_FILE (an RSA or Ed25519 private key)")
	case u.JWTSecret != "" && u.JWTKeyFile != "":
		return errors.New("set UPSTREAM_JWT_SECRET or UPSTREAM_JWT_KEY_FILE, not both: tokens are signed with one key")
	case u.Auth != "jwt" && (u.JWTSecret != "" || u.JWTKeyFile != ""):
		return errors.New("UPSTREAM_JWT_SECRET and UPSTREAM_JWT_KEY_FILE need UPSTREAM_AUTH=jwt: with headers, no token is signed")
	case u.JWTSecret != "" && len(u.JWTSecret) < 32:
		return fmt.Errorf("invalid UPSTREAM_JWT_SECRET: accepts a random value of at least 32 characters (got %d)", len(u.JWTSecret))
	case u.Auth == "jwt" && time.Duration(u.JWTTTL) < 10*time.Second:
		return fmt.Errorf("invalid UPSTREAM_JWT_TTL %s: accepts a duration of 10s or more, such as 5m", tenancy.Quote(time.Duration(u.JWTTTL).String()))
	}
	if err := tenancy.ValidateAnonymousRole(u.AnonymousRole); err != nil {
		return invalid("UPSTREAM_ANONYMOUS_ROLE", u.AnonymousRole, err.Error())
	}
	return nil
}

// UpstreamAuth is how the gateway tells the application who calls.
type UpstreamAuth string

func (a *UpstreamAuth) UnmarshalText(b []byte) error {
	switch string(b) {
	case "headers", "jwt":
		*a = UpstreamAuth(b)
		return nil
	}
	return acceptsError("accepts headers (X-Tenant-* and X-Hasura-* headers) or jwt (a signed token in Authorization)")
}

// reservedPaths are the platform's own: the gateway may not take them.
var reservedPaths = []string{"/v1", "/static", "/internal", "/webhooks", "/healthz", "/readyz"}

// PathPrefixes are comma-separated path prefixes such as /api/,/graphql.
type PathPrefixes []string

func (p *PathPrefixes) UnmarshalText(b []byte) error {
	var out []string
	for part := range strings.SplitSeq(string(b), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.HasPrefix(part, "/") || part == "/" || strings.ContainsAny(part, "?#% \t") || strings.Contains(part, "/.") {
			return acceptsError("accepts comma-separated path prefixes such as /api/,/graphql: each starts with /, is not / alone (the portal's pages are there), without ?, #, % or dot segments")
		}
		for _, r := range reservedPaths {
			if strings.HasPrefix(part, r) || strings.HasPrefix(r, part) {
				return acceptsError(fmt.Sprintf("accepts path prefixes that leave the platform's own paths alone: %s overlaps %s", part, r))
			}
		}
		out = append(out, part)
	}
	if len(out) == 0 {
		return acceptsError("accepts comma-separated path prefixes such as /api/")
	}
	*p = out
	return nil
}

// Load reads the settings from environ (KEY=VALUE strings, as os.Environ
// returns) over the file envFile, when it exists: the environment wins.
func Load(environ []string, envFile string) (*Config, error) {
	vars := map[string]string{}
	if envFile != "" {
		fileVars, err := godotenv.Read(envFile)
		switch {
		case err == nil:
			vars = fileVars
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("read %s: %w", envFile, err)
		}
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: vars}); err != nil {
		return nil, explain(err, vars)
	}
	if !c.Strategy.Valid() {
		return nil, invalid("TENANT_STRATEGY", string(c.Strategy), "accepts rls, schema, hybrid")
	}
	if c.RoutingMethod == "custom_domain" && !c.CustomDomainsEnabled {
		return nil, errors.New("TENANT_ROUTING_METHOD=custom_domain needs TENANT_CUSTOM_DOMAINS_ENABLED=true: otherwise no tenant could be reached")
	}
	if c.SessionSecret != "" && len(c.SessionSecret) < 32 {
		return nil, fmt.Errorf("invalid SESSION_SECRET: accepts a random value of at least 32 characters (got %d)", len(c.SessionSecret))
	}
	if c.SessionSecretPrevious != "" && (len(c.SessionSecretPrevious) < 32 || c.SessionSecret == "") {
		return nil, errors.New("invalid SESSION_SECRET_PREVIOUS: accepts the 32+ character secret SESSION_SECRET replaces, beside the new SESSION_SECRET")
	}
	if c.SSOSecretKey != "" && len(c.SSOSecretKey) < 32 {
		return nil, fmt.Errorf("invalid SSO_SECRET_KEY: accepts a random value of at least 32 characters (got %d)", len(c.SSOSecretKey))
	}
	if c.TOTPEncryptionKey != "" {
		if _, err := totp.ParseKey(c.TOTPEncryptionKey); err != nil {
			return nil, fmt.Errorf("invalid TOTP_ENCRYPTION_KEY: %w", err)
		}
	}
	if c.SSOTimeout <= 0 {
		return nil, invalid("SSO_TIMEOUT", time.Duration(c.SSOTimeout).String(), "accepts a duration above 0, such as 10s")
	}
	if c.InternalServiceToken != "" && len(c.InternalServiceToken) < 32 {
		return nil, fmt.Errorf("invalid INTERNAL_SERVICE_TOKEN: accepts a random value of at least 32 characters (got %d)", len(c.InternalServiceToken))
	}
	if (c.WildcardCertFile == "") != (c.WildcardKeyFile == "") {
		return nil, errors.New("TENANT_WILDCARD_CERT_FILE and TENANT_WILDCARD_KEY_FILE go together: set both (the certificate for *.BASE_DOMAIN and its key) or neither")
	}
	if err := c.Upstream.Check(); err != nil {
		return nil, err
	}
	if c.AdminHost == "" {
		c.AdminHost = Hostname("admin." + string(c.BaseDomain))
	}
	if c.MailRetryMin <= 0 {
		return nil, invalid("MAIL_RETRY_MIN", time.Duration(c.MailRetryMin).String(), "accepts a duration above 0, such as 30s")
	}
	if c.MailRetryMax < c.MailRetryMin {
		return nil, fmt.Errorf("invalid MAIL_RETRY_MAX: %s is shorter than MAIL_RETRY_MIN (%s)", time.Duration(c.MailRetryMax), time.Duration(c.MailRetryMin))
	}
	return &c, nil
}

// RequireDatabase reports a missing database setting.
func (c *Config) RequireDatabase() error {
	switch {
	case c.DatabaseURL == "":
		return errors.New("DATABASE_URL is not set: it must connect as the application role (see .env.example)")
	case c.DatabaseAdminURL == "":
		return errors.New("DATABASE_ADMIN_URL is not set: it must connect as the schema owner (see .env.example)")
	}
	return nil
}

// RequireStripeKeys checks, with billing on, that the Stripe keys are
// there and of one mode: a live secret key beside a test publishable key
// (or the reverse) would take real payments on pages set up for tests.
func (c *Config) RequireStripeKeys() error {
	mode := func(key string, prefixes ...string) string {
		for _, p := range prefixes {
			for _, m := range []string{"test", "live"} {
				if strings.HasPrefix(key, p+"_"+m+"_") {
					return m
				}
			}
		}
		return ""
	}
	secret := mode(c.StripeSecretKey, "sk", "rk")
	publishable := mode(c.StripePublishableKey, "pk")
	switch {
	case c.StripeSecretKey == "":
		return errors.New("STRIPE_SECRET_KEY is not set: billing needs it to call Stripe")
	case secret == "":
		return errors.New("invalid STRIPE_SECRET_KEY: accepts a Stripe secret key, sk_test_… or sk_live_… (or a restricted rk_… key)")
	case c.StripePublishableKey == "":
		return errors.New("STRIPE_PUBLISHABLE_KEY is not set: billing needs the publishable key of the same Stripe account (pk_test_… or pk_live_…)")
	case publishable == "":
		return errors.New("invalid STRIPE_PUBLISHABLE_KEY: accepts a Stripe publishable key, pk_test_… or pk_live_…")
	case secret != publishable:
		return fmt.Errorf("STRIPE_SECRET_KEY is a %s key but STRIPE_PUBLISHABLE_KEY is a %s key: use both keys of one mode", secret, publishable)
	}
	return nil
}

// TenantURL is the address of a tenant's portal: its subdomain, or
// BASE_DOMAIN itself on a single-tenant installation.
func (c *Config) TenantURL(slug string) string {
	host := slug + "." + string(c.BaseDomain)
	if !c.MultiTenancyEnabled {
		host = string(c.BaseDomain)
	}
	if c.PublicPort != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(int(c.PublicPort)))
	}
	return string(c.PublicScheme) + "://" + host
}

// AdminURL is the address of the platform console.
func (c *Config) AdminURL() string {
	host := string(c.AdminHost)
	if c.PublicPort != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(int(c.PublicPort)))
	}
	return string(c.PublicScheme) + "://" + host
}

// LetsEncryptDirectory is the ACME directory used when ACME_DIRECTORY is
// empty.
const LetsEncryptDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// CertificateAuthority names where certificates come from when nself
// serves TLS: Let's Encrypt for its directory, otherwise the ACME server's
// directory URL.
func (c *Config) CertificateAuthority() string {
	if c.ACMEDirectory == "" || c.ACMEDirectory == LetsEncryptDirectory {
		return "Let's Encrypt"
	}
	return "ACME (" + string(c.ACMEDirectory) + ")"
}

// SubdomainsRouted reports whether tenants are reached at their subdomains
// of BASE_DOMAIN.
func (c *Config) SubdomainsRouted() bool {
	return c.MultiTenancyEnabled && c.RoutingMethod != "custom_domain"
}

// explain turns the library's parse errors, which name struct fields, into
// one line naming the variable, its value and what it accepts.
func explain(err error, vars map[string]string) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var pe env.ParseError
	if errors.As(err, &pe) {
		name := envName(pe.Name)
		accepts := pe.Err.Error()
		var a acceptsError
		if errors.As(pe.Err, &a) {
			accepts = string(a)
		} else if pe.Type.Kind() == reflect.Bool {
			accepts = "accepts true or false"
		}
		return invalid(name, vars[name], accepts)
	}
	return err
}

func invalid(name, value, accepts string) error {
	return fmt.Errorf("invalid %s %s: %s", name, tenancy.Quote(value), accepts)
}

// envName finds the variable behind a Config field, or a field of a
// group of settings in it (Upstream).
func envName(field string) string {
	f, ok := findField(reflect.TypeOf(Config{}), field)
	if !ok {
		return field
	}
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
}

func findField(t reflect.Type, name string) (reflect.StructField, bool) {
	if f, ok := t.FieldByName(name); ok && f.Tag.Get("env") != "" {
		return f, true
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			if found, ok := findField(f.Type, name); ok {
				return found, true
			}
		}
	}
	return reflect.StructField{}, false
}

// acceptsError says what a setting accepts.
type acceptsError string

func (e acceptsError) Error() string { return string(e) }

// RoutingMethod is how requests find their tenant.
type RoutingMethod string

func (m *RoutingMethod) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "subdomain", "custom_domain", "both":
		*m = RoutingMethod(s)
		return nil
	}
	return acceptsError("accepts subdomain, custom_domain, both")
}

// BillingProvider names the payment provider.
type BillingProvider string

func (p *BillingProvider) UnmarshalText(b []byte) error {
	if string(b) != "stripe" {
		return acceptsError("accepts stripe")
	}
	*p = BillingProvider(b)
	return nil
}

// Scheme is http or https.
type Scheme string

func (s *Scheme) UnmarshalText(b []byte) error {
	switch string(b) {
	case "http", "https":
		*s = Scheme(b)
		return nil
	}
	return acceptsError("accepts http, https")
}

// Port is a TCP port; 0 means the default for the scheme.
type Port int

func (p *Port) UnmarshalText(b []byte) error {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 || n > 65535 {
		return acceptsError("accepts a port number from 1 to 65535")
	}
	*p = Port(n)
	return nil
}

var hostnameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Hostname is a lowercase DNS name without port or scheme.
type Hostname string

func (h *Hostname) UnmarshalText(b []byte) error {
	s := string(b)
	if len(s) > 253 || !hostnameRE.MatchString(s) {
		return acceptsError("accepts a lowercase host name such as yourapp.com, without scheme or port")
	}
	*h = Hostname(s)
	return nil
}

// HostPort is host:port.
type HostPort string

func (h *HostPort) UnmarshalText(b []byte) error {
	host, port, err := net.SplitHostPort(string(b))
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return acceptsError("accepts host:port, such as 127.0.0.1:53")
	}
	*h = HostPort(b)
	return nil
}

// ListenAddr is an address to listen on, host:port or :port.
type ListenAddr string

func (a *ListenAddr) UnmarshalText(b []byte) error {
	_, port, err := net.SplitHostPort(string(b))
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return acceptsError("accepts host:port or :port to listen on, such as :443")
	}
	*a = ListenAddr(b)
	return nil
}

// Prefixes are IP addresses and CIDR ranges, comma-separated.
type Prefixes []netip.Prefix

func (p *Prefixes) UnmarshalText(b []byte) error {
	var out Prefixes
	for _, f := range strings.Split(string(b), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if pr, err := netip.ParsePrefix(f); err == nil {
			out = append(out, pr.Masked())
		} else if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			return acceptsError("accepts IP addresses and CIDR ranges, comma-separated, such as 10.0.0.0/8,192.0.2.7")
		}
	}
	*p = out
	return nil
}

// HTTPURL is an absolute http or https URL.
type HTTPURL string

func (u *HTTPURL) UnmarshalText(b []byte) error {
	p, err := url.Parse(string(b))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return acceptsError("accepts an http or https URL, such as http://127.0.0.1:8000")
	}
	*u = HTTPURL(b)
	return nil
}

// Duration is a length of time such as 10s, 1m30s or 0.
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return acceptsError("accepts a duration such as 10s, 1m30s or 0")
	}
	*d = Duration(v)
	return nil
}

// Attempts is how many times a mail is tried before it is given up.
type Attempts int

func (n *Attempts) UnmarshalText(b []byte) error {
	v, err := strconv.Atoi(string(b))
	if err != nil || v < 1 || v > 1000 {
		return acceptsError("accepts a number of attempts from 1 to 1000")
	}
	*n = Attempts(v)
	return nil
}

// MailRetry is the outbox's retry policy.
func (c *Config) MailRetry() tenancy.MailRetry {
	return tenancy.MailRetry{MinDelay: time.Duration(c.MailRetryMin), MaxDelay: time.Duration(c.MailRetryMax), MaxAttempts: int(c.MailMaxAttempts)}
}

// Retries is how many times a failed call is tried again.
type Retries int

func (r *Retries) UnmarshalText(b []byte) error {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 || n > 5 {
		return acceptsError("accepts a number of retries from 0 to 5")
	}
	*r = Retries(n)
	return nil
}

var schemaPrefixRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// SchemaPrefix starts the names of schema-per-tenant schemas.
type SchemaPrefix string

func (p *SchemaPrefix) UnmarshalText(b []byte) error {
	if !schemaPrefixRE.MatchString(string(b)) || strings.HasPrefix(string(b), "pg_") {
		return acceptsError("accepts lowercase letters, digits and underscores, starting with a letter or underscore, not pg_, at most 41 characters")
	}
	*p = SchemaPrefix(b)
	return nil
}
