# Native build of the C core, CLI and C test programs. build.sh is the entry
# point (it checks the Debian packages first); `make` works on its own too.
# Variants: make BUILD=build/asan SANITIZE=1  (address + undefined sanitizers)
#           make BUILD=build/libfuzzer CC=clang-14 SANITIZE=fuzzer fuzz  (tests/fuzz/run.sh)
BUILD ?= build
CC ?= gcc
SANITIZE ?= 0
CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter -I/usr/include/stb -Isrc
ifeq ($(SANITIZE),1)
  OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SANITIZE),fuzzer)
  OPT := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
         -DIMAGE_DECODE_MAX_PIXELS=4000000  # see src/cli/image_io.c
else
  OPT := -O3 -g
endif
CFLAGS := $(CFLAGS_BASE) $(OPT)
LDLIBS := -lm -lpthread
CLI_LDLIBS := -ljpeg  # Debian libjpeg-dev (libjpeg-turbo): the CLI's JPEG decoder

CORE_SRC := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
CLI_SRC := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests/c -name '*.c' 2>/dev/null | sort)

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/c/%.c=$(BUILD)/tests/%)
# The CLI's parsers, which test tools and fuzz targets link: options (all
# targets; small) and the image decoder (with libjpeg; only where needed, so
# the other targets also build for 32-bit x86, see tests/fuzz/run.sh).
CLI_OPTIONS_OBJ := $(BUILD)/obj/src/cli/options.o
CLI_IMAGE_OBJ := $(BUILD)/obj/src/cli/image_io.o

all: $(BUILD)/sam $(TEST_BIN)

$(BUILD)/libsam.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/sam: $(CLI_OBJ) $(BUILD)/libsam.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsam.a $(LDLIBS) $(CLI_LDLIBS)

# The image decoder's test tool links the CLI's decoder (and libjpeg).
$(BUILD)/tests/image_dump: tests/c/image_dump.c $(CLI_IMAGE_OBJ) $(BUILD)/libsam.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(CLI_IMAGE_OBJ) $(BUILD)/libsam.a $(LDLIBS) $(CLI_LDLIBS)

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

# Fuzz targets (tests/fuzz/): with SANITIZE=fuzzer, libFuzzer binaries; otherwise
# each target linked with replay.c, a main that runs it over files (corpus replay).
FUZZ_SRC := $(shell find tests/fuzz -name 'fuzz_*.c' 2>/dev/null | sort)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
ifeq ($(SANITIZE),fuzzer)
  FUZZ_MAIN := -fsanitize=fuzzer
else
  FUZZ_MAIN := tests/fuzz/replay.c
endif

fuzz: $(FUZZ_BIN)

$(BUILD)/fuzz/fuzz_image: tests/fuzz/fuzz_image.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(CLI_IMAGE_OBJ) $(BUILD)/libsam.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(FUZZ_MAIN) $(CLI_IMAGE_OBJ) $(BUILD)/libsam.a $(LDLIBS) $(CLI_LDLIBS)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(CLI_OPTIONS_OBJ) $(BUILD)/libsam.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(FUZZ_MAIN) $(CLI_OPTIONS_OBJ) $(BUILD)/libsam.a $(LDLIBS)

clean:
	rm -rf $(BUILD)

.PHONY: all bench fuzz clean
