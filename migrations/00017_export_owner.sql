-- Which server process builds each running export. A process holds the
-- session advisory lock (1853056376, instance) for as long as it lives, so
-- a running job whose lock nobody holds was left by a process that died:
-- any process may then fail it at once, and the owner may ask again,
-- without waiting for its progress to go stale. Jobs written before this
-- column (no instance) are judged by their progress only.
--
-- Finding those jobs across tenants is the platform's work: the owner may
-- read every tenant's jobs (it still writes each in that tenant's context).

-- +goose Up
ALTER TABLE tenants.tenant_exports ADD COLUMN instance integer CHECK (instance > 0);
CREATE POLICY platform_read ON tenants.tenant_exports FOR SELECT TO CURRENT_USER USING (true);

-- +goose Down
DROP POLICY platform_read ON tenants.tenant_exports;
ALTER TABLE tenants.tenant_exports DROP COLUMN instance;
