package tenancy

import (
	"context"
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// The audit log records every state-changing action: who did it, to which
// tenant, what and to what, a summary of what changed, from where and
// when. Entries about a tenant live in that tenant's log, under its
// row-level security; entries about the platform itself (administrators,
// organizations, purged tenants) live in a platform log only the platform
// reads. Entries are written in the transaction of the change they
// describe, so a change that fails leaves none and a change never lacks
// one. Nothing changes or removes an entry, but purging a tenant for good.

// ActorKind says what kind of actor made a change.
type ActorKind string

const (
	ActorUser   ActorKind = "user"    // a tenant user signed in to the portal
	ActorAdmin  ActorKind = "admin"   // a platform administrator in the console
	ActorAPIKey ActorKind = "api_key" // a request authenticated with an API key
	ActorCLI    ActorKind = "cli"     // an operator at the command line
	ActorSystem ActorKind = "system"  // the platform itself: jobs, webhooks
	// ActorAnonymous is a visitor not signed in: asking for a password
	// reset, accepting an invitation.
	ActorAnonymous ActorKind = "anonymous"
)

// AuditActor is who acts in a request or command, and from where. The web
// server and the CLI put it in the context once; the services read it when
// they record an entry, so it need not travel through every call.
type AuditActor struct {
	Kind ActorKind
	// ID is the user's or administrator's id, or the API key's prefix.
	ID string
	// Name is what a person recognizes: an email, an OS user name, a key's
	// name.
	Name string
	// Addr is the client's network address; empty when there is none.
	Addr string
}

// UserActor is a tenant user acting from addr.
func UserActor(u *User, addr string) AuditActor {
	return AuditActor{Kind: ActorUser, ID: u.ID, Name: u.Email, Addr: addr}
}

// AdminActor is a platform administrator acting from addr.
func AdminActor(a *Admin, addr string) AuditActor {
	return AuditActor{Kind: ActorAdmin, ID: a.ID, Name: a.Email, Addr: addr}
}

type auditActorKey struct{}

// WithAuditActor returns ctx carrying a.
func WithAuditActor(ctx context.Context, a AuditActor) context.Context {
	return context.WithValue(ctx, auditActorKey{}, a)
}

// AuditActorFrom returns the actor ctx carries, or the system when it
// carries none: a change made by no one in particular is the platform's.
func AuditActorFrom(ctx context.Context) AuditActor {
	if a, ok := ctx.Value(auditActorKey{}).(AuditActor); ok && a.Kind != "" {
		return a
	}
	return AuditActor{Kind: ActorSystem, Name: "system"}
}

// String names the actor as the log shows it.
func (a AuditActor) String() string {
	switch {
	case a.Name != "" && a.Kind == ActorCLI:
		return "cli:" + a.Name
	case a.Name != "":
		return a.Name
	case a.ID != "":
		return a.ID
	}
	return string(a.Kind)
}

// AuditEntry is one recorded action.
type AuditEntry struct {
	ID string
	// TenantID is the tenant the action concerned; empty in the platform
	// log. TenantSlug is filled in by platform-wide listings.
	TenantID   string
	TenantSlug string
	At         time.Time
	Actor      AuditActor
	// Action names what was done, as entity.verb: member.update.
	Action string
	// Target names what it was done to: an email, a domain, a key prefix.
	Target string
	// Summary says what changed (role: member → admin), never a secret.
	Summary string
}

// Limits on what an entry holds; longer text is cut, never refused: a
// change must not fail for the length of its description.
const (
	auditTextMax    = 300
	auditSummaryMax = 2000
)

// Clean makes the entry fit what the log stores: text cut to its limits,
// control characters replaced, and a client address that is not an IP
// address dropped.
func (e *AuditEntry) Clean() {
	e.Actor.ID = clip(e.Actor.ID, auditTextMax)
	e.Actor.Name = clip(e.Actor.Name, auditTextMax)
	e.Target = clip(e.Target, auditTextMax)
	e.Summary = clip(e.Summary, auditSummaryMax)
	if net.ParseIP(e.Actor.Addr) == nil {
		e.Actor.Addr = ""
	}
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// Changed describes one field's change for a summary: "role: member →
// admin", with "(none)" for an empty side.
func Changed(field, from, to string) string {
	if from == "" {
		from = "(none)"
	}
	if to == "" {
		to = "(none)"
	}
	return field + ": " + from + " → " + to
}

// AuditFilter selects entries of a log. Zero values select everything.
type AuditFilter struct {
	// TenantID limits a platform-wide listing to one tenant.
	TenantID string
	// Action matches an action exactly, or every action of an entity
	// ("member" matches member.add and member.remove).
	Action string
	// Actor matches part of the actor's name or id, without case.
	Actor string
	// Since and Until bound the time, Since included, Until excluded.
	Since, Until time.Time
	Limit        int
	Offset       int
}

// Validate checks the filter's values.
func (f AuditFilter) Validate() error {
	if f.Action != "" && !validAction(f.Action) {
		return FieldErrorf(EINVALID, "action", "action %s is not a name such as member or member.update", Quote(f.Action))
	}
	if utf8.RuneCountInString(f.Actor) > auditTextMax || !utf8.ValidString(f.Actor) {
		return FieldErrorf(EINVALID, "actor", "actor is too long")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return FieldErrorf(EINVALID, "until", "the end of the range must be after its start")
	}
	if f.Limit < 0 || f.Offset < 0 {
		return FieldErrorf(EINVALID, "limit", "limit and offset cannot be negative")
	}
	return nil
}

func validAction(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for _, r := range part {
			if (r < 'a' || r > 'z') && r != '_' {
				return false
			}
		}
	}
	return true
}

// AuditActions lists the actions the platform records, for filters and
// documentation.
var AuditActions = []string{
	"tenant.create", "tenant.import", "tenant.suspend", "tenant.activate", "tenant.delete", "tenant.purge",
	"user.create", "user.sign_in", "user.sign_out", "user.password_reset_request", "user.password_reset",
	"user.password_change", "user.two_factor", "user.two_factor_fail", "user.two_factor_enable", "user.two_factor_disable",
	"mfa_policy.set", "session.end", "session.end_others", "session.end_member", "session.end_all",
	"member.add", "member.update", "member.remove",
	"invitation.create", "invitation.resend", "invitation.revoke", "invitation.accept",
	"domain.add", "domain.verify", "domain.recheck", "domain.certificate", "domain.primary", "domain.remove", "domain.release",
	"branding.update", "setting.set", "setting.delete",
	"theme.create", "theme.update", "theme.activate", "theme.deactivate", "theme.delete",
	"logo.upload", "logo.remove",
	"email_template.customize", "email_template.reset",
	"api_key.create", "api_key.revoke",
	"org.create", "org.rename", "org.delete", "org.add_tenant", "org.remove_tenant",
	"admin.create", "admin.sign_in", "admin.sign_out",
	"table.adopt", "db.migrate",
	"plan.create", "plan.update", "plan.archive", "tenant.plan",
	"billing.checkout", "billing.portal", "billing.stripe_event", "billing.reconcile",
}

// AuditService records and lists audit entries.
type AuditService interface {
	// Record writes one entry in a transaction of its own, with the
	// context's actor. It is for changes made outside this program's
	// services; they record their own entries with their changes.
	Record(ctx context.Context, e AuditEntry) error
	// ListAudit lists one tenant's entries, newest first, with the total
	// the filter matches.
	ListAudit(ctx context.Context, tenantID string, f AuditFilter) ([]*AuditEntry, int, error)
	// ListAllAudit lists the entries of every tenant and of the platform,
	// newest first, for platform administrators.
	ListAllAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, int, error)
}

// SettingChanged describes a setting's change for a summary. Values of
// settings whose key names a secret are not shown, and long values are
// cut.
func SettingChanged(key, from, to string) string {
	if secretKey(key) {
		switch {
		case to == "":
			return key + ": (hidden) → (none)"
		case from == "":
			return key + ": (none) → (hidden)"
		}
		return key + ": changed (hidden)"
	}
	return Changed(key, clip(from, 100), clip(to, 100))
}

// secretKey reports whether a setting's key names something secret.
func secretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"secret", "password", "passwd", "token", "api_key", "apikey", "private", "credential"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}
