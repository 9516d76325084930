// Image decoding through the CLI's wrapper of stb_image: the size limits read
// from PNG/BMP headers before decoding, then PNG, JPEG, BMP, TGA, GIF, PSD...
#include "cli/image_io.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    SamError err = {{0}};
    if (image_decode_rgb(data, size, "fuzz", &rgb, &w, &h, &err) == 0) {
        FUZZ_ASSERT(w > 0 && h > 0 && w <= SAM_MAX_IMAGE_SIDE && h <= SAM_MAX_IMAGE_SIDE);
        FUZZ_ASSERT((int64_t)w * h <= SAM_MAX_IMAGE_PIXELS);  // lower in the fuzz build
        volatile uint8_t sink = rgb[(size_t)w * h * 3 - 1];  // the whole buffer is there
        (void)sink;
        free(rgb);
    } else {
        FUZZ_ASSERT(rgb == NULL);
        FUZZ_ASSERT_MESSAGE(err);
    }
    return 0;
}
