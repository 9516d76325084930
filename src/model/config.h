// Model configuration, inferred from tensor shapes (never from file names).
#ifndef SAM_MODEL_CONFIG_H
#define SAM_MODEL_CONFIG_H

#define SAM_MAX_DEPTH 64
#define SAM_MAX_DECODER_DEPTH 8
#define TINYVIT_STAGES 4        // MobileSAM's TinyViT: MBConv stage + 3 transformer stages
#define TINYVIT_MAX_DEPTH 16    // blocks per stage

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

    // TinyViT image encoder (MobileSAM, encoder_kind SAM_ENCODER_TINYVIT; the ViT
    // fields above then describe the last stage: embed_dim = tv_dims[3], depth = all
    // blocks, num_heads / head_dim / mlp_dim / window_size of stage 3, grid 64).
    // From shapes: dims, depths, heads and windows of stages 1-3 (attention_biases
    // is (heads, window^2)), MLP and MBConv widths. Fixed (not in the shapes):
    // img_size 1024 (build_sam_vit_t), stage 0 has no attention, and the patch
    // merging stride, 1 when the output width is 320, 448 or 576, else 2 (the
    // official rule in tiny_vit_sam.py PatchMerging).
    int tv_dims[TINYVIT_STAGES];     // 64, 128, 160, 320
    int tv_depths[TINYVIT_STAGES];   // 2, 2, 6, 2
    int tv_heads[TINYVIT_STAGES];    // 0 (MBConv stage), 4, 5, 10
    int tv_windows[TINYVIT_STAGES];  // 0, 7, 14, 7
    int tv_mlp[TINYVIT_STAGES];      // MLP hidden width per stage: 0, 512, 640, 1280
    int tv_mbconv_hidden;            // 256 (expand ratio 4)
    int tv_merge_stride[TINYVIT_STAGES - 1];  // 2, 2, 1
    int tv_res[TINYVIT_STAGES];      // side of each stage's token grid: 256, 128, 64, 64
    int tv_num_classes;              // classifier head (in the checkpoint, unused): 1000

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
