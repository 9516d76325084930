// Official state_dict names -> weight structs, and the config inference.
// Names and shapes follow segment_anything/build_sam.py (_build_sam) and the
// modules it builds; the same table serves .pth and .safetensors inputs.
#include "weights_loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyvit_encoder.h"

#define NAME_LEN 160

// Spec flags. SPEC_UNUSED: in the official checkpoint and checked for shape,
// but not loaded (field NULL), e.g. MobileSAM's classifier head.
// SPEC_OPTIONAL: may be absent; together with SPEC_INT, an integer buffer
// (BatchNorm num_batches_tracked; attention_bias_idxs, which the official
// TinyViT does not persist but another exporter might).
enum { SPEC_UNUSED = 1, SPEC_OPTIONAL = 2, SPEC_INT = 4 };

typedef struct WeightSpec {
    char name[NAME_LEN];
    int ndim;
    int64_t shape[4];
    const float **field;
    int flags;
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
    s->flags = 0;
}

// Sets the flags of the spec added last.
static void spec_flags(SpecList *list, int flags) {
    if (!list->failed && list->count > 0) list->items[list->count - 1].flags = flags;
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

// ---------------------------------------------------------------------------
// MobileSAM's TinyViT encoder (tiny_vit_sam.py as built by build_sam_vit_t)

// Conv2d_BN "<prefix>.c.weight" + "<prefix>.bn.{weight,bias,running_mean,running_var}"
// (+ num_batches_tracked, an int64 scalar, when present).
static void add_conv_bn(SpecList *list, ConvBnWeights *cb, int out, int in, int k,
                        const char *prefix) {
    ADD4(&cb->weight, out, in, k, k, "%s.c.weight", prefix);
    ADD1(&cb->bn_weight, out, "%s.bn.weight", prefix);
    ADD1(&cb->bias, out, "%s.bn.bias", prefix);
    ADD1(&cb->bn_mean, out, "%s.bn.running_mean", prefix);
    ADD1(&cb->bn_var, out, "%s.bn.running_var", prefix);
    spec_add(list, NULL, 0, 0, 0, 0, 0, "%s.bn.num_batches_tracked", prefix);
    spec_flags(list, SPEC_UNUSED | SPEC_OPTIONAL | SPEC_INT);
}

static void add_conv3(SpecList *list, TinyVitConv3Weights *m, int in, int hidden, int out,
                      const char *prefix) {
    char p[NAME_LEN + 8];
    snprintf(p, sizeof p, "%s.conv1", prefix);
    add_conv_bn(list, &m->conv1, hidden, in, 1, p);
    snprintf(p, sizeof p, "%s.conv2", prefix);
    add_conv_bn(list, &m->conv2, hidden, 1, 3, p);
    snprintf(p, sizeof p, "%s.conv3", prefix);
    add_conv_bn(list, &m->conv3, out, hidden, 1, p);
}

static void build_tinyvit_specs(SpecList *list, TinyVitEncoderWeights *v, const SamConfig *c) {
    char p[NAME_LEN];
    const int *dims = c->tv_dims;
    add_conv_bn(list, &v->stem1, dims[0] / 2, 3, 3, "image_encoder.patch_embed.seq.0");
    add_conv_bn(list, &v->stem2, dims[0], dims[0] / 2, 3, "image_encoder.patch_embed.seq.2");
    for (int s = 0; s < TINYVIT_STAGES; s++) {
        for (int i = 0; i < c->tv_depths[s]; i++) {
            snprintf(p, sizeof p, "image_encoder.layers.%d.blocks.%d", s, i);
            if (s == 0) {
                add_conv3(list, &v->mbconv[i], dims[0], c->tv_mbconv_hidden, dims[0], p);
                continue;
            }
            TinyVitBlockWeights *b = &v->blocks[s][i];
            const int C = dims[s], ws = c->tv_windows[s];
            char q[NAME_LEN + 16];
            ADD2(&b->attention_biases, c->tv_heads[s], ws * ws, "%s.attn.attention_biases", p);
            spec_add(list, NULL, 2, ws * ws, ws * ws, 0, 0, "%s.attn.attention_bias_idxs", p);
            spec_flags(list, SPEC_UNUSED | SPEC_OPTIONAL | SPEC_INT);
            snprintf(q, sizeof q, "%s.attn.norm", p);
            add_norm(list, &b->attn_norm, C, q);
            snprintf(q, sizeof q, "%s.attn.qkv", p);
            add_linear(list, &b->qkv, 3 * C, C, q);
            snprintf(q, sizeof q, "%s.attn.proj", p);
            add_linear(list, &b->proj, C, C, q);
            snprintf(q, sizeof q, "%s.mlp.norm", p);
            add_norm(list, &b->mlp_norm, C, q);
            snprintf(q, sizeof q, "%s.mlp.fc1", p);
            add_linear(list, &b->fc1, c->tv_mlp[s], C, q);
            snprintf(q, sizeof q, "%s.mlp.fc2", p);
            add_linear(list, &b->fc2, C, c->tv_mlp[s], q);
            snprintf(q, sizeof q, "%s.local_conv", p);
            add_conv_bn(list, &b->local_conv, C, 1, 3, q);
        }
        if (s < TINYVIT_STAGES - 1) {
            snprintf(p, sizeof p, "image_encoder.layers.%d.downsample", s);
            add_conv3(list, &v->merge[s], dims[s], dims[s + 1], dims[s + 1], p);
        }
    }
    // The classifier (in mobile_sam.pt, unused by MobileSAM; a checkpoint without it loads too).
    const int last = dims[TINYVIT_STAGES - 1];
    ADD1(NULL, last, "image_encoder.norm_head.weight");
    spec_flags(list, SPEC_UNUSED | SPEC_OPTIONAL);
    ADD1(NULL, last, "image_encoder.norm_head.bias");
    spec_flags(list, SPEC_UNUSED | SPEC_OPTIONAL);
    ADD2(NULL, c->tv_num_classes, last, "image_encoder.head.weight");
    spec_flags(list, SPEC_UNUSED | SPEC_OPTIONAL);
    ADD1(NULL, c->tv_num_classes, "image_encoder.head.bias");
    spec_flags(list, SPEC_UNUSED | SPEC_OPTIONAL);
    ADD4(&v->neck_conv1, c->out_chans, last, 1, 1, "image_encoder.neck.0.weight");
    add_norm(list, &v->neck_norm1, c->out_chans, "image_encoder.neck.1");
    ADD4(&v->neck_conv2, c->out_chans, c->out_chans, 3, 3, "image_encoder.neck.2.weight");
    add_norm(list, &v->neck_norm2, c->out_chans, "image_encoder.neck.3");
}

static void build_vit_specs(SpecList *list, VitEncoderWeights *v, const SamConfig *c) {
    char p[NAME_LEN];
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
    ADD4(&v->neck_conv1, c->out_chans, C, 1, 1, "image_encoder.neck.0.weight");
    add_norm(list, &v->neck_norm1, c->out_chans, "image_encoder.neck.1");
    ADD4(&v->neck_conv2, c->out_chans, c->out_chans, 3, 3, "image_encoder.neck.2.weight");
    add_norm(list, &v->neck_norm2, c->out_chans, "image_encoder.neck.3");
}

// The full list of tensors a config implies, in the official state_dict order.
static void build_specs(SpecList *list, SamWeights *w, const SamConfig *c) {
    char p[NAME_LEN];
    if (c->encoder_kind == SAM_ENCODER_TINYVIT)
        build_tinyvit_specs(list, &w->tinyvit, c);
    else
        build_vit_specs(list, &w->vit, c);
    const int D = c->prompt_dim;

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

// MobileSAM's TinyViT (tiny_vit_sam.py, build_sam_vit_t). See config.h for
// what the shapes tell and what is fixed.
#define TINYVIT_IMG_SIZE 1024

static int tinyvit_config_infer(SamConfig *c, const TensorTable *t, SamError *err) {
    const TensorEntry *e;
    char name[NAME_LEN];
    c->encoder_kind = SAM_ENCODER_TINYVIT;
    if (!(e = require(t, "image_encoder.patch_embed.seq.2.c.weight", 4, err))) return -1;
    c->tv_dims[0] = (int)e->shape[0];
    if (c->tv_dims[0] % 2)
        return sam_error(err, "tensor 'image_encoder.patch_embed.seq.2.c.weight' has %d output channels, expected an even number",
                         c->tv_dims[0]);
    c->tv_depths[0] = count_indexed(t, "image_encoder.layers.0.blocks.%d.conv1.c.weight", TINYVIT_MAX_DEPTH);
    if (c->tv_depths[0] == 0) return sam_error(err, "TinyViT checkpoint has no image_encoder.layers.0.blocks (MBConv)");
    if (!(e = require(t, "image_encoder.layers.0.blocks.0.conv1.c.weight", 4, err))) return -1;
    c->tv_mbconv_hidden = (int)e->shape[0];
    for (int s = 1; s < TINYVIT_STAGES; s++) {
        int d = 0;
        for (; d <= TINYVIT_MAX_DEPTH; d++) {
            snprintf(name, sizeof name, "image_encoder.layers.%d.blocks.%d.attn.norm.weight", s, d);
            if (!tensor_table_find(t, name)) break;
        }
        if (d == 0) return sam_error(err, "TinyViT checkpoint has no image_encoder.layers.%d.blocks", s);
        c->tv_depths[s] = d;
        snprintf(name, sizeof name, "image_encoder.layers.%d.blocks.0.attn.norm.weight", s);
        if (!(e = require(t, name, 1, err))) return -1;
        c->tv_dims[s] = (int)e->shape[0];
        // attention_biases (heads, ws * ws): the heads and the window size.
        snprintf(name, sizeof name, "image_encoder.layers.%d.blocks.0.attn.attention_biases", s);
        if (!(e = require(t, name, 2, err))) return -1;
        c->tv_heads[s] = (int)e->shape[0];
        const int ws = (int)lround(sqrt((double)e->shape[1]));
        if ((int64_t)ws * ws != e->shape[1])
            return sam_error(err, "tensor '%s' has %lld offsets per head, expected window^2", name,
                             (long long)e->shape[1]);
        c->tv_windows[s] = ws;
        if (c->tv_dims[s] % c->tv_heads[s])
            return sam_error(err, "stage %d width %d is not a multiple of its %d heads (tensor '%s')", s,
                             c->tv_dims[s], c->tv_heads[s], name);
        snprintf(name, sizeof name, "image_encoder.layers.%d.blocks.0.mlp.fc1.weight", s);
        if (!(e = require(t, name, 2, err))) return -1;
        c->tv_mlp[s] = (int)e->shape[0];
    }
    for (int s = 0; s < TINYVIT_STAGES; s++)
        if (c->tv_depths[s] > TINYVIT_MAX_DEPTH)
            return sam_error(err, "TinyViT stage %d has more than %d blocks", s, TINYVIT_MAX_DEPTH);
    // Resolutions: the stem divides by 4; each patch merging's depthwise conv
    // (3x3, pad 1) has stride 1 for output widths 320/448/576, else 2. The
    // official TinyViT hard-codes the stage resolutions img/4 / 2^(i or i-1 for
    // the last) and a 64 x 64 grid before the neck: the strides must agree.
    c->tv_res[0] = TINYVIT_IMG_SIZE / 4;
    for (int s = 0; s + 1 < TINYVIT_STAGES; s++) {
        const int out = c->tv_dims[s + 1];
        c->tv_merge_stride[s] = out == 320 || out == 448 || out == 576 ? 1 : 2;
        c->tv_res[s + 1] = (c->tv_res[s] - 1) / c->tv_merge_stride[s] + 1;
        const int official = c->tv_res[0] >> (s + 1 == 3 ? 2 : s + 1);
        if (c->tv_res[s + 1] != official)
            return sam_error(err, "TinyViT stage %d: patch merging to width %d gives a %dx%d grid, the architecture expects %dx%d",
                             s + 1, out, c->tv_res[s + 1], c->tv_res[s + 1], official, official);
    }
    const int last = c->tv_dims[TINYVIT_STAGES - 1];
    e = tensor_table_find(t, "image_encoder.head.weight");
    c->tv_num_classes = e && e->ndim == 2 ? (int)e->shape[0] : 1000;  // shape checked when binding
    c->img_size = TINYVIT_IMG_SIZE;
    c->grid = c->tv_res[TINYVIT_STAGES - 1];
    c->patch_size = c->img_size / c->grid;
    // The ViT fields describe the last stage (model id, info).
    c->embed_dim = last;
    c->depth = 0;
    for (int s = 0; s < TINYVIT_STAGES; s++) c->depth += c->tv_depths[s];
    c->num_heads = c->tv_heads[TINYVIT_STAGES - 1];
    c->head_dim = last / c->num_heads;
    c->mlp_dim = c->tv_mlp[TINYVIT_STAGES - 1];
    c->window_size = c->tv_windows[TINYVIT_STAGES - 1];
    if (!(e = require(t, "image_encoder.neck.0.weight", 4, err))) return -1;
    c->out_chans = (int)e->shape[0];
    return 0;
}

static int vit_config_infer(SamConfig *c, const TensorTable *t, SamError *err) {
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
    return 0;
}

int sam_config_infer(SamConfig *c, const TensorTable *t, SamError *err) {
    memset(c, 0, sizeof *c);
    const TensorEntry *e;
    // MobileSAM's stem is a Conv2d_BN; SAM's ViT has patch_embed.proj.
    const int rc = tensor_table_find(t, "image_encoder.patch_embed.seq.0.c.weight")
                       ? tinyvit_config_infer(c, t, err)
                       : vit_config_infer(c, t, err);
    if (rc) return -1;

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
    if (c->encoder_kind == SAM_ENCODER_TINYVIT) {
        // build_sam_vit_t: dims 64/128/160/320, depths 2/2/6/2, heads -/4/5/10, windows -/7/14/7.
        static const int dims[4] = {64, 128, 160, 320}, depths[4] = {2, 2, 6, 2};
        static const int heads[4] = {0, 4, 5, 10}, windows[4] = {0, 7, 14, 7};
        int official = c->prompt_dim == 256 && c->tv_mbconv_hidden == 256;
        for (int s = 0; s < TINYVIT_STAGES; s++)
            official &= c->tv_dims[s] == dims[s] && c->tv_depths[s] == depths[s] &&
                        c->tv_heads[s] == heads[s] && c->tv_windows[s] == windows[s] &&
                        (s == 0 || c->tv_mlp[s] == 4 * dims[s]);
        return official ? "vit_t" : "tinyvit_custom";
    }
    if (c->encoder_kind != SAM_ENCODER_VIT || c->img_size != 1024 || c->patch_size != 16 ||
        c->prompt_dim != 256 || c->window_size != 14)
        return "vit_custom";
    if (c->embed_dim == 768 && c->depth == 12 && c->num_heads == 12) return "vit_b";
    if (c->embed_dim == 1024 && c->depth == 24 && c->num_heads == 16) return "vit_l";
    if (c->embed_dim == 1280 && c->depth == 32 && c->num_heads == 16) return "vit_h";
    return "vit_custom";
}

void sam_config_describe(const SamConfig *c, char *out, size_t out_len) {
    if (c->encoder_kind == SAM_ENCODER_TINYVIT) {
        const int *d = c->tv_dims, *n = c->tv_depths, *h = c->tv_heads, *w = c->tv_windows;
        snprintf(out, out_len,
                 "encoder=tinyvit,img_size=%d,embed_dims=%d %d %d %d,depths=%d %d %d %d,"
                 "num_heads=%d %d %d,window_sizes=%d %d %d,mlp_dims=%d %d %d,mbconv_hidden=%d,"
                 "out_chans=%d,prompt_dim=%d,decoder_depth=%d,decoder_heads=%d,"
                 "decoder_mlp_dim=%d,num_mask_tokens=%d",
                 c->img_size, d[0], d[1], d[2], d[3], n[0], n[1], n[2], n[3], h[1], h[2], h[3],
                 w[1], w[2], w[3], c->tv_mlp[1], c->tv_mlp[2], c->tv_mlp[3], c->tv_mbconv_hidden,
                 c->out_chans, c->prompt_dim, c->decoder_depth, c->decoder_heads,
                 c->decoder_mlp_dim, c->num_mask_tokens);
        return;
    }
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
        if (!e && (s->flags & SPEC_OPTIONAL)) continue;
        if (!e) {
            sam_error(err, "checkpoint is missing tensor '%s'", s->name);
            goto done;
        }
        used[e - table->entries] = 1;
        if (s->flags & SPEC_INT) {
            if (e->dtype != DTYPE_I64 && e->dtype != DTYPE_I32) {
                sam_error(err, "tensor '%s' has dtype %s, expected an integer type", s->name,
                          tensor_dtype_name(e->dtype));
                goto done;
            }
        } else if (!is_float_dtype(e->dtype)) {
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
        if (!(s->flags & SPEC_UNUSED)) total += (size_t)tensor_numel(e);
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
        if (list.items[i].flags & SPEC_UNUSED) continue;
        const TensorEntry *e = tensor_table_find(table, list.items[i].name);
        if (tensor_to_f32(e, buf + offset, err)) {
            sam_error_prefix(err, "tensor '%s'", e->name);
            free(buf);
            goto done;
        }
        *list.items[i].field = buf + offset;
        offset += (size_t)tensor_numel(e);
    }
    // MobileSAM: BatchNorm folded into the convolutions, once, at load time.
    if (cfg->encoder_kind == SAM_ENCODER_TINYVIT) tinyvit_fold_batchnorm(&weights->tinyvit, cfg);
    *buffer = buf;
    *buffer_floats = total;
    rc = 0;
done:
    free(used);
    free(list.items);
    return rc;
}
