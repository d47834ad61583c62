/* backends/llvm/llvm_kernels.c -- the memory-bound kernels: depthwise conv,
 * selective scan, 25-tap state fusion, layernorm, mean over H*W and plain
 * elementwise kernels.
 *
 * Takes a kernel and its plan; produces its body in the current function.
 * Every kernel is vectorized along the last (channel) dimension in vectors
 * of L lanes (a masked tail vector when the channel count is not a multiple
 * of L; scalar gathers when a view's channel stride is not 1).  Parallel
 * ranges (docs/codegen.md):
 *   DWCONV    output rows (b, oy), n = B*Ho; channel vectors outer (weights
 *             in registers), pixels inner, border pixels tested apart
 *   SCAN      (b, group of up to 4 channel vectors: the schedule's
 *             tile_n, llvm_schedule.c), sequential over H*W
 *   FUSION25  (output row (b, y), chunk of channel vectors: tile_n), by
 *             default n >= 32 where the channels allow; channel vectors outer (25 tap
 *             weights in registers), pixels inner, coordinates clamped
 *             (replicate) only in the border pixels
 *   LAYERNORM rows of the view, n = rows
 *   MEAN_HW   batch, n = B
 *   ELTWISE   rows after merging contiguous trailing dims, n = rows
 * Owns nothing.
 */
#include "llvm_internal.h"
#include "../../ir/fusion25.h"
#include <string.h>

static LLVMValueRef
add(CG *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildAdd(c->b, a, b, "");
}

static LLVMValueRef
mul(CG *c, LLVMValueRef a, int64_t k)
{
    return k == 1 ? a : LLVMBuildMul(c->b, a, cg_i64(c, k), "");
}

/* Channel loop: calls body(col, nvalid) for full vectors in a runtime loop
 * over [0, C/L) and once for the tail. */
typedef void (*ChanFn)(CG *c, void *arg, LLVMValueRef col, int nvalid);

static void
chan_loop(CG *c, int64_t C, ChanFn fn, void *arg)
{
    int64_t full = C / c->L, rem = C % c->L;
    if (full > 0) {
        Loop l;
        cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, full), NULL, 0, "ch");
        fn(c, arg, mul(c, l.iv, c->L), c->L);
        cg_loop_end(c, &l, NULL);
    }
    if (rem) fn(c, arg, cg_i64(c, full * c->L), (int)rem);
}

/* ------------------------------------------------------------ depthwise */

/* Per output row (b, oy) and channel vector: the kh*kw weight vectors and
 * the bias are loaded once (registers) and the row's pixels loop inside.
 * Taps whose input row is outside the image get a zero weight (decided once
 * per row); pixels whose taps are all inside the image in x (the interior)
 * need no test, the few border pixels select per tap. */
typedef struct DwArg {
    const Kernel *k;
    const KPlan *kp;
    int64_t T, Cp, sc, W, Wo, kw, sw, pw, dw, sx2, xlo, xhi;
    LLVMValueRef yoff[64], vy[64], orow0;
} DwArg;

static void
dw_pixels(CG *c, DwArg *d, LLVMValueRef col, int nval, LLVMValueRef *w, LLVMValueRef bias, LLVMValueRef lo,
          LLVMValueRef hi, int border)
{
    const Kernel *k = d->k;
    const View *x = &k->in[0];
    Loop lx;
    cg_loop_begin(c, &lx, lo, hi, NULL, 0, border ? "oxb" : "ox");
    LLVMValueRef acc = bias;
    LLVMValueRef coff = mul(c, col, d->sc);
    for (int t = 0; t < d->T; t++) {
        int64_t kx = t % d->kw;
        LLVMValueRef ix = add(c, mul(c, lx.iv, d->sw), cg_i64(c, kx * d->dw - d->pw));
        LLVMValueRef vx = NULL;
        if (border) {
            vx = LLVMBuildICmp(c->b, LLVMIntULT, ix, cg_i64(c, d->W), "");
            ix = LLVMBuildSelect(c->b, vx, ix, cg_i64(c, 0), "");
        }
        LLVMValueRef xv = cg_load_vec(c, x->buf, add(c, add(c, d->yoff[t], mul(c, ix, d->sx2)), coff), d->sc, nval);
        if (border) xv = LLVMBuildSelect(c->b, vx, xv, cg_vf(c, 0.0), "");
        acc = cg_fma(c, xv, w[t], acc);
    }
    cg_emit_out(c, k, add(c, d->orow0, lx.iv), col, acc, nval);
    cg_loop_end(c, &lx, NULL);
}

