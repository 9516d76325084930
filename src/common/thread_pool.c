// Thread pool: see thread_pool.h.
//
// A job is published under the mutex with a new generation number and the
// workers are woken with a broadcast. Tasks are claimed from one 64-bit
// atomic holding (generation << 32 | next task), so a worker that read an
// older job and was descheduled before claiming cannot take a task of a
// newer one: its compare-and-swap fails on the generation. The caller waits
// (on a condition variable) for the count of finished tasks, not for the
// workers, so a worker that wakes late costs nothing.
#include "thread_pool.h"

#include <stdlib.h>

#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define SAM_POOL_THREADS 0
#else
#define SAM_POOL_THREADS 1
#endif

#if SAM_POOL_THREADS
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>
#endif

// The pool bound to this thread, and whether it is running a task. WASM
// without threads has one thread (and wasm-ld refuses thread-local storage
// without the atomics feature): plain statics there.
#if SAM_POOL_THREADS
#define POOL_THREAD_LOCAL _Thread_local
#else
#define POOL_THREAD_LOCAL
#endif
static POOL_THREAD_LOCAL ThreadPool *bound_pool;
static POOL_THREAD_LOCAL int in_task;

ThreadPool *thread_pool_bind(ThreadPool *pool) {
    ThreadPool *previous = bound_pool;
    bound_pool = pool;
    return previous;
}

ThreadPool *thread_pool_current(void) { return in_task ? NULL : bound_pool; }

static void run_serial(int tasks, ThreadPoolTaskFn fn, void *ctx) {
    const int was = in_task;
    in_task = 1;
    for (int t = 0; t < tasks; t++) fn(ctx, t, 0);
    in_task = was;
}

#if SAM_POOL_THREADS

typedef struct Worker {
    ThreadPool *pool;
    int index;  // 1..threads-1
} Worker;

struct ThreadPool {
    int threads;  // caller + workers
    pthread_t *handles;
    Worker *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;      // workers: a new job, or stop
    pthread_cond_t finished;  // caller: all tasks done
    // The current job (written under the mutex).
    uint32_t generation;
    int stop;
    ThreadPoolTaskFn fn;
    void *ctx;
    int tasks;
    _Atomic uint64_t claim;  // generation << 32 | next task
    atomic_int done;         // tasks finished in the current job
};

// Claims and runs tasks of job `generation` until none is left.
static void run_tasks(ThreadPool *p, uint32_t generation, int tasks, ThreadPoolTaskFn fn,
                      void *ctx, int thread) {
    for (;;) {
        uint64_t c = atomic_load_explicit(&p->claim, memory_order_relaxed);
        int task;
        do {
            task = (int)(uint32_t)c;
            if ((uint32_t)(c >> 32) != generation || task >= tasks) return;
        } while (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1,
                                                        memory_order_acquire,
                                                        memory_order_relaxed));
        fn(ctx, task, thread);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) + 1 == tasks) {
            pthread_mutex_lock(&p->mutex);
            pthread_cond_signal(&p->finished);
            pthread_mutex_unlock(&p->mutex);
        }
    }
}

static void *worker_main(void *arg) {
    const Worker *w = arg;
    ThreadPool *p = w->pool;
    in_task = 1;  // workers never dispatch: nested kernels run serially
    uint32_t seen = 0;
    pthread_mutex_lock(&p->mutex);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mutex);
        if (p->stop) break;
        seen = p->generation;
        const int tasks = p->tasks;
        const ThreadPoolTaskFn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mutex);
        run_tasks(p, seen, tasks, fn, ctx, w->index);
        pthread_mutex_lock(&p->mutex);
    }
    pthread_mutex_unlock(&p->mutex);
    return NULL;
}

int thread_pool_online_cores(void) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > THREAD_POOL_MAX_THREADS ? THREAD_POOL_MAX_THREADS : (int)n;
}

ThreadPool *thread_pool_create(int threads) {
    if (threads <= 0) threads = thread_pool_online_cores();
    if (threads > THREAD_POOL_MAX_THREADS) threads = THREAD_POOL_MAX_THREADS;
    ThreadPool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = 1;
    atomic_init(&p->claim, 0);
    atomic_init(&p->done, 0);
    if (pthread_mutex_init(&p->mutex, NULL)) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) || pthread_cond_init(&p->finished, NULL)) {
        pthread_mutex_destroy(&p->mutex);
        free(p);
        return NULL;
    }
    if (threads > 1) {
        p->handles = calloc((size_t)threads - 1, sizeof *p->handles);
        p->workers = calloc((size_t)threads - 1, sizeof *p->workers);
        if (!p->handles || !p->workers) {
            thread_pool_destroy(p);
            return NULL;
        }
        for (int i = 1; i < threads; i++) {
            p->workers[i - 1] = (Worker){.pool = p, .index = i};
            if (pthread_create(&p->handles[i - 1], NULL, worker_main, &p->workers[i - 1])) break;
            p->threads = i + 1;
        }
        if (p->threads == 1) {  // not a single worker started
            thread_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void thread_pool_destroy(ThreadPool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 1; i < p->threads; i++) pthread_join(p->handles[i - 1], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->finished);
    pthread_mutex_destroy(&p->mutex);
    free(p->handles);
    free(p->workers);
    free(p);
}

int thread_pool_threads(const ThreadPool *p) { return p ? p->threads : 1; }

void thread_pool_run(ThreadPool *p, int tasks, ThreadPoolTaskFn fn, void *ctx) {
    if (tasks <= 0) return;
    if (!p || p->threads == 1 || tasks == 1 || in_task) {
        run_serial(tasks, fn, ctx);
        return;
    }
    pthread_mutex_lock(&p->mutex);
    const uint32_t generation = ++p->generation == 0 ? ++p->generation : p->generation;
    p->fn = fn;
    p->ctx = ctx;
    p->tasks = tasks;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (uint64_t)generation << 32, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);

    in_task = 1;
    run_tasks(p, generation, tasks, fn, ctx, 0);
    in_task = 0;

    pthread_mutex_lock(&p->mutex);
    while (atomic_load_explicit(&p->done, memory_order_acquire) < tasks)
        pthread_cond_wait(&p->finished, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
}

#else  // WASM without pthreads: one thread, a plain loop

struct ThreadPool {
    int threads;
};

int thread_pool_online_cores(void) { return 1; }

ThreadPool *thread_pool_create(int threads) {
    (void)threads;
    ThreadPool *p = calloc(1, sizeof *p);
    if (p) p->threads = 1;
    return p;
}

void thread_pool_destroy(ThreadPool *p) { free(p); }

int thread_pool_threads(const ThreadPool *p) { return 1; }

void thread_pool_run(ThreadPool *p, int tasks, ThreadPoolTaskFn fn, void *ctx) {
    (void)p;
    run_serial(tasks, fn, ctx);
}

#endif
