// WebAssembly SIMD128 softmax, GELU and LayerNorms (4 lanes), ported from
// ops_avx2.c: the same exp (Cody-Waite reduction, Taylor degree 7) and GELU
// (ops_internal.h). simd128 has no FMA, so every a * b + c is f32x4 mul
// then add (two roundings; the results stay within the tolerances of
// tests/c/test_simd_ops.c, which runs this file under node).
// Ragged ends: softmax runs the vector exp on a copy of a row's last < 4
// elements padded with -inf (e^-inf = 0 adds nothing to the sum; libm expf
// per element cost V8 more than the vector exp of the 49-wide rows of
// TinyViT's 7x7 windows), GELU runs the vector code on a zero-padded copy of
// the last < 4 elements, a LayerNorm row sums its last < 4 elements in
// scalar float, and LayerNorm2d leaves its last < 4 pixels to
// layernorm_channels_f32_pixels.
//
// Minimum and maximum use the pseudo-min/max (pmin(a, b) = b < a ? b : a,
// pmax(a, b) = a < b ? b : a): V8 lowers each to one MINPS / MAXPS on
// x86-64, where the IEEE f32x4.min/max need a fix-up sequence. With x as the
// first operand a NaN x is returned unchanged.
//
// Compiled only for the WASM build (-msimd128 -DSAM_GEMM_WASMSIMD).
#include "ops_internal.h"

#if defined(__wasm_simd128__) && defined(SAM_GEMM_WASMSIMD)
#include <math.h>
#include <string.h>
#include <wasm_simd128.h>

#include "kernels.h"

// e^x for x <= 0 (the softmaxes subtract their maximum first), exp_avx2's
// scheme: x = n ln2 + r, Taylor degree 7 for e^r, 2^n built in the exponent
// field. n is rounded with XNNPACK's magic bias rather than f32x4.nearest
// and a conversion: in x log2e + 0x1.8000FEp23 the low mantissa bits hold
// round(x log2e) + 127 (rounded to nearest even by the add itself), so
// shifting the bits left by 23 gives the float 2^n, and subtracting the bias
// back gives n. That needs n >= -126: x is clamped at -87.3 and the results
// for x < -87.3 (true value below 1.2e-38, including -inf) are set to 0.
// NaN propagates (pmax keeps a NaN x, and NaN < -87.3 is false). The
// polynomial is evaluated in Estrin's form (four independent pairs, then
// r^2 and r^4): the chain of dependent multiply-adds, not the pipes, bounded
// V8's throughput with Horner's (softmax of 196-wide rows 1.32 -> 1.13 ns
// a value).
static inline v128_t exp_wasmsimd(v128_t x) {
    const v128_t lo = wasm_f32x4_splat(-87.3f);
    const v128_t magic = wasm_f32x4_splat(0x1.8000FEp23f);
    const v128_t underflow = wasm_f32x4_lt(x, lo);
    x = wasm_f32x4_pmax(x, lo);
    v128_t n = wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)), magic);
    const v128_t scale = wasm_i32x4_shl(n, 23);
    n = wasm_f32x4_sub(n, magic);
    // ln2 split in two (the high part has 9 significant bits, so n * hi is exact).
    v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
    const v128_t r2 = wasm_f32x4_mul(r, r), r4 = wasm_f32x4_mul(r2, r2);
    const v128_t p01 = wasm_f32x4_add(r, wasm_f32x4_splat(1.0f));
    const v128_t p23 = wasm_f32x4_add(wasm_f32x4_mul(r, wasm_f32x4_splat(1.0f / 6.0f)),
                                      wasm_f32x4_splat(0.5f));
    const v128_t p45 = wasm_f32x4_add(wasm_f32x4_mul(r, wasm_f32x4_splat(1.0f / 120.0f)),
                                      wasm_f32x4_splat(1.0f / 24.0f));
    const v128_t p67 = wasm_f32x4_add(wasm_f32x4_mul(r, wasm_f32x4_splat(1.0f / 5040.0f)),
                                      wasm_f32x4_splat(1.0f / 720.0f));
    const v128_t p = wasm_f32x4_add(wasm_f32x4_add(p01, wasm_f32x4_mul(r2, p23)),
                                    wasm_f32x4_mul(r4, wasm_f32x4_add(p45, wasm_f32x4_mul(r2, p67))));
    return wasm_v128_andnot(wasm_f32x4_mul(p, scale), underflow);
}

static inline float hsum_wasmsimd(v128_t v) {
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(v, 0);
}

static inline float hmax_wasmsimd(v128_t v) {
    v = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(v, 0);
}

