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
// where they pay; DECODER_PATH_REFERENCE is the straightforward
// transcription (tests).
typedef enum DecoderPath { DECODER_PATH_FAST = 0, DECODER_PATH_REFERENCE = 1 } DecoderPath;

// The token side of block l, shared with decoder_lowrank.c: the
// self-attention with its residual (none in block 0) and norm1; the MLP
// with its residual and norm3. queries (T, D) in place; scratch:
// two_way_tokens_scratch_floats(cfg, T).
size_t two_way_tokens_scratch_floats(const SamConfig *cfg, int n_tokens);
void two_way_self_attention(float *queries, const float *query_pe, int n_tokens, int l,
                            const MaskDecoderWeights *w, const SamConfig *cfg, float *scratch);
void two_way_mlp(float *queries, int n_tokens, const TwoWayBlockWeights *b, const SamConfig *cfg,
                 float *scratch);

// Arena floats two_way_transformer_forward takes (an upper bound that
// includes the arena's 64-byte alignment of each allocation).
size_t two_way_transformer_scratch_floats(const SamConfig *cfg, int n_tokens, int n_image);

// queries: (n_tokens, D), in: the prompt tokens, out: the processed tokens
// (after norm_final_attn). keys: (n_image, D) image tokens (image embedding
// + dense prompt, token-major), processed in place. query_pe: the original
// tokens (point_embedding), key_pe: (n_image, D) the dense positional
// encoding, token-major. out_rows (n_out_rows, ascending; NULL: all): the
// query rows the caller reads (the fast path leaves the others without the
// final attention). first_block: 0, or the block to start from when the
// caller has run the earlier ones (queries and keys are then their
// output). Scratch is returned to the arena on exit.
int two_way_transformer_forward(float *queries, float *keys, const float *query_pe,
                                const float *key_pe, int n_tokens, int n_image,
                                const int *out_rows, int n_out_rows, int first_block,
                                DecoderPath path,
                                const MaskDecoderWeights *w, const SamConfig *cfg, Arena *scratch,
                                SamError *err);

#endif
