package web_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/certs"
	"github.com/nself/nself/internal/certtest"
	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// handshake connects to addr with SNI name and returns the certificate
// served; roots nil accepts any.
func handshake(t *testing.T, addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, InsecureSkipVerify: roots == nil})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// With the operator's wildcard certificate, tenants' subdomains and the
// platform's hosts under BASE_DOMAIN get it and the ACME server is never
// asked; a custom domain still gets its own certificate from the ACME
// server (Pebble), and so does a platform name the wildcard does not cover.
func TestWildcardCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withCustomDomains(false))
	acme := e.mustTenant("acme")
	dns := dnstest.NewServer(t)
	svc := postgres.NewDomainService(e.db, tenancy.DomainRules{BaseDomain: baseDomain, ToASCII: domainname.ToASCII})
	d, err := svc.AddDomain(e.ctx, acme.ID, "shop.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	dns.SetTXT("shop.acme.example", "nself-verify="+d.Token)
	if _, res, err := svc.VerifyDomain(e.ctx, acme.ID, "shop.acme.example", dnsverify.New(dns.Addr)); err != nil || !res.Verified() {
		t.Fatalf("verify: %v %v", res.Message(), err)
	}

	ca := certtest.NewCA(t)
	wc := ca.IssueValid(t, "*."+baseDomain)
	certFile, keyFile := wc.Write(t, t.TempDir())
	w, err := certs.LoadWildcardCertificate(certFile, keyFile, baseDomain)
	if err != nil {
		t.Fatal(err)
	}
	proxy := certtest.NewACMEProxy(t)
	m := certs.CertManager(web.NewTLSPolicy(e.server), certs.ACMEConfig{
		DirectoryURL: proxy.DirectoryURL, CacheDir: t.TempDir(), HTTPClient: proxy.Client()})
	srv := httptest.NewUnstartedServer(e.server.Handler())
	srv.TLS = e.server.TLSConfig(m, w)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	for _, name := range []string{"acme.nself.test", "ACME.nself.test.", "admin.nself.test", "api.nself.test", "nobody.nself.test"} {
		leaf, err := handshake(t, addr, name, ca.Pool())
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if leaf.SerialNumber.Cmp(wc.Leaf.SerialNumber) != 0 {
			t.Errorf("%s got %v, not the wildcard certificate", name, leaf.DNSNames)
		}
	}
	// The tenant's portal answers over it.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "acme.nself.test"}}}
	req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
	req.Host = "acme.nself.test"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Sign in") {
		t.Errorf("portal over the wildcard certificate: %d", resp.StatusCode)
	}
	// Two labels deep is not covered, and not served: refused before ACME.
	if _, err := handshake(t, addr, "a.b.nself.test", nil); err == nil {
		t.Error("a.b.nself.test got a certificate")
	}
	if r := proxy.Requests(); len(r) != 0 {
		t.Fatalf("the ACME server was asked for names the wildcard covers: %v", r)
	}

	// A custom domain, and BASE_DOMAIN itself (*.nself.test does not cover
	// it), each get a certificate of their own from Pebble.
	for i, name := range []string{"shop.acme.example", "nself.test"} {
		leaf, err := handshake(t, addr, name, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(leaf.DNSNames, []string{name}) || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
			t.Errorf("%s got %v from %q", name, leaf.DNSNames, leaf.Issuer.CommonName)
		}
		if got := proxy.Orders(); got != i+1 {
			t.Errorf("after %s: %d ACME orders, want %d", name, got, i+1)
		}
	}
	// The subdomain still gets the wildcard, with no further order.
	if leaf, err := handshake(t, addr, "acme.nself.test", ca.Pool()); err != nil || leaf.SerialNumber.Cmp(wc.Leaf.SerialNumber) != 0 {
		t.Errorf("acme.nself.test after the orders: %v", err)
	}
	if got := proxy.Orders(); got != 2 {
		t.Errorf("%d ACME orders, want 2", got)
	}
}

// Without the wildcard certificate a tenant's subdomain gets a certificate
// of its own from the ACME server.
func TestSubdomainCertificateWithoutWildcard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustTenant("acme")
	proxy := certtest.NewACMEProxy(t)
	m := certs.CertManager(web.NewTLSPolicy(e.server), certs.ACMEConfig{
		DirectoryURL: proxy.DirectoryURL, CacheDir: t.TempDir(), HTTPClient: proxy.Client()})
	cert, err := e.server.TLSConfig(m, nil).GetCertificate(&tls.ClientHelloInfo{ServerName: "acme.nself.test"})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf == nil {
		cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if !slices.Equal(cert.Leaf.DNSNames, []string{"acme.nself.test"}) || proxy.Orders() != 1 {
		t.Errorf("certificate for %v after %d orders", cert.Leaf.DNSNames, proxy.Orders())
	}
}

