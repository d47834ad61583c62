/* backends/llvm/llvm_amx.c -- GEMM and convolution kernel bodies on
 * AMX-BF16 tiles (--precision bf16 on CPUs with amx-tile and amx-bf16:
 * Sapphire Rapids, Granite Rapids, ...).
 *
 * Takes a KK_GEMM or plain (unblocked) KK_CONV kernel whose plan is bf16
 * (KPlan.bf16: the weights packed per panel of pnr columns as VNNI pairs,
 * [kpad/2][pnr][2] bf16 a GEMM panel, [T][kpad/2][pnr][2] a conv panel;
 * kpad = K, or Ci, rounded up to 32, zero padded; llvm_internal.h) on a
 * target with AMX (mc_llvm_amx_target); produces the kernel body in the
 * current function, over the parallel range llvm_gemm.c's kernels use
 * (GEMM: the task grid of row block x column panel; CONV: output rows).
 *
 * A task first copies the A rows it reads to a stack buffer as bf16
 * (llvm_gemm.c's helpers: round to nearest even, zeros up to kpad).  GEMM:
 * its row block, rows of kpad, once per row block for a thread's run of
 * tasks.  CONV: the kh input rows of its output row, each with zero pixels
 * on both sides so that every tap of every output pixel, inside the image
 * or not, reads a pixel of the copy.  Then, per panel and per block of 32
 * output rows (GEMM rows, or output pixels), for each pair of 16-column
 * tiles: four 16x16 fp32 accumulator tiles (2x2; 2x1 for a lone last
 * column tile) and per step of 32 k (a conv: per tap and 32 channels) two
 * A tiles of 16 rows x 32 bf16 (a conv's rows are sw pixels apart) and two
 * B tiles of 16 pairs x 16 columns of the packed panel (rows pnr*4 bytes
 * apart), four TDPBF16PS.  The sums go to a 32 x nr fp32 stack buffer,
 * then the rows that exist get + bias, the epilogue and the store
 * (cg_emit_out, masked in a partial panel); rows past the end of the block
 * are computed on whatever the copy holds there and not stored.  LLVM's
 * .internal AMX intrinsics carry the tile shapes, so LLVM writes the tile
 * configuration (ldtilecfg) and releases the tiles (tilerelease) itself.
 * A GEMM whose tasks run panel-major (its weights streamed from memory
 * once) prefetches the next panel into L2 during its first block.
 *
 * bench/amx.c measured this blocking (2x2, A converted once per row block,
 * C through a small buffer) on one core of a Sapphire Rapids machine: the
 * tiles alone run at up to ~1.6 TFLOP/s (the unit's peak ~2.2); converting
 * A and storing C bound the time on tiny's shapes.  Owns nothing.
 */
#include "llvm_internal.h"
#include <string.h>

#define TROWS 16  /* rows of a tile */
#define TK 32     /* bf16 of A per tile row: one k step */
#define BROWS 32  /* rows of a block: two A tiles */

static int64_t
cdiv(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

int
mc_llvm_amx_target(const McLlvmTarget *t)
{
    return t->amx;
}

/* ------------------------------------------------------------ shapes */

/* GEMM: rows of a task's row block, and bytes of its bf16 copy (rows to a
 * multiple of BROWS) */
static int64_t
gemm_rows(const Kernel *k, const KPlan *kp)
{
    int64_t r = kp->tpb * kp->mr;
    return r < k->M ? r : k->M;
}

static int64_t
gemm_copy_bytes(const Kernel *k, const KPlan *kp)
{
    return cdiv(gemm_rows(k, kp), BROWS) * BROWS * kp->kpad * 2;
}

int
mc_llvm_amx_gemm(const McLlvmTarget *t, const Kernel *k, const KPlan *kp)
{
    return k->kind == KK_GEMM && kp->bf16 && mc_llvm_amx_target(t) && gemm_copy_bytes(k, kp) <= MC_LLVM_BF16_ABUF;
}

/* a convolution's geometry: NHWC input [B,H,W,Ci] (element strides sx),
 * weights [Co,Ci,kh,kw], output [B,Ho,Wo,Co]; wp pixels a row of the copy
 * (pw zero pixels, W image pixels, zeros to what the last block reads) */
typedef struct AConv {
    int64_t B, H, W, Ci, Co, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw, sx[4], wp;
} AConv;

static void
aconv(const Kernel *k, AConv *q)
{
    const int64_t *xs = k->in[0].shape, *ws = k->in[1].shape, *os = k->out.shape;
    const int64_t *st = k->attrs.stride, *pd = k->attrs.pad, *dl = k->attrs.dil;
    *q = (AConv){xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], os[1], os[2], st[0], st[1], pd[0], pd[1],
                 dl[0] ? dl[0] : 1, dl[1] ? dl[1] : 1, {0}, 0};
    memcpy(q->sx, k->in[0].stride, sizeof q->sx);
    int64_t last = (cdiv(q->Wo, BROWS) * BROWS - 1) * q->sw + (q->kw - 1) * q->dw; /* from pixel -pw */
    q->wp = last + 1 > q->pw + q->W ? last + 1 : q->pw + q->W;
}

