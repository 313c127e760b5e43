-- The mail outbox: every mail the platform sends is first a row here,
-- written in the transaction of the change that causes it (an invitation,
-- a reset link, a new account, a failed payment, a quota notice), so that
-- the change and its mail commit together or not at all. A sender in each
-- server process delivers the rows: it claims a few in a short transaction
-- (FOR UPDATE SKIP LOCKED, so that no two processes take the same row),
-- sends outside any transaction, then marks them sent or schedules the next
-- attempt. A claim pushes next_attempt_at past the time a send can take, so
-- the claim of a sender that died expires by itself.
--
-- vars holds the recipient's own values (name, inviter, role) and link the
-- path of the mail's button on the tenant's portal, which for an invitation
-- or a reset is a one-time secret: both are cleared once the mail is sent.
-- The mail is composed from the tenant's template and look when it is sent.
--
-- Finding the due rows across tenants is the platform's work: the owner may
-- read every tenant's rows; claims and marks are written in the tenant's
-- context like any tenant data.

-- +goose Up
CREATE TABLE tenants.tenant_mail_outbox (
  tenant_id       uuid NOT NULL REFERENCES tenants.tenants (id),
  id              uuid NOT NULL DEFAULT gen_random_uuid(),
  template        text NOT NULL CHECK (length(template) BETWEEN 1 AND 50),
  recipient       text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
  vars            jsonb NOT NULL DEFAULT '{}',
  link            text NOT NULL DEFAULT '' CHECK (length(link) <= 2000),
  invitation_id   uuid,
  created_at      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  claim           uuid,
  subject         text NOT NULL DEFAULT '',
  last_error      text NOT NULL DEFAULT '',
  sent_at         timestamptz,
  failed_at       timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, invitation_id) REFERENCES tenants.tenant_invitations (tenant_id, id) ON DELETE CASCADE
);
-- The sender's question, every second: which mail is due.
CREATE INDEX tenant_mail_outbox_due ON tenants.tenant_mail_outbox (next_attempt_at)
  WHERE sent_at IS NULL AND failed_at IS NULL;
-- The members page's: how each pending invitation's latest mail fared.
CREATE INDEX tenant_mail_outbox_invitation ON tenants.tenant_mail_outbox (tenant_id, invitation_id, created_at)
  WHERE invitation_id IS NOT NULL;
SELECT tenants.enable_tenant_rls('tenants.tenant_mail_outbox');
CREATE POLICY platform_read ON tenants.tenant_mail_outbox FOR SELECT TO CURRENT_USER USING (true);

-- +goose Down
DROP TABLE tenants.tenant_mail_outbox;
