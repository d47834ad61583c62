/* backends/llvm/llvm_internal.h -- shared state of the LLVM code generator.
 *
 * Not a public header: only the files of backends/llvm include it (it pulls in the
 * LLVM C API).  CG is the state while one module is built; Plan is the
 * per-kernel layout decisions (micro-kernel shape, packed-weight offsets)
 * that codegen and the weight packer must agree on.
 */
#ifndef MC_LLVM_INTERNAL_H
#define MC_LLVM_INTERNAL_H
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include "llvm.h"

struct McLlvmTarget {
    char *triple, *cpu, *features, *abi;
    LLVMTargetRef target;
    LLVMTargetMachineRef tm;
    int lanes;        /* f32 lanes per vector register used */
    int vregs;        /* architectural vector registers (of that width) */
    int x86_avx512;   /* 16 lanes are AVX-512 zmm (vrcp14ps available) */
    int bf16;         /* bf16 dot products for --precision bf16: x86 avx512bf16 (vdpbf16ps),
                         aarch64 bf16 (bfdot) */
    int amx;          /* AMX tiles for bf16 GEMMs/convs: x86 avx512bf16 + amx-tile + amx-bf16
                         (mc_llvm_amx_target); the code then needs the OS's permission */
    int host;
    char *descr;
    char *required;   /* features the code needs, checked at start-up (runtime/cpu.c) */
};

struct McLlvmModule {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    const McLlvmTarget *t;
    char prefix[128];
    int noutputs;        /* output pointers <prefix>_run takes */
};

/* Per-kernel layout of the code: the kernel's schedule (mc_llvm_schedule)
 * in the code generator's terms, and where its packed weights are. */
typedef struct KPlan {
    int mr, nv, nr;          /* GEMM/CONV micro-kernel: mr rows x nv vectors (nr = nv*lanes cols) */
    int64_t pnr;             /* GEMM/CONV: columns of a packed panel (a multiple of nr; == nr
                                unless the weights are packed for a wider variant) */
    int64_t pcp;             /* DWCONV/FUSION25: channels of a packed tap row (a multiple of lanes) */
    int64_t pack_off;        /* byte offset of packed data in the blob, -1 none */
    int64_t pack_bytes;
    int64_t n, grain;        /* parallel-for range and grain */
    /* GEMM task grid: n = nmb * npan tasks (row block, column panel); row
     * block b holds tiles [b*tpb, min((b+1)*tpb, ntiles)); panel_major:
     * task t = j*nmb + b (a thread's range walks panels outermost, each
     * panel read from memory once), else t = b*npan + j (row blocks outer) */
    int64_t nmb, npan, tpb;
    int panel_major;
    int64_t group;           /* SCAN/FUSION25: channel vectors per task */
    /* CONV blocked (kc > 0; llvm_gemm.c): K blocks of kc input channels of
     * one tap; task = (b, block of crows output rows, group of cpan panels),
     * n = B * ceil(Ho/crows) * ceil(panels/cpan) */
    int64_t kc, crows, cpan;
    /* --precision bf16 (Sched.bf16; llvm_gemm.c): the weights are packed
     * bf16 in VNNI pairs, the products run in bf16 with fp32 sums.  GEMM:
     * per panel of pnr columns [kpad/2][pnr][2] (pair q of column c: W[n][2q],
     * W[n][2q+1] at bf16 index (q*pnr + c)*2, 4 bytes per column per pair as
     * an fp32 row has); CONV: per panel [T][kpad/2][pnr][2], pairs of input
     * channels of one tap.  kpad = K (GEMM) or Ci (CONV) rounded up to
     * MC_LLVM_BF16_KPAD, the padding zero. */
    int bf16;
    int64_t kpad;
} KPlan;

