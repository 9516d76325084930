// Scalar GEMM: the specification every SIMD variant is tested against.
#include "kernels.h"

void gemm_nt_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        const float *ai = a + (size_t)i * lda;
        for (int j = 0; j < n; j++) {
            const float *bj = b + (size_t)j * ldb;
            float sum = 0.0f;
            for (int p = 0; p < k; p++) sum += ai[p] * bj[p];
            float *cij = c + (size_t)i * ldc + j;
            *cij = alpha * sum + (beta == 0.0f ? 0.0f : beta * *cij);
        }
    }
}

void gemm_nn_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        const float *ai = a + (size_t)i * lda;
        for (int p = 0; p < k; p++) {
            const float s = alpha * ai[p];
            const float *bp = b + (size_t)p * ldb;
            for (int j = 0; j < n; j++) ci[j] += s * bp[j];
        }
    }
}

void gemm_tn_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        for (int p = 0; p < k; p++) {
            const float s = alpha * a[(size_t)p * lda + i];
            const float *bp = b + (size_t)p * ldb;
            for (int j = 0; j < n; j++) ci[j] += s * bp[j];
        }
    }
}
