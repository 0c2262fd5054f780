# libprivacypass: the C library (ffi/), its generated header and its C tests.
#
# Included by the top-level Makefile, which defines CARGO, CARGO_FLAGS, CARGO_TARGET_DIR and
# TARGET_RELEASE; the defaults below only serve `make -f mk/ffi.mk` on its own. Every build goes
# through `$(CARGO) build $(CARGO_FLAGS)`, the same command as the rest of the workspace, so that
# nothing (RocksDB above all) is ever rebuilt for the C library's sake.
#
# Targets:
#   ffi            build libprivacypass.so / .a (the whole workspace, same flags as everything)
#   header         regenerate include/privacypass.h with the pinned cbindgen
#   check-header   fail when include/privacypass.h differs from what cbindgen generates
#   cbindgen       install the pinned cbindgen when it is missing or another version
#   test-c         the C tests (test_privacypass.c for type 2, test_voprf.c for types 1 and 5): ASan+UBSan, valgrind, the panic boundary (ffi-test-panic, on the
#                  test-only libprivacypass_testing), exported symbols, version, README quick
#                  start, install into a temporary PREFIX with pkg-config (shared and static),
#                  the redeemer on a shared Redis store (ffi-test-redis, needs redis-server)
#   bench-c        verifies per second through the C API beside the core's, in one run
#   install        header, libprivacypass.so, libprivacypass.a and privacypass.pc under PREFIX

CARGO ?= cargo
CARGO_FLAGS ?= --release --workspace --all-targets --locked
CARGO_TARGET_DIR ?= $(HOME)/.cache/privacypass/target
TARGET_RELEASE ?= $(CARGO_TARGET_DIR)/release
PREFIX ?= /usr/local
DESTDIR ?=

FFI_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
FFI_VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' $(FFI_ROOT)/Cargo.toml | head -n 1)
FFI_HEADER := $(FFI_ROOT)/include/privacypass.h
FFI_SO := $(TARGET_RELEASE)/libprivacypass.so
FFI_A := $(TARGET_RELEASE)/libprivacypass.a
# The test-only library (ffi/testing/): libprivacypass plus pp_test_panic, never installed.
FFI_TESTING_SO := $(TARGET_RELEASE)/libprivacypass_testing.so
FFI_TESTS := $(FFI_ROOT)/ffi/tests
FFI_VECTORS := $(FFI_ROOT)/tests/vectors/rfc9578-type2-blind-rsa.json
FFI_VOPRF_VECTORS := $(FFI_ROOT)/tests/vectors/rfc9578-type1-voprf-p384.json
FFI_BATCH_VECTORS := $(addprefix $(FFI_ROOT)/tests/vectors/batched-,amortized_p384_rs.json \
	amortized_ristretto255_rs.json generic_rs.json)
FFI_README := $(FFI_ROOT)/ffi/README.md
FFI_OUT := $(CARGO_TARGET_DIR)/ffi-c

FFI_CBINDGEN ?= cbindgen
FFI_CBINDGEN_VERSION := 0.29.4
FFI_CBINDGEN_ARGS = --config $(FFI_ROOT)/ffi/cbindgen.toml --quiet $(FFI_ROOT)/ffi/src/lib.rs

FFI_CC ?= gcc
FFI_CFLAGS := -std=c99 -Wall -Wextra -Werror -g -I$(FFI_ROOT)/include
FFI_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FFI_LINK := -L$(TARGET_RELEASE) -lprivacypass -Wl,-rpath,$(TARGET_RELEASE) -lpthread
FFI_TESTING_LINK := -L$(TARGET_RELEASE) -lprivacypass_testing -Wl,-rpath,$(TARGET_RELEASE) -lpthread
FFI_VALGRIND := valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible \
	--show-leak-kinds=definite,possible --quiet
# What a static link of libprivacypass.a needs besides it (OpenSSL, the C++ runtime of RocksDB,
# libc's parts), written into privacypass.pc as Libs.private and checked by test-c.
FFI_LIBS_PRIVATE := -lssl -lcrypto -lstdc++ -lpthread -ldl -lm -lrt -lutil -lgcc_s
FFI_LIBDIR ?= $(PREFIX)/lib
FFI_INCLUDEDIR ?= $(PREFIX)/include
FFI_BENCH_SECONDS ?= 5

.PHONY: ffi header check-header cbindgen test-c bench-c install \
	ffi-test-asan ffi-test-valgrind ffi-test-symbols ffi-test-quickstart ffi-test-install \
	ffi-test-redis ffi-test-panic

