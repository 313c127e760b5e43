package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// execInTenant runs a statement as the owner in a tenant's context and commits.
func execInTenant(t *testing.T, db *postgres.DB, tenantID string, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.Admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sql, args...)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	users := postgres.NewUserService(db)
	auth := postgres.NewAuthService(db)
	u, _, err := users.CreateUser(ctx, a.ID, tenancy.NewUser{Email: "ann@a.test", Password: "ann's password"})
	if err != nil {
		t.Fatal(err)
	}
	execInTenant(t, db, a.ID, `INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, 'admin')`, a.ID, u.ID)

	if _, _, err := auth.SignIn(ctx, a.ID, "ann@a.test", "wrong password", tenancy.SessionMeta{}); err != tenancy.ErrBadCredentials {
		t.Errorf("wrong password: %v", err)
	}
	if _, _, err := auth.SignIn(ctx, b.ID, "ann@a.test", "ann's password", tenancy.SessionMeta{}); err != tenancy.ErrBadCredentials {
		t.Errorf("signing in to another tenant: %v", err)
	}
	token, id, err := auth.SignIn(ctx, a.ID, "ANN@a.test", "ann's password", tenancy.SessionMeta{UserAgent: "test", ClientIP: "127.0.0.1"})
	if err != nil || id.Role != tenancy.RoleAdmin || id.User.ID != u.ID {
		t.Fatalf("sign in: %+v, %v", id, err)
	}
	if got, err := auth.Identify(ctx, a.ID, token); err != nil || got.User.Email != "ann@a.test" || got.Role != tenancy.RoleAdmin {
		t.Errorf("identify: %+v, %v", got, err)
	}
	// The token is worthless in another tenant.
	if _, err := auth.Identify(ctx, b.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("token in another tenant: %v", err)
	}

	// Idle too long: the session ends.
	execInTenant(t, db, a.ID, `UPDATE auth.sessions SET last_seen_at = now() - interval '3 hours'`)
	if _, err := auth.Identify(ctx, a.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("idle session: %v", err)
	}
	// Past its absolute lifetime: the session ends, however active.
	token, _, _ = auth.SignIn(ctx, a.ID, "ann@a.test", "ann's password", tenancy.SessionMeta{})
	execInTenant(t, db, a.ID, `UPDATE auth.sessions SET expires_at = now() - interval '1 second'`)
	if _, err := auth.Identify(ctx, a.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("expired session: %v", err)
	}
	// Losing the membership ends access at once.
	token, _, _ = auth.SignIn(ctx, a.ID, "ann@a.test", "ann's password", tenancy.SessionMeta{})
	execInTenant(t, db, a.ID, `DELETE FROM tenants.tenant_members WHERE user_id = $1`, u.ID)
	if _, err := auth.Identify(ctx, a.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("session after removal: %v", err)
	}
	if _, _, err := auth.SignIn(ctx, a.ID, "ann@a.test", "ann's password", tenancy.SessionMeta{}); tenancy.ErrorCode(err) != tenancy.EFORBIDDEN {
		t.Errorf("sign in without a role: %v", err)
	}
}

