/* tests/unit/test_llvm_kernels.c -- CUnit tests of the LLVM backend.
 *
 * Small graphs built with mc_graph_add cover every kernel kind (GEMM, CONV,
 * DWCONV, SCAN, FUSION25, LAYERNORM, MEAN_HW, ELTWISE) and every epilogue
 * op; each is run through mc_backend_llvm (graph passes, lowering, codegen
 * for the host, ORC JIT) and through mc_backend_ref, on fresh random inputs
 * (seed from the clock, printed) and odd shapes (channel counts that are not
 * multiples of any vector width, stride 2, dilation, padding, batch 2,
 * strided views from slices and permutes).
 *
 * Tolerance: |llvm - ref| <= 1e-5 * |ref| + 1e-5 * rms(ref) per element
 * (relative 1e-5, with an absolute floor at 1e-5 of the tensor's RMS so
 * that sums which cancel to ~0 do not fail on round-off).
 * The blocked conv gets hand-set schedules (conv_sched) at odd shapes.
 * Also: cross-compilation for aarch64 and riscv64 (RVV) emits vector FMAs,
 * and compiling twice gives byte-identical objects; the per-image schedule
 * of batched programs (segments) computes what the batched program does.
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backends/backend.h"
#include "backends/llvm/llvm.h"
#include "backends/llvm/llvm_internal.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "runtime/mc_rt.h"
#include "unit_llvm.h"

extern const Backend mc_backend_llvm;


typedef struct TG {
    Graph g;
    WeightStore ws;
    HostTensor in;
    float *indata;
    McErr err;
} TG;

static void
tg_init(TG *t)
{
    memset(t, 0, sizeof *t);
    mc_graph_init(&t->g, "t");
    mc_weights_init(&t->ws);
}

static void
tg_free(TG *t)
{
    mc_graph_free(&t->g);
    mc_weights_free(&t->ws);
    free(t->indata);
}

static int
tg_input(TG *t, Shape s, double lo, double hi)
{
    int id = mc_graph_input(&t->g, "x", DT_F32, &s, &t->err);
    CU_ASSERT_FATAL(id >= 0);
    t->indata = rand_vec(mc_shape_numel(&s), lo, hi);
    t->in.shape = s;
    t->in.data = t->indata;
    return id;
}

static int
tg_weight(TG *t, const char *name, Shape s, double lo, double hi)
{
    int id = mc_graph_weight(&t->g, name, DT_F32, &s, &t->err);
    CU_ASSERT_FATAL(id >= 0);
    mc_weights_put(&t->ws, name, DT_F32, DT_F32, &s, rand_vec(mc_shape_numel(&s), lo, hi));
    return id;
}

static int
tg_op(TG *t, OpKind op, const int *in, int nin, const Attrs *a)
{
    Attrs d = mc_attrs_default();
    int id = mc_graph_add(&t->g, op, in, nin, a ? a : &d, NULL, &t->err);
    if (id < 0) fprintf(stderr, "mc_graph_add: %s\n", t->err.msg);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}
#define OP1(t, op, a) tg_op(t, op, (int[]){a}, 1, NULL)
#define OP2(t, op, a, b) tg_op(t, op, (int[]){a, b}, 2, NULL)

static Attrs
conv_attrs(int s, int p, int d, int groups)
{
    Attrs a = mc_attrs_default();
    a.stride[0] = a.stride[1] = s;
    a.pad[0] = a.pad[1] = p;
    a.dil[0] = a.dil[1] = d;
    a.groups = groups;
    return a;
}

/* Schedule fields every conv kernel gets by hand (the blocked-conv tests;
 * block_m in output rows here, times the kernel's Wo), 0 = the tile pass's. */
static Sched conv_sched;

/* The llvm row on t's graph: the pipeline for its target (graph passes on
 * t->g itself), then its run_kernels. */
static int
llvm_run(TG *t, HostTensor *l, const RunOpts *o)
{
    KProgram p;
    if (mc_pipeline_run(&t->g, &t->ws, mc_backend_llvm.target, NULL, &p, &t->err)) return -1;
    for (int i = 0; i < p.nk; i++) {
        Sched *s = &p.k[i].sched;
        if (p.k[i].kind != KK_CONV) continue;
        if (conv_sched.tile_m) s->tile_m = conv_sched.tile_m;
        if (conv_sched.tile_n) s->tile_n = conv_sched.tile_n;
        if (conv_sched.tile_k) s->tile_k = conv_sched.tile_k;
        if (conv_sched.block_m) s->block_m = conv_sched.block_m * p.k[i].out.shape[2];
        if (conv_sched.block_n) s->block_n = conv_sched.block_n;
    }
    int rc = mc_backend_llvm.run_kernels(&p, &t->ws, &t->in, l, o, &t->err);
    mc_kprogram_free(&p);
    return rc;
}

/* Runs both backends on the graph with output `out`; returns the number of
 * elements out of tolerance (or -1 when a backend failed). */
static int
compare(TG *t, int out, const char *what)
{
    mc_graph_add_output(&t->g, out);
    if (mc_graph_verify(&t->g, &t->err)) {
        fprintf(stderr, "%s: verify: %s\n", what, t->err.msg);
        return -1;
    }
    HostTensor r, l;
    RunOpts o = {.threads = 2, .verbose = 0};
    if (mc_backend_ref.run_graph(&t->g, &t->ws, &t->in, 1, &r, 1, &o, &t->err)) {
        fprintf(stderr, "%s: ref: %s\n", what, t->err.msg);
        return -1;
    }
    if (llvm_run(t, &l, &o)) {
        fprintf(stderr, "%s: llvm: %s\n", what, t->err.msg);
        free(r.data);
        return -1;
    }
    CU_ASSERT(mc_shape_eq(&r.shape, &l.shape));
    int64_t n = mc_shape_numel(&r.shape);
    double ss = 0, maxrel = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)r.data[i] * r.data[i];
    double rms = sqrt(ss / (double)(n ? n : 1));
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)l.data[i] - r.data[i]), tol = 1e-5 * fabs(r.data[i]) + 1e-5 * rms;
        double rel = e / (fabs(r.data[i]) + rms + 1e-30);
        if (rel > maxrel) maxrel = rel;
        if (!(e <= tol)) {
            if (bad < 5) fprintf(stderr, "%s[%lld]: llvm %.9g ref %.9g\n", what, (long long)i, l.data[i], r.data[i]);
            bad++;
        }
    }
    if (getenv("MC_TEST_VERBOSE")) fprintf(stderr, "%s: %lld elements, max rel err %.3g\n", what, (long long)n, maxrel);
    free(r.data);
    free(l.data);
    return bad;
}

