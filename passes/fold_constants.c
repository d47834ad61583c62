/* passes/fold_constants.c -- constant folding.
 *
 * Requires: mc_const_eval (pass.h: the reference interpreter evaluates the
 * folded ops, so folding has exactly the oracle's numerics).
 * Does: every non-leaf node whose operands are all constants (WEIGHT nodes
 * present in the store) is computed now and replaced by a WEIGHT node that
 * takes over its name and uses, e.g. A = -exp(A_logs).  Chains fold in one
 * run (ids are topological).  Skips results larger than 64 MiB.
 * Invalidates: node ids.
 */
#include "pass.h"
#include <stdlib.h>

/* Evaluates node `id` of g on constant operands into a malloc'd buffer. */
static float *
eval_node(const Graph *g, PassCtx *ctx, int id)
{
    const Node *n = &g->nodes[id];
    Graph mini;
    McErr e;
    mc_graph_init(&mini, "fold");
    int in[MC_MAX_INPUTS];
    for (int k = 0; k < n->nin; k++) {
        const Node *o = &g->nodes[n->in[k]];
        int j = mc_graph_find(&mini, o->name);
        in[k] = j >= 0 ? j : mc_graph_weight(&mini, o->name, o->dtype, &o->shape, &e);
        if (in[k] < 0) mc_die("fold-constants: %s", e.msg);
    }
    int r = mc_graph_add(&mini, n->op, in, n->nin, &n->attrs, "result", &e);
    if (r < 0) mc_die("fold-constants: %%%s: %s", n->name, e.msg);
    mc_graph_add_output(&mini, r);
    float *out = NULL;
    if (mc_const_eval(&mini, ctx->ws, &out, &e)) mc_die("fold-constants: %%%s: %s", n->name, e.msg);
    mc_graph_free(&mini);
    return out;
}

bool
pass_fold_constants(Graph *g, PassCtx *ctx)
{
    bool changed = false;
    int n0 = g->nnodes;
    for (int i = 0; i < n0; i++) {
        const Node *n = &g->nodes[i];
        if (mc_op_info[n->op].traits & T_LEAF) continue;
        int all = 1;
        for (int k = 0; k < n->nin; k++) all &= mc_pass_const_data(g, ctx, n->in[k]) != NULL;
        if (!all || mc_shape_numel(&n->shape) > (16 << 20)) continue;
        float *data = eval_node(g, ctx, i);
        /* the constant takes the node's name: rename the node out of the way */
        char name[512];
        snprintf(name, sizeof name, "%s", n->name);
        mc_graph_rename(g, i, mc_arena_printf(&g->arena, "%s.folded-away", name));
        Shape s = g->nodes[i].shape;
        int c = mc_pass_add_const(g, ctx, name, &s, data);
        mc_graph_replace_uses(g, i, c);
        ctx->changes++;
        changed = true;
    }
    return changed;
}
