package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
)

// binary is the nself program built once for these tests: they run it as
// an operator would and read its output and exit code.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nself-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nself")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build nself: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the binary against one database with a clean environment.
type cli struct {
	t   *testing.T
	env []string
}

func newCLI(t *testing.T, urls pgtest.URLs, extraEnv ...string) *cli {
	t.Helper()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"DATABASE_URL=" + urls.App,
		"DATABASE_ADMIN_URL=" + urls.Admin,
		"BASE_DOMAIN=example.test",
		"TENANT_STRATEGY=hybrid",
	}
	return &cli{t: t, env: append(env, extraEnv...)}
}

type result struct {
	code     int
	out, err string
}

func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env
	cmd.Dir = c.t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run nself %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// ok runs a command that must succeed and returns its output.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != 0 {
		c.t.Fatalf("nself %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.err)
	}
	return r.out
}

func mustMatch(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
			t.Errorf("output lacks /%s/:\n%s", p, out)
		}
	}
}

const uuidRE = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

func TestInitAndMigrateOnANewDatabase(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewEmptyURLs(t))
	out := c.ok("tenant", "init")
	mustMatch(t, out,
		`^✓ Migrations applied: \d+ \(schema now at version \d+\)$`,
		`^✓ Default tenant created: default \(ID: `+uuidRE+`\)$`)
	out = c.ok("tenant", "init")
	mustMatch(t, out, `^✓ Already initialized: schema at version \d+, default tenant default exists; nothing changed$`)
	out = c.ok("db", "migrate")
	mustMatch(t, out, `^✓ Database is up to date: .*nothing changed$`)
	out = c.ok("tenant", "list")
	mustMatch(t, out, `^`+uuidRE+`\s+default\s+Default\s+active\s+free$`)
}

