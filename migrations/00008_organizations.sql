-- Organizations group several tenants of one customer. They are the
-- platform's records, kept by the owner on the platform path; the
-- application role has no access to them.

-- +goose Up
CREATE SCHEMA organizations;

CREATE TABLE organizations.organizations (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 63),
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE organizations.org_tenants (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id     uuid NOT NULL REFERENCES organizations.organizations (id) ON DELETE CASCADE,
  tenant_id  uuid NOT NULL REFERENCES tenants.tenants (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, tenant_id)
);
CREATE INDEX org_tenants_tenant ON organizations.org_tenants (tenant_id);
-- A membership belongs to its tenant like any tenant row: written in that
-- tenant's context only. The platform (the owner) reads them all to list an
-- organization's tenants.
SELECT tenants.enable_tenant_rls('organizations.org_tenants');
CREATE POLICY platform_read ON organizations.org_tenants FOR SELECT TO CURRENT_USER USING (true);

-- +goose Down
DROP SCHEMA organizations CASCADE;
