#!/usr/bin/env bash
# run-fuzz.sh BUILD_DIR: run every libFuzzer target of BUILD_DIR (built with
# meson -Dfuzz=true, CC=clang; see 'make fuzz') for FUZZ_SECONDS each
# (default 30), starting from a seed corpus cut from a real repository that
# the build's own pgvault writes.  Fails if any target crashes, leaks or
# trips a sanitizer; the input that did it is kept in BUILD_DIR/fuzz-artifacts/
# (replay: BUILD_DIR/tests/fuzz/fuzz_NAME FILE).
#
# FUZZ_TARGETS="blob item" limits the run to some targets; FUZZ_JOBS runs
# that many fuzzing processes per target (default 1).  FUZZ_SEEDS_ONLY=1
# only replays every seed once per target (a quick check for CI).
set -uo pipefail
build=${1:-build-fuzz}
build=${build%/}
seconds=${FUZZ_SECONDS:-30}
all_targets="blob pack_header index_file item manifest packcheck lock repo_config keyfile copy_lag records
  wal physical objstore_xml logical_toc quarantine logical_copybin"
targets=${FUZZ_TARGETS:-$all_targets}
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
# records: the pack-check record and verify records, a pin; an encrypted
# repository's key file (the passphrase fuzz_keyfile opens it with)
seed zstd verify || echo "run-fuzz.sh: seeding verify failed: hand-written seeds only" >&2
seed zstd pin latest --note "legal hold" || echo "run-fuzz.sh: seeding pin failed" >&2
ASAN_OPTIONS=detect_leaks=0 PGVAULT_PASSPHRASE=fuzz-passphrase PGVAULT_REPO="$work/repo-enc" \
  "$build/pgvault" init --encrypt >/dev/null || { echo "run-fuzz.sh: seeding failed (init --encrypt)" >&2; exit 1; }

"$python" - "$work" <<'PY'
import os, struct, subprocess, sys
work = sys.argv[1]
corpus = os.path.join(work, "corpus")
for t in ("blob", "pack_header", "index_file", "item", "manifest", "packcheck", "lock",
          "repo_config", "keyfile", "copy_lag", "records", "wal", "physical", "objstore_xml",
          "logical_toc", "quarantine", "logical_copybin"):
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
            if rel == "config":
                put("repo_config", data)
                continue
            if rel.startswith("keys/"):
                put("keyfile", data)
                continue
            if rel.startswith("records/") or rel.startswith("locks/"):
                text = plain(data)
                if text is not None and len(text) >= 32:
                    text = text[:-32]   # the metadata object's SHA-256 trailer
                    if rel == "records/packcheck":
                        put("packcheck", text)
                    elif not rel.startswith("locks/"):
                        kind = {"verify": 0, "drills": 1, "restores": 2, "pins": 3, "jobs": 4}
                        put("records", bytes([kind.get(rel.split("/")[1], 0)]) + text)
                continue
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
# Hand-written seeds in the documented formats, for what the seeding
# commands above cannot make without a server (docs/repository-format.md).
import hashlib
H = "ab" * 32
put("packcheck", b'{"format":"pgvault-packcheck","version":1,"written":"2026-11-22T02:39:00Z",'
                 b'"packs":[{"id":"' + H.encode() + b'","time":1795000000,"size":4096,"ok":true}]}')
put("quarantine", b'{"format":"pgvault-quarantine","version":1,"blobs":[{"pack":"' + ("ab" * 32).encode() +
                  b'","id":"' + ("cd" * 32).encode() + b'","time":1795000000},{"pack":"' + H.encode() +
                  b'","id":"' + ("01" * 32).encode() + b'","time":1}]}')
put("quarantine", b'{"format":"pgvault-quarantine","version":1,"blobs":[]}')
put("lock", b'{"host":"db1","pid":4242,"user":"postgres","command":"backup","exclusive":false,'
            b'"time_unix":1795000000,"refresh_time_unix":1795000060}')
put("lock", b'{"host":"db1","pid":1,"exclusive":true,"time_unix":1,"refresh_time_unix":2}')
put("copy_lag", b'{"url":"s3://offsite/pgvault","since_unix":1795000000,"last_attempt_unix":1795000600,'
                b'"attempts":3,"error":"cannot connect"}')
put("records", b'\0{"record":{"format":"pgvault-record","version":1,"type":"verify","id":"x",'
               b'"backup":"20260101T000000Z-000000","time":"2026-01-01T00:00:00Z","ok":true},'
               b'"mode":"full","duration_ms":1200,"bad_chunks":0,"chunks":10}')
