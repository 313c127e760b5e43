-- The tenant and user of the context as uuids, NULL when missing or not a
-- uuid, now without a cast that can fail. A distributed PostgreSQL (Citus)
-- evaluates such expressions on the coordinator piece by piece, the THEN of
-- a CASE included whatever its WHEN says, so '' or 'not-a-uuid' in the
-- setting raised 22P02 there instead of matching no row. regexp_match
-- yields NULL for a value that is not a uuid, and the cast of NULL cannot
-- fail. Still one STABLE SQL expression, inlined into the policies.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenants.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT (regexp_match(tenants.claim('x-hasura-tenant-id'),
    '^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$', 'i'))[1]::uuid
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenants.current_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT (regexp_match(tenants.claim('x-hasura-user-id'),
    '^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$', 'i'))[1]::uuid
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenants.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN tenants.claim('x-hasura-tenant-id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN tenants.claim('x-hasura-tenant-id')::uuid
  END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenants.current_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN tenants.claim('x-hasura-user-id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN tenants.claim('x-hasura-user-id')::uuid
  END
$$;
-- +goose StatementEnd
