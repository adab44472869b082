#!/usr/bin/env bash
# physical.sh: pgvault's physical backups, restores and WAL archiving side by
# side with pgBackRest 2.45 and pg_basebackup, on the benchmark dataset.
#
#   bench/physical.sh [SIZE] [--runs N]
#
# SIZE defaults to 1.5GB (built by make-dataset.sh when missing); QUICK=1
# means 150MB and one run.  Medians of N runs (default 3, or $RUNS):
#
#   full       pgvault backup --physical (a fresh repository each run, so
#              nothing deduplicates against an earlier run), pgBackRest
#              --type=full, pg_basebackup -X stream -c fast (plain)
#   incr       after updating 1% of pgbench_accounts' rows (a contiguous id
#              range, a different one each run) and appending 1% to events:
#              pgvault backup --physical (incremental by construction) and
#              pgBackRest --type=incr; seconds and bytes stored
#   restore    of the latest backup into a new directory (files only, no
#              recovery): pgvault restore and pgBackRest restore
#   push       the server archives 100 new segments through archive_command:
#              seconds from the first pg_switch_wal() until pg_stat_archiver
#              reports the last one archived, sync and async modes
#
# Beside wall seconds, each backup and restore records its CPU seconds (user
# + system of the command's processes, from bash's `times`; not the server's
# side), and the JSON keeps the load average at the end: on a shared machine
# CPU seconds say more than wall time.
#
# Both tools use zstd level 3 and two processes/threads; the server archives
# to both repositories (archive_command runs pgvault archive-push, then
# pgbackrest archive-push).  The figures go to stdout and, as JSON, to
# bench/results/physical-<time>.json.  PGVAULT_BIN picks the binary
# (default build/pgvault).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_options 1 runs=RUNS -- "$@"
command -v pgbackrest >/dev/null || die "pgbackrest is not installed"

dataset_ready "$SIZE"
bench_workdir physical
give_to_pg "$WORK"
trap bench_cleanup EXIT   # puts the archive_command back too
dataset_start
PGDATA_DIR=$DSDIR/data
DBSIZE=$(scalar bench "SELECT pg_database_size(current_database())")
CONN+=(-d bench)

# ------------------------------------------------------------ setup

pgbackrest_conf "$WORK/pgbackrest" "$PGDATA_DIR" "$PGPORT" "$DSDIR/sock"   # PGBR_CONF
give_to_pg "$WORK"
PGBR=(as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench)
# pgvault's repository is reached through a link, so each full run can use a fresh one
PGV_REPO=$WORK/pgvault-repo
new_pgvault_repo() {
	local r=$WORK/pgvault-$1
	as_pg "$PGVAULT" init --repo "$r" --compression zstd:3 >/dev/null
	as_pg ln -sfn "$r" "$PGV_REPO"
}
new_pgvault_repo 0
archive_command_set "$PGVAULT archive-push --repo $PGV_REPO --source bench %p && pgbackrest --config=$PGBR_CONF --stanza=bench archive-push %p"
"${PGBR[@]}" stanza-create >/dev/null

# ------------------------------------------------------------ helpers

declare -A SECS=()   # key -> space-separated seconds of each run
declare -A BYTES=()  # key -> space-separated bytes of each run

declare -A CPU=()   # key -> space-separated CPU seconds (user + system) of each run
# child_cpu: user + system seconds of this shell's finished children so far (bash's `times`)
# (`times` runs in this shell, not in a $(...) subshell, whose children would be its own)
child_cpu() {
	times >"$WORK/times.txt"
	tail -n 1 "$WORK/times.txt" | "$PY" -c 'import re, sys
print(sum(int(m) * 60 + float(s) for m, s in re.findall(r"([0-9]+)m([0-9.]+)s", sys.stdin.read())))'
}
# timeit KEY CMD...: run CMD, record its seconds and CPU seconds under KEY
timeit() {
	local key=$1 t0 t1
	shift
	child_cpu >"$WORK/cpu0"
	t0=$(now)
	"$@" || die "'$*' failed"
	t1=$(now)
	child_cpu >"$WORK/cpu1"
	SECS[$key]+="$(delta "$t0" "$t1") "
	CPU[$key]+="$(delta "$(cat "$WORK/cpu0")" "$(cat "$WORK/cpu1")" 2) "
}
bytes() { BYTES[$1]+="$2 "; }
PGV_BACKUP=(as_pg "$PGVAULT" backup --physical --repo "$PGV_REPO" --source bench --pgdata "$PGDATA_DIR"
	"${CONN[@]}" -j 2 --json)

