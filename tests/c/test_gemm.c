// GEMM variants against the scalar reference (XNNPACK-style: shapes that
// straddle each variant's register tile and cache blocks, odd strides,
// alpha/beta cases), plus `--bench` for GFLOP/s on the encoder's shapes.
//
//   build/tests/test_gemm           correctness; prints "N passed, M failed"
//   build/tests/test_gemm --bench   GFLOP/s per variant (result checked first)
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/gemm_internal.h"
#include "kernels/kernels.h"

// Tolerance |got - ref| <= ATOL + RTOL * |ref|. Inputs are uniform in [-1, 1]
// and k <= 3072, so partial sums stay below ~50. The variants reorder the
// k sum (k blocking, FMA contraction), which moves the result by about
// sqrt(k) * 2^-24 * (partial sum magnitude) ~ 1e-5 at worst here; 1e-4
// leaves 10x headroom, while a wrong index or a missed k step errs by O(0.1).
#define ATOL 1e-4
#define RTOL 1e-4

typedef struct Rng {
    uint64_t state;
} Rng;

static uint64_t rng_next(Rng *r) {  // splitmix64
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_uniform(Rng *r) {  // [-1, 1)
    return (float)((rng_next(r) >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *random_buffer(Rng *r, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = rng_uniform(r);
    return p;
}

typedef struct Case {
    float alpha, beta;
} Case;

static const Case CASES[] = {
    {1.0f, 0.0f},     // overwrite: C starts as NaN and must not leak
    {1.0f, 1.0f},     // accumulate (linear with bias pre-filled)
    {0.125f, 0.0f},   // attention scale
    {-0.75f, 0.5f},   // general
};

static int passed, failed;

enum { FORM_NN = 0, FORM_NT = 1, FORM_TN = 2 };
static const char *FORM_NAMES[3] = {"nn", "nt", "tn"};

// Runs one shape with one variant; returns 1 on success. form: FORM_*;
// for tn, A is stored (k, m) with row stride lda.
static int check_one(const GemmVariant *v, int form, int m, int n, int k, int lda, int ldb,
                     int ldc, Case cs, Rng *rng) {
    const int trans_b = form == FORM_NT;
    const size_t a_size = form == FORM_TN ? (size_t)(k > 0 ? k - 1 : 0) * lda + m
                                          : (size_t)(m - 1) * lda + k;
    const size_t b_size = trans_b ? (size_t)(n - 1) * ldb + k : (size_t)(k - 1) * ldb + n;
    const size_t c_size = (size_t)m * ldc;
    float *a = random_buffer(rng, a_size ? a_size : 1);
    float *b = random_buffer(rng, k > 0 ? b_size : 1);
    float *c_ref = random_buffer(rng, c_size);
    if (cs.beta == 0.0f)
        for (size_t i = 0; i < c_size; i++) c_ref[i] = NAN;
    // Row padding (columns n..ldc) gets a sentinel that must survive.
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++) c_ref[(size_t)i * ldc + j] = 12345.0f;
    float *c_got = malloc(c_size * sizeof(float));
    memcpy(c_got, c_ref, c_size * sizeof(float));

    if (form == FORM_TN) {
        gemm_tn_scalar(m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_ref, ldc);
        gemm_tn_with(v, m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_got, ldc);
    } else if (trans_b) {
        gemm_nt_scalar(m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_ref, ldc);
        gemm_nt_with(v, m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_got, ldc);
    } else {
        gemm_nn_scalar(m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_ref, ldc);
        gemm_nn_with(v, m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_got, ldc);
    }
    int ok = 1;
    double worst = 0.0;
    size_t worst_at = 0;
    for (int i = 0; i < m && ok; i++) {
        for (int j = 0; j < ldc; j++) {
            const size_t at = (size_t)i * ldc + j;
            const double ref = c_ref[at], got = c_got[at];
            const double err = fabs(got - ref);
            const int bad = !(err <= ATOL + RTOL * fabs(ref));  // NaN fails
            if (bad || err > worst) {
                worst = bad ? INFINITY : err;
                worst_at = at;
            }
            if (bad) {
                ok = 0;
                break;
            }
        }
    }
    if (!ok) {
        printf("FAIL %s gemm_%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g: "
               "C[%zu][%zu] = %.8g, reference %.8g\n",
               v->name, FORM_NAMES[form], m, n, k, lda, ldb, ldc, cs.alpha, cs.beta,
               worst_at / (size_t)ldc, worst_at % (size_t)ldc, c_got[worst_at],
               c_ref[worst_at]);
        failed++;
    } else {
        passed++;
    }
    free(a);
    free(b);
    free(c_ref);
    free(c_got);
    return ok;
}

// B packed ahead (gemm_pack_b_with + gemm_packed_b) against the scalar
// reference, for both B layouts.
static void check_packed(const GemmVariant *v, int trans_b, int m, int n, int k, Rng *rng) {
    const int lda = k + 1, ldb = trans_b ? k + 2 : n + 3, ldc = n;
    float *a = random_buffer(rng, (size_t)m * lda);
    float *b = random_buffer(rng, trans_b ? (size_t)n * ldb : (size_t)k * ldb);
    float *c_ref = random_buffer(rng, (size_t)m * ldc);
    float *c_got = malloc(sizeof(float) * (size_t)m * ldc);
    memcpy(c_got, c_ref, sizeof(float) * (size_t)m * ldc);
    const size_t floats = gemm_pack_b_floats_with(v, n, k);
    float *buffer = malloc(sizeof(float) * (floats ? floats : 1));
    GemmPackedB packed;
    gemm_pack_b_with(v, &packed, buffer, b, ldb, n, k, trans_b);
    if (trans_b)
        gemm_nt_scalar(m, n, k, 1.0f, a, lda, b, ldb, 0.5f, c_ref, ldc);
    else
        gemm_nn_scalar(m, n, k, 1.0f, a, lda, b, ldb, 0.5f, c_ref, ldc);
    gemm_packed_b(m, n, k, 1.0f, a, lda, &packed, 0.5f, c_got, ldc);
    int ok = 1;
    for (size_t i = 0; i < (size_t)m * ldc && ok; i++)
        ok = fabs((double)c_got[i] - c_ref[i]) <= ATOL + RTOL * fabs((double)c_ref[i]);
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s packed-B gemm_%s m=%d n=%d k=%d\n", v->name, trans_b ? "nt" : "nn", m, n, k);
    }
    free(a), free(b), free(c_ref), free(c_got), free(buffer);
}

// gemm_pack_b_sum (active variant: B = x + y packed without forming the sum)
// against the scalar reference on the formed sum.
static void check_packed_sum(int m, int n, int k, Rng *rng) {
    const int ld = k + 3;
    float *a = random_buffer(rng, (size_t)m * k);
    float *x = random_buffer(rng, (size_t)n * ld), *y = random_buffer(rng, (size_t)n * ld);
    float *sum = malloc(sizeof(float) * (size_t)n * k);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) sum[(size_t)i * k + j] = x[(size_t)i * ld + j] + y[(size_t)i * ld + j];
    float *c_ref = malloc(sizeof(float) * (size_t)m * n), *c_got = malloc(sizeof(float) * (size_t)m * n);
    float *buffer = malloc(sizeof(float) * gemm_pack_b_sum_floats(n, k));
    GemmPackedB packed;
    gemm_pack_b_sum(&packed, buffer, x, y, ld, n, k);
    gemm_nt_scalar(m, n, k, 1.0f, a, k, sum, k, 0.0f, c_ref, n);
    gemm_packed_b(m, n, k, 1.0f, a, k, &packed, 0.0f, c_got, n);
    int ok = 1;
    for (size_t i = 0; i < (size_t)m * n && ok; i++)
        ok = fabs((double)c_got[i] - c_ref[i]) <= ATOL + RTOL * fabs((double)c_ref[i]);
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL gemm_pack_b_sum m=%d n=%d k=%d (%s)\n", m, n, k, gemm_variant_name());
    }
    free(a), free(x), free(y), free(sum), free(c_ref), free(c_got), free(buffer);
}