static void softmax_rows_wasmsimd(float *x, int rows, int cols) {
    const int full = cols & ~3;
    for (int i = 0; i < rows; i++) {
        float *r = x + (size_t)i * cols;
        v128_t vmax = wasm_f32x4_splat(-INFINITY);
        for (int j = 0; j < full; j += 4) vmax = wasm_f32x4_pmax(vmax, wasm_v128_load(r + j));
        float mx = hmax_wasmsimd(vmax);
        for (int j = full; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
        const v128_t vmx = wasm_f32x4_splat(mx);
        v128_t vsum = wasm_f32x4_splat(0.0f);
        for (int j = 0; j < full; j += 4) {
            const v128_t e = exp_wasmsimd(wasm_f32x4_sub(wasm_v128_load(r + j), vmx));
            wasm_v128_store(r + j, e);
            vsum = wasm_f32x4_add(vsum, e);
        }
        if (full < cols) {  // the ragged end as one vector, padded with e^-inf = 0
            float tail[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
            memcpy(tail, r + full, sizeof(float) * (size_t)(cols - full));
            const v128_t e = exp_wasmsimd(wasm_f32x4_sub(wasm_v128_load(tail), vmx));
            wasm_v128_store(tail, e);
            vsum = wasm_f32x4_add(vsum, e);
            memcpy(r + full, tail, sizeof(float) * (size_t)(cols - full));
        }
        const float inv = 1.0f / hsum_wasmsimd(vsum);
        const v128_t vinv = wasm_f32x4_splat(inv);
        for (int j = 0; j < full; j += 4)
            wasm_v128_store(r + j, wasm_f32x4_mul(wasm_v128_load(r + j), vinv));
        for (int j = full; j < cols; j++) r[j] *= inv;
    }
}

// Column softmax: 4 columns per vector, as softmax_cols_avx2.
static void softmax_cols_wasmsimd(float *x, int rows, int cols) {
    const int full = cols & ~3;
    for (int j = 0; j < full; j += 4) {
        v128_t vmax = wasm_f32x4_splat(-INFINITY);
        for (int i = 0; i < rows; i++)
            vmax = wasm_f32x4_pmax(vmax, wasm_v128_load(x + (size_t)i * cols + j));
        v128_t vsum = wasm_f32x4_splat(0.0f);
        for (int i = 0; i < rows; i++) {
            float *p = x + (size_t)i * cols + j;
            const v128_t e = exp_wasmsimd(wasm_f32x4_sub(wasm_v128_load(p), vmax));
            wasm_v128_store(p, e);
            vsum = wasm_f32x4_add(vsum, e);
        }
        const v128_t vinv = wasm_f32x4_div(wasm_f32x4_splat(1.0f), vsum);
        for (int i = 0; i < rows; i++) {
            float *p = x + (size_t)i * cols + j;
            wasm_v128_store(p, wasm_f32x4_mul(wasm_v128_load(p), vinv));
        }
    }
    softmax_cols_scalar_range(x, rows, cols, full, cols);
}

// GELU (ops_internal.h: the folded rational erf in Estrin's form). Estrin
// because in V8 the chain of dependent operations bounds the throughput more
// than the multiplies (Horner on the unfolded coefficients ~15 cycles a
// vector, on the folded ones ~12, Estrin ~10.6). NaN stays NaN (pmin and
// pmax keep a NaN first operand); GELU(+inf) = +inf.
static inline v128_t gelu_wasmsimd_vec(v128_t x) {
    const v128_t bound = wasm_f32x4_splat(SAM_GELU_BOUND);
    const v128_t u = wasm_f32x4_pmax(wasm_f32x4_pmin(x, bound), wasm_f32x4_neg(bound));
    const v128_t u2 = wasm_f32x4_mul(u, u);
    const v128_t u4 = wasm_f32x4_mul(u2, u2), u8 = wasm_f32x4_mul(u4, u4);
    const v128_t p01 = wasm_f32x4_add(wasm_f32x4_mul(u2, wasm_f32x4_splat(SAM_GELU_P1)),
                                      wasm_f32x4_splat(SAM_GELU_P0));
    const v128_t p23 = wasm_f32x4_add(wasm_f32x4_mul(u2, wasm_f32x4_splat(SAM_GELU_P3)),
                                      wasm_f32x4_splat(SAM_GELU_P2));
    const v128_t p45 = wasm_f32x4_add(wasm_f32x4_mul(u2, wasm_f32x4_splat(SAM_GELU_P5)),
                                      wasm_f32x4_splat(SAM_GELU_P4));
    const v128_t p456 = wasm_f32x4_add(p45, wasm_f32x4_mul(u4, wasm_f32x4_splat(SAM_GELU_P6)));
    const v128_t p = wasm_f32x4_add(wasm_f32x4_add(p01, wasm_f32x4_mul(u4, p23)), wasm_f32x4_mul(u8, p456));
    const v128_t q01 = wasm_f32x4_add(wasm_f32x4_mul(u2, wasm_f32x4_splat(SAM_GELU_Q1)),
                                      wasm_f32x4_splat(SAM_GELU_Q0));
    const v128_t q234 = wasm_f32x4_add(
        wasm_f32x4_add(wasm_f32x4_mul(u2, wasm_f32x4_splat(SAM_GELU_Q3)), wasm_f32x4_splat(SAM_GELU_Q2)),
        u4);
    const v128_t q = wasm_f32x4_add(q01, wasm_f32x4_mul(u4, q234));
    const v128_t half_erf = wasm_f32x4_div(wasm_f32x4_mul(u, p), q);
    return wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(0.5f)), wasm_f32x4_mul(x, half_erf));
}