// The files are checked at start: each problem is one line saying what is
// wrong.
func TestLoadWildcardCertificateRefuses(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t)
	good := ca.IssueValid(t, "*.nself.test", "nself.test")
	other := ca.IssueValid(t, "*.nself.test")
	now := time.Now()
	write := func(c certtest.Cert) (string, string) { return c.Write(t, t.TempDir()) }
	for _, c := range []struct {
		name  string
		files func() (string, string)
		want  string
	}{
		{"missing certificate", func() (string, string) {
			_, key := write(good)
			return filepath.Join(t.TempDir(), "nope.pem"), key
		}, "cannot read the certificate: stat /"},
		{"missing key", func() (string, string) {
			cert, _ := write(good)
			return cert, filepath.Join(t.TempDir(), "nope.pem")
		}, "cannot read the key: stat /"},
		{"a folder", func() (string, string) {
			_, key := write(good)
			return t.TempDir(), key
		}, "cannot read the certificate: read /"},
		{"another certificate's key", func() (string, string) {
			cert, _ := write(good)
			_, key := write(other)
			return cert, key
		}, "not a PEM certificate and its private key: private key does not match public key"},
		{"not PEM", func() (string, string) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "c"), []byte("hello"), 0o600)
			_, key := write(good)
			return filepath.Join(dir, "c"), key
		}, "not a PEM certificate and its private key: failed to find any PEM data in certificate input"},
		{"key and certificate swapped", func() (string, string) {
			cert, key := write(good)
			return key, cert
		}, "not a PEM certificate and its private key"},
		{"one name", func() (string, string) { return write(ca.IssueValid(t, "acme.nself.test")) },
			"the certificate is for acme.nself.test, not *.nself.test"},
		{"another domain", func() (string, string) { return write(ca.IssueValid(t, "*.other.test", "other.test")) },
			"the certificate is for *.other.test, other.test, not *.nself.test"},
		{"a level deeper", func() (string, string) { return write(ca.IssueValid(t, "*.eu.nself.test")) },
			"the certificate is for *.eu.nself.test, not *.nself.test"},
		{"expired", func() (string, string) {
			return write(ca.Issue(t, []string{"*.nself.test"}, now.Add(-48*time.Hour), time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)))
		}, "the certificate for *.nself.test expired on 2025-01-02 03:04 UTC"},
		{"not yet valid", func() (string, string) {
			return write(ca.Issue(t, []string{"*.nself.test"}, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 6, 1, 0, 0, 0, 0, time.UTC)))
		}, "the certificate for *.nself.test is not valid before 2099-01-01 00:00 UTC"},
	} {
		cert, key := c.files()
		_, err := certs.LoadWildcardCertificate(cert, key, baseDomain)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	cert, key := write(good)
	if _, err := certs.LoadWildcardCertificate(cert, key, baseDomain); err != nil {
		t.Errorf("a good wildcard certificate: %v", err)
	}
}

// A renewed certificate is served once its files change, without a
// restart; files that fail the checks leave the previous one served.
func TestWildcardCertificateReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ca := certtest.NewCA(t)
	dir := t.TempDir()
	first := ca.IssueValid(t, "*.nself.test")
	certFile, keyFile := first.Write(t, dir)
	w, err := certs.LoadWildcardCertificate(certFile, keyFile, baseDomain)
	if err != nil {
		t.Fatal(err)
	}
	m := certs.CertManager(web.NewTLSPolicy(e.server), certs.ACMEConfig{DirectoryURL: "https://127.0.0.1:1/dir", CacheDir: t.TempDir()})
	cfg := e.server.TLSConfig(m, w)
	served := func() *x509.Certificate {
		t.Helper()
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "acme.nself.test"})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	if changed, err := w.Reload(); changed || err != nil {
		t.Errorf("reload of unchanged files: %v, %v", changed, err)
	}

	// A renewal whose key is not written yet: refused, the old one stays,
	// and the next reload, with both files, takes it.
	second := ca.IssueValid(t, "*.nself.test")
	os.WriteFile(certFile, second.CertPEM, 0o600)
	os.Chtimes(certFile, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if changed, err := w.Reload(); changed || err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("reload of a half-written renewal: %v, %v", changed, err)
	}
	if served().SerialNumber.Cmp(first.Leaf.SerialNumber) != 0 {
		t.Error("a half-written renewal replaced the certificate")
	}
	second.Write(t, dir)
	if changed, err := w.Reload(); !changed || err != nil {
		t.Errorf("reload of a renewal: %v, %v", changed, err)
	}
	if served().SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
		t.Error("the renewed certificate is not served")
	}

	// A certificate for other names is refused the same way.
	ca.IssueValid(t, "*.other.test").Write(t, dir)
	if changed, err := w.Reload(); changed || err == nil || !strings.Contains(err.Error(), "not *.nself.test") {
		t.Errorf("reload of a certificate for other names: %v, %v", changed, err)
	}
	if served().SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
		t.Error("a certificate for other names replaced the certificate")
	}
}
