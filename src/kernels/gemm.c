// GEMM dispatch: the variant is chosen once, on first use, from what the CPU
// supports (natively), or fixed at compile time (WASM). SAM_SCALAR=1 in the
// environment forces the scalar reference.
//
// The choice is the only mutable global of the kernels: a pointer written
// once with an atomic store. Concurrent first calls compute the same value,
// so the initialisation is idempotent and race-free.
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_internal.h"
#include "kernels.h"

const GemmVariant gemm_scalar_variant = {
    .name = "scalar", .mr = 1, .nr = 1, .kc = 0, .mc = 0, .nc = 0, .kernel = NULL,
};

int gemm_available_variants(const GemmVariant **out, int max) {
    int count = 0;
    const GemmVariant *found[4];
#if SAM_GEMM_X86
    found[count] = gemm_variant_avx512();
    if (found[count]) count++;
    found[count] = gemm_variant_avx2();
    if (found[count]) count++;
#endif
#if defined(__wasm_simd128__) && defined(SAM_GEMM_WASMSIMD)
    found[count] = gemm_variant_wasmsimd();
    if (found[count]) count++;
#endif
    found[count++] = &gemm_scalar_variant;
    if (count > max) count = max;
    for (int i = 0; i < count; i++) out[i] = found[i];
    return count;
}

static const GemmVariant *choose_variant(void) {
    const char *force = getenv("SAM_SCALAR");
    if (force && strcmp(force, "1") == 0) return &gemm_scalar_variant;
    const GemmVariant *best[1];
    return gemm_available_variants(best, 1) == 1 ? best[0] : &gemm_scalar_variant;
}

static const GemmVariant *active_variant(void) {
    static _Atomic(const GemmVariant *) active = NULL;
    const GemmVariant *v = atomic_load_explicit(&active, memory_order_acquire);
    if (!v) {
        v = choose_variant();
        atomic_store_explicit(&active, v, memory_order_release);
    }
    return v;
}

void gemm_nt_with(const GemmVariant *v, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc) {
    if (v->kernel)
        gemm_blocked_nt(v, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, 0);
    else
        gemm_nt_scalar(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_nn_with(const GemmVariant *v, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc) {
    if (v->kernel)
        gemm_blocked_nn(v, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        gemm_nn_scalar(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_tn_with(const GemmVariant *v, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc) {
    if (v->kernel)
        gemm_blocked_tn(v, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        gemm_tn_scalar(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc) {
    gemm_nt_with(active_variant(), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_nt_epilogue(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                      int ldb, float beta, float *c, int ldc, const float *bias, int gelu) {
    const GemmVariant *v = active_variant();
    if (v->kernel) {
        gemm_blocked_nt(v, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, gelu);
    } else {
        gemm_nt_scalar(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        if (m > 0) gemm_epilogue(c, ldc, m, n, bias, gelu);
    }
}

void gemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc) {
    gemm_nn_with(active_variant(), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_tn(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc) {
    gemm_tn_with(active_variant(), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// The micro-kernels load B panels with aligned loads: the packed data starts
// at the buffer's first 64-byte boundary (hence 16 floats of slack).
size_t gemm_pack_b_floats_with(const GemmVariant *v, int n, int k) {
    return v->kernel ? gemm_blocked_packed_b_floats(v, n, k) + 16 : 0;
}

void gemm_pack_b_with(const GemmVariant *v, GemmPackedB *p, float *buffer, const float *b,
                      int ldb, int n, int k, int trans_b) {
    float *aligned = v->kernel ? (float *)(((uintptr_t)buffer + 63) & ~(uintptr_t)63) : NULL;
    *p = (GemmPackedB){.variant = v, .b = b, .ldb = ldb, .n = n, .k = k, .trans_b = trans_b,
                       .packed = aligned};
    if (aligned) gemm_blocked_pack_b(v, aligned, b, ldb, n, k, trans_b);
}

size_t gemm_pack_b_floats(int n, int k) { return gemm_pack_b_floats_with(active_variant(), n, k); }

size_t gemm_pack_b_sum_floats(int n, int k) {
    const GemmVariant *v = active_variant();
    if (!v->kernel) return (size_t)n * k;  // the scalar variant reads the sum itself
    const size_t panel = (size_t)v->nr * (k < v->kc ? k : v->kc);
    return gemm_pack_b_floats_with(v, n, k) + panel;
}

void gemm_pack_b_sum(GemmPackedB *p, float *buffer, const float *x, const float *y, int ld, int n,
                     int k) {
    const GemmVariant *v = active_variant();
    if (!v->kernel) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
                buffer[(size_t)i * k + j] = x[(size_t)i * ld + j] + y[(size_t)i * ld + j];
        *p = (GemmPackedB){.variant = v, .b = buffer, .ldb = k, .n = n, .k = k, .trans_b = 1};
        return;
    }
    const size_t packed = gemm_pack_b_floats_with(v, n, k);
    float *aligned = (float *)(((uintptr_t)buffer + 63) & ~(uintptr_t)63);
    // The sum exists only packed: the struct's b is NULL (gemm_packed_b uses
    // the packed form, whose shape the caller matches).
    *p = (GemmPackedB){.variant = v, .b = NULL, .ldb = 0, .n = n, .k = k, .trans_b = 1,
                       .packed = aligned};
    gemm_blocked_pack_b_sum(v, aligned, x, y, ld, n, k, buffer + packed);
}

void gemm_pack_b(GemmPackedB *p, float *buffer, const float *b, int ldb, int n, int k,
                 int trans_b) {
    gemm_pack_b_with(active_variant(), p, buffer, b, ldb, n, k, trans_b);
}

void gemm_packed_b(int m, int n, int k, float alpha, const float *a, int lda,
                   const GemmPackedB *b, float beta, float *c, int ldc) {
    const GemmVariant *v = b->variant;
    if (b->packed && n == b->n && k == b->k) {
        gemm_blocked_packed(v, m, n, k, alpha, a, lda, b->packed, beta, c, ldc);
    } else if (b->trans_b) {
        gemm_nt_with(v, m, n, k, alpha, a, lda, b->b, b->ldb, beta, c, ldc);
    } else {
        gemm_nn_with(v, m, n, k, alpha, a, lda, b->b, b->ldb, beta, c, ldc);
    }
}

const char *gemm_variant_name(void) { return active_variant()->name; }

int gemm_variant_has_kernel(void) { return active_variant()->kernel != NULL; }
