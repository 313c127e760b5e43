#!/bin/bash
# test-tenant-isolation.sh: the product guide's script, with two changes.
# - PostgreSQL 15 refuses the guide's setting name
#   hasura.user.x-hasura-tenant-id: the tenant is set in "hasura.user", as
#   JSON, the way Hasura sets it: with SET LOCAL in a transaction, which
#   Citus forwards to its workers (a session's SET it does not).
# - The checks run as the application role (APP_PGUSER, APP_PGPASSWORD), the
#   role Hasura and the application use; the schema owner, which looks the
#   tenants up, reads every tenant's users on the platform path.
# Run psql quietly (PSQLRC holding \set QUIET on) so that SET prints no
# status line into the count.
echo "Testing tenant data isolation..."
TENANT_A=$(psql -t -c "SELECT id FROM tenants.tenants WHERE slug='tenant-a'" | tr -d ' ')
TENANT_B=$(psql -t -c "SELECT id FROM tenants.tenants WHERE slug='tenant-b'" | tr -d ' ')
# Test 1: Tenant A cannot see Tenant B users
COUNT=$(PGUSER=$APP_PGUSER PGPASSWORD=$APP_PGPASSWORD psql -t <<< "
BEGIN;
SET LOCAL \"hasura.user\" = '{\"x-hasura-tenant-id\": \"$TENANT_A\"}';
SELECT COUNT(*) FROM auth.users WHERE tenant_id = '$TENANT_B';
COMMIT;
" | tr -d ' ')
if [ "$COUNT" -eq "0" ]; then
echo "✓ PASS: Tenant A cannot see Tenant B users"
else
echo "✗ FAIL: Tenant isolation breach!"
exit 1
fi
# Test 2: Tenant A can see own users
COUNT=$(PGUSER=$APP_PGUSER PGPASSWORD=$APP_PGPASSWORD psql -t <<< "
BEGIN;
SET LOCAL \"hasura.user\" = '{\"x-hasura-tenant-id\": \"$TENANT_A\"}';
SELECT COUNT(*) FROM auth.users WHERE tenant_id = '$TENANT_A';
COMMIT;
" | tr -d ' ')
if [ "$COUNT" -gt "0" ]; then
echo "✓ PASS: Tenant A can see own users"
else
echo "✗ FAIL: Tenant cannot see own users"
exit 1
fi
echo "✓ All tenant isolation tests passed"
