// Softmax, GELU and LayerNorm variants against the scalar references (ops.c:
// libm expf and erff, double-accumulating LayerNorms). Softmax: row lengths
// straddling the vector widths (4, 8, 16) and the attention shapes (196,
// 4096), inputs from narrow to wide ranges (so exp underflows to 0 for some
// entries), -inf entries (masked logits), a NaN row. GELU: lengths around
// the vector widths, ranges up to +-20, and special values (0, -0, tiny,
// huge, +-inf, NaN). LayerNorm over rows (c = 1..17 and up to 4096) and
// LayerNorm2d over channels (hw = 1..17 and beyond): unit, tiny (eps-bound)
// and huge scales, offset rows (|mean| >> std), constant rows, an outlier,
// NaN and inf (the row becomes NaN in both), in place as the model calls them.
// Runs natively and in WASM (build/wasm/tests/test_simd_ops.cjs under node).
// Prints "N passed, M failed"; `--bench` prints ns per element per variant
// on the mask decoder's shapes.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "kernels/ops_internal.h"

// |got - ref| <= ATOL + RTOL * |ref|. The SIMD exp is within ~2 ulp of expf
// (degree-7 Taylor, truncation 6e-9), but the row sums differ more: the
// reference adds 4096 terms one after the other in float (its own rounding
// error grows like sqrt(cols) * 2^-24 typically), the variants in 4, 8 or 16
// lanes; both are ~5e-6 from a double-precision softmax at 4096 columns
// (measured: worst 6e-6 apart). RTOL 5e-5 leaves 8x margin, while a wrong
// exp (1e-3 and up) fails.
// ATOL 1e-12 lets entries that underflow differently (e^-87 ... e^-104,
// below 1e-38 relative to the row maximum) match 0.
#define ATOL 1e-12
#define RTOL 5e-5
// GELU: |got - ref| <= GELU_TOL * max(1, |x|). Both the libm reference and
// the SIMD erfc are within 1.1e-7 * max(1, |x|) of the exact GELU (measured
// against double erfc on [-12, 12]); on the negative side the reference
// loses more to cancellation in 1 + erff (GELU(-5): 1.49e-6 vs exact 1.433e-6,
// which the SIMD path gets right), hence a bound scaled by |x| rather than
// |ref|, at 1e-6: 9x the observed error, far below a wrong formula (tanh
// GELU errs by 1e-4 and more).
#define GELU_TOL 1e-6
// LayerNorm: |got - ref| <= LN_ULPS 2^-24 sqrt(max(c, 16)) scale_j with
// scale_j = |beta_j| + |gamma_j| (1 + (|x_j| + |mean|) inv), mean and
// inv = 1 / sqrt(var + eps) of the row in double. scale_j follows the error
// terms of a float LayerNorm: an error in the mean moves the output by
// |gamma| inv dmean, and the mean is good to a few ulp of |mean| at best
// (the reference rounds its double mean to float too, and x - mean rounds
// relative to |x|); a relative error in the variance scales the normalised
// output, bounded by 1 + |x - mean| inv; the affine step rounds relative to
// |beta| and to the normalised output. The float sums of c terms add an
// error that grows like sqrt(c) ulp (a random walk; LayerNorm2d sums each
// pixel's c channels in one lane, so lanes do not shorten it), hence the
// sqrt(c) factor. Measured: at most ~1.0 sqrt(max(c, 16)) ulp of scale_j
// over all cases (42 ulp for c = 4096 channels with an outlier, 3.5 for rows
// of 4096); LN_ULPS 8 leaves ~8x (the worst ratio is printed). A variance
// divided by c - 1 instead of c, or a missing eps (the tiny-scale case)
// fails. A constant row must give exactly beta, as the reference does.
#define LN_ULPS 8.0

static int passed, failed;

