/* backends/llvm/llvm_gemm.c -- register-blocked GEMM and implicit-GEMM
 * convolution kernels.
 *
 * Takes a KK_GEMM / KK_CONV kernel and its plan (mr x nv micro-kernel,
 * packed weights at plan.pack_off); produces the kernel body in the current
 * function.  Micro-kernel: mr rows x nr = nv*L columns of accumulators held
 * in registers (mr*nv vectors), K innermost, per k one aligned vector load
 * per column vector from the packed panel [K][nr] and one broadcast per row,
 * llvm.fmuladd on vectors; then bias + epilogue on the accumulators and the
 * store (masked for the last partial panel).
 *
 * GEMM parallel range: a grid of tasks (row block of tpb tiles, column
 * panel), panel-major or row-block-major (the schedule's block_m and
 * order, llvm_schedule.c);
 * a task runs its row block's tiles in one panel.
 * CONV parallel range: output rows (b, oy), n = B*Ho; per row, panels outer
 * and tiles of mr consecutive output pixels inner; K = kh*kw*Ci walks taps
 * then channels, out-of-image taps read a zero row (or are masked by a
 * select when the channel stride is not 1).
 * bf16 (KPlan.bf16, --precision bf16): the same tiles over pairs of k with
 * weights packed bf16 (llvm_internal.h) and vdpbf16ps (AArch64: bfdot); a GEMM task copies
 * its row block's A rows, a conv task its kh input rows, to a stack buffer
 * as bf16 first (a thread's consecutive tasks of one row block copy once).
 * AMX kernels (llvm_amx.c) may take over a bf16 GEMM in cg_gemm.  Owns
 * nothing.
 */
#include "llvm_internal.h"
#include <string.h>

#define MAXR MC_LLVM_MAX_MR
#define MAXV MC_LLVM_MAX_NV

LLVMValueRef
cg_imin(CG *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""), a, b, "");
}

/* stores the mr x nv accumulator block: bias + epilogue + store */
static void
store_tile(CG *c, const Kernel *k, LLVMValueRef acc[MAXR][MAXV], int rows, int nv, LLVMValueRef row0,
           LLVMValueRef col0, int ncols, int64_t out_row_step)
{
    const View *bias = k->nin >= 3 ? &k->in[2] : NULL;
    for (int v = 0; v < nv && v * c->L < ncols; v++) {
        int nval = ncols - v * c->L < c->L ? ncols - v * c->L : c->L;
        LLVMValueRef col = LLVMBuildAdd(c->b, col0, cg_i64(c, (int64_t)v * c->L), "");
        LLVMValueRef bv = NULL;
        if (bias) {
            int64_t bs = bias->stride[bias->rank - 1];
            LLVMValueRef off = LLVMBuildAdd(c->b, cg_i64(c, bias->offset), LLVMBuildMul(c->b, col, cg_i64(c, bs), ""), "");
            bv = cg_load_vec(c, bias->buf, off, bs, nval);
        }
        for (int r = 0; r < rows; r++) {
            LLVMValueRef val = acc[r][v];
            if (bv) val = LLVMBuildFAdd(c->b, val, bv, "");
            LLVMValueRef row = LLVMBuildAdd(c->b, row0, cg_i64(c, r * out_row_step), "");
            cg_emit_out(c, k, row, col, val, nval);
        }
    }
}

/* Byte offset, from the kernel's packed data, of column panel j (nr columns
 * wide) when the blob's panels are pnr >= nr columns wide (weights packed
 * for a wider variant of a multi-CPU artifact): panel j*nr/pnr, column
 * j*nr%pnr; each panel spans `rows` rows of pnr floats. */
LLVMValueRef
cg_panel_off(CG *c, const KPlan *kp, LLVMValueRef j, int64_t rows)
{
    if (kp->pnr == kp->nr) return LLVMBuildMul(c->b, j, cg_i64(c, rows * kp->nr * 4), "");
    LLVMValueRef col = LLVMBuildMul(c->b, j, cg_i64(c, kp->nr), "");
    LLVMValueRef pan = LLVMBuildUDiv(c->b, col, cg_i64(c, kp->pnr), "");
    LLVMValueRef in = LLVMBuildURem(c->b, col, cg_i64(c, kp->pnr), "");
    return LLVMBuildAdd(c->b, LLVMBuildMul(c->b, pan, cg_i64(c, rows * kp->pnr * 4), ""),
                        LLVMBuildMul(c->b, in, cg_i64(c, 4), ""), "");
}

/* prefetch of the weights' cache line at byte offset po (locality 3:
 * into L1, 2: L2) */
void
cg_prefetch_weights(CG *c, LLVMValueRef po, int locality)
{
    LLVMValueRef pa[4] = {LLVMBuildGEP2(c->b, c->i8, c->base[BUF_WEIGHT], &po, 1, ""), cg_i32(c, 0),
                          cg_i32(c, locality), cg_i32(c, 1)};
    LLVMTypeRef pt = c->ptr;
    cg_intrinsic(c, "llvm.prefetch", &pt, 1, pa, 4);
}

/* ------------------------------------------------------------ bf16
 * (--precision bf16, KPlan.bf16): the weights are packed in VNNI pairs
 * (llvm_internal.h, KPlan); a task copies the A rows it reads to a stack
 * buffer as bf16 once (kpad elements a row, zero padded); per pair of k
 * one aligned <2L x bfloat> load of the panel per column vector (L columns
 * x 2 k), per row a broadcast of its pair (4 bytes), and a bf16 dot (x86
 * vdpbf16ps, AArch64 bfdot: acc + a[2i]*b[2i] + a[2i+1]*b[2i+1] per f32
 * lane, products exact, sums in fp32). */

/* a 64-byte aligned stack buffer of `bytes`, allocated in the entry block */
LLVMValueRef
cg_stack_buf(CG *c, int64_t bytes, const char *name)
{
    LLVMBasicBlockRef at = LLVMGetInsertBlock(c->b);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(c->b, first);
    else LLVMPositionBuilderAtEnd(c->b, entry);
    LLVMValueRef a = LLVMBuildAlloca(c->b, LLVMArrayType2(c->i8, (uint64_t)bytes), name);
    LLVMSetAlignment(a, 64);
    LLVMPositionBuilderAtEnd(c->b, at);
    return a;
}

