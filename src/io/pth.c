// PyTorch checkpoints (torch.save zip format): the pickle describes tensors
// as views of storages, and each storage is a stored zip entry, so contiguous
// tensors are used in place and only strided views are copied.
#include "tensors.h"

#include <stdlib.h>
#include <string.h>

#include "pickle.h"
#include "zip.h"

typedef struct PthReader {
    const ZipArchive *zip;
    const char *prefix;  // the archive's single top folder, without '/'
    size_t prefix_len;
    TensorTable *table;
    // Bytes copied for strided views. Views can share one storage, so a
    // small file could ask for many copies of it; the copies are bounded by
    // the file's size, which real checkpoints never come near.
    size_t copied_bytes, copy_limit;
} PthReader;

// shape[i] * stride[i] summed: the last element's index relative to the
// offset, computed without overflow by bounding against limit.
static int last_index(const PickleTensor *t, int64_t limit, int64_t *last) {
    int64_t acc = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t span = t->shape[i] - 1;
        if (span == 0 || t->stride[i] == 0) continue;
        if (span > (limit - acc) / t->stride[i]) return -1;
        acc += span * t->stride[i];
    }
    *last = acc;
    return 0;
}

static int is_contiguous(const PickleTensor *t) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect) return 0;
        expect *= t->shape[i];
    }
    return 1;
}

static void gather(const PickleTensor *t, const uint8_t *base, size_t es, int64_t numel, uint8_t *dst) {
    int64_t idx[TENSOR_MAX_DIMS] = {0};
    int64_t src = t->storage_offset;
    for (int64_t i = 0; i < numel; i++) {
        memcpy(dst + (size_t)i * es, base + (size_t)src * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            src += t->stride[d];
            if (++idx[d] < t->shape[d]) break;
            src -= t->stride[d] * t->shape[d];
            idx[d] = 0;
        }
    }
}

static int add_tensor(void *user, const PickleTensor *t, SamError *err) {
    PthReader *r = user;
    if (r->table->count >= TENSOR_MAX_COUNT) {
        return sam_error(err, "checkpoint holds more than %d tensors", TENSOR_MAX_COUNT);
    }
    size_t es = tensor_dtype_size(t->dtype);
    size_t key_len = strlen(t->storage_key);
    char *path = malloc(r->prefix_len + key_len + 7);
    if (!path) return sam_error(err, "out of memory");
    memcpy(path, r->prefix, r->prefix_len);
    memcpy(path + r->prefix_len, "/data/", 6);
    memcpy(path + r->prefix_len + 6, t->storage_key, key_len + 1);
    const ZipEntry *entry = zip_find(r->zip, path);
    free(path);
    if (!entry) {
        return sam_error(err, "tensor '%s': storage '%s' is missing from the archive", t->name, t->storage_key);
    }
    const uint8_t *base;
    size_t size;
    if (zip_entry_data(r->zip, entry, &base, &size, err)) return sam_error_prefix(err, "tensor '%s'", t->name);
    if ((uint64_t)t->storage_numel > size / es || (size_t)t->storage_numel * es != size) {
        return sam_error(err, "tensor '%s': storage '%s' has %zu bytes but declares %lld %s elements", t->name,
                         t->storage_key, size, (long long)t->storage_numel, tensor_dtype_name(t->dtype));
    }
    int64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) numel = 0;
    }
    for (int i = 0; i < t->ndim && numel; i++) {
        // More elements than the storage holds means overlapping strides
        // (an expanded view): never in a state_dict, and unbounded to copy.
        if (t->shape[i] > t->storage_numel / numel) {
            return sam_error(err, "tensor '%s' has more elements than its storage '%s' (%lld)", t->name,
                             t->storage_key, (long long)t->storage_numel);
        }
        numel *= t->shape[i];
    }
    int64_t last = 0;
    if (numel && (t->storage_offset >= t->storage_numel ||
                  last_index(t, t->storage_numel - 1 - t->storage_offset, &last))) {
        return sam_error(err, "tensor '%s' (offset %lld) reaches past the end of storage '%s' (%lld elements)",
                         t->name, (long long)t->storage_offset, t->storage_key, (long long)t->storage_numel);
    }
    size_t nbytes = (size_t)numel * es;
    const void *data = base;
    if (numel && is_contiguous(t)) {
        data = base + (size_t)t->storage_offset * es;
    } else if (numel) {
        if (nbytes > r->copy_limit - r->copied_bytes) {
            return sam_error(err, "tensor '%s': strided views would copy more bytes than the checkpoint holds (%zu)",
                             t->name, r->copy_limit);
        }
        r->copied_bytes += nbytes;
        uint8_t *copy = malloc(nbytes);
        if (!copy) return sam_error(err, "tensor '%s': out of memory for a %zu-byte copy", t->name, nbytes);
        if (tensor_table_adopt(r->table, copy)) {
            free(copy);
            return sam_error(err, "out of memory");
        }
        gather(t, base, es, numel, copy);
        data = copy;
    }
    if (tensor_table_add(r->table, t->name, t->dtype, t->ndim, t->shape, data, nbytes)) {
        return sam_error(err, "out of memory adding tensor '%s'", t->name);
    }
    return 0;
}

