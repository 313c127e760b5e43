-- A tenant's own versions of the platform's email templates. A template
-- without a row here is sent as the default embedded in the binary.

-- +goose Up
CREATE TABLE tenants.tenant_email_templates (
  tenant_id  uuid NOT NULL REFERENCES tenants.tenants (id),
  name       text NOT NULL CHECK (name ~ '^[a-z][a-z_]{0,49}$'),
  subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
  html       text NOT NULL CHECK (octet_length(html) <= 262144),
  text       text NOT NULL CHECK (octet_length(text) <= 262144),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);
SELECT tenants.enable_tenant_rls('tenants.tenant_email_templates');

-- +goose Down
DROP TABLE tenants.tenant_email_templates;
