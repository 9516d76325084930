// SAM mask decoder: segment_anything/modeling/mask_decoder.py
// (MaskDecoder.predict_masks, MLP) at commit dca509f. The transformer body
// is in two_way_transformer.c.
#include "mask_decoder.h"

#include <string.h>

#include "../kernels/kernels.h"
#include "two_way_transformer.h"

// Arena allocations are 64-byte aligned: count each as a multiple of 16 floats.
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }

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
    // Phase 1: the transformer.
    size_t key_pe;   // (N, D) dense PE, token-major
    size_t transformer;
    // Phase 2: output upscaling.
    size_t up1;      // (C1, 2G, 2G)
    size_t up2;      // (C2, 4G, 4G)
    size_t w1t;      // (4 C1, D) transposed ConvTranspose2d weight
    size_t tmp1;     // (4 C1, N) GEMM output before the scatter
    size_t w2t;      // (4 C2, C1)
    size_t tmp2;     // (4 C2, 4N)
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
    s->key_pe = N * D;
    s->transformer = two_way_transformer_scratch_floats(cfg, (int)T, (int)N);
    s->up1 = C1 * 4 * N;
    s->up2 = C2 * 16 * N;
    s->w1t = 4 * C1 * D;
    s->tmp1 = 4 * C1 * N;
    s->w2t = 4 * C2 * C1;
    s->tmp2 = 4 * C2 * 4 * N;
}

size_t mask_decoder_scratch_floats(const SamConfig *cfg, int n_sparse) {
    DecoderSizes s;
    decoder_sizes(&s, cfg, n_sparse);
    const size_t live = arena_rounded(s.tokens) + arena_rounded(s.queries) +
                        arena_rounded(s.keys) + arena_rounded(s.hyper) + arena_rounded(s.mlp);
    const size_t phase1 = arena_rounded(s.key_pe) + s.transformer;
    const size_t conv1 = arena_rounded(s.w1t) + arena_rounded(s.tmp1);
    const size_t conv2 = arena_rounded(s.w2t) + arena_rounded(s.tmp2);
    const size_t phase2 =
        arena_rounded(s.up1) + arena_rounded(s.up2) + (conv1 > conv2 ? conv1 : conv2);
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

// nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2) as one GEMM and a
// scatter: with kernel 2 and stride 2 every output pixel (2i + kh, 2j + kw)
// receives exactly one input pixel (i, j), through weight[ci][co][kh][kw].
// tmp (4 cout, hw) = wt (4 cout, cin) @ in, then out[co][2i+kh][2j+kw] =
// tmp[co*4 + kh*2 + kw][i*w + j] + bias[co]. out is (cout, 2h, 2w).
static void conv_transpose2x2_scatter(float *out, const float *tmp, const float *bias, int cout,
                                      int h, int w) {
    const size_t hw = (size_t)h * w, ow = (size_t)2 * w;
    for (int co = 0; co < cout; co++) {
        float *o = out + (size_t)co * 4 * hw;
        for (int kh = 0; kh < 2; kh++) {
            for (int kw = 0; kw < 2; kw++) {
                const float *t = tmp + ((size_t)co * 4 + kh * 2 + kw) * hw;
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++)
                        o[(size_t)(2 * i + kh) * ow + 2 * j + kw] = t[(size_t)i * w + j] + bias[co];
            }
        }
    }
}

