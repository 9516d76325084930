// Tests for the checkpoint I/O layer. Every input is built in memory here
// (zip archives, pickles, safetensors, npy), so the test needs no files and
// can truncate or corrupt inputs at will.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "io/pickle.h"
#include "io/tensors.h"
#include "io/zip.h"

typedef struct Tally {
    int passed, failed;
} Tally;

static void check(Tally *t, int ok, const char *name, const char *detail) {
    if (ok) {
        t->passed++;
        printf("ok   %s\n", name);
    } else {
        t->failed++;
        printf("FAIL %s%s%s\n", name, detail ? ": " : "", detail ? detail : "");
    }
}

// ---- byte buffer ----

typedef struct Buf {
    uint8_t *p;
    size_t len, cap;
} Buf;

static void put(Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void put8(Buf *b, unsigned v) { uint8_t x = (uint8_t)v; put(b, &x, 1); }
static void put16(Buf *b, unsigned v) { put8(b, v & 0xff); put8(b, (v >> 8) & 0xff); }
static void put32(Buf *b, uint32_t v) { put16(b, v & 0xffff); put16(b, v >> 16); }
static void put64(Buf *b, uint64_t v) { put32(b, (uint32_t)v); put32(b, (uint32_t)(v >> 32)); }
static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

// ---- zip writer (stored entries; zip64 records on request) ----

typedef struct ZipIn {
    const char *name;
    const void *data;
    size_t len;
    unsigned method;
} ZipIn;

// Bit-at-a-time CRC-32: an independent check of the reader's table version.
static uint32_t bitwise_crc32(const void *data, size_t len) {
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void build_zip(Buf *z, const ZipIn *in, int n, int zip64) {
    uint64_t offsets[16];
    for (int i = 0; i < n; i++) {
        offsets[i] = z->len;
        size_t nl = strlen(in[i].name);
        // Pad like torch does so that data is 64-byte aligned.
        size_t pad = (64 - (z->len + 30 + nl + 4) % 64) % 64;
        put32(z, 0x04034b50); put16(z, zip64 ? 45 : 20); put16(z, 0); put16(z, in[i].method);
        put32(z, 0); put32(z, 0);
        put32(z, zip64 ? 0xffffffffu : (uint32_t)in[i].len); put32(z, zip64 ? 0xffffffffu : (uint32_t)in[i].len);
        put16(z, (unsigned)nl); put16(z, (unsigned)(4 + pad));
        puts_(z, in[i].name);
        put16(z, 0x4246); put16(z, (unsigned)pad);
        for (size_t k = 0; k < pad; k++) put8(z, 'Z');
        put(z, in[i].data, in[i].len);
    }
    uint64_t cd = z->len;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(in[i].name);
        put32(z, 0x02014b50); put16(z, 45); put16(z, zip64 ? 45 : 20); put16(z, 0); put16(z, in[i].method);
        put32(z, 0); put32(z, bitwise_crc32(in[i].data, in[i].len));
        put32(z, zip64 ? 0xffffffffu : (uint32_t)in[i].len); put32(z, zip64 ? 0xffffffffu : (uint32_t)in[i].len);
        put16(z, (unsigned)nl); put16(z, zip64 ? 28 : 0); put16(z, 0); put16(z, 0); put16(z, 0); put32(z, 0);
        put32(z, zip64 ? 0xffffffffu : (uint32_t)offsets[i]);
        puts_(z, in[i].name);
        if (zip64) {
            put16(z, 1); put16(z, 24); put64(z, in[i].len); put64(z, in[i].len); put64(z, offsets[i]);
        }
    }
    uint64_t cd_size = z->len - cd;
    if (zip64) {
        uint64_t eocd64 = z->len;
        put32(z, 0x06064b50); put64(z, 44); put16(z, 45); put16(z, 45); put32(z, 0); put32(z, 0);
        put64(z, (uint64_t)n); put64(z, (uint64_t)n); put64(z, cd_size); put64(z, cd);
        put32(z, 0x07064b50); put32(z, 0); put64(z, eocd64); put32(z, 1);
    }
    put32(z, 0x06054b50); put16(z, 0); put16(z, 0);
    put16(z, zip64 ? 0xffff : (unsigned)n); put16(z, zip64 ? 0xffff : (unsigned)n);
    put32(z, zip64 ? 0xffffffffu : (uint32_t)cd_size); put32(z, zip64 ? 0xffffffffu : (uint32_t)cd);
    put16(z, 0);
}

// ---- pickle writer ----

static void pk_str(Buf *b, const char *s) { put8(b, 'X'); put32(b, (uint32_t)strlen(s)); puts_(b, s); }
static void pk_global(Buf *b, const char *mod, const char *name) {
    put8(b, 'c'); puts_(b, mod); put8(b, '\n'); puts_(b, name); put8(b, '\n');
}
static void pk_int(Buf *b, int64_t v) {
    if (v >= 0 && v < 256) { put8(b, 'K'); put8(b, (unsigned)v); }
    else { put8(b, 'J'); put32(b, (uint32_t)v); }
}
static void pk_int_tuple(Buf *b, int n, const int64_t *v) {
    put8(b, '(');
    for (int i = 0; i < n; i++) pk_int(b, v[i]);
    put8(b, 't');
}

// name -> _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
static void pk_tensor(Buf *b, const char *name, const char *storage, const char *key, int64_t numel,
                      int64_t offset, int ndim, const int64_t *shape, const int64_t *stride) {
    pk_str(b, name);
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    put8(b, '(');
    put8(b, '(');
    pk_str(b, "storage");
    pk_global(b, "torch", storage);
    pk_str(b, key);
    pk_str(b, "cpu");
    pk_int(b, numel);
    put8(b, 't');
    put8(b, 'Q');
    pk_int(b, offset);
    pk_int_tuple(b, ndim, shape);
    pk_int_tuple(b, ndim, stride);
    put8(b, 0x89);
    pk_global(b, "collections", "OrderedDict");
    put8(b, ')');
    put8(b, 'R');
    put8(b, 't');
    put8(b, 'R');
}

static const float w_data[6] = {1, 2, 3, 4, 5, 6};
static const uint16_t h_data[3] = {0x3c00, 0xc000, 0x0001};  // 1, -2, 2^-24

// {"w": [[1,2,3],[4,5,6]], "wt": w.T (strided view), "h": f16[3], "tail": w.view(-1)[4:]}
static void state_dict_pickle(Buf *p) {
    int64_t s23[2] = {2, 3}, st31[2] = {3, 1}, s32[2] = {3, 2}, st13[2] = {1, 3}, s3[1] = {3}, st1[1] = {1}, s2[1] = {2};
    put8(p, 0x80); put8(p, 2);
    put8(p, '}'); put8(p, 'q'); put8(p, 0);
    put8(p, '(');
    pk_tensor(p, "w", "FloatStorage", "0", 6, 0, 2, s23, st31);
    pk_tensor(p, "wt", "FloatStorage", "0", 6, 0, 2, s32, st13);
    pk_tensor(p, "h", "HalfStorage", "1", 3, 0, 1, s3, st1);
    pk_tensor(p, "tail", "FloatStorage", "0", 6, 4, 1, s2, st1);
    put8(p, 'u');
    put8(p, '.');
}

static void build_pth(Buf *z, const Buf *pkl, int zip64, const char *byteorder) {
    ZipIn in[5] = {
        {"archive/data.pkl", pkl->p, pkl->len, 0},
        {"archive/byteorder", byteorder, byteorder ? strlen(byteorder) : 0, 0},
        {"archive/data/0", w_data, sizeof w_data, 0},
        {"archive/data/1", h_data, sizeof h_data, 0},
        {"archive/version", "3\n", 2, 0},
    };
    if (!byteorder) in[1] = in[4];
    build_zip(z, in, byteorder ? 5 : 4, zip64);
}

// The table points into *z, so the caller frees z after the table.
static int pth_from_pickle(const Buf *pkl, TensorTable *t, SamError *err, Buf *z) {
    z->len = 0;
    build_pth(z, pkl, 0, "little");
    return pth_read(z->p, z->len, t, err);
}

// Copies each prefix into its own allocation so that the sanitizers see any
// read past the end.
typedef int (*Reader)(const uint8_t *, size_t, SamError *);

static int every_truncation_fails(const uint8_t *buf, size_t len, Reader read) {
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        SamError err = {{0}};
        int rc = read(copy, n, &err);
        free(copy);
        if (rc == 0 || err.message[0] == 0) {
            fprintf(stderr, "truncation to %zu of %zu bytes was accepted\n", n, len);
            return 0;
        }
    }
    return 1;
}

