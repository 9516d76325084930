// AVX2 + FMA GEMM micro-kernel: f32 6x16 tile (12 ymm accumulators, two B
// vectors, one A broadcast = 15 of the 16 ymm registers), driven by
// gemm_blocked.c. Function-level target attributes keep the file buildable
// with plain `gcc -O3`; it is only called when the CPU reports AVX2 and FMA.
#include "gemm_internal.h"

#if SAM_GEMM_X86
#include <immintrin.h>

#define MR 6
#define NR 16

#define ACC_DECL(i) __m256 c##i##a = _mm256_setzero_ps(), c##i##b = _mm256_setzero_ps()
#define ACC_FMA(i)                                        \
    do {                                                  \
        const __m256 ai = _mm256_broadcast_ss(a + (i));   \
        c##i##a = _mm256_fmadd_ps(ai, b0, c##i##a);       \
        c##i##b = _mm256_fmadd_ps(ai, b1, c##i##b);       \
    } while (0)
// C row i = alpha * acc + beta * C (beta == 0: C is not read).
#define ACC_STORE(i)                                                                     \
    do {                                                                                 \
        float *ci = c + (size_t)(i) * ldc;                                               \
        __m256 ra = _mm256_mul_ps(va, c##i##a), rb = _mm256_mul_ps(va, c##i##b);         \
        if (beta != 0.0f) {                                                              \
            ra = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), ra);                           \
            rb = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), rb);                       \
        }                                                                                \
        _mm256_storeu_ps(ci, ra);                                                        \
        _mm256_storeu_ps(ci + 8, rb);                                                    \
    } while (0)

__attribute__((target("avx2,fma"))) static void kernel_6x16(int kc, const float *a,
                                                            const float *b, float *c, int ldc,
                                                            float alpha, float beta) {
    ACC_DECL(0); ACC_DECL(1); ACC_DECL(2); ACC_DECL(3); ACC_DECL(4); ACC_DECL(5);
    for (int p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_load_ps(b);
        const __m256 b1 = _mm256_load_ps(b + 8);
        ACC_FMA(0); ACC_FMA(1); ACC_FMA(2); ACC_FMA(3); ACC_FMA(4); ACC_FMA(5);
        a += MR;
        b += NR;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    ACC_STORE(0); ACC_STORE(1); ACC_STORE(2); ACC_STORE(3); ACC_STORE(4); ACC_STORE(5);
}

// kc x nr B panel = 256 x 16 x 4 B = 16 KiB (L1); mc x kc A block =
// 144 x 256 x 4 B = 144 KiB (L2); kc x nc B block = 2 MiB (L3).
static const GemmVariant avx2_variant = {
    .name = "avx2", .mr = MR, .nr = NR, .kc = 256, .mc = 144, .nc = 2048,
    .kernel = kernel_6x16,
};

const GemmVariant *gemm_variant_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &avx2_variant
                                                                            : NULL;
}

#endif
