// Pre- and post-processing as the official SamPredictor does it:
//   segment_anything/utils/transforms.py  ResizeLongestSide (apply_image, apply_coords)
//   segment_anything/modeling/sam.py      Sam.preprocess, Sam.postprocess_masks
//   segment_anything/utils/amg.py         calculate_stability_score
// The official resize goes through Pillow (torchvision's resize on a PIL image
// calls Image.resize(size, BILINEAR)) and the mask upsampling through
// torch.nn.functional.interpolate; both are reproduced here to the bit, so the
// arithmetic below follows those libraries' order of operations, not a
// textbook formula. See /work/shared/FIDELITY.md.
#include "transforms.h"
#include "../common/multiversion.h"

#include <math.h>
#include <string.h>

void resize_longest_side_shape(int h, int w, int target, int *new_h, int *new_w) {
    // ResizeLongestSide.get_preprocess_shape: Python floats (double), then int(x + 0.5).
    double scale = target * 1.0 / (double)(h > w ? h : w);
    *new_h = (int)((double)h * scale + 0.5);
    *new_w = (int)((double)w * scale + 0.5);
}

// ---------------------------------------------------------------------------
// Pillow's BILINEAR resample (libImaging/Resample.c, Pillow 9.x), RGB8 only.
//
// For each output sample Pillow builds a triangle filter over the input
// (precompute_coeffs): scale = (in1 - in0) / out_size; when shrinking the
// filter is widened by scale (antialiasing), support = 1 * max(scale, 1);
// the taps run from (int)(center - support + 0.5) to (int)(center + support
// + 0.5) clipped to the image, weights are normalised by their sum in double
// and then turned into 22-bit fixed point (normalize_coeffs_8bpc). The sums
// start at 1 << 21 (rounding half up) and are shifted down and clamped
// (clip8). The horizontal pass runs first, into a uint8 image holding only
// the rows the vertical pass needs; a pass is skipped when its axis is
// unchanged (ImagingResampleInner).
//
// Pillow stores each output's taps in a table; here they are recomputed per
// output column within a block of rows (same arithmetic, same values), which
// needs no allocation: a small stack cache holds the fixed-point weights and
// the rare taps beyond it (shrinking by more than PIL_TAP_CACHE / 2) are
// computed where they are used.
// ---------------------------------------------------------------------------

#define PIL_PRECISION_BITS (32 - 8 - 2)  // Resample.c PRECISION_BITS
#define PIL_TAP_CACHE 512
#define PIL_ROW_BLOCK 32

typedef struct PilTaps {
    int first;         // xmin: first input index
    int count;         // xmax - xmin: number of taps
    double center;     // in0 + (out + 0.5) * scale
    double inv_scale;  // 1 / filterscale
    double ww;         // sum of the unnormalised weights
} PilTaps;

