// SAM's TwoWayTransformer (segment_anything/modeling/transformer.py): the
// body of the mask decoder. Internal to src/model; mask_decoder.c calls it.
#ifndef SAM_MODEL_TWO_WAY_TRANSFORMER_H
#define SAM_MODEL_TWO_WAY_TRANSFORMER_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "../kernels/kernels.h"
#include "config.h"
#include "weights.h"

// DECODER_PATH_FAST uses the rearranged attentions of decoder_attention.c
// where they pay and the precomputed first-block projections when given;
// DECODER_PATH_REFERENCE is the straightforward transcription (tests).
typedef enum DecoderPath { DECODER_PATH_FAST = 0, DECODER_PATH_REFERENCE = 1 } DecoderPath;

// The image-side projections of block 0, which do not depend on the prompt
// when the dense prompt is the no-mask embedding: computed once per image.
#define SAM_MAX_PACKED_HEADS 16
typedef struct FirstBlockProjections {
    const float *token_to_image_k;  // (N, I) k_proj(keys + key_pe)
    const float *token_to_image_v;  // (N, I) v_proj(keys)
    const float *image_to_token_q;  // (N, I) q_proj(keys + key_pe)
    // Each head's slice packed for the GEMMs (gemm_pack_b), when packed.
    int packed;
    GemmPackedB k_heads[SAM_MAX_PACKED_HEADS];
    GemmPackedB v_heads[SAM_MAX_PACKED_HEADS];
    GemmPackedB q_heads[SAM_MAX_PACKED_HEADS];
} FirstBlockProjections;

size_t first_block_projections_floats(const SamConfig *cfg);
// keys, key_pe: (N, D) token-major; buffer holds
// first_block_projections_floats(cfg) floats; k_pe: (N, D) scratch.
void first_block_projections_compute(FirstBlockProjections *out, float *buffer, const float *keys,
                                     const float *key_pe, const MaskDecoderWeights *w,
                                     const SamConfig *cfg, float *k_pe);

// A projection keys @ W (W: (D, e)) carried through the blocks, so that
// the final keys' projection (the first upscaling convolution, mask_decoder.c)
// costs no (N, D) @ (D, e) product per prompt. Through block l the keys
// change by the image-to-token update (low rank: H T) and by norm4; with
// M_l = diag(gamma_l) M_{l+1}, M_L = W, and rows = keys_l @ M_l on entry:
//   x = keys_l + update:  rows += update @ M_l (ImageProjection),
//   LN(x) @ M_{l+1} = rstd (x @ M_l - mean colsum(M_l)) + beta_l M_{l+1},
// so rows = keys_L @ W at the end. The caller starts rows as keys_0 @ M_0.
typedef struct KeysProjection {
    float *rows;  // (N, e)
    int e;
    const float *m[SAM_MAX_DECODER_DEPTH];          // (D, e) M_l
    const float *colsum[SAM_MAX_DECODER_DEPTH];     // (e) 1^T M_l
    const float *beta_next[SAM_MAX_DECODER_DEPTH];  // (e) beta_l M_{l+1}
} KeysProjection;

// Per-model part: buffer of keys_projection_model_floats(cfg) floats (for
// e = 4 upscale_dim1); w (D, e). rows is left NULL for the caller.
size_t keys_projection_model_floats(const SamConfig *cfg);
void keys_projection_init(KeysProjection *p, float *buffer, const float *w, int e,
                          const MaskDecoderWeights *mw, const SamConfig *cfg);

// Arena floats two_way_transformer_forward takes (an upper bound that
// includes the arena's 64-byte alignment of each allocation).
size_t two_way_transformer_scratch_floats(const SamConfig *cfg, int n_tokens, int n_image);

// queries: (n_tokens, D), in: the prompt tokens, out: the processed tokens
// (after norm_final_attn). keys: (n_image, D) image tokens (image embedding
// + dense prompt, token-major), processed in place. query_pe: the original
// tokens (point_embedding), key_pe: (n_image, D) the dense positional
// encoding, token-major. out_rows (n_out_rows, ascending; NULL: all): the
// query rows the caller reads (the fast path leaves the others without the
// final attention). first: NULL, or block 0's projections of these keys. projection:
// NULL, or a KeysProjection whose rows are updated in place. Scratch is
// returned to the arena on exit.
int two_way_transformer_forward(float *queries, float *keys, const float *query_pe,
                                const float *key_pe, int n_tokens, int n_image,
                                const int *out_rows, int n_out_rows,
                                const FirstBlockProjections *first,
                                const KeysProjection *projection, DecoderPath path,
                                const MaskDecoderWeights *w, const SamConfig *cfg, Arena *scratch,
                                SamError *err);

#endif
