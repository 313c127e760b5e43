package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// AuditService implements tenancy.AuditService: a tenant's log in
// audit.events, under the tenant policy, read and added to on the
// application role; the platform's log in audit.platform_events, on the
// platform path only.
//
// The services of this package record their entries themselves, with
// recordAudit, inside the transaction of the change: a change that fails
// leaves no entry, and a change that commits has one. Record is for changes
// made elsewhere.
type AuditService struct {
	db *DB
}

var _ tenancy.AuditService = (*AuditService)(nil)

// NewAuditService returns an AuditService using db.
func NewAuditService(db *DB) *AuditService { return &AuditService{db: db} }

// recordAudit writes one entry inside tx, with the actor ctx carries. With
// a tenant, tx must be in that tenant's context (row-level security
// refuses the row otherwise); without one, the entry goes to the platform
// log, which only the platform path may write.
func recordAudit(ctx context.Context, tx pgx.Tx, tenantID, action, target, summary string) error {
	return writeAudit(ctx, tx, tenancy.AuditEntry{
		TenantID: tenantID, Actor: tenancy.AuditActorFrom(ctx),
		Action: action, Target: target, Summary: summary,
	})
}

func writeAudit(ctx context.Context, tx pgx.Tx, e tenancy.AuditEntry) error {
	e.Clean()
	var addr any
	if e.Actor.Addr != "" {
		addr = e.Actor.Addr
	}
	var err error
	if e.TenantID != "" {
		_, err = tx.Exec(ctx, `
			INSERT INTO audit.events (tenant_id, actor_kind, actor_id, actor, action, target, summary, client_addr)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::inet)`,
			e.TenantID, e.Actor.Kind, e.Actor.ID, e.Actor.Name, e.Action, e.Target, e.Summary, addr)
	} else {
		_, err = tx.Exec(ctx, `
			INSERT INTO audit.platform_events (actor_kind, actor_id, actor, action, target, summary, client_addr)
			VALUES ($1, $2, $3, $4, $5, $6, $7::inet)`,
			e.Actor.Kind, e.Actor.ID, e.Actor.Name, e.Action, e.Target, e.Summary, addr)
	}
	if err != nil {
		return fmt.Errorf("record %s: %w", e.Action, err)
	}
	return nil
}

// actingUser returns ctx with the tenant user as its actor, keeping the
// client address: for the actions by which a person becomes known (signing
// in, accepting an invitation, resetting a password) the request had no
// actor yet.
func actingUser(ctx context.Context, u *tenancy.User) context.Context {
	return tenancy.WithAuditActor(ctx, tenancy.UserActor(u, tenancy.AuditActorFrom(ctx).Addr))
}

// Record writes one entry in a transaction of its own: in the tenant's log
// when e names a tenant, else in the platform's. The actor is e's when set,
// else the context's.
func (s *AuditService) Record(ctx context.Context, e tenancy.AuditEntry) error {
	if e.Actor.Kind == "" {
		e.Actor = tenancy.AuditActorFrom(ctx)
	}
	if !validAuditAction(e.Action) {
		return tenancy.FieldErrorf(tenancy.EINVALID, "action", "action %s is not a name such as member.update", tenancy.Quote(e.Action))
	}
	write := func(tx pgx.Tx) error { return writeAudit(ctx, tx, e) }
	var err error
	if e.TenantID != "" {
		err = inTenant(ctx, s.db.App, e.TenantID, "", write)
	} else {
		err = inTx(ctx, s.db.Admin, write)
	}
	if err != nil {
		return fmt.Errorf("record audit entry: %w", translate(err))
	}
	return nil
}

// validAuditAction accepts an action name with its entity and verb.
func validAuditAction(a string) bool {
	return strings.Contains(a, ".") && tenancy.AuditFilter{Action: a}.Validate() == nil
}

