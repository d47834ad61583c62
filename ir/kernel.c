/* ir/kernel.c -- the kernel IR's tables (kernels.def, fusions.def,
 * sched.def), its text form's printer and mc_kprogram_free/copy.  The text
 * form (docs/kernel-ir.md) is what the parser (kparse.c) reads back: every
 * field of the program on a line of its own, the readable loop nest of each
 * kernel as comments; print(parse(print(p))) == print(p), byte for byte. */
#include "kernel.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define OPS(...) __VA_ARGS__
#define OPER(nm, r) nm
#define KERNEL(id, nm, mn, mx, ops, fl, doc) [KK_##id] = {nm, mn, mx, {ops}, {0}, fl, doc},
const KernelInfo mc_kernel_info[KK_COUNT] = {
#include "kernels.def"
};
#undef KERNEL
#undef OPER
#define OPER(nm, r) r
/* the roles: a second table, since OPS expands to one list at a time */
static const OperRole roles[KK_COUNT][4] = {
#define KERNEL(id, nm, mn, mx, ops, fl, doc) [KK_##id] = {ops},
#include "kernels.def"
#undef KERNEL
};
#undef OPER
#undef OPS

static const char *fuse_names[] = {
#define FUSE(id, nm, doc) nm,
#include "fusions.def"
#undef FUSE
};
static const char *eop_names[] = {"acc", "load", "const", "add", "sub", "mul", "div", "neg",
                                  "exp", "sqrt", "relu", "gelu", "silu", "softplus"};
static const char *buf_kinds[] = {"input", "output", "weight", "scratch"};

OperRole
mc_kernel_role(KernelKind k, int slot)
{
    return (unsigned)k < KK_COUNT && slot >= 0 && slot < 4 ? roles[k][slot] : R_NONE;
}

const char *
mc_buf_kind_name(BufKind k)
{
    return (unsigned)k < 4 ? buf_kinds[k] : "?";
}

int
mc_kernel_kind_parse(const char *name, KernelKind *out)
{
    for (int i = 0; i < KK_COUNT; i++)
        if (!strcmp(mc_kernel_info[i].name, name)) {
            *out = (KernelKind)i;
            return 0;
        }
    return -1;
}

const char *
mc_fuse_kind_name(FuseKind f)
{
    return (unsigned)f < FUSE_COUNT ? fuse_names[f] : "?";
}

int
mc_fuse_kind_parse(const char *name, FuseKind *out)
{
    for (int i = 0; i < FUSE_COUNT; i++)
        if (!strcmp(fuse_names[i], name)) {
            *out = (FuseKind)i;
            return 0;
        }
    return -1;
}

int
mc_eop_parse(const char *name, EOp *out)
{
    for (int i = 0; i < (int)(sizeof eop_names / sizeof *eop_names); i++)
        if (!strcmp(eop_names[i], name)) {
            *out = (EOp)i;
            return 0;
        }
    return -1;
}

const char *
mc_kernel_kind_name(KernelKind k)
{
    return (unsigned)k < KK_COUNT ? mc_kernel_info[k].name : "?";
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
    if (p->strings) {
        mc_arena_free(p->strings);
        free(p->strings);
    }
    memset(p, 0, sizeof *p);
}

