// Unit checks of the small pre/post-processing helpers against values the
// official Python computes (get_preprocess_shape, calculate_stability_score).
// The resize and the mask upsampling are compared with Pillow and PyTorch in
// tests/transforms.test.mjs. Exits non-zero on the first failure.
#include <math.h>
#include <stdio.h>

#include "image/transforms.h"

static int failures = 0;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        failures++;
    }
}

int main(void) {
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
