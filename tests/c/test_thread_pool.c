// The thread pool (src/common/thread_pool.c) and the threaded GEMM driver:
// every task runs exactly once on a valid thread index, jobs follow each
// other, nested runs are serial; and each GEMM variant gives bit-identical
// results with 1, 2 and 3 threads (shapes around the tiles and blocks, odd
// strides, beta 0 and 1, packed B); likewise the chunked GELU.
//
//   build/tests/test_thread_pool    prints "N passed, M failed"
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/thread_pool.h"
#include "kernels/gemm_internal.h"
#include "kernels/kernels.h"

#include "check.h"


// ---------------------------------------------------------------------------
// Pool

typedef struct CountJob {
    atomic_int *runs;     // per task
    atomic_int bad_thread;
    int threads;
    ThreadPool *pool;
    atomic_int nested_ok;  // inside a task: no current pool, nested run serial
} CountJob;

static void count_task(void *ctx, int task, int thread) {
    CountJob *j = ctx;
    atomic_fetch_add(&j->runs[task], 1);
    if (thread < 0 || thread >= j->threads) atomic_fetch_add(&j->bad_thread, 1);
    if (task % 7 == 0) {  // a little uneven work
        volatile double x = 0;
        for (int i = 0; i < 20000; i++) x += i * 0.5;
    }
}

static void nested_inner(void *ctx, int task, int thread) {
    int *order = ctx;
    if (thread != 0 || order[task] != 0) order[8] = 1;  // serial on thread 0, once
    order[task] = 1;
}

static void nested_task(void *ctx, int task, int thread) {
    CountJob *j = ctx;
    int order[9] = {0};
    thread_pool_run(thread_pool_current(), 8, nested_inner, order);
    int ok = thread_pool_current() == NULL && order[8] == 0;
    for (int i = 0; i < 8; i++) ok &= order[i] == 1;
    if (ok) atomic_fetch_add(&j->nested_ok, 1);
}

static void test_pool(int threads) {
    char what[128];
    ThreadPool *pool = thread_pool_create(threads);
    check(pool != NULL, "thread_pool_create");
    if (!pool) return;
    snprintf(what, sizeof what, "thread_pool_threads == %d", threads);
    check(thread_pool_threads(pool) == threads, what);
    enum { MAX_TASKS = 1000 };
    atomic_int *runs = calloc(MAX_TASKS, sizeof *runs);
    const int sizes[] = {0, 1, 2, 3, 5, 64, 999, 1000};
    int all_once = 1;
    CountJob j = {.runs = runs, .threads = threads, .pool = pool};
    atomic_init(&j.bad_thread, 0);
    atomic_init(&j.nested_ok, 0);
    for (int rep = 0; rep < 200; rep++) {  // many jobs in a row: generations
        const int tasks = sizes[rep % 8];
        for (int t = 0; t < MAX_TASKS; t++) atomic_store(&runs[t], 0);
        thread_pool_run(pool, tasks, count_task, &j);
        for (int t = 0; t < MAX_TASKS; t++) all_once &= atomic_load(&runs[t]) == (t < tasks);
    }
    snprintf(what, sizeof what, "%d threads: every task exactly once, 200 jobs", threads);
    check(all_once, what);
    snprintf(what, sizeof what, "%d threads: thread index in range", threads);
    check(atomic_load(&j.bad_thread) == 0, what);

    check(thread_pool_current() == NULL, "nothing bound at first");
    check(thread_pool_bind(pool) == NULL, "bind returns the previous (none)");
    check(thread_pool_current() == pool, "current is the bound pool");
    thread_pool_run(thread_pool_current(), 16, nested_task, &j);
    snprintf(what, sizeof what, "%d threads: nested runs serial, no current pool in tasks",
             threads);
    check(atomic_load(&j.nested_ok) == 16, what);
    check(thread_pool_bind(NULL) == pool, "unbind returns the pool");
    free(runs);
    thread_pool_destroy(pool);
}

static void test_null_pool(void) {
    int order[9] = {0};
    thread_pool_run(NULL, 8, nested_inner, order);
    int ok = order[8] == 0;
    for (int i = 0; i < 8; i++) ok &= order[i] == 1;
    check(ok, "NULL pool: tasks in order on the caller");
    check(thread_pool_threads(NULL) == 1, "NULL pool has 1 thread");
    check(thread_pool_online_cores() >= 1, "online cores >= 1");
    thread_pool_destroy(NULL);
    ThreadPool *p = thread_pool_create(0);  // default: online cores
    check(p && thread_pool_threads(p) == thread_pool_online_cores(), "create(0): online cores");
    thread_pool_destroy(p);
}

// ---------------------------------------------------------------------------
// GEMM: 1, 2 and 3 threads bit-identical

