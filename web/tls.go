package web

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/idna"

	"github.com/nself/nself/internal/tenancy"
)

// DomainResolver finds the tenant a custom domain routes to, and the
// tenant whose verified domain a name is (what certificates may be issued
// for, even where unverified domains are routed).
type DomainResolver interface {
	LookupDomain(ctx context.Context, name string) (*tenancy.Tenant, error)
	LookupVerifiedDomain(ctx context.Context, name string) (*tenancy.Tenant, error)
}

// errNotServed is the policy's answer for a name the platform does not
// serve.
var errNotServed = errors.New("host name not served by this platform")

// TLSPolicy decides which host names the server may hold certificates for:
// the platform's own hosts, the subdomains of active tenants and the
// verified custom domains of active tenants. Anything else is refused, so a
// stranger cannot make the server request certificates for names of their
// choosing.
//
// It answers from the tenant cache. Names it admitted before are
// remembered for a while: when the database cannot answer, they are still
// admitted, so a short database outage does not become a TLS outage; new
// names are refused until it is back.
type TLSPolicy struct {
	s *Server
	// Remember is how long an admitted name stays admitted through
	// database errors.
	Remember time.Duration

	mu    sync.Mutex
	known map[string]time.Time
}

// NewTLSPolicy returns the policy for s.
func NewTLSPolicy(s *Server) *TLSPolicy {
	return &TLSPolicy{s: s, Remember: 7 * 24 * time.Hour, known: map[string]time.Time{}}
}

// normalizeHost lowercases a host name, drops a trailing dot and turns an
// internationalized name into its ASCII (punycode) form.
func normalizeHost(name string) (string, error) {
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	if name == "" || strings.ContainsAny(name, ":/ *") {
		return "", errNotServed
	}
	ascii, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", errNotServed
	}
	return strings.ToLower(ascii), nil
}

// Allow reports whether a certificate may be held for name: nil, or an
// error saying why not. It is the certificate manager's host policy.
func (p *TLSPolicy) Allow(ctx context.Context, name string) error {
	host, err := normalizeHost(name)
	if err != nil {
		return err
	}
	ok, err := p.decide(ctx, host)
	if err != nil {
		// The database could not answer: fall back on what was known.
		p.mu.Lock()
		seen, known := p.known[host]
		p.mu.Unlock()
		if known && time.Since(seen) < p.Remember {
			return nil
		}
		return errNotServed
	}
	p.mu.Lock()
	if ok {
		p.known[host] = time.Now()
	} else {
		delete(p.known, host)
	}
	p.mu.Unlock()
	if !ok {
		return errNotServed
	}
	return nil
}

// decide answers from the tenant cache; an error means it could not.
func (p *TLSPolicy) decide(ctx context.Context, host string) (bool, error) {
	cfg := p.s.Config
	switch {
	case host == cfg.AdminHost || host == cfg.BaseDomain || host == "api."+cfg.BaseDomain:
		return true, nil
	}
	if slug, ok := p.s.subdomainSlug(host); ok {
		t, err := p.s.Resolver.Lookup(ctx, slug)
		return served(t, err)
	}
	if !p.s.customDomains() {
		return false, nil
	}
	t, err := p.s.Domains.LookupVerifiedDomain(ctx, host)
	return served(t, err)
}

func served(t *tenancy.Tenant, err error) (bool, error) {
	switch {
	case tenancy.ErrorCode(err) == tenancy.ENOTFOUND:
		return false, nil
	case err != nil:
		return false, err
	}
	return t.Status == tenancy.StatusActive, nil
}

