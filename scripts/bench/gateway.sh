#!/usr/bin/env bash
# The gateway benchmark, one command: scripts/bench/gateway.sh
#
# Requests per second and p99 latency (wrk, 2 threads, 64 connections, over
# HTTP) of, each against its yardstick:
#   - nginx proxy_pass (Debian's nginx in front of the application: the
#     guide's architecture without its per-request query) against `nself
#     serve` as the tenant-resolving gateway, an API key per tenant;
#   - a bare chi handler writing "ok" against GET /v1/tenant with an API key;
#   - the same bare handler against a tenant's landing page (the portal).
# The application behind both proxies is that bare handler
# (scripts/bench/baseline), reached directly too. A bare
# net/http/httputil.ReverseProxy to it (scripts/bench/bareproxy) is Go's
# own floor, measured with nginx and the gateway. The machine may be shared,
# so each pair runs interleaved (yardstick, subject, yardstick, subject...)
# for ROUNDS rounds, and the medians are compared; the load average is
# printed before every run.
#
# It counts the database transactions during the gateway's runs (from
# pg_stat_database) and says which tables they touched, and reports the
# server's resident memory at the end.
#
# Both proxies keep connections to the application alive and write one
# access log line per request to a file, in batches: the gateway every
# 50 ms, nginx with buffer= and flush=50ms.
#
# TENANTS (1000), DURATION of each run (10s), ROUNDS (3); PORT (18080) is
# the first of the five ports used, DB (nself_bench_gateway) the database
# the script creates and drops, so that two runs can share a machine.
# PPROF=ADDR serves the gateway's profiler there (nself serve --pprof).
# USAGE_FLUSH=DURATION sets --usage-flush: the meter writes the tenants'
# counts that often (10s by default), the only database writes while
# requests are served; a flush interval longer than the run shows that
# nothing else reaches the database. The memory with
# 100,000 tenants and keys cached is BenchmarkCachedMemory:
#   go test -run '^$' -bench CachedMemory -benchtime 1x ./internal/postgres/
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${DURATION:-10s}
tenants=${TENANTS:-1000}
rounds=${ROUNDS:-3}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
command -v nginx >/dev/null || apt-get install -y nginx-light >/dev/null
scripts/services.sh start postgres >/dev/null
eval "$(scripts/services.sh env)"

