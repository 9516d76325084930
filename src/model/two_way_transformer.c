// SAM's TwoWayTransformer: segment_anything/modeling/transformer.py
// (TwoWayTransformer, TwoWayAttentionBlock, Attention) at commit dca509f.
// Tokens are rows: queries (T, D) are the prompt tokens, keys (N, D) the
// image tokens (N = grid * grid).
#include "two_way_transformer.h"

#include <string.h>

#include "../kernels/kernels.h"
#include "decoder_attention.h"

// nn.LayerNorm default eps, used by every norm of the decoder transformer.
#define DECODER_LN_EPS 1e-5f

// Arena allocations are 64-byte aligned: count each as a multiple of 16 floats.
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

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

// ---------------------------------------------------------------------------
// Token side

size_t two_way_tokens_scratch_floats(const SamConfig *cfg, int n_tokens) {
    const int D = cfg->prompt_dim;
    const AttentionDims self = {D, D, cfg->decoder_heads};
    const size_t td = (size_t)n_tokens * D;
    // q_pe and the output (T, D); the attention's scratch or the MLP hidden (T, mlp).
    return 2 * td + max_size(attention_reference_scratch_floats(n_tokens, n_tokens, self),
                             (size_t)n_tokens * cfg->decoder_mlp_dim);
}

void two_way_self_attention(float *queries, const float *query_pe, int n_tokens, int l,
                            const MaskDecoderWeights *w, const SamConfig *cfg, float *scratch) {
    const int T = n_tokens, D = cfg->prompt_dim;
    const AttentionDims self = {D, D, cfg->decoder_heads};
    const TwoWayBlockWeights *b = &w->layers[l];
    const size_t td = (size_t)T * D;
    float *q_pe = scratch, *attn_out = scratch + td, *attn = scratch + 2 * td;
    // Layer 0 (skip_first_layer_pe): no PE and no residual,
    // queries = self_attn(queries, queries, queries).
    if (l == 0) {
        attention_reference(attn_out, queries, queries, queries, T, T, self, &b->self_attn, attn);
        memcpy(queries, attn_out, sizeof(float) * td);
    } else {
        add_to(q_pe, queries, query_pe, td);
        attention_reference(attn_out, q_pe, q_pe, queries, T, T, self, &b->self_attn, attn);
        add_inplace(queries, attn_out, td);
    }
    layernorm_rows(queries, queries, b->norm1.weight, b->norm1.bias, T, D, DECODER_LN_EPS);
}

// MLPBlock with ReLU: lin2(relu(lin1(queries))), residual, norm3.
void two_way_mlp(float *queries, int n_tokens, const TwoWayBlockWeights *b, const SamConfig *cfg,
                 float *scratch) {
    const int T = n_tokens, D = cfg->prompt_dim, mlp_dim = cfg->decoder_mlp_dim;
    const size_t td = (size_t)T * D;
    float *out = scratch + td, *hidden = scratch + 2 * td;
    linear_apply(hidden, queries, &b->mlp_lin1, T, D, mlp_dim);
    relu_inplace(hidden, (size_t)T * mlp_dim);
    linear_apply(out, hidden, &b->mlp_lin2, T, mlp_dim, D);
    add_inplace(queries, out, td);
    layernorm_rows(queries, queries, b->norm3.weight, b->norm3.bias, T, D, DECODER_LN_EPS);
}

// ---------------------------------------------------------------------------
// The transformer

// The buffers of one forward, in allocation order (shared by the size
// function and the forward so that the bound cannot drift).
typedef struct TwoWaySizes {
    size_t q_pe;      // (T, D) queries + query_pe
    size_t k_pe;      // (N, D) keys + key_pe
    size_t attn_out;  // (T, D) attention output
    size_t tokens;    // the token side's scratch
    size_t attn;      // attention scratch, the largest of the cross attentions
    size_t k_pe_pack; // keys + key_pe packed for the GEMMs (gemm_pack_b_sum)
} TwoWaySizes;

