-- The credential notices on nself_credential_changed come from the
-- application now, sent in the transaction that makes the change on the
-- connection that makes it (internal/postgres, announceCredentials), not
-- from triggers. On Citus a trigger fires on the worker holding the shard,
-- where no server listens, and a worker's transaction that sent a NOTIFY
-- cannot be prepared for the two-phase commit; the application's notice
-- comes from the coordinator, where the servers listen, and commits with
-- the rest. So the credential cache runs the same way on one PostgreSQL
-- and on Citus.
--
-- The paths the triggers caught, and who announces them now: API key
-- revocation (key); sign-out, ending one's own or a member's sessions,
-- sessions ended by a password change or by single sign-on becoming
-- required, an expired or idle session ended on sight (session); a
-- password reset, a member's role changed, a member removed, a session's
-- token changed once its second factor is given (user); a tenant
-- suspended, deleted or purged, with every row of it (tenant). No service
-- deletes a single account or changes its email or name, and keys are
-- never deleted but with their tenant.

-- +goose Up
-- On Citus, where the tables are distributed, a trigger is dropped on every
-- shard; done in parallel, the function could not be dropped after it in
-- the same transaction. On one PostgreSQL this setting is a placeholder
-- and changes nothing.
SET LOCAL citus.multi_shard_modify_mode = 'sequential';
DROP TRIGGER IF EXISTS notify_credential_change ON tenants.tenant_members;
DROP TRIGGER IF EXISTS notify_credential_change ON auth.users;
DROP TRIGGER IF EXISTS notify_credential_change ON auth.sessions;
DROP TRIGGER IF EXISTS notify_credential_change ON auth.api_keys;
DROP FUNCTION IF EXISTS auth.notify_credential_change();

-- +goose Down
-- +goose StatementBegin
CREATE FUNCTION auth.notify_credential_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('nself_credential_changed',
    TG_ARGV[0] || ':' || OLD.tenant_id || ':' || (to_jsonb(OLD) ->> TG_ARGV[1]));
  RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER notify_credential_change
  AFTER DELETE OR UPDATE OF tenant_id, key_hash, revoked_at ON auth.api_keys
  FOR EACH ROW EXECUTE FUNCTION auth.notify_credential_change('key', 'id');
CREATE TRIGGER notify_credential_change
  AFTER DELETE OR UPDATE OF tenant_id, user_id, token_hash, expires_at ON auth.sessions
  FOR EACH ROW EXECUTE FUNCTION auth.notify_credential_change('session', 'id');
CREATE TRIGGER notify_credential_change
  AFTER DELETE OR UPDATE OF tenant_id, id, email, name, password_hash ON auth.users
  FOR EACH ROW EXECUTE FUNCTION auth.notify_credential_change('user', 'id');
CREATE TRIGGER notify_credential_change
  AFTER DELETE OR UPDATE OF tenant_id, user_id, role ON tenants.tenant_members
  FOR EACH ROW EXECUTE FUNCTION auth.notify_credential_change('user', 'user_id');