ffi:
	CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) $(CARGO) build $(CARGO_FLAGS)

cbindgen:
	@if [ "$$($(FFI_CBINDGEN) --version 2>/dev/null)" != "cbindgen $(FFI_CBINDGEN_VERSION)" ]; then \
		echo "installing cbindgen $(FFI_CBINDGEN_VERSION)"; \
		env -u CARGO_TARGET_DIR $(CARGO) install cbindgen --version $(FFI_CBINDGEN_VERSION) --locked --force; \
	fi

header: cbindgen
	$(FFI_CBINDGEN) $(FFI_CBINDGEN_ARGS) --output $(FFI_HEADER)

check-header: cbindgen
	@tmp=$$(mktemp) && trap 'rm -f $$tmp' EXIT && \
	$(FFI_CBINDGEN) $(FFI_CBINDGEN_ARGS) --output $$tmp && \
	if diff -u $(FFI_HEADER) $$tmp; then echo "include/privacypass.h is up to date"; \
	else echo "include/privacypass.h is stale: run 'make header' and commit it" >&2; exit 1; fi

test-c: ffi-test-asan ffi-test-valgrind ffi-test-panic ffi-test-symbols ffi-test-quickstart \
	ffi-test-install ffi-test-redis
	@echo "test-c: all C tests passed"

$(FFI_OUT):
	mkdir -p $@

# The test program under AddressSanitizer and UndefinedBehaviorSanitizer.
ffi-test-asan: ffi | $(FFI_OUT)
	$(FFI_CC) $(FFI_CFLAGS) $(FFI_SANITIZE) $(FFI_TESTS)/test_privacypass.c -o $(FFI_OUT)/test_privacypass_asan $(FFI_LINK)
	@scratch=$$(mktemp -d) && trap 'rm -rf $$scratch' EXIT && \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	RUST_BACKTRACE=0 PP_TEST_EXPECTED_VERSION=$(FFI_VERSION) \
	$(FFI_OUT)/test_privacypass_asan $(FFI_VECTORS) $$scratch
	$(FFI_CC) $(FFI_CFLAGS) $(FFI_SANITIZE) $(FFI_TESTS)/test_voprf.c -o $(FFI_OUT)/test_voprf_asan $(FFI_LINK)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	RUST_BACKTRACE=0 $(FFI_OUT)/test_voprf_asan $(FFI_VOPRF_VECTORS)
	$(FFI_CC) $(FFI_CFLAGS) $(FFI_SANITIZE) $(FFI_TESTS)/test_batch.c -o $(FFI_OUT)/test_batch_asan $(FFI_LINK)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	RUST_BACKTRACE=0 $(FFI_OUT)/test_batch_asan $(FFI_BATCH_VECTORS)

# The same program without sanitizers, under valgrind: no errors, no leaks.
ffi-test-valgrind: ffi | $(FFI_OUT)
	@command -v valgrind >/dev/null || { echo "valgrind is required: make deps installs it" >&2; exit 1; }
	$(FFI_CC) $(FFI_CFLAGS) -O1 $(FFI_TESTS)/test_privacypass.c -o $(FFI_OUT)/test_privacypass $(FFI_LINK)
	@scratch=$$(mktemp -d) && trap 'rm -rf $$scratch' EXIT && \
	RUST_BACKTRACE=0 PP_TEST_EXPECTED_VERSION=$(FFI_VERSION) \
	$(FFI_VALGRIND) $(FFI_OUT)/test_privacypass $(FFI_VECTORS) $$scratch
	$(FFI_CC) $(FFI_CFLAGS) -O1 $(FFI_TESTS)/test_voprf.c -o $(FFI_OUT)/test_voprf $(FFI_LINK)
	RUST_BACKTRACE=0 $(FFI_VALGRIND) $(FFI_OUT)/test_voprf $(FFI_VOPRF_VECTORS)
	$(FFI_CC) $(FFI_CFLAGS) -O1 $(FFI_TESTS)/test_batch.c -o $(FFI_OUT)/test_batch $(FFI_LINK)
	RUST_BACKTRACE=0 $(FFI_VALGRIND) $(FFI_OUT)/test_batch $(FFI_BATCH_VECTORS)

# The panic boundary: pp_test_panic of the test-only libprivacypass_testing answers PP_ERR_PANIC
# and the library keeps working, under ASan and UBSan.
ffi-test-panic: ffi | $(FFI_OUT)
	$(FFI_CC) $(FFI_CFLAGS) -I$(FFI_ROOT)/ffi/testing $(FFI_SANITIZE) $(FFI_TESTS)/test_panic.c \
		-o $(FFI_OUT)/test_panic $(FFI_TESTING_LINK)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	RUST_BACKTRACE=0 $(FFI_OUT)/test_panic

