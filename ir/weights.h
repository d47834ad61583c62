/* ir/weights.h -- the weights store: the model's constants (checkpoint
 * tensors, random weights, folded constants) by key, referred to by the
 * graph's WEIGHT nodes.  Part of the IR, so that passes and backends need
 * nothing of the frontend (whose checkpoint readers fill it).
 *
 * Every tensor is stored contiguous (row-major), its data owned by the
 * store; floating tensors are f32 (`orig` keeps the file's type), integer
 * ones DT_I64/DT_I32.
 */
#ifndef MC_IR_WEIGHTS_H
#define MC_IR_WEIGHTS_H
#include <stddef.h>
#include <stdint.h>
#include "graph.h"

typedef struct WTensor {
    char *name;        /* full key, e.g. "layers.0.blocks.0.ln_1.weight" (prefix "model." etc. stripped) */
    DType dtype;       /* DT_F32, DT_I64 or DT_I32 */
    DType orig;        /* dtype in the file */
    Shape shape;
    void *data;        /* contiguous, malloc'd, owned */
    size_t nbytes;
    int used;          /* set by the model check */
} WTensor;

/* A tensor of a dtype mambac does not read (uint8, bool, int8, ...): kept by
 * name so the model check can say why it is not usable. */
typedef struct WSkipped {
    char *name;
    char dtype[32];    /* as the file names it: "U8" (safetensors), "uint8" (.pth) */
} WSkipped;

typedef struct WeightStore {
    WTensor *t;
    int n, cap;
    WSkipped *skipped; /* not in t: mc_weights_find never returns them */
    int nskipped, skipcap;
    char *source;      /* file path, for messages */
    char **classes;    /* class names from an mmengine checkpoint's meta.dataset_meta, or NULL */
    uint8_t (*palette)[3]; /* their mask colours (nclasses rows), or NULL */
    int nclasses;
} WeightStore;

void mc_weights_init(WeightStore *ws);
void mc_weights_free(WeightStore *ws);
/* Takes ownership of data. Replaces an existing key. */
WTensor *mc_weights_put(WeightStore *ws, const char *name, DType dt, DType orig,
                        const Shape *s, void *data);
WTensor *mc_weights_find(const WeightStore *ws, const char *name);

/* For the readers: append without looking for an existing key (readers
 * dedupe themselves); record a tensor the reader does not read (its dtype
 * as the file names it, escaped and cut to fit; -1 when out of memory);
 * drop tensors and skipped names past n / nskipped (a reader's rollback). */
WTensor *mc_weights_append(WeightStore *ws, const char *name, DType dt, DType orig, const Shape *s, void *data);
int mc_weights_skip(WeightStore *ws, const char *name, const char *dtype, size_t dtype_len);
void mc_weights_truncate(WeightStore *ws, int n, int nskipped);

#endif
