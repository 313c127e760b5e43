package views

import (
	"strconv"

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
