// COCO run-length encoding of masks (segment_anything/utils/amg.py
// mask_to_rle_pytorch, rle_to_mask, area_from_rle) and pycocotools'
// compressed counts string (maskApi.c rleToString / rleFrString, which
// coco_encode_rle reaches through mask_utils.frPyObjects).
#include <stdlib.h>
#include <string.h>

#include "amg.h"

size_t amg_rle_encode(uint32_t *counts, const uint8_t *mask, int h, int w) {
    // Fortran order: the mask is read column by column. The first run counts
    // 0s, so a mask starting with a 1 begins with an empty run.
    size_t n = 0;
    uint8_t prev = 0;
    uint32_t run = 0;
    for (int x = 0; x < w; x++) {
        for (int y = 0; y < h; y++) {
            const uint8_t v = mask[(size_t)y * w + x] ? 1 : 0;
            if (v != prev) {
                if (counts) counts[n] = run;
                n++;
                run = 0;
                prev = v;
            }
            run++;
        }
    }
    if (counts) counts[n] = run;
    return n + 1;
}

int amg_rle_decode(uint8_t *mask, const uint32_t *counts, size_t n, int h, int w) {
    const size_t total = (size_t)h * w;
    size_t idx = 0;
    uint8_t v = 0;
    for (size_t i = 0; i < n; i++, v ^= 1) {
        if (counts[i] > total - idx) return -1;
        for (uint32_t k = 0; k < counts[i]; k++, idx++) {
            // Column-major index idx is pixel (y = idx % h, x = idx / h).
            mask[(idx % h) * (size_t)w + idx / h] = v;
        }
    }
    return idx == total ? 0 : -1;
}

int64_t amg_rle_area(const uint32_t *counts, size_t n) {
    int64_t a = 0;
    for (size_t i = 1; i < n; i += 2) a += counts[i];
    return a;
}

size_t amg_rle_to_string(char *out, const uint32_t *counts, size_t n) {
    // Like LEB128 with 6 bits per character (5 of value, 1 "more"), offset
    // by '0' (48). From the 4th count on, the difference with the count two
    // before is written (pycocotools: `if (i > 2) x -= cnts[i-2]`), so
    // signed: a group whose value bit 0x10 is set ends only at x == -1.
    size_t p = 0;
    for (size_t i = 0; i < n; i++) {
        long long x = (long long)counts[i];
        if (i > 2) x -= (long long)counts[i - 2];
        int more = 1;
        while (more) {
            int c = (int)(x & 0x1f);
            x >>= 5;  // arithmetic shift, as on the `long` of maskApi.c
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            if (out) out[p] = (char)(c + 48);
            p++;
        }
    }
    if (out) out[p] = '\0';
    return p;
}

int amg_rle_from_string(uint32_t **counts, size_t *n, const char *s, SamError *err) {
    const size_t len = strlen(s);
    uint32_t *c = malloc(sizeof(uint32_t) * (len ? len : 1));
    if (!c) return sam_error(err, "out of memory");
    size_t m = 0, p = 0;
    while (s[p]) {
        // Unsigned bits, at most 12 groups (60 bits): shifts past 63 and
        // signed overflow are undefined in C. A count needs 7 groups at most.
        uint64_t bits = 0;
        int k = 0, more = 1;
        while (more) {
            if (!s[p] || s[p] < 48 || s[p] > 48 + 63 || k >= 12) {
                free(c);
                return sam_error(err, "malformed RLE string at character %zu", p);
            }
            const int ch = s[p] - 48;
            bits |= (uint64_t)(ch & 0x1f) << (5 * k);
            more = ch & 0x20;
            p++;
            k++;
            if (!more && (ch & 0x10)) bits |= ~(uint64_t)0 << (5 * k);  // negative: sign-extend
        }
        long long x = (long long)bits;  // two's complement, |x| < 2^60
        if (m > 2) x += (long long)c[m - 2];
        if (x < 0 || x > 0xffffffffLL) {
            free(c);
            return sam_error(err, "malformed RLE string: count %zu is %lld", m, x);
        }
        c[m++] = (uint32_t)x;
    }
    *counts = c;
    *n = m;
    return 0;
}
