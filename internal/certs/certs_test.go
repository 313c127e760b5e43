package certs_test

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/acme/autocert"

	"github.com/nself/nself/internal/certs"
	"github.com/nself/nself/internal/certtest"
)

// The wildcard certificate answers the platform's own names it covers,
// and never a custom domain, whatever names it holds.
func TestCertificateFor(t *testing.T) {
	ca := certtest.NewCA(t)
	c := ca.IssueValid(t, "*.nself.test", "shop.acme.example")
	certFile, keyFile := c.Write(t, t.TempDir())
	w, err := certs.LoadWildcardCertificate(certFile, keyFile, "NSELF.test")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"acme.nself.test":   true,
		"admin.nself.test":  true,
		"nself.test":        false, // *.nself.test does not cover it
		"a.b.nself.test":    false, // two labels deep
		"shop.acme.example": false, // a custom domain gets its own
		"evilnself.test":    false,
		"":                  false,
	} {
		if got := w.CertificateFor(host) != nil; got != want {
			t.Errorf("CertificateFor(%q) = %v, want %v", host, got, want)
		}
	}
	// No wildcard certificate answers nothing, so that a server given none
	// asks the ACME server for every name.
	var none *certs.WildcardCertificate
	if none.CertificateFor("acme.nself.test") != nil {
		t.Error("a nil wildcard certificate answered")
	}
}

type policy struct{ asked atomic.Int32 }

func (p *policy) Allow(context.Context, string) error {
	p.asked.Add(1)
	return errors.New("not served")
}

// A name the policy refuses never reaches the ACME server (here, one that
// nothing listens on); without a directory, Let's Encrypt's is used.
func TestCertManagerAsksThePolicyFirst(t *testing.T) {
	p := &policy{}
	m := certs.CertManager(p, certs.ACMEConfig{DirectoryURL: "https://127.0.0.1:1/dir", CacheDir: t.TempDir()})
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.example"}); err == nil || p.asked.Load() != 1 {
		t.Errorf("refused name: %v, policy asked %d times", err, p.asked.Load())
	}
	if m.Client.DirectoryURL != "https://127.0.0.1:1/dir" {
		t.Errorf("directory %q", m.Client.DirectoryURL)
	}
	if d := certs.CertManager(p, certs.ACMEConfig{CacheDir: t.TempDir()}).Client.DirectoryURL; d != autocert.DefaultACMEDirectory {
		t.Errorf("default directory %q", d)
	}
}
