// SAM prompt encoder (segment_anything/modeling/prompt_encoder.py).
#ifndef SAM_MODEL_PROMPT_ENCODER_H
#define SAM_MODEL_PROMPT_ENCODER_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "config.h"
#include "weights.h"

// Number of sparse tokens for n_points points and an optional box: the
// official encoder appends a padding point when there is no box.
int prompt_sparse_count(int n_points, int has_box);

// coords: (n_points, 2) x, y already in the model's input frame (pixels of the
// img_size x img_size padded input; ResizeLongestSide.apply_coords applied).
// labels: 1 foreground, 0 background. box: x0, y0, x1, y1 in the same frame
// or NULL. sparse: (prompt_sparse_count(...), prompt_dim). Order as the
// official encoder: points, padding point, box corners.
void prompt_encode_sparse(float *sparse, const float *coords, const int *labels, int n_points,
                          const float *box, const PromptEncoderWeights *w, const SamConfig *cfg);

// Dense positional encoding of the grid: (prompt_dim, grid, grid).
void prompt_dense_pe(float *pe, const PromptEncoderWeights *w, const SamConfig *cfg);

size_t prompt_dense_scratch_floats(const SamConfig *cfg);
// mask_input: (4*grid, 4*grid) low-res logits, or NULL for no_mask_embed.
// dense: (prompt_dim, grid, grid).
int prompt_encode_dense(float *dense, const float *mask_input, const PromptEncoderWeights *w,
                        const SamConfig *cfg, Arena *scratch, SamError *err);

#endif