int
mc_kprogram_copy(const KProgram *src, KProgram *dst)
{
    *dst = *src;
    dst->strings = NULL; /* names still point into src's */
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
mc_kprogram_output_index(const KProgram *p, int b)
{
    for (int j = 0; j < p->noutputs && j < MC_MAX_OUTPUTS; j++)
        if (p->output_bufs[j] == b) return j;
    return -1;
}

int
mc_kprogram_segment_of(const KProgram *p, int k)
{
    for (int s = 0; s < p->nsegs; s++)
        if (k >= p->segs[s].k0 && k < p->segs[s].k1) return s;
    return -1;
}

/* every view of kernel k: in[], out, args[] */
static int
kernel_views(Kernel *k, View **vs)
{
    int n = 0;
    for (int j = 0; j < k->nin; j++) vs[n++] = &k->in[j];
    vs[n++] = &k->out;
    for (int j = 0; j < k->nargs; j++) vs[n++] = &k->args[j];
    return n;
}

int
mc_kprogram_remove(KProgram *p, const unsigned char *kdead, const unsigned char *bdead)
{
    View *vs[4 + 1 + MC_MAX_ARGS];
    for (int i = 0; i < p->nk; i++) { /* nothing kept depends on what goes */
        if (kdead && kdead[i]) continue;
        Kernel *k = &p->k[i];
        if (kdead && k->host >= 0 && kdead[k->host]) return -1;
        int nv = kernel_views(k, vs);
        for (int j = 0; j < nv && bdead; j++)
            if (bdead[vs[j]->buf]) return -1;
    }
    if (bdead && p->input_buf >= 0 && bdead[p->input_buf]) return -1;
    for (int j = 0; j < p->noutputs && bdead; j++)
        if (bdead[p->output_bufs[j]]) return -1;
    /* kept[i]: kernels kept in [0, i) (kernel i's new index); to[b]: buffer b's */
    int *kept = malloc(sizeof(int) * (size_t)(p->nk + 1)), *to = malloc(sizeof(int) * (size_t)(p->nbufs + 1));
    if (!kept || !to) {
        free(kept);
        free(to);
        return -1;
    }
    kept[0] = 0;
    for (int i = 0; i < p->nk; i++) kept[i + 1] = kept[i] + !(kdead && kdead[i]);
    if (kdead) {
        for (int b = 0; b < p->nbufs; b++) { /* first: the next kept kernel; last: the previous one */
            Buffer *u = &p->bufs[b];
            if (u->first >= 0 && u->first <= p->nk) u->first = kept[u->first];
            if (u->last >= 0 && u->last < p->nk) u->last = kept[u->last + 1] - 1;
        }
        int n = 0;
        for (int s = 0; s < p->nsegs; s++) {
            Segment g = p->segs[s];
            g.k0 = kept[g.k0 < 0 ? 0 : g.k0 > p->nk ? p->nk : g.k0];
            g.k1 = kept[g.k1 < 0 ? 0 : g.k1 > p->nk ? p->nk : g.k1];
            if (g.k1 > g.k0) p->segs[n++] = g;
        }
        p->nsegs = n;
        n = 0;
        for (int i = 0; i < p->nk; i++) {
            if (kdead[i]) continue;
            if (n != i) p->k[n] = p->k[i];
            if (p->k[n].host >= 0) p->k[n].host = kept[p->k[n].host];
            n++;
        }
        p->nk = n;
    }
    if (bdead) {
        int n = 0;
        for (int b = 0; b < p->nbufs; b++) {
            to[b] = bdead[b] ? -1 : n;
            if (bdead[b]) continue;
            p->bufs[n] = p->bufs[b];
            p->bufs[n].id = n;
            n++;
        }
        p->nbufs = n;
        for (int i = 0; i < p->nk; i++) {
            int nv = kernel_views(&p->k[i], vs);
            for (int j = 0; j < nv; j++) vs[j]->buf = to[vs[j]->buf];
        }
        if (p->input_buf >= 0) p->input_buf = to[p->input_buf];
        for (int j = 0; j < p->noutputs; j++) p->output_bufs[j] = to[p->output_bufs[j]];
    }
    free(kept);
    free(to);
    return 0;
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
    fprintf(f, "  #     %s[%s] = %s\n", o, idx, e);
}

/* A name or string as a quoted token: printable ASCII but '"' and '\' as
 * they are, anything else as \xNN (kparse.c reads it back). */
void
mc_kir_print_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\') fputc(*c, f);
        else fprintf(f, "\\x%02x", *c);
    }
    fputc('"', f);
}

