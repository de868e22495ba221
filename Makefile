# ctts build. GNU make; header dependencies from -MMD -MP.
#
#   make                 library, CLI (build/ctts) and test programs
#   make test            run every test program (tests/run.sh prints "N passed, N failed")
#   make check           the test suite under ASan+UBSan (objects in build/asan)
#   make check-tsan      the threaded tests under ThreadSanitizer (build/tsan)
#   make SANITIZE=1      build with ASan+UBSan into build/asan
#   make NATIVE=1        add -march=native (never the default)
#   make DEBUG=1         -O0 -g
#   make V=1             show the full compiler command lines
#
# Sources are picked up by wildcard: any src/**/*.c joins libctts, any
# tests/**/test_*.c becomes its own test program.

CC      ?= cc
Q       := $(if $(V),,@)
BUILD   ?= build
WERROR  ?= -Werror

ifeq ($(SANITIZE),1)
  override BUILD := $(BUILD)/asan
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif

OPT := -O2
ifeq ($(DEBUG),1)
  OPT := -O0 -g
endif
ifeq ($(NATIVE),1)
  OPT += -march=native
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes $(WERROR)
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) -g -fno-math-errno -fPIC $(WARN) $(SANFLAGS) \
           -Iinclude -Isrc -MMD -MP
LDFLAGS := $(SANFLAGS)
LDLIBS  := -lyaml -lpcre2-8 -lsndfile -lmpg123 -lcurl -lm -lpthread

# Per-file ISA flags: only the SIMD kernel files get them. -O3 there: at -O2 GCC does
# not fully unroll the register tiles and keeps accumulators in memory (3-5x slower).
ISA_avx2 := -O3 -mavx2 -mfma -mf16c
ISA_avx512 := -O3 -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c
ISA_bf16 := -O3 -mavx512f -mavx512bw -mavx512vl -mavx512bf16 -mavx2 -mfma -mf16c

rwildcard = $(foreach d,$(wildcard $(1:=/*)),$(call rwildcard,$d,$2) $(filter $(subst *,%,$2),$d))

LIB_SRC  := $(call rwildcard,src,*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC  := $(wildcard tools/cli/*.c tools/server/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/*/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

all: $(BUILD)/ctts $(BUILD)/libctts.a $(BUILD)/libctts.so $(TEST_BIN) $(BENCH_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC    $<'
	$(Q)$(CC) $(CFLAGS) $(if $(filter tools/%,$<),-Itools/cli) $(ISA_$(lastword $(subst _, ,$(basename $(notdir $<))))) -c $< -o $@

$(BUILD)/libctts.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/libctts.so: $(LIB_OBJ)
	$(Q)$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/ctts: $(CLI_OBJ) $(BUILD)/libctts.a
	@echo '  LD    $@'
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libctts.a
	@mkdir -p $(dir $@)
	@echo '  TEST  $@'
	$(Q)$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libctts.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libctts.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libctts.a $(LDFLAGS) $(LDLIBS)

test: all
	@bash scripts/lint_deps.sh
	@BUILD=$(BUILD) bash tests/run.sh

check:
	$(MAKE) SANITIZE=1 test

# check-tsan: the threaded tests (thread pool, streams with the decode thread, the
# server's worker and connection threads) under ThreadSanitizer, in build/tsan.
TSAN_TESTS := unit/test_threadpool api/test_stream api/test_cli_stream api/test_serve \
              model/test_qwen3tts_e2e
check-tsan:
	$(MAKE) BUILD=build/tsan SANFLAGS=-fsanitize=thread build/tsan/ctts \
	    $(addprefix build/tsan/tests/,$(TSAN_TESTS))
	@for t in $(TSAN_TESTS); do \
	    echo "== build/tsan/tests/$$t"; \
	    out=$$(CTTS_BIN=$$PWD/build/tsan/ctts TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/$$t 2>&1); rc=$$?; \
	    echo "$$out" | grep -v '^PASS '; [ $$rc -eq 0 ] || exit 1; \
	done

lint-deps:
	@bash scripts/lint_deps.sh

clean:
	rm -rf build

help:
	@sed -n '1,12p' Makefile

.PHONY: all test check check-tsan clean help lint-deps
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(BENCH_BIN:=.d)

# test-neon: the kernel tests for arm64 (NEON tier and scalar), cross-compiled with
# Debian's aarch64-linux-gnu-gcc into a static binary and run under qemu-aarch64.
NEON_CC  ?= aarch64-linux-gnu-gcc
NEON_SRC := tests/unit/test_kernels.c src/backend/cpu.c $(wildcard src/cpu/*.c) \
            $(wildcard src/base/*.c) $(wildcard src/quant/*.c)

$(BUILD)/neon/test_kernels: $(NEON_SRC) $(wildcard include/*.h src/*/*.h tests/*.h)
	@mkdir -p $(dir $@)
	@echo '  NEON  $@'
	$(Q)$(NEON_CC) -std=c11 -D_GNU_SOURCE -O2 -fno-math-errno $(WARN) -Iinclude -Isrc -Itests \
	    -static -o $@ $(NEON_SRC) -lm -lpthread

test-neon: $(BUILD)/neon/test_kernels
	@qemu-aarch64 $(BUILD)/neon/test_kernels

.PHONY: test-neon
