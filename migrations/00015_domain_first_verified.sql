-- When a domain was first verified. A domain once verified stays its
-- tenant's until that tenant (or an administrator) removes it, even while a
-- later re-check fails: only a claim never verified gives way to another
-- tenant after a week. The state says where a domain is now; this column
-- says whether its tenant ever proved control of it.

-- +goose Up
-- FORCE ROW LEVEL SECURITY binds the owner running this migration too, so
-- it is lifted for the conversion only, as in 00003.
ALTER TABLE tenants.tenant_domains NO FORCE ROW LEVEL SECURITY;

ALTER TABLE tenants.tenant_domains ADD COLUMN first_verified_at timestamptz;

-- verified_at is kept when a domain fails, so every domain that was ever
-- verified has it.
UPDATE tenants.tenant_domains SET first_verified_at = verified_at WHERE verified_at IS NOT NULL;

ALTER TABLE tenants.tenant_domains
  ADD CONSTRAINT tenant_domains_first_verified_at CHECK (verified_at IS NULL OR first_verified_at IS NOT NULL);

ALTER TABLE tenants.tenant_domains FORCE ROW LEVEL SECURITY;

-- +goose Down
ALTER TABLE tenants.tenant_domains
  DROP CONSTRAINT tenant_domains_first_verified_at,
  DROP COLUMN first_verified_at;
