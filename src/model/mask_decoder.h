// SAM mask decoder (segment_anything/modeling/mask_decoder.py and
// transformer.py: TwoWayTransformer, final attention, output upscaling,
// hypernetwork MLPs, IoU head).
#ifndef SAM_MODEL_MASK_DECODER_H
#define SAM_MODEL_MASK_DECODER_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "config.h"
#include "weights.h"

size_t mask_decoder_scratch_floats(const SamConfig *cfg, int n_sparse);

// image_embedding, image_pe, dense: (prompt_dim, grid, grid).
// sparse: (n_sparse, prompt_dim).
// masks: (num_mask_tokens, 4*grid, 4*grid) low-res logits for every mask
// token; iou: (num_mask_tokens). The caller selects tokens 1.. (multimask)
// or token 0, as MaskDecoder.forward does.
int mask_decoder_forward(float *masks, float *iou, const float *image_embedding,
                         const float *image_pe, const float *dense, const float *sparse,
                         int n_sparse, const MaskDecoderWeights *w, const SamConfig *cfg,
                         Arena *scratch, SamError *err);

#endif
