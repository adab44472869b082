#!/usr/bin/env bash
# demo.sh: a narrated tour of pgvault on a scratch PostgreSQL 15 cluster.
#
# Run by `make demo` after the build.  Everything lives in ./.demo/ under the
# repository root, which is removed and recreated on every run (a server left
# running there by KEEP=1 is stopped first).  The server runs as an
# unprivileged user when we are root (postgres, or $DEMO_PGUSER).
#
# The tour is a list of steps, each one function named step_*; later work
# adds backup, accident and restore steps to STEPS below.
#
# Environment:
#   KEEP=1              leave the server running at the end (prints how to
#                       connect and how to stop it)
#   DEMO_SCALE=N        pgbench scale factor (default 10, about 150 MB)
#   PGVAULT_BIN         the pgvault binary (default build/pgvault)
#   PGVAULT_PG_BINDIR   PostgreSQL binaries (default: pg_config --bindir of
#                       /usr/lib/postgresql/15/bin)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=$ROOT/.demo
PGDATA_DIR=$DEMO/data
SOCKDIR=$DEMO/sock
LOGFILE=$DEMO/server.log
PGVAULT=${PGVAULT_BIN:-$ROOT/build/pgvault}
KEEP=${KEEP:-0}
SCALE=${DEMO_SCALE:-10}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

STEPS=(step_cluster step_load step_check step_init step_backup step_accident step_restore step_verify)

# ---------------------------------------------------------------- helpers

bold=$'\e[1m' dim=$'\e[2m' reset=$'\e[0m'
if [ ! -t 1 ] || [ -n "${NO_COLOR:-}" ]; then bold='' dim='' reset=''; fi
STEP_NO=0

header() {
	STEP_NO=$((STEP_NO + 1))
	printf '\n%s==> Step %d/%d: %s%s\n' "$bold" "$STEP_NO" "${#STEPS[@]}" "$1" "$reset"
}
say() { printf '    %s\n' "$@"; }
run() {
	# show a command, then run it
	printf '%s    $ %s%s\n' "$dim" "$*" "$reset"
	"$@"
}
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

