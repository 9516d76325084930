// safetensors reader and writer. The JSON header is parsed by a small
// schema-driven parser (only the shapes safetensors uses are accepted), and
// every declared offset is validated before a tensor points into the buffer.
#include "tensors.h"

#include <stdlib.h>
#include <string.h>

#include "../common/half.h"

#define MAX_HEADER (100u * 1024u * 1024u)
#define SAFETENSORS_MAX_METADATA 1024
#define SAFETENSORS_MAX_METADATA_TEXT "1024"

typedef struct Json {
    const char *p, *end;
    SamError *err;
} Json;

typedef struct StInfo {
    char *name;
    TensorDType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    uint64_t begin, end;
} StInfo;

static int jfail(Json *j, const char *what) {
    return sam_error(j->err, "safetensors header: %s", what);
}

static void skip_ws(Json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int peek(Json *j) {
    skip_ws(j);
    return j->p < j->end ? (unsigned char)*j->p : -1;
}

static int expect(Json *j, char c) {
    if (peek(j) != (unsigned char)c) {
        char msg[32] = "expected ' '";
        msg[10] = c;
        return jfail(j, msg);
    }
    j->p++;
    return 0;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

// Decodes a JSON string into a malloc'd NUL-terminated copy. Escapes never
// expand, so the raw length bounds the decoded one.
static int parse_string(Json *j, char **out) {
    if (expect(j, '"')) return -1;
    const char *s = j->p;
    const char *q = memchr(s, '"', (size_t)(j->end - s));
    while (q) {  // skip quotes that are escaped by an odd run of backslashes
        size_t bs = 0;
        while (q - bs > s && q[-1 - (ptrdiff_t)bs] == '\\') bs++;
        if (bs % 2 == 0) break;
        q = memchr(q + 1, '"', (size_t)(j->end - q - 1));
    }
    if (!q) return jfail(j, "unterminated string");
    char *o = malloc((size_t)(q - s) + 1);
    if (!o) return jfail(j, "out of memory");
    size_t n = 0;
    for (const char *p = s; p < q;) {
        unsigned char c = (unsigned char)*p++;
        if (c < 0x20) goto bad;
        if (c != '\\') { o[n++] = (char)c; continue; }
        char e = *p++;  // p < q here: q is not preceded by an unpaired backslash
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) { o[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]; continue; }
        unsigned cp, lo;
        if (e != 'u' || q - p < 4 || hex4(p, &cp)) goto bad;
        p += 4;
        if (cp >= 0xdc00 && cp < 0xe000) goto bad;
        if (cp >= 0xd800 && cp < 0xdc00) {
            if (q - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xdc00 || lo >= 0xe000) goto bad;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        }
        if (cp == 0) goto bad;  // names become C strings
        n += put_utf8(o + n, cp);
    }
    o[n] = 0;
    j->p = q + 1;
    *out = o;
    return 0;
bad:
    free(o);
    return jfail(j, "invalid character or escape in string");
}

static int parse_uint(Json *j, uint64_t *out) {
    int c = peek(j);
    if (c == '-') return jfail(j, "negative number");
    if (c < '0' || c > '9') return jfail(j, "expected a non-negative integer");
    if (c == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9') return jfail(j, "number with a leading zero");
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) return jfail(j, "number out of range");
        v = v * 10 + (uint64_t)(*j->p++ - '0');
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) return jfail(j, "expected an integer");
    *out = v;
    return 0;
}

// [n, n, ...] with at most max items.
static int parse_uint_array(Json *j, uint64_t *vals, int max, int *count) {
    if (expect(j, '[')) return -1;
    *count = 0;
    if (peek(j) == ']') return j->p++, 0;
    for (;;) {
        if (*count == max) return jfail(j, "array too long");
        if (parse_uint(j, &vals[(*count)++])) return -1;
        if (peek(j) == ']') return j->p++, 0;
        if (expect(j, ',')) return -1;
    }
}

