package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// Every table with a tenant_id, in every schema (schema-per-tenant ones
// included), must have forced row-level security, the tenant policy and an
// index leading with tenant_id; and the application role must not be able
// to bypass it. This test fails the day a migration forgets one.
func TestCatalogEveryTenantTableIsIsolated(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	mustCreateTenant(t, db, "schema-a", tenancy.StrategySchema)
	findings, err := db.AuditRLS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("%s: %s (fix: %s)", f.Table, f.Problem, f.Fix)
	}
	var tables int
	if err := db.Admin.QueryRow(context.Background(), `
		SELECT count(*) FROM information_schema.columns WHERE column_name = 'tenant_id'`).Scan(&tables); err != nil || tables < 12 {
		t.Errorf("found %d tables with tenant_id; the audit must see them all (%v)", tables, err)
	}
}

// The audit itself must find each kind of problem.
func TestCatalogAuditFindsProblems(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE TABLE public.no_rls (tenant_id uuid NOT NULL, id int)`,
		`CREATE TABLE public.not_forced (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id))`,
		`ALTER TABLE public.not_forced ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY tenant_isolation ON public.not_forced USING (tenant_id = tenants.current_tenant_id()) WITH CHECK (tenant_id = tenants.current_tenant_id())`,
		`CREATE TABLE public.weak_policy (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id))`,
		`ALTER TABLE public.weak_policy ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE public.weak_policy FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY everything ON public.weak_policy USING (true)`,
	} {
		if _, err := db.Admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	findings, err := db.AuditRLS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, f := range findings {
		got[f.Table] = append(got[f.Table], f.Problem)
	}
	want := map[string][]string{
		"no_rls":      {"not enabled", "not forced", "no policy", "no index", "no access"},
		"not_forced":  {"not forced", "no access"},
		"weak_policy": {"no policy", "no access"},
	}
	for table, problems := range want {
		joined := strings.Join(got[table], "; ")
		for _, p := range problems {
			if !strings.Contains(joined, p) {
				t.Errorf("%s: findings %q lack %q", table, joined, p)
			}
		}
		if len(got[table]) != len(problems) {
			t.Errorf("%s: %d findings %q, want %d", table, len(got[table]), joined, len(problems))
		}
	}
}

// The program refuses a DATABASE_URL whose role could bypass row-level
// security: here, the owner of the tables.
func TestOpenRefusesUnsafeApplicationRole(t *testing.T) {
	t.Parallel()
	u := pgtest.NewURLs(t)
	_, err := postgres.Open(context.Background(), u.Admin, u.Admin)
	if !errors.Is(err, postgres.ErrUnsafeRole) || !strings.Contains(err.Error(), "owns table") {
		t.Fatalf("open with the owner as application role: %v, want refusal naming an owned table", err)
	}
	db, err := postgres.Open(context.Background(), u.App, u.Admin)
	if err != nil {
		t.Fatalf("open with the application role: %v", err)
	}
	db.Close()
}