# Two redeemer handles (two hosts) on one Redis store, under ASan and UBSan, against a
# redis-server started on a free port in a temporary directory and stopped on every exit.
ffi-test-redis: ffi | $(FFI_OUT)
	@command -v redis-server >/dev/null || { echo "redis-server is required: make deps installs it" >&2; exit 1; }
	$(FFI_CC) $(FFI_CFLAGS) $(FFI_SANITIZE) $(FFI_TESTS)/test_redis.c -o $(FFI_OUT)/test_redis $(FFI_LINK)
	@set -e; dir=$$(mktemp -d); pid=; \
	trap 'if [ -n "$$pid" ]; then kill -9 $$pid 2>/dev/null || true; wait $$pid 2>/dev/null || true; fi; rm -rf $$dir' EXIT; \
	port=$$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	redis-server --port $$port --bind 127.0.0.1 --dir $$dir --logfile $$dir/redis.log --daemonize no \
		--appendonly yes --appendfsync always --save '' </dev/null >/dev/null & pid=$$!; \
	for i in $$(seq 200); do \
		[ "$$(redis-cli -p $$port ping 2>/dev/null)" = PONG ] && break; \
		kill -0 $$pid 2>/dev/null || break; sleep 0.05; \
	done; \
	[ "$$(redis-cli -p $$port ping 2>/dev/null)" = PONG ] || \
		{ echo "redis-server did not start on port $$port:" >&2; cat $$dir/redis.log >&2; exit 1; }; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	RUST_BACKTRACE=0 $(FFI_OUT)/test_redis $$port

# The shared library exports pp_ symbols and nothing else, and not the test-only pp_test_panic,
# which the test-only libprivacypass_testing.so does export (beside all of libprivacypass's).
ffi-test-symbols: ffi
	@if nm -D --defined-only $(FFI_SO) | awk '{ print $$NF }' | grep -qx pp_test_panic; then \
		echo "libprivacypass.so exports the test-only pp_test_panic" >&2; exit 1; fi; \
	if nm --defined-only $(FFI_A) 2>/dev/null | awk '{ print $$NF }' | grep -qx pp_test_panic; then \
		echo "libprivacypass.a defines the test-only pp_test_panic" >&2; exit 1; fi; \
	nm -D --defined-only $(FFI_TESTING_SO) | awk '{ print $$NF }' | grep -qx pp_test_panic || \
		{ echo "libprivacypass_testing.so does not export pp_test_panic" >&2; exit 1; }; \
	missing=$$(nm -D --defined-only $(FFI_SO) | awk '{ print $$NF }' | grep '^pp_' | sort | \
		comm -23 - <(nm -D --defined-only $(FFI_TESTING_SO) | awk '{ print $$NF }' | sort)); \
	if [ -n "$$missing" ]; then echo "libprivacypass_testing.so lacks exports of libprivacypass.so:" >&2; \
		echo "$$missing" >&2; exit 1; fi; \
	echo "pp_test_panic: only in libprivacypass_testing.so (which exports all of libprivacypass.so too)"
	@others=$$(nm -D --defined-only $(FFI_SO) | awk '{ print $$NF }' | grep -v '^pp_' || true); \
	if [ -n "$$others" ]; then echo "libprivacypass.so exports symbols without the pp_ prefix:" >&2; \
		echo "$$others" >&2; exit 1; fi; \
	count=$$(nm -D --defined-only $(FFI_SO) | grep -c ' pp_'); \
	echo "libprivacypass.so exports $$count symbols, all pp_"

# The READMEs' quick start (the top README and ffi/README.md) is byte-identical to
# ffi/tests/quickstart.c, and compiles and runs.
ffi-test-quickstart: ffi | $(FFI_OUT)
	@for readme in $(FFI_ROOT)/README.md $(FFI_README); do \
	  awk '/^<!-- quickstart.c -->$$/ { marked = 1; next } \
		marked && /^```c$$/ { inside = 1; next } \
		inside && /^```$$/ { exit } \
		inside { print }' $$readme > $(FFI_OUT)/quickstart_from_readme.c; \
	  cmp -s $(FFI_OUT)/quickstart_from_readme.c $(FFI_TESTS)/quickstart.c || \
		{ echo "$$readme's quick start differs from ffi/tests/quickstart.c:" >&2; \
		  diff -u $(FFI_TESTS)/quickstart.c $(FFI_OUT)/quickstart_from_readme.c >&2; exit 1; }; \
	  echo "$$readme's quick start is ffi/tests/quickstart.c"; \
	done
	$(FFI_CC) $(FFI_CFLAGS) $(FFI_SANITIZE) $(FFI_OUT)/quickstart_from_readme.c -o $(FFI_OUT)/quickstart $(FFI_LINK)
	ASAN_OPTIONS=detect_leaks=1 $(FFI_OUT)/quickstart

