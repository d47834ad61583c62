/* backends/backend.h -- the backend table (QBE Target, ggml backend_i).
 *
 * A backend is one row: its name, the target row the pipeline runs for it
 * (its kernel passes, passes/pipeline.h), what runs in memory (run_graph:
 * the ref interpreter over the graph IR; run_kernels: a kernel program, the
 * LLVM JIT) and what writes an artifact (emit: LLVM, CUDA).  The driver
 * calls the pipeline for the row's target and hands the program to the row:
 * no backend runs passes, lowers or plans memory itself. */
#ifndef MC_BACKEND_H
#define MC_BACKEND_H
#include "../ir/graph.h"
#include "../ir/weights.h"
#include "../ir/kernel.h"
#include "../passes/pipeline.h"

typedef struct HostTensor {
    Shape shape;
    float *data;          /* contiguous row-major f32 */
} HostTensor;

typedef struct RunOpts {
    int threads;          /* 0 = OpenMP default */
    int verbose;
} RunOpts;

/* What an artifact-writing backend is asked for (mambac compile). */
typedef struct EmitOpts {
    const char *out;      /* -o */
    const char *emit;     /* --emit, NULL: the backend's default */
    const char *triple, *cpu, *features; /* LLVM */
    int sm, precision;    /* CUDA (McCudaPrecision) */
    int verbose;
    int instrument;       /* CUDA: the executable writes every kernel's output (--kernel-outputs) */
    const struct McModelIO *io; /* users' metadata (frontend/io.h), or NULL */
} EmitOpts;

typedef struct Backend {
    const char *name;
    const char *descr;
    const McTarget *target;  /* the pipeline's target row; NULL: runs the graph, no kernel program */
    /* inputs[i] binds g's i-th INPUT node (in id order); outputs[i] are
     * allocated by the backend (malloc) for g->outputs[i]. */
    int (*run_graph)(const Graph *g, const WeightStore *ws, const HostTensor *inputs, int nin,
                     HostTensor *outputs, int nout, const RunOpts *o, McErr *err);
    /* runs a planned kernel program on one input; outputs[j] (j < p->noutputs,
     * p->output_bufs' order) malloc'd */
    int (*run_kernels)(const KProgram *p, const WeightStore *ws, const HostTensor *input, HostTensor *outputs,
                       const RunOpts *o, McErr *err);
    /* writes the artifact for a planned kernel program */
    int (*emit)(const KProgram *p, const WeightStore *ws, const EmitOpts *o, McErr *err);
} Backend;

extern const Backend mc_backend_ref;
extern const Backend mc_backend_llvm; /* backends/llvm/llvm_jit.c */
extern const Backend mc_backend_cuda; /* backends/cuda/cuda_host.c */
const Backend *mc_backend_find(const char *name);
/* The rows in order, NULL-terminated. */
extern const Backend *const mc_backends[];

#endif
