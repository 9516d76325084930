// AVX-512 softmax, GELU and LayerNorms (16 lanes, masked tails). exp (below)
// and the GELU's erf (ops_internal.h) are our own; the references in ops.c
// use libm expf / erff, and the two agree within the tolerances of
// tests/c/test_simd_ops.c.
#include "ops_internal.h"

#if SAM_GEMM_X86
#include <immintrin.h>
#include <math.h>

// e^x for the x <= 0 that softmax produces (valid for any x below 88).
// x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite split of ln2: the high part
// has 9 significant bits so n * ln2_hi is exact), e^r by its Taylor series to
// degree 7 (truncation < 6e-9 relative for |r| <= 0.347), then scalef
// multiplies by 2^n with gradual underflow to 0. x is clamped at -104 so
// that -inf gives 0 rather than NaN (e^-104 is below the float range anyway);
// a NaN x stays NaN (MAXPS returns its second operand when one is NaN).
__attribute__((target("avx512f"))) static inline __m512 exp_avx512(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) static void softmax_rows_avx512(float *x, int rows, int cols) {
    const int full = cols & ~15;
    const __mmask16 tail = (__mmask16)((1u << (cols & 15)) - 1u);
    for (int i = 0; i < rows; i++) {
        float *r = x + (size_t)i * cols;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < full; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(r + j));
        if (tail) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, tail, r + full));
        const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        __m512 vsum = _mm512_setzero_ps();
        for (int j = 0; j < full; j += 16) {
            const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(r + j), mx));
            _mm512_storeu_ps(r + j, e);
            vsum = _mm512_add_ps(vsum, e);
        }
        if (tail) {
            const __m512 e =
                exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, r + full), mx));
            _mm512_mask_storeu_ps(r + full, tail, e);
            vsum = _mm512_mask_add_ps(vsum, tail, vsum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
        for (int j = 0; j < full; j += 16)
            _mm512_storeu_ps(r + j, _mm512_mul_ps(_mm512_loadu_ps(r + j), inv));
        if (tail)
            _mm512_mask_storeu_ps(r + full, tail,
                                  _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, r + full), inv));
    }
}

// Column softmax: 16 columns per vector, as softmax_cols_avx2.
__attribute__((target("avx512f"))) static void softmax_cols_avx512(float *x, int rows, int cols) {
    const int full = cols & ~15;
    for (int j = 0; j < full; j += 16) {
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (int i = 0; i < rows; i++) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + (size_t)i * cols + j));
        __m512 vsum = _mm512_setzero_ps();
        for (int i = 0; i < rows; i++) {
            float *p = x + (size_t)i * cols + j;
            const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(p), vmax));
            _mm512_storeu_ps(p, e);
            vsum = _mm512_add_ps(vsum, e);
        }
        const __m512 vinv = _mm512_div_ps(_mm512_set1_ps(1.0f), vsum);
        for (int i = 0; i < rows; i++) {
            float *p = x + (size_t)i * cols + j;
            _mm512_storeu_ps(p, _mm512_mul_ps(_mm512_loadu_ps(p), vinv));
        }
    }
    softmax_cols_scalar_range(x, rows, cols, full, cols);
}

