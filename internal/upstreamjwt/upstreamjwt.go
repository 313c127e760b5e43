// Package upstreamjwt signs the short-lived JWTs the gateway sends to the
// application (UPSTREAM_AUTH=jwt) with golang-jwt: HS256 with a shared
// secret, or RS256 or EdDSA with a private key whose public half the
// application holds. The claims are Hasura's, so Hasura's JWT mode works
// unchanged.
package upstreamjwt

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nself/nself/internal/tenancy"
)

// MinSecretLen is the shortest HS256 secret accepted: Hasura refuses
// shorter ones, and a shorter one could be guessed.
const MinSecretLen = 32

// DefaultTTL is how long a token is valid. Short, so a revoked credential
// stops reaching the application within it; the gateway signs a new one
// for each request once half of it is gone.
const DefaultTTL = 5 * time.Minute

// Signer signs tokens for callers. Tokens are reused while more than half
// their life is left, so a busy caller costs one signature per half TTL,
// not one per request (an RS256 signature takes about a millisecond).
type Signer struct {
	method jwt.SigningMethod
	key    any // []byte, *rsa.PrivateKey or ed25519.PrivateKey
	public crypto.PublicKey
	kid    string
	ttl    time.Duration
	now    func() time.Time

	mu     sync.Mutex
	tokens map[string]signed
}

type signed struct {
	token string
	renew time.Time // reuse until then
	exp   time.Time
}

// maxCached bounds the tokens kept; past it, expired ones are dropped, and
// if none had expired, all of them.
const maxCached = 100_000

// NewHS256 returns a signer sharing secret with the application.
func NewHS256(secret []byte, ttl time.Duration) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("the HS256 secret must be at least %d characters (got %d)", MinSecretLen, len(secret))
	}
	return newSigner(jwt.SigningMethodHS256, append([]byte(nil), secret...), nil, ttl), nil
}

// LoadKeyFile returns a signer with the PEM private key in path: an RSA key
// (PKCS #1 or #8, 2048 bits or more) signs RS256, an Ed25519 key (PKCS #8)
// signs EdDSA.
func LoadKeyFile(path string, ttl time.Duration) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block: expected an RSA or Ed25519 private key", path)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s holds a %q: expected an RSA or Ed25519 private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%s: the RSA key has %d bits; at least 2048 are needed", path, k.N.BitLen())
		}
		return newSigner(jwt.SigningMethodRS256, k, &k.PublicKey, ttl), nil
	case ed25519.PrivateKey:
		return newSigner(jwt.SigningMethodEdDSA, k, k.Public(), ttl), nil
	}
	return nil, fmt.Errorf("%s holds a %T key: expected an RSA or Ed25519 private key", path, key)
}

func newSigner(m jwt.SigningMethod, key any, public crypto.PublicKey, ttl time.Duration) *Signer {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s := &Signer{method: m, key: key, public: public, ttl: ttl, now: time.Now, tokens: map[string]signed{}}
	if public != nil {
		der, _ := x509.MarshalPKIXPublicKey(public)
		sum := sha256.Sum256(der)
		s.kid = hex.EncodeToString(sum[:8])
	}
	return s
}

// Algorithm is the JWT algorithm the signer uses: HS256, RS256 or EdDSA.
func (s *Signer) Algorithm() string { return s.method.Alg() }

// Sign returns a token for the caller, valid for the signer's TTL.
func (s *Signer) Sign(c tenancy.UpstreamCaller) (string, error) {
	now := s.now()
	k := c.Key()
	s.mu.Lock()
	t, ok := s.tokens[k]
	s.mu.Unlock()
	if ok && now.Before(t.renew) {
		return t.token, nil
	}
	tok := jwt.NewWithClaims(s.method, jwt.MapClaims(c.UpstreamClaims(now, s.ttl)))
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	str, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign the upstream token: %w", err)
	}
	s.mu.Lock()
	if len(s.tokens) >= maxCached {
		for key, t := range s.tokens {
			if !now.Before(t.exp) {
				delete(s.tokens, key)
			}
		}
		if len(s.tokens) >= maxCached {
			clear(s.tokens)
		}
	}
	s.tokens[k] = signed{token: str, renew: now.Add(s.ttl / 2), exp: now.Add(s.ttl)}
	s.mu.Unlock()
	return str, nil
}

// HasuraJWTSecret is the value of HASURA_GRAPHQL_JWT_SECRET that makes
// Hasura accept the signer's tokens: the shared secret, or the public key
// in PEM, with nself as the issuer.
func (s *Signer) HasuraJWTSecret() (string, error) {
	cfg := map[string]string{"issuer": tenancy.UpstreamTokenIssuer}
	switch s.method {
	case jwt.SigningMethodHS256:
		cfg["type"], cfg["key"] = "HS256", string(s.key.([]byte))
	case jwt.SigningMethodRS256, jwt.SigningMethodEdDSA:
		der, err := x509.MarshalPKIXPublicKey(s.public)
		if err != nil {
			return "", err
		}
		cfg["type"] = "RS256"
		if s.method == jwt.SigningMethodEdDSA {
			cfg["type"] = "Ed25519"
		}
		cfg["key"] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	default:
		return "", errors.New("unknown signing method")
	}
	b, err := json.Marshal(cfg)
	return string(b), err
}
