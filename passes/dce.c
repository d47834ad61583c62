/* passes/dce.c -- dead-code elimination.
 * Requires: nothing.  Does: drops every node that no output depends on (graph
 * inputs stay: they are the signature).  Invalidates: node ids. */
#include "pass.h"

bool
pass_dce(Graph *g, PassCtx *ctx)
{
    int removed = mc_graph_compact(g);
    ctx->changes += removed;
    return removed > 0;
}
