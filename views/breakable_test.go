package views

import (
	"context"
	"strings"
	"testing"
)

// Breakable offers line breaks after @, dots, underscores and hyphens,
// escapes what it writes, and adds no spaces.
func TestBreakable(t *testing.T) {
	for in, want := range map[string]string{
		"owner@acme.test":       "owner@<wbr>acme.<wbr>test",
		"contact.support_email": "contact.<wbr>support_<wbr>email",
		"cli:root":              "cli:root",
		"a.":                    "a.",
		"<b>@x":                 "&lt;b&gt;@<wbr>x",
		"":                      "",
	} {
		var b strings.Builder
		if err := Breakable(in).Render(context.Background(), &b); err != nil || b.String() != want {
			t.Errorf("Breakable(%q) = %q, %v; want %q", in, b.String(), err, want)
		}
	}
}
