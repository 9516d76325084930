// The factored two-way transformer (src/model/decoder_lowrank.c) against
// the straightforward one (two_way_transformer_forward, reference path,
// then the first upscaling convolution on the formed keys), on random
// weights with random LayerNorm gains and biases, for decoder depths 1 to 3
// (depth 3 exercises the pull-back of the norm statistics through two
// earlier blocks, which the official depth 2 does not), several head
// counts and 1 to 12 prompt tokens, all rows read or only some. Also block 0
// from the per-image products followed by the formed-token transformer
// (lowrank_first_block, for prompts with many tokens) against the same
// reference.
// Prints "N passed, M failed".
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "kernels/kernels.h"
#include "rel_l2.h"
#include "model/decoder_lowrank.h"
#include "model/two_way_transformer.h"

// Both are float32 computations of the same function in different orders
// (the factored form sums over the correction's rows instead of the
// channels, and gets the norm statistics from a quadratic form): outputs
// agree to 4e-7 relative at worst here (measured); 1e-5 leaves 25x, while
// dropping the variance's cross term errs by 0.1 and skipping a norm gain
// in the pull-back fails every depth-2 and depth-3 case (both tried).
#define REL_L2_TOL 1e-5

static int passed, failed;
static unsigned long long rng_state = 0x2545F4914F6CDD1Dull;

static float uniform(void) {  // [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

// Every buffer of one random model, freed together.
typedef struct Pool {
    float *bufs[1024];
    int count;
} Pool;

static float *random_floats(Pool *p, size_t n, float offset, float scale) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = offset + scale * uniform();
    p->bufs[p->count++] = x;
    return x;
}

static LinearWeights linear(Pool *p, int out, int in) {
    const float s = 1.0f / sqrtf((float)in);
    return (LinearWeights){random_floats(p, (size_t)out * in, 0.0f, s),
                           random_floats(p, (size_t)out, 0.0f, 0.3f), NULL};
}

static AttentionWeights attention(Pool *p, int dim, int internal) {
    // Larger query weights than 1/sqrt(in) so that the softmaxes are
    // neither uniform nor one-hot.
    AttentionWeights a = {linear(p, internal, dim), linear(p, internal, dim),
                          linear(p, internal, dim), linear(p, dim, internal)};
    for (size_t i = 0; i < (size_t)internal * dim; i++) ((float *)a.q_proj.weight)[i] *= 3.0f;
    return a;
}

static NormWeights norm(Pool *p, int c) {
    return (NormWeights){random_floats(p, (size_t)c, 1.0f, 0.3f), random_floats(p, (size_t)c, 0.0f, 0.3f)};
}

static void check(double err, const char *what, int depth, int heads, int T) {
    if (err <= REL_L2_TOL) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s depth=%d heads=%d tokens=%d: rel L2 %.3g\n", what, depth, heads, T, err);
    }
}

