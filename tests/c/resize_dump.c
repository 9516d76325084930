// Test tool: resizes a raw RGB8 image with resize_pil_bilinear_rgb (the
// Pillow-exact BILINEAR resize), for tests/transforms.test.mjs.
//   resize_dump IN.rgb W H OUT_W OUT_H OUT.rgb [X0 Y0 X1 Y1]
// The optional box is Pillow's box argument (float source region).
#include <stdio.h>
#include <stdlib.h>

#include "image/transforms.h"

static unsigned char *read_file(const char *path, size_t expected) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = malloc(expected ? expected : 1);
    size_t got = buf ? fread(buf, 1, expected, f) : 0;
    fclose(f);
    if (got != expected) {
        free(buf);
        return NULL;
    }
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 7 && argc != 11) {
        fprintf(stderr, "usage: %s IN.rgb W H OUT_W OUT_H OUT.rgb [X0 Y0 X1 Y1]\n", argv[0]);
        return 2;
    }
    const int w = atoi(argv[2]), h = atoi(argv[3]), ow = atoi(argv[4]), oh = atoi(argv[5]);
    if (w < 1 || h < 1 || ow < 1 || oh < 1) {
        fprintf(stderr, "sizes must be positive\n");
        return 2;
    }
    unsigned char *src = read_file(argv[1], (size_t)w * h * 3);
    if (!src) {
        fprintf(stderr, "cannot read %zu bytes from %s\n", (size_t)w * h * 3, argv[1]);
        return 1;
    }
    unsigned char *dst = malloc((size_t)ow * oh * 3);
    unsigned char *tmp = malloc((size_t)ow * h * 3);
    if (!dst || !tmp) return 1;
    if (argc == 11) {
        const float box[4] = {strtof(argv[7], NULL), strtof(argv[8], NULL), strtof(argv[9], NULL),
                              strtof(argv[10], NULL)};
        SamError err = {{0}};
        if (resize_pil_bilinear_rgb_box(dst, ow, oh, src, w, h, box, tmp, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    } else {
        resize_pil_bilinear_rgb(dst, ow, oh, src, w, h, tmp);
    }
    FILE *f = fopen(argv[6], "wb");
    if (!f || fwrite(dst, 1, (size_t)ow * oh * 3, f) != (size_t)ow * oh * 3) {
        fprintf(stderr, "cannot write %s\n", argv[6]);
        return 1;
    }
    fclose(f);
    free(src);
    free(dst);
    free(tmp);
    return 0;
}
