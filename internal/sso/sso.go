// Package sso signs tenants' people in with their own OpenID Connect
// providers: discovery, the authorization code flow with PKCE, and the ID
// token verified against the provider's keys (coreos/go-oidc with
// golang.org/x/oauth2). It implements tenancy.SSOProvider; every call to a
// provider is bounded by Timeout.
package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/nself/nself/internal/tenancy"
)

// Client talks to providers. The zero value is not usable: call New.
type Client struct {
	timeout time.Duration
	http    *http.Client

	mu        sync.Mutex
	providers map[string]cachedProvider
}

type cachedProvider struct {
	p       *oidc.Provider
	fetched time.Time
}

// providerTTL is how long a provider's discovery document is reused; its
// key set is fetched again whenever a token names a key it lacks.
const providerTTL = 10 * time.Minute

var _ tenancy.SSOProvider = (*Client)(nil)

// New returns a Client whose every call to a provider ends within timeout.
func New(timeout time.Duration) *Client {
	return &Client{
		timeout: timeout,
		// Each call's context bounds it; the client's own limit is a
		// backstop a little later, so that a call that ran out of time
		// fails on its context and is told apart as such.
		http:      &http.Client{Timeout: timeout + time.Second},
		providers: map[string]cachedProvider{},
	}
}

// unavailable says, in plain words, that the provider could not be asked.
func unavailable(issuer string, err error) error {
	msg := fmt.Sprintf("%s did not answer in time or could not be reached. Check the issuer URL, or try again later.", issuer)
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		msg = fmt.Sprintf("The name %s could not be found (DNS). Check the issuer URL.", dns.Name)
	case strings.Contains(err.Error(), "connection refused"):
		msg = fmt.Sprintf("Nothing answers at %s (connection refused). Check the issuer URL.", issuer)
	}
	return &tenancy.Error{Code: tenancy.EUNAVAILABLE, Service: "identity provider", Field: "issuer", Message: msg, Err: err}
}

// discover reads the issuer's discovery document, checking it names the
// same issuer.
func (c *Client) discover(ctx context.Context, issuer string) (*oidc.Provider, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.http), issuer)
	if err == nil {
		return p, nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "did not match the issuer"):
		return nil, &tenancy.Error{Code: tenancy.EINVALID, Field: "issuer", Err: err,
			Message: "The provider's discovery document names another issuer than " + issuer + ". Enter the issuer exactly as the provider states it (mind the trailing slash)."}
	case strings.HasPrefix(msg, "404") || strings.Contains(msg, "failed to decode provider discovery") || strings.Contains(msg, "unexpected"):
		return nil, &tenancy.Error{Code: tenancy.EINVALID, Field: "issuer", Err: err,
			Message: "No OpenID Connect discovery document at " + strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration. Check the issuer URL."}
	}
	if ctx.Err() != nil || isNetError(err) {
		return nil, unavailable(issuer, err)
	}
	return nil, &tenancy.Error{Code: tenancy.EINVALID, Field: "issuer", Err: err,
		Message: "The provider's discovery document at " + issuer + " could not be used: " + oneLine(msg)}
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// provider returns the issuer's provider, from the cache when fresh.
func (c *Client) provider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	c.mu.Lock()
	cp, ok := c.providers[issuer]
	c.mu.Unlock()
	if ok && time.Since(cp.fetched) < providerTTL {
		return cp.p, nil
	}
	p, err := c.discover(ctx, issuer)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.providers[issuer] = cachedProvider{p: p, fetched: time.Now()}
	c.mu.Unlock()
	return p, nil
}

// Discover reads the issuer's discovery document and key set afresh.
func (c *Client) Discover(ctx context.Context, issuer string) (*tenancy.SSODiscovery, error) {
	p, err := c.discover(ctx, issuer)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Issuer      string   `json:"issuer"`
		Userinfo    string   `json:"userinfo_endpoint"`
		JWKS        string   `json:"jwks_uri"`
		Scopes      []string `json:"scopes_supported"`
		Algs        []string `json:"id_token_signing_alg_values_supported"`
		PKCEMethods []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&doc); err != nil {
		return nil, tenancy.FieldErrorf(tenancy.EINVALID, "issuer", "The provider's discovery document could not be read: %s", oneLine(err.Error()))
	}
	d := &tenancy.SSODiscovery{
		Issuer: doc.Issuer, AuthorizationEndpoint: p.Endpoint().AuthURL, TokenEndpoint: p.Endpoint().TokenURL,
		UserinfoEndpoint: doc.Userinfo, JWKSURI: doc.JWKS, Scopes: doc.Scopes, SigningAlgs: doc.Algs, PKCEMethods: doc.PKCEMethods,
	}
	if d.JWKSURI == "" {
		return nil, tenancy.FieldErrorf(tenancy.EINVALID, "issuer", "The provider publishes no key set (jwks_uri), so its ID tokens could not be verified.")
	}
	n, err := c.countKeys(ctx, d.JWKSURI)
	if err != nil {
		return nil, err
	}
	d.Keys = n
	return d, nil
}

