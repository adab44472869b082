# lib.sh: helpers shared by the benchmark scripts in bench/ (sourced): paths,
# the scratch cluster, the command line, timing and the result files.
#
# Layout of the benchmark work area ($PGVAULT_BENCH_DIR, default bench/work/):
#   dataset-<SIZE>/data        a scratch cluster holding database "bench"
#   dataset-<SIZE>/sock        its unix socket directory
#   dataset-<SIZE>/server.log  its log
#   dataset-<SIZE>/dataset.json  what make-dataset.sh measured (size, ratio)
#   <script>-<timestamp>/      a script's scratch outputs (removed at the end
#                              unless KEEP=1; see bench_workdir)
# The scripts' JSON results go to bench/results/ ($PGVAULT_BENCH_RESULTS).
#
# A scratch cluster is stopped whenever a script is done with it; the port is
# chosen afresh at every start.  When we are root, the server runs as an
# unprivileged user ($BENCH_PGUSER, default postgres).
#
# An area script (logical.sh, for one) goes:
#
#   bench_options 1 runs=RUNS out=OUT -- "$@"  # SIZE, RUNS, OUT, PGVAULT; --help
#   dataset_ready "$SIZE"                      # DSDIR, the dataset built if missing
#   bench_workdir NAME                         # WORK, OUT, RAW
#   trap bench_cleanup EXIT
#   dataset_start                              # the cluster up; DB, CONN
#   measure 1 NAME CMD...                      # figures into $RAW
#   bench_python "$RAW" "$OUT" <<-'PY'         # the JSON file and the table, with
#   	...                                    # load_raw, machine_info, load_json
#   PY

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

# delta A B [DIGITS]: B - A rounded to DIGITS (default 3) places, e.g. seconds between two now()s
delta() { "$PY" -c "print(round($2 - $1, ${3:-3}))"; }

# loadavg: the 1, 5 and 15 minute load averages, e.g. "0.52 0.71 0.80"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ------------------------------------------------------------ the command line

# usage [STATUS]: print the running script's header comment (its --help) and
# exit with STATUS (default 0)
usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[-1]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
	exit "${1:-0}"
}

