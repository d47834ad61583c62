/* tests/unit/test_llvm_dense.c -- CUnit tests of the LLVM backend's dense
 * kernels (resize, avgpool: backends/llvm/llvm_dense.c) and of the
 * concat-in-place kernel pass.
 *
 * Each case is a small graph in graph IR text, run by the ref interpreter
 * (mc_ref_resize, mc_ref_adaptive_avg_pool) and by the LLVM pipeline (JIT)
 * on random weights and inputs (seed from the clock, printed; MC_TEST_SEED
 * repeats one): channel counts 1, 3, 17, 64 (masked tails, wide steps),
 * 7x5 -> 16x16, upsampling by 4 and 8, downsampling, out or in of 1, both
 * align_corners, pools 64x64 -> 1x1 and 13x13 -> 1, 2, 3, 6, a fused add
 * and relu, x a channel slice of the input and a permuted view (scalar
 * gathers), a PPM-like concat whose resizes write their channel slices,
 * batch 2.  Tolerance: |llvm - ref| <= 1e-5 |ref| + 1e-5 rms(ref).
 * Also: hand-set schedules (tile_n) give the same values, one the
 * generator cannot honour is refused; a kind without a generator is
 * refused; mc_kprogram_remove renumbers what stays.
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backends/backend.h"
#include "backends/llvm/llvm.h"
#include "frontend/weights.h"
#include "passes/concat_in_place.h"
#include "passes/lower.h"
#include "passes/pipeline.h"

extern const Backend mc_backend_llvm, mc_backend_ref;

/* A graph from text with random weights and input. */
typedef struct Case {
    Graph g;
    WeightStore ws;
    HostTensor in;
    McErr err;
} Case;

static int
case_open(Case *c, const char *text)
{
    static int seeded;
    if (!seeded++) {
        uint64_t seed = getenv("MC_TEST_SEED") ? strtoull(getenv("MC_TEST_SEED"), NULL, 10) : (uint64_t)time(NULL);
        rng_seed(seed);
        printf("test_llvm_dense: seed %llu (MC_TEST_SEED=%llu to repeat)\n", (unsigned long long)seed,
               (unsigned long long)seed);
    }
    memset(c, 0, sizeof *c);
    mc_graph_init(&c->g, "t");
    mc_weights_init(&c->ws);
    if (mc_graph_parse(&c->g, text, strlen(text), "case", &c->err)) {
        fprintf(stderr, "%s\n%s\n", text, c->err.msg);
        return -1;
    }
    mc_weights_random(&c->g, &c->ws, rng_state);
    c->in.shape = c->g.nodes[mc_graph_find(&c->g, "x")].shape; /* every case's input is %x */
    c->in.data = rand_vec(mc_shape_numel(&c->in.shape), -1, 1);
    return 0;
}

static void
case_close(Case *c)
{
    free(c->in.data);
    mc_weights_free(&c->ws);
    mc_graph_free(&c->g);
}

/* elements of l outside the tolerance around r (printing the first few) */
static int64_t
mismatches(const char *what, const HostTensor *r, const HostTensor *l)
{
    if (!mc_shape_eq(&r->shape, &l->shape)) return -1;
    int64_t n = mc_shape_numel(&r->shape), bad = 0;
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)r->data[i] * r->data[i];
    double rms = sqrt(ss / (double)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)l->data[i] - r->data[i]);
        if (d <= 1e-5 * fabs(r->data[i]) + 1e-5 * rms) continue;
        if (bad++ < 4) fprintf(stderr, "%s[%lld]: llvm %.9g ref %.9g\n", what, (long long)i, l->data[i], r->data[i]);
    }
    return bad;
}

/* The LLVM pipeline's program for c (graph passes ran on c->g). */
static int
llvm_program(Case *c, const PassOptions *o, KProgram *p)
{
    int rc = mc_pipeline_run(&c->g, &c->ws, mc_backend_llvm.target, o, p, &c->err);
    if (rc) fprintf(stderr, "llvm pipeline: %s\n", c->err.msg);
    return rc;
}

