# lib.sh: helpers shared by bench/make-dataset.sh and bench/run.sh (sourced).
#
# Layout of the benchmark work area ($PGVAULT_BENCH_DIR, default bench/work/):
#   dataset-<SIZE>/data        a scratch cluster holding database "bench"
#   dataset-<SIZE>/sock        its unix socket directory
#   dataset-<SIZE>/server.log  its log
#   dataset-<SIZE>/dataset.json  what make-dataset.sh measured (size, ratio)
#   run-<timestamp>/           run.sh's scratch outputs (removed at the end)
# run.sh's JSON results go to bench/results/ ($PGVAULT_BENCH_RESULTS).
#
# A scratch cluster is stopped whenever a script is done with it; the port is
# chosen afresh at every start.  When we are root, the server runs as an
# unprivileged user ($BENCH_PGUSER, default postgres).

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_SRC/.." && pwd)
BENCH_DIR=${PGVAULT_BENCH_DIR:-$BENCH_SRC/work}
RESULTS_DIR=${PGVAULT_BENCH_RESULTS:-$BENCH_SRC/results}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

pg_bindir() {
	if [ -n "${PGVAULT_PG_BINDIR:-}" ]; then
		echo "$PGVAULT_PG_BINDIR"
	elif [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		/usr/lib/postgresql/15/bin/pg_config --bindir
	else
		die "PostgreSQL 15 not found: install postgresql-15 or set PGVAULT_PG_BINDIR"
	fi
}
BINDIR=$(pg_bindir)

PGUSER_OS=
if [ "$(id -u)" = 0 ]; then
	PGUSER_OS=${BENCH_PGUSER:-postgres}
	id "$PGUSER_OS" >/dev/null 2>&1 || die "user $PGUSER_OS does not exist (set BENCH_PGUSER)"
fi

# as_pg CMD...: run as the server's OS user
as_pg() {
	if [ -n "$PGUSER_OS" ]; then
		runuser -u "$PGUSER_OS" -- "$@"
	else
		"$@"
	fi
}

# give_to_pg PATH...: make paths owned by the server's OS user
give_to_pg() {
	[ -z "$PGUSER_OS" ] || chown -R "$PGUSER_OS:" "$@"
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# size_to_bytes 1.5GB -> 1610612736 (K/M/G/T, with or without i/B: powers of 1024)
size_to_bytes() {
	"$PY" - "$1" <<-'PY'
		import re, sys
		m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", sys.argv[1], re.I)
		if not m:
		    sys.exit("bad size %r: use e.g. 150MB or 1.5GB" % sys.argv[1])
		mult = 1024 ** " kmgt".index(m.group(2).lower() or " ")
		print(int(float(m.group(1)) * mult))
	PY
}

human_bytes() {
	"$PY" -c '
import sys
n = float(sys.argv[1])
for u in ("B", "KiB", "MiB", "GiB", "TiB"):
    if n < 1024 or u == "TiB":
        print(("%d %s" if u == "B" else "%.1f %s") % (n, u)); break
    n /= 1024' "$1"
}

# du_bytes PATH: apparent size of a file or directory tree in bytes
du_bytes() { du -sb "$1" | cut -f1; }

# now: seconds since the epoch with microseconds (bash 5's EPOCHREALTIME)
now() { echo "${EPOCHREALTIME/,/.}"; }

# ------------------------------------------------------------ scratch cluster

dataset_dir() { echo "$BENCH_DIR/dataset-$1"; }

# cluster_init DIR: initdb with settings fit for benchmarking (fsync stays on)
cluster_init() {
	local dir=$1
	mkdir -p "$dir/sock"
	give_to_pg "$dir"
	as_pg "$BINDIR/initdb" -D "$dir/data" -U postgres -A trust --data-checksums \
		-E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; die "initdb failed"; }
	cat >>"$dir/data/postgresql.conf" <<-EOF

		# bench/lib.sh settings
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$dir/sock'
		shared_buffers = 256MB
		maintenance_work_mem = 256MB
		max_wal_size = 4GB
		checkpoint_timeout = 30min
		wal_level = replica
		archive_mode = on
		archive_command = '/bin/true'
		max_wal_senders = 10
		logging_collector = off
		log_checkpoints = off
	EOF
}

# cluster_start DIR: start on a free port; sets and exports PGPORT/PGHOST
cluster_start() {
	local dir=$1
	PGPORT=$(free_port)
	as_pg "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $PGPORT" \
		-w -t 120 start >/dev/null ||
		{ tail -n 20 "$dir/server.log" >&2; die "could not start the server in $dir"; }
	echo "$PGPORT" >"$dir/port"
	export PGHOST=127.0.0.1 PGPORT PGUSER=postgres
	STARTED_CLUSTER=$dir
}

# cluster_stop DIR: fast shutdown, then SIGKILL if it is still there
cluster_stop() {
	local dir=$1 pid
	[ -f "$dir/data/postmaster.pid" ] || return 0
	pid=$(head -n1 "$dir/data/postmaster.pid" 2>/dev/null || true)
	as_pg "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 120 stop >/dev/null 2>&1 || true
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		grep -q postgres "/proc/$pid/cmdline" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	[ "${STARTED_CLUSTER:-}" != "$dir" ] || STARTED_CLUSTER=
}

# stop_started_cluster: for EXIT traps
stop_started_cluster() {
	[ -z "${STARTED_CLUSTER:-}" ] || cluster_stop "$STARTED_CLUSTER"
}

# cluster_cpu DIR: CPU seconds used so far by the cluster in DIR/data: the
# postmaster, its live children, and the children it has reaped (backends
# that ended)
cluster_cpu() {
	"$PY" - "$(head -n1 "$1/data/postmaster.pid")" <<-'PY'
		import os, sys
		pm, hz, total = int(sys.argv[1]), os.sysconf("SC_CLK_TCK"), 0
		def stat(pid):
		    return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
		s = stat(pm)
		total += sum(int(x) for x in s[11:15])
		for d in os.listdir("/proc"):
		    if d.isdigit():
		        try:
		            s = stat(int(d))
		        except OSError:
		            continue
		        if int(s[1]) == pm:
		            total += int(s[11]) + int(s[12])
		print(total / hz)
	PY
}

# psql_q [psql options] -c SQL: a quiet psql that stops on the first error
psql_q() { "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# scalar DB SQL: one value
scalar() { "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
