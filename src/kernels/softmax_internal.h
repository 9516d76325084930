// Internal interface between the softmax dispatcher (softmax.c) and its SIMD
// variants (softmax_avx2.c, softmax_avx512.c); softmax_rows_scalar in ops.c
// is the reference they are tested against.
#ifndef SAM_KERNELS_SOFTMAX_INTERNAL_H
#define SAM_KERNELS_SOFTMAX_INTERNAL_H

#include "gemm_internal.h"  // SAM_GEMM_X86: x86 SIMD variants compiled in

typedef struct SoftmaxVariant {
    const char *name;  // "scalar", "avx2", "avx512"
    void (*rows)(float *x, int rows, int cols);
} SoftmaxVariant;

#if SAM_GEMM_X86
// Each returns NULL when the CPU lacks the instructions.
const SoftmaxVariant *softmax_variant_avx2(void);
const SoftmaxVariant *softmax_variant_avx512(void);
#endif

// All variants usable on this CPU, best first, scalar last. Returns how many
// were written to out (at most max).
int softmax_available_variants(const SoftmaxVariant **out, int max);

#endif
