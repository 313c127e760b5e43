package web

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

// A sealed preview opens only unchanged, on its own tenant's portal, and
// not once it has expired; a draft too large for an address is said so.
func TestPreviewSeal(t *testing.T) {
	t.Parallel()
	s := &Server{Config: Config{SessionKey: []byte("0123456789abcdef0123456789abcdef")}}
	token, err := s.sealPreview("tenant-a", previewDraft{Surface: "email:welcome", Draft: true, Subject: "Hi", HTML: "<p>x</p>"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.openPreview("tenant-a", token); err != nil || d.HTML != "<p>x</p>" || d.Surface != "email:welcome" {
		t.Fatalf("open: %+v %v", d, err)
	}
	if _, err := s.openPreview("tenant-b", token); err == nil {
		t.Error("another tenant opened the draft")
	}
	payload, sig, _ := strings.Cut(token, ".")
	for name, bad := range map[string]string{
		"payload changed": "A" + payload[1:] + "." + sig,
		"no signature":    payload,
		"signature cut":   payload + "." + sig[:10],
		"empty":           "",
		"too long":        strings.Repeat("A", maxPreviewToken+1) + "." + sig,
	} {
		if _, err := s.openPreview("tenant-a", bad); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Another server's key does not open it; the previous key (during a
	// rollover) does.
	other := &Server{Config: Config{SessionKey: []byte("another key, also thirty-two bytes")}}
	if _, err := other.openPreview("tenant-a", token); err == nil {
		t.Error("a draft sealed with another key opened")
	}
	other.Config.PreviousSessionKey = s.Config.SessionKey
	if _, err := other.openPreview("tenant-a", token); err != nil {
		t.Errorf("the previous key does not open a draft: %v", err)
	}
	// Random text does not compress: a large enough draft cannot travel.
	raw := make([]byte, 150<<10)
	rand.Read(raw)
	big := base64.StdEncoding.EncodeToString(raw)
	if _, err := s.sealPreview("tenant-a", previewDraft{Draft: true, HTML: big}); err != errPreviewTooLarge {
		t.Errorf("a %d-byte draft: %v", len(big), err)
	}
}
