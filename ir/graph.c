/* ir/graph.c -- graph IR core: op table, dtypes, shapes, node construction
 * with shape inference, and the verifier.  Owns Graph memory (its arena and
 * node/output arrays).  Printing and parsing live in print.c / parse.c. */
#include "graph.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const OpInfo mc_op_info[OP_COUNT] = {
#define OP(e, name, mn, mx, tr, at) [OP_##e] = {name, mn, mx, tr, at},
#include "ops.def"
#undef OP
};

static const char *dtype_names[DT_COUNT] = {"f32", "f64", "f16", "bf16", "i64", "i32"};
static const int dtype_sizes[DT_COUNT] = {4, 8, 2, 2, 8, 4};

const char *
mc_dtype_name(DType t)
{
    return (unsigned)t < DT_COUNT ? dtype_names[t] : "?";
}

int
mc_dtype_size(DType t)
{
    return (unsigned)t < DT_COUNT ? dtype_sizes[t] : 0;
}

int
mc_dtype_parse(const char *s, DType *out)
{
    for (int i = 0; i < DT_COUNT; i++)
        if (!strcmp(s, dtype_names[i])) { *out = (DType)i; return 0; }
    return -1;
}

int
mc_op_parse(const char *name, OpKind *out)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (!strcmp(name, mc_op_info[i].name)) { *out = (OpKind)i; return 0; }
    return -1;
}

int64_t
mc_shape_numel(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->d[i];
    return n;
}

bool
mc_shape_eq(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i]) return false;
    return true;
}

char *
mc_shape_str(const Shape *s, char *buf, size_t n)
{
    size_t k = 0;
    if (n == 0) return buf;
    buf[0] = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < s->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ",%" PRId64 : "%" PRId64, s->d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

Attrs
mc_attrs_default(void)
{
    Attrs a;
    memset(&a, 0, sizeof a);
    a.stride[0] = a.stride[1] = 1;
    a.dil[0] = a.dil[1] = 1;
    a.groups = 1;
    a.eps = 1e-5;
    return a;
}

/* ------------------------------------------------------------ name index */

static uint64_t
hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static void
hash_put(Graph *g, int id)
{
    uint64_t h = hash_str(g->nodes[id].name) & (uint64_t)(g->hashcap - 1);
    while (g->hash[h] >= 0) h = (h + 1) & (uint64_t)(g->hashcap - 1);
    g->hash[h] = id;
}

/* Indexes node `id` (already counted in nnodes); grows and rebuilds the
 * table from all nnodes nodes when it gets half full. */
static void
hash_insert(Graph *g, int id)
{
    if ((g->nnodes + 1) * 2 <= g->hashcap) {
        hash_put(g, id);
        return;
    }
    int cap = 256;
    while (cap < (g->nnodes + 1) * 4) cap *= 2;
    free(g->hash);
    g->hash = malloc(sizeof(int) * (size_t)cap);
    if (!g->hash) mc_die("out of memory");
    for (int i = 0; i < cap; i++) g->hash[i] = -1;
    g->hashcap = cap;
    for (int i = 0; i < g->nnodes; i++) hash_put(g, i);
}

int
mc_graph_find(const Graph *g, const char *name)
{
    if (!g->hashcap || !name) return -1;
    uint64_t h = hash_str(name) & (uint64_t)(g->hashcap - 1);
    while (g->hash[h] >= 0) {
        if (!strcmp(g->nodes[g->hash[h]].name, name)) return g->hash[h];
        h = (h + 1) & (uint64_t)(g->hashcap - 1);
    }
    return -1;
}

/* ------------------------------------------------------------ lifetime */

void
mc_graph_init(Graph *g, const char *name)
{
    memset(g, 0, sizeof *g);
    g->name = mc_arena_strdup(&g->arena, name ? name : "graph");
}

void
mc_graph_free(Graph *g)
{
    free(g->nodes);
    free(g->outputs);
    free(g->hash);
    mc_arena_free(&g->arena);
    memset(g, 0, sizeof *g);
}

/* ------------------------------------------------------------ shapes */

#define SH(buf, s) mc_shape_str((s), buf, sizeof buf)

static const Shape *
in_shape(const Graph *g, const int *in, int i)
{
    return &g->nodes[in[i]].shape;
}

static int
bcast(const Shape *a, const Shape *b, Shape *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1) return -1;
        out->d[i] = da == 1 ? db : da;
    }
    return 0;
}

