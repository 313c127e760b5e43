package main

import (
	"strings"
	"testing"

	"github.com/nself/nself/internal/pgtest"
)

func TestOrganizations(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	c.ok("tenant", "create", "Acme East", "--slug", "acme-east")
	c.ok("tenant", "create", "Acme West", "--slug", "acme-west")
	mustMatch(t, c.ok("org", "create", "Acme Holdings"), `^✓ Organization created: acme-holdings \(ID: `+uuidRE+`\)$`)
	mustMatch(t, c.ok("org", "add-tenant", "acme-holdings", "acme-east"), `^✓ Tenant added to organization: acme-holdings, acme-east$`)
	c.ok("org", "add-tenant", "acme-holdings", "acme-west")
	mustMatch(t, c.ok("org", "tenants", "acme-holdings"), `^ID\s+SLUG\s+NAME\s+STATUS\s+PLAN$`, `acme-east\s+Acme East\s+active`, `acme-west\s+Acme West\s+active`)
	mustMatch(t, c.ok("org", "list"), `acme-holdings\s+Acme Holdings\s+2\s+`)
	mustMatch(t, c.ok("org", "remove-tenant", "acme-holdings", "acme-west"), `^✓ Tenant removed from organization`)
	if out := c.ok("org", "tenants", "acme-holdings"); strings.Contains(out, "acme-west") {
		t.Errorf("removed tenant still listed:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"org", "create", "Acme Holdings"}, "already exists"},
		{[]string{"org", "add-tenant", "acme-holdings", "acme-east"}, "already in organization"},
		{[]string{"org", "add-tenant", "nope", "acme-east"}, `organization "nope" not found`},
		{[]string{"org", "add-tenant", "acme-holdings", "nope"}, `tenant "nope" not found`},
		{[]string{"org", "remove-tenant", "acme-holdings", "acme-west"}, "is not in organization"},
		{[]string{"org", "create", "X", "--slug", "admin"}, "reserved"},
	} {
		r := c.run("", tc.args...)
		if r.code != 1 || !strings.Contains(r.err, tc.msg) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want one line with %q", tc.args, r.code, r.err, tc.msg)
		}
	}
}
