package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nself/nself/internal/certtest"
	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/pgtest"
)

// freeAddr is a local address nothing listens on, for serve's TLS side.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// served connects with SNI name and returns the certificate served; roots
// nil accepts any.
func served(t *testing.T, addr, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	d := &net.Dialer{Timeout: time.Minute}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, InsecureSkipVerify: roots == nil})
	if err != nil {
		t.Fatalf("TLS to %s as %s: %v", addr, name, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// startTLSServer is startServer that shows the server's log when the test
// fails.
func startTLSServer(t *testing.T, c *cli, flags ...string) *exec.Cmd {
	t.Helper()
	var log syncBuffer
	cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "1s", "--shutdown-drain", "0"}, flags...)...)
	cmd.Env = c.env
	cmd.Stderr = &log
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "✓ Serving on http://") {
		t.Fatalf("serve said %q, %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return cmd
}

// syncBuffer is a buffer a process writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tlsCLI is a CLI whose server terminates TLS on tlsAddr, asking Pebble
// through proxy.
func tlsCLI(t *testing.T, proxy *certtest.ACMEProxy, tlsAddr string, extraEnv ...string) *cli {
	return newCLI(t, pgtest.NewURLs(t), append([]string{
		"SESSION_SECRET=tls-test-secret-0123456789abcdef0123",
		"TLS_ADDR=" + tlsAddr,
		"TLS_CERT_DIR=" + t.TempDir(),
		"ACME_DIRECTORY=" + proxy.DirectoryURL,
		// The binary's ACME client trusts the proxy as a system root.
		"SSL_CERT_FILE=" + proxy.CAFile(t, t.TempDir()),
	}, extraEnv...)...)
}

// With TENANT_SUBDOMAIN_WILDCARD=true, `nself serve` serves tenants'
// subdomains and the admin host with the operator's wildcard certificate
// and makes no ACME order for them; a custom domain gets its certificate
// from Pebble; a renewed wildcard certificate is served after SIGHUP.
func TestServeTLSWithWildcardCertificate(t *testing.T) {
	t.Parallel()
	dns := dnstest.NewServer(t)
	proxy := certtest.NewACMEProxy(t)
	ca := certtest.NewCA(t)
	wcDir := t.TempDir()
	first := ca.IssueValid(t, "*.example.test")
	certFile, keyFile := first.Write(t, wcDir)
	tlsAddr := freeAddr(t)
	c := tlsCLI(t, proxy, tlsAddr, "DNS_RESOLVER="+dns.Addr, "TENANT_SUBDOMAIN_WILDCARD=true",
		"TENANT_WILDCARD_CERT_FILE="+certFile, "TENANT_WILDCARD_KEY_FILE="+keyFile)
	c.ok("tenant", "create", "Acme Corporation", "--slug", "acme")
	out := c.ok("tenant", "domain", "add", "acme", "shop.acme.example")
	token := regexp.MustCompile(`Verification token: ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
	dns.SetTXT("_nself-verify.shop.acme.example", "nself-verify="+token)
	hasLines(t, c.ok("tenant", "domain", "verify", "acme", "shop.acme.example"),
		"✓ Domain verified: shop.acme.example",
		"SSL certificate will be generated automatically via ACME ("+proxy.DirectoryURL+")")

	cmd := startTLSServer(t, c)
	for _, name := range []string{"acme.example.test", "admin.example.test"} {
		if leaf := served(t, tlsAddr, name, ca.Pool()); leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) != 0 {
			t.Errorf("%s got %v, not the wildcard certificate", name, leaf.DNSNames)
		}
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, tlsAddr)
		}}}
	resp, err := hc.Get("https://acme.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Sign in to Acme Corporation") {
		t.Errorf("the tenant's portal over TLS: %d", resp.StatusCode)
	}
	if r := proxy.Requests(); len(r) != 0 {
		t.Fatalf("the ACME server was asked while serving the wildcard's names: %v", r)
	}

	// The custom domain's certificate comes from Pebble, in one order.
	leaf := served(t, tlsAddr, "shop.acme.example", nil)
	if !slices.Equal(leaf.DNSNames, []string{"shop.acme.example"}) || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("shop.acme.example got %v from %q", leaf.DNSNames, leaf.Issuer.CommonName)
	}
	if n := proxy.Orders(); n != 1 {
		t.Errorf("%d ACME orders, want 1", n)
	}

	// Renewal: new files, then SIGHUP; the server goes on.
	second := ca.IssueValid(t, "*.example.test")
	second.Write(t, wcDir)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for served(t, tlsAddr, "acme.example.test", ca.Pool()).SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed wildcard certificate is not served after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := proxy.Orders(); n != 1 {
		t.Errorf("%d ACME orders after the renewal, want 1", n)
	}
}

// Without SIGHUP the files are looked at every --cert-reload.
func TestServeReloadsWildcardCertificateOnATimer(t *testing.T) {
	t.Parallel()
	proxy := certtest.NewACMEProxy(t)
	ca := certtest.NewCA(t)
	wcDir := t.TempDir()
	certFile, keyFile := ca.IssueValid(t, "*.example.test").Write(t, wcDir)
	tlsAddr := freeAddr(t)
	c := tlsCLI(t, proxy, tlsAddr, "TENANT_WILDCARD_CERT_FILE="+certFile, "TENANT_WILDCARD_KEY_FILE="+keyFile)
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	startTLSServer(t, c, "--cert-reload", "100ms")
	second := ca.IssueValid(t, "*.example.test")
	second.Write(t, wcDir)
	deadline := time.Now().Add(5 * time.Second)
	for served(t, tlsAddr, "acme.example.test", ca.Pool()).SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed wildcard certificate is not served")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := proxy.Requests(); len(r) != 0 {
		t.Errorf("ACME requests: %v", r)
	}
}

// With TENANT_SUBDOMAIN_WILDCARD=false each subdomain gets a certificate
// of its own from the ACME server, during the first handshake, even when
// the order takes longer than the 5 s the server gives a handshake.
func TestServeTLSPerSubdomain(t *testing.T) {
	t.Parallel()
	proxy := certtest.NewACMEProxy(t)
	proxy.DelayOrders(6 * time.Second)
	tlsAddr := freeAddr(t)
	c := tlsCLI(t, proxy, tlsAddr, "TENANT_SUBDOMAIN_WILDCARD=false")
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	startTLSServer(t, c)
	leaf := served(t, tlsAddr, "acme.example.test", nil)
	if !slices.Equal(leaf.DNSNames, []string{"acme.example.test"}) || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("acme.example.test got %v from %q", leaf.DNSNames, leaf.Issuer.CommonName)
	}
	if n := proxy.Orders(); n != 1 {
		t.Errorf("%d ACME orders, want 1", n)
	}
}

// serve refuses to start, in one line, when the wildcard certificate it is
// told to use is missing or wrong.
func TestServeTLSRefusesABadWildcardCertificate(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	ca := certtest.NewCA(t)
	now := time.Now()
	write := func(c certtest.Cert) []string {
		cert, key := c.Write(t, t.TempDir())
		return []string{"TENANT_WILDCARD_CERT_FILE=" + cert, "TENANT_WILDCARD_KEY_FILE=" + key}
	}
	good := ca.IssueValid(t, "*.example.test")
	goodCert, _ := good.Write(t, t.TempDir())
	_, otherKey := ca.IssueValid(t, "*.example.test").Write(t, t.TempDir())
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct {
		env  []string
		want string
	}{
		{nil, "error: TENANT_SUBDOMAIN_WILDCARD=true needs TENANT_WILDCARD_CERT_FILE and TENANT_WILDCARD_KEY_FILE (a certificate for *.example.test and its key) when nself serves TLS; or set TENANT_SUBDOMAIN_WILDCARD=false to get a certificate per subdomain over ACME"},
		{[]string{"TENANT_WILDCARD_CERT_FILE=" + goodCert}, "error: TENANT_WILDCARD_CERT_FILE and TENANT_WILDCARD_KEY_FILE go together"},
		{[]string{"TENANT_WILDCARD_CERT_FILE=" + missing, "TENANT_WILDCARD_KEY_FILE=" + otherKey},
			`error: invalid TENANT_WILDCARD_CERT_FILE "` + missing + `" with TENANT_WILDCARD_KEY_FILE "` + otherKey + `": cannot read the certificate: stat ` + missing + `: no such file or directory`},
		{[]string{"TENANT_WILDCARD_CERT_FILE=" + goodCert, "TENANT_WILDCARD_KEY_FILE=" + otherKey}, "not a PEM certificate and its private key: private key does not match public key"},
		{write(ca.IssueValid(t, "*.example.com")), "the certificate is for *.example.com, not *.example.test"},
		{write(ca.Issue(t, []string{"*.example.test"}, now.Add(-72*time.Hour), now.Add(-time.Hour))), "the certificate for *.example.test expired on "},
	} {
		env := append([]string{"TLS_ADDR=127.0.0.1:0", "TLS_CERT_DIR=" + t.TempDir()}, c.env...)
		r := runServeBriefly(t, newCLI(t, urls, env...))
		if r.code != 1 || !strings.Contains(r.err, c.want) || strings.Count(r.err, "\n") != 1 || r.out != "" {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", c.env, r.code, r.err, c.want)
		}
	}
	// TLS terminated elsewhere: the setting concerns the proxy, and serve
	// starts without the files (TestServe); with TENANT_SUBDOMAIN_WILDCARD
	// false it starts and orders per subdomain (TestServeTLSPerSubdomain).
}

// runServeBriefly runs `nself serve`, which must stop by itself within
// seconds.
func runServeBriefly(t *testing.T, c *cli) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("serve did not stop: stderr %q", errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return result{code, out.String(), errb.String()}
}