LLVMValueRef
cg_byte_ptr(CG *c, LLVMValueRef base, LLVMValueRef off)
{
    return LLVMBuildGEP2(c->b, c->i8, base, &off, 1, "");
}

static LLVMTypeRef
bf16_vt(CG *c, int n)
{
    return LLVMVectorType(LLVMBFloatTypeInContext(c->ctx), (unsigned)n);
}

/* fp32 vector v (NULL: zeros) -> bf16 (to nearest even: x86
 * vcvtneps2bf16, AArch64 bfcvtn) stored at p */
static void
bf16_store(CG *c, LLVMValueRef p, LLVMValueRef v)
{
    LLVMValueRef h = LLVMConstNull(bf16_vt(c, c->L));
    if (v && c->t->x86_avx512) h = cg_intrinsic(c, "llvm.x86.avx512bf16.cvtneps2bf16.512", NULL, 0, &v, 1);
    else if (v) h = LLVMBuildFPTrunc(c->b, v, bf16_vt(c, c->L), "");
    LLVMSetAlignment(LLVMBuildStore(c->b, h, p), (unsigned)(c->L * 2 > 32 ? 32 : c->L * 2));
}

/* n fp32 values of buffer `buf` from element offset off, sk apart, as bf16
 * at dst (64-byte aligned), zeros up to kpad */
void
cg_bf16_row(CG *c, int buf, LLVMValueRef off, int64_t sk, int64_t n, int64_t kpad, LLVMValueRef dst)
{
    int64_t L = c->L, full = n / L, rem = n % L;
    Loop l;
    cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, full), NULL, 0, "cvt");
    LLVMValueRef o = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, l.iv, cg_i64(c, L * sk), ""), "");
    bf16_store(c, cg_byte_ptr(c, dst, LLVMBuildMul(c->b, l.iv, cg_i64(c, L * 2), "")), cg_load_vec(c, buf, o, sk, (int)L));
    cg_loop_end(c, &l, NULL);
    if (rem)
        bf16_store(c, cg_byte_ptr(c, dst, cg_i64(c, full * L * 2)),
                   cg_load_vec(c, buf, LLVMBuildAdd(c->b, off, cg_i64(c, full * L * sk), ""), sk, (int)rem));
    for (int64_t i = full + (rem > 0); i < kpad / L; i++) bf16_store(c, cg_byte_ptr(c, dst, cg_i64(c, i * L * 2)), NULL);
}

/* the column vector at byte offset off of the packed weights: L columns x
 * a pair of k */
static LLVMValueRef
bf16_load_packed(CG *c, LLVMValueRef off)
{
    return LLVMBuildBitCast(c->b, cg_load_packed(c, off), bf16_vt(c, 2 * c->L), "");
}

/* the bf16 pair at p (4 bytes) in every lane */
static LLVMValueRef
bf16_bcast(CG *c, LLVMValueRef p)
{
    LLVMValueRef s = LLVMBuildLoad2(c->b, c->i32, p, "");
    LLVMSetAlignment(s, 4);
    LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetUndef(c->vi), s, cg_i32(c, 0), "");
    v = LLVMBuildShuffleVector(c->b, v, LLVMGetUndef(c->vi), LLVMConstNull(c->vi), "");
    return LLVMBuildBitCast(c->b, v, bf16_vt(c, 2 * c->L), "");
}

/* acc + a . b over each lane's pair, in fp32 (x86 vdpbf16ps, AArch64 bfdot) */
static LLVMValueRef
bf16_dot(CG *c, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef args[3] = {acc, a, b};
    if (c->t->x86_avx512) return cg_intrinsic(c, "llvm.x86.avx512bf16.dpbf16ps.512", NULL, 0, args, 3);
    LLVMTypeRef tys[2] = {c->vf, bf16_vt(c, 2 * c->L)}; /* AArch64 BFDOT */
    return cg_intrinsic(c, "llvm.aarch64.neon.bfdot", tys, 2, args, 3);
}

/* bf16 copy of A's rows [r0, r1) at buf, kpad elements a row */
void
cg_gemm_bf16_rows(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef buf, LLVMValueRef r0, LLVMValueRef r1)
{
    const View *a = &k->in[0];
    Loop l;
    cg_loop_begin(c, &l, r0, r1, NULL, 0, "arow");
    LLVMValueRef bo = LLVMBuildMul(c->b, LLVMBuildSub(c->b, l.iv, r0, ""), cg_i64(c, kp->kpad * 2), "");
    cg_bf16_row(c, a->buf, cg_row_off(c, a, NULL, a->rank - 1, l.iv), a->stride[a->rank - 1], k->K, kp->kpad,
             cg_byte_ptr(c, buf, bo));
    cg_loop_end(c, &l, NULL);
}

/* for the AMX kernels (llvm_amx.c): the task grid */
void
cg_gemm_task(CG *c, const KPlan *kp, LLVMValueRef t, LLVMValueRef *mb, LLVMValueRef *j)
{
    if (kp->panel_major) {
        *j = LLVMBuildUDiv(c->b, t, cg_i64(c, kp->nmb), "");
        *mb = LLVMBuildURem(c->b, t, cg_i64(c, kp->nmb), "");
    } else {
        *mb = LLVMBuildUDiv(c->b, t, cg_i64(c, kp->npan), "");
        *j = LLVMBuildURem(c->b, t, cg_i64(c, kp->npan), "");
    }
}

/* one GEMM tile: rows [m0, m0+rows), panel j (columns j*nr.. + ncols);
 * bf16: arow is row m0 of the task's bf16 copy of A */
