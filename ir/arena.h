/* ir/arena.h -- bump allocator: one per compilation, freed all at once. */
#ifndef MC_ARENA_H
#define MC_ARENA_H
#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
    ArenaChunk *head;
} Arena;

void *mc_arena_alloc(Arena *a, size_t n);            /* zeroed, 16-byte aligned */
char *mc_arena_strdup(Arena *a, const char *s);
char *mc_arena_strndup(Arena *a, const char *s, size_t n);
char *mc_arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mc_arena_free(Arena *a);

#endif
