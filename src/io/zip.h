// Minimal reader for the zip archives torch.save writes: entries are stored
// (not compressed), so an entry's bytes are a slice of the input buffer.
// Zip64 records are understood, since multi-GB checkpoints need them.
#ifndef SAM_IO_ZIP_H
#define SAM_IO_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

typedef struct ZipEntry {
    const char *name;  // points into the buffer; not NUL-terminated
    size_t name_len;
    uint16_t method;   // 0 = stored; anything else is refused by zip_entry_data
    uint64_t data_offset;  // start of the entry's bytes (after its local header)
    uint64_t size;         // compressed size (= size for stored entries)
    uint64_t uncompressed_size;
    uint32_t crc32;        // as recorded in the central directory
} ZipEntry;

typedef struct ZipArchive {
    const uint8_t *buf;
    size_t len;
    ZipEntry *entries;
    size_t count;
} ZipArchive;

// Parses the central directory; every entry's range is checked against len.
int zip_open(ZipArchive *zip, const uint8_t *buf, size_t len, SamError *err);
void zip_close(ZipArchive *zip);
// Exact name match; NULL when absent.
const ZipEntry *zip_find(const ZipArchive *zip, const char *name);
// The entry's bytes (a slice of the buffer) after checking their CRC-32;
// fails for compressed or corrupt entries.
int zip_entry_data(const ZipArchive *zip, const ZipEntry *entry, const uint8_t **data,
                   size_t *size, SamError *err);

#endif
