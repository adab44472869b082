#!/usr/bin/env bash
# storage.sh: physical backup and restore of the benchmark dataset to a posix
# repository and to an S3 emulator (s3rver) on loopback, side by side with
# pgBackRest 2.45 against the same emulator.
#
#   bench/storage.sh [SIZE] [--runs N]
#
# SIZE defaults to 1.5GB (built by make-dataset.sh when missing); QUICK=1
# means 150MB.  Medians of N runs (default 3, or $RUNS), each into a fresh
# repository (nothing deduplicates against an earlier run):
#
#   backup     pgvault backup --physical to a directory, to s3://, and
#              pgBackRest --type=full with repo1-type=s3 (path style, TLS
#              verification off for the emulator's self-signed certificate)
#   restore    of that backup into a new directory (files only, no recovery)
#
# Reported: seconds (wall) and CPU seconds of the client (user + system,
# children included) and of the emulator; throughput (bytes of the data
# directory per second); the S3/posix throughput ratio (target: at least
# 0.70); requests per GiB stored, counted from pgvault's debug log of every
# HTTP request (one line per attempt, retries included) over the bytes the
# backup stored (for a restore: per GiB of the backup it reads).  s3rver
# (npm, pinned as in tests/e2e/emulators.py) runs on 127.0.0.1 with TLS and
# NODE_OPTIONS=--openssl-legacy-provider, its data on the benchmark disk; it
# is installed into tests/e2e/.npm when missing and stopped at the end.  The
# WAL archive goes to all three repositories through one archive_command
# script.  Figures to stdout and, as JSON, to bench/results/storage-<time>.json.
# PGVAULT_BIN picks the binary (default build/pgvault).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
	exit "${1:-0}"
}

SIZE=
RUNS=${RUNS:-3}
if [ "${QUICK:-0}" = 1 ]; then SIZE=150MB; fi
while [ $# -gt 0 ]; do
	case $1 in
	--runs) RUNS=$2; shift 2 ;;
	--runs=*) RUNS=${1#*=}; shift ;;
	-h | --help) usage 0 ;;
	-*) echo "storage.sh: unknown option '$1'" >&2; usage 2 ;;
	*) SIZE=$1; shift ;;
	esac
done
SIZE=${SIZE:-1.5GB}
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
PGV=${PGVAULT_BIN:-$REPO_ROOT/build/pgvault}
[ -x "$PGV" ] || die "pgvault binary not found at $PGV (build it, or set PGVAULT_BIN)"
command -v node >/dev/null || die "node is not installed (scripts/install-deps.sh installs it): no S3 emulator"
HAVE_PGBR=1
command -v pgbackrest >/dev/null || { HAVE_PGBR=0; log "pgbackrest is not installed: pgvault only"; }

NPM_DIR=$REPO_ROOT/tests/e2e/.npm
S3RVER=$NPM_DIR/node_modules/.bin/s3rver
if [ ! -x "$S3RVER" ]; then
	command -v npm >/dev/null || die "npm is not installed: cannot install s3rver"
	log "installing s3rver into $NPM_DIR"
	mkdir -p "$NPM_DIR"
	(flock 9; [ -x "$S3RVER" ] || npm install --no-audit --no-fund --prefix "$NPM_DIR" \
		s3rver@3.7.1 azurite@3.35.0 >/dev/null) 9>"$NPM_DIR/.lock"
fi

DSDIR=$(dataset_dir "$SIZE")
if [ ! -f "$DSDIR/dataset.json" ]; then
	log "no $SIZE dataset yet: building it"
	"$BENCH_SRC/make-dataset.sh" "$SIZE"
fi
STAMP=$(date +%Y%m%d-%H%M%S)
WORK=$BENCH_DIR/storage-$STAMP
OUT=$RESULTS_DIR/storage-$STAMP.json
mkdir -p "$WORK" "$RESULTS_DIR"
chmod 755 "$WORK"
S3PID=
ORIG_ARCHIVE_COMMAND=

