// COCO RLE: the compressed counts string (rleFrString) and decoding runs into
// a mask. Properties: what decodes re-encodes to the same runs and string.
// Input: 2 bytes of mask height and width (1..64 each), then the string.
#include <string.h>

#include "amg/amg.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const int h = data[0] % 64 + 1, w = data[1] % 64 + 1;
    char *s = malloc(size - 1);
    if (!s) return 0;
    memcpy(s, data + 2, size - 2);
    s[size - 2] = '\0';
    uint32_t *counts = NULL;
    size_t n = 0;
    SamError err = {{0}};
    if (amg_rle_from_string(&counts, &n, s, &err)) {
        FUZZ_ASSERT_MESSAGE(err);
        free(s);
        return 0;
    }
    // The string form of the parsed runs parses back to the same runs.
    char *again = malloc(7 * n + 1);
    uint32_t *reparsed = NULL;
    size_t m = 0;
    if (again) {
        amg_rle_to_string(again, counts, n);
        FUZZ_ASSERT(amg_rle_from_string(&reparsed, &m, again, &err) == 0);
        FUZZ_ASSERT(m == n && memcmp(reparsed, counts, n * sizeof *counts) == 0);
    }
    uint8_t *mask = malloc((size_t)h * w);
    if (mask && amg_rle_decode(mask, counts, n, h, w) == 0) {
        int64_t area = 0;
        for (int i = 0; i < h * w; i++) area += mask[i];
        FUZZ_ASSERT(area == amg_rle_area(counts, n));
        // Decoded masks re-encode to the canonical runs: the same ones once
        // empty runs (other than the first) are merged away.
        uint32_t *canonical = malloc(sizeof(uint32_t) * ((size_t)h * w + 1));
        if (canonical) {
            const size_t k = amg_rle_encode(canonical, mask, h, w);
            uint8_t *again_mask = malloc((size_t)h * w);
            if (again_mask) {
                FUZZ_ASSERT(amg_rle_decode(again_mask, canonical, k, h, w) == 0);
                FUZZ_ASSERT(memcmp(again_mask, mask, (size_t)h * w) == 0);
                free(again_mask);
            }
            free(canonical);
        }
    }
    free(mask);
    free(reparsed);
    free(again);
    free(counts);
    free(s);
    return 0;
}
