// The automatic mask generator's pipeline, following
// SamAutomaticMaskGenerator (segment_anything/automatic_mask_generator.py,
// commit dca509f) step for step:
//   generate_crop_boxes -> per crop: encode the crop, decode every grid
//   point (multimask, 3 masks) -> filter by predicted IoU (> thresh) ->
//   stability score on the full-size logits (>= thresh) -> threshold at 0,
//   box, drop boxes near a crop edge -> RLE in the original frame -> box NMS
//   by predicted IoU -> NMS between crops by 1 / crop area -> small regions
//   and holes, then NMS preferring unchanged masks.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "amg.h"
#include "common/clock.h"
#include "image/transforms.h"

void amg_options_default(AmgOptions *o) {
    memset(o, 0, sizeof *o);
    o->points_per_side = 32;
    o->points_per_batch = 64;
    o->pred_iou_thresh = 0.88;
    o->stability_score_thresh = 0.95;
    o->stability_score_offset = 1.0;
    o->box_nms_thresh = 0.7;
    o->crop_n_layers = 0;
    o->crop_nms_thresh = 0.7;
    o->crop_overlap_ratio = 512.0 / 1500.0;
    o->crop_n_points_downscale_factor = 1;
    o->min_mask_region_area = 0;
}

#define AMG_MAX_POINTS_PER_SIDE 1024

int amg_options_check(const AmgOptions *o, SamError *err) {
    if (o->crop_n_layers < 0 || o->crop_n_layers > AMG_MAX_LAYERS)
        return sam_error(err, "crop_n_layers is %d; it must be 0..%d", o->crop_n_layers, AMG_MAX_LAYERS);
    if ((o->points_per_side > 0) == (o->n_point_grids > 0))
        return sam_error(err, "exactly one of points_per_side or point_grids must be given");
    if (o->points_per_side < 0 || o->points_per_side > AMG_MAX_POINTS_PER_SIDE)
        return sam_error(err, "points_per_side is %d; it must be 1..%d", o->points_per_side,
                         AMG_MAX_POINTS_PER_SIDE);
    if (o->crop_n_points_downscale_factor < 1)
        return sam_error(err, "crop_n_points_downscale_factor is %d; it must be at least 1",
                         o->crop_n_points_downscale_factor);
    if (o->points_per_side > 0) {
        for (int l = 0; l <= o->crop_n_layers; l++) {
            if (amg_layer_points_per_side(o->points_per_side, l, o->crop_n_points_downscale_factor) < 1)
                return sam_error(err, "crop layer %d would have no points: points_per_side %d / "
                                      "crop_n_points_downscale_factor %d^%d is below 1",
                                 l, o->points_per_side, o->crop_n_points_downscale_factor, l);
        }
    } else {
        if (o->n_point_grids < o->crop_n_layers + 1)
            return sam_error(err, "point_grids has %d grids; crop_n_layers %d needs %d",
                             o->n_point_grids, o->crop_n_layers, o->crop_n_layers + 1);
        for (int l = 0; l < o->n_point_grids; l++) {
            if (o->point_grid_sizes[l] < 1 || !o->point_grids[l])
                return sam_error(err, "point grid %d is empty", l);
            for (int i = 0; i < 2 * o->point_grid_sizes[l]; i++)
                if (!isfinite(o->point_grids[l][i]))
                    return sam_error(err, "point grid %d has a non-finite coordinate", l);
        }
    }
    if (o->points_per_batch < 1) return sam_error(err, "points_per_batch is %d; it must be at least 1", o->points_per_batch);
    const struct { const char *name; double v, lo, hi; } ranges[] = {
        {"pred_iou_thresh", o->pred_iou_thresh, -1e30, 1e30},
        {"stability_score_thresh", o->stability_score_thresh, -1e30, 1e30},
        {"stability_score_offset", o->stability_score_offset, -1e30, 1e30},
        {"box_nms_thresh", o->box_nms_thresh, 0, 1},
        {"crop_nms_thresh", o->crop_nms_thresh, 0, 1},
        {"crop_overlap_ratio", o->crop_overlap_ratio, 0, 1},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        if (!isfinite(ranges[i].v) || ranges[i].v < ranges[i].lo || ranges[i].v > ranges[i].hi)
            return sam_error(err, "%s is %g; it must be a finite number%s", ranges[i].name, ranges[i].v,
                             ranges[i].hi == 1 ? " in [0, 1]" : "");
    }
    if (o->min_mask_region_area < 0)
        return sam_error(err, "min_mask_region_area is %d; it must be 0 or more", o->min_mask_region_area);
    return 0;
}

