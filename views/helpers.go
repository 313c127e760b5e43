package views

import (
	"strconv"
	"strings"

	"github.com/nself/nself/internal/tenancy"
)

func statusText(status int) string { return strconv.Itoa(status) }

// Count writes n with its noun: "1 member", "25 members", "1,024 members".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return tenancy.FormatCount(int64(n)) + " " + many
}

// telNumber is a phone number as a tel: link wants it: its digits and a
// leading +.
func telNumber(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= '0' && r <= '9' || r == '+' && i == 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}
