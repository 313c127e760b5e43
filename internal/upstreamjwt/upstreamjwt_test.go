package upstreamjwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

func TestKeyFileRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		return p
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.pem"):                                                                                      "read the signing key",
		write("text.pem", []byte("not a key")):                                                                                 "holds no PEM block",
		write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})):                               "expected an RSA or Ed25519 private key",
		write("small.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})): "at least 2048",
		write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})):                                     "expected an RSA or Ed25519 private key",
	} {
		if _, err := LoadKeyFile(path, 0); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", filepath.Base(path), err, want)
		}
	}
	if _, err := NewHS256([]byte("short"), 0); err == nil {
		t.Error("a short secret was accepted")
	}
}

// A token is reused while half its life is left, and signed anew after.
func TestSignReuses(t *testing.T) {
	s, err := NewHS256([]byte(strings.Repeat("k", 32)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	c := tenancy.UpstreamCaller{TenantID: "t", Role: "admin", UserID: "u"}
	a, _ := s.Sign(c)
	now = now.Add(29 * time.Second)
	if b, _ := s.Sign(c); b != a {
		t.Error("a fresh token was not reused")
	}
	other := c
	other.Role = "member"
	if b, _ := s.Sign(other); b == a {
		t.Error("another role got the same token")
	}
	now = now.Add(2 * time.Second)
	if b, _ := s.Sign(c); b == a {
		t.Error("a token past half its life was reused")
	}
}
