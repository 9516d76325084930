// The TinyViT encoder's reuse of repeated rows and columns (repeated_band.h)
// against the same encoder computing every token: a small random TinyViT
// (every layer kind: strided stem, MBConv, patch merging with stride 2 and 1,
// windows that pad the grid, windows of 14 over a grid of 32) on images whose
// bottom rows or right columns are zero (SAM's padding) or a solid colour,
// from none to all of them. A reused token is a copy of one computed from
// bitwise equal inputs by the same arithmetic, so the embeddings must be
// bitwise equal; so must the results with two threads. Also known answers of
// the band arithmetic. Prints "N passed, M failed".
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/config.h"
#include "model/repeated_band.h"
#include "model/tinyvit_encoder.h"
#include "model/weights.h"

#include "check.h"
#include "weight_pool.h"

static ConvBnWeights conv(Pool *pool, int out, int per_out) {
    // Already folded: the encoder reads weight and bias only.
    return (ConvBnWeights){
        .weight = pool_take(pool, (size_t)out * per_out, 0.0, sqrt(3.0 / per_out)),
        .bias = pool_take(pool, (size_t)out, 0.0, 0.2)};
}

static TinyVitConv3Weights conv3(Pool *pool, int in, int hidden, int out) {
    return (TinyVitConv3Weights){conv(pool, hidden, in), conv(pool, hidden, 9),
                                 conv(pool, out, hidden)};
}

static NormWeights norm(Pool *pool, int c) {
    return (NormWeights){pool_take(pool, (size_t)c, 1.0, 0.2),
                         pool_take(pool, (size_t)c, 0.0, 0.2)};
}

static LinearWeights linear(Pool *pool, int out, int in) {
    LinearWeights l = {0};
    l.weight = pool_take(pool, (size_t)out * in, 0.0, sqrt(3.0 / in));
    l.bias = pool_take(pool, (size_t)out, 0.0, 0.1);
    return l;
}

static void make_weights(TinyVitEncoderWeights *w, const SamConfig *c, Pool *pool) {
    memset(w, 0, sizeof *w);
    const int *d = c->tv_dims, D = c->out_chans;
    w->stem1 = conv(pool, d[0] / 2, 27);
    w->stem2 = conv(pool, d[0], 9 * (d[0] / 2));
    for (int i = 0; i < c->tv_depths[0]; i++)
        w->mbconv[i] = conv3(pool, d[0], c->tv_mbconv_hidden, d[0]);
    for (int s = 0; s + 1 < TINYVIT_STAGES; s++)
        w->merge[s] = conv3(pool, d[s], d[s + 1], d[s + 1]);
    for (int s = 1; s < TINYVIT_STAGES; s++)
        for (int i = 0; i < c->tv_depths[s]; i++) {
            TinyVitBlockWeights *b = &w->blocks[s][i];
            const int C = d[s], N = c->tv_windows[s] * c->tv_windows[s];
            b->attention_biases = pool_take(pool, (size_t)c->tv_heads[s] * N, 0.0, 1.0);
            b->attn_norm = norm(pool, C);
            b->qkv = linear(pool, 3 * C, C);
            b->proj = linear(pool, C, C);
            b->mlp_norm = norm(pool, C);
            b->fc1 = linear(pool, c->tv_mlp[s], C);
            b->fc2 = linear(pool, C, c->tv_mlp[s]);
            b->local_conv = conv(pool, C, 9);
        }
    w->neck_conv1 = pool_take(pool, (size_t)D * d[3], 0.0, sqrt(3.0 / d[3]));
    w->neck_norm1 = norm(pool, D);
    w->neck_conv2 = pool_take(pool, (size_t)D * D * 9, 0.0, sqrt(3.0 / (9.0 * D)));
    w->neck_norm2 = norm(pool, D);
}

// A 512 x 512 input: stage grids 128, 64, 32, 32; windows 7 (64 = 9 x 7 + 1),
// 14 (32 -> 42 padded) and 7 (32 -> 35).
static SamConfig small_config(void) {
    SamConfig c = {0};
    c.encoder_kind = SAM_ENCODER_TINYVIT;
    c.img_size = 512, c.grid = 32, c.out_chans = 16;
    const int dims[] = {16, 24, 32, 48}, depths[] = {2, 2, 2, 2}, heads[] = {0, 2, 2, 3};
    const int windows[] = {0, 7, 14, 7}, mlp[] = {0, 48, 64, 96}, res[] = {128, 64, 32, 32};
    for (int s = 0; s < TINYVIT_STAGES; s++) {
        c.tv_dims[s] = dims[s], c.tv_depths[s] = depths[s], c.tv_heads[s] = heads[s];
        c.tv_windows[s] = windows[s], c.tv_mlp[s] = mlp[s], c.tv_res[s] = res[s];
    }
    c.tv_mbconv_hidden = 64;
    c.tv_merge_stride[0] = 2, c.tv_merge_stride[1] = 2, c.tv_merge_stride[2] = 1;
    return c;
}

