package tenancy

import (
	"context"
	"time"
)

// SessionInfo is one signed-in session, as its owner sees it.
type SessionInfo struct {
	ID        string
	UserAgent string
	ClientIP  string
	CreatedAt time.Time
	LastSeen  time.Time
	// Current is the session the list was asked from.
	Current bool
}

// CanEndSessionsOf reports whether someone with role actor may end the
// sessions of a member with role target: owners and admins may, of their
// own role or below.
func CanEndSessionsOf(actor, target Role) bool {
	return RoleRank(actor) >= RoleRank(RoleAdmin) && RoleRank(target) <= RoleRank(actor)
}

// SessionService lists and ends sessions. Ending one is announced to every
// server process, which refuses it from its next request.
type SessionService interface {
	// ListSessions lists the person's live sessions, the current one
	// marked, most recently seen first.
	ListSessions(ctx context.Context, tenantID string, id *Identity) ([]SessionInfo, error)
	// EndSession ends one of the person's own sessions.
	EndSession(ctx context.Context, tenantID string, id *Identity, sessionID string) error
	// EndOtherSessions ends every session of the person but the current
	// one, and returns how many.
	EndOtherSessions(ctx context.Context, tenantID string, id *Identity) (int, error)
	// EndMemberSessions ends every session of another member; the actor
	// must be an owner or admin, of at least the member's role.
	EndMemberSessions(ctx context.Context, tenantID string, id *Identity, userID string) (int, error)
	// ChangePassword checks the current password, sets the new one and
	// ends the person's other sessions.
	ChangePassword(ctx context.Context, tenantID string, id *Identity, current, next string) (int, error)
}
