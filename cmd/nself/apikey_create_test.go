package main

import (
	"strings"
	"testing"

	"github.com/nself/nself/internal/pgtest"
)

// TestAPIKeyCreateScope: the CLI makes keys with the portal's scopes, and
// refuses a scope that reaches nothing or names an unknown surface.
func TestAPIKeyCreateScope(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	mustMatch(t, c.ok("apikey", "create", "acme", "reports", "--read-only", "--surfaces", "api", "--expires-in-days", "30"),
		`^✓ API key created: reports `)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--surfaces", "web"}, `invalid --surfaces "web"`},
		{[]string{"--surfaces", ""}, "choose what the key may reach"},
		{[]string{"--expires-in-days", "-1"}, "invalid --expires-in-days"},
	} {
		r := c.run("", append([]string{"apikey", "create", "acme", "bad"}, tc.args...)...)
		if r.code == 0 || !strings.Contains(r.err, tc.err) {
			t.Errorf("%v: %d %q", tc.args, r.code, r.err)
		}
	}
}
