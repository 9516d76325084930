// .npy reader (mask prompts): magic, version, header dict, shape, dtype.
#include "fuzz.h"
#include "io/tensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float *values = NULL;
    int ndim = 0;
    int64_t shape[TENSOR_MAX_DIMS];
    SamError err = {{0}};
    if (npy_read_f32(data, size, &values, &ndim, shape, &err) == 0) {
        FUZZ_ASSERT(ndim >= 0 && ndim <= TENSOR_MAX_DIMS);
        uint64_t numel = 1;
        for (int i = 0; i < ndim; i++) {
            FUZZ_ASSERT(shape[i] >= 0);
            numel *= (uint64_t)shape[i];
        }
        FUZZ_ASSERT(numel * sizeof(float) <= size);  // the values came from the input
        volatile float sink = 0;
        for (uint64_t i = 0; i < numel; i++) sink += values[i];  // all of it readable
        (void)sink;
        free(values);
    } else {
        FUZZ_ASSERT_MESSAGE(err);
    }
    return 0;
}
