package secretbox_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nself/nself/internal/secretbox"
)

func TestSealOpen(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	b, err := secretbox.New(key, "sso")
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := b.Seal([]byte("client-secret"), "tenant-a")
	if bytes.Contains(sealed, []byte("client-secret")) {
		t.Fatal("the sealed value holds the secret in the clear")
	}
	plain, err := b.Open(sealed, "tenant-a")
	if err != nil || string(plain) != "client-secret" {
		t.Fatalf("Open = %q, %v", plain, err)
	}
	other, _ := secretbox.New(key, "other purpose")
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"another tenant":  func() ([]byte, error) { return b.Open(sealed, "tenant-b") },
		"another purpose": func() ([]byte, error) { return other.Open(sealed, "tenant-a") },
		"changed":         func() ([]byte, error) { return b.Open(flipped, "tenant-a") },
		"short":           func() ([]byte, error) { return b.Open(sealed[:10], "tenant-a") },
	} {
		if _, err := open(); !errors.Is(err, secretbox.ErrOpen) {
			t.Errorf("%s: err = %v, want ErrOpen", name, err)
		}
	}
	if _, err := secretbox.New([]byte("short"), "sso"); err == nil {
		t.Error("a short secret was accepted")
	}
}