static int64_t
conv_copy_bytes(const Kernel *k, const KPlan *kp)
{
    AConv q;
    aconv(k, &q);
    return q.kh * q.wp * kp->kpad * 2;
}

/* Ci of at least half a k step: smaller ones (the RGB stem) would spend
 * most of each tile on padding */
int
mc_llvm_amx_conv(const McLlvmTarget *t, const Kernel *k, const KPlan *kp)
{
    return k->kind == KK_CONV && kp->bf16 && !kp->kc && mc_llvm_amx_target(t) && k->in[1].shape[1] >= TK / 2 &&
           conv_copy_bytes(k, kp) <= MC_LLVM_BF16_ABUF;
}

/* ------------------------------------------------------------ tiles */

static LLVMValueRef
i16c(CG *c, int64_t v)
{
    return LLVMConstInt(LLVMInt16TypeInContext(c->ctx), (unsigned long long)v, 0);
}

static LLVMValueRef
tile_zero(CG *c)
{
    LLVMValueRef a[2] = {i16c(c, TROWS), i16c(c, 64)};
    return cg_intrinsic(c, "llvm.x86.tilezero.internal", NULL, 0, a, 2);
}

/* a 16 x 64-byte tile from p, rows `stride` bytes apart */
static LLVMValueRef
tile_load(CG *c, LLVMValueRef p, int64_t stride)
{
    LLVMValueRef a[4] = {i16c(c, TROWS), i16c(c, 64), p, cg_i64(c, stride)};
    return cg_intrinsic(c, "llvm.x86.tileloadd64.internal", NULL, 0, a, 4);
}

static void
tile_store(CG *c, LLVMValueRef p, int64_t stride, LLVMValueRef t)
{
    LLVMValueRef a[5] = {i16c(c, TROWS), i16c(c, 64), p, cg_i64(c, stride), t};
    cg_intrinsic(c, "llvm.x86.tilestored64.internal", NULL, 0, a, 5);
}

/* acc + a b: 16 x 16 fp32 += (16 x 32 bf16) x (16 pairs x 16 columns) */
static LLVMValueRef
tile_dp(CG *c, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef x[6] = {i16c(c, TROWS), i16c(c, 64), i16c(c, 64), acc, a, b};
    return cg_intrinsic(c, "llvm.x86.tdpbf16ps.internal", NULL, 0, x, 6);
}

/* The A copy and the sums take up to MC_LLVM_BF16_ABUF + 8 KB of the
 * thread's stack: the kernel touches its frame page by page on entry, so
 * that a thread stack too small for it (a small OMP_STACKSIZE) ends on the
 * guard page instead of past it. */
static void
probe_stack(CG *c)
{
    LLVMAddAttributeAtIndex(c->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(c->ctx, "probe-stack", 11, "inline-asm", 10));
}

/* Where step s of a block's K loop reads its A tiles: GEMM, 32 k further
 * each step; CONV, step s = tap * (kpad/32) + channel step, the tap's
 * pixel (ky, kx*dw) of the copy (rows of wp pixels of kpad bf16). */
typedef struct ASrc {
    LLVMValueRef base;   /* the block's first row (pixel) at step 0 */
    int64_t stride;      /* bytes from one A row to the next */
    int conv;
    int64_t qn, kw, dw, wp, pix; /* conv: k steps a tap, its width and dilation, pixels a row, bytes a pixel */
} ASrc;

