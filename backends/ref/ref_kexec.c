/* backends/ref/ref_kexec.c -- the reference executor of the kernel IR (see
 * ref_kexec.h).
 *
 * Each kernel: its anchor operands are gathered from their views into
 * contiguous copies, the ref kernel of its kind computes the anchor value
 * ("acc", in the output's row-major element order), then the epilogue is
 * evaluated in chunks of CHUNK elements (one float array per instruction,
 * the elementwise ops through mc_ref_unary, as the graph interpreter does)
 * and stored through the output view.  Plain and slow-ish on purpose: the
 * only cleverness is that views are walked a row at a time.
 */
#include "ref_kexec.h"
#include "ref_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 2048

static int64_t
vnumel(const View *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->rank; d++) n *= v->shape[d];
    return n;
}

/* Buffer data of view v as kernel k sees it: shifted to image img inside a
 * segment when the buffer has image_bytes. */
static float *
vbase(const KProgram *p, float *const *bufs, const View *v, int in_seg, int64_t img)
{
    const Buffer *b = &p->bufs[v->buf];
    return bufs[v->buf] + (in_seg && b->image_bytes ? img * (b->image_bytes / 4) : 0);
}

/* Elements [f0, f0+cnt) of view v (row-major over its shape) from base into
 * vals, or with store from vals into base.  Walks a row of the last
 * dimension at a time. */
static void
walk(const View *v, float *base, int64_t f0, int64_t cnt, float *vals, int store)
{
    int r = v->rank;
    if (cnt <= 0) return;
    if (r == 0) {
        if (store) base[v->offset] = vals[0];
        else vals[0] = base[v->offset];
        return;
    }
    int64_t idx[MC_MAX_RANK], off = v->offset, f = f0;
    for (int d = r - 1; d >= 0; d--) {
        idx[d] = f % v->shape[d];
        f /= v->shape[d];
        off += idx[d] * v->stride[d];
    }
    int64_t n = v->shape[r - 1], s = v->stride[r - 1];
    for (int64_t i = 0; i < cnt;) {
        int64_t run = n - idx[r - 1];
        if (run > cnt - i) run = cnt - i;
        if (store)
            for (int64_t j = 0; j < run; j++) base[off + j * s] = vals[i + j];
        else
            for (int64_t j = 0; j < run; j++) vals[i + j] = base[off + j * s];
        i += run;
        off += run * s;
        idx[r - 1] += run;
        for (int d = r - 1; d > 0 && idx[d] == v->shape[d]; d--) { /* carry */
            off += v->stride[d - 1] - idx[d] * v->stride[d];
            idx[d] = 0;
            idx[d - 1]++;
        }
    }
}

/* A contiguous copy of view v (malloc'd; NULL when out of memory). */
static float *
gather(const KProgram *p, float *const *bufs, const View *v, int in_seg, int64_t img)
{
    int64_t n = vnumel(v), nch = (n + CHUNK - 1) / CHUNK;
    float *dst = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!dst) return NULL;
    float *base = vbase(p, bufs, v, in_seg, img);
    #pragma omp parallel for schedule(static) if (nch > 8)
    for (int64_t c = 0; c < nch; c++) {
        int64_t f0 = c * CHUNK;
        walk(v, base, f0, n - f0 < CHUNK ? n - f0 : CHUNK, dst + f0, 0);
    }
    return dst;
}

/* The OpKind that mc_ref_unary computes for an epilogue op, or -1. */
static int
unary_kind(EOp op)
{
    switch (op) {
    case E_NEG: return OP_NEG;
    case E_EXP: return OP_EXP;
    case E_RELU: return OP_RELU;
    case E_GELU: return OP_GELU;
    case E_SILU: return OP_SILU;
    case E_SOFTPLUS: return OP_SOFTPLUS;
    default: return -1;
    }
}

/* Kernel k's epilogue over elements [f0, f0+cnt) of its output: val holds
 * one CHUNK-float array per instruction; returns the stored values. */
