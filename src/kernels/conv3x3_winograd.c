// Dense 3x3 convolution (stride 1, zero padding 1) by Winograd's minimal
// filtering F(4x4, 3x3) (Lavin and Gray 2016): each 4x4 block of outputs
// (a tile) comes from the 6x6 input patch around it as
//   Y = A^T [ (G g G^T) . (B^T d B) ] A
// per (output, input) channel pair, the elementwise product summed over the
// input channels. Per tile and channel pair that is 36 multiply-adds instead
// of 16 x 9 = 144; the sums over the input channels are 36 GEMMs, one per
// point xi of the 6x6 transform domain:
//   M[xi] (tiles, cout) = V[xi] (tiles, cin) @ U[xi] (cout, cin)^T.
// The neck's 256 -> 256 convolution on the 64 x 64 grid (2.4 G multiply-adds
// as im2col + GEMM, the largest single layer of MobileSAM's encoder) drops to
// 0.6 G plus the transforms.
//
// Interpolation points 0, +-1, +-2 (the matrices below): the transforms
// round at a few ulps of the largest patch values, so results differ from
// direct convolution by ~1e-6 relative to the output's scale
// (tests/c/test_winograd.c bounds it against a double-precision direct
// convolution).
//
// Layouts follow the encoders: in (h * w, cin) and out (h * w, cout) token-
// major, weight (cout, cin, 3, 3) as nn.Conv2d stores it. Tiles are processed
// WINOGRAD_TILE_CHUNK at a time so the transformed inputs and products stay
// small; the transforms of a chunk run as tasks of the caller's thread pool,
// the GEMMs spread themselves.
#include <string.h>

#include "../common/thread_pool.h"
#include "kernels.h"

#define WINOGRAD_TILE_CHUNK 64
// Input channels transformed together: one patch (36 x CHANNEL_BLOCK) and
// its half-transformed copy stay in L1.
#define CHANNEL_BLOCK 64

static int imin(int a, int b) { return a < b ? a : b; }

size_t conv3x3_winograd_scratch_floats(int h, int w, int cin, int cout) {
    const int tiles = ((h + 3) / 4) * ((w + 3) / 4);
    const size_t chunk = (size_t)imin(tiles, WINOGRAD_TILE_CHUNK);
    return 36 * ((size_t)cout * cin + chunk * cin + chunk * cout);
}

// U[xi][co][ci] = (G g G^T)[xi] for g = weight[co][ci] (3 x 3), with
// G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
typedef struct WeightJob {
    float *u;
    const float *weight;
    int cin, cout;
} WeightJob;

static void transform_kernel_3(const float g[3], float out[6]) {
    const float sixth = 1.0f / 6.0f, twelfth = 1.0f / 12.0f, twentyfourth = 1.0f / 24.0f;
    out[0] = g[0] * 0.25f;
    out[1] = -(g[0] + g[1] + g[2]) * sixth;
    out[2] = -(g[0] - g[1] + g[2]) * sixth;
    out[3] = g[0] * twentyfourth + g[1] * twelfth + g[2] * sixth;
    out[4] = g[0] * twentyfourth - g[1] * twelfth + g[2] * sixth;
    out[5] = g[2];
}

// One output channel: the 36 transformed values of each input channel's
// kernel, gathered for CHANNEL_BLOCK input channels at a time and then
// copied to U's 36 rows (the rows are cout * cin floats apart: storing
// straight into them, 36 streams mapping to the same L1 set, missed on
// every store).
static void weight_task(void *ctx, int co, int thread) {
    const WeightJob *j = ctx;
    const size_t plane = (size_t)j->cout * j->cin;
    float block[36][CHANNEL_BLOCK];
    for (int c0 = 0; c0 < j->cin; c0 += CHANNEL_BLOCK) {
        const int n = imin(CHANNEL_BLOCK, j->cin - c0);
        for (int ci = 0; ci < n; ci++) {
            const float *g = j->weight + ((size_t)co * j->cin + c0 + ci) * 9;
            float gt[6][3];  // G g, one column of g at a time
            for (int c = 0; c < 3; c++) {
                const float col[3] = {g[c], g[3 + c], g[6 + c]};
                float t[6];
                transform_kernel_3(col, t);
                for (int i = 0; i < 6; i++) gt[i][c] = t[i];
            }
            for (int i = 0; i < 6; i++) {
                float row[6];
                transform_kernel_3(gt[i], row);  // (G g) G^T, row i
                for (int k = 0; k < 6; k++) block[i * 6 + k][ci] = row[k];
            }
        }
        for (int xi = 0; xi < 36; xi++)
            memcpy(j->u + (size_t)xi * plane + (size_t)co * j->cin + c0, block[xi],
                   sizeof(float) * (size_t)n);
    }
}

