/* ir/kernel.h -- the kernel IR: fused kernels over named buffers.
 *
 * Produced by lowering (passes/lower.c) from an optimized graph; consumed by
 * code generators (backends/llvm, later backends/cuda).  Fusion is decided
 * here, once, never inside a backend.
 *
 * Memory model.  Every value a kernel reads or writes lives in a Buffer:
 *   BUF_INPUT   the caller's input tensor
 *   BUF_OUTPUT  the caller's output tensor
 *   BUF_WEIGHT  a constant; `offset` is its byte offset in the weights blob,
 *               data in graph layout (conv OIHW, linear [N,K]); a backend may
 *               re-pack weights it reads (it owns the blob it writes)
 *   BUF_SCRATCH an intermediate; `offset` is its byte offset in the one scratch
 *               arena (memory planner, passes/memplan.c)
 * All elements are f32; offsets are 64-byte aligned.
 *
 * Operands are strided Views of buffers (element strides, 0 = broadcast), so
 * slices along channels, broadcasting and layout permutes cost no copy.
 *
 * Epilogues.  Elementwise work fused into a kernel is a small expression DAG
 * (Expr) evaluated per output element: E_ACC is the anchor's value at that
 * element, E_LOAD reads operand view `arg` at the same output coordinates,
 * E_CONST is an immediate.  The last instruction is the stored value.
 */
#ifndef MC_KERNEL_H
#define MC_KERNEL_H
#include "graph.h"

typedef enum BufKind { BUF_INPUT, BUF_OUTPUT, BUF_WEIGHT, BUF_SCRATCH } BufKind;

typedef struct Buffer {
    int id;
    const char *name;     /* the graph node it holds (checkpoint key for weights) */
    BufKind kind;
    Shape shape;          /* contiguous, row-major */
    int64_t bytes;
    int64_t offset;       /* weights blob / scratch arena byte offset (64-aligned) */
    int node;             /* graph node id */
    int first, last;      /* kernel index that writes it / last reads it (scratch) */
    int64_t image_bytes;  /* per-image schedule (Segment): a kernel of a segment running
                             image i addresses this buffer at offset + i*image_bytes;
                             0 (the default): the same bytes for every image */
} Buffer;

typedef struct View {
    int buf;              /* buffer id */
    int rank;
    int64_t shape[MC_MAX_RANK];
    int64_t stride[MC_MAX_RANK];  /* in elements; 0 broadcasts */
    int64_t offset;               /* in elements */
} View;

typedef enum EOp {
    E_ACC, E_LOAD, E_CONST,
    E_ADD, E_SUB, E_MUL, E_DIV,
    E_NEG, E_EXP, E_SQRT, E_RELU, E_GELU, E_SILU, E_SOFTPLUS,
} EOp;

typedef struct EInstr {
    EOp op;
    int a, b;             /* operand instruction indices (earlier) */
    int arg;              /* E_LOAD: index into Kernel.args */
    float imm;            /* E_CONST */
} EInstr;

#define MC_MAX_EXPR 32
#define MC_MAX_ARGS 12
#define MC_MAX_FUSED 24

typedef enum KernelKind {
    KK_GEMM,      /* out[m,n] = epi(sum_k A[m,k] * W[n,k] (+ bias[n]))
                     in[0] = A view [M,K], in[1] = W [N,K] (weight), in[2] = bias [N] or none.
                     Covers linear and 1x1 stride-1 unpadded convs (M = B*H*W). */
    KK_CONV,      /* dense NHWC conv2d (groups 1): in[0] = x view [B,H,W,Ci], in[1] = w OIHW,
                     in[2] = bias or none; attrs = conv attrs; zero padding. */
    KK_DWCONV,    /* depthwise NHWC conv2d (groups == Ci == Co, multiplier 1):
                     in[0] = x view, in[1] = w [C,1,kh,kw], in[2] = bias or none. */
    KK_SCAN,      /* h = selective scan (ops.def) over in[0]=u, in[1]=dt, in[2]=A [D,1], in[3]=Bv;
                     softplus_dt: delta = softplus(dt) computed in the kernel. */
    KK_FUSION25,  /* 25-tap replicate-border stencil: in[0] = h view, in[1] = taps [D,25]. */
    KK_LAYERNORM, /* over the last axis: in[0] = x view, in[1] = gamma, in[2] = beta; attrs.eps. */
    KK_MEAN_HW,   /* in[0] = x [B,H,W,C] -> [B,C] */
    KK_ELTWISE,   /* out = epi(...) with no anchor (E_ACC unused) */
} KernelKind;

typedef struct Kernel {
    KernelKind kind;
    const char *name;          /* the anchor node's name */
    int nodes[MC_MAX_FUSED];   /* graph nodes fused into this kernel, anchor first */
    int nnodes;
    View in[4];                /* anchor operands (kind-specific, above) */
    int nin;
    int softplus_dt;           /* KK_SCAN */
    Attrs attrs;               /* KK_CONV/KK_DWCONV conv attrs; KK_LAYERNORM eps */
    View out;                  /* where the result goes, [out shape] */
    View args[MC_MAX_ARGS];    /* epilogue operands, each broadcast to out's shape */
    int nargs;
    EInstr expr[MC_MAX_EXPR];  /* epilogue; empty means store E_ACC */
    int nexpr;
    int64_t M, N, K;           /* KK_GEMM sizes */
    double flops;              /* useful FLOPs, for profiles */
} Kernel;

/* Per-image schedule (optional; lowering makes none, a backend may ask
 * mc_kprogram_schedule_images for one): the kernels [k0, k1) run in order
 * once per image, image = 0..images-1, each over one image's shapes (the
 * views in those kernels are image 0's); a buffer with image_bytes > 0 is
 * shifted by image*image_bytes, the others (per-image scratch, weights) are
 * reused for every image.  Kernels outside segments run once, batched. */
typedef struct Segment {
    int k0, k1;
    int64_t images;
} Segment;

typedef struct KProgram {
    const char *name;
    Buffer *bufs;
    int nbufs;
    Kernel *k;
    int nk;
    int input_buf, output_buf;
    int64_t weights_bytes;     /* blob size (graph layout) */
    int64_t scratch_bytes;     /* planned arena */
    int64_t unplanned_bytes;   /* sum of all scratch buffers */
    Segment *segs;             /* per-image segments, disjoint, in order; NULL/0: none */
    int nsegs;
} KProgram;

const char *mc_kernel_kind_name(KernelKind k);
const char *mc_eop_name(EOp op);
/* Readable loop-nest form of the kernel program (deterministic). */
void mc_kprogram_print(const KProgram *p, const Graph *g, FILE *f);
void mc_kprogram_free(KProgram *p);
/* Deep copy of the arrays (names still point into the graph).  0, or -1 (out of memory). */
int mc_kprogram_copy(const KProgram *src, KProgram *dst);
/* Index of the segment holding kernel k, or -1 (runs batched). */
int mc_kprogram_segment_of(const KProgram *p, int k);

#endif
