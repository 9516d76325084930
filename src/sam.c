// The public API: model loading, image states and prompt decoding, wiring
// the components in src/model and src/image the way SamPredictor does
// (segment_anything/predictor.py).
#include "sam.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__unix__) && !defined(__EMSCRIPTEN__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "common/arena.h"
#include "common/clock.h"
#include "common/half.h"
#include "common/thread_pool.h"
#include "image/transforms.h"
#include "model/mask_decoder.h"
#include "model/prompt_encoder.h"
#include "model/tinyvit_encoder.h"
#include "model/vit_encoder.h"
#include "model/weights_loader.h"

struct SamModel {
    SamConfig cfg;
    SamWeights weights;
    float *weight_buffer;
    size_t weight_floats;
    MaskDecoderPlan decoder_plan;  // derived once from the weights (mask_decoder.h)
    Arena decode_arena;   // prompt encoder, decoder and post-processing
    // Full-size logits and resampling scratch: they depend on the image size,
    // so they grow to the largest image seen instead of being allocated per
    // prompt.
    float *post_buffer;
    size_t post_capacity;
    char type[32];
    char id[160];
    int threads;       // sam_model_set_threads; 0: online cores
    ThreadPool *pool;  // the encoder's, started by the first encode with threads > 1
};

struct SamImage {
    int height, width;                // original image
    int input_height, input_width;    // after ResizeLongestSide
    float *embedding;                 // (D, G, G)
    // Shared by every prompt without a mask input (mask_decoder.h).
    float *decoder_buffer;
    DecoderImageState decoder_state;
    char model_id[160];
};

// ---------------------------------------------------------------------------
// Model

// FNV-1a over the f16-rounded image-side neck weights: the same for a model
// stored in f32 or f16, different for any two trained or random models.
static void compute_model_id(SamModel *m) {
    const SamConfig *c = &m->cfg;
    uint64_t h = 1469598103934665603ull;
    const int tiny = c->encoder_kind == SAM_ENCODER_TINYVIT;
    const float *parts[2] = {tiny ? m->weights.tinyvit.neck_conv1 : m->weights.vit.neck_conv1,
                             tiny ? m->weights.tinyvit.neck_conv2 : m->weights.vit.neck_conv2};
    const size_t sizes[2] = {(size_t)c->out_chans * c->embed_dim, (size_t)c->out_chans * c->out_chans * 9};
    for (int p = 0; p < 2; p++) {
        for (size_t i = 0; i < sizes[p]; i++) {
            uint16_t bits = float_to_half(parts[p][i]);
            h = (h ^ (bits & 0xff)) * 1099511628211ull;
            h = (h ^ (bits >> 8)) * 1099511628211ull;
        }
    }
    snprintf(m->id, sizeof m->id, "%s-%dx%d-g%d-%016llx", m->type, c->embed_dim, c->depth, c->grid,
             (unsigned long long)h);
}

static size_t decode_scratch_floats(const SamConfig *c) {
    const int max_sparse = SAM_MAX_POINTS + 3;
    const int lr = 4 * c->grid;
    size_t n = (size_t)c->prompt_dim * c->grid * c->grid * 2;  // dense + src copy
    n += (size_t)max_sparse * c->prompt_dim + 16 * 4 + 2 * c->num_mask_tokens;
    n += (size_t)c->num_mask_tokens * lr * lr;
    n += mask_decoder_scratch_floats(c, max_sparse);
    size_t dense = prompt_dense_scratch_floats(c);
    n += dense;
    return n + 4096;
}

static int load_table(SamModel *m, const TensorTable *table, SamError *err) {
    if (sam_config_infer(&m->cfg, table, err)) return -1;
    snprintf(m->type, sizeof m->type, "%s", sam_config_type_name(&m->cfg));
    if (sam_weights_bind(&m->weights, &m->weight_buffer, &m->weight_floats, &m->cfg, table, err))
        return -1;
    const SamConfig *c = &m->cfg;
    float *dense_pe = malloc(sizeof(float) * (size_t)c->prompt_dim * c->grid * c->grid);
    if (!dense_pe) return sam_error(err, "out of memory");
    prompt_dense_pe(dense_pe, &m->weights.prompt, c);
    const int rc = mask_decoder_plan_init(&m->decoder_plan, dense_pe, &m->weights.decoder, c);
    free(dense_pe);
    if (rc) return sam_error(err, "out of memory");
    if (arena_init(&m->decode_arena, decode_scratch_floats(c) * sizeof(float)))
        return sam_error(err, "out of memory allocating the decoder's scratch");
    compute_model_id(m);
    return 0;
}

