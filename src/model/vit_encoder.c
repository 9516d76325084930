// SAM ViT image encoder, mirroring segment_anything/modeling/image_encoder.py
// (ImageEncoderViT, Block, Attention, window_partition/unpartition,
// add_decomposed_rel_pos, PatchEmbed) and common.py (MLPBlock, LayerNorm2d)
// of facebookresearch/segment-anything.
//
// Activations are token-major: x is (T, C) with T = G * G tokens in (h, w)
// row-major order, the same memory layout as the official (1, G, G, C).
// All scratch comes from the arena, laid out by vit_plan() (the single source
// of truth for vit_encoder_scratch_floats).
//
// Threads: the GEMMs split their blocks over the pool bound to the caller
// (thread_pool_current); attention runs one task per (head, query chunk) in
// global blocks and per window in windowed ones, each thread with its own
// attention scratch. No output element depends on the thread count.
//
// Rel-pos tables: the weight loader checks that each block's tables have
// 2S - 1 rows (S = window_size for windowed blocks, grid for global ones) and
// refuses other lengths, so the interpolation branch of get_rel_pos() is never
// needed; likewise pos_embed is (1, grid, grid, C) with grid = img_size / patch.
#include "vit_encoder.h"

#include <math.h>
#include <string.h>

#include "../common/thread_pool.h"
#include "../kernels/kernels.h"

#define VIT_LN_EPS 1e-6f  // build_sam.py: norm_layer=partial(nn.LayerNorm, eps=1e-6); LayerNorm2d
// Global attention processes this many query tokens at a time (rounded to a
// whole number of grid rows), so one head's score block (512 x 4096 floats =
// 8 MiB) stays cache-friendly instead of the full 4096 x 4096 (64 MiB).
#define VIT_QUERY_CHUNK 512

// ---------------------------------------------------------------------------
// Scratch plan

typedef struct VitPlan {
    int chunk;          // query rows per global attention step (multiple of G)
    size_t x;           // (T, C) residual stream
    size_t xn;          // (T, C) normed tokens, then attention output
    size_t big;         // max of qkv (T, 3C), MLP hidden (T, mlp), patch im2col (T, 3 P P),
                        // neck im2col (9 D, T)
    // Per thread:
    size_t win_qkv;     // (w*w, 3C) one window's q, k, v (windowed blocks)
    size_t win_out;     // (w*w, C) one window's attention output
    size_t scores;      // (rows, S*S) one head's attention scores
    size_t rel;         // (rows, S) rel_h, and again rel_w
    size_t table;       // (S, head_dim) gathered rel-pos rows
    size_t neck;        // (D, T) neck conv1 output
} VitPlan;

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

// Floats the arena hands out for a request of n (it rounds to 64 bytes).
static size_t arena_rounded(size_t n) { return (n + 15) & ~(size_t)15; }

static int vit_check_config(const SamConfig *cfg, SamError *err) {
    if (cfg->encoder_kind != SAM_ENCODER_VIT)
        return sam_error(err, "vit_encoder: config is not a ViT encoder (kind %d)",
                         (int)cfg->encoder_kind);
    if (cfg->patch_size <= 0 || cfg->grid <= 0 || cfg->img_size != cfg->patch_size * cfg->grid)
        return sam_error(err, "vit_encoder: img_size %d != patch_size %d * grid %d",
                         cfg->img_size, cfg->patch_size, cfg->grid);
    if (cfg->num_heads <= 0 || cfg->head_dim <= 0 ||
        cfg->embed_dim != cfg->num_heads * cfg->head_dim)
        return sam_error(err, "vit_encoder: embed_dim %d != num_heads %d * head_dim %d",
                         cfg->embed_dim, cfg->num_heads, cfg->head_dim);
    if (cfg->depth <= 0 || cfg->depth > SAM_MAX_DEPTH)
        return sam_error(err, "vit_encoder: depth %d outside 1..%d", cfg->depth, SAM_MAX_DEPTH);
    if (cfg->mlp_dim <= 0 || cfg->out_chans <= 0)
        return sam_error(err, "vit_encoder: mlp_dim %d / out_chans %d must be positive",
                         cfg->mlp_dim, cfg->out_chans);
    for (int i = 0; i < cfg->depth; i++)
        if (!cfg->is_global[i] && cfg->window_size <= 0)
            return sam_error(err, "vit_encoder: block %d is windowed but window_size is %d", i,
                             cfg->window_size);
    return 0;
}

