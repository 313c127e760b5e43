package useragent_test

import (
	"testing"

	"github.com/nself/nself/internal/useragent"
)

func TestDescribe(t *testing.T) {
	for header, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0":                                                        "Firefox on Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "Safari on iOS",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36":                           "Chrome on Linux",
		"curl/8.0": "A program (curl/8.0)",
		"":         "Unknown browser",
	} {
		if got := useragent.Describe(header); got != want {
			t.Errorf("Describe(%q) = %q, want %q", header, got, want)
		}
	}
}
