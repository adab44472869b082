#!/usr/bin/env bash
# drill.sh: `pgvault drill` of a logical backup side by side with the monthly
# test restore a runbook does by hand, on the standard dataset, in one run.
#
#   bench/drill.sh [SIZE] [--runs N] [--jobs N] [--out FILE]
#
# SIZE defaults to 1.5GB with 3 runs (RUNS=N works too); QUICK=1 means the
# 150MB dataset (runs still default to 3).  The dataset is make-dataset.sh's
# (built when missing), in its scratch cluster, started on a free port for
# the run and stopped at the end.  Once, untimed for the table:
#
#   pg_dump -Fd -jJ                     the dump the by-hand restore uses
#   pgvault backup --logical -jJ        into a new repository: the backup drilled
#
# Then every run times:
#
#   plain    createdb, pg_restore -jJ of the -Fd dump into it, and a count(*)
#            of every table (what a runbook's test restore does by hand), on
#            the dataset's own server (fsync on); the scratch database is
#            dropped afterwards, untimed
#   drill    pgvault drill ID -jJ --no-record --json: initdb and start a
#            scratch cluster (fsync off: it is thrown away), restore, then
#            check every table's rows and content fingerprint, sequences,
#            indexes, foreign keys and NOT VALID constraints, stop and remove
#            the cluster.  Its report's times_ms (setup, restore, checks,
#            total) are recorded next to the wall time
#
# and prints medians, the drill/plain ratio, and CPU seconds: the tool's own
# (with the children it waits for: pg_restore, psql, initdb) and the
# server's (every process of the cluster; for the drill's scratch cluster,
# sampled every 0.1 s while it runs, since pg_ctl detaches it).  J is --jobs
# (default 2).  Every run's figures go to bench/results/drill-<time>.json
# (or --out FILE).  PGVAULT_BIN names the binary (default build/pgvault); the
# drill's scratch clusters go to the run's work directory, next to the dataset.
#
# The machine is shared: run QUICK=1 unless it is quiet, and read the load
# average printed with the results.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_options "" runs=RUNS jobs=JOBS out=OUT -- "$@"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for CPU seconds (apt-get install time)"

dataset_ready "$SIZE"
bench_workdir drill
DRILLDIR=$WORK/drills
mkdir -p "$DRILLDIR"
give_to_pg "$WORK"
# pgvault finds initdb, pg_ctl and pg_restore of the server's version here
export PATH=$BINDIR:$PATH PGVAULT_DRILL_DIR=$DRILLDIR
# no site configuration: the drill's defaults (no RTO, no SQL checks)
export PGVAULT_CONFIG=$WORK/pgvault.conf
: >"$PGVAULT_CONFIG"
SAMPLER=

DROP_AT_EXIT=bench_drill_plain

