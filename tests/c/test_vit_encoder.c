// ViT encoder self-check: a tiny random config run through vit_encoder_forward
// and through a naive transcription of image_encoder.py written here with
// plain loops in double precision (literal window_partition with zero padding
// after norm1, get_rel_pos indexing, per-window qkv and proj on the padded
// tokens, window_unpartition and crop). The config has a grid that the window
// does not divide and a global block with more than one query chunk.
// Also checks the scratch bound (exact high-water), the too-small-arena error
// and the progress callback. Prints "N passed, M failed".
// `test_vit_encoder --bench` times ViT-B (random weights) on a 1024x1024 input.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/config.h"
#include "model/vit_encoder.h"
#include "model/weights.h"

#include "check.h"
#include "weight_pool.h"

// The C path is float with a different summation order (blocked GEMM, FMA),
// the naive one double: over 3 blocks the relative L2 error is ~1e-6, the
// worst element ~1e-5 of the output scale (LayerNorm2d output, ~1). A
// wrong index or a missed term moves the output by O(0.1).
#define REL_L2_TOL 1e-5
#define MAX_ABS_TOL 1e-4

static void make_weights(VitEncoderWeights *w, const SamConfig *c, Pool *p) {
    const size_t C = (size_t)c->embed_dim, P = (size_t)c->patch_size, G = (size_t)c->grid;
    const size_t D = (size_t)c->out_chans, hd = (size_t)c->head_dim, M = (size_t)c->mlp_dim;
    memset(w, 0, sizeof *w);
    w->patch_weight = pool_take(p, C * 3 * P * P, 0.0, sqrt(3.0 / (3.0 * P * P)));
    w->patch_bias = pool_take(p, C, 0.0, 0.1);
    w->pos_embed = pool_take(p, G * G * C, 0.0, 0.2);
    for (int i = 0; i < c->depth; i++) {
        VitBlockWeights *b = &w->blocks[i];
        const size_t S = c->is_global[i] ? G : (size_t)c->window_size;
        b->norm1.weight = pool_take(p, C, 1.0, 0.2);
        b->norm1.bias = pool_take(p, C, 0.0, 0.2);
        b->qkv.weight = pool_take(p, 3 * C * C, 0.0, sqrt(3.0 / C));
        b->qkv.bias = pool_take(p, 3 * C, 0.0, 0.2);
        b->proj.weight = pool_take(p, C * C, 0.0, sqrt(3.0 / C));
        b->proj.bias = pool_take(p, C, 0.0, 0.1);
        b->rel_pos_h = pool_take(p, (2 * S - 1) * hd, 0.0, 0.5);
        b->rel_pos_w = pool_take(p, (2 * S - 1) * hd, 0.0, 0.5);
        b->norm2.weight = pool_take(p, C, 1.0, 0.2);
        b->norm2.bias = pool_take(p, C, 0.0, 0.2);
        b->lin1.weight = pool_take(p, M * C, 0.0, sqrt(3.0 / C));
        b->lin1.bias = pool_take(p, M, 0.0, 0.1);
        b->lin2.weight = pool_take(p, C * M, 0.0, sqrt(3.0 / M));
        b->lin2.bias = pool_take(p, C, 0.0, 0.1);
    }
    w->neck_conv1 = pool_take(p, D * C, 0.0, sqrt(3.0 / C));
    w->neck_norm1.weight = pool_take(p, D, 1.0, 0.2);
    w->neck_norm1.bias = pool_take(p, D, 0.0, 0.2);
    w->neck_conv2 = pool_take(p, D * D * 9, 0.0, sqrt(3.0 / (9.0 * D)));
    w->neck_norm2.weight = pool_take(p, D, 1.0, 0.2);
    w->neck_norm2.bias = pool_take(p, D, 0.0, 0.2);
}

// ---------------------------------------------------------------------------
// Naive reference, double precision, one PyTorch line at a time.

static void naive_layernorm(double *y, const double *x, const float *g, const float *b, int c) {
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < c; i++) mean += x[i];
    mean /= c;
    for (int i = 0; i < c; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= c;
    for (int i = 0; i < c; i++) y[i] = (x[i] - mean) / sqrt(var + 1e-6) * g[i] + b[i];
}

