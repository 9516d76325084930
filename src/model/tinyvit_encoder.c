// MobileSAM's TinyViT image encoder, mirroring ChaoningZhang/MobileSAM
// mobile_sam/modeling/tiny_vit_sam.py (Conv2d_BN, PatchEmbed, MBConv,
// PatchMerging, ConvLayer, Mlp, Attention, TinyViTBlock, BasicLayer, TinyViT)
// as built by build_sam.py build_sam_vit_t, in eval mode.
//
// Every activation is token-major: x is (T, C) with T = R * R tokens in (h, w)
// row-major order, i.e. NHWC. The official code switches between NCHW (convs)
// and (B, L, C) tokens; the values are the same, only the memory order
// differs. In NHWC a 1x1 conv is a Linear over the tokens (linear_forward with
// the (out, in, 1, 1) weight seen as (out, in)), a depthwise 3x3 conv is a
// loop over taps that vectorises across channels, and a dense 3x3 conv is an
// im2col GEMM over chunks of output tokens.
//
// BatchNorm: every Conv2d_BN arrives folded (tinyvit_fold_batchnorm, called
// by the loader), so a Conv2d_BN is a conv with bias here.
//
// All scratch comes from the arena, laid out by tinyvit_plan(), the single
// source of truth for tinyvit_encoder_scratch_floats.
//
// Padding: the zero rows under a landscape image (columns right of a portrait
// one) stay equal to each other through the layers, a band that narrows a
// little at each convolution and attention layer (repeated_band.h). Each
// layer computes the tokens outside its band and copies the others: for a
// 3:2 photo a third of the stem and MBConv stage and a fifth of stage 1 (10%
// of the encoder), bitwise the same embedding (tests/c/test_tinyvit_band.c).
//
// Threads: the GEMMs split their blocks over the pool bound to the caller
// (thread_pool_current); window attention runs one task per window and the
// depthwise convolutions one per band of output rows. No output element
// depends on the thread count.
#include "tinyvit_encoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/thread_pool.h"
#include "../kernels/kernels.h"
#include "repeated_band.h"

#define TINYVIT_LN_EPS 1e-5f  // nn.LayerNorm default in Attention.norm and Mlp.norm
#define TINYVIT_BN_EPS 1e-5   // nn.BatchNorm2d default
#define NECK_LN_EPS 1e-6f     // LayerNorm2d(256) in TinyViT.neck, as SAM's
// The stem's dense 3x3 convs build im2col rows for this many output tokens
// at a time, so the column buffer stays small (1024 x 288 floats). The
// neck's stride-1 3x3 conv runs by Winograd F(4x4, 3x3) (conv3x3_winograd).
#define CONV_CHUNK 1024
// MBConv runs over bands of this many image rows, so its 4x-wide hidden
// activations stay small (band + 2 halo rows) instead of 2 x (R*R, hidden).
#define MBCONV_BAND 8

// ---------------------------------------------------------------------------
// BatchNorm folding

// y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta
//   = conv_{w * s}(x) + (beta - mean * s),  s = gamma / sqrt(var + eps).
// Computed in double and rounded once per value.
static void fold_conv_bn(ConvBnWeights *cb, int out, int per_out) {
    float *w = (float *)cb->weight;  // the model owns the buffer (see tinyvit_encoder.h)
    float *b = (float *)cb->bias;    // bn.bias slot: beta, becomes the folded bias
    for (int o = 0; o < out; o++) {
        const double s = (double)cb->bn_weight[o] / sqrt((double)cb->bn_var[o] + TINYVIT_BN_EPS);
        for (int i = 0; i < per_out; i++)
            w[(size_t)o * per_out + i] = (float)((double)w[(size_t)o * per_out + i] * s);
        b[o] = (float)((double)b[o] - (double)cb->bn_mean[o] * s);
    }
}

static void fold_conv3(TinyVitConv3Weights *m, int in, int hidden, int out) {
    fold_conv_bn(&m->conv1, hidden, in);
    fold_conv_bn(&m->conv2, hidden, 9);
    fold_conv_bn(&m->conv3, out, hidden);
}

void tinyvit_fold_batchnorm(TinyVitEncoderWeights *w, const SamConfig *c) {
    const int *dims = c->tv_dims;
    fold_conv_bn(&w->stem1, dims[0] / 2, 3 * 9);
    fold_conv_bn(&w->stem2, dims[0], dims[0] / 2 * 9);
    for (int i = 0; i < c->tv_depths[0]; i++)
        fold_conv3(&w->mbconv[i], dims[0], c->tv_mbconv_hidden, dims[0]);
    for (int s = 0; s + 1 < TINYVIT_STAGES; s++)
        fold_conv3(&w->merge[s], dims[s], dims[s + 1], dims[s + 1]);
    for (int s = 1; s < TINYVIT_STAGES; s++)
        for (int i = 0; i < c->tv_depths[s]; i++) fold_conv_bn(&w->blocks[s][i].local_conv, dims[s], 9);
}

// ---------------------------------------------------------------------------
// Scratch plan