static void
dw_body(CG *c, void *va, LLVMValueRef col, int nval)
{
    DwArg *d = va;
    const Kernel *k = d->k;
    LLVMValueRef bias = cg_vf(c, 0.0), w[64];
    if (k->nin >= 3) {
        const View *bv = &k->in[2];
        int64_t bs = bv->stride[bv->rank - 1];
        bias = cg_load_vec(c, bv->buf, add(c, cg_i64(c, bv->offset), mul(c, col, bs)), bs, nval);
    }
    for (int t = 0; t < d->T; t++) {
        LLVMValueRef wo = add(c, cg_pack_off(c, d->kp, (int64_t)t * d->Cp * 4), mul(c, col, 4));
        w[t] = cg_load_packed(c, wo);
        LLVMSetAlignment(w[t], 4);
        w[t] = LLVMBuildSelect(c->b, d->vy[t], w[t], cg_vf(c, 0.0), ""); /* input row outside: no tap */
    }
    if (d->xlo > 0) dw_pixels(c, d, col, nval, w, bias, cg_i64(c, 0), cg_i64(c, d->xlo), 1);
    if (d->xhi > d->xlo) dw_pixels(c, d, col, nval, w, bias, cg_i64(c, d->xlo), cg_i64(c, d->xhi), 0);
    if (d->Wo > d->xhi) dw_pixels(c, d, col, nval, w, bias, cg_i64(c, d->xhi > d->xlo ? d->xhi : d->xlo), cg_i64(c, d->Wo), 1);
}

void
cg_dwconv(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    const View *x = &k->in[0], *w = &k->in[1], *o = &k->out;
    int64_t H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t Ho = o->shape[1], Wo = o->shape[2], kh = w->shape[2], kw = w->shape[3];
    int64_t sh = k->attrs.stride[0], sw = k->attrs.stride[1], ph = k->attrs.pad[0], pw = k->attrs.pad[1];
    int64_t dh = k->attrs.dil[0] ? k->attrs.dil[0] : 1, dw = k->attrs.dil[1] ? k->attrs.dil[1] : 1;
    DwArg d;
    memset(&d, 0, sizeof d);
    d.k = k;
    d.kp = kp;
    d.T = kh * kw;
    d.Cp = kp->pcp; /* the packed tap row (>= C rounded up to lanes) */
    d.sc = x->stride[3];
    d.W = W;
    d.Wo = Wo;
    d.kw = kw;
    d.sw = sw;
    d.pw = pw;
    d.dw = dw;
    d.sx2 = x->stride[2];
    if (d.T > 64) d.T = 64; /* guarded by the caller's checks on kernel size */
    /* interior: ox*sw - pw >= 0 and ox*sw + (kw-1)*dw - pw <= W-1 */
    d.xlo = (pw + sw - 1) / sw;
    d.xhi = W - 1 - (kw - 1) * dw + pw >= 0 ? (W - 1 - (kw - 1) * dw + pw) / sw + 1 : 0;
    if (d.xhi > Wo) d.xhi = Wo;
    if (d.xlo > Wo) d.xlo = Wo;
    Loop lr;
    cg_loop_begin(c, &lr, begin, end, NULL, 0, "row");
    LLVMValueRef b = LLVMBuildUDiv(c->b, lr.iv, cg_i64(c, Ho), "");
    LLVMValueRef oy = LLVMBuildURem(c->b, lr.iv, cg_i64(c, Ho), "");
    LLVMValueRef boff = add(c, cg_i64(c, x->offset), mul(c, b, x->stride[0]));
    for (int64_t t = 0; t < d.T; t++) {
        int64_t ky = t / kw;
        LLVMValueRef iy = add(c, mul(c, oy, sh), cg_i64(c, ky * dh - ph));
        d.vy[t] = LLVMBuildICmp(c->b, LLVMIntULT, iy, cg_i64(c, H), "");
        LLVMValueRef iyc = LLVMBuildSelect(c->b, d.vy[t], iy, cg_i64(c, 0), "");
        d.yoff[t] = add(c, boff, mul(c, iyc, x->stride[1]));
    }
    d.orow0 = mul(c, lr.iv, Wo);
    chan_loop(c, C, dw_body, &d);
    cg_loop_end(c, &lr, NULL);
}

