// A pickle interpreter that only understands torch state_dicts. It executes
// nothing: the few globals a state_dict needs (OrderedDict, the tensor
// rebuild helpers, storage and dtype names) are interpreted as data, and any
// other global is refused by name.
#ifndef SAM_IO_PICKLE_H
#define SAM_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "tensors.h"

// One state_dict entry as the pickle describes it. Strides and offset are in
// elements of the storage; nothing is checked against real storage bytes here.
typedef struct PickleTensor {
    const char *name;         // NUL-terminated; valid during the callback only
    TensorDType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t stride[TENSOR_MAX_DIMS];
    int64_t storage_offset;
    const char *storage_key;  // NUL-terminated; valid during the callback only
    int64_t storage_numel;    // elements of dtype, as the persistent id declares
} PickleTensor;

typedef int (*PickleTensorFn)(void *user, const PickleTensor *tensor, SamError *err);

// Runs the pickle and calls fn once per tensor, in the state_dict's order.
// The top-level object must be a dict of name -> tensor, or a dict holding
// such a dict under "model" or "state_dict" (training checkpoints).
int pickle_load_state_dict(const uint8_t *buf, size_t len, PickleTensorFn fn, void *user,
                           SamError *err);

#endif