static void two_way_sizes(TwoWaySizes *s, const SamConfig *cfg, int T, int N) {
    const int D = cfg->prompt_dim;
    const AttentionDims cross = {D, cfg->attn_internal_dim, cfg->decoder_heads};
    s->q_pe = (size_t)T * D;
    s->k_pe = (size_t)N * D;
    s->attn_out = (size_t)T * D;
    s->tokens = two_way_tokens_scratch_floats(cfg, T);
    s->attn = max_size(attention_to_image_scratch_floats(T, N, cross),
                       attention_from_image_scratch_floats(T, N, cross));
    s->k_pe_pack = gemm_pack_b_sum_floats(N, D);
}

size_t two_way_transformer_scratch_floats(const SamConfig *cfg, int n_tokens, int n_image) {
    TwoWaySizes s;
    two_way_sizes(&s, cfg, n_tokens, n_image);
    return arena_rounded(s.q_pe) + arena_rounded(s.k_pe) + arena_rounded(s.attn_out) +
           arena_rounded(s.tokens) + arena_rounded(s.attn) + arena_rounded(s.k_pe_pack);
}

int two_way_transformer_forward(float *queries, float *keys, const float *query_pe,
                                const float *key_pe, int n_tokens, int n_image,
                                const int *out_rows, int n_out_rows, int first_block,
                                DecoderPath path,
                                const MaskDecoderWeights *w, const SamConfig *cfg, Arena *scratch,
                                SamError *err) {
    const int T = n_tokens, N = n_image, D = cfg->prompt_dim;
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
    float *tokens = arena_floats(scratch, sz.tokens);
    float *attn = arena_floats(scratch, sz.attn);
    float *k_pe_pack = arena_floats(scratch, sz.k_pe_pack ? sz.k_pe_pack : 1);
    GemmPackedB k_pe_packed;
    if (!q_pe || !k_pe || !attn_out || !tokens || !attn || !k_pe_pack) {
        arena_reset(scratch, mark);
        return sam_error(err, "two-way transformer: scratch arena exhausted (%zu floats needed)",
                         two_way_transformer_scratch_floats(cfg, T, N));
    }

    for (int l = first_block; l < cfg->decoder_depth; l++) {
        const TwoWayBlockWeights *b = &w->layers[l];
        two_way_self_attention(queries, query_pe, T, l, w, cfg, tokens);

        // Cross attention, tokens to image: q = queries + query_pe,
        // k = keys + key_pe, v = keys. keys + key_pe is the right operand of
        // two products (the scores of this attention and of the
        // image-to-token one) when the rearranged forms are used: packed
        // once, straight from the sum.
        add_to(q_pe, queries, query_pe, td);
        const GemmPackedB *k_packed =
            keys_plus_pe(pack_k_pe, &k_pe_packed, k_pe_pack, k_pe, keys, key_pe, N, D);
        attention_to_image(attn_out, q_pe, k_pe, k_packed, keys, T, N, cross,
                           &b->cross_attn_token_to_image, fold, attn);
        add_inplace(queries, attn_out, td);
        layernorm_rows(queries, queries, b->norm2.weight, b->norm2.bias, T, D, DECODER_LN_EPS);

        two_way_mlp(queries, T, b, cfg, tokens);

        // Cross attention, image to tokens: q = keys + key_pe (unchanged
        // since the token-to-image attention), k = queries + query_pe,
        // v = queries; added to the keys, then norm4.
        add_to(q_pe, queries, query_pe, td);
        attention_from_image_add(keys, k_pe, pack_k_pe ? &k_pe_packed : NULL, q_pe, queries, T, N,
                                 cross, &b->cross_attn_image_to_token, fold, attn);
        layernorm_rows(keys, keys, b->norm4.weight, b->norm4.bias, N, D, DECODER_LN_EPS);
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
