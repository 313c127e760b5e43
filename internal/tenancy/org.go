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
}