static int read_table(TensorTable *table, const uint8_t *bytes, size_t len, SamError *err) {
    switch (checkpoint_detect(bytes, len)) {
    case 1: return pth_read(bytes, len, table, err);
    case 2: return safetensors_read(bytes, len, table, err);
    default:
        return sam_error(err, "not a checkpoint: expected a PyTorch .pth (zip) or a .safetensors file");
    }
}

int sam_model_load(SamModel **out, const uint8_t *bytes, size_t len, SamError *err) {
    *out = NULL;
    SamModel *m = calloc(1, sizeof *m);
    if (!m) return sam_error(err, "out of memory");
    TensorTable table;
    tensor_table_init(&table);
    int rc = read_table(&table, bytes, len, err);
    if (rc == 0) rc = load_table(m, &table, err);
    tensor_table_free(&table);
    if (rc) {
        sam_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

#if !(defined(__unix__) && !defined(__EMSCRIPTEN__))
static int read_file(const char *path, uint8_t **data, size_t *len, SamError *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sam_error(err, "cannot open '%s'", path);
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return sam_error(err, "cannot seek in '%s'", path);
    }
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return sam_error(err, "cannot read '%s'", path);
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        return sam_error(err, "out of memory reading '%s' (%ld bytes)", path, size);
    }
    if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(buf);
        return sam_error(err, "cannot read '%s'", path);
    }
    fclose(f);
    *data = buf;
    *len = (size_t)size;
    return 0;
}
#endif

#if defined(__unix__) && !defined(__EMSCRIPTEN__)
// Maps the checkpoint instead of reading it: the weights are widened into
// the model's own buffer anyway, so the file's pages are touched once and
// never count twice against memory (ViT-H is 2.5 GB).
static int map_file(const char *path, const uint8_t **data, size_t *len, SamError *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sam_error(err, "cannot open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sam_error(err, "'%s' is not a regular file", path);
    }
    *len = (size_t)st.st_size;
    if (*len == 0) {
        close(fd);
        *data = NULL;
        return 0;
    }
    void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return sam_error(err, "cannot map '%s'", path);
    *data = p;
    return 0;
}

int sam_model_load_file(SamModel **out, const char *path, SamError *err) {
    const uint8_t *data = NULL;
    size_t len = 0;
    *out = NULL;
    if (map_file(path, &data, &len, err)) return -1;
    int rc = sam_model_load(out, data ? data : (const uint8_t *)"", len, err);
    if (data) munmap((void *)data, len);
    if (rc) sam_error_prefix(err, "%s", path);
    return rc;
}
#else
int sam_model_load_file(SamModel **out, const char *path, SamError *err) {
    uint8_t *data;
    size_t len;
    *out = NULL;
    if (read_file(path, &data, &len, err)) return -1;
    int rc = sam_model_load(out, data, len, err);
    free(data);
    if (rc) sam_error_prefix(err, "%s", path);
    return rc;
}
#endif

void sam_model_free(SamModel *m) {
    if (!m) return;
    free(m->weight_buffer);
    mask_decoder_plan_free(&m->decoder_plan);
    free(m->post_buffer);
    arena_free(&m->decode_arena);
    thread_pool_destroy(m->pool);
    free(m);
}

int sam_model_set_threads(SamModel *m, int n) {
    if (n > THREAD_POOL_MAX_THREADS) return -1;
    if (n < 0) n = 0;
    if (n != m->threads) {
        thread_pool_destroy(m->pool);
        m->pool = NULL;
        m->threads = n;
    }
    return 0;
}

int sam_model_threads(const SamModel *m) {
    return m->threads > 0 ? m->threads : thread_pool_online_cores();
}

const SamConfig *sam_model_config(const SamModel *m) { return &m->cfg; }
const char *sam_model_type(const SamModel *m) { return m->type; }
const char *sam_model_id(const SamModel *m) { return m->id; }

