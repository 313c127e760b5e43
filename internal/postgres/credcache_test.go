package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// listening starts a credential cache on db, as one server process does.
func listening(t testing.TB, db *postgres.DB) *postgres.CredentialCache {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := postgres.NewCredentialCache(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go c.Listen(ctx)
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the credential cache did not start listening")
	}
	return c
}

// heard runs change and waits until c has heard a notice.
func heard(t *testing.T, c *postgres.CredentialCache, change func()) {
	t.Helper()
	n := c.Heard()
	change()
	deadline := time.Now().Add(10 * time.Second)
	for c.Heard() == n {
		if time.Now().After(deadline) {
			t.Fatal("no notice was heard")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCredentialNotices: a change made without the cached services (the
// CLI's, another process's, plain SQL) reaches a process holding the
// credential in memory, through the triggers' notices.
func TestCredentialNotices(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t)
	c := listening(t, db)
	keys := postgres.NewAPIKeyService(db).Cached(c)
	auth := postgres.NewAuthService(db).Cached(c)
	plainAuth := postgres.NewAuthService(db)
	members := postgres.NewMemberService(db)
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)

	k, secret, err := postgres.NewAPIKeyService(db).CreateAPIKey(ctx, tn.ID, "ci", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.AuthenticateAPIKey(ctx, secret, ""); err != nil {
		t.Fatal(err)
	}
	heard(t, c, func() {
		if _, err := postgres.NewAPIKeyService(db).RevokeAPIKey(ctx, tn.ID, k.Prefix); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := keys.AuthenticateAPIKey(ctx, secret, ""); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a revoked key: %v", err)
	}

	signIn := func(email string, role tenancy.Role) (string, *tenancy.User) {
		t.Helper()
		u, _, err := postgres.NewUserService(db).CreateUser(ctx, tn.ID, tenancy.NewUser{Email: email, Name: email, Password: "password of " + email})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := members.AddMember(ctx, tn.ID, u.ID, role, tenancy.PlatformActor()); err != nil {
			t.Fatal(err)
		}
		token, _, err := plainAuth.SignIn(ctx, tn.ID, email, "password of "+email, tenancy.SessionMeta{})
		if err != nil {
			t.Fatal(err)
		}
		if id, err := auth.Identify(ctx, tn.ID, token); err != nil || id.Role != role {
			t.Fatalf("identify: %v %v", id, err)
		}
		return token, u
	}

	// A role changed elsewhere: the next Identify has the new role.
	token, u := signIn("ann@acme.example", tenancy.RoleAdmin)
	heard(t, c, func() {
		if _, _, err := members.UpdateMember(ctx, tn.ID, u.ID, tenancy.RoleGuest, tenancy.PlatformActor()); err != nil {
			t.Fatal(err)
		}
	})
	if id, err := auth.Identify(ctx, tn.ID, token); err != nil || id.Role != tenancy.RoleGuest {
		t.Errorf("after a role change: %v %v", id, err)
	}
	// Signed out elsewhere.
	heard(t, c, func() {
		if err := plainAuth.SignOut(ctx, tn.ID, token); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := auth.Identify(ctx, tn.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("signed out: %v", err)
	}
	// The account deleted in SQL: its sessions go by cascade.
	token, u = signIn("bob@acme.example", tenancy.RoleMember)
	heard(t, c, func() {
		asTenantCommit(t, db, tn.ID, `DELETE FROM auth.users WHERE tenant_id = $1 AND id = $2`, tn.ID, u.ID)
	})
	if _, err := auth.Identify(ctx, tn.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a deleted account's session: %v", err)
	}
	// Touching a session announces nothing: it changes nothing it grants.
	token, _ = signIn("cy@acme.example", tenancy.RoleMember)
	before := c.Heard()
	asTenantCommit(t, db, tn.ID, `UPDATE auth.sessions SET last_seen_at = now() WHERE tenant_id = $1`, tn.ID)
	asTenantCommit(t, db, tn.ID, `UPDATE auth.api_keys SET last_used_at = now() WHERE tenant_id = $1`, tn.ID)
	time.Sleep(100 * time.Millisecond)
	if c.Heard() != before {
		t.Errorf("touches were announced")
	}
}

// TestCredentialUsesWritten: uses served from memory are recorded in the
// database in batches, off the request path.
func TestCredentialUsesWritten(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t)
	c := listening(t, db)
	keys := postgres.NewAPIKeyService(db).Cached(c)
	var tenants []*tenancy.Tenant
	var secrets []string
	for _, slug := range []string{"acme", "bolt", "core"} {
		tn := mustCreateTenant(t, db, slug, tenancy.StrategyRLS)
		_, secret, err := keys.CreateAPIKey(ctx, tn.ID, "ci", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.AuthenticateAPIKey(ctx, secret, ""); err != nil {
			t.Fatal(err)
		}
		asTenantCommit(t, db, tn.ID, `UPDATE auth.api_keys SET last_used_at = now() - interval '1 hour' WHERE tenant_id = $1`, tn.ID)
		tenants, secrets = append(tenants, tn), append(secrets, secret)
	}
	c.AgeUses(4 * time.Minute) // past lastSeenGranularity
	for _, secret := range secrets {
		if _, err := keys.AuthenticateAPIKey(ctx, secret, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	acquired := db.App.Stat().AcquireCount()
	c.WriteUses(ctx)
	// All tenants' uses in one transaction.
	if n := db.App.Stat().AcquireCount() - acquired; n != 1 {
		t.Errorf("the uses of %d tenants took %d transactions, want 1", len(tenants), n)
	}
	for _, tn := range tenants {
		list, err := keys.ListAPIKeys(ctx, tn.ID)
		if err != nil || len(list) != 1 || list[0].LastUsedAt == nil || time.Since(*list[0].LastUsedAt) > time.Minute {
			t.Errorf("%s: last use not written: %+v %v", tn.Slug, list, err)
		}
	}
}

// asTenantCommit runs one statement as the application role in the
// tenant's context, and commits.
func asTenantCommit(t *testing.T, db *postgres.DB, tenantID, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.App.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
