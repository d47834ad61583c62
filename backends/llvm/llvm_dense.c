/* backends/llvm/llvm_dense.c -- the kernels of dense prediction heads:
 * bilinear resize and adaptive average pooling, NHWC.
 *
 * Takes a KK_RESIZE / KK_AVGPOOL kernel and its plan; produces its body in
 * the current function.  Parallel range: output rows (b, y), n = B*h (the
 * plan, mc_llvm_plan).  Inside a row: output pixels x, then the channels in
 * steps of the schedule's tile_n (tile_n/L vectors as one wide vector,
 * cg_wide_begin, when the channel stride is 1), then single vectors, then
 * a masked tail; every value goes through cg_emit_out (the fused epilogue,
 * any strided out view).  x may be any strided view (a channel slice; a
 * channel stride other than 1 loads by scalar gathers).
 *
 *   resize   per row and per pixel the two source rows/columns and the
 *            weight of the second, computed in double exactly as
 *            mc_ref_resize_coord does (src = (dst+0.5)*in/out-0.5 clamped
 *            at 0, or dst*(in-1)/(out-1) with align_corners; floor, the
 *            second index clamped to in-1), then per channel vector two
 *            horizontal lerps and a vertical one in f32 (a + w*(b-a)).
 *   avgpool  PyTorch's bins (rows floor(y*H/h) .. ceil((y+1)*H/h), columns
 *            alike), per channel vector a sum in double over the bin, rows
 *            outer, in the reference's order, times 1/count.
 * Owns nothing.
 */
#include "llvm_internal.h"
#include <string.h>

static LLVMValueRef
imul(CG *c, LLVMValueRef a, int64_t k)
{
    return k == 1 ? a : LLVMBuildMul(c->b, a, cg_i64(c, k), "");
}

/* Channel steps of one output pixel: body(col, nvalid) for [0, C) in wide
 * steps of nw vectors (unit channel stride only; c->L is nw*L inside),
 * then single vectors, then the masked tail. */
typedef void (*DenseFn)(CG *c, void *arg, LLVMValueRef col, int nvalid);

static void
dense_channels(CG *c, int64_t C, int64_t sc, int nw, DenseFn fn, void *arg)
{
    int64_t L = c->L, done = 0;
    if (nw > 1 && sc == 1 && C >= nw * L) {
        int64_t steps = C / (nw * L);
        Loop l;
        cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, steps), NULL, 0, "chw");
        LLVMValueRef col = imul(c, l.iv, nw * L);
        CGWide w;
        cg_wide_begin(c, nw, &w);
        fn(c, arg, col, c->L);
        cg_wide_end(c, &w);
        cg_loop_end(c, &l, NULL);
        done = steps * nw * L;
    }
    int64_t single = (C - done) / L;
    if (single > 1) {
        Loop l;
        cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, single), NULL, 0, "ch");
        fn(c, arg, LLVMBuildAdd(c->b, cg_i64(c, done), imul(c, l.iv, L), ""), (int)L);
        cg_loop_end(c, &l, NULL);
    } else if (single == 1) {
        fn(c, arg, cg_i64(c, done), (int)L);
    }
    done += single * L;
    if (C > done) fn(c, arg, cg_i64(c, done), (int)(C - done));
}

/* wide steps of the kernel's schedule: tile_n / L vectors, 1 without */
static int
wide_steps(CG *c, const KPlan *kp)
{
    int nw = kp->nr / c->L;
    return nw < 1 ? 1 : nw;
}

/* ------------------------------------------------------------ resize */

/* Source index pair and weight along one axis, as mc_ref_resize_coord:
 * dst (i64) -> *i0, *i1 (i64), *w1 (f32). */