db=${DB:-nself_bench_gateway}
port=${PORT:-18080}
p_serve=$port p_app=$((port + 2)) p_nginx=$((port + 3)) p_bare=$((port + 4))
dir=/tmp/$db
mkdir -p "$dir"
# Each run's logs only: a file grown by earlier runs costs the disk more.
rm -f "$dir/access.log" "$dir/serve.log"
admin_base=${DATABASE_ADMIN_URL%/*}
# The sessions of a previous run's server may take a moment to end.
for _ in 1 2 3 4 5 6 7 8 9 10; do
	psql -q "$admin_base/postgres?sslmode=disable" -c "DROP DATABASE IF EXISTS $db" 2>/dev/null && break
	sleep 1
done
psql -q "$admin_base/postgres?sslmode=disable" -c "CREATE DATABASE $db"
export DATABASE_URL=${DATABASE_URL%/*}/$db?sslmode=disable
export DATABASE_ADMIN_URL=$admin_base/$db?sslmode=disable
export BASE_DOMAIN=localhost PUBLIC_SCHEME=http SESSION_SECRET=benchmark-session-secret-0123456789
export UPSTREAM_URL=http://127.0.0.1:$p_app/ UPSTREAM_PATHS=/api/

go build -o bin/nself ./cmd/nself
go build -o bin/baseline ./scripts/bench/baseline
go build -o bin/bareproxy ./scripts/bench/bareproxy
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
\copy (SELECT slug, key FROM bench_keys ORDER BY slug) TO '$dir/keys.txt' WITH (FORMAT text, DELIMITER ' ')
SQL
export KEYS=$dir/keys.txt

bin/baseline --addr 127.0.0.1:$p_app &
app=$!
bin/bareproxy --addr 127.0.0.1:$p_bare --upstream http://127.0.0.1:$p_app/ &
proxy=$!
# As deployed: the meter on, every setting at its default (the usage
# flush every 10 s, the mail outbox checked every second), one log line per
# request to a file.
bin/nself serve --addr 127.0.0.1:$p_serve ${PPROF:+--pprof "$PPROF"} ${USAGE_FLUSH:+--usage-flush "$USAGE_FLUSH"} >"$dir/serve.log" 2>&1 &
serve=$!
cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log $dir/access.log combined buffer=64k flush=50ms;
  upstream app { server 127.0.0.1:$p_app; keepalive 64; }
  server {
    listen 127.0.0.1:$p_nginx;
    location /api/ {
      proxy_pass http://app/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
CONF
nginx -c "$dir/nginx.conf"
trap 'kill $serve $app $proxy 2>/dev/null || true; nginx -c "$dir/nginx.conf" -s stop 2>/dev/null || true' EXIT
sleep 1

sql() { psql -tAq "$DATABASE_ADMIN_URL" -c "$1"; }
xacts() { sql "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'"; }
tables() {
	sql "SELECT relid::regclass, n_tup_ins + n_tup_upd + n_tup_del, coalesce(idx_scan, 0) + seq_scan,
	            autovacuum_count + autoanalyze_count
	     FROM pg_stat_all_tables WHERE schemaname NOT IN ('information_schema', 'pg_toast') ORDER BY 1"
}
results=$(mktemp)
# cpu PID...: the processes' user and system time so far, in clock ticks.
cpu() { for p in "$@"; do cat "/proc/$p/stat"; done | awk '{t += $14 + $15} END {print t}'; }
tick=$(getconf CLK_TCK)
# run NAME URL PIDS [env...]: one wrk run; its req/s, p99 (ms), the load
# average before it, and the CPU time the server's processes PIDS (a
# quoted list) spent per request (µs), appended to the results. The CPU
# time per request does not depend on what else the machine runs, as the
# requests per second do.
run() {
	local name=$1 url=$2 pids=$3
	shift 3
	local load out rps p99 n c0 c1 us
	load=$(cut -d' ' -f1 /proc/loadavg)
	# shellcheck disable=SC2086
	c0=$(cpu $pids)
	out=$(env "$@" wrk -t2 -c64 -d"$duration" --latency -s scripts/bench/keys.lua "$url")
	# shellcheck disable=SC2086
	c1=$(cpu $pids)
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; print v}' <<<"$out")
	us=$(awk -v d=$((c1 - c0)) -v n="$n" -v hz="$tick" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$p99" "$load" "$us" >>"$results"
	printf '  %-12s %9s req/s  p99 %8s ms  %6s µs CPU/request  (load %s)\n' "$name" "$rps" "$p99" "$us" "$load"
}
gateway=http://127.0.0.1:$p_serve/ nginx=http://127.0.0.1:$p_nginx/ bare=http://127.0.0.1:$p_app/ bareproxy=http://127.0.0.1:$p_bare/
nginx_pids="$(cat "$dir/nginx.pid") $(pgrep -P "$(cat "$dir/nginx.pid")" | tr '\n' ' ')"

echo "== warm-up (every tenant and key cached)"
wrk -t2 -c64 -d"$(( tenants / 2000 + 5 ))s" -s scripts/bench/keys.lua "$gateway" >/dev/null
PATH_=/v1/tenant wrk -t2 -c64 -d5s -s scripts/bench/keys.lua "$gateway" >/dev/null
PATH_=/ wrk -t2 -c64 -d5s -s scripts/bench/keys.lua "$gateway" >/dev/null
echo "   nself serve after warm-up: $(grep -E 'VmRSS|VmHWM' /proc/$serve/status | tr -s ' \n\t' ' ')"
# PostgreSQL's own upkeep (autovacuum, autoanalyze) would count in the
# database's transactions too: it is off for the database's tables while
# the comparison runs, so that the count is the servers' alone.
autovacuum() {
	psql -q "$DATABASE_ADMIN_URL" -c "DO \$\$ DECLARE r record; BEGIN
	  FOR r IN SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') LOOP
	    EXECUTE format('ALTER TABLE %I.%I SET (autovacuum_enabled = $1)', r.schemaname, r.tablename);
	  END LOOP; END \$\$"
}
autovacuum false
# An idle backend reports its counts to pg_stat_database up to 10 s late.
sleep 11
before=$(xacts)
tables >"$dir/tables.before"
start=$(date +%s)
echo "== gateway against nginx proxy_pass ($tenants tenants, $rounds rounds of $duration)"
for _ in $(seq "$rounds"); do
	run nginx "$nginx" "$nginx_pids" HOSTED=0
	run gateway "$gateway" "$serve"
	run bareproxy "$bareproxy" "$proxy" HOSTED=0
done
gateway_secs=$(( $(date +%s) - start ))
sleep 11
after=$(xacts)
tables >"$dir/tables.after"
autovacuum true
# Less the script's own two: the reading of the count before and of the
# tables' counts.
echo "== database transactions during the gateway comparison (${gateway_secs} s): $((after - before - 2))"
echo "   rows written and index or table scans, by table, in that time (catalogs left out):"
awk -F'|' 'NR == FNR {w[$1] = $2; r[$1] = $3; next}
	$1 !~ /^pg_/ && $2 - w[$1] + $3 - r[$1] > 0 {printf "   %-36s %8d rows written %8d scans\n", $1, $2 - w[$1], $3 - r[$1]}' \
	"$dir/tables.before" "$dir/tables.after"
echo "   autovacuum and autoanalyze runs (PostgreSQL's own, counted above too): $(awk -F'|' 'NR == FNR {a[$1] = $4; next} {n += $4 - a[$1]} END {print n + 0}' "$dir/tables.before" "$dir/tables.after")"

echo "== GET /v1/tenant with an API key against the bare chi handler"
for _ in $(seq "$rounds"); do
	run bare "$bare" "$app" HOSTED=0 PATH_=/
	run v1-tenant "$gateway" "$serve" PATH_=/v1/tenant
done
echo "== a tenant's landing page (portal) against the bare chi handler"
for _ in $(seq "$rounds"); do
	run bare-portal "$bare" "$app" HOSTED=0 PATH_=/
	run portal "$gateway" "$serve" PATH_=/
done
echo "   nself serve at the end: $(grep -E 'VmRSS|VmHWM' /proc/$serve/status | tr -s ' \n\t' ' ')"

median() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n {print $c}' "$results" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
loads=$(cut -f4 "$results" | sort -g | awk '{v[NR] = $1} END {printf "%s (%s–%s)", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR]}')
echo
echo "== medians of $rounds rounds of $duration; load average (1 min) at the runs: $loads"
printf '  %-14s %10s %10s %16s\n' "" "req/s" "p99 ms" "µs CPU/request"
for n in nginx gateway bareproxy bare v1-tenant bare-portal portal; do
	printf '  %-14s %10s %10s %16s\n' "$n" "$(median $n 2)" "$(median $n 3)" "$(median $n 5)"
done
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = (op == ">=") ? v >= t : v <= t; printf "%.2f (target %s %s: %s)", v, op, t, ok ? "met" : "not met"}'; }
echo "  gateway / nginx req/s:       $(verdict "$(awk -v a="$(median gateway 2)" -v b="$(median nginx 2)" 'BEGIN {print a / b}')" 0.60 '>=')"
echo "  gateway / nginx p99:         $(verdict "$(awk -v a="$(median gateway 3)" -v b="$(median nginx 3)" 'BEGIN {print a / b}')" 2 '<=')"
echo "  /v1/tenant / bare req/s:     $(verdict "$(awk -v a="$(median v1-tenant 2)" -v b="$(median bare 2)" 'BEGIN {print a / b}')" 0.50 '>=')"
echo "  portal page / bare req/s:    $(awk -v a="$(median portal 2)" -v b="$(median bare-portal 2)" 'BEGIN {printf "%.2f (about half before)", a / b}')"
echo "  CPU per request, subject / yardstick: gateway / nginx $(awk -v a="$(median gateway 5)" -v b="$(median nginx 5)" 'BEGIN {printf "%.2f", a / b}'),"\
	"/v1/tenant / bare $(awk -v a="$(median v1-tenant 5)" -v b="$(median bare 5)" 'BEGIN {printf "%.2f", a / b}'),"\
	"portal / bare $(awk -v a="$(median portal 5)" -v b="$(median bare-portal 5)" 'BEGIN {printf "%.2f", a / b}')", \
	"bare ReverseProxy / nginx $(awk -v a="$(median bareproxy 5)" -v b="$(median nginx 5)" 'BEGIN {printf "%.2f", a / b}')"
