// PyTorch checkpoint reader: zip central directory, CRCs, data.pkl through
// the pickle interpreter, storages and strided views; then the model loader.
// (Mutations rarely survive the CRC checks; fuzz_pickle and fuzz_zip reach
// those parsers directly.)
#include "sam.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TensorTable table;
    SamError err = {{0}};
    if (pth_read(data, size, &table, &err) == 0) {
        for (int i = 0; i < table.count; i++) {
            const TensorEntry *e = &table.entries[i];
            FUZZ_ASSERT((size_t)tensor_numel(e) * tensor_dtype_size(e->dtype) == e->nbytes);
        }
    } else {
        FUZZ_ASSERT_MESSAGE(err);
    }
    tensor_table_free(&table);
    fuzz_model_load(data, size);
    return 0;
}
