// Test tool: runs the prompt encoder and the mask decoder on tensors written
// by tests/decoder.test.mjs (random weights from the PyTorch reference,
// tools/sam_ref/model.py) and writes every stage for comparison.
//   decoder_dump DIR CASE [reference|fast|state]
// The decoder runs on the given path: the straightforward transcription,
// the rearranged attentions (default), or those plus the per-image state
// (mask_decoder_prepare_image; only for prompts without a mask input).
// DIR/w/<state_dict key>.f32       prompt_encoder.* and mask_decoder.* weights (raw f32)
// DIR/embedding.f32                image embedding (256, 64, 64)
// DIR/CASE/prompt.txt              "n_points has_box has_mask"
// DIR/CASE/{coords,box,mask}.f32, labels.i32   the prompt in the 1024 input frame
// Writes DIR/CASE/c_{sparse,dense_pe,dense,masks,iou}.f32.
// The official decoder configuration (SAM ViT-B/L/H all share it) is fixed here.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "model/mask_decoder.h"
#include "model/prompt_encoder.h"

#define MAX_TENSORS 256

typedef struct Loaded {
    float *bufs[MAX_TENSORS];
    int count;
    const char *dir;
    int failed;
} Loaded;

static void *read_raw(const char *path, size_t bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *buf = malloc(bytes ? bytes : 1);
    size_t got = buf ? fread(buf, 1, bytes, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != bytes || extra) {
        free(buf);
        return NULL;
    }
    return buf;
}

// Reads DIR/w/<name>.f32, which must hold exactly n floats.
static const float *load(Loaded *l, const char *name, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/w/%s.f32", l->dir, name);
    float *p = read_raw(path, n * sizeof(float));
    if (!p || l->count == MAX_TENSORS) {
        fprintf(stderr, "cannot read %zu floats from %s\n", n, path);
        l->failed = 1;
        free(p);
        return NULL;
    }
    l->bufs[l->count++] = p;
    return p;
}

static LinearWeights load_linear(Loaded *l, const char *prefix, size_t out, size_t in) {
    char name[512];
    LinearWeights lw;
    snprintf(name, sizeof name, "%.400s.weight", prefix);
    lw.weight = load(l, name, out * in);
    snprintf(name, sizeof name, "%.400s.bias", prefix);
    lw.bias = load(l, name, out);
    return lw;
}

static NormWeights load_norm(Loaded *l, const char *prefix, size_t c) {
    LinearWeights lw = load_linear(l, prefix, c, 1);
    NormWeights n = {lw.weight, lw.bias};
    return n;
}

static AttentionWeights load_attention(Loaded *l, const char *prefix, size_t d, size_t internal) {
    char name[512];
    AttentionWeights a;
    snprintf(name, sizeof name, "%.400s.q_proj", prefix);
    a.q_proj = load_linear(l, name, internal, d);
    snprintf(name, sizeof name, "%.400s.k_proj", prefix);
    a.k_proj = load_linear(l, name, internal, d);
    snprintf(name, sizeof name, "%.400s.v_proj", prefix);
    a.v_proj = load_linear(l, name, internal, d);
    snprintf(name, sizeof name, "%.400s.out_proj", prefix);
    a.out_proj = load_linear(l, name, d, internal);
    return a;
}

