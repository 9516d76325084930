// SAM mask decoder: segment_anything/modeling/mask_decoder.py
// (MaskDecoder.predict_masks, MLP) at commit dca509f. The transformer body
// is in two_way_transformer.c.
#include "mask_decoder.h"

#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/multiversion.h"
#include "../kernels/kernels.h"
#include "decoder_attention.h"
#include "two_way_transformer.h"

// Arena allocations are 64-byte aligned: count each as a multiple of 16 floats.
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }

// ---------------------------------------------------------------------------
// Output upscaling
//
// output_upscaling is ConvTranspose2d(D, C1, 2, stride 2), LayerNorm2d, GELU,
// ConvTranspose2d(C1, C2, 2, stride 2), GELU. With kernel 2 and stride 2
// every output pixel (2y + kh, 2x + kw) receives exactly one input pixel
// (y, x), through the tap weight[ci][co][kh][kw], so each convolution is one
// GEMM whose columns are (tap, channel) pairs. Ordering those columns
// tap-major keeps each pixel's channels contiguous, so nothing is scattered
// between the stages:
//  1. u1 (N, 4 C1) = keys (N, D) @ W1 + b1: row n = grid pixel n, columns
//     (tap1, c1); read as (4N, C1), row r = 4 n + tap1 is one pixel of the
//     2G x 2G map with its C1 channels, so LayerNorm2d is a LayerNorm over
//     rows, then GELU.
//  2. u2 (4 C2, 4N) = W2 (4 C2, C1) @ u1^T: rows (tap2, c2), one column per
//     2G x 2G pixel r.
//  3. masks: for each tap2 and channel c2, GELU(u2 row + b2[c2]) is added,
//     weighted by each hypernetwork output, into a (tap2, r) plane per mask;
//     only those few planes are scattered to the 4G x 4G image.

int mask_decoder_plan_init(MaskDecoderPlan *plan, const float *dense_pe,
                           const MaskDecoderWeights *w, const SamConfig *cfg) {
    const int D = cfg->prompt_dim, N = cfg->grid * cfg->grid;
    const int C1 = cfg->upscale_dim1, C2 = cfg->upscale_dim2;
    const size_t n_key_pe = (size_t)N * D, n_w1 = (size_t)D * 4 * C1, n_b1 = (size_t)4 * C1;
    const size_t n_w2 = (size_t)4 * C2 * C1, n_proj = keys_projection_model_floats(cfg);
    float *buf = malloc(sizeof(float) * (n_key_pe + n_w1 + n_b1 + n_w2 + n_proj));
    if (!buf) return -1;
    float *key_pe = buf, *w1 = key_pe + n_key_pe, *b1 = w1 + n_w1, *w2 = b1 + n_b1;
    float *proj = w2 + n_w2;
    transpose(key_pe, dense_pe, D, N);
    // ConvTranspose2d weights are (in, out, kh, kw): tap = kh * 2 + kw.
    for (int ci = 0; ci < D; ci++)
        for (int co = 0; co < C1; co++)
            for (int tap = 0; tap < 4; tap++)
                w1[(size_t)ci * 4 * C1 + tap * C1 + co] = w->upscale1_w[((size_t)ci * C1 + co) * 4 + tap];
    for (int tap = 0; tap < 4; tap++) memcpy(b1 + tap * C1, w->upscale1_b, sizeof(float) * C1);
    for (int ci = 0; ci < C1; ci++)
        for (int co = 0; co < C2; co++)
            for (int tap = 0; tap < 4; tap++)
                w2[((size_t)tap * C2 + co) * C1 + ci] = w->upscale2_w[((size_t)ci * C2 + co) * 4 + tap];
    plan->buffer = buf;
    plan->key_pe = key_pe;
    plan->upscale1_w = w1;
    plan->upscale1_b = b1;
    plan->upscale2_w = w2;
    keys_projection_init(&plan->keys_projection, proj, w1, 4 * C1, w, cfg);
    return 0;
}

void mask_decoder_plan_free(MaskDecoderPlan *plan) {
    free(plan->buffer);
    memset(plan, 0, sizeof *plan);
}

// Every buffer of one decoder call, in allocation order; both
// mask_decoder_scratch_floats and mask_decoder_forward read these sizes so
// that the bound cannot drift from the allocations.
typedef struct DecoderSizes {
    // Live for the whole call.
    size_t tokens;   // (T, D) [iou_token, mask_tokens, sparse]: the query PE
    size_t queries;  // (T, D)
    size_t keys;     // (N, D) image tokens
    size_t hyper;    // (Tm, C2) hypernetwork outputs
    size_t mlp;      // 2 * max(D, H) hidden rows of the small MLPs
    size_t u1;       // (N, 4 C1) first upscaling (or the keys projection that becomes it)
    // Phase 1: the transformer.
    size_t transformer;
    // Phase 2: output upscaling.
    size_t u2;       // (4 C2, 4N)
    size_t planes;   // (Tm, 4, 4N) mask logits before the scatter
} DecoderSizes;