/* ------------------------------------------------------------ scan */

/* The group's nvec full vectors as one wide vector (cg_wide_begin): the
 * softplus, exp and recurrence of the nvec vectors are issued interleaved,
 * nvec independent dependency chains instead of one after the other (the
 * chain of one step, ~45 dependent operations, is longer than what the
 * out-of-order window overlaps).  Unit channel strides only. */
static void
scan_group_wide(CG *c, const Kernel *k, LLVMValueRef b, LLVMValueRef col0, int nvec, int64_t Lr)
{
    const View *u = &k->in[0], *dt = &k->in[1], *A = &k->in[2], *bv = &k->in[3];
    int ru = u->rank, rd = dt->rank, rb = bv->rank;
    CGWide w;
    cg_wide_begin(c, nvec, &w);
    LLVMValueRef av = cg_load_vec(c, A->buf, add(c, cg_i64(c, A->offset), col0), 1, c->L);
    LLVMValueRef h0 = cg_vf(c, 0.0);
    Loop l;
    cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, Lr), &h0, 1, "l");
    LLVMValueRef row = add(c, mul(c, b, Lr), l.iv);
    LLVMValueRef uoff = cg_row_off(c, u, NULL, ru - 1, row), doff = cg_row_off(c, dt, NULL, rd - 1, row);
    LLVMValueRef bs = cg_load_vec(c, bv->buf, cg_row_off(c, bv, NULL, rb - 1, row), 0, 1);
    LLVMValueRef uv = cg_load_vec(c, u->buf, add(c, uoff, col0), 1, c->L);
    LLVMValueRef dv = cg_load_vec(c, dt->buf, add(c, doff, col0), 1, c->L);
    LLVMValueRef delta = k->softplus_dt ? cg_vsoftplus(c, dv) : dv;
    LLVMValueRef da = cg_vexp(c, LLVMBuildFMul(c->b, delta, av, ""));
    LLVMValueRef x = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, delta, bs, ""), uv, "");
    LLVMValueRef h = cg_fma(c, da, l.phi[0], x);
    cg_wide_end(c, &w);
    for (int v = 0; v < nvec; v++)
        cg_emit_out(c, k, row, add(c, col0, cg_i64(c, (int64_t)v * c->L)), cg_wide_part(c, h, v), c->L);
    cg_loop_end(c, &l, &h);
}

/* one task: channel vectors [col0/L, +nvec) of image b, the last one with
 * `last` valid lanes; sequential over the Lr positions */
