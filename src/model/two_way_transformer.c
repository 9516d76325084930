// SAM's TwoWayTransformer: segment_anything/modeling/transformer.py
// (TwoWayTransformer, TwoWayAttentionBlock, Attention) at commit dca509f.
// Tokens are rows: queries (T, D) are the prompt tokens, keys (N, D) the
// image tokens (N = grid * grid).
#include "two_way_transformer.h"

#include <math.h>
#include <string.h>

#include "../kernels/kernels.h"

// nn.LayerNorm default eps, used by every norm of the decoder transformer.
#define DECODER_LN_EPS 1e-5f

// Arena allocations are 64-byte aligned: count each as a multiple of 16 floats.
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }

static size_t attention_scratch_floats(int nq, int nk, int internal) {
    // q (nq, I), k (nk, I), v (nk, I), heads' output (nq, I), one head's scores (nq, nk).
    return (size_t)2 * nq * internal + (size_t)2 * nk * internal + (size_t)nq * nk;
}

// Attention.forward(q, k, v): project to the internal width, split into
// `heads` contiguous channel blocks (_separate_heads), softmax(q k^T /
// sqrt(head_dim)) v per head, recombine, out_proj.
// out: (nq, dim); q_in: (nq, dim); k_in, v_in: (nk, dim).
// scratch: attention_scratch_floats(nq, nk, internal) floats.
static void attention_forward(float *out, const float *q_in, const float *k_in,
                              const float *v_in, int nq, int nk, int dim, int internal,
                              int heads, const AttentionWeights *w, float *scratch) {
    const int hd = internal / heads;
    float *q = scratch;
    float *k = q + (size_t)nq * internal;
    float *v = k + (size_t)nk * internal;
    float *o = v + (size_t)nk * internal;
    float *s = o + (size_t)nq * internal;
    linear_forward(q, q_in, w->q_proj.weight, w->q_proj.bias, nq, dim, internal);
    linear_forward(k, k_in, w->k_proj.weight, w->k_proj.bias, nk, dim, internal);
    linear_forward(v, v_in, w->v_proj.weight, w->v_proj.bias, nk, dim, internal);
    // `attn / math.sqrt(c_per_head)`: a division by the float32 scalar, as torch does.
    const float scale = (float)sqrt((double)hd);
    const size_t n_scores = (size_t)nq * nk;
    for (int h = 0; h < heads; h++) {
        // s (nq, nk) = q_h (nq, hd) @ k_h^T; the head is columns [h*hd, (h+1)*hd).
        gemm_nt(nq, nk, hd, 1.0f, q + h * hd, internal, k + h * hd, internal, 0.0f, s, nk);
        for (size_t i = 0; i < n_scores; i++) s[i] = s[i] / scale;
        softmax_rows(s, nq, nk);
        // o_h (nq, hd) = s @ v_h, written into the recombined (nq, I) layout.
        gemm_nn(nq, hd, nk, 1.0f, s, nk, v + h * hd, internal, 0.0f, o + h * hd, internal);
    }
    linear_forward(out, o, w->out_proj.weight, w->out_proj.bias, nq, internal, dim);
}

