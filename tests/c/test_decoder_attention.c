// The rearranged attentions of the mask decoder (src/model/decoder_attention.c)
// against the straightforward form (attention_reference) on random weights
// and inputs, at shapes where the rearrangement is used and where it falls
// back (many tokens). Prints "N passed, M failed".
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "rel_l2.h"
#include "model/decoder_attention.h"

// Both forms are float32 with the sums regrouped (sum_n p_n (W v_n) versus
// W sum_n p_n v_n): the outputs agree to a few float32 ulps of their scale,
// ~1e-7 relative; 1e-5 leaves room for long sums. A wrong head slice, a
// missing bias or a transposed weight moves the output by O(1).
#define REL_L2_TOL 1e-5

static int passed, failed;
static unsigned long long rng_state = 0x9e3779b97f4a7c15ull;

static float uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float *random_floats(size_t n, float scale) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = scale * uniform();
    return x;
}

static void check(double err, const char *what, int T, int N) {
    if (err <= REL_L2_TOL) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s T=%d N=%d: rel L2 %.3g\n", what, T, N, err);
    }
}

typedef struct Weights {
    AttentionWeights w;
    float *buffers[8];
} Weights;

static void random_weights(Weights *r, AttentionDims d) {
    const float ws = 1.0f / sqrtf((float)d.dim);
    r->buffers[0] = random_floats((size_t)d.internal * d.dim, ws);
    r->buffers[1] = random_floats((size_t)d.internal, 0.5f);
    r->buffers[2] = random_floats((size_t)d.internal * d.dim, ws);
    r->buffers[3] = random_floats((size_t)d.internal, 0.5f);
    r->buffers[4] = random_floats((size_t)d.internal * d.dim, ws);
    r->buffers[5] = random_floats((size_t)d.internal, 0.5f);
    r->buffers[6] = random_floats((size_t)d.dim * d.internal, 1.0f / sqrtf((float)d.internal));
    r->buffers[7] = random_floats((size_t)d.dim, 0.5f);
    r->w.q_proj = (LinearWeights){r->buffers[0], r->buffers[1], NULL};
    r->w.k_proj = (LinearWeights){r->buffers[2], r->buffers[3], NULL};
    r->w.v_proj = (LinearWeights){r->buffers[4], r->buffers[5], NULL};
    r->w.out_proj = (LinearWeights){r->buffers[6], r->buffers[7], NULL};
}

static void free_weights(Weights *r) {
    for (int i = 0; i < 8; i++) free(r->buffers[i]);
}

static void run_case(AttentionDims d, int T, int N) {
    Weights r;
    random_weights(&r, d);
    // Scores of a few units, like the trained decoder's: softmax neither
    // uniform nor one-hot.
    float *tokens = random_floats((size_t)T * d.dim, 2.0f);
    float *tokens_v = random_floats((size_t)T * d.dim, 1.0f);
    float *image = random_floats((size_t)N * d.dim, 2.0f);
    float *image_v = random_floats((size_t)N * d.dim, 1.0f);
    size_t scratch_n = attention_reference_scratch_floats(T, N, d);
    const size_t sizes[3] = {attention_reference_scratch_floats(N, T, d),
                             attention_to_image_scratch_floats(T, N, d),
                             attention_from_image_scratch_floats(T, N, d)};
    for (int i = 0; i < 3; i++) scratch_n = sizes[i] > scratch_n ? sizes[i] : scratch_n;
    float *scratch = malloc(sizeof(float) * scratch_n);
    const size_t rows = (size_t)(T > N ? T : N);
    float *want = malloc(sizeof(float) * rows * d.dim);
    float *got = malloc(sizeof(float) * rows * d.dim);

    // tokens -> image
    attention_reference(want, tokens, image, image_v, T, N, d, &r.w, scratch);
    attention_to_image(got, tokens, image, NULL, image_v, T, N, d, &r.w, 1, scratch);
    check(rel_l2(got, want, (size_t)T * d.dim), "attention_to_image", T, N);
    // with the keys packed ahead
    float *packed_buf = malloc(sizeof(float) * (gemm_pack_b_floats(N, d.dim) + 1));
    GemmPackedB image_packed;
    gemm_pack_b(&image_packed, packed_buf, image, d.dim, N, d.dim, 1);
    attention_to_image(got, tokens, image, &image_packed, image_v, T, N, d, &r.w, 1, scratch);
    check(rel_l2(got, want, (size_t)T * d.dim), "attention_to_image (packed keys)", T, N);
    // image -> tokens, residual included.
    float *base = random_floats((size_t)N * d.dim, 1.0f);
    attention_reference(want, image, tokens, tokens_v, N, T, d, &r.w, scratch);
    add_inplace(want, base, (size_t)N * d.dim);
    for (int variant = 0; variant < 3; variant++) {
        memcpy(got, base, sizeof(float) * (size_t)N * d.dim);
        attention_from_image_add(got, image, variant == 1 ? &image_packed : NULL, tokens, tokens_v,
                                 T, N, d, &r.w, variant != 0, scratch);
        static const char *names[3] = {"attention_from_image_add (unfolded)",
                                       "attention_from_image_add (packed image)",
                                       "attention_from_image_add (image not packed)"};
        check(rel_l2(got, want, (size_t)N * d.dim), names[variant], T, N);
    }
    free(base);
    free(packed_buf);
    free(tokens);
    free(tokens_v);
    free(image);
    free(image_v);
    free(scratch);
    free(want);
    free(got);
    free_weights(&r);
}

int main(void) {
    // SAM's decoder shape scaled down (D 64, I 32, 4 heads) and the
    // official one (D 256, I 128, 8 heads); T from 1 to past the point where
    // folding stops paying (H T D >= I (D + T)).
    const AttentionDims dims[2] = {{64, 32, 4}, {256, 128, 8}};
    const int tokens[5] = {1, 5, 7, 9, 40};
    const int images[3] = {1, 37, 256};
    for (int di = 0; di < 2; di++)
        for (int ti = 0; ti < 5; ti++)
            for (int ni = 0; ni < 3; ni++) run_case(dims[di], tokens[ti], images[ni]);
    run_case(dims[1], 7, 4096);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