func TestTenantLifecycle(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t))

	out := c.ok("tenant", "create", "Acme Corporation", "--slug", "acme", "--plan", "pro", "--owner", "ann@acme.example")
	mustMatch(t, out,
		`^✓ Tenant created: acme \(ID: `+uuidRE+`\)$`,
		`^  Owner: `+uuidRE+` \(ann@acme\.example\)$`,
		`^  Plan: pro$`,
		`^  URL: https://acme\.example\.test$`,
		`^  Set-password link for the owner \(single use, expires in 72 hours\): https://acme\.example\.test/password/set\?token=[A-Za-z0-9_-]{43}$`)
	out = c.ok("tenant", "create", "TechCo Inc", "--strategy", "schema", "--plan", "enterprise")
	mustMatch(t, out, `^✓ Tenant created: techco-inc `, `^  Owner: none$`, `^  Schema: tenant_[0-9a-f]{8}$`)

	out = c.ok("tenant", "list")
	mustMatch(t, out,
		`^ID\s+SLUG\s+NAME\s+STATUS\s+PLAN$`,
		`^─+$`,
		`^`+uuidRE+`  acme        Acme Corporation  active  pro$`,
		`^`+uuidRE+`  techco-inc  TechCo Inc        active  enterprise$`)

	var list []map[string]any
	if err := json.Unmarshal([]byte(c.ok("tenant", "list", "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("list --json: %v, %v", list, err)
	}
	if list[0]["slug"] != "acme" || list[0]["plan"] != "pro" || list[1]["strategy"] != "schema" {
		t.Errorf("list --json = %v", list)
	}

	out = c.ok("tenant", "show", "acme")
	mustMatch(t, out,
		`^Tenant Details:$`,
		`^  ID: `+uuidRE+`$`,
		`^  Slug: acme$`,
		`^  Name: Acme Corporation$`,
		`^  Status: active$`,
		`^  Plan: pro$`,
		`^  Owner: `+uuidRE+`$`,
		`^  Members: 1$`,
		`^  Max Users: 50$`,
		`^  Max Storage: 100 GB$`,
		`^  Max API Requests: 100,000/month$`,
		`^  Created: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
	mustMatch(t, c.ok("tenant", "show", "techco-inc"),
		`^  Max Users: Unlimited$`, `^  Max Storage: Unlimited$`, `^  Max API Requests: Unlimited$`)
	id := list[0]["id"].(string)
	mustMatch(t, c.ok("tenant", "show", id), `^  Slug: acme$`)

	mustMatch(t, c.ok("tenant", "suspend", "acme"), `^✓ Tenant suspended: acme$`)
	mustMatch(t, c.ok("tenant", "list", "--status", "suspended"), `acme\s+Acme Corporation\s+suspended\s+pro$`)
	mustMatch(t, c.ok("tenant", "activate", "acme"), `^✓ Tenant active: acme$`)

	// No terminal and no --yes: refuse, and change nothing.
	r := c.run("", "tenant", "delete", "techco-inc")
	if r.code != 1 || !strings.Contains(r.err, "without confirmation") {
		t.Errorf("delete without --yes: exit %d, %q", r.code, r.err)
	}
	mustMatch(t, c.ok("tenant", "show", "techco-inc"), `^  Status: active$`)
	mustMatch(t, c.ok("tenant", "delete", "techco-inc", "--yes"),
		`^✓ Tenant deleted: techco-inc$`, `^  Schema dropped: tenant_[0-9a-f]{8}$`)
	mustMatch(t, c.ok("tenant", "show", "techco-inc"), `^  Status: deleted$`, `^  Deleted: `)

	out = c.ok("tenant", "stats")
	mustMatch(t, out,
		`^Tenant Statistics$`,
		`^Total Tenants: 2$`,
		`^  Active: 1$`, `^  Suspended: 0$`, `^  Deleted: 1$`,
		`^Tenants by Plan:$`, `^  pro: 1$`, `^  enterprise: 1$`)

	// Users live inside a tenant.
	r = c.run("correct horse battery\n", "user", "create", "acme", "bob@acme.example", "--name", "Bob", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("user create: %d %q", r.code, r.err)
	}
	mustMatch(t, r.out, `^✓ User created: bob@acme\.example \(ID: `+uuidRE+`\)$`)
	if strings.Contains(r.out, "password/set") {
		t.Errorf("a user with a password gets no set-password link: %s", r.out)
	}
	mustMatch(t, c.ok("user", "create", "acme", "cy@acme.example"), `^  Set-password link `)
	out = c.ok("user", "list", "acme")
	mustMatch(t, out, `^ID\s+EMAIL\s+NAME\s+CREATED_AT$`, `bob@acme\.example\s+Bob\s+\d{4}-\d\d-\d\d$`, `ann@acme\.example`)
	var users []map[string]any
	if err := json.Unmarshal([]byte(c.ok("user", "list", "acme", "--json")), &users); err != nil || len(users) != 3 {
		t.Errorf("user list --json: %d users, %v", len(users), err)
	}

	out = c.ok("tenant", "test-isolation")
	mustMatch(t, out,
		`^Testing tenant data isolation\.\.\.$`,
		`^✓ PASS: Tenant A cannot see Tenant B users$`,
		`^✓ PASS: Tenant A can see own users$`,
		`^✓ All tenant isolation tests passed$`)
	if strings.Contains(c.ok("tenant", "list", "--all"), "isolation-check") {
		t.Error("test-isolation left its scratch tenants behind")
	}
	c.ok("tenant", "create", "Beta", "--slug", "beta")
	mustMatch(t, c.ok("tenant", "test-isolation", "acme", "beta"), `^✓ All tenant isolation tests passed$`)
}

// Every error is one line on stderr with a non-zero exit, and changes
// nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	c.ok("tenant", "create", "Acme", "--slug", "acme")

	tests := []struct {
		args []string
		env  []string
		code int
		msg  string
	}{
		{args: []string{"tenant", "create", ""}, code: 1, msg: "name is required"},
		{args: []string{"tenant", "create", strings.Repeat("n", 10000)}, code: 1, msg: "name is too long"},
		{args: []string{"tenant", "create", "X", "--slug", "a"}, code: 1, msg: `slug "a" is too short`},
		{args: []string{"tenant", "create", "X", "--slug", "admin"}, code: 1, msg: `slug "admin" is reserved`},
		{args: []string{"tenant", "create", "X", "--slug", "Acme"}, code: 1, msg: "must be lowercase"},
		{args: []string{"tenant", "create", "X", "--slug", "a--b"}, code: 1, msg: "two hyphens"},
		{args: []string{"tenant", "create", "X", "--slug", "-ab"}, code: 1, msg: "start and end with a letter or digit"},
		{args: []string{"tenant", "create", "X", "--slug", "a'b;drop"}, code: 1, msg: "only a-z, 0-9 and hyphens"},
		{args: []string{"tenant", "create", "X", "--slug", strings.Repeat("a", 64)}, code: 1, msg: "too long"},
		{args: []string{"tenant", "create", "Acme"}, code: 1, msg: `slug "acme" is already taken`},
		{args: []string{"tenant", "create", "Xylo", "--plan", "gold"}, code: 1, msg: `plan "gold" does not exist`},
		{args: []string{"tenant", "create", "X", "--strategy", "weird"}, code: 1, msg: `strategy "weird" is not one of rls, schema`},
		{args: []string{"tenant", "create", "Xylo", "--owner", "nobody"}, code: 1, msg: "neither a user id"},
		{args: []string{"tenant", "create", "Xylo", "--strategy", "schema"}, env: []string{"TENANT_STRATEGY=rls"}, code: 1, msg: "not allowed while TENANT_STRATEGY=rls"},
		{args: []string{"tenant", "show", "nope"}, code: 1, msg: `tenant "nope" not found`},
		{args: []string{"tenant", "suspend", "nope"}, code: 1, msg: "not found"},
		{args: []string{"tenant", "activate", "acme"}, code: 1, msg: "already active"},
		{args: []string{"user", "create", "acme", "not-an-email"}, code: 1, msg: "is not a valid address"},
		{args: []string{"user", "create", "nope", "a@b.example"}, code: 1, msg: "not found"},
		{args: []string{"user", "create", "acme", "a@b.example", "--password-stdin"}, code: 1, msg: "no password on standard input"},
		{args: []string{"tenant", "list"}, env: []string{"TENANT_ROUTING_METHOD=weird"}, code: 1, msg: `invalid TENANT_ROUTING_METHOD "weird": accepts subdomain, custom_domain, both`},
		{args: []string{"tenant", "list"}, env: []string{"TENANT_STRATEGY=sharded"}, code: 1, msg: `invalid TENANT_STRATEGY "sharded": accepts rls, schema, hybrid`},
		{args: []string{"tenant", "list"}, env: []string{"MULTI_TENANCY_ENABLED=maybe"}, code: 1, msg: `invalid MULTI_TENANCY_ENABLED "maybe": accepts true or false`},
		{args: []string{"tenant", "list"}, env: []string{"BASE_DOMAIN=https://x.com"}, code: 1, msg: `invalid BASE_DOMAIN`},
		{args: []string{"tenant", "list"}, env: []string{"DNS_RESOLVER=nowhere"}, code: 1, msg: `invalid DNS_RESOLVER "nowhere": accepts host:port`},
		{args: []string{"tenant", "list"}, env: []string{"DATABASE_URL="}, code: 1, msg: "DATABASE_URL is not set"},
		{args: []string{"tenant", "list"}, env: []string{"DATABASE_URL=" + urls.Admin}, code: 1, msg: "owns table"},
		{args: []string{"tenant", "create"}, code: 2, msg: "takes 1 argument(s), got 0"},
		{args: []string{"tenant", "create", "a", "b"}, code: 2, msg: "takes 1 argument(s), got 2"},
		{args: []string{"tenant", "create", "X", "--bogus"}, code: 2, msg: "unknown flag: --bogus"},
		{args: []string{"tenant", "bogus"}, code: 2, msg: `unknown command "bogus"`},
		{args: []string{"tenant"}, code: 2, msg: "needs a subcommand"},
		{args: []string{"bogus"}, code: 2, msg: `unknown command "bogus"`},
		{args: []string{"tenant", "export", "acme", "--output", "/no-such-folder/x.tar.gz"}, env: blobtest.Env(t), code: 1, msg: "export: cannot write /no-such-folder/x.tar.gz: no such file or directory"},
		{args: []string{"tenat", "list"}, code: 2, msg: `unknown command "tenat" for "nself"; did you mean tenant?`},
		{args: []string{"tenant", "list", "--status", "gone"}, code: 2, msg: "not one of active, suspended, deleted"},
		{args: []string{"tenant", "test-isolation", "acme"}, code: 2, msg: "takes no arguments or two"},
		{args: []string{"--env-file", "no-such.env", "tenant", "list"}, code: 2, msg: "--env-file no-such.env: no such file or directory"},
	}
	for _, tt := range tests {
		name := strings.Join(tt.args, " ")
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			c := newCLI(t, urls, tt.env...)
			r := c.run("", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.err)
			}
			lines := strings.Split(strings.TrimRight(r.err, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.msg) {
				t.Errorf("stderr %q, want one line `error: …%s…`", r.err, tt.msg)
			}
			if len(r.err) > 400 {
				t.Errorf("error line is %d characters long", len(r.err))
			}
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
		})
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(c.ok("tenant", "list", "--json", "--all")), &list); err != nil || len(list) != 1 {
		t.Errorf("after the failures: %d tenants, %v; want only acme", len(list), err)
	}
}