int sam_convert(const uint8_t *bytes, size_t len, TensorDType out_dtype, uint8_t **out,
                size_t *out_len, SamError *err) {
    *out = NULL;
    *out_len = 0;
    if (out_dtype != DTYPE_F32 && out_dtype != DTYPE_F16)
        return sam_error(err, "output dtype must be f32 or f16");
    TensorTable table;
    tensor_table_init(&table);
    SamModel *check = calloc(1, sizeof *check);
    int rc = check ? read_table(&table, bytes, len, err) : sam_error(err, "out of memory");
    // Binding validates every name and shape, so a converted file always loads.
    if (rc == 0) rc = load_table(check, &table, err);
    if (rc == 0) {
        char desc[1024];
        sam_config_describe(&check->cfg, desc, sizeof desc);
        if (tensor_table_set_meta(&table, "format", "pt") ||
            tensor_table_set_meta(&table, "model_type", check->type) ||
            tensor_table_set_meta(&table, "config", desc) ||
            tensor_table_set_meta(&table, "model_id", check->id))
            rc = sam_error(err, "out of memory");
    }
    if (rc == 0) rc = safetensors_write(&table, out_dtype, out, out_len, err);
    sam_model_free(check);
    tensor_table_free(&table);
    return rc;
}

// ---------------------------------------------------------------------------
// Image state

static SamImage *image_new(const SamModel *m, int height, int width) {
    SamImage *img = calloc(1, sizeof *img);
    if (!img) return NULL;
    const SamConfig *c = &m->cfg;
    img->embedding = malloc(sizeof(float) * (size_t)c->out_chans * c->grid * c->grid);
    if (!img->embedding) {
        free(img);
        return NULL;
    }
    img->height = height;
    img->width = width;
    resize_longest_side_shape(height, width, c->img_size, &img->input_height, &img->input_width);
    snprintf(img->model_id, sizeof img->model_id, "%s", m->id);
    return img;
}

// The per-image decoder state (mask_decoder_prepare_image), computed once
// when the embedding is set instead of in every prompt.
static int image_prepare_decoder(SamModel *m, SamImage *img, SamError *err) {
    const SamConfig *c = &m->cfg;
    img->decoder_buffer = malloc(sizeof(float) * mask_decoder_image_state_floats(c));
    if (!img->decoder_buffer) return sam_error(err, "out of memory for the decoder's image state");
    Arena *arena = &m->decode_arena;
    arena_reset(arena, 0);
    float *scratch = arena_floats(arena, mask_decoder_prepare_scratch_floats(c));
    if (!scratch) return sam_error(err, "decoder scratch exhausted");
    mask_decoder_prepare_image(&img->decoder_state, img->decoder_buffer, img->embedding,
                               m->weights.prompt.no_mask_embed, &m->decoder_plan,
                               &m->weights.decoder, c, scratch);
    arena_reset(arena, 0);
    return 0;
}

int sam_image_encode(SamModel *m, const uint8_t *rgb, int width, int height,
                     SamProgressFn progress, void *progress_user, SamImage **out, SamError *err) {
    *out = NULL;
    if (width <= 0 || height <= 0 || width > SAM_MAX_IMAGE_SIDE || height > SAM_MAX_IMAGE_SIDE)
        return sam_error(err, "image size %dx%d is outside 1..%d pixels per side", width, height,
                         SAM_MAX_IMAGE_SIDE);
    if ((int64_t)width * height > SAM_MAX_IMAGE_PIXELS)
        return sam_error(err, "image size %dx%d is %lld pixels; the limit is %d", width, height,
                         (long long)width * height, SAM_MAX_IMAGE_PIXELS);
    const SamConfig *c = &m->cfg;
    SamImage *img = image_new(m, height, width);
    if (!img) return sam_error(err, "out of memory");
    const int rh = img->input_height, rw = img->input_width;
    const size_t input_floats = (size_t)3 * c->img_size * c->img_size;
    const size_t resized_bytes = (size_t)rw * rh * 3;
    const size_t tmp_bytes = (size_t)rw * height * 3;
    Arena arena;
    const int tiny = c->encoder_kind == SAM_ENCODER_TINYVIT;  // MobileSAM
    // The pool, started on first use; without it (1 thread, or no thread
    // could be started) the encoder runs on the caller alone.
    if (!m->pool && sam_model_threads(m) > 1) m->pool = thread_pool_create(sam_model_threads(m));
    const int threads = thread_pool_threads(m->pool);
    const size_t encoder_floats =
        tiny ? tinyvit_encoder_scratch_floats(c, threads) : vit_encoder_scratch_floats(c, threads);
    size_t need = input_floats * sizeof(float) + resized_bytes + tmp_bytes + 3 * 64 +
                  encoder_floats * sizeof(float);
    if (arena_init(&arena, need)) {
        sam_image_free(img);
        return sam_error(err, "out of memory allocating %zu MB for the image encoder", need >> 20);
    }
    float *input = arena_floats(&arena, input_floats);
    uint8_t *resized = arena_bytes(&arena, resized_bytes);
    uint8_t *tmp = arena_bytes(&arena, tmp_bytes);
    if (rw == width && rh == height) {
        memcpy(resized, rgb, resized_bytes);  // Pillow does not resample a same-size image
    } else {
        resize_pil_bilinear_rgb(resized, rw, rh, rgb, width, height, tmp);
    }
    normalize_pad_image(input, resized, rh, rw, c->img_size);
    ThreadPool *previous = thread_pool_bind(m->pool);
    int rc = tiny ? tinyvit_encoder_forward(img->embedding, input, &m->weights.tinyvit, c, &arena,
                                            progress, progress_user, err)
                  : vit_encoder_forward(img->embedding, input, &m->weights.vit, c, &arena,
                                        progress, progress_user, err);
    thread_pool_bind(previous);
    arena_free(&arena);
    if (!rc) rc = image_prepare_decoder(m, img, err);
    if (rc) {
        sam_image_free(img);
        return -1;
    }
    *out = img;
    return 0;
}

