/* tests/unit/test_kexec.c -- CUnit tests of the reference executor of the
 * kernel IR (backends/ref/ref_kexec.h).
 *
 * Its output is compared with the graph interpreter's (mc_backend_ref, what
 * `mambac run --backend ref` runs, on the graph before any pass) on
 * Spatial-Mamba configs at odd shapes: a small config (embed 16, one block a
 * stage) at 33x47, at batch 3 through the LLVM row (a per-image segment),
 * at 32x32 (the last stage 1x1) with the folding passes disabled (eltwise
 * kernels over weights, batchnorm epilogues with sqrt and div, the state
 * fusion legalized by lowering), tiny at 64x48, and UperNet on the small
 * config at 2x45x37 and 1x33x40 (concat copies kept); every kernel kind of
 * kernels.def must occur among them.  Relative L2 error <= 1e-5.  Also: a
 * hand-built graph reading a permuted, sliced view and a stride-0 broadcast;
 * the per-image schedule computes what the batched program does; a program
 * printed and parsed back runs to the same bits; the hook sees every kernel
 * before and after it runs and stops the run with its value.  For verify's
 * LLVM side (backends/llvm/llvm_verify.h): its module's kernel functions
 * are IR-identical to a normal compile's, and its kernels run one at a time
 * (a segment's per image) compute the program's output.
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backends/backend.h"
#include "backends/llvm/llvm.h"
#include "backends/llvm/llvm_internal.h"
#include "backends/llvm/llvm_verify.h"
#include "backends/ref/ref_kexec.h"
#include "frontend/frontend.h"
#include "frontend/weights.h"
#include "ir/weights_blob.h"
#include "passes/lower.h"
#include "passes/pipeline.h"
#include "runtime/mc_rt.h"

static const char *small_cfg =
    "MODEL:\n"
    "  TYPE: spatial_mamba\n"
    "  NUM_CLASSES: 10\n"
    "  SPATIALMAMBA:\n"
    "    EMBED_DIM: 16\n"
    "    DEPTHS: [1, 1, 1, 1]\n"
    "    MLP_RATIO: 2.0\n"
    "    D_STATE: 1\n";

/* UperNet on it (resize, avgpool, concat), at the odd size of each call */
static const char *seg_cfg =
    "MODEL:\n"
    "  TYPE: spatial_mamba\n"
    "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 1, 1], MLP_RATIO: 2.0, D_STATE: 1}\n"
    "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
    "  DECODE_HEAD: {CHANNELS: 16, POOL_SCALES: [1, 2, 3, 6], NUM_CLASSES: 5}\n";

static int kinds_seen[KK_COUNT];

static double
rel_l2(const float *a, const float *r, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - r[i]) * ((double)a[i] - r[i]);
        s += (double)r[i] * r[i];
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