static void vit_plan(const SamConfig *cfg, VitPlan *p) {
    const size_t G = (size_t)cfg->grid, T = G * G, C = (size_t)cfg->embed_dim;
    const size_t P = (size_t)cfg->patch_size, D = (size_t)cfg->out_chans;
    int any_global = 0, any_windowed = 0;
    for (int i = 0; i < cfg->depth; i++) {
        any_global |= cfg->is_global[i] != 0;
        any_windowed |= cfg->is_global[i] == 0;
    }
    memset(p, 0, sizeof *p);
    int chunk = VIT_QUERY_CHUNK / cfg->grid * cfg->grid;
    if (chunk < cfg->grid) chunk = cfg->grid;
    if ((size_t)chunk > T) chunk = (int)T;
    p->chunk = chunk;
    p->x = p->xn = T * C;
    p->big = max_size(max_size(T * 3 * C, T * (size_t)cfg->mlp_dim),
                      max_size(T * 3 * P * P, 9 * D * T));
    size_t rows = 0, side = 0;  // attention query rows per step, and S
    if (any_windowed) {         // whole windows: w*w queries against w*w keys
        const size_t w = (size_t)cfg->window_size;
        p->win_qkv = w * w * 3 * C;
        p->win_out = w * w * C;
        p->scores = w * w * w * w;
        rows = w * w;
        side = w;
    }
    if (any_global) {  // chunk queries against all T keys
        p->scores = max_size(p->scores, (size_t)chunk * T);
        rows = max_size(rows, (size_t)chunk);
        side = max_size(side, G);
    }
    p->rel = rows * side;
    p->table = side * (size_t)cfg->head_dim;
    p->neck = D * T;
}

// Attention scratch of one thread.
static size_t per_thread_floats(const VitPlan *p) {
    return arena_rounded(p->win_qkv) + arena_rounded(p->win_out) + arena_rounded(p->scores) +
           2 * arena_rounded(p->rel) + arena_rounded(p->table);
}

size_t vit_encoder_scratch_floats(const SamConfig *cfg, int threads) {
    if (vit_check_config(cfg, NULL) != 0) return 0;
    if (threads < 1) threads = 1;
    VitPlan p;
    vit_plan(cfg, &p);
    return arena_rounded(p.x) + arena_rounded(p.xn) + arena_rounded(p.big) +
           arena_rounded(p.neck) + arena_rounded((size_t)threads * per_thread_floats(&p));
}

// ---------------------------------------------------------------------------
// Layers

// PatchEmbed: Conv2d(3, C, kernel P, stride P) as one GEMM over the
// non-overlapping patches (im2col), then x + pos_embed (ImageEncoderViT.forward).
// image is (3, G*P, G*P); x is (T, C); cols is (T, 3*P*P) scratch whose column
// order (c, ky, kx) matches the conv weight (C, 3, P, P).
static void patch_embed_forward(float *x, const float *image, const VitEncoderWeights *w, int G,
                                int P, int C, float *cols) {
    const int side = G * P, K = 3 * P * P, T = G * G;
    for (int gy = 0; gy < G; gy++) {
        for (int gx = 0; gx < G; gx++) {
            float *row = cols + (size_t)(gy * G + gx) * K;
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < P; ky++)
                    memcpy(row + (size_t)(c * P + ky) * P,
                           image + ((size_t)c * side + (size_t)gy * P + ky) * side + (size_t)gx * P,
                           sizeof(float) * (size_t)P);
        }
    }
    linear_forward(x, cols, w->patch_weight, w->patch_bias, T, K, C);
    add_inplace(x, w->pos_embed, (size_t)T * C);  // pos_embed (1, G, G, C) = token-major
}

