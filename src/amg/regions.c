// Small disconnected regions and holes (segment_anything/utils/amg.py
// remove_small_regions, which labels with cv2.connectedComponentsWithStats at
// 8-connectivity). Components are numbered in raster order of their first
// pixel, as OpenCV's labelling numbers them, which decides the tie in "keep
// the largest island".
#include <stdlib.h>

#include "amg.h"

// Labels the 8-connected components of pixels equal to `value` (1..n in
// raster order; others 0). sizes[l] is the size of component l. Returns n.
static int label_components(int32_t *labels, int64_t **sizes_out, const uint8_t *mask, int h,
                            int w, uint8_t value, int32_t *stack) {
    const size_t hw = (size_t)h * w;
    for (size_t i = 0; i < hw; i++) labels[i] = 0;
    size_t cap = 64;
    int64_t *sizes = malloc(sizeof(int64_t) * cap);
    if (!sizes) return -1;
    sizes[0] = 0;
    int n = 0;
    for (size_t start = 0; start < hw; start++) {
        if ((mask[start] != 0) != (value != 0) || labels[start]) continue;
        if ((size_t)n + 2 > cap) {
            cap *= 2;
            int64_t *grown = realloc(sizes, sizeof(int64_t) * cap);
            if (!grown) {
                free(sizes);
                return -1;
            }
            sizes = grown;
        }
        const int32_t label = ++n;
        int64_t size = 0;
        size_t top = 0;
        stack[top++] = (int32_t)start;
        labels[start] = label;
        while (top) {
            const int32_t p = stack[--top];
            size++;
            const int y = p / w, x = p % w;
            for (int dy = -1; dy <= 1; dy++) {
                const int yy = y + dy;
                if (yy < 0 || yy >= h) continue;
                for (int dx = -1; dx <= 1; dx++) {
                    const int xx = x + dx;
                    if (xx < 0 || xx >= w) continue;
                    const size_t q = (size_t)yy * w + xx;
                    if (labels[q] || (mask[q] != 0) != (value != 0)) continue;
                    labels[q] = label;
                    stack[top++] = (int32_t)q;
                }
            }
        }
        sizes[label] = size;
    }
    *sizes_out = sizes;
    return n;
}

int amg_remove_small_regions(uint8_t *mask, int h, int w, double area_thresh, int holes,
                             int *changed) {
    *changed = 0;
    const size_t hw = (size_t)h * w;
    if (hw == 0) return 0;
    int32_t *labels = malloc(sizeof(int32_t) * hw);
    int32_t *stack = malloc(sizeof(int32_t) * hw);
    if (!labels || !stack) {
        free(labels);
        free(stack);
        return -1;
    }
    // working_mask = correct_holes ^ mask: holes are components of the 0s
    // (the background outside the mask is one of them, and is filled too if
    // it is small), islands components of the 1s.
    const uint8_t value = holes ? 0 : 1;
    int64_t *sizes = NULL;
    const int n = label_components(labels, &sizes, mask, h, w, value, stack);
    free(stack);
    if (n < 0) {
        free(labels);
        return -1;
    }
    int n_small = 0, largest = 0;
    for (int l = 1; l <= n; l++) {
        if ((double)sizes[l] < area_thresh) n_small++;
        if (largest == 0 || sizes[l] > sizes[largest]) largest = l;  // np.argmax: first max
    }
    if (n_small > 0) {
        *changed = 1;
        // keep[l]: whether pixels of label l end up in the mask; label 0 is
        // the working mask's background.
        uint8_t *keep = malloc((size_t)n + 1);
        if (!keep) {
            free(sizes);
            free(labels);
            return -1;
        }
        if (holes) {
            // fill_labels = [0] + small: the mask itself plus the small holes.
            keep[0] = 1;
            for (int l = 1; l <= n; l++) keep[l] = (double)sizes[l] < area_thresh;
        } else {
            // fill_labels = the large islands; if none, the largest one.
            keep[0] = 0;
            int any = 0;
            for (int l = 1; l <= n; l++) any |= keep[l] = !((double)sizes[l] < area_thresh);
            if (!any) keep[largest] = 1;
        }
        for (size_t i = 0; i < hw; i++) mask[i] = keep[labels[i]];
        free(keep);
    }
    free(sizes);
    free(labels);
    return 0;
}