typedef struct Plan {
    KPlan *k;
    int nk;
    int64_t *woff;           /* per buffer: byte offset of a weight kept in graph layout
                                (read through a view by some kernel), -1 none */
    int nbufs;
    int64_t blob_bytes;      /* graph-layout part + packed part */
    int64_t zeros;           /* floats in the zero row (implicit-GEMM padding) */
    /* Shared code (mc_llvm_plan): kernels that differ only in where their
     * buffers and packed weights are (the same block of another stage) run
     * one function.  rep[i]: the first kernel of i's class, whose function
     * runs i; shared[i]: the class has two or more kernels, so that
     * function reads those places from a table of the caller's (CG.tab,
     * MC_LLVM_CTX_TAB); nclasses: the functions a program has. */
    int *rep, *shared;
    int nclasses;
} Plan;

/* Shared code's table (one per call of a shared function, a constant of the
 * entry point's module): the byte offset of each buffer the kernel names
 * (mc_llvm_kernel_slots' order: within its kind's base; a weight's
 * graph-layout copy at Plan.woff), then its packed weights' pack_off.  The
 * team function puts its address in the ctx slot MC_LLVM_CTX_TAB before
 * the call. */
#define MC_LLVM_MAX_SLOTS (4 + 1 + MC_MAX_ARGS)
#define MC_LLVM_CTX_TAB (4 + MC_MAX_OUTPUTS)
/* The distinct buffers kernel k names, in the order in[], out, args[]:
 * into bufs (MC_LLVM_MAX_SLOTS); returns how many. */
int mc_llvm_kernel_slots(const Kernel *k, int *bufs);
/* Fills pl's rep, shared and nclasses (after mc_llvm_plan; only code
 * generation needs them). */
void mc_llvm_plan_classes(const KProgram *p, Plan *pl);
/* Buffer buf's byte offset within its kind's base: a weight's graph-layout
 * copy where the plan put it, the others Buffer.offset. */
static inline int64_t
mc_llvm_buf_offset(const KProgram *p, const Plan *pl, int buf)
{
    return p->bufs[buf].kind == BUF_WEIGHT ? pl->woff[buf] : p->bufs[buf].offset;
}
/* The table of kernel k's call into tab (MC_LLVM_MAX_SLOTS + 1): its
 * buffers' offsets, then its pack_off; returns its length. */
int mc_llvm_call_table(const KProgram *p, const Plan *pl, int k, int64_t *tab);

/* Limits of the code generator's tiles (llvm_gemm.c, llvm_kernels.c). */
#define MC_LLVM_MAX_MR 8          /* GEMM/CONV micro-kernel rows */
#define MC_LLVM_MAX_NV 4          /* its column vectors */
#define MC_LLVM_MAX_SCAN_GROUP 4  /* channel vectors of a scan task */
#define MC_LLVM_IMAGE_GROUPS 16   /* most images a per-image segment runs side by side */
#define MC_LLVM_BF16_KPAD 32      /* bf16 panels: K (Ci of a tap) padded to this (an AMX tile row) */
#define MC_LLVM_BF16_ABUF (256 * 1024) /* bf16 GEMM/CONV: bytes of a task's bf16 copy of its A rows (stack) */

/* bf16 pairs of k values (the last one padded with a zero when k is odd) */
static inline int64_t
mc_llvm_bf16_pairs(int64_t k)
{
    return (k + 1) / 2;
}

/* k rounded up to MC_LLVM_BF16_KPAD: a packed panel's K (a conv's Ci), and
 * the bf16 elements of a row of a task's A copy (llvm_gemm.c) */
static inline int64_t
mc_llvm_bf16_kpad(int64_t k)
{
    return (k + MC_LLVM_BF16_KPAD - 1) / MC_LLVM_BF16_KPAD * MC_LLVM_BF16_KPAD;
}

/* fp32 -> bf16, round to nearest even (NaN stays a quiet NaN): what the
 * weight packer stores and vcvtneps2bf16 computes for normal numbers */
uint16_t mc_llvm_bf16_round(float x);