# Install into a temporary PREFIX; build the quick start exactly as the README says, against the
# shared library through pkg-config and against the static library through pkg-config --static.
ffi-test-install: ffi | $(FFI_OUT)
	@set -e; prefix=$$(mktemp -d); trap 'rm -rf $$prefix' EXIT; \
	$(MAKE) --no-print-directory -f $(FFI_ROOT)/mk/ffi.mk ffi-install-files PREFIX=$$prefix DESTDIR= \
		CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) TARGET_RELEASE=$(TARGET_RELEASE); \
	test -f $$prefix/include/privacypass.h -a -f $$prefix/lib/libprivacypass.so -a -f $$prefix/lib/libprivacypass.a; \
	export PKG_CONFIG_PATH=$$prefix/lib/pkgconfig; \
	test "$$(pkg-config --modversion privacypass)" = "$(FFI_VERSION)"; \
	cd $$prefix && cp $(FFI_TESTS)/quickstart.c . && \
	echo "cc -std=c99 quickstart.c \$$(pkg-config --cflags --libs privacypass) -o quickstart" && \
	cc -std=c99 -Wall -Wextra -Werror quickstart.c $$(pkg-config --cflags --libs privacypass) -o quickstart && \
	LD_LIBRARY_PATH=$$prefix/lib ./quickstart >/dev/null && \
	echo "static: cc quickstart.c \$$prefix/lib/libprivacypass.a \$$(pkg-config --static --libs-only-other --libs-only-l privacypass)" && \
	cc -std=c99 -Wall -Wextra -Werror quickstart.c $$(pkg-config --cflags privacypass) \
		$$prefix/lib/libprivacypass.a $$(pkg-config --static --libs-only-l privacypass | sed 's/-lprivacypass//') \
		-o quickstart_static && \
	! ldd ./quickstart_static | grep -q libprivacypass && ./quickstart_static >/dev/null && \
	echo "install into a temporary PREFIX: header, libraries and pkg-config work, shared and static"

# The core's criterion `crypto/verify` and then the same verification through the C API, in one
# run, and the ratio of the two (target: the C API within 10% of the core).
bench-c: ffi | $(FFI_OUT)
	$(FFI_CC) $(FFI_CFLAGS) -O2 $(FFI_TESTS)/bench_verify.c -o $(FFI_OUT)/bench_verify $(FFI_LINK)
	@bin=$$(scripts/target-path bench crypto) && "$$bin" --bench '^crypto/verify$$'
	$(FFI_OUT)/bench_verify $(FFI_BENCH_SECONDS) | tee $(FFI_OUT)/bench_verify.txt
	@python3 scripts/bench_report.py --c-api $(CARGO_TARGET_DIR)/criterion $(FFI_OUT)/bench_verify.txt

install: ffi ffi-install-files dist-install-files

.PHONY: ffi-install-files
ffi-install-files:
	install -d $(DESTDIR)$(FFI_INCLUDEDIR) $(DESTDIR)$(FFI_LIBDIR)/pkgconfig
	install -m 0644 $(FFI_HEADER) $(DESTDIR)$(FFI_INCLUDEDIR)/privacypass.h
	install -m 0755 $(FFI_SO) $(DESTDIR)$(FFI_LIBDIR)/libprivacypass.so
	install -m 0644 $(FFI_A) $(DESTDIR)$(FFI_LIBDIR)/libprivacypass.a
	strip --strip-debug $(DESTDIR)$(FFI_LIBDIR)/libprivacypass.so $(DESTDIR)$(FFI_LIBDIR)/libprivacypass.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(FFI_LIBDIR)|' -e 's|@INCLUDEDIR@|$(FFI_INCLUDEDIR)|' \
		-e 's|@VERSION@|$(FFI_VERSION)|' -e 's|@LIBS_PRIVATE@|$(FFI_LIBS_PRIVATE)|' \
		$(FFI_ROOT)/ffi/privacypass.pc.in > $(DESTDIR)$(FFI_LIBDIR)/pkgconfig/privacypass.pc
	chmod 0644 $(DESTDIR)$(FFI_LIBDIR)/pkgconfig/privacypass.pc
