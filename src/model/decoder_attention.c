// Attention of the mask decoder (transformer.py, Attention) in its reference
// form and rearranged for the decoder's shapes: T prompt tokens (about 7 for
// one click) against N = 4096 image positions, D = 256, internal width I =
// 128 in H = 8 heads. The reference projects all N image rows to I (2 N D I
// multiply-adds per attention); the rearranged forms instead form H T
// vectors of width D from the prompt side and touch the image rows with
// those (2 N H T D), which is less whenever H T D < I (D + T).
//
// Notation: x W^T + b is nn.Linear; W[h] is the block of rows h*hd ..
// (h+1)*hd - 1 of W (the head's slice of the output channels); s = sqrt(hd).
#include "decoder_attention.h"

#include <math.h>
#include <string.h>

#include "../kernels/kernels.h"

static int head_dim(AttentionDims d) { return d.internal / d.heads; }

// `attn / math.sqrt(c_per_head)`: a division by the float32 scalar, as torch does.
static float score_divisor(AttentionDims d) { return (float)sqrt((double)head_dim(d)); }

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// The cost model of the rearrangement (see the top of the file).
int attention_folding_pays(int T, AttentionDims d) {
    return (double)d.heads * T * d.dim < (double)d.internal * (d.dim + T);
}

// ---------------------------------------------------------------------------
// Reference

size_t attention_reference_scratch_floats(int nq, int nk, AttentionDims d) {
    // q (nq, I), k (nk, I), v (nk, I), heads' output (nq, I), one head's scores (nq, nk).
    return (size_t)2 * nq * d.internal + (size_t)2 * nk * d.internal + (size_t)nq * nk;
}

// Attention.forward(q, k, v): project to the internal width, split into
// `heads` contiguous channel blocks (_separate_heads), softmax(q k^T / s) v
// per head, recombine, out_proj.
void attention_reference(float *out, const float *q_in, const float *k_in, const float *v_in,
                         int nq, int nk, AttentionDims d, const AttentionWeights *w,
                         float *scratch) {
    const int D = d.dim, I = d.internal, hd = head_dim(d);
    float *q = scratch;
    float *k = q + (size_t)nq * I;
    float *v = k + (size_t)nk * I;
    float *o = v + (size_t)nk * I;
    float *s = o + (size_t)nq * I;
    linear_apply(q, q_in, &w->q_proj, nq, D, I);
    linear_apply(k, k_in, &w->k_proj, nk, D, I);
    linear_apply(v, v_in, &w->v_proj, nk, D, I);
    const float divisor = score_divisor(d);
    const size_t n_scores = (size_t)nq * nk;
    for (int h = 0; h < d.heads; h++) {
        // s (nq, nk) = q_h (nq, hd) @ k_h^T; the head is columns [h*hd, (h+1)*hd).
        gemm_nt(nq, nk, hd, 1.0f, q + h * hd, I, k + h * hd, I, 0.0f, s, nk);
        for (size_t i = 0; i < n_scores; i++) s[i] = s[i] / divisor;
        softmax_rows(s, nq, nk);
        // o_h (nq, hd) = s @ v_h, written into the recombined (nq, I) layout.
        gemm_nn(nq, hd, nk, 1.0f, s, nk, v + h * hd, I, 0.0f, o + h * hd, I);
    }
    linear_apply(out, o, &w->out_proj, nq, I, D);
}

// ---------------------------------------------------------------------------
// Tokens -> image

static size_t folded_to_image_floats(int T, int N, AttentionDims d) {
    const size_t HT = (size_t)d.heads * T;
    // q (T, I), a (HT, D), scores (HT, N), u (HT, D), o (T, I)
    return (size_t)2 * T * d.internal + 2 * HT * d.dim + HT * N;
}

size_t attention_to_image_scratch_floats(int T, int N, AttentionDims d) {
    const size_t a = attention_reference_scratch_floats(T, N, d), b = folded_to_image_floats(T, N, d);
    return a > b ? a : b;
}

