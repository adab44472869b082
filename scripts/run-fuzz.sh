#!/usr/bin/env bash
# run-fuzz.sh BUILD_DIR: run every libFuzzer target of BUILD_DIR (built with
# meson -Dfuzz=true, CC=clang; see 'make fuzz') for FUZZ_SECONDS each
# (default 30), starting from a seed corpus cut from a real repository that
# the build's own pgvault writes.  Fails if any target crashes, leaks or
# trips a sanitizer; the input that did it is kept in BUILD_DIR/fuzz-artifacts/
# (replay: BUILD_DIR/tests/fuzz/fuzz_NAME FILE).
#
# FUZZ_TARGETS="blob item" limits the run to some targets; FUZZ_JOBS runs
# that many fuzzing processes per target (default 1).
set -uo pipefail
build=${1:-build-fuzz}
build=${build%/}
seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-"blob pack_header index_file item manifest"}
jobs=${FUZZ_JOBS:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-/usr/bin/python3}
cd "$root"

if [ ! -x "$build/pgvault" ] || [ ! -d "$build/tests/fuzz" ]; then
  echo "run-fuzz.sh: $build has no fuzz targets; build it with 'make fuzz'" >&2
  exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/pgvault-fuzz-XXXXXX")
scratch=""
trap 'rm -rf "$work" ${scratch:+"$scratch"}' EXIT
artifacts="$(cd "$build" && pwd)/fuzz-artifacts"
mkdir -p "$artifacts"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TMPDIR=$work
# fuzz_manifest stores every input in a scratch repository: a tmpfs makes that cheap
if [ -z "${FUZZ_SCRATCH:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  scratch=$(mktemp -d /dev/shm/pgvault-fuzz-XXXXXX) && export FUZZ_SCRATCH=$scratch
fi

# ---- seed corpus: real objects from a real repository ----
seed() {
  # The seeding runs are not what is tested: no leak reports from them.
  ASAN_OPTIONS=detect_leaks=0 env -u PGVAULT_PASSPHRASE PGVAULT_REPO="$work/repo-$1" \
    "$build/pgvault" "${@:2}" >/dev/null
}
mkdir -p "$work/data"
head -c 300000 /dev/urandom >"$work/data/random.bin"
seq 1 40000 | sed 's/$/\tcustomer\t2026-11-22 02:39:00\tactive/' >"$work/data/text.tsv"
printf 'listen_addresses = *\nport = 5432\n' >"$work/data/postgresql.conf"
: >"$work/data/empty"
for codec in zstd:3 lz4 none; do
  name=${codec%%:*}
  seed "$name" init --compression "$codec" || { echo "run-fuzz.sh: seeding failed (init)" >&2; exit 1; }
  seed "$name" backup --file "$work/data/random.bin" --file "$work/data/text.tsv" \
    --file "$work/data/postgresql.conf" --file "$work/data/empty" || exit 1
  seq 1 5000 | seed "$name" backup --stdin --name dump.sql --source seed || exit 1
done

"$python" - "$work" <<'PY'
import os, struct, subprocess, sys
work = sys.argv[1]
corpus = os.path.join(work, "corpus")
for t in ("blob", "pack_header", "index_file", "item", "manifest"):
    os.makedirs(os.path.join(corpus, t), exist_ok=True)
n = 0
def put(target, data):
    global n
    n += 1
    with open(os.path.join(corpus, target, "seed-%04d" % n), "wb") as f:
        f.write(data)
def plain(stored):
    """The plaintext of a stored blob (codec 0, 1 zstd, 2 lz4)."""
    if stored[0] == 0:
        return stored[1:]
    raw = struct.unpack("<Q", stored[1:9])[0]
    if stored[0] == 1:
        return subprocess.run(["zstd", "-d", "-c", "-q"], input=stored[9:],
                              capture_output=True, check=True).stdout
    return None  # lz4 raw blocks: no CLI for them; the blob seeds cover them
for repo in sorted(os.listdir(work)):
    if not repo.startswith("repo-"):
        continue
    top = os.path.join(work, repo)
    for dirpath, _, files in os.walk(top):
        for name in files:
            path = os.path.join(dirpath, name)
            data = open(path, "rb").read()
            rel = os.path.relpath(path, top)
            if rel.startswith("data/"):
                put("pack_header", b"\0" + data)
                hlen = struct.unpack("<I", data[-4:])[0]
                header = data[len(data) - 4 - hlen:len(data) - 4][1:]
                count = struct.unpack("<I", header[8:12])[0]
                for k in range(count):
                    e = header[12 + 48 * k:12 + 48 * (k + 1)]
                    btype, codec, off, length, rawlen = e[0], e[1], *struct.unpack("<III", e[4:16])
                    blob = data[off:off + length]
                    if k < 6:
                        put("blob", b"\0\0" + blob[:4096] if length > 4096 else b"\0\0" + blob)
                    if btype == 1:
                        text = plain(blob)
                        if text is not None:
                            put("item", text)
            elif rel.startswith("index/"):
                put("index_file", data)
                put("blob", b"\0\0" + data)
            elif rel.startswith("snapshots/"):
                put("manifest", data)
                text = plain(data)
                if text is not None:
                    put("manifest", text)
put("item", b'{"name":"base/1/2","type":"file","size":3,"mode":384,"mtime":1,'
            b'"sha256":"' + b"ab" * 32 + b'","chunk_size":8192,"chunks":[["' + b"cd" * 32 +
            b'",3,0]],"meta":{"k":"v"}}\n')
put("blob", b"\0\0\0hello")
PY
[ $? -eq 0 ] || { echo "run-fuzz.sh: building the seed corpus failed" >&2; exit 1; }

# ---- fuzz ----
failed=""
for t in $targets; do
  exe="$(cd "$build" && pwd)/tests/fuzz/fuzz_$t"
  if [ ! -x "$exe" ]; then
    echo "run-fuzz.sh: no target $exe" >&2
    failed="$failed $t"
    continue
  fi
  echo "== fuzz_$t (${seconds}s, $(ls "$work/corpus/$t" | wc -l) seeds)"
  mkdir -p "$work/found/$t"
  parallel=()
  [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
  # (with -jobs libFuzzer writes fuzz-N.log into the current directory: $work)
  (cd "$work" && "$exe" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
    -print_final_stats=1 "${parallel[@]}" -artifact_prefix="$artifacts/$t-" \
    "$work/found/$t" "$work/corpus/$t") >"$work/$t.log" 2>&1
  rc=$?
  cat "$work"/fuzz-*.log >>"$work/$t.log" 2>/dev/null
  rm -f "$work"/fuzz-*.log
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)" "$work/$t.log" | tail -3
  if [ $rc -ne 0 ]; then
    echo "fuzz_$t FAILED (exit $rc):" >&2
    grep -E -A30 "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|==ERROR" \
      "$work/$t.log" | head -60 >&2
    ls -1 "$artifacts/$t-"* 2>/dev/null | sed 's/^/  input kept: /' >&2
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "run-fuzz.sh: FAILED:$failed" >&2
  exit 1
fi
echo "run-fuzz.sh: all targets ran ${seconds}s without a crash"
