// Internal interface between the GEMM dispatcher (gemm.c), the blocked
// driver (gemm_blocked.c) and the ISA-specific micro-kernels
// (gemm_avx2.c, gemm_avx512.c, gemm_wasmsimd.c).
//
// The driver follows the usual Goto/BLIS scheme: B is packed into panels of
// nr columns (kc x nr, column j of the panel contiguous per k step), A into
// panels of mr rows (kc x mr), and the micro-kernel computes one mr x nr
// tile of C from one A panel and one B panel entirely in registers.
#ifndef SAM_KERNELS_GEMM_INTERNAL_H
#define SAM_KERNELS_GEMM_INTERNAL_H

#include "kernels.h"

// x86 SIMD variants are compiled (with per-function target attributes, so
// plain `gcc -O3` builds them and the binary still runs on older CPUs) only
// for native x86 GCC/Clang builds; WASM and other ISAs get scalar (plus, in
// WASM, the wasmsimd variant).
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__EMSCRIPTEN__)
#define SAM_GEMM_X86 1
#else
#define SAM_GEMM_X86 0
#endif

// c (mr x nr, row stride ldc) = alpha * sum_p a[p*mr + i] * b[p*nr + j]
//                               + beta * c        (beta == 0: c is not read)
// a and b are packed panels of kc steps; kc >= 1. The tile is always full:
// the driver handles ragged edges through a temporary tile.
typedef void (*GemmMicroKernelFn)(int kc, const float *a, const float *b, float *c, int ldc,
                                  float alpha, float beta);
// The first `rows` rows of one column of tiles (full nr width): A panels of
// mr rows one after the other (mr * kc floats apart, the last zero-padded),
// C tiles mr rows apart. The ragged last tile is computed for its rows only
// (products with a few rows, the decoder's ~7 prompt tokens against mr 4,
// would otherwise double their work), and one call serves the column.
typedef void (*GemmColumnKernelFn)(int rows, int kc, const float *a, const float *b, float *c,
                                   int ldc, float alpha, float beta);

// Packs rows [0, rows) x steps [0, kb) of a row-major matrix (stride ld)
// into panels of `width` rows: dst[q*width*kb + p*width + i] =
// src[(q*width + i)*ld + p]; rows past `rows` are zero-filled.
typedef void (*GemmPackRowsFn)(float *dst, const float *src, int ld, int rows, int kb,
                               int width);

typedef struct GemmVariant {
    const char *name;  // "scalar", "avx2", "avx512", "wasmsimd"
    int mr, nr;        // register tile (nr a multiple of the vector width)
    int kc;            // k block: one B panel (kc x nr) stays in L1
    int mc;            // m block: the packed A block (mc x kc) stays in L2
    int nc;            // n block: the packed B block (kc x nc) stays in L3
    GemmMicroKernelFn kernel;
    // Optional; NULL: one kernel call per tile, ragged rows through a full tile.
    GemmColumnKernelFn column_kernel;
    // Optional SIMD version of the driver's pack_rows (transposing pack of A,
    // and of B in gemm_nt); NULL uses the portable one in gemm_blocked.c.
    GemmPackRowsFn pack_rows;
} GemmVariant;

// Blocked GEMM with the variant's micro-kernel; same contract as gemm_nt
// (with gemm_nt_epilogue's bias and gelu: NULL, 0 for none) and gemm_nn in
// kernels.h. Falls back to the scalar reference if the packing buffers
// cannot be allocated.
void gemm_blocked_nt(const GemmVariant *v, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc,
                     const float *bias, int gelu);
void gemm_blocked_nn(const GemmVariant *v, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc);
void gemm_blocked_tn(const GemmVariant *v, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc);
// B packed ahead (kernels.h GemmPackedB): the driver's B blocks in its loop
// order (n blocks outer, k blocks inner), each nr-wide panels of kb steps.
size_t gemm_blocked_packed_b_floats(const GemmVariant *v, int n, int k);
void gemm_blocked_pack_b(const GemmVariant *v, float *dst, const float *b, int ldb, int n, int k,
                         int trans_b);
void gemm_blocked_packed(const GemmVariant *v, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b_packed, float beta, float *c, int ldc);
// gemm_blocked_pack_b of B = x + y (both (n, k), row stride ld; trans_b 1)
// without forming the sum; tmp holds nr * min(k, kc) floats.
void gemm_blocked_pack_b_sum(const GemmVariant *v, float *dst, const float *x, const float *y,
                             int ld, int n, int k, float *tmp);

// SIMD variants; each returns NULL when the CPU lacks the instructions.
#if SAM_GEMM_X86
const GemmVariant *gemm_variant_avx2(void);
const GemmVariant *gemm_variant_avx512(void);
#endif
// The WASM build (wasm/Makefile: -msimd128 -DSAM_GEMM_WASMSIMD) compiles
// gemm_wasmsimd.c (micro-kernel + blocking, reusing gemm_blocked.c); gemm.c
// then lists it first.
#if defined(__wasm_simd128__) && defined(SAM_GEMM_WASMSIMD)
const GemmVariant *gemm_variant_wasmsimd(void);
#endif

// All variants usable on this CPU, best first, scalar last (for tests and
// benchmarks). Returns how many were written to out (at most max).
int gemm_available_variants(const GemmVariant **out, int max);

// The scalar reference described as a variant (kernel is NULL: callers use
// gemm_nt_scalar / gemm_nn_scalar / gemm_tn_scalar for it).
extern const GemmVariant gemm_scalar_variant;

// Runs gemm_nt / gemm_nn / gemm_tn with a given variant (scalar when
// v->kernel is NULL).
void gemm_nt_with(const GemmVariant *v, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);
void gemm_nn_with(const GemmVariant *v, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);
void gemm_tn_with(const GemmVariant *v, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);
void gemm_pack_b_with(const GemmVariant *v, GemmPackedB *p, float *buffer, const float *b,
                      int ldb, int n, int k, int trans_b);
size_t gemm_pack_b_floats_with(const GemmVariant *v, int n, int k);

// Whether the active variant is a SIMD one (else the scalar references run:
// no SIMD, or SAM_SCALAR=1); gemm_dot follows it.
int gemm_variant_has_kernel(void);

#endif
