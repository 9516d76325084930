// pth_dump FILE: loads a .pth or .safetensors checkpoint with the I/O layer
// and prints one JSON line per tensor (name, dtype, shape, float64 sum of
// its values) so that tests can compare against what PyTorch computes.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "io/tensors.h"

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            uint8_t *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    *len = n;
    return buf;
}

static double element(const TensorEntry *e, int64_t i) {
    const uint8_t *p = (const uint8_t *)e->data + (size_t)i * tensor_dtype_size(e->dtype);
    uint16_t h;
    float f;
    double d;
    int64_t l;
    int32_t k;
    switch (e->dtype) {
    case DTYPE_F32: memcpy(&f, p, 4); return f;
    case DTYPE_F16: memcpy(&h, p, 2); return half_to_float(h);
    case DTYPE_BF16: {
        memcpy(&h, p, 2);
        uint32_t bits = (uint32_t)h << 16;  // bfloat16 is the top half of a binary32
        memcpy(&f, &bits, 4);
        return f;
    }
    case DTYPE_F64: memcpy(&d, p, 8); return d;
    case DTYPE_I64: memcpy(&l, p, 8); return (double)l;
    case DTYPE_I32: memcpy(&k, p, 4); return k;
    case DTYPE_U8:
    case DTYPE_BOOL: return p[0];
    }
    return 0;
}

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: pth_dump FILE.pth|FILE.safetensors\n");
        return 2;
    }
    size_t len = 0;
    uint8_t *buf = read_file(argv[1], &len);
    if (!buf) {
        fprintf(stderr, "pth_dump: cannot read %s\n", argv[1]);
        return 1;
    }
    TensorTable table;
    SamError err = {{0}};
    int kind = checkpoint_detect(buf, len);
    int rc = kind == 2 ? safetensors_read(buf, len, &table, &err)
                       : kind == 1 ? pth_read(buf, len, &table, &err)
                                   : sam_error(&err, "unrecognised checkpoint format");
    if (rc) {
        fprintf(stderr, "pth_dump: %s: %s\n", argv[1], err.message);
        free(buf);
        return 1;
    }
    for (int i = 0; i < table.count; i++) {
        const TensorEntry *e = &table.entries[i];
        double sum = 0;
        int64_t n = tensor_numel(e);
        for (int64_t j = 0; j < n; j++) sum += element(e, j);
        printf("{\"name\":");
        print_json_string(e->name);
        printf(",\"dtype\":\"%s\",\"shape\":[", tensor_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++) printf("%s%lld", d ? "," : "", (long long)e->shape[d]);
        // JSON has no inf/nan literals.
        if (isfinite(sum)) printf("],\"sum\":%.17g}\n", sum);
        else printf("],\"sum\":\"%s\"}\n", isnan(sum) ? "nan" : sum > 0 ? "inf" : "-inf");
    }
    tensor_table_free(&table);
    free(buf);
    return 0;
}