static void
gemm_tile(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef m0, LLVMValueRef j, int rows, int ncols,
          LLVMValueRef pf, LLVMValueRef arow)
{
    const View *a = &k->in[0];
    int64_t K = k->K, nr = kp->nr, sk = a->stride[a->rank - 1];
    int nv = kp->nv;
    LLVMValueRef aoff[MAXR];
    for (int r = 0; r < rows && !arow; r++)
        aoff[r] = cg_row_off(c, a, NULL, a->rank - 1, LLVMBuildAdd(c->b, m0, cg_i64(c, r), ""));
    LLVMValueRef wbase = LLVMBuildAdd(c->b, cg_pack_off(c, kp, 0), cg_panel_off(c, kp, j, arow ? kp->kpad / 2 : K), "");
    LLVMValueRef init[MAXR * MAXV];
    for (int i = 0; i < rows * nv; i++) init[i] = cg_vf(c, 0.0);
    Loop l;
    cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, arow ? mc_llvm_bf16_pairs(K) : K), init, rows * nv, "gk");
    LLVMValueRef bvec[MAXV], next[MAXR * MAXV];
    LLVMValueRef kb = LLVMBuildAdd(c->b, wbase, LLVMBuildMul(c->b, l.iv, cg_i64(c, kp->pnr * 4), ""), "");
    for (int v = 0; v < nv; v++) {
        LLVMValueRef vo = LLVMBuildAdd(c->b, kb, cg_i64(c, (int64_t)v * c->L * 4), "");
        bvec[v] = arow ? bf16_load_packed(c, vo) : cg_load_packed(c, vo);
    }
    if (pf) { /* one cache line of the next panel per k step (clamped to this kernel's panels) */
        LLVMValueRef po = LLVMBuildAdd(c->b, pf, LLVMBuildMul(c->b, l.iv, cg_i64(c, 64), ""), "");
        cg_prefetch_weights(c, cg_imin(c, po, cg_pack_off(c, kp, kp->pack_bytes - 64)), 3);
    }
    for (int r = 0; r < rows && arow; r++) {
        LLVMValueRef ap = cg_byte_ptr(c, arow, LLVMBuildAdd(c->b, cg_i64(c, r * kp->kpad * 2), LLVMBuildMul(c->b, l.iv, cg_i64(c, 4), ""), ""));
        LLVMValueRef s = bf16_bcast(c, ap);
        for (int v = 0; v < nv; v++) next[r * nv + v] = bf16_dot(c, l.phi[r * nv + v], s, bvec[v]);
    }
    for (int r = 0; r < rows && !arow; r++) {
        LLVMValueRef off = LLVMBuildAdd(c->b, aoff[r], sk == 1 ? l.iv : LLVMBuildMul(c->b, l.iv, cg_i64(c, sk), ""), "");
        LLVMValueRef s = cg_splat(c, LLVMBuildLoad2(c->b, c->f32, cg_elem_ptr(c, a->buf, off), ""));
        for (int v = 0; v < nv; v++) next[r * nv + v] = cg_fma(c, s, bvec[v], l.phi[r * nv + v]);
    }
    cg_loop_end(c, &l, next);
    LLVMValueRef acc[MAXR][MAXV];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = l.phi[r * nv + v];
    store_tile(c, k, acc, rows, nv, m0, LLVMBuildMul(c->b, j, cg_i64(c, nr), ""), ncols, 1);
}

/* row m's place in the task's bf16 copy of its row block's rows, which
 * starts at row r0 (NULL: fp32) */
static LLVMValueRef
gemm_arow(CG *c, const KPlan *kp, LLVMValueRef abuf, LLVMValueRef r0, LLVMValueRef m)
{
    if (!abuf) return NULL;
    return cg_byte_ptr(c, abuf, LLVMBuildMul(c->b, LLVMBuildSub(c->b, m, r0, ""), cg_i64(c, kp->kpad * 2), ""));
}

/* GEMM tiles of row block `mb` in column panel `j` (j < pfull: nr
 * columns; else the partial panel of N % nr columns); bf16: abuf holds
 * the block's rows */
static void
gemm_block(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef mb, LLVMValueRef j, int64_t ncols, LLVMValueRef abuf)
{
    int64_t M = k->M, mr = kp->mr, nfull = M / mr, mrem = M % mr, ntiles = nfull + (mrem > 0);
    int64_t ksteps = abuf ? mc_llvm_bf16_pairs(k->K) : k->K, krows = abuf ? kp->kpad / 2 : k->K;
    LLVMValueRef t0 = LLVMBuildMul(c->b, mb, cg_i64(c, kp->tpb), "");
    LLVMValueRef t1 = cg_imin(c, LLVMBuildAdd(c->b, t0, cg_i64(c, kp->tpb), ""), cg_i64(c, ntiles));
    LLVMValueRef tf = cg_imin(c, t1, cg_i64(c, nfull)); /* full tiles end */
    LLVMValueRef r0 = abuf ? LLVMBuildMul(c->b, t0, cg_i64(c, mr), "") : NULL;
    /* panel-major (weights streamed from memory): the tiles of this task
     * prefetch the next panel, one line per k step */
    LLVMValueRef pf0 = NULL;
    if (kp->panel_major)
        pf0 = LLVMBuildAdd(c->b, cg_pack_off(c, kp, 0), cg_panel_off(c, kp, LLVMBuildAdd(c->b, j, cg_i64(c, 1), ""), krows),
                           "");
    Loop lt;
    cg_loop_begin(c, &lt, t0, tf, NULL, 0, "tile");
    LLVMValueRef pf = pf0 ? LLVMBuildAdd(c->b, pf0, LLVMBuildMul(c->b, LLVMBuildSub(c->b, lt.iv, t0, ""), cg_i64(c, ksteps * 64), ""), "")
                          : NULL;
    LLVMValueRef m0 = LLVMBuildMul(c->b, lt.iv, cg_i64(c, mr), "");
    gemm_tile(c, k, kp, m0, j, (int)mr, (int)ncols, pf, gemm_arow(c, kp, abuf, r0, m0));
    cg_loop_end(c, &lt, NULL);
    if (mrem) {
        If f;
        cg_if_begin(c, &f, LLVMBuildICmp(c->b, LLVMIntSGT, t1, cg_i64(c, nfull), ""), "mrem");
        gemm_tile(c, k, kp, cg_i64(c, nfull * mr), j, (int)mrem, (int)ncols, NULL,
                  gemm_arow(c, kp, abuf, r0, cg_i64(c, nfull * mr)));
        cg_if_end(c, &f);
    }
}