static void
scan_group(CG *c, const Kernel *k, LLVMValueRef b, LLVMValueRef col0, int nvec, int last, int64_t Lr)
{
    const View *u = &k->in[0], *dt = &k->in[1], *A = &k->in[2], *bv = &k->in[3];
    int ru = u->rank, rd = dt->rank, rb = bv->rank;
    int64_t sa = A->stride[0], su = u->stride[ru - 1], sd = dt->stride[rd - 1];
    if ((nvec == 2 || nvec == 4) && last == c->L && sa == 1 && su == 1 && sd == 1 && nvec * c->L <= 64) {
        scan_group_wide(c, k, b, col0, nvec, Lr);
        return;
    }
    LLVMValueRef col[MC_LLVM_MAX_SCAN_GROUP], av[MC_LLVM_MAX_SCAN_GROUP], h0[MC_LLVM_MAX_SCAN_GROUP];
    int nval[MC_LLVM_MAX_SCAN_GROUP];
    for (int v = 0; v < nvec; v++) {
        col[v] = add(c, col0, cg_i64(c, (int64_t)v * c->L));
        nval[v] = v == nvec - 1 ? last : c->L;
        av[v] = cg_load_vec(c, A->buf, add(c, cg_i64(c, A->offset), mul(c, col[v], sa)), sa, nval[v]);
        h0[v] = cg_vf(c, 0.0);
    }
    Loop l;
    cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, Lr), h0, nvec, "l");
    LLVMValueRef row = add(c, mul(c, b, Lr), l.iv);
    LLVMValueRef uoff = cg_row_off(c, u, NULL, ru - 1, row), doff = cg_row_off(c, dt, NULL, rd - 1, row);
    LLVMValueRef bs = cg_load_vec(c, bv->buf, cg_row_off(c, bv, NULL, rb - 1, row), 0, 1);
    LLVMValueRef h[MC_LLVM_MAX_SCAN_GROUP];
    for (int v = 0; v < nvec; v++) {
        LLVMValueRef uv = cg_load_vec(c, u->buf, add(c, uoff, mul(c, col[v], su)), su, nval[v]);
        LLVMValueRef dv = cg_load_vec(c, dt->buf, add(c, doff, mul(c, col[v], sd)), sd, nval[v]);
        LLVMValueRef delta = k->softplus_dt ? cg_vsoftplus(c, dv) : dv;
        LLVMValueRef da = cg_vexp(c, LLVMBuildFMul(c->b, delta, av[v], ""));
        LLVMValueRef x = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, delta, bs, ""), uv, "");
        h[v] = cg_fma(c, da, l.phi[v], x);
        cg_emit_out(c, k, row, col[v], h[v], nval[v]);
    }
    cg_loop_end(c, &l, h);
}

void
cg_scan(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    const View *o = &k->out;
    int64_t D = mc_llvm_cols(o->shape, o->rank), B = o->shape[0];
    int64_t Lr = mc_llvm_rows(o->shape, o->rank) / (B ? B : 1);
    int64_t nch = (D + c->L - 1) / c->L, rem = D % c->L, G = kp->group; /* channel vectors per task */
    int64_t ngr = (nch + G - 1) / G, tailv = nch - (ngr - 1) * G; /* vectors in the last group */
    int tlast = rem ? (int)rem : c->L;
    Loop lt;
    cg_loop_begin(c, &lt, begin, end, NULL, 0, "task");
    LLVMValueRef b = LLVMBuildUDiv(c->b, lt.iv, cg_i64(c, ngr), "");
    LLVMValueRef g = LLVMBuildURem(c->b, lt.iv, cg_i64(c, ngr), "");
    LLVMValueRef col0 = mul(c, g, G * c->L);
    if (tailv == G && tlast == c->L) {
        scan_group(c, k, b, col0, (int)G, c->L, Lr);
    } else {
        LLVMValueRef last = LLVMBuildICmp(c->b, LLVMIntEQ, g, cg_i64(c, ngr - 1), "");
        LLVMBasicBlockRef tb = cg_block(c, "tail"), fb = cg_block(c, "full"), jb = cg_block(c, "join");
        LLVMBuildCondBr(c->b, last, tb, fb);
        LLVMPositionBuilderAtEnd(c->b, tb);
        scan_group(c, k, b, col0, (int)tailv, tlast, Lr);
        LLVMBuildBr(c->b, jb);
        LLVMPositionBuilderAtEnd(c->b, fb);
        if (ngr > 1) scan_group(c, k, b, col0, (int)G, c->L, Lr);
        LLVMBuildBr(c->b, jb);
        LLVMPositionBuilderAtEnd(c->b, jb);
    }
    cg_loop_end(c, &lt, NULL);
}