static void run_case(int depth, int heads, int T, int n_out) {
    SamConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.prompt_dim = 64;
    cfg.attn_internal_dim = 32;
    cfg.decoder_heads = heads;
    cfg.decoder_depth = depth;
    cfg.decoder_mlp_dim = 96;
    cfg.grid = 9;  // N = 81: not a multiple of any vector width
    cfg.upscale_dim1 = 8;
    const int D = cfg.prompt_dim, I = cfg.attn_internal_dim, N = cfg.grid * cfg.grid;
    const int E = 4 * cfg.upscale_dim1;
    Pool pool = {.count = 0};
    MaskDecoderWeights w;
    memset(&w, 0, sizeof w);
    for (int l = 0; l < depth; l++) {
        TwoWayBlockWeights *b = &w.layers[l];
        b->self_attn = attention(&pool, D, D);
        b->norm1 = norm(&pool, D);
        b->cross_attn_token_to_image = attention(&pool, D, I);
        b->norm2 = norm(&pool, D);
        b->mlp_lin1 = linear(&pool, cfg.decoder_mlp_dim, D);
        b->mlp_lin2 = linear(&pool, D, cfg.decoder_mlp_dim);
        b->norm3 = norm(&pool, D);
        b->norm4 = norm(&pool, D);
        b->cross_attn_image_to_token = attention(&pool, D, I);
    }
    w.final_attn_token_to_image = attention(&pool, D, I);
    w.norm_final_attn = norm(&pool, D);
    // Image tokens with an offset per channel (as an image embedding has)
    // and a positional encoding of the same scale.
    float *keys = random_floats(&pool, (size_t)N * D, 0.0f, 1.0f);
    const float *channel_offset = random_floats(&pool, (size_t)D, 0.0f, 1.0f);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < D; c++) keys[(size_t)n * D + c] += channel_offset[c];
    const float *key_pe = random_floats(&pool, (size_t)N * D, 0.0f, 1.0f);
    const float *tokens = random_floats(&pool, (size_t)T * D, 0.0f, 1.0f);
    const float *upscale_w = random_floats(&pool, (size_t)E * D, 0.0f, 0.2f);  // (E, D)
    const float *upscale_b = random_floats(&pool, (size_t)E, 0.0f, 0.2f);
    int out_rows[16];
    for (int j = 0; j < n_out; j++) out_rows[j] = j * 2 < T ? j * 2 : T - 1;

    // Reference: form the keys, then the convolution on them.
    Arena arena;
    const size_t arena_floats_needed =
        two_way_transformer_scratch_floats(&cfg, T, N) + lowrank_forward_scratch_floats(&cfg, T) +
        lowrank_first_block_scratch_floats(&cfg, T) + (size_t)N * E + 4096;
    arena_init(&arena, arena_floats_needed * sizeof(float) * 2);
    float *ref_queries = malloc(sizeof(float) * (size_t)T * D);
    float *ref_keys = malloc(sizeof(float) * (size_t)N * D);
    float *ref_u1 = malloc(sizeof(float) * (size_t)E * N);
    memcpy(ref_queries, tokens, sizeof(float) * (size_t)T * D);
    memcpy(ref_keys, keys, sizeof(float) * (size_t)N * D);
    SamError err;
    if (two_way_transformer_forward(ref_queries, ref_keys, tokens, key_pe, T, N, NULL, 0, 0,
                                    DECODER_PATH_REFERENCE, &w, &cfg, &arena, &err)) {
        printf("FAIL reference: %s\n", err.message);
        failed++;
        return;
    }
    for (int j = 0; j < E; j++)
        for (int n = 0; n < N; n++) ref_u1[(size_t)j * N + n] = upscale_b[j];
    gemm_nt_scalar(E, N, D, 1.0f, upscale_w, D, ref_keys, D, 1.0f, ref_u1, N);

    // Factored.
    float *model_buf = malloc(sizeof(float) * (lowrank_model_floats(&cfg) + 1));
    float *model_scratch = malloc(sizeof(float) * lowrank_model_scratch_floats(&cfg));
    float *image_buf = malloc(sizeof(float) * lowrank_image_floats(&cfg));
    float *image_scratch = malloc(sizeof(float) * lowrank_image_scratch_floats(&cfg));
    LowRankModel model;
    LowRankImage image;
    lowrank_model_init(&model, model_buf, key_pe, &w, &cfg, model_scratch);
    lowrank_image_compute(&image, image_buf, keys, key_pe, upscale_w, &w, &cfg, image_scratch);
    float *queries = malloc(sizeof(float) * (size_t)T * D);
    float *u1 = malloc(sizeof(float) * (size_t)E * N);
    memcpy(queries, tokens, sizeof(float) * (size_t)T * D);
    if (lowrank_forward(queries, u1, tokens, T, n_out ? out_rows : NULL, n_out, &image, &model,
                        upscale_w, upscale_b, &w, &cfg, &arena, &err)) {
        printf("FAIL factored: %s\n", err.message);
        failed++;
        return;
    }
    // The rows read (all, or out_rows), and the convolution.
    float got[16 * 64], want[16 * 64];
    const int rows = n_out ? n_out : T;
    for (int j = 0; j < rows; j++) {
        const int row = n_out ? out_rows[j] : j;
        memcpy(got + (size_t)j * D, queries + (size_t)row * D, sizeof(float) * D);
        memcpy(want + (size_t)j * D, ref_queries + (size_t)row * D, sizeof(float) * D);
    }
    check(rel_l2(got, want, (size_t)rows * D), "queries", depth, heads, T);
    check(rel_l2(u1, ref_u1, (size_t)E * N), "first upscaling convolution", depth, heads, T);

    // Block 0 from the per-image products, the rest on formed tokens.
    float *keys_out = malloc(sizeof(float) * (size_t)N * D);
    memcpy(queries, tokens, sizeof(float) * (size_t)T * D);
    memcpy(keys_out, keys, sizeof(float) * (size_t)N * D);
    if (lowrank_first_block(queries, keys_out, tokens, T, &image, &w, &cfg, &arena, &err) ||
        two_way_transformer_forward(queries, keys_out, tokens, key_pe, T, N, NULL, 0, 1,
                                    DECODER_PATH_FAST, &w, &cfg, &arena, &err)) {
        printf("FAIL first block: %s\n", err.message);
        failed++;
    } else {
        check(rel_l2(queries, ref_queries, (size_t)T * D), "queries (block 0 from the image)",
              depth, heads, T);
        check(rel_l2(keys_out, ref_keys, (size_t)N * D), "keys (block 0 from the image)", depth,
              heads, T);
    }
    free(keys_out);

    free(ref_queries), free(ref_keys), free(ref_u1), free(queries), free(u1);
    free(model_buf), free(model_scratch), free(image_buf), free(image_scratch);
    arena_free(&arena);
    for (int i = 0; i < pool.count; i++) free(pool.bufs[i]);
}

int main(void) {
    const int depths[3] = {1, 2, 3}, head_counts[2] = {4, 8}, token_counts[5] = {1, 2, 5, 7, 12};
    for (int d = 0; d < 3; d++)
        for (int h = 0; h < 2; h++)
            for (int t = 0; t < 5; t++) {
                run_case(depths[d], head_counts[h], token_counts[t], 0);
                if (token_counts[t] > 2) run_case(depths[d], head_counts[h], token_counts[t], 2);
            }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
