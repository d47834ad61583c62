/* ir/kernel.h -- the kernel IR: fused kernels over named buffers.
 *
 * Produced by lowering (passes/lower.c) from an optimized graph, refined by
 * a target's kernel passes and the memory plan (passes/pipeline.c);
 * consumed by the code generators (backends/llvm, backends/cuda) and the
 * reference executor (backends/ref/ref_kexec.c).  Fusion is decided in
 * passes, never inside a backend.  Kinds: kernels.def; the text form:
 * kernel.c (printer), kparse.c (parser), kverify.c (verifier).
 *
 * Memory model.  Every value a kernel reads or writes lives in a Buffer:
 *   BUF_INPUT   the caller's input tensor
 *   BUF_OUTPUT  one of the caller's output tensors (KProgram.output_bufs:
 *               one per graph output, in the graph's order)
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
    int64_t group_bytes;  /* per-image scratch of a segment with groups G > 1: one copy
                             per image group, image i's at offset + (i % G)*group_bytes
                             (the stride: one group's sub-arena, mc_memplan) */
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
#define MC_MAX_OUTPUTS 8   /* output buffers of a program (graph outputs) */
#define MC_MAX_ARGS 12
#define MC_MAX_FUSED 24

typedef enum KernelKind {
#define KERNEL(id, name, mn, mx, ops, fields, doc) KK_##id,
#include "kernels.def"
#undef KERNEL
    KK_COUNT
} KernelKind;

/* Operand roles and typed fields of a kind (kernels.def). */
typedef enum OperRole { R_NONE, R_ACT, R_WEIGHT } OperRole;
enum { KF_MNK = 1 << 0, KF_CONV = 1 << 1, KF_EPS = 1 << 2, KF_SOFTPLUS = 1 << 3, KF_ALIGN = 1 << 4 };

typedef struct KernelInfo {
    const char *name;
    int min_in, max_in;
    const char *oper[4];  /* operand role names, e.g. "a", "w", "bias" */
    OperRole role[4];
    unsigned fields;      /* KF_* */
    const char *doc;
} KernelInfo;
extern const KernelInfo mc_kernel_info[KK_COUNT];
/* 0 ok, -1 unknown */
int mc_kernel_kind_parse(const char *name, KernelKind *out);

/* A target's fusion of adjacent kernels into one (decided by the target's
 * kernel passes, passes/pipeline.c, before memory planning): kernel i with
 * host = h >= 0 runs inside kernel h, as `fuse` says; its output is written
 * by kernel h (the memory plan makes it live from h). */
typedef enum FuseKind {
#define FUSE(id, name, doc) FUSE_##id,
#include "fusions.def"
#undef FUSE
    FUSE_COUNT
} FuseKind;
const char *mc_fuse_kind_name(FuseKind f);
int mc_fuse_kind_parse(const char *name, FuseKind *out);

/* The schedule of a kernel (a target's tile pass: the LLVM one is in
 * backends/llvm/llvm_passes.c): how a backend tiles, vectorizes and splits
 * it.  0 everywhere = the backend decides; the fields are sched.def's. */
typedef struct Sched {
#define SCHED(field, name, doc) int64_t field;
#include "sched.def"
#undef SCHED
} Sched;

typedef struct Kernel {
    KernelKind kind;
    const char *name;          /* the anchor node's name */
    int nodes[MC_MAX_FUSED];   /* graph nodes fused into this kernel, anchor first */
    int nnodes;
    View in[4];                /* anchor operands (kind-specific, above) */
    int nin;
    int softplus_dt;           /* KK_SCAN */
    Attrs attrs;               /* KK_CONV/KK_DWCONV conv attrs; KK_LAYERNORM eps; KK_RESIZE align_corners */
    View out;                  /* where the result goes, [out shape] */
    View args[MC_MAX_ARGS];    /* epilogue operands, each broadcast to out's shape */
    int nargs;
    EInstr expr[MC_MAX_EXPR];  /* epilogue; empty means store E_ACC */
    int nexpr;
    int64_t M, N, K;           /* KK_GEMM sizes */
    double flops;              /* useful FLOPs, for profiles */
    const char *node_names[MC_MAX_FUSED]; /* names of nodes[] (for dumps without the graph) */
    int host;                  /* -1, or the kernel this one runs inside (FuseKind fuse) */
    FuseKind fuse;
    Sched sched;
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
    int64_t groups; /* >= 1: how many images may run side by side (each on its own
                       group of threads); the per-image scratch has this many
                       copies (Buffer.group_bytes); 0 counts as 1 */
} Segment;

