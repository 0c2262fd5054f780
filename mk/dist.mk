# dist/: what an operator installs beside the binaries (example configuration, systemd units,
# alert rules), checked by `make test`.
#
# Included by the top-level Makefile, which defines CARGO_TARGET_DIR and TARGET_RELEASE; promtool
# comes from mk/deps.mk (deps-promtool).
#
# Targets:
#   test-dist   scripts/check-dist: promtool check rules and test rules of dist/prometheus,
#               systemd-analyze verify of every unit, systemd-analyze security of privacypassd's
#               services ("OK" or better); then `make install` into a temporary DESTDIR, and the
#               man pages and bash completion it installed, used as a user would
#   dist-install-files  (part of `make install`) privacypassd in $(PREFIX)/bin, its man pages
#               (`privacypassd man`), bash, zsh and fish completions (`privacypassd completions`),
#               the systemd units and the nginx refresh script, the example configuration and
#               alert rules under $(PREFIX)/share/privacypass

SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/privacypass/target
TARGET_RELEASE ?= $(CARGO_TARGET_DIR)/release
DIST_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

PREFIX ?= /usr/local
DESTDIR ?=
DIST_BIN := $(TARGET_RELEASE)/privacypassd
DIST_SHARE = $(DESTDIR)$(PREFIX)/share

.PHONY: test-dist dist-install-files

test-dist: deps-promtool
	@test -x $(TARGET_RELEASE)/privacypassd || { echo "$(TARGET_RELEASE)/privacypassd is missing: build it first (make build)" >&2; exit 1; }
	$(DIST_ROOT)/scripts/check-dist $(DEPS_PROMTOOL) $(TARGET_RELEASE)/privacypassd /usr/sbin/nginx
	@set -e; dest=$$(mktemp -d); trap 'rm -rf "$$dest"' EXIT; \
	$(MAKE) --no-print-directory -f $(DIST_ROOT)/mk/dist.mk dist-install-files DESTDIR=$$dest PREFIX=/usr \
		CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) TARGET_RELEASE=$(TARGET_RELEASE) >/dev/null; \
	$(DIST_ROOT)/scripts/check-install "$$dest" /usr

# What `make install` puts beside the C library (mk/ffi.mk): the daemon and what comes with it.
dist-install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DIST_SHARE)/man/man1 \
		$(DIST_SHARE)/bash-completion/completions $(DIST_SHARE)/zsh/site-functions \
		$(DIST_SHARE)/fish/vendor_completions.d $(DIST_SHARE)/privacypass/systemd \
		$(DIST_SHARE)/privacypass/prometheus
	install -m 0755 $(DIST_BIN) $(DESTDIR)$(PREFIX)/bin/privacypassd
	strip --strip-debug $(DESTDIR)$(PREFIX)/bin/privacypassd
	install -m 0755 $(DIST_ROOT)/dist/nginx/privacypass-directory-refresh $(DESTDIR)$(PREFIX)/bin/
	$(DIST_BIN) man $(DIST_SHARE)/man/man1 >/dev/null
	$(DIST_BIN) completions bash >$(DIST_SHARE)/bash-completion/completions/privacypassd
	$(DIST_BIN) completions zsh >$(DIST_SHARE)/zsh/site-functions/_privacypassd
	$(DIST_BIN) completions fish >$(DIST_SHARE)/fish/vendor_completions.d/privacypassd.fish
	install -m 0644 $(DIST_ROOT)/dist/privacypassd.toml $(DIST_SHARE)/privacypass/
	install -m 0644 $(DIST_ROOT)/dist/*.service $(DIST_ROOT)/dist/*.timer \
		$(DIST_ROOT)/dist/nginx/*.service $(DIST_ROOT)/dist/nginx/*.timer $(DIST_SHARE)/privacypass/systemd/
	sed -i 's#/usr/local/bin/#$(PREFIX)/bin/#' $(DIST_SHARE)/privacypass/systemd/*.service
	install -m 0644 $(DIST_ROOT)/dist/prometheus/*.yml $(DIST_SHARE)/privacypass/prometheus/
