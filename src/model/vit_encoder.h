// SAM ViT image encoder (segment_anything/modeling/image_encoder.py,
// ImageEncoderViT): patch embedding, absolute positions, windowed/global
// blocks with decomposed relative positions, neck.
#ifndef SAM_MODEL_VIT_ENCODER_H
#define SAM_MODEL_VIT_ENCODER_H

#include <stddef.h>

#include "../common/arena.h"
#include "../common/error.h"
#include "config.h"
#include "weights.h"

// Called after each block (done = blocks finished, total = depth + 1 with the
// neck) so a front end can show progress. May be NULL.
#ifndef SAM_PROGRESS_FN_DEFINED
#define SAM_PROGRESS_FN_DEFINED
typedef void (*SamProgressFn)(void *user, int done, int total);
#endif

// Floats of scratch vit_encoder_forward takes from the arena for this config
// when the pool bound to the caller (thread_pool_current, common/thread_pool.h)
// has `threads` threads (1 when none is bound): each thread has its own
// attention scratch.
size_t vit_encoder_scratch_floats(const SamConfig *cfg, int threads);

// image: (3, img_size, img_size), normalised and zero-padded, channel-major.
// embedding: (out_chans, grid, grid). Returns 0, or -1 with err set.
int vit_encoder_forward(float *embedding, const float *image, const VitEncoderWeights *w,
                        const SamConfig *cfg, Arena *scratch, SamProgressFn progress,
                        void *progress_user, SamError *err);

#endif
