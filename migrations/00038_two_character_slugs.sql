-- Slugs of two characters: the departments of an internal platform (hr,
-- it, qa) are tenants too. One character stays refused.

-- +goose Up
ALTER TABLE tenants.tenants DROP CONSTRAINT tenants_slug_check;
ALTER TABLE tenants.tenants ADD CONSTRAINT tenants_slug_check
  CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 2 AND 63);
ALTER TABLE organizations.organizations DROP CONSTRAINT organizations_slug_check;
ALTER TABLE organizations.organizations ADD CONSTRAINT organizations_slug_check
  CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 2 AND 63);

-- +goose Down
-- Fails while a slug of two characters is in use: rename its tenant first.
ALTER TABLE tenants.tenants DROP CONSTRAINT tenants_slug_check;
ALTER TABLE tenants.tenants ADD CONSTRAINT tenants_slug_check
  CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 63);
ALTER TABLE organizations.organizations DROP CONSTRAINT organizations_slug_check;
ALTER TABLE organizations.organizations ADD CONSTRAINT organizations_slug_check
  CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 63);
