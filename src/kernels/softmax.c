// Softmax dispatch, the same scheme as gemm.c: the variant is chosen once on
// first use (an idempotent atomic store, the only mutable global here);
// SAM_SCALAR=1 forces the scalar reference.
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "softmax_internal.h"

static const SoftmaxVariant softmax_scalar_variant = {.name = "scalar",
                                                      .rows = softmax_rows_scalar};

int softmax_available_variants(const SoftmaxVariant **out, int max) {
    const SoftmaxVariant *found[4];
    int count = 0;
#if SAM_GEMM_X86
    if ((found[count] = softmax_variant_avx512()) != NULL) count++;
    if ((found[count] = softmax_variant_avx2()) != NULL) count++;
#endif
    found[count++] = &softmax_scalar_variant;
    if (count > max) count = max;
    for (int i = 0; i < count; i++) out[i] = found[i];
    return count;
}

static const SoftmaxVariant *active_variant(void) {
    static _Atomic(const SoftmaxVariant *) active = NULL;
    const SoftmaxVariant *v = atomic_load_explicit(&active, memory_order_acquire);
    if (!v) {
        const char *force = getenv("SAM_SCALAR");
        const SoftmaxVariant *best[1];
        if ((force && strcmp(force, "1") == 0) || softmax_available_variants(best, 1) != 1)
            v = &softmax_scalar_variant;
        else
            v = best[0];
        atomic_store_explicit(&active, v, memory_order_release);
    }
    return v;
}

void softmax_rows(float *x, int rows, int cols) { active_variant()->rows(x, rows, cols); }

const char *softmax_variant_name(void) { return active_variant()->name; }