finish() {
	local rc=$?
	if [ -n "${PGPORT:-}" ] && [ -n "$ORIG_ARCHIVE_COMMAND" ]; then
		psql_q -d postgres -v orig="$ORIG_ARCHIVE_COMMAND" >/dev/null 2>&1 <<-'SQL' || true
			ALTER SYSTEM SET archive_command = :'orig';
			SELECT pg_reload_conf();
		SQL
	fi
	stop_started_cluster
	if [ -n "$S3PID" ]; then
		kill -TERM -- "-$S3PID" 2>/dev/null || true
		wait "$S3PID" 2>/dev/null || true
	fi
	[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
	return "$rc"
}
trap finish EXIT

# ------------------------------------------------------------ the emulator

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 2 \
	-subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost" \
	>/dev/null 2>&1 || die "openssl could not make a certificate"
chmod 644 "$WORK/cert.pem"
S3PORT=$(free_port)
mkdir -p "$WORK/s3data"
NODE_OPTIONS=--openssl-legacy-provider setsid "$S3RVER" -d "$WORK/s3data" -a 127.0.0.1 -p "$S3PORT" \
	--silent --key "$WORK/key.pem" --cert "$WORK/cert.pem" --service-endpoint localhost \
	--configure-bucket pgv --configure-bucket pgbr >"$WORK/s3rver.log" 2>&1 &
S3PID=$!
for ((i = 0; i < 200; i++)); do
	"$PY" -c "import socket, sys; socket.create_connection(('127.0.0.1', $S3PORT), 0.2)" 2>/dev/null && break
	kill -0 "$S3PID" 2>/dev/null || { cat "$WORK/s3rver.log" >&2; die "s3rver exited"; }
	sleep 0.1
done
# the emulator's CPU seconds (utime + stime of the node process; setsid kept its pid)
s3_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$S3PID/stat"; }
S3ENV=(env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
	AWS_ENDPOINT_URL=https://127.0.0.1:$S3PORT AWS_CA_BUNDLE=$WORK/cert.pem)

cluster_start "$DSDIR"
export PGDATABASE=bench
PGDATA_DIR=$DSDIR/data
DBSIZE=$(scalar bench "SELECT pg_database_size(current_database())")
CLUSTER_BYTES=$(du_bytes "$PGDATA_DIR")
CONN=(-h 127.0.0.1 -p "$PGPORT" -U postgres -d bench)

# ------------------------------------------------------------ pgBackRest on S3

PGBR_CONF=$WORK/pgbackrest/pgbackrest.conf
mkdir -p "$WORK/pgbackrest/log" "$WORK/pgbackrest/lock" "$WORK/pgbackrest/spool"
cat >"$PGBR_CONF" <<EOF
[global]
repo1-type=s3
repo1-path=/run0
repo1-s3-bucket=pgbr
repo1-s3-endpoint=127.0.0.1
repo1-storage-port=$S3PORT
repo1-s3-uri-style=path
repo1-s3-region=us-east-1
repo1-s3-key=S3RVER
repo1-s3-key-secret=S3RVER
repo1-storage-verify-tls=n
repo1-retention-full=9999
log-path=$WORK/pgbackrest/log
lock-path=$WORK/pgbackrest/lock
spool-path=$WORK/pgbackrest/spool
log-level-console=warn
log-level-file=off
process-max=2
compress-type=zst
compress-level=3
start-fast=y

[bench]
pg1-path=$PGDATA_DIR
pg1-port=$PGPORT
pg1-user=postgres
pg1-socket-path=$DSDIR/sock
EOF
give_to_pg "$WORK"
# as_pg as a command prefix, for timeit (which runs commands, not shell functions)
AS_PG=()
[ -z "$PGUSER_OS" ] || AS_PG=(runuser -u "$PGUSER_OS" --)
PGBR=("${AS_PG[@]}" pgbackrest --config="$PGBR_CONF" --stanza=bench)
if [ "$HAVE_PGBR" = 1 ] && ! "${PGBR[@]}" --repo1-path=/probe stanza-create >"$WORK/pgbr-probe.log" 2>&1; then
	log "pgBackRest cannot use s3rver here ($(tail -n1 "$WORK/pgbr-probe.log")): pgvault only"
	HAVE_PGBR=0
fi

# ------------------------------------------------------------ WAL archive to every repository

# archive.sh reads the current run's repositories from targets.sh
cat >"$WORK/archive.sh" <<EOF
#!/usr/bin/env bash
set -e
. "$WORK/targets.sh"
"$PGV" archive-push --repo "\$POSIX_REPO" --source bench "\$1"
${S3ENV[*]} "$PGV" archive-push --repo "\$S3_REPO" --source bench "\$1"
[ "\$PGBR_PATH" = none ] || pgbackrest --config="$PGBR_CONF" --stanza=bench --repo1-path="\$PGBR_PATH" archive-push "\$1"
EOF
chmod 755 "$WORK/archive.sh"
give_to_pg "$WORK"

new_repos() { # RUN: fresh repositories for run RUN, archived to from now on
	local r=$1
	POSIX_REPO=$WORK/pgvault-$r
	S3_REPO=s3://pgv/run$r
	PGBR_PATH=none
	as_pg "$PGV" init --repo "$POSIX_REPO" --compression zstd:3 >/dev/null
	as_pg "${S3ENV[@]}" "$PGV" init --repo "$S3_REPO" --compression zstd:3 >/dev/null
	if [ "$HAVE_PGBR" = 1 ]; then
		PGBR_PATH=/run$r
		"${PGBR[@]}" --repo1-path="$PGBR_PATH" stanza-create >/dev/null
	fi
	printf 'POSIX_REPO=%q\nS3_REPO=%q\nPGBR_PATH=%q\n' "$POSIX_REPO" "$S3_REPO" "$PGBR_PATH" >"$WORK/targets.sh"
	give_to_pg "$WORK/targets.sh"
	# finish the segment in progress, so every repository has the WAL from here on
	scalar postgres "SELECT pg_switch_wal()" >/dev/null
	sleep 1
}
new_repos 0
ORIG_ARCHIVE_COMMAND=$(scalar postgres "SHOW archive_command")
# (pgBackRest insists that archive_command mentions pgbackrest: the last word, which archive.sh ignores)
psql_q -d postgres -c "ALTER SYSTEM SET archive_command = '$WORK/archive.sh %p pgbackrest'" \
	-c "SELECT pg_reload_conf()" >/dev/null

# ------------------------------------------------------------ helpers

declare -A SECS=() CPU=() EMU=() BYTES=() REQS=()

# timeit KEY CMD...: wall and CPU seconds (children included) of CMD, and the emulator's CPU
timeit() {
	local key=$1 e0 e1 res
	shift
	e0=$(s3_cpu)
	"$PY" -c '
import os, resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[2:], stdin=subprocess.DEVNULL)
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%d %.3f %.3f\n" % (rc, wall, ru.ru_utime + ru.ru_stime))
' "$WORK/timeit" "$@"
	e1=$(s3_cpu)
	read -r -a res <"$WORK/timeit"
	[ "${res[0]}" = 0 ] || die "'$key' failed (exit ${res[0]})"
	SECS[$key]+="${res[1]} "
	CPU[$key]+="${res[2]} "
	EMU[$key]+="$("$PY" -c "print(round($e1 - $e0, 2))") "
}
median() { "$PY" -c 'import statistics, sys; v = [float(x) for x in sys.argv[1:]]; print(statistics.median(v) if v else "null")' $1; }
pgv_json() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
count_requests() { grep -c 's3: \(GET\|PUT\|POST\|HEAD\|DELETE\) .* -> ' "$1" || true; }
pgbr_last() { # repository size of the newest pgBackRest backup
	"${PGBR[@]}" --repo1-path="$1" --output=json info |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["backup"][-1]["info"]["repository"]["size"])'
}
BACKUP_ARGS=(backup --physical --source bench --pgdata "$PGDATA_DIR" "${CONN[@]}" -j 2 --json)