/* ------------------------------------------------------------ GEMM */

static void
linear_case(int B, int H, int W, int K, int N, int bias, EOp act)
{
    TG t;
    tg_init(&t);
    int x = tg_input(&t, S4(B, H, W, K), -1, 1);
    int w = tg_weight(&t, "fc.weight", S2(N, K), -0.5, 0.5);
    int in[3] = {x, w, 0};
    if (bias) in[2] = tg_weight(&t, "fc.bias", S1(N), -1, 1);
    int y = tg_op(&t, OP_LINEAR, in, bias ? 3 : 2, NULL);
    if (act == E_GELU) y = OP1(&t, OP_GELU, y);
    if (act == E_SILU) y = OP1(&t, OP_SILU, y);
    if (act == E_RELU) y = OP1(&t, OP_RELU, y);
    char what[96];
    snprintf(what, sizeof what, "linear %dx%dx%dx%d->%d", B, H, W, K, N);
    CU_ASSERT_EQUAL(compare(&t, y, what), 0);
    tg_free(&t);
}

static void
test_gemm_shapes(void)
{
    linear_case(1, 5, 7, 37, 45, 1, E_GELU);
    linear_case(2, 3, 3, 64, 256, 1, E_ACC);
    linear_case(1, 1, 13, 1, 3, 0, E_RELU);
    linear_case(1, 7, 7, 130, 70, 1, E_SILU);
    linear_case(1, 1, 2, 300, 17, 0, E_ACC);
    /* task grids (llvm_codegen.c gemm_grid): row blocks outer with several
     * blocks and a partial panel; panel-major (weights larger than A) with a
     * remainder row tile; a long K with few rows (the stage-4 shapes) */
    linear_case(1, 40, 40, 64, 100, 1, E_ACC);
    linear_case(1, 1, 11, 200, 300, 1, E_GELU);
    linear_case(1, 7, 7, 1030, 130, 0, E_ACC);
}

/* x + fc2(gelu(fc1(x))): two GEMMs, residual add from the input */
/* x + fc2(gelu(fc1(x))), hidden width hd, weights named after `tag` */
static int
mlp_block(TG *t, int x, int C, int hd, const char *tag)
{
    char n[4][48];
    snprintf(n[0], sizeof n[0], "%s.fc1.weight", tag), snprintf(n[1], sizeof n[1], "%s.fc1.bias", tag);
    snprintf(n[2], sizeof n[2], "%s.fc2.weight", tag), snprintf(n[3], sizeof n[3], "%s.fc2.bias", tag);
    int w1 = tg_weight(t, n[0], S2(hd, C), -0.3, 0.3), b1 = tg_weight(t, n[1], S1(hd), -0.2, 0.2);
    int w2 = tg_weight(t, n[2], S2(C, hd), -0.3, 0.3), b2 = tg_weight(t, n[3], S1(C), -0.2, 0.2);
    int h = OP1(t, OP_GELU, tg_op(t, OP_LINEAR, (int[]){x, w1, b1}, 3, NULL));
    return OP2(t, OP_ADD, x, tg_op(t, OP_LINEAR, (int[]){h, w2, b2}, 3, NULL));
}

/* Shared code (docs/codegen.md): blocks equal but for their buffers run
 * one function reading its places from a table; each block's own weights
 * and activations must still be the ones read (against ref), and a block
 * of another width must keep its own function. */
static void
test_shared_code(void)
{
    TG t;
    tg_init(&t);
    int C = 24;
    int x = tg_input(&t, S4(1, 6, 5, C), -1, 1);
    int y = mlp_block(&t, x, C, 96, "b0");
    y = mlp_block(&t, y, C, 96, "b1");
    y = mlp_block(&t, y, C, 96, "b2");
    y = mlp_block(&t, y, C, 96, "b3");
    y = mlp_block(&t, y, C, 48, "b4");
    CU_ASSERT_EQUAL(compare(&t, y, "shared code"), 0);

    KProgram r;
    CU_ASSERT_FATAL(mc_pipeline_kernels(&t.g, &t.ws, &mc_llvm_target_row, NULL, &r, &t.err) == 0);
    McLlvmTarget *tg = mc_llvm_target_create(NULL, NULL, NULL, &t.err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tg);
    Plan pl;
    mc_llvm_plan(&r, tg, NULL, &pl);
    mc_llvm_plan_classes(&r, &pl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pl.rep);
    int nshared = 0, wide = 0;
    for (int i = 0; i < r.nk; i++) {
        const Kernel *k = &r.k[i], *q = &r.k[pl.rep[i]];
        CU_ASSERT(pl.rep[i] <= i);
        CU_ASSERT_EQUAL(pl.rep[pl.rep[i]], pl.rep[i]);
        nshared += pl.shared[i];
        if (pl.rep[i] != i) { /* one function: the same kernel on other buffers */
            CU_ASSERT(k->kind == q->kind && k->M == q->M && k->N == q->N && k->K == q->K);
            CU_ASSERT(k->in[1].buf != q->in[1].buf);
            CU_ASSERT(pl.k[i].pack_off != pl.k[pl.rep[i]].pack_off);
        }
        if (k->kind == KK_GEMM && (k->N == 48 || k->K == 48)) { /* the narrower block: its own */
            wide++;
            CU_ASSERT(pl.rep[i] == i && !pl.shared[i]);
        }
    }
    CU_ASSERT_EQUAL(wide, 2);
    /* b1..b3 share b1's (b0 reads the input buffer, b3 the output) */
    if (getenv("MC_TEST_VERBOSE")) fprintf(stderr, "shared code: %d kernels, %d functions\n", r.nk, pl.nclasses);
    CU_ASSERT(pl.nclasses <= r.nk - 4);
    CU_ASSERT(nshared >= 6);
    /* the module has the tables and fewer kernel functions */
    McLlvmModule *m = mc_llvm_codegen(&r, tg, &t.err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t *ir = NULL;
    size_t n = 0;
    CU_ASSERT_FATAL(mc_llvm_emit_mem(m, MC_EMIT_IR, &ir, &n, &t.err) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)ir, "@mc_tab"));
    int defs = 0;
    for (const char *q = (char *)ir; (q = strstr(q, "define internal void @mc_k")); q++) defs++;
    CU_ASSERT_EQUAL(defs, pl.nclasses);
    free(ir);
    mc_llvm_module_free(m);
    mc_llvm_plan_free(&pl);
    mc_llvm_target_free(tg);
    mc_kprogram_free(&r);
    tg_free(&t);
}