// gemm_dot (active variant) against gemm_dot_scalar, with and without the
// scale vector, odd strides, every alpha/beta case (beta 0: C starts as NaN).
static void check_dot(int m, int n, int k, Rng *rng) {
    const int lda = k + 1, ldb = k + 3, ldc = n + 2;
    float *a = random_buffer(rng, (size_t)m * lda), *b = random_buffer(rng, (size_t)n * ldb);
    float *scale = random_buffer(rng, (size_t)k);
    float *c_ref = malloc(sizeof(float) * (size_t)m * ldc), *c_got = malloc(sizeof(float) * (size_t)m * ldc);
    for (int with_scale = 0; with_scale < 2; with_scale++) {
        for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
            const Case cs = CASES[ci];
            for (size_t i = 0; i < (size_t)m * ldc; i++)
                c_ref[i] = c_got[i] = cs.beta == 0.0f ? NAN : rng_uniform(rng);
            const float *sv = with_scale ? scale : NULL;
            gemm_dot_scalar(m, n, k, cs.alpha, a, lda, b, ldb, sv, cs.beta, c_ref, ldc);
            gemm_dot(m, n, k, cs.alpha, a, lda, b, ldb, sv, cs.beta, c_got, ldc);
            int ok = 1;
            for (int i = 0; i < m && ok; i++)
                for (int j = 0; j < n && ok; j++) {
                    const double r = c_ref[(size_t)i * ldc + j], g = c_got[(size_t)i * ldc + j];
                    ok = fabs(g - r) <= ATOL + RTOL * fabs(r);
                }
            if (ok) {
                passed++;
            } else {
                failed++;
                printf("FAIL gemm_dot m=%d n=%d k=%d scale=%d alpha=%g beta=%g (%s)\n", m, n, k,
                       with_scale, cs.alpha, cs.beta, gemm_variant_name());
            }
        }
    }
    free(a), free(b), free(scale), free(c_ref), free(c_got);
}

