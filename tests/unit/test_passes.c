/* tests/unit/test_passes.c -- graph passes and lowering.
 *
 * Each pass: a structural check (what it must have rewritten, written by
 * hand here) and a numerical before/after check: the ref backend runs the
 * graph before and after the pass on fresh random inputs and weights; the
 * outputs must agree within 1e-5 relative L2.  Lowering: kernel counts for
 * the fusion rules (counted by hand from docs/kernel-ir.md) and memory-plan
 * invariants (no two buffers live at once share bytes).
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include "frontend/weights.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backends/backend.h"
#include "frontend/frontend.h"
#include "passes/lower.h"
#include "passes/pass.h"

static uint64_t seed;

static float
frand(void)
{
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((seed >> 40) / 16777216.0 * 2.0 - 1.0);
}

/* Clone through the textual IR (print/parse round trip). */
static void
clone(const Graph *g, Graph *out)
{
    char *t = mc_graph_print_str(g);
    McErr e;
    mc_graph_init(out, "clone");
    CU_ASSERT_FATAL(mc_graph_parse(out, t, strlen(t), "clone.mir", &e) == 0);
    free(t);
}

/* Runs g on input x with ref; returns the malloc'd output. */
static float *
run_ref(const Graph *g, const WeightStore *ws, const float *x, int64_t *n)
{
    int in = -1;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op == OP_INPUT) in = i;
    HostTensor it = {g->nodes[in].shape, (float *)x}, out;
    memset(&out, 0, sizeof out);
    RunOpts ro = {.threads = 2};
    McErr e;
    int rc = mc_backend_ref.run_graph(g, ws, &it, 1, &out, 1, &ro, &e);
    if (rc) fprintf(stderr, "ref: %s\n", e.msg);
    CU_ASSERT_FATAL(rc == 0);
    *n = mc_shape_numel(&out.shape);
    return out.data;
}

static double
rel_l2(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static int
count_op(const Graph *g, OpKind op)
{
    int c = 0;
    for (int i = 0; i < g->nnodes; i++) c += g->nodes[i].op == op;
    return c;
}

/* Runs only pass `only` (all others disabled) on a clone of g and checks
 * the outputs before/after agree; returns the rewritten graph in out. */
static void
run_one_pass(const Graph *g, WeightStore *ws, const char *only, Graph *out, double *err)
{
    PassOptions o;
    memset(&o, 0, sizeof o);
    o.verify_each = true;
    for (int i = 0; i < mc_npasses; i++)
        if (strcmp(mc_passes[i].name, only)) o.disable[o.n_disable++] = mc_passes[i].name;
    clone(g, out);
    McErr e;
    CU_ASSERT_FATAL(mc_passes_run(out, ws, &o, &e) == 0);
    int in = -1;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op == OP_INPUT) in = i;
    int64_t nx = mc_shape_numel(&g->nodes[in].shape), n1, n2;
    float *x = malloc(sizeof(float) * (size_t)nx);
    for (int64_t i = 0; i < nx; i++) x[i] = frand();
    float *y1 = run_ref(g, ws, x, &n1), *y2 = run_ref(out, ws, x, &n2);
    CU_ASSERT_EQUAL_FATAL(n1, n2);
    *err = rel_l2(y2, y1, n1);
    free(x);
    free(y1);
    free(y2);
}

static Shape
S(int r, int64_t a, int64_t b, int64_t c, int64_t d)
{
    Shape s = {r, {a, b, c, d}};
    return s;
}

