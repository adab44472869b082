#!/usr/bin/env bash
# verify.sh: "pgvault verify" throughput against sha256sum of the same pack
# files, in one run.
#
#   bench/verify.sh [SIZE] [--runs N] [--jobs N] [--out FILE]
#
# SIZE defaults to 1.5GB; QUICK=1 means 150MB.  Both take the median of 3
# runs (--runs).  The repository is made once per invocation: a logical
# backup (pgvault backup --logical) of make-dataset.sh's database (built when
# missing), in its scratch cluster, started for the backup and stopped right
# after it (verify needs no server).  Then every run times, on the same pack
# files:
#
#   pgvault verify -jJ               full: every pack read, its SHA-256 name,
#                                    header and every blob (decompressed, id
#                                    recomputed) checked, manifests walked
#   sha256sum (one process)          the pack files, serially
#   sha256sum (J processes)          the pack files split over J processes
#   openssl dgst -sha256 (1 process) the same hash as pgvault's (OpenSSL,
#                                    SHA extensions when the CPU has them;
#                                    coreutils' sha256sum does not use them)
#   pgvault verify --new -jJ         nothing new: the cost of the always-run
#                                    checks (index, manifests, sizes)
#   pgvault verify --sample 10 -jJ   10 % of the packs re-read
#
# Throughput is GB/s (10^9 bytes) of stored pack data over wall time, and
# GB per CPU second (what the work costs, whatever else the machine runs).  The
# pack files sit in the page cache for every command (one untimed warm-up
# read first), so this measures CPU cost, not the disk.  CPU seconds (user +
# system, from /usr/bin/time) show the work done, which other load on the
# machine does not change much.  J is --jobs (default 2).  Every run's
# figures go to bench/results/verify-<time>.json (or --out FILE).
# PGVAULT_BIN names the binary (default build/pgvault).
#
# The machine is shared: run QUICK=1 unless it is quiet, and read the load
# average printed with the results.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_options "" runs=RUNS jobs=JOBS out=OUT -- "$@"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for CPU seconds (apt-get install time)"

dataset_ready "$SIZE"
bench_workdir verify
REPO=$WORK/repo
trap bench_cleanup EXIT
LOAD_START=$(loadavg)

# measure (lib.sh): wall seconds, CPU seconds and peak RSS of each command
MEASURE_FIELDS="s cpu_s rss_kb"

dataset_start
"$PGVAULT" init --repo "$REPO" >/dev/null
log "backing up database bench ($SIZE dataset) into $REPO"
"$PGVAULT" backup --logical -j"$JOBS" --no-progress --json --repo "$REPO" \
	"${CONN[@]}" -d bench >"$WORK/backup.json"
cluster_stop "$DSDIR"

find "$REPO/data" -type f | sort >"$WORK/packs.txt"
NPACKS=$(wc -l <"$WORK/packs.txt")
PACK_BYTES=$(xargs -a "$WORK/packs.txt" cat | wc -c)
log "$NPACKS packs, $(human_bytes "$PACK_BYTES"); $RUNS run(s), -j$JOBS"
xargs -a "$WORK/packs.txt" cat >/dev/null	# warm-up: every command reads from the page cache


for ((r = 1; r <= RUNS; r++)); do
	measure "$r" verify_full "$PGVAULT" verify -j"$JOBS" --json --repo "$REPO"
	"$PY" - "$WORK/out" "$PACK_BYTES" <<-'PY' || die "verify did not read every pack (see $WORK/out)"
		import json, sys
		d = json.load(open(sys.argv[1]))
		assert d["status"] == "ok" and d["pack_bytes"] == int(sys.argv[2]), (d["status"], d["pack_bytes"])
	PY
	measure "$r" sha256sum_serial bash -c "xargs -a '$WORK/packs.txt' sha256sum"
	[ "$(wc -l <"$WORK/out")" = "$NPACKS" ] || die "sha256sum did not hash every pack"
	measure "$r" sha256sum_parallel bash -c \
		"xargs -a '$WORK/packs.txt' -P $JOBS -n $(( (NPACKS + JOBS - 1) / JOBS )) sha256sum"
	[ "$(wc -l <"$WORK/out")" = "$NPACKS" ] || die "sha256sum did not hash every pack"
	measure "$r" openssl_sha256 bash -c "xargs -a '$WORK/packs.txt' openssl dgst -sha256"
	[ "$(wc -l <"$WORK/out")" = "$NPACKS" ] || die "openssl did not hash every pack"
	measure "$r" verify_new "$PGVAULT" verify --new -j"$JOBS" --json --repo "$REPO"
	record "$r" verify_new_read_bytes "$(json_field pack_bytes)"
	measure "$r" verify_sample10 "$PGVAULT" verify --sample 10 -j"$JOBS" --json --repo "$REPO"
	record "$r" verify_sample10_read_bytes "$(json_field pack_bytes)"
	log "run $r/$RUNS done"
