#!/usr/bin/env bash
# run-tests.sh BUILD_DIR: unit tests (cmocka, through meson) and end-to-end
# tests (pytest against real PostgreSQL servers) of the binary in BUILD_DIR.
# Prints each runner's summary and a final "N passed, N failed" line.
set -uo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-/usr/bin/python3}

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

echo "== unit tests ($build)"
meson test -C "$build" --suite unit --print-errorlogs --num-processes 2
unit_rc=$?
unit_pass=0; unit_fail=0
if [ -f "$build/meson-logs/testlog.json" ]; then
  unit_pass=$(grep -c '"result": "OK"' "$build/meson-logs/testlog.json" || true)
  unit_fail=$(grep -c '"result": "\(FAIL\|TIMEOUT\|ERROR\)"' "$build/meson-logs/testlog.json" || true)
fi

echo "== end-to-end tests ($build)"
# The 5 GiB streaming test runs whole in the plain build; under the
# sanitizers (several times slower) 1 GiB shows the same code paths.
case $build in *asan*) export PGVAULT_TEST_LARGE_GIB=${PGVAULT_TEST_LARGE_GIB:-1} ;; esac
bin="$root/$build/pgvault"
# As root, test servers run as an unprivileged user, and they run pgvault
# themselves (archive_command, restore_command): give them a copy of the
# binary they can reach even when the checkout lives in a private directory.
if [ "$(id -u)" = 0 ]; then
  bindir=$(mktemp -d /tmp/pgvault-bin.XXXXXX)
  chmod 755 "$bindir"
  cp "$bin" "$bindir/pgvault"
  chmod 755 "$bindir/pgvault"
  # developer tools the storage tests expect beside the binary
  if [ -d "$root/$build/bench" ]; then
    mkdir -p "$bindir/bench"
    cp "$root/$build/bench/storage_tool" "$root/$build/bench/codec_bench" "$bindir/bench/" 2>/dev/null || true
    chmod -R a+rX "$bindir/bench"
  fi
  bin="$bindir/pgvault"
  trap 'rm -rf "$bindir"' EXIT
fi
PGVAULT_BIN="$bin" "$python" -m pytest tests/e2e -q -p no:cacheprovider \
  --junitxml="$build/e2e-junit.xml" ${PYTEST_ARGS:-}
e2e_rc=$?
e2e_pass=0; e2e_fail=0
if [ -f "$build/e2e-junit.xml" ]; then
  read -r e2e_total e2e_failures e2e_errors e2e_skipped < <("$python" - "$build/e2e-junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
print(s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped"))
PY
)
  e2e_fail=$((e2e_failures + e2e_errors))
  e2e_pass=$((e2e_total - e2e_fail - e2e_skipped))
fi

echo "$build: $((unit_pass + e2e_pass)) passed, $((unit_fail + e2e_fail)) failed"
[ $unit_rc -eq 0 ] && [ $e2e_rc -eq 0 ]