// dst = a + b elementwise (the `queries + query_pe` sums).
static void add_to(float *dst, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

// The buffers of one forward, in allocation order (shared by the size
// function and the forward so that the bound cannot drift).
typedef struct TwoWaySizes {
    size_t q_pe;      // (T, D) queries + query_pe
    size_t k_pe;      // (N, D) keys + key_pe
    size_t attn_out;  // (max(T, N), D) attention output
    size_t mlp;       // (T, mlp) MLP hidden
    size_t attn;      // attention scratch, the largest of the four attentions
} TwoWaySizes;

static void two_way_sizes(TwoWaySizes *s, const SamConfig *cfg, int T, int N) {
    const int D = cfg->prompt_dim, Ic = cfg->attn_internal_dim;
    s->q_pe = (size_t)T * D;
    s->k_pe = (size_t)N * D;
    s->attn_out = (size_t)(T > N ? T : N) * D;
    s->mlp = (size_t)T * cfg->decoder_mlp_dim;
    size_t a = attention_scratch_floats(T, T, D);           // self-attention
    size_t b = attention_scratch_floats(T, N, Ic);          // token -> image
    size_t c = attention_scratch_floats(N, T, Ic);          // image -> token
    s->attn = a > b ? a : b;
    s->attn = s->attn > c ? s->attn : c;
}

size_t two_way_transformer_scratch_floats(const SamConfig *cfg, int n_tokens, int n_image) {
    TwoWaySizes s;
    two_way_sizes(&s, cfg, n_tokens, n_image);
    return arena_rounded(s.q_pe) + arena_rounded(s.k_pe) + arena_rounded(s.attn_out) +
           arena_rounded(s.mlp) + arena_rounded(s.attn);
}

int two_way_transformer_forward(float *queries, float *keys, const float *query_pe,
                                const float *key_pe, int n_tokens, int n_image,
                                const MaskDecoderWeights *w, const SamConfig *cfg,
                                Arena *scratch, SamError *err) {
    const int T = n_tokens, N = n_image, D = cfg->prompt_dim, Ic = cfg->attn_internal_dim;
    const int heads = cfg->decoder_heads, mlp_dim = cfg->decoder_mlp_dim;
    const size_t td = (size_t)T * D, nd = (size_t)N * D;
    TwoWaySizes sz;
    two_way_sizes(&sz, cfg, T, N);
    const size_t mark = arena_mark(scratch);
    float *q_pe = arena_floats(scratch, sz.q_pe);
    float *k_pe = arena_floats(scratch, sz.k_pe);
    float *attn_out = arena_floats(scratch, sz.attn_out);
    float *hidden = arena_floats(scratch, sz.mlp);
    float *attn = arena_floats(scratch, sz.attn);
    if (!q_pe || !k_pe || !attn_out || !hidden || !attn) {
        arena_reset(scratch, mark);
        return sam_error(err, "two-way transformer: scratch arena exhausted (%zu floats needed)",
                         two_way_transformer_scratch_floats(cfg, T, N));
    }

    for (int l = 0; l < cfg->decoder_depth; l++) {
        const TwoWayBlockWeights *b = &w->layers[l];
        // Self attention. Layer 0 (skip_first_layer_pe): no PE and no
        // residual, queries = self_attn(queries, queries, queries).
        if (l == 0) {
            attention_forward(attn_out, queries, queries, queries, T, T, D, D, heads,
                              &b->self_attn, attn);
            memcpy(queries, attn_out, sizeof(float) * td);
        } else {
            add_to(q_pe, queries, query_pe, td);
            attention_forward(attn_out, q_pe, q_pe, queries, T, T, D, D, heads, &b->self_attn,
                              attn);
            add_inplace(queries, attn_out, td);
        }
        layernorm_rows(queries, queries, b->norm1.weight, b->norm1.bias, T, D, DECODER_LN_EPS);

        // Cross attention, tokens to image: q = queries + query_pe,
        // k = keys + key_pe, v = keys.
        add_to(q_pe, queries, query_pe, td);
        add_to(k_pe, keys, key_pe, nd);
        attention_forward(attn_out, q_pe, k_pe, keys, T, N, D, Ic, heads,
                          &b->cross_attn_token_to_image, attn);
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
        attention_forward(attn_out, k_pe, q_pe, queries, N, T, D, Ic, heads,
                          &b->cross_attn_image_to_token, attn);
        add_inplace(keys, attn_out, nd);
        layernorm_rows(keys, keys, b->norm4.weight, b->norm4.bias, N, D, DECODER_LN_EPS);
    }

    // Final attention from the tokens to the image, residual, norm_final_attn.
    add_to(q_pe, queries, query_pe, td);
    add_to(k_pe, keys, key_pe, nd);
    attention_forward(attn_out, q_pe, k_pe, keys, T, N, D, Ic, heads, &w->final_attn_token_to_image,
                      attn);
    add_inplace(queries, attn_out, td);
    layernorm_rows(queries, queries, w->norm_final_attn.weight, w->norm_final_attn.bias, T, D,
                   DECODER_LN_EPS);

    arena_reset(scratch, mark);
    return 0;
}
