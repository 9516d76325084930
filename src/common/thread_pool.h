// A small thread pool for the heavy kernels (GEMM blocks, attention heads
// and windows).
//
// Workers sleep on a condition variable between jobs (never spin: on a
// machine whose other cores are busy, spinning pools ran 1.5 to 8 times
// slower than one thread). A job is `tasks` independent calls fn(ctx, task,
// thread); the caller takes part, and every thread takes the next task from
// one atomic counter, so a thread that the OS descheduled delays only the
// task it holds. Jobs should have several times more tasks than threads.
//
// Results do not depend on the thread count as long as each task's output
// does not depend on which thread ran it (per-thread scratch only).
//
// The WASM build has no pthreads: the pool then has one thread and runs the
// tasks in a plain loop.
//
// The pool is bound to the calling thread for the duration of an encode
// (thread_pool_bind); kernels look it up with thread_pool_current(), which is
// NULL inside a task, so nested kernels (a GEMM inside an attention task) run
// serially on the thread that runs the task.
#ifndef SAM_COMMON_THREAD_POOL_H
#define SAM_COMMON_THREAD_POOL_H

typedef struct ThreadPool ThreadPool;

// Most threads a pool has (thread_pool_create clamps to it).
#define THREAD_POOL_MAX_THREADS 256

// task in [0, tasks); thread in [0, thread_pool_threads(pool)): index of the
// thread running it (0: the caller), for per-thread scratch.
typedef void (*ThreadPoolTaskFn)(void *ctx, int task, int thread);

// A pool of `threads` threads in all (the caller plus threads - 1 workers);
// threads <= 0 means thread_pool_online_cores(). Returns NULL when out of
// memory or when no worker could be started. In WASM the pool has 1 thread.
ThreadPool *thread_pool_create(int threads);
// Stops and joins the workers. NULL is fine.
void thread_pool_destroy(ThreadPool *pool);
// Threads of the pool (1 for NULL).
int thread_pool_threads(const ThreadPool *pool);
// Runs fn for every task and returns when all have finished. pool NULL (or
// 1 thread, or tasks <= 1) runs them in order on the caller, thread 0. Not
// reentrant: call it with thread_pool_current(), never from inside a task
// with a pool pointer kept from outside.
void thread_pool_run(ThreadPool *pool, int tasks, ThreadPoolTaskFn fn, void *ctx);

// Binds pool to the calling thread (NULL unbinds); returns the previous one.
ThreadPool *thread_pool_bind(ThreadPool *pool);
// The pool bound to the calling thread, or NULL (none bound, or the caller
// is running a task of a pool).
ThreadPool *thread_pool_current(void);

// Online cores (sysconf), at least 1; 1 in WASM.
int thread_pool_online_cores(void);

#endif
