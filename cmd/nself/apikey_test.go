package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/nself/nself/internal/pgtest"
)

func TestAPIKeyAndAdminCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	c.ok("tenant", "create", "Acme", "--slug", "acme")

	out := c.ok("apikey", "create", "acme", "CI deploys")
	mustMatch(t, out,
		`^✓ API key created: CI deploys \(prefix nsk_[A-Za-z0-9_-]{8}\)$`,
		`^  Key: nsk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$`)
	prefix := regexp.MustCompile(`prefix (nsk_[A-Za-z0-9_-]{8})`).FindStringSubmatch(out)[1]
	key := regexp.MustCompile(`Key: (\S+)`).FindStringSubmatch(out)[1]
	out = c.ok("apikey", "list", "acme")
	mustMatch(t, out, `^PREFIX\s+NAME\s+STATUS\s+CREATED_AT\s+LAST_USED_AT$`, `^`+regexp.QuoteMeta(prefix)+`\s+CI deploys\s+active\s+.*never$`)
	if strings.Contains(out, key) {
		t.Error("list shows the key itself")
	}
	mustMatch(t, c.ok("apikey", "revoke", "acme", prefix), `^✓ API key revoked: CI deploys`)
	mustMatch(t, c.ok("apikey", "list", "acme"), `\s+revoked\s+`)
	if r := c.run("", "apikey", "revoke", "acme", "nsk_nothere"); r.code != 1 || !strings.Contains(r.err, `no API key with prefix "nsk_nothere"`) {
		t.Errorf("revoke unknown: %d %q", r.code, r.err)
	}
	if r := c.run("", "apikey", "create", "acme", ""); r.code != 1 || !strings.Contains(r.err, "name is required") {
		t.Errorf("empty name: %d %q", r.code, r.err)
	}

	r := c.run("a long enough password\n", "admin", "create", "root@platform.test", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("admin create: %d %q", r.code, r.err)
	}
	mustMatch(t, r.out, `^✓ Platform admin created: root@platform\.test \(ID: `+uuidRE+`\)$`, `^  Console: https://admin\.example\.test$`)
	if r := c.run("a long enough password\n", "admin", "create", "ROOT@platform.test", "--password-stdin"); r.code != 1 || !strings.Contains(r.err, "already exists") {
		t.Errorf("duplicate admin: %d %q", r.code, r.err)
	}
	if r := c.run("", "admin", "create", "x@platform.test"); r.code != 1 || !strings.Contains(r.err, "--password-stdin") {
		t.Errorf("no terminal, no stdin flag: %d %q", r.code, r.err)
	}
	if r := c.run("short\n", "admin", "create", "y@platform.test", "--password-stdin"); r.code != 1 || !strings.Contains(r.err, "too short") {
		t.Errorf("short password: %d %q", r.code, r.err)
	}
}