// GELU (ops_internal.h: the folded rational erf in Estrin's form, with
// FMA). It replaced an erfc form (exp, two divisions' worth of latency and a
// degree-7 polynomial), which took 16% of MobileSAM's native encoder time.
// A NaN x stays NaN: the min/max may return the bound for it, but x enters
// the final multiply-adds itself.
__attribute__((target("avx512f"))) static inline __m512 gelu_avx512_vec(__m512 x) {
    const __m512 bound = _mm512_set1_ps(SAM_GELU_BOUND);
    const __m512 u = _mm512_max_ps(_mm512_min_ps(x, bound), _mm512_sub_ps(_mm512_setzero_ps(), bound));
    const __m512 u2 = _mm512_mul_ps(u, u), u4 = _mm512_mul_ps(u2, u2), u8 = _mm512_mul_ps(u4, u4);
    const __m512 p01 = _mm512_fmadd_ps(u2, _mm512_set1_ps(SAM_GELU_P1), _mm512_set1_ps(SAM_GELU_P0));
    const __m512 p23 = _mm512_fmadd_ps(u2, _mm512_set1_ps(SAM_GELU_P3), _mm512_set1_ps(SAM_GELU_P2));
    const __m512 p45 = _mm512_fmadd_ps(u2, _mm512_set1_ps(SAM_GELU_P5), _mm512_set1_ps(SAM_GELU_P4));
    const __m512 p456 = _mm512_fmadd_ps(u4, _mm512_set1_ps(SAM_GELU_P6), p45);
    const __m512 p = _mm512_fmadd_ps(u8, p456, _mm512_fmadd_ps(u4, p23, p01));
    const __m512 q01 = _mm512_fmadd_ps(u2, _mm512_set1_ps(SAM_GELU_Q1), _mm512_set1_ps(SAM_GELU_Q0));
    const __m512 q234 = _mm512_add_ps(_mm512_fmadd_ps(u2, _mm512_set1_ps(SAM_GELU_Q3), _mm512_set1_ps(SAM_GELU_Q2)), u4);
    const __m512 q = _mm512_fmadd_ps(u4, q234, q01);
    const __m512 half_erf = _mm512_div_ps(_mm512_mul_ps(u, p), q);
    return _mm512_fmadd_ps(x, half_erf, _mm512_mul_ps(x, _mm512_set1_ps(0.5f)));
}

__attribute__((target("avx512f"))) static void gelu_avx512(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu_avx512_vec(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(x + i, tail, gelu_avx512_vec(_mm512_maskz_loadu_ps(tail, x + i)));
    }
}

// LayerNorm over rows, the corrected two-pass float sums of ops_internal.h.
// Two accumulators per sum (32 lanes); the ragged end through masked loads
// (zeros in the unused lanes, which then add 0 to every sum).
__attribute__((target("avx512f"))) static void layernorm_rows_avx512(
    float *y, const float *x, const float *gamma, const float *beta, int n, int c, float eps) {
    const int full32 = c & ~31, full16 = c & ~15;
    const __mmask16 tail = (__mmask16)((1u << (c & 15)) - 1u);
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * c;
        float *yi = y + (size_t)i * c;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int j = 0;
        for (; j < full32; j += 32) {
            a0 = _mm512_add_ps(a0, _mm512_loadu_ps(xi + j));
            a1 = _mm512_add_ps(a1, _mm512_loadu_ps(xi + j + 16));
        }
        for (; j < full16; j += 16) a0 = _mm512_add_ps(a0, _mm512_loadu_ps(xi + j));
        if (tail) a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(tail, xi + j));
        const float m1 = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / (float)c;

        const __m512 vm1 = _mm512_set1_ps(m1);
        __m512 s0 = _mm512_setzero_ps(), s1 = s0;
        a0 = a1 = _mm512_setzero_ps();
        for (j = 0; j < full32; j += 32) {
            const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(xi + j), vm1);
            const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(xi + j + 16), vm1);
            s0 = _mm512_add_ps(s0, d0);
            s1 = _mm512_add_ps(s1, d1);
            a0 = _mm512_fmadd_ps(d0, d0, a0);
            a1 = _mm512_fmadd_ps(d1, d1, a1);
        }
        for (; j < full16; j += 16) {
            const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(xi + j), vm1);
            s0 = _mm512_add_ps(s0, d);
            a0 = _mm512_fmadd_ps(d, d, a0);
        }
        if (tail) {
            const __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, xi + j), vm1);
            s1 = _mm512_add_ps(s1, d);
            a1 = _mm512_fmadd_ps(d, d, a1);
        }
        const float e = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)c, mean = m1 + e;
        const float var = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / (float)c - e * e;
        const __m512 vm = _mm512_set1_ps(mean);
        const __m512 vinv = _mm512_set1_ps(1.0f / sqrtf((var < 0.0f ? 0.0f : var) + eps));

        for (j = 0; j < full16; j += 16) {
            const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xi + j), vm), vinv);
            _mm512_storeu_ps(yi + j, _mm512_fmadd_ps(v, _mm512_loadu_ps(gamma + j),
                                                     _mm512_loadu_ps(beta + j)));
        }
        if (tail) {
            const __m512 v =
                _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xi + j), vm), vinv);
            _mm512_mask_storeu_ps(yi + j, tail,
                                  _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(tail, gamma + j),
                                                  _mm512_maskz_loadu_ps(tail, beta + j)));
        }
    }
}