/* Kernel k's schedule on target t (llvm_schedule.c): k->sched's set fields
 * and t's choice for the unset ones.  Returns 0; 1 when k->sched.vec is
 * not t's lanes (made for another target: *s is t's own choice); -1 when a
 * set field cannot be honoured (err says which; *s is t's own choice). */
int mc_llvm_schedule(const Kernel *k, const McLlvmTarget *t, Sched *s, McErr *err);
/* 0, or -1 with err naming the kernel when a schedule of p cannot be
 * honoured by the targets t[0..nt) that it applies to, or applies to none
 * of them (a vec that is none of their lanes). */
int mc_llvm_schedule_check(const KProgram *p, const McLlvmTarget *const *t, int nt, McErr *err);

/* The target the tile pass schedules for: --cpu's one CPU, or the widest
 * of a list (llvm_variants.c; the one whose packing the variants share).
 * NULL with err on a bad triple, CPU or list. */
McLlvmTarget *mc_llvm_variants_widest(const char *triple, const char *cpus, const char *features, McErr *err);

/* The plan of p's code for target t over weights packed for target pk
 * (NULL: t itself; a multi-CPU artifact packs once, for its widest
 * variant).  Returns 0, or -1 when t's micro-kernels cannot read pk's
 * panels (then pack for t). */
int mc_llvm_plan(const KProgram *p, const McLlvmTarget *t, const McLlvmTarget *pk, Plan *pl);
/* A target machine for t (its triple, CPU, features, ABI; O3, PIC), one
 * per thread that emits code (llvm_target.c); NULL on failure. */
LLVMTargetMachineRef mc_llvm_target_machine(const McLlvmTarget *t);
/* mc_llvm_codegen with prefix and pack as mc_llvm_compile's, for kernels [k0, k1) only, with the entry point and
 * the size globals when `entry`: one part of mc_llvm_compile.  Unless it is
 * the whole program, its kernels are hidden globals <prefix>_k<i> that
 * the part with the entry point calls. */
McLlvmModule *mc_llvm_codegen_part(const KProgram *p, const McLlvmTarget *t, const char *prefix,
                                   const McLlvmTarget *pack, int k0, int k1, int entry, McErr *err);
void mc_llvm_plan_free(Plan *pl);

/* ---------------------------------------------------------------- codegen */

#define CG_MAX_VFN 16
typedef struct CG {
    const KProgram *p;
    const McLlvmTarget *t;
    const Plan *plan;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef f32, f64, i1, i8, i32, i64, ptr, voidt;
    LLVMTypeRef vf, vi, vd, vb;      /* <L x float>, <L x i32>, <L x double>, <L x i1> */
    LLVMTypeRef kfn_ty;              /* void (ptr, i64, i64) */
    int L;                           /* lanes */
    LLVMValueRef fn;                 /* function being built */
    LLVMValueRef base[4];            /* BufKind -> i8* base in fn */
    LLVMValueRef out_base[MC_MAX_OUTPUTS]; /* output j's base in fn (0: base[BUF_OUTPUT]) */
    LLVMValueRef zeros;              /* global zero row */
    LLVMValueRef vfn[CG_MAX_VFN];    /* cached vector math functions */
    int ki;                          /* kernel being built */
    LLVMValueRef img;                /* i64 image index in a per-image segment's kernel, else NULL */
    LLVMValueRef vfnw[5][CG_MAX_VFN]; /* the same for <n*L x float>, n = 2..4 (wide mode) */
    int share;                       /* the module runs shared code (Plan.rep/shared) */
    int tab;                         /* the kernel being built is shared: places from its table */
    int nslot, slot_buf[MC_LLVM_MAX_SLOTS];
    LLVMValueRef slot_off[MC_LLVM_MAX_SLOTS]; /* i64 byte offsets of slot_buf[] (tab) */
    LLVMValueRef pack_off;           /* i64 pack_off (tab) */
} CG;

