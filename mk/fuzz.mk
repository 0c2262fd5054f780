# Fuzzing with cargo-fuzz (libFuzzer) over what takes outside bytes (fuzz/fuzz_targets): the wire
# decoders (Token, TokenChallenge, TokenRequest and TokenResponse, each checked to re-encode to
# the bytes it decoded), the WWW-Authenticate / Authorization parsers, the daemon's API routes
# in-process (rpc: JSON-RPC; rest: REST and /token-request), its API-keys and key-directory
# loaders, and the C API's entry points (ffi). The fuzz crate builds the daemon and the C library
# without RocksDB or Redis (memory store only): no C++ to compile.
#
# Targets:
#   fuzz   every target for $(FUZZ_SECONDS) s on its corpus (fuzz/corpus/<target>), then a line
#          per target: executions, executions per second, coverage, crashes. Needs the nightly
#          toolchain (rustup) for libFuzzer's instrumentation and cargo-fuzz (installed, pinned,
#          when missing). Not part of `make test`.
#   fuzz-regress  part of `make test`: every target built with the default (stable) toolchain
#          (`--sanitizer none`, RUSTC_BOOTSTRAP for cargo-fuzz's flags) and run once over each
#          input of its corpus (`-runs=0`); a crash fails it. Seconds once built.
#
# The fuzz crate is a workspace of its own with its own target directories (fuzz/target for
# `make fuzz`, $(FUZZ_REGRESS_TARGET) for the regression, kept across clones like the main one):
# their flags never touch the main build's artifacts.

FUZZ_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../fuzz)
FUZZ_TARGETS := token token_challenge token_request headers rpc rest loaders ffi
FUZZ_SECONDS ?= 60
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_REGRESS_TARGET := $(HOME)/.cache/privacypass/fuzz-target
FUZZ_HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

.PHONY: fuzz fuzz-tools cargo-fuzz fuzz-regress

cargo-fuzz:
	@if [ "$$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $(CARGO_FUZZ_VERSION)" ]; then \
		echo "installing cargo-fuzz $(CARGO_FUZZ_VERSION)"; \
		env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --force; \
	fi

fuzz-tools: cargo-fuzz
	@rustup toolchain list | grep -q '^nightly' || \
		{ echo "make fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }

fuzz-regress: cargo-fuzz
	@cd $(FUZZ_DIR) && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FUZZ_REGRESS_TARGET) \
		cargo fuzz build -O --sanitizer none
	@inputs=0; cd $(FUZZ_DIR) && for t in $(FUZZ_TARGETS); do \
	  n=$$(ls corpus/$$t | wc -l); \
	  $(FUZZ_REGRESS_TARGET)/$(FUZZ_HOST)/release/$$t corpus/$$t -runs=0 -artifact_prefix=$(FUZZ_REGRESS_TARGET)/ >/tmp/fuzz-regress-$$t.log 2>&1 || \
	    { echo "fuzz-regress: $$t fails on its corpus:" >&2; tail -n 30 /tmp/fuzz-regress-$$t.log >&2; exit 1; }; \
	  inputs=$$((inputs + n)); rm -f /tmp/fuzz-regress-$$t.log; \
	done; echo "fuzz-regress: $$inputs corpus inputs over $(words $(FUZZ_TARGETS)) targets, no crash"

fuzz: fuzz-tools
	@cd $(FUZZ_DIR) && env -u CARGO_TARGET_DIR cargo +nightly fuzz build -O
	@summary=(); cd $(FUZZ_DIR) && for t in $(FUZZ_TARGETS); do \
	  log=$$(mktemp); \
	  env -u CARGO_TARGET_DIR cargo +nightly fuzz run -O $$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 >$$log 2>&1; rc=$$?; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log); \
	  rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $$log); \
	  cov=$$(grep -o 'cov: [0-9]*' $$log | tail -n 1); \
	  crashes=$$(ls artifacts/$$t 2>/dev/null | grep -c '^crash-' || true); \
	  summary+=("$$t: $${execs:-0} execs, $${rate:-0} exec/s, $${cov:-cov: ?}, $$crashes crashes (exit $$rc)"); \
	  [ $$rc -eq 0 ] || tail -n 30 $$log; rm -f $$log; \
	done; printf '%s\n' "$${summary[@]}"
