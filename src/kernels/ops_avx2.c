// AVX2 + FMA softmax and GELU (8 lanes; ragged tails use the libm-based
// scalar formulas of the references in ops.c).
#include "ops_internal.h"

#if SAM_GEMM_X86
#include <immintrin.h>
#include <math.h>

#include "kernels.h"

// e^x for x <= 0 (softmax, GELU), same scheme as softmax_avx512.c: x = n ln2 + r,
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

// GELU as in ops_avx512.c: x * Phi(x) with Phi from erfc(|x| / sqrt 2) =
// exp(-z^2) t P(t), t = 1 / (1 + z / 2), taken on the side that does not cancel.
__attribute__((target("avx2,fma"))) static inline __m256 gelu_avx2_vec(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 z = _mm256_mul_ps(_mm256_and_ps(x, abs_mask), _mm256_set1_ps(0.70710678118654752f));
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, half, one));
    __m256 p = _mm256_set1_ps(SAM_ERFC_P7);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SAM_ERFC_P6));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SAM_ERFC_P5));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SAM_ERFC_P4));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SAM_ERFC_P3));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SAM_ERFC_P2));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SAM_ERFC_P1));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SAM_ERFC_P0));
    const __m256 g = exp_avx2(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), z), z));
    const __m256 half_erfc = _mm256_mul_ps(half, _mm256_mul_ps(_mm256_mul_ps(g, t), p));
    const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 phi = _mm256_blendv_ps(_mm256_sub_ps(one, half_erfc), half_erfc, neg);
    return _mm256_mul_ps(x, phi);
}

__attribute__((target("avx2,fma"))) static void gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu_avx2_vec(_mm256_loadu_ps(x + i)));
    if (i < n) gelu_inplace_scalar(x + i, n - i);
}

static const OpsVariant avx2_variant = {
    .name = "avx2", .softmax_rows = softmax_rows_avx2, .gelu = gelu_avx2,
};

const OpsVariant *ops_variant_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &avx2_variant
                                                                            : NULL;
}

#endif
