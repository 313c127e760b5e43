package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nself/nself/internal/tenancy"
)

// OrgService implements tenancy.OrgService on the platform path: an
// organization spans tenants, so no tenant context can hold it. Each
// membership is a row of its tenant, written in that tenant's context.
type OrgService struct {
	db *DB
}

var _ tenancy.OrgService = (*OrgService)(nil)

// NewOrgService returns an OrgService using db.
func NewOrgService(db *DB) *OrgService { return &OrgService{db: db} }

// CreateOrg creates an organization; the slug is derived from the name when
// empty, by the tenant slug rules.
func (s *OrgService) CreateOrg(ctx context.Context, name, slug string) (*tenancy.Organization, error) {
	if err := tenancy.ValidateName("name", name); err != nil {
		return nil, err
	}
	if slug == "" {
		slug = tenancy.SlugFromName(name)
	}
	if err := tenancy.ValidateSlug(slug); err != nil {
		return nil, err
	}
	o := &tenancy.Organization{Name: name, Slug: slug}
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
			INSERT INTO organizations.organizations (slug, name) VALUES ($1, $2)
			RETURNING id, created_at`, slug, name).Scan(&o.ID, &o.CreatedAt); err != nil {
			return err
		}
		return recordAudit(ctx, tx, "", "org.create", slug, "name: "+name)
	})
	if err != nil {
		if tenancy.ErrorCode(translate(err)) == tenancy.ECONFLICT {
			return nil, tenancy.FieldErrorf(tenancy.ECONFLICT, "slug", "organization %s already exists", tenancy.Quote(slug))
		}
		return nil, fmt.Errorf("create organization: %w", err)
	}
	return o, nil
}

// ListOrgs lists organizations with how many tenants each holds.
func (s *OrgService) ListOrgs(ctx context.Context) ([]*tenancy.Organization, error) {
	rows, err := s.db.Admin.Query(ctx, `
		SELECT o.id, o.slug, o.name, count(ot.id), o.created_at
		FROM organizations.organizations o
		LEFT JOIN organizations.org_tenants ot ON ot.org_id = o.id
		GROUP BY o.id ORDER BY o.slug`)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.Organization, error) {
		var o tenancy.Organization
		err := r.Scan(&o.ID, &o.Slug, &o.Name, &o.Tenants, &o.CreatedAt)
		return &o, err
	})
}

func (s *OrgService) findOrg(ctx context.Context, ref string) (string, error) {
	var id string
	err := s.db.Admin.QueryRow(ctx, `SELECT id FROM organizations.organizations WHERE slug = $1 OR id::text = $1`, ref).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", tenancy.Errorf(tenancy.ENOTFOUND, "organization %s not found", tenancy.Quote(ref))
	}
	return id, err
}

// AddOrgTenant puts a tenant in an organization.
func (s *OrgService) AddOrgTenant(ctx context.Context, orgRef, tenantRef string) error {
	org, err := s.findOrg(ctx, orgRef)
	if err != nil {
		return err
	}
	t, err := findTenant(ctx, s.db.Admin, tenantRef, false)
	if err != nil {
		return err
	}
	if t.Status == tenancy.StatusDeleted {
		return tenancy.Errorf(tenancy.ECONFLICT, "tenant %s is deleted", t.Slug)
	}
	var tag pgconn.CommandTag
	err = inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if err := setTenant(ctx, tx, t.ID, ""); err != nil {
			return err
		}
		var err error
		tag, err = tx.Exec(ctx, `
			INSERT INTO organizations.org_tenants (org_id, tenant_id) VALUES ($1, $2)
			ON CONFLICT (org_id, tenant_id) DO NOTHING`, org, t.ID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return recordAudit(ctx, tx, t.ID, "org.add_tenant", orgRef, "tenant "+t.Slug+" joined organization "+orgRef)
	})
	if err != nil {
		return fmt.Errorf("add tenant to organization: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return tenancy.Errorf(tenancy.ECONFLICT, "tenant %s is already in organization %s", t.Slug, tenancy.Quote(orgRef))
	}
	return nil
}

// RemoveOrgTenant takes a tenant out of an organization.
func (s *OrgService) RemoveOrgTenant(ctx context.Context, orgRef, tenantRef string) error {
	org, err := s.findOrg(ctx, orgRef)
	if err != nil {
		return err
	}
	t, err := findTenant(ctx, s.db.Admin, tenantRef, false)
	if err != nil {
		return err
	}
	var tag pgconn.CommandTag
	err = inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if err := setTenant(ctx, tx, t.ID, ""); err != nil {
			return err
		}
		var err error
		tag, err = tx.Exec(ctx, `DELETE FROM organizations.org_tenants WHERE org_id = $1 AND tenant_id = $2`, org, t.ID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return recordAudit(ctx, tx, t.ID, "org.remove_tenant", orgRef, "tenant "+t.Slug+" left organization "+orgRef)
	})
	if err != nil {
		return fmt.Errorf("remove tenant from organization: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return tenancy.Errorf(tenancy.ENOTFOUND, "tenant %s is not in organization %s", t.Slug, tenancy.Quote(orgRef))
	}
	return nil
}

// OrgTenants lists an organization's tenants, as the guide's query does.
func (s *OrgService) OrgTenants(ctx context.Context, orgRef string) ([]*tenancy.Tenant, error) {
	org, err := s.findOrg(ctx, orgRef)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Admin.Query(ctx, `
		SELECT `+tenantColumns+`
		FROM tenants.tenants
		WHERE id IN (SELECT tenant_id FROM organizations.org_tenants WHERE org_id = $1)
		ORDER BY slug`, org)
	if err != nil {
		return nil, fmt.Errorf("organization tenants: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.Tenant, error) { return scanTenant(r) })
}

// FindOrg finds an organization by slug or id, with its tenant count.
func (s *OrgService) FindOrg(ctx context.Context, ref string) (*tenancy.Organization, error) {
	var o tenancy.Organization
	err := s.db.Admin.QueryRow(ctx, `
		SELECT o.id, o.slug, o.name, count(ot.tenant_id), o.created_at
		FROM organizations.organizations o
		LEFT JOIN organizations.org_tenants ot ON ot.org_id = o.id
		WHERE o.slug = $1 OR o.id::text = $1
		GROUP BY o.id`, ref).Scan(&o.ID, &o.Slug, &o.Name, &o.Tenants, &o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenancy.Errorf(tenancy.ENOTFOUND, "organization %s not found", tenancy.Quote(ref))
	}
	if err != nil {
		return nil, fmt.Errorf("find organization: %w", err)
	}
	return &o, nil
}

// RenameOrg changes an organization's name. The slug stays: scripts and
// the CLI name the organization by it.
func (s *OrgService) RenameOrg(ctx context.Context, ref, name string) (*tenancy.Organization, error) {
	if err := tenancy.ValidateName("name", name); err != nil {
		return nil, err
	}
	o, err := s.FindOrg(ctx, ref)
	if err != nil {
		return nil, err
	}
	old := o.Name
	err = inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE organizations.organizations SET name = $2 WHERE id = $1`, o.ID, name); err != nil {
			return err
		}
		return recordAudit(ctx, tx, "", "org.rename", o.Slug, "name: "+old+" → "+name)
	})
	if err != nil {
		return nil, fmt.Errorf("rename organization: %w", err)
	}
	o.Name = name
	return o, nil
}

