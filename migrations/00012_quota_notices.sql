-- When the owners of a tenant were told that its API requests reached 80%
-- and 100% of the month's limit: once a month each, however often blocks
-- granted to server processes are handed back and granted again.

-- +goose Up
ALTER TABLE public.billing_usage_counters
  ADD COLUMN notified_80_at timestamptz,
  ADD COLUMN notified_100_at timestamptz;

-- +goose Down
ALTER TABLE public.billing_usage_counters DROP COLUMN notified_100_at, DROP COLUMN notified_80_at;