typedef struct TinyVitPlan {
    size_t x;        // (T, C) the running activation, largest over the stages
    size_t a;        // (T, max) first work buffer: stem conv1 output, MBConv hidden, norms, ...
    size_t b;        // (T, max) second work buffer: depthwise outputs, qkv, MLP hidden, ...
    size_t band;     // ((MBCONV_BAND + 2) * R0, hidden) MBConv hidden rows of one band
    size_t cols;     // stem: im2col rows (CONV_CHUNK, 9 Cin), reordered weight; neck: Winograd
    size_t dw;       // (9, C) depthwise weights, tap-major
    size_t pad_qkv;  // (3C) q, k, v of a zero-padded token
    // Per thread:
    size_t win_qkv;  // (ws^2, 3C) one window's q, k, v
    size_t win_out;  // (ws^2, C) one window's attention output
    size_t scores;   // (ws^2, ws^2) one head's scores
    size_t bias;     // (heads, ws^2, ws^2) attention biases expanded (the official `ab`)
} TinyVitPlan;

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }

static int tinyvit_check_config(const SamConfig *c, SamError *err) {
    if (c->encoder_kind != SAM_ENCODER_TINYVIT)
        return sam_error(err, "tinyvit_encoder: config is not a TinyViT encoder (kind %d)",
                         (int)c->encoder_kind);
    if (c->tv_dims[0] <= 0 || c->tv_dims[0] % 2 || c->tv_mbconv_hidden <= 0 || c->out_chans <= 0)
        return sam_error(err, "tinyvit_encoder: invalid stem/MBConv widths");
    for (int s = 0; s < TINYVIT_STAGES; s++) {
        if (c->tv_dims[s] <= 0 || c->tv_depths[s] <= 0 || c->tv_depths[s] > TINYVIT_MAX_DEPTH ||
            c->tv_res[s] <= 0)
            return sam_error(err, "tinyvit_encoder: stage %d has an invalid width, depth or size", s);
        if (s > 0 && (c->tv_heads[s] <= 0 || c->tv_dims[s] % c->tv_heads[s] ||
                      c->tv_windows[s] <= 0 || c->tv_mlp[s] <= 0))
            return sam_error(err, "tinyvit_encoder: stage %d has invalid heads, window or MLP width", s);
        if (s + 1 < TINYVIT_STAGES && (c->tv_merge_stride[s] < 1 ||
                                       c->tv_res[s + 1] != (c->tv_res[s] - 1) / c->tv_merge_stride[s] + 1))
            return sam_error(err, "tinyvit_encoder: stage %d size disagrees with the merge stride", s + 1);
    }
    if (c->tv_res[0] * 4 != c->img_size || c->grid != c->tv_res[TINYVIT_STAGES - 1])
        return sam_error(err, "tinyvit_encoder: img_size %d / grid %d disagree with the stages",
                         c->img_size, c->grid);
    return 0;
}

static void tinyvit_plan(const SamConfig *c, TinyVitPlan *p) {
    memset(p, 0, sizeof *p);
    const size_t D = (size_t)c->out_chans, C0 = (size_t)c->tv_dims[0];
    const size_t R0 = (size_t)c->tv_res[0], T0 = R0 * R0, hid = (size_t)c->tv_mbconv_hidden;
    // Stem: conv1 to (2 R0)^2 x C0/2 in `a`, conv2 to T0 x C0 in x. MBConv: one band of
    // hidden rows with its halo in `band`, the band's depthwise output in `b`.
    const size_t band_rows = (size_t)(MBCONV_BAND < c->tv_res[0] ? MBCONV_BAND : c->tv_res[0]);
    p->a = 4 * T0 * (C0 / 2);
    p->band = (band_rows + 2) * R0 * hid;
    p->b = band_rows * R0 * hid;
    // The stem: im2col rows, then conv2's reordered weight (C0, 9 * C0 / 2).
    p->cols = (size_t)CONV_CHUNK * max_size(27, 9 * (C0 / 2)) + C0 * 9 * (C0 / 2);
    p->cols = max_size(p->cols, conv3x3_winograd_scratch_floats(c->grid, c->grid, (int)D, (int)D));
    p->dw = 9 * hid;
    for (int s = 0; s < TINYVIT_STAGES; s++) {
        const size_t T = (size_t)c->tv_res[s] * c->tv_res[s], C = (size_t)c->tv_dims[s];
        p->x = max_size(p->x, T * C);
        if (s + 1 < TINYVIT_STAGES) {  // patch merging: conv1 at this size, conv2 at the next
            const size_t Cn = (size_t)c->tv_dims[s + 1];
            const size_t Tn = (size_t)c->tv_res[s + 1] * c->tv_res[s + 1];
            p->a = max_size(p->a, T * Cn);
            p->b = max_size(p->b, Tn * Cn);
            p->dw = max_size(p->dw, 9 * Cn);
        }
        if (s == 0) continue;
        const size_t N = (size_t)c->tv_windows[s] * c->tv_windows[s];
        p->a = max_size(p->a, T * C);
        p->b = max_size(p->b, T * max_size(3 * C, (size_t)c->tv_mlp[s]));
        p->dw = max_size(p->dw, 9 * C);
        p->pad_qkv = max_size(p->pad_qkv, 3 * C);
        p->win_qkv = max_size(p->win_qkv, N * 3 * C);
        p->win_out = max_size(p->win_out, N * C);
        p->scores = max_size(p->scores, N * N);
        p->bias = max_size(p->bias, (size_t)c->tv_heads[s] * N * N);
    }
    const size_t T3 = (size_t)c->grid * c->grid;  // neck: a and b hold (T3, D)
    p->a = max_size(p->a, T3 * D);
    p->b = max_size(p->b, T3 * D);
}

// Window attention scratch of one thread: win_qkv, win_out, scores.
static size_t per_thread_floats(const TinyVitPlan *p) {
    return arena_rounded(p->win_qkv) + arena_rounded(p->win_out) + arena_rounded(p->scores);
}