static void load_weights(Loaded *l, PromptEncoderWeights *pw, MaskDecoderWeights *dw,
                         const SamConfig *c) {
    const size_t D = (size_t)c->prompt_dim, M = (size_t)c->mask_in_chans;
    const size_t Ic = (size_t)c->attn_internal_dim;
    char name[512];
    pw->pe_gaussian = load(l, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", D);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "prompt_encoder.point_embeddings.%d.weight", i);
        pw->point_embed[i] = load(l, name, D);
    }
    pw->not_a_point_embed = load(l, "prompt_encoder.not_a_point_embed.weight", D);
    pw->mask_conv1_w = load(l, "prompt_encoder.mask_downscaling.0.weight", M / 4 * 4);
    pw->mask_conv1_b = load(l, "prompt_encoder.mask_downscaling.0.bias", M / 4);
    pw->mask_norm1 = load_norm(l, "prompt_encoder.mask_downscaling.1", M / 4);
    pw->mask_conv2_w = load(l, "prompt_encoder.mask_downscaling.3.weight", M * (M / 4) * 4);
    pw->mask_conv2_b = load(l, "prompt_encoder.mask_downscaling.3.bias", M);
    pw->mask_norm2 = load_norm(l, "prompt_encoder.mask_downscaling.4", M);
    pw->mask_conv3_w = load(l, "prompt_encoder.mask_downscaling.6.weight", D * M);
    pw->mask_conv3_b = load(l, "prompt_encoder.mask_downscaling.6.bias", D);
    pw->no_mask_embed = load(l, "prompt_encoder.no_mask_embed.weight", D);

    for (int i = 0; i < c->decoder_depth; i++) {
        TwoWayBlockWeights *b = &dw->layers[i];
        char p[256];
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d", i);
        snprintf(name, sizeof name, "%s.self_attn", p);
        b->self_attn = load_attention(l, name, D, D);
        snprintf(name, sizeof name, "%s.norm1", p);
        b->norm1 = load_norm(l, name, D);
        snprintf(name, sizeof name, "%s.cross_attn_token_to_image", p);
        b->cross_attn_token_to_image = load_attention(l, name, D, Ic);
        snprintf(name, sizeof name, "%s.norm2", p);
        b->norm2 = load_norm(l, name, D);
        snprintf(name, sizeof name, "%s.mlp.lin1", p);
        b->mlp_lin1 = load_linear(l, name, (size_t)c->decoder_mlp_dim, D);
        snprintf(name, sizeof name, "%s.mlp.lin2", p);
        b->mlp_lin2 = load_linear(l, name, D, (size_t)c->decoder_mlp_dim);
        snprintf(name, sizeof name, "%s.norm3", p);
        b->norm3 = load_norm(l, name, D);
        snprintf(name, sizeof name, "%s.norm4", p);
        b->norm4 = load_norm(l, name, D);
        snprintf(name, sizeof name, "%s.cross_attn_image_to_token", p);
        b->cross_attn_image_to_token = load_attention(l, name, D, Ic);
    }
    dw->final_attn_token_to_image =
        load_attention(l, "mask_decoder.transformer.final_attn_token_to_image", D, Ic);
    dw->norm_final_attn = load_norm(l, "mask_decoder.transformer.norm_final_attn", D);
    dw->iou_token = load(l, "mask_decoder.iou_token.weight", D);
    dw->mask_tokens = load(l, "mask_decoder.mask_tokens.weight", (size_t)c->num_mask_tokens * D);
    const size_t C1 = (size_t)c->upscale_dim1, C2 = (size_t)c->upscale_dim2;
    dw->upscale1_w = load(l, "mask_decoder.output_upscaling.0.weight", D * C1 * 4);
    dw->upscale1_b = load(l, "mask_decoder.output_upscaling.0.bias", C1);
    dw->upscale_norm = load_norm(l, "mask_decoder.output_upscaling.1", C1);
    dw->upscale2_w = load(l, "mask_decoder.output_upscaling.3.weight", C1 * C2 * 4);
    dw->upscale2_b = load(l, "mask_decoder.output_upscaling.3.bias", C2);
    for (int t = 0; t < c->num_mask_tokens; t++) {
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "mask_decoder.output_hypernetworks_mlps.%d.layers.%d", t,
                     k);
            dw->hyper_mlps[t][k] = load_linear(l, name, k == 2 ? C2 : D, D);
        }
    }
    const size_t H = (size_t)c->iou_hidden_dim;
    for (int k = 0; k < c->iou_head_depth; k++) {
        snprintf(name, sizeof name, "mask_decoder.iou_prediction_head.layers.%d", k);
        const size_t out = k == c->iou_head_depth - 1 ? (size_t)c->num_mask_tokens : H;
        dw->iou_head[k] = load_linear(l, name, out, k == 0 ? D : H);
    }
}

