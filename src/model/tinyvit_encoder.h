// MobileSAM's image encoder (model type "vit_t"): TinyViT as in
// ChaoningZhang/MobileSAM mobile_sam/modeling/tiny_vit_sam.py, built by
// build_sam.py build_sam_vit_t: a convolutional stem, an MBConv stage, patch
// merging, three stages of TinyViT blocks (windowed attention with learned
// attention biases, a depthwise local convolution, an MLP), and SAM's neck.
#ifndef SAM_MODEL_TINYVIT_ENCODER_H
#define SAM_MODEL_TINYVIT_ENCODER_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "config.h"
#include "weights.h"

#ifndef SAM_PROGRESS_FN_DEFINED
#define SAM_PROGRESS_FN_DEFINED
typedef void (*SamProgressFn)(void *user, int done, int total);
#endif

// Progress steps of tinyvit_encoder_forward: stem + MBConv stage, stages 1-3, neck.
#define TINYVIT_PROGRESS_STEPS (TINYVIT_STAGES + 1)

// Folds every Conv2d_BN's BatchNorm (eval: running statistics, eps 1e-5) into
// its convolution, in place in the model's weight buffer: the conv weight is
// scaled by gamma / sqrt(var + eps) per output channel and the bn.bias slot
// becomes beta - mean * gamma / sqrt(var + eps) (ConvBnWeights.bias). Called
// once by the loader right after binding; the checkpoint (and so `sam
// convert`'s output) keeps the unfolded official tensors.
void tinyvit_fold_batchnorm(TinyVitEncoderWeights *w, const SamConfig *cfg);

// Floats of scratch tinyvit_encoder_forward takes from the arena (0 when the
// config is not a valid TinyViT one) when the pool bound to the caller
// (thread_pool_current) has `threads` threads (1 when none is bound).
size_t tinyvit_encoder_scratch_floats(const SamConfig *cfg, int threads);

// image: (3, 1024, 1024), normalised and zero-padded, channel-major.
// embedding: (out_chans, 64, 64). progress (may be NULL) is called after each
// of the TINYVIT_PROGRESS_STEPS steps. Returns 0, or -1 with err set.
int tinyvit_encoder_forward(float *embedding, const float *image, const TinyVitEncoderWeights *w,
                            const SamConfig *cfg, Arena *scratch, SamProgressFn progress,
                            void *progress_user, SamError *err);

// tinyvit_encoder_forward computes each band of equal rows or columns once
// (the zero padding under a landscape image or right of a portrait one;
// repeated_band.h): every layer copies the tokens it would compute from
// equal inputs by the same arithmetic. With reuse_repeated_tokens = 0 every
// token is computed (the tests compare the two).
int tinyvit_encoder_forward_band(float *embedding, const float *image,
                                 const TinyVitEncoderWeights *w, const SamConfig *cfg,
                                 Arena *scratch, SamProgressFn progress, void *progress_user,
                                 int reuse_repeated_tokens, SamError *err);

#endif
