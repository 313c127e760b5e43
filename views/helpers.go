package views

import (
	"slices"
	"strconv"
	"strings"

	"github.com/a-h/templ"

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

// FieldErrorID is the id of the message FieldError shows for a field.
func FieldErrorID(field string) string { return "error-" + field }

// FieldAttrs are the attributes that tie an input to its error message:
// aria-invalid, and aria-describedby naming the message (with the ids of
// any help text the field already has). Spread them on the input:
// <input id="name" { FieldAttrs(f.Err("name"), "name", "name-help")... }/>.
func FieldAttrs(msg, field string, help ...string) templ.Attributes {
	ids := help
	if msg != "" {
		ids = append(slices.Clone(help), FieldErrorID(field))
	}
	a := templ.Attributes{}
	if len(ids) > 0 {
		a["aria-describedby"] = strings.Join(ids, " ")
	}
	if msg != "" {
		a["aria-invalid"] = "true"
	}
	return a
}

// PlanTitle writes a plan's name as people write it: "pro" is "Pro",
// "team-plus" is "Team plus". The name itself stays what forms send.
func PlanTitle(name string) string {
	if name == "" {
		return ""
	}
	s := strings.ReplaceAll(name, "-", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

func strconvItoa(n int) string { return strconv.Itoa(n) }

// breakParts cuts s after each @, ., _ and -, for Breakable.
func breakParts(s string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '@', '.', '_', '-':
			if i+1 < len(s) {
				parts = append(parts, s[start:i+1])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}
