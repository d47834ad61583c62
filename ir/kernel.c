/* ir/kernel.c -- kernel IR names, printer (readable loop nests) and free. */
#include "kernel.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_names[] = {"gemm", "conv", "dwconv", "scan", "fusion25", "layernorm", "mean_hw", "eltwise"};
static const char *eop_names[] = {"acc", "load", "const", "add", "sub", "mul", "div", "neg",
                                  "exp", "sqrt", "relu", "gelu", "silu", "softplus"};
static const char *buf_kinds[] = {"input", "output", "weight", "scratch"};

const char *
mc_kernel_kind_name(KernelKind k)
{
    return (unsigned)k < sizeof kind_names / sizeof *kind_names ? kind_names[k] : "?";
}

const char *
mc_eop_name(EOp op)
{
    return (unsigned)op < sizeof eop_names / sizeof *eop_names ? eop_names[op] : "?";
}

void
mc_kprogram_free(KProgram *p)
{
    free(p->bufs);
    free(p->k);
    free(p->segs);
    memset(p, 0, sizeof *p);
}

int
mc_kprogram_copy(const KProgram *src, KProgram *dst)
{
    *dst = *src;
    dst->bufs = malloc(sizeof(Buffer) * (size_t)(src->nbufs ? src->nbufs : 1));
    dst->k = malloc(sizeof(Kernel) * (size_t)(src->nk ? src->nk : 1));
    dst->segs = src->nsegs ? malloc(sizeof(Segment) * (size_t)src->nsegs) : NULL;
    if (!dst->bufs || !dst->k || (src->nsegs && !dst->segs)) {
        free(dst->bufs);
        free(dst->k);
        free(dst->segs);
        memset(dst, 0, sizeof *dst);
        return -1;
    }
    if (src->nbufs) memcpy(dst->bufs, src->bufs, sizeof(Buffer) * (size_t)src->nbufs);
    if (src->nk) memcpy(dst->k, src->k, sizeof(Kernel) * (size_t)src->nk);
    if (src->nsegs) memcpy(dst->segs, src->segs, sizeof(Segment) * (size_t)src->nsegs);
    return 0;
}

int
mc_kprogram_segment_of(const KProgram *p, int k)
{
    for (int s = 0; s < p->nsegs; s++)
        if (k >= p->segs[s].k0 && k < p->segs[s].k1) return s;
    return -1;
}

/* "b3" for a contiguous full view, else "b3<shape/strides+off>" */
static void
view_str(const KProgram *p, const View *v, char *s, size_t n)
{
    const Buffer *b = &p->bufs[v->buf];
    int contiguous = v->offset == 0 && v->rank == b->shape.rank;
    int64_t st = 1;
    for (int i = v->rank - 1; i >= 0 && contiguous; i--) {
        contiguous &= v->shape[i] == b->shape.d[i] && v->stride[i] == st;
        st *= v->shape[i];
    }
    size_t k = (size_t)snprintf(s, n, "b%d", v->buf);
    if (contiguous || k >= n) return;
    k += (size_t)snprintf(s + k, n - k, "<");
    for (int i = 0; i < v->rank && k < n; i++)
        k += (size_t)snprintf(s + k, n - k, "%s%" PRId64 ":%" PRId64, i ? "," : "", v->shape[i], v->stride[i]);
    if (k < n) k += (size_t)snprintf(s + k, n - k, v->offset ? " +%" PRId64 ">" : ">", v->offset);
}