static void gelu_wasmsimd(float *x, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(x + i, gelu_wasmsimd_vec(wasm_v128_load(x + i)));
    if (i < n) {
        float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(tail, x + i, (n - i) * sizeof(float));
        wasm_v128_store(tail, gelu_wasmsimd_vec(wasm_v128_load(tail)));
        memcpy(x + i, tail, (n - i) * sizeof(float));
    }
}

// gemm_epilogue on a tile of the WASM GEMM (8 columns wide but at the
// ragged edge): in one loop, as a call per 8-float row would cost V8 about
// as much as the GELU.
static void epilogue_wasmsimd(float *c, int ldc, int rows, int cols, const float *bias, int gelu) {
    const int full = cols & ~3;
    for (int i = 0; i < rows; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < full; j += 4) {
            v128_t v = wasm_v128_load(ci + j);
            if (bias) v = wasm_f32x4_add(v, wasm_v128_load(bias + j));
            wasm_v128_store(ci + j, gelu ? gelu_wasmsimd_vec(v) : v);
        }
        if (full < cols) {
            if (bias)
                for (int j = full; j < cols; j++) ci[j] += bias[j];
            if (gelu) gelu_wasmsimd(ci + full, (size_t)(cols - full));
        }
    }
}

// LayerNorm over rows, the corrected two-pass float sums of ops_internal.h.
// Four accumulators per sum (16 lanes): each lane adds c / 16 terms.
static void layernorm_rows_wasmsimd(float *y, const float *x, const float *gamma,
                                    const float *beta, int n, int c, float eps) {
    const int full16 = c & ~15, full4 = c & ~3;
    const v128_t zero = wasm_f32x4_splat(0.0f);
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * c;
        float *yi = y + (size_t)i * c;
        v128_t a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        int j = 0;
        for (; j < full16; j += 16) {
            a0 = wasm_f32x4_add(a0, wasm_v128_load(xi + j));
            a1 = wasm_f32x4_add(a1, wasm_v128_load(xi + j + 4));
            a2 = wasm_f32x4_add(a2, wasm_v128_load(xi + j + 8));
            a3 = wasm_f32x4_add(a3, wasm_v128_load(xi + j + 12));
        }
        for (; j < full4; j += 4) a0 = wasm_f32x4_add(a0, wasm_v128_load(xi + j));
        float sum = hsum_wasmsimd(wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3)));
        for (; j < c; j++) sum += xi[j];
        const float m1 = sum / (float)c;

        const v128_t vm1 = wasm_f32x4_splat(m1);
        v128_t s0 = zero, s1 = zero, s2 = zero, s3 = zero;
        a0 = a1 = a2 = a3 = zero;
        for (j = 0; j < full16; j += 16) {
            const v128_t d0 = wasm_f32x4_sub(wasm_v128_load(xi + j), vm1);
            const v128_t d1 = wasm_f32x4_sub(wasm_v128_load(xi + j + 4), vm1);
            const v128_t d2 = wasm_f32x4_sub(wasm_v128_load(xi + j + 8), vm1);
            const v128_t d3 = wasm_f32x4_sub(wasm_v128_load(xi + j + 12), vm1);
            s0 = wasm_f32x4_add(s0, d0);
            s1 = wasm_f32x4_add(s1, d1);
            s2 = wasm_f32x4_add(s2, d2);
            s3 = wasm_f32x4_add(s3, d3);
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(d0, d0));
            a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(d1, d1));
            a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(d2, d2));
            a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(d3, d3));
        }
        for (; j < full4; j += 4) {
            const v128_t d = wasm_f32x4_sub(wasm_v128_load(xi + j), vm1);
            s0 = wasm_f32x4_add(s0, d);
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(d, d));
        }
        float sd = hsum_wasmsimd(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
        float sdd = hsum_wasmsimd(wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3)));
        for (; j < c; j++) {
            const float d = xi[j] - m1;
            sd += d;
            sdd += d * d;
        }
        const float e = sd / (float)c, mean = m1 + e;
        const float var = sdd / (float)c - e * e;
        const float inv = 1.0f / sqrtf((var < 0.0f ? 0.0f : var) + eps);

        const v128_t vm = wasm_f32x4_splat(mean), vinv = wasm_f32x4_splat(inv);
        for (j = 0; j < full4; j += 4) {
            const v128_t v = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xi + j), vm), vinv);
            wasm_v128_store(yi + j, wasm_f32x4_add(wasm_f32x4_mul(v, wasm_v128_load(gamma + j)),
                                                   wasm_v128_load(beta + j)));
        }
        for (; j < c; j++) yi[j] = (xi[j] - mean) * inv * gamma[j] + beta[j];
    }
}

