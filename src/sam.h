// sam.h: the public C API of the Segment Anything runtime.
//
// Load a model once, encode an image into an image state (or load an
// embedding written earlier), then decode any number of prompts against that
// state. Every fallible call returns 0 on success or -1 with a message in the
// caller's SamError. The library never prints, exits or aborts.
//
//   SamError err;
//   SamModel *model;
//   if (sam_model_load_file(&model, "sam_vit_b_01ec64.pth", &err)) puts(err.message);
//   SamImage *image;
//   sam_image_encode(model, rgb, width, height, NULL, NULL, &image, &err);
//   float xy[2] = {500, 375}; int label = 1;
//   SamPrompt prompt = {.points = xy, .labels = &label, .n_points = 1, .multimask = 1};
//   SamMasks masks;
//   sam_predict(model, image, &prompt, &masks, &err);  // masks.count == 3
//   sam_masks_free(&masks);
//
// A model is not safe to use from two threads at once (it owns the scratch
// arena); image states are read-only during sam_predict.
#ifndef SAM_H
#define SAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/tensors.h"
#include "model/config.h"

#define SAM_MAX_MASKS 8
// Limits on untrusted input, each refused with a message naming it.
#define SAM_MAX_IMAGE_SIDE 16384
#define SAM_MAX_IMAGE_PIXELS 100000000  // 100 MP: the 3 full-size masks stay under 0.3 GB
#define SAM_MAX_POINTS 64               // points per prompt

typedef struct SamModel SamModel;
typedef struct SamImage SamImage;

#ifndef SAM_PROGRESS_FN_DEFINED
#define SAM_PROGRESS_FN_DEFINED
typedef void (*SamProgressFn)(void *user, int done, int total);
#endif

// Loads an official PyTorch checkpoint (.pth zip) or a .safetensors file from
// memory. The bytes are copied into the model's own buffer: the caller may
// free them afterwards. The config is inferred from the tensor shapes.
int sam_model_load(SamModel **out, const uint8_t *bytes, size_t len, SamError *err);
int sam_model_load_file(SamModel **out, const char *path, SamError *err);
void sam_model_free(SamModel *model);
const SamConfig *sam_model_config(const SamModel *model);
// "vit_b", "vit_l", "vit_h" for the official shapes, "vit_custom" otherwise;
// "vit_t" for MobileSAM (TinyViT encoder), "tinyvit_custom" for other TinyViT shapes.
const char *sam_model_type(const SamModel *model);
// Identity of the weights (type, config and a hash of the image-side
// weights rounded to f16): embeddings carry it so that an embedding made by
// another model is refused.
const char *sam_model_id(const SamModel *model);
// Threads of the image encoder (sam_image_encode): n <= 0 (the default) is
// the number of online cores. The threads are started by the next encode and
// sleep between kernels; results are bit-identical for any count. The WASM
// build always uses one thread. Returns 0, or -1 if n exceeds 256.
int sam_model_set_threads(SamModel *model, int n);
// The thread count the next encode uses.
int sam_model_threads(const SamModel *model);

// Converts a checkpoint (.pth or .safetensors) into safetensors with the
// official key names and __metadata__ naming the model type and config.
// out_dtype: DTYPE_F32 or DTYPE_F16. *out is malloc'd.
int sam_convert(const uint8_t *bytes, size_t len, TensorDType out_dtype, uint8_t **out,
                size_t *out_len, SamError *err);

// Encodes an RGB8 image (width*height*3 bytes, row-major) as SamPredictor.set_image:
// resize longest side (Pillow bilinear, bit-exact), normalise, pad, ViT.
int sam_image_encode(SamModel *model, const uint8_t *rgb, int width, int height,
                     SamProgressFn progress, void *progress_user, SamImage **out, SamError *err);
// Reads an embedding written by sam_image_save_embedding; refuses one whose
// model_id differs from the model's.
int sam_image_load_embedding(SamModel *model, const uint8_t *bytes, size_t len, SamImage **out,
                             SamError *err);
// Writes the embedding as safetensors: tensor "image_embeddings" (1, D, G, G),
// metadata format=sam-embedding, model_id, original_size "h,w", input_size "h,w".
int sam_image_save_embedding(const SamModel *model, const SamImage *image, TensorDType dtype,
                             uint8_t **out, size_t *out_len, SamError *err);
void sam_image_size(const SamImage *image, int *height, int *width);
const float *sam_image_embedding(const SamImage *image);  // (D, G, G)
void sam_image_free(SamImage *image);

// Full-size masks cost more than the decoder itself on large images: ask only
// for what is drawn. Low-res logits and scores always come back.
typedef enum SamOutput {
    SAM_OUTPUT_ALL = 0,      // every candidate mask at the original size
    SAM_OUTPUT_BEST = 1,     // only the candidate with the highest predicted IoU
    SAM_OUTPUT_LOW_RES = 2,  // no full-size mask (e.g. while following the mouse)
} SamOutput;

typedef struct SamPrompt {
    const float *points;      // (n_points, 2) x, y in original image pixels
    const int *labels;        // (n_points): 1 foreground, 0 background
    int n_points;
    const float *box;         // x0, y0, x1, y1 in original pixels, or NULL
    const float *mask_input;  // (4G, 4G) low-res logits of an earlier prediction, or NULL
    int multimask;            // 1: the 3 ambiguity masks; 0: the single mask token
    SamOutput output;         // which masks to bring to the original size (default: all)
} SamPrompt;

// Stages of sam_predict, as reported in SamMasks.stage_ms.
enum {
    SAM_STAGE_PROMPT = 0,       // prompt encoder (points, box, mask input)
    SAM_STAGE_TRANSFORMER = 1,  // two-way transformer
    SAM_STAGE_UPSCALE = 2,      // output upscaling, hypernetworks and IoU head
    SAM_STAGE_POSTPROCESS = 3,  // masks at the original size, stability scores
    SAM_STAGE_COUNT = 4,
};

typedef struct SamMasks {
    int count;                 // 3 (multimask) or 1
    int width, height;         // original image size
    int low_res;               // 4G (256 for official models)
    float scores[SAM_MAX_MASKS];     // predicted IoU (no sigmoid, as official)
    // Stability score of the full-size logits, offset 1; NaN for a candidate
    // not brought to the original size (SamPrompt.output).
    float stability[SAM_MAX_MASKS];
    float *low_res_logits;     // (count, low_res, low_res)
    int mask_count;            // full-size masks: count, 1 (best) or 0 (low-res only)
    int mask_index[SAM_MAX_MASKS];  // candidate of each full-size mask
    uint8_t *masks;            // (mask_count, height, width), 0 or 1 (logit > 0); NULL if none
    // Wall time of this call's stages, ms (SAM_STAGE_*), for profiling.
    float stage_ms[SAM_STAGE_COUNT];
} SamMasks;

// Decodes one prompt (SamPredictor.predict). Points outside the image are
// accepted as the official predictor accepts them; NaN or infinite
// coordinates, unknown labels and an empty prompt are errors.
int sam_predict(SamModel *model, const SamImage *image, const SamPrompt *prompt, SamMasks *out,
                SamError *err);
void sam_masks_free(SamMasks *masks);

#endif