// torch names every entry "<folder>/..."; the folder is the file's stem at
// save time, so it is found rather than assumed.
static int find_prefix(const ZipArchive *zip, PthReader *r, SamError *err) {
    static const char suffix[] = "/data.pkl";
    const size_t sl = sizeof suffix - 1;
    int found = 0;
    for (size_t i = 0; i < zip->count; i++) {
        const ZipEntry *e = &zip->entries[i];
        if (e->name_len <= sl || memcmp(e->name + e->name_len - sl, suffix, sl) != 0) continue;
        size_t pl = e->name_len - sl;
        if (memchr(e->name, '/', pl) || memchr(e->name, 0, pl)) continue;
        if (found && (pl != r->prefix_len || memcmp(e->name, r->prefix, pl) != 0)) {
            return sam_error(err, "archive holds several checkpoints ('%.*s' and '%.*s')", (int)r->prefix_len,
                             r->prefix, (int)pl, e->name);
        }
        r->prefix = e->name;
        r->prefix_len = pl;
        found = 1;
    }
    if (!found) return sam_error(err, "zip archive has no '<folder>/data.pkl': not a torch.save checkpoint");
    return 0;
}

static int check_byteorder(const ZipArchive *zip, const PthReader *r, SamError *err) {
    char *path = malloc(r->prefix_len + sizeof "/byteorder");
    if (!path) return sam_error(err, "out of memory");
    memcpy(path, r->prefix, r->prefix_len);
    memcpy(path + r->prefix_len, "/byteorder", sizeof "/byteorder");
    const ZipEntry *e = zip_find(zip, path);
    free(path);
    if (!e) return 0;  // written since torch 1.10 only; older files are little-endian
    const uint8_t *d;
    size_t n;
    if (zip_entry_data(zip, e, &d, &n, err)) return -1;
    if (n != 6 || memcmp(d, "little", 6) != 0) {
        return sam_error(err, "checkpoint byteorder is '%.*s'; only little-endian checkpoints are supported",
                         (int)(n > 16 ? 16 : n), (const char *)d);
    }
    return 0;
}

int pth_read(const uint8_t *buf, size_t len, TensorTable *table, SamError *err) {
    tensor_table_init(table);
    // Before 1.6, torch.save wrote a bare pickle stream (magic number first).
    if (len >= 2 && buf[0] == 0x80 && buf[1] <= 5) {
        return sam_error(err, "legacy pre-1.6 torch.save format not supported; re-save with "
                              "torch.save(..., _use_new_zipfile_serialization=True)");
    }
    ZipArchive zip;
    if (zip_open(&zip, buf, len, err)) return -1;
    PthReader r = {.zip = &zip, .table = table, .copy_limit = len};
    const uint8_t *pkl;
    size_t pkl_len;
    int rc = find_prefix(&zip, &r, err);
    if (!rc) rc = check_byteorder(&zip, &r, err);
    if (!rc) {
        char *path = malloc(r.prefix_len + sizeof "/data.pkl");
        if (!path) {
            rc = sam_error(err, "out of memory");
        } else {
            memcpy(path, r.prefix, r.prefix_len);
            memcpy(path + r.prefix_len, "/data.pkl", sizeof "/data.pkl");
            rc = zip_entry_data(&zip, zip_find(&zip, path), &pkl, &pkl_len, err);
            free(path);
        }
    }
    if (!rc) rc = pickle_load_state_dict(pkl, pkl_len, add_tensor, &r, err);
    zip_close(&zip);
    if (rc) tensor_table_free(table);
    return rc;
}