typedef struct AttnScratch {
    float *scores;   // (rows, S*S)
    float *rel_h;    // (rows, S)
    float *rel_w;    // (rows, S)
    float *table;    // (S, head_dim)
    float *win_qkv;  // (ws*ws, 3C) one window's q, k, v (windowed blocks)
    float *win_out;  // (ws*ws, C) one window's attention output
} AttnScratch;

// One head of Attention.forward for query rows [r0, r0 + rows) of an S x S
// token grid attending to all S*S keys; rows and r0 are multiples of S.
// The head's q, k, v for token t are at q/k/v + t*ld (slices of the qkv
// output, channels [q|k|v][head][head_dim]); its output row t goes to
// out + t*ldo. Hot: this is where global blocks spend their time.
static void attention_head(float *out, int ldo, const float *q, const float *k, const float *v,
                           int ld, int r0, int rows, int S, int hd, const float *rel_pos_h,
                           const float *rel_pos_w, const AttnScratch *s) {
    const int keys = S * S;
    // Attention.__init__: self.scale = head_dim**-0.5 (a Python double).
    const float scale = (float)pow((double)hd, -0.5);
    // attn = (q * scale) @ k^T
    gemm_nt(rows, keys, hd, scale, q + (size_t)r0 * ld, ld, k, ld, 0.0f, s->scores, keys);

    // add_decomposed_rel_pos with q_size == k_size == (S, S): get_rel_pos gives
    // Rh[qh, kh] = rel_pos_h[qh - kh + S - 1]; rel_h = einsum("bhwc,hkc->bhwk",
    // q, Rh) with the UNSCALED q. For one qh the S needed rows of rel_pos_h are
    // gathered into `table`, so each rel term is a small GEMM.
    for (int qh = r0 / S; qh < (r0 + rows) / S; qh++) {
        for (int kh = 0; kh < S; kh++)
            memcpy(s->table + (size_t)kh * hd, rel_pos_h + (size_t)(qh - kh + S - 1) * hd,
                   sizeof(float) * (size_t)hd);
        gemm_nt(S, S, hd, 1.0f, q + (size_t)qh * S * ld, ld, s->table, hd, 0.0f,
                s->rel_h + (size_t)(qh * S - r0) * S, S);
    }
    // rel_w = einsum("bhwc,wkc->bhwk", q, Rw): queries sharing qw are S rows apart.
    for (int qw = 0; qw < S; qw++) {
        for (int kw = 0; kw < S; kw++)
            memcpy(s->table + (size_t)kw * hd, rel_pos_w + (size_t)(qw - kw + S - 1) * hd,
                   sizeof(float) * (size_t)hd);
        gemm_nt(rows / S, S, hd, 1.0f, q + (size_t)(r0 + qw) * ld, S * ld, s->table, hd, 0.0f,
                s->rel_w + (size_t)qw * S, S * S);
    }
    // attn.view(B, qh, qw, kh, kw) + rel_h[..., None] + rel_w[..., None, :]
    for (int i = 0; i < rows; i++) {
        float *si = s->scores + (size_t)i * keys;
        const float *rh = s->rel_h + (size_t)i * S, *rw = s->rel_w + (size_t)i * S;
        for (int kh = 0; kh < S; kh++)
            for (int kw = 0; kw < S; kw++) si[kh * S + kw] = (si[kh * S + kw] + rh[kh]) + rw[kw];
    }
    softmax_rows(s->scores, rows, keys);
    // attn @ v
    gemm_nn(rows, hd, keys, 1.0f, s->scores, keys, v, ld, 0.0f, out + (size_t)r0 * ldo, ldo);
}

// Arguments of an attention job; one task per (head, query chunk) for global
// blocks, per window for windowed ones. scratch[thread] is that thread's.
typedef struct AttnJob {
    float *out;
    const float *qkv;
    const VitBlockWeights *b;
    int G, C, heads, hd, chunk, chunks, ws, nw;
    const AttnScratch *scratch;
} AttnJob;

