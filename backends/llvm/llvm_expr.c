/* backends/llvm/llvm_expr.c -- IR-building helpers shared by every kernel:
 * constants, loops, strided view addressing, vector loads/stores (masked for
 * partial vectors, scalar gathers for non-unit strides), the epilogue
 * expression evaluator and the vector math library.
 *
 * Takes the CG state (llvm_internal.h); produces instructions at the
 * builder's position and a few internal functions in the module (one per
 * math routine, created on first use).  Owns nothing.
 *
 * Math (on <L x float>, or <n*L x float> in wide mode; no libm calls):
 *   exp      Cody-Waite reduction by ln2, degree-7 polynomial, 2^n by
 *            exponent bits; |rel err| < 2e-7 on [-87, 88].
 *   log      mantissa in [sqrt(1/2), sqrt(2)), log(1+f) = f - f^2/2 +
 *            f^3 P(f), P of degree 8 fitted in double.
 *   softplus log1p(exp(v)) = max(v,0) + log1p(exp(-|v|)), v > 20 -> v; log1p
 *            via log(u) + (t - (u-1))/u (exact for tiny t).
 *   gelu     x*Phi(x); erfc(a) = t exp(-a^2) Q(u), t = 1/(1 + a/2), Q of
 *            degree 6 fitted in double (2e-6 relative), exp(-a^2) inline
 *            with a degree-5 fitted polynomial (see cg_vgelu).
 * Wide mode (cg_wide_begin/end) swaps the lane count and vector types so
 * the same routines are built for n vectors at once.
 */
#include "llvm_internal.h"
#include <math.h>
#include <string.h>

LLVMValueRef
cg_i64(CG *c, int64_t v)
{
    return LLVMConstInt(c->i64, (unsigned long long)v, 1);
}

LLVMValueRef
cg_i32(CG *c, int64_t v)
{
    return LLVMConstInt(c->i32, (unsigned long long)v, 1);
}

LLVMValueRef
cg_f32(CG *c, double v)
{
    return LLVMConstReal(c->f32, (double)(float)v);
}

LLVMValueRef
cg_vf(CG *c, double v)
{
    LLVMValueRef e[64];
    for (int i = 0; i < c->L; i++) e[i] = cg_f32(c, v);
    return LLVMConstVector(e, (unsigned)c->L);
}

static LLVMValueRef
cg_vi(CG *c, int64_t v)
{
    LLVMValueRef e[64];
    for (int i = 0; i < c->L; i++) e[i] = cg_i32(c, v);
    return LLVMConstVector(e, (unsigned)c->L);
}

LLVMValueRef
cg_splat(CG *c, LLVMValueRef s)
{
    LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetPoison(c->vf), s, cg_i32(c, 0), "");
    LLVMValueRef zero[64];
    for (int i = 0; i < c->L; i++) zero[i] = cg_i32(c, 0);
    return LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(c->vf), LLVMConstVector(zero, (unsigned)c->L), "");
}

LLVMValueRef
cg_mask(CG *c, int nvalid)
{
    LLVMValueRef e[64];
    for (int i = 0; i < c->L; i++) e[i] = LLVMConstInt(c->i1, i < nvalid, 0);
    return LLVMConstVector(e, (unsigned)c->L);
}

LLVMValueRef
cg_intrinsic(CG *c, const char *name, LLVMTypeRef *types, int ntypes, LLVMValueRef *args, int nargs)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, types, (size_t)ntypes);
    LLVMTypeRef ft = LLVMIntrinsicGetType(c->ctx, id, types, (size_t)ntypes);
    return LLVMBuildCall2(c->b, ft, f, args, (unsigned)nargs, "");
}

LLVMValueRef
cg_fma(CG *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc)
{
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[3] = {a, b, acc};
    return cg_intrinsic(c, "llvm.fmuladd", &t, 1, args, 3);
}

static LLVMValueRef
un(CG *c, const char *name, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    return cg_intrinsic(c, name, &t, 1, &x, 1);
}

static LLVMValueRef
bin(CG *c, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef a[2] = {x, y};
    return cg_intrinsic(c, name, &t, 1, a, 2);
}