static void
test_gemm_mlp_residual(void)
{
    TG t;
    tg_init(&t);
    int C = 24, Hd = 96;
    int x = tg_input(&t, S4(1, 6, 5, C), -1, 1);
    int w1 = tg_weight(&t, "fc1.weight", S2(Hd, C), -0.3, 0.3), b1 = tg_weight(&t, "fc1.bias", S1(Hd), -0.2, 0.2);
    int w2 = tg_weight(&t, "fc2.weight", S2(C, Hd), -0.3, 0.3), b2 = tg_weight(&t, "fc2.bias", S1(C), -0.2, 0.2);
    int h = tg_op(&t, OP_LINEAR, (int[]){x, w1, b1}, 3, NULL);
    h = OP1(&t, OP_GELU, h);
    h = tg_op(&t, OP_LINEAR, (int[]){h, w2, b2}, 3, NULL);
    int y = OP2(&t, OP_ADD, x, h);
    CU_ASSERT_EQUAL(compare(&t, y, "mlp"), 0);
    tg_free(&t);
}

/* u * silu(z) with u, z slices of one GEMM result (strided views) */
static void
test_gemm_gate_slices(void)
{
    TG t;
    tg_init(&t);
    int C = 19, D = 21;
    int x = tg_input(&t, S4(1, 4, 7, C), -1, 1);
    int w = tg_weight(&t, "in_proj.weight", S2(2 * D, C), -0.5, 0.5);
    int xz = OP2(&t, OP_LINEAR, x, w);
    Attrs a = mc_attrs_default();
    a.start = 0;
    a.len = D;
    int u = tg_op(&t, OP_SLICE, &xz, 1, &a);
    a.start = D;
    int z = tg_op(&t, OP_SLICE, &xz, 1, &a);
    int y = OP2(&t, OP_MUL, u, OP1(&t, OP_SILU, z));
    CU_ASSERT_EQUAL(compare(&t, y, "gate"), 0);
    tg_free(&t);
}

/* ------------------------------------------------------------ convolutions */

/* the stem pattern: NCHW input, permute, 3x3 stride-2 conv, BN, ReLU
 * (the input's channel stride is not 1: padding taps select 0); also
 * blocked, K blocks of 2 of its 3 channels */
static void
stem_case(int tile_k)
{
    TG t;
    tg_init(&t);
    int Co = 19;
    int x = tg_input(&t, S4(2, 3, 13, 15), -1, 1);
    Attrs p = mc_attrs_default();
    p.perm[0] = 0, p.perm[1] = 2, p.perm[2] = 3, p.perm[3] = 1;
    int xn = tg_op(&t, OP_PERMUTE, &x, 1, &p);
    int w = tg_weight(&t, "conv.weight", S4(Co, 3, 3, 3), -0.5, 0.5);
    Attrs ca = conv_attrs(2, 1, 1, 1);
    int c = tg_op(&t, OP_CONV2D, (int[]){xn, w}, 2, &ca);
    int g = tg_weight(&t, "bn.weight", S1(Co), 0.5, 1.5), b = tg_weight(&t, "bn.bias", S1(Co), -0.5, 0.5);
    int m = tg_weight(&t, "bn.running_mean", S1(Co), -0.2, 0.2), v = tg_weight(&t, "bn.running_var", S1(Co), 0.5, 2);
    int bn = tg_op(&t, OP_BATCHNORM, (int[]){c, g, b, m, v}, 5, NULL);
    int y = OP1(&t, OP_RELU, bn);
    conv_sched.tile_k = tile_k;
    CU_ASSERT_EQUAL(compare(&t, y, tile_k ? "stem blocked" : "stem"), 0);
    conv_sched.tile_k = 0;
    tg_free(&t);
}

static void
test_conv_stem(void)
{
    stem_case(0);
    stem_case(2);
}

static void
conv_case(int B, int H, int W, int Ci, int Co, int k, int s, int pad, int dil, int bias)
{
    TG t;
    tg_init(&t);
    int x = tg_input(&t, S4(B, H, W, Ci), -1, 1);
    int w = tg_weight(&t, "conv.weight", S4(Co, Ci, k, k), -0.3, 0.3);
    int in[3] = {x, w, 0};
    if (bias) in[2] = tg_weight(&t, "conv.bias", S1(Co), -0.5, 0.5);
    Attrs ca = conv_attrs(s, pad, dil, 1);
    int y = tg_op(&t, OP_CONV2D, in, bias ? 3 : 2, &ca);
    y = OP1(&t, OP_RELU, y);
    char what[96];
    snprintf(what, sizeof what, "conv %dx%d ci%d co%d k%d s%d p%d d%d", H, W, Ci, Co, k, s, pad, dil);
    CU_ASSERT_EQUAL(compare(&t, y, what), 0);
    tg_free(&t);
}