static int
vec_of(const Shape *s, int64_t c)
{
    return s->rank == 1 && s->d[0] == c;
}

int
mc_infer_shape(const Graph *g, OpKind op, const int *in, int nin, const Attrs *a, DType *dt,
               Shape *out, McErr *err)
{
    char b1[128], b2[128], b3[128];
    const char *on = (unsigned)op < OP_COUNT ? mc_op_info[op].name : "?";
    if ((unsigned)op >= OP_COUNT) return mc_err(err, "unknown op %d", (int)op);
    if (nin < mc_op_info[op].min_in || nin > mc_op_info[op].max_in) {
        if (mc_op_info[op].min_in == mc_op_info[op].max_in)
            return mc_err(err, "%s takes %d operands, got %d", on, mc_op_info[op].min_in, nin);
        return mc_err(err, "%s takes %d to %d operands, got %d", on, mc_op_info[op].min_in,
                      mc_op_info[op].max_in, nin);
    }
    for (int i = 0; i < nin; i++) {
        if (in[i] < 0 || in[i] >= g->nnodes) return mc_err(err, "%s: operand %d is not a node", on, i);
        if (g->nodes[in[i]].dtype != DT_F32)
            return mc_err(err, "%s: operand %d (%%%s) is %s; only f32 values are supported", on, i,
                          g->nodes[in[i]].name, mc_dtype_name(g->nodes[in[i]].dtype));
    }
    *dt = DT_F32;
    const Shape *x = nin ? in_shape(g, in, 0) : NULL;
    switch (op) {
    case OP_INPUT:
    case OP_WEIGHT:
        if (a->shape.rank < 0 || a->shape.rank > MC_MAX_RANK) return mc_err(err, "%s: bad rank", on);
        for (int i = 0; i < a->shape.rank; i++)
            if (a->shape.d[i] <= 0 || a->shape.d[i] > ((int64_t)1 << 40))
                return mc_err(err, "%s: dimension %d is %" PRId64 ", must be positive", on, i, a->shape.d[i]);
        {
            int64_t total = 1; /* each dim <= 2^40: check the product before it can overflow */
            for (int i = 0; i < a->shape.rank; i++) {
                if (total > (((int64_t)1 << 40) / a->shape.d[i])) return mc_err(err, "%s: tensor too large", on);
                total *= a->shape.d[i];
            }
        }
        *dt = a->type;
        *out = a->shape;
        return 0;
    case OP_CONV2D: {
        const Shape *w = in_shape(g, in, 1);
        if (x->rank != 4) return mc_err(err, "conv2d: input must be [B,H,W,C], got %s", SH(b1, x));
        if (w->rank != 4) return mc_err(err, "conv2d: weight must be [Co,Ci/groups,kh,kw], got %s", SH(b1, w));
        for (int i = 0; i < 2; i++)
            if (a->stride[i] < 1 || a->dil[i] < 1 || a->pad[i] < 0 || a->stride[i] > 64 || a->dil[i] > 64 || a->pad[i] > 64)
                return mc_err(err, "conv2d: stride and dilation must be in 1..64 and padding in 0..64");
        if (a->groups < 1 || x->d[3] % a->groups || w->d[0] % a->groups)
            return mc_err(err, "conv2d: groups=%" PRId64 " must divide input channels %" PRId64 " and output channels %" PRId64,
                          a->groups, x->d[3], w->d[0]);
        if (w->d[1] * a->groups != x->d[3])
            return mc_err(err, "conv2d: weight %s expects %" PRId64 " input channels (groups=%" PRId64 "), input %s has %" PRId64,
                          SH(b1, w), w->d[1] * a->groups, a->groups, SH(b2, x), x->d[3]);
        if (nin == 3 && !vec_of(in_shape(g, in, 2), w->d[0]))
            return mc_err(err, "conv2d: bias must be [%" PRId64 "], got %s", w->d[0], SH(b1, in_shape(g, in, 2)));
        out->rank = 4;
        out->d[0] = x->d[0];
        for (int i = 0; i < 2; i++) {
            int64_t ext = a->dil[i] * (w->d[2 + i] - 1) + 1;
            int64_t span = x->d[1 + i] + 2 * a->pad[i] - ext;
            if (span < 0)
                return mc_err(err, "conv2d: input %s is too small for a %" PRId64 "x%" PRId64 " kernel (dilation %" PRId64 ", padding %" PRId64 ")",
                              SH(b1, x), w->d[2], w->d[3], a->dil[i], a->pad[i]);
            out->d[1 + i] = span / a->stride[i] + 1;
        }
        out->d[3] = w->d[0];
        return 0;
    }
    case OP_BATCHNORM:
    case OP_LAYERNORM: {
        if (x->rank < 1) return mc_err(err, "%s: input must have a channel axis", on);
        int64_t c = x->d[x->rank - 1];
        for (int i = 1; i < nin; i++)
            if (!vec_of(in_shape(g, in, i), c))
                return mc_err(err, "%s: parameter %d (%%%s) must be [%" PRId64 "] for input %s, got %s", on, i,
                              g->nodes[in[i]].name, c, SH(b1, x), SH(b2, in_shape(g, in, i)));
        if (!(a->eps > 0) || a->eps > 1) return mc_err(err, "%s: eps must be in (0, 1]", on);
        *out = *x;
        return 0;
    }
    case OP_LINEAR: {
        const Shape *w = in_shape(g, in, 1);
        if (x->rank < 1 || w->rank != 2 || w->d[1] != x->d[x->rank - 1])
            return mc_err(err, "linear: input %s and weight %s do not match (weight must be [N,K] with K = input's last dimension)",
                          SH(b1, x), SH(b2, w));
        if (nin == 3 && !vec_of(in_shape(g, in, 2), w->d[0]))
            return mc_err(err, "linear: bias must be [%" PRId64 "], got %s", w->d[0], SH(b1, in_shape(g, in, 2)));
        *out = *x;
        out->d[x->rank - 1] = w->d[0];
        return 0;
    }
    case OP_MATMUL: {
        const Shape *w = in_shape(g, in, 1);
        if (x->rank < 2 || w->rank != 2 || w->d[0] != x->d[x->rank - 1])
            return mc_err(err, "matmul: %s @ %s: need [...,M,K] @ [K,N]", SH(b1, x), SH(b2, w));
        *out = *x;
        out->d[x->rank - 1] = w->d[1];
        return 0;
    }
    case OP_ADD:
    case OP_MUL:
        if (bcast(x, in_shape(g, in, 1), out))
            return mc_err(err, "%s: shapes %s and %s do not broadcast", on, SH(b1, x), SH(b2, in_shape(g, in, 1)));
        return 0;
    case OP_RELU: case OP_GELU: case OP_SILU: case OP_SOFTPLUS: case OP_EXP: case OP_NEG:
        *out = *x;
        return 0;
    case OP_SCAN: {
        const Shape *dl = in_shape(g, in, 1), *A = in_shape(g, in, 2), *B = in_shape(g, in, 3);
        if (x->rank != 4) return mc_err(err, "selective_scan: u must be [B,H,W,D], got %s", SH(b1, x));
        if (!mc_shape_eq(x, dl)) return mc_err(err, "selective_scan: delta %s must match u %s", SH(b1, dl), SH(b2, x));
        if (A->rank != 2 || A->d[0] != x->d[3] || A->d[1] != 1)
            return mc_err(err, "selective_scan: A must be [%" PRId64 ",1] (d_state 1), got %s", x->d[3], SH(b1, A));
        if (B->rank != 4 || B->d[0] != x->d[0] || B->d[1] != x->d[1] || B->d[2] != x->d[2] || B->d[3] != 1)
            return mc_err(err, "selective_scan: B must be [%" PRId64 ",%" PRId64 ",%" PRId64 ",1], got %s", x->d[0], x->d[1], x->d[2], SH(b1, B));
        *out = *x;
        return 0;
    }
    case OP_STATE_FUSION: {
        if (x->rank != 4) return mc_err(err, "state_fusion: h must be [B,H,W,D], got %s", SH(b1, x));
        for (int i = 1; i <= 3; i++) {
            const Shape *k = in_shape(g, in, i);
            if (k->rank != 4 || k->d[0] != x->d[3] || k->d[1] != 1 || k->d[2] != 3 || k->d[3] != 3)
                return mc_err(err, "state_fusion: kernel %d must be [%" PRId64 ",1,3,3], got %s", i, x->d[3], SH(b1, k));
        }
        if (!vec_of(in_shape(g, in, 4), 3))
            return mc_err(err, "state_fusion: alpha must be [3], got %s", SH(b1, in_shape(g, in, 4)));
        *out = *x;
        return 0;
    }
    case OP_STATE_FUSION25: {
        const Shape *t = in_shape(g, in, 1);
        if (x->rank != 4) return mc_err(err, "state_fusion25: h must be [B,H,W,D], got %s", SH(b1, x));
        if (t->rank != 2 || t->d[0] != x->d[3] || t->d[1] != 25)
            return mc_err(err, "state_fusion25: taps must be [%" PRId64 ",25], got %s", x->d[3], SH(b1, t));
        *out = *x;
        return 0;
    }
    case OP_MEAN_HW:
        if (x->rank != 4) return mc_err(err, "mean_hw: input must be [B,H,W,C], got %s", SH(b1, x));
        out->rank = 2;
        out->d[0] = x->d[0];
        out->d[1] = x->d[3];
        return 0;
    case OP_PERMUTE: {
        int seen[MC_MAX_RANK] = {0};
        out->rank = x->rank;
        for (int i = 0; i < x->rank; i++) {
            int p = a->perm[i];
            if (p < 0 || p >= x->rank || seen[p]) {
                return mc_err(err, "permute: perm is not a permutation of 0..%d for input %s", x->rank - 1, SH(b1, x));
            }
            seen[p] = 1;
            out->d[i] = x->d[p];
        }
        for (int i = x->rank; i < MC_MAX_RANK; i++)
            if (a->perm[i]) return mc_err(err, "permute: perm has more entries than the input's rank %d", x->rank);
        return 0;
    }
    case OP_SLICE: {
        if (x->rank < 1) return mc_err(err, "slice: input must have rank >= 1");
        int64_t c = x->d[x->rank - 1];
        if (a->start < 0 || a->len < 1 || a->start > c || a->len > c - a->start)
            return mc_err(err, "slice: start=%" PRId64 " len=%" PRId64 " is outside the last axis of %s",
                          a->start, a->len, SH(b1, x));
        *out = *x;
        out->d[x->rank - 1] = a->len;
        return 0;
    }
    case OP_ADAPTIVE_AVG_POOL:
    case OP_RESIZE:
        if (x->rank != 4) return mc_err(err, "%s: input must be [B,H,W,C], got %s", on, SH(b1, x));
        if (a->size[0] < 1 || a->size[1] < 1 || a->size[0] > (1 << 20) || a->size[1] > (1 << 20))
            return mc_err(err, "%s: size=[%" PRId64 ",%" PRId64 "] must be in 1..%d", on, a->size[0], a->size[1], 1 << 20);
        if (op == OP_RESIZE && a->align_corners != 0 && a->align_corners != 1)
            return mc_err(err, "%s: align_corners must be 0 or 1, got %" PRId64, on, a->align_corners);
        *out = *x;
        out->d[1] = a->size[0];
        out->d[2] = a->size[1];
        return 0;
    case OP_CONCAT: {
        *out = *x;
        if (x->rank < 1) return mc_err(err, "concat: operands must have a channel axis");
        for (int i = 1; i < nin; i++) {
            const Shape *y = in_shape(g, in, i);
            int same = y->rank == x->rank;
            for (int d = 0; same && d < x->rank - 1; d++) same = y->d[d] == x->d[d];
            if (!same)
                return mc_err(err, "concat: operand %d (%%%s) %s does not match %s but for the last axis", i,
                              g->nodes[in[i]].name, SH(b1, y), SH(b2, x));
            out->d[x->rank - 1] += y->d[x->rank - 1];
        }
        return 0;
    }
    case OP_COUNT:
        break;
    }
    (void)b3;
    return mc_err(err, "unknown op");
}