LLVMValueRef
cg_hsum(CG *c, LLVMValueRef v)
{
    /* fixed halving tree: deterministic, no reassociation flags needed */
    int n = c->L;
    while (n > 1) {
        LLVMValueRef idx[64];
        for (int i = 0; i < c->L; i++) idx[i] = cg_i32(c, i + n / 2 < c->L ? i + n / 2 : c->L - 1);
        LLVMValueRef hi = LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(c->vf), LLVMConstVector(idx, (unsigned)c->L), "");
        v = LLVMBuildFAdd(c->b, v, hi, "");
        n /= 2;
    }
    return LLVMBuildExtractElement(c->b, v, cg_i32(c, 0), "");
}

LLVMBasicBlockRef
cg_block(CG *c, const char *name)
{
    return LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
}

void
cg_loop_begin(CG *c, Loop *l, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *carry, int n, const char *name)
{
    l->pre = LLVMGetInsertBlock(c->b);
    l->head = cg_block(c, name);
    l->body = cg_block(c, name);
    l->exit = cg_block(c, name);
    l->ncarry = n;
    LLVMBuildBr(c->b, l->head);
    LLVMPositionBuilderAtEnd(c->b, l->head);
    l->ivphi = LLVMBuildPhi(c->b, c->i64, "i");
    LLVMAddIncoming(l->ivphi, &lo, &l->pre, 1);
    for (int i = 0; i < n; i++) {
        l->phi[i] = LLVMBuildPhi(c->b, LLVMTypeOf(carry[i]), "");
        LLVMAddIncoming(l->phi[i], &carry[i], &l->pre, 1);
    }
    l->iv = l->ivphi;
    LLVMValueRef cond = LLVMBuildICmp(c->b, LLVMIntSLT, l->ivphi, hi, "");
    LLVMBuildCondBr(c->b, cond, l->body, l->exit);
    LLVMPositionBuilderAtEnd(c->b, l->body);
}

void
cg_loop_end(CG *c, Loop *l, LLVMValueRef *next)
{
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMValueRef inc = LLVMBuildAdd(c->b, l->ivphi, cg_i64(c, 1), "");
    LLVMAddIncoming(l->ivphi, &inc, &latch, 1);
    for (int i = 0; i < l->ncarry; i++) LLVMAddIncoming(l->phi[i], &next[i], &latch, 1);
    LLVMBuildBr(c->b, l->head);
    LLVMPositionBuilderAtEnd(c->b, l->exit);
}

void
cg_if_begin(CG *c, If *f, LLVMValueRef cond, const char *name)
{
    f->then = cg_block(c, name);
    f->join = cg_block(c, name);
    LLVMBuildCondBr(c->b, cond, f->then, f->join);
    LLVMPositionBuilderAtEnd(c->b, f->then);
}

void
cg_if_end(CG *c, If *f)
{
    LLVMBuildBr(c->b, f->join);
    LLVMPositionBuilderAtEnd(c->b, f->join);
}

/* ------------------------------------------------------------ addressing */

int64_t
mc_llvm_rows(const int64_t *shape, int rank)
{
    int64_t r = 1;
    for (int i = 0; i < rank - 1; i++) r *= shape[i];
    return r;
}

int64_t
mc_llvm_cols(const int64_t *shape, int rank)
{
    return rank >= 1 ? shape[rank - 1] : 1;
}

LLVMValueRef
cg_buf_ptr(CG *c, int buf)
{
    const Buffer *B = &c->p->bufs[buf];
    /* weights: where the plan keeps the graph-layout copy (the blob stores
     * only the weights some kernel reads through a view) */
    LLVMValueRef off = NULL;
    for (int s = 0; c->tab && s < c->nslot && !off; s++)
        if (c->slot_buf[s] == buf) off = c->slot_off[s];
    if (!off) off = cg_i64(c, mc_llvm_buf_offset(c->p, c->plan, buf));
    if (c->img && B->image_bytes) /* per-image segment: this image's slice */
        off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, c->img, cg_i64(c, B->image_bytes), ""), "");
    if (c->img && B->group_bytes > 0 && c->p->nsegs && c->p->segs[0].groups > 1) { /* its image group's copy */
        LLVMValueRef copy = LLVMBuildURem(c->b, c->img, cg_i64(c, c->p->segs[0].groups), "");
        off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, copy, cg_i64(c, B->group_bytes), ""), "");
    }
    int j = B->kind == BUF_OUTPUT ? mc_kprogram_output_index(c->p, buf) : -1;
    return LLVMBuildGEP2(c->b, c->i8, j > 0 ? c->out_base[j] : c->base[B->kind], &off, 1, "");
}

