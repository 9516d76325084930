// SAM mask decoder (segment_anything/modeling/mask_decoder.py and
// transformer.py: TwoWayTransformer, final attention, output upscaling,
// hypernetwork MLPs, IoU head).
#ifndef SAM_MODEL_MASK_DECODER_H
#define SAM_MODEL_MASK_DECODER_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "config.h"
#include "decoder_lowrank.h"
#include "two_way_transformer.h"
#include "weights.h"

size_t mask_decoder_scratch_floats(const SamConfig *cfg, int n_sparse);

// Per-model data derived from the weights once: the dense positional
// encoding token-major (and through the attentions' image-side
// projections, decoder_lowrank.h), the upscaling weights in the layout of
// mask_decoder.c, and a copy of the weights whose token-side linear layers
// (applied to the few prompt tokens in every prompt) are packed for the
// GEMM once. plan_init returns -1 when out of memory.
typedef struct MaskDecoderPlan {
    MaskDecoderWeights weights;  // what mask_decoder_forward uses
    GemmPackedB *packs;
    float *pack_buffer;
    float *buffer;
    const float *key_pe;      // (N, D) get_dense_pe(), token-major
    const float *upscale1_w;  // (4 C1, D), rows (tap, channel)
    const float *upscale1_b;  // (4 C1)
    const float *upscale2_w;  // (4 C2, C1), rows (tap, channel)
    LowRankModel lowrank;
} MaskDecoderPlan;

// dense_pe: (D, G, G) PromptEncoder.get_dense_pe().
int mask_decoder_plan_init(MaskDecoderPlan *plan, const float *dense_pe,
                           const MaskDecoderWeights *w, const SamConfig *cfg);
void mask_decoder_plan_free(MaskDecoderPlan *plan);

// What every prompt without a mask input shares for one image: the image
// tokens with the no-mask dense embedding added, and their products with
// the decoder's image-side projections (decoder_lowrank.h).
typedef struct DecoderImageState {
    const float *keys;  // (N, D) image_embedding + no_mask_embed, token-major
    LowRankImage lowrank;
} DecoderImageState;

size_t mask_decoder_image_state_floats(const SamConfig *cfg);
size_t mask_decoder_prepare_scratch_floats(const SamConfig *cfg);
// buffer: mask_decoder_image_state_floats(cfg) floats, owned by the caller
// (st points into it); image_embedding (D, G, G); no_mask_embed (D);
// scratch: mask_decoder_prepare_scratch_floats.
void mask_decoder_prepare_image(DecoderImageState *st, float *buffer, const float *image_embedding,
                                const float *no_mask_embed, const MaskDecoderPlan *plan,
                                const MaskDecoderWeights *w, const SamConfig *cfg, float *scratch);

// image_embedding, dense: (prompt_dim, grid, grid), or state (then both are
// unused: the dense prompt is the no-mask embedding). sparse: (n_sparse,
// prompt_dim).
// masks: (n_masks, 4*grid, 4*grid) low-res logits of mask tokens
// first_mask .. first_mask + n_masks - 1 (MaskDecoder.forward takes 1..3
// for multimask output, 0 otherwise); iou: (num_mask_tokens), all tokens.
// stage_ms, when not NULL, receives the wall time of the transformer (with
// the first upscaling convolution when the image tokens stay factored) and
// of the upscaling with the heads (2 floats). The weights are the plan's.
int mask_decoder_forward(float *masks, float *iou, const float *image_embedding,
                         const float *dense, const DecoderImageState *state,
                         const MaskDecoderPlan *plan, const float *sparse, int n_sparse,
                         int first_mask, int n_masks, DecoderPath path, const SamConfig *cfg,
                         Arena *scratch, float *stage_ms, SamError *err);

#endif
