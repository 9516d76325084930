// The pickle interpreter on its own (a checkpoint's data.pkl): opcodes,
// memo, marks, the allowed globals, persistent ids and tensor rebuilds.
#include <string.h>

#include "fuzz.h"
#include "io/pickle.h"

static int check_tensor(void *user, const PickleTensor *t, SamError *err) {
    (void)err;
    int *count = user;
    FUZZ_ASSERT(t->name && t->storage_key);
    FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= TENSOR_MAX_DIMS);
    // NUL-terminated: ASan reports a read past the end.
    volatile size_t lengths = strlen(t->name) + strlen(t->storage_key);
    (void)lengths;
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SamError err = {{0}};
    int count = 0;
    if (pickle_load_state_dict(data, size, check_tensor, &count, &err)) FUZZ_ASSERT_MESSAGE(err);
    return 0;
}
