// Internal interface between the elementwise-kernel dispatcher
// (ops_dispatch.c) and its SIMD variants (ops_avx2.c, ops_avx512.c): the
// exp- and erf-bound kernels, softmax and GELU. The scalar references
// softmax_rows_scalar and gelu_inplace_scalar in ops.c are the specification
// the variants are tested against (tests/c/test_simd_ops.c).
#ifndef SAM_KERNELS_OPS_INTERNAL_H
#define SAM_KERNELS_OPS_INTERNAL_H

#include <stddef.h>

#include "gemm_internal.h"  // SAM_GEMM_X86: x86 SIMD variants compiled in

typedef struct OpsVariant {
    const char *name;  // "scalar", "avx2", "avx512"
    void (*softmax_rows)(float *x, int rows, int cols);
    void (*gelu)(float *x, size_t n);
} OpsVariant;

#if SAM_GEMM_X86
// Each returns NULL when the CPU lacks the instructions.
const OpsVariant *ops_variant_avx2(void);
const OpsVariant *ops_variant_avx512(void);
#endif

// All variants usable on this CPU, best first, scalar last. Returns how many
// were written to out (at most max).
int ops_available_variants(const OpsVariant **out, int max);

// Coefficients shared by the SIMD GELUs: erfc(z) ~ exp(-z^2) t P(t) with
// t = 1 / (1 + z / 2), z >= 0, P of degree 7. Fitted by us (least squares
// with Lawson reweighting against mpmath's erfc on [0, 10]): max absolute
// error 2.4e-10 in exact arithmetic, ~3e-7 once evaluated in float.
#define SAM_ERFC_P0 2.851731231e-01f
#define SAM_ERFC_P1 2.458308855e-01f
#define SAM_ERFC_P2 4.313465844e-01f
#define SAM_ERFC_P3 -3.480691486e-01f
#define SAM_ERFC_P4 9.738799249e-01f
#define SAM_ERFC_P5 -8.768552923e-01f
#define SAM_ERFC_P6 3.396589289e-01f
#define SAM_ERFC_P7 -5.096500556e-02f

#endif
