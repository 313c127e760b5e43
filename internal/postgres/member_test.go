package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

var platform = tenancy.PlatformActor()

// wantError fails the test unless err is a domain error with the code,
// whose one-line message contains msg.
func wantError(t *testing.T, err error, code, msg string) {
	t.Helper()
	if tenancy.ErrorCode(err) != code || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %v (%s); want %s containing %q", err, tenancy.ErrorCode(err), code, msg)
	}
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("message spans lines: %q", err)
	}
}

// roles returns the tenant's members as user id → role, read directly.
func roles(t *testing.T, db *postgres.DB, tenantID string) map[string]tenancy.Role {
	t.Helper()
	out := map[string]tenancy.Role{}
	asTenant(t, db, tenantID, func(tx pgx.Tx) {
		rows, err := tx.Query(context.Background(), `SELECT user_id, role FROM tenants.tenant_members WHERE tenant_id = $1`, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var r tenancy.Role
			if err := rows.Scan(&id, &r); err != nil {
				t.Fatal(err)
			}
			out[id] = r
		}
	})
	return out
}

// ownerID returns the owner the tenant's registry row names.
func ownerID(t *testing.T, db *postgres.DB, tenantID string) string {
	t.Helper()
	tn, err := postgres.NewTenantService(db, tenancy.ModeHybrid).FindTenant(context.Background(), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	return tn.OwnerID
}

func setPlan(t *testing.T, db *postgres.DB, tenantID, plan string) {
	t.Helper()
	if _, err := db.Admin.Exec(context.Background(), `UPDATE tenants.tenants SET plan = $2 WHERE id = $1`, tenantID, plan); err != nil {
		t.Fatal(err)
	}
}

func TestMembers(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewMemberService(db)
	ctx := context.Background()
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	ann := mustCreateUser(t, db, tn.ID, "Ann@acme.example")
	bob := mustCreateUser(t, db, tn.ID, "bob@acme.example")
	cy := mustCreateUser(t, db, tn.ID, "cy@acme.example")

	// By email, in any case; the first owner becomes the registry's owner.
	m, err := svc.AddMember(ctx, tn.ID, "ANN@ACME.example", tenancy.RoleOwner, platform)
	if err != nil {
		t.Fatal(err)
	}
	if m.UserID != ann.ID || m.Role != tenancy.RoleOwner || m.Email != "Ann@acme.example" || m.TenantID != tn.ID || m.JoinedAt.IsZero() {
		t.Errorf("added %+v", m)
	}
	if got := ownerID(t, db, tn.ID); got != ann.ID {
		t.Errorf("owner_user_id = %q, want the first owner %s", got, ann.ID)
	}
	// By id.
	if m, err = svc.AddMember(ctx, tn.ID, bob.ID, tenancy.RoleAdmin, platform); err != nil || m.UserID != bob.ID || m.Email != bob.Email {
		t.Fatalf("add by id: %+v, %v", m, err)
	}
	if m, err = svc.AddMember(ctx, tn.ID, strings.ToUpper(cy.ID), tenancy.RoleGuest, tenancy.MemberActor(tenancy.RoleAdmin)); err != nil || m.UserID != cy.ID {
		t.Fatalf("add by id in capitals: %+v, %v", m, err)
	}
	list, err := svc.ListMembers(ctx, tn.ID)
	if err != nil || len(list) != 3 || list[0].UserID != ann.ID || list[1].Role != tenancy.RoleAdmin || list[2].Email != cy.Email {
		t.Fatalf("list = %v, %v", list, err)
	}

	m, from, err := svc.UpdateMember(ctx, tn.ID, "cy@acme.example", tenancy.RoleMember, tenancy.MemberActor(tenancy.RoleAdmin))
	if err != nil || from != tenancy.RoleGuest || m.Role != tenancy.RoleMember || m.UserID != cy.ID || !m.JoinedAt.Equal(list[2].JoinedAt) {
		t.Fatalf("update: %+v, %s, %v", m, from, err)
	}
	if _, _, err := svc.UpdateMember(ctx, tn.ID, bob.ID, tenancy.RoleOwner, tenancy.MemberActor(tenancy.RoleOwner)); err != nil {
		t.Fatal(err)
	}
	if got := ownerID(t, db, tn.ID); got != ann.ID {
		t.Errorf("owner_user_id = %q, want it kept on %s while still an owner", got, ann.ID)
	}
	// Demoting the owner the registry names moves it to the other owner.
	if _, from, err = svc.UpdateMember(ctx, tn.ID, ann.ID, tenancy.RoleAdmin, platform); err != nil || from != tenancy.RoleOwner {
		t.Fatalf("demote: %s, %v", from, err)
	}
	if got := ownerID(t, db, tn.ID); got != bob.ID {
		t.Errorf("owner_user_id = %q after demotion, want %s", got, bob.ID)
	}
	if _, _, err := svc.UpdateMember(ctx, tn.ID, ann.ID, tenancy.RoleOwner, platform); err != nil {
		t.Fatal(err)
	}
	// Removing it moves it too; the account stays.
	if m, err = svc.RemoveMember(ctx, tn.ID, "bob@ACME.EXAMPLE", platform); err != nil || m.UserID != bob.ID || m.Role != tenancy.RoleOwner {
		t.Fatalf("remove: %+v, %v", m, err)
	}
	if got := ownerID(t, db, tn.ID); got != ann.ID {
		t.Errorf("owner_user_id = %q after removal, want %s", got, ann.ID)
	}
	want := map[string]tenancy.Role{ann.ID: tenancy.RoleOwner, cy.ID: tenancy.RoleMember}
	if got := roles(t, db, tn.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	if _, total, err := postgres.NewUserService(db).ListUsers(ctx, tn.ID, tenancy.UserFilter{}); err != nil || total != 3 {
		t.Errorf("users = %d, %v; removing a member keeps the account", total, err)
	}
	// A removed member can be added again.
	if _, err := svc.AddMember(ctx, tn.ID, bob.ID, tenancy.RoleMember, platform); err != nil {
		t.Fatal(err)
	}
}

func TestMemberRules(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewMemberService(db)
	ctx := context.Background()
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	setPlan(t, db, tn.ID, "enterprise")
	users := map[tenancy.Role]*tenancy.User{}
	for _, r := range []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin, tenancy.RoleMember, tenancy.RoleGuest} {
		users[r] = mustCreateUser(t, db, tn.ID, string(r)+"@acme.example")
		if _, err := svc.AddMember(ctx, tn.ID, users[r].ID, r, platform); err != nil {
			t.Fatal(err)
		}
	}
	outsider := mustCreateUser(t, db, tn.ID, "new@acme.example")
	as := tenancy.MemberActor

	tests := []struct {
		name  string
		do    func() error
		code  string // "" when allowed (and then undone)
		msg   string
		after map[string]tenancy.Role // the outsider's or a member's role afterwards, when allowed
	}{
		{"admin adds an owner", func() error {
			_, err := svc.AddMember(ctx, tn.ID, outsider.ID, tenancy.RoleOwner, as(tenancy.RoleAdmin))
			return err
		}, tenancy.EFORBIDDEN, "only an owner can add an owner", nil},
		{"member adds a guest", func() error {
			_, err := svc.AddMember(ctx, tn.ID, outsider.ID, tenancy.RoleGuest, as(tenancy.RoleMember))
			return err
		}, tenancy.EFORBIDDEN, "only owners and admins can manage members", nil},
		{"guest adds a guest", func() error {
			_, err := svc.AddMember(ctx, tn.ID, outsider.ID, tenancy.RoleGuest, as(tenancy.RoleGuest))
			return err
		}, tenancy.EFORBIDDEN, "only owners and admins can manage members", nil},
		{"admin promotes a member to owner", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, users[tenancy.RoleMember].ID, tenancy.RoleOwner, as(tenancy.RoleAdmin))
			return err
		}, tenancy.EFORBIDDEN, "only an owner can make someone an owner", nil},
		{"admin demotes the owner", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, users[tenancy.RoleOwner].ID, tenancy.RoleAdmin, as(tenancy.RoleAdmin))
			return err
		}, tenancy.EFORBIDDEN, "only an owner can change an owner's role", nil},
		{"admin removes the owner", func() error {
			_, err := svc.RemoveMember(ctx, tn.ID, users[tenancy.RoleOwner].ID, as(tenancy.RoleAdmin))
			return err
		}, tenancy.EFORBIDDEN, "only an owner can remove an owner", nil},
		{"member removes a guest", func() error {
			_, err := svc.RemoveMember(ctx, tn.ID, users[tenancy.RoleGuest].ID, as(tenancy.RoleMember))
			return err
		}, tenancy.EFORBIDDEN, "only owners and admins", nil},
		{"guest promotes itself", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, users[tenancy.RoleGuest].ID, tenancy.RoleAdmin, as(tenancy.RoleGuest))
			return err
		}, tenancy.EFORBIDDEN, "only owners and admins", nil},
		{"owner demotes the last owner", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, users[tenancy.RoleOwner].ID, tenancy.RoleAdmin, as(tenancy.RoleOwner))
			return err
		}, tenancy.ECONFLICT, "acme must keep at least one owner: make another member an owner first", nil},
		{"platform removes the last owner", func() error {
			_, err := svc.RemoveMember(ctx, tn.ID, users[tenancy.RoleOwner].Email, platform)
			return err
		}, tenancy.ECONFLICT, "acme must keep at least one owner", nil},
		{"same role", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, users[tenancy.RoleAdmin].ID, tenancy.RoleAdmin, platform)
			return err
		}, tenancy.ECONFLICT, "the member is already an admin", nil},

		{"admin adds an admin", func() error {
			_, err := svc.AddMember(ctx, tn.ID, outsider.ID, tenancy.RoleAdmin, as(tenancy.RoleAdmin))
			return err
		}, "", "", map[string]tenancy.Role{outsider.ID: tenancy.RoleAdmin}},
		{"admin demotes an admin to guest", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, outsider.ID, tenancy.RoleGuest, as(tenancy.RoleAdmin))
			return err
		}, "", "", map[string]tenancy.Role{outsider.ID: tenancy.RoleGuest}},
		{"admin removes a guest", func() error {
			_, err := svc.RemoveMember(ctx, tn.ID, outsider.ID, as(tenancy.RoleAdmin))
			return err
		}, "", "", map[string]tenancy.Role{outsider.ID: ""}},
		{"owner adds an owner", func() error {
			_, err := svc.AddMember(ctx, tn.ID, outsider.ID, tenancy.RoleOwner, as(tenancy.RoleOwner))
			return err
		}, "", "", map[string]tenancy.Role{outsider.ID: tenancy.RoleOwner}},
		{"owner demotes an owner", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, outsider.ID, tenancy.RoleMember, as(tenancy.RoleOwner))
			return err
		}, "", "", map[string]tenancy.Role{outsider.ID: tenancy.RoleMember}},
		{"owner removes a member", func() error {
			_, err := svc.RemoveMember(ctx, tn.ID, outsider.ID, as(tenancy.RoleOwner))
			return err
		}, "", "", map[string]tenancy.Role{outsider.ID: ""}},
	}
	for _, tt := range tests {
		before := roles(t, db, tn.ID)
		err := tt.do()
		if tt.code != "" {
			t.Run(tt.name, func(t *testing.T) { wantError(t, err, tt.code, tt.msg) })
			if after := roles(t, db, tn.ID); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("%s: members changed from %v to %v", tt.name, before, after)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		after := roles(t, db, tn.ID)
		for id, r := range tt.after {
			if after[id] != r {
				t.Errorf("%s: role of %s = %q, want %q", tt.name, id, after[id], r)
			}
		}
	}
}

