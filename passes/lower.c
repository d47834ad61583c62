/* passes/lower.c -- graph IR -> kernel IR.
 *
 * Takes a verified graph (one input, 1 to MC_MAX_OUTPUTS outputs) and the weights store;
 * produces a KProgram: buffers (input, output, weights at blob offsets,
 * scratch intermediates) and fused kernels in execution order.  The fusion
 * rules are listed in lower.h; docs/kernel-ir.md explains them.  Owns the
 * KProgram's arrays (freed by mc_kprogram_free); names point into the graph.
 */
#include "lower.h"
#include "pass.h"
#include <stdlib.h>
#include <string.h>

typedef struct Lower {
    const Graph *g;
    KProgram *p;
    McErr *err;
    int *users;      /* use count per node */
    int *user;       /* the single user (when users == 1), else -1 */
    int *inl;        /* 1: elementwise node inlined into its user's expression */
    int *fused_into; /* anchor node -> elementwise root that carries it as epilogue, or -1 */
    int *anchor_of;  /* elementwise root -> fused anchor node, or -1 */
    int *buf;        /* node -> buffer id, or -1 */
    View *view;      /* node -> its view (valid when has_view) */
    int *has_view;
    int bufcap, kcap;
    int64_t woff;
    WeightStore *ws;
} Lower;

static int
is_elementwise(OpKind op)
{
    return (mc_op_info[op].traits & T_ELEMWISE) || op == OP_BATCHNORM;
}

static int
is_view_op(OpKind op)
{
    return op == OP_SLICE || op == OP_PERMUTE;
}

static int
can_anchor(OpKind op)
{
    return op == OP_CONV2D || op == OP_LINEAR || op == OP_LAYERNORM || op == OP_STATE_FUSION25 ||
           op == OP_STATE_FUSION || op == OP_MEAN_HW || op == OP_RESIZE || op == OP_ADAPTIVE_AVG_POOL;
}

static int64_t
align64(int64_t v)
{
    return (v + 63) & ~(int64_t)63;
}

/* Appends a buffer; weights get the next offset in the weights blob. */
static int
add_buffer(Lower *L, int node, const char *name, const Shape *s, BufKind kind)
{
    KProgram *p = L->p;
    if (p->nbufs == L->bufcap) {
        L->bufcap = L->bufcap ? 2 * L->bufcap : 256;
        p->bufs = realloc(p->bufs, sizeof(Buffer) * (size_t)L->bufcap);
    }
    Buffer *b = &p->bufs[p->nbufs];
    memset(b, 0, sizeof *b);
    b->id = p->nbufs;
    b->name = name;
    b->kind = kind;
    b->shape = *s;
    b->bytes = mc_shape_numel(s) * 4;
    b->node = node;
    b->first = b->last = -1;
    if (kind == BUF_WEIGHT) {
        b->offset = L->woff;
        L->woff = align64(L->woff + b->bytes);
    }
    if (node >= 0) L->buf[node] = b->id;
    return p->nbufs++;
}

static int
new_buffer(Lower *L, int node, BufKind kind)
{
    return add_buffer(L, node, L->g->nodes[node].name, &L->g->nodes[node].shape, kind);
}

/* A weight buffer for a constant made during lowering (no graph node). */
static int
new_const_buffer(Lower *L, const char *name, const Shape *s)
{
    return add_buffer(L, -1, name, s, BUF_WEIGHT);
}

static View
contiguous_view(int buf, const Shape *s)
{
    View v;
    memset(&v, 0, sizeof v);
    v.buf = buf;
    v.rank = s->rank;
    int64_t st = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        v.shape[i] = s->d[i];
        v.stride[i] = st;
        st *= s->d[i];
    }
    return v;
}

/* The view through which consumers read node n (materialized or a view op). */
static View
view_of(Lower *L, int n)
{
    if (L->has_view[n]) return L->view[n];
    const Node *nd = &L->g->nodes[n];
    View v;
    if (is_view_op(nd->op)) {
        View s = view_of(L, nd->in[0]);
        v = s;
        if (nd->op == OP_SLICE) {
            v.shape[v.rank - 1] = nd->attrs.len;
            v.offset += nd->attrs.start * s.stride[s.rank - 1];
        } else {
            for (int i = 0; i < s.rank; i++) {
                v.shape[i] = s.shape[nd->attrs.perm[i]];
                v.stride[i] = s.stride[nd->attrs.perm[i]];
            }
        }
    } else {
        if (L->buf[n] < 0) mc_die("lower: %%%s read before it is materialized", nd->name);
        v = contiguous_view(L->buf[n], &nd->shape);
    }
    L->view[n] = v;
    L->has_view[n] = 1;
    return v;
}

