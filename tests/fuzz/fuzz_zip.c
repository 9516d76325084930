// The zip reader on its own: central directory (zip64 too), local headers,
// names, and each entry's bytes with its CRC.
#include "fuzz.h"
#include "io/zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ZipArchive zip;
    SamError err = {{0}};
    if (zip_open(&zip, data, size, &err)) {
        FUZZ_ASSERT_MESSAGE(err);
        return 0;
    }
    for (size_t i = 0; i < zip.count; i++) {
        const ZipEntry *e = &zip.entries[i];
        FUZZ_ASSERT(e->name >= (const char *)data && e->name_len <= size);
        const uint8_t *bytes;
        size_t n;
        SamError entry_err = {{0}};
        if (zip_entry_data(&zip, e, &bytes, &n, &entry_err) == 0) {
            FUZZ_ASSERT(bytes >= data && n <= size && (size_t)(bytes - data) <= size - n);
        } else {
            FUZZ_ASSERT_MESSAGE(entry_err);
        }
    }
    zip_close(&zip);
    return 0;
}
