package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/secretbox"
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

// cachedKey makes a key of the tenant and verifies it through keys, so that
// their cache holds it.
func cachedKey(t *testing.T, plain *postgres.APIKeyService, keys *postgres.CachedAPIKeyService, tenantID string) (*tenancy.APIKey, string) {
	t.Helper()
	ctx := context.Background()
	k, secret, err := plain.CreateAPIKey(ctx, tenantID, "ci", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.AuthenticateAPIKey(ctx, secret, ""); err != nil {
		t.Fatal(err)
	}
	return k, secret
}

// heard runs change and waits until c has heard its notices (for a
// while: the test goes on without them, to tell each path that sends
// none). A change may send several, one per session it ends, handled one
// after the other: the wait ends once none has come for 50 ms.
func heard(t *testing.T, c *postgres.CredentialCache, change func()) {
	t.Helper()
	n := c.Heard()
	change()
	deadline := time.Now().Add(2 * time.Second)
	for c.Heard() == n {
		if time.Now().After(deadline) {
			t.Error("no notice was heard")
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	for last := c.Heard(); time.Now().Before(deadline); last = c.Heard() {
		time.Sleep(50 * time.Millisecond)
		if c.Heard() == last {
			return
		}
	}
}

// TestCredentialNotices: a change made without the cached services (the
// CLI's, another process's) reaches a process holding the credential in
// memory, through the notice the changing transaction sends: every path
// that ends a key or a session, or changes what it grants.
func TestCredentialNotices(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t)
	c := listening(t, db)
	keys := postgres.NewAPIKeyService(db).Cached(c)
	auth := postgres.NewAuthService(db).Cached(c)
	plainAuth := postgres.NewAuthService(db)
	plainKeys := postgres.NewAPIKeyService(db)
	members := postgres.NewMemberService(db)
	sessions := postgres.NewSessionService(db)
	tenants := postgres.NewTenantService(db, tenancy.ModeHybrid)
	sealer, err := secretbox.New([]byte("a test key for sealing sso secrets"), "sso")
	if err != nil {
		t.Fatal(err)
	}
	sso := postgres.NewSSOService(db, sealer)
	created, err := tenants.CreateTenant(ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme", Plan: "enterprise"})
	if err != nil {
		t.Fatal(err)
	}
	tn := created.Tenant

	newKey := func(tenant *tenancy.Tenant) (*tenancy.APIKey, string) {
		t.Helper()
		return cachedKey(t, plainKeys, keys, tenant.ID)
	}
	keyGone := func(what, secret string) {
		t.Helper()
		if _, err := keys.AuthenticateAPIKey(ctx, secret, ""); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
			t.Errorf("%s: the key still works: %v", what, err)
		}
	}
	// signIn makes a member of tenant and a session of theirs, verified
	// through the cache.
	n := 0
	signIn := func(tenant *tenancy.Tenant, role tenancy.Role) (string, *tenancy.Identity) {
		t.Helper()
		n++
		email := fmt.Sprintf("person%d@acme.example", n)
		u, _, err := postgres.NewUserService(db).CreateUser(ctx, tenant.ID, tenancy.NewUser{Email: email, Name: email, Password: "password of " + email})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := members.AddMember(ctx, tenant.ID, u.ID, role, tenancy.PlatformActor()); err != nil {
			t.Fatal(err)
		}
		token, _, err := plainAuth.SignIn(ctx, tenant.ID, email, "password of "+email, tenancy.SessionMeta{})
		if err != nil {
			t.Fatal(err)
		}
		id, err := auth.Identify(ctx, tenant.ID, token)
		if err != nil || id.Role != role {
			t.Fatalf("identify: %v %v", id, err)
		}
		return token, id
	}
	sessionGone := func(what string, tenant *tenancy.Tenant, token string) {
		t.Helper()
		if id, err := auth.Identify(ctx, tenant.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
			t.Errorf("%s: the session still works: %+v %v", what, id, err)
		}
	}

	k, secret := newKey(tn)
	heard(t, c, func() {
		if _, err := plainKeys.RevokeAPIKey(ctx, tn.ID, k.Prefix); err != nil {
			t.Fatal(err)
		}
	})
	keyGone("revoked", secret)

	token, id := signIn(tn, tenancy.RoleAdmin)
	heard(t, c, func() {
		if _, _, err := members.UpdateMember(ctx, tn.ID, id.User.ID, tenancy.RoleGuest, tenancy.PlatformActor()); err != nil {
			t.Fatal(err)
		}
	})
	if id, err := auth.Identify(ctx, tn.ID, token); err != nil || id.Role != tenancy.RoleGuest {
		t.Errorf("after a role change: %v %v", id, err)
	}
	heard(t, c, func() {
		if err := plainAuth.SignOut(ctx, tn.ID, token); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("signed out", tn, token)

	token, id = signIn(tn, tenancy.RoleMember)
	heard(t, c, func() {
		if _, err := members.RemoveMember(ctx, tn.ID, id.User.ID, tenancy.PlatformActor()); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("member removed", tn, token)

	token, id = signIn(tn, tenancy.RoleMember)
	heard(t, c, func() {
		_, reset, err := plainAuth.RequestPasswordReset(ctx, tn.ID, id.User.Email)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plainAuth.ResetPassword(ctx, tn.ID, reset, "a brand new password"); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("password reset", tn, token)

	// The person's other session goes; the one changing it stays.
	token, id = signIn(tn, tenancy.RoleMember)
	other, _, err := plainAuth.SignIn(ctx, tn.ID, id.User.Email, "password of "+id.User.Email, tenancy.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Identify(ctx, tn.ID, other); err != nil {
		t.Fatal(err)
	}
	heard(t, c, func() {
		if _, err := sessions.ChangePassword(ctx, tn.ID, id, "password of "+id.User.Email, "another good password"); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("password changed", tn, other)
	if _, err := auth.Identify(ctx, tn.ID, token); err != nil {
		t.Errorf("the session that changed the password: %v", err)
	}
	other, _, err = plainAuth.SignIn(ctx, tn.ID, id.User.Email, "another good password", tenancy.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Identify(ctx, tn.ID, other); err != nil {
		t.Fatal(err)
	}
	heard(t, c, func() {
		if _, err := sessions.EndOtherSessions(ctx, tn.ID, id); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("ended from another session", tn, other)
	heard(t, c, func() {
		if err := sessions.EndSession(ctx, tn.ID, id, id.SessionID); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("ended from the sessions page", tn, token)

	token, id = signIn(tn, tenancy.RoleMember)
	_, admin := signIn(tn, tenancy.RoleAdmin)
	heard(t, c, func() {
		if _, err := sessions.EndMemberSessions(ctx, tn.ID, admin, id.User.ID); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("ended by an admin", tn, token)

	// Idle for longer than allowed, as another process finds it: it ends
	// the session, and this one, which served it a moment ago, hears it.
	token, _ = signIn(tn, tenancy.RoleMember)
	asTenantCommit(t, db, tn.ID, `UPDATE auth.sessions SET last_seen_at = now() - interval '1 day' WHERE tenant_id = $1 AND token_hash = $2`,
		tn.ID, tenancy.HashSecret(token))
	heard(t, c, func() {
		if _, err := plainAuth.Identify(ctx, tn.ID, token); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
			t.Fatalf("an idle session: %v", err)
		}
	})
	sessionGone("idle", tn, token)

	// Single sign-on becoming required ends the password sessions of all
	// but owners, by either path.
	token, _ = signIn(tn, tenancy.RoleMember)
	ownerToken, _ := signIn(tn, tenancy.RoleOwner)
	heard(t, c, func() {
		if _, err := sessions.EndSessionsForRequiredSSO(ctx, tn.ID); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("single sign-on required", tn, token)
	token, _ = signIn(tn, tenancy.RoleMember)
	heard(t, c, func() {
		if _, err := sso.SaveSSOConfig(ctx, tn.ID, &tenancy.SSOConfig{
			Issuer: "https://id.acme.example", ClientID: "portal", ClientSecret: "s3cret", DisplayName: "Acme ID",
			DefaultRole: tenancy.RoleMember, RequireSSO: true,
		}); err != nil {
			t.Fatal(err)
		}
	})
	sessionGone("single sign-on turned on, required", tn, token)
	if _, err := auth.Identify(ctx, tn.ID, ownerToken); err != nil {
		t.Errorf("an owner's session, single sign-on required: %v", err)
	}

	// A tenant suspended, then deleted: every key and session of it goes,
	// another tenant's stay.
	bolt := mustCreateTenant(t, db, "bolt", tenancy.StrategyRLS)
	_, boltKey := newKey(bolt)
	boltToken, _ := signIn(bolt, tenancy.RoleMember)
	newKey(tn)
	heard(t, c, func() {
		if _, err := tenants.SetTenantStatus(ctx, tn.ID, tenancy.StatusSuspended); err != nil {
			t.Fatal(err)
		}
	})
	// Requests refuse a suspended tenant on its status (the tenant
	// cache); the credentials go from memory all the same.
	if keys, sessions := c.Held(tn.ID); keys != 0 || sessions != 0 {
		t.Errorf("tenant suspended: %d keys and %d sessions of it still held", keys, sessions)
	}
	if keys, sessions := c.Held(bolt.ID); keys != 1 || sessions != 1 {
		t.Errorf("another tenant suspended: %d keys and %d sessions held, want 1 and 1", keys, sessions)
	}
	if _, err := tenants.SetTenantStatus(ctx, tn.ID, tenancy.StatusActive); err != nil {
		t.Fatal(err)
	}
	// The same when its subscription ends and billing suspends it.
	newKey(tn)
	signIn(tn, tenancy.RoleMember)
	heard(t, c, func() {
		out, err := postgres.NewBillingService(db).ApplyEvent(ctx, &tenancy.BillingEvent{
			ID: "evt_ended", Type: tenancy.EventSubscriptionDeleted, Created: time.Now().UTC().Truncate(time.Second),
			Payload: []byte(`{}`), TenantHint: tn.ID,
			Subscription: tenancy.SubscriptionState{CustomerID: "cus_acme", SubscriptionID: "sub_acme", Status: "canceled"}})
		if err != nil || !strings.Contains(out.Result, "tenant suspended") {
			t.Fatalf("subscription ended: %+v, %v", out, err)
		}
	})
	if keys, sessions := c.Held(tn.ID); keys != 0 || sessions != 0 {
		t.Errorf("tenant suspended by billing: %d keys and %d sessions of it still held", keys, sessions)
	}
	if keys, sessions := c.Held(bolt.ID); keys != 1 || sessions != 1 {
		t.Errorf("another tenant suspended by billing: %d keys and %d sessions held, want 1 and 1", keys, sessions)
	}
	if _, err := postgres.NewBillingService(db).SetTenantPlan(ctx, tn.ID, "enterprise"); err != nil {
		t.Fatal(err)
	}
	if _, err := tenants.SetTenantStatus(ctx, tn.ID, tenancy.StatusActive); err != nil {
		t.Fatal(err)
	}
	_, secret = newKey(tn)
	ownerToken, _ = signIn(tn, tenancy.RoleOwner)
	heard(t, c, func() {
		if _, err := tenants.DeleteTenant(ctx, tn.ID); err != nil {
			t.Fatal(err)
		}
	})
	keyGone("tenant deleted", secret)
	sessionGone("tenant deleted", tn, ownerToken)
	if _, err := keys.AuthenticateAPIKey(ctx, boltKey, ""); err != nil {
		t.Errorf("another tenant's key: %v", err)
	}
	if _, err := auth.Identify(ctx, bolt.ID, boltToken); err != nil {
		t.Errorf("another tenant's session: %v", err)
	}

	// Touching a session announces nothing: it changes nothing it grants.
	before := c.Heard()
	asTenantCommit(t, db, bolt.ID, `UPDATE auth.sessions SET last_seen_at = now() WHERE tenant_id = $1`, bolt.ID)
	asTenantCommit(t, db, bolt.ID, `UPDATE auth.api_keys SET last_used_at = now() WHERE tenant_id = $1`, bolt.ID)
	c.WriteUses(ctx)
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

// TestCachesWhenTheirListenerIsKilled: the LISTEN connection's backend is
// terminated (by an operator, a failover, a proxy's idle timeout). What
// changes while nobody listens, its notice lost, takes effect on the next
// request all the same: the caches stop serving from memory as soon as
// the connection is gone, and start empty once it is back. After that,
// notices work again.
func TestCachesWhenTheirListenerIsKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	creds := listening(t, db)
	tc := postgres.NewTenantCache(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	lctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go tc.Listen(lctx)
	<-tc.Ready()
	tenants := postgres.NewTenantService(db, tenancy.ModeHybrid)
	plain := postgres.NewAPIKeyService(db)
	keys := plain.Cached(creds)
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	first, firstSecret := cachedKey(t, plain, keys, tn.ID)
	second, secondSecret := cachedKey(t, plain, keys, tn.ID)
	if got, err := tc.Lookup(ctx, "acme"); err != nil || got.Status != tenancy.StatusActive {
		t.Fatalf("lookup: %v, %v", got, err)
	}
	if n, _ := creds.Held(tn.ID); n != 2 {
		t.Fatalf("%d keys held", n)
	}

	// The application role may end its own backends: both listeners go.
	var killed int
	if err := db.App.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen %'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 2 {
		t.Fatalf("%d listeners ended, want 2", killed)
	}
	for deadline := time.Now().Add(5 * time.Second); creds.Live() || tc.Live(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the caches did not notice their listener ended")
		}
	}
	if n, _ := creds.Held(tn.ID); n != 0 {
		t.Errorf("%d keys still held with nobody listening", n)
	}
	// Changes nobody hears: each takes effect on the next request.
	if _, err := plain.RevokeAPIKey(ctx, tn.ID, first.Prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := tenants.SetTenantStatus(ctx, tn.ID, tenancy.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.AuthenticateAPIKey(ctx, firstSecret, ""); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a key revoked while nobody listened still works: %v", err)
	}
	if got, err := tc.Lookup(ctx, "acme"); err != nil || got.Status != tenancy.StatusSuspended {
		t.Errorf("a tenant suspended while nobody listened: %v, %v", got, err)
	}
	if _, err := tenants.SetTenantStatus(ctx, tn.ID, tenancy.StatusActive); err != nil {
		t.Fatal(err)
	}

	// Back, the listeners hear changes again.
	for deadline := time.Now().Add(10 * time.Second); !creds.Live() || !tc.Live(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the listeners did not come back")
		}
	}
	if _, err := keys.AuthenticateAPIKey(ctx, secondSecret, ""); err != nil {
		t.Fatal(err)
	}
	if n, _ := creds.Held(tn.ID); n != 1 {
		t.Errorf("%d keys held once the listener is back, want 1", n)
	}
	heard(t, creds, func() {
		if _, err := plain.RevokeAPIKey(ctx, tn.ID, second.Prefix); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := keys.AuthenticateAPIKey(ctx, secondSecret, ""); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a key revoked once the listener is back still works: %v", err)
	}
}
