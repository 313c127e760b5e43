package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/pgtest"
)

// createdID returns the id a "✓ … (ID: …)" line reports.
func createdID(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`\(ID: (` + uuidRE + `)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no id in %q", out)
	}
	return m[1]
}

// ownerOf returns the user id a "tenant create --owner" output names.
func ownerOf(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  Owner: (` + uuidRE + `) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no owner in %q", out)
	}
	return m[1]
}

func TestTenantMembers(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))
	ann := ownerOf(t, c.ok("tenant", "create", "Acme", "--slug", "acme", "--owner", "ann@acme.example"))
	created := c.ok("user", "create", "acme", "Bob@Acme.example")
	bob := createdID(t, created)
	// An account is not a membership, and the output says so.
	mustMatch(t, created, `^  Not a member yet: nself tenant member add acme Bob@acme\.example \[ROLE\] lets them sign in$`)
	cy := createdID(t, c.ok("user", "create", "acme", "cy@acme.example"))
	if r := c.run("", "user", "create", "acme", "CY@acme.example"); r.code != 1 ||
		!strings.Contains(r.err, `a user with email "CY@acme.example" already exists in this tenant`) {
		t.Errorf("the same address again: exit %d, %q", r.code, r.err)
	}
	const day = `\d{4}-\d\d-\d\d`

	// Another tenant's user is another account.
	c.ok("tenant", "create", "Beta", "--slug", "beta")
	dee := createdID(t, c.ok("user", "create", "beta", "dee@beta.example"))
	if r := c.run("", "tenant", "member", "add", "acme", dee); r.code != 1 ||
		!strings.Contains(r.err, `acme has no user "`+dee+`": each tenant has its own users; nself user create acme EMAIL makes one here`) {
		t.Errorf("add another tenant's user: exit %d, %q", r.code, r.err)
	}

	// By email in any case, with the default role; by id with a role.
	mustMatch(t, c.ok("tenant", "member", "add", "acme", "bob@acme.example"), `^✓ Member added: `+bob+` \(member\)$`)
	mustMatch(t, c.ok("tenant", "member", "add", "acme", cy, "admin"), `^✓ Member added: `+cy+` \(admin\)$`)

	out := c.ok("tenant", "member", "list", "acme")
	mustMatch(t, out,
		`\AUSER_ID +ROLE +JOINED_AT +EMAIL\n─+\n`,
		`^`+ann+`  owner   `+day+`  ann@acme\.example$`,
		`^`+cy+`  admin   `+day+`  cy@acme\.example$`,
		`^`+bob+`  member  `+day+`  Bob@acme\.example$`)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 ||
		!strings.HasPrefix(lines[2], ann) || !strings.HasPrefix(lines[3], cy) || !strings.HasPrefix(lines[4], bob) {
		t.Errorf("members not listed owners first:\n%s", out)
	}
	var list []struct {
		UserID   string    `json:"user_id"`
		Email    string    `json:"email"`
		Name     string    `json:"name"`
		Role     string    `json:"role"`
		JoinedAt time.Time `json:"joined_at"`
	}
	if err := json.Unmarshal([]byte(c.ok("tenant", "member", "list", "acme", "--json")), &list); err != nil || len(list) != 3 {
		t.Fatalf("list --json: %v, %v", list, err)
	}
	if list[0].UserID != ann || list[0].Role != "owner" || list[2].Email != "Bob@acme.example" || list[1].JoinedAt.IsZero() {
		t.Errorf("list --json = %+v", list)
	}

	mustMatch(t, c.ok("tenant", "member", "update", "acme", bob, "admin"), `^✓ Member updated: `+bob+` \(member → admin\)$`)
	mustMatch(t, c.ok("tenant", "member", "update", "acme", "BOB@acme.example", "owner"), `^✓ Member updated: `+bob+` \(admin → owner\)$`)
	// With a second owner the first may step down, and the tenant's owner
	// becomes the remaining one.
	mustMatch(t, c.ok("tenant", "member", "update", "acme", "ann@acme.example", "guest"), `^✓ Member updated: `+ann+` \(owner → guest\)$`)
	mustMatch(t, c.ok("tenant", "show", "acme"), `^  Owner: `+bob+`$`, `^  Members: 3$`)

	mustMatch(t, c.ok("tenant", "member", "remove", "acme", "ann@acme.example"), `^✓ Member removed: `+ann+`$`)
	out = c.ok("tenant", "member", "list", "acme")
	mustMatch(t, out, `^`+bob+`  owner  `+day+`  Bob@acme\.example$`, `^`+cy+`  admin  `+day+`  cy@acme\.example$`)
	if strings.Contains(out, ann) {
		t.Errorf("removed member still listed:\n%s", out)
	}
	// The account stays: it can be added again.
	mustMatch(t, c.ok("user", "list", "acme"), `ann@acme\.example`)
	mustMatch(t, c.ok("tenant", "member", "add", "acme", ann, "guest"), `^✓ Member added: `+ann+` \(guest\)$`)

	// A tenant by id works as by slug; an empty tenant lists no rows.
	out = c.ok("tenant", "create", "Empty", "--slug", "empty")
	id := createdID(t, out)
	if got := strings.Split(strings.TrimSpace(c.ok("tenant", "member", "list", id)), "\n"); len(got) != 2 {
		t.Errorf("empty tenant's members: %q", got)
	}
	if got := strings.TrimSpace(c.ok("tenant", "member", "list", "empty", "--json")); got != "[]" {
		t.Errorf("empty tenant's members as JSON: %q", got)
	}
}

// Every bad member command is one line on stderr, exit 1 (2 for wrong
// usage), and changes nothing.
func TestTenantMemberBadInput(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	ann := ownerOf(t, c.ok("tenant", "create", "Acme", "--slug", "acme", "--owner", "ann@acme.example"))
	bob := createdID(t, c.ok("user", "create", "acme", "bob@acme.example"))

	// full is on the free plan (5 members) and has 5.
	c.ok("tenant", "create", "Full", "--slug", "full", "--owner", "o@full.example")
	for i := range 5 {
		email := fmt.Sprintf("u%d@full.example", i)
		out := c.ok("user", "create", "full", email)
		if i < 4 {
			c.ok("tenant", "member", "add", "full", createdID(t, out))
		}
	}
	outsider := createdID(t, c.ok("user", "create", "full", "outsider@full.example"))

	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"add", "nope", "bob@acme.example"}, 1, `tenant "nope" not found`},
		{[]string{"list", "nope"}, 1, `tenant "nope" not found`},
		{[]string{"update", "nope", bob, "admin"}, 1, `tenant "nope" not found`},
		{[]string{"remove", "nope", bob}, 1, `tenant "nope" not found`},
		{[]string{"add", "acme", "zed@acme.example"}, 1, `acme has no user "zed@acme.example"`},
		{[]string{"add", "acme", "00000000-0000-4000-8000-000000000000"}, 1, `acme has no user "00000000-0000-4000-8000-000000000000"`},
		{[]string{"add", "acme", outsider}, 1, `acme has no user "` + outsider + `"`},
		{[]string{"add", "acme", "u0@full.example"}, 1, `acme has no user "u0@full.example"`},
		{[]string{"add", "acme", "bob"}, 1, `user "bob" is neither a user id (uuid) nor an email address`},
		{[]string{"add", "acme", bob, "boss"}, 1, `role "boss" is not one of owner, admin, member, guest`},
		{[]string{"add", "acme", bob, "Admin"}, 1, `role "Admin" is not one of owner, admin, member, guest`},
		{[]string{"update", "acme", ann, "root"}, 1, `role "root" is not one of`},
		{[]string{"update", "acme", ann, "admin"}, 1, "acme must keep at least one owner: make another member an owner first"},
		{[]string{"update", "acme", "ANN@acme.example", "guest"}, 1, "acme must keep at least one owner"},
		{[]string{"remove", "acme", "ann@acme.example"}, 1, "acme must keep at least one owner: make another member an owner first"},
		{[]string{"update", "acme", ann, "owner"}, 1, "the member is already an owner"},
		{[]string{"add", "acme", "ann@acme.example", "admin"}, 1, `"ann@acme.example" is already a member of acme (owner)`},
		{[]string{"add", "acme", ann}, 1, "is already a member of acme"},
		{[]string{"update", "acme", bob, "admin"}, 1, `"` + bob + `" is not a member of acme`},
		{[]string{"remove", "acme", "bob@acme.example"}, 1, `"bob@acme.example" is not a member of acme`},
		{[]string{"add", "full", outsider}, 1, `plan "free" allows 5 members; full has 5`},
		{[]string{"add", "full", "outsider@full.example", "guest"}, 1, `plan "free" allows 5 members; full has 5`},
		{[]string{"add", "acme"}, 2, "takes 2 to 3 argument(s), got 1"},
		{[]string{"add", "acme", bob, "admin", "extra"}, 2, "takes 2 to 3 argument(s), got 4"},
		{[]string{"update", "acme", bob}, 2, "takes 3 argument(s), got 2"},
		{[]string{"remove", "acme"}, 2, "takes 2 argument(s), got 1"},
		{[]string{"list"}, 2, "takes 1 argument(s), got 0"},
		{[]string{"list", "acme", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{nil, 2, "needs a subcommand"},
	}
	before := map[string]string{}
	for _, slug := range []string{"acme", "full"} {
		before[slug] = c.ok("tenant", "member", "list", slug, "--json")
	}
	for _, tt := range tests {
		args := append([]string{"tenant", "member"}, tt.args...)
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := newCLI(t, urls).run("", args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.err)
			}
			lines := strings.Split(strings.TrimRight(r.err, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.msg) {
				t.Errorf("stderr %q, want one line `error: …%s…`", r.err, tt.msg)
			}
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
		})
	}
	for slug, want := range before {
		if got := c.ok("tenant", "member", "list", slug, "--json"); got != want {
			t.Errorf("members of %s changed:\n%s\nwant\n%s", slug, got, want)
		}
	}
}
