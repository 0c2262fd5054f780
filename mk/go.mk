# The Go binding of libprivacypass (bindings/go): vet, tests under the race detector, benchmark.
#
# Included by the top-level Makefile, which defines CARGO_TARGET_DIR and TARGET_RELEASE; the
# defaults below only serve `make -f mk/go.mk` on its own. Nothing here runs cargo: the targets
# use the libprivacypass.so and privacypassd already in $(TARGET_RELEASE) (the top Makefile makes
# them prerequisites).
#
# Targets:
#   test-go    gofmt check, go vet and
#              go test -race with cgocheck=2 over bindings/go (vectors, full cycle, threads,
#              finalizers, a live privacypassd, the README examples), then the panic
#              boundary's test (tag privacypass_testing: the package links the test-only
#              libprivacypass_testing, which has pp_test_panic; the production build never
#              names it)
#   bench-go   BenchmarkVerify and BenchmarkVerifyParallel through the binding

CARGO_TARGET_DIR ?= $(HOME)/.cache/privacypass/target
TARGET_RELEASE ?= $(CARGO_TARGET_DIR)/release

GO_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
GO_DIR := $(GO_ROOT)/bindings/go
GO_CMD ?= go
GO_BENCHTIME ?= 3s
# cgo finds the header through the package's own #cgo CFLAGS (../../include) and here too; the
# library through -L, and at run time through the rpath. Only the standard library is used, so
# module downloads are off.
GO_ENV := CGO_ENABLED=1 \
	CGO_CFLAGS="-g -O2 -I$(GO_ROOT)/include" \
	CGO_LDFLAGS="-L$(TARGET_RELEASE) -Wl,-rpath,$(TARGET_RELEASE)" \
	GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local \
	PRIVACYPASSD=$(TARGET_RELEASE)/privacypassd

# The tests run with the cgo pointer checks at their strictest: every write of a Go pointer into
# memory that Go does not own (C's) is a fatal error, so a binding that let C keep a Go pointer
# fails the run. The race detector and this check work together (a run costs about the same).
# Go 1.19 and 1.20 take it at run time as GODEBUG=cgocheck=2; from Go 1.21 on the runtime
# refuses that setting and it is a build-time experiment, GOEXPERIMENT=cgocheck2.
# (Recursive, so that `go` is asked when the recipe runs, after go-toolchain has installed it.)
GO_CGOCHECK = $(shell case "$$($(GO_CMD) env GOVERSION 2>/dev/null)" in \
	(go1.1[0-9] | go1.1[0-9].* | go1.20 | go1.20.*) echo GODEBUG=cgocheck=2 ;; \
	(*) echo GOEXPERIMENT=cgocheck2 ;; esac)

.PHONY: test-go bench-go go-toolchain go-check-lib

go-toolchain:
	@command -v $(GO_CMD) >/dev/null || { echo "go is required: make deps installs it (golang-go)" >&2; exit 1; }
	@command -v gcc >/dev/null || { echo "gcc is required for cgo" >&2; exit 1; }

go-check-lib:
	@for lib in libprivacypass.so libprivacypass_testing.so; do test -f $(TARGET_RELEASE)/$$lib || \
		{ echo "$(TARGET_RELEASE)/$$lib is missing: build it first (make ffi)" >&2; exit 1; }; done

test-go: go-toolchain go-check-lib
	@cd $(GO_DIR) && unformatted=$$(gofmt -l .) && \
		if [ -n "$$unformatted" ]; then echo "gofmt: not formatted: $$unformatted" >&2; exit 1; fi
	cd $(GO_DIR) && $(GO_ENV) $(GO_CMD) vet ./...
	cd $(GO_DIR) && $(GO_ENV) $(GO_CMD) vet -tags privacypass_testing ./...
	cd $(GO_DIR) && $(GO_ENV) $(GO_CGOCHECK) $(GO_CMD) test -race -count=1 ./...
	cd $(GO_DIR) && $(GO_ENV) $(GO_CGOCHECK) $(GO_CMD) test -race -count=1 -tags privacypass_testing \
		-run '^TestPanicBoundary$$' .
	@echo "test-go: the Go binding's tests passed"

bench-go: go-toolchain go-check-lib
	cd $(GO_DIR) && $(GO_ENV) $(GO_CMD) test -run '^$$' -bench Verify -benchtime $(GO_BENCHTIME) .