static void global_attention_task(void *ctx, int task, int thread) {
    const AttnJob *j = ctx;
    const int T = j->G * j->G, C = j->C, h = task / j->chunks, r0 = task % j->chunks * j->chunk;
    attention_head(j->out + (size_t)h * j->hd, C, j->qkv + (size_t)h * j->hd,
                   j->qkv + (size_t)C + (size_t)h * j->hd,
                   j->qkv + 2 * (size_t)C + (size_t)h * j->hd, 3 * C, r0,
                   j->chunk < T - r0 ? j->chunk : T - r0, j->G, j->hd, j->b->rel_pos_h,
                   j->b->rel_pos_w, &j->scratch[thread]);
}

// Global attention (window_size 0): every head over all T = G*G tokens, in
// chunks of query rows so one score block is (chunk, T).
// qkv is (T, 3C); out is (T, C) with heads concatenated ([head][head_dim]).
static void global_attention(float *out, const float *qkv, const VitBlockWeights *b, int G,
                             int C, int heads, int hd, int chunk, const AttnScratch *scratch) {
    const int T = G * G;
    AttnJob j = {.out = out, .qkv = qkv, .b = b, .G = G, .C = C, .heads = heads, .hd = hd,
                 .chunk = chunk, .chunks = (T + chunk - 1) / chunk, .scratch = scratch};
    thread_pool_run(thread_pool_current(), heads * j.chunks, global_attention_task, &j);
}

// Windowed attention: window_partition pads the NORMED tokens with zeros up
// to a multiple of ws (Block.forward pads after norm1), so a padded token's
// q, k, v are exactly the qkv bias and it takes part as key and value;
// window_unpartition then crops the padded rows away. qkv is (T, 3C) for the
// real tokens; out is (T, C). The thread's win_qkv (ws*ws, 3C) / win_out
// (ws*ws, C) hold its window.
static void window_attention_task(void *ctx, int task, int thread) {
    const AttnJob *j = ctx;
    const AttnScratch *s = &j->scratch[thread];
    const VitBlockWeights *b = j->b;
    const int G = j->G, C = j->C, hd = j->hd, ws = j->ws, ld = 3 * C;
    const int wy = task / j->nw, wx = task % j->nw;
    for (int iy = 0; iy < ws; iy++) {
        for (int ix = 0; ix < ws; ix++) {
            const int gy = wy * ws + iy, gx = wx * ws + ix;
            float *dst = s->win_qkv + (size_t)(iy * ws + ix) * ld;
            if (gy < G && gx < G)
                memcpy(dst, j->qkv + (size_t)(gy * G + gx) * ld, sizeof(float) * (size_t)ld);
            else if (b->qkv.bias)
                memcpy(dst, b->qkv.bias, sizeof(float) * (size_t)ld);
            else
                memset(dst, 0, sizeof(float) * (size_t)ld);
        }
    }
    for (int h = 0; h < j->heads; h++)
        attention_head(s->win_out + (size_t)h * hd, C, s->win_qkv + (size_t)h * hd,
                       s->win_qkv + (size_t)C + (size_t)h * hd,
                       s->win_qkv + 2 * (size_t)C + (size_t)h * hd, ld, 0, ws * ws, ws, hd,
                       b->rel_pos_h, b->rel_pos_w, s);
    for (int iy = 0; iy < ws; iy++) {
        for (int ix = 0; ix < ws; ix++) {
            const int gy = wy * ws + iy, gx = wx * ws + ix;
            if (gy < G && gx < G)
                memcpy(j->out + (size_t)(gy * G + gx) * C, s->win_out + (size_t)(iy * ws + ix) * C,
                       sizeof(float) * (size_t)C);
        }
    }
}

static void windowed_attention(float *out, const float *qkv, const VitBlockWeights *b, int G,
                               int C, int heads, int hd, int ws, const AttnScratch *scratch) {
    const int nw = (G + ws - 1) / ws;
    AttnJob j = {.out = out, .qkv = qkv, .b = b, .G = G, .C = C, .heads = heads, .hd = hd,
                 .ws = ws, .nw = nw, .scratch = scratch};
    thread_pool_run(thread_pool_current(), nw * nw, window_attention_task, &j);
}