int mask_decoder_forward(float *masks, float *iou, const float *image_embedding,
                         const float *image_pe, const float *dense, const float *sparse,
                         int n_sparse, const MaskDecoderWeights *w, const SamConfig *cfg,
                         Arena *scratch, SamError *err) {
    const int D = cfg->prompt_dim, G = cfg->grid, N = G * G, Tm = cfg->num_mask_tokens;
    const int T = 1 + Tm + n_sparse, C1 = cfg->upscale_dim1, C2 = cfg->upscale_dim2;
    const int H = cfg->iou_hidden_dim;
    if (n_sparse < 0 || Tm > 8 || cfg->decoder_depth > SAM_MAX_DECODER_DEPTH ||
        cfg->iou_head_depth < 1 || cfg->iou_head_depth > 3 || cfg->decoder_heads < 1 ||
        cfg->attn_internal_dim % cfg->decoder_heads != 0 || D % cfg->decoder_heads != 0)
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
    if (!tokens || !queries || !keys || !hyper || !mlp_tmp) goto exhausted;

    // predict_masks: tokens = [iou_token, mask_tokens, sparse prompt].
    memcpy(tokens, w->iou_token, sizeof(float) * D);
    memcpy(tokens + D, w->mask_tokens, sizeof(float) * (size_t)Tm * D);
    if (n_sparse > 0)
        memcpy(tokens + (size_t)(1 + Tm) * D, sparse, sizeof(float) * (size_t)n_sparse * D);
    memcpy(queries, tokens, sizeof(float) * (size_t)T * D);
    // src = image_embedding + dense, flattened to (N, D) tokens (flatten(2).permute(0, 2, 1)).
    for (int c = 0; c < D; c++)
        for (int p = 0; p < N; p++)
            keys[(size_t)p * D + c] = image_embedding[(size_t)c * N + p] + dense[(size_t)c * N + p];

    // Phase 1: the two-way transformer.
    const size_t phase = arena_mark(scratch);
    float *key_pe = arena_floats(scratch, sz.key_pe);
    if (!key_pe) goto exhausted;
    transpose(key_pe, image_pe, D, N);
    if (two_way_transformer_forward(queries, keys, tokens, key_pe, T, N, w, cfg, scratch, err)) {
        arena_reset(scratch, mark);
        return -1;
    }
    arena_reset(scratch, phase);

    // Phase 2: output_upscaling on src.transpose(1, 2).view(D, G, G), i.e.
    // the keys read channel-major.
    float *up1 = arena_floats(scratch, sz.up1);
    float *up2 = arena_floats(scratch, sz.up2);
    if (!up1 || !up2) goto exhausted;
    const size_t conv = arena_mark(scratch);
    float *w1t = arena_floats(scratch, sz.w1t);
    float *tmp1 = arena_floats(scratch, sz.tmp1);
    if (!w1t || !tmp1) goto exhausted;
    // ConvTranspose2d(D, C1, 2, 2): weight (D, C1, 2, 2) read as (D, 4 C1),
    // transposed to (4 C1, D); tmp1 (4 C1, N) = w1t @ keys^T.
    transpose(w1t, w->upscale1_w, D, 4 * C1);
    gemm_nt(4 * C1, N, D, 1.0f, w1t, D, keys, D, 0.0f, tmp1, N);
    conv_transpose2x2_scatter(up1, tmp1, w->upscale1_b, C1, G, G);
    arena_reset(scratch, conv);
    // LayerNorm2d (eps 1e-6), GELU.
    layernorm_channels(up1, up1, w->upscale_norm.weight, w->upscale_norm.bias, C1, 4 * N, 1e-6f);
    gelu_inplace(up1, sz.up1);
    // ConvTranspose2d(C1, C2, 2, 2) on (C1, 2G, 2G), GELU.
    float *w2t = arena_floats(scratch, sz.w2t);
    float *tmp2 = arena_floats(scratch, sz.tmp2);
    if (!w2t || !tmp2) goto exhausted;
    transpose(w2t, w->upscale2_w, C1, 4 * C2);
    gemm_nn(4 * C2, 4 * N, C1, 1.0f, w2t, C1, up1, 4 * N, 0.0f, tmp2, 4 * N);
    conv_transpose2x2_scatter(up2, tmp2, w->upscale2_b, C2, 2 * G, 2 * G);
    arena_reset(scratch, conv);
    gelu_inplace(up2, sz.up2);

    // Hypernetwork MLPs: mask token i (queries row 1 + i) -> (C2) weights.
    for (int i = 0; i < Tm; i++)
        mlp_forward(hyper + (size_t)i * C2, queries + (size_t)(1 + i) * D, w->hyper_mlps[i], 3, D,
                    D, C2, mlp_tmp);
    // masks (Tm, 16 N) = hyper_in (Tm, C2) @ upscaled (C2, 16 N).
    gemm_nn(Tm, 16 * N, C2, 1.0f, hyper, C2, up2, 16 * N, 0.0f, masks, 16 * N);

    // IoU prediction head on the IoU token (no sigmoid).
    mlp_forward(iou, queries, w->iou_head, cfg->iou_head_depth, D, H, Tm, mlp_tmp);

    arena_reset(scratch, mark);
    return 0;

exhausted:
    arena_reset(scratch, mark);
    return sam_error(err, "mask decoder: scratch arena exhausted (%zu floats needed)",
                     mask_decoder_scratch_floats(cfg, n_sparse));
}