# ------------------------------------------------------------ runs

log "database bench: $(human_bytes "$DBSIZE") (cluster $(human_bytes "$CLUSTER_BYTES")); $RUNS run(s); s3rver on port $S3PORT; scratch in $WORK"
for ((r = 1; r <= RUNS; r++)); do
	new_repos "$r"
	log "run $r: backups"
	timeit pgvault_posix_backup "${AS_PG[@]}" "$PGV" "${BACKUP_ARGS[@]}" --repo "$POSIX_REPO" >"$WORK/b-posix.json"
	BYTES[pgvault_posix_backup]+="$(pgv_json new_bytes <"$WORK/b-posix.json") "
	timeit pgvault_s3_backup "${AS_PG[@]}" "${S3ENV[@]}" "$PGV" "${BACKUP_ARGS[@]}" --repo "$S3_REPO" \
		--log-level debug >"$WORK/b-s3.json" 2>"$WORK/b-s3.log"
	BYTES[pgvault_s3_backup]+="$(pgv_json new_bytes <"$WORK/b-s3.json") "
	REQS[pgvault_s3_backup]+="$(count_requests "$WORK/b-s3.log") "
	if [ "$HAVE_PGBR" = 1 ]; then
		timeit pgbackrest_s3_backup "${PGBR[@]}" --repo1-path="$PGBR_PATH" --type=full backup
		BYTES[pgbackrest_s3_backup]+="$(pgbr_last "$PGBR_PATH") "
	fi
	log "run $r: restores"
	timeit pgvault_posix_restore "${AS_PG[@]}" "$PGV" restore latest --repo "$POSIX_REPO" --source bench \
		--pgdata "$WORK/restore-posix" -j 2
	rm -rf "$WORK/restore-posix"
	timeit pgvault_s3_restore "${AS_PG[@]}" "${S3ENV[@]}" "$PGV" restore latest --repo "$S3_REPO" --source bench \
		--pgdata "$WORK/restore-s3" -j 2 --log-level debug 2>"$WORK/r-s3.log"
	REQS[pgvault_s3_restore]+="$(count_requests "$WORK/r-s3.log") "
	BYTES[pgvault_s3_restore]+="$(pgv_json stored_bytes <"$WORK/b-s3.json") "  # what it reads
	rm -rf "$WORK/restore-s3"
	if [ "$HAVE_PGBR" = 1 ]; then
		as_pg mkdir -p "$WORK/restore-pgbr"
		timeit pgbackrest_s3_restore "${PGBR[@]}" --repo1-path="$PGBR_PATH" --pg1-path="$WORK/restore-pgbr" restore
		rm -rf "$WORK/restore-pgbr"
	fi
