-- Logos: a tenant's images (main, icon, email, dark), one of each kind. The
-- bytes live in the tenant's bucket in object storage under object_key,
-- named by their hash; this row says which object is current.

-- +goose Up
CREATE TABLE tenants.tenant_logos (
  tenant_id    uuid NOT NULL REFERENCES tenants.tenants (id),
  kind         text NOT NULL CHECK (kind IN ('main', 'icon', 'email', 'dark')),
  object_key   text NOT NULL CHECK (length(object_key) BETWEEN 1 AND 200),
  content_type text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp', 'image/svg+xml')),
  size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
  width        integer NOT NULL CHECK (width >= 0),
  height       integer NOT NULL CHECK (height >= 0),
  sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, kind)
);
SELECT tenants.enable_tenant_rls('tenants.tenant_logos');

-- +goose Down
DROP TABLE tenants.tenant_logos;