size_t tinyvit_encoder_scratch_floats(const SamConfig *c, int threads) {
    if (tinyvit_check_config(c, NULL) != 0) return 0;
    if (threads < 1) threads = 1;
    TinyVitPlan p;
    tinyvit_plan(c, &p);
    return arena_rounded(p.x) + arena_rounded(p.a) + arena_rounded(p.b) + arena_rounded(p.band) +
           arena_rounded(p.cols) + arena_rounded(p.dw) + arena_rounded(p.pad_qkv) +
           arena_rounded(p.bias) + arena_rounded((size_t)threads * per_thread_floats(&p));
}

typedef struct TinyVitBuffers {
    float *x, *a, *b, *band, *cols, *dw, *pad_qkv, *bias;
    // Window attention scratch of thread t at win + t * win_stride: win_qkv,
    // then win_out at win_out_at, scores at scores_at (per_thread_floats).
    float *win;
    size_t win_stride, win_out_at, scores_at;
} TinyVitBuffers;

// ---------------------------------------------------------------------------
// Layers

// Dense Conv2d 3x3, padding 1, stride `stride` (Conv2d_BN in PatchEmbed),
// then GELU if gelu. The input element (c, y, x) is at
// in[c * sc + y * sy + x * sx], so the same code reads the channel-major
// image (stem) and token-major activations. out is (Ho * Wo, cout).
// im2col rows are ordered (ci, ky, kx) as the weight (cout, cin, 3, 3); for
// token-major input (sc == 1) they are ordered (ky, kx, ci) instead, so each
// tap is one contiguous copy of the pixel's channels, and the weight is
// reordered to match into wperm (cout * 9 * cin floats). `repeated` is the
// output's band: the tokens it skips are copied, not computed.
static void conv3x3_forward(float *out, const float *in, int cin, int h, int w, size_t sc,
                            size_t sy, size_t sx, int stride, const float *weight,
                            const float *bias, int cout, int gelu, float *cols, float *wperm,
                            RepeatedBand repeated) {
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1, K = cin * 9;
    const int tap_major = sc == 1;
    if (tap_major) {
        for (int co = 0; co < cout; co++)
            for (int ci = 0; ci < cin; ci++)
                for (int k = 0; k < 9; k++)
                    wperm[(size_t)co * K + (size_t)k * cin + ci] = weight[((size_t)co * cin + ci) * 9 + k];
        weight = wperm;
    }
    size_t run0, run1;
    for (int state = 0; repeated_band_next_run(repeated, wo, 0, ho, &state, &run0, &run1);) {
        for (size_t t0 = run0; t0 < run1; t0 += CONV_CHUNK) {
            const int rows = run1 - t0 < CONV_CHUNK ? (int)(run1 - t0) : CONV_CHUNK;
            for (int r = 0; r < rows; r++) {
                const int oy = (int)((t0 + r) / wo), ox = (int)((t0 + r) % wo);
                float *row = cols + (size_t)r * K;
                const int iy0 = oy * stride - 1, ix0 = ox * stride - 1;
                if (!tap_major && iy0 >= 0 && iy0 + 2 < h && ix0 >= 0 && ix0 + 2 < w) {
                    // Inside the image (all but the border pixels): no bounds
                    // checks, the 3 x 3 taps of each channel in straight-line code.
                    const float *base = in + (size_t)iy0 * sy + (size_t)ix0 * sx;
                    for (int ci = 0; ci < cin; ci++, row += 9, base += sc)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++)
                                row[ky * 3 + kx] = base[(size_t)ky * sy + (size_t)kx * sx];
                    continue;
                }
                for (int ky = 0; ky < 3; ky++) {
                    const int iy = oy * stride + ky - 1;
                    for (int kx = 0; kx < 3; kx++) {
                        const int ix = ox * stride + kx - 1;
                        const int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                        const float *src = inside ? in + (size_t)iy * sy + (size_t)ix * sx : NULL;
                        if (tap_major) {
                            // A plain loop, not memcpy: in WASM a copy of unknown
                            // length is a call out of the module (memory.copy),
                            // ~20 ns each here, 9 per output pixel.
                            float *dst = row + (ky * 3 + kx) * cin;
                            for (int ci = 0; ci < cin; ci++) dst[ci] = inside ? src[ci] : 0.0f;
                            continue;
                        }
                        float *dst = row + ky * 3 + kx;
                        for (int ci = 0; ci < cin; ci++) dst[ci * 9] = inside ? src[(size_t)ci * sc] : 0.0f;
                    }
                }
            }
            linear_fused(out + t0 * cout, cols, weight, bias, rows, K, cout, 0, gelu);
        }
    }
    repeated_band_fill(out, 0, ho, wo, (size_t)cout, repeated);
}

// The (c, 1, 3, 3) depthwise weight laid out tap-major in wt (9, c), so the
// inner loops of depthwise3x3_rows run over contiguous channels.
static void depthwise_weights(float *restrict wt, const ConvBnWeights *cw, int c) {
    for (int ch = 0; ch < c; ch++)
        for (int k = 0; k < 9; k++) wt[(size_t)k * c + ch] = cw->weight[(size_t)ch * 9 + k];
}