static uint64_t rng_state = 2024;
static double rng_uniform(void) {  // [-1, 1)
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

// by_cols: softmax_cols (each column over the rows) instead of softmax_rows.
static void check_case(const OpsVariant *v, int rows, int cols, double range, int special,
                       int by_cols) {
    const size_t n = (size_t)rows * cols;
    float *ref = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) ref[i] = (float)(range * rng_uniform());
    if (special == 1)  // masked logits
        for (size_t i = 0; i < n; i += 3) ref[i] = -INFINITY;
    if (special == 2) ref[n / 2] = NAN;  // that row becomes NaN in both
    memcpy(got, ref, n * sizeof(float));
    if (by_cols) {
        softmax_cols_scalar(ref, rows, cols);
        v->softmax_cols(got, rows, cols);
    } else {
        softmax_rows_scalar(ref, rows, cols);
        v->softmax_rows(got, rows, cols);
    }
    int ok = 1;
    size_t bad_at = 0;
    for (size_t i = 0; i < n && ok; i++) {
        const double r = ref[i], g = got[i];
        if (isnan(r) ? !isnan(g) : !(fabs(g - r) <= ATOL + RTOL * fabs(r))) ok = 0, bad_at = i;
    }
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s softmax_%s rows=%d cols=%d range=%g special=%d: [%zu][%zu] = %.9g, "
               "reference %.9g\n",
               v->name, by_cols ? "cols" : "rows", rows, cols, range, special,
               bad_at / (size_t)cols, bad_at % (size_t)cols,
               got[bad_at], ref[bad_at]);
    }
    free(ref);
    free(got);
}

static void check_gelu(const OpsVariant *v, size_t n, double range, int special) {
    static const float specials[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e30f, -1e30f, INFINITY,
                                     -INFINITY, NAN, 5.0f, -5.0f, 9.5f, -9.5f, 88.0f, -88.0f};
    const size_t n_special = sizeof specials / sizeof specials[0];
    float *x = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    float *got = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = special ? specials[i % n_special] : (float)(range * rng_uniform());
    memcpy(ref, x, n * sizeof(float));
    memcpy(got, x, n * sizeof(float));
    gelu_inplace_scalar(ref, n);
    v->gelu(got, n);
    for (size_t i = 0; i < n; i++) {
        const double r = ref[i], g = got[i];
        const int same_nan = isnan(r) && isnan(g);
        const int same_inf = isinf(r) && r == g;
        if (same_nan || same_inf) continue;
        if (!(fabs(g - r) <= GELU_TOL * fmax(1.0, fabs((double)x[i])))) {
            failed++;
            printf("FAIL %s gelu n=%zu range=%g special=%d: gelu(%.9g) = %.9g, reference %.9g\n",
                   v->name, n, range, special, x[i], g, r);
            free(x), free(ref), free(got);
            return;
        }
    }
    passed++;
    free(x), free(ref), free(got);
}

// Input kinds for the LayerNorm cases.
enum {
    LN_UNIT,      // U(-1, 1)
    LN_TINY,      // 1e-3 U(-1, 1): var ~ eps, so a wrong eps shows
    LN_OFFSET,    // 100 + U(-1, 1): |mean| >> std
    LN_WIDE,      // -1e4 + 1e3 U(-1, 1)
    LN_HUGE,      // 1e4 U(-1, 1)
    LN_CONSTANT,  // every value 3.7: var 0, the output is beta
    LN_OUTLIER,   // U(-1, 1) and one value of 500 per row (ViT outlier channels)
    LN_NAN,       // one NaN in row 1: row 1 becomes NaN
    LN_INF,       // one +inf in row 1: row 1 becomes NaN
    LN_KINDS
};
static const char *const ln_kind_names[LN_KINDS] = {"unit",     "tiny",    "offset",
                                                    "wide",     "huge",    "constant",
                                                    "outlier",  "nan",     "inf"};
static double ln_worst_ratio;  // max |got - ref| / bound over the finite cases