// ---------------------------------------------------------------------------
// The list of records (the official MaskData, with RLEs instead of masks)

typedef struct {
    AmgMask *v;
    int n, cap;
} MaskList;

static int list_push(MaskList *l, const AmgMask *m) {
    if (l->n == l->cap) {
        const int cap = l->cap ? 2 * l->cap : 64;
        AmgMask *grown = realloc(l->v, sizeof(AmgMask) * (size_t)cap);
        if (!grown) return -1;
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = *m;
    return 0;
}

// MaskData.filter with a list of indices: keeps v[keep[0]], v[keep[1]], ...
// (from index `from` on), in that order, and frees the others.
static int list_keep(MaskList *l, int from, const int *keep, int n_keep) {
    const int n = l->n - from;
    AmgMask *tmp = malloc(sizeof(AmgMask) * (size_t)(n ? n : 1));
    uint8_t *used = calloc((size_t)(n ? n : 1), 1);
    if (!tmp || !used) {
        free(tmp);
        free(used);
        return -1;
    }
    for (int i = 0; i < n_keep; i++) {
        tmp[i] = l->v[from + keep[i]];
        used[keep[i]] = 1;
    }
    for (int i = 0; i < n; i++)
        if (!used[i]) free(l->v[from + i].counts);
    memcpy(l->v + from, tmp, sizeof(AmgMask) * (size_t)n_keep);
    l->n = from + n_keep;
    free(tmp);
    free(used);
    return 0;
}

static void list_free(MaskList *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i].counts);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int set_rle(AmgMask *r, const uint8_t *mask, int h, int w) {
    const size_t n = amg_rle_encode(NULL, mask, h, w);
    uint32_t *counts = malloc(sizeof(uint32_t) * n);
    if (!counts) return -1;
    amg_rle_encode(counts, mask, h, w);
    free(r->counts);
    r->counts = counts;
    r->n_counts = n;
    r->area = amg_rle_area(counts, n);
    return 0;
}

static int nms_list(MaskList *l, int from, const float *scores, double thresh, SamError *err) {
    const int n = l->n - from;
    if (n <= 0) return 0;
    int (*boxes)[4] = malloc(sizeof(int[4]) * (size_t)n);
    int *keep = malloc(sizeof(int) * (size_t)n);
    int rc = boxes && keep ? 0 : -1;
    if (!rc) {
        for (int i = 0; i < n; i++) memcpy(boxes[i], l->v[from + i].box, sizeof boxes[i]);
        const int kept = amg_nms(keep, (const int(*)[4])boxes, scores, n, thresh);
        rc = kept < 0 ? -1 : list_keep(l, from, keep, kept);
    }
    free(boxes);
    free(keep);
    return rc ? sam_error(err, "out of memory in NMS (%d masks)", n) : 0;
}

// ---------------------------------------------------------------------------
// A run: crops and points decoded batch by batch (_process_crop and
// _process_batch), so that a caller can report and cancel between batches.

struct AmgRun {
    SamModel *model;
    const uint8_t *rgb;
    int width, height;
    const SamImage *given;      // the whole image's state, if the caller has it
    AmgOptions o;
    int n_crops;
    int (*crops)[4];
    int *layers;
    double *grids[AMG_MAX_LAYERS + 1];
    int grid_sizes[AMG_MAX_LAYERS + 1];
    MaskList list;
    // Current crop: its image state, scratch, first record, next point.
    int crop;                   // index of the crop being decoded; n_crops when done
    int point;                  // next point of the crop's grid
    int crop_first;             // list index of the crop's first record
    SamImage *encoded;          // the crop's own state (NULL when `given` is used)
    const SamImage *state;
    uint8_t *mask, *uncropped;
    float *scratch;
    int batch_first;            // list index of the last batch's first record
    int done, total;            // points decoded / in all crops
    double encode_ms, decode_ms;
};

