package sso_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/nself/nself/internal/sso"
	"github.com/nself/nself/internal/ssotest"
	"github.com/nself/nself/internal/tenancy"
)

const redirect = "http://acme.nself.test/sso/callback"

func configs(t *testing.T) (a, b *tenancy.SSOConfig) {
	iss := ssotest.Issuer(t)
	return &tenancy.SSOConfig{Issuer: iss, ClientID: ssotest.ClientA, ClientSecret: ssotest.SecretA, DisplayName: "Test IdP"},
		&tenancy.SSOConfig{Issuer: iss, ClientID: ssotest.ClientB, ClientSecret: ssotest.SecretB, DisplayName: "Test IdP"}
}

func newFlow() tenancy.SSOFlow {
	s, _ := tenancy.NewSecret()
	n, _ := tenancy.NewSecret()
	v, _ := tenancy.NewSecret()
	return tenancy.SSOFlow{State: s, Nonce: n, Verifier: v}
}

// signIn runs the code flow up to the callback and returns its code.
func signIn(t *testing.T, c *sso.Client, cfg *tenancy.SSOConfig, f tenancy.SSOFlow, user string) string {
	t.Helper()
	u, err := c.AuthURL(context.Background(), cfg, redirect, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"code_challenge_method=S256", "nonce=" + f.Nonce, "state=" + f.State} {
		if !strings.Contains(u, want) {
			t.Fatalf("authorization URL %s lacks %s", u, want)
		}
	}
	cb := ssotest.Login(t, u, user, ssotest.Password)
	if cb.Query().Get("state") != f.State || cb.Query().Get("code") == "" {
		t.Fatalf("callback %s: want the state back and a code", cb)
	}
	return cb.Query().Get("code")
}

func TestExchange(t *testing.T) {
	ctx := context.Background()
	a, _ := configs(t)
	c := sso.New(5 * time.Second)
	f := newFlow()
	code := signIn(t, c, a, f, "ann@"+ssotest.Domain)
	who, err := c.Exchange(ctx, a, redirect, code, f)
	if err != nil {
		t.Fatal(err)
	}
	if who.Email != "ann@sso.example" || !who.EmailVerified || who.Subject == "" || who.Issuer != a.Issuer {
		t.Fatalf("identity = %+v", who)
	}

	// The code works once.
	_, err = c.Exchange(ctx, a, redirect, code, f)
	if tenancy.ErrorCode(err) != tenancy.EFORBIDDEN || !strings.Contains(err.Error(), "refused the sign-in code") {
		t.Fatalf("replayed code: err = %v", err)
	}

	// Without the PKCE verifier the provider refuses the code.
	f2 := newFlow()
	code = signIn(t, c, a, f2, "ann@"+ssotest.Domain)
	f2.Verifier, _ = tenancy.NewSecret()
	if _, err := c.Exchange(ctx, a, redirect, code, f2); tenancy.ErrorCode(err) != tenancy.EFORBIDDEN {
		t.Fatalf("wrong verifier: err = %v", err)
	}

	// The unverified address comes back unverified.
	f3 := newFlow()
	code = signIn(t, c, a, f3, ssotest.Unverified)
	if who, err := c.Exchange(ctx, a, redirect, code, f3); err != nil || who.EmailVerified || who.Email != ssotest.Unverified {
		t.Fatalf("unverified: %+v, %v", who, err)
	}
}

// rawIDToken signs in with cfg's client and exchanges the code directly,
// returning the ID token as the provider issued it.
func rawIDToken(t *testing.T, c *sso.Client, cfg *tenancy.SSOConfig, f tenancy.SSOFlow) string {
	t.Helper()
	ctx := context.Background()
	code := signIn(t, c, cfg, f, "ann@"+ssotest.Domain)
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	oc := oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: redirect}
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token")
	}
	return raw
}

func TestVerifyIDToken(t *testing.T) {
	ctx := context.Background()
	a, b := configs(t)
	c := sso.New(5 * time.Second)
	f := newFlow()
	raw := rawIDToken(t, c, b, f)
	if who, err := c.VerifyIDToken(ctx, b, raw, f.Nonce); err != nil || who.Subject == "" {
		t.Fatalf("the token for its own client: %+v, %v", who, err)
	}
	parts := strings.Split(raw, ".")
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 0x01
	if sig[len(sig)/2] == '.' {
		sig[len(sig)/2] = 'A'
	}
	forged := parts[0] + "." + parts[1] + "." + string(sig)
	for name, tc := range map[string]struct {
		cfg   *tenancy.SSOConfig
		raw   string
		nonce string
		words string
	}{
		"another audience (another tenant's client)": {a, raw, f.Nonce, "another application (audience)"},
		"another nonce":    {b, raw, "not-the-nonce", "nonce"},
		"no nonce":         {b, raw, "", "nonce"},
		"forged signature": {b, forged, f.Nonce, "signature"},
	} {
		_, err := c.VerifyIDToken(ctx, tc.cfg, tc.raw, tc.nonce)
		if tenancy.ErrorCode(err) != tenancy.EFORBIDDEN || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("%s: err = %v, want a refusal naming %q", name, err, tc.words)
		}
	}
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	a, _ := configs(t)
	c := sso.New(2 * time.Second)
	d, err := c.Discover(ctx, a.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if d.Issuer != a.Issuer || d.Keys == 0 || d.TokenEndpoint == "" || !strings.Contains(strings.Join(d.PKCEMethods, " "), "S256") {
		t.Fatalf("discovery = %+v", d)
	}

	// Nothing listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := c.Discover(ctx, closed); tenancy.ErrorCode(err) != tenancy.EUNAVAILABLE || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("closed port: err = %v", err)
	}

	// A server that is not a provider.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := c.Discover(ctx, srv.URL); tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), "No OpenID Connect discovery document") {
		t.Errorf("not a provider: err = %v", err)
	}

	// A provider that names another issuer (the same one, by another name).
	other := strings.Replace(a.Issuer, "127.0.0.1", "localhost", 1)
	if _, err := c.Discover(ctx, other); tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), "names another issuer") {
		t.Errorf("another issuer: err = %v", err)
	}

	// A server that accepts and never answers: the timeout ends the wait.
	hung, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hung.Close()
	go func() {
		for {
			conn, err := hung.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	start := time.Now()
	_, err = c.Discover(ctx, "http://"+hung.Addr().String())
	if tenancy.ErrorCode(err) != tenancy.EUNAVAILABLE || time.Since(start) > 4*time.Second {
		t.Errorf("hung provider: err = %v after %s", err, time.Since(start))
	}
}