// gemm_nt with its epilogue (bias per column, GELU; the blocked driver
// applies them to each tile after its last k block) against the scalar GEMM
// followed by the reference epilogue (libm erff). The variant's GELU differs
// from libm's by ~3e-7 and has slope <= 1.13, inside the GEMM tolerance.
static void check_epilogue(const GemmVariant *v, int m, int n, int k, Case cs, int with_bias,
                           int gelu, Rng *rng) {
    const int lda = k + 1, ldb = k + 2, ldc = n + 3;
    float *a = random_buffer(rng, (size_t)m * lda), *b = random_buffer(rng, (size_t)n * ldb);
    float *bias = random_buffer(rng, (size_t)n);
    float *c_ref = random_buffer(rng, (size_t)m * ldc), *c_got = malloc((size_t)m * ldc * sizeof(float));
    memcpy(c_got, c_ref, (size_t)m * ldc * sizeof(float));
    const float *bp = with_bias ? bias : NULL;
    gemm_nt_scalar(m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_ref, ldc);
    gemm_epilogue_scalar(c_ref, ldc, m, n, bp, gelu);
    if (v->kernel)
        gemm_blocked_nt(v, m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_got, ldc, bp, gelu);
    else
        gemm_nt_epilogue(m, n, k, cs.alpha, a, lda, b, ldb, cs.beta, c_got, ldc, bp, gelu);
    int ok = 1;
    for (int i = 0; i < m && ok; i++)
        for (int j = 0; j < ldc && ok; j++) {
            const size_t at = (size_t)i * ldc + j;
            if (!(fabs((double)c_got[at] - c_ref[at]) <= ATOL + RTOL * fabs((double)c_ref[at]))) {
                printf("FAIL %s gemm_nt_epilogue m=%d n=%d k=%d beta=%g bias=%d gelu=%d: "
                       "C[%d][%d] = %.8g, reference %.8g\n",
                       v->name, m, n, k, cs.beta, with_bias, gelu, i, j, c_got[at], c_ref[at]);
                ok = 0;
            }
        }
    if (ok) passed++; else failed++;
    free(a), free(b), free(bias), free(c_ref), free(c_got);
}

