// SAM's TwoWayTransformer (segment_anything/modeling/transformer.py): the
// body of the mask decoder. Internal to src/model; mask_decoder.c calls it.
#ifndef SAM_MODEL_TWO_WAY_TRANSFORMER_H
#define SAM_MODEL_TWO_WAY_TRANSFORMER_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "config.h"
#include "weights.h"

// Arena floats two_way_transformer_forward takes (an upper bound that
// includes the arena's 64-byte alignment of each allocation).
size_t two_way_transformer_scratch_floats(const SamConfig *cfg, int n_tokens, int n_image);

// queries: (n_tokens, D), in: the prompt tokens, out: the processed tokens
// (after norm_final_attn). keys: (n_image, D) image tokens (image embedding
// + dense prompt, token-major), processed in place. query_pe: the original
// tokens (point_embedding), key_pe: (n_image, D) the dense positional
// encoding, token-major. Scratch is returned to the arena on exit.
int two_way_transformer_forward(float *queries, float *keys, const float *query_pe,
                                const float *key_pe, int n_tokens, int n_image,
                                const MaskDecoderWeights *w, const SamConfig *cfg,
                                Arena *scratch, SamError *err);

#endif