// Depthwise Conv2d_BN 3x3, padding 1 (groups = channels) of an h x w image
// with c channels, token-major, for output rows [oy0, oy1), columns [ox0,
// ox1): out holds those rows ((oy1 - oy0) * wo, c); in holds input rows
// [in_row0, ...) (every row the outputs read must be there; rows outside
// [0, h) are the zero padding).
// wt from depthwise_weights. Each output starts from the bias plus the centre
// tap, which is always inside the image (input (oy * stride, ox * stride)).
// Not inlined: inlined into depthwise_row_task's loop over column spans, GCC
// no longer vectorised the 16 channel sums (native MobileSAM encoder 15%
// slower).
__attribute__((noinline)) static void depthwise3x3_rows(float *restrict out, const float *restrict in, int in_row0, int h,
                              int w, int c, int stride, int oy0, int oy1, int ox0, int ox1,
                              const float *restrict bias, const float *restrict wt) {
    // Channels in blocks of DW_BLOCK: one block's sums stay in registers
    // over all the taps (per tap and channel a load of o, w and x and a store
    // of o made the conv load/store-bound).
    enum { DW_BLOCK = 16 };
    const int wo = (w - 1) / stride + 1, blocks_end = c - c % DW_BLOCK;
    const float *restrict wc = wt + 4 * (size_t)c;  // tap (1, 1)
    for (int oy = oy0; oy < oy1; oy++) {
        for (int ox = ox0; ox < ox1; ox++) {
            float *restrict o = out + ((size_t)(oy - oy0) * wo + ox) * c;
            const float *restrict centre =
                in + ((size_t)(oy * stride - in_row0) * w + (size_t)ox * stride) * c;
            // The other taps inside the image, in (ky, kx) order.
            const float *src[8], *wk[8];
            int taps = 0;
            for (int ky = 0; ky < 3; ky++) {
                const int iy = oy * stride + ky - 1;
                if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < 3; kx++) {
                    const int ix = ox * stride + kx - 1;
                    if (ix < 0 || ix >= w || (ky == 1 && kx == 1)) continue;
                    src[taps] = in + ((size_t)(iy - in_row0) * w + ix) * c;
                    wk[taps++] = wt + (size_t)(ky * 3 + kx) * c;
                }
            }
            for (int ch0 = 0; ch0 < blocks_end; ch0 += DW_BLOCK) {
                float acc[DW_BLOCK];
                for (int i = 0; i < DW_BLOCK; i++)
                    acc[i] = bias[ch0 + i] + wc[ch0 + i] * centre[ch0 + i];
                for (int t = 0; t < taps; t++)
                    for (int i = 0; i < DW_BLOCK; i++) acc[i] += wk[t][ch0 + i] * src[t][ch0 + i];
                for (int i = 0; i < DW_BLOCK; i++) o[ch0 + i] = acc[i];
            }
            for (int ch = blocks_end; ch < c; ch++) {
                float acc = bias[ch] + wc[ch] * centre[ch];
                for (int t = 0; t < taps; t++) acc += wk[t][ch] * src[t][ch];
                o[ch] = acc;
            }
        }
    }
}

// depthwise3x3_rows with one task per output row, on the pool bound to the
// caller (thread_pool_current), over the columns a band of repeated columns
// does not skip (all of them for a band of rows: the caller picks the rows).
// gelu: GELU on each output row as soon as it is computed (in cache).
typedef struct DepthwiseJob {
    float *out;
    const float *in, *bias, *wt;
    int in_row0, h, w, c, stride, oy0, gelu;
    RepeatedBand band;
} DepthwiseJob;

static void depthwise_row_task(void *ctx, int task, int thread) {
    const DepthwiseJob *j = ctx;
    const int wo = (j->w - 1) / j->stride + 1, oy = j->oy0 + task;
    float *out = j->out + (size_t)task * wo * j->c;
    int span[2][2];
    const int spans = repeated_band_column_spans(j->band, wo, span);
    for (int s = 0; s < spans; s++) {
        depthwise3x3_rows(out, j->in, j->in_row0, j->h, j->w, j->c, j->stride, oy, oy + 1,
                          span[s][0], span[s][1], j->bias, j->wt);
        if (j->gelu)  // inside a task: runs serially
            gelu_inplace(out + (size_t)span[s][0] * j->c, (size_t)(span[s][1] - span[s][0]) * j->c);
    }
}

static void depthwise3x3_rows_parallel(float *out, const float *in, int in_row0, int h, int w,
                                       int c, int stride, int oy0, int oy1, const float *bias,
                                       const float *wt, int gelu, RepeatedBand band) {
    DepthwiseJob j = {.out = out, .in = in, .bias = bias, .wt = wt, .in_row0 = in_row0, .h = h,
                      .w = w, .c = c, .stride = stride, .oy0 = oy0, .gelu = gelu, .band = band};
    thread_pool_run(thread_pool_current(), oy1 - oy0, depthwise_row_task, &j);
}

// The whole image: out is (ho * wo, c), in is (h * w, c). `repeated` is the
// output's band (the caller fills what it skips).
static void depthwise3x3_forward(float *out, const float *in, int h, int w, int c, int stride,
                                 const ConvBnWeights *cw, int gelu, float *wt,
                                 RepeatedBand repeated) {
    const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
    depthwise_weights(wt, cw, c);
    int span[2][2];
    const int spans = repeated_band_row_spans(repeated, ho, span);
    for (int s = 0; s < spans; s++)
        depthwise3x3_rows_parallel(out + (size_t)span[s][0] * wo * c, in, 0, h, w, c, stride,
                                   span[s][0], span[s][1], cw->bias, wt, gelu, repeated);
}