static void naive_linear(double *y, const double *x, const float *w, const float *b, int in,
                         int out) {
    for (int o = 0; o < out; o++) {
        double s = b ? b[o] : 0.0;
        for (int i = 0; i < in; i++) s += (double)w[(size_t)o * in + i] * x[i];
        y[o] = s;
    }
}

// Attention.forward on one (S, S) token set `tok` (S*S, C) -> out (S*S, C).
static void naive_attention(double *out, const double *tok, const VitBlockWeights *b,
                            const SamConfig *c, int S) {
    const int C = c->embed_dim, hd = c->head_dim, n = S * S;
    double *qkv = malloc(sizeof(double) * (size_t)n * 3 * C);
    double *o = malloc(sizeof(double) * (size_t)n * C);
    double *attn = malloc(sizeof(double) * (size_t)n);
    for (int t = 0; t < n; t++)
        naive_linear(qkv + (size_t)t * 3 * C, tok + (size_t)t * C, b->qkv.weight, b->qkv.bias, C,
                     3 * C);
    const double scale = pow(hd, -0.5);
    for (int h = 0; h < c->num_heads; h++) {
        for (int i = 0; i < n; i++) {
            const double *q = qkv + (size_t)i * 3 * C + h * hd;
            const int ih = i / S, iw = i % S;
            double mx = -INFINITY;
            for (int j = 0; j < n; j++) {
                const double *k = qkv + (size_t)j * 3 * C + C + h * hd;
                const int jh = j / S, jw = j % S;
                const float *rh = b->rel_pos_h + (size_t)(ih - jh + S - 1) * hd;
                const float *rw = b->rel_pos_w + (size_t)(iw - jw + S - 1) * hd;
                double s = 0.0, sh = 0.0, sw = 0.0;
                for (int d = 0; d < hd; d++) {
                    s += q[d] * scale * k[d];
                    sh += q[d] * rh[d];
                    sw += q[d] * rw[d];
                }
                attn[j] = s + sh + sw;
                if (attn[j] > mx) mx = attn[j];
            }
            double sum = 0.0;
            for (int j = 0; j < n; j++) sum += attn[j] = exp(attn[j] - mx);
            for (int d = 0; d < hd; d++) {
                double acc = 0.0;
                for (int j = 0; j < n; j++) acc += attn[j] / sum * qkv[(size_t)j * 3 * C + 2 * C + h * hd + d];
                o[(size_t)i * C + h * hd + d] = acc;
            }
        }
    }
    for (int t = 0; t < n; t++)
        naive_linear(out + (size_t)t * C, o + (size_t)t * C, b->proj.weight, b->proj.bias, C, C);
    free(qkv);
    free(o);
    free(attn);
}

static void naive_block(double *x, const VitBlockWeights *b, const SamConfig *c, int global) {
    const int G = c->grid, C = c->embed_dim, M = c->mlp_dim;
    const int ws = global ? G : c->window_size;
    const int Hp = (G + ws - 1) / ws * ws;  // window_partition: pad to a multiple of ws
    double *xp = calloc((size_t)Hp * Hp * C, sizeof(double));
    double *yp = calloc((size_t)Hp * Hp * C, sizeof(double));
    double *tok = malloc(sizeof(double) * (size_t)ws * ws * C);
    double *out = malloc(sizeof(double) * (size_t)ws * ws * C);
    for (int t = 0; t < G * G; t++)  // norm1, then zero padding (F.pad after the norm)
        naive_layernorm(xp + ((size_t)(t / G) * Hp + t % G) * C, x + (size_t)t * C,
                        b->norm1.weight, b->norm1.bias, C);
    for (int wy = 0; wy < Hp / ws; wy++) {
        for (int wx = 0; wx < Hp / ws; wx++) {
            for (int t = 0; t < ws * ws; t++)
                memcpy(tok + (size_t)t * C,
                       xp + ((size_t)(wy * ws + t / ws) * Hp + wx * ws + t % ws) * C,
                       sizeof(double) * C);
            naive_attention(out, tok, b, c, ws);
            for (int t = 0; t < ws * ws; t++)
                memcpy(yp + ((size_t)(wy * ws + t / ws) * Hp + wx * ws + t % ws) * C,
                       out + (size_t)t * C, sizeof(double) * C);
        }
    }
    for (int t = 0; t < G * G; t++)  // window_unpartition + crop, x = shortcut + x
        for (int ch = 0; ch < C; ch++)
            x[(size_t)t * C + ch] += yp[((size_t)(t / G) * Hp + t % G) * C + ch];
    double *xn = malloc(sizeof(double) * C), *hid = malloc(sizeof(double) * M);
    double *y = malloc(sizeof(double) * C);
    for (int t = 0; t < G * G; t++) {
        naive_layernorm(xn, x + (size_t)t * C, b->norm2.weight, b->norm2.bias, C);
        naive_linear(hid, xn, b->lin1.weight, b->lin1.bias, C, M);
        for (int i = 0; i < M; i++) hid[i] = 0.5 * hid[i] * (1.0 + erf(hid[i] / sqrt(2.0)));
        naive_linear(y, hid, b->lin2.weight, b->lin2.bias, M, C);
        for (int ch = 0; ch < C; ch++) x[(size_t)t * C + ch] += y[ch];
    }
    free(xp), free(yp), free(tok), free(out), free(xn), free(hid), free(y);
}