static int
W(Graph *g, const char *name, Shape s)
{
    McErr e;
    int id = mc_graph_weight(g, name, DT_F32, &s, &e);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

static int
op(Graph *g, OpKind k, const char *name, const Attrs *a, int n, int i0, int i1, int i2, int i3, int i4)
{
    int in[5] = {i0, i1, i2, i3, i4};
    McErr e;
    int id = mc_graph_add(g, k, in, n, a, name, &e);
    if (id < 0) fprintf(stderr, "%s\n", e.msg);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

/* ------------------------------------------------------------ tests */

static void
test_fold_batchnorm(void)
{
    Graph g;
    mc_graph_init(&g, "t");
    McErr e;
    Shape xs = S(4, 2, 9, 7, 5);
    int x = mc_graph_input(&g, "x", DT_F32, &xs, &e);
    Attrs a = mc_attrs_default();
    a.stride[0] = 2; a.pad[0] = a.pad[1] = 1;
    int c = op(&g, OP_CONV2D, "c", &a, 3, x, W(&g, "c.weight", S(4, 6, 5, 3, 3)), W(&g, "c.bias", S(1, 6, 0, 0, 0)), 0, 0);
    int bn = op(&g, OP_BATCHNORM, "bn", NULL, 5, c, W(&g, "bn.weight", S(1, 6, 0, 0, 0)), W(&g, "bn.bias", S(1, 6, 0, 0, 0)),
                W(&g, "bn.running_mean", S(1, 6, 0, 0, 0)), W(&g, "bn.running_var", S(1, 6, 0, 0, 0)));
    /* a second conv without bias whose BN must fold too, and one conv with two users that must not */
    int c2 = op(&g, OP_CONV2D, "c2", NULL, 2, bn, W(&g, "c2.weight", S(4, 6, 6, 1, 1)), 0, 0, 0);
    int bn2 = op(&g, OP_BATCHNORM, "bn2", NULL, 5, c2, W(&g, "bn2.weight", S(1, 6, 0, 0, 0)), W(&g, "bn2.bias", S(1, 6, 0, 0, 0)),
                 W(&g, "bn2.running_mean", S(1, 6, 0, 0, 0)), W(&g, "bn2.running_var", S(1, 6, 0, 0, 0)));
    int s = op(&g, OP_ADD, "sum", NULL, 2, bn2, c2, 0, 0, 0);
    mc_graph_add_output(&g, s);
    WeightStore ws;
    mc_weights_init(&ws);
    mc_weights_random(&g, &ws, 7);
    Graph h;
    double err;
    run_one_pass(&g, &ws, "fold-batchnorm", &h, &err);
    CU_ASSERT_EQUAL(count_op(&h, OP_BATCHNORM), 1); /* bn2's conv has two users */
    int ci = mc_graph_find(&h, "c");
    CU_ASSERT_FATAL(ci >= 0);
    CU_ASSERT_EQUAL(h.nodes[ci].nin, 3);
    CU_ASSERT_EQUAL(mc_graph_find(&h, "bn"), -1);
    CU_ASSERT(err < 1e-5);
    mc_graph_free(&h);
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

static void
test_fold_constants_and_dce(void)
{
    Graph g;
    mc_graph_init(&g, "t");
    McErr e;
    Shape xs = S(4, 1, 5, 3, 8);
    int x = mc_graph_input(&g, "x", DT_F32, &xs, &e);
    int al = W(&g, "A_logs", S(2, 8, 1, 0, 0));
    int ex = op(&g, OP_EXP, "A.exp", NULL, 1, al, 0, 0, 0, 0);
    int A = op(&g, OP_NEG, "A", NULL, 1, ex, 0, 0, 0, 0);
    Shape s8 = S(1, 8, 0, 0, 0);
    (void)s8;
    int d = W(&g, "Ds", S(1, 8, 0, 0, 0));
    int sc = op(&g, OP_MUL, "scaled", NULL, 2, x, d, 0, 0, 0);
    /* dead: nobody uses it */
    op(&g, OP_RELU, "dead", NULL, 1, sc, 0, 0, 0, 0);
    Attrs sl = mc_attrs_default();
    sl.start = 0; sl.len = 1;
    int bv = op(&g, OP_SLICE, "Bv", &sl, 1, sc, 0, 0, 0, 0);
    int y = op(&g, OP_SCAN, "scan", NULL, 4, sc, op(&g, OP_SOFTPLUS, "delta", NULL, 1, sc, 0, 0, 0, 0), A, bv, 0);
    mc_graph_add_output(&g, y);
    WeightStore ws;
    mc_weights_init(&ws);
    mc_weights_random(&g, &ws, 11);
    Graph h;
    double err;
    run_one_pass(&g, &ws, "fold-constants", &h, &err);
    CU_ASSERT_EQUAL(count_op(&h, OP_EXP), 0);
    CU_ASSERT_EQUAL(count_op(&h, OP_NEG), 0);
    int a = mc_graph_find(&h, "A");
    CU_ASSERT_FATAL(a >= 0);
    CU_ASSERT_EQUAL(h.nodes[a].op, OP_WEIGHT);
    /* the folded value is -exp(A_logs) exactly as the oracle computes it */
    WTensor *ta = mc_weights_find(&ws, "A"), *tl = mc_weights_find(&ws, "A_logs");
    CU_ASSERT_FATAL(ta && tl);
    for (int i = 0; i < 8; i++) CU_ASSERT_DOUBLE_EQUAL(((float *)ta->data)[i], -expf(((float *)tl->data)[i]), 1e-6);
    CU_ASSERT(err < 1e-6);
    /* the dead relu went with the compaction after the pass */
    CU_ASSERT_EQUAL(mc_graph_find(&h, "dead"), -1);
    mc_graph_free(&h);
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

static void
test_fold_state_fusion(void)
{
    Graph g;
    mc_graph_init(&g, "t");
    McErr e;
    Shape xs = S(4, 2, 13, 6, 5); /* smaller than the dilation-5 reach: borders dominate */
    int x = mc_graph_input(&g, "x", DT_F32, &xs, &e);
    int k0 = W(&g, "sf.kernel_3", S(4, 5, 1, 3, 3)), k1 = W(&g, "sf.kernel_3_1", S(4, 5, 1, 3, 3));
    int k2 = W(&g, "sf.kernel_3_2", S(4, 5, 1, 3, 3)), al = W(&g, "sf.alpha", S(1, 3, 0, 0, 0));
    int y = op(&g, OP_STATE_FUSION, "sf", NULL, 5, x, k0, k1, k2, al);
    mc_graph_add_output(&g, y);
    WeightStore ws;
    mc_weights_init(&ws);
    mc_weights_random(&g, &ws, 5);
    Graph h;
    double err;
    run_one_pass(&g, &ws, "fold-state-fusion", &h, &err);
    CU_ASSERT_EQUAL(count_op(&h, OP_STATE_FUSION), 0);
    CU_ASSERT_EQUAL(count_op(&h, OP_STATE_FUSION25), 1);
    CU_ASSERT(err < 1e-6);
    mc_graph_free(&h);
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

static void
test_cse(void)
{
    Graph g;
    mc_graph_init(&g, "t");
    McErr e;
    Shape xs = S(2, 3, 7, 0, 0);
    int x = mc_graph_input(&g, "x", DT_F32, &xs, &e);
    int a = op(&g, OP_SILU, "a", NULL, 1, x, 0, 0, 0, 0);
    int b = op(&g, OP_SILU, "b", NULL, 1, x, 0, 0, 0, 0);
    Attrs s1 = mc_attrs_default(), s2 = mc_attrs_default();
    s1.start = 1; s1.len = 3;
    s2.start = 2; s2.len = 3; /* a different slice: must not merge */
    int c = op(&g, OP_SLICE, "c", &s1, 1, a, 0, 0, 0, 0);
    int d = op(&g, OP_SLICE, "d", &s2, 1, b, 0, 0, 0, 0);
    int f = op(&g, OP_SLICE, "f", &s1, 1, b, 0, 0, 0, 0); /* same as c once b == a */
    int y = op(&g, OP_MUL, "y", NULL, 2, op(&g, OP_ADD, "s", NULL, 2, c, d, 0, 0, 0), f, 0, 0, 0);
    mc_graph_add_output(&g, y);
    WeightStore ws;
    mc_weights_init(&ws);
    Graph h;
    double err;
    run_one_pass(&g, &ws, "cse", &h, &err);
    CU_ASSERT_EQUAL(count_op(&h, OP_SILU), 1);
    CU_ASSERT_EQUAL(count_op(&h, OP_SLICE), 2);
    CU_ASSERT(err == 0);
    mc_graph_free(&h);
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

static const char *small_cfg =
    "MODEL:\n  TYPE: spatial_mamba\n  NAME: unit\n  NUM_CLASSES: 13\n"
    "  SPATIALMAMBA:\n    EMBED_DIM: 16\n    DEPTHS: [1, 2, 1, 1]\n    D_STATE: 1\n    MLP_RATIO: 2.5\n";

static void
build_small(Graph *g, int B, int H, int W)
{
    ModelConfig cfg;
    McErr e;
    CU_ASSERT_FATAL(mc_config_load_mem(small_cfg, strlen(small_cfg), "unit.yaml", &cfg, &e) == 0);
    CU_ASSERT_FATAL(mc_model_build(&cfg, B, H, W, g, &e) == 0);
}

/* build_small, random weights (seed 1), every graph pass */
static void
prepare_small(Graph *g, WeightStore *ws, int B, int H, int W)
{
    build_small(g, B, H, W);
    mc_weights_init(ws);
    mc_weights_random(g, ws, 1);
    McErr e;
    CU_ASSERT_FATAL(mc_passes_run(g, ws, NULL, &e) == 0);
}

/* The whole pipeline on a small model at an odd size: same logits. */
static void
test_pipeline_model(void)
{
    Graph g;
    build_small(&g, 2, 37, 45);
    WeightStore ws;
    mc_weights_init(&ws);
    mc_weights_random(&g, &ws, 3);
    Graph h;
    clone(&g, &h);
    PassOptions o;
    memset(&o, 0, sizeof o);
    o.verify_each = true;
    McErr e;
    CU_ASSERT_FATAL(mc_passes_run(&h, &ws, &o, &e) == 0);
    CU_ASSERT_EQUAL(count_op(&h, OP_BATCHNORM), 0);
    CU_ASSERT_EQUAL(count_op(&h, OP_EXP), 0);
    CU_ASSERT_EQUAL(count_op(&h, OP_STATE_FUSION), 0);
    int64_t nx = 2 * 3 * 37 * 45, n1, n2;
    float *x = malloc(sizeof(float) * (size_t)nx);
    for (int64_t i = 0; i < nx; i++) x[i] = frand();
    float *y1 = run_ref(&g, &ws, x, &n1), *y2 = run_ref(&h, &ws, x, &n2);
    CU_ASSERT_EQUAL_FATAL(n1, 2 * 13);
    CU_ASSERT_EQUAL_FATAL(n2, 2 * 13);
    double err = rel_l2(y2, y1, n1);
    CU_ASSERT(err < 1e-5);
    free(x); free(y1); free(y2);
    mc_graph_free(&h);
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

/* Fusion: kernel counts of the lowered model.  Counted by hand from the
 * rules: a block is 14 kernels (cpe1+add, ln_1, in_proj, conv2d+silu,
 * x_proj, dt_projs, scan+softplus, fusion25+*Cv+u*Ds, out_norm+gate,
 * out_proj+residual, cpe2+add, ln_2, fc1+gelu, fc2+residual); the stem 5
 * (conv1+relu, conv2.0+relu, conv2.1+add, conv3.0+relu, conv3.1 as GEMM);
 * a downsample 3; the head 3 (norm, mean, head). */
static void
test_lower_kernel_counts(void)
{
    Graph g;
    WeightStore ws;
    prepare_small(&g, &ws, 1, 40, 33);
    McErr e;
    KProgram p;
    CU_ASSERT_FATAL(mc_lower(&g, &ws, &p, &e) == 0);
    int blocks = 1 + 2 + 1 + 1;
    CU_ASSERT_EQUAL(p.nk, 5 + 14 * blocks + 3 * 3 + 3);
    int kinds[KK_COUNT] = {0};
    for (int i = 0; i < p.nk; i++) kinds[p.k[i].kind]++;
    CU_ASSERT_EQUAL(kinds[KK_SCAN], blocks);
    CU_ASSERT_EQUAL(kinds[KK_FUSION25], blocks);
    CU_ASSERT_EQUAL(kinds[KK_ELTWISE], 0);
    CU_ASSERT_EQUAL(kinds[KK_MEAN_HW], 1);
    CU_ASSERT_EQUAL(kinds[KK_CONV], 4);                   /* stem 3x3 dense convs */
    CU_ASSERT_EQUAL(kinds[KK_DWCONV], 3 * blocks + 3);    /* cpe1, conv2d, cpe2; downsample .1 */
    /* every scan computes softplus itself; every fusion25 carries its epilogue */
    for (int i = 0; i < p.nk; i++) {
        if (p.k[i].kind == KK_SCAN) CU_ASSERT_EQUAL(p.k[i].softplus_dt, 1);
        if (p.k[i].kind == KK_FUSION25) CU_ASSERT(p.k[i].nexpr >= 5);
    }
    /* memory plan: buffers live at the same time never overlap */
    mc_memplan(&p);
    CU_ASSERT(p.scratch_bytes <= p.unplanned_bytes);
    CU_ASSERT(p.scratch_bytes > 0);
    for (int i = 0; i < p.nbufs; i++)
        for (int j = i + 1; j < p.nbufs; j++) {
            const Buffer *a = &p.bufs[i], *b = &p.bufs[j];
            if (a->kind != BUF_SCRATCH || b->kind != BUF_SCRATCH) continue;
            if (a->last < b->first || b->last < a->first) continue;
            int disjoint = a->offset + a->bytes <= b->offset || b->offset + b->bytes <= a->offset;
            CU_ASSERT(disjoint);
            CU_ASSERT(a->offset % 64 == 0);
        }
    mc_kprogram_free(&p);
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

/* Per-image schedule of the small model at batch 3 (odd size): the segment
 * is a prefix ending where the rule says (the first kernel whose weights
 * outweigh the bytes of one image it reads and writes, counted here from
 * the unscheduled views), its kernels cover one image, buffers living only
 * inside it shrink to one image, the others carry image strides, and the
 * plan keeps live buffers apart (boundary buffers live over the whole
 * segment). */
static void
test_image_schedule(void)
{
    Graph g;
    WeightStore ws;
    prepare_small(&g, &ws, 3, 40, 33);
    McErr e;
    KProgram p, q;
    CU_ASSERT_FATAL(mc_lower(&g, &ws, &p, &e) == 0);
    mc_memplan(&p);
    CU_ASSERT_FATAL(mc_kprogram_copy(&p, &q) == 0);
    int cut = mc_kprogram_schedule_images(&q, -1);
    /* expected cut, from the batched program */
    int want = 0;
    for (; want < p.nk; want++) {
        const Kernel *k = &p.k[want];
        int64_t w = 0, a = 4;
        for (int d = 0; d < k->out.rank; d++) a *= k->out.shape[d];
        for (int j = 0; j < k->nin; j++) {
            const View *v = &k->in[j];
            if (p.bufs[v->buf].kind == BUF_WEIGHT) { w += p.bufs[v->buf].bytes; continue; }
            int64_t b = 4;
            for (int d = 0; d < v->rank; d++) b *= v->shape[d];
            a += b;
        }
        if (w > a / 3) break;
    }
    CU_ASSERT(want > 10 && want < p.nk); /* a real prefix: the stem and more */
    CU_ASSERT_EQUAL(cut, want);
    CU_ASSERT_FATAL(q.nsegs == 1);
    CU_ASSERT(q.segs[0].k0 == 0 && q.segs[0].k1 == cut && q.segs[0].images == 3);
    for (int i = 0; i < p.nk; i++) {
        int64_t o = p.k[i].out.shape[0], n = q.k[i].out.shape[0];
        CU_ASSERT_EQUAL(n, i < cut ? o / 3 : o);
        if (p.k[i].kind == KK_GEMM) CU_ASSERT_EQUAL(q.k[i].M, i < cut ? p.k[i].M / 3 : p.k[i].M);
        CU_ASSERT_EQUAL(mc_kprogram_segment_of(&q, i), i < cut ? 0 : -1);
    }
    CU_ASSERT_EQUAL(q.bufs[q.input_buf].image_bytes, 3 * 40 * 33 * 4);
    int inner = 0, boundary = 0;
    for (int i = 0; i < q.nbufs; i++) {
        const Buffer *a = &p.bufs[i], *b = &q.bufs[i];
        if (a->kind != BUF_SCRATCH || a->first >= cut) {
            CU_ASSERT(b->bytes == a->bytes);
            if (a->kind == BUF_SCRATCH) CU_ASSERT_EQUAL(b->image_bytes, 0);
            continue;
        }
        if (a->last < cut) { /* one image's copy, reused */
            inner++;
            CU_ASSERT_EQUAL(b->bytes * 3, a->bytes);
            CU_ASSERT_EQUAL(b->image_bytes, 0);
        } else {
            boundary++;
            CU_ASSERT_EQUAL(b->image_bytes * 3, a->bytes);
            CU_ASSERT_EQUAL(b->first, 0);
        }
    }
    CU_ASSERT(inner > 10);
    CU_ASSERT(boundary >= 1);
    mc_memplan(&q);
    CU_ASSERT(q.scratch_bytes < p.scratch_bytes);
    for (int i = 0; i < q.nbufs; i++)
        for (int j = i + 1; j < q.nbufs; j++) {
            const Buffer *a = &q.bufs[i], *b = &q.bufs[j];
            if (a->kind != BUF_SCRATCH || b->kind != BUF_SCRATCH) continue;
            if (a->last < b->first || b->last < a->first) continue;
            CU_ASSERT(a->offset + a->bytes <= b->offset || b->offset + b->bytes <= a->offset);
        }
    /* no second schedule, none at batch 1 */
    CU_ASSERT_EQUAL(mc_kprogram_schedule_images(&q, -1), 0);
    mc_kprogram_free(&q);
    mc_kprogram_free(&p);
    mc_graph_free(&g);
    build_small(&g, 1, 40, 33);
    CU_ASSERT_FATAL(mc_passes_run(&g, &ws, NULL, &e) == 0);
    CU_ASSERT_FATAL(mc_lower(&g, &ws, &p, &e) == 0);
    CU_ASSERT_EQUAL(mc_kprogram_schedule_images(&p, -1), 0);
    CU_ASSERT_EQUAL(p.nsegs, 0);
    mc_kprogram_free(&p);
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

/* image groups (mc_kprogram_schedule_images_groups): the buffers living
 * inside the segment get copies at one stride (a group's sub-arena); no
 * copy of one shares bytes with a copy of another in another group, or with
 * any buffer alive during the segment outside the block; it verifies */
static void
test_image_groups_plan(void)
{
    Graph g;
    WeightStore ws;
    prepare_small(&g, &ws, 4, 40, 33);
    McErr e;
    KProgram p;
    CU_ASSERT_FATAL(mc_lower(&g, &ws, &p, &e) == 0);
    int cut = mc_kprogram_schedule_images_groups(&p, -1, 4);
    CU_ASSERT_FATAL(cut > 0);
    CU_ASSERT_EQUAL(p.segs[0].groups, 4);
    mc_memplan(&p);
    CU_ASSERT_EQUAL(mc_kprogram_verify(&p, &e), 0);
    int64_t S = 0;
    int inner = 0;
    for (int i = 0; i < p.nbufs; i++)
        if (p.bufs[i].group_bytes) {
            if (!S) S = p.bufs[i].group_bytes;
            CU_ASSERT_EQUAL(p.bufs[i].group_bytes, S); /* one stride */
            CU_ASSERT(p.bufs[i].last < cut);
            inner++;
        }
    CU_ASSERT(inner > 10);
    CU_ASSERT(S > 0 && S % 64 == 0);
    for (int i = 0; i < p.nbufs; i++)
        for (int j = 0; j < p.nbufs; j++) {
            const Buffer *a = &p.bufs[i], *b = &p.bufs[j];
            if (i == j || a->kind != BUF_SCRATCH || b->kind != BUF_SCRATCH) continue;
            int ga = a->group_bytes ? 4 : 1, gb = b->group_bytes ? 4 : 1;
            int in_seg = a->first < cut && b->first < cut;
            for (int x = 0; x < ga; x++)
                for (int y = 0; y < gb; y++) {
                    /* the same group: lifetimes decide, as without groups */
                    int same = a->group_bytes && b->group_bytes && x == y;
                    int live = !(a->last < b->first || b->last < a->first);
                    if (same ? !live : !(in_seg || live)) continue;
                    int64_t ao = a->offset + x * a->group_bytes, bo = b->offset + y * b->group_bytes;
                    CU_ASSERT(ao + a->bytes <= bo || bo + b->bytes <= ao);
                }
        }
    /* every copy inside the arena */
    for (int i = 0; i < p.nbufs; i++)
        if (p.bufs[i].group_bytes) CU_ASSERT(p.bufs[i].offset + 3 * S + p.bufs[i].bytes <= p.scratch_bytes);
    mc_kprogram_free(&p);
    mc_graph_free(&g);
    mc_weights_free(&ws);
}

static const struct {
    const char *name;
    CU_TestFunc fn;
} tests[] = {
    {"fold-batchnorm", test_fold_batchnorm},
    {"fold-constants + dce", test_fold_constants_and_dce},
    {"fold-state-fusion", test_fold_state_fusion},
    {"cse", test_cse},
    {"whole pipeline on a model", test_pipeline_model},
    {"lowering kernel counts + memplan", test_lower_kernel_counts},
    {"per-image schedule + memplan (batch 3)", test_image_schedule},
    {"image groups: copies at one stride, apart", test_image_groups_plan},
};

static int
seeded_main(void)
{
    seed = getenv("MC_TEST_SEED") ? strtoull(getenv("MC_TEST_SEED"), NULL, 10) : (uint64_t)time(NULL);
    printf("test_passes: seed %llu (MC_TEST_SEED=N repeats a run)\n", (unsigned long long)seed);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("passes", NULL, NULL);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) CU_add_test(s, tests[i].name, tests[i].fn);
    return mc_unit_finish();
}

int
main(void)
{
    return seeded_main();
}
