#include "image_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
// Third-party headers: their own warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

int file_read_all(const char *path, uint8_t **data, size_t *len, SamError *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sam_error(err, "cannot open '%s'", path);
    size_t cap = 1 << 16, used = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + used, 1, cap - used, f);
        used += got;
        if (used < cap) break;
        uint8_t *grown = cap > ((size_t)1 << 40) ? NULL : realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf) return sam_error(err, "out of memory reading '%s'", path);
    if (failed) {
        free(buf);
        return sam_error(err, "cannot read '%s'", path);
    }
    *data = buf;
    *len = used;
    return 0;
}

int file_write_all(const char *path, const void *data, size_t len, SamError *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return sam_error(err, "cannot create '%s'", path);
    size_t put = fwrite(data, 1, len, f);
    int closed = fclose(f);
    if (put != len || closed != 0) return sam_error(err, "cannot write '%s'", path);
    return 0;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int32_t le32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

// Size claimed by a PNG IHDR or a BMP info header; 0 for other formats.
static int header_size(const uint8_t *d, size_t len, int *w, int *h) {
    static const uint8_t png[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (len >= 24 && memcmp(d, png, 8) == 0 && memcmp(d + 12, "IHDR", 4) == 0) {
        uint32_t pw = be32(d + 16), ph = be32(d + 20);
        *w = pw > 0x7fffffffu ? -1 : (int)pw;
        *h = ph > 0x7fffffffu ? -1 : (int)ph;
        return 1;
    }
    if (len >= 26 && d[0] == 'B' && d[1] == 'M') {
        int32_t bw = le32(d + 18), bh = le32(d + 22);
        *w = bw;
        *h = bh == INT32_MIN ? -1 : (bh < 0 ? -bh : bh);  // negative height: top-down rows
        return 1;
    }
    return 0;
}

int image_load_rgb(const char *path, uint8_t **rgb, int *width, int *height, SamError *err) {
    *rgb = NULL;
    uint8_t *data;
    size_t len;
    if (file_read_all(path, &data, &len, err)) return -1;
    if (len == 0) {
        free(data);
        return sam_error(err, "image '%s' is empty (0 bytes)", path);
    }
    if (len > 0x7fffffff) {
        free(data);
        return sam_error(err, "image '%s' is larger than 2 GB", path);
    }
    int w, h, comp;
    // Read the header first so a lying size is refused before allocation.
    // stb_image itself refuses huge PNG/BMP headers with a generic message,
    // so the sizes those headers claim are read here to name them.
    if (header_size(data, len, &w, &h) &&
        (w <= 0 || h <= 0 || w > CLI_MAX_IMAGE_SIDE || h > CLI_MAX_IMAGE_SIDE)) {
        free(data);
        return sam_error(err, "image '%s' claims %dx%d pixels; the limit is %d per side", path, w, h,
                         CLI_MAX_IMAGE_SIDE);
    }
    if (!stbi_info_from_memory(data, (int)len, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        free(data);
        return sam_error(err, "image '%s' is not a readable PNG, JPEG, BMP or TGA (%s)", path,
                         why ? why : "unknown format");
    }
    if (w <= 0 || h <= 0 || w > CLI_MAX_IMAGE_SIDE || h > CLI_MAX_IMAGE_SIDE) {
        free(data);
        return sam_error(err, "image '%s' is %dx%d pixels; the limit is %d per side", path, w, h,
                         CLI_MAX_IMAGE_SIDE);
    }
    uint8_t *pixels = stbi_load_from_memory(data, (int)len, &w, &h, &comp, 3);
    free(data);
    if (!pixels) {
        const char *why = stbi_failure_reason();
        return sam_error(err, "image '%s' could not be decoded (%s)", path, why ? why : "corrupt data");
    }
    *rgb = pixels;
    *width = w;
    *height = h;
    return 0;
}

typedef struct PngBuffer {
    uint8_t *data;
    size_t len, cap;
    int failed;
} PngBuffer;

static void png_append(void *context, void *bytes, int size) {
    PngBuffer *b = context;
    if (b->failed || size <= 0) return;
    if (b->len + (size_t)size > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)size) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, (size_t)size);
    b->len += (size_t)size;
}

int image_write_png_grey(const char *path, const uint8_t *pixels, int width, int height, SamError *err) {
    PngBuffer buf = {0};
    int ok = stbi_write_png_to_func(png_append, &buf, width, height, 1, pixels, width);
    int rc;
    if (!ok || buf.failed) rc = sam_error(err, "cannot encode PNG '%s'", path);
    else rc = file_write_all(path, buf.data, buf.len, err);
    free(buf.data);
    return rc;
}