/* The loop nest of kernel k, as comment lines (readable, not parsed). */
static void
print_nest(const KProgram *p, const Kernel *k, FILE *f)
{
    char a[256] = "", b[256] = "", c[256] = "", d[256] = "", sh[128];
    char *slot[4] = {a, b, c, d};
    for (int j = 0; j < k->nin && j < 4; j++) view_str(p, &k->in[j], slot[j], 256);
    const View *o = &k->out;
    switch (k->kind) {
    case KK_GEMM:
        fprintf(f, "  # for m in [0,%" PRId64 ") parallel, n in [0,%" PRId64 "):\n", k->M, k->N);
        fprintf(f, "  #     acc = sum(k in [0,%" PRId64 ")) %s[m,k] * %s[n,k]\n", k->K, a, b);
        if (k->nin > 2) fprintf(f, "  #     acc = acc + %s[n]\n", c);
        print_store(p, k, "m,n", "acc", f);
        break;
    case KK_CONV:
    case KK_DWCONV: {
        const Attrs *t = &k->attrs;
        const View *w = &k->in[1];
        if (o->rank != 4 || w->rank != 4) break;
        fprintf(f, "  # for b, oh, ow in [%" PRId64 ",%" PRId64 ",%" PRId64 "] parallel, co in [0,%" PRId64 "):\n",
                o->shape[0], o->shape[1], o->shape[2], o->shape[3]);
        fprintf(f, "  #     acc = sum(kh<%" PRId64 ", kw<%" PRId64 "%s) %s[b, oh*%" PRId64 "-%" PRId64 "+kh*%" PRId64
                   ", ow*%" PRId64 "-%" PRId64 "+kw*%" PRId64 ", %s] * %s[co, %s, kh, kw]   (zero padding)\n",
                w->shape[2], w->shape[3], k->kind == KK_CONV ? ", ci" : "", a, t->stride[0], t->pad[0], t->dil[0],
                t->stride[1], t->pad[1], t->dil[1], k->kind == KK_CONV ? "ci" : "co", b, k->kind == KK_CONV ? "ci" : "0");
        if (k->nin > 2) fprintf(f, "  #     acc = acc + %s[co]\n", c);
        print_store(p, k, "b,oh,ow,co", "acc", f);
        break;
    }
    case KK_SCAN:
        if (o->rank != 4) break;
        fprintf(f, "  # for b in [0,%" PRId64 ") x d-blocks parallel:\n  #   h[d] = 0\n  #   for l in [0,%" PRId64
                   ") sequential, d in [0,%" PRId64 "):\n",
                o->shape[0], o->shape[1] * o->shape[2], o->shape[3]);
        fprintf(f, "  #     delta = %s%s[l,d]%s\n", k->softplus_dt ? "softplus(" : "", b, k->softplus_dt ? ")" : "");
        fprintf(f, "  #     h[d] = exp(delta * %s[d]) * h[d] + delta * %s[l] * %s[l,d]\n", c, d, a);
        print_store(p, k, "b,l,d", "h[d]", f);
        break;
    case KK_FUSION25:
        if (o->rank != 4) break;
        fprintf(f, "  # for b, y, x in [%" PRId64 ",%" PRId64 ",%" PRId64 "] parallel, d in [0,%" PRId64 "):\n",
                o->shape[0], o->shape[1], o->shape[2], o->shape[3]);
        fprintf(f, "  #     acc = sum(t<25) %s[d,t] * %s[b, clamp(y+dy_t), clamp(x+dx_t), d]   (replicate borders)\n", b, a);
        print_store(p, k, "b,y,x,d", "acc", f);
        break;
    case KK_LAYERNORM: {
        if (o->rank < 1 || !o->shape[o->rank - 1]) break;
        fprintf(f, "  # for row in [0,%" PRId64 ") parallel:\n", mc_shape_numel(&p->bufs[o->buf].shape) / o->shape[o->rank - 1]);
        fprintf(f, "  #     mu, var = moments(%s[row,:])   (eps %.9g)\n", a, k->attrs.eps);
        char acc[800];
        snprintf(acc, sizeof acc, "((%s[row,c] - mu) / sqrt(var + eps) * %s[c] + %s[c])", a, b, c);
        print_store(p, k, "row,c", acc, f);
        break;
    }
    case KK_MEAN_HW:
        fprintf(f, "  # for b in [0,%" PRId64 ") parallel, c:\n  #     acc = mean(h, w) %s[b,h,w,c]\n", o->shape[0], a);
        print_store(p, k, "b,c", "acc", f);
        break;
    case KK_RESIZE:
    case KK_AVGPOOL: {
        const View *x = &k->in[0];
        if (o->rank != 4 || x->rank != 4) break;
        fprintf(f, "  # for b, y, x in [%" PRId64 ",%" PRId64 ",%" PRId64 "] parallel, c in [0,%" PRId64 "):\n",
                o->shape[0], o->shape[1], o->shape[2], o->shape[3]);
        if (k->kind == KK_RESIZE)
            fprintf(f, "  #     acc = bilinear(%s[b, sy, sx, c]), sy = %s, sx alike   (%" PRId64 "x%" PRId64 " -> %" PRId64
                       "x%" PRId64 ")\n", a,
                    k->attrs.align_corners ? "y*(H-1)/(h-1)" : "max((y+0.5)*H/h-0.5, 0)", x->shape[1], x->shape[2],
                    o->shape[1], o->shape[2]);
        else
            fprintf(f, "  #     acc = mean(%s[b, floor(y*H/h)..ceil((y+1)*H/h), floor(x*W/w)..ceil((x+1)*W/w), c])   (%" PRId64
                       "x%" PRId64 " -> %" PRId64 "x%" PRId64 ")\n", a, x->shape[1], x->shape[2], o->shape[1], o->shape[2]);
        print_store(p, k, "b,y,x,c", "acc", f);
        break;
    }
    case KK_ELTWISE:
        fprintf(f, "  # for i in %s parallel:\n", mc_shape_str(&p->bufs[o->buf].shape, sh, sizeof sh));
        print_store(p, k, "i", "?", f);
        break;
    default:
        break;
    }
}