void
cg_gemm(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    if (mc_llvm_amx_gemm(c->t, k, kp)) { /* AMX-BF16 tiles (llvm_amx.c) */
        cg_amx_gemm(c, k, kp, begin, end);
        return;
    }
    int64_t N = k->N, nr = kp->nr, pfull = N / nr, nrem = N % nr;
    /* bf16: the A rows of the row block last copied (a thread's tasks in
     * row-block order share their block's copy) */
    LLVMValueRef abuf = NULL, cur = NULL;
    if (kp->bf16) {
        abuf = cg_stack_buf(c, kp->tpb * kp->mr * kp->kpad * 2, "abf16");
        cur = cg_stack_buf(c, 8, "ablock");
        LLVMBuildStore(c->b, cg_i64(c, -1), cur);
    }
    Loop lt;
    cg_loop_begin(c, &lt, begin, end, NULL, 0, "task");
    LLVMValueRef mb, j;
    cg_gemm_task(c, kp, lt.iv, &mb, &j);
    if (abuf) {
        If f;
        cg_if_begin(c, &f, LLVMBuildICmp(c->b, LLVMIntNE, mb, LLVMBuildLoad2(c->b, c->i64, cur, ""), ""), "acopy");
        LLVMValueRef r0 = LLVMBuildMul(c->b, mb, cg_i64(c, kp->tpb * kp->mr), "");
        cg_gemm_bf16_rows(c, k, kp, abuf, r0, cg_imin(c, LLVMBuildAdd(c->b, r0, cg_i64(c, kp->tpb * kp->mr), ""), cg_i64(c, k->M)));
        LLVMBuildStore(c->b, mb, cur);
        cg_if_end(c, &f);
    }
    if (!nrem) {
        gemm_block(c, k, kp, mb, j, nr, abuf);
    } else if (!pfull) {
        gemm_block(c, k, kp, mb, j, nrem, abuf);
    } else {
        LLVMValueRef full = LLVMBuildICmp(c->b, LLVMIntSLT, j, cg_i64(c, pfull), "");
        LLVMBasicBlockRef fb = cg_block(c, "fullpan"), pb = cg_block(c, "partpan"), jb = cg_block(c, "pjoin");
        LLVMBuildCondBr(c->b, full, fb, pb);
        LLVMPositionBuilderAtEnd(c->b, fb);
        gemm_block(c, k, kp, mb, j, nr, abuf);
        LLVMBuildBr(c->b, jb);
        LLVMPositionBuilderAtEnd(c->b, pb);
        gemm_block(c, k, kp, mb, j, nrem, abuf);
        LLVMBuildBr(c->b, jb);
        LLVMPositionBuilderAtEnd(c->b, jb);
    }
    cg_loop_end(c, &lt, NULL);
}

/* ------------------------------------------------------------ convolution */

typedef struct ConvP {
    int64_t B, H, W, Ci, Ho, Wo, Co, kh, kw, sh, sw, ph, pw, dh, dw, T;
    int64_t sx[4];
    int zero_row; /* out-of-image taps read c->zeros (needs channel stride 1) */
    int64_t kt;   /* rows of a tap in a packed panel: Ci, or bf16 kpad/2 pairs */
    LLVMValueRef xbf; /* bf16: the task's copy of its kh input rows (conv_bf16_rows), else NULL */
} ConvP;

/* where output pixel (b, oy, *) starts reading: x's buffer, the image's
 * offset, the top input row of the taps */
typedef struct ConvRow {
    LLVMValueRef xb, boff, iy0;
} ConvRow;

static ConvRow
conv_row(CG *c, const Kernel *k, const ConvP *q, LLVMValueRef b, LLVMValueRef oy)
{
    const View *x = &k->in[0];
    ConvRow r;
    r.xb = cg_buf_ptr(c, x->buf);
    r.boff = LLVMBuildAdd(c->b, cg_i64(c, x->offset), LLVMBuildMul(c->b, b, cg_i64(c, q->sx[0]), ""), "");
    r.iy0 = LLVMBuildSub(c->b, LLVMBuildMul(c->b, oy, cg_i64(c, q->sh), ""), cg_i64(c, q->ph), "");
    return r;
}

/* the input pixel of tap `tap` for each of the `rows` output pixels ox0..:
 * aptr[r] its channel 0 (the zero row outside the image when zero_row),
 * valid[r] whether it is inside the image */
static void
conv_tap(CG *c, const ConvP *q, const ConvRow *cr, LLVMValueRef ox0, LLVMValueRef tap, int rows,
         LLVMValueRef aptr[MAXR], LLVMValueRef valid[MAXR])
{
    LLVMValueRef ky = LLVMBuildUDiv(c->b, tap, cg_i64(c, q->kw), "");
    LLVMValueRef kx = LLVMBuildURem(c->b, tap, cg_i64(c, q->kw), "");
    LLVMValueRef iy = LLVMBuildAdd(c->b, cr->iy0, LLVMBuildMul(c->b, ky, cg_i64(c, q->dh), ""), "");
    LLVMValueRef vy = LLVMBuildICmp(c->b, LLVMIntULT, iy, cg_i64(c, q->H), ""); /* 0 <= iy < H */
    LLVMValueRef iyc = LLVMBuildSelect(c->b, vy, iy, cg_i64(c, 0), "");
    LLVMValueRef yoff = LLVMBuildAdd(c->b, cr->boff, LLVMBuildMul(c->b, iyc, cg_i64(c, q->sx[1]), ""), "");
    for (int r = 0; r < rows; r++) {
        LLVMValueRef ox = LLVMBuildAdd(c->b, ox0, cg_i64(c, r), "");
        LLVMValueRef ix = LLVMBuildAdd(c->b, LLVMBuildSub(c->b, LLVMBuildMul(c->b, ox, cg_i64(c, q->sw), ""), cg_i64(c, q->pw), ""),
                                       LLVMBuildMul(c->b, kx, cg_i64(c, q->dw), ""), "");
        LLVMValueRef vx = LLVMBuildICmp(c->b, LLVMIntULT, ix, cg_i64(c, q->W), "");
        valid[r] = LLVMBuildAnd(c->b, vx, vy, "");
        LLVMValueRef ixc = LLVMBuildSelect(c->b, vx, ix, cg_i64(c, 0), "");
        LLVMValueRef off = LLVMBuildAdd(c->b, yoff, LLVMBuildMul(c->b, ixc, cg_i64(c, q->sx[2]), ""), "");
        LLVMValueRef p = LLVMBuildGEP2(c->b, c->f32, cr->xb, &off, 1, "");
        aptr[r] = q->zero_row ? LLVMBuildSelect(c->b, valid[r], p, c->zeros, "") : p;
    }
}

