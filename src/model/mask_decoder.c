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

// Grid pixels per chunk of the second upscaling convolution: its output
// block (16 C2 x chunk floats, 512 KiB for SAM) stays in L2.
#define UPSCALE_CHUNK 256

// Arena allocations are 64-byte aligned: count each as a multiple of 16 floats.
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }

// ---------------------------------------------------------------------------
// Output upscaling
//
// output_upscaling is ConvTranspose2d(D, C1, 2, stride 2), LayerNorm2d, GELU,
// ConvTranspose2d(C1, C2, 2, stride 2), GELU. With kernel 2 and stride 2
// every output pixel (2y + kh, 2x + kw) receives exactly one input pixel
// (y, x), through the tap weight[ci][co][kh][kw], so each convolution is one
// GEMM whose rows are (tap, channel) pairs. Keeping the maps channel-major,
// one column per grid pixel, the GEMMs read their right operands without a
// transposing pack, and nothing is scattered until the end:
//  1. u1 (4 C1, N) = W1^T (4 C1, D) @ keys^T + b1: rows (tap1, c1), column
//     n = grid pixel n; for each tap1 the (C1, N) block is a channel-major
//     map of C1 channels, so LayerNorm2d is layernorm_channels; then GELU.
//  2. per tap1, u2 (4 C2, N) = W2 (4 C2, C1) @ u1[tap1]: rows (tap2, c2).
//  3. masks: for each (tap1, tap2) and channel c2, GELU(u2 row + b2[c2]) is
//     added, weighted by each hypernetwork output, into a (tap1, tap2, n)
//     plane per mask;
//  4. only those few planes are scattered to the 4G x 4G image.

// The linear layers applied to the prompt tokens (not to the image rows),
// with their (out, in) shapes: up to 10 per block, 2 in the final
// attention, 3 per hypernetwork, the IoU head.
typedef struct TokenLinear {
    LinearWeights *l;
    int out, in;
} TokenLinear;
#define MAX_TOKEN_LINEARS (10 * SAM_MAX_DECODER_DEPTH + 2 + 3 * 8 + 3)

static int token_linears(TokenLinear *list, MaskDecoderWeights *w, const SamConfig *cfg) {
    const int D = cfg->prompt_dim, I = cfg->attn_internal_dim, H = cfg->iou_hidden_dim;
    int n = 0;
#define ADD(layer, o, i) list[n++] = (TokenLinear){&(layer), (o), (i)}
    for (int l = 0; l < cfg->decoder_depth; l++) {
        TwoWayBlockWeights *b = &w->layers[l];
        ADD(b->self_attn.q_proj, D, D);
        ADD(b->self_attn.k_proj, D, D);
        ADD(b->self_attn.v_proj, D, D);
        ADD(b->self_attn.out_proj, D, D);
        ADD(b->cross_attn_token_to_image.q_proj, I, D);
        ADD(b->cross_attn_token_to_image.out_proj, D, I);
        ADD(b->cross_attn_image_to_token.k_proj, I, D);
        ADD(b->cross_attn_image_to_token.v_proj, I, D);
        ADD(b->mlp_lin1, cfg->decoder_mlp_dim, D);
        ADD(b->mlp_lin2, D, cfg->decoder_mlp_dim);
    }
    ADD(w->final_attn_token_to_image.q_proj, I, D);
    ADD(w->final_attn_token_to_image.out_proj, D, I);
    for (int t = 0; t < cfg->num_mask_tokens; t++) {
        ADD(w->hyper_mlps[t][0], D, D);
        ADD(w->hyper_mlps[t][1], D, D);
        ADD(w->hyper_mlps[t][2], cfg->upscale_dim2, D);
    }
    const int iou_dims[4] = {D, H, H, cfg->num_mask_tokens};
    for (int j = 0; j < cfg->iou_head_depth; j++) ADD(w->iou_head[j], iou_dims[j + 1], iou_dims[j]);
#undef ADD
    return n;
}

static int pack_token_linears(MaskDecoderPlan *plan, const MaskDecoderWeights *w,
                              const SamConfig *cfg) {
    TokenLinear list[MAX_TOKEN_LINEARS];
    plan->weights = *w;
    const int n = token_linears(list, &plan->weights, cfg);
    size_t floats = 0;
    for (int i = 0; i < n; i++) floats += gemm_pack_b_floats(list[i].out, list[i].in);
    plan->packs = malloc(sizeof(GemmPackedB) * (size_t)n);
    plan->pack_buffer = malloc(sizeof(float) * (floats ? floats : 1));
    if (!plan->packs || !plan->pack_buffer) return -1;
    float *at = plan->pack_buffer;
    for (int i = 0; i < n; i++) {
        gemm_pack_b(&plan->packs[i], at, list[i].l->weight, list[i].in, list[i].out, list[i].in, 1);
        at += gemm_pack_b_floats(list[i].out, list[i].in);
        list[i].l->packed = &plan->packs[i];
    }
    return 0;
}

