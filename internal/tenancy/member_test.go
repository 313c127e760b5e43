package tenancy_test

import (
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

func TestActorManages(t *testing.T) {
	all := []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin, tenancy.RoleMember, tenancy.RoleGuest}
	tests := []struct {
		actor tenancy.Actor
		want  []tenancy.Role
	}{
		{tenancy.PlatformActor(), all},
		{tenancy.MemberActor(tenancy.RoleOwner), all},
		{tenancy.MemberActor(tenancy.RoleAdmin), all[1:]},
		{tenancy.MemberActor(tenancy.RoleMember), nil},
		{tenancy.MemberActor(tenancy.RoleGuest), nil},
		{tenancy.Actor{}, nil},
		{tenancy.MemberActor("root"), nil},
	}
	for _, tt := range tests {
		for _, r := range all {
			want := false
			for _, w := range tt.want {
				want = want || w == r
			}
			if got := tt.actor.Manages(r); got != want {
				t.Errorf("%+v manages %s = %v, want %v", tt.actor, r, got, want)
			}
		}
		if tt.actor.Manages("root") {
			t.Errorf("%+v manages an unknown role", tt.actor)
		}
	}
}

func TestCheckMemberChange(t *testing.T) {
	const (
		owner  = tenancy.RoleOwner
		admin  = tenancy.RoleAdmin
		member = tenancy.RoleMember
		guest  = tenancy.RoleGuest
	)
	platform := tenancy.PlatformActor()
	asOwner := tenancy.MemberActor(owner)
	asAdmin := tenancy.MemberActor(admin)
	asMember := tenancy.MemberActor(member)
	asGuest := tenancy.MemberActor(guest)
	free := tenancy.Plan{Name: "free", MaxUsers: 5}
	one := tenancy.Plan{Name: "solo", MaxUsers: 1}
	unlimited := tenancy.Plan{Name: "enterprise", MaxUsers: tenancy.Unlimited}

	// change builds a change in tenant acme with two owners and three
	// members on the free plan, unless the test says otherwise.
	change := func(from, to tenancy.Role) tenancy.MemberChange {
		return tenancy.MemberChange{Tenant: "acme", From: from, To: to, Owners: 2, Members: 3, Plan: free}
	}
	with := func(c tenancy.MemberChange, f func(*tenancy.MemberChange)) tenancy.MemberChange {
		f(&c)
		return c
	}

	tests := []struct {
		name   string
		actor  tenancy.Actor
		change tenancy.MemberChange
		code   string // "" when allowed
		field  string
		msg    string
	}{
		// Adding.
		{"platform adds owner", platform, change("", owner), "", "", ""},
		{"owner adds owner", asOwner, change("", owner), "", "", ""},
		{"owner adds guest", asOwner, change("", guest), "", "", ""},
		{"admin adds admin", asAdmin, change("", admin), "", "", ""},
		{"admin adds member", asAdmin, change("", member), "", "", ""},
		{"admin adds guest", asAdmin, change("", guest), "", "", ""},
		{"admin adds owner", asAdmin, change("", owner), tenancy.EFORBIDDEN, "role", "only an owner can add an owner"},
		{"member adds guest", asMember, change("", guest), tenancy.EFORBIDDEN, "", "only owners and admins can manage members"},
		{"guest adds guest", asGuest, change("", guest), tenancy.EFORBIDDEN, "", "only owners and admins can manage members"},
		{"nobody adds guest", tenancy.Actor{}, change("", guest), tenancy.EFORBIDDEN, "", "only owners and admins"},
		{"unknown role", platform, change("", "root"), tenancy.EINVALID, "role", `role "root" is not one of owner, admin, member, guest`},
		{"first owner of a tenant without one", platform, with(change("", owner), func(c *tenancy.MemberChange) { c.Owners = 0 }), "", "", ""},

		// The plan's limit.
		{"room for one more", platform, with(change("", member), func(c *tenancy.MemberChange) { c.Members = 4 }), "", "", ""},
		{"plan full", platform, with(change("", member), func(c *tenancy.MemberChange) { c.Members = 5 }),
			tenancy.EQUOTA, "", `plan "free" allows 5 members; acme has 5`},
		{"plan over full after a downgrade", asOwner, with(change("", guest), func(c *tenancy.MemberChange) { c.Members = 9 }),
			tenancy.EQUOTA, "", `plan "free" allows 5 members; acme has 9`},
		{"one-member plan", platform, with(change("", member), func(c *tenancy.MemberChange) { c.Members, c.Plan = 1, one }),
			tenancy.EQUOTA, "", `plan "solo" allows 1 member; acme has 1`},
		{"unlimited plan", platform, with(change("", member), func(c *tenancy.MemberChange) { c.Members, c.Plan = 100000, unlimited }), "", "", ""},
		{"forbidden before full", asAdmin, with(change("", owner), func(c *tenancy.MemberChange) { c.Members = 5 }), tenancy.EFORBIDDEN, "role", ""},
		{"full plan does not block a role change", platform, with(change(member, admin), func(c *tenancy.MemberChange) { c.Members = 5 }), "", "", ""},
		{"full plan does not block a removal", platform, with(change(member, ""), func(c *tenancy.MemberChange) { c.Members = 6 }), "", "", ""},

		// Changing roles.
		{"owner demotes owner", asOwner, change(owner, admin), "", "", ""},
		{"owner promotes member to owner", asOwner, change(member, owner), "", "", ""},
		{"platform demotes owner", platform, change(owner, guest), "", "", ""},
		{"admin promotes member to admin", asAdmin, change(member, admin), "", "", ""},
		{"admin demotes admin to guest", asAdmin, change(admin, guest), "", "", ""},
		{"admin promotes to owner", asAdmin, change(admin, owner), tenancy.EFORBIDDEN, "role", "only an owner can make someone an owner"},
		{"admin demotes owner", asAdmin, change(owner, admin), tenancy.EFORBIDDEN, "", "only an owner can change an owner's role"},
		{"member promotes guest", asMember, change(guest, member), tenancy.EFORBIDDEN, "", "only owners and admins"},
		{"guest promotes self", asGuest, change(guest, owner), tenancy.EFORBIDDEN, "", "only owners and admins"},
		{"same role", platform, change(admin, admin), tenancy.ECONFLICT, "role", "the member is already an admin"},
		{"same role, guest", asAdmin, change(guest, guest), tenancy.ECONFLICT, "role", "the member is already a guest"},
		{"same role, forbidden first", asAdmin, change(owner, owner), tenancy.EFORBIDDEN, "", "only an owner can change"},
		{"to an unknown role", platform, change(member, "boss"), tenancy.EINVALID, "role", `role "boss"`},
		{"demote the last owner", asOwner, with(change(owner, admin), func(c *tenancy.MemberChange) { c.Owners = 1 }),
			tenancy.ECONFLICT, "", "acme must keep at least one owner: make another member an owner first"},
		{"platform demotes the last owner", platform, with(change(owner, member), func(c *tenancy.MemberChange) { c.Owners = 1 }),
			tenancy.ECONFLICT, "", "acme must keep at least one owner"},

		// Removing.
		{"owner removes owner", asOwner, change(owner, ""), "", "", ""},
		{"admin removes admin", asAdmin, change(admin, ""), "", "", ""},
		{"admin removes guest", asAdmin, change(guest, ""), "", "", ""},
		{"admin removes owner", asAdmin, change(owner, ""), tenancy.EFORBIDDEN, "", "only an owner can remove an owner"},
		{"member removes guest", asMember, change(guest, ""), tenancy.EFORBIDDEN, "", "only owners and admins"},
		{"remove the last owner", platform, with(change(owner, ""), func(c *tenancy.MemberChange) { c.Owners = 1 }),
			tenancy.ECONFLICT, "", "acme must keep at least one owner: make another member an owner first"},
		{"remove a member while one owner", asOwner, with(change(member, ""), func(c *tenancy.MemberChange) { c.Owners = 1 }), "", "", ""},
		{"neither before nor after", platform, change("", ""), tenancy.EINVALID, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tenancy.CheckMemberChange(tt.actor, tt.change)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed; want %s", tt.code)
			}
			e, ok := err.(*tenancy.Error)
			if !ok || e.Code != tt.code || e.Field != tt.field || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("error %#v; want code %s, field %q, message containing %q", err, tt.code, tt.field, tt.msg)
			}
			if strings.ContainsAny(e.Message, "\r\n") {
				t.Errorf("message spans lines: %q", e.Message)
			}
		})
	}
}
