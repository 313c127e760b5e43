-- Exports an owner requests in the portal: built in the background, the
-- archive kept in object storage until it expires, downloadable by the
-- owner who asked for it only. At most one runs per tenant at a time.

-- +goose Up
CREATE TABLE tenants.tenant_exports (
  tenant_id     uuid NOT NULL REFERENCES tenants.tenants (id),
  id            uuid NOT NULL DEFAULT gen_random_uuid(),
  requested_by  uuid NOT NULL,
  state         text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'ready', 'failed', 'expired')),
  tables_total  integer NOT NULL DEFAULT 0,
  tables_done   integer NOT NULL DEFAULT 0,
  rows_total    bigint NOT NULL DEFAULT 0,
  rows_done     bigint NOT NULL DEFAULT 0,
  objects_total integer NOT NULL DEFAULT 0,
  objects_done  integer NOT NULL DEFAULT 0,
  size_bytes    bigint NOT NULL DEFAULT 0,
  object_key    text CHECK (length(object_key) <= 200),
  failure       text CHECK (length(failure) <= 2000),
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- Moved on by each progress report: a running job that stopped moving
  -- died with its process.
  updated_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  expires_at    timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, requested_by) REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE,
  CHECK (state <> 'ready' OR (object_key IS NOT NULL AND expires_at IS NOT NULL AND finished_at IS NOT NULL)),
  CHECK (state <> 'failed' OR failure IS NOT NULL)
);
-- One export at a time per tenant.
CREATE UNIQUE INDEX tenant_exports_one_running ON tenants.tenant_exports (tenant_id) WHERE state = 'running';
CREATE INDEX tenant_exports_requester ON tenants.tenant_exports (tenant_id, requested_by, created_at);
SELECT tenants.enable_tenant_rls('tenants.tenant_exports');

-- +goose Down
DROP TABLE tenants.tenant_exports;
