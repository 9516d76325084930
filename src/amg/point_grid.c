// Point grids and crop boxes of the automatic mask generator
// (segment_anything/utils/amg.py: build_point_grid,
// build_all_layer_point_grids, generate_crop_boxes).
#include <math.h>

#include "amg.h"

// numpy.linspace(start, stop, n) as numpy 1.24 computes it: i * step + start
// with step = (stop - start) / (n - 1), and the last value set to stop.
static double linspace_at(double start, double stop, int n, int i) {
    if (n == 1) return start;
    if (i == n - 1) return stop;
    const double step = (stop - start) / (double)(n - 1);
    if (step == 0.0) return (double)i / (double)(n - 1) * (stop - start) + start;
    return (double)i * step + start;
}

void amg_point_grid(double *xy, int n) {
    // build_point_grid: offset 1 / (2n); points_x tiled along rows, so x
    // varies fastest in the flattened (n*n, 2) array.
    const double offset = 1.0 / (double)(2 * n);
    for (int r = 0; r < n; r++) {
        for (int c = 0; c < n; c++) {
            xy[2 * (r * n + c)] = linspace_at(offset, 1.0 - offset, n, c);
            xy[2 * (r * n + c) + 1] = linspace_at(offset, 1.0 - offset, n, r);
        }
    }
}

int amg_layer_points_per_side(int n_per_side, int layer, int factor) {
    // int(n_per_side / (scale_per_layer ** i)): true division, truncated.
    double scale = 1.0;
    for (int i = 0; i < layer; i++) scale *= factor;
    return (int)((double)n_per_side / scale);
}

int amg_crop_box_count(int n_layers) {
    int n = 1;
    for (int i = 0; i < n_layers; i++) n += (1 << (i + 1)) * (1 << (i + 1));
    return n;
}

int amg_crop_boxes(int (*boxes)[4], int *layers, int im_h, int im_w, int n_layers,
                   double overlap_ratio) {
    const int short_side = im_h < im_w ? im_h : im_w;
    int n = 0;
    boxes[n][0] = 0, boxes[n][1] = 0, boxes[n][2] = im_w, boxes[n][3] = im_h;
    layers[n++] = 0;
    for (int layer = 0; layer < n_layers; layer++) {
        const int per_side = 1 << (layer + 1);
        // overlap = int(overlap_ratio * short_side * (2 / n_crops_per_side))
        const int overlap = (int)(overlap_ratio * short_side * (2.0 / per_side));
        // crop_len = int(ceil((overlap * (n_crops - 1) + orig_len) / n_crops))
        const int crop_w = (int)ceil((double)(overlap * (per_side - 1) + im_w) / per_side);
        const int crop_h = (int)ceil((double)(overlap * (per_side - 1) + im_h) / per_side);
        // itertools.product(x0s, y0s): x outer, y inner.
        for (int i = 0; i < per_side; i++) {
            for (int j = 0; j < per_side; j++) {
                const int x0 = (crop_w - overlap) * i, y0 = (crop_h - overlap) * j;
                boxes[n][0] = x0;
                boxes[n][1] = y0;
                boxes[n][2] = x0 + crop_w < im_w ? x0 + crop_w : im_w;
                boxes[n][3] = y0 + crop_h < im_h ? y0 + crop_h : im_h;
                layers[n++] = layer + 1;
            }
        }
    }
    return n;
}