# bench_parse_args SPEC... -- ARG...: parse a script's command line.  Each
# SPEC word names an option: NAME=VAR takes a value (--NAME V or --NAME=V sets
# VAR), NAME!VAR is a flag (--NAME sets VAR to 1).  -h/--help prints the help;
# another option is an error (exit 2); any other word is the SIZE: it sets
# SIZE, and BENCH_NPOS counts such words.
bench_parse_args() {
	local -A value=() flag=()
	local opt
	while [ "$1" != -- ]; do
		case $1 in
		*=*) value[${1%%=*}]=${1#*=} ;;
		*!*) flag[${1%%!*}]=${1#*!} ;;
		esac
		shift
	done
	shift
	BENCH_NPOS=0
	while [ $# -gt 0 ]; do
		opt=${1#--}
		opt=${opt%%=*}
		opt=${opt:--}
		if [ "$1" = -h ] || [ "$1" = --help ]; then
			usage 0
		elif [[ $1 == --"$opt"=* ]] && [ -n "${value[$opt]:-}" ]; then
			printf -v "${value[$opt]}" '%s' "${1#*=}"
			shift
		elif [ "$1" = "--$opt" ] && [ -n "${value[$opt]:-}" ]; then
			[ $# -ge 2 ] || die "$1 needs a value"
			printf -v "${value[$opt]}" '%s' "$2"
			shift 2
		elif [ "$1" = "--$opt" ] && [ -n "${flag[$opt]:-}" ]; then
			printf -v "${flag[$opt]}" 1
			shift
		elif [[ $1 == -* ]]; then
			echo "$(basename "${BASH_SOURCE[-1]}"): unknown option '$1'" >&2
			usage 2
		else
			SIZE=$1
			BENCH_NPOS=$((BENCH_NPOS + 1))
			shift
		fi
	done
}

# require_count NAME VALUE: die unless VALUE (option --NAME) is a positive whole number
require_count() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "--$1 must be a positive number"; }

# find_pgvault: set PGVAULT to $PGVAULT_BIN (default build/pgvault); die if it is not there
find_pgvault() {
	PGVAULT=${PGVAULT_BIN:-$REPO_ROOT/build/pgvault}
	[ -x "$PGVAULT" ] || die "pgvault binary not found at $PGVAULT (build it, or set PGVAULT_BIN)"
}

# bench_options QUICK_RUNS SPEC... -- ARG...: the start of a script that times
# pgvault on a dataset: SIZE (default 1.5GB), RUNS (default $RUNS, else 3),
# JOBS (default 2) and OUT (default empty) from the command line, parsed with
# bench_parse_args SPEC..., and checked; QUICK=1 means SIZE 150MB and, unless
# QUICK_RUNS is empty, RUNS=QUICK_RUNS (the options still win).  Then PGVAULT
# (find_pgvault).
bench_options() {
	SIZE=
	RUNS=${RUNS:-3}
	JOBS=2
	OUT=
	if [ "${QUICK:-0}" = 1 ]; then
		SIZE=150MB
		RUNS=${1:-$RUNS}
	fi
	shift
	bench_parse_args "$@"
	SIZE=${SIZE:-1.5GB}
	require_count runs "$RUNS"
	require_count jobs "$JOBS"
	find_pgvault
}

# ------------------------------------------------------------ scratch cluster

dataset_dir() { echo "$BENCH_DIR/dataset-$1"; }

# dataset_ready SIZE: set DSDIR to the SIZE dataset's directory, running
# make-dataset.sh first when it has not been built
dataset_ready() {
	DSDIR=$(dataset_dir "$1")
	if [ ! -f "$DSDIR/dataset.json" ]; then
		log "no $1 dataset yet: building it"
		"$BENCH_SRC/make-dataset.sh" "$1"
	fi
}

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

# ------------------------------------------------------------ a run's files

# bench_workdir NAME: STAMP (the start time), WORK=$BENCH_DIR/NAME-STAMP (made),
# RAW=$WORK/raw.tsv (made empty, for record) and, unless set already (--out),
# OUT=$RESULTS_DIR/NAME-STAMP.json
bench_workdir() {
	STAMP=$(date +%Y%m%d-%H%M%S)
	WORK=$BENCH_DIR/$1-$STAMP
	OUT=${OUT:-$RESULTS_DIR/$1-$STAMP.json}
	RAW=$WORK/raw.tsv
	mkdir -p "$WORK" "$RESULTS_DIR"
	: >"$RAW"
}

# bench_cleanup: for EXIT traps: drop the scratch databases DROP_AT_EXIT
# names (once a server was chosen: PGPORT), put back the server's
# archive_command (when archive_command_set changed it), stop the cluster
# cluster_start started and remove $WORK (KEEP=1 keeps it)
DROP_AT_EXIT=
bench_cleanup() {
	local db
	for db in $DROP_AT_EXIT; do
		[ -z "${PGPORT:-}" ] ||
			psql_q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
	done
	archive_command_restore
	stop_started_cluster
	[ "${KEEP:-0}" = 1 ] || [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

# dataset_start: start the dataset's cluster in $DSDIR (cluster_start) and
# set DB=bench (PGDATABASE too) and CONN, pgvault's options to reach it
dataset_start() {
	cluster_start "$DSDIR"
	DB=bench
	export PGDATABASE=$DB
	CONN=(-h "$PGHOST" -p "$PGPORT" -U postgres)
}

# record RUN METRIC VALUE: one figure, as a line of $RAW (load_raw reads them)
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RAW"; }

# measure RUN NAME CMD...: run CMD under /usr/bin/time -v, its stdout to
# $WORK/out and stderr to $WORK/err (both shown, and the script dies, when it
# fails), and record for RUN the figures MEASURE_FIELDS names, in its order,
# as NAME_<field>:
#   s                     wall seconds
#   rss_kb                peak RSS of CMD in kB
#   cpu_s, client_cpu_s   user + system seconds of CMD and the children it waited for
#   server_cpu_s          CPU seconds of the cluster in $DSDIR meanwhile (cluster_cpu)
MEASURE_FIELDS="s rss_kb client_cpu_s server_cpu_s"
measure() {
	local run=$1 name=$2 t0 t1 c0= c1= f v rc=0 server=0
	shift 2
	[[ " $MEASURE_FIELDS " != *" server_cpu_s "* ]] || server=1
	[ "$server" = 0 ] || c0=$(cluster_cpu "$DSDIR")
	t0=$(now)
	/usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	t1=$(now)
	if [ "$server" = 1 ]; then
		sleep 0.2	# let the postmaster reap the backends that just ended
		c1=$(cluster_cpu "$DSDIR")
	fi
	[ "$rc" = 0 ] || { cat "$WORK/err" "$WORK/out" >&2; die "'$*' failed with exit status $rc"; }
	for f in $MEASURE_FIELDS; do
		case $f in
		s) v=$(delta "$t0" "$t1") ;;
		rss_kb) v=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt") ;;
		cpu_s | client_cpu_s) v=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$WORK/time.txt") ;;
		server_cpu_s) v=$(delta "$c0" "$c1") ;;
		*) die "measure: unknown field '$f' in MEASURE_FIELDS" ;;
		esac
		record "$run" "${name}_$f" "$v"
	done
}

# json_field KEY [FILE]: the value of KEY in the JSON object in FILE (default
# $WORK/out, the last measured command's stdout)
json_field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "${2:-$WORK/out}" "$1"; }

# median "V V ...": the median of the numbers, or null when there are none
median() { "$PY" -c 'import statistics, sys; v = [float(x) for x in sys.argv[1:]]; print(statistics.median(v) if v else "null")' $1; }