typedef struct VitBuffers {
    float *x, *xn, *big, *neck;
    AttnScratch *attn;  // one per thread
} VitBuffers;

// Block.forward: x = x + proj(attn(norm1(x))); x = x + lin2(gelu(lin1(norm2(x)))).
// Attention is computed per window on the padded grid, but qkv and proj are
// per-token linears, so they run once over the T real tokens (same values).
static void block_forward(const VitBlockWeights *b, const SamConfig *cfg, int is_global,
                          int chunk, const VitBuffers *buf) {
    const int G = cfg->grid, T = G * G, C = cfg->embed_dim, mlp = cfg->mlp_dim;
    float *qkv = buf->big;
    layernorm_rows(buf->xn, buf->x, b->norm1.weight, b->norm1.bias, T, C, VIT_LN_EPS);
    linear_forward(qkv, buf->xn, b->qkv.weight, b->qkv.bias, T, C, 3 * C);
    float *attn_out = buf->xn;  // norm1 output no longer needed
    if (is_global)
        global_attention(attn_out, qkv, b, G, C, cfg->num_heads, cfg->head_dim, chunk,
                         buf->attn);
    else
        windowed_attention(attn_out, qkv, b, G, C, cfg->num_heads, cfg->head_dim,
                           cfg->window_size, buf->attn);
    // x = shortcut + proj(x), the residual added by the GEMM (linear_fused).
    linear_fused(buf->x, attn_out, b->proj.weight, b->proj.bias, T, C, C, 1, 0);

    // MLPBlock: lin1 -> exact-erf GELU -> lin2, plus the shortcut.
    float *hidden = buf->big;
    layernorm_rows(buf->xn, buf->x, b->norm2.weight, b->norm2.bias, T, C, VIT_LN_EPS);
    linear_fused(hidden, buf->xn, b->lin1.weight, b->lin1.bias, T, C, mlp, 0, 1);
    linear_fused(buf->x, hidden, b->lin2.weight, b->lin2.bias, T, mlp, C, 1, 0);
}

// Neck on x.permute(0, 3, 1, 2): Conv2d(C, D, 1, bias=False) -> LayerNorm2d ->
// Conv2d(D, D, 3, padding=1, bias=False) -> LayerNorm2d. Output (D, G, G).
static void neck_forward(float *embedding, const float *x, const VitEncoderWeights *w, int G,
                         int C, int D, float *n1, float *cols) {
    const int T = G * G;
    // 1x1 conv: n1 (D, T) = W (D, C) @ x^T, x being (T, C).
    gemm_nt(D, T, C, 1.0f, w->neck_conv1, C, x, C, 0.0f, n1, T);
    layernorm_channels(n1, n1, w->neck_norm1.weight, w->neck_norm1.bias, D, T, VIT_LN_EPS);
    // 3x3 conv, padding 1: im2col rows (ci, ky, kx) as the weight (D, D, 3, 3).
    for (int ci = 0; ci < D; ci++) {
        for (int ky = 0; ky < 3; ky++) {
            for (int kx = 0; kx < 3; kx++) {
                float *row = cols + ((size_t)ci * 9 + (size_t)ky * 3 + kx) * T;
                const float *src = n1 + (size_t)ci * T;
                for (int y = 0; y < G; y++) {
                    const int sy = y + ky - 1;
                    float *r = row + (size_t)y * G;
                    if (sy < 0 || sy >= G) {
                        memset(r, 0, sizeof(float) * (size_t)G);
                        continue;
                    }
                    for (int xx = 0; xx < G; xx++) {
                        const int sx = xx + kx - 1;
                        r[xx] = sx < 0 || sx >= G ? 0.0f : src[(size_t)sy * G + sx];
                    }
                }
            }
        }
    }
    gemm_nn(D, T, 9 * D, 1.0f, w->neck_conv2, 9 * D, cols, T, 0.0f, embedding, T);
    layernorm_channels(embedding, embedding, w->neck_norm2.weight, w->neck_norm2.bias, D, T,
                       VIT_LN_EPS);
}

