#include "arena.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64

int arena_init(Arena *arena, size_t capacity) {
    memset(arena, 0, sizeof *arena);
    capacity = (capacity + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    void *p = NULL;
    if (capacity == 0) capacity = ARENA_ALIGN;
#if defined(_WIN32)
    p = _aligned_malloc(capacity, ARENA_ALIGN);
#else
    if (posix_memalign(&p, ARENA_ALIGN, capacity) != 0) p = NULL;
#endif
    if (!p) return -1;
    arena->base = p;
    arena->capacity = capacity;
    return 0;
}

void arena_free(Arena *arena) {
    free(arena->base);
    memset(arena, 0, sizeof *arena);
}

void *arena_bytes(Arena *arena, size_t bytes) {
    size_t aligned = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (aligned < bytes || arena->capacity - arena->used < aligned) return NULL;
    void *p = arena->base + arena->used;
    arena->used += aligned;
    if (arena->used > arena->high_water) arena->high_water = arena->used;
    return p;
}

float *arena_floats(Arena *arena, size_t count) {
    if (count > ((size_t)-1) / sizeof(float)) return NULL;
    return arena_bytes(arena, count * sizeof(float));
}