// With q = q_in W_q^T + b_q, the score of token t and image row n in head h
// is
//   q_{t,h} . (W_k[h] k_n + b_k[h]) / s = (k_n . a_{h,t} + c_{h,t}) / s,
//   a_{h,t} = W_k[h]^T q_{t,h} (width D),  c_{h,t} = b_k[h] . q_{t,h},
// so the key projection of the N image rows is never formed; c_{h,t} is the
// same for every n, and the softmax over n does not change when a constant
// is added to all its inputs, so it is dropped (the key bias has no effect
// here; only rounding differs). With p the
// softmax of those scores over n (sum_n p_n = 1), the head's output is
//   sum_n p_n (W_v[h] v_n + b_v[h]) = W_v[h] u_{h,t} + b_v[h],
//   u_{h,t} = sum_n p_n v_n (width D),
// so the value projection is applied to H T vectors instead of N rows.
void attention_to_image(float *out, const float *q_in, const float *k_in,
                        const GemmPackedB *k_packed, const float *v_in, int T, int N,
                        AttentionDims d, const AttentionWeights *w, int allow_folding,
                        float *scratch) {
    if (!allow_folding || !attention_folding_pays(T, d)) {
        attention_reference(out, q_in, k_in, v_in, T, N, d, w, scratch);
        return;
    }
    const int D = d.dim, I = d.internal, H = d.heads, hd = head_dim(d), HT = H * T;
    float *q = scratch;
    float *a = q + (size_t)T * I;
    float *s = a + (size_t)HT * D;
    float *u = s + (size_t)HT * N;
    float *o = u + (size_t)HT * D;
    linear_apply(q, q_in, &w->q_proj, T, D, I);
    // a_h (T, D) = q_h (T, hd) @ W_k[h] (hd, D)
    for (int h = 0; h < H; h++)
        gemm_nn(T, D, hd, 1.0f, q + h * hd, I, w->k_proj.weight + (size_t)h * hd * D, D, 0.0f,
                a + (size_t)h * T * D, D);
    // scores (HT, N) = a @ k_in^T / s, softmax over the image.
    if (k_packed)
        gemm_packed_b(HT, N, D, 1.0f, a, D, k_packed, 0.0f, s, N);
    else
        gemm_nt(HT, N, D, 1.0f, a, D, k_in, D, 0.0f, s, N);
    const float divisor = score_divisor(d);
    const size_t n_scores = (size_t)HT * N;
    for (size_t i = 0; i < n_scores; i++) s[i] = s[i] / divisor;
    softmax_rows(s, HT, N);
    // u (HT, D) = p @ v_in
    gemm_nn(HT, D, N, 1.0f, s, N, v_in, D, 0.0f, u, D);
    // o_{t,h} = W_v[h] u_{h,t} + b_v[h]: o_h (T, hd) = u_h (T, D) @ W_v[h]^T + b_v[h]
    for (int t = 0; t < T; t++) memcpy(o + (size_t)t * I, w->v_proj.bias, sizeof(float) * I);
    for (int h = 0; h < H; h++)
        gemm_nt(T, hd, D, 1.0f, u + (size_t)h * T * D, D, w->v_proj.weight + (size_t)h * hd * D, D,
                1.0f, o + h * hd, I);
    linear_apply(out, o, &w->out_proj, T, I, D);
}

// ---------------------------------------------------------------------------
// Image -> tokens

size_t attention_from_image_scratch_floats(int T, int N, AttentionDims d) {
    const size_t HT = (size_t)d.heads * T, I = (size_t)d.internal, D = (size_t)d.dim;
    // k, v (T, I); scores (HT, N); then the larger of: the folded query
    // vectors (HT, D) + (HT), or the value vectors (HT, D); the reference
    // form's q or o (N, I) and its projected output (N, D).
    const size_t folded = HT * D + HT;
    const size_t reference = (size_t)N * (I + D);
    return 2 * (size_t)T * I + (size_t)N * HT + (folded > reference ? folded : reference);
}

void attention_output_values(float *g, const float *v, int T, AttentionDims d,
                             const AttentionWeights *w) {
    const int D = d.dim, I = d.internal, H = d.heads, hd = head_dim(d);
    const float inv_heads = 1.0f / (float)H;
    for (int h = 0; h < H; h++) {
        // g_h (T, D) = v_h (T, hd) @ W_o[:, h]^T + b_o / H; W_o is (D, I),
        // its head columns (D, hd).
        for (int t = 0; t < T; t++)
            for (int j = 0; j < D; j++) g[((size_t)h * T + t) * D + j] = w->out_proj.bias[j] * inv_heads;
        gemm_nt(T, D, hd, 1.0f, v + h * hd, I, w->out_proj.weight + h * hd, I, 1.0f,
                g + (size_t)h * T * D, D);
    }
}

