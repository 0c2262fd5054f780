# dist/: what an operator installs beside the binaries (example configuration, systemd units,
# alert rules), checked by `make test`.
#
# Included by the top-level Makefile, which defines CARGO_TARGET_DIR and TARGET_RELEASE; promtool
# comes from mk/deps.mk (deps-promtool).
#
# Targets:
#   test-dist   scripts/check-dist: promtool check rules and test rules of dist/prometheus,
#               systemd-analyze verify of every unit, systemd-analyze security of privacypassd's
#               services ("OK" or better)

SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/privacypass/target
TARGET_RELEASE ?= $(CARGO_TARGET_DIR)/release
DIST_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

.PHONY: test-dist

test-dist: deps-promtool
	@test -x $(TARGET_RELEASE)/privacypassd || { echo "$(TARGET_RELEASE)/privacypassd is missing: build it first (make build)" >&2; exit 1; }
	$(DIST_ROOT)/scripts/check-dist $(DEPS_PROMTOOL) $(TARGET_RELEASE)/privacypassd /usr/sbin/nginx