func TestMemberBadInput(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewMemberService(db)
	ctx := context.Background()
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	ann := mustCreateUser(t, db, tn.ID, "ann@acme.example")
	bob := mustCreateUser(t, db, tn.ID, "bob@acme.example")
	if _, err := svc.AddMember(ctx, tn.ID, ann.ID, tenancy.RoleOwner, platform); err != nil {
		t.Fatal(err)
	}
	gone := mustCreateTenant(t, db, "gone", tenancy.StrategyRLS)
	if _, err := postgres.NewTenantService(db, tenancy.ModeHybrid).DeleteTenant(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	const nobody = "00000000-0000-4000-8000-000000000000"

	tests := []struct {
		name string
		do   func() error
		code string
		msg  string
	}{
		{"unknown email", func() error {
			_, err := svc.AddMember(ctx, tn.ID, "zed@acme.example", tenancy.RoleMember, platform)
			return err
		}, tenancy.ENOTFOUND, `acme has no user "zed@acme.example"`},
		{"unknown id", func() error {
			_, err := svc.AddMember(ctx, tn.ID, nobody, tenancy.RoleMember, platform)
			return err
		}, tenancy.ENOTFOUND, `acme has no user "` + nobody + `"`},
		{"neither id nor email", func() error {
			_, err := svc.AddMember(ctx, tn.ID, "bob", tenancy.RoleMember, platform)
			return err
		}, tenancy.EINVALID, `user "bob" is neither a user id (uuid) nor an email address`},
		{"injection as a reference", func() error {
			_, err := svc.RemoveMember(ctx, tn.ID, "x' OR '1'='1", platform)
			return err
		}, tenancy.EINVALID, "neither a user id"},
		{"bad role on add", func() error {
			_, err := svc.AddMember(ctx, tn.ID, bob.ID, "boss", platform)
			return err
		}, tenancy.EINVALID, `role "boss" is not one of owner, admin, member, guest`},
		{"bad role on update", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, ann.ID, "Owner", platform)
			return err
		}, tenancy.EINVALID, `role "Owner" is not one of`},
		{"already a member", func() error {
			_, err := svc.AddMember(ctx, tn.ID, "ANN@acme.example", tenancy.RoleAdmin, platform)
			return err
		}, tenancy.ECONFLICT, `"ANN@acme.example" is already a member of acme (owner)`},
		{"update a non-member", func() error {
			_, _, err := svc.UpdateMember(ctx, tn.ID, bob.Email, tenancy.RoleAdmin, platform)
			return err
		}, tenancy.ENOTFOUND, `"bob@acme.example" is not a member of acme`},
		{"remove a non-member", func() error {
			_, err := svc.RemoveMember(ctx, tn.ID, bob.ID, platform)
			return err
		}, tenancy.ENOTFOUND, "is not a member of acme"},
		{"unknown tenant", func() error {
			_, err := svc.AddMember(ctx, nobody, bob.ID, tenancy.RoleMember, platform)
			return err
		}, tenancy.ENOTFOUND, "tenant " + nobody + " not found"},
		{"tenant id not a uuid", func() error {
			_, err := svc.AddMember(ctx, "acme", bob.ID, tenancy.RoleMember, platform)
			return err
		}, tenancy.EINVALID, "not a uuid"},
		{"deleted tenant", func() error {
			_, err := svc.AddMember(ctx, gone.ID, bob.ID, tenancy.RoleMember, platform)
			return err
		}, tenancy.ECONFLICT, "tenant gone is deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantError(t, tt.do(), tt.code, tt.msg) })
	}
	if got := roles(t, db, tn.ID); len(got) != 1 || got[ann.ID] != tenancy.RoleOwner {
		t.Errorf("members = %v; bad input changed them", got)
	}
}