/* ------------------------------------------------------------ state fusion */

#define F25_SPAN (2 * MC_F25_REACH + 1) /* offsets -REACH..REACH */

/* The distinct offsets of the taps along axis 0 (rows) or 1 (columns), ascending; their count. */
static int
f25_offsets(int axis, int *offs)
{
    int n = 0;
    for (int o = -MC_F25_REACH; o <= MC_F25_REACH; o++)
        for (int t = 0; t < MC_F25_NTAPS; t++)
            if (mc_f25_off(t, axis) == o) {
                offs[n++] = o;
                break;
            }
    return n;
}

/* Per output row (b, y) and channel vector: the 25 tap weight vectors are
 * loaded once (registers) and the row's pixels loop inside, so a pixel
 * costs 25 loads of h and 25 FMAs (it was 50 loads: weights re-read per
 * pixel).  Rows are clamped once per row; pixels at least MC_F25_REACH (5)
 * from both edges (the interior) need no clamping in x, the border pixels clamp. */
typedef struct F25Arg {
    const Kernel *k;
    const KPlan *kp;
    int64_t Dp, sd, sx, W;
    LLVMValueRef yoff[F25_SPAN], orow0; /* index = offset + MC_F25_REACH */
} F25Arg;

static LLVMValueRef
clampi(CG *c, LLVMValueRef v, int64_t hi)
{
    LLVMValueRef lo0 = LLVMBuildICmp(c->b, LLVMIntSLT, v, cg_i64(c, 0), "");
    v = LLVMBuildSelect(c->b, lo0, cg_i64(c, 0), v, "");
    LLVMValueRef big = LLVMBuildICmp(c->b, LLVMIntSGT, v, cg_i64(c, hi), "");
    return LLVMBuildSelect(c->b, big, cg_i64(c, hi), v, "");
}

static void
f25_pixels(CG *c, F25Arg *f, LLVMValueRef col, int nval, LLVMValueRef *w, int64_t lo, int64_t hi, int border)
{
    const View *h = &f->k->in[0];
    Loop lx;
    cg_loop_begin(c, &lx, cg_i64(c, lo), cg_i64(c, hi), NULL, 0, border ? "xb" : "x");
    LLVMValueRef xoff[F25_SPAN], coff = mul(c, col, f->sd);
    int offs[F25_SPAN], noffs = f25_offsets(1, offs);
    for (int i = 0; i < noffs; i++) {
        LLVMValueRef xi = add(c, lx.iv, cg_i64(c, offs[i]));
        if (border) xi = clampi(c, xi, f->W - 1);
        xoff[offs[i] + MC_F25_REACH] = add(c, mul(c, xi, f->sx), coff);
    }
    LLVMValueRef acc = NULL;
    for (int t = 0; t < MC_F25_NTAPS; t++) {
        int dy = mc_f25_dy(t) + MC_F25_REACH, dx = mc_f25_dx(t) + MC_F25_REACH;
        LLVMValueRef hv = cg_load_vec(c, h->buf, add(c, f->yoff[dy], xoff[dx]), f->sd, nval);
        acc = acc ? cg_fma(c, hv, w[t], acc) : LLVMBuildFMul(c->b, hv, w[t], "");
    }
    cg_emit_out(c, f->k, add(c, f->orow0, lx.iv), col, acc, nval);
    cg_loop_end(c, &lx, NULL);
}

