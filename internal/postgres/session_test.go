package postgres_test

import (
	"context"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// TestEndSessionsForRequiredSSO: the switch to single sign-on ends every
// session of the tenant but its owners', and no other tenant's.
func TestEndSessionsForRequiredSSO(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	auth := postgres.NewAuthService(db)
	signIn := func(tn *tenancy.Tenant, email string, role tenancy.Role) string {
		u, _, err := postgres.NewUserService(db).CreateUser(ctx, tn.ID, tenancy.NewUser{Email: email, Password: "password of " + email})
		if err != nil {
			t.Fatal(err)
		}
		execInTenant(t, db, tn.ID, `INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, $3)`, tn.ID, u.ID, role)
		token, _, err := auth.SignIn(ctx, tn.ID, email, "password of "+email, tenancy.SessionMeta{})
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	owner := signIn(a, "owner@a.test", tenancy.RoleOwner)
	admin := signIn(a, "admin@a.test", tenancy.RoleAdmin)
	member := signIn(a, "member@a.test", tenancy.RoleMember)
	other := signIn(b, "member@b.test", tenancy.RoleMember)

	n, err := postgres.NewSessionService(db).EndSessionsForRequiredSSO(ctx, a.ID)
	if err != nil || n != 2 {
		t.Fatalf("ended %d, %v", n, err)
	}
	for token, alive := range map[string]bool{owner: true, admin: false, member: false} {
		if _, err := auth.Identify(ctx, a.ID, token); (err == nil) != alive {
			t.Errorf("session alive = %v, want %v", err == nil, alive)
		}
	}
	if _, err := auth.Identify(ctx, b.ID, other); err != nil {
		t.Errorf("another tenant's session: %v", err)
	}
}
