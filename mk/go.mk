# The Go binding of libprivacypass (bindings/go): vet, tests under the race detector, benchmark.
#
# Included by the top-level Makefile, which defines CARGO_TARGET_DIR and TARGET_RELEASE; the
# defaults below only serve `make -f mk/go.mk` on its own. Nothing here runs cargo: the targets
# use the libprivacypass.so and privacypassd already in $(TARGET_RELEASE) (the top Makefile makes
# them prerequisites).
#
# Targets:
#   test-go    install golang-go when `go` is missing, then gofmt check, go vet and
#              go test -race over bindings/go (vectors, full cycle, threads, a live privacypassd,
#              the README example)
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

.PHONY: test-go bench-go go-toolchain go-check-lib

go-toolchain:
	@command -v $(GO_CMD) >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go)
	@command -v gcc >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y gcc)

go-check-lib:
	@test -f $(TARGET_RELEASE)/libprivacypass.so || \
		{ echo "$(TARGET_RELEASE)/libprivacypass.so is missing: build it first (make ffi)" >&2; exit 1; }

test-go: go-toolchain go-check-lib
	@cd $(GO_DIR) && unformatted=$$(gofmt -l .) && \
		if [ -n "$$unformatted" ]; then echo "gofmt: not formatted: $$unformatted" >&2; exit 1; fi
	cd $(GO_DIR) && $(GO_ENV) $(GO_CMD) vet ./...
	cd $(GO_DIR) && $(GO_ENV) $(GO_CMD) test -race -count=1 ./...
	@echo "test-go: the Go binding's tests passed"

bench-go: go-toolchain go-check-lib
	cd $(GO_DIR) && $(GO_ENV) $(GO_CMD) test -run '^$$' -bench Verify -benchtime $(GO_BENCHTIME) .
