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

// In-register transpose of 8 rows of 8 floats (r[i] element j -> r[j]
// element i): 32-bit interleave, 64-bit shuffle, 128-bit lane swap.
__attribute__((target("avx2,fma"))) static inline void transpose_8x8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    // s[4h + e], 128-bit lane L: rows 4h..4h+3 at column 4L + e.
    for (int h = 0; h < 8; h += 4) {
        s[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        s[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
        s[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        s[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
    }
    for (int e = 0; e < 4; e++) {
        r[e] = _mm256_permute2f128_ps(s[e], s[4 + e], 0x20);
        r[4 + e] = _mm256_permute2f128_ps(s[e], s[4 + e], 0x31);
    }
}

// Lane mask with the first n of 8 lanes set (for maskload / maskstore).
__attribute__((target("avx2,fma"))) static inline __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// GemmPackRowsFn with 8x8 register transposes (see pack_rows_avx512 in
// gemm_avx512.c): groups of up to 8 panel rows, 8 k steps at a time.
__attribute__((target("avx2,fma"))) static void pack_rows_avx2(float *dst, const float *src,
                                                              int ld, int rows, int kb,
                                                              int width) {
    for (int i0 = 0; i0 < rows; i0 += width) {
        const int live = rows - i0 < width ? rows - i0 : width;
        for (int g = 0; g < width; g += 8) {
            const int group = width - g < 8 ? width - g : 8;
            const int loaded = live - g < 0 ? 0 : live - g < 8 ? live - g : 8;
            const __m256i store_mask = first_lanes(group);
            const float *s = src + (size_t)(i0 + g) * ld;
            for (int p0 = 0; p0 < kb; p0 += 8) {
                const int steps = kb - p0 < 8 ? kb - p0 : 8;
                const __m256i load_mask = first_lanes(steps);
                __m256 r[8];
                for (int i = 0; i < 8; i++)
                    r[i] = i < loaded ? _mm256_maskload_ps(s + (size_t)i * ld + p0, load_mask)
                                      : _mm256_setzero_ps();
                transpose_8x8(r);
                float *d = dst + (size_t)p0 * width + g;
                for (int p = 0; p < steps; p++)
                    _mm256_maskstore_ps(d + (size_t)p * width, store_mask, r[p]);
            }
        }
        dst += (size_t)width * kb;
    }
}

// Blocking sized for AVX2-era caches (256 KiB+ L2): kc x nr B panel =
// 384 x 16 x 4 B = 24 KiB (L1); mc x kc A block = 96 x 384 x 4 B = 144 KiB
// (L2); kc x nc B block = 384 x 2048 x 4 B = 3 MiB (L3).
static const GemmVariant avx2_variant = {
    .name = "avx2", .mr = MR, .nr = NR, .kc = 384, .mc = 96, .nc = 2048,
    .kernel = kernel_6x16, .pack_rows = pack_rows_avx2,
};

const GemmVariant *gemm_variant_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &avx2_variant
                                                                            : NULL;
}

#endif
