# The nginx module (bindings/nginx): ngx_http_privacypass_module built against Debian's nginx,
# its tests and its benchmark.
#
# Included by the top-level Makefile, which defines CARGO_TARGET_DIR and TARGET_RELEASE; the
# defaults below only serve `make -f mk/nginx.mk` on its own (test-nginx and bench-nginx also
# need mk/deps.mk, which installs nginx and nginx-dev, and mk/python.mk:
# `make -f mk/deps.mk -f mk/python.mk -f mk/nginx.mk test-nginx`). Nothing here runs cargo: the
# module links the libprivacypass.a already in $(TARGET_RELEASE) (the top Makefile makes `build`
# a prerequisite), and the tests use the privacypassd beside it.
#
# Targets:
#   nginx-module   $(NGX_MODULE_SO): Debian's way for third-party modules, i.e. the sources
#                  of /usr/share/nginx/src copied to $(NGX_BUILD), `./configure` with the flags
#                  of Debian's nginx (conf_flags, --with-compat) plus
#                  --add-dynamic-module=bindings/nginx, `make modules`; libprivacypass.a is
#                  linked into the module, whose debug info is stripped
#   test-nginx     the parsers' sanitizer harness over $(NGX_FUZZ_TEST_INPUTS) generated inputs,
#                  then pytest bindings/nginx/tests: a real nginx with 2 workers and privacypassd
#   fuzz-nginx     the harness for $(NGX_FUZZ_SECONDS) s or $(NGX_FUZZ_INPUTS) inputs, with a fresh
#                  seed unless PRIVACYPASS_FUZZ_SEED is set
#   bench-nginx    requests/s: a protected location with fresh tokens beside an open one
#
# The harness ($(NGX_FUZZ)): the module's parsers of untrusted bytes
# (ngx_http_privacypass_parse.c: the Authorization value, the daemon's redeem answer, the key
# file) compiled with bindings/nginx/tests/fuzz_parse.c by gcc under AddressSanitizer and
# UndefinedBehaviorSanitizer, against the headers of the nginx tree configured for the module;
# any sanitizer report or failed check stops it with a nonzero status, naming the input
# (PRIVACYPASS_FUZZ_SEED=S PRIVACYPASS_FUZZ_INPUT=N runs that one alone). To see it fail, build
# it over a broken copy: make NGX_FUZZ=/tmp/f NGX_FUZZ_PARSE_C=/tmp/broken_parse.c /tmp/f.

SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/privacypass/target
TARGET_RELEASE ?= $(CARGO_TARGET_DIR)/release

NGX_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
NGX_DIR := $(NGX_ROOT)/bindings/nginx
NGX_SRC := /usr/share/nginx/src
NGX_BIN ?= /usr/sbin/nginx
NGX_BUILD := $(CARGO_TARGET_DIR)/nginx-module
NGX_MODULE_SO := $(NGX_BUILD)/ngx_http_privacypass_module.so
NGX_LIB := $(TARGET_RELEASE)/libprivacypass.a
NGX_DAEMON := $(TARGET_RELEASE)/privacypassd
NGX_PYTEST_ARGS ?= -q -rs
NGX_FUZZ := $(NGX_BUILD)/fuzz_parse
NGX_FUZZ_PARSE_C ?= $(NGX_DIR)/ngx_http_privacypass_parse.c
NGX_FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all -W -Wall -Wextra -Wpointer-arith -Wno-unused-parameter -Werror
NGX_FUZZ_INCS = $(addprefix -I $(NGX_BUILD)/src/src/,core event event/modules os/unix) \
	-I $(NGX_BUILD)/src/objs -I $(NGX_ROOT)/include -I $(NGX_DIR)
NGX_FUZZ_TEST_INPUTS ?= 1000000
NGX_FUZZ_INPUTS ?= 1000000000
NGX_FUZZ_SECONDS ?= 300
NGX_BENCH_TOKENS ?= 5000
NGX_BENCH_CONNECTIONS ?= 32
# the venv (with httpx for HTTP/2) comes from mk/deps.mk, the Python binding from mk/python.mk
NGX_PYTHON = $(PY_VENV_PYTHON)

.PHONY: nginx-module nginx-fuzz-harness test-nginx fuzz-nginx bench-nginx ngx-check-daemon

nginx-module: deps-debian
	@$(MAKE) --no-print-directory -f $(NGX_ROOT)/mk/nginx.mk $(NGX_MODULE_SO) \
		CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) TARGET_RELEASE=$(TARGET_RELEASE)

