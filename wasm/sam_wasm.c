// sam_wasm.c: the exported surface of the WebAssembly build, a thin layer
// over src/sam.h for web/engine.js (whisper.cpp's examples/whisper.wasm
// style). Objects cross the boundary as handles (pointers into the heap);
// arrays as (pointer, length) pairs the JS side allocates with malloc.
//
// Every fallible call returns 0 (or a NULL handle) on failure and leaves the
// message in samw_error(): the library never aborts, so a failed call leaves
// the instance usable. The module is single-threaded; one SamError and one
// output slot (samw_out_ptr / samw_out_len) serve every call.
#include <emscripten/emscripten.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amg/amg.h"
#include "kernels/kernels.h"
#include "sam.h"

static SamError last_error;
static uint8_t *out_bytes;  // result of the last convert / save_embedding
static size_t out_len;
static char info_json[2048];

static void clear_state(void) {
    last_error.message[0] = '\0';
    free(out_bytes);
    out_bytes = NULL;
    out_len = 0;
}

// The message of the last failed call ("" after a successful one).
EMSCRIPTEN_KEEPALIVE const char *samw_error(void) { return last_error.message; }

// Bytes produced by the last samw_convert / samw_image_save_embedding; valid
// until the next call that produces bytes (the JS side copies them out).
EMSCRIPTEN_KEEPALIVE uint8_t *samw_out_ptr(void) { return out_bytes; }
EMSCRIPTEN_KEEPALIVE size_t samw_out_len(void) { return out_len; }
EMSCRIPTEN_KEEPALIVE void samw_out_free(void) { clear_state(); }

EMSCRIPTEN_KEEPALIVE const char *samw_gemm_variant(void) { return gemm_variant_name(); }

// Bytes of the heap held by live allocations (dlmalloc's mallinfo), for
// SamPredictor.memoryUsage(): a long session shows whether anything leaks.
EMSCRIPTEN_KEEPALIVE size_t samw_heap_in_use(void) { return (size_t)mallinfo().uordblks; }

// ---------------------------------------------------------------------------
// Model

// Loads a .pth or .safetensors held in the heap (the bytes may be freed after).
EMSCRIPTEN_KEEPALIVE SamModel *samw_model_load(const uint8_t *bytes, size_t len) {
    clear_state();
    SamModel *m = NULL;
    if (sam_model_load(&m, bytes, len, &last_error)) return NULL;
    return m;
}

EMSCRIPTEN_KEEPALIVE void samw_model_free(SamModel *m) { sam_model_free(m); }

// {"type":..,"id":..,"config":{..}} of a loaded model, as JSON.
EMSCRIPTEN_KEEPALIVE const char *samw_model_info(const SamModel *m) {
    const SamConfig *c = sam_model_config(m);
    char global[SAM_MAX_DEPTH * 4 + 2] = "";
    size_t at = 0;
    for (int i = 0; i < c->depth && i < SAM_MAX_DEPTH; i++)
        if (c->is_global[i])
            at += (size_t)snprintf(global + at, sizeof global - at, "%s%d", at ? "," : "", i);
    snprintf(info_json, sizeof info_json,
             "{\"type\":\"%s\",\"id\":\"%s\",\"config\":{\"encoder\":\"%s\",\"img_size\":%d,"
             "\"patch_size\":%d,\"grid\":%d,\"embed_dim\":%d,\"depth\":%d,\"num_heads\":%d,"
             "\"head_dim\":%d,\"mlp_dim\":%d,\"window_size\":%d,\"global_attn\":[%s],"
             "\"out_chans\":%d,\"prompt_dim\":%d,\"decoder_depth\":%d,\"decoder_heads\":%d,"
             "\"num_mask_tokens\":%d,\"low_res\":%d},\"gemm\":\"%s\"}",
             sam_model_type(m), sam_model_id(m),
             c->encoder_kind == SAM_ENCODER_VIT ? "vit" : "tinyvit", c->img_size, c->patch_size,
             c->grid, c->embed_dim, c->depth, c->num_heads, c->head_dim, c->mlp_dim,
             c->window_size, global, c->out_chans, c->prompt_dim, c->decoder_depth,
             c->decoder_heads, c->num_mask_tokens, 4 * c->grid, gemm_variant_name());
    return info_json;
}

// sam_convert into the output slot; f16: 1 for float16 weights, 0 for float32.
EMSCRIPTEN_KEEPALIVE int samw_convert(const uint8_t *bytes, size_t len, int f16) {
    clear_state();
    return sam_convert(bytes, len, f16 ? DTYPE_F16 : DTYPE_F32, &out_bytes, &out_len,
                       &last_error) == 0;
}

// ---------------------------------------------------------------------------
// Image states