func TestMemberPlanLimit(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewMemberService(db)
	ctx := context.Background()
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS) // the free plan: 5 members
	var users []*tenancy.User
	for i := range 7 {
		users = append(users, mustCreateUser(t, db, tn.ID, fmt.Sprintf("u%d@acme.example", i)))
	}
	for _, u := range users[:5] {
		if _, err := svc.AddMember(ctx, tn.ID, u.ID, tenancy.RoleMember, platform); err != nil {
			t.Fatal(err)
		}
	}
	_, err := svc.AddMember(ctx, tn.ID, users[5].ID, tenancy.RoleMember, platform)
	wantError(t, err, tenancy.EQUOTA, `plan "free" allows 5 members; acme has 5`)
	if e, ok := err.(*tenancy.Error); !ok || e.Field != "" {
		t.Errorf("quota error = %#v", err)
	}
	if got := roles(t, db, tn.ID); len(got) != 5 {
		t.Errorf("members = %d after a refused addition, want 5", len(got))
	}
	// A full plan still lets roles change and members go.
	if _, _, err := svc.UpdateMember(ctx, tn.ID, users[0].ID, tenancy.RoleOwner, platform); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RemoveMember(ctx, tn.ID, users[4].ID, platform); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddMember(ctx, tn.ID, users[5].ID, tenancy.RoleMember, platform); err != nil {
		t.Fatalf("add after a removal freed a place: %v", err)
	}

	// A downgrade can leave a tenant above its limit: nothing is removed,
	// but nobody can be added.
	setPlan(t, db, tn.ID, "starter") // 10
	for _, u := range []*tenancy.User{users[4], users[6]} {
		if _, err := svc.AddMember(ctx, tn.ID, u.ID, tenancy.RoleGuest, platform); err != nil {
			t.Fatal(err)
		}
	}
	setPlan(t, db, tn.ID, "free")
	extra := mustCreateUser(t, db, tn.ID, "extra@acme.example")
	_, err = svc.AddMember(ctx, tn.ID, extra.ID, tenancy.RoleGuest, tenancy.MemberActor(tenancy.RoleOwner))
	wantError(t, err, tenancy.EQUOTA, `plan "free" allows 5 members; acme has 7`)

	// Unlimited never blocks.
	setPlan(t, db, tn.ID, "enterprise")
	for i := range 8 {
		u := mustCreateUser(t, db, tn.ID, fmt.Sprintf("e%d@acme.example", i))
		if _, err := svc.AddMember(ctx, tn.ID, u.Email, tenancy.RoleGuest, platform); err != nil {
			t.Fatalf("unlimited plan, member %d: %v", 8+i, err)
		}
	}
	if got := roles(t, db, tn.ID); len(got) != 15 {
		t.Errorf("members = %d, want 15", len(got))
	}
}

