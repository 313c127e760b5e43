-- What an API key may do: read only, or read and write; which surfaces it
-- reaches (the tenant API at /v1, the gateway to the tenant's
-- application); until when. Keys made before keep what they had: read and
-- write, both surfaces, no expiry. The address of the last use is kept
-- beside its time.

-- +goose Up
ALTER TABLE auth.api_keys
  ADD COLUMN read_only    boolean NOT NULL DEFAULT false,
  ADD COLUMN api_access   boolean NOT NULL DEFAULT true,
  ADD COLUMN gateway_access boolean NOT NULL DEFAULT true,
  ADD COLUMN expires_at   timestamptz,
  ADD COLUMN last_used_ip inet,
  ADD CONSTRAINT api_keys_reaches_something CHECK (api_access OR gateway_access);

-- +goose Down
ALTER TABLE auth.api_keys
  DROP CONSTRAINT api_keys_reaches_something,
  DROP COLUMN last_used_ip,
  DROP COLUMN expires_at,
  DROP COLUMN gateway_access,
  DROP COLUMN api_access,
  DROP COLUMN read_only;
