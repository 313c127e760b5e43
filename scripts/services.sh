#!/usr/bin/env bash
# Local services for nself development and tests: PostgreSQL 15, MinIO,
# stripe-mock and mailpit, plus Chromium for the browser tests. Each is
# installed when missing and listens on 127.0.0.1 only.
#
#   scripts/services.sh start [SERVICE...]  install if needed, start, wait until ready, print settings
#   scripts/services.sh stop [SERVICE...]   stop (nothing to do when already stopped)
#   scripts/services.sh status              one line per service
#   scripts/services.sh env                 settings as export lines: eval "$(scripts/services.sh env)"
#
# SERVICE is one of: postgres minio stripe mailpit pebble oidc chromium (none given: all),
# or citus, which only starts when named.
# "chromium" only makes sure Debian's chromium package is installed.
# "citus" is a distributed PostgreSQL (a coordinator and two workers, see
# the Citus section below); `env citus` prints the settings with the
# database URLs pointing at its coordinator.
#
# Everything the services need (built tools, data, logs, pid files) lives
# outside the repository in NSELF_STATE_DIR, by default
# ${XDG_CACHE_HOME:-$HOME/.cache}/nself:
#   bin/            tools built with go install, reused on later runs
#   data/<service>  service data
#   log/<service>.log
#   run/            pid files and the PostgreSQL socket folder
#
# Progress goes to stderr; stdout carries only the settings, so
# eval "$(scripts/services.sh start)" works too.
set -euo pipefail

readonly SERVICES=(postgres minio stripe mailpit pebble oidc chromium)
# Started only when named: it is a build and three servers most work does
# not need.
readonly OPTIONAL_SERVICES=(citus)

# Pinned versions, so every machine runs the same servers. MinIO has no
# tagged Go module releases: this pseudo-version is the commit `@latest`
# resolved to, and it builds with the project's Go (1.26).
readonly MINIO_MODULE=github.com/minio/minio
readonly MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
readonly STRIPE_MOCK_MODULE=github.com/stripe/stripe-mock
readonly STRIPE_MOCK_VERSION=v0.203.0
readonly MAILPIT_MODULE=github.com/axllent/mailpit
readonly MAILPIT_VERSION=v1.33.1
readonly PEBBLE_MODULE=github.com/letsencrypt/pebble/v2/cmd/pebble
readonly PEBBLE_VERSION=v2.10.3

readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly PG_PORT=55432
readonly MINIO_PORT=59000 MINIO_CONSOLE_PORT=59001
readonly MINIO_USER=nselfminio MINIO_PASSWORD=nselfminiosecret
readonly STRIPE_HTTP_PORT=12111 STRIPE_HTTPS_PORT=12112
readonly MAILPIT_HTTP_PORT=58025 MAILPIT_SMTP_PORT=51025
readonly PEBBLE_PORT=14000 PEBBLE_MANAGEMENT_PORT=15000
readonly CHROMIUM=/usr/bin/chromium
readonly CITUS_PORT=55440 CITUS_WORKER_PORTS=(55441 55442)
readonly CITUS_VERSION=13.2.2

# How long start waits for a service to answer before giving up.
readonly READY_TIMEOUT=${NSELF_SERVICE_TIMEOUT:-30}