find_bindir() {
	if [ -n "${PGVAULT_PG_BINDIR:-}" ]; then
		echo "$PGVAULT_PG_BINDIR"
	elif [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		/usr/lib/postgresql/15/bin/pg_config --bindir
	else
		die "PostgreSQL 15 not found: install postgresql-15 or set PGVAULT_PG_BINDIR"
	fi
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# as_pg CMD...: run as the server's user (ourselves unless we are root)
as_pg() {
	if [ -n "$PGUSER_OS" ]; then
		runuser -u "$PGUSER_OS" -- "$@"
	else
		"$@"
	fi
}

server_running() {
	[ -f "$PGDATA_DIR/postmaster.pid" ] &&
		as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

stop_server() {
	local mode=${1:-fast} pid
	[ -d "$PGDATA_DIR" ] || return 0
	pid=$(head -n1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
	if server_running; then
		as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m "$mode" -w -t 60 stop >/dev/null || true
	fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		grep -q postgres "/proc/$pid/cmdline" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

cleanup() {
	local rc=$?
	if [ "$KEEP" != 1 ] || [ "$rc" != 0 ]; then
		stop_server fast
	fi
	return "$rc"
}

psql_demo() {
	"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "${1:-postgres}" "${@:2}"
}

# ---------------------------------------------------------------- steps

step_cluster() {
	header "a scratch PostgreSQL 15 cluster in .demo/"
	say "pgvault needs a server to look at.  This one is throw-away: it lives in" \
		"$DEMO, listens on 127.0.0.1:$PGPORT and runs as ${PGUSER_OS:-$(id -un)}."
	rm -rf "$DEMO"
	mkdir -p "$DEMO" "$SOCKDIR"
	[ -z "$PGUSER_OS" ] || chown -R "$PGUSER_OS" "$DEMO"
	run as_pg "$BINDIR/initdb" -D "$PGDATA_DIR" -U postgres -A trust --data-checksums \
		-E UTF8 --locale=C.UTF-8 >"$DEMO/initdb.log" ||
		{ cat "$DEMO/initdb.log"; die "initdb failed"; }
	cat >>"$PGDATA_DIR/postgresql.conf" <<-EOF

		# demo.sh settings
		port = $PGPORT
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$SOCKDIR'
		wal_level = replica
		archive_mode = on
		archive_command = '/bin/true'
		max_wal_senders = 10
		logging_collector = off
	EOF
	run as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$LOGFILE" -w -t 60 start >/dev/null ||
		{ tail -n 20 "$LOGFILE"; die "the server did not start"; }
	say "Started: data checksums on, wal_level=replica, archive_mode=on with a" \
		"placeholder archive_command ('/bin/true': WAL is thrown away for now)."
}

step_load() {
	header "sample data: pgbench plus a small shop"
	say "pgbench -i -s $SCALE makes the classic accounts/branches/tellers/history tables;" \
		"then a shop with the column types real databases have: text, jsonb," \
		"timestamptz, numeric and bytea."
	run "$BINDIR/createdb" shop
	run "$BINDIR/pgbench" -i -s "$SCALE" -q shop 2>&1 | tail -n 1 | sed 's/^/    /'
	printf '%s    $ psql shop < (customers, orders, events)%s\n' "$dim" "$reset"
	psql_demo shop >/dev/null <<-'SQL'
		SELECT setseed(0.2024);
		CREATE TABLE customers (
		    id          bigint PRIMARY KEY,
		    name        text NOT NULL,
		    email       text UNIQUE,
		    profile     jsonb,
		    created_at  timestamptz NOT NULL,
		    balance     numeric(12,2) NOT NULL DEFAULT 0
		);
		INSERT INTO customers
		SELECT i,
		       initcap((ARRAY['ada','alan','grace','edsger','barbara','donald','frances','ken'])[1 + i % 8])
		           || ' ' || initcap(substr(md5(i::text), 1, 6 + i % 5)),
		       'user' || i || '@example.' || (ARRAY['com','org','net','io'])[1 + i % 4],
		       jsonb_build_object('plan', (ARRAY['free','pro','team'])[1 + i % 3],
		                          'newsletter', i % 2 = 0,
		                          'tags', jsonb_build_array('t' || i % 7, 't' || i % 11)),
		       timestamptz '2020-01-01 00:00+00' + (i * interval '37 minutes'),
		       round((random() * 5000)::numeric, 2)
		FROM generate_series(1, 50000) AS i;

		CREATE TABLE orders (
		    id           bigint PRIMARY KEY,
		    customer_id  bigint NOT NULL REFERENCES customers,
		    placed_at    timestamptz NOT NULL,
		    status       text NOT NULL,
		    total        numeric(12,2) NOT NULL,
		    items        jsonb NOT NULL
		);
		INSERT INTO orders
		SELECT i, 1 + (i * 7919) % 50000,
		       timestamptz '2021-01-01 00:00+00' + (i * interval '3 minutes'),
		       (ARRAY['new','paid','shipped','delivered','returned'])[1 + i % 5],
		       round((random() * 400 + 5)::numeric, 2),
		       jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (i % 1000),
		                                            'qty', 1 + i % 4))
		FROM generate_series(1, 200000) AS i;
		CREATE INDEX orders_customer_idx ON orders (customer_id);

		CREATE TABLE events (
		    id           bigserial PRIMARY KEY,
		    customer_id  bigint,
		    at           timestamptz NOT NULL,
		    kind         text NOT NULL,
		    payload      bytea
		);
		INSERT INTO events (customer_id, at, kind, payload)
		SELECT 1 + i % 50000,
		       timestamptz '2023-01-01 00:00+00' + (i * interval '10 seconds'),
		       (ARRAY['login','view','cart','checkout','logout'])[1 + i % 5],
		       decode(md5(i::text) || md5((i * 31)::text), 'hex')
		FROM generate_series(1, 300000) AS i;
		ANALYZE;
	SQL
	psql_demo shop -P footer=off -c "SELECT relname AS table, pg_size_pretty(pg_total_relation_size(oid)) AS size
	                   FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace
	                   ORDER BY pg_total_relation_size(oid) DESC" | sed 's/^/    /'
}

step_check() {
	header "pgvault check: is this server ready to be backed up?"
	say "check is the pre-flight: can we connect, are the settings right for WAL" \
		"archiving, are the client tools there, how big is everything, is anything" \
		"holding back a consistent backup.  Exit 0 = good, 1 = warnings, 2 = failures."
	local rc=0
	run "$PGVAULT" check -d shop --repo "$DEMO/repo" || rc=$?
	echo
	say "Exit status: $rc"
	"$PGVAULT" check -d shop --repo "$DEMO/repo" --json >"$DEMO/check.json" 2>/dev/null || true
	say "What to look at:"
	"$PY" - "$DEMO/check.json" <<-'PY' || say "(could not read the JSON report: see the text above)"
		import json, sys
		doc = json.load(open(sys.argv[1]))
		checks = {c["name"]: c for c in doc["checks"]}
		def show(name, why):
		    c = checks.get(name)
		    if c:
		        print("    - %-17s %-8s %s" % (name, c["status"], c["message"]))
		        print("      %s" % why)
		        if c.get("hint") and c["status"] in ("warning", "failure"):
		            print("      hint: %s" % c["hint"])
		show("data_checksums", "with checksums on, pgvault verifies every page it copies.")
		show("archive_command", "'/bin/true' discards WAL: point-in-time recovery needs pgvault archive-push.")
		show("database_sizes", "the size of what a logical backup has to read.")
		show("largest_tables", "big tables are split across workers; they set the backup's pace.")
		show("long_transactions", "an old open transaction makes backups slower and holds back vacuum.")
		others = [c for c in doc["checks"] if c["status"] in ("warning", "failure")
		          and c["name"] not in ("archive_command",)]
		for c in others:
		    print("    ! %s: %s" % (c["name"], c["message"]))
		print("    Overall: %s" % doc["status"])
	PY
	say "The full report is in $DEMO/check.json (pgvault check --json)."
}

step_init() {
	header "pgvault init: a repository for the backups"
	say "A repository is where every byte of every backup lives: deduplicated," \
		"compressed (zstd) and, with --encrypt, encrypted.  Here: a directory."
	run "$PGVAULT" init --repo "$DEMO/repo" 2>&1 | sed 's/^/    /'
	export PGVAULT_REPO=$DEMO/repo
}

step_backup() {
	header "pgvault backup --logical: the 2 AM pg_dump, done better"
	say "One snapshot for schema and data; tables copied in parallel; every table's" \
		"row count and content fingerprint recorded so restores can be proven."
	run "$PGVAULT" backup --logical -d shop -j 2 --no-progress 2>&1 | sed 's/^/    /'
	say "A second backup right after stores almost nothing new (deduplication):"
	run "$PGVAULT" backup --logical -d shop -j 2 --no-progress 2>&1 | sed 's/^/    /'
	run "$PGVAULT" list 2>&1 | sed 's/^/    /'
}

step_accident() {
	header "the accident: someone deletes paid orders and drops a table"
	printf '%s    $ psql shop -c "DELETE FROM orders WHERE status = '"'"'paid'"'"'; DROP TABLE events"%s\n' "$dim" "$reset"
	psql_demo shop -c "DELETE FROM orders WHERE status = 'paid'" -c "DROP TABLE events"
	say "orders left: $(psql_demo shop -Atc 'SELECT count(*) FROM orders') (was 200000); events: gone"
}

step_restore() {
	header "pgvault restore: the backup into a new database, checked"
	say "Restore into a new database next to the damaged one (the runbooks' safe" \
		"first move), then compare with what the backup recorded."
	run "$PGVAULT" restore latest --target-db shop_restored -j 2 2>&1 | sed 's/^/    /'
	say "Every table's row count was checked against the backup while loading."
	say "orders in shop_restored: $(psql_demo shop_restored -Atc 'SELECT count(*) FROM orders')," \
		"events: $(psql_demo shop_restored -Atc 'SELECT count(*) FROM events')"
	run "$PGVAULT" show latest | head -n 20 2>&1 | sed 's/^/    /'
}

step_verify() {
	header "pgvault verify: is every byte of every backup still readable?"
	run "$PGVAULT" verify 2>&1 | sed 's/^/    /'
	run "$PGVAULT" repo stats 2>&1 | sed 's/^/    /'
}

step_finish() {
	echo
	if [ "$KEEP" = 1 ]; then
		printf '%s==> The server is still running (KEEP=1)%s\n' "$bold" "$reset"
		say "connect:  PGHOST=127.0.0.1 PGPORT=$PGPORT PGUSER=postgres $BINDIR/psql shop" \
			"pgvault:  PGHOST=127.0.0.1 PGPORT=$PGPORT PGUSER=postgres $PGVAULT check -d shop" \
			"stop:     ${PGUSER_OS:+runuser -u $PGUSER_OS -- }$BINDIR/pg_ctl -D $PGDATA_DIR stop" \
			"(the next 'make demo' stops it and starts over)"
	else
		printf '%s==> Done: the demo server is stopped%s\n' "$bold" "$reset"
		say "Run 'KEEP=1 make demo' to keep it running and explore."
	fi
}

# ---------------------------------------------------------------- main

case $PGVAULT in /*) ;; *) PGVAULT=$PWD/$PGVAULT ;; esac
[ -x "$PGVAULT" ] || die "$PGVAULT not found: run 'make' first (or set PGVAULT_BIN)"
BINDIR=$(find_bindir)
[ -x "$BINDIR/pg_ctl" ] || die "no pg_ctl in $BINDIR"
PGUSER_OS=
if [ "$(id -u)" = 0 ]; then
	PGUSER_OS=${DEMO_PGUSER:-postgres}
	id "$PGUSER_OS" >/dev/null 2>&1 || die "user $PGUSER_OS does not exist (set DEMO_PGUSER)"
fi

stop_server immediate  # a server left by an earlier KEEP=1 run
PGPORT=$(free_port)
# Every client below (psql, pgbench, pgvault) talks to the demo server only.
unset PGSERVICE PGPASSWORD PGOPTIONS PGSSLMODE PGDATA
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres PGDATABASE=postgres
export PATH="$BINDIR:$PATH"
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '%spgvault demo%s: %s\n' "$bold" "$reset" "$("$PGVAULT" --version 2>/dev/null || echo "$PGVAULT")"
for step in "${STEPS[@]}"; do
	"$step"
done
step_finish
