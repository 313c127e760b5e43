package tenancy

import (
	"context"
	"time"
)

// Organization groups several tenants of one customer.
type Organization struct {
	ID        string
	Slug      string
	Name      string
	Tenants   int
	CreatedAt time.Time
}

// OrgService manages organizations: the platform path.
type OrgService interface {
	CreateOrg(ctx context.Context, name, slug string) (*Organization, error)
	ListOrgs(ctx context.Context) ([]*Organization, error)
	AddOrgTenant(ctx context.Context, orgRef, tenantRef string) error
	RemoveOrgTenant(ctx context.Context, orgRef, tenantRef string) error
	OrgTenants(ctx context.Context, orgRef string) ([]*Tenant, error)
	// FindOrg finds an organization by slug or id.
	FindOrg(ctx context.Context, ref string) (*Organization, error)
	// RenameOrg changes an organization's name; its slug stays.
	RenameOrg(ctx context.Context, ref, name string) (*Organization, error)
	// DeleteOrg deletes an organization; its tenants leave it and are
	// otherwise untouched.
	DeleteOrg(ctx context.Context, ref string) error
	// TenantOrgs lists the organizations a tenant belongs to.
	TenantOrgs(ctx context.Context, tenantID string) ([]*Organization, error)
}