finish() {
	local rc=$?
	[ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true
	bench_cleanup
	return "$rc"
}
trap finish EXIT
dataset_start
LOAD_START=$(loadavg)

# scratch_cpu_sampler FILE: until killed, every 0.1 s, find the postmasters
# whose working directory is under $DRILLDIR (a postmaster chdirs to its data
# directory; initdb's --boot/--single backends are left out: initdb waits for
# them, so /usr/bin/time counts them) and write the CPU seconds they have used
# (own, reaped children, live children) to FILE.  The last 0.1 s before a
# scratch cluster stops can be missed.
scratch_cpu_sampler() {
	exec "$PY" - "$DRILLDIR" "$1" <<-'PY'
		import os, signal, sys, time
		root, out = os.path.realpath(sys.argv[1]) + "/", sys.argv[2]
		hz, seen = os.sysconf("SC_CLK_TCK"), {}
		def write(*_):
		    with open(out, "w") as f:
		        f.write("%.3f\n" % (sum(seen.values()) / hz))
		    sys.exit(0)
		signal.signal(signal.SIGTERM, write)
		def info(pid):
		    try:
		        if not os.readlink("/proc/%d/exe" % pid).endswith("/postgres"):
		            return None
		        if not os.readlink("/proc/%d/cwd" % pid).startswith(root):
		            return None
		        cmd = open("/proc/%d/cmdline" % pid, "rb").read()
		        st = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
		    except OSError:
		        return None
		    if b"--boot" in cmd or b"--single" in cmd:
		        return None
		    return st
		while True:
		    procs = {}
		    for d in os.listdir("/proc"):
		        if d.isdigit():
		            st = info(int(d))
		            if st is not None:
		                procs[int(d)] = st
		    for pid, st in procs.items():
		        if int(st[1]) in procs:
		            continue  # a backend: counted with its postmaster
		        total = sum(int(x) for x in st[11:15])
		        total += sum(int(c[11]) + int(c[12]) for c in procs.values() if int(c[1]) == pid)
		        seen[pid] = max(seen.get(pid, 0), total)
		    time.sleep(0.1)
	PY
}

# measure (lib.sh): wall seconds and CPU seconds (its own with its
# waited-for children, and the dataset server's) of each command
MEASURE_FIELDS="s client_cpu_s server_cpu_s"

# the by-hand row count: one count(*) per table, as a runbook would
COUNT_SQL="SELECT format('SELECT %L AS t, count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
	ORDER BY 1"

printf '%s\n\\gexec\n' "$COUNT_SQL" >"$WORK/count.sql"
TABLES=$(scalar "$DB" "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')")
log "database $DB: $(human_bytes "$(scalar "$DB" "SELECT pg_database_size(current_database())")"), $TABLES tables;" \
	"$RUNS run(s), -j$JOBS"

# once: the dump and the backup both sides restore
measure 0 pg_dump_fd "$BINDIR/pg_dump" -Fd -j"$JOBS" -f "$WORK/dump.dir" "$DB"
record 0 pg_dump_fd_bytes "$(du_bytes "$WORK/dump.dir")"
"$PGVAULT" init --repo "$WORK/repo" >/dev/null
measure 0 pgvault_backup "$PGVAULT" backup --logical -j"$JOBS" --no-progress --json --repo "$WORK/repo" \
	"${CONN[@]}" -d "$DB"
BACKUP_ID=$(json_field id)
record 0 pgvault_backup_stored_bytes "$(json_field stored_bytes)"
log "dump and backup $BACKUP_ID made"

for ((r = 1; r <= RUNS; r++)); do
	# plain: createdb, pg_restore, count every table
	measure "$r" plain_createdb "$BINDIR/createdb" "${CONN[@]}" bench_drill_plain
	measure "$r" plain_pg_restore "$BINDIR/pg_restore" -j"$JOBS" "${CONN[@]}" -d bench_drill_plain "$WORK/dump.dir"
	measure "$r" plain_count "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 "${CONN[@]}" -d bench_drill_plain \
		-f "$WORK/count.sql"
	[ "$(wc -l <"$WORK/out")" = "$TABLES" ] || die "the row count printed $(wc -l <"$WORK/out") lines, not $TABLES"
	record "$r" plain_rows "$(awk -F'|' '{s += $2} END {print s}' "$WORK/out")"
	psql_q -d postgres -c "DROP DATABASE bench_drill_plain"

	# drill, with the scratch cluster's CPU sampled on the side
	scratch_cpu_sampler "$WORK/scratch_cpu" &
	SAMPLER=$!
	measure "$r" drill "$PGVAULT" drill "$BACKUP_ID" -j"$JOBS" --no-record --json --repo "$WORK/repo"
	kill -TERM "$SAMPLER"
	wait "$SAMPLER" || true
	SAMPLER=
	record "$r" drill_scratch_cpu_s "$(cat "$WORK/scratch_cpu")"
	"$PY" - "$WORK/out" "$r" >>"$RAW" <<-'PY'
		import json, sys
		rep, run = json.load(open(sys.argv[1])), sys.argv[2]
		if not rep.get("ok"):
		    sys.exit("the drill did not pass: %s" % json.dumps(rep.get("checks"), indent=1))
		for k, v in rep["times_ms"].items():
		    print("%s\tdrill_report_%s_s\t%.3f" % (run, k, v / 1000))
		checks = {c["name"]: c for c in rep["checks"]}
		print("%s\tdrill_rows\t%d" % (run, checks["tables"]["details"]["rows"]))
		print("%s\tdrill_tables\t%d" % (run, checks["tables"]["details"]["tables"]))
	PY
	[ -z "$(ls -A "$DRILLDIR")" ] || die "the drill left $(ls -A "$DRILLDIR") behind in $DRILLDIR"
	log "run $r/$RUNS done"
done
LOAD_END=$(loadavg)

bench_python "$RAW" "$OUT" "$SIZE" "$RUNS" "$JOBS" "$DSDIR/dataset.json" "$LOAD_START" "$LOAD_END" "$PGVAULT" "$BACKUP_ID" <<-'PY'
	raw, out, size, runs, jobs, dsjson, load0, load1, pgvault, backup_id = sys.argv[1:]
	vals, med = load_raw(raw)
	# per run, the plain side's three steps summed, then the median of those
	steps = ("plain_createdb", "plain_pg_restore", "plain_count")
	for suffix in ("_s", "_client_cpu_s", "_server_cpu_s"):
	    per_run = [sum(vals[s + suffix][i] for s in steps) for i in range(int(runs))]
	    vals["plain_total" + suffix] = per_run
	    med["plain_total" + suffix] = statistics.median(per_run)
	if vals["plain_rows"] != vals["drill_rows"]:
	    sys.exit("the two sides counted different rows: %s and %s" % (vals["plain_rows"], vals["drill_rows"]))
	machine = machine_info(load0, load1)
	cpu = machine["cpu"]
	dataset = load_json(dsjson)
	j = int(jobs)
	plain_cpu = med["plain_total_client_cpu_s"] + med["plain_total_server_cpu_s"]
	drill_cpu = med["drill_client_cpu_s"] + med["drill_scratch_cpu_s"]
	ratios = {"drill_vs_plain_wall": med["drill_s"] / med["plain_total_s"],
	          "drill_restore_vs_pg_restore": med["drill_report_restore_s"] / med["plain_pg_restore_s"],
	          "drill_vs_plain_cpu": drill_cpu / plain_cpu}
	doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "size": size, "runs": int(runs), "jobs": j,
	       "pgvault": pgvault, "backup_id": backup_id, "machine": machine, "dataset": dataset,
	       "runs_raw": vals, "medians": med, "ratios": ratios}
	json.dump(doc, open(out, "w"), indent=2)
	print()
	print("Dataset %s (%.1f MiB, %d tables, %d rows), median of %s run(s); %d CPUs (%s), load average %s at the start, %s at the end"
	      % (size, dataset.get("database_bytes", 0) / 1048576, med["drill_tables"], med["drill_rows"], runs,
	         os.cpu_count(), cpu, load0, load1))
	print("once: pg_dump -Fd -j%d %.2f s; pgvault backup --logical -j%d %.2f s" % (j, med["pg_dump_fd_s"], j, med["pgvault_backup_s"]))
	print("%-44s %8s %11s %11s" % ("", "seconds", "CPU: tool", "CPU: server"))
	rows = [("plain: createdb", "plain_createdb"), ("plain: pg_restore -j%d" % j, "plain_pg_restore"),
	        ("plain: count(*) of every table", "plain_count"), ("plain: total", "plain_total")]
	for label, k in rows:
	    print("%-44s %8.2f %11.2f %11.2f" % (label, med[k + "_s"], med[k + "_client_cpu_s"], med[k + "_server_cpu_s"]))
	print("%-44s %8.2f %11.2f %11.2f" % ("pgvault drill -j%d (wall, all of it)" % j, med["drill_s"],
	      med["drill_client_cpu_s"], med["drill_scratch_cpu_s"]))
	for k in ("setup", "restore", "recovery", "checks", "total"):
	    if med.get("drill_report_%s_s" % k, 0) > 0:  # recovery: physical drills only
	        print("%-44s %8.2f" % ("  drill report: " + k, med["drill_report_%s_s" % k]))
	print()
	print("drill / plain: %.2fx the wall time, %.2fx the CPU seconds (tool + server: %.2f vs %.2f);"
	      " drill restore / pg_restore: %.2fx"
	      % (ratios["drill_vs_plain_wall"], ratios["drill_vs_plain_cpu"], drill_cpu, plain_cpu,
	         ratios["drill_restore_vs_pg_restore"]))
	print("\nresults: %s" % out)
PY
