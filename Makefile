# privacypass: `make run` starts the daemon, `make test` runs every test, `make bench` measures.
# Everything a fresh Debian machine lacks is installed on first use, from the lists in mk/deps.mk.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# One target directory outside the clone, so CI and every checkout reuse the RocksDB build.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/privacypass/target
CARGO ?= cargo
# Every cargo command uses exactly these flags: one profile and one feature resolution, so the
# C++ of RocksDB is compiled once and never again because of a different invocation.
CARGO_FLAGS := --release --workspace --all-targets --locked
TARGET_RELEASE := $(CARGO_TARGET_DIR)/release

LISTEN ?= 127.0.0.1:8787
DATA_DIR ?= ./data

.PHONY: help deps build test run demo bench fmt fmt-check clippy cargo-test bench-crypto bench-daemon \
	bench-scaleout bench-compare test-interop crash-soak generated check-generated

help:
	@echo "make run    build and start privacypassd on $(LISTEN) (RocksDB in $(DATA_DIR))"
	@echo "make demo   the whole protocol as a client against the daemon of make run"
	@echo "make test   every test: Rust, C, Go, Python, nginx, interop with privacypass-ts, dist/ (units, alert rules, make install)"
	@echo "make install [PREFIX=/usr/local] [DESTDIR=]  privacypassd, its man pages and completions, the C library, dist/ files"
	@echo "make generated  the result-code tables of C, Go, Python and the README, from src/codes.rs"
	@echo "make bench  benchmarks (not part of the tests)"
	@echo "make bench-compare BASE=<rev>  the daemon benchmark on BASE and on the working tree, with the ratios"
	@echo "make fuzz   every fuzz target for FUZZ_SECONDS (default 60) s (not part of the tests)"
	@echo "make fuzz-nginx  the nginx module's parsers under ASan/UBSan for 300 s (not part of the tests)"
	@echo "make crash-soak  CRASH_SOAK_ROUNDS (default 200) power cuts under redeem load (not part of the tests)"

build: deps-build
	$(CARGO) build $(CARGO_FLAGS)

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: deps-build
	$(CARGO) clippy $(CARGO_FLAGS) -- -D warnings

# The result codes spelled out for C, Go, Python and the README, generated from src/codes.rs
# (xtask/): `make generated` writes them, `make check-generated` fails when one differs. The
# generator is built on its own: a new row leaves the C library short of it until it is generated.
generated:
	$(CARGO) run --release --locked -p xtask -- codes
	$(MAKE) header

check-generated: build
	$(TARGET_RELEASE)/xtask codes --check

cargo-test: deps build
	$(CARGO) test $(CARGO_FLAGS)

# The power-loss test of `make test` (tests/daemon/powerloss.rs, 20 rounds) for many more rounds:
# prints each round and then rounds, spends acknowledged, spends found spent, lost (must be 0).
# POWERLOSS_SEED=N replays the cut moments of an earlier run.
CRASH_SOAK_ROUNDS ?= 200
crash-soak: deps build
	POWERLOSS_ROUNDS=$(CRASH_SOAK_ROUNDS) $(CARGO) test $(CARGO_FLAGS) -- --exact \
		every_acknowledged_spend_survives_power_loss_under_load --nocapture

include mk/deps.mk
include mk/ffi.mk
include mk/go.mk
include mk/python.mk
include mk/nginx.mk
include mk/fuzz.mk
include mk/dist.mk

# A client written elsewhere (@cloudflare/privacypass-ts, from npm) against the real daemon.
test-interop: deps build
	PRIVACYPASSD=$(TARGET_RELEASE)/privacypassd bash tests/interop/run.sh

test-c test-go test-python test-nginx test-dist: deps build

# the module links libprivacypass.a, the bindings load libprivacypass.so: built first, so that
# `make test-go` or `make test-python` alone on a fresh tree builds what it uses
nginx-module go-check-lib python-install: build

test: deps check-deps fmt-check clippy cargo-test check-generated check-header test-c test-go test-python test-nginx test-interop \
	test-dist fuzz-regress
	@echo "make test: all suites passed"

run: build
	@echo "privacypassd:      http://$(LISTEN)"
	@echo "issuer directory:  http://$(LISTEN)/.well-known/private-token-issuer-directory"
	@echo "demo (another terminal): make demo   # or: $(TARGET_RELEASE)/privacypassd demo --url http://$(LISTEN)"
	$(TARGET_RELEASE)/privacypassd serve --listen $(LISTEN) --data-dir $(DATA_DIR) --generate-key-if-missing true

demo:
	$(TARGET_RELEASE)/privacypassd demo --url http://$(LISTEN)

# Benchmarks run the bench binaries that `make build` produced, with no second build.
bench: build bench-crypto bench-c bench-go bench-daemon bench-nginx bench-scaleout

bench-go bench-nginx: build

bench-crypto:
	@bin=$$(scripts/target-path bench crypto) && "$$bin" --bench '^(crypto|batch)/'
	@openssl speed -seconds 5 rsa2048 ecdhp384 2>/dev/null | tee $(CARGO_TARGET_DIR)/openssl-speed.txt | tail -n 5
	@python3 scripts/bench_report.py $(CARGO_TARGET_DIR)/criterion $(CARGO_TARGET_DIR)/openssl-speed.txt

# issue and redeem over HTTP against a daemon on 127.0.0.1, beside the in-process ceilings.
bench-daemon:
	$(TARGET_RELEASE)/privacypass-load --daemon $(TARGET_RELEASE)/privacypassd --seconds 3

# The daemon benchmark on BASE (a git rev) and on the working tree, interleaved, with each row's
# ratio: make bench-compare BASE=main [ROUNDS=2]. BASE is built in a git worktree into this target
# directory (its dependencies are the ones already built).
bench-compare: build
	BASE=$(BASE) ROUNDS=$(or $(ROUNDS),2) scripts/bench-compare

# Durable redeems with 1 and then 3 daemons sharing one Redis (appendfsync always) on 127.0.0.1.
bench-scaleout: build
	@dir=$$(mktemp -d) && port=$$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])') && \
	redis-server --bind 127.0.0.1 --port $$port --dir $$dir --appendonly yes --appendfsync always --save '' \
		--daemonize yes --pidfile $$dir/redis.pid >/dev/null && \
	trap 'kill $$(cat $$dir/redis.pid) 2>/dev/null; rm -rf $$dir' EXIT && \
	until redis-cli -p $$port ping >/dev/null 2>&1; do sleep 0.1; done && \
	for n in 1 3; do \
		$(TARGET_RELEASE)/privacypass-load --daemon $(TARGET_RELEASE)/privacypassd --seconds 3 \
			--store redis://127.0.0.1:$$port/0 --daemons $$n --ops redeem --connections 16,64; \
	done