// One LayerNorm case: `rows` normalisation groups of `c` values; value j of
// group r is at r * rs + j * js (layernorm_rows: rs = c, js = 1;
// layernorm_channels: rs = 1, js = rows). The variant runs in place.
static void check_layernorm(const OpsVariant *v, int channels_major, int rows, int c, int kind,
                            float eps) {
    const size_t n = (size_t)rows * c;
    const size_t rs = channels_major ? 1 : (size_t)c, js = channels_major ? (size_t)rows : 1;
    float *x = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    float *got = malloc(n * sizeof(float));
    float *gamma = malloc((size_t)c * sizeof(float)), *beta = malloc((size_t)c * sizeof(float));
    for (int j = 0; j < c; j++) {
        gamma[j] = (float)(2.0 * rng_uniform());
        beta[j] = (float)rng_uniform();
    }
    const double offset[] = {0, 0, 100, -1e4, 0, 3.7, 0, 0, 0};
    const double scale[] = {1, 1e-3, 1, 1e3, 1e4, 0, 1, 1, 1};
    for (size_t i = 0; i < n; i++) x[i] = (float)(offset[kind] + scale[kind] * rng_uniform());
    if (kind == LN_OUTLIER)
        for (int r = 0; r < rows; r++) x[r * rs + (size_t)(r % c) * js] = 500.0f;
    if ((kind == LN_NAN || kind == LN_INF) && rows > 1)
        x[rs + (size_t)(c / 2) * js] = kind == LN_NAN ? NAN : INFINITY;
    memcpy(got, x, n * sizeof(float));
    if (channels_major) {
        layernorm_channels_scalar(ref, x, gamma, beta, c, rows, eps);
        v->layernorm_channels(got, got, gamma, beta, c, rows, eps);
    } else {
        layernorm_rows_scalar(ref, x, gamma, beta, rows, c, eps);
        v->layernorm_rows(got, got, gamma, beta, rows, c, eps);
    }
    int ok = 1;
    for (int r = 0; r < rows && ok; r++) {
        double mean = 0.0, var = 0.0;
        for (int j = 0; j < c; j++) mean += x[r * rs + j * js];
        mean /= c;
        for (int j = 0; j < c; j++)
            var += (x[r * rs + j * js] - mean) * (x[r * rs + j * js] - mean);
        const double inv = 1.0 / sqrt(var / c + eps);
        for (int j = 0; j < c && ok; j++) {
            const size_t at = r * rs + j * js;
            const double g = got[at], rf = ref[at];
            if (isnan(rf)) {
                if (!isnan(g)) ok = 0;
            } else {
                const double bound =
                    LN_ULPS * 0x1p-24 * sqrt(c > 16 ? c : 16) *
                    (fabs(beta[j]) + fabs(gamma[j]) * (1.0 + (fabs(x[at]) + fabs(mean)) * inv));
                const double err = fabs(g - rf);
                if (!(err <= bound) || (kind == LN_CONSTANT && g != beta[j])) ok = 0;
                else if (err / bound > ln_worst_ratio) ln_worst_ratio = err / bound;
            }
            if (!ok)
                printf("FAIL %s %s c=%d %s=%d %s eps=%g: group %d value %d: x %.9g -> %.9g, "
                       "reference %.9g\n",
                       v->name, channels_major ? "layernorm_channels" : "layernorm_rows", c,
                       channels_major ? "hw" : "rows", rows, ln_kind_names[kind], eps, r, j, x[at],
                       g, rf);
        }
    }
    if (ok) passed++;
    else failed++;
    free(x), free(ref), free(got), free(gamma), free(beta);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Best of `reps` runs of one op on freshly filled input, in ns per element.
typedef enum { OP_SOFTMAX, OP_SOFTMAX_COLS, OP_GELU, OP_LN_ROWS, OP_LN_CHANNELS } BenchOp;

static double bench_op(const OpsVariant *v, BenchOp op, int rows, int cols, float *x,
                       const float *gamma, const float *beta, int reps) {
    const size_t n = (size_t)rows * cols;
    double best = INFINITY;
    for (int rep = 0; rep < reps; rep++) {
        const double range = op == OP_SOFTMAX || op == OP_SOFTMAX_COLS ? 8.0 : 4.0;
        for (size_t i = 0; i < n; i++) x[i] = (float)(range * rng_uniform());
        const double t0 = now_seconds();
        switch (op) {
        case OP_SOFTMAX: v->softmax_rows(x, rows, cols); break;
        case OP_SOFTMAX_COLS: v->softmax_cols(x, rows, cols); break;
        case OP_GELU: v->gelu(x, n); break;
        case OP_LN_ROWS: v->layernorm_rows(x, x, gamma, beta, rows, cols, 1e-6f); break;
        case OP_LN_CHANNELS: v->layernorm_channels(x, x, gamma, beta, rows, cols, 1e-6f); break;
        }
        best = fmin(best, now_seconds() - t0);
    }
    return best * 1e9 / (double)n;
}

// The mask decoder's shapes (ViT-B): attention softmax over 4096 keys and
// over the ~7 tokens (8 heads x 4096 image queries), GELU
// on the first upscaling output (64 x 128 x 128), LayerNorm on the 4096
// image tokens of width 256 and on the upscaling's 128 x 128 pixels of 64
// channels (pixel-major), LayerNorm2d on 64 channels x 128 x 128; and the
// encoder neck's LayerNorm2d (256 x 64 x 64).
static int run_bench(const OpsVariant *const *variants, int count) {
    static const struct {
        BenchOp op;
        const char *name;
        int rows, cols;
    } shapes[] = {
        {OP_SOFTMAX, "softmax_rows", 256, 4096},
        {OP_SOFTMAX, "softmax_rows", 8 * 4096, 7},
        {OP_SOFTMAX_COLS, "softmax_cols", 7, 8 * 4096},
        {OP_GELU, "gelu", 64, 128 * 128},
        {OP_LN_ROWS, "layernorm_rows", 4096, 256},
        {OP_LN_ROWS, "layernorm_rows", 128 * 128, 64},
        {OP_LN_CHANNELS, "layernorm_channels", 64, 128 * 128},
        {OP_LN_CHANNELS, "layernorm_channels", 256, 64 * 64},
    };
    const size_t most = (size_t)64 * 128 * 128;
    float *x = malloc(most * sizeof(float));
    float *gamma = malloc(4096 * sizeof(float)), *beta = malloc(4096 * sizeof(float));
    for (int j = 0; j < 4096; j++) gamma[j] = 1.0f + 0.1f * (float)rng_uniform(), beta[j] = 0.1f;
    printf("ns per element, best of 5 (active variant: %s)\n", ops_variant_name());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        double scalar_ns = 0.0;
        for (int vi = count - 1; vi >= 0; vi--) {  // scalar (last) first, for the ratios
            const double ns = bench_op(variants[vi], shapes[s].op, shapes[s].rows, shapes[s].cols,
                                       x, gamma, beta, 5);
            if (vi == count - 1) scalar_ns = ns;
            printf("%-18s %5d x %-5d %-8s %7.3f ns/element  %5.1fx scalar\n", shapes[s].name,
                   shapes[s].rows, shapes[s].cols, variants[vi]->name, ns, scalar_ns / ns);
        }
    }
    free(x), free(gamma), free(beta);
    return 0;
}

