package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WildcardCertificate is the operator's certificate for *.BASE_DOMAIN,
// served for tenants' subdomains and the platform's hosts it covers, so
// that a new tenant costs no certificate order: Let's Encrypt issues at most
// 50 certificates per registered domain a week. It is read from its files
// and read again when they change, so a renewed certificate needs no
// restart.
type WildcardCertificate struct {
	certFile, keyFile, baseDomain string

	cert atomic.Pointer[tls.Certificate] // Leaf set

	mu    sync.Mutex // serializes Reload
	stamp fileStamp  // of the files behind cert
}

// fileStamp tells whether the files changed since they were read. Certbot
// and cert-manager replace a certificate by moving a link or the file, which
// changes what stat sees through the path.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func stampFiles(certFile, keyFile string) (fileStamp, error) {
	c, err := os.Stat(certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("cannot read the certificate: %w", err)
	}
	k, err := os.Stat(keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("cannot read the key: %w", err)
	}
	return fileStamp{c.ModTime(), k.ModTime(), c.Size(), k.Size()}, nil
}

// LoadWildcardCertificate reads the PEM certificate (its chain may follow)
// and key for *.baseDomain. It refuses files it cannot read, a key that is
// not the certificate's, a certificate that does not name *.baseDomain, and
// one that has expired or is not valid yet, each with one line saying so.
func LoadWildcardCertificate(certFile, keyFile, baseDomain string) (*WildcardCertificate, error) {
	w := &WildcardCertificate{certFile: certFile, keyFile: keyFile, baseDomain: strings.ToLower(baseDomain)}
	stamp, err := stampFiles(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := w.read(time.Now())
	if err != nil {
		return nil, err
	}
	w.cert.Store(cert)
	w.stamp = stamp
	return w, nil
}

// read reads and checks the files.
func (w *WildcardCertificate) read(now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(w.certFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read the certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(w.keyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read the key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("not a PEM certificate and its private key: %s", strings.TrimPrefix(err.Error(), "tls: "))
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("not a PEM certificate and its private key: %w", err)
		}
		cert.Leaf = leaf
	}
	if err := checkWildcard(leaf, w.baseDomain, now); err != nil {
		return nil, err
	}
	return &cert, nil
}

// checkWildcard checks that leaf names *.baseDomain and is valid at now.
func checkWildcard(leaf *x509.Certificate, baseDomain string, now time.Time) error {
	want := "*." + baseDomain
	found := false
	for _, n := range leaf.DNSNames {
		found = found || strings.EqualFold(n, want)
	}
	switch {
	case !found && len(leaf.DNSNames) == 0:
		return fmt.Errorf("the certificate names no DNS name; it must name %s", want)
	case !found:
		return fmt.Errorf("the certificate is for %s, not %s", strings.Join(leaf.DNSNames, ", "), want)
	case now.After(leaf.NotAfter):
		return fmt.Errorf("the certificate for %s expired on %s", want, leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("the certificate for %s is not valid before %s", want, leaf.NotBefore.UTC().Format("2006-01-02 15:04 MST"))
	}
	return nil
}

// Reload reads the files again if they changed since they were read, and
// reports whether the certificate served changed. Files that fail the
// checks (a certificate renewed but its key not written yet, say) leave the
// certificate served as it was, and are read again on the next call.
func (w *WildcardCertificate) Reload() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	stamp, err := stampFiles(w.certFile, w.keyFile)
	if err != nil {
		return false, err
	}
	if stamp == w.stamp {
		return false, nil
	}
	cert, err := w.read(time.Now())
	if err != nil {
		return false, err
	}
	w.cert.Store(cert)
	w.stamp = stamp
	return true, nil
}

// Leaf is the certificate served now.
func (w *WildcardCertificate) Leaf() *x509.Certificate { return w.cert.Load().Leaf }

// CertificateFor returns the certificate for host (normalized: lower
// case, ASCII, no trailing dot) when host is one of the platform's names
// (BASE_DOMAIN or a name under it) and the certificate covers it; nil
// otherwise, and on a nil w. Custom domains are never answered here,
// whatever names the certificate holds: they get their own.
func (w *WildcardCertificate) CertificateFor(host string) *tls.Certificate {
	if w == nil || host != w.baseDomain && !strings.HasSuffix(host, "."+w.baseDomain) {
		return nil
	}
	cert := w.cert.Load()
	if cert.Leaf.VerifyHostname(host) != nil {
		return nil
	}
	return cert
}