static void
test_conv_shapes(void)
{
    conv_case(1, 9, 11, 5, 21, 3, 1, 1, 1, 1);
    conv_case(2, 8, 7, 16, 40, 3, 2, 1, 1, 0);
    conv_case(1, 10, 9, 7, 9, 3, 1, 2, 2, 1);
    conv_case(1, 6, 6, 33, 70, 1, 1, 0, 1, 1); /* pointwise: lowered to GEMM */
    conv_case(1, 7, 5, 4, 12, 1, 2, 0, 1, 1);  /* 1x1 stride 2: CONV */
}

/* The blocked conv (K blocks, partial sums in the output; llvm_gemm.c):
 * hand-set schedules (tile_k channels per K block, rows output rows and
 * block_n channels per task, register tiles) at odd shapes -- Ci not a
 * multiple of the vector or of tile_k, Co of 150, 19 and 1 (partial panels,
 * a group holding only the partial one), odd H and W, 1x1 spatial, stride
 * and dilation, batch 2 -- and the tile pass's own blocking of a deep one. */
static void
blocked_case(int B, int H, int W, int Ci, int Co, int s, int d, int tile_k, int rows, int block_n, int tile_m,
             int tile_n)
{
    Sched none = {0};
    conv_sched = none;
    conv_sched.tile_k = tile_k;
    conv_sched.block_m = rows;
    conv_sched.block_n = block_n;
    conv_sched.tile_m = tile_m;
    conv_sched.tile_n = tile_n;
    conv_case(B, H, W, Ci, Co, 3, s, d, d, 1);
    conv_sched = none;
}

static void
test_conv_blocked(void)
{
    blocked_case(2, 9, 11, 37, 150, 1, 1, 16, 2, 64, 0, 0);
    blocked_case(1, 7, 5, 20, 19, 1, 1, 7, 3, 0, 4, 32);
    blocked_case(1, 5, 6, 16, 1, 1, 1, 5, 1, 0, 0, 0);
    blocked_case(2, 1, 1, 33, 40, 1, 1, 8, 1, 16, 0, 16);
    blocked_case(1, 10, 9, 12, 24, 2, 2, 5, 2, 0, 3, 0);
    blocked_case(1, 6, 7, 23, 150, 1, 1, 23, 6, 128, 0, 0);
    conv_case(1, 5, 7, 600, 70, 3, 1, 1, 1, 1); /* K = 5400: blocked by the tile pass */
    /* two blocked convs, the second's epilogue adding the first's output */
    TG t;
    tg_init(&t);
    int x = tg_input(&t, S4(1, 7, 9, 24), -1, 1);
    int w1 = tg_weight(&t, "a.weight", S4(40, 24, 3, 3), -0.3, 0.3), w2 = tg_weight(&t, "b.weight", S4(40, 24, 3, 3), -0.3, 0.3);
    Attrs ca = conv_attrs(1, 1, 1, 1);
    int a = tg_op(&t, OP_CONV2D, (int[]){x, w1}, 2, &ca), b = tg_op(&t, OP_CONV2D, (int[]){x, w2}, 2, &ca);
    conv_sched.tile_k = 10;
    conv_sched.block_m = 3;
    CU_ASSERT_EQUAL(compare(&t, OP1(&t, OP_RELU, OP2(&t, OP_ADD, a, b)), "blocked convs + residual"), 0);
    tg_free(&t);
    /* the FPN pattern: blocked convs writing channel slices of a concat
     * (concat-in-place: a strided output), a blocked conv over the concat */
    tg_init(&t);
    x = tg_input(&t, S4(2, 5, 7, 20), -1, 1);
    w1 = tg_weight(&t, "a.weight", S4(24, 20, 3, 3), -0.3, 0.3), w2 = tg_weight(&t, "b.weight", S4(17, 20, 3, 3), -0.3, 0.3);
    int w3 = tg_weight(&t, "c.weight", S4(30, 41, 3, 3), -0.3, 0.3);
    a = OP1(&t, OP_RELU, tg_op(&t, OP_CONV2D, (int[]){x, w1}, 2, &ca));
    b = OP1(&t, OP_RELU, tg_op(&t, OP_CONV2D, (int[]){x, w2}, 2, &ca));
    int cat = tg_op(&t, OP_CONCAT, (int[]){a, b}, 2, NULL);
    conv_sched.tile_k = 7;
    conv_sched.block_m = 2;
    conv_sched.block_n = 16;
    conv_sched.tile_n = 16;
    CU_ASSERT_EQUAL(compare(&t, tg_op(&t, OP_CONV2D, (int[]){cat, w3}, 2, &ca), "blocked convs into a concat"), 0);
    memset(&conv_sched, 0, sizeof conv_sched);
    tg_free(&t);
}

static void
dw_case(int B, int H, int W, int C, int s, int residual, EOp act)
{
    TG t;
    tg_init(&t);
    int x = tg_input(&t, S4(B, H, W, C), -1, 1);
    int w = tg_weight(&t, "dw.weight", S4(C, 1, 3, 3), -0.5, 0.5), b = tg_weight(&t, "dw.bias", S1(C), -0.5, 0.5);
    Attrs ca = conv_attrs(s, 1, 1, C);
    int y = tg_op(&t, OP_CONV2D, (int[]){x, w, b}, 3, &ca);
    if (act == E_SILU) y = OP1(&t, OP_SILU, y);
    if (act == E_RELU) y = OP1(&t, OP_RELU, y);
    if (residual) y = OP2(&t, OP_ADD, x, y);
    char what[96];
    snprintf(what, sizeof what, "dwconv %dx%dx%d c%d s%d", B, H, W, C, s);
    CU_ASSERT_EQUAL(compare(&t, y, what), 0);
    tg_free(&t);
}

