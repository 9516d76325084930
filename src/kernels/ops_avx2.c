// AVX2 + FMA softmax, GELU and LayerNorms (8 lanes). Ragged tails: softmax
// uses the libm-based scalar formula of the reference in ops.c, GELU the
// scalar reference itself, a LayerNorm row sums its last < 8 elements in
// scalar float, LayerNorm2d leaves its last < 8 pixels to
// layernorm_channels_f32_pixels.
#include "ops_internal.h"

#if SAM_GEMM_X86
#include <immintrin.h>
#include <math.h>

#include "kernels.h"

// e^x for x <= 0 (softmax), same scheme as softmax_avx512.c: x = n ln2 + r,
// Taylor degree 7 for e^r, 2^n built in the exponent field. That needs
// n >= -126, so x is clamped at -87.3 and results for smaller x (true value
// below 1.2e-38, including -inf) are set to 0. NaN propagates: MAXPS/MINPS
// return their second operand when one is NaN, and NaN < -87.3 is false.
__attribute__((target("avx2,fma"))) static inline __m256 exp_avx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3f);
    const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(lo, x);
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

__attribute__((target("avx2,fma"))) static float hmax_avx2(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,fma"))) static float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static void softmax_rows_avx2(float *x, int rows, int cols) {
    const int full = cols & ~7;
    for (int i = 0; i < rows; i++) {
        float *r = x + (size_t)i * cols;
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (int j = 0; j < full; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(r + j));
        float mx = hmax_avx2(vmax);
        for (int j = full; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
        const __m256 vmx = _mm256_set1_ps(mx);
        __m256 vsum = _mm256_setzero_ps();
        for (int j = 0; j < full; j += 8) {
            const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(r + j), vmx));
            _mm256_storeu_ps(r + j, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        float sum = hsum_avx2(vsum);
        for (int j = full; j < cols; j++) sum += r[j] = expf(r[j] - mx);
        const float inv = 1.0f / sum;
        const __m256 vinv = _mm256_set1_ps(inv);
        for (int j = 0; j < full; j += 8)
            _mm256_storeu_ps(r + j, _mm256_mul_ps(_mm256_loadu_ps(r + j), vinv));
        for (int j = full; j < cols; j++) r[j] *= inv;
    }
}

// Column softmax: 8 columns per vector, the rows walked three times (max,
// exp and sum, scale); ragged columns through the reference.
__attribute__((target("avx2,fma"))) static void softmax_cols_avx2(float *x, int rows, int cols) {
    const int full = cols & ~7;
    for (int j = 0; j < full; j += 8) {
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (int i = 0; i < rows; i++) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + (size_t)i * cols + j));
        __m256 vsum = _mm256_setzero_ps();
        for (int i = 0; i < rows; i++) {
            float *p = x + (size_t)i * cols + j;
            const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(p), vmax));
            _mm256_storeu_ps(p, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        const __m256 vinv = _mm256_div_ps(_mm256_set1_ps(1.0f), vsum);
        for (int i = 0; i < rows; i++) {
            float *p = x + (size_t)i * cols + j;
            _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), vinv));
        }
    }
    softmax_cols_scalar_range(x, rows, cols, full, cols);
}

