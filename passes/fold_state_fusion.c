/* passes/fold_state_fusion.c -- state_fusion(h, k3, k3_1, k3_2, alpha)
 * -> state_fusion25(h, taps).
 *
 * Requires: the three kernels and alpha are constants.
 * Does: the three dilated 3x3 depthwise kernels (dilations 1, 3, 5) share
 * only their centre tap, so alpha0*k3 + alpha1*k3_1 + alpha2*k3_2 is one
 * 11x11 stencil with 25 distinct taps (SPEC: exact, 4.8x fewer taps than a
 * dense 11x11).  taps[d,0] = sum_r alpha_r*k_r[d,1,1]; every other tap is
 * alpha_r * k_r[d, ky, kx] for the kernel r and 3x3 position its offset
 * names, in the tap order of ir/fusion25_taps.def.  The fused node keeps
 * the original name.
 * Invalidates: node ids.
 */
#include "pass.h"
#include "../ir/fusion25.h"
#include <stdlib.h>

float *
mc_state_fusion_taps(const float *k3, const float *k3_1, const float *k3_2, const float *alpha, int64_t D)
{
    const float *k[3] = {k3, k3_1, k3_2};
    /* tap t (not the centre) is kernel r (dilation 2r+1) at 3x3 position p */
    int tr[MC_F25_NTAPS], tp[MC_F25_NTAPS];
    for (int t = 1; t < MC_F25_NTAPS; t++) {
        int dy = mc_f25_dy(t), dx = mc_f25_dx(t), dil = abs(dy) > abs(dx) ? abs(dy) : abs(dx);
        tr[t] = (dil - 1) / 2;
        tp[t] = (dy / dil + 1) * 3 + dx / dil + 1;
    }
    float *taps = malloc(sizeof(float) * (size_t)(D * MC_F25_NTAPS));
    for (int64_t d = 0; d < D; d++) {
        double c = 0;
        for (int r = 0; r < 3; r++) c += (double)alpha[r] * k[r][d * 9 + 4];
        taps[d * MC_F25_NTAPS] = (float)c;
        for (int t = 1; t < MC_F25_NTAPS; t++)
            taps[d * MC_F25_NTAPS + t] = (float)((double)alpha[tr[t]] * k[tr[t]][d * 9 + tp[t]]);
    }
    return taps;
}

bool
pass_fold_state_fusion(Graph *g, PassCtx *ctx)
{
    bool changed = false;
    int n0 = g->nnodes;
    for (int i = 0; i < n0; i++) {
        if (g->nodes[i].op != OP_STATE_FUSION) continue;
        const float *k[3], *al;
        int bad = 0;
        for (int r = 0; r < 3; r++) bad |= !(k[r] = mc_pass_const_data(g, ctx, g->nodes[i].in[1 + r]));
        bad |= !(al = mc_pass_const_data(g, ctx, g->nodes[i].in[4]));
        if (bad) continue;
        int64_t D = g->nodes[i].shape.d[3];
        float *taps = mc_state_fusion_taps(k[0], k[1], k[2], al, D);
        char name[512];
        snprintf(name, sizeof name, "%s.taps", g->nodes[i].name);
        Shape ts = {2, {D, 25}};
        int tid = mc_pass_add_const(g, ctx, name, &ts, taps);
        Node *n = &g->nodes[i];
        n->op = OP_STATE_FUSION25;
        n->in[1] = tid;
        n->nin = 2;
        ctx->changes++;
        changed = true;
    }
    return changed;
}
