/* passes/concat_in_place.c -- the kernel pass concat-in-place: a concat
 * without copies.
 *
 * Lowering (passes/lower.c) makes a concat one buffer C and, per operand,
 * an eltwise copy kernel `out = load 0` writing the operand into its
 * channel slice of C.  Requires: a verified, unplanned program.  For each
 * such copy (its out a channel slice: C's strides, channel stride 1) whose
 * operand is a whole contiguous scratch buffer S that
 *   - exactly one kernel W writes, through the whole contiguous S, W
 *     running before the copy, inside no other kernel and hosting none,
 *   - no kernel but the copy reads,
 *   - neither W nor the copy is in a per-image segment,
 * and whose target writes W's output through any strided view (the
 * target's predicate), W writes the slice itself: W.out = the copy's out
 * (S's shape, so W's epilogue operands stay as they are), the concat's
 * node joins W's nodes, C lives from W on, and the copy kernel and S go
 * (mc_kprogram_remove renumbers the rest).  An operand that is the input,
 * a weight, a view (a slice, a permute), another concat, read by anything
 * else or used twice by the concat stays a copy.  Invalidates: kernel and
 * buffer numbers.
 */
#include "concat_in_place.h"
#include <stdlib.h>
#include <string.h>

/* v is the whole buffer b, contiguous, in b's shape */
static int
whole(const KProgram *p, const View *v)
{
    const Buffer *b = &p->bufs[v->buf];
    if (v->offset || v->rank != b->shape.rank) return 0;
    int64_t st = 1;
    for (int i = v->rank - 1; i >= 0; i--) {
        if (v->shape[i] != b->shape.d[i] || v->stride[i] != st) return 0;
        st *= v->shape[i];
    }
    return 1;
}

/* v is a channel slice of its buffer b: b's shape and contiguous strides
 * but for fewer channels, from channel offset on (the views lowering gives
 * a concat's copies; a producer writing one keeps unit channel stride) */
static int
channel_slice(const KProgram *p, const View *v)
{
    const Buffer *b = &p->bufs[v->buf];
    int r = v->rank;
    if (r < 1 || r != b->shape.rank || v->offset < 0 || v->offset + v->shape[r - 1] > b->shape.d[r - 1]) return 0;
    int64_t st = 1;
    for (int i = r - 1; i >= 0; i--) {
        if (v->stride[i] != st || (i < r - 1 && v->shape[i] != b->shape.d[i])) return 0;
        st *= b->shape.d[i];
    }
    return 1;
}

/* kernel k is a plain copy: eltwise, `load 0` of its one operand */
static int
is_copy(const Kernel *k)
{
    return k->kind == KK_ELTWISE && k->nargs == 1 && k->nexpr == 1 && k->expr[0].op == E_LOAD && k->expr[0].arg == 0;
}

/* a and b have one shape */
static int
congruent(const View *a, const View *b)
{
    return a->rank == b->rank && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->rank);
}

/* Per buffer: how many kernels read it, how many write it, the last
 * writer; per kernel: whether another runs inside it. */
typedef struct Uses {
    int *readers, *writers, *writer;
    unsigned char *hosts;
} Uses;

static int
count_uses(const KProgram *p, Uses *u)
{
    size_t nb = (size_t)(p->nbufs ? p->nbufs : 1);
    u->readers = calloc(nb, sizeof(int));
    u->writers = calloc(nb, sizeof(int));
    u->writer = calloc(nb, sizeof(int));
    u->hosts = calloc((size_t)(p->nk ? p->nk : 1), 1);
    if (!u->readers || !u->writers || !u->writer || !u->hosts) return -1;
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        for (int j = 0; j < k->nin + k->nargs; j++) {
            int b = (j < k->nin ? &k->in[j] : &k->args[j - k->nin])->buf;
            int again = 0; /* a kernel reading b twice reads it once */
            for (int q = 0; q < j && !again; q++) again = (q < k->nin ? &k->in[q] : &k->args[q - k->nin])->buf == b;
            u->readers[b] += !again;
        }
        u->writers[k->out.buf]++;
        u->writer[k->out.buf] = i;
        if (k->host >= 0 && k->host < p->nk) u->hosts[k->host] = 1;
    }
    return 0;
}

static void
free_uses(Uses *u)
{
    free(u->readers);
    free(u->writers);
    free(u->writer);
    free(u->hosts);
}

/* the kernel writing S that copy i can replace, or -1 */
static int
producer(const KProgram *p, const Uses *u, int i, McStridedOutOk ok)
{
    const Kernel *k = &p->k[i];
    if (!is_copy(k) || k->host >= 0 || u->hosts[i] || mc_kprogram_segment_of(p, i) >= 0) return -1;
    int s = k->args[0].buf;
    const Buffer *S = &p->bufs[s];
    if (S->kind != BUF_SCRATCH || s == k->out.buf || !whole(p, &k->args[0]) || !congruent(&k->args[0], &k->out) ||
        !channel_slice(p, &k->out))
        return -1;
    if (u->readers[s] != 1 || u->writers[s] != 1) return -1;
    int w = u->writer[s];
    const Kernel *W = &p->k[w];
    if (w >= i || W->host >= 0 || u->hosts[w] || mc_kprogram_segment_of(p, w) >= 0) return -1;
    if (!whole(p, &W->out) || !congruent(&W->out, &k->out)) return -1;
    return ok && ok(p, W) ? w : -1;
}

/* what the pass changed in a producer, to undo when the removal fails */
typedef struct Undo {
    int w, nnodes;
    View out;
} Undo;

bool
mc_concat_in_place(KProgram *p, KPassCtx *ctx, McStridedOutOk strided_out_ok)
{
    Uses u;
    memset(&u, 0, sizeof u);
    size_t nk = (size_t)(p->nk ? p->nk : 1);
    unsigned char *kdead = calloc(nk, 1), *bdead = calloc((size_t)(p->nbufs ? p->nbufs : 1), 1);
    Undo *undo = calloc(nk, sizeof *undo);
    int n = 0;
    if (kdead && bdead && undo && !count_uses(p, &u)) {
        for (int i = 0; i < p->nk; i++) {
            int w = producer(p, &u, i, strided_out_ok);
            if (w < 0) continue;
            Kernel *k = &p->k[i], *W = &p->k[w];
            Buffer *C = &p->bufs[k->out.buf];
            undo[n] = (Undo){w, W->nnodes, W->out};
            bdead[W->out.buf] = 1;
            kdead[i] = 1;
            W->out = k->out;
            if (C->first < 0 || C->first > w) C->first = w;
            for (int j = 0; j < k->nnodes && W->nnodes < MC_MAX_FUSED; j++) { /* the concat's node */
                W->node_names[W->nnodes] = k->node_names[j];
                W->nodes[W->nnodes++] = k->nodes[j];
            }
            n++;
        }
        /* nothing kept reads a removed operand or runs inside a copy: only
         * out of memory fails, and then every producer writes its own
         * buffer again (a concat's earlier start of life is harmless) */
        if (n && mc_kprogram_remove(p, kdead, bdead))
            for (; n > 0; n--) {
                p->k[undo[n - 1].w].out = undo[n - 1].out;
                p->k[undo[n - 1].w].nnodes = undo[n - 1].nnodes;
            }
    }
    free_uses(&u);
    free(kdead);
    free(bdead);
    free(undo);
    ctx->changes += n;
    return n > 0;
}