# Rebuilt when the module, the header, the library or Debian's nginx changes.
$(NGX_MODULE_SO): $(NGX_DIR)/config $(wildcard $(NGX_DIR)/*.c $(NGX_DIR)/*.h) \
		$(NGX_ROOT)/include/privacypass.h $(NGX_LIB) $(NGX_SRC)/src/core/nginx.h
	@test -f $(NGX_LIB) || { echo "$(NGX_LIB) is missing: build the library first (make ffi)" >&2; exit 1; }
	rm -rf $(NGX_BUILD)/src && mkdir -p $(NGX_BUILD) && cp -a $(NGX_SRC) $(NGX_BUILD)/src
	cd $(NGX_BUILD)/src && . ./conf_flags && \
		PRIVACYPASS_LIB=$(NGX_LIB) PRIVACYPASS_INCLUDE=$(NGX_ROOT)/include \
		./configure "$${NGX_CONF_FLAGS[@]}" --with-cc-opt='-Wall -Wextra -Werror' \
		--add-dynamic-module=$(NGX_DIR) > $(NGX_BUILD)/configure.log 2>&1 || \
		{ tail -n 30 $(NGX_BUILD)/configure.log >&2; exit 1; }
	$(MAKE) --no-print-directory -C $(NGX_BUILD)/src -f objs/Makefile modules
	strip --strip-debug -o $@ $(NGX_BUILD)/src/objs/ngx_http_privacypass_module.so
	@echo "built $@ ($$(du -h $@ | cut -f1)), load it with: load_module $@;"

nginx-fuzz-harness: nginx-module
	@$(MAKE) --no-print-directory -f $(NGX_ROOT)/mk/nginx.mk $(NGX_FUZZ) \
		CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) TARGET_RELEASE=$(TARGET_RELEASE)

# The configured tree of the module's build provides ngx_auto_config.h; the module's .so
# stands for it.
$(NGX_FUZZ): $(NGX_DIR)/tests/fuzz_parse.c $(NGX_FUZZ_PARSE_C) \
		$(NGX_DIR)/ngx_http_privacypass_parse.h $(NGX_ROOT)/include/privacypass.h $(NGX_LIB) \
		$(NGX_MODULE_SO)
	gcc $(NGX_FUZZ_CFLAGS) $(NGX_FUZZ_INCS) -o $@ $(NGX_DIR)/tests/fuzz_parse.c \
		$(NGX_FUZZ_PARSE_C) -Wl,--gc-sections $(NGX_LIB) -lssl -lcrypto -lstdc++ -lpthread \
		-ldl -lm -lrt

ngx-check-daemon:
	@test -x $(NGX_DAEMON) || { echo "$(NGX_DAEMON) is missing: build it first (make build)" >&2; exit 1; }

NGX_ENV = NGINX_BINARY=$(NGX_BIN) PRIVACYPASS_NGINX_MODULE=$(NGX_MODULE_SO) PRIVACYPASSD=$(NGX_DAEMON)

# pytest runs from the venv (outside the source tree) so that it imports the installed binding.
test-nginx: nginx-module nginx-fuzz-harness python-install ngx-check-daemon
	PRIVACYPASS_FUZZ_SEED=1 PRIVACYPASS_FUZZ_INPUTS=$(NGX_FUZZ_TEST_INPUTS) \
		$(NGX_FUZZ)
	cd $(PY_VENV) && env -u PRIVACYPASS_LIBRARY $(NGX_ENV) \
		$(NGX_PYTHON) -m pytest -p no:cacheprovider $(NGX_PYTEST_ARGS) $(NGX_DIR)/tests
	@echo "test-nginx: the nginx module's tests passed"

fuzz-nginx: nginx-fuzz-harness
	PRIVACYPASS_FUZZ_SEED=$${PRIVACYPASS_FUZZ_SEED:-random} \
		PRIVACYPASS_FUZZ_INPUTS=$(NGX_FUZZ_INPUTS) PRIVACYPASS_FUZZ_SECONDS=$(NGX_FUZZ_SECONDS) \
		$(NGX_FUZZ)

bench-nginx: nginx-module python-install ngx-check-daemon
	cd $(PY_VENV) && env -u PRIVACYPASS_LIBRARY $(NGX_ENV) \
		$(NGX_PYTHON) $(NGX_DIR)/bench_nginx.py --tokens $(NGX_BENCH_TOKENS) \
		--connections $(NGX_BENCH_CONNECTIONS)
