package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// AddMember gives one of the tenant's users a role, within the plan's
// member limit.
func (s *MemberService) AddMember(ctx context.Context, tenantID, userRef string, role tenancy.Role, actor tenancy.Actor) (*tenancy.MemberInfo, error) {
	if _, err := tenancy.ParseRole(string(role)); err != nil {
		return nil, err
	}
	var m *tenancy.MemberInfo
	err := s.change(ctx, tenantID, userRef, func(tx pgx.Tx, st *memberState) error {
		if st.member != nil {
			return tenancy.FieldErrorf(tenancy.ECONFLICT, "user", "%s is already a member of %s (%s)",
				tenancy.Quote(userRef), st.tenant, st.member.Role)
		}
		c := st.change(role)
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenants.tenant_members WHERE tenant_id = $1`,
			tenantID).Scan(&c.Members); err != nil {
			return err
		}
		if err := tenancy.CheckMemberChange(actor, c); err != nil {
			return err
		}
		m = &tenancy.MemberInfo{
			Member: tenancy.Member{TenantID: tenantID, UserID: st.user.ID, Role: role},
			Email:  st.user.Email, Name: st.user.Name,
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, $3)
			RETURNING joined_at`, tenantID, st.user.ID, role).Scan(&m.JoinedAt); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "member.add", m.Email, tenancy.Changed("role", "", string(role)))
	})
	if err != nil {
		return nil, memberError("add", userRef, err)
	}
	if role == tenancy.RoleOwner {
		if err := s.syncOwner(ctx, tenantID); err != nil {
			return m, fmt.Errorf("member %s added, but recording the tenant's owner failed: %w", m.UserID, err)
		}
	}
	return m, nil
}

// UpdateMember changes a member's role.
func (s *MemberService) UpdateMember(ctx context.Context, tenantID, userRef string, role tenancy.Role, actor tenancy.Actor) (*tenancy.MemberInfo, tenancy.Role, error) {
	if _, err := tenancy.ParseRole(string(role)); err != nil {
		return nil, "", err
	}
	var m *tenancy.MemberInfo
	var from tenancy.Role
	err := s.change(ctx, tenantID, userRef, func(tx pgx.Tx, st *memberState) error {
		if st.member == nil {
			return st.notMember(userRef)
		}
		m, from = st.member, st.member.Role
		if err := tenancy.CheckMemberChange(actor, st.change(role)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE tenants.tenant_members SET role = $3 WHERE tenant_id = $1 AND user_id = $2`,
			tenantID, m.UserID, role); err != nil {
			return err
		}
		m.Role = role
		if from == role {
			return nil
		}
		if err := announceCredentials(ctx, tx, "user", tenantID, m.UserID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "member.update", m.Email, tenancy.Changed("role", string(from), string(role)))
	})
	if err != nil {
		return nil, "", memberError("update", userRef, err)
	}
	if from == tenancy.RoleOwner || role == tenancy.RoleOwner {
		if err := s.syncOwner(ctx, tenantID); err != nil {
			return m, from, fmt.Errorf("member %s updated, but recording the tenant's owner failed: %w", m.UserID, err)
		}
	}
	return m, from, nil
}

// RemoveMember takes a member's role away; the account stays.
func (s *MemberService) RemoveMember(ctx context.Context, tenantID, userRef string, actor tenancy.Actor) (*tenancy.MemberInfo, error) {
	var m *tenancy.MemberInfo
	err := s.change(ctx, tenantID, userRef, func(tx pgx.Tx, st *memberState) error {
		if st.member == nil {
			return st.notMember(userRef)
		}
		m = st.member
		if err := tenancy.CheckMemberChange(actor, st.change("")); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM tenants.tenant_members WHERE tenant_id = $1 AND user_id = $2`, tenantID, m.UserID); err != nil {
			return err
		}
		if err := announceCredentials(ctx, tx, "user", tenantID, m.UserID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "member.remove", m.Email, tenancy.Changed("role", string(m.Role), ""))
	})
	if err != nil {
		return nil, memberError("remove", userRef, err)
	}
	if m.Role == tenancy.RoleOwner {
		if err := s.syncOwner(ctx, tenantID); err != nil {
			return m, fmt.Errorf("member %s removed, but recording the tenant's owner failed: %w", m.UserID, err)
		}
	}
	return m, nil
}

// memberState is what a membership change reads, and locks, before it
// decides.
type memberState struct {
	tenant string // slug
	plan   tenancy.Plan
	owners int
	user   *tenancy.User
	member *tenancy.MemberInfo // nil when the user is not a member
}

// change returns the rules' view of changing the member to role ("" for
// removing it).
func (st *memberState) change(to tenancy.Role) tenancy.MemberChange {
	c := tenancy.MemberChange{Tenant: st.tenant, To: to, Owners: st.owners, Plan: st.plan}
	if st.member != nil {
		c.From = st.member.Role
	}
	return c
}

func (st *memberState) notMember(userRef string) error {
	return tenancy.FieldErrorf(tenancy.ENOTFOUND, "user", "%s is not a member of %s", tenancy.Quote(userRef), st.tenant)
}