// Random image in [-2, 2) whose rows (columns) from `first_equal` on are
// all fill + channel.
static void make_image(float *img, int S, int first_equal, int columns, float fill,
                       uint64_t seed) {
    Rng rng = {seed};
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                float v = (float)(2.0 * rng_uniform(&rng));
                if ((columns ? x : y) >= first_equal) v = fill + (float)ch;
                img[((size_t)ch * S + y) * S + x] = v;
            }
}

static int encode(float *emb, const float *img, const TinyVitEncoderWeights *w, const SamConfig *c,
                  int reuse, ThreadPool *pool) {
    const int threads = thread_pool_threads(pool);
    Arena arena;
    if (arena_init(&arena, tinyvit_encoder_scratch_floats(c, threads) * sizeof(float))) return -1;
    ThreadPool *previous = thread_pool_bind(pool);
    SamError err = {{0}};
    const int rc = tinyvit_encoder_forward_band(emb, img, w, c, &arena, NULL, NULL, reuse, &err);
    thread_pool_bind(previous);
    if (rc) printf("encode: %s\n", err.message);
    arena_free(&arena);
    return rc;
}

static void check_band(RepeatedBand got, int from, int to, int period, const char *what) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: {%d, %d, %d}, expected {%d, %d, %d}", what, got.from, got.to,
             got.period, from, to, period);
    check(got.from == from && got.to == to && got.period == period, msg);
}

// The token runs of next_run, as "t0-t1 t0-t1 ...".
static void check_runs(RepeatedBand b, int cols, int y0, int y1, const char *expected,
                       const char *what) {
    char got[256] = "", msg[400];
    size_t t0, t1, used = 0;
    for (int state = 0; repeated_band_next_run(b, cols, y0, y1, &state, &t0, &t1) && used < 200;)
        used +=
            (size_t)snprintf(got + used, sizeof got - used, "%s%zu-%zu", used ? " " : "", t0, t1);
    snprintf(msg, sizeof msg, "%s: runs \"%s\", expected \"%s\"", what, got, expected);
    check(strcmp(got, expected) == 0, msg);
}

