#!/usr/bin/env bash
# The gateway benchmark: requests per second and latency of an application
# reached directly, through `nself serve` as the tenant-resolving gateway
# (an API key per tenant, over 1,000 tenants), and through Debian's nginx
# proxy_pass (the guide's architecture without its per-request query); then
# GET /v1/tenant with the same keys against the bare handler. The
# application is the bare chi handler that writes "ok" (scripts/bench/baseline).
# It counts the database transactions during the gateway's run, and reports
# the server's memory once every tenant and key is cached.
# Run from the repository root: scripts/bench/gateway.sh
# (TENANTS=100000 DURATION=10s for the memory with 100,000 tenants and keys).
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${DURATION:-20s}
tenants=${TENANTS:-1000}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
command -v nginx >/dev/null || apt-get install -y nginx-light >/dev/null
scripts/services.sh start postgres >/dev/null
eval "$(scripts/services.sh env)"

db=nself_bench_gateway
admin_base=${DATABASE_ADMIN_URL%/*}
psql -q "$admin_base/postgres?sslmode=disable" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
export DATABASE_URL=${DATABASE_URL%/*}/$db?sslmode=disable
export DATABASE_ADMIN_URL=$admin_base/$db?sslmode=disable
export BASE_DOMAIN=localhost PUBLIC_SCHEME=http SESSION_SECRET=benchmark-session-secret-0123456789
export UPSTREAM_URL=http://127.0.0.1:18082/ UPSTREAM_PATHS=/api/

go build -o bin/nself ./cmd/nself
go build -o bin/baseline ./scripts/bench/baseline
bin/nself db migrate >/dev/null
echo "creating $tenants tenants with an API key each..."
# Keys as the CLI makes them: nsk_<tenant id>_<secret>, stored as SHA-256.
psql -q "$DATABASE_ADMIN_URL" <<SQL
INSERT INTO tenants.tenants (slug, name, plan)
SELECT format('bench-%s', lpad(g::text, 6, '0')), format('Bench Tenant %s', g), 'enterprise'
FROM generate_series(0, $tenants - 1) g;
CREATE TEMP TABLE bench_keys AS
SELECT id AS tenant_id, slug,
       'nsk_' || replace(id::text, '-', '') || '_' || md5(random()::text) || md5(random()::text) AS key
FROM tenants.tenants WHERE slug LIKE 'bench-%';
DO \$\$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM bench_keys LOOP
    PERFORM tenants.set_context(r.tenant_id, NULL);
    INSERT INTO auth.api_keys (tenant_id, name, prefix, key_hash)
    VALUES (r.tenant_id, 'bench', 'nsk_' || left(split_part(r.key, '_', 3), 12), sha256(convert_to(r.key, 'UTF8')));
  END LOOP;
END
\$\$;
\copy (SELECT slug, key FROM bench_keys ORDER BY slug) TO '/tmp/nself-bench-keys.txt' WITH (FORMAT text, DELIMITER ' ')
SQL
export KEYS=/tmp/nself-bench-keys.txt

bin/baseline --addr 127.0.0.1:18082 &
app=$!
bin/nself serve --addr 127.0.0.1:18080 >/tmp/nself-bench-serve.log 2>&1 &
serve=$!
mkdir -p /tmp/nself-bench-nginx
cat >/tmp/nself-bench-nginx/nginx.conf <<CONF
worker_processes auto;
pid /tmp/nself-bench-nginx/nginx.pid;
error_log /tmp/nself-bench-nginx/error.log;
events { worker_connections 1024; }
http {
  access_log /tmp/nself-bench-nginx/access.log;
  upstream app { server 127.0.0.1:18082; keepalive 64; }
  server {
    listen 127.0.0.1:18083;
    location /api/ {
      proxy_pass http://app/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF
nginx -c /tmp/nself-bench-nginx/nginx.conf
trap 'kill $serve $app 2>/dev/null || true; nginx -c /tmp/nself-bench-nginx/nginx.conf -s stop 2>/dev/null || true' EXIT
sleep 1

xacts() { psql -tAq "$DATABASE_ADMIN_URL" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'"; }
run() { wrk -t2 -c64 -d"$duration" --latency -s scripts/bench/keys.lua "$@"; }

echo "== warm-up (every tenant and key cached)"
warm=$(( tenants / 2000 + 5 ))
wrk -t2 -c64 -d"${warm}s" -s scripts/bench/keys.lua http://127.0.0.1:18080/ >/dev/null
PATH_=/v1/tenant wrk -t2 -c64 -d5s -s scripts/bench/keys.lua http://127.0.0.1:18080/ >/dev/null
echo "== nself serve after warm-up: $(grep -E 'VmRSS|VmHWM' /proc/$serve/status | tr -s ' \n' ' ')"
sleep 11
before=$(xacts)
echo "== gateway: nself serve, an API key per tenant, $tenants tenants"
run http://127.0.0.1:18080/
sleep 11
after=$(xacts)
echo "== database transactions during the gateway run: $((after - before - 1))"
echo "== application directly"
HOSTED=0 PATH_=/ run http://127.0.0.1:18082/
echo "== nginx proxy_pass"
HOSTED=0 run http://127.0.0.1:18083/
echo "== GET /v1/tenant with an API key, $tenants tenants"
PATH_=/v1/tenant run http://127.0.0.1:18080/
echo "== bare chi handler (the application above, same script)"
HOSTED=0 PATH_=/ run http://127.0.0.1:18082/
echo "== nself serve at the end: $(grep -E 'VmRSS|VmHWM' /proc/$serve/status | tr -s ' \n' ' ')"