static uint64_t rng_state = 12345;
static float rng_uniform(void) {  // splitmix64 -> [-1, 1)
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((z >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *random_buffer(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = rng_uniform();
    return p;
}

enum { FORM_NN, FORM_NT, FORM_TN, FORM_PACKED, FORMS };
static const char *FORM_NAMES[FORMS] = {"nn", "nt", "tn", "packed"};

// C (m x n, stride ldc) for one form; c starts as c0.
static void run_form(const GemmVariant *v, int form, int m, int n, int k, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    switch (form) {
    case FORM_NN: gemm_nn_with(v, m, n, k, 0.5f, a, lda, b, ldb, beta, c, ldc); break;
    case FORM_NT: gemm_nt_with(v, m, n, k, 0.5f, a, lda, b, ldb, beta, c, ldc); break;
    case FORM_TN: gemm_tn_with(v, m, n, k, 0.5f, a, lda, b, ldb, beta, c, ldc); break;
    default: {
        float *buffer = malloc((gemm_pack_b_floats_with(v, n, k) + 1) * sizeof(float));
        GemmPackedB p;
        gemm_pack_b_with(v, &p, buffer, b, ldb, n, k, 1);
        gemm_packed_b(m, n, k, 0.5f, a, lda, &p, beta, c, ldc);
        free(buffer);
    }
    }
}

static void test_gemm_threads(const GemmVariant *v) {
    // m x n x k; the larger ones pass the driver's parallel threshold and
    // straddle mc / nc / kc (several A blocks, B blocks and k steps).
    static const int SHAPES[][3] = {
        {4096, 64, 64}, {300, 700, 200}, {257, 129, 1100}, {97, 4100, 33},
        {64, 4096, 64}, {1000, 96, 800}, {3, 5000, 300},
    };
    ThreadPool *pools[3] = {NULL, thread_pool_create(2), thread_pool_create(3)};
    check(pools[1] && pools[2], "pools of 2 and 3 threads");
    if (!pools[1] || !pools[2]) return;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        const int m = SHAPES[s][0], n = SHAPES[s][1], k = SHAPES[s][2];
        for (int form = 0; form < FORMS; form++) {
            // Row-major A (m, k) or, for tn, (k, m); B (k, n) for nn/tn,
            // (n, k) for nt/packed; odd strides.
            const int a_rows = form == FORM_TN ? k : m, a_cols = form == FORM_TN ? m : k;
            const int b_rows = form == FORM_NN || form == FORM_TN ? k : n;
            const int b_cols = form == FORM_NN || form == FORM_TN ? n : k;
            const int lda = a_cols + 3, ldb = b_cols + 5, ldc = n + 1;
            float *a = random_buffer((size_t)a_rows * lda);
            float *b = random_buffer((size_t)b_rows * ldb);
            float *c0 = random_buffer((size_t)m * ldc);
            float *c[3];
            for (int beta_i = 0; beta_i < 2; beta_i++) {
                const float beta = beta_i ? 1.0f : 0.0f;
                for (int t = 0; t < 3; t++) {
                    c[t] = malloc((size_t)m * ldc * sizeof(float));
                    memcpy(c[t], c0, (size_t)m * ldc * sizeof(float));
                    ThreadPool *previous = thread_pool_bind(pools[t]);
                    run_form(v, form, m, n, k, a, lda, b, ldb, beta, c[t], ldc);
                    thread_pool_bind(previous);
                }
                char what[160];
                snprintf(what, sizeof what, "%s %s %dx%dx%d beta %g: 1, 2, 3 threads identical",
                         v->name, FORM_NAMES[form], m, n, k, beta);
                const size_t bytes = (size_t)m * ldc * sizeof(float);
                check(memcmp(c[0], c[1], bytes) == 0 && memcmp(c[0], c[2], bytes) == 0, what);
                for (int t = 0; t < 3; t++) free(c[t]);
            }
            free(a);
            free(b);
            free(c0);
        }
    }
    thread_pool_destroy(pools[1]);
    thread_pool_destroy(pools[2]);
}

// gelu_inplace splits long arrays into chunks over the bound pool: the same
// bits as one call, for lengths around the chunk size and odd tails.
static void test_gelu_threads(void) {
    static const size_t SIZES[] = {65535, 65536, 65536 + 17, 100003, 3 * 16384 + 1, 1 << 18};
    ThreadPool *pool = thread_pool_create(3);
    check(pool != NULL, "pool of 3 threads");
    for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++) {
        const size_t n = SIZES[s];
        float *a = random_buffer(n), *b = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) a[i] *= 6.0f;
        memcpy(b, a, n * sizeof(float));
        gelu_inplace(a, n);
        ThreadPool *previous = thread_pool_bind(pool);
        gelu_inplace(b, n);
        thread_pool_bind(previous);
        char what[96];
        snprintf(what, sizeof what, "gelu_inplace n=%zu: 3 threads identical to 1", n);
        check(memcmp(a, b, n * sizeof(float)) == 0, what);
        free(a);
        free(b);
    }
    thread_pool_destroy(pool);
}

int main(void) {
    test_null_pool();
    for (int threads = 1; threads <= 4; threads++) test_pool(threads);
    const GemmVariant *variants[4];
    const int count = gemm_available_variants(variants, 4);
    for (int i = 0; i < count; i++)
        if (variants[i]->kernel) test_gemm_threads(variants[i]);
    test_gelu_threads();
    return report();
}
