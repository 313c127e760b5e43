package tenancy

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Slug limits: a slug becomes a DNS label (acme.BASE_DOMAIN), so it follows
// the label rules; two characters at least (hr, it: departments are
// tenants too) keep one-letter names out.
const (
	SlugMinLen = 2
	SlugMaxLen = 63
)

// reservedSlugs are names the platform uses for its own hosts and paths, or
// that would mislead people if a tenant held them.
var reservedSlugs = map[string]bool{
	"www": true, "api": true, "admin": true, "app": true, "mail": true,
	"static": true, "assets": true, "auth": true, "billing": true,
	"root": true, "system": true, "support": true, "help": true,
	"status": true, "docs": true, "dashboard": true, "portal": true,
	"console": true, "login": true, "logout": true, "signin": true,
	"signup": true, "register": true, "account": true, "accounts": true,
	"settings": true, "ftp": true, "smtp": true, "imap": true, "pop": true,
	"pop3": true, "ns": true, "ns1": true, "ns2": true, "mx": true, "dns": true, "cdn": true,
	"media": true, "files": true, "storage": true, "minio": true,
	"stripe": true, "webhook": true, "webhooks": true, "internal": true,
	"localhost": true, "nself": true, "platform": true, "security": true,
	"abuse": true, "postmaster": true, "hostmaster": true, "webmaster": true,
	"blog": true, "status-page": true, "graphql": true, "hasura": true,
}

// IsReservedSlug reports whether slug is kept for the platform.
func IsReservedSlug(slug string) bool { return reservedSlugs[slug] }

// ValidateSlug checks slug against each rule and names the first it breaks.
func ValidateSlug(slug string) error {
	invalid := func(format string) error {
		return FieldErrorf(EINVALID, "slug", format, Quote(slug))
	}
	switch n := utf8.RuneCountInString(slug); {
	case slug == "":
		return FieldErrorf(EINVALID, "slug", "slug is required")
	case n < SlugMinLen:
		return invalid("slug %s is too short: use 2 to 63 characters")
	case n > SlugMaxLen:
		return invalid("slug %s is too long: use 2 to 63 characters")
	}
	if strings.ToLower(slug) != slug {
		return invalid("slug %s must be lowercase")
	}
	for _, r := range slug {
		if !isSlugRune(r) && r != '-' {
			return invalid("slug %s may contain only a-z, 0-9 and hyphens")
		}
	}
	if slug[0] == '-' || slug[len(slug)-1] == '-' {
		return invalid("slug %s must start and end with a letter or digit")
	}
	if strings.Contains(slug, "--") {
		return invalid("slug %s must not contain two hyphens in a row")
	}
	if IsUUID(slug) {
		// A reference shaped like an id is looked up as an id.
		return invalid("slug %s looks like a tenant id; choose a name")
	}
	if IsReservedSlug(slug) {
		return invalid("slug %s is reserved; choose another")
	}
	return nil
}

// SlugFromName derives a slug from a display name: letters lose their
// accents, everything else becomes a single hyphen. The result still has to
// pass ValidateSlug (a name of only symbols or non-Latin script yields
// nothing usable, and the caller must then ask for an explicit slug).
func SlugFromName(name string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range foldAccents(strings.ToLower(name)) {
		if isSlugRune(r) {
			b.WriteRune(r)
			hyphen = false
			continue
		}
		if !hyphen && b.Len() > 0 {
			b.WriteByte('-')
			hyphen = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > SlugMaxLen {
		s = strings.TrimRight(s[:SlugMaxLen], "-")
	}
	return s
}

func isSlugRune(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }

// foldAccents maps common accented Latin letters to their base letter, so
// "Café Zürich" becomes "cafe zurich". Letters it does not know are kept and
// later turned into separators.
func foldAccents(s string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf {
			return r
		}
		if base, ok := accentBase[r]; ok {
			return base
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return ' '
	}, s)
}

var accentBase = func() map[rune]rune {
	m := map[rune]rune{}
	for base, forms := range map[rune]string{
		'a': "àáâãäåāăą", 'c': "çćĉċč", 'd': "ďđ", 'e': "èéêëēĕėęě",
		'g': "ĝğġģ", 'h': "ĥħ", 'i': "ìíîïĩīĭįı", 'j': "ĵ", 'k': "ķ",
		'l': "ĺļľŀł", 'n': "ñńņňŉ", 'o': "òóôõöøōŏő", 'r': "ŕŗř",
		's': "śŝşšß", 't': "ţťŧ", 'u': "ùúûüũūŭůűų", 'w': "ŵ",
		'y': "ýÿŷ", 'z': "źżž",
	} {
		for _, r := range forms {
			m[r] = base
		}
	}
	return m
}()

// Quote renders user input for a one-line message: quoted, escaped, and cut
// short so a 10,000-character name cannot flood a terminal or a log.
func Quote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		return strconv.Quote(string(r[:max])) + "…"
	}
	return strconv.Quote(s)
}