/* v broadcast (right-aligned) to shape s. */
static View
broadcast_to(View v, const Shape *s)
{
    View r;
    memset(&r, 0, sizeof r);
    r.buf = v.buf;
    r.offset = v.offset;
    r.rank = s->rank;
    for (int i = 0; i < s->rank; i++) {
        int j = v.rank - s->rank + i;
        r.shape[i] = s->d[i];
        r.stride[i] = (j >= 0 && v.shape[j] == s->d[i]) ? v.stride[j] : 0;
    }
    return r;
}

static void
mark_read(Lower *L, const View *v, int k)
{
    Buffer *b = &L->p->bufs[v->buf];
    if (b->last < k) b->last = k;
}

/* ------------------------------------------------------------ expressions */

typedef struct ExprCtx {
    Lower *L;
    Kernel *k;
    int root, anchor;
    int argnode[MC_MAX_ARGS];
} ExprCtx;

static int
emit(ExprCtx *c, EOp op, int a, int b, int arg, float imm)
{
    Kernel *k = c->k;
    if (k->nexpr >= MC_MAX_EXPR) mc_die("lower: epilogue of %s exceeds %d instructions", k->name, MC_MAX_EXPR);
    EInstr *e = &k->expr[k->nexpr];
    e->op = op;
    e->a = a;
    e->b = b;
    e->arg = arg;
    e->imm = imm;
    return k->nexpr++;
}

static int
load(ExprCtx *c, int n)
{
    Kernel *k = c->k;
    for (int i = 0; i < k->nargs; i++)
        if (c->argnode[i] == n) return emit(c, E_LOAD, -1, -1, i, 0);
    if (k->nargs >= MC_MAX_ARGS) mc_die("lower: epilogue of %s reads more than %d operands", k->name, MC_MAX_ARGS);
    c->argnode[k->nargs] = n;
    View v = view_of(c->L, n);
    Shape os = {k->out.rank, {0}};
    for (int i = 0; i < os.rank; i++) os.d[i] = k->out.shape[i];
    k->args[k->nargs] = broadcast_to(v, &os);
    return emit(c, E_LOAD, -1, -1, k->nargs++, 0);
}

static int
build(ExprCtx *c, int n)
{
    Lower *L = c->L;
    if (n == c->anchor) return emit(c, E_ACC, -1, -1, -1, 0);
    const Node *nd = &L->g->nodes[n];
    if (n != c->root && !L->inl[n]) return load(c, n);
    if (c->k->nnodes < MC_MAX_FUSED) c->k->nodes[c->k->nnodes++] = n;
    int a = build(c, nd->in[0]);
    switch (nd->op) {
    case OP_ADD: return emit(c, E_ADD, a, build(c, nd->in[1]), -1, 0);
    case OP_MUL: return emit(c, E_MUL, a, build(c, nd->in[1]), -1, 0);
    case OP_RELU: return emit(c, E_RELU, a, -1, -1, 0);
    case OP_GELU: return emit(c, E_GELU, a, -1, -1, 0);
    case OP_SILU: return emit(c, E_SILU, a, -1, -1, 0);
    case OP_SOFTPLUS: return emit(c, E_SOFTPLUS, a, -1, -1, 0);
    case OP_EXP: return emit(c, E_EXP, a, -1, -1, 0);
    case OP_NEG: return emit(c, E_NEG, a, -1, -1, 0);
    case OP_BATCHNORM: { /* (x - mean) / sqrt(var + eps) * gamma + beta */
        int mean = build(c, nd->in[3]), var = build(c, nd->in[4]);
        int eps = emit(c, E_CONST, -1, -1, -1, (float)nd->attrs.eps);
        int den = emit(c, E_SQRT, emit(c, E_ADD, var, eps, -1, 0), -1, -1, 0);
        int t = emit(c, E_DIV, emit(c, E_SUB, a, mean, -1, 0), den, -1, 0);
        t = emit(c, E_MUL, t, build(c, nd->in[1]), -1, 0);
        return emit(c, E_ADD, t, build(c, nd->in[2]), -1, 0);
    }
    default:
        mc_die("lower: %s is not elementwise", mc_op_info[nd->op].name);
    }
}