// LayerNorm2d, the corrected two-pass float sums of ops_internal.h, in
// blocks of SAM_LN2D_BLOCK pixels walked as the reference walks them
// (ops_internal.h); the last < 4 pixels one by one.
static void layernorm_channels_wasmsimd(float *y, const float *x, const float *gamma,
                                        const float *beta, int c, int hw, float eps) {
    enum { B = SAM_LN2D_BLOCK };
    // Per pixel of the block: mean holds m1, then the mean; inv the centred
    // sum sd, then 1 / sqrt(var + eps); sdd the centred squares.
    float mean[B], inv[B], sdd[B];
    const v128_t zero = wasm_f32x4_splat(0.0f), one = wasm_f32x4_splat(1.0f);
    const v128_t vc = wasm_f32x4_splat((float)c), veps = wasm_f32x4_splat(eps);
    int p = 0;
    for (int nb; (nb = (hw - p < B ? hw - p : B) & ~3) > 0; p += nb) {
        for (int i = 0; i < nb; i += 4) {
            wasm_v128_store(mean + i, zero);
            wasm_v128_store(inv + i, zero);
            wasm_v128_store(sdd + i, zero);
        }
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            for (int i = 0; i < nb; i += 4)
                wasm_v128_store(mean + i,
                                wasm_f32x4_add(wasm_v128_load(mean + i), wasm_v128_load(xc + i)));
        }
        for (int i = 0; i < nb; i += 4)
            wasm_v128_store(mean + i, wasm_f32x4_div(wasm_v128_load(mean + i), vc));
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            for (int i = 0; i < nb; i += 4) {
                const v128_t d = wasm_f32x4_sub(wasm_v128_load(xc + i), wasm_v128_load(mean + i));
                wasm_v128_store(inv + i, wasm_f32x4_add(wasm_v128_load(inv + i), d));
                wasm_v128_store(sdd + i,
                                wasm_f32x4_add(wasm_v128_load(sdd + i), wasm_f32x4_mul(d, d)));
            }
        }
        for (int i = 0; i < nb; i += 4) {
            const v128_t e = wasm_f32x4_div(wasm_v128_load(inv + i), vc);
            // var clamped at 0 (pmax keeps a NaN var: its first operand).
            const v128_t var = wasm_f32x4_pmax(
                wasm_f32x4_sub(wasm_f32x4_div(wasm_v128_load(sdd + i), vc), wasm_f32x4_mul(e, e)),
                zero);
            wasm_v128_store(mean + i, wasm_f32x4_add(wasm_v128_load(mean + i), e));
            wasm_v128_store(inv + i,
                            wasm_f32x4_div(one, wasm_f32x4_sqrt(wasm_f32x4_add(var, veps))));
        }
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            float *yc = y + (size_t)ch * hw + p;
            const v128_t g = wasm_f32x4_splat(gamma[ch]), b = wasm_f32x4_splat(beta[ch]);
            for (int i = 0; i < nb; i += 4) {
                const v128_t v =
                    wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xc + i), wasm_v128_load(mean + i)),
                                   wasm_v128_load(inv + i));
                wasm_v128_store(yc + i, wasm_f32x4_add(wasm_f32x4_mul(v, g), b));
            }
        }
    }
    layernorm_channels_f32_pixels(y, x, gamma, beta, c, hw, p, hw, eps);
}

static const OpsVariant wasmsimd_variant = {
    .name = "wasmsimd",
    .softmax_rows = softmax_rows_wasmsimd,
    .softmax_cols = softmax_cols_wasmsimd,
    .gelu = gelu_wasmsimd,
    .epilogue = epilogue_wasmsimd,
    .layernorm_rows = layernorm_rows_wasmsimd,
    .layernorm_channels = layernorm_channels_wasmsimd,
};

const OpsVariant *ops_variant_wasmsimd(void) { return &wasmsimd_variant; }

#endif