// Per-token layers on the tokens a band does not skip, of a grid of
// `rows` rows of `cols` tokens; x has k floats a token, y n.
static void linear_band(float *y, const float *x, const float *weight, const float *bias,
                        int rows, int cols, int k, int n, int accumulate, int gelu,
                        RepeatedBand repeated) {
    size_t t0, t1;
    for (int state = 0; repeated_band_next_run(repeated, cols, 0, rows, &state, &t0, &t1);)
        linear_fused(y + t0 * n, x + t0 * k, weight, bias, (int)(t1 - t0), k, n, accumulate, gelu);
}

static void layernorm_band(float *y, const float *x, const NormWeights *norm, int rows, int cols,
                           int c, RepeatedBand repeated) {
    size_t t0, t1;
    for (int state = 0; repeated_band_next_run(repeated, cols, 0, rows, &state, &t0, &t1);)
        layernorm_rows(y + t0 * c, x + t0 * c, norm->weight, norm->bias, (int)(t1 - t0), c,
                       TINYVIT_LN_EPS);
}

// PatchEmbed.forward: Conv2d_BN(3, C0/2, 3, s2) -> GELU -> Conv2d_BN(C0/2, C0, 3, s2).
// image (3, S, S) channel-major; x (T0, C0) with T0 = (S/4)^2. `repeated`:
// the image's band; returns x's.
static RepeatedBand patch_embed_forward(float *x, const float *image,
                                        const TinyVitEncoderWeights *w, const SamConfig *c,
                                        const TinyVitBuffers *buf, RepeatedBand repeated) {
    const int S = c->img_size, C0 = c->tv_dims[0], S2 = (S - 1) / 2 + 1;
    float *h = buf->a;  // (S2 * S2, C0 / 2)
    // conv2's reordered weight after the im2col rows (tinyvit_plan).
    float *wperm = buf->cols + (size_t)CONV_CHUNK * (9 * (C0 / 2) > 27 ? 9 * (C0 / 2) : 27);
    const RepeatedBand band_h = repeated_band_after_conv3x3(repeated, S, 2);
    conv3x3_forward(h, image, 3, S, S, (size_t)S * S, (size_t)S, 1, 2, w->stem1.weight,
                    w->stem1.bias, C0 / 2, 1, buf->cols, NULL, band_h);
    const RepeatedBand band_x = repeated_band_after_conv3x3(band_h, S2, 2);
    conv3x3_forward(x, h, C0 / 2, S2, S2, 1, (size_t)S2 * (C0 / 2), (size_t)(C0 / 2), 2,
                    w->stem2.weight, w->stem2.bias, C0, 0, buf->cols, wperm, band_x);
    return band_x;
}

// MBConv.forward: conv1 (1x1) -> GELU -> conv2 (depthwise 3x3) -> GELU ->
// conv3 (1x1) -> + shortcut -> GELU. x is (R * R, C), updated in place, in
// bands of MBCONV_BAND rows. The hidden rows a band's depthwise conv reads
// (the band and one halo row each side) live in buf->band; each hidden row is
// computed once, from x rows no earlier band has overwritten yet (band k
// writes rows [y0, y1) after reading hidden rows up to y1, which come from x
// rows up to y1), and the two rows the next band shares are moved to the front.
// A band of repeated rows: only the output rows around it are computed (the
// rows after it start below the last write before it, at rows not touched
// yet), the rest copied at the end. A band of repeated columns: every row,
// the columns around the band (the hidden ones filled in before the
// depthwise conv reads them). `repeated`: x's band; returns the new one.
static RepeatedBand mbconv_forward(float *x, const TinyVitConv3Weights *m, int R, int C,
                                   int hidden, const TinyVitBuffers *buf, RepeatedBand repeated) {
    const size_t row = (size_t)R * hidden;  // floats per hidden image row
    float *band = buf->band;
    int have0 = 0, have1 = 0;  // hidden rows [have0, have1) are in band
    depthwise_weights(buf->dw, &m->conv2, hidden);
    // The shortcut keeps x's band; the depthwise conv narrows it.
    const RepeatedBand out = repeated_band_after_conv3x3(repeated, R, 1);
    const RepeatedBand hidden_band = repeated.columns ? repeated : repeated_band_none();
    int span[2][2];
    const int spans = repeated_band_row_spans(out, R, span);
    size_t t0, t1;
    for (int s = 0; s < spans; s++) {
        for (int y0 = span[s][0]; y0 < span[s][1]; y0 += MBCONV_BAND) {
            const int y1 = y0 + MBCONV_BAND < span[s][1] ? y0 + MBCONV_BAND : span[s][1];
            const int h0 = y0 > 0 ? y0 - 1 : 0, h1 = y1 < R ? y1 + 1 : R;
            if (have1 > h0) {  // keep rows [h0, have1) from the previous band
                memmove(band, band + (size_t)(h0 - have0) * row,
                        sizeof(float) * (size_t)(have1 - h0) * row);
            } else {
                have1 = h0;
            }
            have0 = h0;
            for (int st = 0; repeated_band_next_run(hidden_band, R, have1, h1, &st, &t0, &t1);)
                linear_fused(band + (t0 - (size_t)h0 * R) * hidden, x + t0 * C, m->conv1.weight,
                             m->conv1.bias, (int)(t1 - t0), C, hidden, 0, 1);
            repeated_band_fill(band + (size_t)(have1 - h0) * row, have1, h1, R, (size_t)hidden,
                               hidden_band);
            have1 = h1;
            float *d = buf->b;  // ((y1 - y0) * R, hidden)
            depthwise3x3_rows_parallel(d, band, h0, R, R, hidden, 1, y0, y1, m->conv2.bias,
                                       buf->dw, 1, out);
            // x rows [y0, y1) = GELU(x + conv3(d)): the shortcut is the GEMM's C.
            for (int st = 0; repeated_band_next_run(out, R, y0, y1, &st, &t0, &t1);)
                linear_fused(x + t0 * C, d + (t0 - (size_t)y0 * R) * hidden, m->conv3.weight,
                             m->conv3.bias, (int)(t1 - t0), hidden, C, 1, 1);
        }
    }
    repeated_band_fill(x, 0, R, R, (size_t)C, out);
    return out;
}