static void crop_release(AmgRun *r) {
    sam_image_free(r->encoded);
    r->encoded = NULL;
    r->state = NULL;
    free(r->mask);
    free(r->uncropped);
    free(r->scratch);
    r->mask = r->uncropped = NULL;
    r->scratch = NULL;
}

// set_image on the crop image[y0:y1, x0:x1] (its own embedding) and scratch.
static int crop_begin(AmgRun *r, SamError *err) {
    const int *crop = r->crops[r->crop];
    const int cw = crop[2] - crop[0], ch = crop[3] - crop[1];
    const SamConfig *c = sam_model_config(r->model);
    r->point = 0;
    r->crop_first = r->list.n;
    if (r->crop == 0 && r->given) {
        r->state = r->given;
    } else {
        const double t0 = sam_clock_ms();
        uint8_t *pixels = malloc((size_t)cw * ch * 3);
        if (!pixels) return sam_error(err, "out of memory for a %dx%d crop", cw, ch);
        for (int y = 0; y < ch; y++)
            memcpy(pixels + (size_t)y * cw * 3, r->rgb + ((size_t)(crop[1] + y) * r->width + crop[0]) * 3,
                   (size_t)cw * 3);
        const int rc = sam_image_encode(r->model, pixels, cw, ch, NULL, NULL, &r->encoded, err);
        free(pixels);
        r->encode_ms += sam_clock_ms() - t0;
        if (rc) return -1;
        r->state = r->encoded;
    }
    const int full = cw == r->width && ch == r->height;
    const int lr = 4 * c->grid;
    r->mask = malloc((size_t)ch * cw);
    r->uncropped = full ? NULL : calloc((size_t)r->height * r->width, 1);
    r->scratch = malloc(sizeof(float) * postprocess_mask_scratch_floats(lr, c->img_size, ch, cw));
    if (!r->mask || (!full && !r->uncropped) || !r->scratch)
        return sam_error(err, "out of memory for the masks of a %dx%d crop", cw, ch);
    return 0;
}

// Duplicates within the crop: NMS by predicted IoU (box_nms_thresh).
static int crop_end(AmgRun *r, SamError *err) {
    crop_release(r);
    const int first = r->crop_first, n = r->list.n - first;
    float *scores = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!scores) return sam_error(err, "out of memory");
    for (int i = 0; i < n; i++) scores[i] = r->list.v[first + i].predicted_iou;
    const int rc = nms_list(&r->list, first, scores, r->o.box_nms_thresh, err);
    free(scores);
    return rc;
}

