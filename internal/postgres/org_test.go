package postgres_test

import (
	"context"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// Renaming keeps the slug; deleting an organization takes its tenants out
// of it and leaves them otherwise as they were; both are in the platform's
// audit log.
func TestOrgRenameAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	acme := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	beta := mustCreateTenant(t, db, "beta", tenancy.StrategySchema)
	orgs := postgres.NewOrgService(db)
	if _, err := orgs.CreateOrg(ctx, "Holding", "holding"); err != nil {
		t.Fatal(err)
	}
	for _, slug := range []string{"acme", "beta"} {
		if err := orgs.AddOrgTenant(ctx, "holding", slug); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := orgs.RenameOrg(ctx, "holding", " "); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("an empty name: %v", err)
	}
	o, err := orgs.RenameOrg(ctx, "holding", "Holding Group")
	if err != nil || o.Slug != "holding" || o.Name != "Holding Group" {
		t.Fatalf("rename: %+v %v", o, err)
	}
	in, err := orgs.TenantOrgs(ctx, acme.ID)
	if err != nil || len(in) != 1 || in[0].Name != "Holding Group" {
		t.Fatalf("acme's organizations: %+v %v", in, err)
	}
	if found, err := orgs.FindOrg(ctx, o.ID); err != nil || found.Tenants != 2 {
		t.Fatalf("find by id: %+v %v", found, err)
	}

	if err := orgs.DeleteOrg(ctx, "holding"); err != nil {
		t.Fatal(err)
	}
	if _, err := orgs.FindOrg(ctx, "holding"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("after delete: %v", err)
	}
	for _, tn := range []*tenancy.Tenant{acme, beta} {
		if in, err := orgs.TenantOrgs(ctx, tn.ID); err != nil || len(in) != 0 {
			t.Errorf("%s still in %+v (%v)", tn.Slug, in, err)
		}
		if got, err := postgres.NewTenantService(db, tenancy.ModeHybrid).FindTenant(ctx, tn.Slug); err != nil || got.Status != tenancy.StatusActive {
			t.Errorf("%s after its organization's delete: %+v %v", tn.Slug, got, err)
		}
	}
	for _, action := range []string{"org.rename", "org.delete"} {
		all, _, err := postgres.NewAuditService(db).ListAllAudit(ctx, tenancy.AuditFilter{Action: action})
		if err != nil || len(all) != 1 || all[0].TenantID != "" || all[0].Target != "holding" {
			t.Errorf("%s in the platform log: %v %+v", action, err, all)
		}
	}
	if err := orgs.DeleteOrg(ctx, "holding"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a second delete: %v", err)
	}
}