static LLVMValueRef
a_step(CG *c, const ASrc *a, LLVMValueRef s)
{
    if (!a->conv) return cg_byte_ptr(c, a->base, LLVMBuildMul(c->b, s, cg_i64(c, TK * 2), ""));
    LLVMValueRef tap = LLVMBuildUDiv(c->b, s, cg_i64(c, a->qn), ""), q = LLVMBuildURem(c->b, s, cg_i64(c, a->qn), "");
    LLVMValueRef ky = LLVMBuildUDiv(c->b, tap, cg_i64(c, a->kw), ""), kx = LLVMBuildURem(c->b, tap, cg_i64(c, a->kw), "");
    LLVMValueRef px = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, ky, cg_i64(c, a->wp), ""), LLVMBuildMul(c->b, kx, cg_i64(c, a->dw), ""), "");
    return cg_byte_ptr(c, a->base, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, px, cg_i64(c, a->pix), ""),
                                         LLVMBuildMul(c->b, q, cg_i64(c, TK * 2), ""), ""));
}

/* The 32 x (16*nct) sums of one block, nct (1 or 2) column tiles from
 * panel column ct0*16, over nsteps k steps (A: a; B: 16 pair rows a step
 * from blob offset wb); into cbuf (32 rows, nr floats apart).  pf (or
 * NULL): blob offset of a panel whose lines of the same columns and steps
 * to prefetch into L2 meanwhile */
static void
tile_sums(CG *c, const KPlan *kp, const ASrc *a, LLVMValueRef wb, int64_t nsteps, int ct0, int nct, LLVMValueRef cbuf,
          LLVMValueRef pf)
{
    int64_t sb = kp->pnr * 4, sc = kp->nr * 4;
    LLVMValueRef init[4];
    for (int i = 0; i < 2 * nct; i++) init[i] = tile_zero(c);
    Loop lk;
    cg_loop_begin(c, &lk, cg_i64(c, 0), cg_i64(c, nsteps), init, 2 * nct, "tk");
    LLVMValueRef at[2], bt[2], next[4];
    LLVMValueRef ak = a_step(c, a, lk.iv);
    for (int r = 0; r < 2; r++) at[r] = tile_load(c, cg_byte_ptr(c, ak, cg_i64(c, r * TROWS * a->stride)), a->stride);
    LLVMValueRef bk = LLVMBuildAdd(c->b, wb, LLVMBuildMul(c->b, lk.iv, cg_i64(c, TK / 2 * sb), ""), "");
    for (int t = 0; t < nct; t++)
        bt[t] = tile_load(c, cg_byte_ptr(c, c->base[BUF_WEIGHT], LLVMBuildAdd(c->b, bk, cg_i64(c, (ct0 + t) * 16 * 4), "")), sb);
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < nct; t++) next[r * nct + t] = tile_dp(c, lk.phi[r * nct + t], at[r], bt[t]);
    if (pf) { /* the same step's lines of the next panel: 16 pair rows x nct*64 bytes */
        LLVMValueRef pk = LLVMBuildAdd(c->b, pf, LLVMBuildMul(c->b, lk.iv, cg_i64(c, TK / 2 * sb), ""), "");
        for (int r = 0; r < TK / 2; r++)
            for (int t = 0; t < nct; t++)
                cg_prefetch_weights(c, LLVMBuildAdd(c->b, pk, cg_i64(c, r * sb + (ct0 + t) * 64), ""), 2);
    }
    cg_loop_end(c, &lk, next);
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < nct; t++)
            tile_store(c, cg_byte_ptr(c, cbuf, cg_i64(c, r * TROWS * sc + (ct0 + t) * 16 * 4)), sc, lk.phi[r * nct + t]);
}

/* byte offset in the blob of panel j's first pair row (panels pnr >= nr
 * columns wide: j's columns may start inside one), `prows` pair rows a panel */
static LLVMValueRef
panel_base(CG *c, const KPlan *kp, LLVMValueRef j, int64_t prows)
{
    return LLVMBuildAdd(c->b, cg_pack_off(c, kp, 0), cg_panel_off(c, kp, j, prows), "");
}

/* the bias of columns col0.. (ncols of them), one vector per L columns */
static void
bias_vecs(CG *c, const Kernel *k, LLVMValueRef col0, int64_t ncols, LLVMValueRef bv[MC_LLVM_MAX_NV])
{
    const View *bias = k->nin >= 3 ? &k->in[2] : NULL;
    for (int v = 0; v < MC_LLVM_MAX_NV; v++) bv[v] = NULL;
    for (int v = 0; bias && v < cdiv(ncols, c->L); v++) {
        int64_t bs = bias->stride[bias->rank - 1];
        LLVMValueRef col = LLVMBuildAdd(c->b, col0, cg_i64(c, (int64_t)v * c->L), "");
        LLVMValueRef off = LLVMBuildAdd(c->b, cg_i64(c, bias->offset), LLVMBuildMul(c->b, col, cg_i64(c, bs), ""), "");
        bv[v] = cg_load_vec(c, bias->buf, off, bs, (int)(ncols - v * c->L < c->L ? ncols - v * c->L : c->L));
    }
}

