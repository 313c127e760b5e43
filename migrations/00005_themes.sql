-- Themes: named sets of colors a tenant can switch between, one active at
-- a time. Colors are stored normalized (#rrggbb) and checked again here,
-- since they are written into the tenant's stylesheet.

-- +goose Up
CREATE TABLE tenants.tenant_themes (
  tenant_id        uuid NOT NULL REFERENCES tenants.tenants (id),
  id               text NOT NULL CHECK (id ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(id) <= 63),
  name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  primary_color    text NOT NULL CHECK (primary_color ~ '^#[0-9a-f]{6}$'),
  secondary_color  text NOT NULL CHECK (secondary_color ~ '^#[0-9a-f]{6}$'),
  background_color text NOT NULL CHECK (background_color ~ '^#[0-9a-f]{6}$'),
  text_color       text NOT NULL CHECK (text_color ~ '^#[0-9a-f]{6}$'),
  active           boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
-- At most one active theme per tenant.
CREATE UNIQUE INDEX tenant_themes_active ON tenants.tenant_themes (tenant_id) WHERE active;
SELECT tenants.enable_tenant_rls('tenants.tenant_themes');

-- +goose Down
DROP TABLE tenants.tenant_themes;
