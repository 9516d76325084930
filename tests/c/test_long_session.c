// A long session natively: 50 image switches (encodes, and embeddings saved
// and loaded back) and 1000 predictions of every prompt kind on one model.
// After a warm-up that has seen every image size, the heap in use (glibc
// mallinfo2: bytes the program holds) must not grow at all; RSS is reported.
// glibc's per-thread cache keeps freed blocks counted as in use, so the
// program runs itself again with the cache off (GLIBC_TUNABLES).
// Under the sanitizer build mallinfo2 is not the real heap, so there
// LeakSanitizer's report at exit is the check. Run by tests/long_session.test.mjs:
//
//   build/tests/test_long_session MODEL [IMAGES]    prints "N passed, M failed"
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sam.h"

#include "check.h"

#define PREDICTIONS_PER_IMAGE 20
static const int SIZES[3][2] = {{97, 61}, {64, 120}, {130, 130}};  // width, height

static size_t heap_in_use(void) {
    const struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;  // small blocks + mmapped blocks
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * 4;
}

static uint8_t *make_image(int w, int h, unsigned seed) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) return NULL;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * ((size_t)y * w + x);
            const int inside = (x - w / 2) * (x - w / 2) + (y - h / 2) * (y - h / 2) < w * h / 8;
            p[0] = (uint8_t)(inside ? 200 : 30 + (x * 7 + seed * 13) % 60);
            p[1] = (uint8_t)((y * 5 + seed * 29) % 256);
            p[2] = (uint8_t)((x ^ y) + seed);
        }
    }
    return rgb;
}

// Image number i: encoded directly, or (odd i) through an embedding file.
static SamImage *switch_image(SamModel *model, int i) {
    const int w = SIZES[i % 3][0], h = SIZES[i % 3][1];
    uint8_t *rgb = make_image(w, h, (unsigned)i);
    SamError err;
    SamImage *image = NULL;
    if (!rgb || sam_image_encode(model, rgb, w, h, NULL, NULL, &image, &err)) {
        printf("error: encode %d: %s\n", i, rgb ? err.message : "out of memory");
        free(rgb);
        return NULL;
    }
    free(rgb);
    if (i % 2 == 0) return image;
    uint8_t *bytes = NULL;
    size_t len = 0;
    SamImage *loaded = NULL;
    if (sam_image_save_embedding(model, image, i % 4 == 1 ? DTYPE_F16 : DTYPE_F32, &bytes, &len, &err) ||
        sam_image_load_embedding(model, bytes, len, &loaded, &err)) {
        printf("error: embedding %d: %s\n", i, err.message);
    }
    free(bytes);
    sam_image_free(image);
    return loaded;
}

// Prediction k on an image: cycles through points, boxes, mask inputs
// (the previous low-res logits) and the three output choices.
static int predict(SamModel *model, const SamImage *image, int k, float *previous_logits, int *have_previous) {
    int h, w;
    sam_image_size(image, &h, &w);
    const float points[6] = {w * 0.5f, h * 0.5f, w * 0.2f, h * 0.3f, w * 0.8f, h * 0.9f};
    const int labels[3] = {1, 0, 1};
    const float box[4] = {w * 0.1f, h * 0.2f, w * 0.7f, h * 0.8f};
    const int kind = k % 6;
    SamPrompt prompt = {
        .points = points,
        .labels = labels,
        .n_points = kind == 2 ? 0 : 1 + kind % 3,
        .box = kind == 2 || kind == 3 ? box : NULL,
        .mask_input = kind == 4 && *have_previous ? previous_logits : NULL,
        .multimask = kind % 2 == 0,
        .output = (SamOutput)(k % 3),
    };
    SamMasks masks = {0};
    SamError err;
    if (sam_predict(model, image, &prompt, &masks, &err)) {
        printf("error: prediction %d: %s\n", k, err.message);
        return -1;
    }
    const int low_res = masks.low_res;
    memcpy(previous_logits, masks.low_res_logits, sizeof(float) * (size_t)low_res * low_res);
    *have_previous = 1;
    sam_masks_free(&masks);
    return 0;
}

// One image switch and its predictions; returns the number of predictions.
static int session_step(SamModel *model, int i, float *logits) {
    SamImage *image = switch_image(model, i);
    if (!image) return -1;
    int have_previous = 0, done = 0;
    for (int k = 0; k < PREDICTIONS_PER_IMAGE; k++) {
        if (predict(model, image, i * PREDICTIONS_PER_IMAGE + k, logits, &have_previous)) break;
        done++;
    }
    sam_image_free(image);
    return done;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_long_session MODEL [IMAGES]\n");
        return 2;
    }
    static const char no_tcache[] = "glibc.malloc.tcache_count=0";
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (!tunables || !strstr(tunables, no_tcache)) {
        setenv("GLIBC_TUNABLES", no_tcache, 1);
        execv("/proc/self/exe", argv);
        perror("test_long_session: re-exec without glibc's thread cache");
        return 1;
    }
    const int images = argc > 2 ? atoi(argv[2]) : 50;
    // A fixed mmap threshold: glibc otherwise moves it as blocks are freed,
    // and the same block then counts as heap instead of mmapped (or back).
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    SamError err;
    SamModel *model = NULL;
    if (sam_model_load_file(&model, argv[1], &err)) {
        printf("error: %s\n", err.message);
        return 1;
    }
    sam_model_set_threads(model, 1);
    const int low_res = 4 * sam_model_config(model)->grid;
    float *logits = malloc(sizeof(float) * (size_t)low_res * low_res);
    // Warm-up: every image size and prompt kind once, so buffers that grow
    // to the largest request have grown.
    for (int i = 0; i < 6; i++) check(session_step(model, 1000 + i, logits) == PREDICTIONS_PER_IMAGE, "warm-up");
    printf("warm-up done\n");
    const size_t heap_before = heap_in_use();
    const long rss_before = rss_kb();
    int predictions = 0, switches = 0;
    for (int i = 0; i < images; i++) {
        const int done = session_step(model, i, logits);
        check(done == PREDICTIONS_PER_IMAGE, "all predictions of an image succeed");
        if (done < 0) break;
        predictions += done;
        switches++;
    }
    const size_t heap_after = heap_in_use();
    const long rss_after = rss_kb();
    printf("session: %d image switches, %d predictions\n", switches, predictions);
    printf("heap in use: %zu -> %zu bytes (%+lld)\n", heap_before, heap_after,
           (long long)heap_after - (long long)heap_before);
    printf("RSS: %ld -> %ld KiB (%+ld)\n", rss_before, rss_after, rss_after - rss_before);
    check(switches == images && predictions == images * PREDICTIONS_PER_IMAGE, "the whole session ran");
#if defined(__SANITIZE_ADDRESS__)
    printf("heap check: LeakSanitizer at exit (mallinfo2 is not the sanitizer's heap)\n");
#else
    check(heap_after == heap_before, "heap in use does not grow over the session");
#endif
    free(logits);
    sam_model_free(model);
    return report();
}
