#!/usr/bin/env bash
# install-deps.sh: install every Debian package that building, testing,
# the demo and the benchmarks of pgvault need.  Idempotent: packages already
# present are skipped, and `apt-get update` runs only when something is
# missing.  Works on a fresh Debian 12 machine as root or with sudo.
set -euo pipefail

packages=(
  # build
  gcc make meson ninja-build pkg-config
  libpq-dev libzstd-dev liblz4-dev zlib1g-dev libssl-dev
  libcurl4-openssl-dev libinih-dev libjansson-dev libmicrohttpd-dev
  # unit tests, sanitizers and fuzzing
  libcmocka-dev clang libclang-rt-14-dev
  # runtime: IANA time zones (src/common/timeutil.c reads /usr/share/zoneinfo)
  tzdata
  # end-to-end tests, demo, benchmarks: real servers and tools
  postgresql-15 postgresql-client-15 python3 python3-pytest python3-psycopg
  pgbackrest zstd lz4 util-linux procps time
  # daemon tests (tests/e2e/test_daemon.py, test_statuspage.py): a Prometheus
  # text parser, a local SMTP server with STARTTLS and AUTH, headless Chromium
  python3-prometheus-client python3-aiosmtpd chromium
  # object-store tests (tests/e2e/emulators.py): OpenStack Swift with s3api,
  # a signature-checking S3; s3rver and azurite come from npm (below)
  swift swift-proxy swift-account swift-container swift-object memcached openssl
)
# node and npm run the npm emulators, which the tests install themselves into
# tests/e2e/.npm.  A node that is already there (e.g. from NodeSource, whose
# package includes npm) is kept: Debian's npm package would conflict with it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: error: not root and no sudo; install as root: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists: update only when an install fails.
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's postgresql package may create and start a 'main' cluster; the
# tests start their own servers and never touch it.
