// Zip central-directory reader. Only what torch.save produces is needed, but
// the input is untrusted: every offset and size is checked before use.
#include "zip.h"

#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u

#define EOCD_SIZE 22
#define LOCATOR64_SIZE 20
#define EOCD64_SIZE 56
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

// True when [off, off+size) lies inside a buffer of len bytes, without overflow.
static int in_bounds(uint64_t off, uint64_t size, size_t len) {
    return off <= len && size <= len - off;
}

// The EOCD record sits at the end, followed only by its comment; scanning
// backwards and requiring the comment length to reach exactly the end avoids
// matching the signature inside entry data.
static int find_eocd(const uint8_t *buf, size_t len, size_t *pos) {
    if (len < EOCD_SIZE) return -1;
    size_t lowest = len > EOCD_SIZE + 0xffff ? len - EOCD_SIZE - 0xffff : 0;
    for (size_t p = len - EOCD_SIZE + 1; p-- > lowest;) {
        if (rd32(buf + p) == SIG_EOCD && p + EOCD_SIZE + rd16(buf + p + 20) == len) {
            *pos = p;
            return 0;
        }
    }
    return -1;
}

static int read_zip64_eocd(const uint8_t *buf, size_t len, size_t eocd, uint64_t *count,
                           uint64_t *cd_size, uint64_t *cd_offset, SamError *err) {
    if (eocd < LOCATOR64_SIZE || rd32(buf + eocd - LOCATOR64_SIZE) != SIG_LOCATOR64) {
        return sam_error(err, "zip: end of central directory needs a zip64 record but none is present");
    }
    uint64_t off = rd64(buf + eocd - LOCATOR64_SIZE + 8);
    if (!in_bounds(off, EOCD64_SIZE, len) || rd32(buf + off) != SIG_EOCD64) {
        return sam_error(err, "zip: zip64 end of central directory offset %llu is invalid",
                         (unsigned long long)off);
    }
    const uint8_t *r = buf + off;
    if (rd32(r + 16) != 0 || rd32(r + 20) != 0) return sam_error(err, "zip: multi-disk archives are not supported");
    *count = rd64(r + 32);
    *cd_size = rd64(r + 40);
    *cd_offset = rd64(r + 48);
    return 0;
}

// Replaces 32-bit fields saturated to 0xffffffff with their zip64 values.
// The zip64 extra field lists only the saturated fields, in this fixed order.
static int apply_zip64_extra(const uint8_t *extra, size_t extra_len, uint64_t *usize,
                             uint64_t *csize, uint64_t *local_off, const ZipEntry *e, SamError *err) {
    size_t p = 0;
    while (p + 4 <= extra_len) {
        uint16_t id = rd16(extra + p);
        uint16_t sz = rd16(extra + p + 2);
        if (sz > extra_len - p - 4) break;
        if (id == 0x0001) {
            const uint8_t *f = extra + p + 4;
            size_t left = sz;
            uint64_t *fields[3] = {usize, csize, local_off};
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != 0xffffffffu) continue;
                if (left < 8) {
                    return sam_error(err, "zip: entry '%.*s' has a truncated zip64 extra field",
                                     (int)e->name_len, e->name);
                }
                *fields[i] = rd64(f);
                f += 8;
                left -= 8;
            }
            return 0;
        }
        p += 4 + (size_t)sz;
    }
    if (*usize == 0xffffffffu || *csize == 0xffffffffu || *local_off == 0xffffffffu) {
        return sam_error(err, "zip: entry '%.*s' lacks the zip64 extra field its sizes require",
                         (int)e->name_len, e->name);
    }
    return 0;
}

static int read_entry(const uint8_t *buf, size_t len, size_t *pos, uint64_t cd_end, ZipEntry *e,
                      SamError *err) {
    size_t p = *pos;
    if (p + CENTRAL_SIZE > cd_end || rd32(buf + p) != SIG_CENTRAL) {
        return sam_error(err, "zip: central directory record at offset %zu is invalid", p);
    }
    const uint8_t *c = buf + p;
    size_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
    size_t rec_len = CENTRAL_SIZE + name_len + extra_len + comment_len;
    if (rec_len > cd_end - p) return sam_error(err, "zip: central directory record at offset %zu is truncated", p);
    memset(e, 0, sizeof *e);
    e->name = (const char *)(c + CENTRAL_SIZE);
    e->name_len = name_len;
    e->method = rd16(c + 10);
    e->crc32 = rd32(c + 16);
    uint64_t csize = rd32(c + 20), usize = rd32(c + 24), local_off = rd32(c + 42);
    if (apply_zip64_extra(c + CENTRAL_SIZE + name_len, extra_len, &usize, &csize, &local_off, e, err)) {
        return -1;
    }
    // The local header repeats the name but its sizes may be zero (torch sets
    // the data-descriptor flag), so only its variable lengths are used.
    if (!in_bounds(local_off, LOCAL_SIZE, len) || rd32(buf + local_off) != SIG_LOCAL) {
        return sam_error(err, "zip: entry '%.*s' has an invalid local header offset %llu", (int)name_len,
                         e->name, (unsigned long long)local_off);
    }
    const uint8_t *l = buf + local_off;
    uint64_t lname = rd16(l + 26), lextra = rd16(l + 28);
    uint64_t data_off = local_off + LOCAL_SIZE + lname + lextra;
    if (lname != name_len || !in_bounds(local_off + LOCAL_SIZE, lname, len) ||
        memcmp(l + LOCAL_SIZE, e->name, name_len) != 0) {
        return sam_error(err, "zip: entry '%.*s' local header does not match the central directory",
                         (int)name_len, e->name);
    }
    if (!in_bounds(data_off, csize, len)) {
        return sam_error(err, "zip: entry '%.*s' data (offset %llu, %llu bytes) runs past the end of the file (%zu bytes)",
                         (int)name_len, e->name, (unsigned long long)data_off, (unsigned long long)csize, len);
    }
    e->data_offset = data_off;
    e->size = csize;
    e->uncompressed_size = usize;
    *pos = p + rec_len;
    return 0;
}