// ---------------------------------------------------------------------------
// Entry point

static int vit_check_weights(const VitEncoderWeights *w, const SamConfig *cfg, SamError *err) {
    if (!w->patch_weight || !w->patch_bias || !w->pos_embed || !w->neck_conv1 ||
        !w->neck_norm1.weight || !w->neck_norm1.bias || !w->neck_conv2 ||
        !w->neck_norm2.weight || !w->neck_norm2.bias)
        return sam_error(err, "vit_encoder: patch_embed, pos_embed or neck weights missing");
    for (int i = 0; i < cfg->depth; i++) {
        const VitBlockWeights *b = &w->blocks[i];
        if (!b->norm1.weight || !b->norm1.bias || !b->qkv.weight || !b->proj.weight ||
            !b->proj.bias || !b->rel_pos_h || !b->rel_pos_w || !b->norm2.weight ||
            !b->norm2.bias || !b->lin1.weight || !b->lin1.bias || !b->lin2.weight ||
            !b->lin2.bias)
            return sam_error(err, "vit_encoder: weights of block %d missing", i);
    }
    return 0;
}

int vit_encoder_forward(float *embedding, const float *image, const VitEncoderWeights *w,
                        const SamConfig *cfg, Arena *scratch, SamProgressFn progress,
                        void *progress_user, SamError *err) {
    if (!embedding || !image || !w || !cfg || !scratch)
        return sam_error(err, "vit_encoder: NULL argument");
    if (vit_check_config(cfg, err) != 0 || vit_check_weights(w, cfg, err) != 0) return -1;
    VitPlan plan;
    vit_plan(cfg, &plan);
    const size_t mark = arena_mark(scratch);
    // Attention scratch for each thread of the pool the kernels will use.
    AttnScratch attn[THREAD_POOL_MAX_THREADS];
    const int threads = thread_pool_threads(thread_pool_current());
    VitBuffers buf;
    buf.x = arena_floats(scratch, plan.x);
    buf.xn = arena_floats(scratch, plan.xn);
    buf.big = arena_floats(scratch, plan.big);
    buf.neck = arena_floats(scratch, plan.neck);
    const size_t per_thread = per_thread_floats(&plan);
    float *thread_area = arena_floats(scratch, (size_t)threads * per_thread);
    if (!buf.x || !buf.xn || !buf.big || !buf.neck || !thread_area) {
        const size_t avail = (scratch->capacity - mark) / sizeof(float);
        arena_reset(scratch, mark);
        return sam_error(err,
                         "vit_encoder: scratch arena too small: needs %zu floats for %d "
                         "threads, %zu available",
                         vit_encoder_scratch_floats(cfg, threads), threads, avail);
    }
    for (int t = 0; t < threads; t++) {  // the per-thread layout of per_thread_floats
        float *at = thread_area + (size_t)t * per_thread;
        attn[t].win_qkv = at, at += arena_rounded(plan.win_qkv);
        attn[t].win_out = at, at += arena_rounded(plan.win_out);
        attn[t].scores = at, at += arena_rounded(plan.scores);
        attn[t].rel_h = at, at += arena_rounded(plan.rel);
        attn[t].rel_w = at, at += arena_rounded(plan.rel);
        attn[t].table = at;
    }
    buf.attn = attn;

    const int G = cfg->grid, C = cfg->embed_dim, total = cfg->depth + 1;
    patch_embed_forward(buf.x, image, w, G, cfg->patch_size, C, buf.big);
    for (int i = 0; i < cfg->depth; i++) {
        block_forward(&w->blocks[i], cfg, cfg->is_global[i], plan.chunk, &buf);
        if (progress) progress(progress_user, i + 1, total);
    }
    neck_forward(embedding, buf.x, w, G, C, cfg->out_chans, buf.neck, buf.big);
    if (progress) progress(progress_user, total, total);
    arena_reset(scratch, mark);
    return 0;
}
