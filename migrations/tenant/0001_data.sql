-- A tenant's own data. These tables are created in the shared schema "app"
-- and in every schema-per-tenant schema; search_path names the schema, so no
-- table here is schema-qualified. Every table carries tenant_id, leads its
-- key with it and is under row-level security, in a tenant's own schema too:
-- isolation does not rest on the schema alone.
--
-- tenant_id has no foreign key to tenants.tenants: each such key adds
-- triggers to the registry table, and with one set per schema tenant every
-- change to the registry would grow slower as tenants are added. The
-- policy and the default already tie rows to a live tenant context.

CREATE TABLE products (
  tenant_id  uuid NOT NULL DEFAULT tenants.current_tenant_id(),
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  price      numeric(12,2) NOT NULL DEFAULT 0 CHECK (price >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
SELECT tenants.enable_tenant_rls('products');

CREATE TABLE orders (
  tenant_id  uuid NOT NULL DEFAULT tenants.current_tenant_id(),
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  product_id uuid NOT NULL,
  quantity   integer NOT NULL CHECK (quantity > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX orders_product ON orders (tenant_id, product_id);
SELECT tenants.enable_tenant_rls('orders');