/* node n is one of the graph's outputs */
static int
is_output(const Graph *g, int n)
{
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == n) return 1;
    return 0;
}

/* softplus whose only use is a scan's dt: computed inside the scan kernel */
static int
scan_softplus(const Lower *L, int i)
{
    const Graph *g = L->g;
    int u = L->user[i];
    return g->nodes[i].op == OP_SOFTPLUS && L->users[i] == 1 && u >= 0 && g->nodes[u].op == OP_SCAN &&
           g->nodes[u].in[1] == i && !is_output(g, i);
}

/* ------------------------------------------------------------ splitting */

/* What one elementwise node costs inside its kernel's epilogue when the
 * nodes marked inl are inlined into it: build() emits this many
 * instructions, records this many fused nodes and reads these operands. */
typedef struct TreeCost {
    int instrs, nodes, nargs;
    int args[MC_MAX_ARGS + 1];
} TreeCost;

static int
own_instrs(OpKind op)
{
    return op == OP_BATCHNORM ? 7 : 1; /* batchnorm: const, add, sqrt, sub, div, mul, add */
}

/* Cost of node v from its operands' costs (operands have smaller ids). */
static void
tree_cost(const Lower *L, const TreeCost *cost, int v, TreeCost *c)
{
    const Node *nd = &L->g->nodes[v];
    memset(c, 0, sizeof *c);
    c->instrs = own_instrs(nd->op);
    c->nodes = 1;
    for (int k = 0; k < nd->nin; k++) {
        int o = nd->in[k];
        const int *add = &o;
        int nadd = 1;
        if (L->inl[o]) {
            c->instrs += cost[o].instrs;
            c->nodes += cost[o].nodes;
            add = cost[o].args;
            nadd = cost[o].nargs;
        } else {
            c->instrs++; /* E_LOAD (or E_ACC for the anchor, counted as a load) */
        }
        for (int a = 0; a < nadd; a++) {
            int seen = 0;
            for (int j = 0; j < c->nargs && !seen; j++) seen = c->args[j] == add[a];
            if (!seen && c->nargs <= MC_MAX_ARGS) c->args[c->nargs++] = add[a];
        }
    }
}

static int
tree_fits(const TreeCost *c)
{
    /* one node slot stays free for an anchor */
    return c->instrs <= MC_MAX_EXPR && c->nargs <= MC_MAX_ARGS && c->nodes <= MC_MAX_FUSED - 1;
}

/* Splits fused elementwise groups that would exceed the kernel IR's limits
 * (MC_MAX_EXPR instructions, MC_MAX_ARGS operands, MC_MAX_FUSED nodes): in
 * topological order, while a node's inlined tree does not fit, its largest
 * inlined operand becomes the root of a kernel of its own.  A node with no
 * inlined operand always fits, so this ends; groups that fit are unchanged. */
static void
split_groups(Lower *L)
{
    const Graph *g = L->g;
    TreeCost *cost = calloc((size_t)g->nnodes, sizeof *cost);
    if (!cost) mc_die("lower: out of memory");
    for (int v = 0; v < g->nnodes; v++) {
        if (!is_elementwise(g->nodes[v].op)) continue;
        for (;;) {
            tree_cost(L, cost, v, &cost[v]);
            if (tree_fits(&cost[v])) break;
            int big = -1;
            for (int k = 0; k < g->nodes[v].nin; k++) {
                int o = g->nodes[v].in[k];
                if (L->inl[o] && (big < 0 || cost[o].instrs + cost[o].nargs > cost[big].instrs + cost[big].nargs))
                    big = o;
            }
            if (big < 0) mc_die("lower: %%%s alone exceeds a kernel's limits", g->nodes[v].name);
            L->inl[big] = 0;
        }
    }
    free(cost);
}

/* ------------------------------------------------------------ kernels */