static void
print_view(const KProgram *p, const View *v, FILE *f)
{
    char s[320];
    view_str(p, v, s, sizeof s);
    fputs(s, f);
}

static void
print_kernel(const KProgram *p, int i, FILE *f)
{
    const Kernel *k = &p->k[i];
    const KernelInfo *ki = &mc_kernel_info[k->kind];
    fprintf(f, "\nkernel k%d %s ", i, mc_kernel_kind_name(k->kind));
    mc_kir_print_str(f, k->name);
    fprintf(f, " flops %.17g\n", k->flops);
    if (k->nnodes) {
        fputs("  nodes", f);
        for (int j = 0; j < k->nnodes; j++) {
            fprintf(f, " %d ", k->nodes[j]);
            mc_kir_print_str(f, k->node_names[j]);
        }
        fputc('\n', f);
    }
    if (k->nin) {
        fputs("  in", f);
        for (int j = 0; j < k->nin; j++) {
            fprintf(f, " %s=", j < 4 && ki->oper[j] ? ki->oper[j] : "?");
            print_view(p, &k->in[j], f);
        }
        fputc('\n', f);
    }
    if (ki->fields & KF_MNK) fprintf(f, "  sizes M=%" PRId64 " N=%" PRId64 " K=%" PRId64 "\n", k->M, k->N, k->K);
    if (ki->fields & KF_CONV)
        fprintf(f, "  conv stride=%" PRId64 ",%" PRId64 " pad=%" PRId64 ",%" PRId64 " dil=%" PRId64 ",%" PRId64 "\n",
                k->attrs.stride[0], k->attrs.stride[1], k->attrs.pad[0], k->attrs.pad[1], k->attrs.dil[0], k->attrs.dil[1]);
    if (ki->fields & KF_EPS) fprintf(f, "  eps %.17g\n", k->attrs.eps);
    if ((ki->fields & KF_SOFTPLUS) && k->softplus_dt) fputs("  softplus_dt\n", f);
    if (ki->fields & KF_ALIGN) fprintf(f, "  align_corners %d\n", (int)k->attrs.align_corners);
    fputs("  out ", f);
    print_view(p, &k->out, f);
    fputc('\n', f);
    if (k->nargs) {
        fputs("  args", f);
        for (int j = 0; j < k->nargs; j++) {
            fputc(' ', f);
            print_view(p, &k->args[j], f);
        }
        fputc('\n', f);
    }
    if (k->nexpr) {
        fputs("  expr", f);
        for (int j = 0; j < k->nexpr; j++) {
            const EInstr *e = &k->expr[j];
            fprintf(f, "%s %s", j ? ";" : "", mc_eop_name(e->op));
            if (e->op == E_LOAD) fprintf(f, " %d", e->arg);
            else if (e->op == E_CONST) fprintf(f, " %.9g", (double)e->imm);
            else if (e->op >= E_ADD && e->op <= E_DIV) fprintf(f, " %%%d %%%d", e->a, e->b);
            else if (e->op != E_ACC) fprintf(f, " %%%d", e->a);
        }
        fputc('\n', f);
    }
    if (k->host >= 0) fprintf(f, "  inside k%d as %s\n", k->host, mc_fuse_kind_name(k->fuse));
    static const char *sched_names[] = {
#define SCHED(field, nm, doc) nm,
#include "sched.def"
#undef SCHED
    };
    const int64_t sched_vals[] = {
#define SCHED(field, nm, doc) k->sched.field,
#include "sched.def"
#undef SCHED
    };
    int any = 0;
    for (size_t j = 0; j < sizeof sched_vals / sizeof *sched_vals; j++)
        if (sched_vals[j]) {
            fprintf(f, "%s %s=%" PRId64, any ? "" : "  schedule", sched_names[j], sched_vals[j]);
            any = 1;
        }
    if (any) fputc('\n', f);
    print_nest(p, k, f);
}