static void
f25_body(CG *c, void *va, LLVMValueRef col, int nval)
{
    F25Arg *f = va;
    LLVMValueRef w[MC_F25_NTAPS];
    for (int t = 0; t < MC_F25_NTAPS; t++) {
        w[t] = cg_load_packed(c, add(c, cg_pack_off(c, f->kp, (int64_t)t * f->Dp * 4), mul(c, col, 4)));
        LLVMSetAlignment(w[t], 4);
    }
    int64_t W = f->W, R = MC_F25_REACH, xlo = W > 2 * R ? R : W, xhi = W > 2 * R ? W - R : W;
    if (xlo > 0) f25_pixels(c, f, col, nval, w, 0, xlo, 1);
    if (xhi > xlo) f25_pixels(c, f, col, nval, w, xlo, xhi, 0);
    if (W > xhi) f25_pixels(c, f, col, nval, w, xhi, W, 1);
}

void
cg_fusion25(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    const View *h = &k->in[0];
    int64_t H = h->shape[1], W = h->shape[2], D = h->shape[3];
    int64_t full = D / c->L, rem = D % c->L, nch = full + (rem != 0);
    int64_t vpc = kp->group, nck = (nch + vpc - 1) / vpc; /* channel vectors per task */
    F25Arg f;
    memset(&f, 0, sizeof f);
    f.k = k;
    f.kp = kp;
    f.Dp = kp->pcp; /* the packed tap row (>= nch * lanes) */
    f.sd = h->stride[3];
    f.sx = h->stride[2];
    f.W = W;
    Loop lt;
    cg_loop_begin(c, &lt, begin, end, NULL, 0, "task");
    LLVMValueRef row = LLVMBuildUDiv(c->b, lt.iv, cg_i64(c, nck), "");
    LLVMValueRef ck = LLVMBuildURem(c->b, lt.iv, cg_i64(c, nck), "");
    LLVMValueRef b = LLVMBuildUDiv(c->b, row, cg_i64(c, H), "");
    LLVMValueRef y = LLVMBuildURem(c->b, row, cg_i64(c, H), "");
    LLVMValueRef boff = add(c, cg_i64(c, h->offset), mul(c, b, h->stride[0]));
    int offs[F25_SPAN], noffs = f25_offsets(0, offs);
    for (int i = 0; i < noffs; i++)
        f.yoff[offs[i] + MC_F25_REACH] =
            add(c, boff, mul(c, clampi(c, add(c, y, cg_i64(c, offs[i])), H - 1), h->stride[1]));
    f.orow0 = mul(c, row, W);
    /* full vectors [ck*vpc, min((ck+1)*vpc, full)), then the tail vector in the last chunk */
    LLVMValueRef v0 = mul(c, ck, vpc), v1 = add(c, v0, cg_i64(c, vpc));
    LLVMValueRef big = LLVMBuildICmp(c->b, LLVMIntSGT, v1, cg_i64(c, full), "");
    v1 = LLVMBuildSelect(c->b, big, cg_i64(c, full), v1, "");
    if (full > 0) {
        Loop l;
        cg_loop_begin(c, &l, v0, v1, NULL, 0, "ch");
        f25_body(c, &f, mul(c, l.iv, c->L), c->L);
        cg_loop_end(c, &l, NULL);
    }
    if (rem) {
        If fi;
        cg_if_begin(c, &fi, LLVMBuildICmp(c->b, LLVMIntEQ, ck, cg_i64(c, nck - 1), ""), "tail");
        f25_body(c, &f, cg_i64(c, full * c->L), (int)rem);
        cg_if_end(c, &fi);
    }
    cg_loop_end(c, &lt, NULL);
}

/* ------------------------------------------------------------ layernorm */