static float *
eval_chunk(const KProgram *p, const Kernel *k, float *const *bufs, int in_seg, int64_t img, const float *acc,
           int64_t f0, int64_t cnt, float *val)
{
    if (!k->nexpr) {
        memcpy(val, acc + f0, sizeof(float) * (size_t)cnt);
        return val;
    }
    for (int i = 0; i < k->nexpr; i++) {
        const EInstr *e = &k->expr[i];
        float *v = val + (int64_t)i * CHUNK;
        const float *a = e->a >= 0 && e->a < i ? val + (int64_t)e->a * CHUNK : NULL;
        const float *b = e->b >= 0 && e->b < i ? val + (int64_t)e->b * CHUNK : NULL;
        switch (e->op) {
        case E_ACC:
            if (acc) memcpy(v, acc + f0, sizeof(float) * (size_t)cnt);
            else memset(v, 0, sizeof(float) * (size_t)cnt);
            break;
        case E_LOAD: {
            const View *av = &k->args[e->arg];
            walk(av, vbase(p, bufs, av, in_seg, img), f0, cnt, v, 0);
            break;
        }
        case E_CONST:
            for (int64_t j = 0; j < cnt; j++) v[j] = e->imm;
            break;
        case E_ADD: for (int64_t j = 0; j < cnt; j++) v[j] = a[j] + b[j]; break;
        case E_SUB: for (int64_t j = 0; j < cnt; j++) v[j] = a[j] - b[j]; break;
        case E_MUL: for (int64_t j = 0; j < cnt; j++) v[j] = a[j] * b[j]; break;
        case E_DIV: for (int64_t j = 0; j < cnt; j++) v[j] = a[j] / b[j]; break;
        case E_SQRT: for (int64_t j = 0; j < cnt; j++) v[j] = (float)sqrt((double)a[j]); break;
        default:
            mc_ref_unary(unary_kind(e->op), cnt, a, v);
            break;
        }
    }
    return val + (int64_t)(k->nexpr - 1) * CHUNK;
}

/* epilogue(acc) stored through k->out; 0, or -1 when out of memory */
static int
store(const KProgram *p, const Kernel *k, float *const *bufs, int in_seg, int64_t img, const float *acc)
{
    int64_t n = vnumel(&k->out), nch = (n + CHUNK - 1) / CHUNK;
    float *obase = vbase(p, bufs, &k->out, in_seg, img);
    int failed = 0;
    #pragma omp parallel if (nch > 8)
    {
        float *val = malloc(sizeof(float) * CHUNK * (size_t)(k->nexpr > 0 ? k->nexpr : 1));
        if (!val) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(static)
        for (int64_t c = 0; c < nch; c++) {
            if (!val) continue;
            int64_t f0 = c * CHUNK, cnt = n - f0 < CHUNK ? n - f0 : CHUNK;
            walk(&k->out, obase, f0, cnt, eval_chunk(p, k, bufs, in_seg, img, acc, f0, cnt, val), 1);
        }
        free(val);
    }
    return failed ? -1 : 0;
}

static int
kexec_err(McErr *err, const KProgram *p, int i, const char *what)
{
    const Kernel *k = &p->k[i];
    return mc_err(err, "ref kernel executor: kernel k%d (%s \"%s\"): %s", i, mc_kernel_kind_name(k->kind),
                  k->name ? k->name : "?", what);
}

/* The anchor value of kernel k from its gathered operands x[]: malloc'd
 * into *acc (NULL for an eltwise kernel).  0, or -1 with err. */
static int
anchor(const KProgram *p, int ki, float *const *x, float **acc, McErr *err)
{
    const Kernel *k = &p->k[ki];
    const View *o = &k->out, *w = &k->in[1];
    int64_t n = vnumel(o);
    *acc = NULL;
    if (k->kind == KK_ELTWISE) return 0;
    if (k->kind == KK_SCAN && vnumel(&k->in[3]) != o->shape[0] * o->shape[1] * o->shape[2])
        return kexec_err(err, p, ki, "scan operand B does not have B*H*W elements");
    if (!(*acc = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)))) return kexec_err(err, p, ki, "out of memory");
    float *y = *acc;
    int rc = 0;
    switch (k->kind) {
    case KK_GEMM:
        rc = mc_ref_linear(k->M, k->N, k->K, x[0], x[1], k->nin > 2 ? x[2] : NULL, y);
        break;
    case KK_CONV:
    case KK_DWCONV: {
        const View *xi = &k->in[0];
        const Attrs *a = &k->attrs;
        RefConv c = {xi->shape[0], xi->shape[1], xi->shape[2], xi->shape[3], o->shape[3], w->shape[2], w->shape[3],
                     a->stride[0], a->stride[1], a->pad[0], a->pad[1], a->dil[0] ? a->dil[0] : 1,
                     a->dil[1] ? a->dil[1] : 1, k->kind == KK_DWCONV ? xi->shape[3] : 1};
        rc = mc_ref_conv2d(&c, x[0], x[1], k->nin > 2 ? x[2] : NULL, y);
        break;
    }
    case KK_SCAN:
        if (k->softplus_dt) mc_ref_unary(OP_SOFTPLUS, n, x[1], x[1]);
        rc = mc_ref_scan(o->shape[0], o->shape[1] * o->shape[2], o->shape[3], x[0], x[1], x[2], x[3], y);
        break;
    case KK_FUSION25:
        rc = mc_ref_state_fusion25(o->shape[0], o->shape[1], o->shape[2], o->shape[3], x[0], x[1], y);
        break;
    case KK_LAYERNORM: {
        int64_t C = o->rank ? o->shape[o->rank - 1] : 1;
        mc_ref_layernorm(C ? n / C : 0, C, x[0], x[1], x[2], k->attrs.eps, y);
        break;
    }
    case KK_MEAN_HW: {
        const View *xi = &k->in[0];
        mc_ref_mean_hw(xi->shape[0], xi->shape[1] * xi->shape[2], xi->shape[3], x[0], y);
        break;
    }
    case KK_RESIZE:
    case KK_AVGPOOL: {
        const View *xi = &k->in[0], *o = &k->out;
        if (k->kind == KK_RESIZE)
            mc_ref_resize(xi->shape[0], xi->shape[1], xi->shape[2], xi->shape[3], o->shape[1], o->shape[2],
                          (int)k->attrs.align_corners, x[0], y);
        else
            mc_ref_adaptive_avg_pool(xi->shape[0], xi->shape[1], xi->shape[2], xi->shape[3], o->shape[1], o->shape[2],
                                     x[0], y);
        break;
    }
    default:
        rc = -1;
        break;
    }
    return rc ? kexec_err(err, p, ki, "out of memory (or an unknown kind)") : 0;
}