static void
test_dwconv(void)
{
    dw_case(1, 9, 11, 37, 1, 1, E_ACC);
    dw_case(2, 7, 6, 64, 1, 0, E_SILU);
    dw_case(1, 9, 7, 40, 2, 0, E_RELU);
    dw_case(1, 1, 1, 5, 1, 0, E_ACC);
}

/* ------------------------------------------------------------ scan + fusion */

/* u = x slice, dt = softplus(linear), A = -exp(A_logs), Bv = linear slice */
static void
scan_case(int B, int H, int W, int D)
{
    TG t;
    tg_init(&t);
    int x = tg_input(&t, S4(B, H, W, D), -1, 1);
    int wdt = tg_weight(&t, "dt.weight", S2(D, D), -0.3, 0.3), bdt = tg_weight(&t, "dt.bias", S1(D), -4, -2);
    int dt = tg_op(&t, OP_LINEAR, (int[]){x, wdt, bdt}, 3, NULL);
    dt = OP1(&t, OP_SOFTPLUS, dt);
    int al = tg_weight(&t, "A_logs", S2(D, 1), 0, 2.5);
    int A = OP1(&t, OP_NEG, OP1(&t, OP_EXP, al));
    int wb = tg_weight(&t, "xproj.weight", S2(3, D), -0.5, 0.5);
    int xb = OP2(&t, OP_LINEAR, x, wb);
    Attrs a = mc_attrs_default();
    a.start = 1;
    a.len = 1;
    int bv = tg_op(&t, OP_SLICE, &xb, 1, &a);
    int h = tg_op(&t, OP_SCAN, (int[]){x, dt, A, bv}, 4, NULL);
    char what[64];
    snprintf(what, sizeof what, "scan %dx%dx%dx%d", B, H, W, D);
    CU_ASSERT_EQUAL(compare(&t, h, what), 0);
    tg_free(&t);
}

static void
test_scan(void)
{
    scan_case(1, 5, 7, 32);
    scan_case(2, 3, 4, 37);
    scan_case(1, 2, 3, 5);
    /* groups of channel vectors per task (llvm_kernels.c mc_llvm_scan_group):
     * full groups, a tail group with a partial vector, batch 2, long L */
    scan_case(1, 4, 5, 128);
    scan_case(2, 3, 5, 200);
    scan_case(1, 2, 9, 300);
    scan_case(1, 40, 40, 24);
}

/* state fusion (folded to 25 taps by the passes), then y = hf * x + x */
static void
fusion_case(int B, int H, int W, int D)
{
    TG t;
    tg_init(&t);
    int x = tg_input(&t, S4(B, H, W, D), -1, 1);
    int k1 = tg_weight(&t, "sf.kernel_3", S4(D, 1, 3, 3), -0.5, 0.5);
    int k2 = tg_weight(&t, "sf.kernel_3_1", S4(D, 1, 3, 3), -0.5, 0.5);
    int k3 = tg_weight(&t, "sf.kernel_3_2", S4(D, 1, 3, 3), -0.5, 0.5);
    int al = tg_weight(&t, "sf.alpha", S1(3), 0.5, 1.5);
    int hf = tg_op(&t, OP_STATE_FUSION, (int[]){x, k1, k2, k3, al}, 5, NULL);
    int y = OP2(&t, OP_ADD, OP2(&t, OP_MUL, hf, x), x);
    char what[64];
    snprintf(what, sizeof what, "fusion %dx%dx%dx%d", B, H, W, D);
    CU_ASSERT_EQUAL(compare(&t, y, what), 0);
    tg_free(&t);
}

static void
test_fusion25(void)
{
    fusion_case(1, 7, 9, 19);   /* smaller than the dilation-5 reach: borders dominate */
    fusion_case(2, 12, 13, 32);
    fusion_case(1, 1, 2, 3);
    fusion_case(1, 12, 17, 100); /* interior pixels unclamped; chunks of 3 vectors (L=16), tail alone */
}

/* ------------------------------------------------------------ norms, pooling */

static void
test_layernorm(void)
{
    TG t;
    tg_init(&t);
    int C = 45;
    int x = tg_input(&t, S4(2, 3, 5, C), -2, 3);
    int g = tg_weight(&t, "ln.weight", S1(C), 0.5, 1.5), b = tg_weight(&t, "ln.bias", S1(C), -0.5, 0.5);
    int y = tg_op(&t, OP_LAYERNORM, (int[]){x, g, b}, 3, NULL);
    y = OP1(&t, OP_SILU, y);
    CU_ASSERT_EQUAL(compare(&t, y, "layernorm+silu"), 0);
    tg_free(&t);
}

static void
test_mean_head(void)
{
    TG t;
    tg_init(&t);
    int C = 29, N = 11;
    int x = tg_input(&t, S4(2, 3, 5, C), -1, 1);
    int g = tg_weight(&t, "norm.weight", S1(C), 0.5, 1.5), b = tg_weight(&t, "norm.bias", S1(C), -0.5, 0.5);
    int y = tg_op(&t, OP_LAYERNORM, (int[]){x, g, b}, 3, NULL);
    y = OP1(&t, OP_MEAN_HW, y);
    int w = tg_weight(&t, "head.weight", S2(N, C), -0.5, 0.5), hb = tg_weight(&t, "head.bias", S1(N), -0.5, 0.5);
    y = tg_op(&t, OP_LINEAR, (int[]){y, w, hb}, 3, NULL);
    CU_ASSERT_EQUAL(compare(&t, y, "mean+head"), 0);
    tg_free(&t);
}

/* ------------------------------------------------------------ elementwise */

