package tenancy

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NameMaxLen bounds display names; longer ones are refused, not cut, so what
// is stored is what the operator typed.
const NameMaxLen = 200

// ValidateName checks a display name (of a tenant, a user): present, valid
// UTF-8, no control characters, at most NameMaxLen characters. Quotes,
// symbols and any script are fine: names are stored as data, never as SQL
// or markup.
func ValidateName(field, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return FieldErrorf(EINVALID, field, "%s is required", field)
	case !utf8.ValidString(name):
		return FieldErrorf(EINVALID, field, "%s is not valid UTF-8", field)
	case utf8.RuneCountInString(name) > NameMaxLen:
		return FieldErrorf(EINVALID, field, "%s is too long: %d characters, at most %d", field, utf8.RuneCountInString(name), NameMaxLen)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return FieldErrorf(EINVALID, field, "%s must not contain control characters such as newlines", field)
		}
	}
	return nil
}

// NormalizeEmail trims an address and checks it is a plain address
// (user@example.com, no display name). The domain is lowercased; the local
// part is kept as given, and addresses are compared case-insensitively.
func NormalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", FieldErrorf(EINVALID, "email", "email is required")
	}
	if len(email) > 254 {
		return "", FieldErrorf(EINVALID, "email", "email %s is too long", Quote(email))
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", FieldErrorf(EINVALID, "email", "email %s is not a valid address", Quote(email))
	}
	at := strings.LastIndexByte(email, '@')
	if !strings.Contains(email[at+1:], ".") && email[at+1:] != "localhost" {
		return "", FieldErrorf(EINVALID, "email", "email %s is not a valid address", Quote(email))
	}
	return email[:at] + "@" + strings.ToLower(email[at+1:]), nil
}

// IsUUID reports whether s is a UUID in its canonical 36-character form.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// FormatCount writes n with thousands separators: 100000 → "100,000".
func FormatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
