// Random test weights for the encoder tests: a splitmix64 generator and a
// bump allocator that hands out tensors from one buffer, each filled with
// offset + scale * U(-1, 1).
#ifndef SAM_TESTS_WEIGHT_POOL_H
#define SAM_TESTS_WEIGHT_POOL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct Rng {
    uint64_t state;
} Rng;

static double rng_uniform(Rng *r) {  // [-1, 1)
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

typedef struct Pool {
    float *data;
    size_t used, cap;
    Rng rng;
} Pool;

static const float *pool_take(Pool *p, size_t n, double offset, double scale) {
    if (p->used + n > p->cap) {
        fprintf(stderr, "weight pool too small\n");
        exit(2);
    }
    float *t = p->data + p->used;
    p->used += n;
    for (size_t i = 0; i < n; i++) t[i] = (float)(offset + scale * rng_uniform(&p->rng));
    return t;
}

#endif