// countKeys fetches the key set, to show the owner it can be read.
func (c *Client) countKeys(ctx context.Context, uri string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return 0, tenancy.FieldErrorf(tenancy.EINVALID, "issuer", "The provider's key set address %s is not a URL.", tenancy.Quote(uri))
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, unavailable(uri, err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if res.StatusCode != http.StatusOK {
		return 0, tenancy.FieldErrorf(tenancy.EINVALID, "issuer", "The provider's key set at %s answered %s.", uri, res.Status)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, res.Body, 1<<20)).Decode(&set); err != nil || len(set.Keys) == 0 {
		return 0, tenancy.FieldErrorf(tenancy.EINVALID, "issuer", "The provider's key set at %s holds no keys.", uri)
	}
	return len(set.Keys), nil
}

// scopes asked for: the ID token, and the email and name to match people by.
var scopes = []string{oidc.ScopeOpenID, "email", "profile"}

func (c *Client) oauth(p *oidc.Provider, cfg *tenancy.SSOConfig, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: redirectURL, Scopes: scopes,
	}
}

// AuthURL is the provider's authorization URL with the flow's state,
// nonce and PKCE challenge (S256).
func (c *Client) AuthURL(ctx context.Context, cfg *tenancy.SSOConfig, redirectURL string, f tenancy.SSOFlow) (string, error) {
	p, err := c.provider(ctx, cfg.Issuer)
	if err != nil {
		return "", err
	}
	return c.oauth(p, cfg, redirectURL).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), nil
}

// refused is a provider's answer that signs nobody in.
func refused(format string, args ...any) error {
	return tenancy.Errorf(tenancy.EFORBIDDEN, format, args...)
}

// Exchange trades the code (with the PKCE verifier) for tokens, verifies
// the ID token and reads the email from it, or from userinfo when the
// provider keeps it there.
func (c *Client) Exchange(ctx context.Context, cfg *tenancy.SSOConfig, redirectURL, code string, f tenancy.SSOFlow) (*tenancy.SSOIdentity, error) {
	p, err := c.provider(ctx, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	octx := oidc.ClientContext(ctx, c.http)
	tok, err := c.oauth(p, cfg, redirectURL).Exchange(octx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			why := re.ErrorCode
			if re.ErrorDescription != "" {
				why += ": " + re.ErrorDescription
			}
			if why == "" {
				why = re.Response.Status
			}
			return nil, &tenancy.Error{Code: tenancy.EFORBIDDEN, Err: err, Message: fmt.Sprintf(
				"%s refused the sign-in code (%s). A code works once, for the application it was issued to: start again.", cfg.DisplayName, oneLine(why))}
		}
		return nil, unavailable(cfg.Issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refused("%s sent no ID token. Check that the application is an OpenID Connect one.", cfg.DisplayName)
	}
	who, err := c.VerifyIDToken(ctx, cfg, raw, f.Nonce)
	if err != nil {
		return nil, err
	}
	// Many providers keep the email, or whether it is verified, out of
	// the ID token and answer it at userinfo.
	if (who.Email == "" || !who.EmailVerified) && p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(octx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, unavailable(cfg.Issuer, err)
		}
		if ui.Subject != who.Subject {
			return nil, refused("%s answered about another account than the one that signed in. Start again.", cfg.DisplayName)
		}
		var claims emailClaims
		if err := ui.Claims(&claims); err != nil {
			return nil, refused("%s sent user details that could not be read.", cfg.DisplayName)
		}
		if claims.Email != "" {
			who.Email, who.EmailVerified = claims.Email, claims.verified()
		}
		if who.Name == "" {
			who.Name = claims.Name
		}
	}
	return who, nil
}

// VerifyIDToken checks an ID token's signature against the provider's
// keys, its issuer, its audience (the tenant's client id), its expiry and
// its nonce, and returns who it names.
func (c *Client) VerifyIDToken(ctx context.Context, cfg *tenancy.SSOConfig, raw, nonce string) (*tenancy.SSOIdentity, error) {
	p, err := c.provider(ctx, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	idt, err := p.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(oidc.ClientContext(ctx, c.http), raw)
	if err != nil {
		msg := err.Error()
		why := "its signature does not check out against the provider's keys"
		switch {
		case strings.Contains(msg, "audience"):
			why = "it was issued for another application (audience), not this workspace's client " + cfg.ClientID
		case strings.Contains(msg, "issued by a different provider"):
			why = "it was issued by another provider than " + cfg.Issuer
		case strings.Contains(msg, "expired"):
			why = "it has expired"
		}
		return nil, &tenancy.Error{Code: tenancy.EFORBIDDEN, Err: err, Message: fmt.Sprintf("The ID token from %s was refused: %s. Start again.", cfg.DisplayName, why)}
	}
	if nonce == "" || idt.Nonce != nonce {
		return nil, refused("The ID token from %s does not carry the nonce this sign-in started with. Start again.", cfg.DisplayName)
	}
	var claims emailClaims
	if err := idt.Claims(&claims); err != nil {
		return nil, refused("The ID token from %s could not be read.", cfg.DisplayName)
	}
	return &tenancy.SSOIdentity{
		Issuer: idt.Issuer, Subject: idt.Subject,
		Email: claims.Email, EmailVerified: claims.verified(), Name: claims.Name,
	}, nil
}

// emailClaims are the claims people are matched by. Some providers send
// email_verified as a string.
type emailClaims struct {
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Name          string          `json:"name"`
}

func (c emailClaims) verified() bool {
	v := strings.Trim(string(c.EmailVerified), `"`)
	return v == "true"
}
