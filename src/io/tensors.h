// A table of named tensors: what a checkpoint reader produces and what the
// model loader and the safetensors writer consume. All readers work on a
// byte buffer in memory (a mapped or read file natively, an ArrayBuffer in
// WASM), so the same code serves the CLI and the browser.
#ifndef SAM_IO_TENSORS_H
#define SAM_IO_TENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define TENSOR_MAX_DIMS 8
// Official checkpoints hold under 1000 tensors; the readers refuse more than
// this (lookups by name are linear).
#define TENSOR_MAX_COUNT 16384

typedef enum TensorDType {
    DTYPE_F32 = 0,
    DTYPE_F16,
    DTYPE_BF16,
    DTYPE_F64,
    DTYPE_I64,
    DTYPE_I32,
    DTYPE_U8,
    DTYPE_BOOL,
} TensorDType;

typedef struct TensorEntry {
    char *name;                      // owned, NUL-terminated state_dict key
    TensorDType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    // Contiguous little-endian row-major bytes. Either points into the
    // caller's input buffer (no copy) or into memory owned by the table.
    const void *data;
    size_t nbytes;
} TensorEntry;

typedef struct TensorTable {
    TensorEntry *entries;
    int count;
    int capacity;
    // "__metadata__" of a safetensors file as key/value string pairs.
    char **meta_keys;
    char **meta_values;
    int meta_count;
    // Buffers the table owns (gathered non-contiguous tensors, etc.).
    void **owned;
    int owned_count;
} TensorTable;

void tensor_table_init(TensorTable *table);
void tensor_table_free(TensorTable *table);
const TensorEntry *tensor_table_find(const TensorTable *table, const char *name);
const char *tensor_table_meta(const TensorTable *table, const char *key);
int tensor_table_set_meta(TensorTable *table, const char *key, const char *value);
// Adds an entry; copies name. data is borrowed unless the table owns it via
// tensor_table_adopt. Returns 0 or -1 (out of memory).
int tensor_table_add(TensorTable *table, const char *name, TensorDType dtype, int ndim,
                     const int64_t *shape, const void *data, size_t nbytes);
int tensor_table_adopt(TensorTable *table, void *buffer);
size_t tensor_dtype_size(TensorDType dtype);
const char *tensor_dtype_name(TensorDType dtype);  // "F32", "F16", ... as safetensors
int64_t tensor_numel(const TensorEntry *entry);
// Converts one element range to f32 (F32, F16, BF16, F64 supported).
int tensor_to_f32(const TensorEntry *entry, float *out, SamError *err);

// Official PyTorch checkpoint (zip archive with <prefix>/data.pkl and
// <prefix>/data/<key> storages). The pickle interpreter accepts only the
// globals a state_dict needs and refuses all others by name. Tensors point
// into buf (stored zip entries are not compressed), so buf must outlive table.
int pth_read(const uint8_t *buf, size_t len, TensorTable *table, SamError *err);

// safetensors: 8-byte little-endian header length, JSON header, raw data.
// Offsets are checked against the buffer; tensors point into buf.
int safetensors_read(const uint8_t *buf, size_t len, TensorTable *table, SamError *err);
// Serialises the table (in table order, each tensor converted to out_dtype
// when it is floating point: DTYPE_F32 or DTYPE_F16) to a malloc'd buffer.
int safetensors_write(const TensorTable *table, TensorDType out_dtype, uint8_t **out,
                      size_t *out_len, SamError *err);

// Detects the format from the first bytes: 1 = zip (pth), 2 = safetensors, 0 = unknown.
int checkpoint_detect(const uint8_t *buf, size_t len);

// NumPy .npy (version 1.0/2.0), float32 little-endian, C order only.
int npy_write_f32(const float *data, int ndim, const int64_t *shape, uint8_t **out,
                  size_t *out_len, SamError *err);
// On success *data is malloc'd; shape filled; *ndim set.
int npy_read_f32(const uint8_t *buf, size_t len, float **data, int *ndim,
                 int64_t shape[TENSOR_MAX_DIMS], SamError *err);

#endif