static void decoder_sizes(DecoderSizes *s, const SamConfig *cfg, int n_sparse) {
    const size_t D = (size_t)cfg->prompt_dim, N = (size_t)cfg->grid * cfg->grid;
    const size_t Tm = (size_t)cfg->num_mask_tokens, T = 1 + Tm + (size_t)n_sparse;
    const size_t C1 = (size_t)cfg->upscale_dim1, C2 = (size_t)cfg->upscale_dim2;
    const size_t H = (size_t)cfg->iou_hidden_dim;
    s->tokens = T * D;
    s->queries = T * D;
    s->keys = N * D;
    s->hyper = Tm * C2;
    s->mlp = 2 * (D > H ? D : H);
    s->transformer = two_way_transformer_scratch_floats(cfg, (int)T, (int)N);
    s->u1 = N * 4 * C1;
    s->u2 = 4 * C2 * 4 * N;
    s->planes = Tm * 16 * N;
}

size_t mask_decoder_scratch_floats(const SamConfig *cfg, int n_sparse) {
    DecoderSizes s;
    decoder_sizes(&s, cfg, n_sparse);
    const size_t live = arena_rounded(s.tokens) + arena_rounded(s.queries) +
                        arena_rounded(s.keys) + arena_rounded(s.hyper) + arena_rounded(s.mlp) +
                        arena_rounded(s.u1);
    const size_t phase1 = s.transformer;
    const size_t phase2 = arena_rounded(s.u2) + arena_rounded(s.planes);
    return live + (phase1 > phase2 ? phase1 : phase2);
}

// MLP (mask_decoder.py): n_layers linears, ReLU after all but the last.
// x: (in_dim), out: (out_dim); hidden layers hidden_dim wide. tmp holds
// 2 * hidden_dim floats.
static void mlp_forward(float *out, const float *x, const LinearWeights *layers, int n_layers,
                        int in_dim, int hidden_dim, int out_dim, float *tmp) {
    float *a = tmp, *b = tmp + hidden_dim;
    const float *cur = x;
    int cur_dim = in_dim;
    for (int l = 0; l < n_layers; l++) {
        const int last = l == n_layers - 1;
        const int n = last ? out_dim : hidden_dim;
        float *dst = last ? out : (cur == a ? b : a);
        linear_forward(dst, cur, layers[l].weight, layers[l].bias, 1, cur_dim, n);
        if (!last) relu_inplace(dst, (size_t)n);
        cur = dst;
        cur_dim = n;
    }
}

size_t mask_decoder_image_state_floats(const SamConfig *cfg) {
    const size_t N = (size_t)cfg->grid * cfg->grid;
    return N * cfg->prompt_dim + first_block_projections_floats(cfg) + N * 4 * cfg->upscale_dim1;
}

size_t mask_decoder_prepare_scratch_floats(const SamConfig *cfg) {
    return (size_t)cfg->grid * cfg->grid * cfg->prompt_dim;
}

void mask_decoder_prepare_image(DecoderImageState *st, float *buffer, const float *image_embedding,
                                const float *no_mask_embed, const MaskDecoderPlan *plan,
                                const MaskDecoderWeights *w, const SamConfig *cfg, float *scratch) {
    const int D = cfg->prompt_dim, N = cfg->grid * cfg->grid;
    // src = image_embedding + dense with dense = no_mask_embed broadcast
    // (PromptEncoder without a mask), flattened to (N, D) tokens.
    float *keys = buffer;
    for (int c = 0; c < D; c++)
        for (int p = 0; p < N; p++)
            keys[(size_t)p * D + c] = image_embedding[(size_t)c * N + p] + no_mask_embed[c];
    st->keys = keys;
    float *projections = buffer + (size_t)N * D;
    first_block_projections_compute(&st->first, projections, keys, plan->key_pe, w, cfg, scratch);
    float *keys_m0 = projections + first_block_projections_floats(cfg);
    const int E = plan->keys_projection.e;
    gemm_nn(N, E, D, 1.0f, keys, D, plan->keys_projection.m[0], E, 0.0f, keys_m0, E);
    st->keys_m0 = keys_m0;
}