static void check_band_arithmetic(void) {
    // MobileSAM on a 1024 x 683 image: zero rows from 683.
    RepeatedBand r = {683, 1024, 1, 0};
    r = repeated_band_after_conv3x3(r, 1024, 2);
    check_band(r, 342, 512, 1, "stem conv1");  // reads rows 2y - 1 .. 2y + 1
    r = repeated_band_after_conv3x3(r, 512, 2);
    check_band(r, 172, 256, 1, "stem conv2");
    r = repeated_band_after_conv3x3(r, 256, 1);
    check_band(r, 173, 255, 1, "MBConv 1");  // the zero padding below row 255
    r = repeated_band_after_conv3x3((RepeatedBand){174, 254, 1, 0}, 256, 2);
    check_band(r, 88, 127, 1, "merge 0");
    r = repeated_band_after_windows(r, 7);
    check_band(r, 91, 126, 7, "windows of 7");
    check_band(repeated_band_after_conv3x3(r, 128, 2), 46, 63, 7, "odd period, stride 2");
    check_band(repeated_band_after_conv3x3((RepeatedBand){10, 60, 14, 0}, 64, 2), 6, 30, 7,
               "even period, stride 2");
    check_band(repeated_band_after_windows((RepeatedBand){92, 125, 7, 0}, 7), 98, 119, 7,
               "windows inside a band of period 7");
    check_band(repeated_band_meet((RepeatedBand){10, 50, 2, 0}, (RepeatedBand){20, 60, 3, 0}), 20,
               50, 6, "meet");
    check_band(repeated_band_after_windows((RepeatedBand){10, 60, 2, 0}, 7), 14, 56, 14,
               "windows of 7 over a period of 2");
    check_band(repeated_band_after_windows((RepeatedBand){88, 99, 1, 0}, 7), 0, 0, 1,
               "one window: nothing to skip");
    int span[2][2];
    const int n = repeated_band_spans((RepeatedBand){91, 126, 7, 0}, 128, span);
    check(n == 2 && span[0][0] == 0 && span[0][1] == 98 && span[1][0] == 126 && span[1][1] == 128,
          "spans around the band");
    check(repeated_band_spans(repeated_band_none(), 64, span) == 1 && span[0][1] == 64,
          "no band: one span of every row");
    check_runs((RepeatedBand){3, 8, 2, 0}, 10, 0, 10, "0-50 80-100", "rows band, all rows");
    check_runs((RepeatedBand){3, 8, 2, 0}, 10, 4, 9, "40-50 80-90", "rows band, rows 4..8");
    check_runs((RepeatedBand){3, 10, 2, 1}, 10, 1, 3, "10-15 20-25", "columns band to the edge");
    check_runs((RepeatedBand){3, 8, 2, 1}, 10, 0, 1, "0-5 8-10", "columns band inside");
    check_runs(repeated_band_none(), 10, 2, 4, "20-40", "no band");
    float img[3 * 4 * 3] = {0};
    img[3] = 1.0f;  // channel 0, row 1, column 0
    RepeatedBand b = repeated_band_of_image(img, 3, 4, 3);
    check_band(b, 2, 4, 1, "image rows equal to the last");
    check(!b.columns, "image rows: a band of rows");
    img[3] = 0.0f, img[3 * 4 + 2 * 3 + 0] = 1.0f;  // channel 1, row 2, column 0
    b = repeated_band_of_image(img, 3, 4, 3);
    check_band(b, 1, 3, 1, "image columns equal to the last");
    check(b.columns, "image columns: a band of columns");
    check_band(repeated_band_meet((RepeatedBand){0, 50, 1, 0}, (RepeatedBand){0, 50, 1, 1}), 0, 0,
               1, "rows meet columns: none");
}

int main(void) {
    check_band_arithmetic();

    const SamConfig c = small_config();
    Pool weights = {.cap = 1 << 20, .rng = {7}};
    weights.data = malloc(weights.cap * sizeof(float));
    TinyVitEncoderWeights *w = malloc(sizeof *w);
    make_weights(w, &c, &weights);
    const int S = c.img_size;
    const size_t emb_floats = (size_t)c.out_chans * c.grid * c.grid;
    float *img = malloc(sizeof(float) * 3 * S * S);
    float *full = malloc(sizeof(float) * emb_floats), *reused = malloc(sizeof(float) * emb_floats);
    ThreadPool *pool = thread_pool_create(2);

    struct {
        int first_equal;
        float fill;
    } cases[] = {{512, 0.0f}, {341, 0.0f}, {288, 0.0f}, {200, 0.0f}, {64, 0.0f},
                 {1, 0.0f},   {0, 0.0f},   {300, 0.5f}, {505, 0.0f}};
    for (size_t i = 0; i < 2 * sizeof cases / sizeof cases[0]; i++) {
        const int columns = i % 2, first_equal = cases[i / 2].first_equal;
        const float fill = cases[i / 2].fill;
        make_image(img, S, first_equal, columns, fill, 1000 + i);
        char msg[160];
        snprintf(msg, sizeof msg, "%s %d.. = %g: ", columns ? "columns" : "rows", first_equal,
                 fill);
        const size_t at = strlen(msg);
        if (encode(full, img, w, &c, 0, NULL) || encode(reused, img, w, &c, 1, NULL)) {
            check(0, strcat(msg, "encode failed"));
            continue;
        }
        size_t differ = 0;
        double worst = 0.0;
        for (size_t k = 0; k < emb_floats; k++) {
            if (memcmp(&full[k], &reused[k], sizeof(float))) differ++;
            worst = fmax(worst, fabs((double)full[k] - reused[k]));
        }
        snprintf(msg + at, sizeof msg - at, "%zu of %zu values differ (worst %.3g)", differ,
                 emb_floats, worst);
        check(differ == 0 && isfinite(full[0]), msg);
        if (encode(reused, img, w, &c, 1, pool) == 0) {
            snprintf(msg + at, sizeof msg - at, "two threads give the same embedding");
            check(memcmp(full, reused, sizeof(float) * emb_floats) == 0, msg);
        }
    }
    thread_pool_destroy(pool);
    free(full), free(reused), free(img), free(w), free(weights.data);
    return report();
}