/* rows [0, n) of the block's sums in cbuf are output rows row0.. (columns
 * col0.., ncols): + bias, the epilogue, the store */
static void
sums_out(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef cbuf, LLVMValueRef row0, LLVMValueRef n,
         LLVMValueRef col0, int64_t ncols, LLVMValueRef *bv)
{
    Loop lr;
    cg_loop_begin(c, &lr, cg_i64(c, 0), n, NULL, 0, "trow");
    LLVMValueRef row = LLVMBuildAdd(c->b, row0, lr.iv, "");
    LLVMValueRef crow = cg_byte_ptr(c, cbuf, LLVMBuildMul(c->b, lr.iv, cg_i64(c, kp->nr * 4), ""));
    for (int v = 0; v < cdiv(ncols, c->L); v++) {
        LLVMValueRef val = LLVMBuildLoad2(c->b, c->vf, cg_byte_ptr(c, crow, cg_i64(c, (int64_t)v * c->L * 4)), "");
        LLVMSetAlignment(val, 64);
        if (bv[v]) val = LLVMBuildFAdd(c->b, val, bv[v], "");
        cg_emit_out(c, k, row, LLVMBuildAdd(c->b, col0, cg_i64(c, (int64_t)v * c->L), ""), val,
                    (int)(ncols - v * c->L < c->L ? ncols - v * c->L : c->L));
    }
    cg_loop_end(c, &lr, NULL);
}

/* the body of a panel: a block of 32 rows, ncols columns */
typedef void (*PanelFn)(CG *c, const Kernel *k, const KPlan *kp, const void *arg, LLVMValueRef j, int64_t ncols);

/* fn for panel j, with ncols = nr for the full panels and N % nr for the
 * partial last one (branching on j when there are both) */
static void
by_panel(CG *c, const Kernel *k, const KPlan *kp, PanelFn fn, const void *arg, LLVMValueRef j, int64_t N)
{
    int64_t nr = kp->nr, pfull = N / nr, nrem = N % nr;
    if (!nrem || !pfull) {
        fn(c, k, kp, arg, j, pfull ? nr : nrem);
        return;
    }
    LLVMBasicBlockRef fb = cg_block(c, "fullpan"), pb = cg_block(c, "partpan"), jb = cg_block(c, "pjoin");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, j, cg_i64(c, pfull), ""), fb, pb);
    LLVMPositionBuilderAtEnd(c->b, fb);
    fn(c, k, kp, arg, j, nr);
    LLVMBuildBr(c->b, jb);
    LLVMPositionBuilderAtEnd(c->b, pb);
    fn(c, k, kp, arg, j, nrem);
    LLVMBuildBr(c->b, jb);
    LLVMPositionBuilderAtEnd(c->b, jb);
}

/* ------------------------------------------------------------ GEMM */

typedef struct GemmTask {
    LLVMValueRef abuf, cbuf, r0, n; /* the copy of rows [r0, r0 + n) */
} GemmTask;

static void
gemm_panel(CG *c, const Kernel *k, const KPlan *kp, const void *arg, LLVMValueRef j, int64_t ncols)
{
    const GemmTask *g = arg;
    int nct = (int)cdiv(ncols, 16);
    LLVMValueRef wb = panel_base(c, kp, j, kp->kpad / 2), col0 = LLVMBuildMul(c->b, j, cg_i64(c, kp->nr), "");
    LLVMValueRef bv[MC_LLVM_MAX_NV];
    bias_vecs(c, k, col0, ncols, bv);
    Loop lb;
    cg_loop_begin(c, &lb, cg_i64(c, 0), LLVMBuildSDiv(c->b, LLVMBuildAdd(c->b, g->n, cg_i64(c, BROWS - 1), ""), cg_i64(c, BROWS), ""),
                  NULL, 0, "tblk");
    LLVMValueRef rb = LLVMBuildMul(c->b, lb.iv, cg_i64(c, BROWS), "");
    ASrc a = {cg_byte_ptr(c, g->abuf, LLVMBuildMul(c->b, rb, cg_i64(c, kp->kpad * 2), "")), kp->kpad * 2, 0, 0, 0, 0, 0, 0};
    /* panel-major: the weights come from memory once, panel after panel;
     * the first block prefetches the next panel's */
    LLVMValueRef pf = NULL;
    if (kp->panel_major) {
        LLVMValueRef nx = panel_base(c, kp, LLVMBuildAdd(c->b, j, cg_i64(c, 1), ""), kp->kpad / 2);
        nx = cg_imin(c, nx, cg_pack_off(c, kp, kp->pack_bytes - kp->kpad / 2 * kp->pnr * 4));
        pf = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, lb.iv, cg_i64(c, 0), ""), nx, wb, "");
    }
    for (int ct = 0; ct < nct; ct += 2) tile_sums(c, kp, &a, wb, kp->kpad / TK, ct, nct - ct >= 2 ? 2 : 1, g->cbuf, pf);
    sums_out(c, k, kp, g->cbuf, LLVMBuildAdd(c->b, g->r0, rb, ""), cg_imin(c, LLVMBuildSub(c->b, g->n, rb, ""), cg_i64(c, BROWS)),
             col0, ncols, bv);
    cg_loop_end(c, &lb, NULL);
}

