#!/usr/bin/env bash
# run.sh: time backup and restore tools side by side on the benchmark dataset.
#
#   bench/run.sh [SIZE] [--runs N] [--tools a,b,...] [--out FILE] [--port PORT
#                [--host HOST] [--dbname NAME] [--pgdata DIR]]
#
# SIZE defaults to 1.5GB; the dataset is built by make-dataset.sh SIZE when it
# does not exist yet.  QUICK=1 means 150MB and one run.  Every tool runs N
# times (default 3, or $RUNS); the table shows the median seconds, the size
# of what the tool produced, and both relative to the first tool.  Results go
# to bench/results/run-<time>.json too (or --out FILE).  With --port (or
# PGHOST/PGPORT) the tools run against an existing server's database
# (default pgvault_bench, made by make-dataset.sh --port); pgBackRest then
# also needs --pgdata and is skipped without it.
#
# Adding a tool is one function plus one line:
#
#   tool_mytool() {                  # $1: an empty scratch directory
#       timed mytool --out "$1/x"    # only what runs under `timed` is timed
#       result_size "$1/x"           # a path (file or tree) or a byte count
#   }
#   bench_tool mytool "mytool --fast"    # the order of these lines is the
#                                        # order of the table; the first tool
#                                        # is the baseline
#
# Optional mytool_setup / mytool_teardown functions run once around the runs
# (untimed); an optional mytool_skip prints a reason when the tool cannot run
# here, and the tool is then skipped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE=
RUNS=${RUNS:-3}
ONLY=
OUT=
PORT_OPT=
HOST_OPT=
DBNAME=
PGDATA_OPT=
if [ "${QUICK:-0}" = 1 ]; then SIZE=150MB; RUNS=1; fi
bench_parse_args runs=RUNS tools=ONLY out=OUT port=PORT_OPT host=HOST_OPT dbname=DBNAME pgdata=PGDATA_OPT -- "$@"
SIZE=${SIZE:-1.5GB}
require_count runs "$RUNS"

# ------------------------------------------------------------ the framework

TOOLS=()
declare -A TOOL_LABEL=()

bench_tool() { TOOLS+=("$1"); TOOL_LABEL[$1]=$2; }

TIMED_SECONDS=0
RESULT_SIZE=
# timed CMD...: run CMD, add its wall-clock time to this run's seconds
timed() {
	local t0 t1 rc=0
	t0=$(now)
	"$@" || rc=$?
	t1=$(now)
	TIMED_SECONDS=$("$PY" -c "print($TIMED_SECONDS + $t1 - $t0)")
	[ "$rc" = 0 ] || die "'$*' failed with exit status $rc"
}
# result_size PATH|BYTES: the size this run produced
result_size() {
	if [[ "$1" =~ ^[0-9]+$ ]]; then RESULT_SIZE=$1; else RESULT_SIZE=$(du_bytes "$1"); fi
}

# ------------------------------------------------------------ the tools

tool_pg_dump_custom() {
	timed "$BINDIR/pg_dump" -Fc -f "$1/dump.custom" "$DB"
	result_size "$1/dump.custom"
}
bench_tool pg_dump_custom "pg_dump -Fc"

tool_pg_dump_dir_j2() {
	timed "$BINDIR/pg_dump" -Fd -j2 -f "$1/dump.dir" "$DB"
	result_size "$1/dump.dir"
}
bench_tool pg_dump_dir_j2 "pg_dump -Fd -j2"

drop_restore_db() {
	psql_q -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS bench_restore"
}
pg_restore_j2_setup() {
	"$BINDIR/pg_dump" -Fc -f "$WORK/restore-source.custom" "$DB"
}
tool_pg_restore_j2() {
	drop_restore_db
	"$BINDIR/createdb" bench_restore
	timed "$BINDIR/pg_restore" -j2 -d bench_restore "$WORK/restore-source.custom"
	result_size "$(scalar bench_restore "SELECT pg_database_size(current_database())")"
	"$BINDIR/dropdb" bench_restore
}
pg_restore_j2_teardown() {
	drop_restore_db
	rm -f "$WORK/restore-source.custom"
}
bench_tool pg_restore_j2 "pg_restore -j2 (into an empty db)"