/* sum over the row of f(x) where f = x (mean == NULL) or (x - mean)^2 */
static LLVMValueRef
row_sum(CG *c, const View *x, LLVMValueRef xoff, int64_t C, LLVMValueRef mean)
{
    int64_t sc = x->stride[x->rank - 1], full = C / c->L, rem = C % c->L;
    LLVMValueRef acc = cg_vf(c, 0.0);
    if (full > 0) {
        Loop l;
        cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, full), &acc, 1, "sum");
        LLVMValueRef v = cg_load_vec(c, x->buf, add(c, xoff, mul(c, mul(c, l.iv, c->L), sc)), sc, c->L);
        if (mean) {
            v = LLVMBuildFSub(c->b, v, mean, "");
            v = LLVMBuildFMul(c->b, v, v, "");
        }
        LLVMValueRef nx = LLVMBuildFAdd(c->b, l.phi[0], v, "");
        cg_loop_end(c, &l, &nx);
        acc = l.phi[0];
    }
    if (rem) {
        LLVMValueRef v = cg_load_vec(c, x->buf, add(c, xoff, cg_i64(c, full * c->L * sc)), sc, (int)rem);
        if (mean) {
            v = LLVMBuildFSub(c->b, v, mean, "");
            v = LLVMBuildFMul(c->b, v, v, "");
            v = LLVMBuildSelect(c->b, cg_mask(c, (int)rem), v, cg_vf(c, 0.0), "");
        }
        acc = LLVMBuildFAdd(c->b, acc, v, "");
    }
    return cg_hsum(c, acc);
}

typedef struct LnArg {
    const Kernel *k;
    LLVMValueRef xoff, mean, rstd, row;
} LnArg;

static void
ln_body(CG *c, void *va, LLVMValueRef col, int nval)
{
    LnArg *a = va;
    const View *x = &a->k->in[0], *g = &a->k->in[1], *be = &a->k->in[2];
    int64_t sc = x->stride[x->rank - 1], sg = g->stride[g->rank - 1], sb = be->stride[be->rank - 1];
    LLVMValueRef v = cg_load_vec(c, x->buf, add(c, a->xoff, mul(c, col, sc)), sc, nval);
    LLVMValueRef gv = cg_load_vec(c, g->buf, add(c, cg_i64(c, g->offset), mul(c, col, sg)), sg, nval);
    LLVMValueRef bv = cg_load_vec(c, be->buf, add(c, cg_i64(c, be->offset), mul(c, col, sb)), sb, nval);
    v = LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, v, a->mean, ""), a->rstd, "");
    v = cg_fma(c, v, gv, bv);
    cg_emit_out(c, a->k, a->row, col, v, nval);
}

void
cg_layernorm(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    const View *x = &k->in[0];
    int64_t C = mc_llvm_cols(x->shape, x->rank);
    double eps = k->attrs.eps > 0 ? k->attrs.eps : 1e-5;
    Loop lr;
    cg_loop_begin(c, &lr, begin, end, NULL, 0, "row");
    LnArg a;
    a.k = k;
    a.row = lr.iv;
    a.xoff = cg_row_off(c, x, NULL, x->rank - 1, lr.iv);
    LLVMValueRef invc = cg_f32(c, 1.0 / (double)C);
    LLVMValueRef mean = LLVMBuildFMul(c->b, row_sum(c, x, a.xoff, C, NULL), invc, "");
    a.mean = cg_splat(c, mean);
    LLVMValueRef var = LLVMBuildFMul(c->b, row_sum(c, x, a.xoff, C, a.mean), invc, "");
    LLVMValueRef sd = LLVMBuildFAdd(c->b, var, cg_f32(c, eps), "");
    LLVMTypeRef ft = c->f32;
    sd = cg_intrinsic(c, "llvm.sqrt", &ft, 1, &sd, 1);
    a.rstd = cg_splat(c, LLVMBuildFDiv(c->b, cg_f32(c, 1.0), sd, ""));
    chan_loop(c, C, ln_body, &a);
    cg_loop_end(c, &lr, NULL);
}