LLVMValueRef
cg_pack_off(CG *c, const KPlan *kp, int64_t add)
{
    if (c->tab) return add ? LLVMBuildAdd(c->b, c->pack_off, cg_i64(c, add), "") : c->pack_off;
    return cg_i64(c, kp->pack_off + add);
}

LLVMValueRef
cg_elem_ptr(CG *c, int buf, LLVMValueRef elem_off)
{
    return LLVMBuildGEP2(c->b, c->f32, cg_buf_ptr(c, buf), &elem_off, 1, "");
}

LLVMValueRef
cg_row_off(CG *c, const View *v, const int64_t *shape, int nrowdims, LLVMValueRef row)
{
    if (!shape) shape = v->shape;
    /* collapse adjacent row dims into groups with one stride each */
    int64_t gsize[MC_MAX_RANK], gstride[MC_MAX_RANK];
    int ng = 0;
    for (int i = nrowdims - 1; i >= 0; i--) {
        int64_t d = shape[i], s = v->stride[i];
        if (d == 1) continue;
        if (ng > 0 && s == gstride[ng - 1] * gsize[ng - 1]) {
            gsize[ng - 1] *= d;
            continue;
        }
        if (ng > 0 && s == 0 && gstride[ng - 1] == 0) {
            gsize[ng - 1] *= d;
            continue;
        }
        gsize[ng] = d;
        gstride[ng] = s;
        ng++;
    }
    LLVMValueRef off = cg_i64(c, v->offset);
    LLVMValueRef r = row;
    for (int g = 0; g < ng; g++) {
        LLVMValueRef idx = g == ng - 1 ? r : LLVMBuildURem(c->b, r, cg_i64(c, gsize[g]), "");
        if (gstride[g]) off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, idx, cg_i64(c, gstride[g]), ""), "");
        if (g < ng - 1) r = LLVMBuildUDiv(c->b, r, cg_i64(c, gsize[g]), "");
    }
    return off;
}

LLVMValueRef
cg_load_vec(CG *c, int buf, LLVMValueRef off, int64_t stride, int nvalid)
{
    if (stride == 0) return cg_splat(c, LLVMBuildLoad2(c->b, c->f32, cg_elem_ptr(c, buf, off), ""));
    if (stride == 1) {
        LLVMValueRef p = cg_elem_ptr(c, buf, off);
        if (nvalid >= c->L) {
            LLVMValueRef v = LLVMBuildLoad2(c->b, c->vf, p, "");
            LLVMSetAlignment(v, 4);
            return v;
        }
        LLVMTypeRef tys[2] = {c->vf, c->ptr};
        LLVMValueRef args[4] = {p, cg_i32(c, 4), cg_mask(c, nvalid), cg_vf(c, 0.0)};
        return cg_intrinsic(c, "llvm.masked.load", tys, 2, args, 4);
    }
    LLVMValueRef v = cg_vf(c, 0.0);
    for (int i = 0; i < nvalid && i < c->L; i++) {
        LLVMValueRef o = LLVMBuildAdd(c->b, off, cg_i64(c, (int64_t)i * stride), "");
        LLVMValueRef s = LLVMBuildLoad2(c->b, c->f32, cg_elem_ptr(c, buf, o), "");
        v = LLVMBuildInsertElement(c->b, v, s, cg_i32(c, i), "");
    }
    return v;
}