/* runs p by the LLVM JIT and c->g by the ref interpreter; mismatches or -1 */
static int64_t
run_both(Case *c, const KProgram *p, const char *what)
{
    RunOpts o = {.threads = 2, .verbose = 0};
    HostTensor r, l;
    if (mc_backend_ref.run_graph(&c->g, &c->ws, &c->in, 1, &r, 1, &o, &c->err)) {
        fprintf(stderr, "%s: ref: %s\n", what, c->err.msg);
        return -1;
    }
    if (mc_backend_llvm.run_kernels(p, &c->ws, &c->in, &l, &o, &c->err)) {
        fprintf(stderr, "%s: llvm: %s\n", what, c->err.msg);
        free(r.data);
        return -1;
    }
    int64_t bad = mismatches(what, &r, &l);
    free(r.data);
    free(l.data);
    return bad;
}

/* the whole road for one graph text: 0 when LLVM matches the reference */
static int64_t
check_text(const char *what, const char *text)
{
    Case c;
    if (case_open(&c, text)) return -1;
    KProgram p;
    int64_t bad = -1;
    if (!llvm_program(&c, NULL, &p)) {
        bad = run_both(&c, &p, what);
        mc_kprogram_free(&p);
    }
    case_close(&c);
    return bad;
}

static int64_t
resize_case(int B, int H, int W, int C, int oh, int ow, int align)
{
    char text[1024], what[96];
    snprintf(what, sizeof what, "resize %dx%dx%dx%d -> %dx%d align %d", B, H, W, C, oh, ow, align);
    snprintf(text, sizeof text,
             "graph t {\n  %%x = input : f32[%d,%d,%d,%d]\n"
             "  %%y = resize_bilinear %%x size=[%d,%d] align_corners=%d : f32[%d,%d,%d,%d]\n  return %%y\n}\n",
             B, H, W, C, oh, ow, align, B, oh, ow, C);
    return check_text(what, text);
}

static int64_t
pool_case(int B, int H, int W, int C, int oh, int ow)
{
    char text[1024], what[96];
    snprintf(what, sizeof what, "avgpool %dx%dx%dx%d -> %dx%d", B, H, W, C, oh, ow);
    snprintf(text, sizeof text,
             "graph t {\n  %%x = input : f32[%d,%d,%d,%d]\n"
             "  %%y = adaptive_avg_pool %%x size=[%d,%d] : f32[%d,%d,%d,%d]\n  return %%y\n}\n",
             B, H, W, C, oh, ow, B, oh, ow, C);
    return check_text(what, text);
}

/* ------------------------------------------------------------ resize */

static void
test_resize_channels(void)
{
    static const int cs[] = {1, 3, 17, 64};
    for (int i = 0; i < 4; i++)
        for (int a = 0; a < 2; a++) CU_ASSERT_EQUAL(resize_case(1, 7, 5, cs[i], 16, 16, a), 0);
}

/* upsampling by 4 and 8, downsampling, sizes of 1 in and out, batch 2 */
static void
test_resize_edges(void)
{
    for (int a = 0; a < 2; a++) {
        CU_ASSERT_EQUAL(resize_case(1, 4, 3, 17, 16, 12, a), 0);
        CU_ASSERT_EQUAL(resize_case(2, 2, 2, 20, 16, 16, a), 0);
        CU_ASSERT_EQUAL(resize_case(1, 13, 13, 5, 6, 6, a), 0);
        CU_ASSERT_EQUAL(resize_case(1, 64, 64, 3, 7, 5, a), 0);
        CU_ASSERT_EQUAL(resize_case(1, 5, 7, 9, 1, 1, a), 0);
        CU_ASSERT_EQUAL(resize_case(1, 1, 1, 9, 4, 3, a), 0);
        CU_ASSERT_EQUAL(resize_case(1, 1, 6, 33, 5, 1, a), 0);
        CU_ASSERT_EQUAL(resize_case(2, 9, 11, 48, 9, 11, a), 0); /* identity */
    }
}

/* the top-down path: resize + add (+ relu) in one kernel; x a channel
 * slice of the input and a permuted view (channel stride 42: gathers) */