put("records", b'\1{"times_ms":{"restore":1000,"recovery":200},"rto_seconds":60,"rto_ok":true,'
               b'"integrity_ok":true}')
put("records", b'\2{"source":"db1","kind":"logical","duration_ms":5000,"recovery_ms":null,"bytes":100,'
               b'"size":100,"jobs":2,"target_kind":"database","target":"db1_copy","partial":false,'
               b'"outcome":"success","host":"h","tool_version":"0.9"}')
put("records", b'\1{"backup":{"kind":"file","source":"test","size":1000000},'
               b'"times_ms":{"restore":2000,"recovery":300},"integrity_ok":true}')
put("records", b'\2{"source":"test","kind":"file","duration_ms":4000,"recovery_ms":100,"size":3000000,'
               b'"partial":false}')
put("records", b'\3{"time":"2026-11-22T02:39:00Z","user":"postgres","host":"db1","note":"hold"}')
job = (b'{"format":1,"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:01:00Z","job":"db1/logical",'
       b'"type":"logical","source":"db1","trigger":"scheduled","outcome":"success","exit_status":0,'
       b'"backup_id":"20260101T000000Z-000000","size":100,"stored_bytes":50,"new_bytes":10,'
       b'"location":"/srv/pgvault","verified":1,"notes":["ok"],"host":"h"}')
put("records", b'\4' + job)
put("records", b'\5' + job + b'\n' + job.replace(b'success', b'failure') + b'\nnot json\n')
put("records", b'\6verify/20260101T000000Z-000000/20260101T000000.000Z-abcdef.ok')
put("wal", b'\0{"system_identifier":"7300000000000000001","wal_segment_size":16777216,'
           b'"written":"2026-11-22T02:39:00Z"}')
content = b"\x10\xd1\x02\x00" + b"\0" * 60
put("wal", b'\1PVWA\1\0\0\0' + len(content).to_bytes(8, "little") +
    hashlib.sha256(content).digest() + content)
put("wal", b'\2000000010000000A000000FF')
put("wal", b'\2000000020000000000000003.00000028.backup')
put("wal", b'\200000002.history')
put("wal", b'\216/B374D848')
put("physical", b'\0START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n'
                b'CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n'
                b'START TIME: 2026-11-22 02:39:00 UTC\nLABEL: pgvault\nSTART TIMELINE: 1\n')
conf = (b"data_directory = '/var/lib/postgresql/15/main'\nhba_file = '/etc/postgresql/15/main/pg_hba.conf'\n"
        b"ident_file = '/etc/postgresql/15/main/pg_ident.conf'  # comment\n"
        b"external_pid_file = '/var/run/postgresql/15-main.pid'\nport = 5432\n"
        b"include_dir = 'conf.d'\ninclude_if_exists 'extra.conf'\ninclude = '/var/lib/postgresql/15/main/x.conf'\n"
        b"shared_buffers = 128MB\nlog_line_prefix = '%m [%p] ''q'' '\n")
put("physical", b'\1' + conf)
put("physical", b'\2' + conf)
put("physical", b'\4' + b"16385 /srv/ts/fast\n16386 /srv/ts/with space\n1 /x")
put("physical", b'\3{"backup_end_time_us":1795000000000000,"stop_lsn":"16/B374D848","next_xid":"4294967800",'
                b'"system_identifier":"7300000000000000001","wal_segment_size":16777216}')
put("objstore_xml", b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b'<Name>b</Name><Prefix>pre/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>'
    b'<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>'
    b'<Contents><Key>pre/data/ab/ab&amp;cd</Key><LastModified>2026-11-22T02:39:00.000Z</LastModified>'
    b'<ETag>&quot;x&quot;</ETag><Size>4096</Size><StorageClass>STANDARD</StorageClass></Contents>'
    b'<Contents><Key>pre/config</Key><Size>12</Size></Contents></ListBucketResult>')
put("objstore_xml", b'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ContainerName="c">'
    b'<Prefix>pre/</Prefix><Blobs><Blob><Name>pre/index/&#x61;b</Name><Properties>'
    b'<Last-Modified>Sun, 22 Nov 2026 02:39:00 GMT</Last-Modified><Content-Length>77</Content-Length>'
    b'</Properties></Blob><Blob><Name/></Blob></Blobs><NextMarker>2!88!MDAw</NextMarker></EnumerationResults>')