// The first n lanes (all 16 when n >= 16).
static inline __mmask16 lanes_below(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

// LayerNorm2d as layernorm_channels_wasmsimd: blocks of SAM_LN2D_BLOCK
// pixels (ops_internal.h), the last < 16 pixels through masked loads and
// stores (zeros in the unused lanes, whose statistics are never stored).
__attribute__((target("avx512f"))) static void layernorm_channels_avx512(
    float *y, const float *x, const float *gamma, const float *beta, int c, int hw, float eps) {
    enum { B = SAM_LN2D_BLOCK };
    // Per pixel of the block: mean holds m1, then the mean; inv the centred
    // sum sd, then 1 / sqrt(var + eps); sdd the centred squares.
    __attribute__((aligned(64))) float mean[B], inv[B], sdd[B];
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    const __m512 vc = _mm512_set1_ps((float)c), veps = _mm512_set1_ps(eps);
    for (int p = 0, nb; p < hw; p += nb) {
        nb = hw - p < B ? hw - p : B;
        const int nv = (nb + 15) / 16;  // vectors; the last one may be partial
        for (int i = 0; i < 16 * nv; i += 16) {
            _mm512_store_ps(mean + i, zero);
            _mm512_store_ps(inv + i, zero);
            _mm512_store_ps(sdd + i, zero);
        }
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            for (int i = 0; i < 16 * nv; i += 16)
                _mm512_store_ps(mean + i,
                                _mm512_add_ps(_mm512_load_ps(mean + i),
                                              _mm512_maskz_loadu_ps(lanes_below(nb - i), xc + i)));
        }
        for (int i = 0; i < 16 * nv; i += 16)
            _mm512_store_ps(mean + i, _mm512_div_ps(_mm512_load_ps(mean + i), vc));
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            for (int i = 0; i < 16 * nv; i += 16) {
                const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(lanes_below(nb - i), xc + i),
                                               _mm512_load_ps(mean + i));
                _mm512_store_ps(inv + i, _mm512_add_ps(_mm512_load_ps(inv + i), d));
                _mm512_store_ps(sdd + i, _mm512_fmadd_ps(d, d, _mm512_load_ps(sdd + i)));
            }
        }
        for (int i = 0; i < 16 * nv; i += 16) {
            const __m512 e = _mm512_div_ps(_mm512_load_ps(inv + i), vc);
            // var clamped at 0; MAXPS returns its second operand (var) when one is NaN.
            const __m512 var = _mm512_max_ps(
                zero, _mm512_fnmadd_ps(e, e, _mm512_div_ps(_mm512_load_ps(sdd + i), vc)));
            _mm512_store_ps(mean + i, _mm512_add_ps(_mm512_load_ps(mean + i), e));
            _mm512_store_ps(inv + i, _mm512_div_ps(one, _mm512_sqrt_ps(_mm512_add_ps(var, veps))));
        }
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            float *yc = y + (size_t)ch * hw + p;
            const __m512 g = _mm512_set1_ps(gamma[ch]), b = _mm512_set1_ps(beta[ch]);
            for (int i = 0; i < 16 * nv; i += 16) {
                const __m512 v =
                    _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes_below(nb - i), xc + i),
                                                _mm512_load_ps(mean + i)),
                                  _mm512_load_ps(inv + i));
                _mm512_mask_storeu_ps(yc + i, lanes_below(nb - i), _mm512_fmadd_ps(v, g, b));
            }
        }
    }
}

static void epilogue_avx512(float *c, int ldc, int rows, int cols, const float *bias, int gelu) {
    gemm_epilogue_with(gelu_avx512, c, ldc, rows, cols, bias, gelu);
}

static const OpsVariant avx512_variant = {
    .name = "avx512",
    .softmax_rows = softmax_rows_avx512,
    .softmax_cols = softmax_cols_avx512,
    .gelu = gelu_avx512,
    .epilogue = epilogue_avx512,
    .layernorm_rows = layernorm_rows_avx512,
    .layernorm_channels = layernorm_channels_avx512,
};

const OpsVariant *ops_variant_avx512(void) {
    return __builtin_cpu_supports("avx512f") ? &avx512_variant : NULL;
}

#endif
