// Package totp makes and checks authenticator secrets and codes
// (RFC 6238, with github.com/pquerna/otp), draws their QR codes
// (github.com/skip2/go-qrcode), and seals secrets for storage with
// AES-GCM.
package totp

import (
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	ptotp "github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/nself/nself/internal/secretbox"

	"github.com/nself/nself/internal/tenancy"
)

// Codes are six digits, valid for 30 seconds: what every authenticator app
// expects when a QR code says nothing else.
const (
	period = 30
	digits = otp.DigitsSix
)

// TOTP implements tenancy.TOTP.
type TOTP struct{}

var _ tenancy.TOTP = TOTP{}

// NewKey makes a 20-byte secret for account at issuer, with its QR code.
func (t TOTP) NewKey(issuer, account string) (tenancy.Enrolment, error) {
	return t.key(issuer, account, nil)
}

// KeyFor is NewKey for a secret made before.
func (t TOTP) KeyFor(issuer, account, secret string) (tenancy.Enrolment, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret))
	if err != nil {
		return tenancy.Enrolment{}, fmt.Errorf("read TOTP secret: %w", err)
	}
	return t.key(issuer, account, raw)
}

func (TOTP) key(issuer, account string, secret []byte) (tenancy.Enrolment, error) {
	k, err := ptotp.Generate(ptotp.GenerateOpts{Issuer: issuer, AccountName: account, Period: period, Digits: digits, Algorithm: otp.AlgorithmSHA1, Secret: secret})
	if err != nil {
		return tenancy.Enrolment{}, fmt.Errorf("make TOTP secret: %w", err)
	}
	png, err := qrcode.Encode(k.URL(), qrcode.Medium, 256)
	if err != nil {
		return tenancy.Enrolment{}, fmt.Errorf("draw QR code: %w", err)
	}
	return tenancy.Enrolment{Secret: k.Secret(), URI: k.URL(), QRCode: png}, nil
}

// Match returns the time step at which code is valid for secret: the
// current one or one either side, for clocks a little apart.
func (TOTP) Match(secret, code string, now time.Time) (int64, bool) {
	code = strings.TrimSpace(strings.ReplaceAll(code, " ", ""))
	if len(code) != 6 {
		return 0, false
	}
	step := now.Unix() / period
	for _, s := range []int64{step, step - 1, step + 1} {
		want, err := ptotp.GenerateCodeCustom(secret, time.Unix(s*period, 0), ptotp.ValidateOpts{Period: period, Digits: digits, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// ParseKey reads a 32-byte key written as 64 hex digits or in base64.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("accepts 32 random bytes, as 64 hex digits or in base64 (openssl rand -base64 32)")
}

// NewSealer returns the box that seals authenticator secrets, keyed by a
// 32-byte key (ParseKey); each secret is sealed for its account.
func NewSealer(key []byte) (*secretbox.Box, error) { return secretbox.New(key, "totp secrets") }
