// Per-row mean and 1 / sqrt(var + eps): the statistics of layernorm_rows,
// for callers that apply the same normalisation to a linear projection of
// the rows (the mask decoder, src/model/two_way_transformer.c).
//
// One pass over each row: the sum and the sum of squares in double, 8
// interleaved partial sums (independent lanes that compilers vectorise
// without reassociating), var = E[x^2] - mean^2. In double the cancellation
// costs ~1e-16 (mean^2 / var) relative: nothing at float precision for any
// row a float LayerNorm handles, and a single pass halves the memory
// traffic of the two-pass form (this runs on 4096 x 256 keys twice per
// prompt).
#include <math.h>

#include "../common/multiversion.h"
#include "kernels.h"

enum { LANES = 8 };

SAM_MULTIVERSION void row_mean_rstd(const float *x, int n, int c, float eps, float *mean,
                                    float *rstd) {
    const int full = c - c % LANES;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * c;
        double sum[LANES] = {0}, sq[LANES] = {0};
        for (int j = 0; j < full; j += LANES)
            for (int l = 0; l < LANES; l++) {
                const double v = xi[j + l];
                sum[l] += v;
                sq[l] += v * v;
            }
        double s = 0.0, q = 0.0;
        for (int l = 0; l < LANES; l++) s += sum[l], q += sq[l];
        for (int j = full; j < c; j++) s += xi[j], q += (double)xi[j] * xi[j];
        const double m = s / c;
        double var = q / c - m * m;
        var = var < 0.0 ? 0.0 : var;  // keeps NaN, as the LayerNorm kernels
        mean[i] = (float)m;
        rstd[i] = (float)(1.0 / sqrt(var + eps));
    }
}
