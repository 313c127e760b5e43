package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/config"
)

func TestLoadDefaultsAndFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ".env")
	os.WriteFile(file, []byte("BASE_DOMAIN=yourapp.com\nTENANT_STRATEGY=hybrid\nPUBLIC_PORT=8443\n"), 0o600)
	c, err := config.Load([]string{"TENANT_STRATEGY=schema"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseDomain != "yourapp.com" || c.Strategy != "schema" || c.RoutingMethod != "subdomain" || c.SchemaPrefix != "tenant_" || !c.MultiTenancyEnabled {
		t.Errorf("config = %+v", c)
	}
	if got := c.TenantURL("acme"); got != "https://acme.yourapp.com:8443" {
		t.Errorf("TenantURL = %q", got)
	}
	single, _ := config.Load([]string{"MULTI_TENANCY_ENABLED=false"}, file)
	if got := single.TenantURL("default"); got != "https://yourapp.com:8443" {
		t.Errorf("single-tenant TenantURL = %q", got)
	}
	// Outside calls are bounded by default; shutdown drains for a while.
	if c.StripeTimeout != config.Duration(10*time.Second) || c.StripeMaxRetries != 1 || c.SMTPTimeout != config.Duration(10*time.Second) ||
		c.MinioTimeout != config.Duration(10*time.Second) || c.DatabaseRequestTimeout != config.Duration(5*time.Second) ||
		c.ShutdownDrain != config.Duration(5*time.Second) {
		t.Errorf("timeouts = %+v", c)
	}
	if r := c.MailRetry(); r.MinDelay != 30*time.Second || r.MaxDelay != time.Hour || r.MaxAttempts != 30 {
		t.Errorf("mail retry = %+v", r)
	}
	if _, err := config.Load(nil, filepath.Join(dir, "missing.env")); err != nil {
		t.Errorf("a missing .env file is fine: %v", err)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	for kv, want := range map[string]string{
		"TENANT_ROUTING_METHOD=path":   `invalid TENANT_ROUTING_METHOD "path": accepts subdomain, custom_domain, both`,
		"TENANT_STRATEGY=shard":        `invalid TENANT_STRATEGY "shard": accepts rls, schema, hybrid`,
		"TENANT_SCHEMA_PREFIX=Bad-":    `invalid TENANT_SCHEMA_PREFIX "Bad-"`,
		"TENANT_SCHEMA_PREFIX=pg_x":    `invalid TENANT_SCHEMA_PREFIX "pg_x"`,
		"BILLING_ENABLED=yes please":   `invalid BILLING_ENABLED "yes please": accepts true or false`,
		"BILLING_PROVIDER=paypal":      `invalid BILLING_PROVIDER "paypal": accepts stripe`,
		"BASE_DOMAIN=Example.COM":      `invalid BASE_DOMAIN "Example.COM"`,
		"BASE_DOMAIN=example.com:80":   `invalid BASE_DOMAIN`,
		"SMTP_PORT=99999":              `invalid SMTP_PORT "99999": accepts a port number`,
		"STRIPE_API_BASE=localhost":    `invalid STRIPE_API_BASE "localhost"`,
		"MINIO_ENDPOINT=http://x:9000": `invalid MINIO_ENDPOINT`,
		"PUBLIC_SCHEME=ftp":            `invalid PUBLIC_SCHEME "ftp": accepts http, https`,
		"STRIPE_TIMEOUT=10":            `invalid STRIPE_TIMEOUT "10": accepts a duration such as 10s`,
		"SHUTDOWN_DRAIN=-1s":           `invalid SHUTDOWN_DRAIN "-1s": accepts a duration`,
		"STRIPE_MAX_RETRIES=many":      `invalid STRIPE_MAX_RETRIES "many": accepts a number of retries from 0 to 5`,
		"MAIL_MAX_ATTEMPTS=0":          `invalid MAIL_MAX_ATTEMPTS "0": accepts a number of attempts from 1 to 1000`,
		"MAIL_RETRY_MIN=0s":            `invalid MAIL_RETRY_MIN "0s": accepts a duration above 0`,
		"MAIL_RETRY_MAX=10s":           `invalid MAIL_RETRY_MAX: 10s is shorter than MAIL_RETRY_MIN (30s)`,
		"TLS_ADDR=443":                 `invalid TLS_ADDR "443": accepts host:port or :port to listen on, such as :443`,
		"ACME_DIRECTORY=letsencrypt":   `invalid ACME_DIRECTORY "letsencrypt"`,
		"TENANT_WILDCARD_KEY_FILE=k":   `TENANT_WILDCARD_CERT_FILE and TENANT_WILDCARD_KEY_FILE go together`,
		"SSO_SECRET_KEY=short":         `invalid SSO_SECRET_KEY: accepts a random value of at least 32 characters (got 5)`,
		"SSO_TIMEOUT=0s":               `invalid SSO_TIMEOUT "0s": accepts a duration above 0`,
		"TOTP_ENCRYPTION_KEY=abc":      `invalid TOTP_ENCRYPTION_KEY: accepts 32 random bytes, as 64 hex digits or in base64`,
	} {
		_, err := config.Load([]string{kv}, "")
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", kv, err, want)
		}
	}
}

func TestCustomDomainRoutingNeedsCustomDomains(t *testing.T) {
	_, err := config.Load([]string{"TENANT_ROUTING_METHOD=custom_domain", "TENANT_CUSTOM_DOMAINS_ENABLED=false"}, "")
	if err == nil || !strings.Contains(err.Error(), "TENANT_CUSTOM_DOMAINS_ENABLED=true") {
		t.Errorf("%v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := config.Load([]string{"TRUSTED_PROXIES=10.0.0.0/8, 192.0.2.7,::1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.TrustedProxies); got != "[10.0.0.0/8 192.0.2.7/32 ::1/128]" {
		t.Errorf("TRUSTED_PROXIES = %s", got)
	}
	if _, err := config.Load([]string{"TRUSTED_PROXIES=lb.internal"}, ""); err == nil || !strings.Contains(err.Error(), `invalid TRUSTED_PROXIES "lb.internal"`) {
		t.Errorf("a host name: %v", err)
	}
}

func TestRequireDatabase(t *testing.T) {
	c, _ := config.Load(nil, "")
	if err := c.RequireDatabase(); err == nil || !strings.Contains(err.Error(), "DATABASE_URL is not set") {
		t.Errorf("%v", err)
	}
}

// With billing on, the Stripe keys must be there and of one mode.
func TestRequireStripeKeys(t *testing.T) {
	for _, c := range []struct {
		secret, publishable, want string
	}{
		{"sk_test_1", "pk_test_1", ""},
		{"sk_live_1", "pk_live_1", ""},
		{"rk_test_1", "pk_test_1", ""},
		{"", "pk_test_1", "STRIPE_SECRET_KEY is not set"},
		{"sk_test_1", "", "STRIPE_PUBLISHABLE_KEY is not set"},
		{"sk_test_1", "pk_test_...", ""},
		{"sk_test_1", "pk_...", "invalid STRIPE_PUBLISHABLE_KEY"},
		{"whsec_1", "pk_test_1", "invalid STRIPE_SECRET_KEY"},
		{"sk_live_1", "pk_test_1", "STRIPE_SECRET_KEY is a live key but STRIPE_PUBLISHABLE_KEY is a test key"},
		{"sk_test_1", "pk_live_1", "STRIPE_SECRET_KEY is a test key but STRIPE_PUBLISHABLE_KEY is a live key"},
	} {
		cfg, err := config.Load([]string{"BILLING_ENABLED=true", "STRIPE_SECRET_KEY=" + c.secret, "STRIPE_PUBLISHABLE_KEY=" + c.publishable}, "")
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.RequireStripeKeys()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s + %s: %v", c.secret, c.publishable, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s + %s: %v, want %q", c.secret, c.publishable, err, c.want)
		}
	}
}

// The certificate authority is named as the CLI prints it.
func TestCertificateAuthority(t *testing.T) {
	for dir, want := range map[string]string{
		"": "Let's Encrypt",
		"https://acme-v02.api.letsencrypt.org/directory": "Let's Encrypt",
		"https://127.0.0.1:14000/dir":                    "ACME (https://127.0.0.1:14000/dir)",
	} {
		c, err := config.Load([]string{"ACME_DIRECTORY=" + dir, "TLS_ADDR=:443"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.CertificateAuthority(); got != want {
			t.Errorf("ACME_DIRECTORY=%s: %q, want %q", dir, got, want)
		}
	}
}