/* ------------------------------------------------------------ mean over H*W */

typedef struct MeanArg {
    const Kernel *k;
    LLVMValueRef b;
    int64_t HW;
} MeanArg;

static void
mean_body(CG *c, void *va, LLVMValueRef col, int nval)
{
    MeanArg *m = va;
    const View *x = &m->k->in[0];
    int64_t sc = x->stride[x->rank - 1];
    LLVMValueRef z = LLVMConstNull(c->vd);
    Loop l;
    cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, m->HW), &z, 1, "p");
    LLVMValueRef row = add(c, mul(c, m->b, m->HW), l.iv);
    LLVMValueRef v = cg_load_vec(c, x->buf, add(c, cg_row_off(c, x, NULL, x->rank - 1, row), mul(c, col, sc)), sc, nval);
    LLVMValueRef nx = LLVMBuildFAdd(c->b, l.phi[0], LLVMBuildFPExt(c->b, v, c->vd, ""), "");
    cg_loop_end(c, &l, &nx);
    LLVMValueRef inv[64];
    for (int i = 0; i < c->L; i++) inv[i] = LLVMConstReal(c->f64, 1.0 / (double)m->HW);
    LLVMValueRef mean = LLVMBuildFMul(c->b, l.phi[0], LLVMConstVector(inv, (unsigned)c->L), "");
    cg_emit_out(c, m->k, m->b, col, LLVMBuildFPTrunc(c->b, mean, c->vf, ""), nval);
}

void
cg_mean_hw(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    const View *x = &k->in[0];
    int64_t B = x->shape[0], C = mc_llvm_cols(x->shape, x->rank);
    MeanArg m;
    m.k = k;
    m.HW = mc_llvm_rows(x->shape, x->rank) / (B ? B : 1);
    Loop lb;
    cg_loop_begin(c, &lb, begin, end, NULL, 0, "b");
    m.b = lb.iv;
    chan_loop(c, C, mean_body, &m);
    cg_loop_end(c, &lb, NULL);
}

/* ------------------------------------------------------------ elementwise */

typedef struct EwArg {
    const Kernel *k;
    LLVMValueRef row;
} EwArg;

static void
ew_body(CG *c, void *va, LLVMValueRef col, int nval)
{
    EwArg *e = va;
    cg_emit_out(c, e->k, e->row, col, NULL, nval);
}

void
mc_llvm_eltwise_merge(const Kernel *k, Kernel *m)
{
    *m = *k;
    for (;;) {
        int r = m->out.rank;
        if (r < 2 || m->out.shape[r - 1] >= 1024) break;
        int ok = m->out.stride[r - 2] == m->out.stride[r - 1] * m->out.shape[r - 1];
        for (int i = 0; i < m->nargs && ok; i++)
            ok = m->args[i].rank == r && m->args[i].stride[r - 2] == m->args[i].stride[r - 1] * m->args[i].shape[r - 1];
        if (!ok) break;
        View *vs[MC_MAX_ARGS + 1];
        int nv = 0;
        vs[nv++] = &m->out;
        for (int i = 0; i < m->nargs; i++) vs[nv++] = &m->args[i];
        for (int i = 0; i < nv; i++) {
            View *v = vs[i];
            v->shape[r - 2] *= v->shape[r - 1];
            v->stride[r - 2] = v->stride[r - 1];
            v->rank = r - 1;
        }
    }
}

void
cg_eltwise(CG *c, const Kernel *k0, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    Kernel k;
    mc_llvm_eltwise_merge(k0, &k);
    Loop lr;
    cg_loop_begin(c, &lr, begin, end, NULL, 0, "row");
    EwArg e = {&k, lr.iv};
    chan_loop(c, mc_llvm_cols(k.out.shape, k.out.rank), ew_body, &e);
    cg_loop_end(c, &lr, NULL);
}
