// WebAssembly SIMD128 GEMM micro-kernel (XNNPACK's f32_gemm_6x8__wasmsimd
// scheme): f32 6x8 tile held in 12 v128 accumulators, two B vectors and one
// A splat per k step = 15 live vectors, within the 16 xmm registers V8 maps
// them to on x86-64. simd128 has no FMA: each step is f32x4 mul then add
// (two roundings, like the scalar reference's `acc += a * b`). The k loop is
// unrolled by 2: in V8 that took the kernel from ~30 to ~48 GFLOP/s (one
// core of an AMD EPYC, test_gemm --bench); unrolling by 4 gained nothing more.
//
// Compiled only for the WASM build (-msimd128 -DSAM_GEMM_WASMSIMD); the
// blocked driver (gemm_blocked.c) packs A and B and handles ragged edges.
#include "gemm_internal.h"

#if defined(__wasm_simd128__) && defined(SAM_GEMM_WASMSIMD)
#include <stddef.h>
#include <wasm_simd128.h>

#define MR 6
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

static void kernel_6x8(int kc, const float *a, const float *b, float *c, int ldc, float alpha,
                       float beta) {
    ACC_DECL(0); ACC_DECL(1); ACC_DECL(2); ACC_DECL(3); ACC_DECL(4); ACC_DECL(5);
    int p = 0;
    for (; p + 2 <= kc; p += 2) {
        {
            const v128_t b0 = wasm_v128_load(b);
            const v128_t b1 = wasm_v128_load(b + 4);
            ACC_STEP(0); ACC_STEP(1); ACC_STEP(2); ACC_STEP(3); ACC_STEP(4); ACC_STEP(5);
        }
        {
            const v128_t b0 = wasm_v128_load(b + NR);
            const v128_t b1 = wasm_v128_load(b + NR + 4);
            a += MR;  // the second k step's A values
            ACC_STEP(0); ACC_STEP(1); ACC_STEP(2); ACC_STEP(3); ACC_STEP(4); ACC_STEP(5);
        }
        a += MR;
        b += 2 * NR;
    }
    for (; p < kc; p++) {
        const v128_t b0 = wasm_v128_load(b);
        const v128_t b1 = wasm_v128_load(b + 4);
        ACC_STEP(0); ACC_STEP(1); ACC_STEP(2); ACC_STEP(3); ACC_STEP(4); ACC_STEP(5);
        a += MR;
        b += NR;
    }
    const v128_t va = wasm_f32x4_splat(alpha), vb = wasm_f32x4_splat(beta);
    ACC_STORE(0); ACC_STORE(1); ACC_STORE(2); ACC_STORE(3); ACC_STORE(4); ACC_STORE(5);
}

// Blocking: kc x nr B panel = 256 x 8 x 4 B = 8 KiB (L1); mc x kc A block =
// 120 x 256 x 4 B = 120 KiB (L2); kc x nc B block = 256 x 1024 x 4 B = 1 MiB.
// The portable pack_rows of gemm_blocked.c serves (no SIMD transpose here).
static const GemmVariant wasmsimd_variant = {
    .name = "wasmsimd", .mr = MR, .nr = NR, .kc = 256, .mc = 120, .nc = 1024,
    .kernel = kernel_6x8, .pack_rows = NULL,
};

const GemmVariant *gemm_variant_wasmsimd(void) { return &wasmsimd_variant; }

#endif
