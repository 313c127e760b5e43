package domainname_test

import (
	"testing"

	"github.com/nself/nself/internal/domainname"
)

func TestToASCII(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":           "example.com",
		"bücher.example":        "xn--bcher-kva.example",
		"BÜCHER.example":        "xn--bcher-kva.example",
		"cafe\u0301.com":        "xn--caf-dma.com", // decomposed é: normalized first
		"café.com":              "xn--caf-dma.com",
		"例え.テスト":                "xn--r8jz45g.xn--zckzah",
		"ｅｘａｍｐｌｅ.com":           "example.com",
		"xn--bcher-kva.example": "xn--bcher-kva.example",
	} {
		got, err := domainname.ToASCII(in)
		if err != nil || got != want {
			t.Errorf("ToASCII(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"xn--zz.com", "a_b.com", "-ab.com", "a.b:80"} {
		if got, err := domainname.ToASCII(in); err == nil {
			t.Errorf("ToASCII(%q) = %q, want an error", in, got)
		}
	}
	if got := domainname.ToUnicode("xn--bcher-kva.example"); got != "bücher.example" {
		t.Errorf("ToUnicode = %q", got)
	}
	if got := domainname.ToUnicode("xn--zz.com"); got != "xn--zz.com" {
		t.Errorf("ToUnicode of an invalid name = %q, want it unchanged", got)
	}
}
