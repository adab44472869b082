#!/usr/bin/env bash
# pipeline.sh: throughput of pgvault's backup pipeline (chunk, id, compress,
# encrypt, pack, store) on mixed data, against the limits of each stage
# measured in the same run on the same bytes: zstd -T0 at the same level,
# lz4, sha256sum and `openssl speed -evp aes-256-gcm`.  Also peak RSS.
#
#   bench/pipeline.sh [SIZE_MIB]      default 2048 (QUICK=1: 512)
#
# The data is half pgbench-like COPY text (pgbench_accounts rows) and half
# random bytes, in 1 MiB stretches, so both the compressible and the
# incompressible paths run.  Results: a table on stdout and
# bench/results/pipeline-<date>.json.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGVAULT=${PGVAULT_BIN:-$ROOT/build/pgvault}
SIZE=${1:-$([ "${QUICK:-0}" = 1 ] && echo 512 || echo 2048)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgvault-pipeline.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/pipeline-$(date -u +%Y%m%dT%H%M%SZ).json
DATA=$WORK/data.bin

/usr/bin/python3 - "$DATA" "$SIZE" <<'PY'
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
aid = 1
with open(path, "wb") as f:
    for i in range(mib):
        if i % 2:
            f.write(rnd.randbytes(1 << 20))
            continue
        rows = []
        size = 0
        while size < (1 << 20):
            row = "%d\t%d\t%d\t%s\n" % (aid, 1 + aid // 100000, rnd.randint(-5000, 5000), " " * 84)
            aid += 1
            rows.append(row)
            size += len(row)
        f.write("".join(rows).encode()[: 1 << 20])
PY
BYTES=$(stat -c %s "$DATA")
cat "$DATA" > /dev/null  # warm the page cache for every contender

secs() { local t0 t1; t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N); awk -v n="$((t1 - t0))" 'BEGIN { printf "%.3f", n / 1e9 }'; }
mbps() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }

echo "pipeline benchmark: $((BYTES >> 20)) MiB mixed data, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
t_zstd=$(secs zstd -T0 -3 -c "$DATA")
t_lz4=$(secs lz4 -1 -c "$DATA")
t_sha=$(secs sha256sum "$DATA")
aes_kbs=$(openssl speed -evp aes-256-gcm -seconds 2 -bytes 16384 2>/dev/null | awk '/^aes-256-gcm|^AES-256-GCM/ { v = $NF } END { sub(/k$/, "", v); print v }')
aes_mbps=$(awk -v k="$aes_kbs" 'BEGIN { printf "%.0f", k * 1000 / 1e6 }')
printf '%-28s %8s MB/s\n' "limit: zstd -T0 -3" "$(mbps "$t_zstd")" "limit: lz4 -1" "$(mbps "$t_lz4")" \
	"limit: sha256sum (1 core)" "$(mbps "$t_sha")" "limit: aes-256-gcm (1 core)" "$aes_mbps"

results="[]"
for comp in zstd:3 lz4; do
	for enc in plain encrypted; do
		repo=$WORK/repo-$comp-$enc
		args=(--repo "$repo" --compression "$comp")
		[ "$enc" = encrypted ] && args+=(--encrypt)
		PGVAULT_PASSPHRASE=bench "$PGVAULT" init "${args[@]}" > /dev/null
		t0=$(date +%s%N)
		PGVAULT_PASSPHRASE=bench /usr/bin/time -f %M -o "$WORK/rss" \
			"$PGVAULT" backup --repo "$repo" --stdin --name data < "$DATA" > /dev/null
		t1=$(date +%s%N)
		s=$(awk -v n="$((t1 - t0))" 'BEGIN { printf "%.3f", n / 1e9 }')
		rss=$(($(cat "$WORK/rss") / 1024))
		stored=$(du -sb "$repo" | cut -f1)
		limit=$([ "$comp" = lz4 ] && mbps "$t_lz4" || mbps "$t_zstd")
		printf '%-28s %8s MB/s  (%3s%% of the compressor limit)  peak RSS %4d MiB  stored %d MiB\n' \
			"pgvault $comp $enc" "$(mbps "$s")" "$(awk -v a="$(mbps "$s")" -v b="$limit" 'BEGIN { printf "%.0f", 100 * a / b }')" \
			"$rss" "$((stored >> 20))"
		results=$(/usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.append(dict(compression=sys.argv[2], encryption=sys.argv[3], seconds=float(sys.argv[4]), mbps=int(sys.argv[5]), peak_rss_mib=int(sys.argv[6]), stored_bytes=int(sys.argv[7]))); print(json.dumps(r))' \
			"$results" "$comp" "$enc" "$s" "$(mbps "$s")" "$rss" "$stored")
	done
done
/usr/bin/python3 - "$OUT" "$BYTES" "$results" "$(mbps "$t_zstd")" "$(mbps "$t_lz4")" "$(mbps "$t_sha")" "$aes_mbps" <<'PY'
import json, sys
out, size, results, zstd, lz4, sha, aes = sys.argv[1:]
json.dump({"bytes": int(size), "limits_mbps": {"zstd_T0_3": int(zstd), "lz4_1": int(lz4),
           "sha256sum": int(sha), "aes_256_gcm": int(aes)}, "pgvault": json.loads(results)},
          open(out, "w"), indent=2)
print("results:", out)
PY
