// The public thread setting (sam_model_set_threads / sam_model_threads) on a
// real model: the default, the limits, and sam_image_encode giving the same
// embedding bytes with 1, 2 and 3 threads, changed between encodes of one
// model (the pool is restarted). Run by tests/cli.test.mjs with a model:
//
//   build/tests/test_threads_api MODEL    prints "N passed, M failed"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/thread_pool.h"
#include "sam.h"

#include "check.h"


// The embedding file of one encode (f32), malloc'd; NULL on error.
static uint8_t *encode(SamModel *model, const uint8_t *rgb, int w, int h, size_t *len) {
    SamError err;
    SamImage *image = NULL;
    uint8_t *bytes = NULL;
    if (sam_image_encode(model, rgb, w, h, NULL, NULL, &image, &err) ||
        sam_image_save_embedding(model, image, DTYPE_F32, &bytes, len, &err)) {
        printf("error: %s\n", err.message);
        bytes = NULL;
    }
    sam_image_free(image);
    return bytes;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_threads_api MODEL\n");
        return 2;
    }
    SamError err;
    SamModel *model = NULL;
    if (sam_model_load_file(&model, argv[1], &err)) {
        printf("error: %s\n", err.message);
        return 1;
    }
    check(sam_model_threads(model) == thread_pool_online_cores(), "default: online cores");
    check(sam_model_set_threads(model, 257) == -1, "257 threads refused");
    check(sam_model_threads(model) == thread_pool_online_cores(), "refused setting changes nothing");

    enum { W = 45, H = 31 };
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)(i * 37 + (i / 7) * 11);
    uint8_t *ref = NULL;
    size_t ref_len = 0;
    const int counts[] = {1, 2, 3, 2, 0};
    for (int i = 0; i < 5; i++) {
        char what[96];
        snprintf(what, sizeof what, "set_threads(%d)", counts[i]);
        check(sam_model_set_threads(model, counts[i]) == 0, what);
        const int expect = counts[i] ? counts[i] : thread_pool_online_cores();
        snprintf(what, sizeof what, "threads() == %d", expect);
        check(sam_model_threads(model) == expect, what);
        size_t len = 0;
        uint8_t *bytes = encode(model, rgb, W, H, &len);
        snprintf(what, sizeof what, "%d threads: same embedding bytes as 1 thread", counts[i]);
        if (!ref) {
            check(bytes != NULL, "1 thread: encode");
            ref = bytes, ref_len = len;
            continue;
        }
        check(bytes && len == ref_len && memcmp(bytes, ref, len) == 0, what);
        free(bytes);
    }
    free(ref);
    sam_model_free(model);
    return report();
}
