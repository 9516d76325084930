// TensorTable bookkeeping, dtype helpers and half/bfloat16 conversions.
#include "tensors.h"

#include <stdlib.h>
#include <string.h>

#include "../common/half.h"

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void tensor_table_init(TensorTable *table) {
    memset(table, 0, sizeof *table);
}

void tensor_table_free(TensorTable *table) {
    if (!table) return;
    for (int i = 0; i < table->count; i++) free(table->entries[i].name);
    free(table->entries);
    for (int i = 0; i < table->meta_count; i++) {
        free(table->meta_keys[i]);
        free(table->meta_values[i]);
    }
    free(table->meta_keys);
    free(table->meta_values);
    for (int i = 0; i < table->owned_count; i++) free(table->owned[i]);
    free(table->owned);
    memset(table, 0, sizeof *table);
}

const TensorEntry *tensor_table_find(const TensorTable *table, const char *name) {
    // Linear: a SAM state_dict has at most a few thousand entries and lookups
    // happen once per weight at load time.
    for (int i = 0; i < table->count; i++) {
        if (strcmp(table->entries[i].name, name) == 0) return &table->entries[i];
    }
    return NULL;
}

const char *tensor_table_meta(const TensorTable *table, const char *key) {
    for (int i = 0; i < table->meta_count; i++) {
        if (strcmp(table->meta_keys[i], key) == 0) return table->meta_values[i];
    }
    return NULL;
}

int tensor_table_set_meta(TensorTable *table, const char *key, const char *value) {
    char *v = dup_string(value);
    if (!v) return -1;
    for (int i = 0; i < table->meta_count; i++) {
        if (strcmp(table->meta_keys[i], key) == 0) {
            free(table->meta_values[i]);
            table->meta_values[i] = v;
            return 0;
        }
    }
    char *k = dup_string(key);
    char **keys = realloc(table->meta_keys, sizeof *keys * (size_t)(table->meta_count + 1));
    if (keys) table->meta_keys = keys;
    char **vals = realloc(table->meta_values, sizeof *vals * (size_t)(table->meta_count + 1));
    if (vals) table->meta_values = vals;
    if (!k || !keys || !vals) {
        free(k);
        free(v);
        return -1;
    }
    table->meta_keys[table->meta_count] = k;
    table->meta_values[table->meta_count] = v;
    table->meta_count++;
    return 0;
}

int tensor_table_add(TensorTable *table, const char *name, TensorDType dtype, int ndim,
                     const int64_t *shape, const void *data, size_t nbytes) {
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) return -1;
    if (table->count == table->capacity) {
        int cap = table->capacity ? table->capacity * 2 : 64;
        TensorEntry *e = realloc(table->entries, sizeof *e * (size_t)cap);
        if (!e) return -1;
        table->entries = e;
        table->capacity = cap;
    }
    TensorEntry *e = &table->entries[table->count];
    memset(e, 0, sizeof *e);
    e->name = dup_string(name);
    if (!e->name) return -1;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = nbytes;
    table->count++;
    return 0;
}

// On failure the buffer stays with the caller, so adopt before pointing an
// entry at it: then a later failure leaves nothing dangling or leaked.
int tensor_table_adopt(TensorTable *table, void *buffer) {
    void **o = realloc(table->owned, sizeof *o * (size_t)(table->owned_count + 1));
    if (!o) return -1;
    table->owned = o;
    table->owned[table->owned_count++] = buffer;
    return 0;
}

size_t tensor_dtype_size(TensorDType dtype) {
    switch (dtype) {
    case DTYPE_F32: return 4;
    case DTYPE_F16: return 2;
    case DTYPE_BF16: return 2;
    case DTYPE_F64: return 8;
    case DTYPE_I64: return 8;
    case DTYPE_I32: return 4;
    case DTYPE_U8: return 1;
    case DTYPE_BOOL: return 1;
    }
    return 0;
}

const char *tensor_dtype_name(TensorDType dtype) {
    switch (dtype) {
    case DTYPE_F32: return "F32";
    case DTYPE_F16: return "F16";
    case DTYPE_BF16: return "BF16";
    case DTYPE_F64: return "F64";
    case DTYPE_I64: return "I64";
    case DTYPE_I32: return "I32";
    case DTYPE_U8: return "U8";
    case DTYPE_BOOL: return "BOOL";
    }
    return "?";
}

int64_t tensor_numel(const TensorEntry *entry) {
    int64_t n = 1;
    for (int i = 0; i < entry->ndim; i++) n *= entry->shape[i];
    return n;
}

// bfloat16 is the top half of a binary32, so widening is a shift.
static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

int tensor_to_f32(const TensorEntry *entry, float *out, SamError *err) {
    int64_t n = tensor_numel(entry);
    size_t es = tensor_dtype_size(entry->dtype);
    if (n < 0 || (es && (uint64_t)n > entry->nbytes / es)) {
        return sam_error(err, "tensor '%s': %zu bytes do not hold %lld elements", entry->name,
                         entry->nbytes, (long long)n);
    }
    // memcpy per element: data may point into a file buffer at any alignment.
    const uint8_t *p = entry->data;
    switch (entry->dtype) {
    case DTYPE_F32:
        if (n) memcpy(out, p, (size_t)n * 4);
        return 0;
    case DTYPE_F16:
    case DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + i * 2, 2);
            out[i] = entry->dtype == DTYPE_F16 ? half_to_float(h) : bf16_to_f32(h);
        }
        return 0;
    case DTYPE_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + i * 8, 8);
            out[i] = (float)d;
        }
        return 0;
    default:
        return sam_error(err, "tensor '%s' has dtype %s, not a floating point type", entry->name,
                         tensor_dtype_name(entry->dtype));
    }
}

int checkpoint_detect(const uint8_t *buf, size_t len) {
    if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' &&
        ((buf[2] == 3 && buf[3] == 4) || (buf[2] == 5 && buf[3] == 6))) {
        return 1;
    }
    // A bare pickle is the legacy torch.save format; report it as pth so
    // that pth_read can explain how to re-save it.
    if (len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5) return 1;
    if (len >= 10 && buf[8] == '{') {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
        if (n >= 2 && n <= len - 8) return 2;
    }
    return 0;
}