/* Prints expression instruction i of k into s. */
static size_t
expr_str(const KProgram *p, const Kernel *k, int i, const char *acc, char *s, size_t n)
{
    if (n < 2) return 0;
    const EInstr *e = &k->expr[i];
    char v[256];
    switch (e->op) {
    case E_ACC: return (size_t)snprintf(s, n, "%s", acc);
    case E_LOAD: view_str(p, &k->args[e->arg], v, sizeof v); return (size_t)snprintf(s, n, "%s[i]", v);
    case E_CONST: return (size_t)snprintf(s, n, "%.9g", (double)e->imm);
    case E_ADD: case E_SUB: case E_MUL: case E_DIV: {
        const char *sym = e->op == E_ADD ? " + " : e->op == E_SUB ? " - " : e->op == E_MUL ? " * " : " / ";
        size_t m = (size_t)snprintf(s, n, "(");
        m += expr_str(p, k, e->a, acc, s + m, n > m ? n - m : 0);
        if (m < n) m += (size_t)snprintf(s + m, n - m, "%s", sym);
        if (m < n) m += expr_str(p, k, e->b, acc, s + m, n - m);
        if (m < n) m += (size_t)snprintf(s + m, n - m, ")");
        return m;
    }
    default: {
        size_t m = (size_t)snprintf(s, n, "%s(", mc_eop_name(e->op));
        if (m < n) m += expr_str(p, k, e->a, acc, s + m, n - m);
        if (m < n) m += (size_t)snprintf(s + m, n - m, ")");
        return m;
    }
    }
}

static void
print_store(const KProgram *p, const Kernel *k, const char *idx, const char *acc, FILE *f)
{
    char o[256], e[2048];
    view_str(p, &k->out, o, sizeof o);
    if (k->nexpr) expr_str(p, k, k->nexpr - 1, acc, e, sizeof e);
    else snprintf(e, sizeof e, "%s", acc);
    fprintf(f, "      %s[%s] = %s\n", o, idx, e);
}