static int read_pth(const uint8_t *b, size_t n, SamError *err) {
    TensorTable t;
    int rc = pth_read(b, n, &t, err);
    tensor_table_free(&t);
    return rc;
}
static int read_st(const uint8_t *b, size_t n, SamError *err) {
    TensorTable t;
    int rc = safetensors_read(b, n, &t, err);
    tensor_table_free(&t);
    return rc;
}
static int read_npy(const uint8_t *b, size_t n, SamError *err) {
    float *d = NULL;
    int nd;
    int64_t shape[TENSOR_MAX_DIMS];
    int rc = npy_read_f32(b, n, &d, &nd, shape, err);
    free(d);
    return rc;
}

static int expect_error(int rc, const SamError *err, const char *needle) {
    if (rc == 0) return 0;
    if (!strstr(err->message, needle)) {
        fprintf(stderr, "error '%s' lacks '%s'\n", err->message, needle);
        return 0;
    }
    return 1;
}

static void test_pth(Tally *t) {
    Buf pkl = {0}, z = {0};
    state_dict_pickle(&pkl);
    SamError err = {{0}};
    TensorTable tab;
    for (int zip64 = 0; zip64 < 2; zip64++) {
        z.len = 0;
        build_pth(&z, &pkl, zip64, "little");
        int rc = pth_read(z.p, z.len, &tab, &err);
        int ok = rc == 0 && tab.count == 4 && strcmp(tab.entries[0].name, "w") == 0 &&
                 strcmp(tab.entries[1].name, "wt") == 0 && strcmp(tab.entries[2].name, "h") == 0 &&
                 strcmp(tab.entries[3].name, "tail") == 0;
        const TensorEntry *w = ok ? tensor_table_find(&tab, "w") : NULL;
        const TensorEntry *wt = ok ? tensor_table_find(&tab, "wt") : NULL;
        const TensorEntry *h = ok ? tensor_table_find(&tab, "h") : NULL;
        const TensorEntry *tail = ok ? tensor_table_find(&tab, "tail") : NULL;
        ok = ok && w->dtype == DTYPE_F32 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 && w->nbytes == 24 &&
             memcmp(w->data, w_data, 24) == 0 && (const uint8_t *)w->data > z.p && (const uint8_t *)w->data < z.p + z.len;
        float wt_want[6] = {1, 4, 2, 5, 3, 6}, f[6];
        ok = ok && wt->shape[0] == 3 && wt->shape[1] == 2 && memcmp(wt->data, wt_want, 24) == 0;
        ok = ok && h->dtype == DTYPE_F16 && tensor_to_f32(h, f, &err) == 0 && f[0] == 1 && f[1] == -2 && f[2] == ldexpf(1, -24);
        ok = ok && tail->nbytes == 8 && ((const float *)tail->data)[0] == 5 && ((const float *)tail->data)[1] == 6;
        check(t, ok, zip64 ? "pth: zip64 archive reads" : "pth: contiguous, strided, f16 and offset tensors",
              rc ? err.message : NULL);
        tensor_table_free(&tab);
    }
    z.len = 0;
    build_pth(&z, &pkl, 0, NULL);
    check(t, read_pth(z.p, z.len, &err) == 0, "pth: byteorder entry is optional", err.message);
    z.len = 0;
    build_pth(&z, &pkl, 0, "big");
    check(t, expect_error(read_pth(z.p, z.len, &err), &err, "byteorder"), "pth: big-endian refused", NULL);
    z.len = 0;
    build_pth(&z, &pkl, 0, "little");
    check(t, every_truncation_fails(z.p, z.len, read_pth), "pth: every truncation of the zip fails cleanly", NULL);

    // The pickle itself truncated inside an intact archive.
    int all = 1;
    for (size_t n = 0; n < pkl.len && all; n++) {
        Buf cut = {0};
        put(&cut, pkl.p, n);
        all = pth_from_pickle(&cut, &tab, &err, &z) != 0;
        free(cut.p);
    }
    check(t, all, "pth: every truncation of the pickle fails cleanly", NULL);

    // Random byte corruption must never crash (the sanitizer build checks).
    uint32_t seed = 12345;
    for (int i = 0; i < 3000; i++) {
        Buf bad = {0};
        put(&bad, pkl.p, pkl.len);
        for (int k = 0; k < 1 + i % 4; k++) {
            seed = seed * 1664525u + 1013904223u;
            bad.p[(seed >> 8) % bad.len] = (uint8_t)(seed >> 24);
        }
        if (pth_from_pickle(&bad, &tab, &err, &z) == 0) tensor_table_free(&tab);
        free(bad.p);
    }
    check(t, 1, "pth: 3000 corrupted pickles handled without crashing", NULL);

    ZipIn packed[2] = {{"archive/data.pkl", pkl.p, pkl.len, 8}, {"archive/data/0", w_data, 24, 0}};
    z.len = 0;
    build_zip(&z, packed, 2, 0);
    check(t, expect_error(read_pth(z.p, z.len, &err), &err, "archive/data.pkl"), "pth: compressed entry refused by name", err.message);

    uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    check(t, expect_error(read_pth(legacy, sizeof legacy, &err), &err, "legacy"), "pth: legacy format refused", NULL);
    check(t, checkpoint_detect(z.p, z.len) == 1 && checkpoint_detect(legacy, sizeof legacy) == 1,
          "detect: zip and legacy pickle are pth", NULL);
    free(z.p);
    free(pkl.p);
}

