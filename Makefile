# make example  runs the demo
# make test     runs every test: C core under ASan/UBSan, Go with -race,
#               gofmt, go vet and staticcheck
# make bench    runs the side-by-side benchmarks against awnumar/memguard

GO          ?= go
CC          ?= gcc
BUILD       := build
STATICCHECK := $(BUILD)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
GOTEST_FLAGS ?= -race -count=1 -timeout 20m

CFLAGS_CORE := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Wall -Wextra -Werror
CFLAGS_SAN  := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all -DMG_FAULT_INJECTION
CORE_SRC    := csrc/region.c csrc/util.c
CORE_HDR    := csrc/memguard.h csrc/sys.h

.PHONY: all example test test-c test-go vet staticcheck fmt-check bench tools clean

all: test

example:
	$(GO) run ./examples/memguard_example

test: fmt-check vet staticcheck test-c test-go

$(BUILD)/test_core: $(CORE_SRC) $(CORE_HDR) csrc/test_core.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_CORE) $(CFLAGS_SAN) -o $@ $(CORE_SRC) csrc/test_core.c

test-c: $(BUILD)/test_core
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/test_core

test-go:
	$(GO) test $(GOTEST_FLAGS) ./...

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