static Kernel *
new_kernel(Lower *L, KernelKind kind, int anchor_node)
{
    KProgram *p = L->p;
    if (p->nk == L->kcap) {
        L->kcap = L->kcap ? 2 * L->kcap : 128;
        p->k = realloc(p->k, sizeof(Kernel) * (size_t)L->kcap);
    }
    Kernel *k = &p->k[p->nk++];
    memset(k, 0, sizeof *k);
    k->kind = kind;
    k->name = L->g->nodes[anchor_node].name;
    k->host = -1;
    return k;
}

/* Collapses a view [d0,...,d_{r-2},K] to rows [M,K]; 0 if the leading dims
 * are not one uniform stride. */
static int
rows_view(const View *v, View *out)
{
    int r = v->rank;
    for (int i = 0; i < r - 2; i++)
        if (v->stride[i] != v->shape[i + 1] * v->stride[i + 1] && v->shape[i] > 1) return 0;
    memset(out, 0, sizeof *out);
    out->buf = v->buf;
    out->offset = v->offset;
    out->rank = 2;
    out->shape[0] = 1;
    for (int i = 0; i < r - 1; i++) out->shape[0] *= v->shape[i];
    out->shape[1] = v->shape[r - 1];
    out->stride[0] = r >= 2 ? v->stride[r - 2] : 0;
    out->stride[1] = v->stride[r - 1];
    return 1;
}

static double
numel_of(const Node *n)
{
    return (double)mc_shape_numel(&n->shape);
}