static void check_variant(const GemmVariant *v, Rng *rng) {
    const int mr = v->mr, nr = v->nr;
    // Sizes straddling the register tile.
    const int ms[] = {1, mr - 1, mr, mr + 1, 2 * mr, 3 * mr + 1};
    const int ns[] = {1, nr - 1, nr, nr + 1, 2 * nr + 3};
    const int ks[] = {1, 3, 17, 768};
    const int n_cases = (int)(sizeof CASES / sizeof CASES[0]);
    int which = 0;
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
        if (ms[mi] < 1) continue;
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            if (ns[ni] < 1) continue;
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                const int m = ms[mi], n = ns[ni], k = ks[ki];
                for (int form = FORM_NN; form <= FORM_TN; form++) {
                    // Alternate tight and odd padded strides.
                    const int odd = which & 1;
                    const int lda = (form == FORM_TN ? m : k) + (odd ? 3 : 0);
                    const int ldb = form == FORM_NT ? k + (odd ? 5 : 0) : n + (odd ? 7 : 0);
                    const int ldc = n + (odd ? 1 : 0);
                    for (int ci = 0; ci < n_cases; ci++)
                        check_one(v, form, m, n, k, lda, ldb, ldc, CASES[ci], rng);
                    which++;
                }
            }
        }
    }
    // Shapes straddling the cache blocks (mc, nc, kc) and uneven k splits.
    if (v->kernel) {
        const int big[][3] = {
            {v->mc + mr + 1, 2 * nr + 1, v->kc + 1},
            {mr + 2, v->nc + nr + 3, 17},
            {2 * mr + 1, 3 * nr - 1, 2 * v->kc + 5},
            {v->mc - 1, nr + 1, 600},
            {196, 196, 64},  // windowed attention scores / values
        };
        for (size_t s = 0; s < sizeof big / sizeof big[0]; s++) {
            const int m = big[s][0], n = big[s][1], k = big[s][2];
            for (int form = FORM_NN; form <= FORM_TN; form++) {
                const int lda = form == FORM_TN ? m : k, trans_b = form == FORM_NT;
                check_one(v, form, m, n, k, lda + 1, trans_b ? k + 3 : n + 5, n + 3, CASES[0],
                          rng);
                check_one(v, form, m, n, k, lda, trans_b ? k : n, n, CASES[3], rng);
            }
        }
    }
    // Packed B: shapes around the tile and across several n and k blocks
    // (the decoder's per-image matrices: n = 4096 image rows, k = 16 or 256).
    const int packed_shapes[][3] = {{1, 1, 1}, {v->mr + 1, v->nr - 1, 17}, {7, 4096, 16},
                                    {56, 300, v->kc + 3}, {3, v->nc + v->nr + 1, 40}};
    for (size_t s = 0; s < sizeof packed_shapes / sizeof packed_shapes[0]; s++)
        for (int trans_b = 0; trans_b <= 1; trans_b++)
            check_packed(v, trans_b, packed_shapes[s][0], packed_shapes[s][1], packed_shapes[s][2], rng);
    // Epilogue: ragged tiles, several k blocks (applied once, after the last),
    // several m and n blocks, k == 0; overwrite and accumulate (residual).
    const int epilogue_shapes[][3] = {{v->mr + 1, v->nr - 1 > 0 ? v->nr - 1 : 1, 17},
                                      {v->mc + v->mr + 1, 2 * v->nr + 1, v->kc + 1},
                                      {3, v->nc + v->nr + 3, 2 * v->kc + 5}, {5, 7, 0}};
    for (size_t s = 0; s < sizeof epilogue_shapes / sizeof epilogue_shapes[0]; s++)
        for (int variant = 0; variant < 4; variant++)
            check_epilogue(v, epilogue_shapes[s][0], epilogue_shapes[s][1], epilogue_shapes[s][2],
                           CASES[variant % 2], variant != 1, variant != 2, rng);
    // k == 0: C = beta * C.
    check_one(v, FORM_NT, 5, 7, 0, 1, 1, 7, CASES[3], rng);
    check_one(v, FORM_NN, 5, 7, 0, 1, 7, 7, CASES[0], rng);
    check_one(v, FORM_TN, 5, 7, 0, 5, 7, 7, CASES[0], rng);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Times C = A B^T (nt) or A B (nn) and returns GFLOP/s; the result is first
