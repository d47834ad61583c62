/* frontend/yamlutil.h -- a small YAML tree over libyaml's event API, with
 * source marks, for the two YAML frontends (config.c, graph_yaml.c).
 *
 * mc_ydoc_load() reads one YAML document into a tree of YNodes (scalars,
 * sequences, mappings), each with its 1-based line:col.  Aliases point at the
 * anchored node (shared, never copied; an anchor is only visible once its
 * node is complete, so the tree has no cycles).  Nesting depth and node count
 * are bounded so hostile input cannot exhaust the stack or memory.  The tree
 * lives in the YDoc's arena and is freed by mc_ydoc_free().
 */
#ifndef MC_YAMLUTIL_H
#define MC_YAMLUTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../ir/arena.h"
#include "../ir/diag.h"

typedef enum YKind { YN_SCALAR, YN_SEQ, YN_MAP } YKind;

typedef struct YNode {
    YKind kind;
    const char *str;        /* scalar text, NUL-terminated ("" otherwise) */
    size_t len;             /* scalar length */
    bool plain;             /* scalar written without quotes */
    int line, col;          /* 1-based start of the node */
    struct YNode **kids;    /* seq: items; map: key0, val0, key1, val1, ... */
    int nkids, kcap;
} YNode;

typedef struct YDoc {
    const char *file;       /* for messages */
    YNode *root;            /* NULL when the stream holds no document */
    Arena arena;
} YDoc;

/* Parses text (one document; a second one is an error).  On a syntax error
 * returns -1 with "file:line:col: error: <libyaml problem>". */
int mc_ydoc_load(YDoc *d, const char *text, size_t len, const char *file, McErr *err);
void mc_ydoc_free(YDoc *d);

/* Largest model file (config, graph YAML, IR text) read. */
#define MC_TEXT_MAX_BYTES ((uint64_t)64 << 20)
/* Reads a whole regular file of at most MC_TEXT_MAX_BYTES into a malloc'd
 * NUL-terminated buffer (a FIFO, device or directory is refused unread). */
char *mc_read_file(const char *path, size_t *len, McErr *err);

/* Number of key/value pairs of a mapping, and the i-th key / value. */
static inline int y_npairs(const YNode *m) { return m->nkids / 2; }
static inline YNode *y_key(const YNode *m, int i) { return m->kids[2 * i]; }
static inline YNode *y_val(const YNode *m, int i) { return m->kids[2 * i + 1]; }

bool y_is_null(const YNode *n);           /* empty plain scalar, ~, null */
bool y_key_is(const YNode *k, const char *s);
/* Value for key `key` in mapping m, or NULL (m may be NULL or not a map). */
YNode *y_get(const YNode *m, const char *key);
/* Short description for messages: "'abc'", "a sequence", "a mapping", "nothing". */
const char *y_desc(const YNode *n, char *buf, size_t n_buf);

/* Error at a node: "file:line:col: error: ...". */
int y_err(const YDoc *d, const YNode *n, McErr *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Errors on the first key that appears twice in mapping m ("duplicate key"). */
int y_check_dups(const YDoc *d, const YNode *m, const char *where, McErr *err);

/* Typed scalars.  `what` names the value in messages ("MODEL.NUM_CLASSES").
 * Integers: plain decimal, optional sign, within [lo, hi].
 * Doubles: plain decimal/exponent notation, finite. */
int y_int(const YDoc *d, const YNode *n, const char *what, int64_t lo, int64_t hi,
          int64_t *out, McErr *err);
int y_double(const YDoc *d, const YNode *n, const char *what, double *out, McErr *err);
/* Any scalar (quoted or not) as a string. */
int y_str(const YDoc *d, const YNode *n, const char *what, const char **out, McErr *err);

#endif