/* Fills the anchor part of kernel k for node a. */
static int
setup_anchor(Lower *L, Kernel *k, int a)
{
    const Graph *g = L->g;
    const Node *n = &g->nodes[a];
    k->attrs = n->attrs;
    switch (n->op) {
    case OP_CONV2D: {
        const Shape *w = &g->nodes[n->in[1]].shape;
        const Shape *x = &g->nodes[n->in[0]].shape;
        View xv = view_of(L, n->in[0]), rv;
        int pointwise = w->d[2] == 1 && w->d[3] == 1 && n->attrs.groups == 1 && n->attrs.stride[0] == 1 &&
                        n->attrs.stride[1] == 1 && n->attrs.pad[0] == 0 && n->attrs.pad[1] == 0;
        k->flops = 2.0 * numel_of(n) * (double)(w->d[1] * w->d[2] * w->d[3]);
        if (pointwise && rows_view(&xv, &rv)) {
            k->kind = KK_GEMM;
            k->in[0] = rv;
            View wv = view_of(L, n->in[1]);
            wv.rank = 2;
            wv.shape[0] = w->d[0];
            wv.shape[1] = w->d[1];
            wv.stride[0] = w->d[1];
            wv.stride[1] = 1;
            k->in[1] = wv;
            k->M = rv.shape[0];
            k->N = w->d[0];
            k->K = w->d[1];
        } else if (n->attrs.groups == x->d[3] && w->d[0] == x->d[3] && w->d[1] == 1) {
            k->kind = KK_DWCONV;
            k->in[0] = xv;
            k->in[1] = view_of(L, n->in[1]);
        } else if (n->attrs.groups == 1) {
            k->kind = KK_CONV;
            k->in[0] = xv;
            k->in[1] = view_of(L, n->in[1]);
        } else {
            return mc_err(L->err, "lower: %%%s: grouped convolution with groups=%lld is not supported by the kernel IR",
                          n->name, (long long)n->attrs.groups);
        }
        k->nin = 2;
        if (n->nin == 3) k->in[k->nin++] = view_of(L, n->in[2]);
        return 0;
    }
    case OP_LINEAR: {
        View xv = view_of(L, n->in[0]), rv;
        if (!rows_view(&xv, &rv))
            return mc_err(L->err, "lower: %%%s: linear input is not row-contiguous", n->name);
        const Shape *w = &g->nodes[n->in[1]].shape;
        k->kind = KK_GEMM;
        k->in[0] = rv;
        k->in[1] = view_of(L, n->in[1]);
        k->nin = 2;
        if (n->nin == 3) k->in[k->nin++] = view_of(L, n->in[2]);
        k->M = rv.shape[0];
        k->N = w->d[0];
        k->K = w->d[1];
        k->flops = 2.0 * (double)k->M * (double)k->N * (double)k->K;
        return 0;
    }
    case OP_LAYERNORM:
        k->kind = KK_LAYERNORM;
        for (int i = 0; i < 3; i++) k->in[i] = view_of(L, n->in[i]);
        k->nin = 3;
        k->flops = 8.0 * numel_of(n);
        return 0;
    case OP_STATE_FUSION25:
        k->kind = KK_FUSION25;
        k->in[0] = view_of(L, n->in[0]);
        k->in[1] = view_of(L, n->in[1]);
        k->nin = 2;
        k->flops = 50.0 * numel_of(n);
        return 0;
    case OP_STATE_FUSION: { /* legalize: fold alpha into the 25 taps here */
        const float *kk[4];
        for (int i = 0; i < 4; i++) {
            WTensor *t = L->ws && g->nodes[n->in[1 + i]].op == OP_WEIGHT ? mc_weights_find(L->ws, g->nodes[n->in[1 + i]].name) : NULL;
            if (!t || t->dtype != DT_F32)
                return mc_err(L->err, "lower: %%%s: state_fusion kernels and alpha must be constants", n->name);
            kk[i] = t->data;
        }
        int64_t D = n->shape.d[3];
        char *name = mc_arena_printf((Arena *)&g->arena, "%s.taps", n->name);
        Shape ts = {2, {D, 25}};
        if (!mc_weights_find(L->ws, name))
            mc_weights_put(L->ws, name, DT_F32, DT_F32, &ts, mc_state_fusion_taps(kk[0], kk[1], kk[2], kk[3], D));
        k->kind = KK_FUSION25;
        k->in[0] = view_of(L, n->in[0]);
        k->in[1] = contiguous_view(new_const_buffer(L, name, &ts), &ts);
        k->nin = 2;
        k->flops = 50.0 * numel_of(n);
        return 0;
    }
    case OP_RESIZE:
    case OP_ADAPTIVE_AVG_POOL:
        k->kind = n->op == OP_RESIZE ? KK_RESIZE : KK_AVGPOOL;
        k->in[0] = view_of(L, n->in[0]);
        k->nin = 1;
        /* resize: 4 taps, 3 lerps; pool: one add per input element */
        k->flops = n->op == OP_RESIZE ? 9.0 * numel_of(n) : numel_of(&g->nodes[n->in[0]]);
        return 0;
    case OP_MEAN_HW:
        k->kind = KK_MEAN_HW;
        k->in[0] = view_of(L, n->in[0]);
        k->nin = 1;
        k->flops = numel_of(&g->nodes[n->in[0]]);
        return 0;
    case OP_SCAN: {
        k->kind = KK_SCAN;
        int dt = n->in[1];
        const Node *d = &g->nodes[dt];
        if (scan_softplus(L, dt)) {
            k->softplus_dt = 1;
            dt = d->in[0];
            k->nodes[k->nnodes++] = n->in[1];
        }
        k->in[0] = view_of(L, n->in[0]);
        k->in[1] = view_of(L, dt);
        k->in[2] = view_of(L, n->in[2]);
        k->in[3] = view_of(L, n->in[3]);
        k->nin = 4;
        k->flops = 6.0 * numel_of(n);
        return 0;
    }
    default:
        return mc_err(L->err, "lower: %%%s: op %s has no native kernel yet (the ref backend runs it: "
                      "mambac run --backend ref)", n->name, mc_op_info[n->op].name);
    }
}

/* A concat: one buffer, each operand copied into its channel slice by an
 * eltwise kernel (a target's kernel pass may let the operand's producer
 * write the slice itself: passes/concat_in_place.c). */
static int
lower_concat(Lower *L, int c)
{
    const Graph *g = L->g;
    const Node *n = &g->nodes[c];
    int is_out = 0;
    for (int i = 0; i < g->noutputs; i++) is_out |= g->outputs[i] == c;
    int ob = new_buffer(L, c, is_out ? BUF_OUTPUT : BUF_SCRATCH);
    View whole = contiguous_view(ob, &n->shape);
    int r = n->shape.rank;
    int64_t at = 0;
    for (int j = 0; j < n->nin; j++) {
        const Node *x = &g->nodes[n->in[j]];
        Kernel *k = new_kernel(L, KK_ELTWISE, c);
        k->out = whole;
        k->out.shape[r - 1] = x->shape.d[r - 1];
        k->out.offset = at * whole.stride[r - 1];
        at += x->shape.d[r - 1];
        ExprCtx e;
        memset(&e, 0, sizeof e);
        e.L = L;
        e.k = k;
        e.root = e.anchor = -1;
        for (int a = 0; a < MC_MAX_ARGS; a++) e.argnode[a] = -1;
        load(&e, n->in[j]);
        k->nodes[k->nnodes++] = c;
        k->flops = 0;
        int ki = L->p->nk - 1;
        mark_read(L, &k->args[0], ki);
        if (j == 0) L->p->bufs[ob].first = ki;
        L->p->bufs[ob].last = ki;
    }
    return 0;
}

