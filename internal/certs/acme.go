// Package certs holds the server's certificates: those obtained and renewed
// over ACME (golang.org/x/crypto/acme/autocert) for the names a host
// policy admits, and the operator's wildcard certificate for the
// platform's own names, read from its files. The web server uses them
// through small interfaces and knows nothing of ACME.
package certs

import (
	"context"
	"net/http"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// HostPolicy admits the host names certificates may be obtained for: nil,
// or an error saying why not. It is asked before any order, so that a
// stranger cannot make the server order certificates for names of their
// choosing.
type HostPolicy interface {
	Allow(ctx context.Context, name string) error
}

// ACMEConfig says where and how to obtain certificates.
type ACMEConfig struct {
	// DirectoryURL is the ACME server; Let's Encrypt when empty.
	DirectoryURL string
	Email        string
	// CacheDir keeps account keys and certificates across restarts.
	CacheDir string
	// HTTPClient talks to the ACME server; the default client when nil.
	HTTPClient *http.Client
}

// CertManager returns an ACME certificate manager bound to policy: it
// obtains and renews certificates on demand, for admitted names only. Its
// TLSConfig serves them (and answers TLS-ALPN challenges); its HTTPHandler
// answers HTTP challenges on the plain listener.
func CertManager(policy HostPolicy, c ACMEConfig) *autocert.Manager {
	client := &acme.Client{DirectoryURL: c.DirectoryURL, HTTPClient: c.HTTPClient}
	if client.DirectoryURL == "" {
		client.DirectoryURL = autocert.DefaultACMEDirectory
	}
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(c.CacheDir),
		HostPolicy: policy.Allow,
		Email:      c.Email,
		Client:     client,
	}
}
