// Compute kernels shared by every model component. Each kernel has a scalar
// reference (the specification, in *_scalar.c / ops.c) and, where it pays,
// SIMD variants in their own files tested against it (see tests/c).
//
// Layouts are row-major. "Linear" follows PyTorch: weight is (out, in).
#ifndef SAM_KERNELS_H
#define SAM_KERNELS_H

#include <stddef.h>

// y (m, n) = x (m, k) @ w^T + bias, w is (n, k) as nn.Linear stores it.
// bias may be NULL. y must not alias x.
void linear_forward(float *y, const float *x, const float *w, const float *bias, int m, int k,
                    int n);

// C (m, n) = alpha * A (m, k) @ B^T + beta * C, B is (n, k). Strides in floats.
void gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);
// C (m, n) = alpha * A (m, k) @ B (k, n) + beta * C.
void gemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);

// Scalar references of the above (always available; the dispatching versions
// may call SIMD code). SAM_SCALAR=1 in the environment forces these natively.
void gemm_nt_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc);
void gemm_nn_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc);
// Name of the active GEMM variant ("scalar", "avx2", "avx512", "wasmsimd").
const char *gemm_variant_name(void);

// LayerNorm over the last dim: x is (n, c). y may alias x.
void layernorm_rows(float *y, const float *x, const float *gamma, const float *beta, int n,
                    int c, float eps);
// LayerNorm2d (SAM's): x is (c, hw) channel-major; normalises over c per pixel.
void layernorm_channels(float *y, const float *x, const float *gamma, const float *beta, int c,
                        int hw, float eps);
// Exact GELU 0.5 x (1 + erf(x / sqrt 2)), as torch.nn.GELU() (never tanh).
// Dispatches like softmax_rows (SIMD variants evaluate erf to ~3e-7);
// gelu_inplace_scalar is the libm erff reference.
void gelu_inplace(float *x, size_t n);
void gelu_inplace_scalar(float *x, size_t n);
void relu_inplace(float *x, size_t n);
// Numerically stable softmax of each row of x (rows, cols) in place.
// Dispatches like the GEMM (SIMD exp where available; SAM_SCALAR=1 forces
// the scalar reference softmax_rows_scalar, which uses libm expf).
void softmax_rows(float *x, int rows, int cols);
void softmax_rows_scalar(float *x, int rows, int cols);
// Name of the active softmax/GELU variant ("scalar", "avx2", "avx512").
const char *ops_variant_name(void);
// x += y elementwise.
void add_inplace(float *x, const float *y, size_t n);
// Transpose src (rows, cols) into dst (cols, rows).
void transpose(float *dst, const float *src, int rows, int cols);

#endif
