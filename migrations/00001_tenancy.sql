-- The tenancy core: the tenant registry, users, plans and the functions
-- row-level security policies are written with.

-- +goose Up
CREATE SCHEMA tenants;
CREATE SCHEMA auth;

-- The tenant context is one setting, "hasura.user", holding a JSON object of
-- session variables, as Hasura sets it. (A setting named
-- hasura.user.x-hasura-tenant-id is refused by PostgreSQL 15 because of its
-- hyphens, and reading such a name quietly returns NULL.) It is always set
-- with SET LOCAL, so it ends with the transaction.
--
-- These functions are one SQL expression and STABLE, so the planner inlines
-- them and uses the value as an index condition: a policy on tenant_id costs
-- what an explicit WHERE tenant_id = $1 costs. A value that is not a uuid
-- yields NULL, which matches no row.

-- +goose StatementBegin
CREATE FUNCTION tenants.claim(name text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT NULLIF(current_setting('hasura.user', true), '')::jsonb ->> name
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tenants.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN tenants.claim('x-hasura-tenant-id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN tenants.claim('x-hasura-tenant-id')::uuid
  END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tenants.current_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN tenants.claim('x-hasura-user-id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN tenants.claim('x-hasura-user-id')::uuid
  END
$$;
-- +goose StatementEnd

-- set_context sets the tenant (and optionally the user) for the current
-- transaction only. It runs a real SET LOCAL statement, which a distributed
-- PostgreSQL (Citus) forwards to its workers, where set_config(..., true)
-- would not be; the values arrive as bound parameters.
-- +goose StatementBegin
CREATE FUNCTION tenants.set_context(p_tenant_id uuid, p_user_id uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('SET LOCAL %I = %L', 'hasura.user',
    json_build_object('x-hasura-tenant-id', p_tenant_id, 'x-hasura-user-id', p_user_id)::text);
END
$$;
-- +goose StatementEnd

-- enable_tenant_rls puts a tenant-aware table under row-level security: the
-- table's owner is bound too (FORCE), and reads and writes are limited to the
-- current tenant. Every table with a tenant_id column goes through it.
-- +goose StatementBegin
CREATE FUNCTION tenants.enable_tenant_rls(p_table regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', p_table);
  EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', p_table);
  EXECUTE format('CREATE POLICY tenant_isolation ON %s FOR ALL'
    ' USING (tenant_id = tenants.current_tenant_id())'
    ' WITH CHECK (tenant_id = tenants.current_tenant_id())', p_table);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tenants.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END
$$;
-- +goose StatementEnd

-- Plans are the platform's, shared by all tenants. -1 means unlimited.
CREATE TABLE public.billing_plans (
  id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name                       varchar(50) NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
  max_users                  integer NOT NULL DEFAULT 5 CHECK (max_users >= -1),
  max_storage_gb             integer NOT NULL DEFAULT 1 CHECK (max_storage_gb >= -1),
  max_api_requests_per_month bigint NOT NULL DEFAULT 10000 CHECK (max_api_requests_per_month >= -1),
  max_compute_hours          integer NOT NULL DEFAULT 10 CHECK (max_compute_hours >= -1),
  price_monthly              numeric(10,2) NOT NULL DEFAULT 0 CHECK (price_monthly >= 0),
  stripe_price_id            text,
  sort_order                 integer NOT NULL DEFAULT 0,
  archived_at                timestamptz,
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now()
);

INSERT INTO public.billing_plans
  (name, max_users, max_storage_gb, max_api_requests_per_month, max_compute_hours, price_monthly, sort_order)
VALUES
  ('free',          5,   1,  10000,  10,   0.00, 1),
  ('starter',      10,  10,  50000, 100,  29.00, 2),
  ('pro',          50, 100, 100000,  -1,  99.00, 3),
  ('enterprise',   -1,  -1,     -1,  -1, 499.00, 4);

CREATE TABLE tenants.tenants (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug                   text NOT NULL UNIQUE
                         CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 63),
  name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  status                 text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
  plan                   varchar(50) NOT NULL DEFAULT 'free' REFERENCES public.billing_plans (name) ON UPDATE CASCADE,
  owner_user_id          uuid,
  strategy               text NOT NULL DEFAULT 'rls' CHECK (strategy IN ('rls', 'schema')),
  schema_name            text UNIQUE,
  stripe_customer_id     text UNIQUE,
  stripe_subscription_id text UNIQUE,
  subscription_status    text,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  deleted_at             timestamptz,
  CHECK ((status = 'deleted') = (deleted_at IS NOT NULL)),
  CHECK ((strategy = 'schema') = (schema_name IS NOT NULL))
);
CREATE INDEX tenants_status_plan ON tenants.tenants (status, plan);
CREATE TRIGGER touch BEFORE UPDATE ON tenants.tenants
  FOR EACH ROW EXECUTE FUNCTION tenants.touch_updated_at();

-- The registry has no tenant_id column: a tenant may read its own row, and
-- the platform (the table's owner) reads them all to route and administer.
ALTER TABLE tenants.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON tenants.tenants FOR SELECT
  USING (id = tenants.current_tenant_id());

CREATE TABLE tenants.tenant_schemas (
  tenant_id   uuid NOT NULL REFERENCES tenants.tenants (id),
  schema_name text NOT NULL UNIQUE,
  version     integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id)
);
SELECT tenants.enable_tenant_rls('tenants.tenant_schemas');

CREATE TABLE tenants.tenant_domains (
  tenant_id          uuid NOT NULL REFERENCES tenants.tenants (id),
  domain             text NOT NULL,
  is_primary         boolean NOT NULL DEFAULT false,
  verified           boolean NOT NULL DEFAULT false,
  verification_token text NOT NULL,
  verified_at        timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, domain)
);
-- A domain belongs to one tenant at most, across the platform.
CREATE UNIQUE INDEX tenant_domains_domain ON tenants.tenant_domains (domain);
CREATE UNIQUE INDEX tenant_domains_one_primary ON tenants.tenant_domains (tenant_id) WHERE is_primary;
SELECT tenants.enable_tenant_rls('tenants.tenant_domains');

CREATE TABLE tenants.tenant_settings (
  tenant_id  uuid NOT NULL REFERENCES tenants.tenants (id),
  key        text NOT NULL CHECK (length(key) BETWEEN 1 AND 100),
  value      text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, key)
);
SELECT tenants.enable_tenant_rls('tenants.tenant_settings');

CREATE TABLE auth.users (
  tenant_id       uuid NOT NULL REFERENCES tenants.tenants (id),
  id              uuid NOT NULL DEFAULT gen_random_uuid(),
  email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  name            text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
  -- Compared without case. A stored column, not an index on lower(email):
  -- under row-level security only leakproof conditions may run before the
  -- policy, and lower() is not, so lower(email) = $1 could not use an index.
  email_lower     text GENERATED ALWAYS AS (lower(email)) STORED,
  password_hash   text,
  last_sign_in_at timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
-- An email is unique within its tenant, compared without case.
CREATE UNIQUE INDEX users_tenant_email ON auth.users (tenant_id, email_lower);
-- The same person keeps one id across the tenants they hold accounts in.
CREATE INDEX users_id ON auth.users (id);
CREATE TRIGGER touch BEFORE UPDATE ON auth.users
  FOR EACH ROW EXECUTE FUNCTION tenants.touch_updated_at();
SELECT tenants.enable_tenant_rls('auth.users');
-- The platform (the tables' owner, which runs these migrations) may read
-- users across tenants, to find an existing account by id; it still writes
-- only within a tenant context.
CREATE POLICY platform_read ON auth.users FOR SELECT TO CURRENT_USER USING (true);

ALTER TABLE tenants.tenants
  ADD FOREIGN KEY (id, owner_user_id) REFERENCES auth.users (tenant_id, id)
  ON DELETE SET NULL (owner_user_id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE tenants.tenant_members (
  tenant_id uuid NOT NULL,
  user_id   uuid NOT NULL,
  role      text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member', 'guest')),
  joined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX tenant_members_role ON tenants.tenant_members (tenant_id, role);
SELECT tenants.enable_tenant_rls('tenants.tenant_members');

-- +goose StatementBegin
CREATE FUNCTION tenants.is_tenant_member(p_tenant_id uuid, p_user_id uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1 FROM tenants.tenant_members
    WHERE tenant_id = p_tenant_id AND user_id = p_user_id
  )
$$;
-- +goose StatementEnd

CREATE TABLE auth.sessions (
  tenant_id    uuid NOT NULL,
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL,
  token_hash   bytea NOT NULL UNIQUE,
  user_agent   text NOT NULL DEFAULT '',
  client_ip    inet,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
SELECT tenants.enable_tenant_rls('auth.sessions');

CREATE TABLE auth.refresh_tokens (
  tenant_id  uuid NOT NULL,
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL,
  token_hash bytea NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
SELECT tenants.enable_tenant_rls('auth.refresh_tokens');

CREATE TABLE auth.api_keys (
  tenant_id    uuid NOT NULL REFERENCES tenants.tenants (id),
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  prefix       text NOT NULL UNIQUE,
  key_hash     bytea NOT NULL,
  created_by   uuid,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz,
  PRIMARY KEY (tenant_id, id)
);
SELECT tenants.enable_tenant_rls('auth.api_keys');

-- One-time secrets that let a user set (or reset) a password. Only a hash
-- is stored.
CREATE TABLE auth.password_tokens (
  tenant_id  uuid NOT NULL,
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL,
  token_hash bytea NOT NULL UNIQUE,
  purpose    text NOT NULL CHECK (purpose IN ('set', 'reset')),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
SELECT tenants.enable_tenant_rls('auth.password_tokens');

CREATE TABLE public.billing_usage_records (
  tenant_id    uuid NOT NULL REFERENCES tenants.tenants (id),
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  service_name text NOT NULL CHECK (service_name IN ('api_requests', 'storage', 'compute_hours', 'active_users')),
  quantity     numeric NOT NULL CHECK (quantity >= 0),
  metadata     jsonb NOT NULL DEFAULT '{}',
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX billing_usage_records_period ON public.billing_usage_records (tenant_id, service_name, recorded_at);
SELECT tenants.enable_tenant_rls('public.billing_usage_records');

-- The shared home of tenant data tables for tenants isolated by row-level
-- security; its tables come from the tenant-table migrations.
CREATE SCHEMA app;

-- +goose Down
DROP SCHEMA app CASCADE;
DROP TABLE public.billing_usage_records;
DROP SCHEMA auth CASCADE;
DROP SCHEMA tenants CASCADE;
DROP TABLE public.billing_plans;
