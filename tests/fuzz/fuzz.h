// Shared by the fuzz targets: each defines LLVMFuzzerTestOneInput (libFuzzer's
// entry point) and is built twice: with clang's -fsanitize=fuzzer for fuzzing
// (tests/fuzz/run.sh) and with replay.c, a plain main that feeds it files,
// to replay the committed corpora under the sanitizer build in `npm test`.
#ifndef SAM_FUZZ_H
#define SAM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// A broken property is a finding: abort so that the fuzzer saves the input.
#define FUZZ_ASSERT(cond)                                                         \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                              \
        }                                                                         \
    } while (0)

// Failures must name the problem: a non-empty message.
#define FUZZ_ASSERT_MESSAGE(err) FUZZ_ASSERT((err).message[0] != '\0')

#ifdef SAM_H  // targets that include sam.h first
// The model loader on the same bytes: config inference from the shapes,
// every expected key and shape, weight binding.
static inline void fuzz_model_load(const uint8_t *data, size_t size) {
    SamModel *model = NULL;
    SamError err = {{0}};
    if (sam_model_load(&model, data, size, &err) == 0) sam_model_free(model);
    else FUZZ_ASSERT_MESSAGE(err);
}
#endif

#endif