/* Output buffer for root node r. */
static int
out_buffer(Lower *L, int r)
{
    return new_buffer(L, r, is_output(L->g, r) ? BUF_OUTPUT : BUF_SCRATCH);
}

static int
finish_kernel(Lower *L, Kernel *k, int root, int anchor)
{
    int ob = out_buffer(L, root);
    k->out = contiguous_view(ob, &L->g->nodes[root].shape);
    int ki = (int)(k - L->p->k);
    ExprCtx c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.k = k;
    c.root = root;
    c.anchor = anchor;
    if (root != anchor || k->kind == KK_ELTWISE) {
        build(&c, root);
        if (k->kind == KK_ELTWISE) k->flops = numel_of(&L->g->nodes[root]) * k->nexpr;
    }
    for (int i = 0; i < k->nin; i++) mark_read(L, &k->in[i], ki);
    for (int i = 0; i < k->nargs; i++) mark_read(L, &k->args[i], ki);
    L->p->bufs[ob].first = ki;
    if (L->p->bufs[ob].last < ki) L->p->bufs[ob].last = ki;
    return 0;
}

int
mc_lower(const Graph *g, WeightStore *ws, KProgram *p, McErr *err)
{
    memset(p, 0, sizeof *p);
    p->name = g->name;
    p->input_buf = -1;
    int n = g->nnodes;
    if (g->noutputs < 1 || g->noutputs > MC_MAX_OUTPUTS)
        return mc_err(err, "lower: the native backends take 1 to %d outputs, the graph has %d", MC_MAX_OUTPUTS, g->noutputs);
    Lower L;
    memset(&L, 0, sizeof L);
    L.g = g;
    L.p = p;
    L.err = err;
    L.ws = ws;
    L.users = calloc((size_t)n, sizeof(int));
    L.user = malloc(sizeof(int) * (size_t)n);
    L.inl = calloc((size_t)n, sizeof(int));
    L.fused_into = malloc(sizeof(int) * (size_t)n);
    L.anchor_of = malloc(sizeof(int) * (size_t)n);
    L.buf = malloc(sizeof(int) * (size_t)n);
    L.view = calloc((size_t)n, sizeof(View));
    L.has_view = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) L.user[i] = L.fused_into[i] = L.anchor_of[i] = L.buf[i] = -1;
    mc_graph_use_counts(g, L.users);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].nin; k++) L.user[g->nodes[i].in[k]] = L.users[g->nodes[i].in[k]] == 1 ? i : -1;
    int rc = 0;

    /* 1. inline decisions: single-use elementwise into a same-shape elementwise user */
    for (int i = 0; i < n; i++) {
        const Node *nd = &g->nodes[i];
        int u = L.user[i];
        if (!is_elementwise(nd->op) || is_output(g, i) || L.users[i] != 1 || u < 0) continue;
        if (is_elementwise(g->nodes[u].op) && mc_shape_eq(&g->nodes[u].shape, &nd->shape)) L.inl[i] = 1;
    }
    /* 1b. no fused group larger than one kernel can hold */
    split_groups(&L);
    /* 2. epilogue anchors: an elementwise root takes one single-use anchor leaf */
    for (int r = 0; r < n; r++) {
        if (!is_elementwise(g->nodes[r].op) || L.inl[r] || scan_softplus(&L, r)) continue;
        /* walk the inlined expression tree of r looking for an anchor leaf */
        int stack[64], sp = 0, found = -1;
        stack[sp++] = r;
        while (sp && found < 0) {
            int v = stack[--sp];
            for (int k = 0; k < g->nodes[v].nin && found < 0; k++) {
                int o = g->nodes[v].in[k];
                if (L.inl[o]) { if (sp < 64) stack[sp++] = o; continue; }
                if (can_anchor(g->nodes[o].op) && L.users[o] == 1 && L.fused_into[o] < 0 && !is_output(g, o) &&
                    mc_shape_eq(&g->nodes[o].shape, &g->nodes[r].shape))
                    found = o;
            }
        }
        if (found >= 0) {
            L.fused_into[found] = r;
            L.anchor_of[r] = found;
        }
    }
    /* 3. buffers for leaves */
    for (int i = 0; i < n; i++) {
        const Node *nd = &g->nodes[i];
        if (nd->op == OP_INPUT) {
            if (p->input_buf >= 0) { rc = mc_err(err, "lower: the native backends need exactly one input"); goto done; }
            p->input_buf = new_buffer(&L, i, BUF_INPUT);
        } else if (nd->op == OP_WEIGHT && L.users[i] > 0) {
            WTensor *t = ws ? mc_weights_find(ws, nd->name) : NULL;
            if (ws && (!t || t->dtype != DT_F32)) { rc = mc_err(err, "lower: no f32 data for weight %s", nd->name); goto done; }
            new_buffer(&L, i, BUF_WEIGHT);
        }
    }
    /* 4. kernels in topological order */
    for (int i = 0; i < n && !rc; i++) {
        const Node *nd = &g->nodes[i];
        OpKind op = nd->op;
        if (mc_op_info[op].traits & T_LEAF) continue;
        if (is_view_op(op)) continue;
        if (op == OP_CONCAT) {
            rc = lower_concat(&L, i);
            continue;
        }
        if (L.inl[i] || L.fused_into[i] >= 0) continue;
        if (scan_softplus(&L, i)) continue; /* computed inside the scan */
        if (is_elementwise(op)) {
            int a = L.anchor_of[i];
            Kernel *k;
            if (a >= 0) {
                k = new_kernel(&L, KK_ELTWISE, a);
                k->nodes[k->nnodes++] = a;
                if ((rc = setup_anchor(&L, k, a))) break;
            } else {
                k = new_kernel(&L, KK_ELTWISE, i);
            }
            rc = finish_kernel(&L, k, i, a);
        } else {
            Kernel *k = new_kernel(&L, KK_ELTWISE, i);
            k->nodes[k->nnodes++] = i;
            if ((rc = setup_anchor(&L, k, i))) break;
            rc = finish_kernel(&L, k, i, i);
        }
    }
    if (rc) goto done;
    /* every output is a buffer of its own written by a kernel: copy views,
     * leaves and an output repeated (the same node twice) */
    for (int j = 0; j < g->noutputs; j++) {
        int out = g->outputs[j];
        if (L.buf[out] >= 0 && p->bufs[L.buf[out]].kind == BUF_OUTPUT && mc_kprogram_output_index(p, L.buf[out]) < 0) {
            p->output_bufs[p->noutputs++] = L.buf[out];
            continue;
        }
        Kernel *k = new_kernel(&L, KK_ELTWISE, out);
        int old = L.buf[out];
        int ob = new_buffer(&L, out, BUF_OUTPUT);
        k->out = contiguous_view(ob, &g->nodes[out].shape);
        ExprCtx c;
        memset(&c, 0, sizeof c);
        c.L = &L;
        c.k = k;
        c.root = c.anchor = -1;
        for (int a = 0; a < MC_MAX_ARGS; a++) c.argnode[a] = -1;
        L.buf[out] = old; /* read the value through its view, not the new buffer */
        L.has_view[out] = 0;
        load(&c, out);
        L.buf[out] = ob;
        int ki = p->nk - 1;
        for (int a = 0; a < k->nargs; a++) mark_read(&L, &k->args[a], ki);
        p->bufs[ob].first = p->bufs[ob].last = ki;
        p->output_bufs[p->noutputs++] = ob;
    }
    p->weights_bytes = L.woff;
    for (int ki = 0; ki < p->nk; ki++)
        for (int j = 0; j < p->k[ki].nnodes; j++) p->k[ki].node_names[j] = g->nodes[p->k[ki].nodes[j]].name;
done:
    free(L.users); free(L.user); free(L.inl); free(L.fused_into); free(L.anchor_of);
    free(L.buf); free(L.view); free(L.has_view);
    if (rc) mc_kprogram_free(p);
    return rc;
}