int mask_decoder_plan_init(MaskDecoderPlan *plan, const float *dense_pe,
                           const MaskDecoderWeights *w, const SamConfig *cfg) {
    memset(plan, 0, sizeof *plan);
    if (cfg->decoder_depth < 1 || cfg->decoder_depth > SAM_MAX_DECODER_DEPTH ||
        cfg->num_mask_tokens > 8 ||
        cfg->iou_head_depth > 3 || pack_token_linears(plan, w, cfg)) {
        mask_decoder_plan_free(plan);
        return -1;
    }
    const int D = cfg->prompt_dim, N = cfg->grid * cfg->grid;
    const int C1 = cfg->upscale_dim1, C2 = cfg->upscale_dim2;
    const size_t n_key_pe = (size_t)N * D, n_w1 = (size_t)D * 4 * C1, n_b1 = (size_t)4 * C1;
    const size_t n_w2 = (size_t)4 * C2 * C1, n_lowrank = lowrank_model_floats(cfg);
    float *buf = malloc(sizeof(float) * (n_key_pe + n_w1 + n_b1 + n_w2 + n_lowrank));
    float *scratch = malloc(sizeof(float) * lowrank_model_scratch_floats(cfg));
    if (!buf || !scratch) {
        free(buf);
        free(scratch);
        mask_decoder_plan_free(plan);
        return -1;
    }
    float *key_pe = buf, *w1 = key_pe + n_key_pe, *b1 = w1 + n_w1, *w2 = b1 + n_b1;
    float *lowrank = w2 + n_w2;
    transpose(key_pe, dense_pe, D, N);
    // ConvTranspose2d weights are (in, out, kh, kw): tap = kh * 2 + kw.
    for (int ci = 0; ci < D; ci++)
        for (int co = 0; co < C1; co++)
            for (int tap = 0; tap < 4; tap++)
                w1[((size_t)tap * C1 + co) * D + ci] = w->upscale1_w[((size_t)ci * C1 + co) * 4 + tap];
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
    lowrank_model_init(&plan->lowrank, lowrank, key_pe, w, cfg, scratch);
    free(scratch);
    return 0;
}

void mask_decoder_plan_free(MaskDecoderPlan *plan) {
    free(plan->buffer);
    free(plan->packs);
    free(plan->pack_buffer);
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
    size_t u1;       // (4 C1, N) first upscaling
    // Phase 1: the transformer.
    size_t transformer;
    // Phase 2: output upscaling.
    size_t u2;       // (4, 4 C2, UPSCALE_CHUNK)
    size_t planes;   // (Tm, 16, N) mask logits before the scatter
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
    const size_t first_block = lowrank_first_block_scratch_floats(cfg, (int)T);
    if (first_block > s->transformer) s->transformer = first_block;
    // The factored form for as many tokens as it pays for (its scratch
    // grows with the tokens).
    for (int t = (int)T; t > 0; t--) {
        if (!lowrank_pays(t, cfg)) continue;
        const size_t f = lowrank_forward_scratch_floats(cfg, t);
        if (f > s->transformer) s->transformer = f;
        break;
    }
    s->u1 = N * 4 * C1;
    s->u2 = 4 * C2 * 4 * (N < UPSCALE_CHUNK ? N : UPSCALE_CHUNK);
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
        linear_apply(dst, cur, &layers[l], 1, cur_dim, n);
        if (!last) relu_inplace(dst, (size_t)n);
        cur = dst;
        cur_dim = n;
    }
}

size_t mask_decoder_image_state_floats(const SamConfig *cfg) {
    const size_t N = (size_t)cfg->grid * cfg->grid;
    return N * cfg->prompt_dim + lowrank_image_floats(cfg);
}

size_t mask_decoder_prepare_scratch_floats(const SamConfig *cfg) {
    return lowrank_image_scratch_floats(cfg);
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
    lowrank_image_compute(&st->lowrank, buffer + (size_t)N * D, keys, plan->key_pe,
                          plan->upscale1_w, w, cfg, scratch);
}