int zip_open(ZipArchive *zip, const uint8_t *buf, size_t len, SamError *err) {
    memset(zip, 0, sizeof *zip);
    size_t eocd;
    if (find_eocd(buf, len, &eocd)) {
        return sam_error(err, "zip: no end of central directory record (not a zip file, or truncated)");
    }
    const uint8_t *r = buf + eocd;
    if (rd16(r + 4) != 0 || rd16(r + 6) != 0) return sam_error(err, "zip: multi-disk archives are not supported");
    uint64_t count = rd16(r + 10), cd_size = rd32(r + 12), cd_offset = rd32(r + 16);
    if (count == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu) {
        if (read_zip64_eocd(buf, len, eocd, &count, &cd_size, &cd_offset, err)) return -1;
    }
    if (!in_bounds(cd_offset, cd_size, len) || cd_offset + cd_size > eocd) {
        return sam_error(err, "zip: central directory (offset %llu, %llu bytes) lies outside the file",
                         (unsigned long long)cd_offset, (unsigned long long)cd_size);
    }
    if (count > cd_size / CENTRAL_SIZE) {
        return sam_error(err, "zip: %llu entries cannot fit in a %llu-byte central directory",
                         (unsigned long long)count, (unsigned long long)cd_size);
    }
    zip->buf = buf;
    zip->len = len;
    zip->entries = calloc(count ? (size_t)count : 1, sizeof *zip->entries);
    if (!zip->entries) return sam_error(err, "zip: out of memory for %llu entries", (unsigned long long)count);
    size_t pos = (size_t)cd_offset;
    for (uint64_t i = 0; i < count; i++) {
        if (read_entry(buf, len, &pos, cd_offset + cd_size, &zip->entries[i], err)) {
            zip_close(zip);
            return -1;
        }
        zip->count++;
    }
    return 0;
}

void zip_close(ZipArchive *zip) {
    free(zip->entries);
    memset(zip, 0, sizeof *zip);
}

const ZipEntry *zip_find(const ZipArchive *zip, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < zip->count; i++) {
        const ZipEntry *e = &zip->entries[i];
        if (e->name_len == n && memcmp(e->name, name, n) == 0) return e;
    }
    return NULL;
}

// CRC-32 (IEEE, reflected 0xEDB88320), slicing by 8 bytes: a 2.5 GB ViT-H
// checkpoint is checked in about a second. The table is built per call on
// the stack (8 KB, microseconds) so there is no global state.
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    uint32_t table[8][256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

int zip_entry_data(const ZipArchive *zip, const ZipEntry *entry, const uint8_t **data,
                   size_t *size, SamError *err) {
    if (entry->method != 0) {
        return sam_error(err, "zip entry '%.*s' is compressed (method %u); only stored entries, as torch.save writes, are supported",
                         (int)entry->name_len, entry->name, (unsigned)entry->method);
    }
    if (entry->size != entry->uncompressed_size) {
        return sam_error(err, "zip entry '%.*s' is stored but its sizes disagree (%llu vs %llu)",
                         (int)entry->name_len, entry->name, (unsigned long long)entry->size,
                         (unsigned long long)entry->uncompressed_size);
    }
    // torch.save records a CRC-32 for every entry: checking it turns a
    // corrupted download into an error instead of silently wrong weights.
    const uint8_t *bytes = zip->buf + entry->data_offset;
    uint32_t crc = crc32_update(0, bytes, (size_t)entry->size);
    if (crc != entry->crc32) {
        return sam_error(err, "zip entry '%.*s' is corrupt (CRC-32 %08x, the archive records %08x)",
                         (int)entry->name_len, entry->name, (unsigned)crc, (unsigned)entry->crc32);
    }
    *data = bytes;
    *size = (size_t)entry->size;
    return 0;
}