static void
resize_coord(CG *c, LLVMValueRef dst, int64_t in, int64_t out, int align, LLVMValueRef *i0, LLVMValueRef *i1,
             LLVMValueRef *w1)
{
    LLVMValueRef d = LLVMBuildSIToFP(c->b, dst, c->f64, ""), src;
    if (align) {
        if (out > 1) {
            src = LLVMBuildFMul(c->b, d, LLVMConstReal(c->f64, (double)(in - 1)), "");
            src = LLVMBuildFDiv(c->b, src, LLVMConstReal(c->f64, (double)(out - 1)), "");
        } else {
            src = LLVMConstReal(c->f64, 0.0);
        }
    } else {
        src = LLVMBuildFAdd(c->b, d, LLVMConstReal(c->f64, 0.5), "");
        src = LLVMBuildFMul(c->b, src, LLVMConstReal(c->f64, (double)in), "");
        src = LLVMBuildFDiv(c->b, src, LLVMConstReal(c->f64, (double)out), "");
        src = LLVMBuildFSub(c->b, src, LLVMConstReal(c->f64, 0.5), "");
        LLVMValueRef neg = LLVMBuildFCmp(c->b, LLVMRealOLT, src, LLVMConstReal(c->f64, 0.0), "");
        src = LLVMBuildSelect(c->b, neg, LLVMConstReal(c->f64, 0.0), src, "");
    }
    LLVMValueRef f = LLVMBuildFPToSI(c->b, src, c->i64, "");
    LLVMValueRef big = LLVMBuildICmp(c->b, LLVMIntSGT, f, cg_i64(c, in - 1), "");
    f = LLVMBuildSelect(c->b, big, cg_i64(c, in - 1), f, "");
    LLVMValueRef last = LLVMBuildICmp(c->b, LLVMIntSLT, f, cg_i64(c, in - 1), "");
    *i0 = f;
    *i1 = LLVMBuildSelect(c->b, last, LLVMBuildAdd(c->b, f, cg_i64(c, 1), ""), f, "");
    LLVMValueRef w = LLVMBuildFSub(c->b, src, LLVMBuildSIToFP(c->b, f, c->f64, ""), "");
    *w1 = LLVMBuildFPTrunc(c->b, w, c->f32, "");
}

typedef struct ResizeArg {
    const Kernel *k;
    int64_t sc;
    LLVMValueRef row;                  /* output row index (b, y, x) in [B,h,w] */
    LLVMValueRef src[4];               /* element offsets of the source pixels 00, 01, 10, 11 */
    LLVMValueRef wr, wc;               /* f32 weights of the second row / column */
} ResizeArg;

/* a + w*(b - a) on vectors */
static LLVMValueRef
lerp(CG *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef w)
{
    return cg_fma(c, w, LLVMBuildFSub(c->b, b, a, ""), a);
}

static void
resize_body(CG *c, void *va, LLVMValueRef col, int nval)
{
    ResizeArg *a = va;
    int buf = a->k->in[0].buf;
    LLVMValueRef co = imul(c, col, a->sc);
    LLVMValueRef v[4];
    for (int i = 0; i < 4; i++) v[i] = cg_load_vec(c, buf, LLVMBuildAdd(c->b, a->src[i], co, ""), a->sc, nval);
    LLVMValueRef wc = cg_splat(c, a->wc), wr = cg_splat(c, a->wr);
    LLVMValueRef top = lerp(c, v[0], v[1], wc), bot = lerp(c, v[2], v[3], wc);
    cg_emit_out(c, a->k, a->row, col, lerp(c, top, bot, wr), nval);
}

void
cg_resize(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    const View *x = &k->in[0], *o = &k->out;
    int64_t H = x->shape[1], W = x->shape[2], C = x->shape[3], oh = o->shape[1], ow = o->shape[2];
    int align = k->attrs.align_corners != 0;
    ResizeArg a;
    memset(&a, 0, sizeof a);
    a.k = k;
    a.sc = x->stride[3];
    Loop lr;
    cg_loop_begin(c, &lr, begin, end, NULL, 0, "row");
    LLVMValueRef b = LLVMBuildUDiv(c->b, lr.iv, cg_i64(c, oh), "");
    LLVMValueRef y = LLVMBuildURem(c->b, lr.iv, cg_i64(c, oh), "");
    LLVMValueRef r0, r1;
    resize_coord(c, y, H, oh, align, &r0, &r1, &a.wr);
    LLVMValueRef boff = LLVMBuildAdd(c->b, cg_i64(c, x->offset), imul(c, b, x->stride[0]), "");
    LLVMValueRef yo[2] = {LLVMBuildAdd(c->b, boff, imul(c, r0, x->stride[1]), ""),
                          LLVMBuildAdd(c->b, boff, imul(c, r1, x->stride[1]), "")};
    LLVMValueRef orow0 = imul(c, lr.iv, ow);
    Loop lx;
    cg_loop_begin(c, &lx, cg_i64(c, 0), cg_i64(c, ow), NULL, 0, "x");
    LLVMValueRef c0, c1;
    resize_coord(c, lx.iv, W, ow, align, &c0, &c1, &a.wc);
    LLVMValueRef xo[2] = {imul(c, c0, x->stride[2]), imul(c, c1, x->stride[2])};
    for (int i = 0; i < 4; i++) a.src[i] = LLVMBuildAdd(c->b, yo[i / 2], xo[i % 2], "");
    a.row = LLVMBuildAdd(c->b, orow0, lx.iv, "");
    dense_channels(c, C, a.sc, wide_steps(c, kp), resize_body, &a);
    cg_loop_end(c, &lx, NULL);
    cg_loop_end(c, &lr, NULL);
}

