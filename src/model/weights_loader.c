// Official state_dict names -> weight structs, and the config inference.
// Names and shapes follow segment_anything/build_sam.py (_build_sam) and the
// modules it builds; the same table serves .pth and .safetensors inputs.
#include "weights_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LEN 160

typedef struct WeightSpec {
    char name[NAME_LEN];
    int ndim;
    int64_t shape[4];
    const float **field;
} WeightSpec;

typedef struct SpecList {
    WeightSpec *items;
    int count, capacity;
    int failed;  // out of memory while building
} SpecList;

static void spec_add(SpecList *list, const float **field, int ndim, int64_t d0, int64_t d1,
                     int64_t d2, int64_t d3, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static void spec_add(SpecList *list, const float **field, int ndim, int64_t d0, int64_t d1,
                     int64_t d2, int64_t d3, const char *fmt, ...) {
    if (list->count == list->capacity) {
        int cap = list->capacity ? list->capacity * 2 : 256;
        WeightSpec *grown = realloc(list->items, sizeof *grown * (size_t)cap);
        if (!grown) {
            list->failed = 1;
            return;
        }
        list->items = grown;
        list->capacity = cap;
    }
    WeightSpec *s = &list->items[list->count++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->ndim = ndim;
    s->shape[0] = d0, s->shape[1] = d1, s->shape[2] = d2, s->shape[3] = d3;
    s->field = field;
}

#define ADD1(field, a, ...) spec_add(list, (field), 1, (a), 0, 0, 0, __VA_ARGS__)
#define ADD2(field, a, b, ...) spec_add(list, (field), 2, (a), (b), 0, 0, __VA_ARGS__)
#define ADD4(field, a, b, c, d, ...) spec_add(list, (field), 4, (a), (b), (c), (d), __VA_ARGS__)

static void add_linear(SpecList *list, LinearWeights *l, int out, int in, const char *prefix) {
    ADD2(&l->weight, out, in, "%s.weight", prefix);
    ADD1(&l->bias, out, "%s.bias", prefix);
}

static void add_norm(SpecList *list, NormWeights *n, int c, const char *prefix) {
    ADD1(&n->weight, c, "%s.weight", prefix);
    ADD1(&n->bias, c, "%s.bias", prefix);
}

static void add_attention(SpecList *list, AttentionWeights *a, int dim, int internal,
                          const char *prefix) {
    char name[NAME_LEN];
    snprintf(name, sizeof name, "%s.q_proj", prefix);
    add_linear(list, &a->q_proj, internal, dim, name);
    snprintf(name, sizeof name, "%s.k_proj", prefix);
    add_linear(list, &a->k_proj, internal, dim, name);
    snprintf(name, sizeof name, "%s.v_proj", prefix);
    add_linear(list, &a->v_proj, internal, dim, name);
    snprintf(name, sizeof name, "%s.out_proj", prefix);
    add_linear(list, &a->out_proj, dim, internal, name);
}

// The full list of tensors a config implies, in the official state_dict order.
static void build_specs(SpecList *list, SamWeights *w, const SamConfig *c) {
    char p[NAME_LEN];
    VitEncoderWeights *v = &w->vit;
    const int C = c->embed_dim;
    ADD4(&v->pos_embed, 1, c->grid, c->grid, C, "image_encoder.pos_embed");
    ADD4(&v->patch_weight, C, 3, c->patch_size, c->patch_size, "image_encoder.patch_embed.proj.weight");
    ADD1(&v->patch_bias, C, "image_encoder.patch_embed.proj.bias");
    for (int i = 0; i < c->depth; i++) {
        VitBlockWeights *b = &v->blocks[i];
        const int rel = c->is_global[i] ? 2 * c->grid - 1 : 2 * c->window_size - 1;
        snprintf(p, sizeof p, "image_encoder.blocks.%d.norm1", i);
        add_norm(list, &b->norm1, C, p);
        snprintf(p, sizeof p, "image_encoder.blocks.%d.attn.qkv", i);
        add_linear(list, &b->qkv, 3 * C, C, p);
        snprintf(p, sizeof p, "image_encoder.blocks.%d.attn.proj", i);
        add_linear(list, &b->proj, C, C, p);
        ADD2(&b->rel_pos_h, rel, c->head_dim, "image_encoder.blocks.%d.attn.rel_pos_h", i);
        ADD2(&b->rel_pos_w, rel, c->head_dim, "image_encoder.blocks.%d.attn.rel_pos_w", i);
        snprintf(p, sizeof p, "image_encoder.blocks.%d.norm2", i);
        add_norm(list, &b->norm2, C, p);
        snprintf(p, sizeof p, "image_encoder.blocks.%d.mlp.lin1", i);
        add_linear(list, &b->lin1, c->mlp_dim, C, p);
        snprintf(p, sizeof p, "image_encoder.blocks.%d.mlp.lin2", i);
        add_linear(list, &b->lin2, C, c->mlp_dim, p);
    }
    const int D = c->prompt_dim;
    ADD4(&v->neck_conv1, c->out_chans, C, 1, 1, "image_encoder.neck.0.weight");
    add_norm(list, &v->neck_norm1, c->out_chans, "image_encoder.neck.1");
    ADD4(&v->neck_conv2, c->out_chans, c->out_chans, 3, 3, "image_encoder.neck.2.weight");
    add_norm(list, &v->neck_norm2, c->out_chans, "image_encoder.neck.3");

    PromptEncoderWeights *pe = &w->prompt;
    const int M = c->mask_in_chans;
    ADD2(&pe->pe_gaussian, 2, D / 2, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix");
    for (int i = 0; i < 4; i++)
        ADD2(&pe->point_embed[i], 1, D, "prompt_encoder.point_embeddings.%d.weight", i);
    ADD2(&pe->not_a_point_embed, 1, D, "prompt_encoder.not_a_point_embed.weight");
    ADD4(&pe->mask_conv1_w, M / 4, 1, 2, 2, "prompt_encoder.mask_downscaling.0.weight");
    ADD1(&pe->mask_conv1_b, M / 4, "prompt_encoder.mask_downscaling.0.bias");
    add_norm(list, &pe->mask_norm1, M / 4, "prompt_encoder.mask_downscaling.1");
    ADD4(&pe->mask_conv2_w, M, M / 4, 2, 2, "prompt_encoder.mask_downscaling.3.weight");
    ADD1(&pe->mask_conv2_b, M, "prompt_encoder.mask_downscaling.3.bias");
    add_norm(list, &pe->mask_norm2, M, "prompt_encoder.mask_downscaling.4");
    ADD4(&pe->mask_conv3_w, D, M, 1, 1, "prompt_encoder.mask_downscaling.6.weight");
    ADD1(&pe->mask_conv3_b, D, "prompt_encoder.mask_downscaling.6.bias");
    ADD2(&pe->no_mask_embed, 1, D, "prompt_encoder.no_mask_embed.weight");

    MaskDecoderWeights *d = &w->decoder;
    const int I = c->attn_internal_dim;
    for (int i = 0; i < c->decoder_depth; i++) {
        TwoWayBlockWeights *l = &d->layers[i];
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.self_attn", i);
        add_attention(list, &l->self_attn, D, D, p);
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.norm1", i);
        add_norm(list, &l->norm1, D, p);
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.cross_attn_token_to_image", i);
        add_attention(list, &l->cross_attn_token_to_image, D, I, p);
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.norm2", i);
        add_norm(list, &l->norm2, D, p);
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.mlp.lin1", i);
        add_linear(list, &l->mlp_lin1, c->decoder_mlp_dim, D, p);
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.mlp.lin2", i);
        add_linear(list, &l->mlp_lin2, D, c->decoder_mlp_dim, p);
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.norm3", i);
        add_norm(list, &l->norm3, D, p);
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.norm4", i);
        add_norm(list, &l->norm4, D, p);
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.cross_attn_image_to_token", i);
        add_attention(list, &l->cross_attn_image_to_token, D, I, p);
    }
    add_attention(list, &d->final_attn_token_to_image, D, I,
                  "mask_decoder.transformer.final_attn_token_to_image");
    add_norm(list, &d->norm_final_attn, D, "mask_decoder.transformer.norm_final_attn");
    ADD2(&d->iou_token, 1, D, "mask_decoder.iou_token.weight");
    ADD2(&d->mask_tokens, c->num_mask_tokens, D, "mask_decoder.mask_tokens.weight");
    ADD4(&d->upscale1_w, D, c->upscale_dim1, 2, 2, "mask_decoder.output_upscaling.0.weight");
    ADD1(&d->upscale1_b, c->upscale_dim1, "mask_decoder.output_upscaling.0.bias");
    add_norm(list, &d->upscale_norm, c->upscale_dim1, "mask_decoder.output_upscaling.1");
    ADD4(&d->upscale2_w, c->upscale_dim1, c->upscale_dim2, 2, 2,
         "mask_decoder.output_upscaling.3.weight");
    ADD1(&d->upscale2_b, c->upscale_dim2, "mask_decoder.output_upscaling.3.bias");
    for (int t = 0; t < c->num_mask_tokens; t++) {
        const int dims[4] = {D, D, D, c->upscale_dim2};
        for (int j = 0; j < 3; j++) {
            snprintf(p, sizeof p, "mask_decoder.output_hypernetworks_mlps.%d.layers.%d", t, j);
            add_linear(list, &d->hyper_mlps[t][j], dims[j + 1], dims[j], p);
        }
    }
    const int H = c->iou_hidden_dim;
    const int iou_dims[4] = {D, H, H, c->num_mask_tokens};
    for (int j = 0; j < c->iou_head_depth; j++) {
        snprintf(p, sizeof p, "mask_decoder.iou_prediction_head.layers.%d", j);
        add_linear(list, &d->iou_head[j], iou_dims[j + 1], iou_dims[j], p);
    }
}

// ---------------------------------------------------------------------------
// Config inference

static const TensorEntry *require(const TensorTable *t, const char *name, int ndim,
                                  SamError *err) {
    const TensorEntry *e = tensor_table_find(t, name);
    if (!e) {
        sam_error(err, "checkpoint has no tensor '%s': not a SAM checkpoint of the ViT architecture", name);
        return NULL;
    }
    if (e->ndim != ndim) {
        sam_error(err, "tensor '%s' has %d dimensions, expected %d", name, e->ndim, ndim);
        return NULL;
    }
    for (int i = 0; i < ndim; i++) {
        if (e->shape[i] <= 0 || e->shape[i] > (1 << 20)) {
            sam_error(err, "tensor '%s' has an implausible dimension %lld", name,
                      (long long)e->shape[i]);
            return NULL;
        }
    }
    return e;
}

static int count_indexed(const TensorTable *t, const char *fmt, int max) {
    char name[NAME_LEN];
    int n = 0;
    while (n <= max) {
        snprintf(name, sizeof name, fmt, n);
        if (!tensor_table_find(t, name)) break;
        n++;
    }
    return n;
}

int sam_config_infer(SamConfig *c, const TensorTable *t, SamError *err) {
    memset(c, 0, sizeof *c);
    const TensorEntry *e;
    c->encoder_kind = SAM_ENCODER_VIT;
    if (!(e = require(t, "image_encoder.patch_embed.proj.weight", 4, err))) return -1;
    c->embed_dim = (int)e->shape[0];
    c->patch_size = (int)e->shape[2];
    if (e->shape[1] != 3 || e->shape[3] != e->shape[2])
        return sam_error(err, "tensor 'image_encoder.patch_embed.proj.weight' has shape [%lld,%lld,%lld,%lld], expected [C,3,P,P]",
                         (long long)e->shape[0], (long long)e->shape[1], (long long)e->shape[2], (long long)e->shape[3]);
    if (!(e = require(t, "image_encoder.pos_embed", 4, err))) return -1;
    c->grid = (int)e->shape[1];
    if (e->shape[0] != 1 || e->shape[2] != c->grid || e->shape[3] != c->embed_dim)
        return sam_error(err, "tensor 'image_encoder.pos_embed' has shape [%lld,%lld,%lld,%lld], expected [1,G,G,%d]",
                         (long long)e->shape[0], (long long)e->shape[1], (long long)e->shape[2],
                         (long long)e->shape[3], c->embed_dim);
    c->img_size = c->grid * c->patch_size;
    c->depth = count_indexed(t, "image_encoder.blocks.%d.norm1.weight", SAM_MAX_DEPTH);
    if (c->depth == 0) return sam_error(err, "checkpoint has no image_encoder.blocks");
    if (c->depth > SAM_MAX_DEPTH)
        return sam_error(err, "image encoder has more than %d blocks", SAM_MAX_DEPTH);
    char name[NAME_LEN];
    for (int i = 0; i < c->depth; i++) {
        snprintf(name, sizeof name, "image_encoder.blocks.%d.attn.rel_pos_h", i);
        if (!(e = require(t, name, 2, err))) return -1;
        const int len = (int)e->shape[0];
        if (i == 0) c->head_dim = (int)e->shape[1];
        if (e->shape[1] != c->head_dim)
            return sam_error(err, "tensor '%s' has head dim %lld, block 0 has %d", name,
                             (long long)e->shape[1], c->head_dim);
        if (len == 2 * c->grid - 1) {
            c->is_global[i] = 1;
        } else if (len % 2 == 1) {
            const int w = (len + 1) / 2;
            if (c->window_size && c->window_size != w)
                return sam_error(err, "tensor '%s' implies window %d, earlier blocks use %d", name, w, c->window_size);
            c->window_size = w;
        } else {
            return sam_error(err, "tensor '%s' has %d relative positions: expected 2*window-1 or 2*%d-1", name, len, c->grid);
        }
    }
    if (c->embed_dim % c->head_dim != 0)
        return sam_error(err, "embed dim %d is not a multiple of the head dim %d", c->embed_dim, c->head_dim);
    c->num_heads = c->embed_dim / c->head_dim;
    if (!(e = require(t, "image_encoder.blocks.0.mlp.lin1.weight", 2, err))) return -1;
    c->mlp_dim = (int)e->shape[0];
    if (!(e = require(t, "image_encoder.neck.0.weight", 4, err))) return -1;
    c->out_chans = (int)e->shape[0];

    if (!(e = require(t, "prompt_encoder.no_mask_embed.weight", 2, err))) return -1;
    c->prompt_dim = (int)e->shape[1];
    if (c->prompt_dim != c->out_chans)
        return sam_error(err, "prompt dim %d differs from the image encoder's output channels %d", c->prompt_dim, c->out_chans);
    if (c->prompt_dim % 8 != 0) return sam_error(err, "prompt dim %d is not a multiple of 8", c->prompt_dim);
    if (!(e = require(t, "prompt_encoder.mask_downscaling.3.weight", 4, err))) return -1;
    c->mask_in_chans = (int)e->shape[0];
    if (c->mask_in_chans % 4 != 0) return sam_error(err, "mask_in_chans %d is not a multiple of 4", c->mask_in_chans);
    c->decoder_depth = count_indexed(t, "mask_decoder.transformer.layers.%d.norm1.weight", SAM_MAX_DECODER_DEPTH);
    if (c->decoder_depth == 0) return sam_error(err, "checkpoint has no mask_decoder.transformer.layers");
    if (c->decoder_depth > SAM_MAX_DECODER_DEPTH)
        return sam_error(err, "mask decoder has more than %d layers", SAM_MAX_DECODER_DEPTH);
    if (!(e = require(t, "mask_decoder.transformer.layers.0.mlp.lin1.weight", 2, err))) return -1;
    c->decoder_mlp_dim = (int)e->shape[0];
    if (!(e = require(t, "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight", 2, err))) return -1;
    c->attn_internal_dim = (int)e->shape[0];
    if (!(e = require(t, "mask_decoder.mask_tokens.weight", 2, err))) return -1;
    c->num_mask_tokens = (int)e->shape[0];
    if (c->num_mask_tokens < 2 || c->num_mask_tokens > 8)
        return sam_error(err, "mask decoder has %d mask tokens, expected 2 to 8", c->num_mask_tokens);
    if (!(e = require(t, "mask_decoder.iou_prediction_head.layers.0.weight", 2, err))) return -1;
    c->iou_hidden_dim = (int)e->shape[0];
    c->iou_head_depth = count_indexed(t, "mask_decoder.iou_prediction_head.layers.%d.weight", 8);
    if (c->iou_head_depth != 3)
        return sam_error(err, "IoU head has %d layers, this runtime supports 3 (as the official models)", c->iou_head_depth);
    if (!(e = require(t, "mask_decoder.output_upscaling.0.weight", 4, err))) return -1;
    c->upscale_dim1 = (int)e->shape[1];
    if (!(e = require(t, "mask_decoder.output_upscaling.3.weight", 4, err))) return -1;
    c->upscale_dim2 = (int)e->shape[1];

    c->decoder_heads = 8;
    const char *heads = tensor_table_meta(t, "decoder_heads");
    if (heads) {
        char *end;
        long h = strtol(heads, &end, 10);
        if (*end || h <= 0 || h > 64) return sam_error(err, "metadata decoder_heads='%s' is not a valid head count", heads);
        c->decoder_heads = (int)h;
    }
    if (c->prompt_dim % c->decoder_heads || c->attn_internal_dim % c->decoder_heads)
        return sam_error(err, "decoder widths %d/%d are not multiples of %d heads", c->prompt_dim, c->attn_internal_dim, c->decoder_heads);
    int any_windowed = 0;
    for (int i = 0; i < c->depth; i++) any_windowed |= !c->is_global[i];
    if (!any_windowed) c->window_size = 0;
    return 0;
}

const char *sam_config_type_name(const SamConfig *c) {
    if (c->encoder_kind != SAM_ENCODER_VIT || c->img_size != 1024 || c->patch_size != 16 ||
        c->prompt_dim != 256 || c->window_size != 14)
        return "vit_custom";
    if (c->embed_dim == 768 && c->depth == 12 && c->num_heads == 12) return "vit_b";
    if (c->embed_dim == 1024 && c->depth == 24 && c->num_heads == 16) return "vit_l";
    if (c->embed_dim == 1280 && c->depth == 32 && c->num_heads == 16) return "vit_h";
    return "vit_custom";
}

void sam_config_describe(const SamConfig *c, char *out, size_t out_len) {
    char globals[SAM_MAX_DEPTH * 4] = "";
    size_t used = 0;
    for (int i = 0; i < c->depth && used + 4 < sizeof globals; i++) {
        if (!c->is_global[i]) continue;
        used += (size_t)snprintf(globals + used, sizeof globals - used, "%s%d", used ? " " : "", i);
    }
    snprintf(out, out_len,
             "img_size=%d,patch_size=%d,embed_dim=%d,depth=%d,num_heads=%d,head_dim=%d,"
             "mlp_dim=%d,window_size=%d,global_attn=%s,out_chans=%d,prompt_dim=%d,"
             "decoder_depth=%d,decoder_heads=%d,decoder_mlp_dim=%d,num_mask_tokens=%d",
             c->img_size, c->patch_size, c->embed_dim, c->depth, c->num_heads, c->head_dim,
             c->mlp_dim, c->window_size, globals, c->out_chans, c->prompt_dim, c->decoder_depth,
             c->decoder_heads, c->decoder_mlp_dim, c->num_mask_tokens);
}

// ---------------------------------------------------------------------------
// Binding

static int is_float_dtype(TensorDType d) {
    return d == DTYPE_F32 || d == DTYPE_F16 || d == DTYPE_BF16 || d == DTYPE_F64;
}

static void format_shape(char *out, size_t len, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(out, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (used < len) snprintf(out + used, len - used, "]");
}

int sam_weights_bind(SamWeights *weights, float **buffer, size_t *buffer_floats,
                     const SamConfig *cfg, const TensorTable *table, SamError *err) {
    memset(weights, 0, sizeof *weights);
    *buffer = NULL;
    *buffer_floats = 0;
    SpecList list = {0};
    build_specs(&list, weights, cfg);
    int rc = -1;
    int *used = NULL;
    if (list.failed) {
        sam_error(err, "out of memory listing the model's tensors");
        goto done;
    }
    used = calloc((size_t)table->count + 1, sizeof *used);
    if (!used) {
        sam_error(err, "out of memory");
        goto done;
    }
    size_t total = 0;
    for (int i = 0; i < list.count; i++) {
        const WeightSpec *s = &list.items[i];
        const TensorEntry *e = tensor_table_find(table, s->name);
        if (!e) {
            sam_error(err, "checkpoint is missing tensor '%s'", s->name);
            goto done;
        }
        used[e - table->entries] = 1;
        if (!is_float_dtype(e->dtype)) {
            sam_error(err, "tensor '%s' has dtype %s, expected a floating-point type", s->name,
                      tensor_dtype_name(e->dtype));
            goto done;
        }
        int same = e->ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++) same = e->shape[d] == s->shape[d];
        if (!same) {
            char want[96], found[96];
            format_shape(want, sizeof want, s->ndim, s->shape);
            format_shape(found, sizeof found, e->ndim, e->shape);
            sam_error(err, "tensor '%s' has shape %s, expected %s", s->name, found, want);
            goto done;
        }
        total += (size_t)tensor_numel(e);
    }
    for (int i = 0; i < table->count; i++) {
        if (!used[i]) {
            sam_error(err, "checkpoint has an unexpected tensor '%s' (not part of this SAM architecture)",
                      table->entries[i].name);
            goto done;
        }
    }
    float *buf = malloc(total * sizeof(float) + 64);
    if (!buf) {
        sam_error(err, "out of memory allocating %zu MB of weights", total * sizeof(float) >> 20);
        goto done;
    }
    size_t offset = 0;
    for (int i = 0; i < list.count; i++) {
        const TensorEntry *e = tensor_table_find(table, list.items[i].name);
        if (tensor_to_f32(e, buf + offset, err)) {
            sam_error_prefix(err, "tensor '%s'", e->name);
            free(buf);
            goto done;
        }
        *list.items[i].field = buf + offset;
        offset += (size_t)tensor_numel(e);
    }
    *buffer = buf;
    *buffer_floats = total;
    rc = 0;
done:
    free(used);
    free(list.items);
    return rc;
}