// Additions racing for the plan's last place: exactly one gets it.
func TestMemberPlanLimitConcurrent(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewMemberService(db)
	ctx := context.Background()
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS) // free: 5 members
	for i := range 4 {
		u := mustCreateUser(t, db, tn.ID, fmt.Sprintf("m%d@acme.example", i))
		if _, err := svc.AddMember(ctx, tn.ID, u.ID, tenancy.RoleMember, platform); err != nil {
			t.Fatal(err)
		}
	}
	var racers []*tenancy.User
	for i := range 4 {
		racers = append(racers, mustCreateUser(t, db, tn.ID, fmt.Sprintf("r%d@acme.example", i)))
	}
	warmPool(t, db, len(racers))
	for round := range 5 {
		errs := make([]error, len(racers))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, u := range racers {
			wg.Go(func() {
				<-start
				_, errs[i] = svc.AddMember(ctx, tn.ID, u.ID, tenancy.RoleMember, platform)
			})
		}
		close(start)
		wg.Wait()
		var winner *tenancy.User
		added := 0
		for i, err := range errs {
			switch tenancy.ErrorCode(err) {
			case "":
				added++
				winner = racers[i]
			case tenancy.EQUOTA:
			default:
				t.Errorf("racing addition: %v", err)
			}
		}
		if n := len(roles(t, db, tn.ID)); added != 1 || n != 5 {
			t.Fatalf("round %d: %d additions succeeded and the tenant has %d members; want 1 and 5", round, added, n)
		}
		if _, err := svc.RemoveMember(ctx, tn.ID, winner.ID, platform); err != nil {
			t.Fatal(err)
		}
	}
}