/* Wide mode: between cg_wide_begin(c, n, &w) and cg_wide_end(c, &w), c->L,
 * c->vf, c->vi, c->vb, c->vd describe n*L lanes (n = 2..4, n*L <= 64), so
 * loads, splats and the vector math (cg_vexp, cg_vsoftplus, ...) work on n
 * vectors at once; LLVM splits each operation into n register operations
 * issued together, n independent dependency chains interleaved.  Only
 * full vectors (nvalid = c->L) in wide mode: no masked tails. */
typedef struct CGWide {
    int L, n;
    LLVMTypeRef vf, vi, vd, vb;
    LLVMValueRef vfn[CG_MAX_VFN];
} CGWide;
void cg_wide_begin(CG *c, int n, CGWide *w);
void cg_wide_end(CG *c, CGWide *w);
/* lanes [i*L, (i+1)*L) of a wide vector of n*L lanes, outside wide mode */
LLVMValueRef cg_wide_part(CG *c, LLVMValueRef v, int i);

/* constants and small helpers (llvm_expr.c) */
LLVMValueRef cg_i64(CG *c, int64_t v);
LLVMValueRef cg_i32(CG *c, int64_t v);
LLVMValueRef cg_f32(CG *c, double v);
LLVMValueRef cg_vf(CG *c, double v);                 /* splat constant */
LLVMValueRef cg_splat(CG *c, LLVMValueRef scalar);   /* f32 -> <L x f32> */
LLVMValueRef cg_mask(CG *c, int nvalid);             /* <L x i1>, first nvalid on */
LLVMValueRef cg_intrinsic(CG *c, const char *name, LLVMTypeRef *types, int ntypes,
                          LLVMValueRef *args, int nargs);
LLVMValueRef cg_fma(CG *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc);
LLVMValueRef cg_hsum(CG *c, LLVMValueRef v);         /* horizontal add (fixed tree) */
LLVMValueRef cg_buf_ptr(CG *c, int buf);             /* i8* of buffer start */
/* i64 byte offset kp->pack_off + add of the kernel's packed weights (a
 * constant, or from the table of shared code) */
LLVMValueRef cg_pack_off(CG *c, const KPlan *kp, int64_t add);
LLVMValueRef cg_elem_ptr(CG *c, int buf, LLVMValueRef elem_off);
/* element offset (i64, includes v->offset) of row `row` of view v, rows
 * being the first nrowdims dims of `shape` (row-major), each of v's dims
 * stepped by v->stride; shape defaults to v->shape. */
LLVMValueRef cg_row_off(CG *c, const View *v, const int64_t *shape, int nrowdims, LLVMValueRef row);
/* <L x f32> from buffer `buf` at element offset off, lanes stride apart,
 * nvalid lanes (the others 0); stride 0 broadcasts. */
LLVMValueRef cg_load_vec(CG *c, int buf, LLVMValueRef off, int64_t stride, int nvalid);
void cg_store_vec(CG *c, int buf, LLVMValueRef off, int64_t stride, LLVMValueRef v, int nvalid);
/* aligned full-vector load from the weights blob at a byte offset value */
LLVMValueRef cg_load_packed(CG *c, LLVMValueRef byte_off);

/* Evaluates kernel k's epilogue at output row `row` (rows = all dims of
 * k->out but the last) and columns [col, col+nvalid) on the anchor value
 * acc, and stores it into k->out. */
void cg_emit_out(CG *c, const Kernel *k, LLVMValueRef row, LLVMValueRef col, LLVMValueRef acc,
                 int nvalid);
LLVMValueRef cg_vexp(CG *c, LLVMValueRef x);
LLVMValueRef cg_vsoftplus(CG *c, LLVMValueRef x);
LLVMValueRef cg_vsilu(CG *c, LLVMValueRef x);
LLVMValueRef cg_vgelu(CG *c, LLVMValueRef x);
LLVMValueRef cg_vrecip(CG *c, LLVMValueRef x);       /* 1/x, ~1 ulp (AVX-512: rcp14 + Newton) */