/* ------------------------------------------------------------ building */

static int
name_ok(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

int
mc_graph_add(Graph *g, OpKind op, const int *in, int nin, const Attrs *attrs, const char *name,
             McErr *err)
{
    Attrs a = attrs ? *attrs : mc_attrs_default();
    DType dt;
    Shape sh;
    memset(&sh, 0, sizeof sh);
    if ((unsigned)op >= OP_COUNT) return mc_err(err, "unknown op %d", (int)op);
    if (nin < 0 || nin > MC_MAX_INPUTS) return mc_err(err, "%s: too many operands", mc_op_info[op].name);
    if (name && !name_ok(name))
        return mc_err(err, "bad node name '%s' (use letters, digits, '_', '.', '-')", name);
    if (mc_infer_shape(g, op, in, nin, &a, &dt, &sh, err)) {
        if (name) mc_err_prefix(err, "%%%s", name);
        return -1;
    }
    const char *base = name ? name : mc_op_info[op].name;
    const char *nm = base;
    if (mc_graph_find(g, nm) >= 0) {
        for (int k = 1;; k++) {
            nm = mc_arena_printf(&g->arena, "%s.%d", base, k);
            if (mc_graph_find(g, nm) < 0) break;
        }
    } else {
        nm = mc_arena_strdup(&g->arena, nm);
    }
    if (g->nnodes == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        g->nodes = realloc(g->nodes, sizeof(Node) * (size_t)g->cap);
        if (!g->nodes) mc_die("out of memory");
    }
    Node *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->id = g->nnodes;
    n->op = op;
    n->name = nm;
    n->nin = nin;
    for (int i = 0; i < nin; i++) n->in[i] = in[i];
    if (!(mc_op_info[op].attrs & A_TYPE)) {
        a.type = 0;
        memset(&a.shape, 0, sizeof a.shape);
    }
    n->attrs = a;
    n->dtype = dt;
    n->shape = sh;
    g->nnodes++;
    hash_insert(g, n->id);
    return n->id;
}

int
mc_graph_input(Graph *g, const char *name, DType t, const Shape *s, McErr *err)
{
    Attrs a;
    memset(&a, 0, sizeof a);
    a.type = t;
    a.shape = *s;
    return mc_graph_add(g, OP_INPUT, NULL, 0, &a, name, err);
}

int
mc_graph_weight(Graph *g, const char *key, DType t, const Shape *s, McErr *err)
{
    Attrs a;
    memset(&a, 0, sizeof a);
    a.type = t;
    a.shape = *s;
    return mc_graph_add(g, OP_WEIGHT, NULL, 0, &a, key, err);
}

void
mc_graph_add_output(Graph *g, int id)
{
    if (g->noutputs == g->outcap) {
        g->outcap = g->outcap ? g->outcap * 2 : 4;
        g->outputs = realloc(g->outputs, sizeof(int) * (size_t)g->outcap);
        if (!g->outputs) mc_die("out of memory");
    }
    g->outputs[g->noutputs++] = id;
}

/* ------------------------------------------------------------ verifier */

int
mc_graph_verify(const Graph *g, McErr *err)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->id != i) return mc_err(err, "verify: node %d has id %d", i, n->id);
        if (!n->name || !name_ok(n->name)) return mc_err(err, "verify: node %d has a bad name", i);
        if (mc_graph_find(g, n->name) != i) return mc_err(err, "verify: name %%%s is not unique", n->name);
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] < 0 || n->in[k] >= i)
                return mc_err(err, "verify: %%%s: operand %d refers to a later or missing node", n->name, k);
        DType dt;
        Shape sh;
        memset(&sh, 0, sizeof sh);
        if (mc_infer_shape(g, n->op, n->in, n->nin, &n->attrs, &dt, &sh, err)) {
            mc_err_prefix(err, "verify: %%%s", n->name);
            return -1;
        }
        if (dt != n->dtype || !mc_shape_eq(&sh, &n->shape)) {
            char b1[128], b2[128];
            return mc_err(err, "verify: %%%s: recorded type %s%s differs from inferred %s%s", n->name,
                          mc_dtype_name(n->dtype), SH(b1, &n->shape), mc_dtype_name(dt), SH(b2, &sh));
        }
    }
    if (g->noutputs < 1) return mc_err(err, "verify: graph has no outputs");
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] < 0 || g->outputs[i] >= g->nnodes) return mc_err(err, "verify: output %d is not a node", i);
    return 0;
}

