// Boxes and non-maximum suppression of the automatic mask generator:
// batched_mask_to_box and is_box_near_crop_edge (segment_anything/utils/
// amg.py) and torchvision.ops.batched_nms (torchvision/csrc/ops/cpu/
// nms_kernel.cpp), which the generator calls with a single category.
#include <math.h>
#include <stdlib.h>

#include "amg.h"

void amg_mask_box(int box[4], const uint8_t *mask, int h, int w) {
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = mask + (size_t)y * w;
        int first = -1, last = -1;
        for (int x = 0; x < w; x++) {
            if (row[x]) {
                if (first < 0) first = x;
                last = x;
            }
        }
        if (first < 0) continue;
        if (y < y0) y0 = y;
        y1 = y;
        if (first < x0) x0 = first;
        if (last > x1) x1 = last;
    }
    if (x1 < 0) {  // empty: [0, 0, 0, 0] as the official empty_filter
        box[0] = box[1] = box[2] = box[3] = 0;
        return;
    }
    box[0] = x0, box[1] = y0, box[2] = x1, box[3] = y1;
}

typedef struct {
    float score;
    int index;
} Ranked;

// torch.sort(stable=True, descending=True): by score, ties by index.
static int by_score_desc(const void *pa, const void *pb) {
    const Ranked *a = pa, *b = pb;
    if (a->score > b->score) return -1;
    if (a->score < b->score) return 1;
    return (a->index > b->index) - (a->index < b->index);
}

int amg_nms(int *keep, const int (*boxes)[4], const float *scores, int n, double iou_thresh) {
    if (n <= 0) return 0;
    Ranked *order = malloc(sizeof(Ranked) * (size_t)n);
    float *areas = malloc(sizeof(float) * (size_t)n);
    unsigned char *suppressed = calloc((size_t)n, 1);
    if (!order || !areas || !suppressed) {
        free(order);
        free(areas);
        free(suppressed);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        order[i].score = scores[i];
        order[i].index = i;
        // boxes.float(); area (x2 - x1) * (y2 - y1) in float: a mask one
        // pixel wide or tall has area 0 (max is inclusive).
        areas[i] = ((float)boxes[i][2] - (float)boxes[i][0]) * ((float)boxes[i][3] - (float)boxes[i][1]);
    }
    qsort(order, (size_t)n, sizeof *order, by_score_desc);
    int kept = 0;
    for (int a = 0; a < n; a++) {
        const int i = order[a].index;
        if (suppressed[i]) continue;
        keep[kept++] = i;
        const float ix1 = (float)boxes[i][0], iy1 = (float)boxes[i][1];
        const float ix2 = (float)boxes[i][2], iy2 = (float)boxes[i][3];
        for (int b = a + 1; b < n; b++) {
            const int j = order[b].index;
            if (suppressed[j]) continue;
            const float xx1 = fmaxf(ix1, (float)boxes[j][0]), yy1 = fmaxf(iy1, (float)boxes[j][1]);
            const float xx2 = fminf(ix2, (float)boxes[j][2]), yy2 = fminf(iy2, (float)boxes[j][3]);
            const float ww = fmaxf(0.0f, xx2 - xx1), hh = fmaxf(0.0f, yy2 - yy1);
            const float inter = ww * hh;
            // float IoU against the double threshold; 0 / 0 (two empty
            // boxes) is NaN and suppresses nothing.
            const float ovr = inter / (areas[i] + areas[j] - inter);
            if ((double)ovr > iou_thresh) suppressed[j] = 1;
        }
    }
    free(order);
    free(areas);
    free(suppressed);
    return kept;
}

int amg_box_near_crop_edge(const int box[4], const int crop_box[4], int orig_w, int orig_h) {
    // torch.isclose(a, b, atol=20, rtol=0): |a - b| <= 20, per coordinate,
    // of the box moved back to the original frame.
    const int orig[4] = {0, 0, orig_w, orig_h};
    const int offset[4] = {crop_box[0], crop_box[1], crop_box[0], crop_box[1]};
    for (int k = 0; k < 4; k++) {
        const float b = (float)(box[k] + offset[k]);
        const int near_crop = fabsf(b - (float)crop_box[k]) <= 20.0f;
        const int near_image = fabsf(b - (float)orig[k]) <= 20.0f;
        if (near_crop && !near_image) return 1;
    }
    return 0;
}