// change runs one membership change in one transaction in the tenant's
// context. Before fn decides, it serializes the tenant's membership changes
// and locks the tenant's owner rows:
//
//   - The owner rows, locked FOR UPDATE, make the last-owner rule hold: of
//     two transactions demoting the tenant's two owners, the second waits
//     for the first and then sees one owner left.
//   - A transaction-scoped advisory lock on the tenant covers what row locks
//     cannot: a member being added has no row yet to lock, so two additions
//     could both count the plan's last free place. The application role
//     may not lock the registry row, which would otherwise serve.
//
// The advisory lock alone orders this service's changes; the row locks also
// hold against any other writer of owner rows.
func (s *MemberService) change(ctx context.Context, tenantID, userRef string, fn func(pgx.Tx, *memberState) error) error {
	byID := tenancy.IsUUID(userRef)
	if !byID {
		if _, err := tenancy.NormalizeEmail(userRef); err != nil {
			return tenancy.FieldErrorf(tenancy.EINVALID, "user",
				"user %s is neither a user id (uuid) nor an email address", tenancy.Quote(userRef))
		}
	}
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		if err := lockMembers(ctx, tx, tenantID); err != nil {
			return err
		}
		st := &memberState{}
		var status tenancy.Status
		err := tx.QueryRow(ctx, `
			SELECT t.slug, t.status, p.name, p.max_users
			FROM tenants.tenants t
			JOIN public.billing_plans p ON p.name = t.plan
			WHERE t.id = $1`, tenantID).Scan(&st.tenant, &status, &st.plan.Name, &st.plan.MaxUsers)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return tenancy.Errorf(tenancy.ENOTFOUND, "tenant %s not found", tenantID)
		case err != nil:
			return err
		case status == tenancy.StatusDeleted:
			return tenancy.Errorf(tenancy.ECONFLICT, "tenant %s is deleted", st.tenant)
		}

		// Locked in one order (by user id), so that two changes never wait
		// on each other's locks.
		rows, err := tx.Query(ctx, `
			SELECT user_id FROM tenants.tenant_members
			WHERE tenant_id = $1 AND role = 'owner'
			ORDER BY user_id
			FOR UPDATE`, tenantID)
		if err != nil {
			return err
		}
		owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		st.owners = len(owners)

		// Row-level security hides other tenants' users, so a user of
		// another tenant is not found here.
		where := `u.id = $2::uuid`
		if !byID {
			where = `u.email_lower = lower($2)`
		}
		u := &tenancy.User{TenantID: tenantID}
		var role *tenancy.Role
		var joined *time.Time
		err = tx.QueryRow(ctx, `
			SELECT u.id, u.email, u.name, u.created_at, m.role, m.joined_at
			FROM auth.users u
			LEFT JOIN tenants.tenant_members m ON m.tenant_id = u.tenant_id AND m.user_id = u.id
			WHERE u.tenant_id = $1 AND `+where+`
`, tenantID, userRef).Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt, &role, &joined)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenancy.FieldErrorf(tenancy.ENOTFOUND, "user", "%s has no user %s", st.tenant, tenancy.Quote(userRef))
		} else if err != nil {
			return err
		}
		st.user = u
		if role != nil {
			st.member = &tenancy.MemberInfo{
				Member: tenancy.Member{TenantID: tenantID, UserID: u.ID, Role: *role, JoinedAt: *joined},
				Email:  u.Email, Name: u.Name,
			}
		}
		return fn(tx, st)
	})
	return translate(err)
}

// syncOwner keeps the registry's owner_user_id naming an owner: it stays
// when it still names one, else it becomes the longest-standing owner, or
// NULL when the tenant has none. The membership table is the source of
// truth; this is a copy on the registry row, which the application role may
// not write, so it is updated on the platform path after the membership
// change commits. It reads the current state rather than applying one
// change, so concurrent calls converge on the same answer and any later
// call repairs a copy that an earlier failure left stale.
func (s *MemberService) syncOwner(ctx context.Context, tenantID string) error {
	return inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if err := setTenant(ctx, tx, tenantID, ""); err != nil {
			return err
		}
		// The registry row is locked first, so concurrent syncs take turns;
		// the owner is then read in a statement of its own, as a
		// distributed PostgreSQL does not write a reference table (the
		// registry) in a statement that reads a distributed one.
		var current *string
		if err := tx.QueryRow(ctx, `SELECT owner_user_id::text FROM tenants.tenants WHERE id = $1 FOR UPDATE`,
			tenantID).Scan(&current); err != nil {
			return err
		}
		var owner *string
		if err := tx.QueryRow(ctx, `
			SELECT m.user_id::text FROM tenants.tenant_members m
			WHERE m.tenant_id = $1 AND m.role = 'owner'
			ORDER BY m.user_id::text IS DISTINCT FROM $2, m.joined_at, m.user_id
			LIMIT 1`, tenantID, current).Scan(&owner); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE tenants.tenants SET owner_user_id = $2
			WHERE id = $1 AND owner_user_id IS DISTINCT FROM $2`, tenantID, owner)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
}

// memberError wraps a failure of a membership change. Domain errors pass
// unwrapped: their message already names the member and the tenant.
func memberError(verb, userRef string, err error) error {
	if tenancy.ErrorCode(err) != tenancy.EINTERNAL {
		return err
	}
	return fmt.Errorf("%s member %s: %w", verb, tenancy.Quote(userRef), err)
}