void
cg_store_vec(CG *c, int buf, LLVMValueRef off, int64_t stride, LLVMValueRef v, int nvalid)
{
    if (stride == 1) {
        LLVMValueRef p = cg_elem_ptr(c, buf, off);
        if (nvalid >= c->L) {
            LLVMValueRef s = LLVMBuildStore(c->b, v, p);
            LLVMSetAlignment(s, 4);
            return;
        }
        LLVMTypeRef tys[2] = {c->vf, c->ptr};
        LLVMValueRef args[4] = {v, p, cg_i32(c, 4), cg_mask(c, nvalid)};
        cg_intrinsic(c, "llvm.masked.store", tys, 2, args, 4);
        return;
    }
    int n = stride == 0 ? 1 : nvalid; /* a broadcast output keeps lane 0 */
    for (int i = 0; i < n && i < c->L; i++) {
        LLVMValueRef o = LLVMBuildAdd(c->b, off, cg_i64(c, (int64_t)i * stride), "");
        LLVMValueRef s = LLVMBuildExtractElement(c->b, v, cg_i32(c, i), "");
        LLVMBuildStore(c->b, s, cg_elem_ptr(c, buf, o));
    }
}

LLVMValueRef
cg_load_packed(CG *c, LLVMValueRef byte_off)
{
    LLVMValueRef p = LLVMBuildGEP2(c->b, c->i8, c->base[BUF_WEIGHT], &byte_off, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->vf, p, "");
    LLVMSetAlignment(v, (unsigned)(c->L * 4 > 64 ? 64 : c->L * 4));
    return v;
}

/* ------------------------------------------------------------ wide mode */

void
cg_wide_begin(CG *c, int n, CGWide *w)
{
    w->L = c->L;
    w->n = n;
    w->vf = c->vf;
    w->vi = c->vi;
    w->vd = c->vd;
    w->vb = c->vb;
    memcpy(w->vfn, c->vfn, sizeof w->vfn);
    memcpy(c->vfn, c->vfnw[n], sizeof c->vfn);
    c->L = n * w->L;
    c->vf = LLVMVectorType(c->f32, (unsigned)c->L);
    c->vi = LLVMVectorType(c->i32, (unsigned)c->L);
    c->vd = LLVMVectorType(c->f64, (unsigned)c->L);
    c->vb = LLVMVectorType(c->i1, (unsigned)c->L);
}

void
cg_wide_end(CG *c, CGWide *w)
{
    memcpy(c->vfnw[w->n], c->vfn, sizeof c->vfn);
    memcpy(c->vfn, w->vfn, sizeof c->vfn);
    c->L = w->L;
    c->vf = w->vf;
    c->vi = w->vi;
    c->vd = w->vd;
    c->vb = w->vb;
}

LLVMValueRef
cg_wide_part(CG *c, LLVMValueRef v, int i)
{
    LLVMValueRef idx[64];
    for (int j = 0; j < c->L; j++) idx[j] = cg_i32(c, i * c->L + j);
    return LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(LLVMTypeOf(v)), LLVMConstVector(idx, (unsigned)c->L), "");
}

/* ------------------------------------------------------------ vector math */

enum { VF_EXP, VF_LOG1P_EXP_NEG, VF_SOFTPLUS, VF_SILU, VF_GELU };

/* co[0] + co[1] x + ... + co[n-1] x^(n-1), Estrin's scheme: pairs
 * (co[2i] + co[2i+1] x) combined with x^2, x^4, ...; the same FMA count as
 * Horner with a dependency chain of about log2(n) instead of n (the
 * kernels that call it are latency bound: the scan, the epilogues) */
static LLVMValueRef
poly(CG *c, LLVMValueRef x, const double *co, int n)
{
    LLVMValueRef t[16];
    int m = 0;
    for (int i = 0; i < n; i += 2)
        t[m++] = i + 1 < n ? cg_fma(c, cg_vf(c, co[i + 1]), x, cg_vf(c, co[i])) : cg_vf(c, co[i]);
    LLVMValueRef xp = x;
    while (m > 1) {
        xp = LLVMBuildFMul(c->b, xp, xp, "");
        int k = 0;
        for (int i = 0; i < m; i += 2) t[k++] = i + 1 < m ? cg_fma(c, t[i + 1], xp, t[i]) : t[i];
        m = k;
    }
    return t[0];
}