// GELU (ops_internal.h: the folded rational erf in Estrin's form, with
// FMA). It replaced an erfc form (exp, two divisions' worth of latency and a
// degree-7 polynomial), which took 16% of MobileSAM's native encoder time.
// A NaN x stays NaN: the min/max may return the bound for it, but x enters
// the final multiply-adds itself.
__attribute__((target("avx2,fma"))) static inline __m256 gelu_avx2_vec(__m256 x) {
    const __m256 bound = _mm256_set1_ps(SAM_GELU_BOUND);
    const __m256 u = _mm256_max_ps(_mm256_min_ps(x, bound), _mm256_sub_ps(_mm256_setzero_ps(), bound));
    const __m256 u2 = _mm256_mul_ps(u, u), u4 = _mm256_mul_ps(u2, u2), u8 = _mm256_mul_ps(u4, u4);
    const __m256 p01 = _mm256_fmadd_ps(u2, _mm256_set1_ps(SAM_GELU_P1), _mm256_set1_ps(SAM_GELU_P0));
    const __m256 p23 = _mm256_fmadd_ps(u2, _mm256_set1_ps(SAM_GELU_P3), _mm256_set1_ps(SAM_GELU_P2));
    const __m256 p45 = _mm256_fmadd_ps(u2, _mm256_set1_ps(SAM_GELU_P5), _mm256_set1_ps(SAM_GELU_P4));
    const __m256 p456 = _mm256_fmadd_ps(u4, _mm256_set1_ps(SAM_GELU_P6), p45);
    const __m256 p = _mm256_fmadd_ps(u8, p456, _mm256_fmadd_ps(u4, p23, p01));
    const __m256 q01 = _mm256_fmadd_ps(u2, _mm256_set1_ps(SAM_GELU_Q1), _mm256_set1_ps(SAM_GELU_Q0));
    const __m256 q234 = _mm256_add_ps(_mm256_fmadd_ps(u2, _mm256_set1_ps(SAM_GELU_Q3), _mm256_set1_ps(SAM_GELU_Q2)), u4);
    const __m256 q = _mm256_fmadd_ps(u4, q234, q01);
    const __m256 half_erf = _mm256_div_ps(_mm256_mul_ps(u, p), q);
    return _mm256_fmadd_ps(x, half_erf, _mm256_mul_ps(x, _mm256_set1_ps(0.5f)));
}

__attribute__((target("avx2,fma"))) static void gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu_avx2_vec(_mm256_loadu_ps(x + i)));
    if (i < n) gelu_inplace_scalar(x + i, n - i);
}

// LayerNorm over rows, the corrected two-pass float sums of ops_internal.h.
// Four accumulators per sum (32 lanes).
__attribute__((target("avx2,fma"))) static void layernorm_rows_avx2(
    float *y, const float *x, const float *gamma, const float *beta, int n, int c, float eps) {
    const int full32 = c & ~31, full8 = c & ~7;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * c;
        float *yi = y + (size_t)i * c;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int j = 0;
        for (; j < full32; j += 32) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(xi + j));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(xi + j + 8));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(xi + j + 16));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(xi + j + 24));
        }
        for (; j < full8; j += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(xi + j));
        float sum = hsum_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; j < c; j++) sum += xi[j];
        const float m1 = sum / (float)c;

        const __m256 vm1 = _mm256_set1_ps(m1);
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        a0 = a1 = a2 = a3 = _mm256_setzero_ps();
        for (j = 0; j < full32; j += 32) {
            const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xi + j), vm1);
            const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(xi + j + 8), vm1);
            const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(xi + j + 16), vm1);
            const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(xi + j + 24), vm1);
            s0 = _mm256_add_ps(s0, d0);
            s1 = _mm256_add_ps(s1, d1);
            s2 = _mm256_add_ps(s2, d2);
            s3 = _mm256_add_ps(s3, d3);
            a0 = _mm256_fmadd_ps(d0, d0, a0);
            a1 = _mm256_fmadd_ps(d1, d1, a1);
            a2 = _mm256_fmadd_ps(d2, d2, a2);
            a3 = _mm256_fmadd_ps(d3, d3, a3);
        }
        for (; j < full8; j += 8) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xi + j), vm1);
            s0 = _mm256_add_ps(s0, d);
            a0 = _mm256_fmadd_ps(d, d, a0);
        }
        float sd = hsum_avx2(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        float sdd = hsum_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; j < c; j++) {
            const float d = xi[j] - m1;
            sd += d;
            sdd += d * d;
        }
        const float e = sd / (float)c, mean = m1 + e;
        const float var = sdd / (float)c - e * e;
        const float inv = 1.0f / sqrtf((var < 0.0f ? 0.0f : var) + eps);

        const __m256 vm = _mm256_set1_ps(mean), vinv = _mm256_set1_ps(inv);
        for (j = 0; j < full8; j += 8) {
            const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xi + j), vm), vinv);
            _mm256_storeu_ps(yi + j, _mm256_fmadd_ps(v, _mm256_loadu_ps(gamma + j),
                                                     _mm256_loadu_ps(beta + j)));
        }
        for (; j < c; j++) yi[j] = (xi[j] - mean) * inv * gamma[j] + beta[j];
    }
}

