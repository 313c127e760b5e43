package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/pgtest"
)

// Changes made at the command line are recorded as the operator's, and
// nself tenant audit shows them, filtered.
func TestTenantAuditRecordsCLIActions(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), "USER=alice")
	c.ok("tenant", "create", "Acme", "--slug", "acme", "--owner", "ann@acme.example")
	c.ok("tenant", "create", "Globex", "--slug", "globex")
	bob := createdID(t, c.ok("user", "create", "acme", "bob@acme.example"))
	c.ok("tenant", "member", "add", "acme", bob)
	c.ok("tenant", "member", "update", "acme", bob, "admin")
	c.ok("whitelabel", "brand", "set", "acme", "--primary-color", "#112233")
	c.ok("whitelabel", "brand", "set", "acme", "--primary-color", "#445566")
	c.ok("tenant", "setting", "set", "globex", "branding.tagline", "Globex only")
	// A refused change leaves nothing: the last owner stays.
	if r := c.run("", "tenant", "member", "remove", "acme", "ann@acme.example"); r.code == 0 {
		t.Fatal("the last owner was removed")
	}
	c.ok("tenant", "suspend", "acme")

	out := c.ok("tenant", "audit", "acme")
	const ts = `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`
	mustMatch(t, out,
		`\ATIME +ACTOR +ADDRESS +ACTION +TARGET +CHANGE\n─+\n`,
		`^`+ts+`  cli:alice  +tenant\.suspend  +acme  +status: active → suspended$`,
		`^`+ts+`  cli:alice  +branding\.update +brand colors +primary color: #112233 → #445566$`,
		`^`+ts+`  cli:alice  +member\.update  +bob@acme\.example +role: member → admin$`,
		`^`+ts+`  cli:alice  +member\.add  +bob@acme\.example +role: \(none\) → member$`,
		`^`+ts+`  cli:alice  +user\.create  +bob@acme\.example +password link issued$`,
		`^`+ts+`  cli:alice  +tenant\.create  +acme  +name: Acme, plan: free, strategy: rls, owner: ann@acme\.example$`)
	if strings.Contains(out, "member.remove") || strings.Contains(out, "Globex") || strings.Contains(out, "globex") {
		t.Errorf("acme's log holds what it should not:\n%s", out)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2+7 || !strings.Contains(lines[2], "tenant.suspend") {
		t.Errorf("want 7 entries, newest first:\n%s", out)
	}

	mustMatch(t, c.ok("tenant", "audit", "globex"), `setting\.set +branding\.tagline +branding\.tagline: \(none\) → Globex only`)

	// Filters and JSON.
	var list []auditJSON
	if err := json.Unmarshal([]byte(c.ok("tenant", "audit", "acme", "--action", "member", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Action != "member.update" || list[1].Action != "member.add" ||
		list[0].ActorKind != "cli" || list[0].Actor != "alice" || list[0].Summary != "role: member → admin" || list[0].ClientAddr != "" {
		t.Errorf("--action member --json: %+v", list)
	}
	if out := c.ok("tenant", "audit", "acme", "--actor", "bob"); strings.Count(out, "\n") != 2 {
		t.Errorf("--actor bob matches:\n%s", out)
	}
	today := time.Now().UTC().Format("2006-01-02")
	if out := c.ok("tenant", "audit", "acme", "--since", today, "--until", today, "--action", "tenant"); strings.Count(out, "\n") != 4 {
		t.Errorf("today's tenant entries:\n%s", out)
	}
	if out := c.ok("tenant", "audit", "acme", "--until", "2000-01-01"); strings.Count(out, "\n") != 2 {
		t.Errorf("entries before 2000:\n%s", out)
	}
	r := c.run("", "tenant", "audit", "acme", "--limit", "2")
	if r.code != 0 || strings.Count(r.out, "\n") != 4 || !strings.Contains(r.err, "2 of 7 entries") {
		t.Errorf("--limit 2: %d\n%s\n%s", r.code, r.out, r.err)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--limit", "0"}, {"--action", "Member!"}} {
		r := c.run("", append([]string{"tenant", "audit", "acme"}, bad...)...)
		if r.code == 0 || !strings.HasPrefix(r.err, "error: ") {
			t.Errorf("%v: exit %d, %q", bad, r.code, r.err)
		}
	}
	if r := c.run("", "tenant", "audit", "nobody"); r.code != 1 || !strings.Contains(r.err, "not found") {
		t.Errorf("unknown tenant: %d %q", r.code, r.err)
	}
}
