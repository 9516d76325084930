// The rearranged attentions of the mask decoder (src/model/decoder_attention.c)
// against the straightforward form (attention_reference) on random weights
// and inputs, at shapes where the rearrangement is used and where it falls
// back (many tokens), with and without the precomputed image-side
// projections. Prints "N passed, M failed".
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/decoder_attention.h"

// Both forms are float32 with the sums regrouped (sum_n p_n (W v_n) versus
// W sum_n p_n v_n): the outputs agree to a few float32 ulps of their scale,
// ~1e-7 relative; 1e-5 leaves room for long sums. A wrong head slice, a
// missing bias or a transposed weight moves the output by O(1).
#define REL_L2_TOL 1e-5
// Width of the ImageProjection carried through attention_from_image_add.
#define PROJ_E 12

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

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
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
    r->w.q_proj = (LinearWeights){r->buffers[0], r->buffers[1]};
    r->w.k_proj = (LinearWeights){r->buffers[2], r->buffers[3]};
    r->w.v_proj = (LinearWeights){r->buffers[4], r->buffers[5]};
    r->w.out_proj = (LinearWeights){r->buffers[6], r->buffers[7]};
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
    const size_t sizes[4] = {attention_reference_scratch_floats(N, T, d),
                             attention_to_image_scratch_floats(T, N, d),
                             attention_to_projected_image_scratch_floats(T, N, d),
                             attention_from_image_scratch_floats(T, N, d, PROJ_E)};
    for (int i = 0; i < 4; i++) scratch_n = sizes[i] > scratch_n ? sizes[i] : scratch_n;
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
    float *k = malloc(sizeof(float) * (size_t)N * d.internal);
    float *v = malloc(sizeof(float) * (size_t)N * d.internal);
    linear_forward(k, image, r.w.k_proj.weight, r.w.k_proj.bias, N, d.dim, d.internal);
    linear_forward(v, image_v, r.w.v_proj.weight, r.w.v_proj.bias, N, d.dim, d.internal);
    attention_to_projected_image(got, tokens, k, v, NULL, NULL, T, N, d, &r.w, scratch);
    check(rel_l2(got, want, (size_t)T * d.dim), "attention_to_projected_image", T, N);
    // with each head's k and v slices packed ahead
    const int hd = d.internal / d.heads;
    GemmPackedB k_heads[16], v_heads[16];
    float *head_bufs[32];
    for (int h = 0; h < d.heads; h++) {
        head_bufs[2 * h] = malloc(sizeof(float) * (gemm_pack_b_floats(N, hd) + 1));
        head_bufs[2 * h + 1] = malloc(sizeof(float) * (gemm_pack_b_floats(hd, N) + 1));
        gemm_pack_b(&k_heads[h], head_bufs[2 * h], k + h * hd, d.internal, N, hd, 1);
        gemm_pack_b(&v_heads[h], head_bufs[2 * h + 1], v + h * hd, d.internal, hd, N, 0);
    }
    attention_to_projected_image(got, tokens, k, v, k_heads, v_heads, T, N, d, &r.w, scratch);
    check(rel_l2(got, want, (size_t)T * d.dim), "attention_to_projected_image (packed heads)", T, N);
    for (int h = 0; h < 2 * d.heads; h++) free(head_bufs[h]);

    // image -> tokens, residual included; the projection of the rows
    // (rows = image @ proj_w) must follow the update.
    float *base = random_floats((size_t)N * d.dim, 1.0f);
    float *proj_w = random_floats((size_t)d.dim * PROJ_E, 0.1f);
    float *proj_want = malloc(sizeof(float) * (size_t)N * PROJ_E);
    float *proj_rows = malloc(sizeof(float) * (size_t)N * PROJ_E);
    attention_reference(want, image, tokens, tokens_v, N, T, d, &r.w, scratch);
    add_inplace(want, base, (size_t)N * d.dim);
    gemm_nn(N, PROJ_E, d.dim, 1.0f, want, d.dim, proj_w, PROJ_E, 0.0f, proj_want, PROJ_E);
    for (int variant = 0; variant < 5; variant++) {
        memcpy(got, base, sizeof(float) * (size_t)N * d.dim);
        gemm_nn(N, PROJ_E, d.dim, 1.0f, base, d.dim, proj_w, PROJ_E, 0.0f, proj_rows, PROJ_E);
        const ImageProjection proj = {proj_rows, proj_w, PROJ_E};
        float *q = NULL;
        GemmPackedB q_heads[16];
        float *q_bufs[16] = {0};
        if (variant >= 2) {
            q = k;  // reused as the projected queries
            linear_forward(q, image, r.w.q_proj.weight, r.w.q_proj.bias, N, d.dim, d.internal);
        }
        if (variant == 4) {
            for (int h = 0; h < d.heads; h++) {
                q_bufs[h] = malloc(sizeof(float) * (gemm_pack_b_floats(N, hd) + 1));
                gemm_pack_b(&q_heads[h], q_bufs[h], q + h * hd, d.internal, N, hd, 1);
            }
        }
        attention_from_image_add(got, image, variant == 3 ? NULL : &image_packed, q,
                                 variant == 4 ? q_heads : NULL, tokens, tokens_v, T, N, d, &r.w,
                                 variant != 0, &proj, scratch);
        for (int h = 0; h < 16; h++) free(q_bufs[h]);
        static const char *names[5] = {"attention_from_image_add (unfolded)",
                                       "attention_from_image_add (packed image)",
                                       "attention_from_image_add (q given)",
                                       "attention_from_image_add (q given, image not packed)",
                                       "attention_from_image_add (q given, packed heads)"};
        check(rel_l2(got, want, (size_t)N * d.dim), names[variant], T, N);
        char what[96];
        snprintf(what, sizeof what, "%s, projected rows", names[variant]);
        check(rel_l2(proj_rows, proj_want, (size_t)N * PROJ_E), what, T, N);
    }
    free(base);
    free(packed_buf);
    free(proj_w);
    free(proj_want);
    free(proj_rows);
    free(k);
    free(v);
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