static int parse_pair(const char *s, int *a, int *b) {
    char *end;
    long x = strtol(s, &end, 10);
    if (*end != ',') return -1;
    long y = strtol(end + 1, &end, 10);
    if (*end) return -1;
    if (x <= 0 || y <= 0 || x > SAM_MAX_IMAGE_SIDE || y > SAM_MAX_IMAGE_SIDE) return -1;
    if ((int64_t)x * y > SAM_MAX_IMAGE_PIXELS) return -1;
    *a = (int)x;
    *b = (int)y;
    return 0;
}

int sam_image_load_embedding(SamModel *m, const uint8_t *bytes, size_t len, SamImage **out,
                             SamError *err) {
    *out = NULL;
    const SamConfig *c = &m->cfg;
    TensorTable t;
    tensor_table_init(&t);
    SamImage *img = NULL;
    int rc = -1;
    if (checkpoint_detect(bytes, len) != 2) {
        sam_error(err, "not an embedding file: expected safetensors written by 'sam encode'");
        goto done;
    }
    if (safetensors_read(bytes, len, &t, err)) goto done;
    const char *format = tensor_table_meta(&t, "format");
    const char *model_id = tensor_table_meta(&t, "model_id");
    const char *original = tensor_table_meta(&t, "original_size");
    if (!format || strcmp(format, "sam-embedding") != 0 || !model_id || !original) {
        sam_error(err, "not an embedding file: metadata format=sam-embedding, model_id and original_size are required");
        goto done;
    }
    if (strcmp(model_id, m->id) != 0) {
        sam_error(err, "embedding was made by another model (embedding model_id '%s', this model '%s')",
                  model_id, m->id);
        goto done;
    }
    int h, w;
    if (parse_pair(original, &h, &w)) {
        sam_error(err, "embedding metadata original_size='%.64s' is not 'height,width' within %d pixels per side and %d in all",
                  original, SAM_MAX_IMAGE_SIDE, SAM_MAX_IMAGE_PIXELS);
        goto done;
    }
    const TensorEntry *e = tensor_table_find(&t, "image_embeddings");
    if (!e || e->ndim != 4 || e->shape[0] != 1 || e->shape[1] != c->out_chans ||
        e->shape[2] != c->grid || e->shape[3] != c->grid) {
        sam_error(err, "embedding tensor 'image_embeddings' must have shape [1,%d,%d,%d]",
                   c->out_chans, c->grid, c->grid);
        goto done;
    }
    img = image_new(m, h, w);
    if (!img) {
        sam_error(err, "out of memory");
        goto done;
    }
    if (tensor_to_f32(e, img->embedding, err)) goto done;
    const size_t n = (size_t)c->out_chans * c->grid * c->grid;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(img->embedding[i])) {
            sam_error(err, "embedding holds a non-finite value at index %zu", i);
            goto done;
        }
    }
    if (image_prepare_decoder(m, img, err)) goto done;
    *out = img;
    img = NULL;
    rc = 0;
done:
    sam_image_free(img);
    tensor_table_free(&t);
    return rc;
}

