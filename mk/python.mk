# The Python binding (bindings/python) and its tests.
#
# Included by the top-level Makefile, which defines CARGO_TARGET_DIR and TARGET_RELEASE; the
# defaults below only serve `make -f mk/deps.mk -f mk/python.mk` on its own (the venv, PY_VENV,
# comes from mk/deps.mk). Nothing here runs cargo: the library and the daemon must already be
# built (the top Makefile adds that dependency).
#
# Targets:
#   test-python   the tests' venv (mk/deps.mk: tests/requirements.txt), libprivacypass.so
#                 copied into the package, `pip install
#                 bindings/python` exactly as the README says, `mypy --strict` on the package,
#                 pytest on bindings/python/tests with PRIVACYPASSD=$(TARGET_RELEASE)/privacypassd
#                 and PRIVACYPASS_TESTING_LIBRARY=$(TARGET_RELEASE)/libprivacypass_testing.so
#                 (the panic test's library; never copied into the package)

CARGO_TARGET_DIR ?= $(HOME)/.cache/privacypass/target
TARGET_RELEASE ?= $(CARGO_TARGET_DIR)/release

PY_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
PY_DIR := $(PY_ROOT)/bindings/python
PY_PACKAGE_LIB := $(PY_DIR)/privacypass/libprivacypass.so
PY_SO := $(TARGET_RELEASE)/libprivacypass.so
# The test-only library with pp_test_panic (ffi/testing/), loaded by the panic test only.
PY_TESTING_SO := $(TARGET_RELEASE)/libprivacypass_testing.so
PY_DAEMON := $(TARGET_RELEASE)/privacypassd
PY_PYTEST_ARGS ?= -q -rs

.PHONY: test-python python-venv python-install python-mypy

# The venv and its test tools (pytest, mypy) come from mk/deps.mk.
python-venv: deps-python

# The library goes into the package without its debug info (the release .so carries ~400 MB of
# it; the copy is ~14 MB), as `make install` does; a plain copy when strip is missing.
# Then the install the README gives, `pip install bindings/python`, with nothing added: pip
# builds the package in an isolated environment (fetching setuptools from PyPI for it) and
# installs it and its dependencies (none). No --force-reinstall: pip rebuilds and reinstalls a
# local directory on every install, since it cannot tell whether it changed, so a new .so is
# always picked up; the cmp below checks that the package loads the copy just made.
python-install: python-venv
	@test -f $(PY_SO) || { echo "$(PY_SO) is missing: build the library first (make ffi)" >&2; exit 1; }
	strip --strip-debug -o $(PY_PACKAGE_LIB) $(PY_SO) 2>/dev/null || cp $(PY_SO) $(PY_PACKAGE_LIB)
	$(PY_VENV_PYTHON) -m pip install -q $(PY_DIR)
	rm -rf $(PY_DIR)/build $(PY_DIR)/privacypass.egg-info
	@installed=$$(cd $(PY_VENV) && env -u PRIVACYPASS_LIBRARY $(PY_VENV_PYTHON) -c \
		'import privacypass; print(privacypass.library_path())') && \
	cmp -s $$installed $(PY_PACKAGE_LIB) || \
		{ echo "the installed package loads $$installed, not the library just built" >&2; exit 1; }

# The package's type hints, checked strictly (the cache stays in the venv, out of the tree).
python-mypy: python-venv
	cd $(PY_VENV) && $(PY_VENV_PYTHON) -m mypy --strict --cache-dir $(PY_VENV)/mypy-cache \
		$(PY_DIR)/privacypass

# pytest runs outside the source tree so that it imports the installed package, and its exit
# status is make's: 5 (no tests collected) fails like any other.
test-python: python-install python-mypy
	@test -x $(PY_DAEMON) || { echo "$(PY_DAEMON) is missing: build it first (make build)" >&2; exit 1; }
	@test -f $(PY_TESTING_SO) || { echo "$(PY_TESTING_SO) is missing: build it first (make ffi)" >&2; exit 1; }
	cd $(PY_VENV) && env -u PRIVACYPASS_LIBRARY PRIVACYPASSD=$(PY_DAEMON) \
		PRIVACYPASS_TESTING_LIBRARY=$(PY_TESTING_SO) \
		$(PY_VENV_PYTHON) -m pytest -p no:cacheprovider $(PY_PYTEST_ARGS) $(PY_DIR)/tests
	@echo "test-python: all Python tests passed"
