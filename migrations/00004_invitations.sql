-- Invitations: a single-use link that lets a person join a tenant with a
-- role. Only a hash of the link's secret is stored.

-- +goose Up
CREATE TABLE tenants.tenant_invitations (
  tenant_id   uuid NOT NULL REFERENCES tenants.tenants (id),
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  -- A stored column, like auth.users.email_lower: lower() is not leakproof,
  -- so an index on the expression could not serve under row-level security.
  email_lower text GENERATED ALWAYS AS (lower(email)) STORED,
  name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
  role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'guest')),
  invited_by  uuid,
  token_hash  bytea NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  accepted_at timestamptz,
  revoked_at  timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, invited_by) REFERENCES auth.users (tenant_id, id) ON DELETE SET NULL (invited_by),
  CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
-- One pending invitation per person and tenant: inviting again is a resend.
CREATE UNIQUE INDEX tenant_invitations_pending ON tenants.tenant_invitations (tenant_id, email_lower)
  WHERE accepted_at IS NULL AND revoked_at IS NULL;
SELECT tenants.enable_tenant_rls('tenants.tenant_invitations');

-- +goose Down
DROP TABLE tenants.tenant_invitations;
