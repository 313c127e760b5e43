-- Single sign-on: each tenant may name one OpenID Connect provider that
-- signs its people in. The client secret is stored sealed (AES-GCM, keyed
-- by SSO_SECRET_KEY or SESSION_SECRET, bound to the tenant): a copy of the
-- database alone does not reveal it.
--
-- auth.sso_sessions marks the sessions opened through the provider, so
-- that requiring single sign-on can end the others (password sessions)
-- and the audit log can name the provider's subject.

-- +goose Up
CREATE TABLE tenants.tenant_sso (
  tenant_id      uuid NOT NULL REFERENCES tenants.tenants (id),
  issuer         text NOT NULL CHECK (length(issuer) BETWEEN 8 AND 500),
  client_id      text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 255),
  client_secret  bytea NOT NULL,
  display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 60),
  email_domains  text[] NOT NULL DEFAULT '{}',
  default_role   text NOT NULL DEFAULT 'member' CHECK (default_role IN ('admin', 'member', 'guest')),
  require_sso    boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id)
);
CREATE TRIGGER touch BEFORE UPDATE ON tenants.tenant_sso
  FOR EACH ROW EXECUTE FUNCTION tenants.touch_updated_at();
SELECT tenants.enable_tenant_rls('tenants.tenant_sso');

CREATE TABLE auth.sso_sessions (
  tenant_id  uuid NOT NULL,
  session_id uuid NOT NULL,
  issuer     text NOT NULL,
  subject    text NOT NULL CHECK (length(subject) <= 255),
  PRIMARY KEY (tenant_id, session_id),
  FOREIGN KEY (tenant_id, session_id) REFERENCES auth.sessions (tenant_id, id) ON DELETE CASCADE
);
SELECT tenants.enable_tenant_rls('auth.sso_sessions');

-- +goose Down
DROP TABLE auth.sso_sessions;
DROP TABLE tenants.tenant_sso;
