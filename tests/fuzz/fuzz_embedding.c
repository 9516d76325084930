// Embedding files (`sam encode` output) loaded against a model: format
// detection, metadata, model id, original size, tensor shape and values.
// The model is the shipped demo model (SAM_FUZZ_MODEL overrides the path).
#include "fuzz.h"
#include "sam.h"

static SamModel *model;

static void load_model(void) {
    const char *path = getenv("SAM_FUZZ_MODEL");
    if (!path) path = "demo/models/sam_demo.safetensors";
    SamError err;
    if (sam_model_load_file(&model, path, &err)) {
        fprintf(stderr, "fuzz_embedding: %s (run from the repository root or set SAM_FUZZ_MODEL)\n",
                err.message);
        exit(1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!model) load_model();
    SamImage *image = NULL;
    SamError err = {{0}};
    if (sam_image_load_embedding(model, data, size, &image, &err) == 0) {
        int h, w;
        sam_image_size(image, &h, &w);
        FUZZ_ASSERT(h > 0 && w > 0 && (int64_t)h * w <= SAM_MAX_IMAGE_PIXELS);
        sam_image_free(image);
    } else {
        FUZZ_ASSERT(image == NULL);
        FUZZ_ASSERT_MESSAGE(err);
    }
    return 0;
}