// Steps 1-4 of the output upscaling (see the top of the file) for mask
// tokens first_mask .. first_mask + n_masks - 1, whose hypernetwork outputs
// are hyper (n_masks, C2). masks: (n_masks, 4G, 4G). keys NULL: u1 already
// holds the first convolution's output, bias included (decoder_lowrank.c).
SAM_MULTIVERSION static void upscale_masks(float *masks, const float *keys, const float *hyper,
                                           int n_masks, const MaskDecoderPlan *plan,
                                           const MaskDecoderWeights *w, const SamConfig *cfg,
                                           float *u1, float *u2, float *planes) {
    const int D = cfg->prompt_dim, G = cfg->grid, N = G * G;
    const int C1 = cfg->upscale_dim1, C2 = cfg->upscale_dim2;
    // 1. ConvTranspose2d(D, C1) + bias, LayerNorm2d (eps 1e-6), GELU.
    if (keys) {
        for (int j = 0; j < 4 * C1; j++) {
            float *row = u1 + (size_t)j * N;
            for (int n = 0; n < N; n++) row[n] = plan->upscale1_b[j];
        }
        gemm_nt(4 * C1, N, D, 1.0f, plan->upscale1_w, D, keys, D, 1.0f, u1, N);
    }
    for (int tap = 0; tap < 4; tap++) {
        float *x = u1 + (size_t)tap * C1 * N;
        layernorm_channels(x, x, w->upscale_norm.weight, w->upscale_norm.bias, C1, N, 1e-6f);
    }
    gelu_inplace(u1, (size_t)4 * C1 * N);
    // 2-3. Per chunk of grid pixels (so that its u2 block stays in cache
    // between the product and the GELU): per tap1, ConvTranspose2d(C1, C2)
    // without its bias, u2 (4 C2, chunk) = W2 (4 C2, C1) @ u1[tap1]; then
    // + bias, GELU, hypernetwork weights into planes[k][tap1][tap2][n].
    memset(planes, 0, sizeof(float) * (size_t)n_masks * 16 * N);
    for (int n0 = 0; n0 < N; n0 += UPSCALE_CHUNK) {
        const int len = N - n0 < UPSCALE_CHUNK ? N - n0 : UPSCALE_CHUNK;
        for (int tap1 = 0; tap1 < 4; tap1++)
            gemm_nn(4 * C2, len, C1, 1.0f, plan->upscale2_w, C1, u1 + (size_t)tap1 * C1 * N + n0,
                    N, 0.0f, u2 + (size_t)tap1 * 4 * C2 * len, len);
        for (int taps = 0; taps < 16; taps++)  // tap1 * 4 + tap2
            gelu_contract(planes + (size_t)taps * N + n0, 16 * N, u2 + (size_t)taps * C2 * len,
                          len, w->upscale2_b, hyper, n_masks, C2, len);
    }
    // 4. Grid pixel n = y G + x through tap1 = kh1 * 2 + kw1 and tap2 =
    // kh2 * 2 + kw2 lands at (4y + 2 kh1 + kh2, 4x + 2 kw1 + kw2) of the
    // 4G x 4G mask.
    const size_t side = (size_t)4 * G;
    for (int k = 0; k < n_masks; k++) {
        float *mask = masks + (size_t)k * side * side;
        for (int y = 0; y < G; y++) {
            for (int sy = 0; sy < 4; sy++) {
                float *out = mask + ((size_t)4 * y + sy) * side;
                for (int sx = 0; sx < 4; sx++) {
                    const int tap1 = (sy >> 1) * 2 + (sx >> 1), tap2 = (sy & 1) * 2 + (sx & 1);
                    const float *p = planes + ((size_t)k * 16 + tap1 * 4 + tap2) * N + (size_t)y * G;
                    for (int x = 0; x < G; x++) out[4 * x + sx] = p[x];
                }
            }
        }
    }
}

int mask_decoder_forward(float *masks, float *iou, const float *image_embedding,
                         const float *dense, const DecoderImageState *state,
                         const MaskDecoderPlan *plan, const float *sparse, int n_sparse,
                         int first_mask, int n_masks, DecoderPath path, const SamConfig *cfg,
                         Arena *scratch, float *stage_ms, SamError *err) {
    const double t0 = sam_clock_ms();
    const MaskDecoderWeights *w = &plan->weights;
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
    // Phase 1: the two-way transformer. Without a mask input, and where it
    // pays, the image tokens stay in factored form (decoder_lowrank.h) and
    // it ends with the first upscaling convolution in u1; else they are
    // formed, after block 0 from the per-image products when there are some.
    const int fast_state = state && path == DECODER_PATH_FAST;
    const int factored = fast_state && lowrank_pays(T, cfg);
    // src = image_embedding + dense, flattened to (N, D) tokens (flatten(2).permute(0, 2, 1)).
    if (state && !factored) {
        memcpy(keys, state->keys, sizeof(float) * (size_t)N * D);
    } else if (!state) {
        for (int c = 0; c < D; c++)
            for (int p = 0; p < N; p++)
                keys[(size_t)p * D + c] =
                    image_embedding[(size_t)c * N + p] + dense[(size_t)c * N + p];
    }
    const size_t phase = arena_mark(scratch);
    // Read afterwards: the IoU token (row 0) and the requested mask tokens.
    int out_rows[1 + 8];
    out_rows[0] = 0;
    for (int k = 0; k < n_masks; k++) out_rows[1 + k] = 1 + first_mask + k;
    int failed;
    if (factored) {
        failed = lowrank_forward(queries, u1, tokens, T, out_rows, 1 + n_masks, &state->lowrank,
                                 &plan->lowrank, plan->upscale1_w, plan->upscale1_b, w, cfg,
                                 scratch, err);
    } else {
        failed = fast_state && lowrank_first_block(queries, keys, tokens, T, &state->lowrank, w,
                                                   cfg, scratch, err);
        failed = failed || two_way_transformer_forward(queries, keys, tokens, plan->key_pe, T, N,
                                                       out_rows, 1 + n_masks, fast_state ? 1 : 0,
                                                       path, w, cfg, scratch, err);
    }
    if (failed) {
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
    upscale_masks(masks, factored ? NULL : keys, hyper, n_masks, plan, w, cfg, u1, u2, planes);

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
