-- The audit log: who did what, to what, from where and when. A tenant's
-- entries are tenant rows like any other, under the tenant policy; entries
-- about the platform itself (administrators, organizations, purged
-- tenants) have no tenant and are the platform's alone. Both are
-- append-only: the application role may add and read entries, never
-- change or remove them, and nobody may change one.

-- +goose Up
CREATE SCHEMA audit;

CREATE TABLE audit.events (
  tenant_id   uuid NOT NULL REFERENCES tenants.tenants (id),
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  -- The time of the statement, not of the transaction: entries of one
  -- transaction keep their order.
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'admin', 'api_key', 'cli', 'system', 'anonymous')),
  actor_id    text NOT NULL DEFAULT '' CHECK (length(actor_id) <= 300),
  actor       text NOT NULL DEFAULT '' CHECK (length(actor) <= 300),
  action      text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$' AND length(action) <= 64),
  target      text NOT NULL DEFAULT '' CHECK (length(target) <= 300),
  summary     text NOT NULL DEFAULT '' CHECK (length(summary) <= 2000),
  client_addr inet,
  PRIMARY KEY (tenant_id, id)
);
-- A tenant's log is read newest first.
CREATE INDEX events_tenant_at ON audit.events (tenant_id, at DESC);
SELECT tenants.enable_tenant_rls('audit.events');
-- The platform (the table's owner) reads every tenant's log for its
-- administrators; it still writes only within a tenant context.
CREATE POLICY platform_read ON audit.events FOR SELECT TO CURRENT_USER USING (true);

CREATE TABLE audit.platform_events (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'admin', 'api_key', 'cli', 'system', 'anonymous')),
  actor_id    text NOT NULL DEFAULT '' CHECK (length(actor_id) <= 300),
  actor       text NOT NULL DEFAULT '' CHECK (length(actor) <= 300),
  action      text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$' AND length(action) <= 64),
  target      text NOT NULL DEFAULT '' CHECK (length(target) <= 300),
  summary     text NOT NULL DEFAULT '' CHECK (length(summary) <= 2000),
  client_addr inet
);
CREATE INDEX platform_events_at ON audit.platform_events (at DESC);

-- An entry, once written, stays as written.
-- +goose StatementBegin
CREATE FUNCTION audit.refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit entries cannot be changed' USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER append_only BEFORE UPDATE ON audit.events
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_update();
CREATE TRIGGER append_only BEFORE UPDATE ON audit.platform_events
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_update();

-- +goose Down
DROP SCHEMA audit CASCADE;
