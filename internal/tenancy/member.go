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

// MemberService manages the members of a tenant.
type MemberService interface {
	ListMembers(ctx context.Context, tenantID string) ([]*MemberInfo, error)
}
