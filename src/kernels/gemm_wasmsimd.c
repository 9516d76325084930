// WebAssembly SIMD128 GEMM micro-kernel: f32 4x8 tile held in 8 v128
// accumulators, two B vectors and one A splat per k step. simd128 has no FMA:
// each step is f32x4 mul then add (two roundings, like the scalar
// reference's `acc += a * b`), so each product needs a temporary register.
//
// Why 4x8 and one k step per loop iteration: V8 gives wasm code 15 xmm
// registers on x86-64 (xmm15 is its scratch). A 6x8 tile needs 12
// accumulators + 2 B + 1 A + 1 product = 16, so V8 spilled accumulators to
// the stack and every k step waited on a store-to-load round trip; and when
// the k loop is unrolled, clang interleaves the steps (both steps' B vectors
// and splats live at once), which spills the 4x8 tile too. One AMD EPYC
// core, test_gemm --bench (encoder shapes, GFLOP/s): 6x8 unrolled by 2 (the
// previous kernel) 51-55, 6x8 not unrolled 48-50, 5x8 44-47, 4x8 unrolled by
// 2 or 4 38-44, 4x8 not unrolled 57-61 (the FP pipes' peak at V8's mul + add
// is ~68).
//
// Compiled only for the WASM build (-msimd128 -DSAM_GEMM_WASMSIMD); the
// blocked driver (gemm_blocked.c) packs A and B and handles ragged edges.
#include "gemm_internal.h"

#if defined(__wasm_simd128__) && defined(SAM_GEMM_WASMSIMD)
#include <stddef.h>
#include <string.h>
#include <wasm_simd128.h>

#define MR 4
#define NR 8

#define ACC_DECL(i) v128_t c##i##a = wasm_f32x4_splat(0.0f), c##i##b = wasm_f32x4_splat(0.0f)
#define ACC_STEP(i)                                                   \
    do {                                                              \
        const v128_t ai = wasm_v128_load32_splat(a + (i));            \
        c##i##a = wasm_f32x4_add(c##i##a, wasm_f32x4_mul(ai, b0));    \
        c##i##b = wasm_f32x4_add(c##i##b, wasm_f32x4_mul(ai, b1));    \
    } while (0)