# CI runners do not always set HOME.
HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
STATE_DIR=${NSELF_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nself}
# Absolute, because services and the postgres user run from other folders.
[[ $STATE_DIR == /* ]] || STATE_DIR=$PWD/$STATE_DIR
readonly STATE_DIR
readonly BIN_DIR=$STATE_DIR/bin DATA_DIR=$STATE_DIR/data LOG_DIR=$STATE_DIR/log RUN_DIR=$STATE_DIR/run

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------- messages

say() { printf 'services: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# One line naming the service, then the end of its log, then exit.
fail_service() {
	local svc=$1 msg=$2 log=${3:-$LOG_DIR/$1.log}
	say "$svc: $msg (log: $log)"
	if [[ -r $log ]]; then tail -n 20 "$log" >&2; fi
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: $0 start [SERVICE...] | stop [SERVICE...] | status [SERVICE...] | env [citus]
SERVICE: ${SERVICES[*]} (none given: all), or ${OPTIONAL_SERVICES[*]} (only when named)
EOF
}

# ---------------------------------------------------------------- installing

APT_UPDATED=false

# apt-get update runs once per invocation, right before the first install,
# so a fresh machine gets current package lists and a warm one skips it.
apt_install() {
	local log=$LOG_DIR/apt.log
	[[ $EUID -eq 0 ]] || die "installing $* needs root (apt-get); run as root or install it yourself"
	mkdir -p "$LOG_DIR"
	if ! $APT_UPDATED; then
		say "apt-get update"
		apt-get update >>"$log" 2>&1 || fail_service apt "apt-get update failed" "$log"
		APT_UPDATED=true
	fi
	say "apt-get install $*"
	apt-get install -y "$@" >>"$log" 2>&1 || fail_service apt "apt-get install $* failed" "$log"
}

# Prints the go command, or fails when there is none.
go_path() {
	command -v go && return 0
	[[ -x /usr/local/go/bin/go ]] && echo /usr/local/go/bin/go
}

# True when bin exists and was built from module@version; a pin change
# therefore rebuilds. Without Go at hand the existing binary is trusted.
tool_is_current() {
	local bin=$1 module=$2 version=$3 go
	[[ -x $bin ]] || return 1
	go=$(go_path) || return 0
	"$go" version -m "$bin" 2>/dev/null |
		awk -v m="$module" -v v="$version" '$1 == "mod" && $2 == m && $3 == v { ok = 1 } END { exit !ok }'
}

# Builds module@version into BIN_DIR unless it is already there.
ensure_go_tool() {
	local svc=$1 name=$2 module=$3 version=$4 go
	local log=$LOG_DIR/$svc-build.log
	tool_is_current "$BIN_DIR/$name" "$module" "$version" && return 0
	go=$(go_path) || die "$svc: Go is needed to build $module@$version; install Go 1.26 or put it on PATH"
	# The Go module proxy is reached over HTTPS; minimal images lack the CA bundle.
	[[ -r /etc/ssl/certs/ca-certificates.crt ]] || apt_install ca-certificates
	mkdir -p "$BIN_DIR" "$LOG_DIR"
	say "$svc: building $name $version with go install (once; later runs reuse $BIN_DIR/$name)"
	# Run from the state folder so a go.work or go.mod around the caller's
	# folder plays no part.
	if ! (cd "$STATE_DIR" && GOBIN=$BIN_DIR "$go" install "$module@$version") >"$log" 2>&1; then
		fail_service "$svc" "go install $module@$version failed" "$log"
	fi
}

# ---------------------------------------------------------------- processes

pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }

# Prints the pid from the service's pid file when that process is alive and
# still runs bin: after a reboot the pid may belong to something else.
service_pid() {
	local svc=$1 bin=$2 file pid
	file=$(pid_file "$svc")
	[[ -r $file ]] || return 1
	read -r pid <"$file" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# A process that exited but was not yet reaped has an empty cmdline.
	grep -qaF -- "$bin" "/proc/$pid/cmdline" 2>/dev/null || return 1
	printf '%s' "$pid"
}

# Starts a command in the background in a session of its own (setsid +
# nohup), so it outlives this script and the shell or CI step that ran it.
# fd 9 (the lock of this script) is closed so the service does not hold it.
launch() {
	local svc=$1
	shift
	mkdir -p "$LOG_DIR" "$RUN_DIR"
	printf '\n=== %s start\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$LOG_DIR/$svc.log"
	setsid nohup "$@" >>"$LOG_DIR/$svc.log" 2>&1 </dev/null 9>&- &
	echo "$!" >"$(pid_file "$svc")"
}

# Waits until probe succeeds; fails early when the process dies. Right
# after launch the process may not have exec'd the service yet (its command
# line is still this script's), so only its death counts here, not its name.
wait_ready() {
	local svc=$1 bin=$2 probe=$3 deadline=$((SECONDS + READY_TIMEOUT)) pid=""
	[[ -r $(pid_file "$svc") ]] && read -r pid <"$(pid_file "$svc")"
	until "$probe"; do
		if [[ $pid =~ ^[0-9]+$ ]]; then
			alive "$pid" || fail_service "$svc" "exited during start-up"
		else
			service_pid "$svc" "$bin" >/dev/null || fail_service "$svc" "exited during start-up"
		fi
		((SECONDS < deadline)) || fail_service "$svc" "not ready after ${READY_TIMEOUT}s"
		sleep 0.2
	done
}

# True when there is nothing to start: our process is running (waits for it
# to be ready), or something else already answers on the service's port.
already_up() {
	local svc=$1 bin=$2 probe=$3
	if service_pid "$svc" "$bin" >/dev/null; then
		wait_ready "$svc" "$bin" "$probe"
		say "$svc: already running"
		return 0
	fi
	rm -f "$(pid_file "$svc")"
	if "$probe"; then
		say "$svc: its port already answers (not started by this script); leaving it alone"
		return 0
	fi
	return 1
}

# True while pid runs. An exited process that nobody has reaped yet (a
# zombie: some container init processes reap orphans only every second or
# two) counts as gone, since it holds no ports or files any more.
alive() {
	[[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# SIGTERM, then up to 15 s for a clean exit, then SIGKILL.
stop_daemon() {
	local svc=$1 bin=$2 pid i
	if ! pid=$(service_pid "$svc" "$bin"); then
		rm -f "$(pid_file "$svc")"
		say "$svc: not running"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		say "$svc: still running 15 s after SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$(pid_file "$svc")"
	say "$svc: stopped"
}

daemon_status() {
	local svc=$1 bin=$2 probe=$3 pid
	if pid=$(service_pid "$svc" "$bin"); then
		echo "$svc: running (pid $pid)"
	elif "$probe"; then
		echo "$svc: running (not started by this script)"
	else
		echo "$svc: stopped"
	fi
}

# Prints the HTTP status of GET http://127.0.0.1:PORT/PATH, or nothing when
# nothing answers. Plain bash, because curl is not on a fresh machine.
http_status() {
	# The inner script expands its own arguments, hence the single quotes.
	# shellcheck disable=SC2016
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n" "$2" "$1" >&3
		read -r _ code _ <&3 && printf %s "${code%[[:cntrl:]]}"
	' http_status "$1" "$2" 2>/dev/null || true
}

# ---------------------------------------------------------------- PostgreSQL
#
# A cluster of the project's own (never a system one), run as the postgres OS
# user because initdb and postgres refuse to run as root. That user must be
# able to reach the data folder, the socket folder and the log. When the
# state folder is somewhere it cannot traverse (the default under /root,
# which is 0700), the cluster lives under the postgres user's home instead,
# in a folder named after the state folder, and the state folder holds
# symlinks to it (data/postgres, run/postgres, log/postgres.log).

# Runs a command as the postgres user (as the caller when not root), from /
# so it never complains about a working folder it cannot enter.
as_postgres() {
	if [[ $EUID -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@") 9>&-
	else
		(cd / && "$@") 9>&-
	fi
}

# Sets PG_DATA, PG_SOCK and PG_LOG, following the symlinks when the cluster
# was moved under the postgres user's home. Creates nothing.
pg_paths() {
	PG_DATA=$DATA_DIR/postgres PG_SOCK=$RUN_DIR/postgres PG_LOG=$LOG_DIR/postgres.log
	if [[ -L $PG_DATA ]]; then
		pg_use_base "$(dirname "$(readlink -f "$PG_DATA")")"
	fi
}

pg_use_base() {
	PG_DATA=$1/data PG_SOCK=$1/run PG_LOG=$1/postgres.log
}

postgres_can_reach() {
	[[ $EUID -ne 0 ]] || as_postgres test -x "$DATA_DIR" -a -x "$RUN_DIR" -a -x "$LOG_DIR"
}

# Puts the cluster under the postgres user's home and links it from the
# state folder.
pg_relocate() {
	local home key base
	home=$(getent passwd postgres | cut -d: -f6)
	key=$(printf %s "$STATE_DIR" | sha256sum | cut -c1-12)
	base=$home/nself/$key
	say "postgres: the postgres user cannot reach $STATE_DIR; keeping the cluster in $base"
	mkdir -p "$base"
	chown postgres:postgres "$home/nself" "$base"
	pg_use_base "$base"
	ln -sfn "$PG_DATA" "$DATA_DIR/postgres"
	ln -sfn "$PG_SOCK" "$RUN_DIR/postgres"
	ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"
}

# Creates the folders and the log, owned by the postgres user.
pg_prepare() {
	mkdir -p "$DATA_DIR" "$RUN_DIR" "$LOG_DIR"
	pg_paths
	if [[ ! -L $DATA_DIR/postgres ]] && ! postgres_can_reach; then
		[[ ! -e $DATA_DIR/postgres ]] ||
			die "postgres: the postgres user cannot reach $DATA_DIR/postgres; make its parent folders traversable (chmod o+x) or remove it"
		pg_relocate
	fi
	mkdir -p "$PG_DATA" "$PG_SOCK"
	touch "$PG_LOG"
	if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$PG_DATA" "$PG_SOCK" "$PG_LOG"; fi
	chmod 700 "$PG_DATA"
}

pg_initialized() { [[ -s $PG_DATA/PG_VERSION ]]; }

pg_running() {
	pg_initialized && as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

pg_initdb() {
	say "postgres: creating a cluster in $PG_DATA"
	as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
		--auth-local=trust --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 ||
		fail_service postgres "initdb failed" "$PG_LOG"
}

# Server settings are passed at each start rather than written into the
# cluster, so a change here applies to existing clusters too. fsync,
# synchronous_commit and full_page_writes are off for test speed: this data
# is disposable.
pg_start_cluster() {
	local opts
	opts=$(pg_options)
	printf '\n=== %s start\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$PG_LOG"
	as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" -o "$opts" start >/dev/null 2>&1 ||
		fail_service postgres "pg_ctl start failed" "$PG_LOG"
}

# Roles and database, created when missing and brought back to the expected
# attributes when present. nself_owner runs migrations, owns the database
# (in PostgreSQL 15 only the owner may create objects in public) and creates
# per-test databases; nself_app is what the application connects as and must
# stay subject to row-level security, so it owns nothing and cannot bypass RLS.
pg_bootstrap() {
	as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
		>>"$PG_LOG" 2>&1 <<'SQL' || fail_service postgres "creating roles and database failed" "$PG_LOG"
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nself_owner') THEN
		CREATE ROLE nself_owner;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nself_app') THEN
		CREATE ROLE nself_app;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nself_backup') THEN
		CREATE ROLE nself_backup;
	END IF;
END
$$;
ALTER ROLE nself_owner WITH LOGIN PASSWORD 'nself_owner' NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE nself_app WITH LOGIN PASSWORD 'nself_app' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
-- Backups read every tenant's rows: the one role that bypasses row-level
-- security, and only reads.
ALTER ROLE nself_backup WITH LOGIN PASSWORD 'nself_backup' NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
GRANT pg_read_all_data TO nself_backup;
SELECT 'CREATE DATABASE nself OWNER nself_owner'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'nself') \gexec
ALTER DATABASE nself OWNER TO nself_owner;
SQL
}

start_postgres() {
	[[ -x $PG_BIN/initdb ]] || apt_install postgresql-15 postgresql-client-15
	pg_prepare
	pg_initialized || pg_initdb
	if pg_running; then
		say "postgres: already running"
		pg_restart_if_stale postgres "$PG_DATA" "$PG_PORT" "$PG_LOG" "$(pg_options)"
	elif pg_ready; then
		say "postgres: port $PG_PORT already answers (not this script's cluster); leaving it alone"
		return 0
	else
		pg_start_cluster
	fi
	pg_ready || fail_service postgres "not accepting connections on 127.0.0.1:$PG_PORT" "$PG_LOG"
	head -n 1 "$PG_DATA/postmaster.pid" >"$(pid_file postgres)"
	pg_bootstrap
	say "postgres: ready on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
	pg_paths
	if [[ -x $PG_BIN/pg_ctl ]] && pg_running; then
		as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			fail_service postgres "pg_ctl stop failed" "$PG_LOG"
		say "postgres: stopped"
	else
		say "postgres: not running"
	fi
	rm -f "$(pid_file postgres)"
}

status_postgres() {
	pg_paths
	if [[ -x $PG_BIN/pg_ctl ]] && pg_running; then
		echo "postgres: running (pid $(head -n 1 "$PG_DATA/postmaster.pid"))"
	elif [[ -x $PG_BIN/pg_isready ]] && pg_ready; then
		echo "postgres: running (not started by this script)"
	else
		echo "postgres: stopped"
	fi
}

# ---------------------------------------------------------------- MinIO

# Ready once it has loaded its buckets (the cluster check answers 503 until
# then): a bucket removed before that would come back.
minio_ready() { [[ $(http_status "$MINIO_PORT" /minio/health/cluster) == 200 ]]; }

start_minio() {
	local bin=$BIN_DIR/minio
	already_up minio "$bin" minio_ready && return 0
	ensure_go_tool minio minio "$MINIO_MODULE" "$MINIO_VERSION"
	mkdir -p "$DATA_DIR/minio"
	# The browser console and the update check stay off: tests need neither
	# and the machine may have no internet access.
	launch minio env MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		"$bin" server "$DATA_DIR/minio" \
		--address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT"
	wait_ready minio "$bin" minio_ready
	say "minio: ready on 127.0.0.1:$MINIO_PORT"
}

stop_minio() { stop_daemon minio "$BIN_DIR/minio"; }
status_minio() { daemon_status minio "$BIN_DIR/minio" minio_ready; }

# ---------------------------------------------------------------- stripe-mock

# stripe-mock answers every path (401 without a key); any answer means up.
stripe_ready() { [[ -n $(http_status "$STRIPE_HTTP_PORT" /) ]]; }

start_stripe() {
	local bin=$BIN_DIR/stripe-mock
	already_up stripe "$bin" stripe_ready && return 0
	ensure_go_tool stripe stripe-mock "$STRIPE_MOCK_MODULE" "$STRIPE_MOCK_VERSION"
	# Both addresses are given: with only the HTTP one, stripe-mock opens
	# HTTPS on all interfaces.
	launch stripe "$bin" -http-addr "127.0.0.1:$STRIPE_HTTP_PORT" -https-addr "127.0.0.1:$STRIPE_HTTPS_PORT"
	wait_ready stripe "$bin" stripe_ready
	say "stripe: ready on 127.0.0.1:$STRIPE_HTTP_PORT"
}

stop_stripe() { stop_daemon stripe "$BIN_DIR/stripe-mock"; }
status_stripe() { daemon_status stripe "$BIN_DIR/stripe-mock" stripe_ready; }

# ---------------------------------------------------------------- mailpit

mailpit_ready() { [[ $(http_status "$MAILPIT_HTTP_PORT" /readyz) == 200 ]]; }

start_mailpit() {
	local bin=$BIN_DIR/mailpit
	already_up mailpit "$bin" mailpit_ready && return 0
	ensure_go_tool mailpit mailpit "$MAILPIT_MODULE" "$MAILPIT_VERSION"
	mkdir -p "$DATA_DIR/mailpit"
	# Any SMTP login is accepted without TLS, as the application's local
	# configuration sends plain SMTP with credentials.
	launch mailpit "$bin" --listen "127.0.0.1:$MAILPIT_HTTP_PORT" --smtp "127.0.0.1:$MAILPIT_SMTP_PORT" \
		--database "$DATA_DIR/mailpit/mailpit.db" --disable-version-check \
		--smtp-auth-accept-any --smtp-auth-allow-insecure
	wait_ready mailpit "$bin" mailpit_ready
	say "mailpit: ready on 127.0.0.1:$MAILPIT_HTTP_PORT (SMTP $MAILPIT_SMTP_PORT)"
}

stop_mailpit() { stop_daemon mailpit "$BIN_DIR/mailpit"; }
status_mailpit() { daemon_status mailpit "$BIN_DIR/mailpit" mailpit_ready; }

# ---------------------------------------------------------------- Pebble
# The ACME test server, for tests of certificate issuance. Challenges are not
# validated (PEBBLE_VA_ALWAYS_VALID): the tests check the platform's side of
# ACME, not DNS or port 80 on this machine.

pebble_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PEBBLE_PORT") 2>/dev/null; }

# pebble_module_dir is where the module's test certificates are: pebble
# serves ACME over TLS with them, and clients must trust its minica root.
pebble_module_dir() {
	local go
	go=$(go_path) || die "pebble: Go is needed to find pebble's certificates"
	printf '%s/github.com/letsencrypt/pebble/v2@%s' "$("$go" env GOMODCACHE)" "$PEBBLE_VERSION"
}

start_pebble() {
	local bin=$BIN_DIR/pebble dir conf
	already_up pebble "$bin" pebble_ready && return 0
	ensure_go_tool pebble pebble "$PEBBLE_MODULE" "$PEBBLE_VERSION"
	dir=$(pebble_module_dir)
	[[ -r $dir/test/certs/localhost/cert.pem ]] || fail_service pebble "pebble's test certificates are missing in $dir"
	mkdir -p "$DATA_DIR/pebble"
	conf=$DATA_DIR/pebble/pebble-config.json
	cat >"$conf" <<JSON
{"pebble": {
  "listenAddress": "127.0.0.1:$PEBBLE_PORT",
  "managementListenAddress": "127.0.0.1:$PEBBLE_MANAGEMENT_PORT",
  "certificate": "$dir/test/certs/localhost/cert.pem",
  "privateKey": "$dir/test/certs/localhost/key.pem",
  "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
  "externalAccountBindingRequired": false
}}
JSON
	PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_WFE_NONCEREJECT=0 launch pebble "$bin" -config "$conf"
	wait_ready pebble "$bin" pebble_ready
	say "pebble: ready on 127.0.0.1:$PEBBLE_PORT"
}

stop_pebble() { stop_daemon pebble "$BIN_DIR/pebble"; }
status_pebble() { daemon_status pebble "$BIN_DIR/pebble" pebble_ready; }

# ---------------------------------------------------------------- OpenID Provider
# A real OpenID Provider for the single sign-on tests: zitadel/oidc's op
# package with its example's storage and login page (cmd/oidc-provider, a
# module of its own), built from this repository. Discovery, the code flow
# with PKCE, ID tokens, userinfo and the key set are the library's. Its
# clients and users are fixed here, so tests know them:
#   clients nself-a / nself-a-secret and nself-b / nself-b-secret, each
#   accepting as redirect URI any /sso/callback on http://*.localhost:PORT
#   (browser tests), http://*.nself.test (handler tests) or 127.0.0.1;
#   users (username = email, password oidc-pass): ann, bob, cy, dee and
#   eve @sso.example with verified emails, una@sso.example unverified,
#   olga@elsewhere.example verified.

readonly OIDC_PORT=59080
OIDC_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/cmd/oidc-provider
readonly OIDC_SRC

oidc_ready() { [[ $(http_status "$OIDC_PORT" /.well-known/openid-configuration) == 200 ]]; }

# Rebuilt when a source file is newer than the binary.
oidc_build() {
	local bin=$BIN_DIR/oidc-provider go log=$LOG_DIR/oidc-build.log
	if [[ -x $bin ]] && [[ -z $(find "$OIDC_SRC" -newer "$bin" -type f 2>/dev/null) ]]; then return 0; fi
	go=$(go_path) || die "oidc: Go is needed to build the OpenID Provider"
	[[ -r /etc/ssl/certs/ca-certificates.crt ]] || apt_install ca-certificates
	mkdir -p "$BIN_DIR" "$LOG_DIR"
	say "oidc: building the OpenID Provider from $OIDC_SRC"
	(cd "$OIDC_SRC" && GOWORK=off "$go" build -o "$bin" .) >"$log" 2>&1 ||
		fail_service oidc "go build of cmd/oidc-provider failed" "$log"
}

oidc_users() {
	local out=$1 u first='' line
	{
		echo '{'
		for u in ann:true bob:true cy:true dee:true eve:true una:false; do
			line=$(printf '"%s": {"ID": "%s", "Username": "%s@sso.example", "Password": "oidc-pass", "FirstName": "%s", "LastName": "Example", "Email": "%s@sso.example", "EmailVerified": %s, "PreferredLanguage": "en"}' \
				"${u%%:*}" "${u%%:*}" "${u%%:*}" "${u%%:*}" "${u%%:*}" "${u#*:}")
			printf '%s%s\n' "$first" "$line"
			first=,
		done
		echo ', "olga": {"ID": "olga", "Username": "olga@elsewhere.example", "Password": "oidc-pass", "FirstName": "Olga", "LastName": "Example", "Email": "olga@elsewhere.example", "EmailVerified": true, "PreferredLanguage": "en"}'
		echo '}'
	} >"$out"
}

start_oidc() {
	local bin=$BIN_DIR/oidc-provider
	already_up oidc "$bin" oidc_ready && return 0
	oidc_build
	mkdir -p "$DATA_DIR/oidc"
	oidc_users "$DATA_DIR/oidc/users.json"
	launch oidc "$bin" -addr "127.0.0.1:$OIDC_PORT" -users "$DATA_DIR/oidc/users.json" \
		-clients nself-a:nself-a-secret,nself-b:nself-b-secret \
		-redirect-globs "http://*.localhost:*/sso/callback,http://*.nself.test/sso/callback,http://127.0.0.1:*/sso/callback"
	wait_ready oidc "$bin" oidc_ready
	say "oidc: ready on 127.0.0.1:$OIDC_PORT"
}

stop_oidc() { stop_daemon oidc "$BIN_DIR/oidc-provider"; }
status_oidc() { daemon_status oidc "$BIN_DIR/oidc-provider" oidc_ready; }

# ---------------------------------------------------------------- Chromium
# Only installed: the browser tests launch it themselves.

start_chromium() {
	[[ -x $CHROMIUM ]] || apt_install chromium
	say "chromium: installed at $CHROMIUM"
}

stop_chromium() { :; }

status_chromium() {
	if [[ -x $CHROMIUM ]]; then echo "chromium: installed"; else echo "chromium: missing"; fi
}

# A cluster started before apt upgraded postgresql-15 keeps running on the
# old binaries, and every new backend that loads PL/pgSQL then fails
# ("undefined symbol" in plpgsql.so). Restart a cluster whose server version
# is not the one on disk. Arguments: label, data folder, port, log, options.
pg_restart_if_stale() {
	local label=$1 data=$2 port=$3 log=$4 opts=$5 disk running
	as_postgres "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 0
	disk=$("$PG_BIN/postgres" --version | awk '{print $3}')
	running=$(as_postgres "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c 'SHOW server_version' 2>/dev/null | awk '{print $1}') || true
	[[ -n $running && $running != "$disk" ]] || return 0
	say "$label: running PostgreSQL $running while $disk is installed; restarting it on the new binaries"
	as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$log" -m fast -w -t "$READY_TIMEOUT" -o "$opts" restart >/dev/null 2>&1 ||
		fail_service "$label" "pg_ctl restart failed" "$log"
}

# ---------------------------------------------------------------- Citus
#
# Citus 13.2 (distributed PostgreSQL 15) from source, as Debian has no
# package: the source tarball is CITUS_SOURCE (by default the release next to
# the repository, in ../shared/citus), with its compatibility patch for
# PostgreSQL 15.20 and later (CITUS_PATCH, by default the .patch files next to
# the tarball). The build stays in STATE_DIR/build, so it happens once per
# tarball; `make install` puts citus.so in PostgreSQL's library folder, and
# is all a later run repeats when that file is gone.
#
# A coordinator (port 55440) and two workers (55441, 55442), each a cluster
# of its own under data/citus, run as the postgres user like the single
# cluster. Connections from 127.0.0.1 are trusted: the nodes connect to each
# other as the role of the query, and this test cluster never listens
# elsewhere. Roles are created on the coordinator once the workers are
# registered, so Citus creates them on every node and knows them.

readonly REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

citus_source() {
	printf '%s' "${CITUS_SOURCE:-$REPO_DIR/../shared/citus/citus-$CITUS_VERSION.tar.gz}"
}

citus_installed() {
	local lib share
	lib=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null) || return 1
	share=$("$PG_BIN/pg_config" --sharedir 2>/dev/null) || return 1
	[[ -e $lib/citus.so && -e $share/extension/citus.control ]]
}

# The dev headers at the installed server's version when apt still has it:
# that way the install does not upgrade postgresql-15 under running clusters.
# Otherwise apt's version, and clusters left on old binaries are restarted.
citus_build_deps() {
	local installed dev=postgresql-server-dev-15
	installed=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null) || true
	if [[ -n $installed ]] && apt-cache madison "$dev" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$installed"; then
		dev="$dev=$installed"
	fi
	apt_install "$dev" libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev \
		libxslt1-dev libpam0g-dev autoconf flex bison make gcc
	pg_paths
	pg_restart_if_stale postgres "$PG_DATA" "$PG_PORT" "$PG_LOG" "$(pg_options)"
	local node
	for node in $(citus_nodes); do
		citus_node_paths "$node"
		pg_restart_if_stale "citus $node" "$CN_DATA" "$CN_PORT" "$CN_LOG" "$(citus_options "$CN_PORT")"
	done
}