tool_pg_basebackup() {
	timed "$BINDIR/pg_basebackup" -D "$1/base" -X stream -c fast
	result_size "$1/base"
}
bench_tool pg_basebackup "pg_basebackup -X stream (plain)"

PGBR_CONF=
pgbackrest_skip() {
	if ! command -v pgbackrest >/dev/null; then
		echo "pgbackrest is not installed"
	elif [ -z "$PGDATA_DIR" ]; then
		echo "the data directory is unknown (use --pgdata)"
	elif [ "$(scalar postgres "SHOW archive_mode")" = off ]; then
		echo "archive_mode is off on this server"
	fi
}
pgbackrest_setup() {
	pgbackrest_conf "$WORK/pgbackrest" "$PGDATA_DIR" "$PGPORT" "${PGSOCKET_DIR:-}"   # PGBR_CONF
	give_to_pg "$WORK/pgbackrest"
	# pgBackRest only finishes a backup once its WAL is archived
	archive_command_set "pgbackrest --config=$PGBR_CONF --stanza=bench archive-push %p"
	as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench stanza-create
}
tool_pgbackrest() {
	timed as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench --type=full backup
	result_size "$(pgbackrest_backup_bytes size as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench)"
}
pgbackrest_teardown() { archive_command_restore; }
bench_tool pgbackrest "pgBackRest 2.45 full (process-max=2, zst)"

# ------------------------------------------------------------ main

if [ -n "$PORT_OPT" ] || [ -n "$HOST_OPT" ] || [ -n "${PGPORT:-}" ] || [ -n "${PGHOST:-}" ]; then
	MODE=existing
	[ -z "$PORT_OPT" ] || export PGPORT=$PORT_OPT
	[ -z "$HOST_OPT" ] || export PGHOST=$HOST_OPT
	export PGUSER=${PGUSER:-postgres}
	DB=${DBNAME:-pgvault_bench}
	PGDATA_DIR=$PGDATA_OPT
	# pgBackRest talks to a local server through its unix socket only
	PGSOCKET_DIR=$(scalar postgres "SHOW unix_socket_directories" | cut -d, -f1 | tr -d ' ') ||
		die "cannot connect to ${PGHOST:-the local server} port ${PGPORT:-5432}"
	DATASET_JSON=$BENCH_DIR/existing-${PGHOST:-local}-${PGPORT:-5432}-$DB/dataset.json
	SIZE_LABEL="$DB on ${PGHOST:-local}:${PGPORT:-5432}"
	log "using the existing server at ${PGHOST:-local}:${PGPORT:-5432} (--port, or PGHOST/PGPORT are set)"
else
	MODE=scratch
	DB=${DBNAME:-bench}
	dataset_ready "$SIZE"
	trap stop_started_cluster EXIT
	cluster_start "$DSDIR"
	PGDATA_DIR=$DSDIR/data
	PGSOCKET_DIR=$DSDIR/sock
	DATASET_JSON=$DSDIR/dataset.json
	SIZE_LABEL=$SIZE
fi
export PGDATABASE=$DB
DBSIZE=$(scalar "$DB" "SELECT pg_database_size(current_database())") ||
	die "cannot reach database $DB"

bench_workdir run
give_to_pg "$WORK"

finish() {
	local rc=$?
	for t in "${TOOLS[@]}"; do
		if declare -F "${t}_teardown" >/dev/null && [ -n "${SETUP_DONE[$t]:-}" ]; then
			"${t}_teardown" || true
		fi
	done
	bench_cleanup
	return "$rc"
}
declare -A SETUP_DONE=()
trap finish EXIT

selected() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