typedef struct KProgram {
    const char *name;
    Buffer *bufs;
    int nbufs;
    Kernel *k;
    int nk;
    int input_buf;
    int output_bufs[MC_MAX_OUTPUTS]; /* the output buffers, in the graph's output order */
    int noutputs;
    int64_t weights_bytes;     /* blob size (graph layout) */
    int64_t scratch_bytes;     /* planned arena */
    int64_t unplanned_bytes;   /* sum of all scratch buffers */
    Segment *segs;             /* per-image segments, disjoint, in order; NULL/0: none */
    int nsegs;
    Arena *strings;            /* names the program owns (parsed from text), or NULL:
                                  names point into the graph it was lowered from */
    int planned;               /* the memory plan ran (scratch offsets are valid) */
    const char *target;        /* the target whose kernel passes ran (McTarget.name), or NULL */
} KProgram;

const char *mc_kernel_kind_name(KernelKind k);
OperRole mc_kernel_role(KernelKind k, int slot);
const char *mc_buf_kind_name(BufKind k);
const char *mc_eop_name(EOp op);
int mc_eop_parse(const char *name, EOp *out); /* 0 ok, -1 unknown */

/* The text form (docs/kernel-ir.md): every field, one record per line, the
 * loop nest of each kernel as '#' comments.  Deterministic;
 * mc_kprogram_parse reads it back and prints the same bytes. */
void mc_kprogram_print(const KProgram *p, FILE *f);
char *mc_kprogram_print_str(const KProgram *p); /* malloc'd */
void mc_kir_print_str(FILE *f, const char *s);  /* a quoted string token */
/* Parses kernel-IR text (any bytes) into p (zeroed here); the program owns
 * its names (p->strings).  `file` is used in file:line:col messages.
 * Returns 0, or -1 with err (p freed).  Does not verify: call
 * mc_kprogram_verify. */
int mc_kprogram_parse(KProgram *p, const char *text, size_t len, const char *file, McErr *err);
/* Checks the program's invariants (ir/kverify.c): operand counts and roles
 * (kernels.def), view bounds inside their buffers, shapes per kind, the
 * epilogue's instructions, buffer lifetimes (every scratch read after its
 * writer, within first..last), fusions (a host before its guest), segments,
 * weight offsets inside the blob, and once planned, arena bounds and no two
 * live scratch buffers sharing bytes.  Returns 0, or -1 with err naming the
 * kernel or buffer. */
int mc_kprogram_verify(const KProgram *p, McErr *err);
/* Kernel i runs inside its host and only kernels inside that host read its
 * output: the output stays on chip and is never written to memory (a
 * downsample's depthwise conv, read by the projection in the same kernel). */
int mc_kprogram_on_chip(const KProgram *p, int i);
void mc_kprogram_free(KProgram *p);
/* Deep copy of the arrays (names still point into the graph).  0, or -1 (out of memory). */
int mc_kprogram_copy(const KProgram *src, KProgram *dst);
/* j when buffer b is output j (p->output_bufs[j]), else -1. */
int mc_kprogram_output_index(const KProgram *p, int b);
/* Index of the segment holding kernel k, or -1 (runs batched). */
int mc_kprogram_segment_of(const KProgram *p, int k);
/* Removes the kernels i with kdead[i] and the buffers b with bdead[b]
 * (either may be NULL) and renumbers the rest in order: views, the input
 * and outputs, Buffer.id, lifetimes (a first or last on a removed kernel
 * moves to the next or previous kept one), hosts, segments (an emptied one
 * goes).  Returns 0, or -1 with p unchanged when something kept refers to
 * a removed kernel (its host) or buffer (a view, the input or an output),
 * or out of memory. */
int mc_kprogram_remove(KProgram *p, const unsigned char *kdead, const unsigned char *bdead);

#endif