void
mc_kprogram_print(const KProgram *p, const Graph *g, FILE *f)
{
    char a[256], b[256], c[256], d[256], sh[128];
    fprintf(f, "# mambac kernel IR: %s\n", p->name);
    fprintf(f, "# %d buffers, %d kernels; weights %" PRId64 " bytes, scratch arena %" PRId64 " bytes (unplanned %" PRId64 ")\n",
            p->nbufs, p->nk, p->weights_bytes, p->scratch_bytes, p->unplanned_bytes);
    for (int i = 0; i < p->nbufs; i++) {
        const Buffer *u = &p->bufs[i];
        fprintf(f, "buffer b%d %-7s %s f32%s", u->id, buf_kinds[u->kind], u->name, mc_shape_str(&u->shape, sh, sizeof sh));
        if (u->kind == BUF_WEIGHT) fprintf(f, " @weights+%" PRId64, u->offset);
        if (u->kind == BUF_SCRATCH) fprintf(f, " @arena+%" PRId64 " live k%d..k%d", u->offset, u->first, u->last);
        if (u->image_bytes) fprintf(f, " image+%" PRId64, u->image_bytes);
        fputc('\n', f);
    }
    for (int s = 0; s < p->nsegs; s++)
        fprintf(f, "segment s%d k%d..k%d per image x%" PRId64 "\n", s, p->segs[s].k0, p->segs[s].k1 - 1, p->segs[s].images);
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        fprintf(f, "\nkernel k%d %s \"%s\"  %.3f MFLOP\n", i, mc_kernel_kind_name(k->kind), k->name, k->flops / 1e6);
        if (k->nnodes > 1 && g) {
            fprintf(f, "  # fuses");
            for (int j = 0; j < k->nnodes; j++) fprintf(f, " %%%s", g->nodes[k->nodes[j]].name);
            fputc('\n', f);
        }
        for (int j = 0; j < k->nin; j++) view_str(p, &k->in[j], j == 0 ? a : j == 1 ? b : j == 2 ? c : d, 256);
        const View *o = &k->out;
        switch (k->kind) {
        case KK_GEMM:
            fprintf(f, "  for m in [0,%" PRId64 ") parallel, n in [0,%" PRId64 "):\n", k->M, k->N);
            fprintf(f, "      acc = %ssum(k in [0,%" PRId64 ")) %s[m,k] * %s[n,k]\n", k->nin > 2 ? "" : "", k->K, a, b);
            if (k->nin > 2) fprintf(f, "      acc = acc + %s[n]\n", c);
            print_store(p, k, "m,n", "acc", f);
            break;
        case KK_CONV:
        case KK_DWCONV: {
            const Attrs *t = &k->attrs;
            const Buffer *w = &p->bufs[k->in[1].buf];
            fprintf(f, "  for b, oh, ow in [%" PRId64 ",%" PRId64 ",%" PRId64 "] parallel, co in [0,%" PRId64 "):\n",
                    o->shape[0], o->shape[1], o->shape[2], o->shape[3]);
            fprintf(f, "      acc = sum(kh<%" PRId64 ", kw<%" PRId64 "%s) %s[b, oh*%" PRId64 "-%" PRId64 "+kh*%" PRId64
                       ", ow*%" PRId64 "-%" PRId64 "+kw*%" PRId64 ", %s] * %s[co, %s, kh, kw]   (zero padding)\n",
                    w->shape.d[2], w->shape.d[3], k->kind == KK_CONV ? ", ci" : "", a, t->stride[0], t->pad[0], t->dil[0],
                    t->stride[1], t->pad[1], t->dil[1], k->kind == KK_CONV ? "ci" : "co", b, k->kind == KK_CONV ? "ci" : "0");
            if (k->nin > 2) fprintf(f, "      acc = acc + %s[co]\n", c);
            print_store(p, k, "b,oh,ow,co", "acc", f);
            break;
        }
        case KK_SCAN:
            fprintf(f, "  for b in [0,%" PRId64 ") x d-blocks parallel:\n    h[d] = 0\n    for l in [0,%" PRId64 ") sequential, d in [0,%" PRId64 "):\n",
                    o->shape[0], o->shape[1] * o->shape[2], o->shape[3]);
            fprintf(f, "      delta = %s%s[l,d]%s\n", k->softplus_dt ? "softplus(" : "", b, k->softplus_dt ? ")" : "");
            fprintf(f, "      h[d] = exp(delta * %s[d]) * h[d] + delta * %s[l] * %s[l,d]\n", c, d, a);
            print_store(p, k, "b,l,d", "h[d]", f);
            break;
        case KK_FUSION25:
            fprintf(f, "  for b, y, x in [%" PRId64 ",%" PRId64 ",%" PRId64 "] parallel, d in [0,%" PRId64 "):\n",
                    o->shape[0], o->shape[1], o->shape[2], o->shape[3]);
            fprintf(f, "      acc = sum(t<25) %s[d,t] * %s[b, clamp(y+dy_t), clamp(x+dx_t), d]   (replicate borders)\n", b, a);
            print_store(p, k, "b,y,x,d", "acc", f);
            break;
        case KK_LAYERNORM:
            fprintf(f, "  for row in [0,%" PRId64 ") parallel:\n", mc_shape_numel(&p->bufs[o->buf].shape) / o->shape[o->rank - 1]);
            fprintf(f, "      mu, var = moments(%s[row,:])   (eps %.9g)\n", a, k->attrs.eps);
            {
                char acc[600];
                snprintf(acc, sizeof acc, "((%s[row,c] - mu) / sqrt(var + eps) * %s[c] + %s[c])", a, b, c);
                print_store(p, k, "row,c", acc, f);
            }
            break;
        case KK_MEAN_HW:
            fprintf(f, "  for b in [0,%" PRId64 ") parallel, c:\n      acc = mean(h, w) %s[b,h,w,c]\n", o->shape[0], a);
            print_store(p, k, "b,c", "acc", f);
            break;
        case KK_ELTWISE:
            fprintf(f, "  for i in %s parallel:\n", mc_shape_str(&p->bufs[o->buf].shape, sh, sizeof sh));
            print_store(p, k, "i", "?", f);
            break;
        }
    }
}