// Encoder progress goes to Module.onEncodeProgress(done, total) when set.
EM_JS(void, samw_js_progress, (int done, int total), {
    if (Module["onEncodeProgress"]) Module["onEncodeProgress"](done, total);
});

static void progress_bridge(void *user, int done, int total) { samw_js_progress(done, total); }

// rgb: width*height*3 bytes, row-major.
EMSCRIPTEN_KEEPALIVE SamImage *samw_image_encode(SamModel *m, const uint8_t *rgb, int width,
                                                 int height) {
    clear_state();
    SamImage *img = NULL;
    if (sam_image_encode(m, rgb, width, height, progress_bridge, NULL, &img, &last_error))
        return NULL;
    return img;
}

EMSCRIPTEN_KEEPALIVE SamImage *samw_image_load_embedding(SamModel *m, const uint8_t *bytes,
                                                         size_t len) {
    clear_state();
    SamImage *img = NULL;
    if (sam_image_load_embedding(m, bytes, len, &img, &last_error)) return NULL;
    return img;
}

// Writes the embedding file (safetensors) into the output slot.
EMSCRIPTEN_KEEPALIVE int samw_image_save_embedding(const SamModel *m, const SamImage *img,
                                                   int f16) {
    clear_state();
    return sam_image_save_embedding(m, img, f16 ? DTYPE_F16 : DTYPE_F32, &out_bytes, &out_len,
                                    &last_error) == 0;
}

EMSCRIPTEN_KEEPALIVE int samw_image_height(const SamImage *img) {
    int h, w;
    sam_image_size(img, &h, &w);
    return h;
}

EMSCRIPTEN_KEEPALIVE int samw_image_width(const SamImage *img) {
    int h, w;
    sam_image_size(img, &h, &w);
    return w;
}

EMSCRIPTEN_KEEPALIVE void samw_image_free(SamImage *img) { sam_image_free(img); }

// ---------------------------------------------------------------------------
// Prediction

// points: (n_points, 2) floats, labels: n_points ints; box (4 floats) and
// mask_input ((4G)^2 floats) may be NULL; output: a SamOutput. Returns a
// SamMasks the caller reads with the accessors below and releases with
// samw_masks_free.
EMSCRIPTEN_KEEPALIVE SamMasks *samw_predict(SamModel *m, const SamImage *img, const float *points,
                                            const int *labels, int n_points, const float *box,
                                            const float *mask_input, int multimask, int output) {
    clear_state();
    SamMasks *masks = calloc(1, sizeof *masks);
    if (!masks) {
        sam_error(&last_error, "out of memory");
        return NULL;
    }
    const SamPrompt prompt = {.points = points, .labels = labels, .n_points = n_points,
                              .box = box, .mask_input = mask_input, .multimask = multimask,
                              .output = (SamOutput)output};
    if (sam_predict(m, img, &prompt, masks, &last_error)) {
        free(masks);
        return NULL;
    }
    return masks;
}

EMSCRIPTEN_KEEPALIVE int samw_masks_count(const SamMasks *r) { return r->count; }
EMSCRIPTEN_KEEPALIVE int samw_masks_width(const SamMasks *r) { return r->width; }
EMSCRIPTEN_KEEPALIVE int samw_masks_height(const SamMasks *r) { return r->height; }
EMSCRIPTEN_KEEPALIVE int samw_masks_low_res(const SamMasks *r) { return r->low_res; }
EMSCRIPTEN_KEEPALIVE const float *samw_masks_scores(const SamMasks *r) { return r->scores; }
EMSCRIPTEN_KEEPALIVE const float *samw_masks_stability(const SamMasks *r) { return r->stability; }
EMSCRIPTEN_KEEPALIVE const float *samw_masks_logits(const SamMasks *r) { return r->low_res_logits; }
EMSCRIPTEN_KEEPALIVE const uint8_t *samw_masks_data(const SamMasks *r) { return r->masks; }
EMSCRIPTEN_KEEPALIVE int samw_masks_mask_count(const SamMasks *r) { return r->mask_count; }
EMSCRIPTEN_KEEPALIVE const float *samw_masks_stage_ms(const SamMasks *r) { return r->stage_ms; }
EMSCRIPTEN_KEEPALIVE const int *samw_masks_mask_index(const SamMasks *r) { return r->mask_index; }

EMSCRIPTEN_KEEPALIVE void samw_masks_free(SamMasks *r) {
    if (!r) return;
    sam_masks_free(r);
    free(r);
}

// ---------------------------------------------------------------------------
// Automatic mask generator (src/amg/amg.h), step by step so that JS returns
// to its event loop between batches (progress, cancellation).

