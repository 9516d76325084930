// Dispatch of softmax and GELU, the same scheme as gemm.c: the variant is
// chosen once on first use (an idempotent atomic store, the only mutable
// global here); SAM_SCALAR=1 forces the scalar references.
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "ops_internal.h"

static const OpsVariant ops_scalar_variant = {
    .name = "scalar", .softmax_rows = softmax_rows_scalar, .gelu = gelu_inplace_scalar,
};

int ops_available_variants(const OpsVariant **out, int max) {
    const OpsVariant *found[4];
    int count = 0;
#if SAM_GEMM_X86
    if ((found[count] = ops_variant_avx512()) != NULL) count++;
    if ((found[count] = ops_variant_avx2()) != NULL) count++;
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

void gelu_inplace(float *x, size_t n) { active_variant()->gelu(x, n); }

const char *ops_variant_name(void) { return active_variant()->name; }
