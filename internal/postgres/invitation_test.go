package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

type invitationEnv struct {
	t       *testing.T
	ctx     context.Context
	db      *postgres.DB
	svc     *postgres.InvitationService
	members *postgres.MemberService
	auth    *postgres.AuthService
}

func newInvitationEnv(t *testing.T) *invitationEnv {
	t.Helper()
	db := mustOpenDB(t)
	return &invitationEnv{t: t, ctx: context.Background(), db: db, svc: postgres.NewInvitationService(db),
		members: postgres.NewMemberService(db), auth: postgres.NewAuthService(db)}
}

func (e *invitationEnv) mustInvite(tenantID, email string, role tenancy.Role) (*tenancy.Invitation, string) {
	e.t.Helper()
	inv, secret, err := e.svc.Invite(e.ctx, tenantID, tenancy.NewInvitation{Email: email, Name: "Invitee", Role: role}, tenancy.PlatformActor())
	if err != nil {
		e.t.Fatalf("invite %s: %v", email, err)
	}
	return inv, secret
}

// exec runs one statement as the application role in the tenant's context
// and commits it.
func (e *invitationEnv) exec(tenantID, sql string, args ...any) {
	e.t.Helper()
	tx, err := e.db.App.Begin(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func wantCode(t *testing.T, what string, err error, code, inMessage string) {
	t.Helper()
	if tenancy.ErrorCode(err) != code || !strings.Contains(tenancy.ErrorMessage(err), inMessage) {
		t.Fatalf("%s: got %v (%s), want %s containing %q", what, err, tenancy.ErrorCode(err), code, inMessage)
	}
}

func TestInvitationAcceptCreatesAccountOnce(t *testing.T) {
	t.Parallel()
	e := newInvitationEnv(t)
	a := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	inv, secret := e.mustInvite(a.ID, "New.Person@Example.test", tenancy.RoleAdmin)
	if time.Until(inv.ExpiresAt) < tenancy.InvitationTTL-time.Minute || time.Until(inv.ExpiresAt) > tenancy.InvitationTTL {
		t.Errorf("expires at %v, want in 7 days", inv.ExpiresAt)
	}
	found, err := e.svc.Find(e.ctx, a.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	if found.TenantName != "Tenant acme" || found.Role != tenancy.RoleAdmin || !found.NeedsPassword || found.Email != "New.Person@example.test" {
		t.Errorf("found = %+v", found)
	}
	if _, _, err := e.svc.Accept(e.ctx, a.ID, secret, "short"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Fatalf("short password: %v", err)
	}
	_, u, err := e.svc.Accept(e.ctx, a.ID, secret, "a good long password")
	if err != nil {
		t.Fatal(err)
	}
	if _, id, err := e.auth.SignIn(e.ctx, a.ID, "new.person@example.test", "a good long password", tenancy.SessionMeta{}); err != nil || id.Role != tenancy.RoleAdmin || id.User.ID != u.ID {
		t.Fatalf("sign in after accept: %v %+v", err, id)
	}
	// Single use.
	_, _, err = e.svc.Accept(e.ctx, a.ID, secret, "a good long password")
	wantCode(t, "second accept", err, tenancy.EINVALID, "already been accepted")
	_, err = e.svc.Find(e.ctx, a.ID, secret)
	wantCode(t, "find after accept", err, tenancy.EINVALID, "already been accepted")
	pending, err := e.svc.ListPending(e.ctx, a.ID)
	if err != nil || len(pending) != 0 {
		t.Errorf("pending after accept: %v %d", err, len(pending))
	}
	// A member cannot be invited again, whatever the case of the email.
	_, _, err = e.svc.Invite(e.ctx, a.ID, tenancy.NewInvitation{Email: "NEW.PERSON@example.test", Role: tenancy.RoleGuest}, tenancy.PlatformActor())
	wantCode(t, "invite a member", err, tenancy.ECONFLICT, "already a member")
}

func TestInvitationExpiryRevokeResend(t *testing.T) {
	t.Parallel()
	e := newInvitationEnv(t)
	a := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)

	inv, secret := e.mustInvite(a.ID, "late@example.test", tenancy.RoleMember)
	e.exec(a.ID, `UPDATE tenants.tenant_invitations SET expires_at = now() - interval '1 second' WHERE id = $1`, inv.ID)
	_, _, err := e.svc.Accept(e.ctx, a.ID, secret, "a good long password")
	wantCode(t, "accept expired", err, tenancy.EINVALID, "expired")
	// Resending revives it with a new link; the old one stays dead.
	_, fresh, err := e.svc.Resend(e.ctx, a.ID, inv.ID, tenancy.PlatformActor())
	if err != nil {
		t.Fatal(err)
	}
	if fresh == secret {
		t.Fatal("resend kept the secret")
	}
	_, err = e.svc.Find(e.ctx, a.ID, secret)
	wantCode(t, "old link after resend", err, tenancy.EINVALID, "not valid")
	if _, err := e.svc.Find(e.ctx, a.ID, fresh); err != nil {
		t.Fatalf("new link: %v", err)
	}

	// One pending invitation per email, compared without case.
	_, _, err = e.svc.Invite(e.ctx, a.ID, tenancy.NewInvitation{Email: "LATE@example.test", Role: tenancy.RoleMember}, tenancy.PlatformActor())
	wantCode(t, "second pending", err, tenancy.ECONFLICT, "pending invitation")

	if _, err := e.svc.Revoke(e.ctx, a.ID, inv.ID, tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.Accept(e.ctx, a.ID, fresh, "a good long password")
	wantCode(t, "accept revoked", err, tenancy.EINVALID, "withdrawn")
	if _, err := e.svc.Revoke(e.ctx, a.ID, inv.ID, tenancy.PlatformActor()); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("revoke twice: %v", err)
	}
	if _, _, err := e.svc.Resend(e.ctx, a.ID, inv.ID, tenancy.PlatformActor()); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("resend revoked: %v", err)
	}
	// Revoked, the email may be invited again; an expired invitation also
	// makes way for a new one.
	again, _ := e.mustInvite(a.ID, "late@example.test", tenancy.RoleMember)
	e.exec(a.ID, `UPDATE tenants.tenant_invitations SET expires_at = now() - interval '1 second' WHERE id = $1`, again.ID)
	e.mustInvite(a.ID, "Late@example.test", tenancy.RoleGuest)
	pending, err := e.svc.ListPending(e.ctx, a.ID)
	if err != nil || len(pending) != 1 || pending[0].Role != tenancy.RoleGuest {
		t.Errorf("pending = %v %+v", err, pending)
	}
}

func TestInvitationRoles(t *testing.T) {
	t.Parallel()
	e := newInvitationEnv(t)
	a := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	admin := tenancy.MemberActor(tenancy.RoleAdmin)
	_, _, err := e.svc.Invite(e.ctx, a.ID, tenancy.NewInvitation{Email: "o@example.test", Role: tenancy.RoleOwner}, admin)
	wantCode(t, "admin invites owner", err, tenancy.EFORBIDDEN, "owner")
	_, _, err = e.svc.Invite(e.ctx, a.ID, tenancy.NewInvitation{Email: "o@example.test", Role: tenancy.RoleAdmin}, tenancy.MemberActor(tenancy.RoleMember))
	wantCode(t, "member invites", err, tenancy.EFORBIDDEN, "only owners and admins")
	for _, bad := range []tenancy.NewInvitation{
		{Email: "not an email", Role: tenancy.RoleMember},
		{Email: "x@example.test", Role: "boss"},
		{Email: "x@example.test", Name: "two\nlines", Role: tenancy.RoleMember},
	} {
		if _, _, err := e.svc.Invite(e.ctx, a.ID, bad, admin); tenancy.ErrorCode(err) != tenancy.EINVALID {
			t.Errorf("invite %+v: %v", bad, err)
		}
	}
	owned, _ := e.mustInvite(a.ID, "boss@example.test", tenancy.RoleOwner)
	if _, _, err := e.svc.Resend(e.ctx, a.ID, owned.ID, admin); tenancy.ErrorCode(err) != tenancy.EFORBIDDEN {
		t.Errorf("admin resends an owner's invitation: %v", err)
	}
	if _, err := e.svc.Revoke(e.ctx, a.ID, owned.ID, admin); tenancy.ErrorCode(err) != tenancy.EFORBIDDEN {
		t.Errorf("admin revokes an owner's invitation: %v", err)
	}
}

func TestInvitationExistingAccountJoins(t *testing.T) {
	t.Parallel()
	e := newInvitationEnv(t)
	a := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	existing, _, err := postgres.NewUserService(e.db).CreateUser(e.ctx, a.ID, tenancy.NewUser{Email: "Known@example.test", Password: "the old password"})
	if err != nil {
		t.Fatal(err)
	}
	_, secret := e.mustInvite(a.ID, "known@EXAMPLE.test", tenancy.RoleGuest)
	found, err := e.svc.Find(e.ctx, a.ID, secret)
	if err != nil || found.NeedsPassword {
		t.Fatalf("find: %v %+v", err, found)
	}
	_, u, err := e.svc.Accept(e.ctx, a.ID, secret, "")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != existing.ID {
		t.Errorf("accept made account %s, want the existing %s", u.ID, existing.ID)
	}
	if _, id, err := e.auth.SignIn(e.ctx, a.ID, "known@example.test", "the old password", tenancy.SessionMeta{}); err != nil || id.Role != tenancy.RoleGuest {
		t.Fatalf("sign in: %v", err)
	}
}

func TestInvitationPlanLimitAtAccept(t *testing.T) {
	t.Parallel()
	e := newInvitationEnv(t)
	a := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS) // free: 5 members
	_, first := e.mustInvite(a.ID, "first@example.test", tenancy.RoleMember)
	_, second := e.mustInvite(a.ID, "second@example.test", tenancy.RoleMember)
	for i := range 4 {
		u := mustCreateUser(t, e.db, a.ID, fmt.Sprintf("m%d@example.test", i))
		if _, err := e.members.AddMember(e.ctx, a.ID, u.ID, tenancy.RoleMember, tenancy.PlatformActor()); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.svc.Accept(e.ctx, a.ID, first, "a good long password"); err != nil {
		t.Fatalf("fifth member: %v", err)
	}
	_, _, err := e.svc.Accept(e.ctx, a.ID, second, "a good long password")
	wantCode(t, "sixth member", err, tenancy.EQUOTA, "no room")
	// Nothing of the refused acceptance remains: the invitation still works
	// once there is room, and no account was made.
	if _, err := e.svc.Find(e.ctx, a.ID, second); err != nil {
		t.Errorf("invitation after refusal: %v", err)
	}
	asTenant(t, e.db, a.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM auth.users WHERE email_lower = 'second@example.test'`); n != 0 {
			t.Errorf("refused acceptance left %d accounts", n)
		}
	})
}

func TestInvitationTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newInvitationEnv(t)
	a := mustCreateTenant(t, e.db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, e.db, "tenant-b", tenancy.StrategySchema)
	inv, secret := e.mustInvite(a.ID, "x@example.test", tenancy.RoleMember)
	if _, err := e.svc.Find(e.ctx, b.ID, secret); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("B finds A's invitation: %v", err)
	}
	if _, _, err := e.svc.Accept(e.ctx, b.ID, secret, "a good long password"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("B accepts A's invitation: %v", err)
	}
	if pending, err := e.svc.ListPending(e.ctx, b.ID); err != nil || len(pending) != 0 {
		t.Errorf("B lists %d of A's invitations (%v)", len(pending), err)
	}
	if _, err := e.svc.Revoke(e.ctx, b.ID, inv.ID, tenancy.PlatformActor()); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("B revokes A's invitation: %v", err)
	}
	if _, _, err := e.svc.Resend(e.ctx, b.ID, inv.ID, tenancy.PlatformActor()); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("B resends A's invitation: %v", err)
	}
	asTenant(t, e.db, b.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_invitations`); n != 0 {
			t.Errorf("B's context sees %d invitations", n)
		}
		mustRefuse(t, tx, `INSERT INTO tenants.tenant_invitations (tenant_id, email, role, token_hash, expires_at)
			VALUES ($1, 'y@example.test', 'owner', '\x00', now() + interval '1 day')`, a.ID)
	})
	// A's invitation still works on A.
	if _, _, err := e.svc.Accept(e.ctx, a.ID, secret, "a good long password"); err != nil {
		t.Fatal(err)
	}
}
