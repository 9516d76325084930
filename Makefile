# Native build of the C core, CLI and C test programs. build.sh is the entry
# point (it checks the Debian packages first); `make` works on its own too.
# Variants: make BUILD=build/asan SANITIZE=1  (address + undefined sanitizers)
BUILD ?= build
CC ?= gcc
SANITIZE ?= 0
CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter -I/usr/include/stb -Isrc
ifeq ($(SANITIZE),1)
  OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
  OPT := -O3 -g
endif
CFLAGS := $(CFLAGS_BASE) $(OPT)
LDLIBS := -lm -lpthread

CORE_SRC := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
CLI_SRC := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests/c -name '*.c' 2>/dev/null | sort)

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/c/%.c=$(BUILD)/tests/%)

all: $(BUILD)/sam $(TEST_BIN)

$(BUILD)/libsam.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/sam: $(CLI_OBJ) $(BUILD)/libsam.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsam.a $(LDLIBS)

$(BUILD)/tests/%: tests/c/%.c $(BUILD)/libsam.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libsam.a $(LDLIBS)

# Benchmark programs (not part of `all`): make bench -> build/bench/decode_bench
BENCH_SRC := $(shell find bench/c -name '*.c' 2>/dev/null | sort)
BENCH_BIN := $(BENCH_SRC:bench/c/%.c=$(BUILD)/bench/%)

bench: $(BENCH_BIN)

$(BUILD)/bench/%: bench/c/%.c $(BUILD)/libsam.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libsam.a $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(CORE_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

clean:
	rm -rf $(BUILD)

.PHONY: all bench clean