// checked on sampled elements against a double-precision dot product.
static double bench_one(const GemmVariant *v, int trans_b, int m, int n, int k, Rng *rng,
                        int *ok) {
    float *a = random_buffer(rng, (size_t)m * k);
    float *b = random_buffer(rng, (size_t)n * k);
    float *c = malloc((size_t)m * n * sizeof(float));
    const int ldb = trans_b ? k : n;
    void (*fn)(const GemmVariant *, int, int, int, float, const float *, int, const float *, int,
               float, float *, int) = trans_b ? gemm_nt_with : gemm_nn_with;
    fn(v, m, n, k, 1.0f, a, k, b, ldb, 0.0f, c, n);
    for (int s = 0; s < 64; s++) {
        const int i = (int)(rng_next(rng) % (uint64_t)m), j = (int)(rng_next(rng) % (uint64_t)n);
        double ref = 0.0;
        for (int p = 0; p < k; p++)
            ref += (double)a[(size_t)i * k + p] *
                   (trans_b ? b[(size_t)j * k + p] : b[(size_t)p * n + j]);
        if (!(fabs(c[(size_t)i * n + j] - ref) <= ATOL + RTOL * fabs(ref))) *ok = 0;
    }
    double best = INFINITY;
    for (int rep = 0; rep < 3; rep++) {
        const double t0 = now_seconds();
        fn(v, m, n, k, 1.0f, a, k, b, ldb, 0.0f, c, n);
        const double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * m * n * k / best * 1e-9;
}

static int run_bench(void) {
    const GemmVariant *variants[8];
    const int count = gemm_available_variants(variants, 8);
    // ViT-B encoder products; the mask decoder's second upscaling convolution
    // (per tap) and its first one from the factored image tokens.
    const int shapes[][3] = {{4096, 2304, 768}, {4096, 768, 3072}, {128, 4096, 64}, {256, 4096, 102}};
    Rng rng = {42};
    int ok = 1;
    printf("active variant: %s\n", gemm_variant_name());
    for (int vi = 0; vi < count; vi++) {
        const GemmVariant *v = variants[vi];
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            // The scalar reference runs on 256 rows only, to keep the run short.
            const int m = v->kernel ? shapes[s][0] : 256, n = shapes[s][1], k = shapes[s][2];
            const double nt = bench_one(v, 1, m, n, k, &rng, &ok);
            const double nn = bench_one(v, 0, m, n, k, &rng, &ok);
            printf("%-7s %5dx%dx%d  gemm_nt %7.1f GFLOP/s  gemm_nn %7.1f GFLOP/s\n", v->name, m,
                   n, k, nt, nn);
        }
    }
    if (!ok) printf("bench: result check FAILED\n");
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return run_bench();
    const GemmVariant *variants[8];
    const int count = gemm_available_variants(variants, 8);
    Rng rng = {12345};
    for (int vi = 0; vi < count; vi++) {
        const int before = failed;
        check_variant(variants[vi], &rng);
        printf("variant %-7s %s\n", variants[vi]->name, failed == before ? "ok" : "FAILED");
    }
    const int sum_shapes[][3] = {{1, 1, 1}, {56, 4096, 256}, {7, 33, 17}, {5, 2100, 800}};
    for (size_t i = 0; i < sizeof sum_shapes / sizeof sum_shapes[0]; i++)
        check_packed_sum(sum_shapes[i][0], sum_shapes[i][1], sum_shapes[i][2], &rng);
    // gemm_dot: shapes around its blocks (2 x 4 outputs, 4- to 16-wide k
    // lanes) and the decoder's (probabilities against the correction rows or
    // one head's per-image columns, k = 4096 image rows).
    const int dot_shapes[][3] = {{1, 1, 1}, {1, 1, 3}, {2, 4, 16}, {3, 5, 17}, {2, 4, 33},
                                 {5, 9, 100}, {7, 16, 4096}, {56, 51, 4096}, {32, 102, 4096}};
    for (size_t i = 0; i < sizeof dot_shapes / sizeof dot_shapes[0]; i++)
        check_dot(dot_shapes[i][0], dot_shapes[i][1], dot_shapes[i][2], &rng);
    // The dispatcher picks a listed variant.
    int listed = 0;
    for (int vi = 0; vi < count; vi++) listed |= strcmp(variants[vi]->name, gemm_variant_name()) == 0;
    if (listed)
        passed++;
    else {
        printf("FAIL active variant %s is not among the available ones\n", gemm_variant_name());
        failed++;
    }
    printf("active variant: %s\n", gemm_variant_name());
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
