# Everything the build and the tests take from outside the machine's toolchains (Rust, gcc,
# Python 3 with pip, Node with npm), named once, here, and installed before anything needs it.
#
# Included by the top-level Makefile, which makes `deps-build` a prerequisite of every cargo
# command and `deps` a prerequisite of `make test`'s first step, so no suite finds a package
# missing because another suite's target installs it later. `make check-deps` (part of
# `make test`) fails when an install step appears anywhere else in the tree.
#
# The lists:
#   DEPS_BUILD_DEBIAN  Debian packages the cargo build needs (RocksDB's bindgen, OpenSSL)
#   DEPS_TEST_DEBIAN   Debian packages any test needs: valgrind (C tests, nginx), redis-server
#                      (store, daemon scale-out, C, Go, Python), nginx and nginx-dev (the module,
#                      the daemon scale-out tests), golang-go (Go binding), openssl (nginx tests)
#   promtool           from Debian's prometheus package, unpacked, not installed (below)
#   tests/requirements.txt          PyPI packages of the tests' venv (pinned)
#   tests/interop/package-lock.json npm packages of the interop test (pinned, `npm ci`)
#
# Targets:
#   deps-build   the build's Debian packages
#   deps         everything: both Debian lists, the venv with tests/requirements.txt, npm ci
#   check-deps   no apt-get, pip or npm install outside this file

SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/privacypass/target

DEPS_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
DEPS_BUILD_DEBIAN := libclang-dev libssl-dev pkg-config
DEPS_TEST_DEBIAN := valgrind redis-server nginx nginx-dev golang-go openssl
DEPS_REQUIREMENTS := $(DEPS_ROOT)/tests/requirements.txt
DEPS_NPM_DIR := $(DEPS_ROOT)/tests/interop
DEPS_PYTHON ?= python3
# The tests' venv, outside the source tree; mk/python.mk and mk/nginx.mk use it.
PY_VENV := $(CARGO_TARGET_DIR)/python-venv
PY_VENV_PYTHON := $(PY_VENV)/bin/python

.PHONY: deps deps-build deps-debian deps-python deps-npm deps-promtool check-deps

# Installs the Debian packages named in $(1) that dpkg does not list as installed.
define deps_apt
	@missing=(); for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing+=($$p); \
	done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "installing Debian packages: $${missing[*]}"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    "$${missing[@]}" >/dev/null; \
	fi
endef

deps-build:
	$(call deps_apt,$(DEPS_BUILD_DEBIAN))
	@command -v cargo >/dev/null || { echo "cargo is required (rustup.rs)" >&2; exit 1; }

deps-debian: deps-build
	$(call deps_apt,$(DEPS_TEST_DEBIAN))

# The venv is made once; pip installs the pinned requirements whenever the file is newer than
# the venv's stamp (a no-op check otherwise).
deps-python:
	@test -x $(PY_VENV_PYTHON) || { echo "creating the tests' venv in $(PY_VENV)"; $(DEPS_PYTHON) -m venv $(PY_VENV); }
	@stamp=$(PY_VENV)/.requirements; \
	if [ ! -f $$stamp ] || ! cmp -s $$stamp $(DEPS_REQUIREMENTS); then \
	  echo "installing into the venv: $$(grep -v '^#' $(DEPS_REQUIREMENTS) | tr '\n' ' ')"; \
	  $(PY_VENV_PYTHON) -m pip install -q --disable-pip-version-check -r $(DEPS_REQUIREMENTS) && \
	  cp $(DEPS_REQUIREMENTS) $$stamp; \
	fi

# npm ci when node_modules is absent or older than the lock file (npm ci rewrites
# node_modules/.package-lock.json, so it is fresh afterwards). npm runs as the CLI script of the
# npm package installed beside node when there is one: an `npm` launcher that is a copy of that
# script rather than a link to it (a bind mount, a copied /usr/bin) cannot find the rest of npm.
# It runs in tests/interop rather than with --prefix, which would also move npm's global
# configuration (PREFIX/etc/npmrc) and so lose the machine's registry, proxy or CA settings.
deps-npm:
	@command -v node >/dev/null || { echo "node is required (Node.js 20 or later, with npm)" >&2; exit 1; }
	@stamp=$(DEPS_NPM_DIR)/node_modules/.package-lock.json; \
	if [ ! -f $$stamp ] || [ $(DEPS_NPM_DIR)/package-lock.json -nt $$stamp ] || \
	   [ $(DEPS_NPM_DIR)/package.json -nt $$stamp ]; then \
	  cli=$$(dirname "$$(dirname "$$(readlink -f "$$(command -v node)")")")/lib/node_modules/npm/bin/npm-cli.js; \
	  if [ -f "$$cli" ]; then npm=(node "$$cli"); else npm=(npm); fi; \
	  echo "installing npm packages: npm ci in tests/interop"; \
	  cd $(DEPS_NPM_DIR) && "$${npm[@]}" ci --no-audit --no-fund --loglevel=error; \
	fi

# promtool, for the alert rules of dist/prometheus (make test-dist). Debian ships it in the
# prometheus package, whose installation would also start a Prometheus server; so the package
# is downloaded and only promtool taken from it, into the target directory.
DEPS_PROMTOOL := $(CARGO_TARGET_DIR)/tools/promtool

deps-promtool: deps-debian
	@test -x $(DEPS_PROMTOOL) || { \
	  set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	  echo "taking promtool from Debian's prometheus package"; \
	  apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; \
	  dpkg-deb -x prometheus_*.deb root; \
	  install -D -m 0755 root/usr/bin/promtool $(DEPS_PROMTOOL); \
	}

deps: deps-debian deps-python deps-npm deps-promtool

# One list: an install command anywhere but here would be a package some target installs for
# itself, too late for the suites that run before it.
check-deps:
	@found=$$(cd $(DEPS_ROOT) && git grep -nE 'apt-get (-[a-z]+ )*install|-m pip install|npm (ci|install) ' \
	  -- ':!mk/deps.mk' ':!*.md' ':!tests/interop/package-lock.json' | \
	  grep -vE '^[^:]+:[0-9]+:[[:space:]]*(#|//)' | grep -vE 'pip install (-q )?\$$\(PY_DIR\)' || true); \
	if [ -n "$$found" ]; then \
	  echo "install steps outside mk/deps.mk (name the package in mk/deps.mk's lists instead):" >&2; \
	  echo "$$found" >&2; exit 1; \
	fi; \
	echo "check-deps: every package is installed from mk/deps.mk"
