-- An operator's own table, with a serial key: the application role is
-- granted the sequence behind it, so it can insert rows.
CREATE TABLE support_tickets (
  tenant_id  uuid NOT NULL DEFAULT tenants.current_tenant_id(),
  id         bigserial,
  invoice_id uuid,
  subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
  body       text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id)
);
