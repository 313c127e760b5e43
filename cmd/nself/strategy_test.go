package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
)

// With the guide's .env (TENANT_STRATEGY=schema, TENANT_SCHEMA_PREFIX=
// tenant_), a fresh database is initialized and every tenant, the default
// one included, gets a schema of its own.
func TestSchemaStrategyFromAFreshDatabase(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewEmptyURLs(t)
	c := newCLI(t, urls, "TENANT_STRATEGY=schema", "TENANT_SCHEMA_PREFIX=tenant_")
	mustMatch(t, c.ok("tenant", "init"), `^✓ Default tenant created: default \(ID: `+uuidRE+`\)$`)
	mustMatch(t, c.ok("tenant", "create", "Acme Corporation", "--slug", "acme"), `^✓ Tenant created: acme`)
	mustMatch(t, c.ok("tenant", "list"),
		`^`+uuidRE+`\s+default\s+Default\s+active\s+free$`,
		`^`+uuidRE+`\s+acme\s+Acme Corporation\s+active\s+free$`)
	c.ok("tenant", "show", "default")
	mustMatch(t, c.ok("tenant", "test-isolation"), `^✓ All tenant isolation tests passed$`)

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	rows, err := admin.Query(ctx, `
		SELECT t.slug, t.schema_name, n.nspname IS NOT NULL
		FROM tenants.tenants t
		LEFT JOIN pg_namespace n ON n.nspname = t.schema_name
		ORDER BY t.slug`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var slug string
		var schema *string
		var exists bool
		if err := rows.Scan(&slug, &schema, &exists); err != nil {
			t.Fatal(err)
		}
		n++
		if schema == nil || !exists || len(*schema) < len("tenant_") || (*schema)[:len("tenant_")] != "tenant_" {
			t.Errorf("tenant %s: schema %v (exists %v); want a tenant_ schema of its own", slug, schema, exists)
		}
	}
	if n != 2 {
		t.Errorf("%d tenants; want 2", n)
	}
}

// The guide's migration path creates the default tenant right after init,
// which made it already: that is said, and is no error. Doctor passes a
// freshly initialized database.
func TestCreateDefaultAfterInit(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewEmptyURLs(t))
	c.ok("tenant", "init")
	mustMatch(t, c.ok("tenant", "create", "Default", "--slug", "default"),
		`^✓ Tenant default already exists: nself tenant init created it for existing data \(ID: `+uuidRE+`\)$`)
	mustMatch(t, c.ok("tenant", "doctor"), `^✓ No problems found$`)
	// Asking for something init did not do is still refused.
	if r := c.run("", "tenant", "create", "Default", "--slug", "default", "--owner", "ann@example.com"); r.code != 1 || !strings.Contains(r.err, "already taken") {
		t.Errorf("create default with an owner: exit %d, %q", r.code, r.err)
	}
}

// MULTI_TENANCY_ENABLED=false: init makes the default tenant, which is
// served at BASE_DOMAIN itself; any other tenant is refused, naming the
// setting.
func TestSingleTenantCLI(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewEmptyURLs(t), append(blobtest.Env(t), "MULTI_TENANCY_ENABLED=false")...)
	c.ok("tenant", "init")
	r := c.run("", "tenant", "create", "Acme", "--slug", "acme")
	if r.code != 1 || !strings.Contains(r.err, "MULTI_TENANCY_ENABLED=false") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("tenant create: exit %d, %q", r.code, r.err)
	}
	// An import would add a tenant as well.
	archive := filepath.Join(t.TempDir(), "default.tar.gz")
	c.ok("tenant", "export", "default", "--output", archive)
	r = c.run("", "tenant", "import", archive, "--slug", "acme")
	if r.code != 1 || !strings.Contains(r.err, "MULTI_TENANCY_ENABLED=false") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("tenant import: exit %d, %q", r.code, r.err)
	}
	mustMatch(t, c.ok("tenant", "list"), `^`+uuidRE+`\s+default\s+Default\s+active\s+free$`)
}

// TENANT_CUSTOM_DOMAINS_ENABLED=false refuses domain add in one line.
func TestDomainAddWhenCustomDomainsAreOff(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), "TENANT_CUSTOM_DOMAINS_ENABLED=false")
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	r := c.run("", "tenant", "domain", "add", "acme", "portal.acme.example")
	if r.code != 1 || !strings.Contains(r.err, "TENANT_CUSTOM_DOMAINS_ENABLED=false") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("domain add: exit %d, %q", r.code, r.err)
	}
	if out := c.ok("tenant", "domain", "list", "acme"); strings.Contains(out, "portal.acme.example") {
		t.Errorf("the domain was stored:\n%s", out)
	}
}
