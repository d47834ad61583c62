/* ir/kverify.c -- the kernel IR verifier (mc_kprogram_verify, ir/kernel.h).
 *
 * Run by the pipeline after lowering and after every kernel pass with
 * --verify-each, and always on a program parsed from text (a hand-edited
 * .kir must not reach a backend with a view outside its buffer).  Checks,
 * in order: the buffers (sizes, weight offsets, planned arena bounds), the
 * one input and the outputs (every output buffer listed once), the
 * segments, each kernel (operand counts and roles from kernels.def, views
 * inside their buffers, shapes per kind, the epilogue), the lifetimes (a
 * scratch buffer is read only after a kernel wrote it, within its
 * first..last), the fusions, and once planned, that no two scratch buffers
 * alive at the same kernel share bytes. */
#include "kernel.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int64_t
align64(int64_t v)
{
    return (v + 63) & ~(int64_t)63;
}

static int
kerr(McErr *err, const KProgram *p, int i, const char *what)
{
    const Kernel *k = &p->k[i];
    return mc_err(err, "kernel IR: kernel k%d (%s \"%s\"): %s", i, mc_kernel_kind_name(k->kind), k->name ? k->name : "?",
                  what);
}

/* the view lies inside its buffer: 0, or -1 with msg */
static int
view_ok(const KProgram *p, const View *v, const char *role, char *msg, size_t n)
{
    if (v->buf < 0 || v->buf >= p->nbufs) {
        snprintf(msg, n, "operand %s names buffer b%d, which does not exist", role, v->buf);
        return -1;
    }
    if (v->rank < 0 || v->rank > MC_MAX_RANK) {
        snprintf(msg, n, "operand %s has rank %d", role, v->rank);
        return -1;
    }
    const Buffer *b = &p->bufs[v->buf];
    int64_t numel = b->bytes / 4, hi = v->offset;
    if (v->offset < 0) {
        snprintf(msg, n, "operand %s has a negative offset", role);
        return -1;
    }
    for (int d = 0; d < v->rank; d++) {
        if (v->shape[d] == 0) return 0; /* empty: reads nothing */
        if (v->shape[d] < 0 || v->stride[d] < 0 || (v->stride[d] && v->shape[d] - 1 > (INT64_MAX / 4 - hi) / v->stride[d])) {
            snprintf(msg, n, "operand %s has a bad dimension %d (%" PRId64 ":%" PRId64 ")", role, d, v->shape[d],
                     v->stride[d]);
            return -1;
        }
        hi += (v->shape[d] - 1) * v->stride[d];
    }
    if (hi >= numel) {
        snprintf(msg, n, "operand %s reaches element %" PRId64 " of b%d, which has %" PRId64, role, hi, v->buf, numel);
        return -1;
    }
    return 0;
}

static int64_t
vnumel(const View *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->rank; d++) n *= v->shape[d];
    return n;
}

