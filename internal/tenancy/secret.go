package tenancy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// NewSecret returns a random, URL-safe secret of 32 bytes (43 characters)
// for one-time links and keys, and the hash to store in its place.
func NewSecret() (secret string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b) // never fails; see crypto/rand.Read
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret)
}

// HashSecret hashes a secret for storage and lookup. The secrets are random
// and long, so a fast hash is enough: no dictionary can reach them.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
