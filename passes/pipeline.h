/* passes/pipeline.h -- the one owner of the road from a graph to a
 * backend's emitter:
 *
 *   graph passes (passes.def) -> lower -> the target's kernel passes
 *   (its fusions, schedule-images, tile) -> memplan -> the backend's emitter
 *
 * Every step is a row of one table (mc_pipeline_list prints it), so the
 * observability options (--print-after/--print-before/--disable-pass/
 * --verify-each/--time-passes/--stats, PassOptions) name any step:
 * --print-after=lower prints the kernel IR as lowering made it,
 * --print-after=memplan the planned program, --print-after=cuda-fuse-ln
 * what that fusion decided.  The CLI, the JIT, the GPU-suite generator and
 * the tests all call these functions; nothing else strings the steps
 * together.
 *
 * A target (a backend's row, backends/registry.c) contributes its kernel
 * passes: functions over the kernel IR that may set a kernel's fusion
 * (Kernel.host/fuse), its schedule (Kernel.sched), buffer lifetimes and
 * segments, and must leave a program mc_kprogram_verify accepts.  passes/
 * includes nothing of backends/: the rows are handed in.
 */
#ifndef MC_PIPELINE_H
#define MC_PIPELINE_H
#include "pass.h"
#include "../ir/kernel.h"

/* What a kernel pass may know of the target it prepares the program for. */
typedef struct McTargetDesc {
    const char *backend;      /* "llvm", "cuda", "ref" */
    /* CPUs (llvm): the --target / --cpu / --features asked for (NULL: this machine's) */
    const char *triple, *cpu, *features;
    int lanes;                /* f32 lanes per vector register */
    int vregs;                /* architectural vector registers */
    int precision;            /* McCudaPrecision: cuda fp32/tf32/bf16; llvm fp32 or bf16 (its tile pass) */
    /* GPUs (cuda): */
    int sm;                   /* compute capability x10 */
} McTargetDesc;

typedef struct KPassCtx {
    const McTargetDesc *t;
    const PassOptions *opts;
    int changes;              /* a pass adds the number of decisions it made */
} KPassCtx;

/* Returns "changed". */
typedef bool (*KPassFn)(KProgram *p, KPassCtx *ctx);

typedef struct KPassInfo {
    KPassFn fn;
    const char *name;
    const char *purpose;
} KPassInfo;

/* A target as the pipeline sees it: its kernel passes, in order, and
 * what kernels it can run (NULL: every kind).  supports returns 1, or 0
 * with a reason in why (the pipeline names the kernel). */
typedef struct McTarget {
    const char *name;
    const KPassInfo *kpasses;
    int nkpasses;
    McTargetDesc desc;
    int (*supports)(const KProgram *p, const Kernel *k, char *why, size_t n);
} McTarget;

/* Prints every step with its purpose: graph passes, lower, the kernel
 * passes of every target given (NULL-terminated array), memplan. */
void mc_pipeline_list(FILE *f, const McTarget *const *targets);
/* 0, or -1 with err when a name in o (print/disable lists) is no step of
 * the pipeline for these targets. */
int mc_pipeline_check_names(const PassOptions *o, const McTarget *const *targets, McErr *err);

/* The graph passes (the rows of passes.def), honouring o. */
int mc_pipeline_graph(Graph *g, WeightStore *ws, const PassOptions *o, McErr *err);

/* lower -> t's kernel passes -> memplan, on a graph the graph passes ran on
 * (or not: -O0 / --disable-pass).  t may be NULL (no kernel passes).
 * Fills p (freed by the caller with mc_kprogram_free). */
int mc_pipeline_kernels(const Graph *g, WeightStore *ws, const McTarget *t, const PassOptions *o, KProgram *p,
                        McErr *err);

/* A kernel program read from text: verified; when it carries no memory
 * plan, t's kernel passes and memplan run on it; a planned program is
 * taken as it is (its fusions, schedules and offsets, hand-edited or not). */
int mc_pipeline_kir(KProgram *p, const McTarget *t, const PassOptions *o, McErr *err);

/* All of it: graph passes, then mc_pipeline_kernels. */
int mc_pipeline_run(Graph *g, WeightStore *ws, const McTarget *t, const PassOptions *o, KProgram *p, McErr *err);

#endif
