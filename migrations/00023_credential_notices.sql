-- Every change that ends a credential or changes what it grants is
-- announced on the channel nself_credential_changed when its transaction
-- commits, so that every server process drops what it holds in memory of
-- it (the CredentialCache) before its next request: a revoked or deleted
-- API key, a deleted or changed session (sign-out, expiry, password reset),
-- a user whose sign-in details change or who is deleted, a member removed
-- or given another role. The triggers catch every path that changes these
-- rows, the CLI's, the portal's, a tenant's deletion and cascades alike.
-- The payload is KIND:TENANT_ID:ID, with KIND key, session or user.

-- +goose Up
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
-- Not on last_seen_at: touching a session changes nothing it grants.
CREATE TRIGGER notify_credential_change
  AFTER DELETE OR UPDATE OF tenant_id, user_id, token_hash, expires_at ON auth.sessions
  FOR EACH ROW EXECUTE FUNCTION auth.notify_credential_change('session', 'id');
CREATE TRIGGER notify_credential_change
  AFTER DELETE OR UPDATE OF tenant_id, id, email, name, password_hash ON auth.users
  FOR EACH ROW EXECUTE FUNCTION auth.notify_credential_change('user', 'id');
CREATE TRIGGER notify_credential_change
  AFTER DELETE OR UPDATE OF tenant_id, user_id, role ON tenants.tenant_members
  FOR EACH ROW EXECUTE FUNCTION auth.notify_credential_change('user', 'user_id');

-- +goose Down
DROP TRIGGER notify_credential_change ON tenants.tenant_members;
DROP TRIGGER notify_credential_change ON auth.users;
DROP TRIGGER notify_credential_change ON auth.sessions;
DROP TRIGGER notify_credential_change ON auth.api_keys;
DROP FUNCTION auth.notify_credential_change();
