// Binds a checkpoint's tensors (official state_dict names) to SamWeights.
#ifndef SAM_MODEL_WEIGHTS_LOADER_H
#define SAM_MODEL_WEIGHTS_LOADER_H

#include "../common/error.h"
#include "../io/tensors.h"
#include "config.h"
#include "weights.h"

// Infers the config from tensor shapes alone (SAM's ViT, or MobileSAM's
// TinyViT when image_encoder.patch_embed.seq.0.c.weight is present).
// metadata "decoder_heads" may set the one value shapes cannot tell (default
// 8, as every official model).
int sam_config_infer(SamConfig *cfg, const TensorTable *table, SamError *err);

// Checks every tensor against the names and shapes the config implies
// (missing, unknown, wrong dtype or shape are errors naming the tensor),
// copies them as f32 into one malloc'd buffer (*buffer, *buffer_floats) and
// points the weight structs into it. TinyViT: the BatchNorms are then folded
// into their convolutions in that buffer (tinyvit_fold_batchnorm).
int sam_weights_bind(SamWeights *weights, float **buffer, size_t *buffer_floats,
                     const SamConfig *cfg, const TensorTable *table, SamError *err);

// "vit_b" / "vit_l" / "vit_h" when the config is an official one, else "vit_custom";
// "vit_t" (MobileSAM) / "tinyvit_custom" for the TinyViT encoder.
const char *sam_config_type_name(const SamConfig *cfg);
// A compact "key=value,..." description (stored in safetensors metadata).
void sam_config_describe(const SamConfig *cfg, char *out, size_t out_len);

#endif
