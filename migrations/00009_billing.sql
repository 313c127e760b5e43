-- Billing: usage counters that make a quota check O(1), the payments Stripe
-- reports, and the Stripe events received, each processed once.

-- +goose Up

-- A Stripe price sells one plan, so a subscription names its plan.
CREATE UNIQUE INDEX billing_plans_stripe_price ON public.billing_plans (stripe_price_id) WHERE stripe_price_id IS NOT NULL;

-- The latest subscription state applied to a tenant, and the time of the
-- Stripe event it came from: an older event arriving later never rolls it
-- back.
ALTER TABLE tenants.tenants
  ADD COLUMN subscription_event_at timestamptz,
  ADD COLUMN subscription_period_end timestamptz;
CREATE INDEX tenants_subscription_status ON tenants.tenants (subscription_status) WHERE subscription_status IS NOT NULL;

-- One row per tenant, month and meter. used is what was consumed (API
-- requests; GB-hours of storage; compute hours; active users). For API
-- requests, reserved is what server processes were granted in blocks: it
-- never exceeds the plan's limit, so no process admits a request beyond
-- it, and last_grant is the size of the latest block. gauge is the latest
-- instantaneous reading (bytes stored).
CREATE TABLE public.billing_usage_counters (
  tenant_id    uuid NOT NULL REFERENCES tenants.tenants (id),
  period       date NOT NULL CHECK (extract(day FROM period) = 1),
  service_name text NOT NULL CHECK (service_name IN ('api_requests', 'storage', 'compute_hours', 'active_users')),
  used         numeric NOT NULL DEFAULT 0 CHECK (used >= 0),
  reserved     bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  last_grant   bigint NOT NULL DEFAULT 0,
  gauge        numeric,
  gauge_at     timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, period, service_name)
);
SELECT tenants.enable_tenant_rls('public.billing_usage_counters');

-- Consumption per day, for the billing page's chart.
CREATE TABLE public.billing_usage_daily (
  tenant_id    uuid NOT NULL REFERENCES tenants.tenants (id),
  day          date NOT NULL,
  service_name text NOT NULL CHECK (service_name IN ('api_requests', 'storage', 'compute_hours', 'active_users')),
  quantity     numeric NOT NULL DEFAULT 0 CHECK (quantity >= 0),
  PRIMARY KEY (tenant_id, day, service_name)
);
SELECT tenants.enable_tenant_rls('public.billing_usage_daily');

-- Invoices Stripe reported paid or failed.
CREATE TABLE public.billing_payments (
  tenant_id          uuid NOT NULL REFERENCES tenants.tenants (id),
  id                 uuid NOT NULL DEFAULT gen_random_uuid(),
  stripe_invoice_id  text NOT NULL,
  status             text NOT NULL CHECK (status IN ('paid', 'failed')),
  amount_cents       bigint NOT NULL CHECK (amount_cents >= 0),
  currency           text NOT NULL,
  invoice_url        text NOT NULL DEFAULT '',
  period_start       timestamptz,
  period_end         timestamptz,
  occurred_at        timestamptz NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, stripe_invoice_id)
);
CREATE INDEX billing_payments_recent ON public.billing_payments (tenant_id, occurred_at DESC);
SELECT tenants.enable_tenant_rls('public.billing_payments');

-- Every Stripe event received, with what processing it did. They are the
-- platform's records: the owner keeps them; the application role has no
-- access. subject_tenant names the tenant an event concerned, once known
-- (not tenant_id: the rows are not a tenant's own).
CREATE TABLE public.billing_stripe_events (
  id             text PRIMARY KEY,
  type           text NOT NULL,
  created        timestamptz NOT NULL,
  payload        jsonb NOT NULL,
  status         text NOT NULL CHECK (status IN ('received', 'processed', 'ignored', 'failed')),
  result         text NOT NULL DEFAULT '',
  subject_tenant uuid,
  attempts       integer NOT NULL DEFAULT 0,
  received_at    timestamptz NOT NULL DEFAULT now(),
  processed_at   timestamptz
);
CREATE INDEX billing_stripe_events_recent ON public.billing_stripe_events (received_at DESC);
CREATE INDEX billing_stripe_events_failed ON public.billing_stripe_events (status) WHERE status = 'failed';

-- The platform reads every tenant's counters and payments for the console
-- and the reports.
CREATE POLICY platform_read ON public.billing_usage_counters FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY platform_read ON public.billing_payments FOR SELECT TO CURRENT_USER USING (true);

-- +goose Down
DROP TABLE public.billing_stripe_events;
DROP INDEX public.billing_plans_stripe_price;
DROP TABLE public.billing_payments;
DROP TABLE public.billing_usage_daily;
DROP TABLE public.billing_usage_counters;
ALTER TABLE tenants.tenants DROP COLUMN subscription_period_end, DROP COLUMN subscription_event_at;
