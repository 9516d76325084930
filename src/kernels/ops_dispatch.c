// Dispatch of softmax, GELU and the LayerNorms, the same scheme as gemm.c:
// natively the variant is chosen once on first use from what the CPU
// supports (an idempotent atomic store, the only mutable global here); in
// WASM the simd128 variant is compiled in and listed first. SAM_SCALAR=1
// forces the scalar references.
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/thread_pool.h"
#include "kernels.h"
#include "ops_internal.h"

static const OpsVariant ops_scalar_variant = {
    .name = "scalar",
    .softmax_rows = softmax_rows_scalar,
    .softmax_cols = softmax_cols_scalar,
    .gelu = gelu_inplace_scalar,
    .epilogue = gemm_epilogue_scalar,
    .layernorm_rows = layernorm_rows_scalar,
    .layernorm_channels = layernorm_channels_scalar,
};

int ops_available_variants(const OpsVariant **out, int max) {
    const OpsVariant *found[4];
    int count = 0;
#if SAM_GEMM_X86
    if ((found[count] = ops_variant_avx512()) != NULL) count++;
    if ((found[count] = ops_variant_avx2()) != NULL) count++;
#endif
#if defined(__wasm_simd128__) && defined(SAM_GEMM_WASMSIMD)
    found[count++] = ops_variant_wasmsimd();
#endif
    found[count++] = &ops_scalar_variant;
    if (count > max) count = max;
    for (int i = 0; i < count; i++) out[i] = found[i];
    return count;
}

static const OpsVariant *active_variant(void) {
    static _Atomic(const OpsVariant *) active = NULL;
    const OpsVariant *v = atomic_load_explicit(&active, memory_order_acquire);
    if (!v) {
        const char *force = getenv("SAM_SCALAR");
        const OpsVariant *best[1];
        if ((force && strcmp(force, "1") == 0) || ops_available_variants(best, 1) != 1)
            v = &ops_scalar_variant;
        else
            v = best[0];
        atomic_store_explicit(&active, v, memory_order_release);
    }
    return v;
}

void softmax_rows(float *x, int rows, int cols) { active_variant()->softmax_rows(x, rows, cols); }

void softmax_cols(float *x, int rows, int cols) { active_variant()->softmax_cols(x, rows, cols); }

// GELU over chunks of GELU_CHUNK floats as tasks of the pool bound to the
// caller (thread_pool_current): elementwise, and each chunk starts a whole
// number of vectors (and 64-byte lines) after x, so every element goes
// through the same code path as in one call.
#define GELU_CHUNK 16384

typedef struct GeluJob {
    const OpsVariant *v;
    float *x;
    size_t n;
} GeluJob;

static void gelu_task(void *ctx, int task, int thread) {
    const GeluJob *j = ctx;
    const size_t start = (size_t)task * GELU_CHUNK;
    const size_t len = j->n - start < GELU_CHUNK ? j->n - start : GELU_CHUNK;
    j->v->gelu(j->x + start, len);
}

void gelu_inplace(float *x, size_t n) {
    const OpsVariant *v = active_variant();
    ThreadPool *pool = n >= 4 * GELU_CHUNK ? thread_pool_current() : NULL;
    const size_t tasks = (n + GELU_CHUNK - 1) / GELU_CHUNK;
    if (!pool || tasks > (size_t)INT_MAX) {
        v->gelu(x, n);
        return;
    }
    GeluJob j = {.v = v, .x = x, .n = n};
    thread_pool_run(pool, (int)tasks, gelu_task, &j);
}

void gemm_epilogue(float *c, int ldc, int rows, int cols, const float *bias, int gelu) {
    if (bias || gelu) active_variant()->epilogue(c, ldc, rows, cols, bias, gelu);
}

void gelu_contract(float *out, int ldo, const float *x, int ldx, const float *bias,
                   const float *weights, int m, int c, int n) {
    gelu_contract_with(active_variant()->gelu, out, ldo, x, ldx, bias, weights, m, c, n);
}

void layernorm_rows(float *y, const float *x, const float *gamma, const float *beta, int n, int c,
                    float eps) {
    active_variant()->layernorm_rows(y, x, gamma, beta, n, c, eps);
}

void layernorm_channels(float *y, const float *x, const float *gamma, const float *beta, int c,
                        int hw, float eps) {
    active_variant()->layernorm_channels(y, x, gamma, beta, c, hw, eps);
}

const char *ops_variant_name(void) { return active_variant()->name; }