static void
test_resize_views_epilogue(void)
{
    for (int a = 0; a < 2; a++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "graph t {\n  %%x = input : f32[2,9,11,20]\n"
                 "  %%p = adaptive_avg_pool %%x size=[3,4] : f32[2,3,4,20]\n"
                 "  %%up = resize_bilinear %%p size=[9,11] align_corners=%d : f32[2,9,11,20]\n"
                 "  %%s = add %%up, %%x : f32[2,9,11,20]\n  %%y = relu %%s : f32[2,9,11,20]\n  return %%y\n}\n",
                 a);
        CU_ASSERT_EQUAL(check_text("resize + add + relu", text), 0);
        snprintf(text, sizeof text,
                 "graph t {\n  %%x = input : f32[1,6,7,40]\n"
                 "  %%u = slice %%x start=5 len=19 : f32[1,6,7,19]\n"
                 "  %%y = resize_bilinear %%u size=[11,3] align_corners=%d : f32[1,11,3,19]\n  return %%y\n}\n",
                 a);
        CU_ASSERT_EQUAL(check_text("resize of a channel slice", text), 0);
        snprintf(text, sizeof text,
                 "graph t {\n  %%x = input : f32[1,17,6,7]\n"
                 "  %%h = permute %%x perm=[0,2,3,1] : f32[1,6,7,17]\n"
                 "  %%y = resize_bilinear %%h size=[12,13] align_corners=%d : f32[1,12,13,17]\n  return %%y\n}\n",
                 a);
        CU_ASSERT_EQUAL(check_text("resize of a permuted view", text), 0);
    }
}

/* ------------------------------------------------------------ avgpool */

static void
test_avgpool(void)
{
    CU_ASSERT_EQUAL(pool_case(1, 64, 64, 64, 1, 1), 0);
    static const int scales[] = {1, 2, 3, 6};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(pool_case(1, 13, 13, 17, scales[i], scales[i]), 0);
        CU_ASSERT_EQUAL(pool_case(2, 13, 13, 3, scales[i], scales[i]), 0);
    }
    CU_ASSERT_EQUAL(pool_case(1, 5, 7, 1, 7, 9), 0); /* bins overlap: out larger than in */
    CU_ASSERT_EQUAL(pool_case(1, 16, 16, 512, 6, 6), 0);
    const char *text = "graph t {\n  %x = input : f32[1,20,9,11]\n"
                       "  %h = permute %x perm=[0,2,3,1] : f32[1,9,11,20]\n"
                       "  %u = slice %h start=2 len=17 : f32[1,9,11,17]\n"
                       "  %p = adaptive_avg_pool %u size=[2,3] : f32[1,2,3,17]\n"
                       "  %y = mul %p, %p : f32[1,2,3,17]\n  return %y\n}\n";
    CU_ASSERT_EQUAL(check_text("avgpool of a permuted slice + mul", text), 0);
}

/* ------------------------------------------------------------ concat */

/* PPM: x and its pooled branches resized back, concatenated: the resizes
 * write their channel slices (concat-in-place), x (the input) is copied;
 * the same values with the pass disabled */
static const char *ppm_text =
    "graph t {\n  %x = input : f32[1,13,13,17]\n"
    "  %p1 = adaptive_avg_pool %x size=[1,1] : f32[1,1,1,17]\n"
    "  %u1 = resize_bilinear %p1 size=[13,13] align_corners=0 : f32[1,13,13,17]\n"
    "  %p2 = adaptive_avg_pool %x size=[2,2] : f32[1,2,2,17]\n"
    "  %u2 = resize_bilinear %p2 size=[13,13] align_corners=0 : f32[1,13,13,17]\n"
    "  %p3 = adaptive_avg_pool %x size=[3,3] : f32[1,3,3,17]\n"
    "  %u3 = resize_bilinear %p3 size=[13,13] align_corners=1 : f32[1,13,13,17]\n"
    "  %p6 = adaptive_avg_pool %x size=[6,6] : f32[1,6,6,17]\n"
    "  %u6 = resize_bilinear %p6 size=[13,13] align_corners=0 : f32[1,13,13,17]\n"
    "  %cat = concat %x, %u1, %u2, %u3, %u6 : f32[1,13,13,85]\n"
    "  %y = relu %cat : f32[1,13,13,85]\n  return %y\n}\n";

static void
test_concat_ppm(void)
{
    for (int on = 0; on < 2; on++) {
        Case c;
        CU_ASSERT_FATAL(case_open(&c, ppm_text) == 0);
        PassOptions o;
        memset(&o, 0, sizeof o);
        o.verify_each = true;
        if (!on) o.disable[o.n_disable++] = "concat-in-place";
        KProgram p;
        CU_ASSERT_FATAL(llvm_program(&c, &o, &p) == 0);
        int copies = 0;
        for (int i = 0; i < p.nk; i++) copies += p.k[i].kind == KK_ELTWISE && p.k[i].nexpr == 1;
        CU_ASSERT_EQUAL(copies, on ? 1 : 5); /* with the pass only x's copy stays */
        CU_ASSERT_EQUAL(p.nk, on ? 10 : 14);
        CU_ASSERT_EQUAL(run_both(&c, &p, on ? "ppm concat in place" : "ppm concat copies"), 0);
        mc_kprogram_free(&p);
        case_close(&c);
    }
}

