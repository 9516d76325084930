// amg.h: the automatic mask generator ("segment everything"), with the
// semantics of the official SamAutomaticMaskGenerator
// (segment_anything/automatic_mask_generator.py and utils/amg.py, commit
// dca509f): a grid of single-point prompts, 3 masks per point, filtered by
// predicted IoU and stability score, de-duplicated with box NMS, optionally
// over crops of the image and with small regions and holes removed.
//
//   AmgOptions o;
//   amg_options_default(&o);          // the official defaults
//   AmgResult r;
//   if (amg_generate(model, rgb, w, h, NULL, &o, NULL, NULL, &r, &err)) puts(err.message);
//   for (int i = 0; i < r.count; i++) ... r.masks[i].counts (COCO RLE, column-major)
//   amg_result_free(&r);
//
// One component per file: point_grid.c (grids, crop boxes), rle.c (COCO
// run-length encoding and pycocotools' compressed string), nms.c (mask boxes,
// torchvision NMS, crop-edge test), regions.c (small regions and holes,
// cv2.connectedComponentsWithStats with 8-connectivity), generator.c (the
// pipeline).
#ifndef SAM_AMG_H
#define SAM_AMG_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sam.h"

#define AMG_MAX_LAYERS 8

typedef struct AmgOptions {
    // Points along each side of layer 0's grid (32). 0 when point_grids is given.
    int points_per_side;
    // Explicit grids, one per crop layer, normalised (x, y) in [0, 1]
    // (official point_grids); used when points_per_side is 0.
    const double *point_grids[AMG_MAX_LAYERS + 1];
    int point_grid_sizes[AMG_MAX_LAYERS + 1];  // points in each grid
    int n_point_grids;
    int points_per_batch;             // 64: points per progress report
    double pred_iou_thresh;           // 0.88; <= 0 skips the filter
    double stability_score_thresh;    // 0.95; <= 0 skips the filter
    double stability_score_offset;    // 1.0
    double box_nms_thresh;            // 0.7: within one crop
    int crop_n_layers;                // 0
    double crop_nms_thresh;           // 0.7: between crops
    double crop_overlap_ratio;        // 512 / 1500
    int crop_n_points_downscale_factor;  // 1
    int min_mask_region_area;         // 0: no small-region post-processing
} AmgOptions;

void amg_options_default(AmgOptions *o);
// Checks ranges (and that exactly one of points_per_side / point_grids is
// set, with a grid for every layer); -1 and a message naming the option.
int amg_options_check(const AmgOptions *o, SamError *err);

// One output record (the official generate()'s dict), in the original frame.
typedef struct AmgMask {
    uint32_t *counts;     // uncompressed COCO RLE of the (height, width) mask:
    size_t n_counts;      // column-major runs, the first of 0s (possibly empty)
    int64_t area;         // pixels in the mask
    int box[4];           // x0, y0, x1, y1, max inclusive (batched_mask_to_box)
    float predicted_iou;
    float stability_score;
    double point[2];      // the point prompt (x, y) that produced the mask
    int crop_box[4];      // x0, y0, x1, y1 of the crop it was predicted on
} AmgMask;

typedef struct AmgResult {
    int count;
    int height, width;
    AmgMask *masks;       // in the official output order
    // Wall time, ms: image encoding of the crops, decoding of the points
    // (decoder and full-size post-processing), NMS and region clean-up.
    double encode_ms, decode_ms, filter_ms;
    int points;           // point prompts decoded
} AmgResult;

// Called after each batch of points_per_batch points: points decoded so far
// and in total (over all crops), and the batch's masks that passed the
// per-mask filters (before NMS: some will be removed). Return non-zero to
// cancel; amg_generate then fails with "cancelled".
typedef int (*AmgBatchFn)(void *user, int done, int total, const AmgMask *masks, int n);

// Runs the generator on an RGB8 image (width*height*3). `image` may be the
// image's state already encoded by sam_image_encode / sam_image_load_embedding
// (then rgb may be NULL when crop_n_layers is 0); crops are always encoded
// from rgb.
int amg_generate(SamModel *model, const uint8_t *rgb, int width, int height,
                 const SamImage *image, const AmgOptions *o, AmgBatchFn on_batch, void *user,
                 AmgResult *out, SamError *err);
