// Elementwise and normalisation kernels: the scalar references (the
// specification that the SIMD variants in ops_avx2.c, ops_avx512.c and
// ops_wasmsimd.c are tested against; ops_dispatch.c dispatches), and the
// memory-bound ones plain C serves for (relu, add, transpose).
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "../common/multiversion.h"
#include "ops_internal.h"

void linear_forward(float *y, const float *x, const float *w, const float *bias, int m, int k,
                    int n) {
    gemm_nt_epilogue(m, n, k, 1.0f, x, k, w, k, 0.0f, y, n, bias, 0);
}

void linear_fused(float *y, const float *x, const float *w, const float *bias, int m, int k,
                  int n, int accumulate, int gelu) {
    gemm_nt_epilogue(m, n, k, 1.0f, x, k, w, k, accumulate ? 1.0f : 0.0f, y, n, bias, gelu);
}

void linear_forward_packed(float *y, const float *x, const GemmPackedB *w, const float *bias,
                           int m, int k, int n) {
    if (bias) {
        for (int i = 0; i < m; i++) memcpy(y + (size_t)i * n, bias, sizeof(float) * (size_t)n);
        gemm_packed_b(m, n, k, 1.0f, x, k, w, 1.0f, y, n);
    } else {
        gemm_packed_b(m, n, k, 1.0f, x, k, w, 0.0f, y, n);
    }
}

// Reference LayerNorm, accumulating in double.
void layernorm_rows_scalar(float *y, const float *x, const float *gamma, const float *beta, int n,
                           int c, float eps) {
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

// Reference LayerNorm2d, accumulating in double.
void layernorm_channels_scalar(float *y, const float *x, const float *gamma, const float *beta,
                               int c, int hw, float eps) {
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

// The SIMD LayerNorm2d variants' arithmetic (corrected two-pass float
// sums, ops_internal.h), one pixel at a time, for the pixels [p0, p1) that
// do not fill a vector.
void layernorm_channels_f32_pixels(float *y, const float *x, const float *gamma,
                                   const float *beta, int c, int hw, int p0, int p1, float eps) {
    for (int p = p0; p < p1; p++) {
        float sum = 0.0f;
        for (int ch = 0; ch < c; ch++) sum += x[(size_t)ch * hw + p];
        const float m1 = sum / (float)c;
        float sd = 0.0f, sdd = 0.0f;
        for (int ch = 0; ch < c; ch++) {
            const float d = x[(size_t)ch * hw + p] - m1;
            sd += d;
            sdd += d * d;
        }
        const float e = sd / (float)c, mean = m1 + e;
        const float var = sdd / (float)c - e * e;
        const float inv = 1.0f / sqrtf((var < 0.0f ? 0.0f : var) + eps);
        for (int ch = 0; ch < c; ch++) {
            const size_t at = (size_t)ch * hw + p;
            y[at] = (x[at] - mean) * inv * gamma[ch] + beta[ch];
        }
    }
}

// Reference GELU, libm erff.
void gelu_contract_with(void (*gelu)(float *x, size_t n), float *out, int ldo, const float *x,
                        int ldx, const float *bias, const float *weights, int m, int c, int n) {
    enum { CHUNK = 512 };  // one row's chunk stays in L1 across the m sums
    float tmp[CHUNK];
    for (int j0 = 0; j0 < n; j0 += CHUNK) {
        const int len = n - j0 < CHUNK ? n - j0 : CHUNK;
        for (int i = 0; i < c; i++) {
            const float *xi = x + (size_t)i * ldx + j0;
            for (int j = 0; j < len; j++) tmp[j] = xi[j] + bias[i];
            gelu(tmp, (size_t)len);
            for (int k = 0; k < m; k++) {
                float *o = out + (size_t)k * ldo + j0;
                const float wk = weights[(size_t)k * c + i];
                for (int j = 0; j < len; j++) o[j] += wk * tmp[j];
            }
        }
    }
}

void gemm_epilogue_with(void (*gelu)(float *x, size_t n), float *c, int ldc, int rows, int cols,
                        const float *bias, int gelu_on) {
    for (int i = 0; i < rows; i++) {
        float *ci = c + (size_t)i * ldc;
        if (bias)
            for (int j = 0; j < cols; j++) ci[j] += bias[j];
        if (gelu_on) gelu(ci, (size_t)cols);
    }
}

void gemm_epilogue_scalar(float *c, int ldc, int rows, int cols, const float *bias, int gelu_on) {
    gemm_epilogue_with(gelu_inplace_scalar, c, ldc, rows, cols, bias, gelu_on);
}

void gelu_inplace_scalar(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void relu_inplace(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// Reference softmax, libm expf.
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

// Reference column softmax: per column the same steps as softmax_rows_scalar
// (max, expf of the difference, float sum, one reciprocal), rows in order.
void softmax_cols_scalar_range(float *x, int rows, int cols, int j0, int j1) {
    for (int j = j0; j < j1; j++) {
        float mx = x[j];
        for (int i = 1; i < rows; i++) {
            const float v = x[(size_t)i * cols + j];
            mx = v > mx ? v : mx;
        }
        float sum = 0.0f;
        for (int i = 0; i < rows; i++) {
            float *p = x + (size_t)i * cols + j;
            *p = expf(*p - mx);
            sum += *p;
        }
        const float inv = 1.0f / sum;
        for (int i = 0; i < rows; i++) x[(size_t)i * cols + j] *= inv;
    }
}

void softmax_cols_scalar(float *x, int rows, int cols) {
    softmax_cols_scalar_range(x, rows, cols, 0, cols);
}

SAM_MULTIVERSION void add_to(float *dst, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

SAM_MULTIVERSION void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

// In TRANSPOSE_BLOCK x TRANSPOSE_BLOCK blocks, so that both the rows read
// and the rows written stay in L1 (element by element, each write of a
// 4096 x 256 transpose touched a new line: ~8 ns a float in V8).
#define TRANSPOSE_BLOCK 32
void transpose(float *dst, const float *src, int rows, int cols) {
    for (int i0 = 0; i0 < rows; i0 += TRANSPOSE_BLOCK) {
        const int i1 = i0 + TRANSPOSE_BLOCK < rows ? i0 + TRANSPOSE_BLOCK : rows;
        for (int j0 = 0; j0 < cols; j0 += TRANSPOSE_BLOCK) {
            const int j1 = j0 + TRANSPOSE_BLOCK < cols ? j0 + TRANSPOSE_BLOCK : cols;
            for (int j = j0; j < j1; j++)
                for (int i = i0; i < i1; i++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
        }
    }
}
