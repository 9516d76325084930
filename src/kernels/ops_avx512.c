// AVX-512 softmax and GELU (16 lanes, masked tails). exp and erfc are our
// own (below); the references in ops.c use libm expf / erff, and the two
// agree to a few ulp (tests/c/test_simd_ops.c).
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

// GELU x * Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2: with z = |x| / sqrt 2,
// Phi = 1 - erfc(z) / 2 for x >= 0 and erfc(z) / 2 for x < 0, so neither
// tail cancels. erfc(z) = exp(-z^2) t P(t), t = 1 / (1 + z / 2) (coefficients
// in ops_internal.h). NaN stays NaN; GELU(+inf) = +inf.
__attribute__((target("avx512f"))) static inline __m512 gelu_avx512_vec(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(z, half, one));
    __m512 p = _mm512_set1_ps(SAM_ERFC_P7);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SAM_ERFC_P6));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SAM_ERFC_P5));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SAM_ERFC_P4));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SAM_ERFC_P3));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SAM_ERFC_P2));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SAM_ERFC_P1));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SAM_ERFC_P0));
    const __m512 g = exp_avx512(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), z), z));
    const __m512 half_erfc = _mm512_mul_ps(half, _mm512_mul_ps(_mm512_mul_ps(g, t), p));
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 phi = _mm512_mask_blend_ps(neg, _mm512_sub_ps(one, half_erfc), half_erfc);
    return _mm512_mul_ps(x, phi);
}

__attribute__((target("avx512f"))) static void gelu_avx512(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu_avx512_vec(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(x + i, tail, gelu_avx512_vec(_mm512_maskz_loadu_ps(tail, x + i)));
    }
}

static const OpsVariant avx512_variant = {
    .name = "avx512", .softmax_rows = softmax_rows_avx512, .gelu = gelu_avx512,
};

const OpsVariant *ops_variant_avx512(void) {
    return __builtin_cpu_supports("avx512f") ? &avx512_variant : NULL;
}

#endif
