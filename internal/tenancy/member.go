package tenancy

import (
	"context"
	"time"
)

// Role is what a member may do in a tenant.
type Role string

const (
	RoleOwner  Role = "owner"  // everything, including billing and deletion
	RoleAdmin  Role = "admin"  // members, settings, branding
	RoleMember Role = "member" // standard access
	RoleGuest  Role = "guest"  // read-only
)

// ParseRole accepts one of the four roles.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleOwner, RoleAdmin, RoleMember, RoleGuest:
		return Role(s), nil
	}
	return "", FieldErrorf(EINVALID, "role", "role %s is not one of owner, admin, member, guest", Quote(s))
}

// Member is a user's membership in a tenant.
type Member struct {
	TenantID string
	UserID   string
	Role     Role
	JoinedAt time.Time
}

// MemberInfo is a membership with the member's account details.
type MemberInfo struct {
	Member
	Email string
	Name  string
}

// Actor is who changes a tenant's members: a member of the tenant acting
// with their role, or the platform (an operator at the command line, a
// platform administrator), which may do whatever an owner may.
type Actor struct {
	Role     Role
	Platform bool
}

// PlatformActor is the platform acting on a tenant.
func PlatformActor() Actor { return Actor{Platform: true} }

// MemberActor is a member of the tenant acting with role.
func MemberActor(role Role) Actor { return Actor{Role: role} }

// Manages reports whether the actor may give a member role r, or take it
// away: owners (and the platform) manage every role, admins every role but
// owner, members and guests none.
func (a Actor) Manages(r Role) bool {
	switch {
	case a.Platform || a.Role == RoleOwner:
		return RoleRank(r) > 0
	case a.Role == RoleAdmin:
		return r == RoleAdmin || r == RoleMember || r == RoleGuest
	}
	return false
}

// MemberChange is one change to a tenant's members, with what the rules
// need to know about the tenant at the time of the change.
type MemberChange struct {
	// Tenant names the tenant in messages (its slug).
	Tenant string
	// From is the member's role now; empty when the change adds a member.
	From Role
	// To is the member's role after the change; empty when it removes the
	// member.
	To Role
	// Owners and Members are how many owners and members the tenant has
	// before the change.
	Owners  int
	Members int
	// Plan is the tenant's plan; adding a member needs its Name and
	// MaxUsers.
	Plan Plan
}

// CheckMemberChange decides whether actor may make the change: only owners
// add, remove, promote to or demote from owner; admins manage admins,
// members and guests; members and guests change nothing. A tenant keeps at
// least one owner once it has one, and a member is added only while the
// plan has room. The error says which rule refused, in one line.
func CheckMemberChange(actor Actor, c MemberChange) error {
	if c.To != "" {
		if _, err := ParseRole(string(c.To)); err != nil {
			return err
		}
	}
	if !actor.Platform && actor.Role != RoleOwner && actor.Role != RoleAdmin {
		return Errorf(EFORBIDDEN, "only owners and admins can manage members")
	}
	switch {
	case c.From == "" && c.To == "":
		return Errorf(EINVALID, "a member change needs a role before or after it")
	case c.From == "":
		if !actor.Manages(c.To) {
			return FieldErrorf(EFORBIDDEN, "role", "only an owner can add an owner")
		}
	case c.To == "":
		if !actor.Manages(c.From) {
			return Errorf(EFORBIDDEN, "only an owner can remove an owner")
		}
	default:
		if !actor.Manages(c.From) {
			return Errorf(EFORBIDDEN, "only an owner can change an owner's role")
		}
		if !actor.Manages(c.To) {
			return FieldErrorf(EFORBIDDEN, "role", "only an owner can make someone an owner")
		}
		if c.From == c.To {
			return FieldErrorf(ECONFLICT, "role", "the member is already %s", withArticle(c.To))
		}
	}
	if c.From == RoleOwner && c.To != RoleOwner && c.Owners <= 1 {
		return Errorf(ECONFLICT, "%s must keep at least one owner: make another member an owner first", c.Tenant)
	}
	if c.From == "" && c.Plan.MaxUsers != Unlimited && int64(c.Members) >= c.Plan.MaxUsers {
		return Errorf(EQUOTA, "plan %s allows %s; %s has %d: move to a larger plan or remove a member first",
			Quote(c.Plan.Name), plural(c.Plan.MaxUsers, "member"), c.Tenant, c.Members)
	}
	return nil
}

func withArticle(r Role) string {
	if r == RoleOwner || r == RoleAdmin {
		return "an " + string(r)
	}
	return "a " + string(r)
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return FormatCount(n) + " " + noun + "s"
}

// MemberService manages the members of a tenant. A member is named by a
// user reference: the id of one of the tenant's users, or that user's
// email, compared without case. Each change is decided by
// CheckMemberChange for the actor, against the tenant as it is when the
// change is made.
type MemberService interface {
	ListMembers(ctx context.Context, tenantID string) ([]*MemberInfo, error)
	// AddMember gives one of the tenant's users a role in the tenant.
	AddMember(ctx context.Context, tenantID, userRef string, role Role, actor Actor) (*MemberInfo, error)
	// UpdateMember changes a member's role and returns the member as
	// changed and the role the member had before.
	UpdateMember(ctx context.Context, tenantID, userRef string, role Role, actor Actor) (*MemberInfo, Role, error)
	// RemoveMember takes a member's role away (the account stays) and
	// returns the membership removed.
	RemoveMember(ctx context.Context, tenantID, userRef string, actor Actor) (*MemberInfo, error)
}
