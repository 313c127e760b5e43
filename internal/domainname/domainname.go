// Package domainname converts internationalized domain names (IDNA 2008,
// with the UTS #46 mapping browsers use) to the ASCII form DNS and the
// database hold, and back for display. The domain package takes the
// conversion as a function, so that it stays on the standard library,
// which has no Unicode normalization tables.
package domainname

import (
	"strings"

	"golang.org/x/net/idna"
)

// ToASCII returns name in its ASCII form: each label with letters beyond
// ASCII in punycode (bücher.example → xn--bcher-kva.example), the whole
// lowercased and normalized, as a browser would look it up. It fails for
// names IDNA does not allow, including xn-- labels that are not valid
// punycode.
func ToASCII(name string) (string, error) {
	ascii, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", err
	}
	return strings.ToLower(ascii), nil
}

// ToUnicode returns name for display, with punycode labels decoded; a name
// that does not decode is returned as it is.
func ToUnicode(name string) string {
	u, err := idna.Lookup.ToUnicode(name)
	if err != nil {
		return name
	}
	return u
}