// options: 11 doubles in this order: points_per_side, points_per_batch,
// pred_iou_thresh, stability_score_thresh, stability_score_offset,
// box_nms_thresh, crop_n_layers, crop_nms_thresh, crop_overlap_ratio,
// crop_n_points_downscale_factor, min_mask_region_area. rgb (width*height*3)
// may be NULL without crop layers; it must stay allocated until the run is
// freed. Returns the run, or NULL with the message in samw_error().
EMSCRIPTEN_KEEPALIVE AmgRun *samw_amg_start(SamModel *m, const SamImage *img, const uint8_t *rgb,
                                            const double *options) {
    clear_state();
    AmgOptions o;
    amg_options_default(&o);
    o.points_per_side = (int)options[0];
    o.points_per_batch = (int)options[1];
    o.pred_iou_thresh = options[2];
    o.stability_score_thresh = options[3];
    o.stability_score_offset = options[4];
    o.box_nms_thresh = options[5];
    o.crop_n_layers = (int)options[6];
    o.crop_nms_thresh = options[7];
    o.crop_overlap_ratio = options[8];
    o.crop_n_points_downscale_factor = (int)options[9];
    o.min_mask_region_area = (int)options[10];
    int h, w;
    sam_image_size(img, &h, &w);
    AmgRun *run = NULL;
    if (amg_run_start(&run, m, rgb, w, h, img, &o, &last_error)) return NULL;
    return run;
}

// 1: more points to decode, 0: all decoded, -1: error (samw_error()).
EMSCRIPTEN_KEEPALIVE int samw_amg_step(AmgRun *run) {
    clear_state();
    return amg_run_step(run, &last_error);
}

static int batch_done, batch_total;

// The records the last step added (valid until the next step); their count
// is samw_amg_batch_count(), progress samw_amg_done() / samw_amg_total().
EMSCRIPTEN_KEEPALIVE const AmgMask *samw_amg_batch(AmgRun *run) {
    const AmgMask *masks;
    amg_run_batch(run, &masks, &batch_done, &batch_total);
    return masks;
}
EMSCRIPTEN_KEEPALIVE int samw_amg_batch_count(AmgRun *run) {
    const AmgMask *masks;
    return amg_run_batch(run, &masks, &batch_done, &batch_total);
}
EMSCRIPTEN_KEEPALIVE int samw_amg_done(void) { return batch_done; }
EMSCRIPTEN_KEEPALIVE int samw_amg_total(void) { return batch_total; }

// The final records (NMS between crops, small regions); NULL on error.
EMSCRIPTEN_KEEPALIVE AmgResult *samw_amg_finish(AmgRun *run) {
    clear_state();
    AmgResult *r = calloc(1, sizeof *r);
    if (!r) {
        sam_error(&last_error, "out of memory");
        return NULL;
    }
    if (amg_run_finish(run, r, &last_error)) {
        free(r);
        return NULL;
    }
    return r;
}
EMSCRIPTEN_KEEPALIVE void samw_amg_free(AmgRun *run) { amg_run_free(run); }
EMSCRIPTEN_KEEPALIVE int samw_amg_result_count(const AmgResult *r) { return r->count; }
EMSCRIPTEN_KEEPALIVE const AmgMask *samw_amg_result_masks(const AmgResult *r) { return r->masks; }
EMSCRIPTEN_KEEPALIVE void samw_amg_result_free(AmgResult *r) {
    if (!r) return;
    amg_result_free(r);
    free(r);
}

// Record i of an AmgMask array as 14 doubles: n_counts, area, box x0 y0 x1 y1
// (max inclusive), predicted_iou, stability_score, point x y, crop box x0 y0
// x1 y1. Valid until the next call.
static double mask_info[14];
EMSCRIPTEN_KEEPALIVE const double *samw_amg_mask_info(const AmgMask *masks, int i) {
    const AmgMask *m = &masks[i];
    const double v[14] = {(double)m->n_counts, (double)m->area, m->box[0], m->box[1], m->box[2], m->box[3],
                          m->predicted_iou, m->stability_score, m->point[0], m->point[1],
                          m->crop_box[0], m->crop_box[1], m->crop_box[2], m->crop_box[3]};
    memcpy(mask_info, v, sizeof v);
    return mask_info;
}
EMSCRIPTEN_KEEPALIVE const uint32_t *samw_amg_mask_counts(const AmgMask *masks, int i) {
    return masks[i].counts;
}

// pycocotools' compressed counts string of an RLE, NUL-terminated; valid
// until the next call.
static char *rle_string;
EMSCRIPTEN_KEEPALIVE const char *samw_rle_string(const uint32_t *counts, size_t n) {
    free(rle_string);
    rle_string = malloc(amg_rle_to_string(NULL, counts, n) + 1);
    if (!rle_string) return "";
    amg_rle_to_string(rle_string, counts, n);
    return rle_string;
}