ensure_citus() {
	citus_installed && return 0
	local src patch key dir log=$LOG_DIR/citus-build.log p
	src=$(citus_source)
	[[ -r $src ]] || die "citus: no Citus build installed and no source tarball at $src; set CITUS_SOURCE to citus-$CITUS_VERSION.tar.gz"
	key=$(sha256sum "$src" | cut -c1-12)
	dir=$STATE_DIR/build/citus-$key
	mkdir -p "$STATE_DIR/build" "$LOG_DIR"
	if [[ ! -e $dir/src/backend/distributed/citus.so ]]; then
		citus_build_deps
		say "citus: building Citus from $src (once, about two minutes; kept in $dir)"
		rm -rf "$dir" "$dir.tmp"
		mkdir -p "$dir.tmp"
		tar -xzf "$src" -C "$dir.tmp" --strip-components=1 || die "citus: cannot extract $src"
		for p in ${CITUS_PATCH:-$(dirname "$src")/*.patch}; do
			[[ -r $p ]] || continue
			say "citus: applying $(basename "$p")"
			(cd "$dir.tmp" && patch -p1 --forward <"$p") >>"$log" 2>&1 || fail_service citus "patch $p failed" "$log"
		done
		mv "$dir.tmp" "$dir"
		# with_llvm=no: no JIT bitcode, which would double the build time.
		(cd "$dir" && ./configure PG_CONFIG="$PG_BIN/pg_config" && make -j"$(nproc)" with_llvm=no) >>"$log" 2>&1 ||
			fail_service citus "building Citus failed" "$log"
	fi
	[[ $EUID -eq 0 ]] || die "citus: installing into $("$PG_BIN/pg_config" --pkglibdir) needs root"
	(cd "$dir" && make install with_llvm=no) >>"$log" 2>&1 || fail_service citus "make install failed" "$log"
	say "citus: installed into $("$PG_BIN/pg_config" --pkglibdir)"
}

citus_nodes() { printf '%s\n' coordinator worker1 worker2; }

# Sets CN_DATA, CN_PORT and CN_LOG for a node. The nodes live next to the
# single cluster, under the postgres user's home when it cannot reach the
# state folder (see pg_prepare).
citus_node_paths() {
	local node=$1 base
	pg_paths
	base=$(dirname "$PG_DATA")/citus
	[[ -L $DATA_DIR/postgres ]] || base=$DATA_DIR/citus
	CN_DATA=$base/$node CN_LOG=$base/$node.log CN_SOCK=$base/run
	case $node in
	coordinator) CN_PORT=$CITUS_PORT ;;
	worker1) CN_PORT=${CITUS_WORKER_PORTS[0]} ;;
	worker2) CN_PORT=${CITUS_WORKER_PORTS[1]} ;;
	esac
}

pg_options() {
	printf '%s' "-p $PG_PORT -k '$PG_SOCK' -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
}

# Test speed settings as the single cluster's; max_prepared_transactions for
# Citus's two-phase commit across workers.
citus_options() {
	printf '%s' "-p $1 -k '$CN_SOCK' -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_preload_libraries=citus -c max_prepared_transactions=200 -c citus.log_distributed_deadlock_detection=off"
}

citus_psql() {
	local port=$1 db=$2
	shift 2
	as_postgres "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

citus_start_node() {
	local node=$1
	citus_node_paths "$node"
	mkdir -p "$CN_DATA" "$CN_SOCK"
	touch "$CN_LOG"
	if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$(dirname "$CN_DATA")" "$CN_DATA" "$CN_SOCK" "$CN_LOG"; fi
	chmod 700 "$CN_DATA"
	if [[ ! -s $CN_DATA/PG_VERSION ]]; then
		say "citus: creating the $node cluster in $CN_DATA"
		as_postgres "$PG_BIN/initdb" -D "$CN_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host=trust >>"$CN_LOG" 2>&1 || fail_service citus "initdb of $node failed" "$CN_LOG"
	fi
	if as_postgres "$PG_BIN/pg_ctl" -D "$CN_DATA" status >/dev/null 2>&1; then
		pg_restart_if_stale "citus $node" "$CN_DATA" "$CN_PORT" "$CN_LOG" "$(citus_options "$CN_PORT")"
	else
		printf '\n=== %s start\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$CN_LOG"
		as_postgres "$PG_BIN/pg_ctl" -D "$CN_DATA" -l "$CN_LOG" -w -t "$READY_TIMEOUT" -o "$(citus_options "$CN_PORT")" start >/dev/null 2>&1 ||
			fail_service citus "pg_ctl start of $node failed" "$CN_LOG"
	fi
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$CN_PORT" -t 5 || fail_service citus "$node not accepting connections on $CN_PORT" "$CN_LOG"
}

# The database nself on every node with the citus extension, the workers
# registered on the coordinator, then the roles, created on the coordinator
# so that Citus propagates them and knows them on every node. Safe to repeat.
citus_bootstrap() {
	local node port w
	for node in $(citus_nodes); do
		citus_node_paths "$node"
		echo "SELECT 'CREATE DATABASE nself' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'nself') \gexec" |
			citus_psql "$CN_PORT" postgres >>"$CN_LOG" 2>&1 ||
			fail_service citus "creating the database on $node failed" "$CN_LOG"
		citus_psql "$CN_PORT" nself -c 'CREATE EXTENSION IF NOT EXISTS citus' >>"$CN_LOG" 2>&1 ||
			fail_service citus "CREATE EXTENSION citus on $node failed" "$CN_LOG"
	done
	citus_node_paths coordinator
	port=$CN_PORT
	{
		echo "SELECT citus_set_coordinator_host('127.0.0.1', $port);"
		for w in "${CITUS_WORKER_PORTS[@]}"; do
			echo "SELECT citus_add_node('127.0.0.1', $w) WHERE NOT EXISTS (SELECT FROM pg_dist_node WHERE nodeport = $w);"
		done
		cat <<'SQL'
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nself_owner') THEN
		CREATE ROLE nself_owner;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nself_app') THEN
		CREATE ROLE nself_app;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nself_backup') THEN
		CREATE ROLE nself_backup;
	END IF;
END
$$;
ALTER ROLE nself_owner WITH LOGIN PASSWORD 'nself_owner' NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE nself_app WITH LOGIN PASSWORD 'nself_app' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE nself_backup WITH LOGIN PASSWORD 'nself_backup' NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
GRANT pg_read_all_data TO nself_backup;
-- Without this, SET LOCAL "hasura.user" stays on the coordinator: the
-- workers see no tenant, reads return nothing and writes fail their policy.
ALTER ROLE nself_owner SET citus.propagate_set_commands = 'local';
ALTER ROLE nself_app SET citus.propagate_set_commands = 'local';
-- Roles that existed before this database had its workers are not yet
-- Citus's objects here; without this, the first distributed CREATE FUNCTION
-- fails trying to create the owner again on a worker.
INSERT INTO pg_catalog.pg_dist_object (classid, objid, objsubid)
SELECT 'pg_authid'::regclass, oid, 0 FROM pg_roles WHERE rolname IN ('nself_owner', 'nself_app', 'nself_backup')
ON CONFLICT DO NOTHING;
SQL
	} | citus_psql "$port" nself >>"$CN_LOG" 2>&1 || fail_service citus "registering workers and roles failed" "$CN_LOG"
	# Database ownership is not propagated: set on each node.
	for node in $(citus_nodes); do
		citus_node_paths "$node"
		citus_psql "$CN_PORT" postgres -c 'ALTER DATABASE nself OWNER TO nself_owner' >>"$CN_LOG" 2>&1 ||
			fail_service citus "ALTER DATABASE on $node failed" "$CN_LOG"
	done
}

start_citus() {
	[[ -x $PG_BIN/initdb ]] || apt_install postgresql-15 postgresql-client-15
	ensure_citus
	local node
	for node in $(citus_nodes); do citus_start_node "$node"; done
	citus_bootstrap
	citus_node_paths coordinator
	head -n 1 "$CN_DATA/postmaster.pid" >"$(pid_file citus)"
	say "citus: ready, coordinator on 127.0.0.1:$CITUS_PORT, workers on ${CITUS_WORKER_PORTS[*]}"
}

stop_citus() {
	local node
	for node in worker2 worker1 coordinator; do
		citus_node_paths "$node"
		if [[ -s $CN_DATA/PG_VERSION ]] && as_postgres "$PG_BIN/pg_ctl" -D "$CN_DATA" status >/dev/null 2>&1; then
			as_postgres "$PG_BIN/pg_ctl" -D "$CN_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
				fail_service citus "pg_ctl stop of $node failed" "$CN_LOG"
			say "citus: $node stopped"
		fi
	done
	rm -f "$(pid_file citus)"
}

status_citus() {
	local node up=() down=()
	for node in $(citus_nodes); do
		citus_node_paths "$node"
		if [[ -x $PG_BIN/pg_isready ]] && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$CN_PORT" -t 2; then
			up+=("$node:$CN_PORT")
		else
			down+=("$node:$CN_PORT")
		fi
	done
	if ((${#down[@]} == 0)); then
		echo "citus: running (${up[*]})"
	elif ((${#up[@]} == 0)); then
		if citus_installed; then echo "citus: stopped (installed)"; else echo "citus: stopped (not built)"; fi
	else
		echo "citus: partly running (down: ${down[*]})"
	fi
}

# ---------------------------------------------------------------- commands

# Values are single-quoted: the database URLs contain '?', which an unquoted
# eval would treat as a glob. With "citus", the database settings point at
# the Citus coordinator, and NSELF_CITUS_SUPERUSER_URL lets the tests create
# a database with the citus extension on every node.
print_env() {
	local kv port=$PG_PORT extra=()
	if [[ ${1:-} == citus ]]; then
		port=$CITUS_PORT
		extra=("NSELF_CITUS_SUPERUSER_URL=postgres://postgres@127.0.0.1:$CITUS_PORT/nself?sslmode=disable")
	fi
	for kv in \
		"DATABASE_URL=postgres://nself_app:nself_app@127.0.0.1:$port/nself?sslmode=disable" \
		"DATABASE_ADMIN_URL=postgres://nself_owner:nself_owner@127.0.0.1:$port/nself?sslmode=disable" \
		"DATABASE_BACKUP_URL=postgres://nself_backup:nself_backup@127.0.0.1:$port/nself?sslmode=disable" \
		"${extra[@]}" \
		"MINIO_ENDPOINT=127.0.0.1:$MINIO_PORT" \
		"MINIO_ACCESS_KEY=$MINIO_USER" \
		"MINIO_SECRET_KEY=$MINIO_PASSWORD" \
		"MINIO_USE_SSL=false" \
		"STRIPE_API_BASE=http://127.0.0.1:$STRIPE_HTTP_PORT" \
		"STRIPE_SECRET_KEY=sk_test_123" \
		"STRIPE_PUBLISHABLE_KEY=pk_test_123" \
		"STRIPE_WEBHOOK_SECRET=whsec_test_secret" \
		"SMTP_HOST=127.0.0.1" \
		"SMTP_PORT=$MAILPIT_SMTP_PORT" \
		"SMTP_FROM=no-reply@localhost" \
		"MAILPIT_URL=http://127.0.0.1:$MAILPIT_HTTP_PORT" \
		"ACME_TEST_DIRECTORY=https://127.0.0.1:$PEBBLE_PORT/dir" \
		"ACME_TEST_ROOT=$(pebble_module_dir)/test/certs/pebble.minica.pem" \
		"OIDC_TEST_ISSUER=http://127.0.0.1:$OIDC_PORT"; do
		[[ -n $kv ]] || continue
		printf "export %s='%s'\n" "${kv%%=*}" "${kv#*=}"
	done
}

# Sets TARGETS to the named services, or all of them.
select_services() {
	local s
	TARGETS=("$@")
	(($# > 0)) || TARGETS=("${SERVICES[@]}")
	for s in "${TARGETS[@]}"; do
		[[ " ${SERVICES[*]} ${OPTIONAL_SERVICES[*]} " == *" $s "* ]] || {
			usage
			die "unknown service: $s"
		}
	done
}

# One start or stop at a time per state folder, so two callers cannot both
# launch the same service.
take_lock() {
	mkdir -p "$RUN_DIR"
	exec 9>"$RUN_DIR/lock"
	flock 9
}

main() {
	local cmd=${1:-} i
	(($# == 0)) || shift
	case $cmd in
	start)
		select_services "$@"
		take_lock
		for i in "${TARGETS[@]}"; do "start_$i"; done
		if [[ " ${TARGETS[*]} " == *" citus "* ]]; then print_env citus; else print_env; fi
		;;
	stop)
		select_services "$@"
		take_lock
		# Reverse order, so nothing stops before what was started after it.
		for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do "stop_${TARGETS[i]}"; done
		;;
	status)
		select_services "$@"
		for i in "${TARGETS[@]}"; do "status_$i"; done
		;;
	env) print_env "$@" ;;
	-h | --help | help) usage ;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