// Decodes one point of the current crop: 3 masks, the per-mask filters,
// and the records of the masks that pass.
static int decode_point(AmgRun *r, int p, SamError *err) {
    const SamConfig *c = sam_model_config(r->model);
    const AmgOptions *o = &r->o;
    const int *crop = r->crops[r->crop];
    const int x0 = crop[0], y0 = crop[1];
    const int cw = crop[2] - crop[0], ch = crop[3] - crop[1];
    const int lr = 4 * c->grid;
    int rh, rw;
    resize_longest_side_shape(ch, cw, c->img_size, &rh, &rw);
    const double *grid = r->grids[r->layers[r->crop]];
    // points_for_image = grid * (crop_w, crop_h), in float64.
    const double px = grid[2 * p] * cw, py = grid[2 * p + 1] * ch;
    const float xy[2] = {(float)px, (float)py};
    const int label = 1;
    SamPrompt prompt = {.points = xy, .labels = &label, .n_points = 1, .multimask = 1,
                        .output = SAM_OUTPUT_LOW_RES};
    SamMasks res;
    if (sam_predict(r->model, r->state, &prompt, &res, err)) return -1;
    // calculate_stability_score(masks, mask_threshold 0, offset): the
    // thresholds are the float32 values of the Python doubles 0 +- offset.
    const float hi = (float)(0.0 + o->stability_score_offset);
    const float lo = (float)(0.0 - o->stability_score_offset);
    int rc = 0;
    for (int k = 0; k < res.count && !rc; k++) {
        const float iou = res.scores[k];
        if (o->pred_iou_thresh > 0.0 && !(iou > (float)o->pred_iou_thresh)) continue;
        // The official code thresholds and counts the full-size logits
        // (postprocess_masks of the 3 masks as one tensor: channels 3);
        // postprocess_mask_torch gives exactly that mask and those counts
        // without writing the logits (transforms.h; tests/c/test_amg.c checks
        // it at several offsets).
        size_t n_hi, n_lo;
        postprocess_mask_torch(r->mask, &n_hi, &n_lo, hi, lo, res.low_res_logits + (size_t)k * lr * lr, lr,
                               c->img_size, rh, rw, ch, cw, res.count, r->scratch);
        // int32 / int32 in torch is a float32 division; 0 / 0 is NaN.
        const float stability = (float)n_hi / (float)n_lo;
        if (o->stability_score_thresh > 0.0 && !(stability >= (float)o->stability_score_thresh)) continue;
        AmgMask rec = {0};
        amg_mask_box(rec.box, r->mask, ch, cw);
        if (amg_box_near_crop_edge(rec.box, crop, r->width, r->height)) continue;
        // uncrop_masks (zero padding), then mask_to_rle_pytorch.
        if (r->uncropped) {
            for (int y = 0; y < ch; y++)
                memcpy(r->uncropped + (size_t)(y0 + y) * r->width + x0, r->mask + (size_t)y * cw, (size_t)cw);
        }
        if (set_rle(&rec, r->uncropped ? r->uncropped : r->mask, r->height, r->width)) {
            rc = sam_error(err, "out of memory for an RLE");
            break;
        }
        // uncrop_boxes_xyxy / uncrop_points, done now: NMS of integer boxes
        // gives the same result in either frame.
        rec.box[0] += x0, rec.box[1] += y0, rec.box[2] += x0, rec.box[3] += y0;
        rec.point[0] = px + x0;
        rec.point[1] = py + y0;
        rec.predicted_iou = iou;
        rec.stability_score = stability;
        memcpy(rec.crop_box, crop, sizeof rec.crop_box);
        if (list_push(&r->list, &rec)) {
            free(rec.counts);
            rc = sam_error(err, "out of memory for the mask list");
        }
    }
    sam_masks_free(&res);
    return rc;
}

// postprocess_small_regions: holes then islands on every mask; NMS with
// score 1 for unchanged and 0 for changed masks; kept changed masks get their
// new RLE and box.
static int small_regions(MaskList *l, int h, int w, int min_area, double nms_thresh, SamError *err) {
    const int n = l->n;
    if (n == 0) return 0;
    const size_t hw = (size_t)h * w;
    uint8_t *mask = malloc(hw);
    float *scores = malloc(sizeof(float) * (size_t)n);
    AmgMask *fresh = calloc((size_t)n, sizeof(AmgMask));
    int (*boxes)[4] = malloc(sizeof(int[4]) * (size_t)n);
    int *keep = malloc(sizeof(int) * (size_t)n);
    int rc = mask && scores && fresh && boxes && keep ? 0 : sam_error(err, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        amg_rle_decode(mask, l->v[i].counts, l->v[i].n_counts, h, w);
        int changed_holes, changed_islands;
        if (amg_remove_small_regions(mask, h, w, (double)min_area, 1, &changed_holes) ||
            amg_remove_small_regions(mask, h, w, (double)min_area, 0, &changed_islands)) {
            rc = sam_error(err, "out of memory removing small regions");
            break;
        }
        const int unchanged = !changed_holes && !changed_islands;
        scores[i] = unchanged ? 1.0f : 0.0f;
        amg_mask_box(boxes[i], mask, h, w);
        if (!unchanged && set_rle(&fresh[i], mask, h, w)) rc = sam_error(err, "out of memory");
    }
    int kept = 0;
    if (!rc) {
        kept = amg_nms(keep, (const int(*)[4])boxes, scores, n, nms_thresh);
        if (kept < 0) rc = sam_error(err, "out of memory in NMS");
    }
    if (!rc) {
        for (int k = 0; k < kept; k++) {
            const int i = keep[k];
            if (scores[i] != 0.0f) continue;
            free(l->v[i].counts);
            l->v[i].counts = fresh[i].counts;
            l->v[i].n_counts = fresh[i].n_counts;
            l->v[i].area = fresh[i].area;
            fresh[i].counts = NULL;
            memcpy(l->v[i].box, boxes[i], sizeof boxes[i]);
        }
        if (list_keep(l, 0, keep, kept)) rc = sam_error(err, "out of memory");
    }
    if (fresh)
        for (int i = 0; i < n; i++) free(fresh[i].counts);
    free(mask);
    free(scores);
    free(fresh);
    free(boxes);
    free(keep);
    return rc;
}

