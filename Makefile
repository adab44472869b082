# Thin wrapper over meson/ninja with the habits people expect.
#
#   make            build build/pgvault
#   make check      install deps, build, unit + end-to-end tests, then the
#                   same again under AddressSanitizer + UBSan
#   make demo       scratch PostgreSQL in ./.demo, sample data, pgvault at work
#   make bench      side-by-side benchmarks (QUICK=1 for a short run)
#   make install    PREFIX=/usr/local by default
#   make clean

BUILD    ?= build
ASAN     ?= build-asan
PREFIX   ?= /usr/local
PYTHON   ?= /usr/bin/python3
SANITIZE ?= 1
PYTEST_ARGS ?=

.PHONY: all build deps check check-unit check-e2e check-asan demo bench install clean fuzz fuzz-seeds

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

check: deps build
	@scripts/run-tests.sh $(BUILD)
ifeq ($(SANITIZE),1)
	@[ -f $(ASAN)/build.ninja ] || meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	ninja -C $(ASAN)
	@scripts/run-tests.sh $(ASAN)
endif

demo: deps build
	@scripts/demo.sh

bench: deps build
	@bench/run.sh

install: build
	meson configure $(BUILD) --prefix=$(PREFIX)
	meson install -C $(BUILD)

fuzz:
	@[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-fuzz
	@scripts/run-fuzz.sh build-fuzz

# CI: every fuzz target built and run once over its seeds (seconds, not a fuzzing run)
fuzz-seeds: deps
	@[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-fuzz pgvault $$(cd tests/fuzz && ls fuzz_*.c | sed 's|\.c$$||;s|^|tests/fuzz/|')
	@FUZZ_SEEDS_ONLY=1 scripts/run-fuzz.sh build-fuzz

clean:
	rm -rf $(BUILD) $(ASAN) build-fuzz .demo