static int write_raw(const char *dir, const char *cs, const char *name, const void *data,
                     size_t bytes) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, cs, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes) {
        fprintf(stderr, "cannot write %s\n", path);
        if (f) fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s DIR CASE [reference|fast|state]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *cs = argv[2], *path_name = argc == 4 ? argv[3] : "fast";
    SamConfig c;
    memset(&c, 0, sizeof c);
    c.img_size = 1024;
    c.grid = 64;
    c.prompt_dim = 256;
    c.mask_in_chans = 16;
    c.decoder_depth = 2;
    c.decoder_heads = 8;
    c.decoder_mlp_dim = 2048;
    c.attn_internal_dim = 128;
    c.num_mask_tokens = 4;
    c.iou_hidden_dim = 256;
    c.iou_head_depth = 3;
    c.upscale_dim1 = 64;
    c.upscale_dim2 = 32;
    const int D = c.prompt_dim, G = c.grid, lr = 4 * G;
    const size_t dhw = (size_t)D * G * G;

    Loaded l = {.dir = dir};
    PromptEncoderWeights pw;
    MaskDecoderWeights dw;
    memset(&pw, 0, sizeof pw);
    memset(&dw, 0, sizeof dw);
    load_weights(&l, &pw, &dw, &c);
    char path[1024];
    snprintf(path, sizeof path, "%s/embedding.f32", dir);
    float *embedding = read_raw(path, dhw * sizeof(float));
    int n_points = 0, has_box = 0, has_mask = 0;
    snprintf(path, sizeof path, "%s/%s/prompt.txt", dir, cs);
    FILE *f = fopen(path, "r");
    if (!f || fscanf(f, "%d %d %d", &n_points, &has_box, &has_mask) != 3 || l.failed ||
        !embedding) {
        fprintf(stderr, "cannot read the inputs (%s)\n", path);
        return 1;
    }
    fclose(f);
    float *coords = NULL, *box = NULL, *mask = NULL;
    int *labels = NULL;
    if (n_points > 0) {
        snprintf(path, sizeof path, "%s/%s/coords.f32", dir, cs);
        coords = read_raw(path, sizeof(float) * 2 * (size_t)n_points);
        snprintf(path, sizeof path, "%s/%s/labels.i32", dir, cs);
        labels = read_raw(path, sizeof(int) * (size_t)n_points);
        if (!coords || !labels) return fprintf(stderr, "cannot read points\n"), 1;
    }
    if (has_box) {
        snprintf(path, sizeof path, "%s/%s/box.f32", dir, cs);
        if (!(box = read_raw(path, sizeof(float) * 4))) return fprintf(stderr, "no box\n"), 1;
    }
    if (has_mask) {
        snprintf(path, sizeof path, "%s/%s/mask.f32", dir, cs);
        mask = read_raw(path, sizeof(float) * lr * lr);
        if (!mask) return fprintf(stderr, "no mask\n"), 1;
    }

    const int n_sparse = prompt_sparse_count(n_points, has_box);
    float *sparse = malloc(sizeof(float) * ((size_t)n_sparse * D + 1));
    float *dense_pe = malloc(sizeof(float) * dhw);
    float *dense = malloc(sizeof(float) * dhw);
    float *masks = malloc(sizeof(float) * (size_t)c.num_mask_tokens * lr * lr);
    float iou[8];
    // The arena sized by the two scratch functions alone: a sizing bug fails here.
    const size_t need = prompt_dense_scratch_floats(&c) > mask_decoder_scratch_floats(&c, n_sparse)
                            ? prompt_dense_scratch_floats(&c)
                            : mask_decoder_scratch_floats(&c, n_sparse);
    Arena arena;
    if (!sparse || !dense_pe || !dense || !masks || arena_init(&arena, need * sizeof(float))) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    SamError err = {{0}};
    prompt_encode_sparse(sparse, coords, labels, n_points, box, &pw, &c);
    prompt_dense_pe(dense_pe, &pw, &c);
    MaskDecoderPlan plan;
    float *state_buffer = malloc(sizeof(float) * mask_decoder_image_state_floats(&c));
    float *prepare_scratch = malloc(sizeof(float) * mask_decoder_prepare_scratch_floats(&c));
    if (mask_decoder_plan_init(&plan, dense_pe, &dw, &c) || !state_buffer || !prepare_scratch)
        return fprintf(stderr, "out of memory\n"), 1;
    DecoderImageState state;
    const DecoderImageState *use_state = NULL;
    if (strcmp(path_name, "state") == 0) {
        if (has_mask) return fprintf(stderr, "the per-image state is for prompts without a mask\n"), 1;
        mask_decoder_prepare_image(&state, state_buffer, embedding, pw.no_mask_embed, &plan, &dw,
                                   &c, prepare_scratch);
        use_state = &state;
    }
    const DecoderPath decoder_path = strcmp(path_name, "reference") == 0 ? DECODER_PATH_REFERENCE
                                                                 : DECODER_PATH_FAST;
    if (prompt_encode_dense(dense, mask, &pw, &c, &arena, &err) ||
        mask_decoder_forward(masks, iou, embedding, dense, use_state, &plan, sparse, n_sparse, 0,
                             c.num_mask_tokens, decoder_path, &c, &arena, NULL, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    // A forward must leave the arena as it found it.
    if (arena.used != 0) {
        fprintf(stderr, "arena not reset: %zu bytes in use\n", arena.used);
        return 1;
    }
    printf("n_sparse %d arena high water %zu of %zu bytes\n", n_sparse, arena.high_water,
           arena.capacity);
    if (write_raw(dir, cs, "c_sparse.f32", sparse, sizeof(float) * (size_t)n_sparse * D) ||
        write_raw(dir, cs, "c_dense_pe.f32", dense_pe, sizeof(float) * dhw) ||
        write_raw(dir, cs, "c_dense.f32", dense, sizeof(float) * dhw) ||
        write_raw(dir, cs, "c_masks.f32", masks,
                  sizeof(float) * (size_t)c.num_mask_tokens * lr * lr) ||
        write_raw(dir, cs, "c_iou.f32", iou, sizeof(float) * (size_t)c.num_mask_tokens))
        return 1;
    arena_free(&arena);
    for (int i = 0; i < l.count; i++) free(l.bufs[i]);
    free(embedding);
    free(coords);
    free(labels);
    free(box);
    free(mask);
    free(sparse);
    free(dense_pe);
    free(dense);
    free(masks);
    mask_decoder_plan_free(&plan);
    free(state_buffer);
    free(prepare_scratch);
    return 0;
}
