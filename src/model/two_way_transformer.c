// SAM's TwoWayTransformer: segment_anything/modeling/transformer.py
// (TwoWayTransformer, TwoWayAttentionBlock, Attention) at commit dca509f.
// Tokens are rows: queries (T, D) are the prompt tokens, keys (N, D) the
// image tokens (N = grid * grid).
#include "two_way_transformer.h"

#include <string.h>

#include "../kernels/kernels.h"
#include "../common/multiversion.h"
#include "decoder_attention.h"

// nn.LayerNorm default eps, used by every norm of the decoder transformer.
#define DECODER_LN_EPS 1e-5f

// Arena allocations are 64-byte aligned: count each as a multiple of 16 floats.
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }

// dst = a + b elementwise (the `queries + query_pe` sums).
SAM_MULTIVERSION static void add_to(float *dst, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

// keys + key_pe, the image side of a token-to-image attention: packed for
// the GEMMs straight from the sum when the rearranged form runs (returned),
// else formed in k_pe (NULL returned).
static const GemmPackedB *keys_plus_pe(int pack, GemmPackedB *packed, float *pack_buffer,
                                       float *k_pe, const float *keys, const float *key_pe, int N,
                                       int D) {
    if (pack) {
        gemm_pack_b_sum(packed, pack_buffer, keys, key_pe, D, N, D);
        return packed;
    }
    add_to(k_pe, keys, key_pe, (size_t)N * D);
    return NULL;
}

// norm4 of a block applied with precomputed row statistics to the keys (N,
// D), and its effect on their projection rows (N, E) (KeysProjection).
SAM_MULTIVERSION static void normalize_with_projection(float *keys, float *rows, const float *mean,
                                                       const float *rstd, const float *gamma,
                                                       const float *beta, const float *colsum,
                                                       const float *beta_next, int N, int D,
                                                       int E) {
    for (int n = 0; n < N; n++) {
        float *row = rows + (size_t)n * E;
        const float m = mean[n], r = rstd[n];
        for (int j = 0; j < E; j++) row[j] = r * (row[j] - m * colsum[j]) + beta_next[j];
        float *key = keys + (size_t)n * D;
        for (int c = 0; c < D; c++) key[c] = (key[c] - m) * r * gamma[c] + beta[c];
    }
}

// The buffers of one forward, in allocation order (shared by the size
// function and the forward so that the bound cannot drift).
typedef struct TwoWaySizes {
    size_t q_pe;      // (T, D) queries + query_pe
    size_t k_pe;      // (N, D) keys + key_pe
    size_t attn_out;  // (T, D) attention output
    size_t mlp;       // (T, mlp) MLP hidden
    size_t attn;      // attention scratch, the largest of the attentions
    size_t stats;     // (2N) row means and 1/std of the keys, for the projection
    size_t k_pe_pack; // keys + key_pe packed for the GEMMs (gemm_pack_b_sum)
} TwoWaySizes;

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static void two_way_sizes(TwoWaySizes *s, const SamConfig *cfg, int T, int N) {
    const int D = cfg->prompt_dim;
    const AttentionDims self = {D, D, cfg->decoder_heads};
    const AttentionDims cross = {D, cfg->attn_internal_dim, cfg->decoder_heads};
    s->q_pe = (size_t)T * D;
    s->k_pe = (size_t)N * D;
    s->attn_out = (size_t)T * D;
    s->mlp = (size_t)T * cfg->decoder_mlp_dim;
    s->attn = attention_reference_scratch_floats(T, T, self);
    s->attn = max_size(s->attn, attention_to_image_scratch_floats(T, N, cross));
    s->attn = max_size(s->attn, attention_to_projected_image_scratch_floats(T, N, cross));
    // The keys projection is the input of the first upscaling convolution.
    s->attn = max_size(s->attn, attention_from_image_scratch_floats(T, N, cross,
                                                                    4 * cfg->upscale_dim1));
    s->stats = (size_t)2 * N;
    s->k_pe_pack = gemm_pack_b_sum_floats(N, D);
}

size_t two_way_transformer_scratch_floats(const SamConfig *cfg, int n_tokens, int n_image) {
    TwoWaySizes s;
    two_way_sizes(&s, cfg, n_tokens, n_image);
    return arena_rounded(s.q_pe) + arena_rounded(s.k_pe) + arena_rounded(s.attn_out) +
           arena_rounded(s.mlp) + arena_rounded(s.attn) + arena_rounded(s.stats) +
           arena_rounded(s.k_pe_pack);
}

int two_way_transformer_forward(float *queries, float *keys, const float *query_pe,
                                const float *key_pe, int n_tokens, int n_image,
                                const int *out_rows, int n_out_rows,
                                const FirstBlockProjections *first,
                                const KeysProjection *projection, DecoderPath path,
                                const MaskDecoderWeights *w, const SamConfig *cfg, Arena *scratch,
                                SamError *err) {
    const int T = n_tokens, N = n_image, D = cfg->prompt_dim, mlp_dim = cfg->decoder_mlp_dim;
    const AttentionDims self = {D, D, cfg->decoder_heads};
    const AttentionDims cross = {D, cfg->attn_internal_dim, cfg->decoder_heads};
    const int fold = path == DECODER_PATH_FAST;
    // keys + key_pe is only needed packed when the rearranged attentions run.
    const int pack_k_pe = fold && attention_folding_pays(T, cross);
    const size_t td = (size_t)T * D;
    TwoWaySizes sz;
    two_way_sizes(&sz, cfg, T, N);
    const size_t mark = arena_mark(scratch);
    float *q_pe = arena_floats(scratch, sz.q_pe);
    float *k_pe = arena_floats(scratch, sz.k_pe);
    float *attn_out = arena_floats(scratch, sz.attn_out);
    float *hidden = arena_floats(scratch, sz.mlp);
    float *attn = arena_floats(scratch, sz.attn);
    float *stats = arena_floats(scratch, sz.stats);
    float *k_pe_pack = arena_floats(scratch, sz.k_pe_pack ? sz.k_pe_pack : 1);
    GemmPackedB k_pe_packed;
    if (!q_pe || !k_pe || !attn_out || !hidden || !attn || !stats || !k_pe_pack) {
        arena_reset(scratch, mark);
        return sam_error(err, "two-way transformer: scratch arena exhausted (%zu floats needed)",
                         two_way_transformer_scratch_floats(cfg, T, N));
    }

    for (int l = 0; l < cfg->decoder_depth; l++) {
        const TwoWayBlockWeights *b = &w->layers[l];
        // The image side of block 0 is the same for every prompt without a
        // mask input: its projections may come precomputed.
        const FirstBlockProjections *pre = l == 0 && fold ? first : NULL;
        // Self attention. Layer 0 (skip_first_layer_pe): no PE and no
        // residual, queries = self_attn(queries, queries, queries).
        if (l == 0) {
            attention_reference(attn_out, queries, queries, queries, T, T, self, &b->self_attn, attn);
            memcpy(queries, attn_out, sizeof(float) * td);
        } else {
            add_to(q_pe, queries, query_pe, td);
            attention_reference(attn_out, q_pe, q_pe, queries, T, T, self, &b->self_attn, attn);
            add_inplace(queries, attn_out, td);
        }
        layernorm_rows(queries, queries, b->norm1.weight, b->norm1.bias, T, D, DECODER_LN_EPS);

        // Cross attention, tokens to image: q = queries + query_pe,
        // k = keys + key_pe, v = keys.
        add_to(q_pe, queries, query_pe, td);
        if (pre) {
            attention_to_projected_image(attn_out, q_pe, pre->token_to_image_k,
                                         pre->token_to_image_v, pre->packed ? pre->k_heads : NULL,
                                         pre->packed ? pre->v_heads : NULL, T, N, cross,
                                         &b->cross_attn_token_to_image, attn);
        } else {
            // keys + key_pe is the right operand of two products (the scores
            // of this attention and of the image-to-token one) when the
            // rearranged forms are used: packed once, straight from the sum.
            const GemmPackedB *k_packed =
                keys_plus_pe(pack_k_pe, &k_pe_packed, k_pe_pack, k_pe, keys, key_pe, N, D);
            attention_to_image(attn_out, q_pe, k_pe, k_packed, keys, T, N, cross,
                               &b->cross_attn_token_to_image, fold, attn);
        }
        add_inplace(queries, attn_out, td);
        layernorm_rows(queries, queries, b->norm2.weight, b->norm2.bias, T, D, DECODER_LN_EPS);

        // MLPBlock with ReLU: lin2(relu(lin1(queries))), residual.
        linear_forward(hidden, queries, b->mlp_lin1.weight, b->mlp_lin1.bias, T, D, mlp_dim);
        relu_inplace(hidden, (size_t)T * mlp_dim);
        linear_forward(attn_out, hidden, b->mlp_lin2.weight, b->mlp_lin2.bias, T, mlp_dim, D);
        add_inplace(queries, attn_out, td);
        layernorm_rows(queries, queries, b->norm3.weight, b->norm3.bias, T, D, DECODER_LN_EPS);

        // Cross attention, image to tokens: q = keys + key_pe (unchanged
        // since the token-to-image attention), k = queries + query_pe,
        // v = queries; added to the keys.
        add_to(q_pe, queries, query_pe, td);
        const ImageProjection proj = {projection ? projection->rows : NULL,
                                      projection ? projection->m[l] : NULL,
                                      projection ? projection->e : 0};
        attention_from_image_add(keys, k_pe, pre || !pack_k_pe ? NULL : &k_pe_packed,
                                 pre ? pre->image_to_token_q : NULL,
                                 pre && pre->packed ? pre->q_heads : NULL, q_pe, queries, T, N,
                                 cross, &b->cross_attn_image_to_token, fold,
                                 projection ? &proj : NULL, attn);
        if (projection) {
            // rows = keys @ M_l before the norm; after it (mask_decoder.c)
            // LN(keys) @ M_{l+1} = rstd (rows - mean colsum(M_l)) + beta M_{l+1}.
            // The statistics are computed once and serve the norm itself too.
            float *mean = stats, *rstd = stats + N;
            row_mean_rstd(keys, N, D, DECODER_LN_EPS, mean, rstd);
            normalize_with_projection(keys, projection->rows, mean, rstd, b->norm4.weight,
                                      b->norm4.bias, projection->colsum[l],
                                      projection->beta_next[l], N, D, projection->e);
        } else {
            layernorm_rows(keys, keys, b->norm4.weight, b->norm4.bias, N, D, DECODER_LN_EPS);
        }
    }

    // Final attention from the tokens to the image, residual, norm_final_attn.
    // Each token row attends on its own, so only the rows the caller reads
    // are computed (the fast path; the reference computes all): gathered
    // into the first rows of q_pe, and the results scattered back.
    const int T_out = fold && out_rows && n_out_rows > 0 && n_out_rows < T ? n_out_rows : T;
    for (int j = 0; j < T_out; j++) {
        const int row = T_out < T ? out_rows[j] : j;
        add_to(q_pe + (size_t)j * D, queries + (size_t)row * D, query_pe + (size_t)row * D, (size_t)D);
    }
    const GemmPackedB *k_packed = keys_plus_pe(fold && attention_folding_pays(T_out, cross),
                                               &k_pe_packed, k_pe_pack, k_pe, keys, key_pe, N, D);
    attention_to_image(attn_out, q_pe, k_pe, k_packed, keys, T_out, N, cross,
                       &w->final_attn_token_to_image, fold, attn);
    for (int j = 0; j < T_out; j++) {
        float *row = queries + (size_t)(T_out < T ? out_rows[j] : j) * D;
        add_inplace(row, attn_out + (size_t)j * D, (size_t)D);
        layernorm_rows(row, row, w->norm_final_attn.weight, w->norm_final_attn.bias, 1, D,
                       DECODER_LN_EPS);
    }

    arena_reset(scratch, mark);
    return 0;
}

size_t keys_projection_model_floats(const SamConfig *cfg) {
    const size_t D = (size_t)cfg->prompt_dim, E = (size_t)4 * cfg->upscale_dim1;
    return (size_t)cfg->decoder_depth * (D * E + 2 * E);
}

void keys_projection_init(KeysProjection *p, float *buffer, const float *w, int e,
                          const MaskDecoderWeights *mw, const SamConfig *cfg) {
    const int D = cfg->prompt_dim, L = cfg->decoder_depth;
    p->rows = NULL;
    p->e = e;
    // From the last block down: M_L = w, M_l = diag(gamma_l) M_{l+1},
    // colsum_l = 1^T M_l, beta_next_l = beta_l M_{l+1} (gamma, beta of norm4).
    const float *next = w;
    for (int l = L - 1; l >= 0; l--) {
        float *m = buffer + (size_t)l * ((size_t)D * e + 2 * (size_t)e);
        float *colsum = m + (size_t)D * e, *beta_next = colsum + e;
        const NormWeights *norm = &mw->layers[l].norm4;
        for (int j = 0; j < e; j++) colsum[j] = beta_next[j] = 0.0f;
        for (int c = 0; c < D; c++) {
            for (int j = 0; j < e; j++) {
                m[(size_t)c * e + j] = norm->weight[c] * next[(size_t)c * e + j];
                colsum[j] += m[(size_t)c * e + j];
                beta_next[j] += norm->bias[c] * next[(size_t)c * e + j];
            }
        }
        p->m[l] = m;
        p->colsum[l] = colsum;
        p->beta_next[l] = beta_next;
        next = m;
    }
}

// The three (N, I) projections, then each head's slice of them packed for
// the per-prompt products (when the heads fit the struct).
static size_t head_pack_floats(const SamConfig *cfg, int trans_b) {
    const int N = cfg->grid * cfg->grid, hd = cfg->attn_internal_dim / cfg->decoder_heads;
    return trans_b ? gemm_pack_b_floats(N, hd) : gemm_pack_b_floats(hd, N);
}

size_t first_block_projections_floats(const SamConfig *cfg) {
    size_t n = (size_t)3 * cfg->grid * cfg->grid * cfg->attn_internal_dim;
    if (cfg->decoder_heads <= SAM_MAX_PACKED_HEADS)
        n += (size_t)cfg->decoder_heads * (2 * head_pack_floats(cfg, 1) + head_pack_floats(cfg, 0));
    return n;
}

void first_block_projections_compute(FirstBlockProjections *out, float *buffer, const float *keys,
                                     const float *key_pe, const MaskDecoderWeights *w,
                                     const SamConfig *cfg, float *k_pe) {
    const int N = cfg->grid * cfg->grid, D = cfg->prompt_dim, I = cfg->attn_internal_dim;
    const TwoWayBlockWeights *b = &w->layers[0];
    out->token_to_image_k = buffer;
    out->token_to_image_v = buffer + (size_t)N * I;
    out->image_to_token_q = buffer + (size_t)2 * N * I;
    add_to(k_pe, keys, key_pe, (size_t)N * D);
    linear_forward(buffer, k_pe, b->cross_attn_token_to_image.k_proj.weight,
                   b->cross_attn_token_to_image.k_proj.bias, N, D, I);
    linear_forward(buffer + (size_t)N * I, keys, b->cross_attn_token_to_image.v_proj.weight,
                   b->cross_attn_token_to_image.v_proj.bias, N, D, I);
    linear_forward(buffer + (size_t)2 * N * I, k_pe, b->cross_attn_image_to_token.q_proj.weight,
                   b->cross_attn_image_to_token.q_proj.bias, N, D, I);
    const int H = cfg->decoder_heads, hd = I / H;
    out->packed = H <= SAM_MAX_PACKED_HEADS;
    if (!out->packed) return;
    float *at = buffer + (size_t)3 * N * I;
    const size_t nt = head_pack_floats(cfg, 1), nn = head_pack_floats(cfg, 0);
    for (int h = 0; h < H; h++) {
        // scores q_h k_h^T and p_h^T q... : k and q slices as (N, hd) B^T, v as (N, hd) B.
        gemm_pack_b(&out->k_heads[h], at, out->token_to_image_k + h * hd, I, N, hd, 1);
        at += nt;
        gemm_pack_b(&out->q_heads[h], at, out->image_to_token_q + h * hd, I, N, hd, 1);
        at += nt;
        gemm_pack_b(&out->v_heads[h], at, out->token_to_image_v + h * hd, I, hd, N, 0);
        at += nn;
    }
}