// Steps 1-3 of the output upscaling (see the top of the file) for mask
// tokens first_mask .. first_mask + n_masks - 1, whose hypernetwork outputs
// are hyper (n_masks, C2). masks: (n_masks, 4G, 4G).
SAM_MULTIVERSION static void upscale_masks(float *masks, const float *keys, int u1_projected,
                                           const float *hyper,
                          int n_masks, const MaskDecoderPlan *plan, const MaskDecoderWeights *w,
                          const SamConfig *cfg, float *u1, float *u2, float *planes) {
    const int D = cfg->prompt_dim, G = cfg->grid, N = G * G;
    const int C1 = cfg->upscale_dim1, C2 = cfg->upscale_dim2;
    const size_t n4 = (size_t)4 * N;
    // 1. ConvTranspose2d(D, C1) + bias (the product may have come through
    // the KeysProjection), LayerNorm2d (eps 1e-6), GELU.
    if (u1_projected) {
        for (int n = 0; n < N; n++) add_inplace(u1 + (size_t)n * 4 * C1, plan->upscale1_b, (size_t)4 * C1);
    } else {
        for (int n = 0; n < N; n++) memcpy(u1 + (size_t)n * 4 * C1, plan->upscale1_b, sizeof(float) * 4 * C1);
        gemm_nn(N, 4 * C1, D, 1.0f, keys, D, plan->upscale1_w, 4 * C1, 1.0f, u1, 4 * C1);
    }
    layernorm_rows(u1, u1, w->upscale_norm.weight, w->upscale_norm.bias, 4 * N, C1, 1e-6f);
    gelu_inplace(u1, n4 * C1);
    // 2. ConvTranspose2d(C1, C2) without its bias.
    gemm_nt(4 * C2, 4 * N, C1, 1.0f, plan->upscale2_w, C1, u1, C1, 0.0f, u2, 4 * N);
    // 3. + bias, GELU, hypernetwork weights: planes[k][tap2][r], in blocks
    // of pixels so that the block of u2 and of the planes stays in cache
    // across the 4 C2 rows.
    enum { BLOCK = 512 };
    memset(planes, 0, sizeof(float) * (size_t)n_masks * 4 * n4);
    for (size_t r0 = 0; r0 < n4; r0 += BLOCK) {
        const size_t len = n4 - r0 < BLOCK ? n4 - r0 : BLOCK;
        for (int tap = 0; tap < 4; tap++) {
            for (int c = 0; c < C2; c++) {
                float *row = u2 + ((size_t)tap * C2 + c) * n4 + r0;
                const float b = w->upscale2_b[c];
                for (size_t r = 0; r < len; r++) row[r] += b;
                gelu_inplace(row, len);
                for (int k = 0; k < n_masks; k++) {
                    float *plane = planes + ((size_t)k * 4 + tap) * n4 + r0;
                    const float h = hyper[(size_t)k * C2 + c];
                    for (size_t r = 0; r < len; r++) plane[r] += h * row[r];
                }
            }
        }
    }
    // Pixel r = 4 n + tap1 of the 2G map is (2y + kh1, 2x + kw1) for grid
    // pixel n = y G + x; tap2 = kh2 * 2 + kw2 puts it at (2 (2y + kh1) + kh2,
    // 2 (2x + kw1) + kw2) of the 4G x 4G mask.
    const size_t side = (size_t)4 * G;
    for (int k = 0; k < n_masks; k++) {
        float *mask = masks + (size_t)k * side * side;
        for (int tap2 = 0; tap2 < 4; tap2++) {
            const float *plane = planes + ((size_t)k * 4 + tap2) * n4;
            for (int y = 0; y < G; y++) {
                for (int x = 0; x < G; x++) {
                    const float *p = plane + ((size_t)y * G + x) * 4;
                    for (int tap1 = 0; tap1 < 4; tap1++) {
                        const size_t oy = (size_t)2 * (2 * y + (tap1 >> 1)) + (tap2 >> 1);
                        const size_t ox = (size_t)2 * (2 * x + (tap1 & 1)) + (tap2 & 1);
                        mask[oy * side + ox] = p[tap1];
                    }
                }
            }
        }
    }
}

