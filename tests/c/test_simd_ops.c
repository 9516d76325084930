// Softmax and GELU variants against the scalar references (ops.c, libm expf
// and erff). Softmax: row lengths straddling the vector widths (8, 16) and
// the attention shapes (196, 4096), inputs from narrow to wide ranges (so exp
// underflows to 0 for some entries), -inf entries (masked logits), a NaN row.
// GELU: lengths around the vector widths, ranges up to +-20, and special
// values (0, -0, tiny, huge, +-inf, NaN).
// Prints "N passed, M failed"; `--bench` times each variant.
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
// error grows like sqrt(cols) * 2^-24 typically), the variants in 8 or 16
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

static int passed, failed;

static uint64_t rng_state = 2024;
static double rng_uniform(void) {  // [-1, 1)
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static void check_case(const OpsVariant *v, int rows, int cols, double range, int special) {
    const size_t n = (size_t)rows * cols;
    float *ref = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) ref[i] = (float)(range * rng_uniform());
    if (special == 1)  // masked logits
        for (size_t i = 0; i < n; i += 3) ref[i] = -INFINITY;
    if (special == 2) ref[n / 2] = NAN;  // that row becomes NaN in both
    memcpy(got, ref, n * sizeof(float));
    softmax_rows_scalar(ref, rows, cols);
    v->softmax_rows(got, rows, cols);
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
        printf("FAIL %s softmax rows=%d cols=%d range=%g special=%d: [%zu][%zu] = %.9g, "
               "reference %.9g\n",
               v->name, rows, cols, range, special, bad_at / (size_t)cols, bad_at % (size_t)cols,
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

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const OpsVariant *variants[4];
    const int count = ops_available_variants(variants, 4);
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        const int rows = 512, cols = 4096;
        float *x = malloc(sizeof(float) * rows * cols);
        for (int vi = 0; vi < count; vi++) {
            double best_s = INFINITY, best_g = INFINITY;
            for (int rep = 0; rep < 3; rep++) {
                for (int i = 0; i < rows * cols; i++) x[i] = (float)(8.0 * rng_uniform());
                double t0 = now_seconds();
                variants[vi]->softmax_rows(x, rows, cols);
                best_s = fmin(best_s, now_seconds() - t0);
                for (int i = 0; i < rows * cols; i++) x[i] = (float)(4.0 * rng_uniform());
                t0 = now_seconds();
                variants[vi]->gelu(x, (size_t)rows * cols);
                best_g = fmin(best_g, now_seconds() - t0);
            }
            const double per = 1e9 / ((double)rows * cols);
            printf("%-7s softmax %dx%d %.2f ns/element, gelu %.2f ns/element\n",
                   variants[vi]->name, rows, cols, best_s * per, best_g * per);
        }
        free(x);
        return 0;
    }
    const int cols[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 196, 4096};
    const double ranges[] = {1.0, 10.0, 60.0, 200.0};
    for (int vi = 0; vi < count; vi++) {
        const int before = failed;
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
            for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
                check_case(variants[vi], 3, cols[c], ranges[r], 0);
            check_case(variants[vi], 2, cols[c], 10.0, 1);
            check_case(variants[vi], 3, cols[c], 10.0, 2);
        }
        const size_t lens[] = {1, 7, 8, 9, 15, 16, 17, 33, 1000, 65536};
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            check_gelu(variants[vi], lens[l], 1.0, 0);
            check_gelu(variants[vi], lens[l], 6.0, 0);
            check_gelu(variants[vi], lens[l], 20.0, 0);
            check_gelu(variants[vi], lens[l], 0.0, 1);
        }
        printf("variant %-7s %s\n", variants[vi]->name, failed == before ? "ok" : "FAILED");
    }
    printf("active variant: %s\n", ops_variant_name());
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