/* bf16: the task's copy of the kh input rows of output row (b, oy), row
 * ky (input row oy*sh - ph + ky*dh) at xbf + ky*W*kpad*2 bytes, pixel ix
 * kpad*2 bytes further; a row outside the image is zeros */
static void
conv_bf16_rows(CG *c, const Kernel *k, const KPlan *kp, const ConvP *q, LLVMValueRef b, LLVMValueRef oy)
{
    ConvRow cr = conv_row(c, k, q, b, oy);
    int64_t rowb = q->W * kp->kpad * 2;
    for (int64_t ky = 0; ky < q->kh; ky++) {
        LLVMValueRef iy = LLVMBuildAdd(c->b, cr.iy0, cg_i64(c, ky * q->dh), "");
        LLVMValueRef dst = cg_byte_ptr(c, q->xbf, cg_i64(c, ky * rowb));
        LLVMBasicBlockRef ib = cg_block(c, "xrow"), ob = cg_block(c, "xzero"), jb = cg_block(c, "xjoin");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, iy, cg_i64(c, q->H), ""), ib, ob);
        LLVMPositionBuilderAtEnd(c->b, ib);
        Loop lx;
        cg_loop_begin(c, &lx, cg_i64(c, 0), cg_i64(c, q->W), NULL, 0, "xpix");
        LLVMValueRef off = LLVMBuildAdd(c->b, LLVMBuildAdd(c->b, cr.boff, LLVMBuildMul(c->b, iy, cg_i64(c, q->sx[1]), ""), ""),
                                        LLVMBuildMul(c->b, lx.iv, cg_i64(c, q->sx[2]), ""), "");
        cg_bf16_row(c, k->in[0].buf, off, q->sx[3], q->Ci, kp->kpad,
                 cg_byte_ptr(c, dst, LLVMBuildMul(c->b, lx.iv, cg_i64(c, kp->kpad * 2), "")));
        cg_loop_end(c, &lx, NULL);
        LLVMBuildBr(c->b, jb);
        LLVMPositionBuilderAtEnd(c->b, ob);
        LLVMBuildMemSet(c->b, dst, LLVMConstInt(c->i8, 0, 0), cg_i64(c, rowb), 64);
        LLVMBuildBr(c->b, jb);
        LLVMPositionBuilderAtEnd(c->b, jb);
    }
}

/* bf16: the pixels of tap `tap` for the rows output pixels ox0.. in the
 * task's copy (conv_bf16_rows), the zero row outside the image in x */
static void
conv_tap_bf16(CG *c, const KPlan *kp, const ConvP *q, LLVMValueRef ox0, LLVMValueRef tap, int rows,
              LLVMValueRef aptr[MAXR])
{
    LLVMValueRef ky = LLVMBuildUDiv(c->b, tap, cg_i64(c, q->kw), "");
    LLVMValueRef kx = LLVMBuildURem(c->b, tap, cg_i64(c, q->kw), "");
    LLVMValueRef row = LLVMBuildMul(c->b, ky, cg_i64(c, q->W), "");
    for (int r = 0; r < rows; r++) {
        LLVMValueRef ox = LLVMBuildAdd(c->b, ox0, cg_i64(c, r), "");
        LLVMValueRef ix = LLVMBuildAdd(c->b, LLVMBuildSub(c->b, LLVMBuildMul(c->b, ox, cg_i64(c, q->sw), ""), cg_i64(c, q->pw), ""),
                                       LLVMBuildMul(c->b, kx, cg_i64(c, q->dw), ""), "");
        LLVMValueRef vx = LLVMBuildICmp(c->b, LLVMIntULT, ix, cg_i64(c, q->W), "");
        LLVMValueRef pix = LLVMBuildAdd(c->b, row, LLVMBuildSelect(c->b, vx, ix, cg_i64(c, 0), ""), "");
        LLVMValueRef p = cg_byte_ptr(c, q->xbf, LLVMBuildMul(c->b, pix, cg_i64(c, kp->kpad * 2), ""));
        aptr[r] = LLVMBuildSelect(c->b, vx, p, c->zeros, "");
    }
}

/* byte offset in the blob of panel j's tap `tap`: packed [panel j][tap
 * t][Ci][nr] (bf16: [kpad/2][nr][2]; panels pnr wide: panel_off) */
static LLVMValueRef
conv_wtap(CG *c, const KPlan *kp, const ConvP *q, LLVMValueRef j, LLVMValueRef tap)
{
    if (kp->pnr == kp->nr)
        return LLVMBuildAdd(c->b, cg_pack_off(c, kp, 0),
                            LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, j, cg_i64(c, q->T), ""), tap, ""),
                                         cg_i64(c, q->kt * kp->nr * 4), ""), "");
    return LLVMBuildAdd(c->b, LLVMBuildAdd(c->b, cg_pack_off(c, kp, 0), cg_panel_off(c, kp, j, q->T * q->kt), ""),
                        LLVMBuildMul(c->b, tap, cg_i64(c, q->kt * kp->pnr * 4), ""), "");
}

/* the micro-kernel: channels [lo, hi) of one tap into the rows x nv
 * accumulators carried from init; phi gets the sums */