int
mc_ref_kexec_kernel(const KProgram *p, int ki, int64_t img, float *const *bufs, McErr *err)
{
    const Kernel *k = &p->k[ki];
    int in_seg = mc_kprogram_segment_of(p, ki) >= 0, rc = 0;
    float *x[4] = {NULL, NULL, NULL, NULL}, *acc = NULL;
    for (int j = 0; j < k->nin && j < 4 && !rc; j++)
        if (!(x[j] = gather(p, bufs, &k->in[j], in_seg, img))) rc = kexec_err(err, p, ki, "out of memory");
    if (!rc) rc = anchor(p, ki, x, &acc, err);
    for (int j = 0; j < 4; j++) free(x[j]);
    if (!rc && store(p, k, bufs, in_seg, img, acc)) rc = kexec_err(err, p, ki, "out of memory");
    free(acc);
    return rc;
}

void
mc_ref_view_copy(const KProgram *p, int k, int64_t image, const View *v, float *buf, int64_t f0, int64_t n, float *vals,
                 int store)
{
    const Buffer *b = &p->bufs[v->buf];
    if (b->image_bytes && mc_kprogram_segment_of(p, k) >= 0) buf += image * (b->image_bytes / 4);
    walk(v, buf, f0, n, vals, store);
}

int
mc_ref_kexec_run(const KProgram *p, const uint8_t *weights, const float *input, float *const *outputs, McKexecHook hook,
                 void *user, McErr *err)
{
    int rc = 0;
    float **bufs = calloc((size_t)(p->nbufs ? p->nbufs : 1), sizeof *bufs);
    if (!bufs) return mc_err(err, "ref kernel executor: out of memory");
    for (int b = 0; b < p->nbufs && !rc; b++) {
        const Buffer *bf = &p->bufs[b];
        if (bf->kind == BUF_WEIGHT) /* never written: a kernel writes scratch or the output (kverify) */
            bufs[b] = (float *)(uintptr_t)(weights + bf->offset);
        else if (!(bufs[b] = calloc((size_t)(bf->bytes > 0 ? bf->bytes : 4), 1)))
            rc = mc_err(err, "ref kernel executor: out of memory for buffer b%d (%lld bytes)", b, (long long)bf->bytes);
    }
    if (!rc && p->input_buf >= 0) memcpy(bufs[p->input_buf], input, (size_t)p->bufs[p->input_buf].bytes);
    for (int i = 0; i < p->nk && !rc;) {
        int s = mc_kprogram_segment_of(p, i);
        int k1 = s >= 0 ? p->segs[s].k1 : i + 1;
        int64_t images = s >= 0 ? p->segs[s].images : 1;
        for (int64_t img = 0; img < images && !rc; img++)
            for (int k = i; k < k1 && !rc; k++) {
                if (hook) rc = hook(user, k, img, MC_KEXEC_BEFORE, bufs);
                if (!rc) rc = mc_ref_kexec_kernel(p, k, img, bufs, err);
                if (!rc && hook) rc = hook(user, k, img, MC_KEXEC_AFTER, bufs);
            }
        i = k1;
    }
    for (int j = 0; j < p->noutputs && !rc; j++)
        memcpy(outputs[j], bufs[p->output_bufs[j]], (size_t)p->bufs[p->output_bufs[j]].bytes);
    for (int b = 0; b < p->nbufs; b++)
        if (p->bufs[b].kind != BUF_WEIGHT) free(bufs[b]);
    free(bufs);
    return rc;
}