static int
same_shape(const View *a, const View *b)
{
    if (a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

/* the shapes of kernel k's anchor operands fit its kind: 0, or -1 with msg */
static int
shapes_ok(const Kernel *k, char *msg, size_t n)
{
    const View *x = &k->in[0], *w = &k->in[1], *o = &k->out;
    switch (k->kind) {
    case KK_GEMM:
        if (x->rank != 2 || w->rank != 2 || x->shape[1] != w->shape[1])
            return snprintf(msg, n, "gemm operands a [M,K] and w [N,K] do not agree"), -1;
        if (k->M != x->shape[0] || k->N != w->shape[0] || k->K != x->shape[1])
            return snprintf(msg, n, "sizes M=%" PRId64 " N=%" PRId64 " K=%" PRId64 " do not match the operands", k->M, k->N,
                            k->K), -1;
        if (k->nin > 2 && vnumel(&k->in[2]) != k->N) return snprintf(msg, n, "bias does not have N elements"), -1;
        if (vnumel(o) != k->M * k->N) return snprintf(msg, n, "out does not have M*N elements"), -1;
        return 0;
    case KK_CONV:
    case KK_DWCONV: {
        if (x->rank != 4 || w->rank != 4 || o->rank != 4) return snprintf(msg, n, "convolution operands must be rank 4"), -1;
        const Attrs *a = &k->attrs;
        for (int d = 0; d < 2; d++) {
            if (a->stride[d] < 1 || a->dil[d] < 1 || a->pad[d] < 0) return snprintf(msg, n, "bad stride/pad/dil"), -1;
            int64_t span = a->dil[d] * (w->shape[2 + d] - 1) + 1, in = x->shape[1 + d] + 2 * a->pad[d];
            if (in < span || (in - span) / a->stride[d] + 1 != o->shape[1 + d])
                return snprintf(msg, n, "out's spatial size does not follow from x, w and stride/pad/dil"), -1;
        }
        if (x->shape[0] != o->shape[0]) return snprintf(msg, n, "x and out have different batches"), -1;
        if (k->kind == KK_CONV && (w->shape[1] != x->shape[3] || w->shape[0] != o->shape[3]))
            return snprintf(msg, n, "w [Co,Ci,kh,kw] does not match x's and out's channels"), -1;
        if (k->kind == KK_DWCONV && (w->shape[1] != 1 || w->shape[0] != x->shape[3] || o->shape[3] != x->shape[3]))
            return snprintf(msg, n, "w [C,1,kh,kw] does not match x's and out's channels"), -1;
        if (k->nin > 2 && vnumel(&k->in[2]) != o->shape[3]) return snprintf(msg, n, "bias does not have Co elements"), -1;
        return 0;
    }
    case KK_SCAN:
        if (o->rank != 4 || !same_shape(x, o) || !same_shape(&k->in[1], o))
            return snprintf(msg, n, "scan: u, dt and out must have one shape [B,H,W,D]"), -1;
        if (vnumel(&k->in[2]) != o->shape[3]) return snprintf(msg, n, "scan: A does not have D elements"), -1;
        return 0;
    case KK_FUSION25:
        if (o->rank != 4 || !same_shape(x, o) || w->rank != 2 || w->shape[0] != o->shape[3] || w->shape[1] != 25)
            return snprintf(msg, n, "fusion25: h and out [B,H,W,D], taps [D,25]"), -1;
        return 0;
    case KK_LAYERNORM:
        if (o->rank < 1 || !same_shape(x, o) || vnumel(w) != o->shape[o->rank - 1] ||
            vnumel(&k->in[2]) != o->shape[o->rank - 1])
            return snprintf(msg, n, "layernorm: x and out of one shape, gamma and beta of its last size"), -1;
        return 0;
    case KK_MEAN_HW:
        if (x->rank != 4 || vnumel(o) != x->shape[0] * x->shape[3]) return snprintf(msg, n, "mean_hw: x [B,H,W,C], out B*C"), -1;
        return 0;
    case KK_RESIZE:
    case KK_AVGPOOL:
        if (x->rank != 4 || o->rank != 4 || o->shape[0] != x->shape[0] || o->shape[3] != x->shape[3])
            return snprintf(msg, n, "%s: x [B,H,W,C] and out [B,h,w,C]", mc_kernel_kind_name(k->kind)), -1;
        if (k->kind == KK_RESIZE && (k->attrs.align_corners < 0 || k->attrs.align_corners > 1))
            return snprintf(msg, n, "resize: align_corners must be 0 or 1"), -1;
        return 0;
    default:
        return 0;
    }
}

static int
kernel_ok(const KProgram *p, int i, McErr *err)
{
    const Kernel *k = &p->k[i];
    char msg[400];
    if ((unsigned)k->kind >= KK_COUNT) return kerr(err, p, i, "unknown kind");
    const KernelInfo *ki = &mc_kernel_info[k->kind];
    if (k->nin < ki->min_in || k->nin > ki->max_in) {
        snprintf(msg, sizeof msg, "has %d operands, a %s kernel takes %d to %d", k->nin, ki->name, ki->min_in, ki->max_in);
        return kerr(err, p, i, msg);
    }
    if (k->nnodes < 0 || k->nnodes > MC_MAX_FUSED || k->nargs < 0 || k->nargs > MC_MAX_ARGS || k->nexpr < 0 ||
        k->nexpr > MC_MAX_EXPR)
        return kerr(err, p, i, "too many nodes, operands or epilogue instructions");
    for (int j = 0; j < k->nin; j++) {
        if (view_ok(p, &k->in[j], ki->oper[j], msg, sizeof msg)) return kerr(err, p, i, msg);
        if (mc_kernel_role(k->kind, j) == R_WEIGHT && p->bufs[k->in[j].buf].kind != BUF_WEIGHT) {
            snprintf(msg, sizeof msg, "operand %s must be a weight, b%d is %s", ki->oper[j], k->in[j].buf,
                     mc_buf_kind_name(p->bufs[k->in[j].buf].kind));
            return kerr(err, p, i, msg);
        }
    }
    if (view_ok(p, &k->out, "out", msg, sizeof msg)) return kerr(err, p, i, msg);
    BufKind ok = p->bufs[k->out.buf].kind;
    if (ok != BUF_SCRATCH && ok != BUF_OUTPUT) {
        snprintf(msg, sizeof msg, "writes b%d, a %s buffer", k->out.buf, mc_buf_kind_name(ok));
        return kerr(err, p, i, msg);
    }
    for (int j = 0; j < k->nargs; j++) {
        char role[16];
        snprintf(role, sizeof role, "arg %d", j);
        if (view_ok(p, &k->args[j], role, msg, sizeof msg)) return kerr(err, p, i, msg);
        if (!same_shape(&k->args[j], &k->out)) {
            snprintf(msg, sizeof msg, "epilogue operand %d does not have out's shape (broadcast with stride 0)", j);
            return kerr(err, p, i, msg);
        }
    }
    if (shapes_ok(k, msg, sizeof msg)) return kerr(err, p, i, msg);
    if (k->kind == KK_ELTWISE && !k->nexpr) return kerr(err, p, i, "an eltwise kernel needs an epilogue");
    for (int j = 0; j < k->nexpr; j++) {
        const EInstr *e = &k->expr[j];
        int bin = e->op >= E_ADD && e->op <= E_DIV, un = e->op > E_DIV && e->op <= E_SOFTPLUS;
        if ((unsigned)e->op > E_SOFTPLUS) snprintf(msg, sizeof msg, "epilogue instruction %d is unknown", j);
        else if (e->op == E_ACC && k->kind == KK_ELTWISE) snprintf(msg, sizeof msg, "an eltwise kernel has no acc (instruction %d)", j);
        else if (e->op == E_LOAD && (e->arg < 0 || e->arg >= k->nargs))
            snprintf(msg, sizeof msg, "instruction %d loads operand %d of %d", j, e->arg, k->nargs);
        else if ((bin || un) && (e->a < 0 || e->a >= j || (bin && (e->b < 0 || e->b >= j))))
            snprintf(msg, sizeof msg, "instruction %d uses a later or missing instruction", j);
        else continue;
        return kerr(err, p, i, msg);
    }
    if (k->host >= 0) {
        if (k->host >= i || i - k->host > 2 || k->fuse == FUSE_NONE || (unsigned)k->fuse >= FUSE_COUNT)
            return kerr(err, p, i, "runs inside a kernel that is not one of the two before it");
        if (p->k[k->host].host >= 0) return kerr(err, p, i, "runs inside a kernel that itself runs inside another");
    } else if (k->host != -1 || k->fuse != FUSE_NONE) {
        return kerr(err, p, i, "has a fusion without a host kernel");
    }
    return 0;
}

/* scratch buffers a and b share bytes */
static int
overlap(const Buffer *a, const Buffer *b)
{
    return a->offset < b->offset + align64(b->bytes) && b->offset < a->offset + align64(a->bytes);
}

int
mc_kprogram_on_chip(const KProgram *p, int i)
{
    const Kernel *k = &p->k[i];
    if (k->host < 0 || p->bufs[k->out.buf].kind != BUF_SCRATCH) return 0;
    for (int j = 0; j < p->nk; j++) {
        const Kernel *o = &p->k[j];
        for (int a = 0; a < o->nin + o->nargs; a++)
            if ((a < o->nin ? &o->in[a] : &o->args[a - o->nin])->buf == k->out.buf && o->host != k->host) return 0;
    }
    return 1;
}

/* reads before writes, and the lifetimes: kernel indices in first..last */
static int
lifetimes_ok(const KProgram *p, McErr *err)
{
    int *writer = malloc(sizeof(int) * (size_t)(p->nbufs ? p->nbufs : 1));
    if (!writer) return mc_err(err, "kernel IR: out of memory");
    for (int b = 0; b < p->nbufs; b++) writer[b] = -1;
    int rc = 0;
    for (int i = 0; i < p->nk && !rc; i++) {
        const Kernel *k = &p->k[i];
        for (int j = 0; j < k->nin + k->nargs && !rc; j++) {
            const View *v = j < k->nin ? &k->in[j] : &k->args[j - k->nin];
            const Buffer *b = &p->bufs[v->buf];
            char msg[300];
            if (b->kind == BUF_OUTPUT || b->kind == BUF_SCRATCH) {
                if (writer[v->buf] < 0) snprintf(msg, sizeof msg, "reads b%d (\"%s\") before any kernel writes it", v->buf, b->name);
                else if (b->kind == BUF_SCRATCH && (i < b->first || i > b->last))
                    snprintf(msg, sizeof msg, "reads b%d outside its lifetime %d..%d", v->buf, b->first, b->last);
                else continue;
                rc = kerr(err, p, i, msg);
            }
        }
        const Buffer *o = &p->bufs[k->out.buf];
        int w = k->host >= 0 ? k->host : i; /* a fused kernel's output is written by its host */
        if (!rc && o->kind == BUF_SCRATCH && !mc_kprogram_on_chip(p, i) && (w < o->first || i > o->last)) {
            char msg[200];
            snprintf(msg, sizeof msg, "writes b%d outside its lifetime %d..%d", k->out.buf, o->first, o->last);
            rc = kerr(err, p, i, msg);
        }
        if (writer[k->out.buf] < 0) writer[k->out.buf] = i;
    }
    for (int j = 0; j < p->noutputs && !rc; j++)
        if (writer[p->output_bufs[j]] < 0)
            rc = mc_err(err, "kernel IR: no kernel writes the output buffer b%d", p->output_bufs[j]);
    free(writer);
    return rc;
}

/* planned: no two scratch buffers alive at one kernel share bytes, and a
 * fused kernel's output shares none with its host's operands */
static int
plan_ok(const KProgram *p, McErr *err)
{
    for (int i = 0; i < p->nbufs; i++) {
        const Buffer *a = &p->bufs[i];
        if (a->kind != BUF_SCRATCH || a->first < 0) continue;
        for (int j = i + 1; j < p->nbufs; j++) {
            const Buffer *b = &p->bufs[j];
            if (b->kind != BUF_SCRATCH || b->first < 0 || a->last < b->first || b->last < a->first) continue;
            if (overlap(a, b))
                return mc_err(err, "kernel IR: scratch buffers b%d and b%d are alive together (kernels %d..%d and %d..%d) "
                              "but share arena bytes", i, j, a->first, a->last, b->first, b->last);
        }
    }
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        if (k->host < 0 || mc_kprogram_on_chip(p, i)) continue;
        const Buffer *o = &p->bufs[k->out.buf];
        for (int h = k->host; h < i; h++)
            for (int j = 0; j < p->k[h].nin; j++) {
                const Buffer *b = &p->bufs[p->k[h].in[j].buf];
                if (b == o || (o->kind == BUF_SCRATCH && b->kind == BUF_SCRATCH && overlap(o, b)))
                    return kerr(err, p, i, "runs inside its host but its output shares bytes with the host's operands");
            }
    }
    return 0;
}

/* output_bufs: every output buffer once, nothing else */
static int
outputs_ok(const KProgram *p, int nout, McErr *err)
{
    if (p->noutputs != nout)
        return mc_err(err, "kernel IR: the outputs record lists %d buffers, the program has %d output buffers",
                      p->noutputs, nout);
    for (int j = 0; j < p->noutputs; j++) {
        int b = p->output_bufs[j];
        if (b < 0 || b >= p->nbufs || p->bufs[b].kind != BUF_OUTPUT)
            return mc_err(err, "kernel IR: output %d is b%d, which is not an output buffer", j, b);
        for (int i = 0; i < j; i++)
            if (p->output_bufs[i] == b) return mc_err(err, "kernel IR: b%d is listed twice as an output", b);
    }
    return 0;
}

int
mc_kprogram_verify(const KProgram *p, McErr *err)
{
    int nin = 0, nout = 0;
    for (int i = 0; i < p->nbufs; i++) {
        const Buffer *b = &p->bufs[i];
        int64_t numel = mc_shape_numel(&b->shape);
        if (b->id != i) return mc_err(err, "kernel IR: buffer %d has id %d", i, b->id);
        if ((unsigned)b->kind > BUF_SCRATCH || b->shape.rank < 0 || b->shape.rank > MC_MAX_RANK || numel < 0 || b->bytes != numel * 4)
            return mc_err(err, "kernel IR: buffer b%d: bad kind, shape or size", i);
        nin += b->kind == BUF_INPUT;
        nout += b->kind == BUF_OUTPUT;
        if (b->first < -1 || b->last < -1 || b->first >= p->nk || b->last >= p->nk || (b->first >= 0 && b->last < b->first))
            return mc_err(err, "kernel IR: buffer b%d: lifetime %d..%d is not inside the %d kernels", i, b->first, b->last, p->nk);
        if (b->kind == BUF_WEIGHT && (b->offset < 0 || b->offset % 64 || b->offset > p->weights_bytes - b->bytes))
            return mc_err(err, "kernel IR: weight b%d at %" PRId64 " (+%" PRId64 " bytes) is not 64-aligned inside the %" PRId64
                          "-byte weights blob", i, b->offset, b->bytes, p->weights_bytes);
        if (b->kind == BUF_SCRATCH && p->planned && (b->offset < 0 || b->offset % 64 || b->offset > p->scratch_bytes - b->bytes))
            return mc_err(err, "kernel IR: scratch b%d at %" PRId64 " (+%" PRId64 " bytes) is not 64-aligned inside the %" PRId64
                          "-byte arena", i, b->offset, b->bytes, p->scratch_bytes);
        if (b->image_bytes < 0 || b->image_bytes > b->bytes)
            return mc_err(err, "kernel IR: buffer b%d: image+%" PRId64 " is larger than the buffer", i, b->image_bytes);
        if (b->group_bytes < 0 ||
            (b->group_bytes && (b->kind != BUF_SCRATCH || b->image_bytes || b->group_bytes % 64 || b->group_bytes < b->bytes ||
                                !p->nsegs || b->first < p->segs[0].k0 || b->last >= p->segs[0].k1 ||
                                (p->planned && b->offset + (p->segs[0].groups - 1) * b->group_bytes + b->bytes > p->scratch_bytes))))
            return mc_err(err, "kernel IR: buffer b%d: group+%" PRId64 " is not a 64-byte multiple stride of copies of a "
                          "scratch buffer of the segment, inside the arena", i, b->group_bytes);
    }
    if (nin != 1 || nout < 1 || nout > MC_MAX_OUTPUTS || p->input_buf < 0 || p->input_buf >= p->nbufs ||
        p->bufs[p->input_buf].kind != BUF_INPUT)
        return mc_err(err, "kernel IR: a program has exactly one input buffer and 1 to %d output buffers (has %d and %d)",
                      MC_MAX_OUTPUTS, nin, nout);
    if (outputs_ok(p, nout, err)) return -1;
    for (int s = 0; s < p->nsegs; s++) {
        const Segment *g = &p->segs[s];
        if (g->k0 < (s ? p->segs[s - 1].k1 : 0) || g->k1 <= g->k0 || g->k1 > p->nk || g->images < 1)
            return mc_err(err, "kernel IR: segment s%d (k%d..k%d) is empty, out of order or past the kernels", s, g->k0, g->k1 - 1);
        if (g->groups < 0 || g->groups > g->images)
            return mc_err(err, "kernel IR: segment s%d: groups %" PRId64 " is not 1 to its %" PRId64 " images", s, g->groups,
                          g->images);
    }
    for (int i = 0; i < p->nk; i++)
        if (kernel_ok(p, i, err)) return -1;
    if (lifetimes_ok(p, err)) return -1;
    return p->planned ? plan_ok(p, err) : 0;
}