/* ------------------------------------------------------------ editing */

void
mc_graph_replace_uses(Graph *g, int from, int to)
{
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] == from && i != to) g->nodes[i].in[k] = to;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == from) g->outputs[i] = to;
}

void
mc_graph_use_counts(const Graph *g, int *users)
{
    memset(users, 0, sizeof(int) * (size_t)g->nnodes);
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nin; k++) users[g->nodes[i].in[k]]++;
    for (int i = 0; i < g->noutputs; i++) users[g->outputs[i]]++;
}

/* Emits node v after all its operands (depth-first, operands in order). */
static void
emit_topo(const Graph *g, int v, int *state, int *order, int *n)
{
    /* iterative DFS: state 0 = unseen, 1 = on stack, 2 = emitted */
    int cap = 64, sp = 0;
    int *stack = malloc(sizeof(int) * (size_t)cap);
    stack[sp++] = v;
    while (sp) {
        int u = stack[sp - 1];
        if (state[u] == 2) { sp--; continue; }
        state[u] = 1;
        int pushed = 0;
        for (int k = 0; k < g->nodes[u].nin; k++) {
            int w = g->nodes[u].in[k];
            if (state[w] == 0) {
                if (sp == cap) stack = realloc(stack, sizeof(int) * (size_t)(cap *= 2));
                stack[sp++] = w;
                pushed = 1;
                break;
            }
            if (state[w] == 1) mc_die("graph has a cycle through %%%s", g->nodes[w].name);
        }
        if (!pushed) {
            state[u] = 2;
            order[(*n)++] = u;
            sp--;
        }
    }
    free(stack);
}

