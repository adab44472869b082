#!/usr/bin/env bash
# logical.sh: pgvault's logical backup and restore side by side with pg_dump
# and pg_restore, on the standard dataset, in one run.
#
#   bench/logical.sh [SIZE] [--runs N] [--jobs N] [--out FILE]
#
# SIZE defaults to 1.5GB with 3 runs; QUICK=1 means 150MB and one run.  The
# dataset is make-dataset.sh's (built when missing), in its scratch cluster,
# started on a free port for the run and stopped at the end.  Every run
# times, on the same server:
#
#   pg_dump -Fc                          time, size of the dump
#   pg_dump -Fd -jJ                      time, size of the dump directory
#   pgvault backup --logical -jJ         time, stored bytes, peak RSS (into a new repository)
#   pg_restore -jJ  (the -Fd dump)       time, into an empty database
#   pgvault restore -jJ                  time, peak RSS, into an empty database;
#                                        once as is (ANALYZE at the end, which
#                                        pg_restore does not do) and once with
#                                        --no-analyze (the same work as pg_restore),
#                                        and once with --text-copy (rows sent as
#                                        the COPY text the backup stores, as
#                                        pg_restore sends them, not as binary)
#   1% more rows, pgvault backup again   time, new bytes stored, and those as a
#                                        share of the first backup's stored bytes
#
# The rows appended (to events, with bench_append_events) are deleted again
# and VACUUM trims the table, so every run sees the same data.  J is --jobs
# (default 2).  Only the tool's own command is timed (creating and dropping
# databases is not).  Peak RSS comes from /usr/bin/time -v.  Next to the
# seconds, the CPU seconds each command cost (its own, and the server's:
# every process of the cluster) show the work done, which other load on
# the machine does not change much.  The table shows medians; every run's
# figures go to bench/results/logical-<time>.json (or --out FILE).
# PGVAULT_BIN names the binary (default build/pgvault).
#
# The machine is shared: run QUICK=1 unless it is quiet, and read the load
# average printed with the results.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_options 1 runs=RUNS jobs=JOBS out=OUT -- "$@"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for peak RSS (apt-get install time)"

dataset_ready "$SIZE"
bench_workdir logical
give_to_pg "$WORK"

DROP_AT_EXIT=bench_restore
trap bench_cleanup EXIT
dataset_start
LOAD_START=$(loadavg)

# measure (lib.sh): wall seconds, peak RSS and CPU seconds (its own and the
# server's) of each command
MEASURE_FIELDS="s rss_kb client_cpu_s server_cpu_s"

fresh_db() {
	psql_q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS bench_restore" \
		-c "CREATE DATABASE bench_restore"
}

TOTAL_ROWS=$(scalar "$DB" "SELECT sum(c.reltuples)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')")
APPEND=$(( TOTAL_ROWS / 100 ))
log "database $DB: $(human_bytes "$(scalar "$DB" "SELECT pg_database_size(current_database())")"), $TOTAL_ROWS rows;" \
	"$RUNS run(s), -j$JOBS; the second backup follows $APPEND new rows (1%)"

for ((r = 1; r <= RUNS; r++)); do
	D=$WORK/run-$r
	mkdir -p "$D"
	give_to_pg "$D"

	measure "$r" pg_dump_fc "$BINDIR/pg_dump" -Fc -f "$D/dump.custom" "$DB"
	record "$r" pg_dump_fc_bytes "$(du_bytes "$D/dump.custom")"
	rm -f "$D/dump.custom"
	measure "$r" pg_dump_fd "$BINDIR/pg_dump" -Fd -j"$JOBS" -f "$D/dump.dir" "$DB"
	record "$r" pg_dump_fd_bytes "$(du_bytes "$D/dump.dir")"

	"$PGVAULT" init --repo "$D/repo" >/dev/null
	measure "$r" pgvault_backup "$PGVAULT" backup --logical -j"$JOBS" --no-progress --json --repo "$D/repo" \
		"${CONN[@]}" -d "$DB"
	FIRST_ID=$(json_field id)
	FIRST_STORED=$(json_field stored_bytes)
	record "$r" pgvault_backup_stored_bytes "$FIRST_STORED"
	record "$r" pgvault_repo_bytes "$(du_bytes "$D/repo")"

	fresh_db
	measure "$r" pg_restore "$BINDIR/pg_restore" -j"$JOBS" -d bench_restore "$D/dump.dir"
	rm -rf "$D/dump.dir"
	fresh_db
	measure "$r" pgvault_restore "$PGVAULT" restore "$FIRST_ID" --target-db bench_restore -j"$JOBS" \
		--no-progress --repo "$D/repo" "${CONN[@]}" -d postgres
	fresh_db
	measure "$r" pgvault_restore_noanalyze "$PGVAULT" restore "$FIRST_ID" --target-db bench_restore -j"$JOBS" \
		--no-analyze --no-progress --repo "$D/repo" "${CONN[@]}" -d postgres
	fresh_db
	measure "$r" pgvault_restore_text "$PGVAULT" restore "$FIRST_ID" --target-db bench_restore -j"$JOBS" \
		--text-copy --no-progress --repo "$D/repo" "${CONN[@]}" -d postgres
	psql_q -d postgres -c "DROP DATABASE bench_restore"

	MAXID=$(scalar "$DB" "SELECT max(id) FROM events")
	scalar "$DB" "SELECT count(*) FROM (SELECT bench_append_events($APPEND)) s" >/dev/null
	measure "$r" pgvault_backup2 "$PGVAULT" backup --logical -j"$JOBS" --no-progress --json --repo "$D/repo" \
		"${CONN[@]}" -d "$DB"
	record "$r" pgvault_backup2_new_bytes "$(json_field new_bytes)"
	record "$r" pgvault_backup2_stored_bytes "$(json_field stored_bytes)"
	record "$r" pgvault_first_stored_bytes "$FIRST_STORED"
	# back to the dataset as it was, for the next run
	psql_q -d "$DB" -c "DELETE FROM events WHERE id > $MAXID" -c "VACUUM events" >/dev/null
	rm -rf "$D"
	log "run $r/$RUNS done"