static void
unary_case(OpKind op, double lo, double hi, const char *what)
{
    TG t;
    tg_init(&t);
    int x = tg_input(&t, S4(1, 3, 7, 41), lo, hi);
    int y = OP1(&t, op, x);
    y = OP2(&t, OP_ADD, y, OP1(&t, OP_NEG, x)); /* forces an ELTWISE kernel with two loads */
    CU_ASSERT_EQUAL(compare(&t, y, what), 0);
    tg_free(&t);
}

static void
test_eltwise_ops(void)
{
    unary_case(OP_GELU, -12, 12, "gelu");
    unary_case(OP_GELU, -1.5, 1.5, "gelu small");
    unary_case(OP_SILU, -30, 30, "silu");
    unary_case(OP_SOFTPLUS, -40, 40, "softplus");
    unary_case(OP_SOFTPLUS, -1, 1, "softplus small");
    unary_case(OP_EXP, -20, 20, "exp");
    unary_case(OP_RELU, -1, 1, "relu");
}

/* a permuted output (channel stride != 1: scalar gathers) and a standalone
 * batchnorm (sub, div, sqrt, const) */
static void
test_eltwise_views(void)
{
    TG t;
    tg_init(&t);
    int C = 13;
    int x = tg_input(&t, S4(2, 5, 6, C), -1, 1);
    int g = tg_weight(&t, "bn.weight", S1(C), 0.5, 1.5), b = tg_weight(&t, "bn.bias", S1(C), -0.5, 0.5);
    int m = tg_weight(&t, "bn.running_mean", S1(C), -0.2, 0.2), v = tg_weight(&t, "bn.running_var", S1(C), 0.5, 2);
    int bn = tg_op(&t, OP_BATCHNORM, (int[]){x, g, b, m, v}, 5, NULL);
    Attrs p = mc_attrs_default();
    p.perm[0] = 0, p.perm[1] = 3, p.perm[2] = 1, p.perm[3] = 2;
    int y = tg_op(&t, OP_PERMUTE, &bn, 1, &p);
    CU_ASSERT_EQUAL(compare(&t, y, "bn+permute"), 0);
    tg_free(&t);
}

/* ------------------------------------------------------------ targets */

/* lowers a small MLP graph into p (passes run on t->g) */
static int
small_program(TG *t, KProgram *p)
{
    tg_init(t);
    int x = tg_input(t, S4(1, 4, 4, 20), -1, 1);
    int w = tg_weight(t, "fc.weight", S2(36, 20), -0.5, 0.5), b = tg_weight(t, "fc.bias", S1(36), -0.5, 0.5);
    int y = OP1(t, OP_GELU, tg_op(t, OP_LINEAR, (int[]){x, w, b}, 3, NULL));
    int dw = tg_weight(t, "dw.weight", S4(36, 1, 3, 3), -0.5, 0.5);
    Attrs ca = conv_attrs(1, 1, 1, 36);
    y = tg_op(t, OP_CONV2D, (int[]){y, dw}, 2, &ca);
    mc_graph_add_output(&t->g, y);
    if (mc_passes_run(&t->g, &t->ws, NULL, &t->err)) return -1;
    if (mc_lower(&t->g, &t->ws, p, &t->err)) return -1;
    mc_memplan(p);
    return 0;
}

static void
cross_case(const char *triple, const char *needle)
{
    TG t;
    KProgram p;
    CU_ASSERT_FATAL(small_program(&t, &p) == 0);
    McErr err;
    McLlvmTarget *tg = mc_llvm_target_create(triple, NULL, NULL, &err);
    CU_ASSERT_FATAL(tg != NULL);
    McLlvmModule *m = mc_llvm_codegen(&p, tg, &err);
    if (!m) fprintf(stderr, "%s: %s\n", triple, err.msg);
    CU_ASSERT_FATAL(m != NULL);
    uint8_t *asmt = NULL, *obj = NULL;
    size_t na = 0, no = 0;
    CU_ASSERT(mc_llvm_emit_mem(m, MC_EMIT_ASM, &asmt, &na, &err) == 0);
    CU_ASSERT(mc_llvm_emit_mem(m, MC_EMIT_OBJ, &obj, &no, &err) == 0);
    CU_ASSERT(no > 0);
    char *s = malloc(na + 1);
    memcpy(s, asmt, na);
    s[na] = 0;
    if (!strstr(s, needle)) fprintf(stderr, "%s: no '%s' in the assembly\n", triple, needle);
    CU_ASSERT(strstr(s, needle) != NULL);
    CU_ASSERT(strstr(s, "t_run") != NULL);
    free(s);
    free(asmt);
    free(obj);
    mc_llvm_module_free(m);
    mc_llvm_target_free(tg);
    mc_kprogram_free(&p);
    tg_free(&t);
}

static void
test_cross_targets(void)
{
    cross_case("aarch64-linux-gnu", "fmla\tv");
    cross_case("riscv64-linux-gnu", "vfmacc.v");
}

static void
test_deterministic(void)
{
    TG t;
    KProgram p;
    CU_ASSERT_FATAL(small_program(&t, &p) == 0);
    McErr err;
    uint8_t *o[2];
    size_t n[2];
    for (int i = 0; i < 2; i++) {
        McLlvmTarget *tg = mc_llvm_target_create(NULL, NULL, NULL, &err);
        CU_ASSERT_FATAL(tg != NULL);
        McLlvmModule *m = mc_llvm_codegen(&p, tg, &err);
        CU_ASSERT_FATAL(m != NULL);
        CU_ASSERT(mc_llvm_emit_mem(m, MC_EMIT_OBJ, &o[i], &n[i], &err) == 0);
        mc_llvm_module_free(m);
        mc_llvm_target_free(tg);
    }
    CU_ASSERT(n[0] == n[1] && memcmp(o[0], o[1], n[0]) == 0);
    free(o[0]);
    free(o[1]);
    mc_kprogram_free(&p);
    tg_free(&t);
}

