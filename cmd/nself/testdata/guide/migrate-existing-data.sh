#!/bin/bash
# The product guide's "Migrating existing data" path, step by step as the
# guide writes it. psql reaches the database through the PG* variables, as
# the schema owner; APP_PGUSER and APP_PGPASSWORD name the application role.
set -e
# Step 1: Backup existing data
nself db backup --output pre-migration-backup.sql
# Step 2: Initialize multi-tenancy
nself tenant init
# Step 3: Create default tenant
nself tenant create "Default" --slug default
# Step 4: Migrate existing data
DEFAULT_TENANT_ID=$(psql -t -c "SELECT id FROM tenants.tenants WHERE slug='default'" | tr -d ' ')
psql <<EOF
-- Add tenant_id to existing tables
ALTER TABLE users ADD COLUMN tenant_id UUID;
ALTER TABLE products ADD COLUMN tenant_id UUID;
ALTER TABLE orders ADD COLUMN tenant_id UUID;
-- Backfill with default tenant
UPDATE users SET tenant_id = '$DEFAULT_TENANT_ID' WHERE tenant_id IS NULL;
UPDATE products SET tenant_id = '$DEFAULT_TENANT_ID' WHERE tenant_id IS NULL;
UPDATE orders SET tenant_id = '$DEFAULT_TENANT_ID' WHERE tenant_id IS NULL;
-- Make NOT NULL after backfill
ALTER TABLE users ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE products ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE orders ALTER COLUMN tenant_id SET NOT NULL;
-- Add indexes
CREATE INDEX idx_users_tenant ON users(tenant_id);
CREATE INDEX idx_products_tenant ON products(tenant_id);
CREATE INDEX idx_orders_tenant ON orders(tenant_id);
-- Enable RLS
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE products ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
EOF
# The isolation script compares two tenants with users of their own.
nself tenant create "Tenant A" --slug tenant-a --owner ann@tenant-a.example
nself tenant create "Tenant B" --slug tenant-b --owner bob@tenant-b.example
# Step 5: Test isolation
./test-tenant-isolation.sh