// PatchMerging.forward: conv1 (1x1, C -> Cn) -> GELU -> conv2 (depthwise 3x3,
// stride 2, or 1 for the widths 320/448/576) -> GELU -> conv3 (1x1). x goes
// from (R * R, C) to (Rn * Rn, Cn), in place. `repeated`: x's band; returns
// the new one.
static RepeatedBand patch_merging_forward(float *x, const TinyVitConv3Weights *m, int R, int C,
                                          int Cn, int stride, const TinyVitBuffers *buf,
                                          RepeatedBand repeated) {
    const int Rn = (R - 1) / stride + 1;
    linear_band(buf->a, x, m->conv1.weight, m->conv1.bias, R, R, C, Cn, 0, 1, repeated);
    repeated_band_fill(buf->a, 0, R, R, (size_t)Cn, repeated);  // the conv reads every token
    const RepeatedBand out = repeated_band_after_conv3x3(repeated, R, stride);
    depthwise3x3_forward(buf->b, buf->a, R, R, Cn, stride, &m->conv2, 1, buf->dw, out);
    linear_band(x, buf->b, m->conv3.weight, m->conv3.bias, Rn, Rn, Cn, Cn, 0, 0, out);
    repeated_band_fill(x, 0, Rn, Rn, (size_t)Cn, out);
    return out;
}

// Attention.forward over every window of the block. qkv is (T, 3C) for the
// real tokens (norm and qkv are per token, so they run once over the whole
// grid); out is (T, C) before proj. TinyViTBlock.forward pads the grid with
// zero tokens at the bottom/right to a multiple of ws BEFORE the attention's
// LayerNorm, so a padded token's q, k, v are qkv(norm.bias) (pad_qkv); they
// take part as keys and values and their outputs are cropped away.
// Heads: qkv.view(B, N, heads, -1).split([kd, kd, kd]) puts head h's q, k, v
// at channels h*3kd + [0, kd), [kd, 2kd), [2kd, 3kd); the output of head h
// goes to channels h*kd (transpose(1, 2).reshape). Scores are
// (q k^T) * kd^-0.5 + attention_biases[h, |dy| * ws + |dx|] (bias, expanded).
typedef struct WindowJob {
    float *out;
    const float *qkv, *pad_qkv;
    int R, C, heads, ws, nw;
    // Window rows (skip_columns: window columns) [skip_from, skip_to) are
    // not computed.
    int skip_from, skip_to, skip_columns;
    const TinyVitBuffers *buf;
} WindowJob;

static void window_attention_task(void *ctx, int task, int thread) {
    const WindowJob *j = ctx;
    const TinyVitBuffers *buf = j->buf;
    const int R = j->R, C = j->C, ws = j->ws, kd = C / j->heads, N = ws * ws, ld = 3 * C;
    const int across = j->skip_columns ? j->nw - (j->skip_to - j->skip_from) : j->nw;
    int wy = task / across, wx = task % across;
    int *skipped_axis = j->skip_columns ? &wx : &wy;
    if (*skipped_axis >= j->skip_from) *skipped_axis += j->skip_to - j->skip_from;
    float *win_qkv = buf->win + (size_t)thread * buf->win_stride;
    float *win_out = win_qkv + buf->win_out_at, *scores = win_qkv + buf->scores_at;
    const float scale = (float)pow((double)kd, -0.5);  // Attention: key_dim ** -0.5
    for (int i = 0; i < N; i++) {
        const int gy = wy * ws + i / ws, gx = wx * ws + i % ws;
        const float *src = gy < R && gx < R ? j->qkv + ((size_t)gy * R + gx) * ld : j->pad_qkv;
        memcpy(win_qkv + (size_t)i * ld, src, sizeof(float) * (size_t)ld);
    }
    // Queries of the padded rows at the bottom of the last windows are
    // cropped away: only the first `queries` rows are computed (the padded
    // tokens still take part as keys and values).
    const int real_rows = R - wy * ws < ws ? R - wy * ws : ws, queries = real_rows * ws;
    for (int h = 0; h < j->heads; h++) {
        const float *q = win_qkv + (size_t)h * 3 * kd;
        gemm_nt(queries, N, kd, scale, q, ld, q + kd, ld, 0.0f, scores, N);
        add_inplace(scores, buf->bias + (size_t)h * N * N, (size_t)queries * N);
        softmax_rows(scores, queries, N);
        gemm_nn(queries, kd, N, 1.0f, scores, N, q + 2 * kd, ld, 0.0f, win_out + (size_t)h * kd,
                C);
    }
    for (int i = 0; i < N; i++) {
        const int gy = wy * ws + i / ws, gx = wx * ws + i % ws;
        if (gy < R && gx < R)
            memcpy(j->out + ((size_t)gy * R + gx) * C, win_out + (size_t)i * C,
                   sizeof(float) * (size_t)C);
    }
}

