package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// MemberService implements tenancy.MemberService on the application role.
type MemberService struct {
	db *DB
}

var _ tenancy.MemberService = (*MemberService)(nil)

// NewMemberService returns a MemberService using db.
func NewMemberService(db *DB) *MemberService { return &MemberService{db: db} }

// ListMembers lists a tenant's members, owners first, then by join date.
func (s *MemberService) ListMembers(ctx context.Context, tenantID string) ([]*tenancy.MemberInfo, error) {
	var out []*tenancy.MemberInfo
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.MemberInfo, error) {
			var m tenancy.MemberInfo
			err := r.Scan(&m.TenantID, &m.UserID, &m.Role, &m.JoinedAt, &m.Email, &m.Name)
			return &m, err
		})
		return err
	}, `
		SELECT m.tenant_id, m.user_id, m.role, m.joined_at, u.email, u.name
		FROM tenants.tenant_members m
		JOIN auth.users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
		WHERE m.tenant_id = $1
		ORDER BY array_position(ARRAY['owner', 'admin', 'member', 'guest'], m.role), m.joined_at, m.user_id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return out, nil
}
