// AVX-512 GEMM micro-kernel: f32 14x32 tile (28 zmm accumulators, two B
// vectors, A broadcast from memory), driven by gemm_blocked.c.
//
// Register budget: 14 rows x 2 vectors = 28 accumulators + 2 B loads of the
// 32 zmm registers; the A element is a memory-operand broadcast. Each k step
// issues 28 FMAs against 16 loads, which keeps both FMA pipes busy.
// Compiled with a function-level target attribute so the file builds with
// plain `gcc -O3` and is only called when the CPU reports AVX-512F.
#include "gemm_internal.h"

#if SAM_GEMM_X86
#include <immintrin.h>

#define MR 14
#define NR 32

#define ACC_DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps()
#define ACC_FMA(i)                                        \
    do {                                                  \
        const __m512 ai = _mm512_set1_ps(a[i]);           \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a);       \
        c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b);       \
    } while (0)
// C row i = alpha * acc + beta * C (beta == 0: C is not read, so NaN in C
// does not leak into the result).
#define ACC_STORE(i)                                                                     \
    do {                                                                                 \
        float *ci = c + (size_t)(i) * ldc;                                               \
        __m512 ra = _mm512_mul_ps(va, c##i##a), rb = _mm512_mul_ps(va, c##i##b);         \
        if (beta != 0.0f) {                                                              \
            ra = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), ra);                           \
            rb = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), rb);                      \
        }                                                                                \
        _mm512_storeu_ps(ci, ra);                                                        \
        _mm512_storeu_ps(ci + 16, rb);                                                   \
    } while (0)

__attribute__((target("avx512f"))) static void kernel_14x32(int kc, const float *a,
                                                            const float *b, float *c, int ldc,
                                                            float alpha, float beta) {
    ACC_DECL(0); ACC_DECL(1); ACC_DECL(2); ACC_DECL(3); ACC_DECL(4); ACC_DECL(5); ACC_DECL(6);
    ACC_DECL(7); ACC_DECL(8); ACC_DECL(9); ACC_DECL(10); ACC_DECL(11); ACC_DECL(12); ACC_DECL(13);
    for (int p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_load_ps(b);
        const __m512 b1 = _mm512_load_ps(b + 16);
        ACC_FMA(0); ACC_FMA(1); ACC_FMA(2); ACC_FMA(3); ACC_FMA(4); ACC_FMA(5); ACC_FMA(6);
        ACC_FMA(7); ACC_FMA(8); ACC_FMA(9); ACC_FMA(10); ACC_FMA(11); ACC_FMA(12); ACC_FMA(13);
        a += MR;
        b += NR;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    ACC_STORE(0); ACC_STORE(1); ACC_STORE(2); ACC_STORE(3); ACC_STORE(4); ACC_STORE(5);
    ACC_STORE(6); ACC_STORE(7); ACC_STORE(8); ACC_STORE(9); ACC_STORE(10); ACC_STORE(11);
    ACC_STORE(12); ACC_STORE(13);
}

// kc x nr B panel = 256 x 32 x 4 B = 32 KiB (L1 is 48 KiB on Zen 4/5, 32-48
// on Intel); mc x kc A block = 336 x 256 x 4 B = 336 KiB (L2 >= 1 MiB);
// kc x nc B block = 256 x 2048 x 4 B = 2 MiB (L3).
static const GemmVariant avx512_variant = {
    .name = "avx512", .mr = MR, .nr = NR, .kc = 256, .mc = 336, .nc = 2048,
    .kernel = kernel_14x32,
};

const GemmVariant *gemm_variant_avx512(void) {
    return __builtin_cpu_supports("avx512f") ? &avx512_variant : NULL;
}

#endif
