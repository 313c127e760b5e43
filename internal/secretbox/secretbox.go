// Package secretbox seals secrets the platform must store and read back
// (tenants' single sign-on client secrets) with AES-256-GCM. The key is
// derived from a setting, never stored beside what it seals.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// version leads every sealed value, so the key or cipher can change later
// without guessing what an old value is.
const version = 1

// Box seals and opens values with one key.
type Box struct {
	aead cipher.AEAD
}

// New derives an AES-256 key from secret for purpose (so one setting can
// key several boxes without them sharing a key). secret must be at least
// 32 characters.
func New(secret []byte, purpose string) (*Box, error) {
	if len(secret) < 32 {
		return nil, errors.New("secretbox: the secret must be at least 32 characters")
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("nself secretbox|" + purpose))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plain; context is authenticated with it, so the value
// opens only with the same context.
func (b *Box) Seal(plain []byte, context string) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, plain, []byte(context)), nil
}

// ErrOpen is the failure to open a value: another key, another context,
// or a changed value.
var ErrOpen = errors.New("secretbox: the value cannot be opened with this key and context")

// Open decrypts a value Seal made with the same key and context.
func (b *Box) Open(sealed []byte, context string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("%w (unknown version %d)", ErrOpen, sealed[0])
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