done

# ------------------------------------------------------------ report

{
	printf '{"size": "%s", "database_bytes": %s, "cluster_bytes": %s, "runs": %s, "cpus": %s, "loadavg": "%s", "pgbackrest": %s, "results": {' \
		"$SIZE" "$DBSIZE" "$CLUSTER_BYTES" "$RUNS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
		"$([ "$HAVE_PGBR" = 1 ] && echo true || echo false)"
	sep=
	for k in pgvault_posix_backup pgvault_s3_backup pgbackrest_s3_backup pgvault_posix_restore \
		pgvault_s3_restore pgbackrest_s3_restore; do
		[ -n "${SECS[$k]:-}" ] || continue
		printf '%s"%s": {"seconds": [%s], "median_seconds": %s, "median_cpu_seconds": %s, "median_emulator_cpu_seconds": %s, "median_bytes": %s, "median_requests": %s}' \
			"$sep" "$k" "$(echo ${SECS[$k]} | tr ' ' ',')" "$(median "${SECS[$k]}")" \
			"$(median "${CPU[$k]}")" "$(median "${EMU[$k]}")" "$(median "${BYTES[$k]:-}")" \
			"$(median "${REQS[$k]:-}")"
		sep=", "
	done
	printf '}}\n'
} >"$OUT"
"$PY" - "$OUT" <<-'PY'
	import json, sys
	doc = json.load(open(sys.argv[1]))
	d, db = doc["results"], doc["cluster_bytes"]
	MiB, GiB = 1048576, 1073741824
	print("%-24s %8s %8s %9s %9s %10s %10s" % ("", "wall s", "cpu s", "s3rver s", "MiB/s", "stored MiB", "req/GiB"))
	for k, v in d.items():
	    req = v["median_requests"]
	    per = "%.0f" % (req / (v["median_bytes"] / GiB)) if req is not None and v["median_bytes"] else "-"
	    print("%-24s %8.2f %8.2f %9.2f %9.1f %10s %10s" % (
	        k, v["median_seconds"], v["median_cpu_seconds"], v["median_emulator_cpu_seconds"],
	        db / MiB / v["median_seconds"],
	        "%.1f" % (v["median_bytes"] / MiB) if v["median_bytes"] else "-", per))
	for op in ("backup", "restore"):
	    p, s = d["pgvault_posix_" + op], d["pgvault_s3_" + op]
	    print("S3/posix throughput, %s: %.2f (target >= 0.70)" % (op, p["median_seconds"] / s["median_seconds"]))
	    if "pgbackrest_s3_" + op in d:
	        b = d["pgbackrest_s3_" + op]
	        print("pgvault/pgBackRest S3 throughput, %s: %.2f" % (op, b["median_seconds"] / s["median_seconds"]))
	print("(MiB/s: the cluster's data directory, %.1f MiB, per wall second; req/GiB: HTTP requests per GiB "
	      "stored (a restore reads the whole backup), from pgvault's debug log; load average at the end %s)"
	      % (db / MiB, doc["loadavg"]))
PY
log "results in $OUT"