static void
conv_kloop(CG *c, const KPlan *kp, const ConvP *q, LLVMValueRef aptr[MAXR], LLVMValueRef valid[MAXR], int rows,
           int nv, LLVMValueRef wb, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *init, LLVMValueRef *phi,
           const LLVMValueRef *pf)
{
    Loop lc;
    cg_loop_begin(c, &lc, lo, hi, init, rows * nv, "ci");
    LLVMValueRef bvec[MAXV], next[MAXR * MAXV];
    LLVMValueRef kb = LLVMBuildAdd(c->b, wb, LLVMBuildMul(c->b, lc.iv, cg_i64(c, kp->pnr * 4), ""), "");
    for (int v = 0; v < nv; v++) {
        LLVMValueRef vo = LLVMBuildAdd(c->b, kb, cg_i64(c, (int64_t)v * c->L * 4), "");
        bvec[v] = q->xbf ? bf16_load_packed(c, vo) : cg_load_packed(c, vo);
    }
    if (pf) /* pf: {byte offset at k = 0, bytes per k step}: into L2 */
        cg_prefetch_weights(c, LLVMBuildAdd(c->b, pf[0], LLVMBuildMul(c->b, lc.iv, pf[1], ""), ""), 2);
    for (int r = 0; r < rows && q->xbf; r++) { /* bf16: lc.iv is a pair of channels */
        LLVMValueRef s = bf16_bcast(c, cg_byte_ptr(c, aptr[r], LLVMBuildMul(c->b, lc.iv, cg_i64(c, 4), "")));
        for (int v = 0; v < nv; v++) next[r * nv + v] = bf16_dot(c, lc.phi[r * nv + v], s, bvec[v]);
    }
    for (int r = 0; r < rows && !q->xbf; r++) {
        LLVMValueRef co = q->sx[3] == 1 ? lc.iv : LLVMBuildMul(c->b, lc.iv, cg_i64(c, q->sx[3]), "");
        LLVMValueRef s = LLVMBuildLoad2(c->b, c->f32, LLVMBuildGEP2(c->b, c->f32, aptr[r], &co, 1, ""), "");
        if (!q->zero_row) s = LLVMBuildSelect(c->b, valid[r], s, cg_f32(c, 0.0), "");
        LLVMValueRef sv = cg_splat(c, s);
        for (int v = 0; v < nv; v++) next[r * nv + v] = cg_fma(c, sv, bvec[v], lc.phi[r * nv + v]);
    }
    cg_loop_end(c, &lc, next);
    for (int i = 0; i < rows * nv; i++) phi[i] = lc.phi[i];
}

/* output row index of pixel (b, oy, ox0) in rows of [B,Ho,Wo] */
static LLVMValueRef
conv_orow(CG *c, const ConvP *q, LLVMValueRef b, LLVMValueRef oy, LLVMValueRef ox0)
{
    return LLVMBuildAdd(c->b, LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, b, cg_i64(c, q->Ho), ""), oy, ""),
                                           cg_i64(c, q->Wo), ""), ox0, "");
}

/* one tile of the plain implicit GEMM: all of K (taps outer, channels
 * inner) in registers, then the epilogue */
static void
conv_tile(CG *c, const Kernel *k, const KPlan *kp, const ConvP *q, LLVMValueRef b, LLVMValueRef oy,
          LLVMValueRef ox0, LLVMValueRef j, int rows, int ncols)
{
    int nv = kp->nv;
    LLVMValueRef init[MAXR * MAXV];
    for (int i = 0; i < rows * nv; i++) init[i] = cg_vf(c, 0.0);
    ConvRow cr = conv_row(c, k, q, b, oy);
    Loop lt;
    cg_loop_begin(c, &lt, cg_i64(c, 0), cg_i64(c, q->T), init, rows * nv, "tap");
    LLVMValueRef aptr[MAXR], valid[MAXR], sums[MAXR * MAXV];
    if (q->xbf) conv_tap_bf16(c, kp, q, ox0, lt.iv, rows, aptr);
    else conv_tap(c, q, &cr, ox0, lt.iv, rows, aptr, valid);
    LLVMValueRef wb = conv_wtap(c, kp, q, j, lt.iv);
    conv_kloop(c, kp, q, aptr, valid, rows, nv, wb, cg_i64(c, 0), cg_i64(c, q->xbf ? mc_llvm_bf16_pairs(q->Ci) : q->Ci),
               lt.phi, sums, NULL);
    cg_loop_end(c, &lt, sums);
    LLVMValueRef acc[MAXR][MAXV];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = lt.phi[r * nv + v];
    LLVMValueRef orow = conv_orow(c, q, b, oy, ox0);
    store_tile(c, k, acc, rows, nv, orow, LLVMBuildMul(c->b, j, cg_i64(c, kp->nr), ""), ncols, 1);
}

static void
conv_plain(CG *c, const Kernel *k, const KPlan *kp, const ConvP *q, LLVMValueRef begin, LLVMValueRef end)
{
    int64_t mr = kp->mr, nr = kp->nr;
    int64_t tfull = q->Wo / mr, wrem = q->Wo % mr, pfull = q->Co / nr, nrem = q->Co % nr;
    Loop lr;
    cg_loop_begin(c, &lr, begin, end, NULL, 0, "row");
    LLVMValueRef b = LLVMBuildUDiv(c->b, lr.iv, cg_i64(c, q->Ho), "");
    LLVMValueRef oy = LLVMBuildURem(c->b, lr.iv, cg_i64(c, q->Ho), "");
    if (q->xbf) conv_bf16_rows(c, k, kp, q, b, oy);
    for (int part = 0; part < 2; part++) {
        int64_t ncols = part == 0 ? nr : nrem;
        if (ncols == 0) continue;
        Loop lj;
        cg_loop_begin(c, &lj, cg_i64(c, part == 0 ? 0 : pfull), cg_i64(c, part == 0 ? pfull : pfull + 1), NULL, 0, "pan");
        Loop lt;
        cg_loop_begin(c, &lt, cg_i64(c, 0), cg_i64(c, tfull), NULL, 0, "tile");
        conv_tile(c, k, kp, q, b, oy, LLVMBuildMul(c->b, lt.iv, cg_i64(c, mr), ""), lj.iv, (int)mr, (int)ncols);
        cg_loop_end(c, &lt, NULL);
        if (wrem) conv_tile(c, k, kp, q, b, oy, cg_i64(c, tfull * mr), lj.iv, (int)wrem, (int)ncols);
        cg_loop_end(c, &lj, NULL);
    }
    cg_loop_end(c, &lr, NULL);
}

/* The blocked implicit GEMM: per task, K blocks (tap, channels [k0, k1))
 * outer, then panels, output rows, tiles; a tile starts from the partial
 * sums in the output (zero in the first block) and leaves them there, the
 * last block runs the epilogue instead.  One K block's panel slice
 * (kc x nr) serves all the task's tiles from cache, its input block
 * (pixels x kc) all its panels. */