int
mc_graph_compact(Graph *g)
{
    int n = g->nnodes;
    int *live = calloc((size_t)n, sizeof(int));
    /* liveness: reverse reachability from outputs; inputs stay (they are the
     * graph's signature).  Iterate to a fixed point since ids may be out of order. */
    for (int i = 0; i < g->noutputs; i++) live[g->outputs[i]] = 1;
    for (int i = 0; i < n; i++)
        if (g->nodes[i].op == OP_INPUT) live[i] = 1;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = n - 1; i >= 0; i--)
            if (live[i])
                for (int k = 0; k < g->nodes[i].nin; k++)
                    if (!live[g->nodes[i].in[k]]) { live[g->nodes[i].in[k]] = 1; changed = 1; }
    }
    /* order: walk original nodes in id order; emit each live one after its operands */
    int *state = calloc((size_t)n, sizeof(int)), *order = malloc(sizeof(int) * (size_t)n), m = 0;
    for (int i = 0; i < n; i++)
        if (live[i] && state[i] != 2) emit_topo(g, i, state, order, &m);
    int *remap = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) remap[i] = -1;
    for (int j = 0; j < m; j++) remap[order[j]] = j;
    Node *nodes = malloc(sizeof(Node) * (size_t)(m ? m : 1));
    for (int j = 0; j < m; j++) {
        nodes[j] = g->nodes[order[j]];
        nodes[j].id = j;
        for (int k = 0; k < nodes[j].nin; k++) nodes[j].in[k] = remap[nodes[j].in[k]];
    }
    for (int i = 0; i < g->noutputs; i++) g->outputs[i] = remap[g->outputs[i]];
    free(g->nodes);
    g->nodes = nodes;
    g->cap = m ? m : 1;
    g->nnodes = m;
    free(g->hash);
    g->hash = NULL;
    g->hashcap = 0;
    if (m) hash_insert(g, m - 1);
    free(live);
    free(state);
    free(order);
    free(remap);
    return n - m;
}

void
mc_graph_rename(Graph *g, int id, const char *name)
{
    g->nodes[id].name = name;
    free(g->hash);
    g->hash = NULL;
    g->hashcap = 0;
    if (g->nnodes) hash_insert(g, g->nnodes - 1);
}
