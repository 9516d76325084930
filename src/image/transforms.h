// Pre- and post-processing exactly as the official SamPredictor
// (segment_anything/utils/transforms.py ResizeLongestSide, predictor.py,
// modeling/sam.py postprocess_masks).
#ifndef SAM_IMAGE_TRANSFORMS_H
#define SAM_IMAGE_TRANSFORMS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

// ResizeLongestSide.get_preprocess_shape: scale = target / max(h, w),
// new = int(dim * scale + 0.5).
void resize_longest_side_shape(int h, int w, int target, int *new_h, int *new_w);

// Pillow's Image.resize(..., BILINEAR) on RGB8, bit-exact: antialiased when
// shrinking (support scaled by in/out), 22-bit fixed-point weights,
// horizontal pass into a uint8 intermediate, then vertical. tmp must hold
// dst_w * src_h * 3 bytes.
void resize_pil_bilinear_rgb(uint8_t *dst, int dst_w, int dst_h, const uint8_t *src, int src_w,
                             int src_h, uint8_t *tmp);
// Image.resize(size, BILINEAR, box=(x0, y0, x1, y1)): the source region in
// float pixels, checked as Pillow checks it (-1 and a message if invalid).
// An integer box of the output's size is a crop, as in Pillow. tmp as above.
int resize_pil_bilinear_rgb_box(uint8_t *dst, int dst_w, int dst_h, const uint8_t *src,
                                int src_w, int src_h, const float box[4], uint8_t *tmp,
                                SamError *err);

// (x - mean) / std per channel with the official pixel mean/std, written
// channel-major into out (3, size, size), zero-padded right and bottom.
void normalize_pad_image(float *out, const uint8_t *rgb, int h, int w, int size);

// ResizeLongestSide.apply_coords: x * new_w / old_w, y * new_h / old_h.
void transform_coords(float *xy_out, const float *xy_in, int n, int old_h, int old_w, int new_h,
                      int new_w);

// Floats of scratch postprocess_logits_torch needs.
size_t postprocess_scratch_floats(int low_res, int input_size, int h, int w);
// Sam.postprocess_masks for one mask: low_res (lr, lr) logits -> bilinear
// (align_corners=False) to (input_size, input_size) -> crop (resized_h,
// resized_w) -> bilinear to (h, w). out: (h, w) logits. Bit-exact with
// PyTorch 1.13's CPU kernels, which differ in rounding with the number of
// channels of the tensor the official code interpolates: `channels` is 3
// for multimask output (and the automatic mask generator), 1 for a single
// mask (multimask_output=False).
void postprocess_logits_torch(float *out, const float *low_res, int lr, int input_size,
                              int resized_h, int resized_w, int h, int w, int channels,
                              float *scratch);
// The same post-processing thresholded: mask (h, w) = logits > 0, and the
// counts of logits > hi and > lo (for the stability score), identical to
// thresholding postprocess_logits_torch's output, but with the exact
// arithmetic only near the thresholds (see transforms.c).
size_t postprocess_mask_scratch_floats(int low_res, int input_size, int h, int w);
void postprocess_mask_torch(uint8_t *mask, size_t *above_hi, size_t *above_lo, float hi, float lo,
                            const float *low_res, int lr, int input_size, int resized_h,
                            int resized_w, int h, int w, int channels, float *scratch);
// Stability score as the automatic mask generator computes it on logits:
// count(logit > threshold + offset) / count(logit > threshold - offset) in
// float32. NaN when the denominator is 0, as the official 0 / 0.
float stability_score(const float *logits, size_t n, float threshold, float offset);

#endif