# commas "V V ...": the words joined by commas (the items of a JSON array)
commas() { local v=($1); (IFS=,; echo "${v[*]}"); }

# ------------------------------------------------------------ the server's archive_command

ARCHIVE_COMMAND_SAVED=0
ORIG_ARCHIVE_COMMAND=

# archive_command_set COMMAND: the server's archive_command from now on (ALTER
# SYSTEM, then a reload); the first call keeps the one it replaces for
# archive_command_restore
archive_command_set() {
	if [ "$ARCHIVE_COMMAND_SAVED" = 0 ]; then
		ORIG_ARCHIVE_COMMAND=$(scalar postgres "SHOW archive_command")
		ARCHIVE_COMMAND_SAVED=1
	fi
	psql_q -d postgres -v cmd="$1" >/dev/null <<-'SQL'
		ALTER SYSTEM SET archive_command = :'cmd';
		SELECT pg_reload_conf();
	SQL
}

# archive_command_restore: put back the archive_command archive_command_set
# replaced, if it did; never fails (for EXIT traps)
archive_command_restore() {
	[ "$ARCHIVE_COMMAND_SAVED" = 1 ] && [ -n "${PGPORT:-}" ] || return 0
	psql_q -d postgres -v orig="$ORIG_ARCHIVE_COMMAND" >/dev/null 2>&1 <<-'SQL' || true
		ALTER SYSTEM SET archive_command = :'orig';
		SELECT pg_reload_conf();
	SQL
}

# ------------------------------------------------------------ pgBackRest

# pgbackrest_conf DIR PGDATA PORT SOCKDIR [REPO_LINE...]: write
# PGBR_CONF=DIR/pgbackrest.conf for stanza "bench" on the server at PGDATA,
# PORT and SOCKDIR (empty: pgBackRest's default): zstd level 3, process-max=2,
# start-fast, no retention limit, logs, locks and spool under DIR (made).
# The REPO_LINEs say where repository 1 is; without them it is DIR/repo (made).
pgbackrest_conf() {
	local dir=$1 pgdata=$2 port=$3 sock=$4
	shift 4
	[ $# -gt 0 ] || { set -- "repo1-path=$dir/repo"; mkdir -p "$dir/repo"; }
	mkdir -p "$dir/log" "$dir/lock" "$dir/spool"
	PGBR_CONF=$dir/pgbackrest.conf
	{
		echo "[global]"
		printf '%s\n' "$@"
		cat <<-EOF
			repo1-retention-full=9999
			log-path=$dir/log
			lock-path=$dir/lock
			spool-path=$dir/spool
			log-level-console=warn
			log-level-file=off
			process-max=2
			compress-type=zst
			compress-level=3
			start-fast=y

			[bench]
			pg1-path=$pgdata
			pg1-port=$port
			pg1-user=postgres
		EOF
		[ -z "$sock" ] || echo "pg1-socket-path=$sock"
	} >"$PGBR_CONF"
}

# pgbackrest_backup_bytes FIELD PGBACKREST_CMD...: the repository FIELD of the
# newest backup ("size": all it stores, "delta": what it added), from the
# info command of PGBACKREST_CMD (pgbackrest with its options)
pgbackrest_backup_bytes() {
	local field=$1
	shift
	"$@" --output=json info | "$PY" -c 'import json, sys
print(json.load(sys.stdin)[0]["backup"][-1]["info"]["repository"][sys.argv[1]])' "$field"
}

# ------------------------------------------------------------ reports

# bench_python ARG... <<'PY': run a script's report step, Python read from
# stdin, with BENCH_PY's imports and helpers defined first
bench_python() { { printf '%s\n' "$BENCH_PY"; cat; } | "$PY" - "$@"; }

BENCH_PY=$(cat <<'PY'
import json, os, platform, statistics, sys, time

def load_raw(path):
    """record's lines -> ({metric: [value of each run]}, {metric: median})"""
    vals = {}
    for line in open(path):
        run, metric, value = line.rstrip("\n").split("\t")
        vals.setdefault(metric, []).append(float(value))
    return vals, {k: statistics.median(v) for k, v in vals.items()}

def machine_info(load0, load1, memory=True):
    """the machine, as the results' "machine": CPUs, platform, [memory,] load averages"""
    cpu = "?"
    for ln in open("/proc/cpuinfo"):
        if ln.startswith("model name"):
            cpu = ln.split(":", 1)[1].strip()
            break
    m = {"nproc": os.cpu_count(), "cpu": cpu, "platform": platform.platform()}
    if memory:
        m["memory_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    m.update(loadavg_start=load0, loadavg_end=load1)
    return m

def load_json(path):
    """the JSON document in path, {} when there is none (no path, no file)"""
    return json.load(open(path)) if path and os.path.exists(path) else {}
PY
)
