/* backends/ref/ref_exec.c -- the reference backend: an interpreter over the
 * graph IR, the oracle every other backend is tested against.
 *
 * Takes a verified Graph, a WeightStore and one host tensor per INPUT node
 * (in id order).  Executes nodes in id order (the array is topological),
 * one ref kernel per op (ref_kernels.c), freeing each intermediate after its
 * last use.  Produces one malloc'd HostTensor per graph output (the caller
 * frees .data).  Owns: the intermediate buffers during a run; input and
 * weight data are borrowed, never written.  Also fold-constants' evaluator
 * (mc_const_eval, declared by the passes).
 */
#include "ref_kernels.h"
#include "../backend.h"
#include "../../passes/pass.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double
now_s(void)
{
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return 0.0;
#endif
}

static float *
alloc_f32(int64_t n)
{
    return malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
}

/* Runs one non-leaf node into y (already allocated with its numel). */
static int
exec_node(const Graph *g, const Node *nd, float *const *vals, float *y, McErr *err)
{
    const Node *in0 = &g->nodes[nd->in[0]];
    const Shape *xs = &in0->shape, *ys = &nd->shape;
    const float *x = vals[nd->in[0]];
    int64_t n = mc_shape_numel(ys);
    int r = xs->rank;
    int64_t C = r > 0 ? xs->d[r - 1] : 1;

    switch (nd->op) {
    case OP_CONV2D: {
        const Shape *ws = &g->nodes[nd->in[1]].shape;
        const Attrs *a = &nd->attrs;
        RefConv c = {
            .B = xs->d[0], .H = xs->d[1], .W = xs->d[2], .Ci = xs->d[3], .Co = ws->d[0],
            .kh = ws->d[2], .kw = ws->d[3], .sh = a->stride[0], .sw = a->stride[1],
            .ph = a->pad[0], .pw = a->pad[1], .dh = a->dil[0], .dw = a->dil[1],
            .groups = a->groups,
        };
        if (xs->rank != 4 || ws->rank != 4 || c.groups <= 0 || c.Ci % c.groups ||
            c.Co % c.groups || ws->d[1] != c.Ci / c.groups)
            return mc_err(err, "conv2d: inconsistent shapes or groups");
        return mc_ref_conv2d(&c, x, vals[nd->in[1]], nd->nin > 2 ? vals[nd->in[2]] : NULL, y);
    }
    case OP_BATCHNORM:
        mc_ref_batchnorm(C ? n / C : 0, C, x, vals[nd->in[1]], vals[nd->in[2]],
                         vals[nd->in[3]], vals[nd->in[4]], nd->attrs.eps, y);
        return 0;
    case OP_LAYERNORM:
        mc_ref_layernorm(C ? n / C : 0, C, x, vals[nd->in[1]], vals[nd->in[2]], nd->attrs.eps, y);
        return 0;
    case OP_LINEAR: {
        int64_t N = g->nodes[nd->in[1]].shape.d[0];
        return mc_ref_linear(C ? mc_shape_numel(xs) / C : 0, N, C, x, vals[nd->in[1]],
                             nd->nin > 2 ? vals[nd->in[2]] : NULL, y);
    }
    case OP_MATMUL: {
        const Shape *bs = &g->nodes[nd->in[1]].shape;
        if (r < 2 || bs->rank < 2) return mc_err(err, "matmul: operands need rank >= 2");
        int64_t M = xs->d[r - 2], K = xs->d[r - 1], N = bs->d[bs->rank - 1];
        int64_t nb = (M * K != 0) ? mc_shape_numel(xs) / (M * K) : 0, bstride = 0;
        if (bs->rank > 2) {  /* batched b: its batch dims must equal a's */
            if (bs->rank != r || memcmp(bs->d, xs->d, (size_t)(r - 2) * sizeof(int64_t)))
                return mc_err(err, "matmul: ref backend needs b [K,N] or b with a's batch dims");
            bstride = K * N;
        }
        return mc_ref_matmul(nb, M, N, K, x, vals[nd->in[1]], bstride, y);
    }
    case OP_ADD:
    case OP_MUL: {
        int64_t ad[MC_MAX_RANK], bd[MC_MAX_RANK];
        const Shape *bs = &g->nodes[nd->in[1]].shape;
        int R = ys->rank;
        if (R == 0) {  /* scalars */
            y[0] = nd->op == OP_ADD ? x[0] + vals[nd->in[1]][0] : x[0] * vals[nd->in[1]][0];
            return 0;
        }
        for (int i = 0; i < R; i++) {
            int ia = i - (R - xs->rank), ib = i - (R - bs->rank);
            ad[i] = ia >= 0 ? xs->d[ia] : 1;
            bd[i] = ib >= 0 ? bs->d[ib] : 1;
        }
        return mc_ref_binary(nd->op, R, ys->d, ad, x, bd, vals[nd->in[1]], y);
    }
    case OP_RELU: case OP_GELU: case OP_SILU: case OP_SOFTPLUS: case OP_EXP: case OP_NEG:
        return mc_ref_unary(nd->op, n, x, y);
    case OP_SCAN:
        if (r != 4) return mc_err(err, "selective_scan: u must be [B,H,W,D]");
        return mc_ref_scan(xs->d[0], xs->d[1] * xs->d[2], xs->d[3], x, vals[nd->in[1]],
                           vals[nd->in[2]], vals[nd->in[3]], y);
    case OP_STATE_FUSION:
        if (r != 4) return mc_err(err, "state_fusion: h must be [B,H,W,D]");
        return mc_ref_state_fusion(xs->d[0], xs->d[1], xs->d[2], xs->d[3], x, vals[nd->in[1]],
                                   vals[nd->in[2]], vals[nd->in[3]], vals[nd->in[4]], y);
    case OP_STATE_FUSION25:
        return mc_ref_state_fusion25(xs->d[0], xs->d[1], xs->d[2], xs->d[3], x, vals[nd->in[1]], y);
    case OP_MEAN_HW:
        if (r != 4) return mc_err(err, "mean_hw: x must be [B,H,W,C]");
        mc_ref_mean_hw(xs->d[0], xs->d[1] * xs->d[2], xs->d[3], x, y);
        return 0;
    case OP_PERMUTE:
        mc_ref_permute(r, xs->d, nd->attrs.perm, x, y);
        return 0;
    case OP_SLICE:
        if (nd->attrs.start < 0 || nd->attrs.len < 0 || nd->attrs.start + nd->attrs.len > C)
            return mc_err(err, "slice: [%lld, +%lld) outside the last axis (%lld)",
                          (long long)nd->attrs.start, (long long)nd->attrs.len, (long long)C);
        mc_ref_slice(C ? mc_shape_numel(xs) / C : 0, C, nd->attrs.start, nd->attrs.len, x, y);
        return 0;
    case OP_ADAPTIVE_AVG_POOL:
    case OP_RESIZE:
        if (r != 4) return mc_err(err, "%s: x must be [B,H,W,C]", mc_op_info[nd->op].name);
        if (nd->op == OP_RESIZE)
            mc_ref_resize(xs->d[0], xs->d[1], xs->d[2], C, ys->d[1], ys->d[2], (int)nd->attrs.align_corners, x, y);
        else
            mc_ref_adaptive_avg_pool(xs->d[0], xs->d[1], xs->d[2], C, ys->d[1], ys->d[2], x, y);
        return 0;
    case OP_CONCAT: {
        int64_t Co = ys->d[ys->rank - 1], rows = Co ? n / Co : 0, at = 0;
        for (int i = 0; i < nd->nin; i++) {
            const Shape *s = &g->nodes[nd->in[i]].shape;
            int64_t c = s->d[s->rank - 1];
            for (int64_t q = 0; q < rows; q++)
                memcpy(y + q * Co + at, vals[nd->in[i]] + q * c, (size_t)c * sizeof(float));
            at += c;
        }
        return 0;
    }
    default:
        return mc_err(err, "ref backend: op '%s' is not implemented", mc_op_info[nd->op].name);
    }
}

