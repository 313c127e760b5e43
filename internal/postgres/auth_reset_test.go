package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nself/nself/internal/password"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// Parallel sign-ins of one account (and of one administrator) all open a
// session; none dies in a deadlock.
func TestParallelSignIns(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	u, _, err := postgres.NewUserService(db).CreateUser(ctx, a.ID, tenancy.NewUser{Email: "ann@a.test", Password: "ann's password"})
	if err != nil {
		t.Fatal(err)
	}
	execInTenant(t, db, a.ID, `INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, 'admin')`, a.ID, u.ID)
	admins := postgres.NewAdminService(db)
	if _, err := admins.CreateAdmin(ctx, "root@platform.test", "Root", "a long admin password"); err != nil {
		t.Fatal(err)
	}
	auth := postgres.NewAuthService(db)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, _, err := auth.SignIn(ctx, a.ID, "ann@a.test", "ann's password", tenancy.SessionMeta{ClientIP: "127.0.0.1"}); err != nil {
				t.Errorf("sign in: %v", err)
			}
		})
		wg.Go(func() {
			if _, _, err := admins.AdminSignIn(ctx, "root@platform.test", "a long admin password"); err != nil {
				t.Errorf("admin sign in: %v", err)
			}
		})
	}
	wg.Wait()
}

