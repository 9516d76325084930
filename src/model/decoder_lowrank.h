// The two-way transformer for prompts without a mask input, with the image
// tokens never formed. In block l the image tokens are
//   keys_l = r_l (.) A_l + Y_l U_l,   A_l = keys_0 diag(G_l),
// where keys_0 (N, D) is the image embedding plus the no-mask embedding
// (the same for every prompt of an image), G_l the product of the norm4
// gains of the blocks before l, r_l (N) a per-row scale, and Y_l (N, R_l)
// U_l (R_l, D) a correction of rank R_l <= l (H T + 2) made of the
// image-to-token attention probabilities (H T per block, a few dozen for a
// click) and two columns per LayerNorm. Every product of A_l with a
// projection goes through products computed once per image (LowRankImage),
// and every product of the correction costs N R_l per vector instead of
// N D. decoder_lowrank.c derives each step.
#ifndef SAM_MODEL_DECODER_LOWRANK_H
#define SAM_MODEL_DECODER_LOWRANK_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "../kernels/kernels.h"
#include "config.h"
#include "weights.h"

// An (N, I) per-image or per-model matrix whose head slices (N, hd) are
// the right operand of score products x_h (T, hd) @ M_h^T with a few
// prompt rows: held packed per head for the GEMM (packing it per product
// costs as much as the product) when the GEMM variant packs and the heads
// fit, else as is.
#define SAM_MAX_PACKED_HEADS 16
typedef struct HeadSlices {
    const float *full;  // (N, I), NULL when packed
    GemmPackedB head[SAM_MAX_PACKED_HEADS];
} HeadSlices;

// Per model: the dense positional encoding through the image-side key
// projections of the token-to-image attentions (index L: the final
// attention) and the query projections of the image-to-token attentions,
// for blocks 1 .. L (block 0's per-image products include it).
typedef struct LowRankModel {
    HeadSlices pe_k[SAM_MAX_DECODER_DEPTH + 1];  // key_pe @ W_k^T
    HeadSlices pe_q[SAM_MAX_DECODER_DEPTH];      // key_pe @ W_q^T
} LowRankModel;

size_t lowrank_model_floats(const SamConfig *cfg);
// key_pe: (N, D) token-major; scratch: lowrank_model_scratch_floats.
size_t lowrank_model_scratch_floats(const SamConfig *cfg);
void lowrank_model_init(LowRankModel *m, float *buffer, const float *key_pe,
                        const MaskDecoderWeights *w, const SamConfig *cfg, float *scratch);

// Per image and block l (biases left out: decoder_lowrank.c says where
// each enters). B_{l,j} (N, D) are the centred rows of A_l pulled back
// through the norms of blocks l-1 .. j (B_{l,l} = A_l - row means,
// B_{l,j} = centre(B_{l,j+1} diag(gamma_j))).
typedef struct LowRankBlock {
    const float *mean, *var;  // (N) row mean and (biased) variance of A_l
    HeadSlices k;             // A_l W_k^T of the token-to-image attention
                              // (block L: the final attention; block 0:
                              // (A_0 + key_pe) W_k^T, and likewise q)
    const float *v_t;         // (I, N) (A_l W_v^T)^T of the same, for gemm_dot
    HeadSlices q;             // A_l W_q^T of the image-to-token attention
    HeadSlices cov_o[SAM_MAX_DECODER_DEPTH];        // j <= l: B_{l,j} W_o(j)
    const float *cov_ob[SAM_MAX_DECODER_DEPTH];     // j <= l: (N) B_{l,j} . b_o(j)
    const float *cov_gamma[SAM_MAX_DECODER_DEPTH];  // j < l: (N) B_{l,j+1} . gamma_j
    const float *cov_beta[SAM_MAX_DECODER_DEPTH];   // j < l: (N) B_{l,j+1} . beta_j
} LowRankBlock;

typedef struct LowRankImage {
    LowRankBlock block[SAM_MAX_DECODER_DEPTH + 1];
    const float *upscale;  // (E, N) upscale_w A_L^T, the first upscaling convolution
} LowRankImage;

size_t lowrank_image_floats(const SamConfig *cfg);
size_t lowrank_image_scratch_floats(const SamConfig *cfg);
// keys: keys_0 (N, D); key_pe (N, D); upscale_w: (E, D) with E = 4 upscale_dim1.
void lowrank_image_compute(LowRankImage *img, float *buffer, const float *keys,
                           const float *key_pe, const float *upscale_w,
                           const MaskDecoderWeights *w, const SamConfig *cfg, float *scratch);

// Whether the factored form costs fewer multiply-adds than forming the
// image tokens, for n_tokens prompt tokens (true up to a number of tokens,
// false beyond it).
int lowrank_pays(int n_tokens, const SamConfig *cfg);
// Arena floats lowrank_forward takes for n_tokens tokens.
size_t lowrank_forward_scratch_floats(const SamConfig *cfg, int n_tokens);

// The transformer of two_way_transformer_forward (same queries, query_pe,
// out_rows) on keys_0 given by img, followed by the first upscaling
// convolution: u1 (E, N) = upscale_w keys_L^T + upscale_b, the keys never
// being formed. Scratch is returned to the arena on exit.
int lowrank_forward(float *queries, float *u1, const float *query_pe, int n_tokens,
                    const int *out_rows, int n_out_rows, const LowRankImage *img,
                    const LowRankModel *model, const float *upscale_w, const float *upscale_b,
                    const MaskDecoderWeights *w, const SamConfig *cfg, Arena *scratch,
                    SamError *err);

// Block 0 alone from the per-image products, for prompts with too many
// tokens for the factored form: queries (T, D) as block 0 leaves them, and
// keys (N, D), given as keys_0, replaced by block 0's output tokens (then
// two_way_transformer_forward continues from block 1). The products with
// the image tokens that do not depend on the prompt are not redone.
size_t lowrank_first_block_scratch_floats(const SamConfig *cfg, int n_tokens);
int lowrank_first_block(float *queries, float *keys, const float *query_pe, int n_tokens,
                        const LowRankImage *img, const MaskDecoderWeights *w,
                        const SamConfig *cfg, Arena *scratch, SamError *err);

#endif
