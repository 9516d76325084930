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
// y = GELU(x @ w^T + bias + (accumulate ? y : 0)), gelu 0: without the GELU.
// The bias, the residual (accumulate) and the GELU are applied by the GEMM
// to each tile of y as it is finished (gemm_nt_epilogue), while it is in
// cache, instead of in passes over y before and after.
void linear_fused(float *y, const float *x, const float *w, const float *bias, int m, int k,
                  int n, int accumulate, int gelu);

// C (m, n) = alpha * A (m, k) @ B^T + beta * C, B is (n, k). Strides in floats.
void gemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);
// gemm_nt, then on each finished tile of C (rows x cols of it, row stride
// ldc): C += bias (one value per column, bias + the tile's first column;
// NULL: none), then C = GELU(C) if gelu. gemm_epilogue is that step alone
// (the active ops variant's GELU, as gelu_inplace); gemm_epilogue_scalar is
// its reference (libm erff).
void gemm_nt_epilogue(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                      int ldb, float beta, float *c, int ldc, const float *bias, int gelu);
void gemm_epilogue(float *c, int ldc, int rows, int cols, const float *bias, int gelu);
void gemm_epilogue_scalar(float *c, int ldc, int rows, int cols, const float *bias, int gelu);
// C (m, n) = alpha * A (m, k) @ B (k, n) + beta * C.
void gemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);
// C (m, n) = alpha * A^T @ B (k, n) + beta * C, A stored (k, m).
void gemm_tn(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);

// B packed once for several products (per-image matrices of the mask
// decoder): the layout of the active variant's blocked driver, so the
// products skip packing it. gemm_pack_b_floats is the buffer size;
// trans_b 1: B is (n, k) as in gemm_nt, 0: (k, n) as in gemm_nn. The packed
// form keeps a pointer to B (the scalar variant reads B itself), so B must
// outlive it and stay unchanged.
typedef struct GemmPackedB {
    const void *variant;  // the variant that packed it
    const float *b;
    int ldb, n, k, trans_b;
    float *packed;        // NULL for the scalar variant
} GemmPackedB;
size_t gemm_pack_b_floats(int n, int k);
void gemm_pack_b(GemmPackedB *p, float *buffer, const float *b, int ldb, int n, int k,
                 int trans_b);
// The packed form (trans_b 1) of B = x + y, both (n, k) with row stride ld,
// without forming the sum in memory (for the scalar variant it is formed in
// buffer). The product must then use exactly n and k.
size_t gemm_pack_b_sum_floats(int n, int k);
void gemm_pack_b_sum(GemmPackedB *p, float *buffer, const float *x, const float *y, int ld, int n,
                     int k);
// C (m, n) = alpha * A (m, k) @ op(B) + beta * C, with op(B) as packed.
void gemm_packed_b(int m, int n, int k, float alpha, const float *a, int lda,
                   const GemmPackedB *b, float beta, float *c, int ldc);
// linear_forward with the weight (n, k) packed by gemm_pack_b (trans_b 1):
// for layers applied to a few rows many times (the decoder's tokens).
void linear_forward_packed(float *y, const float *x, const GemmPackedB *w, const float *bias,
                           int m, int k, int n);

// C (m, n) = alpha * A (m, k) diag(s) B^T + beta * C, B (n, k), s (k) or
// NULL (all ones): for a few rows and columns with a long k, both operands
// read along k as stored (no packing; gemm_dot.c). Dispatches like the
// GEMM; gemm_dot_scalar is the reference.
void gemm_dot(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
              const float *s, float beta, float *c, int ldc);
void gemm_dot_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, const float *s, float beta, float *c, int ldc);

// Scalar references of the above (always available; the dispatching versions
// may call SIMD code). SAM_SCALAR=1 in the environment forces these natively.
void gemm_nt_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc);
void gemm_nn_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc);
void gemm_tn_scalar(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc);
// Name of the active GEMM variant ("scalar", "avx2", "avx512", "wasmsimd").
const char *gemm_variant_name(void);

