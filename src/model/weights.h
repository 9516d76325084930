// Model weights: structs of pointers into one float buffer owned by the
// model (f16 checkpoints are widened once at load). Each field's comment
// gives its shape in PyTorch order; src/model/weights.c maps every official
// state_dict name to its field and expected shape.
#ifndef SAM_MODEL_WEIGHTS_H
#define SAM_MODEL_WEIGHTS_H

#include "../kernels/kernels.h"
#include "config.h"

typedef struct LinearWeights {
    const float *weight;        // (out, in)
    const float *bias;          // (out)
    const GemmPackedB *packed;  // NULL, or weight packed for the GEMM (linear_apply)
} LinearWeights;

// y (m, out) = x (m, in) @ weight^T + bias, from the packed weight when there is one.
static inline void linear_apply(float *y, const float *x, const LinearWeights *l, int m, int in,
                                int out) {
    if (l->packed)
        linear_forward_packed(y, x, l->packed, l->bias, m, in, out);
    else
        linear_forward(y, x, l->weight, l->bias, m, in, out);
}

typedef struct NormWeights {
    const float *weight;  // (c)
    const float *bias;    // (c)
} NormWeights;

// segment_anything/modeling/image_encoder.py: Block + Attention
typedef struct VitBlockWeights {
    NormWeights norm1;         // (C)
    LinearWeights qkv;         // (3C, C), channels [q|k|v][head][head_dim]
    LinearWeights proj;        // (C, C)
    const float *rel_pos_h;    // (2S - 1, head_dim), S = window or grid
    const float *rel_pos_w;    // (2S - 1, head_dim)
    NormWeights norm2;         // (C)
    LinearWeights lin1;        // (mlp, C)
    LinearWeights lin2;        // (C, mlp)
} VitBlockWeights;

typedef struct VitEncoderWeights {
    const float *patch_weight;  // (C, 3, P, P)
    const float *patch_bias;    // (C)
    const float *pos_embed;     // (1, G, G, C)
    VitBlockWeights blocks[SAM_MAX_DEPTH];
    const float *neck_conv1;    // (256, C, 1, 1), no bias
    NormWeights neck_norm1;     // (256) LayerNorm2d
    const float *neck_conv2;    // (256, 256, 3, 3), no bias
    NormWeights neck_norm2;     // (256) LayerNorm2d
} VitEncoderWeights;

// MobileSAM tiny_vit_sam.py Conv2d_BN: conv without bias + BatchNorm2d. The
// loader folds the BatchNorm into the conv at load time (tinyvit_fold_batchnorm):
// weight is then scaled per output channel and bias points at the bn.bias slot,
// overwritten with the folded bias. The bn_* fields keep pointing at the raw
// (unfolded) slots for the fold itself.
typedef struct ConvBnWeights {
    const float *weight;    // (out, in / groups, k, k)  c.weight
    const float *bias;      // (out) bn.bias slot: beta - mean * gamma / sqrt(var + eps) after folding
    const float *bn_weight; // (out) gamma
    const float *bn_mean;   // (out) running_mean
    const float *bn_var;    // (out) running_var
} ConvBnWeights;

// MBConv (stage 0) and PatchMerging: three Conv2d_BN.
typedef struct TinyVitConv3Weights {
    ConvBnWeights conv1;  // 1x1 (hidden, in)
    ConvBnWeights conv2;  // depthwise 3x3 (hidden, 1, 3, 3)
    ConvBnWeights conv3;  // 1x1 (out, hidden)
} TinyVitConv3Weights;

// TinyViTBlock: Attention (norm, qkv, proj, attention_biases), Mlp, local_conv.
typedef struct TinyVitBlockWeights {
    const float *attention_biases;  // (heads, ws * ws), index |dy| * ws + |dx|
    NormWeights attn_norm;          // (C)
    LinearWeights qkv;              // (3C, C), channels [head][q | k | v][head_dim]
    LinearWeights proj;             // (C, C)
    NormWeights mlp_norm;           // (C)
    LinearWeights fc1;              // (mlp, C)
    LinearWeights fc2;              // (C, mlp)
    ConvBnWeights local_conv;       // depthwise 3x3 (C, 1, 3, 3)
} TinyVitBlockWeights;

