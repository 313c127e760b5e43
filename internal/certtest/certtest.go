// Package certtest makes certificates and watches ACME traffic for tests:
// a private certificate authority that issues certificates such as an
// operator's wildcard, and a proxy in front of Pebble (the ACME test server
// scripts/services.sh starts) that counts the requests and orders it sees.
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CA is a certificate authority of the test's own.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the authority's certificate, for clients to trust.
	PEM []byte
}

// NewCA makes an authority.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "nself test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Pool holds the authority, for a client's RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Cert is an issued certificate in PEM: the leaf followed by the
// authority, and the leaf's key.
type Cert struct {
	Leaf    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Issue makes a server certificate for names, valid from notBefore to
// notAfter.
func (ca *CA) Issue(t testing.TB, names []string, notBefore, notAfter time.Time) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Cert{
		Leaf:    leaf,
		CertPEM: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.PEM...),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

// IssueValid makes a certificate for names valid from an hour ago for a
// day.
func (ca *CA) IssueValid(t testing.TB, names ...string) Cert {
	return ca.Issue(t, names, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// Write writes the certificate and key files (cert.pem, key.pem) into dir,
// replacing any there, and returns their paths. Their modification time is
// moved on by a second each time, as a renewal would.
func (c Cert) Write(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path string
		data []byte
	}{{certFile, c.CertPEM}, {keyFile, c.KeyPEM}} {
		when := time.Now()
		if st, err := os.Stat(f.path); err == nil && !st.ModTime().Before(when) {
			when = st.ModTime().Add(time.Second)
		}
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f.path, when, when); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Pebble returns the directory URL of the Pebble that scripts/services.sh
// starts and the PEM of the authority its API's certificate comes from.
// Without them the test fails: a missing service is never a silent skip.
func Pebble(t testing.TB) (directory string, rootPEM []byte) {
	t.Helper()
	dir, root := os.Getenv("ACME_TEST_DIRECTORY"), os.Getenv("ACME_TEST_ROOT")
	if dir == "" || root == "" {
		t.Fatal("ACME_TEST_DIRECTORY and ACME_TEST_ROOT must be set: run `make test` (scripts/services.sh starts Pebble)")
	}
	pemBytes, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	return dir, pemBytes
}

// ACMEProxy stands between an ACME client and Pebble and counts what
// passes: Pebble builds its URLs from the Host it is asked at, so a client
// given DirectoryURL sends every request of its orders through the proxy.
type ACMEProxy struct {
	srv *httptest.Server
	// DirectoryURL is the directory as the client should ask for it.
	DirectoryURL string
	newOrder     string // the path of Pebble's newOrder endpoint

	mu         sync.Mutex
	requests   []string
	orders     int
	orderDelay time.Duration
}

// DelayOrders holds each newOrder request for d before passing it on, as a
// slow ACME server would.
func (p *ACMEProxy) DelayOrders(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.orderDelay = d
}

// NewACMEProxy starts a proxy in front of Pebble until the test ends.
func NewACMEProxy(t testing.TB) *ACMEProxy {
	t.Helper()
	directory, rootPEM := Pebble(t)
	target, err := url.Parse(directory)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)

	// The newOrder endpoint, asked of Pebble directly so it is not counted.
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(directory)
	if err != nil {
		t.Fatalf("Pebble's directory: %v", err)
	}
	var dir struct {
		NewOrder string `json:"newOrder"`
	}
	err = json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	newOrder, perr := url.Parse(dir.NewOrder)
	if err != nil || perr != nil || dir.NewOrder == "" {
		t.Fatalf("Pebble's directory has no newOrder: %v", err)
	}

	p := &ACMEProxy{newOrder: newOrder.Path}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: target.Scheme, Host: target.Host})
			r.Out.Host = r.In.Host
		},
		Transport: tr,
	}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+r.URL.Path)
		var delay time.Duration
		if r.Method == http.MethodPost && r.URL.Path == p.newOrder {
			p.orders++
			delay = p.orderDelay
		}
		p.mu.Unlock()
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	p.DirectoryURL = p.srv.URL + target.Path
	return p
}

// Client is an HTTP client that trusts the proxy, for an ACME client.
func (p *ACMEProxy) Client() *http.Client { return p.srv.Client() }

// CAFile writes the PEM of the proxy's certificate to a file in dir, for a
// program's SSL_CERT_FILE, and returns its path.
func (p *ACMEProxy) CAFile(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "acme-proxy-ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Requests lists the requests seen so far, as "METHOD /path".
func (p *ACMEProxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Orders is how many certificate orders (newOrder requests) were made.
func (p *ACMEProxy) Orders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders
}