/* The program's output for input x through the executor (malloc'd). */
static float *
kexec_output(const KProgram *p, const WeightStore *ws, const float *x)
{
    McErr err;
    uint8_t *blob = mc_weights_blob(p, ws, NULL, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blob);
    float *y = malloc((size_t)p->bufs[p->output_bufs[0]].bytes);
    int rc = mc_ref_kexec_run(p, blob, x, &y, NULL, NULL, &err);
    if (rc) fprintf(stderr, "kexec: %s\n", err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    free(blob);
    return y;
}

/* A model from config text at B x H x W: interpreter vs executor. */
static void
model_case(const char *cfg_text, const char *cfg_path, int B, int H, int W, const McTarget *t, const char *disable)
{
    ModelConfig cfg;
    McErr err;
    Graph g;
    WeightStore ws;
    KProgram p;
    size_t len = 0;
    char *text = NULL;
    if (cfg_path) {
        FILE *f = fopen(cfg_path, "rb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        text = calloc(1, 1 << 16);
        len = fread(text, 1, (1 << 16) - 1, f);
        fclose(f);
        cfg_text = text;
    } else {
        len = strlen(cfg_text);
    }
    CU_ASSERT_EQUAL_FATAL(mc_config_load_mem(cfg_text, len, "m.yaml", &cfg, &err), 0);
    free(text);
    memset(&g, 0, sizeof g);
    CU_ASSERT_EQUAL_FATAL(mc_model_build(&cfg, B, H, W, &g, &err), 0);
    mc_weights_init(&ws);
    mc_weights_random(&g, &ws, 7);
    int64_t nx = (int64_t)B * cfg.in_chans * H * W;
    rng_seed(11);
    float *x = rand_vec(nx, -1, 1);
    HostTensor in = {S4(B, cfg.in_chans, H, W), x}, out;
    RunOpts ro = {2, 0};
    CU_ASSERT_EQUAL_FATAL(mc_backend_ref.run_graph(&g, &ws, &in, 1, &out, 1, &ro, &err), 0);

    PassOptions po;
    memset(&po, 0, sizeof po);
    po.out = stdout;
    char dis[256];
    snprintf(dis, sizeof dis, "%s", disable ? disable : "");
    for (char *s = strtok(dis, ","); s; s = strtok(NULL, ",")) po.disable[po.n_disable++] = s;
    int rc = mc_pipeline_run(&g, &ws, t, &po, &p, &err);
    if (rc) fprintf(stderr, "pipeline: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int k = 0; k < p.nk; k++) kinds_seen[p.k[k].kind]++;
    float *y = kexec_output(&p, &ws, x);
    double e = rel_l2(y, out.data, mc_shape_numel(&out.shape));
    fprintf(stderr, "  %s %dx%dx%d%s%s: %d kernels, %d segments, rel L2 %.2e\n", cfg_path ? "tiny" : cfg_text == seg_cfg ? "upernet" : "small", B, H, W,
            disable ? " without " : "", disable ? disable : "", p.nk, p.nsegs, e);
    CU_ASSERT(e <= 1e-5);
    CU_ASSERT_EQUAL((int64_t)p.bufs[p.output_bufs[0]].bytes, mc_shape_numel(&out.shape) * 4);
    free(y);
    free(out.data);
    free(x);
    mc_kprogram_free(&p);
    mc_weights_free(&ws);
    mc_graph_free(&g);
}

static void
test_models(void)
{
    memset(kinds_seen, 0, sizeof kinds_seen);
    model_case(small_cfg, NULL, 1, 33, 47, &mc_llvm_target_row, NULL);
    model_case(small_cfg, NULL, 3, 35, 33, &mc_llvm_target_row, NULL);
    model_case(small_cfg, NULL, 1, 32, 32, NULL, "fold-batchnorm,fold-constants,fold-state-fusion");
    model_case(NULL, MC_SOURCE_DIR "/examples/spatialmamba_tiny.yaml", 1, 64, 48, &mc_llvm_target_row, NULL);
    model_case(seg_cfg, NULL, 2, 45, 37, &mc_llvm_target_row, NULL);
    model_case(seg_cfg, NULL, 1, 33, 40, &mc_llvm_target_row, "concat-in-place");
    for (int k = 0; k < KK_COUNT; k++) {
        if (!kinds_seen[k]) fprintf(stderr, "kind %s never ran\n", mc_kernel_kind_name((KernelKind)k));
        CU_ASSERT(kinds_seen[k] > 0);
    }
}

/* A small program of the small config at batch B through target t's pipeline. */
static void
small_program_for(int B, const McTarget *t, Graph *g, WeightStore *ws, KProgram *p, float **x)
{
    ModelConfig cfg;
    McErr err;
    CU_ASSERT_EQUAL_FATAL(mc_config_load_mem(small_cfg, strlen(small_cfg), "m.yaml", &cfg, &err), 0);
    memset(g, 0, sizeof *g);
    CU_ASSERT_EQUAL_FATAL(mc_model_build(&cfg, B, 37, 41, g, &err), 0);
    mc_weights_init(ws);
    mc_weights_random(g, ws, 3);
    PassOptions po;
    memset(&po, 0, sizeof po);
    CU_ASSERT_EQUAL_FATAL(mc_pipeline_run(g, ws, t, &po, p, &err), 0);
    rng_seed(5);
    *x = rand_vec(p->bufs[p->input_buf].bytes / 4, -1, 1);
}

/* ... planned, no target */
static void
small_program(int B, Graph *g, WeightStore *ws, KProgram *p, float **x)
{
    small_program_for(B, NULL, g, ws, p, x);
}

static void
test_segments(void)
{
    Graph g;
    WeightStore ws;
    KProgram p, s;
    float *x;
    small_program(3, &g, &ws, &p, &x);
    CU_ASSERT_EQUAL_FATAL(mc_kprogram_copy(&p, &s), 0);
    CU_ASSERT(mc_kprogram_schedule_images(&s, -1) > 0);
    mc_memplan(&s);
    CU_ASSERT_EQUAL(s.nsegs, 1);
    float *yb = kexec_output(&p, &ws, x), *ys = kexec_output(&s, &ws, x);
    double e = rel_l2(ys, yb, p.bufs[p.output_bufs[0]].bytes / 4);
    fprintf(stderr, "  per-image k%d..k%d x%lld vs batched: rel L2 %.2e\n", s.segs[0].k0, s.segs[0].k1 - 1,
            (long long)s.segs[0].images, e);
    CU_ASSERT(e <= 1e-6);
    free(yb);
    free(ys);
    free(x);
    mc_kprogram_free(&s);
    mc_kprogram_free(&p);
    mc_weights_free(&ws);
    mc_graph_free(&g);
}

static void
test_text_roundtrip(void)
{
    Graph g;
    WeightStore ws;
    KProgram p, q;
    McErr err;
    float *x;
    small_program(2, &g, &ws, &p, &x);
    CU_ASSERT(mc_kprogram_schedule_images(&p, 20) > 0); /* a segment in the text too */
    mc_memplan(&p);
    char *text = mc_kprogram_print_str(&p);
    CU_ASSERT_EQUAL_FATAL(mc_kprogram_parse(&q, text, strlen(text), "p.kir", &err), 0);
    CU_ASSERT_EQUAL_FATAL(mc_kprogram_verify(&q, &err), 0);
    float *a = kexec_output(&p, &ws, x), *b = kexec_output(&q, &ws, x);
    CU_ASSERT_EQUAL(memcmp(a, b, (size_t)p.bufs[p.output_bufs[0]].bytes), 0);
    free(a);
    free(b);
    free(text);
    free(x);
    mc_kprogram_free(&q);
    mc_kprogram_free(&p);
    mc_weights_free(&ws);
    mc_graph_free(&g);
}

/* x[2,6,5,7] -> permute NHWC -> channels 1..4 -> * w[4] (broadcast) ->
 * gelu, + x's NHWC view channel 0..3 (another view of the same buffer). */
static void
test_views(void)
{
    Graph g;
    WeightStore ws;
    KProgram p;
    McErr err;
    mc_graph_init(&g, "views");
    mc_weights_init(&ws);
    Shape xs = S4(2, 6, 5, 7), wsh = S1(4);
    int x = mc_graph_input(&g, "x", DT_F32, &xs, &err);
    int w = mc_graph_weight(&g, "w", DT_F32, &wsh, &err);
    rng_seed(9);
    mc_weights_put(&ws, "w", DT_F32, DT_F32, &wsh, rand_vec(4, -2, 2));
    Attrs a = mc_attrs_default();
    int perm[4] = {0, 2, 3, 1};
    memcpy(a.perm, perm, sizeof perm);
    int t = mc_graph_add(&g, OP_PERMUTE, (int[]){x}, 1, &a, NULL, &err);
    Attrs s1 = mc_attrs_default(), s0 = mc_attrs_default(), d = mc_attrs_default();
    s1.start = 1;
    s1.len = 4;
    s0.start = 0;
    s0.len = 4;
    int u = mc_graph_add(&g, OP_SLICE, (int[]){t}, 1, &s1, NULL, &err);
    int v = mc_graph_add(&g, OP_SLICE, (int[]){t}, 1, &s0, NULL, &err);
    int m = mc_graph_add(&g, OP_MUL, (int[]){u, w}, 2, &d, NULL, &err);
    int ge = mc_graph_add(&g, OP_GELU, (int[]){m}, 1, &d, NULL, &err);
    int y = mc_graph_add(&g, OP_ADD, (int[]){ge, v}, 2, &d, NULL, &err);
    CU_ASSERT_FATAL(y >= 0);
    mc_graph_add_output(&g, y);
    CU_ASSERT_EQUAL_FATAL(mc_graph_verify(&g, &err), 0);
    float *xd = rand_vec(mc_shape_numel(&xs), -1, 1);
    HostTensor in = {xs, xd}, out;
    RunOpts ro = {1, 0};
    CU_ASSERT_EQUAL_FATAL(mc_backend_ref.run_graph(&g, &ws, &in, 1, &out, 1, &ro, &err), 0);
    PassOptions po;
    memset(&po, 0, sizeof po);
    CU_ASSERT_EQUAL_FATAL(mc_pipeline_run(&g, &ws, NULL, &po, &p, &err), 0);
    int strided = 0, broadcast = 0;
    for (int k = 0; k < p.nk; k++)
        for (int j = 0; j < p.k[k].nargs; j++) {
            const View *av = &p.k[k].args[j];
            strided |= av->offset > 0 && av->stride[av->rank - 1] > 1;
            for (int d = 0; d < av->rank; d++) broadcast |= av->stride[d] == 0;
        }
    CU_ASSERT(strided && broadcast);
    float *yk = kexec_output(&p, &ws, xd);
    double e = rel_l2(yk, out.data, mc_shape_numel(&out.shape));
    CU_ASSERT(e <= 1e-6);
    free(yk);
    free(out.data);
    free(xd);
    mc_kprogram_free(&p);
    mc_weights_free(&ws);
    mc_graph_free(&g);
}

typedef struct HookLog {
    int before, after, stop_at;
    int order_ok;
    int last;
} HookLog;

static int
log_hook(void *user, int k, int64_t image, McKexecPhase phase, float *const *bufs)
{
    HookLog *h = user;
    (void)image;
    (void)bufs;
    if (phase == MC_KEXEC_BEFORE) {
        h->order_ok &= k == h->last + 1 || k <= h->last; /* next kernel, or a segment's next image */
        h->before++;
        return 0;
    }
    h->order_ok &= k == h->last + 1 || k <= h->last;
    h->last = k;
    h->after++;
    return k == h->stop_at ? 7 : 0;
}

static void
test_hook(void)
{
    Graph g;
    WeightStore ws;
    KProgram p;
    McErr err;
    float *x;
    small_program(1, &g, &ws, &p, &x);
    uint8_t *blob = mc_weights_blob(&p, &ws, NULL, NULL, &err);
    float *y = malloc((size_t)p.bufs[p.output_bufs[0]].bytes);
    HookLog h = {0, 0, -1, 1, -1};
    CU_ASSERT_EQUAL(mc_ref_kexec_run(&p, blob, x, &y, log_hook, &h, &err), 0);
    CU_ASSERT_EQUAL(h.before, p.nk);
    CU_ASSERT_EQUAL(h.after, p.nk);
    CU_ASSERT(h.order_ok);
    HookLog s = {0, 0, 3, 1, -1};
    CU_ASSERT_EQUAL(mc_ref_kexec_run(&p, blob, x, &y, log_hook, &s, &err), 7);
    CU_ASSERT_EQUAL(s.before, 4);
    CU_ASSERT_EQUAL(s.after, 4);
    free(blob);
    free(y);
    free(x);
    mc_kprogram_free(&p);
    mc_weights_free(&ws);
    mc_graph_free(&g);
}

/* verify's LLVM module has the very kernel functions of a normal compile,
 * and its kernels run one by one (segments per image) compute the program */
static void
test_llvm_kernels(void)
{
    for (int B = 1; B <= 3; B += 2) {
        Graph g;
        WeightStore ws;
        KProgram p;
        McErr err;
        float *x;
        small_program_for(B, &mc_llvm_target_row, &g, &ws, &p, &x);
        CU_ASSERT_EQUAL(p.nsegs, B > 1);
        McLlvmTarget *t = mc_llvm_target_create(NULL, NULL, NULL, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        McLlvmModule *a = mc_llvm_codegen(&p, t, &err), *b = mc_llvm_kernels_module(&p, t, &err);
        CU_ASSERT_FATAL(a && b);
        /* shared code: kernels equal but for their buffers have one function
         * (the first of the class); the same ones in both modules */
        int same = 0, fns = 0, fnsb = 0;
        for (int i = 0; i < p.nk; i++) {
            char name[32];
            snprintf(name, sizeof name, "mc_k%d", i);
            LLVMValueRef fa = LLVMGetNamedFunction(a->mod, name), fb = LLVMGetNamedFunction(b->mod, name);
            char *sa = fa ? LLVMPrintValueToString(fa) : NULL, *sb = fb ? LLVMPrintValueToString(fb) : NULL;
            fns += fa != NULL;
            fnsb += fb != NULL;
            same += sa && sb && !strcmp(sa, sb);
            LLVMDisposeMessage(sa);
            LLVMDisposeMessage(sb);
        }
        fprintf(stderr, "  batch %d: %d of %d kernel functions identical (%d kernels)\n", B, same, fns, p.nk);
        CU_ASSERT(fns > 0 && fns < p.nk); /* small repeats its blocks */
        CU_ASSERT_EQUAL(fnsb, fns);
        CU_ASSERT_EQUAL(same, fns);
        mc_llvm_module_free(a);
        mc_llvm_module_free(b);
        mc_llvm_target_free(t);

        McLlvmKernels *lk = mc_llvm_kernels_create(&p, &ws, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(lk);
        void *arena = mc_rt_alloc_aligned((size_t)p.scratch_bytes + 64, 64);
        float *y = malloc((size_t)p.bufs[p.output_bufs[0]].bytes);
        for (int i = 0; i < p.nk;) {
            int s = mc_kprogram_segment_of(&p, i), k1 = s >= 0 ? p.segs[s].k1 : i + 1;
            for (int64_t img = 0; img < (s >= 0 ? p.segs[s].images : 1); img++)
                for (int k = i; k < k1; k++) mc_llvm_kernels_run(lk, k, img, arena, x, &y, 1);
            i = k1;
        }
        float *r = kexec_output(&p, &ws, x);
        double e = rel_l2(y, r, p.bufs[p.output_bufs[0]].bytes / 4);
        CU_ASSERT(e <= 1e-5);
        free(r);
        free(y);
        mc_rt_free_aligned(arena);
        mc_llvm_kernels_free(lk);
        free(x);
        mc_kprogram_free(&p);
        mc_weights_free(&ws);
        mc_graph_free(&g);
    }
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"models match the graph interpreter", test_models},
    {"per-image segments", test_segments},
    {"parsed text runs the same", test_text_roundtrip},
    {"views: permute, slices, broadcast", test_views},
    {"the hook", test_hook},
    {"llvm: the same kernels, one at a time", test_llvm_kernels},
};

MC_UNIT_MAIN("kexec", tests)
