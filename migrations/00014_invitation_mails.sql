-- Each invitation mail sent (new or resent), for the sending limits
-- (tenancy.InvitationLimits): a tenant's mails in the last hour, an
-- address's in the last day. Kept in the database so that the limits hold
-- across server processes; rows older than the longest window are removed
-- as new ones are written.

-- +goose Up
CREATE TABLE tenants.tenant_invitation_mails (
  tenant_id     uuid NOT NULL REFERENCES tenants.tenants (id),
  invitation_id uuid NOT NULL,
  email_lower   text NOT NULL CHECK (length(email_lower) <= 254),
  sent_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, sent_at, invitation_id),
  FOREIGN KEY (tenant_id, invitation_id) REFERENCES tenants.tenant_invitations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX tenant_invitation_mails_address ON tenants.tenant_invitation_mails (tenant_id, email_lower, sent_at);
SELECT tenants.enable_tenant_rls('tenants.tenant_invitation_mails');

-- +goose Down
DROP TABLE tenants.tenant_invitation_mails;
