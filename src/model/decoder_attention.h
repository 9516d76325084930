// The attention of SAM's mask decoder (segment_anything/modeling/transformer.py,
// Attention) in three forms that compute the same function:
//  - attention_reference: the straightforward transcription (project q, k, v
//    to the internal width, softmax(q k^T / sqrt(head_dim)) v per head,
//    out_proj). The specification; tests compare the others against it.
//  - tokens -> image (a few queries, thousands of keys) and image -> tokens
//    (thousands of queries, a few keys) rearranged so that the image side is
//    touched only by D-wide dot products with heads * tokens vectors instead
//    of being projected to the internal width (decoder_attention.c derives
//    each identity). Each falls back to the reference form when the
//    rearrangement would cost more (many tokens).
//  - with the image-side projections computed once per image (the first
//    block of the decoder, where the image side does not depend on the
//    prompt).
// Tokens are rows: (count, dim) row-major. Weights are nn.Linear (out, in).
#ifndef SAM_MODEL_DECODER_ATTENTION_H
#define SAM_MODEL_DECODER_ATTENTION_H

#include <stddef.h>

#include "../kernels/kernels.h"
#include "weights.h"

typedef struct AttentionDims {
    int dim;       // D: width of the tokens (embedding_dim)
    int internal;  // I: width of q, k, v (dim / downsample_rate)
    int heads;     // H; head_dim = I / H
} AttentionDims;

// out (nq, D) = Attention(q_in (nq, D), k_in (nk, D), v_in (nk, D)).
size_t attention_reference_scratch_floats(int nq, int nk, AttentionDims d);
void attention_reference(float *out, const float *q_in, const float *k_in, const float *v_in,
                         int nq, int nk, AttentionDims d, const AttentionWeights *w,
                         float *scratch);

// out (T, D) = Attention(q_in (T, D), k_in (N, D), v_in (N, D)) for few
// tokens T and many image positions N. allow_folding 0 forces the
// reference form. k_packed: NULL, or k_in packed by gemm_pack_b (trans_b 1).
size_t attention_to_image_scratch_floats(int T, int N, AttentionDims d);
void attention_to_image(float *out, const float *q_in, const float *k_in,
                        const GemmPackedB *k_packed, const float *v_in, int T, int N,
                        AttentionDims d, const AttentionWeights *w, int allow_folding,
                        float *scratch);

// The same with the image-side projections given: k (N, I) = k_proj(k_in)
// and v (N, I) = v_proj(v_in), biases included; k_heads and v_heads (NULL,
// or one per head) are their head slices packed (k: trans_b 1, v: 0).
size_t attention_to_projected_image_scratch_floats(int T, int N, AttentionDims d);
void attention_to_projected_image(float *out, const float *q_in, const float *k, const float *v,
                                  const GemmPackedB *k_heads, const GemmPackedB *v_heads, int T,
                                  int N, AttentionDims d, const AttentionWeights *w,
                                  float *scratch);

// A linear projection of the image rows kept up to date with them:
// rows (N, e) = image (N, D) @ w (D, e).
typedef struct ImageProjection {
    float *rows;
    const float *w;
    int e;
} ImageProjection;

// image (N, D) += Attention(q_in (N, D), k_in (T, D), v_in (T, D)): the
// image-to-token attention with its residual add. q_projected, when not
// NULL, is q_proj(q_in) (N, I) computed beforehand (q_in is then unused).
// q_in_packed / q_projected_heads (NULL or packed with trans_b 1, the latter
// one per head) let the products skip packing those.
// proj, when not NULL, receives the same update: proj->rows += update @
// proj->w (N H T e multiply-adds in the rearranged form instead of N D e).
size_t attention_from_image_scratch_floats(int T, int N, AttentionDims d, int proj_e);
void attention_from_image_add(float *image, const float *q_in, const GemmPackedB *q_in_packed,
                              const float *q_projected, const GemmPackedB *q_projected_heads,
                              const float *k_in, const float *v_in, int T, int N, AttentionDims d,
                              const AttentionWeights *w, int allow_folding,
                              const ImageProjection *proj, float *scratch);

// Whether the rearranged forms cost less than the reference for T tokens.
int attention_folding_pays(int T, AttentionDims d);

#endif