int sam_image_save_embedding(const SamModel *m, const SamImage *img, TensorDType dtype,
                             uint8_t **out, size_t *out_len, SamError *err) {
    const SamConfig *c = &m->cfg;
    TensorTable t;
    tensor_table_init(&t);
    char original[48], input[48];
    snprintf(original, sizeof original, "%d,%d", img->height, img->width);
    snprintf(input, sizeof input, "%d,%d", img->input_height, img->input_width);
    const int64_t shape[4] = {1, c->out_chans, c->grid, c->grid};
    const size_t n = (size_t)c->out_chans * c->grid * c->grid;
    int rc = 0;
    if (tensor_table_add(&t, "image_embeddings", DTYPE_F32, 4, shape, img->embedding, n * sizeof(float)) ||
        tensor_table_set_meta(&t, "format", "sam-embedding") ||
        tensor_table_set_meta(&t, "model_id", img->model_id) ||
        tensor_table_set_meta(&t, "original_size", original) ||
        tensor_table_set_meta(&t, "input_size", input))
        rc = sam_error(err, "out of memory");
    if (rc == 0) rc = safetensors_write(&t, dtype, out, out_len, err);
    tensor_table_free(&t);
    return rc;
}

void sam_image_size(const SamImage *img, int *height, int *width) {
    *height = img->height;
    *width = img->width;
}

const float *sam_image_embedding(const SamImage *img) { return img->embedding; }

void sam_image_free(SamImage *img) {
    if (!img) return;
    free(img->embedding);
    free(img->decoder_buffer);
    free(img);
}

// ---------------------------------------------------------------------------
// Prompt decoding

static int check_prompt(const SamPrompt *p, const SamConfig *c, SamError *err) {
    if (p->n_points < 0 || p->n_points > SAM_MAX_POINTS)
        return sam_error(err, "prompt has %d points; at most %d are supported", p->n_points, SAM_MAX_POINTS);
    if (p->n_points == 0 && !p->box && !p->mask_input)
        return sam_error(err, "empty prompt: give at least a point, a box or a mask input");
    if (p->output < SAM_OUTPUT_ALL || p->output > SAM_OUTPUT_LOW_RES)
        return sam_error(err, "unknown output selection %d (0 all, 1 best, 2 low-res only)", (int)p->output);
    for (int i = 0; i < p->n_points; i++) {
        if (!isfinite(p->points[2 * i]) || !isfinite(p->points[2 * i + 1]))
            return sam_error(err, "point %d has a non-finite coordinate (%g, %g)", i, p->points[2 * i],
                             p->points[2 * i + 1]);
        if (p->labels[i] != 0 && p->labels[i] != 1)
            return sam_error(err, "point %d has label %d; labels are 1 (foreground) or 0 (background)", i,
                             p->labels[i]);
    }
    if (p->box) {
        for (int i = 0; i < 4; i++)
            if (!isfinite(p->box[i])) return sam_error(err, "box has a non-finite coordinate");
    }
    if (p->mask_input) {
        const size_t n = (size_t)16 * c->grid * c->grid;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(p->mask_input[i]))
                return sam_error(err, "mask input holds a non-finite value at index %zu", i);
    }
    return 0;
}

