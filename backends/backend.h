/* backends/backend.h -- the backend vtable (QBE Target, ggml backend_i).
 * A backend executes a verified graph on float32 host tensors. */
#ifndef MC_BACKEND_H
#define MC_BACKEND_H
#include "../ir/graph.h"
#include "../ir/weights.h"

typedef struct HostTensor {
    Shape shape;
    float *data;          /* contiguous row-major f32 */
} HostTensor;

typedef struct RunOpts {
    int threads;          /* 0 = OpenMP default */
    int verbose;
    int graph_ready;      /* the caller already ran the graph passes it wants:
                             a compiling backend must not run its own pipeline */
    int stats;            /* print the memory plan (--stats) */
} RunOpts;

typedef struct Backend {
    const char *name;
    const char *descr;
    /* inputs[i] binds g's i-th INPUT node (in id order); outputs[i] are
     * allocated by the backend (malloc) for g->outputs[i]. */
    int (*run)(const Graph *g, const WeightStore *ws, const HostTensor *inputs, int nin,
               HostTensor *outputs, int nout, const RunOpts *o, McErr *err);
} Backend;

extern const Backend mc_backend_ref;
extern const Backend mc_backend_llvm; /* backends/llvm/llvm_jit.c */
const Backend *mc_backend_find(const char *name);

#endif