log "database $DB: $(human_bytes "$DBSIZE"); $RUNS run(s) per tool; scratch in $WORK"
for t in "${TOOLS[@]}"; do
	selected "$t" || continue
	if declare -F "${t}_skip" >/dev/null; then
		reason=$("${t}_skip")
		if [ -n "$reason" ]; then
			log "${TOOL_LABEL[$t]}: skipped: $reason"
			printf '%s\tskip\t%s\n' "$t" "$reason" >>"$RAW"
			continue
		fi
	fi
	if declare -F "${t}_setup" >/dev/null; then
		SETUP_DONE[$t]=1
		"${t}_setup"
	fi
	for ((r = 1; r <= RUNS; r++)); do
		dir=$WORK/$t-$r
		mkdir -p "$dir"
		give_to_pg "$dir"
		TIMED_SECONDS=0
		RESULT_SIZE=0
		"tool_$t" "$dir"
		log "$(printf '%-42s run %d/%d: %7.2f s  %s' "${TOOL_LABEL[$t]}" "$r" "$RUNS" \
			"$TIMED_SECONDS" "$(human_bytes "$RESULT_SIZE")")"
		printf '%s\t%s\t%s\n' "$t" "$TIMED_SECONDS" "$RESULT_SIZE" >>"$RAW"
		rm -rf "$dir"
	done
	if [ -n "${SETUP_DONE[$t]:-}" ] && declare -F "${t}_teardown" >/dev/null; then
		"${t}_teardown"
		unset "SETUP_DONE[$t]"
	fi
done

LABELS=$WORK/labels.tsv
for t in "${TOOLS[@]}"; do printf '%s\t%s\n' "$t" "${TOOL_LABEL[$t]}" >>"$LABELS"; done
bench_python "$RAW" "$LABELS" "$OUT" "$SIZE_LABEL" "$DB" "$DBSIZE" "$RUNS" "$MODE" "${DATASET_JSON:-}" <<-'PY'
	raw, labels, out, size, db, dbsize, runs, mode, dsjson = sys.argv[1:]
	label = dict(l.rstrip("\n").split("\t", 1) for l in open(labels))
	order, secs, sizes, skipped = [], {}, {}, {}
	for line in open(raw):
	    t, a, b = line.rstrip("\n").split("\t")
	    if t not in order:
	        order.append(t)
	    if a == "skip":
	        skipped[t] = b
	        continue
	    secs.setdefault(t, []).append(float(a))
	    sizes.setdefault(t, []).append(int(b))
	results, base = [], None
	for t in order:
	    if t in skipped:
	        results.append({"tool": t, "label": label[t], "skipped": skipped[t]})
	        continue
	    med = statistics.median(secs[t])
	    sz = int(statistics.median(sizes[t]))
	    if base is None:
	        base = (med, sz)
	    results.append({"tool": t, "label": label[t], "seconds": secs[t],
	                    "median_seconds": round(med, 3), "size_bytes": sz,
	                    "time_vs_first": round(med / base[0], 3) if base[0] else None,
	                    "size_vs_first": round(sz / base[1], 3) if base[1] else None})
	dataset = load_json(dsjson)
	doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "size": size, "database": db,
	       "database_bytes": int(dbsize), "mode": mode, "runs": int(runs), "dataset": dataset,
	       "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
	                   "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
	       "results": results}
	json.dump(doc, open(out, "w"), indent=2)
	mib = lambda n: "%.1f MiB" % (n / 1048576)
	print()
	print("Dataset %s: database %s, %s; median of %s run(s); ratios relative to %s"
	      % (size, db, mib(int(dbsize)), runs, results[0]["label"] if results else "-"))
	w = max([len(r["label"]) for r in results] + [4])
	print("%-*s  %9s  %7s  %12s  %7s" % (w, "tool", "seconds", "x time", "size", "x size"))
	print("-" * (w + 45))
	for r in results:
	    if "skipped" in r:
	        print("%-*s  skipped: %s" % (w, r["label"], r["skipped"]))
	        continue
	    print("%-*s  %9.2f  %7.2f  %12s  %7.2f" % (w, r["label"], r["median_seconds"],
	          r["time_vs_first"] or 0, mib(r["size_bytes"]), r["size_vs_first"] or 0))
	print("\nresults: %s" % out)
PY
