/* frontend/pickle.h -- a pickle reader that never executes anything.
 *
 * Takes pickle bytes (protocols 0-5, the binary opcodes torch.save emits and
 * the common rest); produces a tree of PVal values.  GLOBAL/STACK_GLOBAL
 * give symbolic class references; REDUCE/NEWOBJ/INST/OBJ give PV_CALL
 * records (callable + arguments) that the caller may interpret; BUILD state
 * is kept beside them.  Only collections.OrderedDict() is evaluated (to an
 * empty dict), because its items follow as SETITEMS.  BINPERSID gives
 * PV_PERSID.  All values live in the PickleCtx and are freed at once.
 * The reader is iterative (no recursion) and its memory is bounded by
 * MC_PICKLE_MAX_VALUES whatever the pickle's length: at most that many
 * values, stack entries, marks and memo slots, twice that many container
 * items (about 150 MB in all); a pickle that needs more is refused.
 */
#ifndef MC_PICKLE_H
#define MC_PICKLE_H
#include <stddef.h>
#include <stdint.h>
#include "../ir/diag.h"

typedef enum PvKind {
    PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES,
    PV_TUPLE, PV_LIST, PV_DICT, PV_SET,
    PV_GLOBAL,   /* s = module, s2 = name */
    PV_CALL,     /* a = callable, b = args (any value), c = BUILD state or NULL */
    PV_PERSID,   /* a = persistent id value */
    PV_BIGINT,   /* an integer that does not fit int64 */
    PV_OPAQUE,   /* anything else (extension codes, ...) */
} PvKind;

/* A torch.save state dict costs about 20 values a tensor. */
#define MC_PICKLE_MAX_VALUES (1 << 20)

typedef struct PVal PVal;
struct PVal {
    PvKind kind;
    int n, cap;          /* containers: item count (dict: 2 per entry, key then value) */
    union {
        int64_t i;       /* BOOL, INT */
        double f;        /* FLOAT */
        struct { const char *s, *s2; uint32_t len, len2; }; /* STR, BYTES, GLOBAL (not NUL-terminated) */
        PVal **items;    /* TUPLE, LIST, DICT, SET */
        struct { PVal *a, *b, *c; };                        /* CALL, PERSID */
    };
};

typedef struct PickleCtx PickleCtx;

/* Runs the pickle; *out is the value STOP returned.  -1 with err
 * ("NAME: pickle: ... at byte N") on malformed input. */
int mc_pickle_load(const uint8_t *buf, size_t len, const char *name, PickleCtx **ctx, PVal **out,
                   McErr *err);
void mc_pickle_free(PickleCtx *ctx);

/* Helpers. */
int mc_pv_str_eq(const PVal *v, const char *s);                       /* PV_STR equal to s */
int mc_pv_global_is(const PVal *v, const char *module, const char *name);
const PVal *mc_pv_dict_get(const PVal *d, const char *key);           /* last entry wins */

#endif