// LayerNorm over the last dim: x is (n, c). y may alias x.
// Dispatches like softmax_rows: the SIMD variants accumulate in float, as
// PyTorch does (two passes over x: the mean, then the centred values; see
// ops_internal.h); layernorm_rows_scalar, the reference, accumulates in double.
void layernorm_rows(float *y, const float *x, const float *gamma, const float *beta, int n,
                    int c, float eps);
void layernorm_rows_scalar(float *y, const float *x, const float *gamma, const float *beta, int n,
                           int c, float eps);
// LayerNorm2d (SAM's): x is (c, hw) channel-major; normalises over c per pixel.
// y may alias x. Dispatches like layernorm_rows.
void layernorm_channels(float *y, const float *x, const float *gamma, const float *beta, int c,
                        int hw, float eps);
void layernorm_channels_scalar(float *y, const float *x, const float *gamma, const float *beta,
                               int c, int hw, float eps);
// Exact GELU 0.5 x (1 + erf(x / sqrt 2)), as torch.nn.GELU() (never tanh).
// Dispatches like softmax_rows (SIMD variants evaluate erf to ~3e-7);
// gelu_inplace_scalar is the libm erff reference.
void gelu_inplace(float *x, size_t n);
void gelu_inplace_scalar(float *x, size_t n);
// out (m, n) += weights (m, c) @ GELU(x (c, n) + bias (c)): each row of x
// plus its bias through GELU, contracted with the weights (the mask
// decoder's hypernetwork weights against the upscaled features); rows of x
// are ldx apart, rows of out ldo; x is unchanged. Per element: bias add,
// GELU (the active variant's), then the weighted sum over the rows of x in
// order. (A WASM version keeping the sums in registers measured no faster:
// the GELU dominates.)
void gelu_contract(float *out, int ldo, const float *x, int ldx, const float *bias,
                   const float *weights, int m, int c, int n);
void relu_inplace(float *x, size_t n);
// Numerically stable softmax of each row of x (rows, cols) in place.
// Dispatches like the GEMM (SIMD exp where available; SAM_SCALAR=1 forces
// the scalar reference softmax_rows_scalar, which uses libm expf).
void softmax_rows(float *x, int rows, int cols);
void softmax_rows_scalar(float *x, int rows, int cols);
// Softmax of each column of x (rows, cols) over its rows, in place: for many
// short softmaxes (the decoder's image-to-token attention: ~7 tokens for each
// of 4096 x 8 image rows and heads), which then run across the vector lanes.
// Dispatches like softmax_rows.
void softmax_cols(float *x, int rows, int cols);
void softmax_cols_scalar(float *x, int rows, int cols);
// Name of the active softmax/GELU/LayerNorm variant ("scalar", "avx2",
// "avx512", "wasmsimd").
const char *ops_variant_name(void);
// x += y elementwise.
void add_inplace(float *x, const float *y, size_t n);
// dst = a + b elementwise.
void add_to(float *dst, const float *a, const float *b, size_t n);
// Dense 3x3 convolution, stride 1, zero padding 1, by Winograd F(4x4, 3x3)
// (conv3x3_winograd.c: 4x fewer multiply-adds than direct, ~1e-6 relative
// difference): in (h * w, cin) and out (h * w, cout) token-major, weight
// (cout, cin, 3, 3) as nn.Conv2d stores it, bias (cout) or NULL; scratch
// holds conv3x3_winograd_scratch_floats(h, w, cin, cout) floats. out must
// not alias in.
size_t conv3x3_winograd_scratch_floats(int h, int w, int cin, int cout);
void conv3x3_winograd(float *out, const float *in, int h, int w, int cin, int cout,
                      const float *weight, const float *bias, float *scratch);
// Transpose src (rows, cols) into dst (cols, rows).
void transpose(float *dst, const float *src, int rows, int cols);

#endif
