// Known-answer checks of the automatic mask generator's components (src/amg):
// COCO RLE and pycocotools' compressed string, point grids and crop boxes,
// mask boxes, torchvision NMS, the crop-edge test, small-region removal, and
// the thresholded post-processing (stability counts) at other offsets than 1.
// The answers were worked out by hand from the official definitions
// (segment_anything/utils/amg.py, pycocotools maskApi.c, torchvision nms) and
// agree with tools/sam_ref/amg.py. Prints "N passed, M failed"; exits non-zero
// on a failure.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amg/amg.h"
#include "image/transforms.h"

#include "check.h"


static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static double uniform01(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (rng >> 11) * (1.0 / 9007199254740992.0);
}

static int counts_equal(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    return na == nb && memcmp(a, b, na * sizeof *a) == 0;
}

static void test_rle(void) {
    // 3x4 mask, 1s at (0,0), (0,1), (1,1), (2,3): columns [1,0,0] [1,1,0]
    // [0,0,0] [0,0,1] -> runs 0 (no leading 0s), 1, 2, 2, 6, 1.
    const uint8_t m[12] = {1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
    uint32_t counts[13];
    const size_t n = amg_rle_encode(counts, m, 3, 4);
    const uint32_t want[] = {0, 1, 2, 2, 6, 1};
    check(counts_equal(counts, n, want, 6), "rle_encode 3x4 known answer [0,1,2,2,6,1]");
    check(amg_rle_encode(NULL, m, 3, 4) == 6, "rle_encode counts the runs without writing");
    check(amg_rle_area(counts, n) == 4, "area_from_rle = 4");
    uint8_t back[12];
    check(amg_rle_decode(back, counts, n, 3, 4) == 0 && memcmp(back, m, 12) == 0, "rle_decode round trip 3x4");
    const uint32_t bad[] = {5, 3};
    check(amg_rle_decode(back, bad, 2, 3, 4) == -1, "rle_decode refuses runs that do not sum to h*w");

    const uint8_t zeros[6] = {0};
    check(amg_rle_encode(counts, zeros, 2, 3) == 1 && counts[0] == 6, "empty mask is one run of 6 zeros");
    const uint8_t ones[6] = {1, 1, 1, 1, 1, 1};
    check(amg_rle_encode(counts, ones, 2, 3) == 2 && counts[0] == 0 && counts[1] == 6,
          "full mask is [0, 6]");

    // Round trips on random masks of odd sizes and densities.
    int ok = 1;
    for (int t = 0; t < 50; t++) {
        const int h = 1 + (int)(uniform01() * 37), w = 1 + (int)(uniform01() * 41);
        const double p = uniform01();
        uint8_t *mask = malloc((size_t)h * w), *dec = malloc((size_t)h * w);
        uint32_t *c = malloc(sizeof(uint32_t) * ((size_t)h * w + 1));
        for (int i = 0; i < h * w; i++) mask[i] = uniform01() < p;
        const size_t k = amg_rle_encode(c, mask, h, w);
        int64_t area = 0;
        for (int i = 0; i < h * w; i++) area += mask[i];
        ok &= amg_rle_decode(dec, c, k, h, w) == 0 && memcmp(dec, mask, (size_t)h * w) == 0;
        ok &= amg_rle_area(c, k) == area;
        // The string form reads back to the same counts.
        char *s = malloc(amg_rle_to_string(NULL, c, k) + 1);
        amg_rle_to_string(s, c, k);
        uint32_t *c2;
        size_t k2;
        ok &= amg_rle_from_string(&c2, &k2, s, NULL) == 0 && counts_equal(c, k, c2, k2);
        free(c2);
        free(s);
        free(mask);
        free(dec);
        free(c);
    }
    check(ok, "RLE and string round trips on 50 random masks");
}

static void test_rle_string(void) {
    // pycocotools rleToString, worked by hand: 6 bits per char (5 value, 1
    // "more"), + '0'; from the 4th count on, the difference with the count
    // two before; negative differences end at x == -1.
    struct { uint32_t c[6]; size_t n; const char *s; } cases[] = {
        {{3, 2, 5}, 3, "325"},               // small values: one char each
        {{1, 1, 1, 40}, 4, "111W1"},          // 40 - 1 = 39 = 7 | 1 << 5: 'W' (39+48) then '1'
        {{10, 20, 5, 2}, 4, ":d05^O"},        // 20 has bit 4 set: "d0"; 2 - 20 = -18: "^O"
        {{0, 6}, 2, "06"},                   // full 2x3 mask
        {{12}, 1, "<"},                      // empty 3x4 mask
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char s[64];
        const size_t len = amg_rle_to_string(s, cases[i].c, cases[i].n);
        char what[128];
        snprintf(what, sizeof what, "rleToString case %zu: got '%s', want '%s'", i, s, cases[i].s);
        check(len == strlen(cases[i].s) && strcmp(s, cases[i].s) == 0, what);
        uint32_t *c;
        size_t n;
        snprintf(what, sizeof what, "rleFrString case %zu reads back", i);
        check(amg_rle_from_string(&c, &n, cases[i].s, NULL) == 0 && counts_equal(c, n, cases[i].c, cases[i].n), what);
        free(c);
    }
    // Large counts (a 4K image's background run) take several characters.
    const uint32_t big[4] = {8000000, 3, 17, 2000000};
    char s[64];
    amg_rle_to_string(s, big, 4);
    uint32_t *c;
    size_t n;
    check(amg_rle_from_string(&c, &n, s, NULL) == 0 && counts_equal(c, n, big, 4), "large counts round trip");
    free(c);
    SamError err;
    check(amg_rle_from_string(&c, &n, "0 1", &err) == -1, "a space is not an RLE character");
    check(amg_rle_from_string(&c, &n, "0h", &err) == -1, "a string ending inside a count is refused");
}

static void test_grid_and_crops(void) {
    double xy[2 * 9];
    amg_point_grid(xy, 3);
    check(fabs(xy[0] - 1.0 / 6) < 1e-15 && xy[2] == 0.5 && fabs(xy[4] - 5.0 / 6) < 1e-15 &&
              fabs(xy[1] - 1.0 / 6) < 1e-15 && xy[7] == 0.5,
          "build_point_grid(3): x fastest, (i + 0.5) / 3");
    double g32[2 * 32 * 32];
    amg_point_grid(g32, 32);
    check(g32[0] == 1.0 / 64 && g32[2 * 31] == 1.0 - 1.0 / 64 && g32[2 * 32 * 32 - 1] == 1.0 - 1.0 / 64,
          "build_point_grid(32): first 1/64, last exactly 1 - 1/64 (linspace endpoint)");
    check(amg_layer_points_per_side(32, 2, 2) == 8 && amg_layer_points_per_side(33, 1, 2) == 16 &&
              amg_layer_points_per_side(3, 2, 2) == 0,
          "points per side per layer: int(n / factor**layer)");

    // generate_crop_boxes((1000, 1500), 1, 512/1500): overlap int(341.33) = 341,
    // crop 921 x 671, origins 0 and 580 / 0 and 330, x outer.
    int boxes[5][4], layers[5];
    const int n = amg_crop_boxes(boxes, layers, 1000, 1500, 1, 512.0 / 1500.0);
    const int want[5][4] = {{0, 0, 1500, 1000}, {0, 0, 921, 671}, {0, 330, 921, 1000},
                            {580, 0, 1500, 671}, {580, 330, 1500, 1000}};
    check(n == 5 && amg_crop_box_count(1) == 5 && memcmp(boxes, want, sizeof want) == 0 && layers[0] == 0 &&
              layers[4] == 1,
          "generate_crop_boxes 1500x1000, one layer");
    int b2[21][4], l2[21];
    check(amg_crop_boxes(b2, l2, 61, 97, 2, 512.0 / 1500.0) == 21 && b2[5][0] == 0 && b2[5][2] == 32 &&
              b2[5][3] == 23 && b2[20][0] == 66 && b2[20][1] == 39 && b2[20][2] == 97 && b2[20][3] == 61 &&
              l2[20] == 2,
          "generate_crop_boxes 97x61, two layers (21 boxes, clipped at the image)");
}

static void test_boxes_and_nms(void) {
    uint8_t m[5 * 6] = {0};
    m[1 * 6 + 2] = m[3 * 6 + 4] = m[2 * 6 + 3] = 1;
    int box[4];
    amg_mask_box(box, m, 5, 6);
    check(box[0] == 2 && box[1] == 1 && box[2] == 4 && box[3] == 3, "mask box XYXY with inclusive max");
    memset(m, 0, sizeof m);
    amg_mask_box(box, m, 5, 6);
    check(box[0] == 0 && box[1] == 0 && box[2] == 0 && box[3] == 0, "empty mask box is [0,0,0,0]");

    // A and B: IoU 64 / (81 + 81 - 64) = 0.653 with area (x2-x1)(y2-y1).
    // D duplicates A with the same score: the stable sort keeps A.
    // E is a one-pixel mask (area 0): it never suppresses nor is suppressed.
    const int boxes[6][4] = {{0, 0, 9, 9}, {1, 1, 10, 10}, {20, 20, 30, 30}, {0, 0, 9, 9}, {5, 5, 5, 5}, {5, 5, 5, 5}};
    const float scores[6] = {0.9f, 0.8f, 0.85f, 0.9f, 0.95f, 0.7f};
    int keep[6];
    int k = amg_nms(keep, boxes, scores, 6, 0.7);
    check(k == 5 && keep[0] == 4 && keep[1] == 0 && keep[2] == 2 && keep[3] == 1 && keep[4] == 5,
          "NMS 0.7: [E, A, C, B, F]: D duplicates A, zero-area boxes survive");
    k = amg_nms(keep, boxes, scores, 6, 0.6);
    check(k == 4 && keep[0] == 4 && keep[1] == 0 && keep[2] == 2 && keep[3] == 5, "NMS 0.6 also removes B");
    k = amg_nms(keep, boxes, scores, 6, 1.0);
    check(k == 6, "NMS 1.0 keeps everything (IoU > 1 never holds)");
    check(amg_nms(keep, boxes, scores, 0, 0.7) == 0, "NMS of nothing");

    // is_box_near_crop_edge, crop (100, 50, 300, 250) of a 400x250 image.
    const int crop[4] = {100, 50, 300, 250};
    const int inner[4] = {50, 50, 150, 150};   // 150..250 in the image: far from crop edges
    const int left[4] = {10, 50, 150, 150};    // x0 110: 10 px from the crop's left edge
    const int bottom[4] = {50, 50, 150, 199};  // y1 249: crop bottom is the image bottom
    const int right[4] = {50, 50, 181, 150};   // x1 281: 19 px from the crop's right edge
    check(!amg_box_near_crop_edge(inner, crop, 400, 250), "box inside the crop is kept");
    check(amg_box_near_crop_edge(left, crop, 400, 250), "box near the crop's left edge is dropped");
    check(!amg_box_near_crop_edge(bottom, crop, 400, 250), "crop edge on the image edge does not count");
    check(amg_box_near_crop_edge(right, crop, 400, 250), "within 20 px (19) of the right edge");
    const int whole[4] = {0, 0, 400, 250}, any[4] = {0, 0, 5, 5};
    check(!amg_box_near_crop_edge(any, whole, 400, 250), "the whole-image crop drops nothing");
}

static void test_small_regions(void) {
    // 8x8: a 4x4 square with a one-pixel hole, a pixel touching the square's
    // corner diagonally (same 8-connected component), and a 2-pixel island.
    static const char *rows[8] = {
        "........",
        ".####...",
        ".#.##...",
        ".####...",
        ".####...",
        ".....#..",
        "......##",
        "........",
    };
    uint8_t m[64], want[64];
    for (int i = 0; i < 64; i++) m[i] = rows[i / 8][i % 8] == '#';
    int changed;
    memcpy(want, m, 64);
    want[2 * 8 + 2] = 1;
    check(amg_remove_small_regions(m, 8, 8, 3, 1, &changed) == 0 && changed && memcmp(m, want, 64) == 0,
          "holes: the 1-pixel hole is filled, the background (45 px) stays");
    // Islands: the diagonal pixel belongs to the square (8-connectivity);
    // the 2-pixel island at (6,6)-(6,7) touches it diagonally too, so nothing
    // is small at 3 and everything is small at 100 but the largest is kept.
    uint8_t m2[64];
    memcpy(m2, m, 64);
    check(amg_remove_small_regions(m2, 8, 8, 3, 0, &changed) == 0 && !changed && memcmp(m2, m, 64) == 0,
          "islands: one 8-connected component of 19 px (hole filled), unchanged at 3");
    // Separate the island: clear (6,6), leaving (6,7) alone.
    m[6 * 8 + 6] = 0;
    memcpy(want, m, 64);
    want[6 * 8 + 7] = 0;
    check(amg_remove_small_regions(m, 8, 8, 3, 0, &changed) == 0 && changed && memcmp(m, want, 64) == 0,
          "islands: the lone pixel is removed");
    // Everything small: keep the largest island.
    uint8_t m3[16] = {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    const uint8_t want3[16] = {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    check(amg_remove_small_regions(m3, 4, 4, 100, 0, &changed) == 0 && changed && memcmp(m3, want3, 16) == 0,
          "islands: all below the threshold keeps the largest");
    // Holes mode fills a small background too: a mask covering all but 2
    // pixels becomes full.
    uint8_t m4[16], full[16];
    memset(m4, 1, 16);
    memset(full, 1, 16);
    m4[0] = m4[15] = 0;  // two separate 1-pixel "holes" at the corners
    check(amg_remove_small_regions(m4, 4, 4, 2, 1, &changed) == 0 && changed && memcmp(m4, full, 16) == 0,
          "holes: background regions smaller than the threshold are filled");
    uint8_t m5[16];
    memset(m5, 0, 16);
    check(amg_remove_small_regions(m5, 4, 4, 2, 0, &changed) == 0 && !changed, "empty mask: no islands");
}

// The generator counts logits above 0 +- offset with postprocess_mask_torch;
// it must agree with thresholding the exact logits at other offsets than 1.
static void test_stability_counts(void) {
    const int lr = 16, size = 64, rh = 64, rw = 43, h = 61, w = 41;
    const size_t n = (size_t)lr * lr, hw = (size_t)h * w;
    float *low = malloc(sizeof(float) * n), *logits = malloc(sizeof(float) * hw);
    uint8_t *mask = malloc(hw);
    float *s1 = malloc(sizeof(float) * postprocess_scratch_floats(lr, size, h, w));
    float *s2 = malloc(sizeof(float) * postprocess_mask_scratch_floats(lr, size, h, w));
    const float offsets[] = {0.5f, 1.0f, 2.0f, 0.25f};
    for (size_t t = 0; t < sizeof offsets / sizeof offsets[0]; t++) {
        const float off = offsets[t];
        for (size_t i = 0; i < n; i++) {
            const float centre = off * (float)((int)(uniform01() * 3) - 1);
            low[i] = uniform01() < 0.2 ? centre : centre + 0.01f * (float)(uniform01() - 0.5);
        }
        postprocess_logits_torch(logits, low, lr, size, rh, rw, h, w, 3, s1);
        size_t hi, lo, want_hi = 0, want_lo = 0, wrong = 0;
        postprocess_mask_torch(mask, &hi, &lo, 0.0f + off, 0.0f - off, low, lr, size, rh, rw, h, w, 3, s2);
        for (size_t i = 0; i < hw; i++) {
            want_hi += logits[i] > off;
            want_lo += logits[i] > -off;
            wrong += mask[i] != (logits[i] > 0.0f);
        }
        char what[160];
        snprintf(what, sizeof what, "offset %g: counts %zu/%zu vs exact %zu/%zu, %zu mask pixels differ", off, hi,
                 lo, want_hi, want_lo, wrong);
        check(hi == want_hi && lo == want_lo && wrong == 0, what);
        const float s = stability_score(logits, hw, 0.0f, off);
        snprintf(what, sizeof what, "offset %g: stability %g vs %g", off, s, (float)hi / (float)lo);
        check(s == (float)hi / (float)lo, what);
    }
    // Hand-made logits: > 1: {2}; > -1: {2, 0.5, -0.5, 1} -> 1/4.
    const float l6[6] = {2.0f, 0.5f, -0.5f, -2.0f, 1.0f, -1.0f};
    check(stability_score(l6, 6, 0.0f, 1.0f) == 0.25f, "stability of hand-made logits = 0.25");
    check(isnan(stability_score(l6 + 3, 1, 0.0f, 1.0f)), "stability 0/0 is NaN as officially");
    free(low);
    free(logits);
    free(mask);
    free(s1);
    free(s2);
}

static void test_options(void) {
    AmgOptions o;
    amg_options_default(&o);
    SamError err;
    check(amg_options_check(&o, &err) == 0 && o.points_per_side == 32 && o.points_per_batch == 64 &&
              o.pred_iou_thresh == 0.88 && o.stability_score_thresh == 0.95 && o.stability_score_offset == 1.0 &&
              o.box_nms_thresh == 0.7 && o.crop_n_layers == 0 && o.crop_nms_thresh == 0.7 &&
              o.crop_overlap_ratio == 512.0 / 1500.0 && o.crop_n_points_downscale_factor == 1 &&
              o.min_mask_region_area == 0,
          "official defaults");
    o.crop_n_layers = 2;
    o.points_per_side = 3;
    o.crop_n_points_downscale_factor = 2;
    check(amg_options_check(&o, &err) == -1 && strstr(err.message, "no points"), "a layer without points is refused");
    amg_options_default(&o);
    o.box_nms_thresh = 1.5;
    check(amg_options_check(&o, &err) == -1 && strstr(err.message, "box_nms_thresh"), "box_nms_thresh out of range");
    amg_options_default(&o);
    const double grid[2] = {0.5, 0.5};
    o.point_grids[0] = grid;
    o.point_grid_sizes[0] = 1;
    o.n_point_grids = 1;
    check(amg_options_check(&o, &err) == -1, "points_per_side and point_grids together are refused");
    o.points_per_side = 0;
    check(amg_options_check(&o, &err) == 0, "explicit point grid");
}

int main(void) {
    test_rle();
    test_rle_string();
    test_grid_and_crops();
    test_boxes_and_nms();
    test_small_regions();
    test_stability_counts();
    test_options();
    return report();
}
