# make example  runs the demo
# make test     runs every test: C core under ASan/UBSan, Go with -race
#               (and again with GOEXPERIMENT=runtimesecret), the benchmark
#               module's memory checks, gofmt, go vet and staticcheck
# make bench    runs the side-by-side benchmarks against awnumar/memguard

GO          ?= go
CC          ?= gcc
BUILD       := build
STATICCHECK := $(BUILD)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
GOTEST_FLAGS ?= -race -count=1 -timeout 20m
COVER_MIN   := 85
FUZZTIME    ?= 15s
FUZZ_TARGETS := FuzzOperations FuzzReaders

CFLAGS_CORE := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Wall -Wextra -Werror
CFLAGS_SAN  := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all -DMG_FAULT_INJECTION
CORE_SRC    := csrc/region.c csrc/util.c
CORE_HDR    := csrc/memguard.h csrc/sys.h

.PHONY: all example test test-c test-go test-secret test-bench test-fuzz fuzz vet staticcheck fmt-check bench tools clean

all: test

example:
	$(GO) run ./examples/memguard_example

test: fmt-check vet staticcheck example test-c test-fuzz test-go test-secret test-bench

$(BUILD)/test_core: $(CORE_SRC) $(CORE_HDR) csrc/test_core.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_CORE) $(CFLAGS_SAN) -o $@ $(CORE_SRC) csrc/test_core.c

test-c: $(BUILD)/test_core
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/test_core

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

# The benchmark module's own tests: the memory targets of DESIGN §5 and the
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

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd benchmarks && $(GO) vet ./...

$(STATICCHECK):
	GOBIN=$(abspath $(BUILD)/bin) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...
	cd benchmarks && $(abspath $(STATICCHECK)) ./...

tools: $(STATICCHECK)

bench:
	cd benchmarks && $(GO) run ./cmd/benchtable

clean:
	rm -rf $(BUILD)