typedef struct ConvBlk {
    LLVMValueRef b, tap, k0, k1, first, last;
    LLVMValueRef next0; /* the next K block's first panel slice (byte offset) */
    LLVMValueRef pf; /* in a panel: the next slice's first line */
} ConvBlk;

/* element offset of out[row, col] (out's channel stride is 1) */
static LLVMValueRef
conv_out_off(CG *c, const Kernel *k, LLVMValueRef row, LLVMValueRef col)
{
    const View *o = &k->out;
    return LLVMBuildAdd(c->b, cg_row_off(c, o, NULL, o->rank - 1, row), col, "");
}

/* a tile: pixels ox0.. of output row oy in panel j, the tseq-th tile of
 * the panel's sweep; the first pnr/16 tiles prefetch the next slice (kc
 * rows of pnr floats: pnr/16 lines a row), kc lines each, one a k step;
 * the others one line over and over (a stride of 0: no clamp, no test in
 * the loop) */
static void
conv_btile(CG *c, const Kernel *k, const KPlan *kp, const ConvP *q, const ConvBlk *bk, const ConvRow *cr,
           LLVMValueRef oy, LLVMValueRef ox0, LLVMValueRef j, LLVMValueRef tseq, int rows, int ncols)
{
    int nv = (ncols + c->L - 1) / c->L; /* a partial panel computes only its vectors */
    LLVMValueRef aptr[MAXR], valid[MAXR], init[MAXR * MAXV], sums[MAXR * MAXV];
    conv_tap(c, q, cr, ox0, bk->tap, rows, aptr, valid);
    LLVMValueRef orow = conv_orow(c, q, bk->b, oy, ox0), col0 = LLVMBuildMul(c->b, j, cg_i64(c, kp->nr), "");
    LLVMValueRef off[MAXR];
    for (int r = 0; r < rows; r++) off[r] = conv_out_off(c, k, LLVMBuildAdd(c->b, orow, cg_i64(c, r), ""), col0);
    for (int v = 0; v < nv; v++) {
        int nval = ncols - v * c->L < c->L ? ncols - v * c->L : c->L;
        for (int r = 0; r < rows; r++) {
            LLVMValueRef ld = cg_load_vec(c, k->out.buf, LLVMBuildAdd(c->b, off[r], cg_i64(c, (int64_t)v * c->L), ""), 1, nval);
            init[r * nv + v] = LLVMBuildSelect(c->b, bk->first, cg_vf(c, 0.0), ld, "");
        }
    }
    LLVMValueRef wb = conv_wtap(c, kp, q, j, bk->tap);
    /* the k loop runs from k0: its line k is the tile's line k - k0 */
    LLVMValueRef on = LLVMBuildICmp(c->b, LLVMIntSLT, tseq, cg_i64(c, kp->pnr / 16), "");
    LLVMValueRef pf0 = LLVMBuildAdd(c->b, bk->pf, LLVMBuildMul(c->b, tseq, cg_i64(c, kp->kc * 64), ""), "");
    LLVMValueRef step = LLVMBuildSelect(c->b, on, cg_i64(c, 64), cg_i64(c, 0), "");
    pf0 = LLVMBuildSelect(c->b, on, pf0, bk->pf, "");
    LLVMValueRef pf[2] = {LLVMBuildSub(c->b, pf0, LLVMBuildMul(c->b, bk->k0, step, ""), ""), step};
    conv_kloop(c, kp, q, aptr, valid, rows, nv, wb, bk->k0, bk->k1, init, sums, pf);
    LLVMValueRef acc[MAXR][MAXV];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = sums[r * nv + v];
    LLVMBasicBlockRef lb = cg_block(c, "klast"), mb = cg_block(c, "kmid"), jb = cg_block(c, "kjoin");
    LLVMBuildCondBr(c->b, bk->last, lb, mb);
    LLVMPositionBuilderAtEnd(c->b, lb);
    store_tile(c, k, acc, rows, nv, orow, col0, ncols, 1);
    LLVMBuildBr(c->b, jb);
    LLVMPositionBuilderAtEnd(c->b, mb);
    for (int v = 0; v < nv; v++) {
        int nval = ncols - v * c->L < c->L ? ncols - v * c->L : c->L;
        for (int r = 0; r < rows; r++)
            cg_store_vec(c, k->out.buf, LLVMBuildAdd(c->b, off[r], cg_i64(c, (int64_t)v * c->L), ""), 1, acc[r][v], nval);
    }
    LLVMBuildBr(c->b, jb);
    LLVMPositionBuilderAtEnd(c->b, jb);
}

/* panels [p0, p1) of one K block, all ncols wide, over rows [oy0, oy1) */
static void
conv_bpanels(CG *c, const Kernel *k, const KPlan *kp, const ConvP *q, const ConvBlk *bk, LLVMValueRef p0,
             LLVMValueRef p1, LLVMValueRef oy0, LLVMValueRef oy1, int ncols)
{
    int64_t mr = kp->mr, tfull = q->Wo / mr, wrem = q->Wo % mr, ntr = tfull + (wrem > 0);
    Loop lj, ly, lt;
    cg_loop_begin(c, &lj, p0, p1, NULL, 0, "bpan");
    /* the next sweep's slice: the next panel's, or the next K block's first */
    ConvBlk pb = *bk;
    LLVMValueRef jn = LLVMBuildAdd(c->b, lj.iv, cg_i64(c, 1), "");
    LLVMValueRef inb = conv_wtap(c, kp, q, jn, bk->tap);
    inb = LLVMBuildAdd(c->b, inb, LLVMBuildMul(c->b, bk->k0, cg_i64(c, kp->pnr * 4), ""), "");
    pb.pf = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, jn, p1, ""), inb, bk->next0, "");
    cg_loop_begin(c, &ly, oy0, oy1, NULL, 0, "brow");
    ConvRow cr = conv_row(c, k, q, bk->b, ly.iv);
    LLVMValueRef t0 = LLVMBuildMul(c->b, LLVMBuildSub(c->b, ly.iv, oy0, ""), cg_i64(c, ntr), "");
    cg_loop_begin(c, &lt, cg_i64(c, 0), cg_i64(c, tfull), NULL, 0, "btile");
    LLVMValueRef ox0 = LLVMBuildMul(c->b, lt.iv, cg_i64(c, mr), "");
    conv_btile(c, k, kp, q, &pb, &cr, ly.iv, ox0, lj.iv, LLVMBuildAdd(c->b, t0, lt.iv, ""), (int)mr, ncols);
    cg_loop_end(c, &lt, NULL);
    if (wrem)
        conv_btile(c, k, kp, q, &pb, &cr, ly.iv, cg_i64(c, tfull * mr), lj.iv, LLVMBuildAdd(c->b, t0, cg_i64(c, tfull), ""),
                   (int)wrem, ncols);
    cg_loop_end(c, &ly, NULL);
    cg_loop_end(c, &lj, NULL);
}

