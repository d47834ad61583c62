/* passes/pass.h -- graph passes and the pass manager.
 *
 * A pass is `bool pass_name(Graph *, PassCtx *)` returning "changed".  It may
 * append nodes, rewire operands and redirect uses; the manager compacts the
 * graph afterwards (mc_graph_compact) and, with --verify-each, verifies it.
 * Constants a pass creates go into ctx->ws under the new WEIGHT node's name.
 */
#ifndef MC_PASS_H
#define MC_PASS_H
#include <stdbool.h>
#include <stdio.h>
#include "../ir/graph.h"
#include "../ir/weights.h"

#define MC_MAX_PASS_OPTS 32

typedef struct PassOptions {
    const char *print_after[MC_MAX_PASS_OPTS];
    int n_print_after;
    const char *print_before[MC_MAX_PASS_OPTS];
    int n_print_before;
    const char *disable[MC_MAX_PASS_OPTS];
    int n_disable;
    bool print_after_all, print_before_all, verify_each, time_passes, stats;
    FILE *out;               /* where IR dumps go (default stdout) */
} PassOptions;

typedef struct PassCtx {
    WeightStore *ws;         /* weights; folded constants are added here */
    const PassOptions *opts;
    int changes;             /* a pass adds the number of rewrites it made */
} PassCtx;

typedef bool (*PassFn)(Graph *g, PassCtx *ctx);

typedef struct PassInfo {
    PassFn fn;
    const char *name;
    const char *purpose;
} PassInfo;

extern const PassInfo mc_passes[];
extern const int mc_npasses;

#define PASS(fn, name, purpose) bool fn(Graph *g, PassCtx *ctx);
#include "passes.def"
#undef PASS

const PassInfo *mc_pass_find(const char *name);
void mc_passes_list(FILE *f);
/* Runs the graph passes (the table in order), honouring opts; names in opts
 * that are no graph pass are ignored (mc_pipeline_check_names, pipeline.h,
 * checks them against every step).  Returns 0. */
int mc_passes_run(Graph *g, WeightStore *ws, const PassOptions *opts, McErr *err);

/* name is one of names[0..n) (the --print-after/... lists) */
bool mc_pass_listed(const char *const *names, int n, const char *name);
double mc_pass_now(void); /* monotonic seconds, for --time-passes */

/* Helpers for passes. */
/* The f32 data of a WEIGHT node, or NULL if the node is not a weight or
 * the store lacks it. */
float *mc_pass_const_data(const Graph *g, const PassCtx *ctx, int id);
/* Adds a WEIGHT node holding `data` (malloc'd, ownership taken) named
 * `name` (made unique against the graph and the store). */
int mc_pass_add_const(Graph *g, PassCtx *ctx, const char *name, const Shape *s, float *data);

/* The evaluator fold-constants computes with: runs g (no inputs, one
 * output; its leaves are weights in ws) and sets *out to the output's f32
 * data (malloc'd).  0, or -1 with err.  Declared here, defined by the
 * reference interpreter (the ref backend), so that folding has exactly the
 * oracle's numerics while passes include nothing of the backends. */
int mc_const_eval(const Graph *g, const WeightStore *ws, float **out, McErr *err);

/* The [D,25] tap table of the state fusion with alpha folded in (tap order
 * ir/fusion25_taps.def, state_fusion25); malloc'd.  Used by
 * fold-state-fusion and by lowering when that pass was disabled. */
float *mc_state_fusion_taps(const float *k3, const float *k3_1, const float *k3_2, const float *alpha,
                            int64_t D);

#endif