// DeleteOrg deletes an organization. Its memberships go with it (the
// foreign key cascades); the tenants themselves are untouched.
func (s *OrgService) DeleteOrg(ctx context.Context, ref string) error {
	o, err := s.FindOrg(ctx, ref)
	if err != nil {
		return err
	}
	err = inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM organizations.organizations WHERE id = $1`, o.ID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, "", "org.delete", o.Slug,
			fmt.Sprintf("name: %s; %d tenants left it", o.Name, o.Tenants))
	})
	if err != nil {
		return fmt.Errorf("delete organization: %w", err)
	}
	return nil
}

// TenantOrgs lists the organizations a tenant belongs to.
func (s *OrgService) TenantOrgs(ctx context.Context, tenantID string) ([]*tenancy.Organization, error) {
	rows, err := s.db.Admin.Query(ctx, `
		SELECT o.id, o.slug, o.name, o.created_at
		FROM organizations.organizations o
		JOIN organizations.org_tenants ot ON ot.org_id = o.id
		WHERE ot.tenant_id = $1
		ORDER BY o.slug`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("tenant's organizations: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.Organization, error) {
		var o tenancy.Organization
		err := r.Scan(&o.ID, &o.Slug, &o.Name, &o.CreatedAt)
		return &o, err
	})
}
