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

bench_options "" runs=RUNS -- "$@"
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

dataset_ready "$SIZE"
bench_workdir storage
chmod 755 "$WORK"
S3PID=

finish() {
	local rc=$?
	if [ -n "$S3PID" ]; then
		kill -TERM -- "-$S3PID" 2>/dev/null || true
		wait "$S3PID" 2>/dev/null || true
	fi
	bench_cleanup   # puts the archive_command back too
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

dataset_start
PGDATA_DIR=$DSDIR/data
DBSIZE=$(scalar bench "SELECT pg_database_size(current_database())")
CLUSTER_BYTES=$(du_bytes "$PGDATA_DIR")
CONN+=(-d bench)

# ------------------------------------------------------------ pgBackRest on S3

pgbackrest_conf "$WORK/pgbackrest" "$PGDATA_DIR" "$PGPORT" "$DSDIR/sock" \
	repo1-type=s3 repo1-path=/run0 repo1-s3-bucket=pgbr repo1-s3-endpoint=127.0.0.1 \
	"repo1-storage-port=$S3PORT" repo1-s3-uri-style=path repo1-s3-region=us-east-1 \
	repo1-s3-key=S3RVER repo1-s3-key-secret=S3RVER repo1-storage-verify-tls=n   # PGBR_CONF
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
"$PGVAULT" archive-push --repo "\$POSIX_REPO" --source bench "\$1"
${S3ENV[*]} "$PGVAULT" archive-push --repo "\$S3_REPO" --source bench "\$1"
[ "\$PGBR_PATH" = none ] || pgbackrest --config="$PGBR_CONF" --stanza=bench --repo1-path="\$PGBR_PATH" archive-push "\$1"
EOF
chmod 755 "$WORK/archive.sh"
give_to_pg "$WORK"

new_repos() { # RUN: fresh repositories for run RUN, archived to from now on
	local r=$1
	POSIX_REPO=$WORK/pgvault-$r
	S3_REPO=s3://pgv/run$r
	PGBR_PATH=none
	as_pg "$PGVAULT" init --repo "$POSIX_REPO" --compression zstd:3 >/dev/null
	as_pg "${S3ENV[@]}" "$PGVAULT" init --repo "$S3_REPO" --compression zstd:3 >/dev/null
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
# (pgBackRest insists that archive_command mentions pgbackrest: the last word, which archive.sh ignores)
archive_command_set "$WORK/archive.sh %p pgbackrest"

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
	EMU[$key]+="$(delta "$e0" "$e1" 2) "
}
count_requests() { grep -c 's3: \(GET\|PUT\|POST\|HEAD\|DELETE\) .* -> ' "$1" || true; }
BACKUP_ARGS=(backup --physical --source bench --pgdata "$PGDATA_DIR" "${CONN[@]}" -j 2 --json)

# ------------------------------------------------------------ runs

log "database bench: $(human_bytes "$DBSIZE") (cluster $(human_bytes "$CLUSTER_BYTES")); $RUNS run(s); s3rver on port $S3PORT; scratch in $WORK"
for ((r = 1; r <= RUNS; r++)); do
	new_repos "$r"
	log "run $r: backups"
	timeit pgvault_posix_backup "${AS_PG[@]}" "$PGVAULT" "${BACKUP_ARGS[@]}" --repo "$POSIX_REPO" >"$WORK/b-posix.json"
	BYTES[pgvault_posix_backup]+="$(json_field new_bytes "$WORK/b-posix.json") "
	timeit pgvault_s3_backup "${AS_PG[@]}" "${S3ENV[@]}" "$PGVAULT" "${BACKUP_ARGS[@]}" --repo "$S3_REPO" \
		--log-level debug >"$WORK/b-s3.json" 2>"$WORK/b-s3.log"
	BYTES[pgvault_s3_backup]+="$(json_field new_bytes "$WORK/b-s3.json") "
	REQS[pgvault_s3_backup]+="$(count_requests "$WORK/b-s3.log") "
	if [ "$HAVE_PGBR" = 1 ]; then
		timeit pgbackrest_s3_backup "${PGBR[@]}" --repo1-path="$PGBR_PATH" --type=full backup
		BYTES[pgbackrest_s3_backup]+="$(pgbackrest_backup_bytes size "${PGBR[@]}" --repo1-path="$PGBR_PATH") "
	fi
	log "run $r: restores"
	timeit pgvault_posix_restore "${AS_PG[@]}" "$PGVAULT" restore latest --repo "$POSIX_REPO" --source bench \
		--pgdata "$WORK/restore-posix" -j 2
	rm -rf "$WORK/restore-posix"
	timeit pgvault_s3_restore "${AS_PG[@]}" "${S3ENV[@]}" "$PGVAULT" restore latest --repo "$S3_REPO" --source bench \
		--pgdata "$WORK/restore-s3" -j 2 --log-level debug 2>"$WORK/r-s3.log"
	REQS[pgvault_s3_restore]+="$(count_requests "$WORK/r-s3.log") "
	BYTES[pgvault_s3_restore]+="$(json_field stored_bytes "$WORK/b-s3.json") "  # what it reads
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
		"$SIZE" "$DBSIZE" "$CLUSTER_BYTES" "$RUNS" "$(nproc)" "$(loadavg)" \
		"$([ "$HAVE_PGBR" = 1 ] && echo true || echo false)"
	sep=
	for k in pgvault_posix_backup pgvault_s3_backup pgbackrest_s3_backup pgvault_posix_restore \
		pgvault_s3_restore pgbackrest_s3_restore; do
		[ -n "${SECS[$k]:-}" ] || continue
		printf '%s"%s": {"seconds": [%s], "median_seconds": %s, "median_cpu_seconds": %s, "median_emulator_cpu_seconds": %s, "median_bytes": %s, "median_requests": %s}' \
			"$sep" "$k" "$(commas "${SECS[$k]}")" "$(median "${SECS[$k]}")" \
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
