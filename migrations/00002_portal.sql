-- The web portal: platform administrators and their sessions. These are the
-- platform's own accounts, not tenant users, and the application role has no
-- access to them.

-- +goose Up
CREATE SCHEMA platform;

CREATE TABLE platform.admins (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  name            text NOT NULL DEFAULT '',
  password_hash   text NOT NULL,
  last_sign_in_at timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX admins_email ON platform.admins (lower(email));

CREATE TABLE platform.admin_sessions (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  admin_id     uuid NOT NULL REFERENCES platform.admins (id) ON DELETE CASCADE,
  token_hash   bytea NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);

-- A user's sessions are ended together when the password changes.
CREATE INDEX sessions_user ON auth.sessions (tenant_id, user_id);
-- API keys are looked up by their hash within the tenant the key names.
CREATE UNIQUE INDEX api_keys_hash ON auth.api_keys (tenant_id, key_hash);

-- +goose Down
DROP INDEX auth.api_keys_hash;
DROP INDEX auth.sessions_user;
DROP SCHEMA platform CASCADE;