/* Starts internal function `name` of type <L x f32>(<L x f32>); returns its
 * argument and saves/restores the builder position via *saved. */
static LLVMValueRef
vfn_begin(CG *c, int slot, const char *name, LLVMBasicBlockRef *saved, LLVMValueRef *savedfn)
{
    LLVMTypeRef ft = LLVMFunctionType(c->vf, &c->vf, 1, 0);
    LLVMValueRef f = LLVMAddFunction(c->mod, name, ft);
    LLVMSetLinkage(f, LLVMInternalLinkage);
    c->vfn[slot] = f;
    *saved = LLVMGetInsertBlock(c->b);
    *savedfn = c->fn;
    c->fn = f;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, f, "entry"));
    return LLVMGetParam(f, 0);
}

static void
vfn_end(CG *c, LLVMValueRef ret, LLVMBasicBlockRef saved, LLVMValueRef savedfn)
{
    LLVMBuildRet(c->b, ret);
    c->fn = savedfn;
    LLVMPositionBuilderAtEnd(c->b, saved);
}

static LLVMValueRef
call_vfn(CG *c, int slot, LLVMValueRef x)
{
    LLVMTypeRef ft = LLVMFunctionType(c->vf, &c->vf, 1, 0);
    return LLVMBuildCall2(c->b, ft, c->vfn[slot], &x, 1, "");
}

/* exp(x) * 2^(bias - 127) for x already in range: x = n ln2 + r (Cody-Waite,
 * two-part ln2), exp(r) by the ncoef coefficients P, 2^(n + bias - 127)
 * built in the exponent bits */
static LLVMValueRef
exp_scaled(CG *c, LLVMValueRef x, const double *P, int ncoef, int bias)
{
    LLVMValueRef n = un(c, "llvm.rint", LLVMBuildFMul(c->b, x, cg_vf(c, 1.4426950408889634), ""));
    LLVMValueRef r = cg_fma(c, n, cg_vf(c, -0.693359375), x);
    r = cg_fma(c, n, cg_vf(c, 2.12194440e-4), r);
    LLVMValueRef p = poly(c, r, P, ncoef);
    LLVMValueRef ni = LLVMBuildFPToSI(c->b, n, c->vi, "");
    LLVMValueRef bits = LLVMBuildShl(c->b, LLVMBuildAdd(c->b, ni, cg_vi(c, bias), ""), cg_vi(c, 23), "");
    return LLVMBuildFMul(c->b, p, LLVMBuildBitCast(c->b, bits, c->vf, ""), "");
}

static LLVMValueRef
exp_body(CG *c, LLVMValueRef x)
{
    static const double P[8] = {1.0, 1.0, 0.5, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040};
    x = bin(c, "llvm.minnum", x, cg_vf(c, 88.3));
    x = bin(c, "llvm.maxnum", x, cg_vf(c, -87.3));
    return exp_scaled(c, x, P, 8, 127);
}

LLVMValueRef
cg_vexp(CG *c, LLVMValueRef x)
{
    if (!c->vfn[VF_EXP]) {
        LLVMBasicBlockRef sb;
        LLVMValueRef sf;
        LLVMValueRef a = vfn_begin(c, VF_EXP, "mc_vexp", &sb, &sf);
        vfn_end(c, exp_body(c, a), sb, sf);
    }
    return call_vfn(c, VF_EXP, x);
}