/* ------------------------------------------------------------ adaptive average pooling */

typedef struct PoolArg {
    const Kernel *k;
    int64_t sc, sy, sx;
    LLVMValueRef row, boff, h0, h1, w0, w1, inv; /* inv: f64 1/count */
} PoolArg;

static void
pool_body(CG *c, void *va, LLVMValueRef col, int nval)
{
    PoolArg *a = va;
    int buf = a->k->in[0].buf;
    LLVMValueRef co = LLVMBuildAdd(c->b, a->boff, imul(c, col, a->sc), "");
    LLVMValueRef z = LLVMConstNull(c->vd);
    Loop ly;
    cg_loop_begin(c, &ly, a->h0, a->h1, &z, 1, "py");
    LLVMValueRef yo = LLVMBuildAdd(c->b, co, imul(c, ly.iv, a->sy), "");
    Loop lx;
    cg_loop_begin(c, &lx, a->w0, a->w1, ly.phi, 1, "px");
    LLVMValueRef v = cg_load_vec(c, buf, LLVMBuildAdd(c->b, yo, imul(c, lx.iv, a->sx), ""), a->sc, nval);
    LLVMValueRef s = LLVMBuildFAdd(c->b, lx.phi[0], LLVMBuildFPExt(c->b, v, c->vd, ""), "");
    cg_loop_end(c, &lx, &s);
    cg_loop_end(c, &ly, lx.phi);
    LLVMValueRef inv = LLVMBuildInsertElement(c->b, LLVMGetPoison(c->vd), a->inv, cg_i32(c, 0), "");
    LLVMValueRef zero[64];
    for (int i = 0; i < c->L; i++) zero[i] = cg_i32(c, 0);
    inv = LLVMBuildShuffleVector(c->b, inv, LLVMGetPoison(c->vd), LLVMConstVector(zero, (unsigned)c->L), "");
    LLVMValueRef mean = LLVMBuildFMul(c->b, ly.phi[0], inv, "");
    cg_emit_out(c, a->k, a->row, col, LLVMBuildFPTrunc(c->b, mean, c->vf, ""), nval);
}

/* [lo, hi) of bin i of n over `in`: floor(i*in/n), ceil((i+1)*in/n) */
static void
pool_bin(CG *c, LLVMValueRef i, int64_t in, int64_t n, LLVMValueRef *lo, LLVMValueRef *hi)
{
    *lo = LLVMBuildUDiv(c->b, imul(c, i, in), cg_i64(c, n), "");
    *hi = LLVMBuildUDiv(c->b, LLVMBuildAdd(c->b, imul(c, i, in), cg_i64(c, in + n - 1), ""), cg_i64(c, n), "");
}

void
cg_avgpool(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    const View *x = &k->in[0], *o = &k->out;
    int64_t H = x->shape[1], W = x->shape[2], C = x->shape[3], oh = o->shape[1], ow = o->shape[2];
    PoolArg a;
    memset(&a, 0, sizeof a);
    a.k = k;
    a.sc = x->stride[3];
    a.sy = x->stride[1];
    a.sx = x->stride[2];
    Loop lr;
    cg_loop_begin(c, &lr, begin, end, NULL, 0, "row");
    LLVMValueRef b = LLVMBuildUDiv(c->b, lr.iv, cg_i64(c, oh), "");
    LLVMValueRef y = LLVMBuildURem(c->b, lr.iv, cg_i64(c, oh), "");
    pool_bin(c, y, H, oh, &a.h0, &a.h1);
    a.boff = LLVMBuildAdd(c->b, cg_i64(c, x->offset), imul(c, b, x->stride[0]), "");
    LLVMValueRef orow0 = imul(c, lr.iv, ow);
    Loop lx;
    cg_loop_begin(c, &lx, cg_i64(c, 0), cg_i64(c, ow), NULL, 0, "x");
    pool_bin(c, lx.iv, W, ow, &a.w0, &a.w1);
    LLVMValueRef cnt = LLVMBuildMul(c->b, LLVMBuildSub(c->b, a.h1, a.h0, ""), LLVMBuildSub(c->b, a.w1, a.w0, ""), "");
    a.inv = LLVMBuildFDiv(c->b, LLVMConstReal(c->f64, 1.0), LLVMBuildSIToFP(c->b, cnt, c->f64, ""), "");
    a.row = LLVMBuildAdd(c->b, orow0, lx.iv, "");
    dense_channels(c, C, a.sc, wide_steps(c, kp), pool_body, &a);
    cg_loop_end(c, &lx, NULL);
    cg_loop_end(c, &lr, NULL);
}
