-- What deleted tenants left in object storage: their bucket (logos) and the
-- archives of their exports. Deleting a tenant records it here in the same
-- transaction; its objects are removed after the commit, never inside the
-- transaction, and the row goes once they are gone. A removal that fails
-- (the store is down) stays, and `nself serve` tries it again until it
-- succeeds; `nself tenant doctor` reports what is left.
--
-- The column is not named tenant_id on purpose: this is the platform's
-- record about a tenant whose rows are gone, not a tenant table (which the
-- catalog-driven delete, export and isolation checks would take it for).
-- Only the platform path uses it; the application role is granted nothing.

-- +goose Up
CREATE TABLE tenants.storage_removals (
  deleted_tenant  uuid PRIMARY KEY,
  requested_at    timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  last_attempt_at timestamptz,
  last_error      text CHECK (length(last_error) <= 2000)
);

-- +goose Down
DROP TABLE tenants.storage_removals;