typedef struct TinyVitEncoderWeights {
    ConvBnWeights stem1;  // patch_embed.seq.0: 3x3 s2 (C0/2, 3, 3, 3)
    ConvBnWeights stem2;  // patch_embed.seq.2: 3x3 s2 (C0, C0/2, 3, 3)
    TinyVitConv3Weights mbconv[TINYVIT_MAX_DEPTH];            // layers.0.blocks
    TinyVitConv3Weights merge[TINYVIT_STAGES - 1];            // layers.{0,1,2}.downsample
    TinyVitBlockWeights blocks[TINYVIT_STAGES][TINYVIT_MAX_DEPTH];  // layers.{1,2,3}.blocks
    const float *neck_conv1;    // (256, C3, 1, 1), no bias
    NormWeights neck_norm1;     // (256) LayerNorm2d
    const float *neck_conv2;    // (256, 256, 3, 3), no bias
    NormWeights neck_norm2;     // (256) LayerNorm2d
    // norm_head and head (the classifier) are checked for shape, not loaded.
} TinyVitEncoderWeights;

// segment_anything/modeling/prompt_encoder.py
typedef struct PromptEncoderWeights {
    const float *pe_gaussian;        // (2, D/2) positional_encoding_gaussian_matrix
    const float *point_embed[4];     // (1, D) each: neg, pos, box corner 1, box corner 2
    const float *not_a_point_embed;  // (1, D)
    const float *mask_conv1_w;       // (M/4, 1, 2, 2)   mask_downscaling.0
    const float *mask_conv1_b;       // (M/4)
    NormWeights mask_norm1;          // (M/4)            mask_downscaling.1 (LayerNorm2d)
    const float *mask_conv2_w;       // (M, M/4, 2, 2)   mask_downscaling.3
    const float *mask_conv2_b;       // (M)
    NormWeights mask_norm2;          // (M)              mask_downscaling.4
    const float *mask_conv3_w;       // (D, M, 1, 1)     mask_downscaling.6
    const float *mask_conv3_b;       // (D)
    const float *no_mask_embed;      // (1, D)
} PromptEncoderWeights;

// segment_anything/modeling/transformer.py: Attention
typedef struct AttentionWeights {
    LinearWeights q_proj;    // (internal, D)
    LinearWeights k_proj;    // (internal, D)
    LinearWeights v_proj;    // (internal, D)
    LinearWeights out_proj;  // (D, internal)
} AttentionWeights;

// TwoWayAttentionBlock
typedef struct TwoWayBlockWeights {
    AttentionWeights self_attn;               // internal = D
    NormWeights norm1;
    AttentionWeights cross_attn_token_to_image;  // internal = D / 2
    NormWeights norm2;
    LinearWeights mlp_lin1;                   // (mlp, D)
    LinearWeights mlp_lin2;                   // (D, mlp)
    NormWeights norm3;
    NormWeights norm4;
    AttentionWeights cross_attn_image_to_token;  // internal = D / 2
} TwoWayBlockWeights;

// segment_anything/modeling/mask_decoder.py
typedef struct MaskDecoderWeights {
    TwoWayBlockWeights layers[SAM_MAX_DECODER_DEPTH];
    AttentionWeights final_attn_token_to_image;
    NormWeights norm_final_attn;
    const float *iou_token;          // (1, D)
    const float *mask_tokens;        // (num_mask_tokens, D)
    const float *upscale1_w;         // (D, D/4, 2, 2) ConvTranspose2d: (in, out, kh, kw)
    const float *upscale1_b;         // (D/4)
    NormWeights upscale_norm;        // (D/4) LayerNorm2d
    const float *upscale2_w;         // (D/4, D/8, 2, 2)
    const float *upscale2_b;         // (D/8)
    LinearWeights hyper_mlps[8][3];  // per mask token: (D, D), (D, D), (D/8, D)
    LinearWeights iou_head[3];       // (H, D), (H, H), (num_mask_tokens, H)
} MaskDecoderWeights;

typedef struct SamWeights {
    VitEncoderWeights vit;          // encoder_kind SAM_ENCODER_VIT
    TinyVitEncoderWeights tinyvit;  // encoder_kind SAM_ENCODER_TINYVIT
    PromptEncoderWeights prompt;
    MaskDecoderWeights decoder;
} SamWeights;

#endif