static double pil_bilinear_filter(double x) {
    // Resample.c bilinear_filter: triangle of support 1.
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

// The filter geometry of one output sample (precompute_coeffs' loop body).
static void pil_taps(PilTaps *t, int out_index, int in_size, float in0, double scale,
                     double support, double inv_scale) {
    double center = in0 + (out_index + 0.5) * scale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    t->first = xmin;
    t->count = xmax - xmin;
    t->center = center;
    t->inv_scale = inv_scale;
    // The sum is accumulated in tap order, as Pillow does while filling k[].
    double ww = 0.0;
    for (int x = 0; x < t->count; x++)
        ww += pil_bilinear_filter((x + xmin - center + 0.5) * inv_scale);
    t->ww = ww;
}

// Fixed-point weight of tap x: k[x] /= ww (when ww != 0), then
// normalize_coeffs_8bpc's rounding away from zero.
static int pil_coeff(const PilTaps *t, int x) {
    double w = pil_bilinear_filter((x + t->first - t->center + 0.5) * t->inv_scale);
    if (t->ww != 0.0) w /= t->ww;
    if (w < 0) return (int)(-0.5 + w * (1 << PIL_PRECISION_BITS));
    return (int)(0.5 + w * (1 << PIL_PRECISION_BITS));
}

// Fills cache[0 .. min(count, PIL_TAP_CACHE)) with the fixed-point weights.
static void pil_coeff_cache(int *cache, const PilTaps *t) {
    int n = t->count < PIL_TAP_CACHE ? t->count : PIL_TAP_CACHE;
    for (int x = 0; x < n; x++) cache[x] = pil_coeff(t, x);
}

// Resample.c clip8: the sum carries 22 fractional bits; the lookup table
// clamps to [0, 255]. Bilinear weights are non-negative, but negative sums
// are handled as the table does.
static uint8_t pil_clip8(int ss) {
    if (ss < 0) return 0;
    int v = ss >> PIL_PRECISION_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

// Horizontal pass (ImagingResampleHorizontal_8bpc, 3 bands): rows
// [row0, row0 + rows) of src into rows [0, rows) of dst (dst_w wide).
static void pil_horizontal(uint8_t *dst, int dst_w, const uint8_t *src, int src_w, int row0,
                           int rows, float in0, float in1) {
    const double scale = (double)(in1 - in0) / dst_w;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;  // BILINEAR.support = 1
    const double inv_scale = 1.0 / filterscale;
    int cache[PIL_TAP_CACHE];
    for (int yb = 0; yb < rows; yb += PIL_ROW_BLOCK) {
        const int yend = yb + PIL_ROW_BLOCK < rows ? yb + PIL_ROW_BLOCK : rows;
        for (int xx = 0; xx < dst_w; xx++) {
            PilTaps t;
            pil_taps(&t, xx, src_w, in0, scale, support, inv_scale);
            pil_coeff_cache(cache, &t);
            const int ncache = t.count < PIL_TAP_CACHE ? t.count : PIL_TAP_CACHE;
            for (int yy = yb; yy < yend; yy++) {
                const uint8_t *in = src + ((size_t)(yy + row0) * src_w + t.first) * 3;
                int ss0 = 1 << (PIL_PRECISION_BITS - 1);
                int ss1 = ss0, ss2 = ss0;
                for (int x = 0; x < ncache; x++) {
                    ss0 += in[x * 3 + 0] * cache[x];
                    ss1 += in[x * 3 + 1] * cache[x];
                    ss2 += in[x * 3 + 2] * cache[x];
                }
                for (int x = ncache; x < t.count; x++) {
                    const int k = pil_coeff(&t, x);
                    ss0 += in[x * 3 + 0] * k;
                    ss1 += in[x * 3 + 1] * k;
                    ss2 += in[x * 3 + 2] * k;
                }
                uint8_t *out = dst + ((size_t)yy * dst_w + xx) * 3;
                out[0] = pil_clip8(ss0);
                out[1] = pil_clip8(ss1);
                out[2] = pil_clip8(ss2);
            }
        }
    }
}

// Vertical pass (ImagingResampleVertical_8bpc): src rows are shifted by
// row_offset (the first row the horizontal pass kept, or 0).
static void pil_vertical(uint8_t *dst, int dst_h, const uint8_t *src, int width, int src_h,
                         int row_offset, float in0, float in1) {
    const double scale = (double)(in1 - in0) / dst_h;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;
    const double inv_scale = 1.0 / filterscale;
    const size_t stride = (size_t)width * 3;
    int cache[PIL_TAP_CACHE];
    for (int yy = 0; yy < dst_h; yy++) {
        PilTaps t;
        pil_taps(&t, yy, src_h, in0, scale, support, inv_scale);
        pil_coeff_cache(cache, &t);
        const int ncache = t.count < PIL_TAP_CACHE ? t.count : PIL_TAP_CACHE;
        const uint8_t *in = src + (size_t)(t.first - row_offset) * stride;
        uint8_t *out = dst + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++) {
            int ss = 1 << (PIL_PRECISION_BITS - 1);
            for (int y = 0; y < ncache; y++) ss += in[(size_t)y * stride + i] * cache[y];
            for (int y = ncache; y < t.count; y++)
                ss += in[(size_t)y * stride + i] * pil_coeff(&t, y);
            out[i] = pil_clip8(ss);
        }
    }
}

int resize_pil_bilinear_rgb_box(uint8_t *dst, int dst_w, int dst_h, const uint8_t *src,
                                int src_w, int src_h, const float box[4], uint8_t *tmp,
                                SamError *err) {
    // Argument checks of Pillow's _resize (_imaging.c).
    if (dst_w < 1 || dst_h < 1 || src_w < 1 || src_h < 1)
        return sam_error(err, "resize: sizes must be > 0 (src %dx%d, dst %dx%d)", src_w, src_h,
                         dst_w, dst_h);
    if (box[0] < 0 || box[1] < 0) return sam_error(err, "resize: box offset can't be negative");
    if (box[2] > src_w || box[3] > src_h)
        return sam_error(err, "resize: box can't exceed original image size");
    if (box[2] - box[0] < 0 || box[3] - box[1] < 0)
        return sam_error(err, "resize: box can't be empty");

    // _resize: an integer box whose size equals the requested size is a crop.
    if (box[0] - (int)box[0] == 0 && box[2] - box[0] == dst_w && box[1] - (int)box[1] == 0 &&
        box[3] - box[1] == dst_h) {
        const int x0 = (int)box[0], y0 = (int)box[1];
        for (int y = 0; y < dst_h; y++)
            memcpy(dst + (size_t)y * dst_w * 3, src + ((size_t)(y + y0) * src_w + x0) * 3,
                   (size_t)dst_w * 3);
        return 0;
    }

    // ImagingResampleInner. Note Pillow compares box[2] with the *output*
    // width; mirrored literally.
    const int need_h = dst_w != src_w || box[0] != 0 || box[2] != dst_w;
    const int need_v = dst_h != src_h || box[1] != 0 || box[3] != dst_h;

    // Rows of the source the vertical pass reads: bounds of its first and last output.
    const double vscale = (double)(box[3] - box[1]) / dst_h;
    const double vfilter = vscale < 1.0 ? 1.0 : vscale;
    PilTaps first, last;
    pil_taps(&first, 0, src_h, box[1], vscale, vfilter, 1.0 / vfilter);
    pil_taps(&last, dst_h - 1, src_h, box[1], vscale, vfilter, 1.0 / vfilter);
    const int ybox_first = first.first;
    const int ybox_last = last.first + last.count;

    if (need_h && need_v) {
        pil_horizontal(tmp, dst_w, src, src_w, ybox_first, ybox_last - ybox_first, box[0], box[2]);
        pil_vertical(dst, dst_h, tmp, dst_w, src_h, ybox_first, box[1], box[3]);
    } else if (need_h) {
        // Vertical identity: its bounds cover every row, so the horizontal
        // pass over rows [ybox_first, ybox_last) is the whole output.
        pil_horizontal(dst, dst_w, src, src_w, ybox_first, ybox_last - ybox_first, box[0], box[2]);
    } else if (need_v) {
        pil_vertical(dst, dst_h, src, src_w, src_h, 0, box[1], box[3]);
    } else {
        memcpy(dst, src, (size_t)src_w * src_h * 3);
    }
    return 0;
}

void resize_pil_bilinear_rgb(uint8_t *dst, int dst_w, int dst_h, const uint8_t *src, int src_w,
                             int src_h, uint8_t *tmp) {
    // Image.resize without a box: box = (0, 0) + size. Sizes are the
    // caller's to check (>= 1), so this cannot fail.
    const float box[4] = {0.0f, 0.0f, (float)src_w, (float)src_h};
    (void)resize_pil_bilinear_rgb_box(dst, dst_w, dst_h, src, src_w, src_h, box, tmp, NULL);
}

void normalize_pad_image(float *out, const uint8_t *rgb, int h, int w, int size) {
    // Sam.preprocess: (x - pixel_mean) / pixel_std in float32, then F.pad
    // with zeros on the right and bottom (after normalisation).
    static const float mean[3] = {123.675f, 116.28f, 103.53f};
    static const float std[3] = {58.395f, 57.12f, 57.375f};
    const size_t plane = (size_t)size * size;
    for (int c = 0; c < 3; c++) {
        float *o = out + c * plane;
        for (int y = 0; y < size; y++) {
            float *row = o + (size_t)y * size;
            if (y >= h) {
                memset(row, 0, sizeof(float) * (size_t)size);
                continue;
            }
            const uint8_t *in = rgb + (size_t)y * w * 3 + c;
            for (int x = 0; x < w; x++) row[x] = ((float)in[(size_t)x * 3] - mean[c]) / std[c];
            for (int x = w; x < size; x++) row[x] = 0.0f;
        }
    }
}

void transform_coords(float *xy_out, const float *xy_in, int n, int old_h, int old_w, int new_h,
                      int new_w) {
    // apply_coords works in float64 numpy: x * (new_w / old_w); the predictor
    // then converts to float32 (torch.as_tensor(..., dtype=torch.float)).
    const double sx = (double)new_w / old_w, sy = (double)new_h / old_h;
    for (int i = 0; i < n; i++) {
        xy_out[2 * i + 0] = (float)((double)xy_in[2 * i + 0] * sx);
        xy_out[2 * i + 1] = (float)((double)xy_in[2 * i + 1] * sy);
    }
}

// ---------------------------------------------------------------------------
// F.interpolate(mode="bilinear", align_corners=False) as PyTorch 1.13's CPU
// kernels compute it (aten/src/ATen/native/UpSample.h, cpu/UpSampleKernel.cpp).
//
// Per axis (compute_source_index_and_lambda): scale = (float)in / out;
// when in == out the axis is copied (index d, lambdas 1 and 0); otherwise
// src = scale * (d + 0.5) - 0.5 evaluated in double, clamped at 0 below,
// i0 = (int64)src, i1 = i0 + 1 unless i0 is the last index, lambda1 =
// (float)(src - i0), lambda0 = 1 - lambda1 in float. (Checked against the
// installed torch: rounding src to float first differs on ~1 in 3 outputs.)
//
// The combination depends on which kernel PyTorch picks:
//  - NCHW (upsample_generic_Nd_kernel_impl, any tensor with C > 1): the
//    separable form t = x0 * w0 + x1 * w1 along W, then the same along H, all
//    in float; the AVX2 build contracts `a * b + c * d` into fma(a, b, c * d),
//    reproduced here with explicit fmaf.
//  - channels-last (cpu_upsample_linear_channels_last, taken whenever the
//    input is channels-last contiguous, as a contiguous (B, 1, H, W) tensor
//    is): weights w_ij = h_i * w_j in float, the four products summed in
//    double (the CPU accumulation type of float), rounded once.
// Both were checked bit for bit against torch 1.13 (tests/transforms.test.mjs).
// ---------------------------------------------------------------------------

// fmaf, correctly rounded. WebAssembly has no fused multiply-add, so
// Emscripten's libm emulates it in a function call per element; inlining
// musl's fast path (the exact float product plus c, rounded once in double,
// is the correctly rounded result unless it lands on a float halfway point
// inexactly) keeps the upsampling bit-exact and ~5x faster there. Natively
// fmaf is the hardware instruction (or glibc's exact fallback).
static inline float fmaf_exact(float a, float b, float c) {
#if defined(__EMSCRIPTEN__)
    const double xy = (double)a * b, r = xy + c;
    uint64_t bits;
    memcpy(&bits, &r, sizeof bits);
    if ((bits & 0x1fffffff) != 0x10000000 || (bits >> 52 & 0x7ff) == 0x7ff ||
        (r - xy == c && r - c == xy))
        return (float)r;
#endif
    return fmaf(a, b, c);
}

typedef struct LerpAxis {
    int32_t *i0, *i1;
    float *l0, *l1;
} LerpAxis;

// Entry d of the resize of in_size samples to out_size.
static void lerp_entry(int in_size, int out_size, int d, int32_t *i0, int32_t *i1, float *l0,
                       float *l1) {
    if (in_size == out_size) {
        *i0 = *i1 = d;
        *l0 = 1.0f;
        *l1 = 0.0f;
        return;
    }
    const float scale = (float)in_size / (float)out_size;
    double src = (double)scale * (d + 0.5) - 0.5;
    if (src < 0) src = 0;
    const int i = (int)src;
    *i0 = i;
    *i1 = i < in_size - 1 ? i + 1 : i;
    *l1 = (float)(src - i);
    *l0 = 1.0f - *l1;
}

// Entries [0, count) of the resize of in_size samples to out_size.
static void lerp_axis(LerpAxis *a, int in_size, int out_size, int count) {
    for (int d = 0; d < count; d++)
        lerp_entry(in_size, out_size, d, &a->i0[d], &a->i1[d], &a->l0[d], &a->l1[d]);
}

// Carves the per-axis tables out of the float scratch. The memory is
// allocated storage, so the int32 tables take their own effective type.
static float *lerp_axis_alloc(LerpAxis *a, float *scratch, int n) {
    a->i0 = (int32_t *)scratch;
    a->i1 = (int32_t *)(scratch + n);
    a->l0 = scratch + 2 * (size_t)n;
    a->l1 = scratch + 3 * (size_t)n;
    return scratch + 4 * (size_t)n;
}

// out (out_rows, out_w) = rows [0, out_rows) and columns [0, out_w) of the
// bilinear resize of in (in_h, in_w, row stride in_w) to (full_h, full_w).
// Computing only the kept corner is exact: each output depends only on its
// own source index. scratch: bilinear_scratch_floats(in_h, out_rows, out_w).
static size_t bilinear_scratch_floats(int in_h, int out_rows, int out_w) {
    // axis tables (4 entries per output row and column) + the horizontal
    // pass of the source rows (NCHW form)
    return 4 * ((size_t)out_rows + out_w) + (size_t)in_h * out_w;
}

static void bilinear_torch(float *out, int out_rows, int out_w, const float *in, int in_h,
                           int in_w, int full_h, int full_w, int channels_last, float *scratch) {
    LerpAxis ax, ay;
    float *rest = lerp_axis_alloc(&ay, scratch, out_rows);
    float *horizontal = lerp_axis_alloc(&ax, rest, out_w);
    lerp_axis(&ay, in_h, full_h, out_rows);
    lerp_axis(&ax, in_w, full_w, out_w);
    if (channels_last) {
        for (int y = 0; y < out_rows; y++) {
            const float *r0 = in + (size_t)ay.i0[y] * in_w;
            const float *r1 = in + (size_t)ay.i1[y] * in_w;
            const float h0 = ay.l0[y], h1 = ay.l1[y];
            float *o = out + (size_t)y * out_w;
            for (int x = 0; x < out_w; x++) {
                const int32_t j0 = ax.i0[x], j1 = ax.i1[x];
                const float w00 = h0 * ax.l0[x], w01 = h0 * ax.l1[x];
                const float w10 = h1 * ax.l0[x], w11 = h1 * ax.l1[x];
                double s = (double)r0[j0] * w00;
                s += (double)r0[j1] * w01;
                s += (double)r1[j0] * w10;
                s += (double)r1[j1] * w11;
                o[x] = (float)s;
            }
        }
        return;
    }
    // NCHW: t = fma(x0, w0, x1 * w1) along W, then the same along H. The
    // W pass of a source row is the same for every output row that reads
    // it, so it is done once per source row (the same operations on the
    // same values: bit for bit the row-by-row result) and reused by the ~4
    // output rows of a 4x upsampling.
    const int row_lo = ay.i0[0], row_hi = ay.i1[out_rows - 1];
    for (int r = row_lo; r <= row_hi; r++) {
        const float *src = in + (size_t)r * in_w;
        float *t = horizontal + (size_t)r * out_w;
        for (int x = 0; x < out_w; x++) {
            const float p = src[ax.i1[x]] * ax.l1[x];
            t[x] = fmaf_exact(src[ax.i0[x]], ax.l0[x], p);
        }
    }
    for (int y = 0; y < out_rows; y++) {
        const float *t0 = horizontal + (size_t)ay.i0[y] * out_w;
        const float *t1 = horizontal + (size_t)ay.i1[y] * out_w;
        const float h0 = ay.l0[y], h1 = ay.l1[y];
        float *o = out + (size_t)y * out_w;
        for (int x = 0; x < out_w; x++) o[x] = fmaf_exact(t0[x], h0, t1[x] * h1);
    }
}

size_t postprocess_scratch_floats(int low_res, int input_size, int h, int w) {
    // The cropped first upsample (at most input_size^2) + the larger of the
    // two passes' scratch.
    const size_t first = bilinear_scratch_floats(low_res, input_size, input_size);
    const size_t second = bilinear_scratch_floats(input_size, h, w);
    return (size_t)input_size * input_size + (first > second ? first : second);
}

void postprocess_logits_torch(float *out, const float *low_res, int lr, int input_size,
                              int resized_h, int resized_w, int h, int w, int channels,
                              float *scratch) {
    // Sam.postprocess_masks: interpolate to (img_size, img_size), crop
    // [:resized_h, :resized_w], interpolate to (h, w).
    // A same-size bilinear resize is the identity on finite values (source
    // index = destination index, weights 1 and 0), so when the original
    // image is the resized one (longest side == img_size) the first pass
    // writes the output directly.
    const int identity = resized_h == h && resized_w == w;
    float *crop = identity ? out : scratch;
    float *tables = identity ? scratch : scratch + (size_t)input_size * input_size;
    // First call: a contiguous (B, C, lr, lr) tensor is channels-last
    // contiguous only when C == 1.
    bilinear_torch(crop, resized_h, resized_w, low_res, lr, lr, input_size, input_size,
                   channels == 1, tables);
    if (identity) return;
    // Second call on the cropped view (row stride input_size): channels-last
    // contiguous only when C == 1 and the crop keeps whole rows.
    bilinear_torch(out, h, w, crop, resized_h, resized_w, h, w,
                   channels == 1 && resized_w == input_size, tables);
}

// ---------------------------------------------------------------------------
// Thresholded post-processing without the exact arithmetic on every pixel.
//
// The masks (logit > 0) and the stability counts (logit > +-offset) only need
// the side of each threshold the exact logit falls on. The resampling is
// computed in plain float (separable, no FMA: vectorisable, and cheap in
// WASM, which has no FMA), then every pixel whose value lies within the
// error bound of a threshold is recomputed with the exact kernels above.
//
// Error bound: every intermediate value is a convex combination of the
// low-res logits, so |value| <= M = max |low_res| (times 1 + a few ulp).
// One pass (horizontal then vertical) differs from the exact form by at most
// 3 roundings of size u * M in each direction (u = 2^-24) and carries its
// input error through weights summing to 1: under 8 u M per pass, 16 u M for
// the two passes of postprocess_masks. The margin 2^-18 M = 64 u M leaves a
// factor 4; the absolute term covers underflow of tiny products.
static float postprocess_margin(const float *low_res, int lr) {
    float m = 0.0f;
    for (size_t i = 0; i < (size_t)lr * lr; i++) {
        const float a = fabsf(low_res[i]);
        m = a > m ? a : m;
    }
    return m * 0x1p-18f + 0x1p-100f;
}

// Plain-float separable bilinear (same index and weight tables as
// bilinear_torch); scratch: bilinear_scratch_floats(in_h, out_rows, out_w).
SAM_MULTIVERSION static void bilinear_float(float *out, int out_rows, int out_w, const float *in, int in_h,
                           int in_w, int full_h, int full_w, float *scratch) {
    LerpAxis ax, ay;
    float *rest = lerp_axis_alloc(&ay, scratch, out_rows);
    float *horizontal = lerp_axis_alloc(&ax, rest, out_w);
    lerp_axis(&ay, in_h, full_h, out_rows);
    lerp_axis(&ax, in_w, full_w, out_w);
    const int row_lo = ay.i0[0], row_hi = ay.i1[out_rows - 1];
    for (int r = row_lo; r <= row_hi; r++) {
        const float *src = in + (size_t)r * in_w;
        float *t = horizontal + (size_t)r * out_w;
        for (int x = 0; x < out_w; x++) t[x] = src[ax.i0[x]] * ax.l0[x] + src[ax.i1[x]] * ax.l1[x];
    }
    for (int y = 0; y < out_rows; y++) {
        const float *t0 = horizontal + (size_t)ay.i0[y] * out_w;
        const float *t1 = horizontal + (size_t)ay.i1[y] * out_w;
        const float h0 = ay.l0[y], h1 = ay.l1[y];
        float *o = out + (size_t)y * out_w;
        for (int x = 0; x < out_w; x++) o[x] = t0[x] * h0 + t1[x] * h1;
    }
}

// One output pixel of bilinear_torch, exactly. `at(ctx, row, col)` reads the
// input (so that the second pass can take its inputs from the exact first).
typedef float (*PixelReader)(const void *ctx, int row, int col);

static float bilinear_torch_pixel(PixelReader at, const void *ctx, int in_h, int in_w, int full_h,
                                  int full_w, int channels_last, int y, int x) {
    int32_t i0, i1, j0, j1;
    float h0, h1, w0, w1;
    lerp_entry(in_h, full_h, y, &i0, &i1, &h0, &h1);
    lerp_entry(in_w, full_w, x, &j0, &j1, &w0, &w1);
    const float a = at(ctx, i0, j0), b = at(ctx, i0, j1), c = at(ctx, i1, j0), d = at(ctx, i1, j1);
    if (channels_last) {
        double s = (double)a * (h0 * w0);
        s += (double)b * (h0 * w1);
        s += (double)c * (h1 * w0);
        s += (double)d * (h1 * w1);
        return (float)s;
    }
    const float t0 = fmaf_exact(a, w0, b * w1);
    const float t1 = fmaf_exact(c, w0, d * w1);
    return fmaf_exact(t0, h0, t1 * h1);
}

typedef struct FirstPass {
    const float *low_res;
    int lr, input_size, channels_last;
} FirstPass;

static float read_low_res(const void *ctx, int row, int col) {
    const FirstPass *f = ctx;
    return f->low_res[(size_t)row * f->lr + col];
}

static float read_first_pass(const void *ctx, int row, int col) {
    const FirstPass *f = ctx;
    return bilinear_torch_pixel(read_low_res, f, f->lr, f->lr, f->input_size, f->input_size,
                                f->channels_last, row, col);
}

size_t postprocess_mask_scratch_floats(int low_res, int input_size, int h, int w) {
    return (size_t)h * w + postprocess_scratch_floats(low_res, input_size, h, w);
}

SAM_MULTIVERSION void postprocess_mask_torch(uint8_t *mask, size_t *above_hi, size_t *above_lo, float hi, float lo,
                            const float *low_res, int lr, int input_size, int resized_h,
                            int resized_w, int h, int w, int channels, float *scratch) {
    const int identity = resized_h == h && resized_w == w;
    float *logits = scratch;
    float *crop = identity ? logits : scratch + (size_t)h * w;
    float *tables = crop + (identity ? 0 : (size_t)input_size * input_size);
    if (identity) tables = scratch + (size_t)h * w;
    bilinear_float(crop, resized_h, resized_w, low_res, lr, lr, input_size, input_size, tables);
    if (!identity) bilinear_float(logits, h, w, crop, resized_h, resized_w, h, w, tables);

    const float margin = postprocess_margin(low_res, lr);
    const FirstPass first = {low_res, lr, input_size, channels == 1};
    const int second_channels_last = channels == 1 && resized_w == input_size;
    size_t n_hi = 0, n_lo = 0;
    for (int y = 0; y < h; y++) {
        const float *row = logits + (size_t)y * w;
        uint8_t *m = mask + (size_t)y * w;
        // Branch-free (vectorisable) pass; the rare pixels near a threshold
        // are then redone exactly and their contributions replaced.
        int near = 0;
        for (int x = 0; x < w; x++) {
            const float v = row[x];
            m[x] = v > 0.0f;
            n_hi += v > hi;
            n_lo += v > lo;
            near |= (fabsf(v) <= margin) | (fabsf(v - hi) <= margin) | (fabsf(v - lo) <= margin);
        }
        if (!near) continue;
        for (int x = 0; x < w; x++) {
            const float v = row[x];
            if (!(fabsf(v) <= margin || fabsf(v - hi) <= margin || fabsf(v - lo) <= margin))
                continue;
            const float exact = identity ? read_first_pass(&first, y, x)
                                         : bilinear_torch_pixel(read_first_pass, &first, resized_h,
                                                                resized_w, h, w,
                                                                second_channels_last, y, x);
            m[x] = exact > 0.0f;
            n_hi += (size_t)(exact > hi) - (size_t)(v > hi);
            n_lo += (size_t)(exact > lo) - (size_t)(v > lo);
        }
    }
    *above_hi = n_hi;
    *above_lo = n_lo;
}

float stability_score(const float *logits, size_t n, float threshold, float offset) {
    // amg.calculate_stability_score: masks > (threshold + offset) with the
    // Python sum in double, cast to float32 by the tensor comparison; the
    // counts divided as float32 (int / int true division). Equal to 0/0 = NaN when nothing
    // exceeds threshold - offset, as the official code; the generator's
    // filter (score >= thresh) drops such a mask either way.
    const float hi = (float)((double)threshold + (double)offset);
    const float lo = (float)((double)threshold - (double)offset);
    size_t inter = 0, uni = 0;
    for (size_t i = 0; i < n; i++) {
        inter += logits[i] > hi;
        uni += logits[i] > lo;
    }
    return (float)inter / (float)uni;
}