static void
conv_blocked(CG *c, const Kernel *k, const KPlan *kp, const ConvP *q, LLVMValueRef begin, LLVMValueRef end)
{
    int64_t nr = kp->nr, npan = (q->Co + nr - 1) / nr, pfull = q->Co / nr, nrem = q->Co % nr;
    int64_t ngrp = (npan + kp->cpan - 1) / kp->cpan, nrb = (q->Ho + kp->crows - 1) / kp->crows;
    int64_t nkb = (q->Ci + kp->kc - 1) / kp->kc;
    Loop lt;
    cg_loop_begin(c, &lt, begin, end, NULL, 0, "task");
    ConvBlk bk;
    LLVMValueRef g = LLVMBuildURem(c->b, lt.iv, cg_i64(c, ngrp), "");
    LLVMValueRef t1 = LLVMBuildUDiv(c->b, lt.iv, cg_i64(c, ngrp), "");
    LLVMValueRef rb = LLVMBuildURem(c->b, t1, cg_i64(c, nrb), "");
    bk.b = LLVMBuildUDiv(c->b, t1, cg_i64(c, nrb), "");
    LLVMValueRef oy0 = LLVMBuildMul(c->b, rb, cg_i64(c, kp->crows), "");
    LLVMValueRef oy1 = cg_imin(c, LLVMBuildAdd(c->b, oy0, cg_i64(c, kp->crows), ""), cg_i64(c, q->Ho));
    LLVMValueRef p0 = LLVMBuildMul(c->b, g, cg_i64(c, kp->cpan), "");
    LLVMValueRef p1 = cg_imin(c, LLVMBuildAdd(c->b, p0, cg_i64(c, kp->cpan), ""), cg_i64(c, npan));
    Loop lk;
    cg_loop_begin(c, &lk, cg_i64(c, 0), cg_i64(c, q->T * nkb), NULL, 0, "kblk");
    /* channel blocks outer, taps inner: the taps of one channel block read
     * the same few input rows, which stay in cache between them */
    bk.tap = LLVMBuildURem(c->b, lk.iv, cg_i64(c, q->T), "");
    bk.k0 = LLVMBuildMul(c->b, LLVMBuildUDiv(c->b, lk.iv, cg_i64(c, q->T), ""), cg_i64(c, kp->kc), "");
    bk.k1 = cg_imin(c, LLVMBuildAdd(c->b, bk.k0, cg_i64(c, kp->kc), ""), cg_i64(c, q->Ci));
    bk.first = LLVMBuildICmp(c->b, LLVMIntEQ, lk.iv, cg_i64(c, 0), "");
    bk.last = LLVMBuildICmp(c->b, LLVMIntEQ, lk.iv, cg_i64(c, q->T * nkb - 1), "");
    LLVMValueRef kn = LLVMBuildAdd(c->b, lk.iv, cg_i64(c, 1), ""); /* the next K block (past the end: clamped) */
    LLVMValueRef kn0 = LLVMBuildMul(c->b, LLVMBuildUDiv(c->b, kn, cg_i64(c, q->T), ""), cg_i64(c, kp->kc * kp->pnr * 4), "");
    bk.next0 = LLVMBuildAdd(c->b, conv_wtap(c, kp, q, p0, LLVMBuildURem(c->b, kn, cg_i64(c, q->T), "")), kn0, "");
    /* the full panels of the group, then the partial one if it is the group's */
    conv_bpanels(c, k, kp, q, &bk, p0, cg_imin(c, p1, cg_i64(c, pfull)), oy0, oy1, (int)nr);
    if (nrem) {
        If f;
        cg_if_begin(c, &f, LLVMBuildICmp(c->b, LLVMIntSGT, p1, cg_i64(c, pfull), ""), "bpart");
        conv_bpanels(c, k, kp, q, &bk, cg_i64(c, pfull), cg_i64(c, pfull + 1), oy0, oy1, (int)nrem);
        cg_if_end(c, &f);
    }
    cg_loop_end(c, &lk, NULL);
    cg_loop_end(c, &lt, NULL);
}

void
cg_conv(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    if (mc_llvm_amx_conv(c->t, k, kp)) { /* AMX-BF16 tiles (llvm_amx.c) */
        cg_amx_conv(c, k, kp, begin, end);
        return;
    }
    const View *x = &k->in[0], *w = &k->in[1], *o = &k->out;
    ConvP q;
    memset(&q, 0, sizeof q);
    q.B = x->shape[0];
    q.H = x->shape[1];
    q.W = x->shape[2];
    q.Ci = x->shape[3];
    q.Co = w->shape[0];
    q.kh = w->shape[2];
    q.kw = w->shape[3];
    q.Ho = o->shape[1];
    q.Wo = o->shape[2];
    q.sh = k->attrs.stride[0];
    q.sw = k->attrs.stride[1];
    q.ph = k->attrs.pad[0];
    q.pw = k->attrs.pad[1];
    q.dh = k->attrs.dil[0] ? k->attrs.dil[0] : 1;
    q.dw = k->attrs.dil[1] ? k->attrs.dil[1] : 1;
    q.T = q.kh * q.kw;
    for (int i = 0; i < 4; i++) q.sx[i] = x->stride[i];
    q.zero_row = q.sx[3] == 1 && c->zeros != NULL;
    q.kt = kp->bf16 ? kp->kpad / 2 : q.Ci;
    if (kp->bf16) q.xbf = cg_stack_buf(c, q.kh * q.W * kp->kpad * 2, "xbf16");
    if (kp->kc) conv_blocked(c, k, kp, &q, begin, end);
    else conv_plain(c, k, kp, &q, begin, end);
}