int mask_decoder_forward(float *masks, float *iou, const float *image_embedding,
                         const float *dense, const DecoderImageState *state,
                         const MaskDecoderPlan *plan, const float *sparse, int n_sparse,
                         int first_mask, int n_masks, DecoderPath path,
                         const MaskDecoderWeights *w, const SamConfig *cfg, Arena *scratch,
                         float *stage_ms, SamError *err) {
    const double t0 = sam_clock_ms();
    const int D = cfg->prompt_dim, G = cfg->grid, N = G * G, Tm = cfg->num_mask_tokens;
    const int T = 1 + Tm + n_sparse, C2 = cfg->upscale_dim2;
    const int H = cfg->iou_hidden_dim;
    if (n_sparse < 0 || Tm > 8 || cfg->decoder_depth > SAM_MAX_DECODER_DEPTH ||
        cfg->iou_head_depth < 1 || cfg->iou_head_depth > 3 || cfg->decoder_heads < 1 ||
        cfg->attn_internal_dim % cfg->decoder_heads != 0 || D % cfg->decoder_heads != 0 ||
        first_mask < 0 || n_masks < 1 || first_mask + n_masks > Tm)
        return sam_error(err,
                         "mask decoder: unsupported configuration (sparse %d, mask tokens %d, "
                         "depth %d, iou depth %d, heads %d)",
                         n_sparse, Tm, cfg->decoder_depth, cfg->iou_head_depth,
                         cfg->decoder_heads);
    DecoderSizes sz;
    decoder_sizes(&sz, cfg, n_sparse);
    const size_t mark = arena_mark(scratch);
    float *tokens = arena_floats(scratch, sz.tokens);
    float *queries = arena_floats(scratch, sz.queries);
    float *keys = arena_floats(scratch, sz.keys);
    float *hyper = arena_floats(scratch, sz.hyper);
    float *mlp_tmp = arena_floats(scratch, sz.mlp);
    float *u1 = arena_floats(scratch, sz.u1);
    if (!tokens || !queries || !keys || !hyper || !mlp_tmp || !u1) goto exhausted;

    // predict_masks: tokens = [iou_token, mask_tokens, sparse prompt].
    memcpy(tokens, w->iou_token, sizeof(float) * D);
    memcpy(tokens + D, w->mask_tokens, sizeof(float) * (size_t)Tm * D);
    if (n_sparse > 0)
        memcpy(tokens + (size_t)(1 + Tm) * D, sparse, sizeof(float) * (size_t)n_sparse * D);
    memcpy(queries, tokens, sizeof(float) * (size_t)T * D);
    // src = image_embedding + dense, flattened to (N, D) tokens (flatten(2).permute(0, 2, 1)).
    if (state) {
        memcpy(keys, state->keys, sizeof(float) * (size_t)N * D);
    } else {
        for (int c = 0; c < D; c++)
            for (int p = 0; p < N; p++)
                keys[(size_t)p * D + c] =
                    image_embedding[(size_t)c * N + p] + dense[(size_t)c * N + p];
    }

    // Phase 1: the two-way transformer, carrying the first upscaling
    // convolution's product along when the image side starts from the
    // per-image state and the rearranged attention is used.
    const AttentionDims cross = {D, cfg->attn_internal_dim, cfg->decoder_heads};
    const int project = state && path == DECODER_PATH_FAST && attention_folding_pays(T, cross);
    KeysProjection projection = plan->keys_projection;
    if (project) {
        memcpy(u1, state->keys_m0, sizeof(float) * sz.u1);
        projection.rows = u1;
    }
    const size_t phase = arena_mark(scratch);
    // Read afterwards: the IoU token (row 0) and the requested mask tokens.
    int out_rows[1 + 8];
    out_rows[0] = 0;
    for (int k = 0; k < n_masks; k++) out_rows[1 + k] = 1 + first_mask + k;
    if (two_way_transformer_forward(queries, keys, tokens, plan->key_pe, T, N, out_rows, 1 + n_masks,
                                    state ? &state->first : NULL, project ? &projection : NULL,
                                    path, w, cfg, scratch, err)) {
        arena_reset(scratch, mark);
        return -1;
    }
    arena_reset(scratch, phase);
    const double t1 = sam_clock_ms();

    // Hypernetwork MLPs of the requested mask tokens: token i (queries row
    // 1 + i) -> (C2) weights.
    for (int k = 0; k < n_masks; k++) {
        const int i = first_mask + k;
        mlp_forward(hyper + (size_t)k * C2, queries + (size_t)(1 + i) * D, w->hyper_mlps[i], 3, D,
                    D, C2, mlp_tmp);
    }
    // Phase 2: output_upscaling on src.transpose(1, 2).view(D, G, G) (the
    // token-major keys) and the masks hyper_in @ upscaled.
    float *u2 = arena_floats(scratch, sz.u2);
    float *planes = arena_floats(scratch, sz.planes);
    if (!u2 || !planes) goto exhausted;
    upscale_masks(masks, keys, project, hyper, n_masks, plan, w, cfg, u1, u2, planes);

    // IoU prediction head on the IoU token (no sigmoid).
    mlp_forward(iou, queries, w->iou_head, cfg->iou_head_depth, D, H, Tm, mlp_tmp);
    if (stage_ms) {
        stage_ms[0] = (float)(t1 - t0);
        stage_ms[1] = (float)(sam_clock_ms() - t1);
    }

    arena_reset(scratch, mark);
    return 0;

exhausted:
    arena_reset(scratch, mark);
    return sam_error(err, "mask decoder: scratch arena exhausted (%zu floats needed)",
                     mask_decoder_scratch_floats(cfg, n_sparse));
}