static int
bind_weight(const Node *nd, const WeightStore *ws, const float **out, McErr *err)
{
    char b1[128], b2[128];
    const WTensor *t = ws ? mc_weights_find(ws, nd->name) : NULL;
    if (!t)
        return mc_err(err, "weight '%s' %s is not in the weight store%s", nd->name,
                      mc_shape_str(&nd->shape, b1, sizeof b1),
                      ws ? "" : " (no weights given)");
    if (t->dtype != DT_F32)
        return mc_err(err, "weight '%s' has dtype %s; the ref backend needs f32", nd->name,
                      mc_dtype_name(t->dtype));
    if (!mc_shape_eq(&t->shape, &nd->shape))
        return mc_err(err, "weight '%s': graph expects %s, store has %s", nd->name,
                      mc_shape_str(&nd->shape, b1, sizeof b1),
                      mc_shape_str(&t->shape, b2, sizeof b2));
    *out = t->data;
    return 0;
}

static int
ref_run(const Graph *g, const WeightStore *ws, const HostTensor *inputs, int nin,
        HostTensor *outputs, int nout, const RunOpts *o, McErr *err)
{
    int N = g->nnodes, ninputs = 0, rc = -1;
    char b1[128], b2[128];
    for (int i = 0; i < N; i++) ninputs += g->nodes[i].op == OP_INPUT;
    if (nin != ninputs)
        return mc_err(err, "ref backend: graph '%s' has %d inputs, %d given",
                      g->name ? g->name : "?", ninputs, nin);
    if (nout != g->noutputs)
        return mc_err(err, "ref backend: graph has %d outputs, %d requested", g->noutputs, nout);
    for (int k = 0; k < nout; k++) outputs[k].data = NULL;

    float **vals = calloc((size_t)(N ? N : 1), sizeof *vals);
    char *owned = calloc((size_t)(N ? N : 1), 1);
    int *last = malloc((size_t)(N ? N : 1) * sizeof *last);
    double *op_time = calloc(OP_COUNT, sizeof *op_time);
    if (!vals || !owned || !last || !op_time) {
        mc_err(err, "ref backend: out of memory");
        goto done;
    }
    /* last[v] = id of the last node reading v; outputs live to the end */
    for (int i = 0; i < N; i++) last[i] = -1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < g->nodes[i].nin; j++) last[g->nodes[i].in[j]] = i;
    for (int k = 0; k < g->noutputs; k++) last[g->outputs[k]] = INT_MAX;

