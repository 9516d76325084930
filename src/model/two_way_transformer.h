// SAM's TwoWayTransformer (segment_anything/modeling/transformer.py): the
// body of the mask decoder. Internal to src/model; mask_decoder.c calls it.
#ifndef SAM_MODEL_TWO_WAY_TRANSFORMER_H
#define SAM_MODEL_TWO_WAY_TRANSFORMER_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "config.h"
#include "weights.h"

// DECODER_PATH_FAST uses the rearranged attentions of decoder_attention.c
// where they pay and the precomputed first-block projections when given;
// DECODER_PATH_REFERENCE is the straightforward transcription (tests).
typedef enum DecoderPath { DECODER_PATH_FAST = 0, DECODER_PATH_REFERENCE = 1 } DecoderPath;

// The image-side projections of block 0, which do not depend on the prompt
// when the dense prompt is the no-mask embedding: computed once per image.
typedef struct FirstBlockProjections {
    const float *token_to_image_k;  // (N, I) k_proj(keys + key_pe)
    const float *token_to_image_v;  // (N, I) v_proj(keys)
    const float *image_to_token_q;  // (N, I) q_proj(keys + key_pe)
} FirstBlockProjections;

size_t first_block_projections_floats(const SamConfig *cfg);
// keys, key_pe: (N, D) token-major; buffer holds
// first_block_projections_floats(cfg) floats; k_pe: (N, D) scratch.
void first_block_projections_compute(FirstBlockProjections *out, float *buffer, const float *keys,
                                     const float *key_pe, const MaskDecoderWeights *w,
                                     const SamConfig *cfg, float *k_pe);

// Arena floats two_way_transformer_forward takes (an upper bound that
// includes the arena's 64-byte alignment of each allocation).
size_t two_way_transformer_scratch_floats(const SamConfig *cfg, int n_tokens, int n_image);

// queries: (n_tokens, D), in: the prompt tokens, out: the processed tokens
// (after norm_final_attn). keys: (n_image, D) image tokens (image embedding
// + dense prompt, token-major), processed in place. query_pe: the original
// tokens (point_embedding), key_pe: (n_image, D) the dense positional
// encoding, token-major. n_out_tokens: the leading query rows the caller
// reads (the fast path leaves later rows without the final attention; 0:
// all). first: NULL, or block 0's projections of these keys. Scratch is
// returned to the arena on exit.
int two_way_transformer_forward(float *queries, float *keys, const float *query_pe,
                                const float *key_pe, int n_tokens, int n_image,
                                int n_out_tokens, const FirstBlockProjections *first,
                                DecoderPath path, const MaskDecoderWeights *w,
                                const SamConfig *cfg, Arena *scratch, SamError *err);

#endif
