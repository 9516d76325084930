// Elementwise and normalisation kernels (scalar; memory-bound, so plain C
// that the compiler vectorises is enough for now).
#include <math.h>
#include <string.h>

#include "kernels.h"

void linear_forward(float *y, const float *x, const float *w, const float *bias, int m, int k,
                    int n) {
    // y (m, n) = x (m, k) @ w^T; bias broadcast over rows.
    if (bias) {
        for (int i = 0; i < m; i++) memcpy(y + (size_t)i * n, bias, sizeof(float) * (size_t)n);
        gemm_nt(m, n, k, 1.0f, x, k, w, k, 1.0f, y, n);
    } else {
        gemm_nt(m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
    }
}

void layernorm_rows(float *y, const float *x, const float *gamma, const float *beta, int n, int c,
                    float eps) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * c;
        float *yi = y + (size_t)i * c;
        // Two passes (mean, then variance of the centred values), as PyTorch.
        double mean = 0.0;
        for (int j = 0; j < c; j++) mean += xi[j];
        mean /= c;
        double var = 0.0;
        for (int j = 0; j < c; j++) {
            double d = xi[j] - mean;
            var += d * d;
        }
        var /= c;
        const float inv = (float)(1.0 / sqrt(var + eps));
        const float fmean = (float)mean;
        for (int j = 0; j < c; j++) yi[j] = (xi[j] - fmean) * inv * gamma[j] + beta[j];
    }
}

void layernorm_channels(float *y, const float *x, const float *gamma, const float *beta, int c,
                        int hw, float eps) {
    // SAM's LayerNorm2d: u = mean_c x; s = mean_c (x - u)^2; (x - u) / sqrt(s + eps).
    // Blocks of BLOCK pixels, channels in the outer loop, so that x is read
    // along its rows (per pixel the sums run over the channels in the same
    // order as a pixel-at-a-time loop: the result is the same bit for bit).
    enum { BLOCK = 128 };
    double mean[BLOCK], var[BLOCK];
    float fmean[BLOCK], inv[BLOCK];
    for (int p0 = 0; p0 < hw; p0 += BLOCK) {
        const int nb = hw - p0 < BLOCK ? hw - p0 : BLOCK;
        for (int p = 0; p < nb; p++) mean[p] = var[p] = 0.0;
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p0;
            for (int p = 0; p < nb; p++) mean[p] += xc[p];
        }
        for (int p = 0; p < nb; p++) mean[p] /= c;
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + (size_t)ch * hw + p0;
            for (int p = 0; p < nb; p++) {
                const double d = xc[p] - mean[p];
                var[p] += d * d;
            }
        }
        for (int p = 0; p < nb; p++) {
            inv[p] = (float)(1.0 / sqrt(var[p] / c + eps));
            fmean[p] = (float)mean[p];
        }
        for (int ch = 0; ch < c; ch++) {
            const size_t at = (size_t)ch * hw + p0;
            for (int p = 0; p < nb; p++)
                y[at + p] = (x[at + p] - fmean[p]) * inv[p] * gamma[ch] + beta[ch];
        }
    }
}

// Reference GELU (the specification for ops_avx2.c / ops_avx512.c;
// ops_dispatch.c dispatches).
void gelu_inplace_scalar(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void relu_inplace(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// Reference softmax (the specification for ops_avx2.c / ops_avx512.c;
// ops_dispatch.c dispatches).
void softmax_rows_scalar(float *x, int rows, int cols) {
    for (int i = 0; i < rows; i++) {
        float *r = x + (size_t)i * cols;
        float mx = r[0];
        for (int j = 1; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j < cols; j++) {
            r[j] = expf(r[j] - mx);
            sum += r[j];
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j < cols; j++) r[j] *= inv;
    }
}

void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void transpose(float *dst, const float *src, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}