static int parse_dtype(Json *j, const char *s, TensorDType *dt) {
    static const TensorDType all[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_F64, DTYPE_I64, DTYPE_I32, DTYPE_U8, DTYPE_BOOL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, tensor_dtype_name(all[i])) == 0) return *dt = all[i], 0;
    }
    return sam_error(j->err, "safetensors: unsupported dtype '%.32s'", s);
}

static int parse_tensor(Json *j, StInfo *t) {
    int seen_dtype = 0, seen_shape = 0, seen_offsets = 0;
    if (expect(j, '{')) return -1;
    int first = 1;
    while (peek(j) != '}') {
        if (!first && expect(j, ',')) return -1;
        first = 0;
        char *key = NULL;
        if (parse_string(j, &key)) return -1;
        int rc = expect(j, ':');
        if (!rc && strcmp(key, "dtype") == 0 && !seen_dtype++) {
            char *v = NULL;
            rc = parse_string(j, &v);
            if (!rc) rc = parse_dtype(j, v, &t->dtype);
            free(v);
        } else if (!rc && strcmp(key, "shape") == 0 && !seen_shape++) {
            uint64_t dims[TENSOR_MAX_DIMS];
            rc = parse_uint_array(j, dims, TENSOR_MAX_DIMS, &t->ndim);
            for (int i = 0; !rc && i < t->ndim; i++) {
                if (dims[i] > (uint64_t)INT64_MAX) rc = jfail(j, "dimension out of range");
                t->shape[i] = (int64_t)dims[i];
            }
        } else if (!rc && strcmp(key, "data_offsets") == 0 && !seen_offsets++) {
            uint64_t off[2] = {0, 0};
            int n = 0;
            rc = parse_uint_array(j, off, 2, &n);
            if (!rc && n != 2) rc = jfail(j, "data_offsets must hold two integers");
            t->begin = off[0];
            t->end = off[1];
        } else if (!rc) {
            rc = sam_error(j->err, "safetensors header: unexpected or repeated key '%.64s' in tensor '%.200s'", key, t->name);
        }
        free(key);
        if (rc) return -1;
    }
    j->p++;
    if (!seen_dtype || !seen_shape || !seen_offsets) {
        return sam_error(j->err, "safetensors header: tensor '%.200s' lacks dtype, shape or data_offsets", t->name);
    }
    return 0;
}

static int parse_metadata(Json *j, TensorTable *table) {
    if (expect(j, '{')) return -1;
    int first = 1;
    while (peek(j) != '}') {
        if (!first && expect(j, ',')) return -1;
        first = 0;
        // Each key is looked up linearly: a cap keeps a hostile header from
        // costing quadratic time (ours write 3 keys).
        if (table->meta_count >= SAFETENSORS_MAX_METADATA)
            return jfail(j, "more than " SAFETENSORS_MAX_METADATA_TEXT " __metadata__ entries");
        char *k = NULL, *v = NULL;
        int rc = parse_string(j, &k);
        if (!rc) rc = expect(j, ':');
        if (!rc) rc = parse_string(j, &v);
        if (!rc && tensor_table_set_meta(table, k, v)) rc = jfail(j, "out of memory");
        free(k);
        free(v);
        if (rc) return -1;
    }
    j->p++;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const StInfo *)a)->name, ((const StInfo *)b)->name);
}