// Runs a pickle (inside a valid archive) and expects an error containing needle.
static void refused(Tally *t, Buf *p, const char *needle, const char *name) {
    TensorTable tab;
    SamError err = {{0}};
    Buf z = {0};
    int rc = pth_from_pickle(p, &tab, &err, &z);
    if (rc == 0) tensor_table_free(&tab);
    free(z.p);
    check(t, expect_error(rc, &err, needle), name, rc ? err.message : "accepted");
    p->len = 0;
}

static void test_pickle_security(Tally *t) {
    Buf p = {0};
    int64_t s2[1] = {2}, st1[1] = {1}, s9[1] = {9};
    // {"w": os.system("echo hi")}
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); pk_str(&p, "w");
    pk_global(&p, "os", "system"); pk_str(&p, "echo hi"); put8(&p, 0x85); put8(&p, 'R'); put8(&p, 's'); put8(&p, '.');
    refused(t, &p, "checkpoint refuses pickle global 'os.system'", "pickle: os.system refused by name");
    put8(&p, 0x80); put8(&p, 4);
    put8(&p, 0x8c); put8(&p, 8); puts_(&p, "builtins"); put8(&p, 0x8c); put8(&p, 4); puts_(&p, "eval");
    put8(&p, 0x93); put8(&p, '.');
    refused(t, &p, "'builtins.eval'", "pickle: STACK_GLOBAL builtins.eval refused");
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); pk_str(&p, "x");
    pk_global(&p, "torch", "FloatStorage"); put8(&p, ')'); put8(&p, 'R'); put8(&p, 's'); put8(&p, '.');
    refused(t, &p, "persistent id", "pickle: storage class cannot be called");
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); pk_str(&p, "x"); pk_int(&p, 3); put8(&p, 's'); put8(&p, '.');
    refused(t, &p, "'x' is a int, not a tensor", "pickle: non-tensor value refused");
    put8(&p, 0x80); put8(&p, 2);
    for (int i = 0; i < 100000; i++) put8(&p, '(');
    put8(&p, '.');
    refused(t, &p, "nested too deeply", "pickle: MARK depth bounded");
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); put8(&p, 'r'); put32(&p, 0x7fffffff); put8(&p, '.');
    refused(t, &p, "memo index", "pickle: huge memo index refused");
    put8(&p, 0x80); put8(&p, 2); put8(&p, 'h'); put8(&p, 7); put8(&p, '.');
    refused(t, &p, "memo key", "pickle: unknown memo key refused");
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); put8(&p, '(');
    pk_tensor(&p, "big", "FloatStorage", "0", 6, 0, 1, s9, st1);
    put8(&p, 'u'); put8(&p, '.');
    refused(t, &p, "more elements than its storage", "pth: tensor larger than storage refused");
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); put8(&p, '(');
    pk_tensor(&p, "late", "FloatStorage", "0", 6, 5, 1, s2, st1);
    put8(&p, 'u'); put8(&p, '.');
    refused(t, &p, "past the end of storage", "pth: view past the storage end refused");
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); put8(&p, '(');
    pk_tensor(&p, "lie", "FloatStorage", "0", 7, 0, 1, s2, st1);
    put8(&p, 'u'); put8(&p, '.');
    refused(t, &p, "has 24 bytes but declares 7", "pth: storage size mismatch refused");
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); put8(&p, '(');
    pk_tensor(&p, "gone", "FloatStorage", "5", 6, 0, 1, s2, st1);
    put8(&p, 'u'); put8(&p, '.');
    refused(t, &p, "missing", "pth: missing storage entry refused");
    put8(&p, 0x80); put8(&p, 2); put8(&p, '}'); put8(&p, '(');
    pk_tensor(&p, "a", "FloatStorage", "0", 6, 0, 1, s2, st1);
    pk_tensor(&p, "a", "FloatStorage", "0", 6, 0, 1, s2, st1);
    put8(&p, 'u'); put8(&p, '.');
    refused(t, &p, "duplicate", "pickle: duplicate key refused");

    // Accepted variants: training-checkpoint wrapper, dtype global as the
    // storage type, Parameter wrapper, protocol-4 framing and MEMOIZE.
    put8(&p, 0x80); put8(&p, 4); put8(&p, 0x95); put64(&p, 0); put8(&p, '}'); put8(&p, 0x94); put8(&p, '(');
    pk_str(&p, "epoch"); pk_int(&p, 3);
    pk_str(&p, "model"); put8(&p, '}'); put8(&p, 0x94); put8(&p, '(');
    pk_str(&p, "p");
    pk_global(&p, "torch._utils", "_rebuild_parameter");
    pk_global(&p, "torch._utils", "_rebuild_tensor_v2");
    put8(&p, '('); put8(&p, '('); pk_str(&p, "storage"); pk_global(&p, "torch", "float32"); pk_str(&p, "0");
    pk_str(&p, "cuda:0"); pk_int(&p, 6); put8(&p, 't'); put8(&p, 'Q');
    pk_int(&p, 1); pk_int_tuple(&p, 1, s2); pk_int_tuple(&p, 1, st1); put8(&p, 0x88); put8(&p, '}');
    put8(&p, 't'); put8(&p, 'R');
    put8(&p, 0x88); put8(&p, '}'); put8(&p, 0x87); put8(&p, 'R');
    put8(&p, 'u'); put8(&p, 'u'); put8(&p, '.');
    TensorTable tab;
    SamError err = {{0}};
    Buf z = {0};
    int rc = pth_from_pickle(&p, &tab, &err, &z);
    int ok = rc == 0 && tab.count == 1 && strcmp(tab.entries[0].name, "p") == 0 &&
             ((const float *)tab.entries[0].data)[0] == 2;
    check(t, ok, "pickle: wrapped {'model': ...} with parameter and dtype storage type", rc ? err.message : NULL);
    if (rc == 0) tensor_table_free(&tab);
    free(z.p);
    free(p.p);
}