void
mc_kprogram_print(const KProgram *p, FILE *f)
{
    char sh[160];
    fprintf(f, "# mambac kernel IR (docs/kernel-ir.md): %d buffers, %d kernels\n", p->nbufs, p->nk);
    fputs("program ", f);
    mc_kir_print_str(f, p->name);
    if (p->target) fprintf(f, " target %s", p->target);
    fprintf(f, " weights %" PRId64, p->weights_bytes);
    if (p->planned) fprintf(f, " scratch %" PRId64 " unplanned %" PRId64, p->scratch_bytes, p->unplanned_bytes);
    fputc('\n', f);
    for (int i = 0; i < p->nbufs; i++) {
        const Buffer *u = &p->bufs[i];
        fprintf(f, "buffer b%d %s ", i, mc_buf_kind_name(u->kind));
        mc_kir_print_str(f, u->name);
        fprintf(f, " f32%s node %d", mc_shape_str(&u->shape, sh, sizeof sh), u->node);
        if (u->kind == BUF_WEIGHT) fprintf(f, " @weights+%" PRId64, u->offset);
        if (u->kind == BUF_SCRATCH && p->planned) fprintf(f, " @arena+%" PRId64, u->offset);
        if (u->first >= 0 || u->last >= 0) fprintf(f, " live %d..%d", u->first, u->last);
        if (u->image_bytes) fprintf(f, " image+%" PRId64, u->image_bytes);
        if (u->group_bytes) fprintf(f, " group+%" PRId64, u->group_bytes);
        fputc('\n', f);
    }
    if (p->noutputs > 1) { /* several outputs, in the graph's order (one: no record) */
        fputs("outputs", f);
        for (int j = 0; j < p->noutputs && j < MC_MAX_OUTPUTS; j++) fprintf(f, " b%d", p->output_bufs[j]);
        fputc('\n', f);
    }
    for (int s = 0; s < p->nsegs; s++)
    {
        fprintf(f, "segment s%d k%d..k%d images %" PRId64, s, p->segs[s].k0, p->segs[s].k1 - 1, p->segs[s].images);
        if (p->segs[s].groups > 1) fprintf(f, " groups %" PRId64, p->segs[s].groups);
        fputc('\n', f);
    }
    for (int i = 0; i < p->nk; i++) print_kernel(p, i, f);
}

char *
mc_kprogram_print_str(const KProgram *p)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) return NULL;
    mc_kprogram_print(p, f);
    fclose(f);
    return s;
}