void
cg_amx_gemm(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    int64_t brows = kp->tpb * kp->mr;
    GemmTask g;
    probe_stack(c);
    g.abuf = cg_stack_buf(c, gemm_copy_bytes(k, kp), "acopy");
    g.cbuf = cg_stack_buf(c, BROWS * kp->nr * 4, "csums");
    LLVMValueRef cur = cg_stack_buf(c, 8, "ablock"); /* the row block in the copy */
    LLVMBuildStore(c->b, cg_i64(c, -1), cur);
    Loop lt;
    cg_loop_begin(c, &lt, begin, end, NULL, 0, "task");
    LLVMValueRef mb, j;
    cg_gemm_task(c, kp, lt.iv, &mb, &j);
    g.r0 = LLVMBuildMul(c->b, mb, cg_i64(c, brows), "");
    g.n = cg_imin(c, LLVMBuildSub(c->b, cg_i64(c, k->M), g.r0, ""), cg_i64(c, brows));
    If f;
    cg_if_begin(c, &f, LLVMBuildICmp(c->b, LLVMIntNE, LLVMBuildLoad2(c->b, c->i64, cur, ""), mb, ""), "acopy");
    cg_gemm_bf16_rows(c, k, kp, g.abuf, g.r0, LLVMBuildAdd(c->b, g.r0, g.n, ""));
    LLVMBuildStore(c->b, mb, cur);
    cg_if_end(c, &f);
    by_panel(c, k, kp, gemm_panel, &g, j, k->N);
    cg_loop_end(c, &lt, NULL);
}

/* ------------------------------------------------------------ convolution */

typedef struct ConvTask {
    const AConv *q;
    LLVMValueRef xbuf, cbuf, orow; /* the copy; output row index of pixel (b, oy, 0) */
} ConvTask;

/* the kh input rows of output row (b, oy) into the copy: row ky at
 * ky*wp pixels, pixel ix at pw + ix, zeros around the image and for rows
 * outside it */
static void
conv_copy(CG *c, const Kernel *k, const KPlan *kp, const AConv *q, LLVMValueRef xbuf, LLVMValueRef b, LLVMValueRef oy)
{
    int64_t pix = kp->kpad * 2, rowb = q->wp * pix;
    LLVMValueRef zero = LLVMConstInt(c->i8, 0, 0);
    LLVMValueRef iy0 = LLVMBuildSub(c->b, LLVMBuildMul(c->b, oy, cg_i64(c, q->sh), ""), cg_i64(c, q->ph), "");
    LLVMValueRef boff = LLVMBuildAdd(c->b, cg_i64(c, k->in[0].offset), LLVMBuildMul(c->b, b, cg_i64(c, q->sx[0]), ""), "");
    for (int64_t ky = 0; ky < q->kh; ky++) {
        LLVMValueRef iy = LLVMBuildAdd(c->b, iy0, cg_i64(c, ky * q->dh), "");
        LLVMValueRef dst = cg_byte_ptr(c, xbuf, cg_i64(c, ky * rowb));
        LLVMBasicBlockRef ib = cg_block(c, "xrow"), ob = cg_block(c, "xzero"), jb = cg_block(c, "xjoin");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, iy, cg_i64(c, q->H), ""), ib, ob);
        LLVMPositionBuilderAtEnd(c->b, ib);
        if (q->pw) LLVMBuildMemSet(c->b, dst, zero, cg_i64(c, q->pw * pix), 64);
        Loop lx;
        cg_loop_begin(c, &lx, cg_i64(c, 0), cg_i64(c, q->W), NULL, 0, "xpix");
        LLVMValueRef off = LLVMBuildAdd(c->b, LLVMBuildAdd(c->b, boff, LLVMBuildMul(c->b, iy, cg_i64(c, q->sx[1]), ""), ""),
                                        LLVMBuildMul(c->b, lx.iv, cg_i64(c, q->sx[2]), ""), "");
        cg_bf16_row(c, k->in[0].buf, off, q->sx[3], q->Ci, kp->kpad,
                    cg_byte_ptr(c, dst, LLVMBuildMul(c->b, LLVMBuildAdd(c->b, lx.iv, cg_i64(c, q->pw), ""), cg_i64(c, pix), "")));
        cg_loop_end(c, &lx, NULL);
        if (q->wp > q->pw + q->W)
            LLVMBuildMemSet(c->b, cg_byte_ptr(c, dst, cg_i64(c, (q->pw + q->W) * pix)), zero, cg_i64(c, (q->wp - q->pw - q->W) * pix), 64);
        LLVMBuildBr(c->b, jb);
        LLVMPositionBuilderAtEnd(c->b, ob);
        LLVMBuildMemSet(c->b, dst, zero, cg_i64(c, rowb), 64);
        LLVMBuildBr(c->b, jb);
        LLVMPositionBuilderAtEnd(c->b, jb);
    }
}