LLVMValueRef
cg_vrecip(CG *c, LLVMValueRef x)
{
    if (!c->t->x86_avx512 || c->L % 16 || c->L == 48) return LLVMBuildFDiv(c->b, cg_vf(c, 1.0), x, "");
    if (c->L > 16) { /* wide mode: one rcp14 per 16 lanes */
        LLVMTypeRef v16 = LLVMVectorType(c->f32, 16);
        LLVMValueRef part[4] = {NULL, NULL, NULL, NULL}, idx[64];
        int n = c->L / 16;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 16; j++) idx[j] = cg_i32(c, i * 16 + j);
            LLVMValueRef xi = LLVMBuildShuffleVector(c->b, x, LLVMGetPoison(c->vf), LLVMConstVector(idx, 16), "");
            LLVMValueRef args[3] = {xi, LLVMConstNull(v16), LLVMConstInt(LLVMInt16TypeInContext(c->ctx), 0xffff, 0)};
            part[i] = cg_intrinsic(c, "llvm.x86.avx512.rcp14.ps.512", NULL, 0, args, 3);
        }
        /* concatenate: pairs of 16 -> 32, then 32 -> 64 */
        while (n > 1) {
            int w = LLVMGetVectorSize(LLVMTypeOf(part[0]));
            for (int j = 0; j < 2 * w; j++) idx[j] = cg_i32(c, j);
            int m = 0;
            for (int i = 0; i + 1 < n; i += 2)
                part[m++] = LLVMBuildShuffleVector(c->b, part[i], part[i + 1], LLVMConstVector(idx, (unsigned)(2 * w)), "");
            n = m;
        }
        LLVMValueRef r = part[0];
        LLVMValueRef e = cg_fma(c, LLVMBuildFNeg(c->b, x, ""), r, cg_vf(c, 1.0));
        return cg_fma(c, r, e, r);
    }
    /* vrcp14ps (relative error < 2^-14) and one Newton step: r += r*(1 - x*r) */
    LLVMValueRef args[3] = {x, cg_vf(c, 0.0), LLVMConstInt(LLVMInt16TypeInContext(c->ctx), 0xffff, 0)};
    LLVMValueRef r = cg_intrinsic(c, "llvm.x86.avx512.rcp14.ps.512", NULL, 0, args, 3);
    LLVMValueRef e = cg_fma(c, LLVMBuildFNeg(c->b, x, ""), r, cg_vf(c, 1.0));
    return cg_fma(c, r, e, r);
}

/* natural log for x > 0 (normal numbers): x = 2^e m, m in [sqrt(1/2),
 * sqrt(2)), log(1+f) = f - f^2/2 + f^3 P(f) (f = m-1, P of degree 8 fitted
 * by least squares in double, numpy; relative error 1.2e-7 in float) */
static LLVMValueRef
log_body(CG *c, LLVMValueRef x)
{
    static const double P[9] = {0.3333331670713387,   -0.25000020703667375, 0.20001780577871967,
                                -0.16667002467408293, 0.14226465139851682,  -0.12429601450232133,
                                0.11857460187840604,  -0.11506721092856419, 0.066074942326849795};
    LLVMValueRef bits = LLVMBuildBitCast(c->b, x, c->vi, "");
    LLVMValueRef e = LLVMBuildSub(c->b, LLVMBuildLShr(c->b, bits, cg_vi(c, 23), ""), cg_vi(c, 127), "");
    LLVMValueRef mb = LLVMBuildOr(c->b, LLVMBuildAnd(c->b, bits, cg_vi(c, 0x7fffff), ""), cg_vi(c, 0x3f800000), "");
    LLVMValueRef m = LLVMBuildBitCast(c->b, mb, c->vf, "");
    LLVMValueRef big = LLVMBuildFCmp(c->b, LLVMRealOGT, m, cg_vf(c, 1.41421356237), "");
    m = LLVMBuildSelect(c->b, big, LLVMBuildFMul(c->b, m, cg_vf(c, 0.5), ""), m, "");
    e = LLVMBuildSelect(c->b, big, LLVMBuildAdd(c->b, e, cg_vi(c, 1), ""), e, "");
    LLVMValueRef f = LLVMBuildFSub(c->b, m, cg_vf(c, 1.0), "");
    LLVMValueRef f2 = LLVMBuildFMul(c->b, f, f, "");
    LLVMValueRef lm = cg_fma(c, LLVMBuildFMul(c->b, f2, f, ""), poly(c, f, P, 9), cg_fma(c, f2, cg_vf(c, -0.5), f));
    LLVMValueRef ef = LLVMBuildSIToFP(c->b, e, c->vf, "");
    LLVMValueRef r = cg_fma(c, ef, cg_vf(c, -2.12194440e-4), lm);
    return cg_fma(c, ef, cg_vf(c, 0.693359375), r);
}