put("objstore_xml", b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Error><Key>pre/data/x</Key>'
    b'<Code>AccessDenied</Code><Message>Access &lt;Denied&gt; &#65;</Message></Error>'
    b'<Error><Key>y</Key><Code>InternalError</Code></Error></DeleteResult>')
put("objstore_xml", b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ContainerNotFound</Code>'
    b'<Message>The specified container does not exist.\nRequestId:1\nTime:2026</Message></Error>')
toc = (b";\n; Archive created at 2026-11-22 02:39:00 UTC\n;     dbname: shop\n;\n"
       b"215; 1259 16390 TABLE public orders alice\n"
       b"216; 1259 16389 SEQUENCE public orders_id_seq alice\n"
       b"217; 0 0 SEQUENCE OWNED BY public orders_id_seq alice\n"
       b"3350; 0 16390 TABLE DATA public orders alice\n"
       b"3200; 2606 16400 CONSTRAINT public orders orders_pkey alice\n"
       b"3201; 1259 16401 INDEX public orders_customer_idx alice\n"
       b"3202; 2606 16402 FK CONSTRAINT public items items_order_fk bob\n"
       b"3203; 2620 16403 TRIGGER public orders orders_audit alice\n"
       b"3204; 0 0 COMMENT public TABLE orders alice\n"
       b"3205; 3466 16404 EVENT TRIGGER - ddl_log alice\n"
       b"3206; 0 0 COMMENT - EVENT TRIGGER ddl_log alice\n"
       b"3207; 6106 16405 PUBLICATION TABLE public pub1 orders alice\n"
       b"3208; 3381 16406 STATISTICS public orders_stats alice\n"
       b"3209; 1259 16407 VIEW sales v_orders carol\n"
       b"3210; 0 0 ACL public TABLE orders alice\n"
       b'3211; 1259 16408 TABLE "we ird" "Tab""le" dave\n')
put("logical_toc", toc)
# copybin: byte 0 = split point (and % 3 == 0: one column of kind byte/3 % 15), then COPY text
# rows of text jsonb bytea bool int2 int4 int8 oid float4 float8 numeric date timestamp timestamptz uuid
row = (b"a\\tb\\\\c\\101\t{\"k\": [1, \"\\\\t\"]}\t\\\\x00ff10\tt\t-32768\t2147483647\t-9223372036854775808"
       b"\t4294967295\t1.1754942e-38\t-1.5e-07\t-123456789.000100\t4714-11-24 BC\t294276-12-31 23:59:59.999999"
       b"\t1850-06-01 12:00:00.5-04:56:02 BC\ta0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n")
nulls = b"\t".join([b"\\N"] * 15) + b"\n"
put("logical_copybin", b"\x80" + row + nulls + row)
put("logical_copybin", b"\x40" + nulls + row.replace(b"4714-11-24 BC", b"infinity"))
put("logical_copybin", b"\x1e" + b"NaN\nInfinity\n-0.5\n0.0001\n10000\n")        # numeric
put("logical_copybin", b"\x21" + b"2000-01-01\n-infinity\n0001-02-29 BC\n")     # date
put("logical_copybin", b"\x06" + b"\\\\x\n\\\\xDEADbeef\n\\134x41\n")     # bytea
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
  how="${seconds}s"
  [ -n "${FUZZ_SEEDS_ONLY:-}" ] && how="seeds only"
  echo "== fuzz_$t ($how, $(ls "$work/corpus/$t" | wc -l) seeds)"
  mkdir -p "$work/found/$t"
  parallel=()
  [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
  # (with -jobs libFuzzer writes fuzz-N.log into the current directory: $work)
  if [ -n "${FUZZ_SEEDS_ONLY:-}" ]; then
    # replay each seed once: -runs=0 only reads the corpus
    (cd "$work" && "$exe" -runs=0 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t-" "$work/corpus/$t") >"$work/$t.log" 2>&1
  else
    (cd "$work" && "$exe" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
      -print_final_stats=1 "${parallel[@]}" -artifact_prefix="$artifacts/$t-" \
      "$work/found/$t" "$work/corpus/$t") >"$work/$t.log" 2>&1
  fi
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
if [ -n "${FUZZ_SEEDS_ONLY:-}" ]; then
  echo "run-fuzz.sh: every target replayed its seeds without a crash"
else
  echo "run-fuzz.sh: all targets ran ${seconds}s without a crash"
fi
