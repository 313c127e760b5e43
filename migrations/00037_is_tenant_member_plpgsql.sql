-- tenants.is_tenant_member in PL/pgSQL, as the guide writes it. As a SQL
-- function it failed on every call on Citus ("could not create distributed
-- plan"): Citus cannot plan a SQL function's statement that reads a
-- distributed table with the function's parameters. PL/pgSQL runs the
-- statement as a query of its own, which Citus routes to the shard of
-- p_tenant_id. No policy uses the function, so nothing is lost by it not
-- being inlined.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenants.is_tenant_member(p_tenant_id uuid, p_user_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1 FROM tenants.tenant_members
    WHERE tenant_id = p_tenant_id AND user_id = p_user_id
  );
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenants.is_tenant_member(p_tenant_id uuid, p_user_id uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1 FROM tenants.tenant_members
    WHERE tenant_id = p_tenant_id AND user_id = p_user_id
  )
$$;
-- +goose StatementEnd
