/* passes/fold_batchnorm.c -- batchnorm(conv2d(x, w, b)) -> conv2d(x, w', b').
 *
 * Requires: the conv's weight (and bias, if any) and the BN parameters are
 * constants in the store; the conv has no other user.
 * Does: w'[o,...] = w[o,...] * s[o], b'[o] = (b[o] - mean[o]) * s[o] + beta[o],
 *       s = gamma / sqrt(var + eps), computed in double.  The conv keeps its
 *       name and takes over the BN's uses.
 * Invalidates: nothing beyond node ids (the manager compacts).
 */
#include "pass.h"
#include <math.h>
#include <stdlib.h>

bool
pass_fold_batchnorm(Graph *g, PassCtx *ctx)
{
    int n0 = g->nnodes;
    int *users = malloc(sizeof(int) * (size_t)n0);
    mc_graph_use_counts(g, users);
    bool changed = false;
    for (int i = 0; i < n0; i++) {
        Node *bn = &g->nodes[i];
        if (bn->op != OP_BATCHNORM) continue;
        int c = bn->in[0];
        Node *cv = &g->nodes[c];
        if (cv->op != OP_CONV2D || users[c] != 1) continue;
        float *w = mc_pass_const_data(g, ctx, cv->in[1]);
        float *b = cv->nin == 3 ? mc_pass_const_data(g, ctx, cv->in[2]) : NULL;
        float *gm = mc_pass_const_data(g, ctx, bn->in[1]), *bt = mc_pass_const_data(g, ctx, bn->in[2]);
        float *mu = mc_pass_const_data(g, ctx, bn->in[3]), *var = mc_pass_const_data(g, ctx, bn->in[4]);
        if (!w || (cv->nin == 3 && !b) || !gm || !bt || !mu || !var) continue;
        const Shape ws = g->nodes[cv->in[1]].shape;
        int64_t co = ws.d[0], per = mc_shape_numel(&ws) / co;
        float *nw = malloc(sizeof(float) * (size_t)(co * per));
        float *nb = malloc(sizeof(float) * (size_t)co);
        for (int64_t o = 0; o < co; o++) {
            double s = (double)gm[o] / sqrt((double)var[o] + bn->attrs.eps);
            for (int64_t k = 0; k < per; k++) nw[o * per + k] = (float)((double)w[o * per + k] * s);
            nb[o] = (float)(((b ? (double)b[o] : 0.0) - (double)mu[o]) * s + (double)bt[o]);
        }
        char name[512];
        snprintf(name, sizeof name, "%s.weight.bnfold", cv->name);
        Shape bs = {1, {co}};
        int wid = mc_pass_add_const(g, ctx, name, &ws, nw);
        snprintf(name, sizeof name, "%s.bias.bnfold", g->nodes[c].name);
        int bid = mc_pass_add_const(g, ctx, name, &bs, nb);
        cv = &g->nodes[c]; /* the array may have moved */
        cv->in[1] = wid;
        cv->in[2] = bid;
        cv->nin = 3;
        mc_graph_replace_uses(g, i, c);
        ctx->changes++;
        changed = true;
    }
    free(users);
    return changed;
}
