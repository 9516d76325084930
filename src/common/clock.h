// Monotonic wall clock in milliseconds, for the per-stage timings the API
// reports (SamMasks.stage_ms). POSIX clock_gettime; Emscripten maps it to
// performance.now().
#ifndef SAM_COMMON_CLOCK_H
#define SAM_COMMON_CLOCK_H

#include <time.h>

static inline double sam_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

#endif