# ------------------------------------------------------------ full

log "database bench: $(human_bytes "$DBSIZE"); $RUNS run(s); scratch in $WORK; load average $(loadavg)"
for ((r = 1; r <= RUNS; r++)); do
	log "full backups, run $r"
	new_pgvault_repo "$r"
	timeit pgvault_full "${PGV_BACKUP[@]}" >"$WORK/full.json"
	bytes pgvault_full "$(json_field new_bytes "$WORK/full.json")"
	timeit pgbackrest_full "${PGBR[@]}" --type=full backup
	bytes pgbackrest_full "$(pgbackrest_backup_bytes delta "${PGBR[@]}")"
	timeit pg_basebackup "$BINDIR/pg_basebackup" -h 127.0.0.1 -p "$PGPORT" -U postgres \
		-D "$WORK/basebackup" -X stream -c fast
	bytes pg_basebackup "$(du_bytes "$WORK/basebackup")"
	rm -rf "$WORK/basebackup"
done

# ------------------------------------------------------------ incremental

ROWS=$(scalar bench "SELECT count(*) FROM pgbench_accounts")
EVENTS=$(scalar bench "SELECT count(*) FROM events")
MAXID=$(scalar bench "SELECT max(id) FROM events")
for ((r = 1; r <= RUNS; r++)); do
	log "1% changed, incremental backups, run $r"
	lo=$(((r - 1) * ROWS / 100 + 1))
	hi=$((r * ROWS / 100))
	psql_q -d bench -c "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN $lo AND $hi" \
		-c "SELECT bench_append_events($((EVENTS / 100)))" -c "CHECKPOINT" >/dev/null
	timeit pgvault_incr "${PGV_BACKUP[@]}" >"$WORK/incr.json"
	bytes pgvault_incr "$(json_field new_bytes "$WORK/incr.json")"
	timeit pgbackrest_incr "${PGBR[@]}" --type=incr backup
	bytes pgbackrest_incr "$(pgbackrest_backup_bytes delta "${PGBR[@]}")"
done
# the dataset is shared by every bench script: take the appended rows out
# again (the backups above keep them) so that the next run sees the same data
psql_q -d bench -c "DELETE FROM events WHERE id > $MAXID" -c "VACUUM events, pgbench_accounts" >/dev/null

# ------------------------------------------------------------ restore

for ((r = 1; r <= RUNS; r++)); do
	log "restores, run $r"
	timeit pgvault_restore as_pg "$PGVAULT" restore latest --repo "$PGV_REPO" --source bench \
		--pgdata "$WORK/restore-pgvault" -j 2
	bytes pgvault_restore "$(du_bytes "$WORK/restore-pgvault")"
	rm -rf "$WORK/restore-pgvault"
	as_pg mkdir -p "$WORK/restore-pgbackrest"
	timeit pgbackrest_restore "${PGBR[@]}" --pg1-path="$WORK/restore-pgbackrest" restore
	bytes pgbackrest_restore "$(du_bytes "$WORK/restore-pgbackrest")"
	rm -rf "$WORK/restore-pgbackrest"
done

# ------------------------------------------------------------ archive-push

