/* backends/llvm/jit_cache.h -- the content-addressed cache of JIT objects.
 *
 * Takes a planned kernel program and the LLVM target it is compiled for;
 * produces (on a hit) the object file that an earlier compile of the same
 * program for the same target by the same mambac emitted, so that
 * `mambac run --backend llvm` skips code generation and O3.  The weights'
 * values are not part of the key: the object reads them from the blob that
 * mc_llvm_pack_weights writes at every run, and the blob's layout follows
 * from the program and the target, which are.
 *
 * Directory: $MAMBAC_CACHE_DIR (empty: no cache), else $XDG_CACHE_HOME/mambac
 * (an absolute XDG_CACHE_HOME), else $HOME/.cache/mambac; created 0700; used
 * only when owned by this user and not writable by others.  Entries are
 * files jit-<key>.mco, key the SHA-256 (hex) of
 *
 *     meta text ("mambac-jit-cache 1", mambac's build id, LLVM's version,
 *                the target: triple, CPU, features; the entry point)
 *     the program's kernel-IR text (mc_kprogram_print: every field)
 *
 * and the file is: "MCJITC1\n", meta length (u32 LE), 4 zero bytes, object
 * length (u64 LE), the key (32 bytes), SHA-256 of meta + object (32 bytes),
 * the meta text, the object.  Written through McOut (a temporary in the
 * directory, synced, renamed: readers see a whole file or none); read back
 * only when every field matches (anything else is a miss, and the entry is
 * replaced).  A hit sets the entry's mtime; after a store the directory is
 * trimmed to MC_JIT_CACHE_MAX_ENTRIES entries and MC_JIT_CACHE_MAX_BYTES
 * bytes, oldest mtime first, and temporaries older than an hour go.
 *
 * Off unless mc_jit_cache_enable(1) (mambac run turns it on unless
 * --no-cache): library users and the unit tests never touch a cache.
 * Problems with the directory (cannot be created, written, or is not
 * private) turn the cache off for the process with one note on stderr.
 */
#ifndef MC_JIT_CACHE_H
#define MC_JIT_CACHE_H
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include "llvm.h"

#define MC_JIT_CACHE_MAX_ENTRIES 64
#define MC_JIT_CACHE_MAX_BYTES (2048ll << 20)

/* On (1) or off (0, the default) for this process. */
void mc_jit_cache_enable(int on);

/* One program's entry. */
typedef struct McJitKey {
    uint8_t key[32];
    char *meta;           /* malloc'd meta text */
    char path[4096];      /* DIR/jit-<hex>.mco */
    FILE *verbose;        /* hit / miss lines, or NULL */
} McJitKey;

/* Computes the key of p compiled for t with entry point `entry` ("run");
 * 0, or -1 when the cache is off or unusable (k needs no free then). */
int mc_jit_cache_key(McJitKey *k, const KProgram *p, const McLlvmTarget *t, const char *entry,
                     FILE *verbose);
/* 1 and *obj (malloc'd, *len bytes) on a hit; 0 on a miss. */
int mc_jit_cache_get(McJitKey *k, uint8_t **obj, size_t *len);
/* Stores obj as k's entry (replacing any), then trims the directory. */
void mc_jit_cache_put(McJitKey *k, const void *obj, size_t len);
/* Removes k's entry (an object that would not link). */
void mc_jit_cache_drop(McJitKey *k);
void mc_jit_key_free(McJitKey *k);

/* SHA-256 (FIPS 180-4) of the concatenation of n pieces. */
void mc_sha256(const void *const *data, const size_t *len, int n, uint8_t out[32]);

#endif