done
LOAD_END=$(loadavg)

bench_python "$RAW" "$OUT" "$SIZE" "$RUNS" "$JOBS" "$NPACKS" "$PACK_BYTES" "$LOAD_START" "$LOAD_END" "$PGVAULT" <<-'PY'
	raw, out, size, runs, jobs, npacks, pack_bytes, load0, load1, pgvault = sys.argv[1:]
	npacks, pack_bytes, j = int(npacks), int(pack_bytes), int(jobs)
	vals, med = load_raw(raw)
	machine = machine_info(load0, load1, memory=False)
	cpu = machine["cpu"]
	gbs = lambda k, b=pack_bytes: b / 1e9 / med[k + "_s"]
	rows = [
	    ("pgvault verify -j%d (full)" % j, "verify_full", pack_bytes),
	    ("sha256sum (1 process)", "sha256sum_serial", pack_bytes),
	    ("sha256sum (%d processes)" % j, "sha256sum_parallel", pack_bytes),
	    ("openssl dgst -sha256 (1 process)", "openssl_sha256", pack_bytes),
	    ("pgvault verify --new -j%d (nothing new)" % j, "verify_new", med["verify_new_read_bytes"]),
	    ("pgvault verify --sample 10 -j%d" % j, "verify_sample10", med["verify_sample10_read_bytes"]),
	]
	ratios = {
	    "verify_gbs": gbs("verify_full"),
	    "sha256sum_serial_gbs": gbs("sha256sum_serial"),
	    "sha256sum_parallel_gbs": gbs("sha256sum_parallel"),
	    "verify_vs_sha256sum_parallel": med["sha256sum_parallel_s"] / med["verify_full_s"],
	    "verify_cpu_per_gb": med["verify_full_cpu_s"] / (pack_bytes / 1e9),
	    "sha256sum_cpu_per_gb": med["sha256sum_serial_cpu_s"] / (pack_bytes / 1e9),
	    "openssl_sha256_cpu_per_gb": med["openssl_sha256_cpu_s"] / (pack_bytes / 1e9),
	}
	doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "size": size, "runs": int(runs), "jobs": j,
	       "pgvault": pgvault, "machine": machine, "packs": npacks, "pack_bytes": pack_bytes,
	       "runs_raw": vals, "medians": med, "ratios": ratios}
	json.dump(doc, open(out, "w"), indent=2)
	print()
	print("Dataset %s: %d packs, %.1f MiB stored; median of %s run(s); %d CPUs (%s); load average %s at the start, %s at the end"
	      % (size, npacks, pack_bytes / 1048576, runs, os.cpu_count(), cpu, load0, load1))
	print("%-40s %12s %8s %8s %8s %10s" % ("", "bytes read", "seconds", "GB/s", "CPU s", "GB/CPU-s"))
	for label, k, b in rows:
	    print("%-40s %12d %8.2f %8.2f %8.2f %10s" % (label, b, med[k + "_s"], b / 1e9 / med[k + "_s"], med[k + "_cpu_s"],
	          "%.2f" % (b / 1e9 / med[k + "_cpu_s"]) if b and med[k + "_cpu_s"] else "-"))
	print()
	print("verify: %.2f GB/s, %.2fx the speed of %d sha256sum processes; %.2f CPU s per GB (sha256sum: %.2f, openssl: %.2f)"
	      % (ratios["verify_gbs"], ratios["verify_vs_sha256sum_parallel"], j, ratios["verify_cpu_per_gb"],
	         ratios["sha256sum_cpu_per_gb"], ratios["openssl_sha256_cpu_per_gb"]))
	print("\nresults: %s" % out)
PY