// LayerNorm2d as layernorm_channels_wasmsimd: blocks of SAM_LN2D_BLOCK
// pixels (ops_internal.h), the last < 8 pixels one by one.
__attribute__((target("avx2,fma"))) static void layernorm_channels_avx2(
    float *y, const float *x, const float *gamma, const float *beta, int c, int hw, float eps) {
    enum { B = SAM_LN2D_BLOCK };
    // Per pixel of the block: mean holds m1, then the mean; inv the centred
    // sum sd, then 1 / sqrt(var + eps); sdd the centred squares.
    __attribute__((aligned(32))) float mean[B], inv[B], sdd[B];
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256 vc = _mm256_set1_ps((float)c), veps = _mm256_set1_ps(eps);
    int p = 0;
    for (int nb; (nb = (hw - p < B ? hw - p : B) & ~7) > 0; p += nb) {
        for (int i = 0; i < nb; i += 8) {
            _mm256_store_ps(mean + i, zero);
            _mm256_store_ps(inv + i, zero);
            _mm256_store_ps(sdd + i, zero);
        }
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            for (int i = 0; i < nb; i += 8)
                _mm256_store_ps(mean + i,
                                _mm256_add_ps(_mm256_load_ps(mean + i), _mm256_loadu_ps(xc + i)));
        }
        for (int i = 0; i < nb; i += 8)
            _mm256_store_ps(mean + i, _mm256_div_ps(_mm256_load_ps(mean + i), vc));
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            for (int i = 0; i < nb; i += 8) {
                const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xc + i), _mm256_load_ps(mean + i));
                _mm256_store_ps(inv + i, _mm256_add_ps(_mm256_load_ps(inv + i), d));
                _mm256_store_ps(sdd + i, _mm256_fmadd_ps(d, d, _mm256_load_ps(sdd + i)));
            }
        }
        for (int i = 0; i < nb; i += 8) {
            const __m256 e = _mm256_div_ps(_mm256_load_ps(inv + i), vc);
            // var clamped at 0; MAXPS returns its second operand (var) when one is NaN.
            const __m256 var = _mm256_max_ps(
                zero, _mm256_fnmadd_ps(e, e, _mm256_div_ps(_mm256_load_ps(sdd + i), vc)));
            _mm256_store_ps(mean + i, _mm256_add_ps(_mm256_load_ps(mean + i), e));
            _mm256_store_ps(inv + i, _mm256_div_ps(one, _mm256_sqrt_ps(_mm256_add_ps(var, veps))));
        }
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p;
            float *yc = y + (size_t)ch * hw + p;
            const __m256 g = _mm256_set1_ps(gamma[ch]), b = _mm256_set1_ps(beta[ch]);
            for (int i = 0; i < nb; i += 8) {
                const __m256 v =
                    _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xc + i), _mm256_load_ps(mean + i)),
                                  _mm256_load_ps(inv + i));
                _mm256_storeu_ps(yc + i, _mm256_fmadd_ps(v, g, b));
            }
        }
    }
    layernorm_channels_f32_pixels(y, x, gamma, beta, c, hw, p, hw, eps);
}

static void epilogue_avx2(float *c, int ldc, int rows, int cols, const float *bias, int gelu) {
    gemm_epilogue_with(gelu_avx2, c, ldc, rows, cols, bias, gelu);
}

static const OpsVariant avx2_variant = {
    .name = "avx2",
    .softmax_rows = softmax_rows_avx2,
    .softmax_cols = softmax_cols_avx2,
    .gelu = gelu_avx2,
    .epilogue = epilogue_avx2,
    .layernorm_rows = layernorm_rows_avx2,
    .layernorm_channels = layernorm_channels_avx2,
};

const OpsVariant *ops_variant_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &avx2_variant
                                                                            : NULL;
}

#endif