// C row i = alpha * acc + beta * C (beta == 0: C is not read, so NaN in C
// does not leak, as in the scalar reference).
#define ACC_STORE(i)                                                                   \
    do {                                                                               \
        float *ci = c + (size_t)(i) * ldc;                                             \
        v128_t ra = wasm_f32x4_mul(va, c##i##a), rb = wasm_f32x4_mul(va, c##i##b);     \
        if (beta != 0.0f) {                                                            \
            ra = wasm_f32x4_add(ra, wasm_f32x4_mul(vb, wasm_v128_load(ci)));           \
            rb = wasm_f32x4_add(rb, wasm_f32x4_mul(vb, wasm_v128_load(ci + 4)));       \
        }                                                                              \
        wasm_v128_store(ci, ra);                                                       \
        wasm_v128_store(ci + 4, rb);                                                   \
    } while (0)

static inline __attribute__((always_inline)) void kernel_4x8_body(int kc, const float *a,
                                                                  const float *b, float *c,
                                                                  int ldc, float alpha,
                                                                  float beta) {
    ACC_DECL(0); ACC_DECL(1); ACC_DECL(2); ACC_DECL(3);
    for (int p = 0; p < kc; p++) {
        const v128_t b0 = wasm_v128_load(b);
        const v128_t b1 = wasm_v128_load(b + 4);
        ACC_STEP(0); ACC_STEP(1); ACC_STEP(2); ACC_STEP(3);
        a += MR;
        b += NR;
    }
    const v128_t va = wasm_f32x4_splat(alpha), vb = wasm_f32x4_splat(beta);
    ACC_STORE(0); ACC_STORE(1); ACC_STORE(2); ACC_STORE(3);
}

static void kernel_4x8(int kc, const float *a, const float *b, float *c, int ldc, float alpha,
                       float beta) {
    kernel_4x8_body(kc, a, b, c, ldc, alpha, beta);
}

// kernel_4x8 for the first `rows` (1 .. 3) rows, for the ragged end of a
// column of tiles (products with a few rows, such as the decoder's ~7
// prompt tokens, would otherwise double their work): with rows a
// constant after inlining, the accumulators stay in registers.
static inline __attribute__((always_inline)) void kernel_rows_x8(const int rows, int kc,
                                                                 const float *a, const float *b,
                                                                 float *c, int ldc, float alpha,
                                                                 float beta) {
    v128_t acc[MR - 1][2];
    for (int i = 0; i < rows; i++) acc[i][0] = acc[i][1] = wasm_f32x4_splat(0.0f);
    for (int p = 0; p < kc; p++) {
        const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        for (int i = 0; i < rows; i++) {
            const v128_t ai = wasm_v128_load32_splat(a + i);
            acc[i][0] = wasm_f32x4_add(acc[i][0], wasm_f32x4_mul(ai, b0));
            acc[i][1] = wasm_f32x4_add(acc[i][1], wasm_f32x4_mul(ai, b1));
        }
        a += MR;
        b += NR;
    }
    const v128_t va = wasm_f32x4_splat(alpha), vb = wasm_f32x4_splat(beta);
    for (int i = 0; i < rows; i++) {
        float *ci = c + (size_t)i * ldc;
        v128_t ra = wasm_f32x4_mul(va, acc[i][0]), rb = wasm_f32x4_mul(va, acc[i][1]);
        if (beta != 0.0f) {
            ra = wasm_f32x4_add(ra, wasm_f32x4_mul(vb, wasm_v128_load(ci)));
            rb = wasm_f32x4_add(rb, wasm_f32x4_mul(vb, wasm_v128_load(ci + 4)));
        }
        wasm_v128_store(ci, ra);
        wasm_v128_store(ci + 4, rb);
    }
}

static void kernel_edge(int rows, int kc, const float *a, const float *b, float *c, int ldc,
                        float alpha, float beta) {
    switch (rows) {
    case 1: kernel_rows_x8(1, kc, a, b, c, ldc, alpha, beta); break;
    case 2: kernel_rows_x8(2, kc, a, b, c, ldc, alpha, beta); break;
    default: kernel_rows_x8(3, kc, a, b, c, ldc, alpha, beta); break;
    }
}

// All `rows` rows of a column of tiles (GemmColumnKernelFn): full tiles,
// then the ragged rest through kernel_edge; one call instead of one per
// tile, whose cost V8 makes felt in products with a short k.
static void kernel_column(int rows, int kc, const float *a, const float *b, float *c, int ldc,
                          float alpha, float beta) {
    int i = 0;
    for (; i + MR <= rows; i += MR)
        kernel_4x8_body(kc, a + (size_t)i * kc, b, c + (size_t)i * ldc, ldc, alpha, beta);
    if (i < rows) kernel_edge(rows - i, kc, a + (size_t)i * kc, b, c + (size_t)i * ldc, ldc, alpha, beta);
}

// The transposing pack (gemm_internal.h, GemmPackRowsFn) with 4 x 4 register
// transposes: four rows' next four k steps are loaded as four vectors and
// stored as four k-major groups of four. The decoder packs whole image-side
// matrices (4096 x 256) this way several times per prompt; element by element
// that cost ~1.4 ns a float in V8, a fifth of the decoder's GEMM time.
static void pack_rows_wasmsimd(float *dst, const float *src, int ld, int rows, int kb, int width) {
    const v128_t zero = wasm_f32x4_splat(0.0f);
    for (int i0 = 0; i0 < rows; i0 += width) {
        const int live = rows - i0 < width ? rows - i0 : width;
        for (int g = 0; g < width; g += 4) {
            // Rows stored: 4 unless width is not a multiple of 4.
            const int group = width - g < 4 ? width - g : 4;
            const int loaded = live - g < 0 ? 0 : live - g < group ? live - g : group;
            const float *s0 = loaded > 0 ? src + (size_t)(i0 + g) * ld : NULL;
            int p = 0;
            for (; p + 4 <= kb; p += 4) {
                const v128_t r0 = loaded > 0 ? wasm_v128_load(s0 + p) : zero;
                const v128_t r1 = loaded > 1 ? wasm_v128_load(s0 + (size_t)ld + p) : zero;
                const v128_t r2 = loaded > 2 ? wasm_v128_load(s0 + (size_t)2 * ld + p) : zero;
                const v128_t r3 = loaded > 3 ? wasm_v128_load(s0 + (size_t)3 * ld + p) : zero;
                // 4 x 4 transpose: c_j holds k step p + j of the four rows.
                const v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);
                const v128_t t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
                const v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
                const v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
                const v128_t c[4] = {wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5),
                                     wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7),
                                     wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5),
                                     wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7)};
                float *d = dst + (size_t)p * width + g;
                for (int j = 0; j < 4; j++) {
                    if (group == 4) {
                        wasm_v128_store(d + (size_t)j * width, c[j]);
                    } else {
                        float lanes[4];
                        wasm_v128_store(lanes, c[j]);
                        memcpy(d + (size_t)j * width, lanes, sizeof(float) * (size_t)group);
                    }
                }
            }
            for (; p < kb; p++) {
                float *d = dst + (size_t)p * width + g;
                for (int i = 0; i < group; i++) d[i] = i < loaded ? s0[(size_t)i * ld + p] : 0.0f;
            }
        }
        dst += (size_t)width * kb;
    }
}

// Blocking: kc x nr B panel = 256 x 8 x 4 B = 8 KiB (L1); mc x kc A block =
// 120 x 256 x 4 B = 120 KiB (L2); kc x nc B block = 256 x 1024 x 4 B = 1 MiB.
static const GemmVariant wasmsimd_variant = {
    .name = "wasmsimd", .mr = MR, .nr = NR, .kc = 256, .mc = 120, .nc = 1024,
    .kernel = kernel_4x8, .column_kernel = kernel_column,
    .pack_rows = pack_rows_wasmsimd,
};

const GemmVariant *gemm_variant_wasmsimd(void) { return &wasmsimd_variant; }

#endif
