// Test tool: Sam.postprocess_masks on raw float32 logits with
// postprocess_logits_torch, for tests/transforms.test.mjs.
//   postprocess_dump IN.f32 LR INPUT_SIZE RESIZED_H RESIZED_W H W CHANNELS OUT.f32
// IN holds one (LR, LR) mask; OUT receives (H, W) logits.
#include <stdio.h>
#include <stdlib.h>

#include "image/transforms.h"

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr,
                "usage: %s IN.f32 LR INPUT_SIZE RESIZED_H RESIZED_W H W CHANNELS OUT.f32\n",
                argv[0]);
        return 2;
    }
    const int lr = atoi(argv[2]), size = atoi(argv[3]), rh = atoi(argv[4]), rw = atoi(argv[5]);
    const int h = atoi(argv[6]), w = atoi(argv[7]), channels = atoi(argv[8]);
    if (lr < 1 || size < 1 || rh < 1 || rw < 1 || rh > size || rw > size || h < 1 || w < 1) {
        fprintf(stderr, "bad sizes\n");
        return 2;
    }
    float *in = malloc(sizeof(float) * (size_t)lr * lr);
    float *out = malloc(sizeof(float) * (size_t)h * w);
    float *scratch = malloc(sizeof(float) * postprocess_scratch_floats(lr, size, h, w));
    if (!in || !out || !scratch) return 1;
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(in, sizeof(float), (size_t)lr * lr, f) != (size_t)lr * lr) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    postprocess_logits_torch(out, in, lr, size, rh, rw, h, w, channels, scratch);
    f = fopen(argv[9], "wb");
    if (!f || fwrite(out, sizeof(float), (size_t)h * w, f) != (size_t)h * w) {
        fprintf(stderr, "cannot write %s\n", argv[9]);
        return 1;
    }
    fclose(f);
    free(in);
    free(out);
    free(scratch);
    return 0;
}