// One task per window, on the pool bound to the caller (thread_pool_current).
// `repeated`: the output's band (repeated_band_after_windows); the windows of
// the rows (columns) it skips are not computed (the caller fills them).
static void window_attention(float *out, const float *qkv, const float *pad_qkv, int R, int C,
                             int heads, int ws, const TinyVitBuffers *buf, RepeatedBand repeated) {
    const int nw = (R + ws - 1) / ws;
    const int skips = repeated_band_skipped(repeated) > 0;
    const int skip_from = skips ? (repeated.from + repeated.period) / ws : 0;
    const int skip_to = skips ? repeated.to / ws : 0;
    WindowJob j = {.out = out, .qkv = qkv, .pad_qkv = pad_qkv, .R = R, .C = C, .heads = heads,
                   .ws = ws, .nw = nw, .skip_from = skip_from, .skip_to = skip_to,
                   .skip_columns = repeated.columns, .buf = buf};
    thread_pool_run(thread_pool_current(), (nw - (skip_to - skip_from)) * nw, window_attention_task,
                    &j);
}

// TinyViTBlock.forward on x (R * R, C), in place:
//   x = x + proj(window attention(norm(pad(x))))
//   x = local_conv(x)            (depthwise 3x3 Conv2d_BN, no residual)
//   x = x + fc2(GELU(fc1(norm(x))))
// `repeated`: x's band; returns the new one. Buffers a layer reads only
// per token need no fill; the ones a window or a conv reads do.
static RepeatedBand tinyvit_block_forward(float *x, const TinyVitBlockWeights *bw, int R, int C,
                                          int heads, int ws, int mlp, const TinyVitBuffers *buf,
                                          RepeatedBand repeated) {
    const int N = ws * ws;
    // The official `ab`: attention_biases[:, attention_bias_idxs], idxs (i, j)
    // numbering the offset (|yi - yj|, |xi - xj|) as |dy| * ws + |dx|.
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                const int dy = abs(i / ws - j / ws), dx = abs(i % ws - j % ws);
                buf->bias[((size_t)h * N + i) * N + j] = bw->attention_biases[(size_t)h * N + dy * ws + dx];
            }
    // LayerNorm of a zero (padding) token is its bias, so its q, k, v are
    // qkv.weight @ norm.bias + qkv.bias.
    linear_forward(buf->pad_qkv, bw->attn_norm.bias, bw->qkv.weight, bw->qkv.bias, 1, C, 3 * C);
    layernorm_band(buf->a, x, &bw->attn_norm, R, R, C, repeated);
    linear_band(buf->b, buf->a, bw->qkv.weight, bw->qkv.bias, R, R, C, 3 * C, 0, 0, repeated);
    repeated_band_fill(buf->b, 0, R, R, (size_t)3 * C, repeated);
    const RepeatedBand attn = repeated_band_after_windows(repeated, ws);
    window_attention(buf->a, buf->b, buf->pad_qkv, R, C, heads, ws, buf, attn);
    // x = res_x + attn
    const RepeatedBand sum = repeated_band_meet(repeated, attn);
    linear_band(x, buf->a, bw->proj.weight, bw->proj.bias, R, R, C, C, 1, 0, sum);
    repeated_band_fill(x, 0, R, R, (size_t)C, sum);

    const RepeatedBand out = repeated_band_after_conv3x3(sum, R, 1);
    depthwise3x3_forward(buf->a, x, R, R, C, 1, &bw->local_conv, 0, buf->dw, out);
    size_t t0, t1;
    for (int state = 0; repeated_band_next_run(out, R, 0, R, &state, &t0, &t1);)
        memcpy(x + t0 * C, buf->a + t0 * C, sizeof(float) * (t1 - t0) * C);

    layernorm_band(buf->a, x, &bw->mlp_norm, R, R, C, out);
    linear_band(buf->b, buf->a, bw->fc1.weight, bw->fc1.bias, R, R, C, mlp, 0, 1, out);
    linear_band(x, buf->b, bw->fc2.weight, bw->fc2.bias, R, R, mlp, C, 1, 0, out);
    repeated_band_fill(x, 0, R, R, (size_t)C, out);
    return out;
}

// TinyViT.neck on x (G * G, C) viewed as (1, C, G, G): Conv2d(C, D, 1, bias=False)
// -> LayerNorm2d -> Conv2d(D, D, 3, padding=1, bias=False) -> LayerNorm2d.
// LayerNorm2d normalises each pixel over channels: layernorm_rows on tokens.
// embedding is (D, G, G).
static void neck_forward(float *embedding, const float *x, const TinyVitEncoderWeights *w, int G,
                         int C, int D, const TinyVitBuffers *buf) {
    const int T = G * G;
    linear_forward(buf->a, x, w->neck_conv1, NULL, T, C, D);
    layernorm_rows(buf->a, buf->a, w->neck_norm1.weight, w->neck_norm1.bias, T, D, NECK_LN_EPS);
    conv3x3_winograd(buf->b, buf->a, G, G, D, D, w->neck_conv2, NULL, buf->cols);
    layernorm_rows(buf->b, buf->b, w->neck_norm2.weight, w->neck_norm2.bias, T, D, NECK_LN_EPS);
    transpose(embedding, buf->b, T, D);
}

// ---------------------------------------------------------------------------
// Entry point

static int conv_bn_ok(const ConvBnWeights *cb) { return cb->weight && cb->bias; }