done
LOAD_END=$(loadavg)

bench_python "$RAW" "$OUT" "$SIZE" "$RUNS" "$JOBS" "$DSDIR/dataset.json" "$LOAD_START" "$LOAD_END" "$PGVAULT" <<-'PY'
	raw, out, size, runs, jobs, dsjson, load0, load1, pgvault = sys.argv[1:]
	vals, med = load_raw(raw)
	machine = machine_info(load0, load1)
	cpu = machine["cpu"]
	dataset = load_json(dsjson)
	mib = lambda n: "%.1f MiB" % (n / 1048576)
	j = int(jobs)
	rows = [
	    ("pg_dump -Fc", "pg_dump_fc", med["pg_dump_fc_bytes"], False),
	    ("pg_dump -Fd -j%d" % j, "pg_dump_fd", med["pg_dump_fd_bytes"], False),
	    ("pgvault backup --logical -j%d" % j, "pgvault_backup", med["pgvault_backup_stored_bytes"], True),
	    ("pg_restore -j%d (empty db)" % j, "pg_restore", None, False),
	    ("pgvault restore -j%d (empty db)" % j, "pgvault_restore", None, True),
	    ("pgvault restore -j%d --no-analyze" % j, "pgvault_restore_noanalyze", None, True),
	    ("pgvault restore -j%d --text-copy" % j, "pgvault_restore_text", None, True),
	    ("pgvault backup, +1% rows (new bytes)", "pgvault_backup2", med["pgvault_backup2_new_bytes"], True),
	]
	ratios = {
	    "backup_speedup_vs_pg_dump_fd": med["pg_dump_fd_s"] / med["pgvault_backup_s"],
	    "backup_speedup_vs_pg_dump_fc": med["pg_dump_fc_s"] / med["pgvault_backup_s"],
	    "size_vs_pg_dump_fd": med["pgvault_backup_stored_bytes"] / med["pg_dump_fd_bytes"],
	    "restore_speedup_vs_pg_restore": med["pg_restore_s"] / med["pgvault_restore_s"],
	    "restore_noanalyze_speedup_vs_pg_restore": med["pg_restore_s"] / med["pgvault_restore_noanalyze_s"],
	    "restore_text_copy_speedup_vs_pg_restore": med["pg_restore_s"] / med["pgvault_restore_text_s"],
	    "second_backup_new_share": med["pgvault_backup2_new_bytes"] / med["pgvault_first_stored_bytes"],
	    "peak_rss_mib": max(med[k] for k in med if k.endswith("_rss_kb") and k.startswith("pgvault")) / 1024,
	}
	doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "size": size, "runs": int(runs), "jobs": j,
	       "pgvault": pgvault, "machine": machine, "dataset": dataset,
	       "runs_raw": vals, "medians": med, "ratios": ratios}
	json.dump(doc, open(out, "w"), indent=2)
	print()
	print("Dataset %s (%s), median of %s run(s); %d CPUs (%s), load average %s at the start, %s at the end"
	      % (size, mib(dataset.get("database_bytes", 0)), runs, os.cpu_count(), cpu, load0, load1))
	print("%-40s %8s %11s %11s %12s %10s" % ("", "seconds", "CPU: tool", "CPU: server", "size", "peak RSS"))
	for label, k, b, rss in rows:
	    print("%-40s %8.2f %11.2f %11.2f %12s %10s" % (label, med[k + "_s"], med[k + "_client_cpu_s"],
	          med[k + "_server_cpu_s"], mib(b) if b is not None else "-",
	          mib(med[k + "_rss_kb"] * 1024) if rss else "-"))
	print()
	print("backup:  %.2fx faster than pg_dump -Fd -j%d (target 2x), %.2fx than pg_dump -Fc; stored %.2fx the -Fd dump's size"
	      % (ratios["backup_speedup_vs_pg_dump_fd"], j, ratios["backup_speedup_vs_pg_dump_fc"], ratios["size_vs_pg_dump_fd"]))
	print("restore: %.2fx pg_restore -j%d's speed with ANALYZE, %.2fx without (target 1.3x); %.2fx with --text-copy"
	      % (ratios["restore_speedup_vs_pg_restore"], j, ratios["restore_noanalyze_speedup_vs_pg_restore"],
	         ratios["restore_text_copy_speedup_vs_pg_restore"]))
	print("second backup after +1%% rows: %s new, %.2f%% of the first backup's stored bytes (target < 3%%)"
	      % (mib(med["pgvault_backup2_new_bytes"]), 100 * ratios["second_backup_new_share"]))
	print("pgvault peak RSS: %.0f MiB (target < 256 MiB)" % ratios["peak_rss_mib"])
	print("\nresults: %s" % out)
PY