static int cmp_offset(const void *pa, const void *pb) {
    const StInfo *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int check_info(const StInfo *t, uint64_t data_len, SamError *err) {
    uint64_t numel = 1;
    int zero = 0;
    for (int i = 0; i < t->ndim; i++) zero |= t->shape[i] == 0;
    for (int i = 0; i < t->ndim && !zero; i++) {
        if ((uint64_t)t->shape[i] > data_len / numel) {
            return sam_error(err, "safetensors: tensor '%s' shape is larger than the data section", t->name);
        }
        numel *= (uint64_t)t->shape[i];
    }
    if (zero) numel = 0;
    uint64_t want = numel * tensor_dtype_size(t->dtype);
    if (t->begin > t->end || t->end > data_len) {
        return sam_error(err, "safetensors: tensor '%s' data_offsets [%llu, %llu] lie outside the %llu-byte data section",
                         t->name, (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_len);
    }
    if (t->end - t->begin != want) {
        return sam_error(err, "safetensors: tensor '%s' has %llu bytes but its dtype and shape need %llu", t->name,
                         (unsigned long long)(t->end - t->begin), (unsigned long long)want);
    }
    return 0;
}

static int parse_header(Json *j, TensorTable *table, StInfo **infos, size_t *count) {
    size_t cap = 0;
    if (expect(j, '{')) return -1;
    int first = 1;
    while (peek(j) != '}') {
        if (!first && expect(j, ',')) return -1;
        first = 0;
        char *name = NULL;
        if (parse_string(j, &name)) return -1;
        if (expect(j, ':')) return free(name), -1;
        if (strcmp(name, "__metadata__") == 0) {
            free(name);
            if (parse_metadata(j, table)) return -1;
            continue;
        }
        if (*count == TENSOR_MAX_COUNT) {
            free(name);
            return sam_error(j->err, "safetensors: header lists more than %d tensors", TENSOR_MAX_COUNT);
        }
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            StInfo *grown = realloc(*infos, cap * sizeof *grown);
            if (!grown) return free(name), jfail(j, "out of memory");
            *infos = grown;
        }
        StInfo *t = &(*infos)[(*count)++];
        memset(t, 0, sizeof *t);
        t->name = name;
        if (parse_tensor(j, t)) return -1;
    }
    j->p++;
    skip_ws(j);  // the writer pads the header with spaces
    if (j->p != j->end) return jfail(j, "trailing characters after the header object");
    return 0;
}

int safetensors_read(const uint8_t *buf, size_t len, TensorTable *table, SamError *err) {
    tensor_table_init(table);
    if (len < 8) return sam_error(err, "safetensors: file is %zu bytes, too short for a header", len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > MAX_HEADER || hlen > len - 8) {
        return sam_error(err, "safetensors: header length %llu is invalid for a %zu-byte file", (unsigned long long)hlen, len);
    }
    Json j = {(const char *)buf + 8, (const char *)buf + 8 + hlen, err};
    StInfo *infos = NULL;
    size_t count = 0;
    const uint8_t *data = buf + 8 + hlen;
    uint64_t data_len = len - 8 - hlen;
    int rc = parse_header(&j, table, &infos, &count);
    if (!rc && count > 1) {
        qsort(infos, count, sizeof *infos, cmp_name);
        for (size_t i = 1; i < count && !rc; i++) {
            if (strcmp(infos[i - 1].name, infos[i].name) == 0) {
                rc = sam_error(err, "safetensors: duplicate tensor '%.200s'", infos[i].name);
            }
        }
        qsort(infos, count, sizeof *infos, cmp_offset);
    }
    for (size_t i = 0; i < count && !rc; i++) {
        const StInfo *t = &infos[i];
        rc = check_info(t, data_len, err);
        if (!rc && tensor_table_add(table, t->name, t->dtype, t->ndim, t->shape, data + t->begin, (size_t)(t->end - t->begin))) {
            rc = sam_error(err, "safetensors: out of memory");
        }
    }
    for (size_t i = 0; i < count; i++) free(infos[i].name);
    free(infos);
    if (rc) tensor_table_free(table);
    return rc;
}

// ---- writer ----

typedef struct StrBuf {
    char *p;
    size_t len, cap;
    int oom;
} StrBuf;

static void sb_put(StrBuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(StrBuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_uint(StrBuf *b, uint64_t v) {
    char tmp[24];
    int n = 0;
    do tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10); while ((v /= 10) && n < 23);
    sb_put(b, tmp + sizeof tmp - n, (size_t)n);
}

static void sb_json(StrBuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[7] = "\\u0000";
            e[4] = "0123456789abcdef"[c >> 4];
            e[5] = "0123456789abcdef"[c & 15];
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int is_float(TensorDType d) { return d == DTYPE_F32 || d == DTYPE_F16 || d == DTYPE_BF16 || d == DTYPE_F64; }

// F64 sources narrow to F32 first; a second rounding to F16 can only differ
// from a direct one on exact F16 ties, and SAM checkpoints hold no F64.
static float load_float(TensorDType d, const uint8_t *p) {
    uint16_t h;
    uint32_t bits;
    float f;
    double x;
    switch (d) {
    case DTYPE_F16: memcpy(&h, p, 2); return half_to_float(h);
    case DTYPE_BF16:
        memcpy(&h, p, 2);
        bits = (uint32_t)h << 16;  // bfloat16 is the top half of a binary32
        memcpy(&f, &bits, 4);
        return f;
    case DTYPE_F32: memcpy(&f, p, 4); return f;
    default: memcpy(&x, p, 8); return (float)x;
    }
}

static void convert(const TensorEntry *e, TensorDType to, int64_t numel, uint8_t *dst) {
    size_t es = tensor_dtype_size(e->dtype);
    const uint8_t *src = e->data;
    if (to == e->dtype || !is_float(e->dtype)) {
        if (e->nbytes) memcpy(dst, src, e->nbytes);
        return;
    }
    for (int64_t i = 0; i < numel; i++) {
        float v = load_float(e->dtype, src + (size_t)i * es);
        if (to == DTYPE_F16) {
            uint16_t h = float_to_half(v);
            memcpy(dst + i * 2, &h, 2);
        } else {
            memcpy(dst + i * 4, &v, 4);
        }
    }
}

int safetensors_write(const TensorTable *table, TensorDType out_dtype, uint8_t **out,
                      size_t *out_len, SamError *err) {
    *out = NULL;
    *out_len = 0;
    if (out_dtype != DTYPE_F32 && out_dtype != DTYPE_F16) {
        return sam_error(err, "safetensors: output dtype must be F32 or F16, not %s", tensor_dtype_name(out_dtype));
    }
    StrBuf h = {0};
    uint64_t offset = 0;
    sb_str(&h, "{");
    if (table->meta_count) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < table->meta_count; i++) {
            if (i) sb_str(&h, ",");
            sb_json(&h, table->meta_keys[i]);
            sb_str(&h, ":");
            sb_json(&h, table->meta_values[i]);
        }
        sb_str(&h, "}");
    }
    for (int i = 0; i < table->count; i++) {
        const TensorEntry *e = &table->entries[i];
        int64_t numel = tensor_numel(e);
        TensorDType dt = is_float(e->dtype) ? out_dtype : e->dtype;
        if (numel < 0 || (uint64_t)numel * tensor_dtype_size(e->dtype) != e->nbytes) {
            free(h.p);
            return sam_error(err, "safetensors: tensor '%s' has %zu bytes, inconsistent with its shape", e->name, e->nbytes);
        }
        uint64_t size = (uint64_t)numel * tensor_dtype_size(dt);
        if (i || table->meta_count) sb_str(&h, ",");
        sb_json(&h, e->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, tensor_dtype_name(dt));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) sb_str(&h, ",");
            sb_uint(&h, (uint64_t)e->shape[d]);
        }
        sb_str(&h, "],\"data_offsets\":[");
        sb_uint(&h, offset);
        sb_str(&h, ",");
        sb_uint(&h, offset + size);
        sb_str(&h, "]}");
        offset += size;
    }
    sb_str(&h, "}");
    // Data starts 8-byte aligned, as the reference writer arranges with spaces.
    while ((8 + h.len) % 8) sb_str(&h, " ");
    uint8_t *buf = h.oom ? NULL : malloc(8 + h.len + (size_t)offset);
    if (!buf) {
        free(h.p);
        return sam_error(err, "safetensors: out of memory for a %llu-byte file", (unsigned long long)(8 + h.len + offset));
    }
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    memcpy(buf + 8, h.p, h.len);
    uint8_t *dst = buf + 8 + h.len;
    for (int i = 0; i < table->count; i++) {
        const TensorEntry *e = &table->entries[i];
        TensorDType dt = is_float(e->dtype) ? out_dtype : e->dtype;
        int64_t numel = tensor_numel(e);
        convert(e, dt, numel, dst);
        dst += (size_t)numel * tensor_dtype_size(dt);
    }
    free(h.p);
    *out = buf;
    *out_len = 8 + h.len + (size_t)offset;
    return 0;
}