/* log1p(t) for t >= 0: log(u) for u = 1+t, plus the rounding of u
 * corrected to first order, (t - (u-1))/u */
static LLVMValueRef
log1p_body(CG *c, LLVMValueRef t)
{
    LLVMValueRef u = LLVMBuildFAdd(c->b, t, cg_vf(c, 1.0), "");
    LLVMValueRef d = LLVMBuildFSub(c->b, t, LLVMBuildFSub(c->b, u, cg_vf(c, 1.0), ""), "");
    return cg_fma(c, d, cg_vrecip(c, u), log_body(c, u));
}

LLVMValueRef
cg_vsoftplus(CG *c, LLVMValueRef x)
{
    if (!c->vfn[VF_SOFTPLUS]) {
        LLVMBasicBlockRef sb;
        LLVMValueRef sf;
        LLVMValueRef v = vfn_begin(c, VF_SOFTPLUS, "mc_vsoftplus", &sb, &sf);
        LLVMValueRef av = un(c, "llvm.fabs", v);
        LLVMValueRef e = exp_body(c, LLVMBuildFNeg(c->b, av, ""));
        LLVMValueRef r = LLVMBuildFAdd(c->b, bin(c, "llvm.maxnum", v, cg_vf(c, 0.0)), log1p_body(c, e), "");
        LLVMValueRef big = LLVMBuildFCmp(c->b, LLVMRealOGT, v, cg_vf(c, 20.0), "");
        vfn_end(c, LLVMBuildSelect(c->b, big, v, r, ""), sb, sf);
    }
    return call_vfn(c, VF_SOFTPLUS, x);
}

LLVMValueRef
cg_vsilu(CG *c, LLVMValueRef x)
{
    if (!c->vfn[VF_SILU]) {
        LLVMBasicBlockRef sb;
        LLVMValueRef sf;
        LLVMValueRef v = vfn_begin(c, VF_SILU, "mc_vsilu", &sb, &sf);
        /* exp(-v) at most exp(80): 1/(1+e) stays a normal number */
        LLVMValueRef e = exp_body(c, bin(c, "llvm.minnum", LLVMBuildFNeg(c->b, v, ""), cg_vf(c, 80.0)));
        vfn_end(c, LLVMBuildFMul(c->b, v, cg_vrecip(c, LLVMBuildFAdd(c->b, e, cg_vf(c, 1.0), "")), ""), sb, sf);
    }
    return call_vfn(c, VF_SILU, x);
}

LLVMValueRef
cg_vgelu(CG *c, LLVMValueRef x)
{
    if (!c->vfn[VF_GELU]) {
        /* erfc(a) = t exp(-a^2) Q(u), t = 1/(1 + a/2), u = s1 t - s0 in [-1, 1],
         * a in [0, 9]; Q of degree 6 fitted by least squares on the relative
         * error (double, numpy, math.erfc): 2.0e-6 (degree 9: 7e-8, ~6 more
         * operations; the fc1 epilogue is throughput bound) */
        static const double Q[7] = {0.5779776327718373,    0.32393868797830794,   0.098638055011518950,
                                    0.0052205876805042906, -0.005691271409179521, -0.00050680487266487050,
                                    0.00042113166575975800};
        /* exp(r), r in [-ln2/2, ln2/2], degree 5 fitted the same way: 1.7e-7 */
        static const double E[6] = {1.0000000491655043,  0.9999997433886425,   0.49999112453900957,
                                    0.16667571465161102, 0.041892141087709424, 0.008287935695491125};
        LLVMBasicBlockRef sb;
        LLVMValueRef sf;
        LLVMValueRef v = vfn_begin(c, VF_GELU, "mc_vgelu", &sb, &sf);
        /* a = |v|/sqrt2 clamped to 9; exp(-a^2) = exp(-v^2/2), its argument
         * in [-81, 0]: no clamping; the rounding of v*v (6e-8 relative) gives
         * at most 5e-6 relative in exp for |v| = 12.7, where gelu(v) < 1e-35 */
        LLVMValueRef xa = bin(c, "llvm.minnum", un(c, "llvm.fabs", v), cg_vf(c, 12.727922061357855));
        LLVMValueRef t = cg_vrecip(c, cg_fma(c, xa, cg_vf(c, 0.35355339059327376), cg_vf(c, 1.0)));
        LLVMValueRef u = cg_fma(c, t, cg_vf(c, 2.4444444444444446), cg_vf(c, -1.4444444444444446));
        LLVMValueRef q = poly(c, u, Q, 7);
        LLVMValueRef mx = LLVMBuildFMul(c->b, xa, LLVMBuildFMul(c->b, xa, cg_vf(c, -0.5), ""), "");
        /* exp(mx) * 0.5 (the 1/2 of Phi) through the exponent bits: n >= -117 */
        LLVMValueRef half = LLVMBuildFMul(c->b, exp_scaled(c, mx, E, 6, 126), LLVMBuildFMul(c->b, t, q, ""), "");
        LLVMValueRef pos = LLVMBuildFCmp(c->b, LLVMRealOGT, v, cg_vf(c, 0.0), "");
        LLVMValueRef phi = LLVMBuildSelect(c->b, pos, LLVMBuildFSub(c->b, cg_vf(c, 1.0), half, ""), half, "");
        vfn_end(c, LLVMBuildFMul(c->b, v, phi, ""), sb, sf);
    }
    return call_vfn(c, VF_GELU, x);
}

