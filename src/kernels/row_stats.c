// Per-row mean and 1 / sqrt(var + eps): the statistics of layernorm_rows,
// for callers that apply the same normalisation to a linear projection of
// the rows (the mask decoder, src/model/two_way_transformer.c).
//
// Float sums in 8 interleaved partial sums (independent lanes that compilers
// vectorise without reassociating), two passes as PyTorch: the mean, then the
// centred squares plus the centred sum as a correction of the mean's rounding
// (the corrected two-pass of ops_internal.h).
#include <math.h>

#include "kernels.h"
#include "../common/multiversion.h"

enum { LANES = 8 };

static float lane_sum(const float *acc) {
    float s = 0.0f;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

SAM_MULTIVERSION void row_mean_rstd(const float *x, int n, int c, float eps, float *mean,
                                    float *rstd) {
    const int full = c - c % LANES;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * c;
        float acc[LANES] = {0};
        for (int j = 0; j < full; j += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += xi[j + l];
        float sum = lane_sum(acc);
        for (int j = full; j < c; j++) sum += xi[j];
        const float m1 = sum / (float)c;
        float dsum[LANES] = {0}, sq[LANES] = {0};
        for (int j = 0; j < full; j += LANES)
            for (int l = 0; l < LANES; l++) {
                const float d = xi[j + l] - m1;
                dsum[l] += d;
                sq[l] += d * d;
            }
        float ds = lane_sum(dsum), s2 = lane_sum(sq);
        for (int j = full; j < c; j++) {
            const float d = xi[j] - m1;
            ds += d;
            s2 += d * d;
        }
        const float e = ds / (float)c;
        float var = s2 / (float)c - e * e;
        var = var < 0.0f ? 0.0f : var;  // keeps NaN, as the LayerNorm kernels
        mean[i] = m1 + e;
        rstd[i] = 1.0f / sqrtf(var + eps);
    }
}
