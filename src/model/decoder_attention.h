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

// image (N, D) += Attention(q_in (N, D), k_in (T, D), v_in (T, D)): the
// image-to-token attention with its residual add. q_in_packed (NULL or
// packed with trans_b 1) lets the product skip packing q_in.
size_t attention_from_image_scratch_floats(int T, int N, AttentionDims d);
void attention_from_image_add(float *image, const float *q_in, const GemmPackedB *q_in_packed,
                              const float *k_in, const float *v_in, int T, int N, AttentionDims d,
                              const AttentionWeights *w, int allow_folding, float *scratch);

// The values of the rearranged image-to-token attention through its output
// projection (decoder_attention.c derives them): g (H T, D), row h T + t =
// W_o[:, h] v_{t,h} + b_o / H, for v (T, I) = v_proj of the tokens.
void attention_output_values(float *g, const float *v, int T, AttentionDims d,
                             const AttentionWeights *w);

// Whether the rearranged forms cost less than the reference for T tokens.
int attention_folding_pays(int T, AttentionDims d);

#endif
