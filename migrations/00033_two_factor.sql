-- Two-factor authentication with time-based one-time codes (TOTP).
--
-- A person's authenticator secret is stored encrypted (AES-GCM, with the
-- key of TOTP_ENCRYPTION_KEY): a copy of the database alone cannot make
-- codes. last_step is the last time step a code was accepted for, so a
-- code, once used, is refused for the rest of its validity. A secret is
-- written unconfirmed when enrolment begins and counts only once a code
-- made from it has been entered.
--
-- Recovery codes are kept as hashes, each usable once.
--
-- tenant_mfa_policy says whether owners and admins must use a second
-- factor: those who have not enrolled are taken to enrolment after they
-- sign in.
--
-- A session opened by a password whose account needs a second factor
-- (second_factor 'totp') or enrolment ('enrol') grants nothing else until
-- that step is done; the step done, the session gets a new token, which
-- announces the change to every process's credential cache.
--
-- The application role is granted these tables in grantApp (migrate.go).

-- +goose Up
CREATE TABLE auth.user_totp (
  tenant_id    uuid NOT NULL,
  user_id      uuid NOT NULL,
  secret_enc   bytea NOT NULL,
  confirmed_at timestamptz,
  last_step    bigint NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
SELECT tenants.enable_tenant_rls('auth.user_totp');

CREATE TABLE auth.recovery_codes (
  tenant_id  uuid NOT NULL,
  user_id    uuid NOT NULL,
  code_hash  bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at    timestamptz,
  PRIMARY KEY (tenant_id, user_id, code_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
);
SELECT tenants.enable_tenant_rls('auth.recovery_codes');

CREATE TABLE tenants.tenant_mfa_policy (
  tenant_id              uuid NOT NULL REFERENCES tenants.tenants (id) ON DELETE CASCADE,
  required_for_admins    boolean NOT NULL DEFAULT false,
  updated_at             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id)
);
SELECT tenants.enable_tenant_rls('tenants.tenant_mfa_policy');

ALTER TABLE auth.sessions
  ADD COLUMN second_factor text CHECK (second_factor IN ('totp', 'enrol'));

-- +goose Down
ALTER TABLE auth.sessions DROP COLUMN second_factor;
DROP TABLE tenants.tenant_mfa_policy;
DROP TABLE auth.recovery_codes;
DROP TABLE auth.user_totp;
