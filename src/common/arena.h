// Bump allocator for activations and scratch: sized once from the config,
// reset per call. Alignment 64 bytes so SIMD kernels may use aligned loads.
#ifndef SAM_COMMON_ARENA_H
#define SAM_COMMON_ARENA_H

#include <stddef.h>

typedef struct Arena {
    unsigned char *base;
    size_t capacity;
    size_t used;
    size_t high_water;
} Arena;

int arena_init(Arena *arena, size_t capacity);  // 0 on success
void arena_free(Arena *arena);
// Returns NULL when the arena is exhausted (a sizing bug: callers report it).
float *arena_floats(Arena *arena, size_t count);
void *arena_bytes(Arena *arena, size_t bytes);
static inline size_t arena_mark(const Arena *arena) { return arena->used; }
static inline void arena_reset(Arena *arena, size_t mark) { arena->used = mark; }

#endif