static void naive_layernorm2d(double *x, const float *g, const float *b, int D, int T) {
    double *col = malloc(sizeof(double) * D);
    for (int p = 0; p < T; p++) {
        for (int d = 0; d < D; d++) col[d] = x[(size_t)d * T + p];
        naive_layernorm(col, col, g, b, D);
        for (int d = 0; d < D; d++) x[(size_t)d * T + p] = col[d];
    }
    free(col);
}

static void naive_encoder(double *emb, const float *image, const VitEncoderWeights *w,
                          const SamConfig *c) {
    const int G = c->grid, P = c->patch_size, C = c->embed_dim, D = c->out_chans, T = G * G;
    const int side = G * P;
    double *x = malloc(sizeof(double) * (size_t)T * C);
    for (int t = 0; t < T; t++) {  // PatchEmbed conv (channels last) + pos_embed
        for (int o = 0; o < C; o++) {
            double s = w->patch_bias[o];
            for (int ch = 0; ch < 3; ch++)
                for (int ky = 0; ky < P; ky++)
                    for (int kx = 0; kx < P; kx++)
                        s += (double)w->patch_weight[(((size_t)o * 3 + ch) * P + ky) * P + kx] *
                             image[((size_t)ch * side + (t / G) * P + ky) * side + (t % G) * P + kx];
            x[(size_t)t * C + o] = s + w->pos_embed[(size_t)t * C + o];
        }
    }
    for (int i = 0; i < c->depth; i++) naive_block(x, &w->blocks[i], c, c->is_global[i]);
    double *n1 = malloc(sizeof(double) * (size_t)D * T);
    for (int d = 0; d < D; d++)
        for (int t = 0; t < T; t++) {
            double s = 0.0;
            for (int ch = 0; ch < C; ch++) s += (double)w->neck_conv1[(size_t)d * C + ch] * x[(size_t)t * C + ch];
            n1[(size_t)d * T + t] = s;
        }
    naive_layernorm2d(n1, w->neck_norm1.weight, w->neck_norm1.bias, D, T);
    for (int d = 0; d < D; d++)
        for (int y = 0; y < G; y++)
            for (int xx = 0; xx < G; xx++) {
                double s = 0.0;
                for (int ci = 0; ci < D; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int sy = y + ky - 1, sx = xx + kx - 1;
                            if (sy < 0 || sy >= G || sx < 0 || sx >= G) continue;
                            s += (double)w->neck_conv2[(((size_t)d * D + ci) * 3 + ky) * 3 + kx] *
                                 n1[(size_t)ci * T + sy * G + sx];
                        }
                emb[(size_t)d * T + y * G + xx] = s;
            }
    naive_layernorm2d(emb, w->neck_norm2.weight, w->neck_norm2.bias, D, T);
    free(x);
    free(n1);
}

// ---------------------------------------------------------------------------

static void count_progress(void *user, int done, int total) {
    int *calls = user;
    if (done == calls[0] + 1 && total == calls[1]) calls[0] = done;
    else calls[2] = 1;  // out of order
}

