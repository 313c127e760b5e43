-- Keys a distributed PostgreSQL (Citus) accepts, on a single PostgreSQL
-- too. Tenant tables are spread over nodes by tenant_id, and a node can
-- only enforce a unique constraint that holds tenant_id: each of these
-- secrets and names is looked up within the tenant that the request
-- already names, so uniqueness within a tenant is all that is relied on
-- (the tokens are 256-bit random values; the API key prefix names its
-- tenant).
--
-- Global tables (the registry, plans, administrators, organizations,
-- Stripe events, the platform's audit log) are copied whole to every node
-- as reference tables, and no reference table may point at a distributed
-- one: the registry's link to its owner's account goes, and the owner is
-- kept by the code that changes members (MemberService's owner sync), as
-- it already was.

-- +goose Up
ALTER TABLE auth.sessions DROP CONSTRAINT sessions_token_hash_key,
  ADD CONSTRAINT sessions_token_hash_key UNIQUE (tenant_id, token_hash);
ALTER TABLE auth.refresh_tokens DROP CONSTRAINT refresh_tokens_token_hash_key,
  ADD CONSTRAINT refresh_tokens_token_hash_key UNIQUE (tenant_id, token_hash);
ALTER TABLE auth.password_tokens DROP CONSTRAINT password_tokens_token_hash_key,
  ADD CONSTRAINT password_tokens_token_hash_key UNIQUE (tenant_id, token_hash);
ALTER TABLE auth.api_keys DROP CONSTRAINT api_keys_prefix_key,
  ADD CONSTRAINT api_keys_prefix_key UNIQUE (tenant_id, prefix);
ALTER TABLE tenants.tenant_invitations DROP CONSTRAINT tenant_invitations_token_hash_key,
  ADD CONSTRAINT tenant_invitations_token_hash_key UNIQUE (tenant_id, token_hash);
-- A schema name is unique in the registry (tenants.schema_name) and in
-- the catalog.
ALTER TABLE tenants.tenant_schemas DROP CONSTRAINT tenant_schemas_schema_name_key,
  ADD CONSTRAINT tenant_schemas_schema_name_key UNIQUE (tenant_id, schema_name);

-- A tenant's membership in an organization is the tenant's row.
ALTER TABLE organizations.org_tenants DROP CONSTRAINT org_tenants_pkey,
  ADD CONSTRAINT org_tenants_pkey PRIMARY KEY (tenant_id, id);

ALTER TABLE tenants.tenants DROP CONSTRAINT tenants_id_owner_user_id_fkey;

-- ON DELETE SET NULL (invited_by) cannot run where tenant_id is the
-- distribution key. Who invited is a record: a deleted inviter's id stays,
-- and the pages join it with LEFT JOIN, showing no name.
ALTER TABLE tenants.tenant_invitations DROP CONSTRAINT tenant_invitations_tenant_id_invited_by_fkey;

-- +goose Down
ALTER TABLE tenants.tenant_invitations
  ADD CONSTRAINT tenant_invitations_tenant_id_invited_by_fkey FOREIGN KEY (tenant_id, invited_by)
  REFERENCES auth.users (tenant_id, id) ON DELETE SET NULL (invited_by) NOT VALID;
ALTER TABLE tenants.tenants
  ADD CONSTRAINT tenants_id_owner_user_id_fkey FOREIGN KEY (id, owner_user_id)
  REFERENCES auth.users (tenant_id, id) ON DELETE SET NULL (owner_user_id) DEFERRABLE INITIALLY DEFERRED NOT VALID;
ALTER TABLE organizations.org_tenants DROP CONSTRAINT org_tenants_pkey, ADD PRIMARY KEY (id);
ALTER TABLE tenants.tenant_schemas DROP CONSTRAINT tenant_schemas_schema_name_key, ADD UNIQUE (schema_name);
ALTER TABLE tenants.tenant_invitations DROP CONSTRAINT tenant_invitations_token_hash_key, ADD UNIQUE (token_hash);
ALTER TABLE auth.api_keys DROP CONSTRAINT api_keys_prefix_key, ADD UNIQUE (prefix);
ALTER TABLE auth.password_tokens DROP CONSTRAINT password_tokens_token_hash_key, ADD UNIQUE (token_hash);
ALTER TABLE auth.refresh_tokens DROP CONSTRAINT refresh_tokens_token_hash_key, ADD UNIQUE (token_hash);
ALTER TABLE auth.sessions DROP CONSTRAINT sessions_token_hash_key, ADD UNIQUE (token_hash);
