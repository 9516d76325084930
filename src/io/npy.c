// NumPy .npy files holding little-endian float32 in C order: what the CLI
// exchanges with the Python reference (embeddings, masks, logits).
#include "tensors.h"

#include <stdlib.h>
#include <string.h>

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static size_t fmt_int(char *o, int64_t v) {
    char tmp[24];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    do tmp[n++] = (char)('0' + u % 10); while ((u /= 10) && n < sizeof tmp);
    for (size_t i = 0; i < n; i++) o[i] = tmp[n - 1 - i];
    return n;
}

int npy_write_f32(const float *data, int ndim, const int64_t *shape, uint8_t **out,
                  size_t *out_len, SamError *err) {
    *out = NULL;
    *out_len = 0;
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) return sam_error(err, "npy: %d dimensions (at most %d)", ndim, TENSOR_MAX_DIMS);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && numel > (UINT64_MAX / 8) / (uint64_t)shape[i])) {
            return sam_error(err, "npy: invalid shape");
        }
        numel *= (uint64_t)shape[i];
    }
    // numpy's own layout: a Python dict literal padded with spaces so that
    // the data starts on a 64-byte boundary, ending in a newline.
    char dict[256];
    size_t n = 0;
    const char *head = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    memcpy(dict, head, strlen(head));
    n = strlen(head);
    for (int i = 0; i < ndim; i++) {
        if (i) dict[n++] = ',', dict[n++] = ' ';
        n += fmt_int(dict + n, shape[i]);
    }
    if (ndim == 1) dict[n++] = ',';
    memcpy(dict + n, "), }", 4);
    n += 4;
    size_t prefix = 10;  // version 1.0: magic, version, u16 header length
    size_t total = (prefix + n + 1 + 63) / 64 * 64;
    size_t hlen = total - prefix;
    size_t bytes = (size_t)numel * 4;
    uint8_t *buf = malloc(total + bytes);
    if (!buf) return sam_error(err, "npy: out of memory for %zu bytes", total + bytes);
    memcpy(buf, npy_magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + prefix, dict, n);
    memset(buf + prefix + n, ' ', hlen - n - 1);
    buf[total - 1] = '\n';
    if (bytes) memcpy(buf + total, data, bytes);
    *out = buf;
    *out_len = total + bytes;
    return 0;
}

typedef struct Lit {
    const char *p, *end;
} Lit;

static int lit_peek(Lit *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t')) l->p++;
    return l->p < l->end ? (unsigned char)*l->p : -1;
}

static int lit_eat(Lit *l, char c) {
    if (lit_peek(l) != (unsigned char)c) return -1;
    l->p++;
    return 0;
}

// A quoted Python string without escapes (numpy never writes any here).
static int lit_str(Lit *l, const char **s, size_t *n) {
    int q = lit_peek(l);
    if (q != '\'' && q != '"') return -1;
    const char *start = ++l->p;
    const char *e = memchr(start, q, (size_t)(l->end - start));
    if (!e) return -1;
    *s = start;
    *n = (size_t)(e - start);
    l->p = e + 1;
    return 0;
}

static int lit_is(const char *s, size_t n, const char *want) {
    return strlen(want) == n && memcmp(s, want, n) == 0;
}

static int lit_shape(Lit *l, int *ndim, int64_t *shape, SamError *err) {
    if (lit_eat(l, '(')) return sam_error(err, "npy: shape is not a tuple");
    *ndim = 0;
    while (lit_peek(l) != ')') {
        if (*ndim == TENSOR_MAX_DIMS) return sam_error(err, "npy: more than %d dimensions", TENSOR_MAX_DIMS);
        if (lit_peek(l) < '0' || lit_peek(l) > '9') return sam_error(err, "npy: shape holds a non-integer");
        int64_t v = 0;
        while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return sam_error(err, "npy: dimension out of range");
            v = v * 10 + (*l->p++ - '0');
        }
        shape[(*ndim)++] = v;
        if (lit_peek(l) != ')' && lit_eat(l, ',')) return sam_error(err, "npy: malformed shape tuple");
    }
    l->p++;
    return 0;
}