/* the entry point reports each kernel to the runtime's profile table once
 * per run (mc_rt_kernel_begin/end, runtime/mc_rt.h), and only while one is
 * installed; the blob keeps GEMM/dwconv weights only packed (smaller than
 * graph layout + packed copies) */
static void
test_profile_hooks(void)
{
    TG t;
    KProgram p;
    CU_ASSERT_FATAL(small_program(&t, &p) == 0);
    McErr err;
    McLlvmTarget *tg = mc_llvm_target_create(NULL, NULL, NULL, &err);
    CU_ASSERT_FATAL(tg != NULL);
    McLlvmModule *m = mc_llvm_codegen(&p, tg, &err);
    CU_ASSERT_FATAL(m != NULL);
    uint8_t *blob = NULL;
    int64_t bs = 0;
    CU_ASSERT_FATAL(mc_llvm_pack_weights(&p, &t.ws, tg, &blob, &bs, &err) == 0);
    CU_ASSERT(bs == mc_llvm_weights_size(&p, tg));
    /* fc.weight (36x20) and dw.weight (36x9) are stored once, packed; only
     * fc.bias is kept in graph layout: less than graph layout + panels */
    CU_ASSERT(bs < p.weights_bytes + (int64_t)(48 * 20 + 9 * 48) * 4);
    McLlvmJit *j = mc_llvm_jit_create(m, &err);
    CU_ASSERT_FATAL(j != NULL);
    float *out = malloc((size_t)p.bufs[p.output_bufs[0]].bytes);
    void *scr = malloc((size_t)(p.scratch_bytes > 0 ? p.scratch_bytes : 64));
    uint64_t ns[8] = {0}, calls[8] = {0};
    McRtProfile prof = {p.nk, ns, calls};
    CU_ASSERT_FATAL(p.nk >= 2 && p.nk <= 8);
    CU_ASSERT(mc_llvm_jit_run(j, blob, t.indata, &out, scr, &err) == 0); /* not profiled */
    mc_rt_profile_set(&prof);
    for (int r = 0; r < 3; r++) CU_ASSERT(mc_llvm_jit_run(j, blob, t.indata, &out, scr, &err) == 0);
    mc_rt_profile_set(NULL);
    CU_ASSERT(mc_llvm_jit_run(j, blob, t.indata, &out, scr, &err) == 0); /* not profiled */
    for (int k = 0; k < p.nk; k++) CU_ASSERT_EQUAL(calls[k], 3);
    free(out);
    free(scr);
    free(blob);
    mc_llvm_jit_free(j);
    mc_llvm_module_free(m);
    mc_llvm_target_free(tg);
    mc_kprogram_free(&p);
    tg_free(&t);
}

/* ------------------------------------------------------------ per-image schedule */

/* JIT-runs program p (as given: codegen schedules only unsegmented ones) */
static int
jit_program(const KProgram *p, const WeightStore *ws, const float *in, float *out)
{
    McErr err;
    McLlvmTarget *tg = mc_llvm_target_create(NULL, NULL, NULL, &err);
    McLlvmModule *m = tg ? mc_llvm_codegen(p, tg, &err) : NULL;
    int rc = unit_llvm_run(m, p, ws, tg, in, &out, &err);
    if (rc) fprintf(stderr, "jit_program: %s\n", err.msg);
    mc_llvm_module_free(m);
    mc_llvm_target_free(tg);
    return rc;
}

/* batch 3, odd sizes: fc1+gelu (small weights) -> depthwise -> fc2 (weights
 * larger than one image's activations) + residual from fc1.  The rule puts
 * the first two kernels in a per-image segment and runs fc2 batched, reading
 * the segment's results (fc1's output is a boundary buffer, live across the
 * segment); llvm (which schedules) matches ref, and a program scheduled
 * entirely per image matches the batched one. */