# The server archives 100 new segments through archive_command; timed from
# the first switch until pg_stat_archiver reports the last one archived.
wait_archived() { # SEGMENT: until the server has archived it (or a later one)
	local got
	for ((i = 0; i < 6000; i++)); do
		got=$(scalar postgres "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		if [ "$got" = "$1" ] || [[ "$got" > "$1" ]]; then return 0; fi
		sleep 0.05
	done
	die "segment $1 was not archived within 5 minutes"
}
push_run() { # KEY ARCHIVE_COMMAND
	local last t0 t1
	archive_command_set "$2"
	sleep 0.3
	t0=$(now)
	for ((i = 0; i < 100; i++)); do
		last=$(scalar bench "SELECT pg_walfile_name(pg_current_wal_lsn())")
		psql_q -d bench -c "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, $i, 0, now())" \
			-c "SELECT pg_switch_wal()" >/dev/null
	done
	wait_archived "$last"
	t1=$(now)
	SECS[$1]+="$(delta "$t0" "$t1") "
}
# pgBackRest's async archiver may still hold the stanza's archive lock for a moment
stanza_create() { # REPO_PATH
	for ((i = 0; i < 120; i++)); do
		"${PGBR[@]}" --repo1-path="$1" stanza-create >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	"${PGBR[@]}" --repo1-path="$1" stanza-create
}
as_pg mkdir -p "$WORK/pgvault-spool"
for ((r = 1; r <= RUNS; r++)); do
	for mode in sync async; do
		log "the server archives 100 segments, $mode, run $r"
		as_pg mkdir -p "$WORK/pgbackrest/repo-$mode$r"
		stanza_create "$WORK/pgbackrest/repo-$mode$r"
		flag=
		[ "$mode" = sync ] || flag="--async --spool-path $WORK/pgvault-spool"
		push_run "pgvault_push_$mode" "$PGVAULT archive-push $flag --repo $PGV_REPO --source push$mode$r %p"
		flag=
		[ "$mode" = sync ] || flag=--archive-async
		push_run "pgbackrest_push_$mode" "pgbackrest --config=$PGBR_CONF --stanza=bench $flag --repo1-path=$WORK/pgbackrest/repo-$mode$r archive-push %p"
	done
done

# ------------------------------------------------------------ report

{
	printf '{"size": "%s", "database_bytes": %s, "runs": %s, "cpus": %s, "loadavg_end": "%s", "results": {' \
		"$SIZE" "$DBSIZE" "$RUNS" "$(nproc)" "$(loadavg)"
	sep=
	for k in pgvault_full pgbackrest_full pg_basebackup pgvault_incr pgbackrest_incr \
		pgvault_restore pgbackrest_restore pgvault_push_sync pgbackrest_push_sync \
		pgvault_push_async pgbackrest_push_async; do
		printf '%s"%s": {"seconds": [%s], "median_seconds": %s, "cpu_seconds": [%s], "bytes": [%s], "median_bytes": %s}' \
			"$sep" "$k" "$(commas "${SECS[$k]}")" "$(median "${SECS[$k]}")" "$(commas "${CPU[$k]:-}")" \
			"$(commas "${BYTES[$k]:-}")" "$(median "${BYTES[$k]:-}")"
		sep=", "
	done
	printf '}}\n'
} >"$OUT"
"$PY" - "$OUT" <<-'PY'
	import json, sys
	d = json.load(open(sys.argv[1]))["results"]
	def mib(b):
	    return "%.1f MiB" % (b / 1048576) if b is not None else "-"
	rows = [("full backup", "pgvault_full", "pgbackrest_full"),
	        ("incremental (1% changed)", "pgvault_incr", "pgbackrest_incr"),
	        ("restore (files)", "pgvault_restore", "pgbackrest_restore"),
	        ("archive 100 segments (sync)", "pgvault_push_sync", "pgbackrest_push_sync"),
	        ("archive 100 segments (async)", "pgvault_push_async", "pgbackrest_push_async")]
	def cpu(k):
	    v = d[k].get("cpu_seconds") or []
	    return "%.1f" % sorted(v)[len(v) // 2] if v else "-"
	print("%-28s %10s %12s %12s %12s %8s %14s" % ("", "pgvault s", "pgBackRest s", "pgvault", "pgBackRest", "x time",
	      "CPU s (pv/br)"))
	for label, a, b in rows:
	    ta, tb = d[a]["median_seconds"], d[b]["median_seconds"]
	    print("%-28s %10.2f %12.2f %12s %12s %8.2f %14s" % (label, ta, tb, mib(d[a]["median_bytes"]),
	          mib(d[b]["median_bytes"]), ta / tb, cpu(a) + "/" + cpu(b)))
	bb = d["pg_basebackup"]
	print("%-28s %10.2f %12s %12s" % ("pg_basebackup (plain)", bb["median_seconds"], "", mib(bb["median_bytes"])))
	print("(bytes: stored by the backup; for restores, the restored directory; 'x time' = pgvault / pgBackRest;")
	print(" CPU s: user + system seconds of the command's processes, medians; '-' for archiving, run by the server)")
PY
log "results in $OUT"
