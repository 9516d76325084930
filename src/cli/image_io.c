#include "image_io.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
// Only PNG, BMP and TGA: fewer decoders, less untrusted-input surface. JPEG
// goes to libjpeg-turbo (jpeg_decode below): Debian 12's stb_image 2.27 JPEG
// decoder writes past its Huffman tables and reads out of bounds on corrupt
// files (fixed upstream in 2.28; tests/fuzz/regressions/image has inputs),
// and libjpeg-turbo is what PIL and OpenCV decode with in the official
// pipeline, so pixels match theirs.
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_TGA
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

static const uint8_t PNG_SIGNATURE[8] = {137, 80, 78, 71, 13, 10, 26, 10};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int32_t le32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

// Size claimed by a PNG IHDR or a BMP info header; 0 for other formats.
static int header_size(const uint8_t *d, size_t len, int *w, int *h) {
    if (len >= 24 && memcmp(d, PNG_SIGNATURE, 8) == 0 && memcmp(d + 12, "IHDR", 4) == 0) {
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

// The fuzz build lowers the pixel limit (tests/fuzz/run.sh): an input that
// claims 100 MP costs a second to decode, and such inputs would take up the
// fuzzer's time without reaching new code.
#ifndef IMAGE_DECODE_MAX_PIXELS
#define IMAGE_DECODE_MAX_PIXELS SAM_MAX_IMAGE_PIXELS
#endif

static int size_refused(int w, int h) {
    return w <= 0 || h <= 0 || w > SAM_MAX_IMAGE_SIDE || h > SAM_MAX_IMAGE_SIDE ||
           (int64_t)w * h > IMAGE_DECODE_MAX_PIXELS;
}

typedef struct JpegErrors {
    struct jpeg_error_mgr mgr;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
} JpegErrors;

static void jpeg_fail(j_common_ptr cinfo) {
    JpegErrors *e = (JpegErrors *)cinfo->err;
    e->mgr.format_message(cinfo, e->message);
    longjmp(e->escape, 1);
}

static void jpeg_quiet(j_common_ptr cinfo, int level) { (void)cinfo, (void)level; }

// A progressive JPEG of a few KB can hold thousands of scans, each a pass
// over the whole image: a hang, not an image. Real files have about 10.
#define JPEG_MAX_SCANS 500

static void jpeg_count_scans(j_common_ptr cinfo) {
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        JpegErrors *e = (JpegErrors *)cinfo->err;
        snprintf(e->message, sizeof e->message, "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(e->escape, 1);
    }
}

// stb_image grows its buffer to a PNG chunk's declared length before reading
// the chunk, so a few bytes claiming a 2 GB IDAT cost 2 GB. Chunks are read
// in order up to IEND, as stb does; each must fit in what remains of the file.
// Also counts empty IDAT chunks (legal, but stb then offsets a NULL buffer).
static int png_chunks_fit(const uint8_t *d, size_t len, char type[5], uint32_t *claimed,
                          int *empty_idats) {
    size_t p = 8;  // after the signature
    *empty_idats = 0;
    while (p + 8 <= len) {
        const uint32_t n = be32(d + p);
        memcpy(type, d + p + 4, 4);
        type[4] = '\0';
        if (n > len - p - 8) {
            *claimed = n;
            return 0;
        }
        if (memcmp(type, "IEND", 4) == 0) break;
        if (n == 0 && memcmp(type, "IDAT", 4) == 0) ++*empty_idats;
        p += 12 + (size_t)n;  // length, type, data, CRC
    }
    return 1;
}

// A copy of a PNG (whose chunks fit) without its empty IDAT chunks: they
// carry no data, so the image is the same. NULL when out of memory.
static uint8_t *png_without_empty_idats(const uint8_t *d, size_t len, size_t *out_len) {
    uint8_t *out = malloc(len);
    if (!out) return NULL;
    memcpy(out, d, 8);
    size_t p = 8, q = 8;
    while (p + 8 <= len) {
        const uint64_t chunk = 12 + (uint64_t)be32(d + p);
        const size_t take = chunk < len - p ? (size_t)chunk : len - p;  // a last chunk may lack its CRC
        if (!(chunk == 12 && memcmp(d + p + 4, "IDAT", 4) == 0)) {
            memcpy(out + q, d + p, take);
            q += take;
        }
        p += take;
    }
    memcpy(out + q, d + p, len - p);  // bytes after the last whole chunk header
    *out_len = q + (len - p);
    return out;
}

static int is_jpeg(const uint8_t *d, size_t len) { return len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff; }

// libjpeg-turbo with its defaults (islow IDCT, fancy upsampling), as PIL and
// OpenCV; grey converted to RGB by the library, CMYK/YCCK here as PIL does. The size is
// checked from the header before any pixel is allocated.
static int jpeg_decode(const uint8_t *data, size_t len, const char *name, uint8_t **rgb, int *width,
                       int *height, SamError *err) {
    struct jpeg_decompress_struct cinfo;
    JpegErrors errors;
    uint8_t *volatile pixels = NULL;
    volatile int refused_size = 0;
    cinfo.err = jpeg_std_error(&errors.mgr);
    errors.mgr.error_exit = jpeg_fail;
    errors.mgr.emit_message = jpeg_quiet;  // warnings (corrupt data recovered) are not errors
    if (setjmp(errors.escape)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        if (refused_size) return -1;
        return sam_error(err, "image '%s' could not be decoded (JPEG: %s)", name, errors.message);
    }
    jpeg_create_decompress(&cinfo);
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_count_scans};
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    const int w = (int)cinfo.image_width, h = (int)cinfo.image_height;
    if (size_refused(w, h)) {
        sam_error(err, "image '%s' is %dx%d pixels; the limit is %d per side and %d in all", name, w, h,
                  SAM_MAX_IMAGE_SIDE, IMAGE_DECODE_MAX_PIXELS);
        refused_size = 1;
        longjmp(errors.escape, 1);
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        cinfo.out_color_space = JCS_CMYK;  // converted below: libjpeg has no CMYK -> RGB
    } else {
        cinfo.out_color_space = JCS_RGB;
    }
    jpeg_start_decompress(&cinfo);
    const int channels = cinfo.output_components;
    const size_t row_bytes = (size_t)w * channels;
    pixels = malloc(row_bytes * h);
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        return sam_error(err, "out of memory decoding '%s' (%dx%d)", name, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + row_bytes * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    const int inverted = cinfo.saw_Adobe_marker;  // Adobe CMYK JPEGs store inverted values
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (channels == 4) {
        // PIL's cmyk2rgb: X = (255 - K) - C (255 - K) / 255 with its rounded
        // division, on non-inverted values. In place: pixel i's 3 bytes never
        // reach a later pixel's 4.
        uint8_t *out = pixels;
        for (size_t i = 0; i < (size_t)w * h; i++) {
            int v[4];
            for (int ch = 0; ch < 4; ch++) v[ch] = inverted ? 255 - pixels[4 * i + ch] : pixels[4 * i + ch];
            const int nk = 255 - v[3];
            for (int ch = 0; ch < 3; ch++) {
                const int t = v[ch] * nk + 128;
                out[3 * i + ch] = (uint8_t)(nk - (((t >> 8) + t) >> 8));
            }
        }
    } else if (channels != 3) {
        free(pixels);
        return sam_error(err, "image '%s': JPEG with %d channels is not supported", name, channels);
    }
    *rgb = pixels;
    *width = w;
    *height = h;
    return 0;
}

// PNG, BMP, TGA through stb_image, the size checked before decoding.
static int stb_decode(const uint8_t *data, size_t len, const char *name, uint8_t **rgb, int *width,
                      int *height, SamError *err) {
    int w, h, comp;
    if (!stbi_info_from_memory(data, (int)len, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        return sam_error(err, "image '%s' is not a readable PNG, JPEG, BMP or TGA (%s)", name,
                         why ? why : "unknown format");
    }
    if (size_refused(w, h)) {
        return sam_error(err, "image '%s' is %dx%d pixels; the limit is %d per side and %d in all", name,
                         w, h, SAM_MAX_IMAGE_SIDE, IMAGE_DECODE_MAX_PIXELS);
    }
    uint8_t *pixels = stbi_load_from_memory(data, (int)len, &w, &h, &comp, 3);
    if (!pixels) {
        const char *why = stbi_failure_reason();
        return sam_error(err, "image '%s' could not be decoded (%s)", name, why ? why : "corrupt data");
    }
    *rgb = pixels;
    *width = w;
    *height = h;
    return 0;
}

int image_decode_rgb(const uint8_t *data, size_t len, const char *name, uint8_t **rgb, int *width,
                     int *height, SamError *err) {
    *rgb = NULL;
    if (len == 0) return sam_error(err, "image '%s' is empty (0 bytes)", name);
    if (len > 0x7fffffff) return sam_error(err, "image '%s' is larger than 2 GB", name);
    int w, h;
    // Read the header first so a lying size is refused before allocation.
    // stb_image itself refuses huge PNG/BMP headers with a generic message,
    // so the sizes those headers claim are read here to name them.
    if (header_size(data, len, &w, &h) && size_refused(w, h)) {
        return sam_error(err, "image '%s' claims %dx%d pixels; the limit is %d per side and %d in all",
                         name, w, h, SAM_MAX_IMAGE_SIDE, IMAGE_DECODE_MAX_PIXELS);
    }
    if (is_jpeg(data, len)) return jpeg_decode(data, len, name, rgb, width, height, err);
    char chunk[5];
    uint32_t claimed;
    int empty_idats = 0;
    if (len >= 8 && memcmp(data, PNG_SIGNATURE, 8) == 0) {
        if (!png_chunks_fit(data, len, chunk, &claimed, &empty_idats)) {
            for (int i = 0; i < 4; i++) chunk[i] = chunk[i] >= 32 && chunk[i] < 127 ? chunk[i] : '?';
            return sam_error(err, "image '%s' is a corrupt PNG: chunk '%s' claims %u bytes, more than the file holds",
                             name, chunk, claimed);
        }
        if (empty_idats) {
            size_t clean_len;
            uint8_t *clean = png_without_empty_idats(data, len, &clean_len);
            if (!clean) return sam_error(err, "out of memory reading '%s'", name);
            const int rc = stb_decode(clean, clean_len, name, rgb, width, height, err);
            free(clean);
            return rc;
        }
    }
    return stb_decode(data, len, name, rgb, width, height, err);
}

int image_load_rgb(const char *path, uint8_t **rgb, int *width, int *height, SamError *err) {
    *rgb = NULL;
    uint8_t *data;
    size_t len;
    if (file_read_all(path, &data, &len, err)) return -1;
    const int rc = image_decode_rgb(data, len, path, rgb, width, height, err);
    free(data);
    return rc;
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