// B^T d for six rows d[0..5] of n values each (stride `step` between rows),
// into out rows (stride `ostep`):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
//          0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
static void transform_input_6(float *restrict out, size_t ostep, const float *restrict d,
                              size_t step, int n) {
    const float *d0 = d, *d1 = d + step, *d2 = d + 2 * step, *d3 = d + 3 * step;
    const float *d4 = d + 4 * step, *d5 = d + 5 * step;
    for (int c = 0; c < n; c++) {
        out[c] = 4.0f * d0[c] - 5.0f * d2[c] + d4[c];
        out[ostep + c] = -4.0f * (d1[c] + d2[c]) + d3[c] + d4[c];
        out[2 * ostep + c] = 4.0f * (d1[c] - d2[c]) - d3[c] + d4[c];
        out[3 * ostep + c] = 2.0f * (d3[c] - d1[c]) - d2[c] + d4[c];
        out[4 * ostep + c] = 2.0f * (d1[c] - d3[c]) - d2[c] + d4[c];
        out[5 * ostep + c] = 4.0f * d1[c] - 5.0f * d3[c] + d5[c];
    }
}

// A^T m for six rows of n values into four:
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
static void transform_output_6(float *restrict out, size_t ostep, const float *restrict m,
                               size_t step, int n) {
    const float *m0 = m, *m1 = m + step, *m2 = m + 2 * step, *m3 = m + 3 * step;
    const float *m4 = m + 4 * step, *m5 = m + 5 * step;
    for (int c = 0; c < n; c++) {
        const float s12 = m1[c] + m2[c], d12 = m1[c] - m2[c];
        const float s34 = m3[c] + m4[c], d34 = m3[c] - m4[c];
        out[c] = m0[c] + s12 + s34;
        out[ostep + c] = d12 + 2.0f * d34;
        out[2 * ostep + c] = s12 + 4.0f * s34;
        out[3 * ostep + c] = d12 + 8.0f * d34 + m5[c];
    }
}

typedef struct TileJob {
    float *out;
    const float *in, *bias;
    float *v, *m;  // (36, chunk, cin), (36, chunk, cout)
    int h, w, cin, cout, tiles_x, tile0, chunk;
} TileJob;

// V[xi][t][ci] of tile tile0 + t: the 6x6 patch starting at (4 ty - 1, 4 tx - 1).
static void input_task(void *ctx, int t, int thread) {
    const TileJob *j = ctx;
    const int tile = j->tile0 + t, ty = tile / j->tiles_x, tx = tile % j->tiles_x;
    float patch[36 * CHANNEL_BLOCK], half[36 * CHANNEL_BLOCK];
    const size_t xi_step = (size_t)j->chunk * j->cin;  // between points of V
    for (int c0 = 0; c0 < j->cin; c0 += CHANNEL_BLOCK) {
        const int n = imin(CHANNEL_BLOCK, j->cin - c0);
        for (int py = 0; py < 6; py++)
            for (int px = 0; px < 6; px++) {
                const int y = 4 * ty - 1 + py, x = 4 * tx - 1 + px;
                float *dst = patch + (py * 6 + px) * CHANNEL_BLOCK;
                if (y < 0 || y >= j->h || x < 0 || x >= j->w)
                    memset(dst, 0, sizeof(float) * (size_t)n);
                else
                    memcpy(dst, j->in + ((size_t)y * j->w + x) * j->cin + c0,
                           sizeof(float) * (size_t)n);
            }
        // B^T d down the columns (rows of the patch), then (B^T d) B along rows.
        for (int px = 0; px < 6; px++)
            transform_input_6(half + px * CHANNEL_BLOCK, 6 * CHANNEL_BLOCK,
                              patch + px * CHANNEL_BLOCK, 6 * CHANNEL_BLOCK, n);
        for (int i = 0; i < 6; i++)
            transform_input_6(j->v + (size_t)(i * 6) * xi_step + (size_t)t * j->cin + c0, xi_step,
                              half + i * 6 * CHANNEL_BLOCK, CHANNEL_BLOCK, n);
    }
}