// auditWhere is the filter of both listings; its parameters start at $2.
const auditWhere = `
	($2 = '' OR action = $2 OR starts_with(action, $2 || '.'))
	AND ($3 = '' OR (actor_kind || ':' || actor) ILIKE $3 ESCAPE '\' OR actor_id ILIKE $3 ESCAPE '\')
	AND ($4::timestamptz IS NULL OR at >= $4)
	AND ($5::timestamptz IS NULL OR at < $5)`

func auditArgs(f tenancy.AuditFilter) []any {
	limit := any(nil)
	if f.Limit > 0 {
		limit = f.Limit
	}
	return []any{f.Action, likePattern(f.Actor), optTime(f.Since), optTime(f.Until), limit, f.Offset}
}

func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

const auditColumns = `id, at, actor_kind, actor_id, actor, coalesce(host(client_addr), ''), action, target, summary`

func scanAuditEntry(rows pgx.Rows, e *tenancy.AuditEntry, extra ...any) error {
	dst := append([]any{&e.ID, &e.At, &e.Actor.Kind, &e.Actor.ID, &e.Actor.Name, &e.Actor.Addr,
		&e.Action, &e.Target, &e.Summary}, extra...)
	return rows.Scan(dst...)
}

// ListAudit lists one tenant's entries, newest first, in the tenant's
// context on the application role: another tenant's entries are not there
// to be found.
func (s *AuditService) ListAudit(ctx context.Context, tenantID string, f tenancy.AuditFilter) ([]*tenancy.AuditEntry, int, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	var out []*tenancy.AuditEntry
	total := 0
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			e := &tenancy.AuditEntry{TenantID: tenantID}
			if err := scanAuditEntry(rows, e, &total); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	}, `
		SELECT `+auditColumns+`, count(*) OVER ()
		FROM audit.events
		WHERE tenant_id = $1 AND `+auditWhere+`
		ORDER BY at DESC, id DESC
		LIMIT $6 OFFSET $7`, append([]any{tenantID}, auditArgs(f)...)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit log: %w", translate(err))
	}
	return out, total, nil
}

// ListAllAudit lists every tenant's entries and the platform's, newest
// first, on the platform path. With f.TenantID, only that tenant's.
func (s *AuditService) ListAllAudit(ctx context.Context, f tenancy.AuditFilter) ([]*tenancy.AuditEntry, int, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	var tenant any
	if f.TenantID != "" {
		if !tenancy.IsUUID(f.TenantID) {
			return nil, 0, tenancy.FieldErrorf(tenancy.EINVALID, "tenant", "tenant %s is not a tenant id", tenancy.Quote(f.TenantID))
		}
		tenant = f.TenantID
	}
	rows, err := s.db.Admin.Query(ctx, `
		SELECT `+auditColumns+`, tenant_id, slug, count(*) OVER ()
		FROM (
			SELECT e.id, e.at, e.actor_kind, e.actor_id, e.actor, e.client_addr, e.action, e.target, e.summary,
			       e.tenant_id::text AS tenant_id, t.slug
			FROM audit.events e
			JOIN tenants.tenants t ON t.id = e.tenant_id
			WHERE $1::uuid IS NULL OR e.tenant_id = $1::uuid
			UNION ALL
			SELECT p.id, p.at, p.actor_kind, p.actor_id, p.actor, p.client_addr, p.action, p.target, p.summary,
			       '', ''
			FROM audit.platform_events p
			WHERE $1::uuid IS NULL
		) e
		WHERE `+auditWhere+`
		ORDER BY at DESC, id DESC
		LIMIT $6 OFFSET $7`, append([]any{tenant}, auditArgs(f)...)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit log: %w", err)
	}
	defer rows.Close()
	var out []*tenancy.AuditEntry
	total := 0
	for rows.Next() {
		e := &tenancy.AuditEntry{}
		if err := scanAuditEntry(rows, e, &e.TenantID, &e.TenantSlug, &total); err != nil {
			return nil, 0, fmt.Errorf("list audit log: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list audit log: %w", translate(err))
	}
	return out, total, nil
}