int sam_predict(SamModel *m, const SamImage *img, const SamPrompt *p, SamMasks *out, SamError *err) {
    memset(out, 0, sizeof *out);
    const SamConfig *c = &m->cfg;
    if (strcmp(img->model_id, m->id) != 0)
        return sam_error(err, "image state was made by another model ('%s', this model '%s')",
                         img->model_id, m->id);
    if (check_prompt(p, c, err)) return -1;
    const double t_start = sam_clock_ms();
    const int D = c->prompt_dim, G = c->grid, lr = 4 * G;
    Arena *arena = &m->decode_arena;
    arena_reset(arena, 0);

    // ResizeLongestSide.apply_coords / apply_boxes: into the resized frame.
    float coords[2 * SAM_MAX_POINTS], box[4];
    transform_coords(coords, p->points, p->n_points, img->height, img->width, img->input_height,
                     img->input_width);
    if (p->box) transform_coords(box, p->box, 2, img->height, img->width, img->input_height, img->input_width);

    // MaskDecoder.forward: tokens 1.. for multimask output, token 0 otherwise.
    const int first = p->multimask ? 1 : 0;
    const int count = p->multimask ? c->num_mask_tokens - 1 : 1;
    const int n_sparse = prompt_sparse_count(p->n_points, p->box != NULL);
    float *sparse = arena_floats(arena, (size_t)n_sparse * D);
    float *masks_low = arena_floats(arena, (size_t)count * lr * lr);
    float *all_iou = arena_floats(arena, (size_t)c->num_mask_tokens);
    if (!sparse || !masks_low || !all_iou) return sam_error(err, "decoder scratch exhausted");
    prompt_encode_sparse(sparse, coords, p->labels, p->n_points, p->box ? box : NULL, &m->weights.prompt, c);
    // Without a mask input the dense prompt is the no-mask embedding, which
    // the image's decoder state already holds.
    float *dense = NULL;
    if (p->mask_input) {
        dense = arena_floats(arena, (size_t)D * G * G);
        if (!dense) return sam_error(err, "decoder scratch exhausted");
        if (prompt_encode_dense(dense, p->mask_input, &m->weights.prompt, c, arena, err)) return -1;
    }
    const double t_prompt = sam_clock_ms();
    if (mask_decoder_forward(masks_low, all_iou, img->embedding, dense,
                             dense ? NULL : &img->decoder_state, &m->decoder_plan, sparse,
                             n_sparse, first, count, DECODER_PATH_FAST, c,
                             arena, out->stage_ms + SAM_STAGE_TRANSFORMER, err))
        return -1;
    out->stage_ms[SAM_STAGE_PROMPT] = (float)(t_prompt - t_start);
    const double t_post = sam_clock_ms();

    const size_t hw = (size_t)img->height * img->width;
    out->count = count;
    out->width = img->width;
    out->height = img->height;
    out->low_res = lr;
    out->low_res_logits = malloc(sizeof(float) * (size_t)count * lr * lr);
    if (!out->low_res_logits) return sam_error(err, "out of memory for %d low-res masks", count);
    memcpy(out->low_res_logits, masks_low, sizeof(float) * (size_t)count * lr * lr);
    int best = 0;
    for (int k = 0; k < count; k++) {
        out->scores[k] = all_iou[first + k];
        out->stability[k] = NAN;
        if (out->scores[k] > out->scores[best]) best = k;
    }
    if (p->output == SAM_OUTPUT_LOW_RES) return 0;
    out->mask_count = p->output == SAM_OUTPUT_BEST ? 1 : count;
    for (int j = 0; j < out->mask_count; j++) out->mask_index[j] = p->output == SAM_OUTPUT_BEST ? best : j;

    out->masks = malloc((size_t)out->mask_count * hw);
    const size_t post_floats = postprocess_mask_scratch_floats(lr, c->img_size, img->height, img->width);
    if (post_floats > m->post_capacity) {
        float *grown = realloc(m->post_buffer, sizeof(float) * post_floats);
        if (grown) {
            m->post_buffer = grown;
            m->post_capacity = post_floats;
        }
    }
    if (!out->masks || m->post_capacity < post_floats) {
        sam_masks_free(out);
        return sam_error(err, "out of memory for %d masks of %dx%d", count, img->width, img->height);
    }
    // amg.calculate_stability_score with threshold 0 (mask_threshold) and
    // offset 1: #(logits > 1) / #(logits > -1).
    const float hi = 1.0f, lo = -1.0f;
    for (int j = 0; j < out->mask_count; j++) {
        const int k = out->mask_index[j];
        size_t above_hi, above_lo;
        // The official code upsamples all `count` masks as one tensor, and
        // torch's rounding depends on that channel count.
        postprocess_mask_torch(out->masks + (size_t)j * hw, &above_hi, &above_lo, hi, lo,
                               masks_low + (size_t)k * lr * lr, lr, c->img_size, img->input_height,
                               img->input_width, img->height, img->width, count, m->post_buffer);
        // 0/0 (no logit above -1) is NaN officially; 0 filters the same way
        // (NaN >= threshold is false) and keeps the value printable as JSON.
        out->stability[k] = above_lo ? (float)above_hi / (float)above_lo : 0.0f;
    }
    out->stage_ms[SAM_STAGE_POSTPROCESS] = (float)(sam_clock_ms() - t_post);
    return 0;
}

void sam_masks_free(SamMasks *masks) {
    free(masks->low_res_logits);
    free(masks->masks);
    memset(masks, 0, sizeof *masks);
}