// ---------------------------------------------------------------------------

int amg_run_start(AmgRun **out, SamModel *m, const uint8_t *rgb, int width, int height,
                  const SamImage *image, const AmgOptions *o, SamError *err) {
    *out = NULL;
    if (amg_options_check(o, err)) return -1;
    if (width <= 0 || height <= 0) return sam_error(err, "image size %dx%d is empty", width, height);
    if (image) {
        int ih, iw;
        sam_image_size(image, &ih, &iw);
        if (ih != height || iw != width)
            return sam_error(err, "image state is %dx%d, the image %dx%d", iw, ih, width, height);
    }
    if (!rgb && (!image || o->crop_n_layers > 0))
        return sam_error(err, "crop layers need the image's pixels: each crop is encoded separately");
    AmgRun *r = calloc(1, sizeof *r);
    if (!r) return sam_error(err, "out of memory");
    r->model = m;
    r->rgb = rgb;
    r->width = width;
    r->height = height;
    r->given = image;
    r->o = *o;
    r->n_crops = amg_crop_box_count(o->crop_n_layers);
    r->crops = malloc(sizeof(int[4]) * (size_t)r->n_crops);
    r->layers = malloc(sizeof(int) * (size_t)r->n_crops);
    int rc = r->crops && r->layers ? 0 : sam_error(err, "out of memory");
    if (!rc) amg_crop_boxes(r->crops, r->layers, height, width, o->crop_n_layers, o->crop_overlap_ratio);
    for (int l = 0; l <= o->crop_n_layers && !rc; l++) {
        // build_all_layer_point_grids, or the caller's grids (copied).
        const int side = o->points_per_side > 0
                             ? amg_layer_points_per_side(o->points_per_side, l, o->crop_n_points_downscale_factor)
                             : 0;
        r->grid_sizes[l] = o->points_per_side > 0 ? side * side : o->point_grid_sizes[l];
        r->grids[l] = malloc(sizeof(double) * 2 * (size_t)r->grid_sizes[l]);
        if (!r->grids[l]) rc = sam_error(err, "out of memory");
        else if (o->points_per_side > 0) amg_point_grid(r->grids[l], side);
        else memcpy(r->grids[l], o->point_grids[l], sizeof(double) * 2 * (size_t)r->grid_sizes[l]);
    }
    for (int i = 0; i < r->n_crops && !rc; i++) r->total += r->grid_sizes[r->layers[i]];
    if (rc) {
        amg_run_free(r);
        return -1;
    }
    r->crop = -1;
    *out = r;
    return 0;
}

// Runs the NMS of a finished crop and opens the next one (encoding it).
static int advance(AmgRun *r, SamError *err) {
    if (r->crop >= 0 && r->crop < r->n_crops) {
        if (r->point < r->grid_sizes[r->layers[r->crop]]) return 0;  // crop not finished
        const double t0 = sam_clock_ms();
        const int rc = crop_end(r, err);
        r->decode_ms += sam_clock_ms() - t0;
        if (rc) return -1;
    }
    if (r->crop >= r->n_crops) return 0;
    r->crop++;
    if (r->crop < r->n_crops && crop_begin(r, err)) return -1;
    return 0;
}