void amg_result_free(AmgResult *r);

// The same run step by step, for callers that must return to an event loop
// between batches (the browser: progress drawing and cancellation):
//   amg_run_start; while ((rc = amg_run_step(run)) > 0) { amg_run_batch(...) };
//   amg_run_finish; amg_run_free.
// Each step decodes up to points_per_batch points (encoding a crop first
// when one begins) and returns 1 while points remain, 0 when all are
// decoded, -1 on error. amg_run_batch gives the records the last step added
// (valid until the next step) and the progress. rgb and image must outlive
// the run. amg_run_finish moves the records into *out (NMS between crops and
// small regions first); free the run afterwards either way.
typedef struct AmgRun AmgRun;
int amg_run_start(AmgRun **run, SamModel *model, const uint8_t *rgb, int width, int height,
                  const SamImage *image, const AmgOptions *o, SamError *err);
int amg_run_step(AmgRun *run, SamError *err);
int amg_run_batch(const AmgRun *run, const AmgMask **masks, int *done, int *total);
int amg_run_finish(AmgRun *run, AmgResult *out, SamError *err);
void amg_run_free(AmgRun *run);

// --- point_grid.c ----------------------------------------------------------
// build_point_grid: n*n points ((i + 0.5) / n via numpy's linspace), x fastest.
void amg_point_grid(double *xy, int n_per_side);
// build_all_layer_point_grids: int(n / factor**layer) points per side.
int amg_layer_points_per_side(int n_per_side, int layer, int factor);
// generate_crop_boxes: 1 + 4 + ... + 4^n_layers boxes (x0, y0, x1, y1) and
// their layers; returns the count (boxes and layers hold amg_crop_box_count).
int amg_crop_box_count(int n_layers);
int amg_crop_boxes(int (*boxes)[4], int *layers, int im_h, int im_w, int n_layers,
                   double overlap_ratio);

// --- rle.c -----------------------------------------------------------------
// mask_to_rle_pytorch for one (h, w) row-major 0/1 mask. counts NULL: only
// counts the runs. At most h*w + 1 runs.
size_t amg_rle_encode(uint32_t *counts, const uint8_t *mask, int h, int w);
// rle_to_mask: mask (h, w) row-major 0/1. -1 if the runs do not sum to h*w.
int amg_rle_decode(uint8_t *mask, const uint32_t *counts, size_t n, int h, int w);
int64_t amg_rle_area(const uint32_t *counts, size_t n);
// pycocotools rleToString (frPyObjects of an uncompressed RLE, as
// coco_encode_rle): returns the length; writes it NUL-terminated when out is
// not NULL (out holds 7 * n + 1 bytes at most).
size_t amg_rle_to_string(char *out, const uint32_t *counts, size_t n);
// pycocotools rleFrString. *counts malloc'd; -1 on a malformed string.
int amg_rle_from_string(uint32_t **counts, size_t *n, const char *s, SamError *err);

// --- nms.c -----------------------------------------------------------------
// batched_mask_to_box for one mask: XYXY, max inclusive; [0,0,0,0] if empty.
void amg_mask_box(int box[4], const uint8_t *mask, int h, int w);
// torchvision.ops.batched_nms with one category: indices kept, by score
// descending (ties in index order); returns the count, -1 out of memory.
int amg_nms(int *keep, const int (*boxes)[4], const float *scores, int n, double iou_thresh);
// is_box_near_crop_edge: box (crop frame) within 20 px of a crop edge that is
// not also an image edge.
int amg_box_near_crop_edge(const int box[4], const int crop_box[4], int orig_w, int orig_h);

// --- regions.c -------------------------------------------------------------
// remove_small_regions: holes != 0 fills holes, else removes islands, of
// fewer than area_thresh pixels (8-connected components). *changed is 1 when
// any region was small. -1 out of memory.
int amg_remove_small_regions(uint8_t *mask, int h, int w, double area_thresh, int holes,
                             int *changed);

#endif