static bool
any_out(const KProgram *p, const Kernel *k)
{
    (void)p;
    (void)k;
    return true;
}

/* the pass itself, on lowered programs: both copies of a two-resize concat
 * go; none when the copies' out views are not channel slices (here
 * interleaved channels, stride 2: a .kir may say so) or when the target's
 * predicate refuses */
static void
test_concat_rules(void)
{
    const char *text = "graph t {\n  %x = input : f32[1,5,6,7]\n"
                       "  %a = resize_bilinear %x size=[4,4] align_corners=0 : f32[1,4,4,7]\n"
                       "  %b = resize_bilinear %x size=[4,4] align_corners=1 : f32[1,4,4,7]\n"
                       "  %cat = concat %a, %b : f32[1,4,4,14]\n  return %cat\n}\n";
    for (int variant = 0; variant < 3; variant++) {
        Case c;
        CU_ASSERT_FATAL(case_open(&c, text) == 0);
        KProgram p;
        CU_ASSERT_FATAL(mc_lower(&c.g, &c.ws, &p, &c.err) == 0);
        CU_ASSERT_EQUAL_FATAL(p.nk, 4);
        if (variant == 1)
            for (int i = 2; i < 4; i++) { /* k2, k3: the copies, now into interleaved channels */
                p.k[i].out.stride[3] = 2;
                p.k[i].out.offset = i - 2;
            }
        PassOptions o;
        memset(&o, 0, sizeof o);
        KPassCtx ctx = {&mc_llvm_target_row.desc, &o, 0};
        bool changed = mc_concat_in_place(&p, &ctx, variant == 2 ? NULL : any_out);
        CU_ASSERT_EQUAL(changed, variant == 0);
        CU_ASSERT_EQUAL(ctx.changes, variant == 0 ? 2 : 0);
        CU_ASSERT_EQUAL(p.nk, variant == 0 ? 2 : 4);
        CU_ASSERT(mc_kprogram_verify(&p, &c.err) == 0);
        mc_kprogram_free(&p);
        case_close(&c);
    }
}

/* ------------------------------------------------------------ schedules, refusals */

/* every tile_n the resize/avgpool generator takes gives the same values; a
 * step wider than 4 vectors is refused naming the kernel */
static void
test_dense_schedules(void)
{
    Case c;
    CU_ASSERT_FATAL(case_open(&c, ppm_text) == 0);
    KProgram p;
    CU_ASSERT_FATAL(llvm_program(&c, NULL, &p) == 0);
    int64_t L = p.k[0].sched.vec;
    CU_ASSERT_FATAL(L > 0);
    for (int64_t nw = 1; nw <= 4 && nw * L <= 64; nw++) {
        for (int i = 0; i < p.nk; i++)
            if (p.k[i].kind == KK_RESIZE || p.k[i].kind == KK_AVGPOOL) p.k[i].sched.tile_n = nw * L;
        char what[64];
        snprintf(what, sizeof what, "ppm tile_n=%lld", (long long)(nw * L));
        CU_ASSERT_EQUAL(run_both(&c, &p, what), 0);
    }
    p.k[1].sched.tile_n = 5 * L;
    HostTensor l;
    RunOpts o = {.threads = 1};
    CU_ASSERT(mc_backend_llvm.run_kernels(&p, &c.ws, &c.in, &l, &o, &c.err) != 0);
    CU_ASSERT(strstr(c.err.msg, "kernel k1") && strstr(c.err.msg, "tile_n="));
    mc_kprogram_free(&p);
    case_close(&c);
}

/* a kind the code generator has no generator for is refused with a
 * sentence (the pipeline names the kernel), never compiled */
static void
test_unknown_kind_refused(void)
{
    Kernel k;
    memset(&k, 0, sizeof k);
    k.kind = KK_COUNT;
    k.out.rank = 1;
    char why[300] = "";
    CU_ASSERT_EQUAL(mc_llvm_target_row.supports(NULL, &k, why, sizeof why), 0);
    CU_ASSERT(strstr(why, "no code generator") != NULL);
    k.kind = KK_RESIZE;
    k.out.rank = 4;
    k.in[0].rank = 3;
    CU_ASSERT_EQUAL(mc_llvm_target_row.supports(NULL, &k, why, sizeof why), 0);
    CU_ASSERT(strstr(why, "rank 4") != NULL);
}

