/* passes/cse.c -- common-subexpression elimination.
 * Requires: ids in topological order (the manager guarantees it).
 * Does: a non-leaf node with the same op, the same operands (after earlier
 * merges) and the same attributes as an earlier node is replaced by it.
 * Leaves are never merged (weights differ by key, inputs are the signature).
 * Invalidates: node ids. */
#include "pass.h"
#include <stdlib.h>
#include <string.h>

static uint64_t
node_hash(const Node *n)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)n->op;
    for (int k = 0; k < n->nin; k++) h = (h ^ (uint64_t)n->in[k]) * 1099511628211ull;
    return h;
}

/* Field-wise, only the attributes the op uses (struct padding is not data). */
static bool
attrs_eq(OpKind op, const Attrs *a, const Attrs *b)
{
    unsigned f = mc_op_info[op].attrs;
    for (int i = 0; i < 2; i++)
        if ((f & A_CONV) && (a->stride[i] != b->stride[i] || a->pad[i] != b->pad[i] || a->dil[i] != b->dil[i]))
            return false;
    if ((f & A_CONV) && a->groups != b->groups) return false;
    if ((f & A_EPS) && a->eps != b->eps) return false;
    if ((f & A_SLICE) && (a->start != b->start || a->len != b->len)) return false;
    if ((f & A_PERM) && memcmp(a->perm, b->perm, sizeof a->perm)) return false;
    if ((f & A_SIZE) && (a->size[0] != b->size[0] || a->size[1] != b->size[1])) return false;
    if ((f & A_ALIGN) && a->align_corners != b->align_corners) return false;
    return true;
}

static bool
same(const Node *a, const Node *b)
{
    return a->op == b->op && a->nin == b->nin && !memcmp(a->in, b->in, sizeof(int) * (size_t)a->nin) &&
           attrs_eq(a->op, &a->attrs, &b->attrs);
}

bool
pass_cse(Graph *g, PassCtx *ctx)
{
    int n = g->nnodes, cap = 16;
    while (cap < 2 * n) cap *= 2;
    int *table = malloc(sizeof(int) * (size_t)cap);
    int *repl = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < cap; i++) table[i] = -1;
    bool changed = false;
    for (int i = 0; i < n; i++) {
        Node *nd = &g->nodes[i];
        repl[i] = i;
        for (int k = 0; k < nd->nin; k++) nd->in[k] = repl[nd->in[k]];
        if (mc_op_info[nd->op].traits & T_LEAF) continue;
        uint64_t h = node_hash(nd) & (uint64_t)(cap - 1);
        while (table[h] >= 0 && !same(&g->nodes[table[h]], nd)) h = (h + 1) & (uint64_t)(cap - 1);
        if (table[h] >= 0) {
            repl[i] = table[h];
            ctx->changes++;
            changed = true;
        } else {
            table[h] = i;
        }
    }
    for (int i = 0; i < g->noutputs; i++) g->outputs[i] = repl[g->outputs[i]];
    free(table);
    free(repl);
    return changed;
}
