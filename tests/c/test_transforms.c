// Unit checks of the small pre/post-processing helpers against values the
// official Python computes (get_preprocess_shape, calculate_stability_score).
// The resize and the mask upsampling are compared with Pillow and PyTorch in
// tests/transforms.test.mjs; the thresholded fast post-processing against
// the exact one here. Exits non-zero if any check fails.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "image/transforms.h"

static int failures = 0;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        failures++;
    }
}

// postprocess_mask_torch must threshold exactly like postprocess_logits_torch
// followed by a comparison. Low-res logits are drawn from a few ulps around
// -1, 0 and +1 (and exactly on them), so that a large share of the output
// pixels falls inside the fast path's error margin and must be recomputed.
static unsigned long long rng = 88172645463325252ull;
static double uniform01(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (rng >> 11) * (1.0 / 9007199254740992.0);
}

static void check_thresholded(int lr, int size, int rh, int rw, int h, int w, int channels,
                              float spread) {
    const size_t n = (size_t)lr * lr, hw = (size_t)h * w;
    float *low = malloc(sizeof(float) * n);
    float *logits = malloc(sizeof(float) * hw);
    uint8_t *mask = malloc(hw);
    float *scratch = malloc(sizeof(float) * postprocess_mask_scratch_floats(lr, size, h, w));
    float *scratch2 = malloc(sizeof(float) * postprocess_scratch_floats(lr, size, h, w));
    for (size_t i = 0; i < n; i++) {
        const float centre = (float)((int)(uniform01() * 3) - 1);
        low[i] = uniform01() < 0.1 ? centre : centre + spread * (float)(uniform01() - 0.5);
    }
    postprocess_logits_torch(logits, low, lr, size, rh, rw, h, w, channels, scratch2);
    size_t hi = 0, lo = 0;
    postprocess_mask_torch(mask, &hi, &lo, 1.0f, -1.0f, low, lr, size, rh, rw, h, w, channels,
                           scratch);
    size_t want_hi = 0, want_lo = 0, wrong = 0;
    for (size_t i = 0; i < hw; i++) {
        want_hi += logits[i] > 1.0f;
        want_lo += logits[i] > -1.0f;
        wrong += mask[i] != (logits[i] > 0.0f);
    }
    char what[160];
    snprintf(what, sizeof what,
             "postprocess_mask_torch lr %d -> %d crop %dx%d -> %dx%d, %d channels, spread %g: "
             "%zu wrong pixels, counts %zu/%zu vs %zu/%zu",
             lr, size, rh, rw, h, w, channels, spread, wrong, hi, lo, want_hi, want_lo);
    check(wrong == 0 && hi == want_hi && lo == want_lo, what);
    free(low);
    free(logits);
    free(mask);
    free(scratch);
    free(scratch2);
}

int main(void) {
    // Identity second pass (longest side == input size), down- and
    // up-sampling second passes, one and three channels, logits from within
    // a few ulps of the thresholds to well spread.
    static const int post_shapes[][6] = {
        {16, 64, 43, 64, 43, 64},   {16, 64, 43, 64, 27, 40},  {16, 64, 64, 21, 200, 65},
        {8, 32, 32, 32, 32, 32},    {16, 64, 50, 64, 101, 129}, {64, 256, 171, 256, 171, 256},
    };
    static const float spreads[3] = {1e-6f, 1e-4f, 0.5f};
    for (size_t i = 0; i < sizeof post_shapes / sizeof post_shapes[0]; i++)
        for (int c = 1; c <= 3; c += 2)
            for (int sp = 0; sp < 3; sp++)
                check_thresholded(post_shapes[i][0], post_shapes[i][1], post_shapes[i][2],
                                  post_shapes[i][3], post_shapes[i][4], post_shapes[i][5], c,
                                  spreads[sp]);

    // ResizeLongestSide.get_preprocess_shape(h, w, 1024), from Python.
    static const int shapes[][4] = {
        {427, 640, 683, 1024},  {200, 1500, 137, 1024}, {1999, 2000, 1023, 1024},
        {1, 1, 1024, 1024},     {7, 1023, 7, 1024},     {3000, 4000, 768, 1024},
        {1365, 2048, 683, 1024}, {333, 1000, 341, 1024}, {1023, 3, 1024, 3},
        {2047, 1, 1024, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int h, w;
        resize_longest_side_shape(shapes[i][0], shapes[i][1], 1024, &h, &w);
        char what[128];
        snprintf(what, sizeof what, "preprocess shape of %dx%d: got %dx%d, expected %dx%d",
                 shapes[i][0], shapes[i][1], h, w, shapes[i][2], shapes[i][3]);
        check(h == shapes[i][2] && w == shapes[i][3], what);
    }

    // apply_coords: x * (1024 / 640), y * (683 / 427) in double, then float32.
    const float xy[4] = {100.5f, 33.25f, 639.0f, 426.0f};
    float out[4];
    transform_coords(out, xy, 2, 427, 640, 683, 1024);
    check(out[0] == 160.8000030517578f && out[1] == 53.184425354003906f &&
              out[2] == 1022.4000244140625f && out[3] == 681.4004516601562f,
          "transform_coords");

    // calculate_stability_score(masks, 0.0, 1.0): #(> 1) / #(> -1) = 2 / 6.
    const float logits[8] = {-2.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f, 3.0f};
    check(stability_score(logits, 8, 0.0f, 1.0f) == 0.3333333432674408f, "stability score 2/6");
    check(stability_score(logits, 8, 10.0f, 1.0f) != stability_score(logits, 8, 10.0f, 1.0f),
          "stability score of an empty mask is NaN (0 / 0) as in the official code");

    if (failures) return 1;
    printf("test_transforms: all checks passed\n");
    return 0;
}
