// gemm_dot (kernels.h): C = alpha A diag(s) B^T + beta C for a few rows of
// A and B with a long k, both stored along k (the decoder's sums over the
// 4096 image rows: probabilities against per-image matrices or the
// factored correction). The blocked GEMM would transpose both operands
// into panels first (gemm_blocked.c), which costs as much as the product
// here; these kernels read the rows as they are.
//
// - gemm_dot_scalar: the reference, one sequential sum per element.
// - the vector version: each output element sums DOT_WIDTH interleaved
//   partial sums (element p goes to lane p % DOT_WIDTH), combined in a fixed
//   order at the end; 2 x 4 outputs per block (8 vector accumulators, 2 A
//   vectors, 1 B vector), in the compilers' vector extensions so that one
//   source serves WASM simd128 (4 lanes) and x86 (8 lanes; SAM_MULTIVERSION:
//   AVX-512 / AVX2 / baseline).
// Lanes reorder the additions, so the variants agree with the reference to
// float rounding, not bit for bit (tests/c/test_gemm.c).
#include <stddef.h>
#include <string.h>

#include "../common/multiversion.h"
#include "gemm_internal.h"
#include "kernels.h"

#if defined(__wasm_simd128__)
#define DOT_WASMSIMD 1
#else
#define DOT_WASMSIMD 0
#endif

static void store(float *c, float sum, float alpha, float beta) {
    *c = beta == 0.0f ? alpha * sum : alpha * sum + beta * *c;
}

void gemm_dot_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, const float *s, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            const float *ai = a + (size_t)i * lda, *bj = b + (size_t)j * ldb;
            float sum = 0.0f;
            for (int p = 0; p < k; p++) sum += (s ? ai[p] * s[p] : ai[p]) * bj[p];
            store(c + (size_t)i * ldc + j, sum, alpha, beta);
        }
    }
}

// Lanes as GCC/clang vector extensions: 8 floats natively (two SSE
// registers on the baseline, one AVX register in the AVX2 / AVX-512 clones),
// 4 in WASM (one v128).
#define DOT_WIDTH (DOT_WASMSIMD ? 4 : 8)
typedef float DotVec __attribute__((vector_size(DOT_WIDTH * sizeof(float))));

// Unaligned vector load (memcpy compiles to one move), and a row of A's
// next DOT_WIDTH values scaled by s when given. Macros rather than functions:
// a function returning a 32-byte vector changes the ABI in the non-AVX clone.
#define LOAD_VEC(dst, src) memcpy(&(dst), (src), sizeof(DotVec))
#define LOAD_A(dst, a, s, p)                         \
    do {                                             \
        LOAD_VEC(dst, (a) + (p));                    \
        if (s) {                                     \
            DotVec scale_;                           \
            LOAD_VEC(scale_, (s) + (p));             \
            (dst) *= scale_;                         \
        }                                            \
    } while (0)

// rows (<= 2) rows of A against cols (<= 4) rows of B, constants after
// inlining so that the accumulators stay in registers.
static inline __attribute__((always_inline)) void dot_block(const int rows, const int cols, int k,
                                                            const float *a, int lda,
                                                            const float *b, int ldb,
                                                            const float *s, float alpha,
                                                            float beta, float *c, int ldc) {
    DotVec acc[2][4];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) acc[i][j] = (DotVec){0};
    const int kv = k - k % DOT_WIDTH;
    for (int p = 0; p < kv; p += DOT_WIDTH) {
        DotVec av[2];
        for (int i = 0; i < rows; i++) LOAD_A(av[i], a + (size_t)i * lda, s, p);
        for (int j = 0; j < cols; j++) {
            DotVec bv;
            LOAD_VEC(bv, b + (size_t)j * ldb + p);
            for (int i = 0; i < rows; i++) acc[i][j] += av[i] * bv;
        }
    }
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) {
            const float *ai = a + (size_t)i * lda, *bj = b + (size_t)j * ldb;
            float sum = 0.0f;
            for (int l = 0; l < DOT_WIDTH; l++) sum += acc[i][j][l];
            for (int p = kv; p < k; p++) sum += (s ? ai[p] * s[p] : ai[p]) * bj[p];
            store(c + (size_t)i * ldc + j, sum, alpha, beta);
        }
    }
}

SAM_MULTIVERSION static void gemm_dot_vec(int m, int n, int k, float alpha, const float *a,
                                          int lda, const float *b, int ldb, const float *s,
                                          float beta, float *c, int ldc) {
    for (int i0 = 0; i0 < m; i0 += 2) {
        const float *ai = a + (size_t)i0 * lda;
        float *ci = c + (size_t)i0 * ldc;
        int j0 = 0;
        if (m - i0 >= 2) {
            for (; j0 + 4 <= n; j0 += 4)
                dot_block(2, 4, k, ai, lda, b + (size_t)j0 * ldb, ldb, s, alpha, beta, ci + j0, ldc);
            for (; j0 < n; j0++)
                dot_block(2, 1, k, ai, lda, b + (size_t)j0 * ldb, ldb, s, alpha, beta, ci + j0, ldc);
        } else {
            for (; j0 + 4 <= n; j0 += 4)
                dot_block(1, 4, k, ai, lda, b + (size_t)j0 * ldb, ldb, s, alpha, beta, ci + j0, ldc);
            for (; j0 < n; j0++)
                dot_block(1, 1, k, ai, lda, b + (size_t)j0 * ldb, ldb, s, alpha, beta, ci + j0, ldc);
        }
    }
}

void gemm_dot(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
              const float *s, float beta, float *c, int ldc) {
    if (!gemm_variant_has_kernel()) {
        gemm_dot_scalar(m, n, k, alpha, a, lda, b, ldb, s, beta, c, ldc);
        return;
    }
    gemm_dot_vec(m, n, k, alpha, a, lda, b, ldb, s, beta, c, ldc);
}
