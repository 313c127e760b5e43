-- Custom domains: the verification state machine, kept apart from the
-- certificate (pending → verified → certificate_issuing → active, or
-- failed with the reason), the times of checks for the periodic re-check
-- and its grace period, and a platform path to route domains across
-- tenants.

-- +goose Up
-- FORCE ROW LEVEL SECURITY binds the owner running this migration too, so
-- without a tenant context it would see no existing row to convert. It is
-- lifted for the conversion only, inside this migration's transaction.
ALTER TABLE tenants.tenant_domains NO FORCE ROW LEVEL SECURITY;

ALTER TABLE tenants.tenant_domains
  ADD COLUMN state text NOT NULL DEFAULT 'pending'
    CHECK (state IN ('pending', 'verified', 'certificate_issuing', 'active', 'failed')),
  ADD COLUMN checked_at timestamptz,
  ADD COLUMN last_seen_valid_at timestamptz,
  ADD COLUMN failure text CHECK (failure <> '' AND length(failure) <= 2000);

UPDATE tenants.tenant_domains
SET state = 'verified', verified_at = coalesce(verified_at, created_at), last_seen_valid_at = verified_at
WHERE verified;

-- "verified" now follows the state: ownership is proven in these three
-- states, and nothing can set the column against it.
ALTER TABLE tenants.tenant_domains DROP COLUMN verified;
ALTER TABLE tenants.tenant_domains
  ADD COLUMN verified boolean GENERATED ALWAYS AS (state IN ('verified', 'certificate_issuing', 'active')) STORED;

ALTER TABLE tenants.tenant_domains
  -- Names are stored lowercase, in their ASCII (punycode) form.
  ADD CONSTRAINT tenant_domains_domain_form CHECK (domain = lower(domain) AND length(domain) BETWEEN 3 AND 253),
  ADD CONSTRAINT tenant_domains_verified_at CHECK (state NOT IN ('verified', 'certificate_issuing', 'active') OR verified_at IS NOT NULL),
  ADD CONSTRAINT tenant_domains_failed_reason CHECK (state <> 'failed' OR failure IS NOT NULL),
  -- Only a domain whose ownership is proven can be the primary one.
  ADD CONSTRAINT tenant_domains_primary_verified CHECK (NOT is_primary OR state IN ('verified', 'certificate_issuing', 'active'));

ALTER TABLE tenants.tenant_domains FORCE ROW LEVEL SECURITY;

-- The platform (the table's owner, which runs these migrations) reads
-- domains across tenants, to route a request for a custom domain to its
-- tenant; it still writes only within a tenant context.
CREATE POLICY platform_read ON tenants.tenant_domains FOR SELECT TO CURRENT_USER USING (true);

-- +goose Down
DROP POLICY platform_read ON tenants.tenant_domains;

ALTER TABLE tenants.tenant_domains NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tenants.tenant_domains
  DROP CONSTRAINT tenant_domains_primary_verified,
  DROP CONSTRAINT tenant_domains_failed_reason,
  DROP CONSTRAINT tenant_domains_verified_at,
  DROP CONSTRAINT tenant_domains_domain_form,
  ADD COLUMN verified_plain boolean NOT NULL DEFAULT false;
UPDATE tenants.tenant_domains SET verified_plain = verified;
ALTER TABLE tenants.tenant_domains DROP COLUMN verified;
ALTER TABLE tenants.tenant_domains RENAME COLUMN verified_plain TO verified;
ALTER TABLE tenants.tenant_domains
  DROP COLUMN failure,
  DROP COLUMN last_seen_valid_at,
  DROP COLUMN checked_at,
  DROP COLUMN state;
ALTER TABLE tenants.tenant_domains FORCE ROW LEVEL SECURITY;
