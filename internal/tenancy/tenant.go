package tenancy

import (
	"context"
	"time"
)

// Status is where a tenant is in its life.
type Status string

const (
	StatusActive    Status = "active"    // serves requests
	StatusSuspended Status = "suspended" // kept, but refuses access
	StatusDeleted   Status = "deleted"   // soft-deleted: the row stays, its data is gone
)

// DefaultTenantSlug is the tenant that `nself tenant init` creates to hold
// the rows that existed before tenancy. It needs no owner: nobody signs in
// to it until an operator adds people.
const DefaultTenantSlug = "default"

// ErrSingleTenant refuses a new tenant on a single-tenant installation.
var ErrSingleTenant = Errorf(EINVALID, "this is a single-tenant installation (MULTI_TENANCY_ENABLED=false): it serves the default tenant only; set MULTI_TENANCY_ENABLED=true to add tenants")

// Strategy is how a tenant's data is isolated.
type Strategy string

const (
	// StrategyRLS keeps the tenant's rows in shared tables, isolated by
	// row-level security on tenant_id.
	StrategyRLS Strategy = "rls"
	// StrategySchema gives the tenant a schema of its own for its data
	// tables, on top of row-level security.
	StrategySchema Strategy = "schema"
)

// ParseStrategy accepts "rls" or "schema".
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case StrategyRLS, StrategySchema:
		return Strategy(s), nil
	}
	return "", FieldErrorf(EINVALID, "strategy", "strategy %s is not one of rls, schema", Quote(s))
}

// Tenant is one customer, brand or department served by the platform.
type Tenant struct {
	ID       string
	Slug     string
	Name     string
	Status   Status
	Plan     string
	OwnerID  string // the owner's user id; empty when the tenant has none
	Strategy Strategy
	// SchemaName is the tenant's own schema under StrategySchema.
	SchemaName string

	StripeCustomerID     string
	StripeSubscriptionID string
	SubscriptionStatus   string

	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt *time.Time
}

// NewTenant is the input to create a tenant.
type NewTenant struct {
	Name string
	// Slug is derived from Name when empty.
	Slug string
	// Plan is the plan name; the default plan when empty.
	Plan string
	// Owner is empty, the id of an existing user (whose account is then
	// copied into the new tenant under the same id), or an email address (a
	// new account is created and must set its password with a one-time link).
	Owner string
	// OwnerPassword, when set, is the password of an owner account made
	// from an email, which then needs no set-password link.
	OwnerPassword string
	Strategy      Strategy
}

// Created is the result of creating a tenant.
type Created struct {
	Tenant *Tenant
	// Owner is the tenant's owner, when one was named.
	Owner *User
	// PasswordToken is set when the owner's account was made from an email:
	// the one-time secret that lets the owner set a password.
	PasswordToken string
}

// TenantFilter selects tenants for a list. Zero values select everything.
type TenantFilter struct {
	// Status selects one status; when empty, deleted tenants are left out
	// unless IncludeDeleted is set.
	Status         Status
	IncludeDeleted bool
	Plan           string
	// Query matches slug or name, case-insensitively.
	Query  string
	Offset int
	// Limit is the page size; 0 means no limit.
	Limit int
}

// Stats are platform-wide counts of tenants.
type Stats struct {
	Total    int
	ByStatus map[Status]int
	ByPlan   map[string]int
	// PlanOrder lists the plans in ByPlan in the order to show them.
	PlanOrder []string
}

// TenantService manages tenants. It is the platform's path: operators and
// platform admins use it, not tenant users.
type TenantService interface {
	// CreateTenant creates a tenant, its schema under StrategySchema, and its
	// owner, all or nothing.
	CreateTenant(ctx context.Context, in NewTenant) (*Created, error)
	// FindTenant finds a tenant by slug or id, deleted ones included.
	FindTenant(ctx context.Context, ref string) (*Tenant, error)
	// ListTenants returns a page of tenants and the total that match.
	ListTenants(ctx context.Context, f TenantFilter) ([]*Tenant, int, error)
	// SetTenantStatus suspends or activates a tenant.
	SetTenantStatus(ctx context.Context, ref string, status Status) (*Tenant, error)
	// DeleteTenant soft-deletes a tenant: its status becomes deleted, its
	// schema is dropped and its rows in tenant tables are removed.
	DeleteTenant(ctx context.Context, ref string) (*Tenant, error)
	// CountMembers returns how many members a tenant has.
	CountMembers(ctx context.Context, tenantID string) (int, error)
	// TenantStats counts tenants by status and by plan.
	TenantStats(ctx context.Context) (*Stats, error)
	// OverMemberLimit returns the tenants on plan p with more members than
	// it allows, by slug, with how many they have.
	OverMemberLimit(ctx context.Context, p *Plan) (map[string]int, error)
}

// CanTransition reports whether a tenant in status from may be moved to to,
// and if not, why.
func CanTransition(from, to Status) error {
	if from == StatusDeleted {
		return Errorf(ECONFLICT, "tenant is deleted; it cannot be %s", verbFor(to))
	}
	if from == to {
		return Errorf(ECONFLICT, "tenant is already %s", to)
	}
	return nil
}

// CanDelete reports whether t may be deleted, and if not, why. The
// default tenant stays: it holds a single-tenant installation's data, and
// the rows `nself tenant adopt` finds go to it.
func CanDelete(t *Tenant) error {
	switch {
	case t.Status == StatusDeleted:
		return Errorf(ECONFLICT, "tenant %s is already deleted", t.Slug)
	case t.Slug == DefaultTenantSlug:
		return Errorf(ECONFLICT, "the default tenant cannot be deleted: it holds the data of a single-tenant installation and of adopted tables (suspend it instead)")
	}
	return nil
}

func verbFor(s Status) string {
	switch s {
	case StatusActive:
		return "activated"
	case StatusSuspended:
		return "suspended"
	}
	return string(s)
}

// StrategyMode is the platform-wide TENANT_STRATEGY: which strategies
// tenants may use and which one they get by default.
type StrategyMode string

const (
	ModeRLS    StrategyMode = "rls"    // every tenant on row-level security
	ModeSchema StrategyMode = "schema" // every tenant gets a schema of its own
	ModeHybrid StrategyMode = "hybrid" // row-level security, with chosen tenants on schemas
)

// Resolve returns the strategy a new tenant gets when it asks for
// requested (empty for the default), or why it may not have it.
func (m StrategyMode) Resolve(requested Strategy) (Strategy, error) {
	def := StrategyRLS
	if m == ModeSchema {
		def = StrategySchema
	}
	switch {
	case requested == "":
		return def, nil
	case requested == def, m == ModeHybrid:
		return requested, nil
	}
	return "", FieldErrorf(EINVALID, "strategy", "strategy %s is not allowed while TENANT_STRATEGY=%s (use TENANT_STRATEGY=hybrid to mix strategies)", requested, m)
}

// Valid reports whether m is one of the three modes.
func (m StrategyMode) Valid() bool { return m == ModeRLS || m == ModeSchema || m == ModeHybrid }