static int bits_equal_f16(const TensorEntry *e, const uint16_t *want, int n) {
    return e->dtype == DTYPE_F16 && e->nbytes == (size_t)n * 2 && memcmp(e->data, want, (size_t)n * 2) == 0;
}

static void test_half(Tally *t) {
    float in[] = {1.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e9f, ldexpf(1, -24), ldexpf(1, -25),
                  ldexpf(1.5f, -25), ldexpf(3, -25), ldexpf(1, -14), ldexpf(1023, -24), 1.0f + ldexpf(1, -11),
                  1.0f + ldexpf(3, -11), INFINITY, -INFINITY, ldexpf(1, -26), 0.1f, -2.5f, ldexpf(1023.5f, -24)};
    uint16_t want[] = {0x3c00, 0x8000, 0x7bff, 0x7bff, 0x7c00, 0x7c00, 0x0001, 0x0000,
                       0x0001, 0x0002, 0x0400, 0x03ff, 0x3c00,
                       0x3c02, 0x7c00, 0xfc00, 0x0000, 0x2e66, 0xc100, 0x0400};
    int n = (int)(sizeof in / sizeof in[0]);
    TensorTable tab, back;
    tensor_table_init(&tab);
    int64_t shape[1] = {n};
    tensor_table_add(&tab, "x", DTYPE_F32, 1, shape, in, sizeof in);
    float nan_in[1] = {NAN};
    int64_t one[1] = {1};
    tensor_table_add(&tab, "nan", DTYPE_F32, 1, one, nan_in, 4);
    uint8_t *out = NULL;
    size_t len = 0;
    SamError err = {{0}};
    int rc = safetensors_write(&tab, DTYPE_F16, &out, &len, &err);
    rc = rc ? rc : safetensors_read(out, len, &back, &err);
    int ok = rc == 0 && back.count == 2 && bits_equal_f16(&back.entries[0], want, n);
    uint16_t nan_bits = 0;
    if (ok) memcpy(&nan_bits, back.entries[1].data, 2);
    check(t, ok, "f16: F32 -> F16 rounds to nearest even (subnormals, overflow, ties)", rc ? err.message : NULL);
    check(t, ok && (nan_bits & 0x7c00) == 0x7c00 && (nan_bits & 0x3ff), "f16: NaN stays NaN", NULL);
    if (!rc) tensor_table_free(&back);
    free(out);
    tensor_table_free(&tab);

    // Every half value widens exactly and narrows back to itself.
    uint16_t *all = malloc(65536 * 2);
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    int64_t shape_all[2] = {256, 256};
    tensor_table_init(&tab);
    tensor_table_add(&tab, "all", DTYPE_F16, 2, shape_all, all, 65536 * 2);
    rc = safetensors_write(&tab, DTYPE_F32, &out, &len, &err);
    rc = rc ? rc : safetensors_read(out, len, &back, &err);
    ok = rc == 0 && back.entries[0].dtype == DTYPE_F32;
    for (int i = 0; ok && i < 65536; i++) {
        float f;
        memcpy(&f, (const uint8_t *)back.entries[0].data + i * 4, 4);
        int e = (i >> 10) & 31, m = i & 1023;
        double ref = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
        if (i & 0x8000) ref = -ref;
        ok = isnan(ref) ? isnan(f) : (double)f == ref && !signbit(f) == !signbit(ref);
        if (!ok) fprintf(stderr, "half 0x%04x -> %g, want %g\n", (unsigned)i, f, ref);
    }
    check(t, ok, "f16: all 65536 halves widen to the exact F32 value", rc ? err.message : NULL);
    uint8_t *out2 = NULL;
    size_t len2 = 0;
    TensorTable back2;
    int rc2 = rc ? rc : safetensors_write(&back, DTYPE_F16, &out2, &len2, &err);
    rc2 = rc2 ? rc2 : safetensors_read(out2, len2, &back2, &err);
    ok = rc2 == 0;
    for (int i = 0; ok && i < 65536; i++) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)back2.entries[0].data + i * 2, 2);
        int is_nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
        ok = is_nan ? (h & 0x7c00) == 0x7c00 && (h & 0x3ff) : h == i;
    }
    check(t, ok, "f16: F16 -> F32 -> F16 is the identity", rc2 ? err.message : NULL);
    float f3[3];
    uint16_t bf[3] = {0x3f80, 0xc040, 0x7f80};
    double d[3] = {0.5, -1e300, 3.25};
    TensorEntry be = {"bf", DTYPE_BF16, 1, {3}, bf, 6}, de = {"d", DTYPE_F64, 1, {3}, d, 24};
    ok = tensor_to_f32(&be, f3, &err) == 0 && f3[0] == 1 && f3[1] == -3 && isinf(f3[2]);
    ok = ok && tensor_to_f32(&de, f3, &err) == 0 && f3[0] == 0.5f && isinf(f3[1]) && f3[2] == 3.25f;
    TensorEntry ie = {"i", DTYPE_I64, 1, {3}, d, 24};
    ok = ok && tensor_to_f32(&ie, f3, &err) != 0 && strstr(err.message, "'i'");
    check(t, ok, "tensor_to_f32: BF16 and F64; integer tensors refused", NULL);
    if (!rc2) tensor_table_free(&back2);
    if (!rc) tensor_table_free(&back);
    free(out);
    free(out2);
    free(all);
    tensor_table_free(&tab);
}

