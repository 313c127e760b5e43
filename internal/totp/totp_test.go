package totp_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	ptotp "github.com/pquerna/otp/totp"

	"github.com/nself/nself/internal/totp"
)

func TestMatch(t *testing.T) {
	e, err := totp.TOTP{}.NewKey("Acme", "ann@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(e.QRCode, []byte("\x89PNG")) || !strings.HasPrefix(e.URI, "otpauth://totp/Acme:ann@acme.example?") {
		t.Fatalf("enrolment: %q", e.URI)
	}
	now := time.Unix(1_800_000_015, 0)
	step := now.Unix() / 30
	for _, tc := range []struct {
		at   time.Time
		step int64
		ok   bool
	}{
		{now, step, true},
		{now.Add(-30 * time.Second), step - 1, true},
		{now.Add(30 * time.Second), step + 1, true},
		{now.Add(-90 * time.Second), 0, false},
		{now.Add(90 * time.Second), 0, false},
	} {
		code, _ := ptotp.GenerateCode(e.Secret, tc.at)
		got, ok := totp.TOTP{}.Match(e.Secret, code, now)
		if ok != tc.ok || got != tc.step {
			t.Errorf("code of %v: step %d %v, want %d %v", tc.at.Sub(now), got, ok, tc.step, tc.ok)
		}
	}
	if _, ok := (totp.TOTP{}).Match(e.Secret, "12345", now); ok {
		t.Error("five digits matched")
	}
	again, err := totp.TOTP{}.KeyFor("Acme", "ann@acme.example", e.Secret)
	if err != nil || again.Secret != e.Secret || again.URI != e.URI {
		t.Errorf("KeyFor: %v %q", err, again.URI)
	}
}

func TestSealer(t *testing.T) {
	key, err := totp.ParseKey("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := totp.NewSealer(key)
	sealed, _ := s.Seal([]byte("JBSWY3DPEHPK3PXP"), "t|u")
	if bytes.Contains(sealed, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatal("sealed value holds the secret")
	}
	if plain, err := s.Open(sealed, "t|u"); err != nil || string(plain) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("open: %q %v", plain, err)
	}
	other, _ := totp.NewSealer(bytes.Repeat([]byte{7}, 32))
	if _, err := other.Open(sealed, "t|u"); err == nil {
		t.Error("opened with another key")
	}
	if _, err := s.Open(sealed, "t|v"); err == nil {
		t.Error("opened for another account")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(sealed, "t|u"); err == nil {
		t.Error("opened a changed value")
	}
	for _, bad := range []string{"", "short", strings.Repeat("z", 64)} {
		if _, err := totp.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	if _, err := totp.ParseKey(strings.Repeat("ab", 32)); err != nil {
		t.Errorf("hex key: %v", err)
	}
}