// With k = k_in W_k^T + b_k and v = v_in W_v^T + b_v (T rows each), the
// score of image row n and token t in head h is
//   (W_q[h] x_n + b_q[h]) . k_{t,h} / s = (x_n . b_{h,t} + e_{h,t}) / s,
//   b_{h,t} = W_q[h]^T k_{t,h} (width D),  e_{h,t} = b_q[h] . k_{t,h},
// so the N query rows are never projected. With p_{n,h,t} the softmax over
// t, the output row is
//   W_o [sum_t p_{n,h,t} v_{t,h}]_h + b_o = sum_{h,t} p_{n,h,t} g_{h,t} + b_o,
//   g_{h,t} = W_o[:, h] v_{t,h} (width D; W_o[:, h] the head's columns),
// so the output projection of the N rows becomes one (N, HT) @ (HT, D)
// product, accumulated straight into the image rows. The scores are stored
// transposed, (HT, N) with row h T + t: each (image row, head) softmax over
// T tokens is then a softmax down a column, across the vector lanes
// (softmax_cols), and the products read them through gemm_tn.
void attention_from_image_add(float *image, const float *q_in, const GemmPackedB *q_in_packed,
                              const float *k_in, const float *v_in, int T, int N, AttentionDims d,
                              const AttentionWeights *w, int allow_folding, float *scratch) {
    const int D = d.dim, I = d.internal, H = d.heads, hd = head_dim(d), HT = H * T;
    const int fold = allow_folding && attention_folding_pays(T, d);
    float *k = scratch;
    float *v = k + (size_t)T * I;
    float *st = v + (size_t)T * I;  // (HT, N)
    float *rest = st + (size_t)N * HT;
    linear_apply(k, k_in, &w->k_proj, T, D, I);
    linear_apply(v, v_in, &w->v_proj, T, D, I);

    if (fold) {
        float *bq = rest;                      // (HT, D)
        float *e = bq + (size_t)HT * D;        // (HT)
        for (int h = 0; h < H; h++) {
            // b_h (T, D) = k_h (T, hd) @ W_q[h] (hd, D)
            gemm_nn(T, D, hd, 1.0f, k + h * hd, I, w->q_proj.weight + (size_t)h * hd * D, D, 0.0f,
                    bq + (size_t)h * T * D, D);
            for (int t = 0; t < T; t++)
                e[h * T + t] = dot(w->q_proj.bias + h * hd, k + (size_t)t * I + h * hd, hd);
        }
        if (q_in_packed)
            gemm_packed_b(HT, N, D, 1.0f, bq, D, q_in_packed, 0.0f, st, N);
        else
            gemm_nt(HT, N, D, 1.0f, bq, D, q_in, D, 0.0f, st, N);
        for (int r = 0; r < HT; r++) {
            float *row = st + (size_t)r * N;
            for (int n = 0; n < N; n++) row[n] += e[r];
        }
    } else {
        float *q = rest;  // (N, I)
        linear_apply(q, q_in, &w->q_proj, N, D, I);
        // scores_h^T (T, N) = k_h (T, hd) @ q_h^T
        for (int h = 0; h < H; h++)
            gemm_nt(T, N, hd, 1.0f, k + h * hd, I, q + h * hd, I, 0.0f, st + (size_t)h * T * N, N);
    }
    const float divisor = score_divisor(d);
    const size_t n_scores = (size_t)N * HT;
    for (size_t i = 0; i < n_scores; i++) st[i] = st[i] / divisor;
    for (int h = 0; h < H; h++) softmax_cols(st + (size_t)h * T * N, T, N);

    if (fold) {
        // Each head's probabilities sum to 1 over t, so the output bias is
        // sum_{h,t} p_{n,h,t} b_o / H: added to every g_{h,t} as b_o / H, it
        // needs no pass over the N rows of its own.
        float *g = rest;  // (HT, D); the query vectors above are no longer needed
        attention_output_values(g, v, T, d, w);
        gemm_tn(N, D, HT, 1.0f, st, N, g, D, 1.0f, image, D);
    } else {
        float *o = rest;                       // (N, I)
        float *out = o + (size_t)N * I;        // (N, D)
        // o_h (N, hd) = p_h (N, T) @ v_h, p_h^T stored (T, N)
        for (int h = 0; h < H; h++)
            gemm_tn(N, hd, T, 1.0f, st + (size_t)h * T * N, N, v + h * hd, I, 0.0f, o + h * hd, I);
        linear_apply(out, o, &w->out_proj, N, I, D);
        add_inplace(image, out, (size_t)N * D);
    }
}