static int tinyvit_check_weights(const TinyVitEncoderWeights *w, const SamConfig *c, SamError *err) {
    if (!conv_bn_ok(&w->stem1) || !conv_bn_ok(&w->stem2) || !w->neck_conv1 || !w->neck_conv2 ||
        !w->neck_norm1.weight || !w->neck_norm2.weight)
        return sam_error(err, "tinyvit_encoder: stem or neck weights missing");
    for (int i = 0; i < c->tv_depths[0]; i++)
        if (!conv_bn_ok(&w->mbconv[i].conv1) || !conv_bn_ok(&w->mbconv[i].conv2) ||
            !conv_bn_ok(&w->mbconv[i].conv3))
            return sam_error(err, "tinyvit_encoder: weights of MBConv block %d missing", i);
    for (int s = 0; s + 1 < TINYVIT_STAGES; s++)
        if (!conv_bn_ok(&w->merge[s].conv1) || !conv_bn_ok(&w->merge[s].conv2) ||
            !conv_bn_ok(&w->merge[s].conv3))
            return sam_error(err, "tinyvit_encoder: weights of patch merging %d missing", s);
    for (int s = 1; s < TINYVIT_STAGES; s++)
        for (int i = 0; i < c->tv_depths[s]; i++) {
            const TinyVitBlockWeights *b = &w->blocks[s][i];
            if (!b->attention_biases || !b->attn_norm.weight || !b->attn_norm.bias ||
                !b->qkv.weight || !b->proj.weight || !b->mlp_norm.weight || !b->fc1.weight ||
                !b->fc2.weight || !conv_bn_ok(&b->local_conv))
                return sam_error(err, "tinyvit_encoder: weights of stage %d block %d missing", s, i);
        }
    return 0;
}

int tinyvit_encoder_forward_band(float *embedding, const float *image,
                                 const TinyVitEncoderWeights *w, const SamConfig *c,
                                 Arena *scratch, SamProgressFn progress, void *progress_user,
                                 int reuse_repeated_tokens, SamError *err) {
    if (!embedding || !image || !w || !c || !scratch)
        return sam_error(err, "tinyvit_encoder: NULL argument");
    if (tinyvit_check_config(c, err) != 0 || tinyvit_check_weights(w, c, err) != 0) return -1;
    TinyVitPlan plan;
    tinyvit_plan(c, &plan);
    const size_t mark = arena_mark(scratch);
    TinyVitBuffers buf;
    buf.x = arena_floats(scratch, plan.x);
    buf.a = arena_floats(scratch, plan.a);
    buf.b = arena_floats(scratch, plan.b);
    buf.band = arena_floats(scratch, plan.band);
    buf.cols = arena_floats(scratch, plan.cols);
    buf.dw = arena_floats(scratch, plan.dw);
    buf.pad_qkv = arena_floats(scratch, plan.pad_qkv);
    buf.bias = arena_floats(scratch, plan.bias);
    const int threads = thread_pool_threads(thread_pool_current());
    buf.win_stride = per_thread_floats(&plan);
    buf.win_out_at = arena_rounded(plan.win_qkv);
    buf.scores_at = buf.win_out_at + arena_rounded(plan.win_out);
    buf.win = arena_floats(scratch, (size_t)threads * buf.win_stride);
    if (!buf.x || !buf.a || !buf.b || !buf.band || !buf.cols || !buf.dw || !buf.pad_qkv ||
        !buf.bias || !buf.win) {
        const size_t avail = (scratch->capacity - mark) / sizeof(float);
        arena_reset(scratch, mark);
        return sam_error(err,
                         "tinyvit_encoder: scratch arena too small: needs %zu floats for %d "
                         "threads, %zu available",
                         tinyvit_encoder_scratch_floats(c, threads), threads, avail);
    }

    const int total = TINYVIT_PROGRESS_STEPS;
    const int *dims = c->tv_dims, *res = c->tv_res;
    RepeatedBand band = reuse_repeated_tokens
                            ? repeated_band_of_image(image, 3, c->img_size, c->img_size)
                            : repeated_band_none();
    band = patch_embed_forward(buf.x, image, w, c, &buf, band);
    for (int s = 0; s < TINYVIT_STAGES; s++) {
        for (int i = 0; i < c->tv_depths[s]; i++) {
            if (s == 0)
                band = mbconv_forward(buf.x, &w->mbconv[i], res[0], dims[0], c->tv_mbconv_hidden,
                                      &buf, band);
            else
                band = tinyvit_block_forward(buf.x, &w->blocks[s][i], res[s], dims[s],
                                             c->tv_heads[s], c->tv_windows[s], c->tv_mlp[s], &buf,
                                             band);
        }
        if (s + 1 < TINYVIT_STAGES)
            band = patch_merging_forward(buf.x, &w->merge[s], res[s], dims[s], dims[s + 1],
                                         c->tv_merge_stride[s], &buf, band);
        if (progress) progress(progress_user, s + 1, total);
    }
    neck_forward(embedding, buf.x, w, c->grid, dims[TINYVIT_STAGES - 1], c->out_chans, &buf);
    if (progress) progress(progress_user, total, total);
    arena_reset(scratch, mark);
    return 0;
}

int tinyvit_encoder_forward(float *embedding, const float *image, const TinyVitEncoderWeights *w,
                            const SamConfig *c, Arena *scratch, SamProgressFn progress,
                            void *progress_user, SamError *err) {
    return tinyvit_encoder_forward_band(embedding, image, w, c, scratch, progress, progress_user, 1,
                                        err);
}