func TestPasswordTokens(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	svc := postgres.NewTenantService(db, tenancy.ModeRLS)
	c, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme", Owner: "ann@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	other := mustCreateTenant(t, db, "other", tenancy.StrategyRLS)
	auth := postgres.NewAuthService(db)

	// The set-password token of a new owner works once, in its tenant only.
	if _, err := auth.ResetPassword(ctx, other.ID, c.PasswordToken, "a good new password"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("token in another tenant: %v", err)
	}
	if _, err := auth.ResetPassword(ctx, c.Tenant.ID, c.PasswordToken, "a good new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.ResetPassword(ctx, c.Tenant.ID, c.PasswordToken, "another password!"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("second use: %v", err)
	}
	token, _, err := auth.SignIn(ctx, c.Tenant.ID, "ann@acme.test", "a good new password", tenancy.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}

	// A reset ends the sessions of the account.
	u, reset, err := auth.RequestPasswordReset(ctx, c.Tenant.ID, "ann@acme.test")
	if err != nil || u == nil || reset == "" {
		t.Fatalf("request reset: %v %v", u, err)
	}
	if u, tok, err := auth.RequestPasswordReset(ctx, c.Tenant.ID, "nobody@acme.test"); u != nil || tok != "" || err != nil {
		t.Errorf("unknown email: %v %q %v", u, tok, err)
	}
	if _, err := auth.ResetPassword(ctx, c.Tenant.ID, reset, "short"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("short password: %v", err)
	}
	if _, err := auth.ResetPassword(ctx, c.Tenant.ID, reset, "the third password"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Identify(ctx, c.Tenant.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("session after reset: %v", err)
	}
	// An expired token is refused.
	_, late, _ := auth.RequestPasswordReset(ctx, c.Tenant.ID, "ann@acme.test")
	execInTenant(t, db, c.Tenant.ID, `UPDATE auth.password_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL`)
	if _, err := auth.ResetPassword(ctx, c.Tenant.ID, late, "the fourth password"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("expired token: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategyRLS)
	keys := postgres.NewAPIKeyService(db)
	k, secret, err := keys.CreateAPIKey(ctx, a.ID, "ci", "")
	if err != nil {
		t.Fatal(err)
	}
	if tid, ok := postgres.ParseAPIKey(secret); !ok || tid != a.ID {
		t.Errorf("key names tenant %q, want %s", tid, a.ID)
	}
	got, err := keys.AuthenticateAPIKey(ctx, secret, "")
	if err != nil || got.ID != k.ID || got.TenantID != a.ID {
		t.Fatalf("authenticate: %+v, %v", got, err)
	}
	if got.LastUsedAt != nil {
		t.Error("last used set before first use")
	}
	list, _ := keys.ListAPIKeys(ctx, a.ID)
	if len(list) != 1 || list[0].LastUsedAt == nil {
		t.Errorf("list after use: %+v", list)
	}
	if list, _ := keys.ListAPIKeys(ctx, b.ID); len(list) != 0 {
		t.Errorf("tenant B lists %d of A's keys", len(list))
	}
	if _, err := keys.RevokeAPIKey(ctx, b.ID, k.Prefix); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("B revoking A's key: %v", err)
	}
	if _, err := keys.RevokeAPIKey(ctx, a.ID, k.Prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.AuthenticateAPIKey(ctx, secret, ""); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("revoked key: %v", err)
	}
	for _, bad := range []string{"", "nsk_", "nsk_zz_zz", secret[:len(secret)-1] + "x", "Bearer " + secret} {
		if _, err := keys.AuthenticateAPIKey(ctx, bad, ""); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Keys cannot be made for a deleted tenant.
	if _, err := postgres.NewTenantService(db, tenancy.ModeRLS).DeleteTenant(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := keys.CreateAPIKey(ctx, b.ID, "late", ""); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("key for a deleted tenant: %v", err)
	}
}

func TestAdmins(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	admins := postgres.NewAdminService(db)
	a, err := admins.CreateAdmin(ctx, "root@platform.test", "Root", "a long admin password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admins.CreateAdmin(ctx, "ROOT@platform.test", "", "a long admin password"); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("duplicate: %v", err)
	}
	if _, _, err := admins.AdminSignIn(ctx, "root@platform.test", "wrong"); err != tenancy.ErrBadCredentials {
		t.Errorf("wrong password: %v", err)
	}
	token, got, err := admins.AdminSignIn(ctx, "root@platform.test", "a long admin password")
	if err != nil || got.ID != a.ID {
		t.Fatalf("sign in: %v", err)
	}
	if who, err := admins.IdentifyAdmin(ctx, token); err != nil || who.Email != "root@platform.test" {
		t.Errorf("identify: %v %v", who, err)
	}
	if err := admins.AdminSignOut(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := admins.IdentifyAdmin(ctx, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("after sign out: %v", err)
	}
	// The application role cannot read administrators at all.
	if _, err := db.App.Exec(ctx, `SELECT * FROM platform.admins`); err == nil {
		t.Error("the application role reads platform.admins")
	}
}