// out at tile tile0 + t from M[xi][t][co]: A^T M A, plus the bias.
static void output_task(void *ctx, int t, int thread) {
    const TileJob *j = ctx;
    const int tile = j->tile0 + t, ty = tile / j->tiles_x, tx = tile % j->tiles_x;
    float half[24 * CHANNEL_BLOCK], y4[16 * CHANNEL_BLOCK];
    const size_t xi_step = (size_t)j->chunk * j->cout;
    for (int c0 = 0; c0 < j->cout; c0 += CHANNEL_BLOCK) {
        const int n = imin(CHANNEL_BLOCK, j->cout - c0);
        const float *m = j->m + (size_t)t * j->cout + c0;
        for (int k = 0; k < 6; k++)  // A^T down the columns: half[i][k] (4 x 6)
            transform_output_6(half + k * CHANNEL_BLOCK, 6 * CHANNEL_BLOCK, m + (size_t)k * xi_step,
                               6 * xi_step, n);
        for (int i = 0; i < 4; i++)  // then along the rows: y4[i][k] (4 x 4)
            transform_output_6(y4 + i * 4 * CHANNEL_BLOCK, CHANNEL_BLOCK,
                               half + i * 6 * CHANNEL_BLOCK, CHANNEL_BLOCK, n);
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++) {
                const int y = 4 * ty + i, x = 4 * tx + k;
                if (y >= j->h || x >= j->w) continue;
                float *o = j->out + ((size_t)y * j->w + x) * j->cout + c0;
                const float *src = y4 + (i * 4 + k) * CHANNEL_BLOCK;
                if (j->bias)
                    for (int c = 0; c < n; c++) o[c] = src[c] + j->bias[c0 + c];
                else
                    memcpy(o, src, sizeof(float) * (size_t)n);
            }
    }
}

void conv3x3_winograd(float *out, const float *in, int h, int w, int cin, int cout,
                      const float *weight, const float *bias, float *scratch) {
    if (h <= 0 || w <= 0 || cout <= 0) return;
    const int tiles_x = (w + 3) / 4, tiles = tiles_x * ((h + 3) / 4);
    const int chunk_max = imin(tiles, WINOGRAD_TILE_CHUNK);
    const size_t plane = (size_t)cout * cin;
    float *u = scratch, *v = u + 36 * plane, *m = v + 36 * (size_t)chunk_max * cin;
    ThreadPool *pool = thread_pool_current();
    WeightJob wj = {.u = u, .weight = weight, .cin = cin, .cout = cout};
    thread_pool_run(pool, cout, weight_task, &wj);
    for (int tile0 = 0; tile0 < tiles; tile0 += chunk_max) {
        const int chunk = imin(chunk_max, tiles - tile0);
        TileJob tj = {.out = out, .in = in, .bias = bias, .v = v, .m = m, .h = h, .w = w,
                      .cin = cin, .cout = cout, .tiles_x = tiles_x, .tile0 = tile0, .chunk = chunk};
        thread_pool_run(pool, chunk, input_task, &tj);
        for (int xi = 0; xi < 36; xi++)
            gemm_nt(chunk, cout, cin, 1.0f, v + (size_t)xi * chunk * cin, cin, u + xi * plane, cin,
                    0.0f, m + (size_t)xi * chunk * cout, cout);
        thread_pool_run(pool, chunk, output_task, &tj);
    }
}
