// safetensors reader (header JSON, dtypes, shapes, offsets) and, on what it
// accepts, the model loader's config inference and weight binding.
#include "sam.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TensorTable table;
    SamError err = {{0}};
    if (safetensors_read(data, size, &table, &err) == 0) {
        for (int i = 0; i < table.count; i++) {
            const TensorEntry *e = &table.entries[i];
            // Every accepted tensor lies inside the input.
            FUZZ_ASSERT((const uint8_t *)e->data >= data && e->nbytes <= size &&
                        (const uint8_t *)e->data - data <= (ptrdiff_t)(size - e->nbytes));
            FUZZ_ASSERT((size_t)tensor_numel(e) * tensor_dtype_size(e->dtype) == e->nbytes);
            float *values = malloc(sizeof(float) * (size_t)(tensor_numel(e) + 1));
            if (values) {
                SamError convert_err = {{0}};
                if (tensor_to_f32(e, values, &convert_err)) FUZZ_ASSERT_MESSAGE(convert_err);
                free(values);
            }
        }
    } else {
        FUZZ_ASSERT_MESSAGE(err);
    }
    tensor_table_free(&table);
    fuzz_model_load(data, size);
    return 0;
}