// warmPool opens n connections of the App pool ahead of a race, so the
// racers start together instead of one per new connection.
func warmPool(t *testing.T, db *postgres.DB, n int) {
	t.Helper()
	var conns []*pgxpool.Conn
	for range n {
		c, err := db.App.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// Two owners demoting each other at the same moment: one demotion waits
// for the other and is then refused, so the tenant keeps an owner.
func TestMemberLastOwnerConcurrent(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewMemberService(db)
	ctx := context.Background()
	tn := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	a := mustCreateUser(t, db, tn.ID, "a@acme.example")
	b := mustCreateUser(t, db, tn.ID, "b@acme.example")
	for _, u := range []*tenancy.User{a, b} {
		if _, err := svc.AddMember(ctx, tn.ID, u.ID, tenancy.RoleOwner, platform); err != nil {
			t.Fatal(err)
		}
	}
	warmPool(t, db, 2)
	for round := range 10 {
		ops := []func() error{
			func() error {
				_, _, err := svc.UpdateMember(ctx, tn.ID, a.ID, tenancy.RoleAdmin, tenancy.MemberActor(tenancy.RoleOwner))
				return err
			},
			func() error {
				_, _, err := svc.UpdateMember(ctx, tn.ID, b.ID, tenancy.RoleMember, tenancy.MemberActor(tenancy.RoleOwner))
				return err
			},
		}
		if round%2 == 1 { // removals race the same way
			ops[1] = func() error {
				_, err := svc.RemoveMember(ctx, tn.ID, b.ID, platform)
				return err
			}
		}
		errs := make([]error, len(ops))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, op := range ops {
			wg.Go(func() {
				<-start
				errs[i] = op()
			})
		}
		close(start)
		wg.Wait()

		owners := 0
		var owner string
		for id, r := range roles(t, db, tn.ID) {
			if r == tenancy.RoleOwner {
				owners++
				owner = id
			}
		}
		if owners != 1 {
			t.Fatalf("round %d: %d owners left (errors %v)", round, owners, errs)
		}
		refused := 0
		for _, err := range errs {
			if err != nil {
				wantError(t, err, tenancy.ECONFLICT, "acme must keep at least one owner")
				refused++
			}
		}
		if refused != 1 {
			t.Fatalf("round %d: %d changes refused, want 1", round, refused)
		}
		if got := ownerID(t, db, tn.ID); got != owner {
			t.Errorf("round %d: owner_user_id = %q, want the remaining owner %s", round, got, owner)
		}

		// Both owners again for the next round.
		for _, u := range []*tenancy.User{a, b} {
			if _, _, err := svc.UpdateMember(ctx, tn.ID, u.ID, tenancy.RoleOwner, platform); tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
				_, err = svc.AddMember(ctx, tn.ID, u.ID, tenancy.RoleOwner, platform)
				if err != nil {
					t.Fatal(err)
				}
			} else if err != nil && tenancy.ErrorCode(err) != tenancy.ECONFLICT {
				t.Fatal(err)
			}
		}
	}
}

func TestMemberIsolation(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	svc := postgres.NewMemberService(db)
	tenants := postgres.NewTenantService(db, tenancy.ModeHybrid)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "tenant-a", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "tenant-b", tenancy.StrategySchema)
	ann := mustCreateUser(t, db, a.ID, "ann@example.com")
	bea := mustCreateUser(t, db, b.ID, "bea@example.com")
	for _, m := range []struct {
		tenant string
		user   *tenancy.User
	}{{a.ID, ann}, {b.ID, bea}} {
		if _, err := svc.AddMember(ctx, m.tenant, m.user.ID, tenancy.RoleOwner, platform); err != nil {
			t.Fatal(err)
		}
	}
	// The same email in both tenants is two accounts.
	annB := mustCreateUser(t, db, b.ID, "ann@example.com")

	// A user of B cannot be added to A, by id or by an email only B has.
	_, err := svc.AddMember(ctx, a.ID, bea.ID, tenancy.RoleMember, platform)
	wantError(t, err, tenancy.ENOTFOUND, "tenant-a has no user")
	_, err = svc.AddMember(ctx, a.ID, "bea@example.com", tenancy.RoleMember, platform)
	wantError(t, err, tenancy.ENOTFOUND, "tenant-a has no user")
	// A member of A cannot be changed or removed through B's id.
	_, _, err = svc.UpdateMember(ctx, b.ID, ann.ID, tenancy.RoleGuest, platform)
	wantError(t, err, tenancy.ENOTFOUND, "tenant-b has no user")
	_, err = svc.RemoveMember(ctx, b.ID, ann.ID, platform)
	wantError(t, err, tenancy.ENOTFOUND, "tenant-b has no user")
	// By email, B finds its own account of that address, which is not a
	// member.
	_, err = svc.RemoveMember(ctx, b.ID, "ann@example.com", platform)
	wantError(t, err, tenancy.ENOTFOUND, `"ann@example.com" is not a member of tenant-b`)
	if m, err := svc.AddMember(ctx, b.ID, "ANN@example.com", tenancy.RoleGuest, platform); err != nil || m.UserID != annB.ID {
		t.Fatalf("add B's own ann: %+v, %v", m, err)
	}

	// One person with accounts in both tenants (the same id): a change in
	// one tenant leaves the other alone.
	c, err := tenants.CreateTenant(ctx, tenancy.NewTenant{Name: "C", Slug: "tenant-c", Owner: ann.ID})
	if err != nil {
		t.Fatal(err)
	}
	cy := mustCreateUser(t, db, c.Tenant.ID, "cy@example.com")
	if _, err := svc.AddMember(ctx, c.Tenant.ID, cy.ID, tenancy.RoleOwner, platform); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RemoveMember(ctx, c.Tenant.ID, ann.ID, platform); err != nil {
		t.Fatal(err)
	}
	if got := roles(t, db, a.ID); len(got) != 1 || got[ann.ID] != tenancy.RoleOwner {
		t.Errorf("A's members = %v after a change in C", got)
	}
	if got := ownerID(t, db, a.ID); got != ann.ID {
		t.Errorf("A's owner = %q after a change in C", got)
	}
	if got := ownerID(t, db, c.Tenant.ID); got != cy.ID {
		t.Errorf("C's owner = %q, want %s", got, cy.ID)
	}
	if got := roles(t, db, b.ID); len(got) != 2 || got[bea.ID] != tenancy.RoleOwner || got[annB.ID] != tenancy.RoleGuest {
		t.Errorf("B's members = %v", got)
	}
}