/* mc_kprogram_remove: kernels and buffers go, the rest renumbered; refused
 * (nothing changed) while something kept refers to what would go */
static void
test_kprogram_remove(void)
{
    /* b0 input, b1 and b2 scratch, b3 output; k0: b0 -> b2, k1: b0 -> b1,
     * k2: b2 -> b3, k3 (inside k2): b2 -> b3; segment k1..k3 */
    static const int reads[4] = {0, 0, 2, 2}, writes[4] = {2, 1, 3, 3}, firsts[4] = {-1, 1, 0, 2};
    Buffer bufs[4];
    Kernel ks[4];
    Segment seg = {1, 4, 1, 1};
    memset(bufs, 0, sizeof bufs);
    memset(ks, 0, sizeof ks);
    for (int b = 0; b < 4; b++) {
        bufs[b].id = b;
        bufs[b].kind = b == 0 ? BUF_INPUT : b == 3 ? BUF_OUTPUT : BUF_SCRATCH;
        bufs[b].first = firsts[b];
        bufs[b].last = 3;
    }
    for (int i = 0; i < 4; i++) {
        ks[i].kind = KK_ELTWISE;
        ks[i].host = i == 3 ? 2 : -1;
        ks[i].nargs = 1;
        ks[i].args[0].buf = reads[i];
        ks[i].out.buf = writes[i];
    }
    KProgram p = {.name = "t", .bufs = bufs, .nbufs = 4, .k = ks, .nk = 4, .input_buf = 0, .noutputs = 1,
                  .segs = &seg, .nsegs = 1};
    p.output_bufs[0] = 3;
    unsigned char kdead[4] = {0, 1, 0, 0}, bdead[4] = {0, 1, 0, 0}, hostdead[4] = {0, 0, 1, 0};
    ks[2].args[0].buf = 1;
    CU_ASSERT_EQUAL(mc_kprogram_remove(&p, kdead, bdead), -1); /* k2 reads b1 */
    ks[2].args[0].buf = 2;
    CU_ASSERT_EQUAL(mc_kprogram_remove(&p, hostdead, NULL), -1); /* k3 runs inside k2 */
    CU_ASSERT_EQUAL(p.nk, 4);
    CU_ASSERT_EQUAL(p.nbufs, 4);
    CU_ASSERT_EQUAL(mc_kprogram_remove(&p, kdead, bdead), 0);
    CU_ASSERT_EQUAL(p.nk, 3);
    CU_ASSERT_EQUAL(p.nbufs, 3);
    CU_ASSERT_EQUAL(ks[0].out.buf, 1); /* b2 is b1 now */
    CU_ASSERT_EQUAL(ks[1].args[0].buf, 1);
    CU_ASSERT_EQUAL(ks[1].out.buf, 2);
    CU_ASSERT_EQUAL(ks[2].host, 1); /* k3 inside k2 is k2 inside k1 */
    CU_ASSERT_EQUAL(p.output_bufs[0], 2);
    CU_ASSERT_EQUAL(bufs[2].id, 2);
    CU_ASSERT_EQUAL(bufs[1].first, 0);
    CU_ASSERT_EQUAL(bufs[2].first, 1); /* the output: first written by k2, now k1 */
    CU_ASSERT_EQUAL(bufs[2].last, 2);
    CU_ASSERT_EQUAL(seg.k0, 1);
    CU_ASSERT_EQUAL(seg.k1, 3);
}

static const struct {
    const char *name;
    CU_TestFunc fn;
} tests[] = {
    {"resize: channels 1, 3, 17, 64, both align_corners", test_resize_channels},
    {"resize: up by 4 and 8, down, sizes of 1, batch 2", test_resize_edges},
    {"resize: add + relu epilogue, slice and permuted input", test_resize_views_epilogue},
    {"avgpool: 64x64 -> 1x1, 13x13 -> 1, 2, 3, 6, views", test_avgpool},
    {"concat-in-place: a PPM concat, with and without", test_concat_ppm},
    {"concat-in-place: the rules (slices only, the target's predicate)", test_concat_rules},
    {"resize/avgpool schedules", test_dense_schedules},
    {"a kind without a generator is refused", test_unknown_kind_refused},
    {"mc_kprogram_remove renumbers", test_kprogram_remove},
};

MC_UNIT_MAIN("llvm dense kernels", tests)
