// Model configuration, inferred from tensor shapes (never from file names).
#ifndef SAM_MODEL_CONFIG_H
#define SAM_MODEL_CONFIG_H

#define SAM_MAX_DEPTH 64
#define SAM_MAX_DECODER_DEPTH 8

typedef enum SamEncoderKind { SAM_ENCODER_VIT = 0, SAM_ENCODER_TINYVIT = 1 } SamEncoderKind;

typedef struct SamConfig {
    SamEncoderKind encoder_kind;
    // ViT image encoder (image_encoder.*)
    int img_size;        // input side, 1024 official (= patch_size * grid)
    int patch_size;      // 16
    int grid;            // tokens per side, 64 official
    int embed_dim;       // 768 / 1024 / 1280
    int depth;           // 12 / 24 / 32
    int num_heads;       // embed_dim / head_dim
    int head_dim;        // 64 / 64 / 80 (from the rel-pos tables)
    int mlp_dim;         // 4 * embed_dim
    int window_size;     // 14 (from the windowed blocks' rel-pos tables: 2w - 1)
    int is_global[SAM_MAX_DEPTH];  // 1 for global-attention blocks
    int out_chans;       // neck width = prompt embedding dim, 256

    // Prompt encoder / mask decoder
    int prompt_dim;      // 256
    int mask_in_chans;   // 16 (mask_downscaling hidden width)
    int decoder_depth;   // 2
    int decoder_heads;   // 8 (not visible in shapes; metadata may override)
    int decoder_mlp_dim; // 2048
    int attn_internal_dim; // cross-attention width, 128 (prompt_dim / downsample 2)
    int num_mask_tokens; // 4 (3 multimask outputs + 1)
    int iou_hidden_dim;  // 256
    int iou_head_depth;  // 3
    int upscale_dim1;    // 64 = prompt_dim / 4
    int upscale_dim2;    // 32 = prompt_dim / 8
} SamConfig;

#endif