static void test_safetensors(Tally *t) {
    TensorTable tab, back;
    tensor_table_init(&tab);
    float f[6] = {1.5f, -2, 0, 3e-8f, 65504, 7};
    int64_t i64[3] = {-1, 1LL << 40, 7};
    uint8_t u8 = 200;
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s0[2] = {0, 4};
    tensor_table_set_meta(&tab, "format", "pt");
    tensor_table_set_meta(&tab, "note", "quote \" backslash \\ tab \t");
    tensor_table_add(&tab, "b.weight", DTYPE_F32, 2, s23, f, sizeof f);
    tensor_table_add(&tab, "a.idx", DTYPE_I64, 1, s3, i64, sizeof i64);
    tensor_table_add(&tab, "scalar", DTYPE_U8, 0, NULL, &u8, 1);
    tensor_table_add(&tab, "empty", DTYPE_F32, 2, s0, NULL, 0);
    uint8_t *out = NULL;
    size_t len = 0;
    SamError err = {{0}};
    int rc = safetensors_write(&tab, DTYPE_F32, &out, &len, &err);
    uint64_t hlen = 0;
    for (int i = 7; rc == 0 && i >= 0; i--) hlen = hlen << 8 | out[i];
    int ok = rc == 0 && (8 + hlen) % 8 == 0 && checkpoint_detect(out, len) == 2;
    char *hdr = ok ? strndup((const char *)out + 8, (size_t)hlen) : NULL;
    ok = ok && strncmp(hdr, "{\"__metadata__\":{\"format\":\"pt\"", 30) == 0 && strstr(hdr, "\"b.weight\"") < strstr(hdr, "\"a.idx\"");
    check(t, ok, "safetensors: header aligned, __metadata__ first, table order", rc ? err.message : hdr);
    free(hdr);
    rc = rc ? rc : safetensors_read(out, len, &back, &err);
    ok = rc == 0 && back.count == 4 && back.meta_count == 2 && strcmp(tensor_table_meta(&back, "note"), "quote \" backslash \\ tab \t") == 0;
    for (int i = 0; ok && i < 4; i++) {
        const TensorEntry *a = &tab.entries[i], *b = tensor_table_find(&back, a->name);
        ok = b && b->dtype == a->dtype && b->ndim == a->ndim && b->nbytes == a->nbytes &&
             memcmp(b->shape, a->shape, sizeof a->shape) == 0 && (!a->nbytes || memcmp(a->data, b->data, a->nbytes) == 0);
    }
    check(t, ok, "safetensors: F32 round trip keeps names, dtypes, shapes, data, metadata", rc ? err.message : NULL);
    if (!rc) tensor_table_free(&back);
    check(t, every_truncation_fails(out, len, read_st), "safetensors: every truncation fails cleanly", NULL);
    free(out);
    rc = safetensors_write(&tab, DTYPE_F16, &out, &len, &err);
    rc = rc ? rc : safetensors_read(out, len, &back, &err);
    const TensorEntry *bw = rc ? NULL : tensor_table_find(&back, "b.weight");
    const TensorEntry *bi = rc ? NULL : tensor_table_find(&back, "a.idx");
    ok = bw && bi && bw->dtype == DTYPE_F16 && bw->nbytes == 12 && bi->dtype == DTYPE_I64 && memcmp(bi->data, i64, 24) == 0;
    float conv[6];
    ok = ok && tensor_to_f32(bw, conv, &err) == 0 && conv[0] == 1.5f && conv[4] == 65504 && conv[3] == half_to_float(float_to_half(3e-8f));
    check(t, ok, "safetensors: F16 output converts floats only", rc ? err.message : NULL);
    if (!rc) tensor_table_free(&back);
    free(out);
    check(t, safetensors_write(&tab, DTYPE_I32, &out, &len, &err) != 0, "safetensors: non-float output dtype refused", NULL);
    tensor_table_free(&tab);

    // Hand-written headers: order by offset, and lies of every kind.
    static const struct { const char *json; const char *needle; const char *name; } cases[] = {
        {"{\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", NULL, "offset order"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", "outside", "end past the data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", "outside", "begin after end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "need 8", "size not matching shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999,99999999999],\"data_offsets\":[0,8]}}", "larger", "huge shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "negative", "negative dim"},
        {"{\"a\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[0,2]}}", "I16", "unsupported dtype"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", "duplicate", "duplicate name"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", "unexpected", "unknown key"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", "lacks", "missing offsets"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", "integer", "float dim"},
        {"{\"a\\u0000\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "invalid", "NUL in a name"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}} x", "trailing", "trailing garbage"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Buf b = {0};
        size_t n = strlen(cases[c].json);
        put64(&b, n);
        puts_(&b, cases[c].json);
        for (int k = 0; k < 8; k++) put8(&b, (unsigned)k);
        rc = safetensors_read(b.p, b.len, &back, &err);
        char name[96];
        snprintf(name, sizeof name, "safetensors: %s", cases[c].name);
        if (!cases[c].needle) {
            ok = rc == 0 && back.count == 2 && strcmp(back.entries[0].name, "z") == 0 && ((const uint8_t *)back.entries[1].data)[0] == 4;
            check(t, ok, name, rc ? err.message : NULL);
        } else {
            check(t, expect_error(rc, &err, cases[c].needle), name, rc ? err.message : "accepted");
        }
        if (!rc) tensor_table_free(&back);
        free(b.p);
    }
    uint8_t lying[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    check(t, expect_error(safetensors_read(lying, sizeof lying, &back, &err), &err, "header length"),
          "safetensors: header length beyond the file refused", NULL);
}

static void test_npy(Tally *t) {
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)i * 0.5f - 3;
    int64_t shapes[3][3] = {{24}, {2, 3, 4}, {0}};
    int ndims[4] = {1, 3, 0, 1};
    int ok = 1;
    uint8_t *out = NULL, *kept = NULL;
    size_t len = 0, kept_len = 0;
    SamError err = {{0}};
    for (int s = 0; s < 4 && ok; s++) {
        int64_t *shape = s == 3 ? shapes[2] : shapes[s == 2 ? 0 : s];
        ok = npy_write_f32(v, ndims[s], shape, &out, &len, &err) == 0 && ((size_t)out[8] + 10) % 64 == 0;
        float *d = NULL;
        int nd = -1;
        int64_t sh[TENSOR_MAX_DIMS];
        ok = ok && npy_read_f32(out, len, &d, &nd, sh, &err) == 0 && nd == ndims[s];
        size_t count = s == 0 ? 24 : s == 1 ? 24 : s == 2 ? 1 : 0;
        for (int i = 0; ok && i < nd; i++) ok = sh[i] == shape[i];
        ok = ok && (count == 0 || memcmp(d, v, count * 4) == 0);
        if (s == 1) ok = ok && every_truncation_fails(out, len, read_npy);
        free(d);
        if (s == 1) kept = out, kept_len = len;
        else free(out);
        out = NULL;
    }
    free(out);
    out = kept;
    len = kept_len;
    check(t, ok, "npy: round trips (1-d, 3-d, 0-d, empty) with 64-byte aligned headers", err.message);
    ok = out && strncmp((const char *)out + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", 62) == 0;
    check(t, ok, "npy: header matches numpy's layout", NULL);
    static const struct { const char *dict, *needle, *name; } bad[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", "'<f8'", "float64"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", "fortran_order", "fortran order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "shape does not match", "shape larger than the data"},
        {"{'descr': '<f4', 'shape': (2,), }", "lacks", "a missing key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unexpected", "an unknown key"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        Buf b = {0};
        puts_(&b, "\x93NUMPY");
        put8(&b, 1); put8(&b, 0); put16(&b, (unsigned)strlen(bad[c].dict) + 1);
        puts_(&b, bad[c].dict); put8(&b, '\n');
        put(&b, v, 8);
        char name[64];
        snprintf(name, sizeof name, "npy: refuses %s", bad[c].name);
        check(t, expect_error(read_npy(b.p, b.len, &err), &err, bad[c].needle), name, err.message);
        free(b.p);
    }
    if (out) out[0] = 'x';
    check(t, out && expect_error(read_npy(out, len, &err), &err, "magic"), "npy: bad magic refused", NULL);
    free(out);
}

int main(void) {
    Tally t = {0, 0};
    test_half(&t);
    test_safetensors(&t);
    test_npy(&t);
    test_pth(&t);
    test_pickle_security(&t);
    printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