static void
test_image_schedule(void)
{
    TG t;
    tg_init(&t);
    int x = tg_input(&t, S4(3, 5, 7, 20), -1, 1);
    int w1 = tg_weight(&t, "fc1.weight", S2(96, 20), -0.5, 0.5), b1 = tg_weight(&t, "fc1.bias", S1(96), -0.5, 0.5);
    int y1 = OP1(&t, OP_GELU, tg_op(&t, OP_LINEAR, (int[]){x, w1, b1}, 3, NULL));
    int dw = tg_weight(&t, "dw.weight", S4(96, 1, 3, 3), -0.5, 0.5);
    Attrs ca = conv_attrs(1, 1, 1, 96);
    int y2 = tg_op(&t, OP_CONV2D, (int[]){y1, dw}, 2, &ca);
    int w3 = tg_weight(&t, "fc2.weight", S2(96, 96), -0.3, 0.3), b3 = tg_weight(&t, "fc2.bias", S1(96), -0.5, 0.5);
    int y3 = tg_op(&t, OP_LINEAR, (int[]){y2, w3, b3}, 3, NULL);
    int y = OP2(&t, OP_ADD, y3, y1);
    CU_ASSERT_EQUAL(compare(&t, y, "per-image schedule"), 0);

    /* the schedule itself (compare added the output and ran the passes) */
    CU_ASSERT_FATAL(mc_passes_run(&t.g, &t.ws, NULL, &t.err) == 0);
    KProgram p, q, all;
    CU_ASSERT_FATAL(mc_lower(&t.g, &t.ws, &p, &t.err) == 0);
    mc_memplan(&p);
    CU_ASSERT_FATAL(p.nk == 3);
    CU_ASSERT_FATAL(mc_kprogram_copy(&p, &q) == 0);
    CU_ASSERT_EQUAL(mc_kprogram_schedule_images(&q, -1), 2);
    CU_ASSERT_FATAL(q.nsegs == 1);
    CU_ASSERT(q.segs[0].k0 == 0 && q.segs[0].k1 == 2 && q.segs[0].images == 3);
    CU_ASSERT_EQUAL(q.k[0].M, 5 * 7);
    CU_ASSERT_EQUAL(q.k[1].out.shape[0], 1);
    CU_ASSERT_EQUAL(q.k[2].M, 3 * 5 * 7);                       /* batched */
    const Buffer *y1b = &q.bufs[q.k[0].out.buf], *y2b = &q.bufs[q.k[1].out.buf];
    CU_ASSERT_EQUAL(y1b->image_bytes, 5 * 7 * 96 * 4);          /* read after the segment */
    CU_ASSERT_EQUAL(y1b->first, 0);
    CU_ASSERT_EQUAL(y1b->last, 2);
    CU_ASSERT_EQUAL(y2b->image_bytes, 5 * 7 * 96 * 4);
    CU_ASSERT_EQUAL(q.bufs[q.input_buf].image_bytes, 5 * 7 * 20 * 4);
    mc_memplan(&q);
    CU_ASSERT(q.scratch_bytes <= p.scratch_bytes);
    KProgram r; /* what the pipeline makes for the llvm target: the same schedule */
    CU_ASSERT_FATAL(mc_pipeline_kernels(&t.g, &t.ws, &mc_llvm_target_row, NULL, &r, &t.err) == 0);
    CU_ASSERT(r.nsegs == 1 && r.segs[0].k1 == 2);
    CU_ASSERT_EQUAL(r.scratch_bytes, q.scratch_bytes);
    mc_kprogram_free(&r);
    /* everything per image: the depthwise output now lives inside the segment */
    CU_ASSERT_FATAL(mc_kprogram_copy(&p, &all) == 0);
    CU_ASSERT_EQUAL(mc_kprogram_schedule_images(&all, 99), 3);
    CU_ASSERT_EQUAL(all.bufs[all.k[1].out.buf].image_bytes, 0);
    CU_ASSERT_EQUAL(all.bufs[all.k[1].out.buf].bytes, 5 * 7 * 96 * 4);
    CU_ASSERT_EQUAL(all.bufs[all.output_bufs[0]].image_bytes, 5 * 7 * 96 * 4);
    mc_memplan(&all);
    CU_ASSERT(all.scratch_bytes < p.scratch_bytes);
    int64_t n = mc_shape_numel(&all.bufs[all.output_bufs[0]].shape);
    float *o1 = calloc((size_t)n, sizeof(float)), *o2 = calloc((size_t)n, sizeof(float));
    /* p batched, all per image: the same values */
    CU_ASSERT(jit_program(&p, &t.ws, t.indata, o1) == 0);
    CU_ASSERT(jit_program(&all, &t.ws, t.indata, o2) == 0);
    double ss = 0, se = 0;
    for (int64_t i = 0; i < n; i++) {
        ss += (double)o1[i] * o1[i];
        se += ((double)o1[i] - o2[i]) * ((double)o1[i] - o2[i]);
    }
    CU_ASSERT(ss > 0);
    CU_ASSERT(se <= 1e-12 * ss);
    free(o1);
    free(o2);
    mc_kprogram_free(&all);
    mc_kprogram_free(&q);
    mc_kprogram_free(&p);
    tg_free(&t);
}

static void
test_target_describe(void)
{
    McErr err;
    McLlvmTarget *t = mc_llvm_target_create("x86_64-linux-gnu", "skylake-avx512", NULL, &err);
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT_EQUAL(mc_llvm_target_lanes(t), 16);
    mc_llvm_target_free(t);
    t = mc_llvm_target_create("x86_64-linux-gnu", "generic", "+avx2,+fma,-avx512f", &err);
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT_EQUAL(mc_llvm_target_lanes(t), 8);
    CU_ASSERT(strstr(mc_llvm_target_describe(t), "vector=8xf32") != NULL);
    mc_llvm_target_free(t);
    t = mc_llvm_target_create("riscv64-linux-gnu", NULL, NULL, &err);
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT_EQUAL(mc_llvm_target_lanes(t), 8);
    mc_llvm_target_free(t);
    CU_ASSERT(mc_llvm_target_create("nonsense-arch-xyz", NULL, NULL, &err) == NULL);
    CU_ASSERT(strstr(err.msg, "nonsense") != NULL);
}

/* ------------------------------------------------------------ main */

typedef struct TestEntry {
    const char *name;
    void (*fn)(void);
} TestEntry;

static const TestEntry tests[] = {
    {"gemm shapes and activations", test_gemm_shapes},
    {"gemm mlp with residual", test_gemm_mlp_residual},
    {"shared code: repeated blocks, one function", test_shared_code},
    {"gemm gate over slices", test_gemm_gate_slices},
    {"conv stem (permuted input, bn, relu)", test_conv_stem},
    {"conv shapes", test_conv_shapes},
    {"conv blocked (K blocks, partial sums in the output)", test_conv_blocked},
    {"depthwise conv", test_dwconv},
    {"selective scan", test_scan},
    {"state fusion 25 taps", test_fusion25},
    {"layernorm + epilogue", test_layernorm},
    {"mean_hw + head", test_mean_head},
    {"elementwise ops", test_eltwise_ops},
    {"elementwise strided views", test_eltwise_views},
    {"target description", test_target_describe},
    {"cross targets aarch64 riscv64", test_cross_targets},
    {"deterministic output", test_deterministic},
    {"profile hooks and packed-only weights", test_profile_hooks},
    {"per-image schedule (batch 3)", test_image_schedule},
};

int
main(void)
{
    uint64_t seed = (uint64_t)time(NULL);
    if (getenv("MC_TEST_SEED")) seed = strtoull(getenv("MC_TEST_SEED"), NULL, 10);
    rng_state = seed;
    printf("test_llvm_kernels: seed %llu (MC_TEST_SEED=%llu to repeat)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("llvm backend", NULL, NULL);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) CU_add_test(s, tests[i].name, tests[i].fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
