#!/usr/bin/env bash
# The portal benchmark: requests per second and p99 latency of tenants'
# branded landing pages over 1,000 tenants, against a bare chi handler that
# writes "ok", with the same load tool (wrk, 64 connections, 2 threads, the
# same Lua script sending the same requests) in the same run. It also counts the database transactions the portal ran
# during its load, which should be none: tenants come from the in-process
# cache. Run from the repository root: scripts/bench/portal.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${DURATION:-20s}
tenants=${TENANTS:-1000}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
scripts/services.sh start postgres >/dev/null
eval "$(scripts/services.sh env)"

db=nself_bench_portal
admin_base=${DATABASE_ADMIN_URL%/*}
psql -q "$admin_base/postgres?sslmode=disable" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
export DATABASE_URL=${DATABASE_URL%/*}/$db?sslmode=disable
export DATABASE_ADMIN_URL=$admin_base/$db?sslmode=disable
export BASE_DOMAIN=localhost PUBLIC_SCHEME=http SESSION_SECRET=benchmark-session-secret-0123456789

go build -o bin/nself ./cmd/nself
go build -o bin/baseline ./scripts/bench/baseline
bin/nself db migrate >/dev/null
echo "creating $tenants tenants..."
psql -q "$DATABASE_ADMIN_URL" -c "
  INSERT INTO tenants.tenants (slug, name)
  SELECT format('bench-%s', lpad(g::text, 4, '0')), format('Bench Tenant %s', g)
  FROM generate_series(0, $tenants - 1) g"

bin/nself serve --addr 127.0.0.1:18080 >/tmp/nself-bench-serve.log 2>&1 &
serve=$!
bin/baseline --addr 127.0.0.1:18081 &
base=$!
trap 'kill $serve $base 2>/dev/null || true' EXIT
sleep 1

xacts() { psql -tAq "$DATABASE_ADMIN_URL" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'"; }

echo "== warm-up (fills the tenant cache)"
TENANTS=$tenants wrk -t2 -c64 -d5s -s scripts/bench/hosts.lua http://127.0.0.1:18080/ >/dev/null
# An idle backend reports its counts to pg_stat_database up to 10 s late:
# wait, so the warm-up's lookups are not counted in the run.
sleep 11
before=$(xacts)
echo "== portal: branded landing page over $tenants tenants"
TENANTS=$tenants wrk -t2 -c64 -d"$duration" --latency -s scripts/bench/hosts.lua http://127.0.0.1:18080/
sleep 11
after=$(xacts)
echo "== baseline: bare chi handler writing ok (same requests, same script)"
TENANTS=$tenants wrk -t2 -c64 -d"$duration" --latency -s scripts/bench/hosts.lua http://127.0.0.1:18081/
# One of them is the psql that reads the count.
echo "== database transactions during the portal run: $((after - before - 1))"