/* ------------------------------------------------------------ epilogue */

void
cg_emit_out(CG *c, const Kernel *k, LLVMValueRef row, LLVMValueRef col, LLVMValueRef acc, int nvalid)
{
    int r = k->out.rank;
    LLVMValueRef val[MC_MAX_EXPR];
    LLVMValueRef v = acc;
    for (int i = 0; i < k->nexpr; i++) {
        const EInstr *e = &k->expr[i];
        LLVMValueRef a = e->a >= 0 && e->a < i ? val[e->a] : NULL;
        LLVMValueRef bb = e->b >= 0 && e->b < i ? val[e->b] : NULL;
        switch (e->op) {
        case E_ACC: v = acc ? acc : cg_vf(c, 0.0); break;
        case E_LOAD: {
            const View *av = &k->args[e->arg];
            LLVMValueRef off = cg_row_off(c, av, k->out.shape, r - 1, row);
            int64_t cs = r >= 1 ? av->stride[r - 1] : 0;
            if (cs) off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, col, cg_i64(c, cs), ""), "");
            v = cg_load_vec(c, av->buf, off, cs, nvalid);
            break;
        }
        case E_CONST: v = cg_vf(c, e->imm); break;
        case E_ADD: v = LLVMBuildFAdd(c->b, a, bb, ""); break;
        case E_SUB: v = LLVMBuildFSub(c->b, a, bb, ""); break;
        case E_MUL: v = LLVMBuildFMul(c->b, a, bb, ""); break;
        case E_DIV: v = LLVMBuildFDiv(c->b, a, bb, ""); break;
        case E_NEG: v = LLVMBuildFNeg(c->b, a, ""); break;
        case E_EXP: v = cg_vexp(c, a); break;
        case E_SQRT: v = un(c, "llvm.sqrt", a); break;
        case E_RELU: {
            LLVMValueRef neg = LLVMBuildFCmp(c->b, LLVMRealOLT, a, cg_vf(c, 0.0), "");
            v = LLVMBuildSelect(c->b, neg, cg_vf(c, 0.0), a, "");
            break;
        }
        case E_GELU: v = cg_vgelu(c, a); break;
        case E_SILU: v = cg_vsilu(c, a); break;
        case E_SOFTPLUS: v = cg_vsoftplus(c, a); break;
        }
        val[i] = v;
    }
    const View *o = &k->out;
    LLVMValueRef off = cg_row_off(c, o, NULL, r - 1, row);
    int64_t cs = r >= 1 ? o->stride[r - 1] : 1;
    if (cs) off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, col, cg_i64(c, cs), ""), "");
    cg_store_vec(c, o->buf, off, cs, v, nvalid);
}
