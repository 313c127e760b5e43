-- Which tenant holds a domain, across the platform. The tenant's domain
-- rows (tenants.tenant_domains) are spread over nodes by tenant_id on a
-- distributed PostgreSQL, where a unique index on the domain alone cannot
-- be enforced; this small global table (a reference table there) keeps one
-- row per domain, written in the same transaction as the tenant's row, so
-- two tenants still cannot hold the same name.
--
-- claimed_by, not tenant_id: a claim is the platform's record about a
-- tenant, not a tenant table (the catalog-driven delete, export and
-- isolation checks would take it for one). The application role adds and
-- gives up its own tenant's claims only.

-- +goose Up
CREATE TABLE tenants.domain_claims (
  domain     text PRIMARY KEY,
  -- No foreign key to the registry: on Citus, writing a reference table
  -- locks the tables it references, down to the plans, which the
  -- application role may not lock. A tenant's claims go with its data
  -- (removeTenantData).
  claimed_by uuid NOT NULL
);
CREATE INDEX domain_claims_claimed_by ON tenants.domain_claims (claimed_by);
ALTER TABLE tenants.domain_claims ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_claims ON tenants.domain_claims FOR ALL
  USING (claimed_by = tenants.current_tenant_id())
  WITH CHECK (claimed_by = tenants.current_tenant_id());

-- The existing rows, read past FORCE ROW LEVEL SECURITY for this copy only,
-- as in 00003.
ALTER TABLE tenants.tenant_domains NO FORCE ROW LEVEL SECURITY;
INSERT INTO tenants.domain_claims (domain, claimed_by)
SELECT domain, tenant_id FROM tenants.tenant_domains;
ALTER TABLE tenants.tenant_domains FORCE ROW LEVEL SECURITY;

DROP INDEX tenants.tenant_domains_domain;
-- Routing a custom domain still reads tenant_domains by name.
CREATE INDEX tenant_domains_domain ON tenants.tenant_domains (domain);

-- +goose Down
DROP INDEX tenants.tenant_domains_domain;
CREATE UNIQUE INDEX tenant_domains_domain ON tenants.tenant_domains (domain);
DROP TABLE tenants.domain_claims;
