// Internal interface between the elementwise-kernel dispatcher
// (ops_dispatch.c) and its SIMD variants (ops_avx2.c, ops_avx512.c,
// ops_wasmsimd.c): the exp- and erf-bound kernels (softmax, GELU) and the
// LayerNorms. The scalar references softmax_rows_scalar, gelu_inplace_scalar,
// layernorm_rows_scalar and layernorm_channels_scalar in ops.c are the
// specification the variants are tested against (tests/c/test_simd_ops.c).
#ifndef SAM_KERNELS_OPS_INTERNAL_H
#define SAM_KERNELS_OPS_INTERNAL_H

#include <stddef.h>

#include "gemm_internal.h"  // SAM_GEMM_X86: x86 SIMD variants compiled in

typedef struct OpsVariant {
    const char *name;  // "scalar", "avx2", "avx512", "wasmsimd"
    void (*softmax_rows)(float *x, int rows, int cols);
    void (*softmax_cols)(float *x, int rows, int cols);
    void (*gelu)(float *x, size_t n);
    // Same contract as gemm_epilogue (kernels.h): one finished tile of a GEMM.
    void (*epilogue)(float *c, int ldc, int rows, int cols, const float *bias, int gelu);
    // Same contracts as layernorm_rows / layernorm_channels (kernels.h).
    void (*layernorm_rows)(float *y, const float *x, const float *gamma, const float *beta, int n,
                           int c, float eps);
    void (*layernorm_channels)(float *y, const float *x, const float *gamma, const float *beta,
                               int c, int hw, float eps);
} OpsVariant;

#if SAM_GEMM_X86
// Each returns NULL when the CPU lacks the instructions.
const OpsVariant *ops_variant_avx2(void);
const OpsVariant *ops_variant_avx512(void);
#endif
// The WASM build (wasm/Makefile: -msimd128 -DSAM_GEMM_WASMSIMD) compiles
// ops_wasmsimd.c; ops_dispatch.c then lists it first.
#if defined(__wasm_simd128__) && defined(SAM_GEMM_WASMSIMD)
const OpsVariant *ops_variant_wasmsimd(void);
#endif

// gelu_contract through a given GELU over chunks of a row: bias added,
// gelu, then accumulated (ops.c).
void gelu_contract_with(void (*gelu)(float *x, size_t n), float *out, int ldo, const float *x,
                        int ldx, const float *bias, const float *weights, int m, int c, int n);

// gemm_epilogue through a given GELU, one row of the tile at a time (ops.c);
// the native variants' rows are a whole register tile wide (16 or 32).
void gemm_epilogue_with(void (*gelu)(float *x, size_t n), float *c, int ldc, int rows, int cols,
                        const float *bias, int gelu_on);

// All variants usable on this CPU, best first, scalar last. Returns how many
// were written to out (at most max).
int ops_available_variants(const OpsVariant **out, int max);

// The SIMD LayerNorms accumulate in float, with two passes over x for the
// statistics, as PyTorch: the mean m1 = sum x / c, then the centred values
// d = x - m1. The second pass sums d as well as d^2 (the "corrected
// two-pass" algorithm; Chan, Golub and LeVeque 1983): e = sum d / c is the
// rounding error of m1, so mean = m1 + e and var = sum d^2 / c - e^2. The
// float sums of x round relative to |mean|, those of d only relative to the
// spread of x: an offset row (|mean| >> std) keeps its precision, and a
// constant row gives exactly beta, as the double-accumulating reference.
// var is clamped at 0 (rounding can leave -tiny; NaN passes through).
//
// softmax_cols_scalar_range: the reference softmax_cols on columns [j0, j1)
// only (the SIMD variants' ragged column ends).
void softmax_cols_scalar_range(float *x, int rows, int cols, int j0, int j1);

// layernorm_channels_f32_pixels is that arithmetic one pixel at a time, for
// the pixels [p0, p1) that do not fill a vector (ops.c).
void layernorm_channels_f32_pixels(float *y, const float *x, const float *gamma,
                                   const float *beta, int c, int hw, int p0, int p1, float eps);

// LayerNorm2d's SIMD variants walk x (c, hw) as the reference does: blocks
// of SAM_LN2D_BLOCK pixels, channels in the outer loop, so that each pass
// reads runs of the block's length along the rows of x, and the per-pixel
// sums are vectors across the block's pixels (kept in stack arrays). A tile
// of 16 pixels with the sums in registers, walking the channels with stride
// hw, was 2x (V8) to 6x (AVX2) slower on 64 x 16384: one 64-byte line per
// row and visit defeats the hardware prefetchers.
#define SAM_LN2D_BLOCK 128

// GELU in the SIMD variants: GELU(x) = x (1 + erf(x / sqrt 2)) / 2 (the
// formula torch evaluates) with erf as a rational function, erf(z) =
// z P(z^2) / Q(z^2) for z clamped to [-4, 4] (beyond, erf is +-1 in float),
// P of degree 6 and Q of degree 4 (the coefficients XLA and Eigen use for
// float erf), rewritten in u = x clamped to [-4 sqrt 2, 4 sqrt 2] with the
// 1 / sqrt 2, the 1 / 2 and Q's leading coefficient folded in:
//   GELU(x) = x / 2 + x u P'(u^2) / Q'(u^2),  Q' monic,
// evaluated in Estrin's form (pairs, then u^4 and u^8). Max error 2.4e-7
// max(1, |x|) against double erf on [-12, 12] in WASM's mul + add, less
// with FMA; within the 1e-6 max(1, |x|) of tests/c/test_simd_ops.c. On the
// negative side x/2 + x erf/2 cancels as torch's own float evaluation does.
// x/2 + x erf/2 rather than x (1/2 + erf/2): at the clamp 1/2 + erf/2 rounds
// to 0 or +-3e-8, which would turn GELU(-inf) into +-inf; this way it is
// -inf + inf = NaN as in the reference, and a NaN x stays NaN whatever the
// clamp's min/max return for it.
#define SAM_GELU_BOUND 5.656854249492380f  // 4 sqrt 2
#define SAM_GELU_P0 6.251027420505364e+03f
#define SAM_GELU_P1 5.737216134392058e+02f
#define SAM_GELU_P2 7.135991972160816e+01f
#define SAM_GELU_P3 2.763414814923722e+00f
#define SAM_GELU_P4 5.099687644745001e-02f
#define SAM_GELU_P5 -3.362553138454656e-04f
#define SAM_GELU_P6 1.654249767399956e-06f
#define SAM_GELU_Q0 1.566900309348331e+04f
#define SAM_GELU_Q1 4.049590991946990e+03f
#define SAM_GELU_Q2 4.621223874538099e+02f
#define SAM_GELU_Q3 2.929740530288285e+01f

#endif