// handleTLSAllow serves GET /internal/tls/allow?domain=NAME: 200 when the
// platform serves NAME, 404 otherwise, for a proxy doing on-demand TLS
// (such as Caddy's "ask").
//
// It tells which custom domains the platform serves, so it answers only a
// proxy on this machine (loopback) or one holding the internal service
// token; anyone else gets 404.
func (p *TLSPolicy) handleTLSAllow(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !p.s.internalCaller(r) {
		p.s.notFound(w, r)
		return
	}
	if err := p.Allow(r.Context(), r.URL.Query().Get("domain")); err != nil {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("not served\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

// CertificateSource obtains certificates for the names TLSPolicy admits
// (internal/certs does, over ACME).
type CertificateSource interface {
	// TLSConfig serves the source's certificates and answers its
	// challenges made over TLS.
	TLSConfig() *tls.Config
	// HTTPHandler answers the source's challenges made over plain HTTP and
	// hands every other request to fallback.
	HTTPHandler(fallback http.Handler) http.Handler
}

// SiteCertificate is a certificate the operator holds for the platform's
// own names (internal/certs reads the wildcard one from its files).
type SiteCertificate interface {
	// CertificateFor returns the certificate for host (normalized), or nil
	// when it does not cover host.
	CertificateFor(host string) *tls.Certificate
}

// TLSConfig is the server's TLS configuration: the names wildcard covers
// (when not nil) get it, without asking the ACME server, and every other
// name gets a certificate of its own from m. A verified custom domain that
// gets its certificate becomes active.
func (s *Server) TLSConfig(m CertificateSource, wildcard SiteCertificate) *tls.Config {
	cfg := m.TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	get := cfg.GetCertificate
	var active sync.Map // names already recorded as active, to skip the database
	var failed sync.Map // names whose failure was recorded, and when
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		host, nerr := normalizeHost(hello.ServerName)
		if wildcard != nil && nerr == nil {
			if cert := wildcard.CertificateFor(host); cert != nil {
				return cert, nil
			}
		}
		if c := hello.Conn; c != nil {
			// An ACME order takes seconds, longer than the 5 s the HTTP
			// server allows a whole handshake: the client waits for the
			// new certificate, then has the usual time to finish.
			c.SetDeadline(time.Now().Add(certOrderTimeout))
			defer func() { c.SetDeadline(time.Now().Add(handshakeAfterCert)) }()
		}
		cert, err := get(hello)
		if nerr != nil || !s.isCustomDomain(host) {
			return cert, err
		}
		// Both are recorded off the handshake's path.
		switch _, done := active.Load(host); {
		case err != nil:
			// Told to the domain's owner at most every few minutes:
			// handshakes keep asking while the ACME server refuses.
			if last, ok := failed.Load(host); !ok || time.Since(last.(time.Time)) > certFailureEvery {
				failed.Store(host, time.Now())
				go s.recordCertificateFailure(host, err)
			}
		case !done:
			// The next handshake tries again if this fails.
			go func() {
				if s.recordCertificate(host) == nil {
					active.Store(host, true)
				}
			}()
		}
		return cert, err
	}
	return cfg
}

// certOrderTimeout bounds a handshake that waits for a certificate from
// the ACME server; handshakeAfterCert is what the rest of it gets.
const (
	certOrderTimeout   = time.Minute
	handshakeAfterCert = 5 * time.Second
)

// isCustomDomain reports whether host is a tenant's custom domain rather
// than one of the platform's own names.
func (s *Server) isCustomDomain(host string) bool {
	cfg := s.Config
	if !s.customDomains() || !s.on.domains || host == cfg.AdminHost || host == cfg.BaseDomain || host == "api."+cfg.BaseDomain {
		return false
	}
	return !strings.HasSuffix(host, "."+cfg.BaseDomain)
}

// recordCertificate marks a custom domain active once its certificate is
// in place.
func (s *Server) recordCertificate(host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t, err := s.Domains.LookupVerifiedDomain(ctx, host)
	if err != nil {
		return err
	}
	if _, err := s.DomainAdmin.CertificateIssued(ctx, t.ID, host); err != nil {
		s.Log.Warn("record certificate", "domain", host, "err", err)
		return err
	}
	return nil
}

// certFailureEvery is how often a domain's failing certificate requests
// are recorded.
const certFailureEvery = 10 * time.Minute

// recordCertificateFailure keeps why a verified custom domain's certificate
// could not be obtained, for its owner to read on the domains page. Names
// that are not a tenant's verified domain were refused by the policy, and
// are not recorded.
func (s *Server) recordCertificateFailure(host string, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t, err := s.Domains.LookupVerifiedDomain(ctx, host)
	if err != nil {
		return
	}
	s.Log.Warn("certificate request failed", "domain", host, "tenant", t.Slug, "err", cause)
	if _, err := s.DomainAdmin.CertificateRequestFailed(ctx, t.ID, host, oneLine(cause.Error(), 300)); err != nil {
		s.Log.Warn("record certificate failure", "domain", host, "err", err)
	}
}

// oneLine shortens an error's text to one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// internalCaller reports whether a request comes from this machine or
// carries the internal service token.
func (s *Server) internalCaller(r *http.Request) bool {
	if ip := net.ParseIP(clientIP(r)); ip != nil && ip.IsLoopback() {
		return true
	}
	token, ok := bearerToken(r.Header.Get("Authorization"))
	return ok && s.Config.InternalToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.Config.InternalToken)) == 1
}