static void
conv_panel(CG *c, const Kernel *k, const KPlan *kp, const void *arg, LLVMValueRef j, int64_t ncols)
{
    const ConvTask *ct = arg;
    const AConv *q = ct->q;
    int nct = (int)cdiv(ncols, 16);
    int64_t qn = kp->kpad / TK, pix = kp->kpad * 2;
    LLVMValueRef wb = panel_base(c, kp, j, q->kh * q->kw * kp->kpad / 2), col0 = LLVMBuildMul(c->b, j, cg_i64(c, kp->nr), "");
    LLVMValueRef bv[MC_LLVM_MAX_NV];
    bias_vecs(c, k, col0, ncols, bv);
    Loop lb;
    cg_loop_begin(c, &lb, cg_i64(c, 0), cg_i64(c, cdiv(q->Wo, BROWS)), NULL, 0, "tblk");
    LLVMValueRef ox0 = LLVMBuildMul(c->b, lb.iv, cg_i64(c, BROWS), "");
    /* output pixel ox's tap (ky, kx) reads copy pixel ky*wp + ox*sw + kx*dw */
    ASrc a = {cg_byte_ptr(c, ct->xbuf, LLVMBuildMul(c->b, ox0, cg_i64(c, q->sw * pix), "")), q->sw * pix, 1, qn, q->kw, q->dw, q->wp,
              pix};
    for (int t = 0; t < nct; t += 2) tile_sums(c, kp, &a, wb, q->kh * q->kw * qn, t, nct - t >= 2 ? 2 : 1, ct->cbuf, NULL);
    sums_out(c, k, kp, ct->cbuf, LLVMBuildAdd(c->b, ct->orow, ox0, ""),
             cg_imin(c, LLVMBuildSub(c->b, cg_i64(c, q->Wo), ox0, ""), cg_i64(c, BROWS)), col0, ncols, bv);
    cg_loop_end(c, &lb, NULL);
}

void
cg_amx_conv(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end)
{
    AConv q;
    aconv(k, &q);
    probe_stack(c);
    ConvTask ct = {&q, cg_stack_buf(c, conv_copy_bytes(k, kp), "xcopy"), cg_stack_buf(c, BROWS * kp->nr * 4, "csums"), NULL};
    Loop lr;
    cg_loop_begin(c, &lr, begin, end, NULL, 0, "row");
    LLVMValueRef b = LLVMBuildUDiv(c->b, lr.iv, cg_i64(c, q.Ho), "");
    LLVMValueRef oy = LLVMBuildURem(c->b, lr.iv, cg_i64(c, q.Ho), "");
    conv_copy(c, k, kp, &q, ct.xbuf, b, oy);
    ct.orow = LLVMBuildMul(c->b, lr.iv, cg_i64(c, q.Wo), "");
    Loop lj;
    cg_loop_begin(c, &lj, cg_i64(c, 0), cg_i64(c, cdiv(q.Co, kp->nr)), NULL, 0, "pan");
    by_panel(c, k, kp, conv_panel, &ct, lj.iv, q.Co);
    cg_loop_end(c, &lj, NULL);
    cg_loop_end(c, &lr, NULL);
}
