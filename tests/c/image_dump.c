// image_dump IMG OUT.rgb: decodes IMG with the CLI's decoder (image_load_rgb)
// and writes the raw RGB8 pixels; prints "W H". For tests/image_io.test.mjs,
// which compares them with Pillow's Image.open(IMG).convert("RGB").
#include <stdio.h>
#include <stdlib.h>

#include "cli/image_io.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: image_dump IMG OUT.rgb\n");
        return 2;
    }
    uint8_t *rgb;
    int w, h;
    SamError err;
    if (image_load_rgb(argv[1], &rgb, &w, &h, &err) ||
        file_write_all(argv[2], rgb, (size_t)w * h * 3, &err)) {
        fprintf(stderr, "image_dump: %s\n", err.message);
        return 1;
    }
    printf("%d %d\n", w, h);
    free(rgb);
    return 0;
}