// A newer link voids the older ones; a completed reset voids every other
// link of the account, whatever its purpose; two links used at once do not
// both set a password.
func TestResetLinksVoidEachOther(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	users := postgres.NewUserService(db)
	ann, _, err := users.CreateUser(ctx, a.ID, tenancy.NewUser{Email: "ann@a.test", Password: "ann's password"})
	if err != nil {
		t.Fatal(err)
	}
	auth := postgres.NewAuthService(db)
	request := func() string {
		t.Helper()
		u, token, err := auth.RequestPasswordReset(ctx, a.ID, "ann@a.test")
		if err != nil || u == nil || token == "" {
			t.Fatalf("request reset: %v %v", u, err)
		}
		return token
	}
	older := request()
	newer := request()
	if _, err := auth.ResetPassword(ctx, a.ID, older, "set with the older link"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("older link after a newer one: %v", err)
	}
	if _, err := auth.ResetPassword(ctx, a.ID, newer, "set with the newer link"); err != nil {
		t.Fatal(err)
	}

	// A link issued some other way (a set-password link) while a reset
	// link is out: using one voids the other.
	reset := request()
	// INSERT … VALUES: Citus runs an INSERT … SELECT under row-level
	// security as a COPY, which it refuses.
	execInTenant(t, db, a.ID, `
		INSERT INTO auth.password_tokens (tenant_id, user_id, token_hash, purpose, expires_at)
		VALUES ($1, $3, $2, 'set', now() + interval '1 hour')`,
		a.ID, tenancy.HashSecret("another-outstanding-link"), ann.ID)
	if _, err := auth.ResetPassword(ctx, a.ID, reset, "set with the reset link"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.ResetPassword(ctx, a.ID, "another-outstanding-link", "set with the other link"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("the other link after a completed reset: %v", err)
	}

	// Two links of the account out at once, used at once: one wins.
	reset = request()
	execInTenant(t, db, a.ID, `
		INSERT INTO auth.password_tokens (tenant_id, user_id, token_hash, purpose, expires_at)
		VALUES ($1, $3, $2, 'set', now() + interval '1 hour')`,
		a.ID, tenancy.HashSecret("a-second-link"), ann.ID)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, token := range []string{reset, "a-second-link"} {
		wg.Go(func() { _, errs[i] = auth.ResetPassword(ctx, a.ID, token, "set at the same time") })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch tenancy.ErrorCode(err) {
		case "":
			ok++
		case tenancy.EINVALID:
		default:
			t.Errorf("link used at the same time as another: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of two links used at once set the password (%v), want 1", ok, errs)
	}
}

// An account gets at most MaxResetLinksPerHour links an hour; past it, and
// for an unknown email, the answer is no user and no error.
func TestResetLinksPerHour(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	mustCreateUser(t, db, a.ID, "ann@a.test")
	auth := postgres.NewAuthService(db)
	for i := range tenancy.MaxResetLinksPerHour {
		if u, token, err := auth.RequestPasswordReset(ctx, a.ID, "ann@a.test"); err != nil || u == nil || token == "" {
			t.Fatalf("request %d: %v %v", i+1, u, err)
		}
	}
	if u, token, err := auth.RequestPasswordReset(ctx, a.ID, "ANN@a.test"); err != nil || u != nil || token != "" {
		t.Errorf("past the limit: %v %q %v", u, token, err)
	}
	// An hour later the account may ask again.
	// (Set outright: Citus refuses a time less an interval over a column
	// in an UPDATE; the tokens were all made a moment ago.)
	execInTenant(t, db, a.ID, `UPDATE auth.password_tokens SET created_at = now() - interval '61 minutes'`)
	if u, token, err := auth.RequestPasswordReset(ctx, a.ID, "ann@a.test"); err != nil || u == nil || token == "" {
		t.Errorf("an hour later: %v %v", u, err)
	}
}

// A sign-in, a reset or an invitation acceptance waiting for its turn to
// hash a password (64 MiB and a good part of a second each, a few at a
// time) holds no pooled connection, and so no transaction and no lock.
// Sign-ins and acceptances hashed inside their transaction before: a burst
// of them took every connection of the pool.
func TestPasswordHashesHoldNoConnection(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	svc := postgres.NewTenantService(db, tenancy.ModeRLS)
	c, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme", Owner: "ann@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	tenantID := c.Tenant.ID
	auth := postgres.NewAuthService(db)
	if _, err := auth.ResetPassword(ctx, tenantID, c.PasswordToken, "ann's password"); err != nil {
		t.Fatal(err)
	}
	invitations := postgres.NewInvitationService(db)
	_, invitation, err := invitations.Invite(ctx, tenantID, tenancy.NewInvitation{Email: "bob@acme.test", Role: tenancy.RoleMember}, tenancy.PlatformActor())
	if err != nil {
		t.Fatal(err)
	}
	_, reset, err := auth.RequestPasswordReset(ctx, tenantID, "ann@acme.test")
	if err != nil {
		t.Fatal(err)
	}

	// whileQueued runs op behind a queue of other hashes and checks, while
	// op waits for its turn, that no connection of the pool is taken.
	whileQueued := func(what string, op func() error) {
		t.Helper()
		var queue sync.WaitGroup
		for range 6 * password.MaxConcurrent {
			queue.Go(func() {
				if _, err := password.Hash(ctx, "a password in the queue"); err != nil {
					t.Error(err)
				}
			})
		}
		time.Sleep(50 * time.Millisecond)
		before := db.App.Stat().AcquireCount()
		done := make(chan error, 1)
		go func() { done <- op() }()
		// op first reads what it needs, with a connection, then waits its
		// turn: a loaded machine may be slow to start it.
		for deadline := time.Now().Add(5 * time.Second); db.App.Stat().AcquireCount() == before; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s took no connection in 5s", what)
			}
		}
		time.Sleep(100 * time.Millisecond)
		taken := db.App.Stat().AcquiredConns()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", what, err)
		}
		queue.Wait()
		if taken != 0 {
			t.Errorf("%s held %d connection(s) while waiting to hash", what, taken)
		}
	}
	whileQueued("sign in", func() error {
		_, _, err := auth.SignIn(ctx, tenantID, "ann@acme.test", "ann's password", tenancy.SessionMeta{})
		return err
	})
	whileQueued("accept invitation", func() error {
		_, _, err := invitations.Accept(ctx, tenantID, invitation, "bob's first password")
		return err
	})
	whileQueued("reset password", func() error {
		_, err := auth.ResetPassword(ctx, tenantID, reset, "ann's next password")
		return err
	})
	whileQueued("create user", func() error {
		_, _, err := postgres.NewUserService(db).CreateUser(ctx, tenantID, tenancy.NewUser{Email: "cy@acme.test", Password: "cy's password"})
		return err
	})
}