int main(int argc, char **argv) {
    const OpsVariant *variants[4];
    const int count = ops_available_variants(variants, 4);
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return run_bench(variants, count);
    // Lengths (softmax columns, GELU elements, LayerNorm widths): every one of
    // 1..17 (the ragged ends of 4, 8 and 16 lanes), then larger ones around
    // the vector widths and LayerNorm2d's 128-pixel blocks (130, 259), and at
    // the model's (64, 196, 256, 768, 4096).
    int lens[32], n_lens = 0;
    for (int c = 1; c <= 17; c++) lens[n_lens++] = c;
    const int more[] = {31, 32, 33, 47, 64, 100, 130, 196, 256, 259, 768, 4096};
    for (size_t k = 0; k < sizeof more / sizeof more[0]; k++) lens[n_lens++] = more[k];
    const double ranges[] = {1.0, 10.0, 60.0, 200.0};
    for (int vi = 0; vi < count; vi++) {
        const int before = failed;
        for (int l = 0; l < n_lens; l++) {
            for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
                check_case(variants[vi], 3, lens[l], ranges[r], 0, 0);
            check_case(variants[vi], 2, lens[l], 10.0, 1, 0);
            check_case(variants[vi], 3, lens[l], 10.0, 2, 0);
            // Columns: the decoder's ~7 tokens (and 1, 2, 17 rows) over
            // every column count, including the vector widths' ragged ends.
            for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
                check_case(variants[vi], 7, lens[l], ranges[r], 0, 1);
            check_case(variants[vi], 1, lens[l], 10.0, 0, 1);
            check_case(variants[vi], 17, lens[l], 10.0, 1, 1);
            check_case(variants[vi], 2, lens[l], 10.0, 2, 1);
        }
        for (int l = 0; l < n_lens + 1; l++) {
            const size_t n = l < n_lens ? (size_t)lens[l] : 65536;
            check_gelu(variants[vi], n, 1.0, 0);
            check_gelu(variants[vi], n, 6.0, 0);
            check_gelu(variants[vi], n, 20.0, 0);
            check_gelu(variants[vi], n, 0.0, 1);
        }
        for (int k = 0; k < LN_KINDS; k++) {
            for (int l = 0; l < n_lens; l++) {
                const float eps = l % 2 ? 1e-6f : 1e-5f;
                // Rows: 3 rows of every width. Channels: 64 channels (the
                // decoder's) over every pixel count (blocks of 128 pixels and
                // ragged ends), and every channel count over 35 pixels.
                check_layernorm(variants[vi], 0, 3, lens[l], k, eps);
                check_layernorm(variants[vi], 1, lens[l], 64, k, eps);
                check_layernorm(variants[vi], 1, 35, lens[l], k, eps);
            }
        }
        printf("variant %-8s %s\n", variants[vi]->name, failed == before ? "ok" : "FAILED");
    }
    printf("layernorm: worst |diff| / bound %.3f (LN_ULPS %g)\n", ln_worst_ratio, LN_ULPS);
    printf("active variant: %s\n", ops_variant_name());
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