/* loops: [lo, hi) step 1 with loop-carried values */
#define CG_MAX_CARRY 64
typedef struct Loop {
    LLVMBasicBlockRef pre, head, body, exit;
    LLVMValueRef iv, ivphi;
    LLVMValueRef phi[CG_MAX_CARRY];
    int ncarry;
} Loop;
void cg_loop_begin(CG *c, Loop *l, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *carry, int n,
                   const char *name);
/* next: the carried values at the end of the body; afterwards l->phi[] are
 * the values after the loop and the builder is at the exit block. */
void cg_loop_end(CG *c, Loop *l, LLVMValueRef *next);
LLVMBasicBlockRef cg_block(CG *c, const char *name);
/* if (cond) { then } : returns after positioning at "then"; cg_if_end joins */
typedef struct If {
    LLVMBasicBlockRef then, join;
} If;
void cg_if_begin(CG *c, If *f, LLVMValueRef cond, const char *name);
void cg_if_end(CG *c, If *f);

/* kernel bodies: emit into c->fn between begin and end (i64 values) */
void cg_gemm(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
void cg_conv(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
void cg_dwconv(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
void cg_scan(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
void cg_fusion25(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
void cg_layernorm(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
void cg_mean_hw(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
void cg_eltwise(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
/* AMX-BF16 tiles (llvm_amx.c): does target t have them (amx-tile,
 * amx-bf16 and avx512bf16); does a GEMM / plain CONV kernel k with plan kp
 * run on them (bf16 weights on such a target, its bf16 copy of A fits
 * MC_LLVM_BF16_ABUF); the bodies that do */
int mc_llvm_amx_target(const McLlvmTarget *t);
int mc_llvm_amx_gemm(const McLlvmTarget *t, const Kernel *k, const KPlan *kp);
int mc_llvm_amx_conv(const McLlvmTarget *t, const Kernel *k, const KPlan *kp);
void cg_amx_gemm(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
void cg_amx_conv(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);
/* helpers of llvm_gemm.c: a 64-byte aligned stack buffer in the entry
 * block; n fp32 values of buffer buf from element offset off, sk apart, as
 * bf16 at dst, zeros up to kpad; A rows [r0, r1) of GEMM k as bf16 rows of
 * kp->kpad at buf; task t of a GEMM's grid: its row block and column panel;
 * a prefetch of the weights' line at blob offset po (locality 3: L1, 2: L2) */
LLVMValueRef cg_stack_buf(CG *c, int64_t bytes, const char *name);
void cg_bf16_row(CG *c, int buf, LLVMValueRef off, int64_t sk, int64_t n, int64_t kpad, LLVMValueRef dst);
void cg_gemm_bf16_rows(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef buf, LLVMValueRef r0, LLVMValueRef r1);
void cg_gemm_task(CG *c, const KPlan *kp, LLVMValueRef t, LLVMValueRef *mb, LLVMValueRef *j);
void cg_prefetch_weights(CG *c, LLVMValueRef po, int locality);
/* min of two signed i64; an i8* base + byte offset; the byte offset, in a
 * kernel's packed data, of column panel j (nr columns; panels of pnr >= nr
 * columns, `rows` rows each) */
LLVMValueRef cg_imin(CG *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_byte_ptr(CG *c, LLVMValueRef base, LLVMValueRef off);
LLVMValueRef cg_panel_off(CG *c, const KPlan *kp, LLVMValueRef j, int64_t rows);
void cg_resize(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);  /* llvm_dense.c */
void cg_avgpool(CG *c, const Kernel *k, const KPlan *kp, LLVMValueRef begin, LLVMValueRef end);

/* ELTWISE kernels with trailing dims contiguous in every view are merged
 * (while the last dim is < 1024) into longer rows; plan and codegen agree. */
void mc_llvm_eltwise_merge(const Kernel *k, Kernel *merged);

/* rows of a view/shape: product of all dims but the last (1 for rank <= 1) */
int64_t mc_llvm_rows(const int64_t *shape, int rank);
int64_t mc_llvm_cols(const int64_t *shape, int rank);

#endif