static void run_config(const SamConfig *cfg, const char *name) {
    const int G = cfg->grid, D = cfg->out_chans, side = cfg->img_size;
    Pool pool = {.cap = 4u << 20, .rng = {7}};
    pool.data = malloc(sizeof(float) * pool.cap);
    VitEncoderWeights *w = malloc(sizeof *w);
    make_weights(w, cfg, &pool);
    float *image = malloc(sizeof(float) * 3 * (size_t)side * side);
    Rng rng = {99};
    for (size_t i = 0; i < 3 * (size_t)side * side; i++) image[i] = (float)(2.0 * rng_uniform(&rng));

    const size_t need = vit_encoder_scratch_floats(cfg, 1);
    char what[SAM_ERROR_LEN + 160];
    snprintf(what, sizeof what, "%s: scratch bound is positive", name);
    check(need > 0, what);
    Arena arena;
    if (arena_init(&arena, need * sizeof(float)) != 0) {
        printf("FAIL %s: arena_init\n", name);
        failed++;
        return;
    }
    float *emb = malloc(sizeof(float) * (size_t)D * G * G);
    SamError err = {{0}};
    int calls[3] = {0, cfg->depth + 1, 0};
    const int rc = vit_encoder_forward(emb, image, w, cfg, &arena, count_progress, calls, &err);
    snprintf(what, sizeof what, "%s: forward returns 0 (%s)", name, rc ? err.message : "ok");
    check(rc == 0, what);
    snprintf(what, sizeof what, "%s: scratch bound %zu floats is exact (high water %zu)", name,
             need, arena.high_water / sizeof(float));
    check(arena.high_water == need * sizeof(float), what);
    snprintf(what, sizeof what, "%s: arena released after the call", name);
    check(arena.used == 0, what);
    snprintf(what, sizeof what, "%s: progress called for each block and the neck", name);
    check(calls[0] == cfg->depth + 1 && !calls[2], what);

    double *ref = malloc(sizeof(double) * (size_t)D * G * G);
    naive_encoder(ref, image, w, cfg);
    double num = 0.0, den = 0.0, worst = 0.0;
    size_t worst_at = 0;
    for (size_t i = 0; i < (size_t)D * G * G; i++) {
        const double e = fabs(emb[i] - ref[i]);
        num += e * e;
        den += ref[i] * ref[i];
        if (!(e <= worst)) worst = e, worst_at = i;
    }
    const double rel = sqrt(num / den);
    printf("%s: relative L2 %.3g, worst |diff| %.3g at [%zu] (got %.6f, ref %.6f)\n", name, rel,
           worst, worst_at, emb[worst_at], ref[worst_at]);
    snprintf(what, sizeof what, "%s: relative L2 %.3g < %g", name, rel, REL_L2_TOL);
    check(rel < REL_L2_TOL, what);
    snprintf(what, sizeof what, "%s: worst |diff| %.3g < %g", name, worst, MAX_ABS_TOL);
    check(worst < MAX_ABS_TOL, what);

    // 2 and 3 threads (pool bound as sam_image_encode binds it): the same
    // bits, and the scratch bound for that many threads is exact.
    for (int threads = 2; threads <= 3; threads++) {
        ThreadPool *tp = thread_pool_create(threads);
        const size_t need_t = vit_encoder_scratch_floats(cfg, threads);
        Arena at;
        float *emb_t = malloc(sizeof(float) * (size_t)D * G * G);
        const int ok = tp && arena_init(&at, need_t * sizeof(float)) == 0;
        ThreadPool *previous = thread_pool_bind(tp);
        const int rc_t = ok ? vit_encoder_forward(emb_t, image, w, cfg, &at, NULL, NULL, &err) : -1;
        thread_pool_bind(previous);
        snprintf(what, sizeof what, "%s: %d threads: bit-identical to 1 thread", name, threads);
        check(rc_t == 0 && memcmp(emb_t, emb, sizeof(float) * (size_t)D * G * G) == 0, what);
        snprintf(what, sizeof what, "%s: %d threads: scratch bound %zu floats is exact", name,
                 threads, need_t);
        check(ok && at.high_water == need_t * sizeof(float), what);
        if (ok) arena_free(&at);
        free(emb_t);
        thread_pool_destroy(tp);
    }

    // One 64-byte line short of the bound (arena_init rounds capacities up to
    // 64 bytes): a clear error, not a crash.
    Arena small;
    arena_init(&small, (need - 16) * sizeof(float));
    const int rc_small = vit_encoder_forward(emb, image, w, cfg, &small, NULL, NULL, &err);
    snprintf(what, sizeof what, "%s: too-small arena is an error (%s)", name, err.message);
    check(rc_small != 0 && strstr(err.message, "scratch") && small.used == 0, what);
    arena_free(&small);

    arena_free(&arena);
    free(ref);
    free(emb);
    free(image);
    free(w);
    free(pool.data);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct BenchClock {
    double start, last;
} BenchClock;

static void bench_progress(void *user, int done, int total) {
    BenchClock *clk = user;
    const double t = now_seconds();
    printf("  %s %2d/%d  %7.1f ms\n", done == total ? "neck " : "block", done, total,
           1e3 * (t - clk->last));
    clk->last = t;
}

// ViT-B (build_sam_vit_b) with random weights; prints per-block and total time.
static int run_bench(void) {
    SamConfig c = {0};
    c.encoder_kind = SAM_ENCODER_VIT;
    c.patch_size = 16, c.grid = 64, c.img_size = 1024;
    c.embed_dim = 768, c.num_heads = 12, c.head_dim = 64, c.mlp_dim = 3072;
    c.depth = 12, c.window_size = 14, c.out_chans = 256;
    c.is_global[2] = c.is_global[5] = c.is_global[8] = c.is_global[11] = 1;
    Pool pool = {.cap = 100u << 20, .rng = {7}};
    pool.data = malloc(sizeof(float) * pool.cap);
    VitEncoderWeights *w = malloc(sizeof *w);
    make_weights(w, &c, &pool);
    const size_t n_image = 3 * (size_t)c.img_size * c.img_size;
    float *image = malloc(sizeof(float) * n_image);
    Rng rng = {99};
    for (size_t i = 0; i < n_image; i++) image[i] = (float)(2.0 * rng_uniform(&rng));
    Arena arena;
    const size_t need = vit_encoder_scratch_floats(&c, 1);
    if (arena_init(&arena, need * sizeof(float)) != 0) return 1;
    float *emb = malloc(sizeof(float) * (size_t)c.out_chans * c.grid * c.grid);
    SamError err = {{0}};
    printf("ViT-B 1024x1024, scratch %.1f MiB\n", need * 4.0 / (1 << 20));
    BenchClock clk = {now_seconds(), 0};
    clk.last = clk.start;
    const int rc = vit_encoder_forward(emb, image, w, &c, &arena, bench_progress, &clk, &err);
    printf("total %.2f s%s%s\n", now_seconds() - clk.start, rc ? ", error: " : "",
           rc ? err.message : "");
    double sum = 0.0;
    for (size_t i = 0; i < (size_t)c.out_chans * c.grid * c.grid; i++) sum += fabs(emb[i]);
    printf("mean |embedding| %.4f\n", sum / ((double)c.out_chans * c.grid * c.grid));
    arena_free(&arena);
    free(emb), free(image), free(w), free(pool.data);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return run_bench();
    // Grid 24 with window 5: windows pad 24 -> 25; global block 1 has
    // T = 576 tokens, more than one query chunk (504 + 72 rows).
    SamConfig a = {0};
    a.encoder_kind = SAM_ENCODER_VIT;
    a.patch_size = 2, a.grid = 24, a.img_size = 48;
    a.embed_dim = 32, a.num_heads = 2, a.head_dim = 16, a.mlp_dim = 64;
    a.depth = 3, a.window_size = 5, a.out_chans = 16;
    a.is_global[1] = 1;
    run_config(&a, "grid24_win5");

    // Window that divides the grid, head_dim 12 (scale not a power of two),
    // global last block, 3 heads.
    SamConfig b = a;
    b.patch_size = 4, b.grid = 8, b.img_size = 32;
    b.embed_dim = 36, b.num_heads = 3, b.head_dim = 12, b.mlp_dim = 72;
    b.depth = 2, b.window_size = 4, b.out_chans = 8;
    b.is_global[0] = 0, b.is_global[1] = 1;
    run_config(&b, "grid8_win4");

    // Invalid config: embed_dim != heads * head_dim.
    SamConfig bad = a;
    bad.head_dim = 15;
    SamError err = {{0}};
    float dummy[1];
    Arena arena;
    arena_init(&arena, 1024);
    VitEncoderWeights *w = calloc(1, sizeof *w);
    check(vit_encoder_scratch_floats(&bad, 1) == 0, "invalid config: scratch bound 0");
    check(vit_encoder_forward(dummy, dummy, w, &bad, &arena, NULL, NULL, &err) != 0 &&
              strstr(err.message, "head_dim"),
          "invalid config is an error naming head_dim");
    arena_free(&arena);
    free(w);

    return report();
}