int npy_read_f32(const uint8_t *buf, size_t len, float **data, int *ndim,
                 int64_t shape[TENSOR_MAX_DIMS], SamError *err) {
    *data = NULL;
    *ndim = 0;
    if (len < 10 || memcmp(buf, npy_magic, 6) != 0) return sam_error(err, "npy: not a .npy file (bad magic)");
    size_t prefix, hlen;
    if (buf[6] == 1 && buf[7] == 0) {
        prefix = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (buf[6] == 2 && buf[7] == 0 && len >= 12) {
        prefix = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    } else {
        return sam_error(err, "npy: unsupported format version %u.%u", buf[6], buf[7]);
    }
    if (hlen > len - prefix) return sam_error(err, "npy: header (%zu bytes) runs past the end of the file", hlen);
    Lit l = {(const char *)buf + prefix, (const char *)buf + prefix + hlen};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (lit_eat(&l, '{')) return sam_error(err, "npy: header is not a dict");
    while (lit_peek(&l) != '}') {
        const char *k, *v;
        size_t kn, vn;
        if (lit_str(&l, &k, &kn) || lit_eat(&l, ':')) return sam_error(err, "npy: malformed header dict");
        if (lit_is(k, kn, "descr")) {
            if (lit_str(&l, &v, &vn)) return sam_error(err, "npy: descr is not a string");
            if (!lit_is(v, vn, "<f4")) {
                return sam_error(err, "npy: dtype '%.*s' is not little-endian float32 ('<f4')", (int)(vn > 32 ? 32 : vn), v);
            }
            have_descr = 1;
        } else if (lit_is(k, kn, "fortran_order")) {
            lit_peek(&l);
            if ((size_t)(l.end - l.p) >= 4 && memcmp(l.p, "True", 4) == 0) {
                return sam_error(err, "npy: fortran_order arrays are not supported (save a C-contiguous array)");
            }
            if ((size_t)(l.end - l.p) < 5 || memcmp(l.p, "False", 5) != 0) return sam_error(err, "npy: fortran_order is not a bool");
            l.p += 5;
            have_order = 1;
        } else if (lit_is(k, kn, "shape")) {
            if (lit_shape(&l, ndim, shape, err)) return -1;
            have_shape = 1;
        } else {
            return sam_error(err, "npy: unexpected header key '%.*s'", (int)(kn > 32 ? 32 : kn), k);
        }
        if (lit_peek(&l) != '}' && lit_eat(&l, ',')) return sam_error(err, "npy: malformed header dict");
    }
    l.p++;
    while (l.p < l.end && (*l.p == ' ' || *l.p == '\n')) l.p++;
    if (l.p != l.end) return sam_error(err, "npy: trailing characters after the header dict");
    if (!have_descr || !have_order || !have_shape) return sam_error(err, "npy: header lacks descr, fortran_order or shape");
    size_t avail = len - prefix - hlen;
    uint64_t numel = 1;
    int zero = 0, too_big = 0;
    for (int i = 0; i < *ndim; i++) zero |= shape[i] == 0;
    for (int i = 0; i < *ndim && !zero && !too_big; i++) {
        if ((uint64_t)shape[i] > avail / numel) too_big = 1;
        else numel *= (uint64_t)shape[i];
    }
    if (zero) numel = 0;
    if (too_big || numel * 4 != avail) {
        return sam_error(err, "npy: shape does not match the %zu bytes of data in the file", avail);
    }
    float *out = malloc(avail ? avail : 1);
    if (!out) return sam_error(err, "npy: out of memory for %zu bytes", avail);
    if (avail) memcpy(out, buf + prefix + hlen, avail);
    *data = out;
    return 0;
}