#ifdef _OPENMP
    int saved_threads = omp_get_max_threads();
    if (o && o->threads > 0) omp_set_num_threads(o->threads);
#endif
    int verbose = o ? o->verbose : 0, next_input = 0;
    for (int i = 0; i < N; i++) {
        const Node *nd = &g->nodes[i];
        if (nd->dtype != DT_F32) {
            mc_err(err, "node '%s': dtype %s; the ref backend runs f32 only", nd->name,
                   mc_dtype_name(nd->dtype));
            goto fail;
        }
        if (nd->op == OP_INPUT) {
            const HostTensor *ht = &inputs[next_input++];
            if (!mc_shape_eq(&ht->shape, &nd->shape)) {
                mc_err(err, "input '%s': graph expects %s, got %s", nd->name,
                       mc_shape_str(&nd->shape, b1, sizeof b1),
                       mc_shape_str(&ht->shape, b2, sizeof b2));
                goto fail;
            }
            vals[i] = ht->data;
            continue;
        }
        if (nd->op == OP_WEIGHT) {
            const float *p = NULL;
            if (bind_weight(nd, ws, &p, err)) goto fail;
            vals[i] = (float *)p;   /* borrowed; never written */
            continue;
        }
        float *y = alloc_f32(mc_shape_numel(&nd->shape));
        if (!y) {
            mc_err(err, "node '%s': out of memory for %s", nd->name,
                   mc_shape_str(&nd->shape, b1, sizeof b1));
            goto fail;
        }
        vals[i] = y;
        owned[i] = 1;
        double t0 = now_s();
        err->msg[0] = '\0';
        if (exec_node(g, nd, vals, y, err)) {
            if (!err->msg[0]) mc_err(err, "out of memory");
            mc_err_prefix(err, "ref backend: node '%s' (%s)", nd->name, mc_op_info[nd->op].name);
            goto fail;
        }
        double dt = now_s() - t0;
        op_time[nd->op] += dt;
        if (verbose >= 2)
            fprintf(stderr, "ref: %-60s %-14s %9.3f ms\n", nd->name, mc_op_info[nd->op].name,
                    dt * 1e3);
        /* free operands whose last reader was this node */
        for (int j = 0; j < nd->nin; j++) {
            int v = nd->in[j];
            if (last[v] == i && owned[v]) {
                free(vals[v]);
                vals[v] = NULL;
                owned[v] = 0;
            }
        }
    }
    for (int k = 0; k < nout; k++) {
        int id = g->outputs[k];
        outputs[k].shape = g->nodes[id].shape;
        if (owned[id]) {           /* hand the buffer over (once) */
            outputs[k].data = vals[id];
            owned[id] = 0;
        } else {                   /* borrowed, or already handed out: copy */
            int64_t n = mc_shape_numel(&g->nodes[id].shape);
            outputs[k].data = alloc_f32(n);
            if (!outputs[k].data) {
                mc_err(err, "ref backend: out of memory for output %d", k);
                for (int j = 0; j <= k; j++) {  /* undo: buffers handed out so far */
                    free(outputs[j].data);
                    outputs[j].data = NULL;
                }
                goto fail;
            }
            memcpy(outputs[k].data, vals[id], (size_t)n * sizeof(float));
        }
    }
    if (verbose >= 1) {
        double total = 0;
        for (int k = 0; k < OP_COUNT; k++) total += op_time[k];
        for (int k = 0; k < OP_COUNT; k++)
            if (op_time[k] > 0)
                fprintf(stderr, "ref: %-16s %9.3f ms %5.1f%%\n", mc_op_info[k].name,
                        op_time[k] * 1e3, total > 0 ? 100.0 * op_time[k] / total : 0.0);
        fprintf(stderr, "ref: %-16s %9.3f ms\n", "total", total * 1e3);
    }
    rc = 0;
fail:
#ifdef _OPENMP
    omp_set_num_threads(saved_threads);
#endif
done:
    if (owned)
        for (int i = 0; i < N; i++)
            if (owned[i]) free(vals[i]);
    free(vals);
    free(owned);
    free(last);
    free(op_time);
    return rc;
}

/* fold-constants' evaluator (passes/pass.h): this interpreter, one thread */
int
mc_const_eval(const Graph *g, const WeightStore *ws, float **out, McErr *err)
{
    HostTensor t;
    memset(&t, 0, sizeof t);
    RunOpts ro = {.threads = 1};
    if (ref_run(g, ws, NULL, 0, &t, 1, &ro, err)) return -1;
    *out = t.data;
    return 0;
}

const Backend mc_backend_ref = {
    .name = "ref",
    .descr = "reference interpreter: plain C kernels over the graph IR (the oracle)",
    .run_graph = ref_run,
};
