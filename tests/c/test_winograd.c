// conv3x3_winograd (Winograd F(4x4, 3x3)) against a direct 3x3 convolution
// accumulated in double: grids that are and are not multiples of the 4x4
// tile, 1x1 and 2x3 images, channel counts around the 64-channel transform
// block, with and without bias, and more tiles than one chunk (64).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/kernels.h"

// Tolerance on max |winograd - direct| / (max |direct| over the output):
// the transforms multiply patch values by up to 8 (A^T) and 5 (B^T) and
// round each partial sum in float, so the error is a few hundred ulps of the
// largest terms at worst (~1e-5); an index or matrix error is O(1).
#define REL_TOL 2e-5

static uint64_t rng_state = 12345;
static float uniform(void) {  // [-1, 1), splitmix64
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((z >> 40) * (2.0 / 16777216.0) - 1.0);
}

static int passed, failed;

static void check(int h, int w, int cin, int cout, int with_bias) {
    const size_t nin = (size_t)h * w * cin, nout = (size_t)h * w * cout;
    float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
    float *weight = malloc((size_t)cout * cin * 9 * sizeof(float));
    float *bias = malloc((size_t)cout * sizeof(float));
    float *scratch = malloc(conv3x3_winograd_scratch_floats(h, w, cin, cout) * sizeof(float));
    for (size_t i = 0; i < nin; i++) in[i] = uniform();
    for (size_t i = 0; i < (size_t)cout * cin * 9; i++) weight[i] = uniform();
    for (int i = 0; i < cout; i++) bias[i] = uniform();
    conv3x3_winograd(out, in, h, w, cin, cout, weight, with_bias ? bias : NULL, scratch);
    double worst = 0.0, scale = 0.0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int co = 0; co < cout; co++) {
                double ref = with_bias ? bias[co] : 0.0;
                for (int ci = 0; ci < cin; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int sy = y + ky - 1, sx = x + kx - 1;
                            if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;
                            ref += (double)weight[((size_t)co * cin + ci) * 9 + ky * 3 + kx] *
                                   in[((size_t)sy * w + sx) * cin + ci];
                        }
                const double got = out[((size_t)y * w + x) * cout + co];
                const double err = isfinite(got) ? fabs(got - ref) : INFINITY;
                if (err > worst) worst = err;
                if (fabs(ref) > scale) scale = fabs(ref);
            }
    const double rel = worst / (scale > 0.0 ? scale : 1.0);
    if (rel <= REL_TOL) {
        passed++;
    } else {
        failed++;
        printf("FAIL %dx%d cin %d cout %d bias %d: max error %.3g of scale %.3g (rel %.3g)\n", h, w,
               cin, cout, with_bias, worst, scale, rel);
    }
    free(in), free(out), free(weight), free(bias), free(scratch);
}

int main(void) {
    static const int sizes[][2] = {{1, 1}, {2, 3}, {4, 4}, {5, 7}, {8, 8}, {13, 9}, {36, 40}};
    static const int channels[][2] = {{1, 1}, {3, 5}, {16, 8}, {64, 64}, {70, 33}, {130, 17}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t c = 0; c < sizeof channels / sizeof channels[0]; c++)
            check(sizes[s][0], sizes[s][1], channels[c][0], channels[c][1], (int)(s + c) % 2);
    check(64, 64, 32, 48, 0);  // 256 tiles: 4 chunks of 64
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