int amg_run_step(AmgRun *r, SamError *err) {
    // The previous batch's records stay readable (amg_run_batch) until here:
    // a finished crop's NMS runs now.
    if (r->done < r->total && advance(r, err)) return -1;
    r->batch_first = r->list.n;
    if (r->done >= r->total) return 0;
    const double t0 = sam_clock_ms();
    const int n = r->grid_sizes[r->layers[r->crop]];
    const int end = r->point + r->o.points_per_batch < n ? r->point + r->o.points_per_batch : n;
    for (; r->point < end; r->point++, r->done++) {
        if (decode_point(r, r->point, err)) return -1;
    }
    r->decode_ms += sam_clock_ms() - t0;
    return r->done < r->total ? 1 : 0;
}

int amg_run_batch(const AmgRun *r, const AmgMask **masks, int *done, int *total) {
    *masks = r->list.v + r->batch_first;
    *done = r->done;
    *total = r->total;
    return r->list.n - r->batch_first;
}

int amg_run_finish(AmgRun *r, AmgResult *out, SamError *err) {
    memset(out, 0, sizeof *out);
    if (r->done < r->total) return sam_error(err, "the run has %d of %d points left", r->total - r->done, r->total);
    if (advance(r, err)) return -1;  // the last crop's NMS
    const double t0 = sam_clock_ms();
    int rc = 0;
    if (r->n_crops > 1) {
        // Between crops: prefer masks from smaller crops (score 1 / crop area).
        float *scores = malloc(sizeof(float) * (size_t)(r->list.n ? r->list.n : 1));
        if (!scores) return sam_error(err, "out of memory");
        for (int i = 0; i < r->list.n; i++) {
            const int *cb = r->list.v[i].crop_box;
            scores[i] = 1.0f / (float)((int64_t)(cb[2] - cb[0]) * (cb[3] - cb[1]));
        }
        rc = nms_list(&r->list, 0, scores, r->o.crop_nms_thresh, err);
        free(scores);
    }
    if (!rc && r->o.min_mask_region_area > 0) {
        const double t = r->o.box_nms_thresh > r->o.crop_nms_thresh ? r->o.box_nms_thresh : r->o.crop_nms_thresh;
        rc = small_regions(&r->list, r->height, r->width, r->o.min_mask_region_area, t, err);
    }
    if (rc) return -1;
    out->count = r->list.n;
    out->masks = r->list.v;
    out->height = r->height;
    out->width = r->width;
    out->points = r->total;
    out->encode_ms = r->encode_ms;
    out->decode_ms = r->decode_ms;
    out->filter_ms = sam_clock_ms() - t0;
    memset(&r->list, 0, sizeof r->list);  // the result owns the records now
    return 0;
}

void amg_run_free(AmgRun *r) {
    if (!r) return;
    crop_release(r);
    list_free(&r->list);
    free(r->crops);
    free(r->layers);
    for (int l = 0; l <= AMG_MAX_LAYERS; l++) free(r->grids[l]);
    free(r);
}

int amg_generate(SamModel *m, const uint8_t *rgb, int width, int height, const SamImage *image,
                 const AmgOptions *o, AmgBatchFn on_batch, void *user, AmgResult *out,
                 SamError *err) {
    memset(out, 0, sizeof *out);
    AmgRun *r;
    if (amg_run_start(&r, m, rgb, width, height, image, o, err)) return -1;
    int rc;
    while ((rc = amg_run_step(r, err)) >= 0) {
        const AmgMask *masks;
        int done, total;
        const int n = amg_run_batch(r, &masks, &done, &total);
        if (on_batch && on_batch(user, done, total, masks, n)) {
            rc = sam_error(err, "cancelled");
            break;
        }
        if (rc == 0) break;
    }
    if (rc == 0) rc = amg_run_finish(r, out, err);
    amg_run_free(r);
    return rc;
}

void amg_result_free(AmgResult *r) {
    for (int i = 0; i < r->count; i++) free(r->masks[i].counts);
    free(r->masks);
    memset(r, 0, sizeof *r);
}
