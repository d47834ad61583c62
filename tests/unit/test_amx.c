/* tests/unit/test_amx.c -- CUnit tests of the AMX-BF16 kernels
 * (backends/llvm/llvm_amx.c), on a CPU that has AMX (skipped elsewhere).
 *
 * One linear or convolution (+ an activation) at odd shapes -- M not a
 * multiple of 16 or 32 and 1, N of 6 to 1000 (partial panels, a lone column
 * tile), K of 4 to 1030 (not multiples of 32), row blocks with several
 * 32-row blocks, panel-major grids, convolutions with stride 2, padding,
 * dilation, odd widths (partial pixel blocks), batch 2 -- compiled for this
 * machine with --precision bf16 twice: on AMX tiles, and with
 * --features -amx-tile on AVX512-BF16.  The input and the weights are
 * rounded to bf16 first, so that both match the reference backend on the
 * same values up to fp32 summation order: |y - ref| <= 2e-5 (|ref| +
 * rms(ref)) per element.  The AMX module's assembly has tdpbf16ps (and the
 * other's none): the tiles ran; its kernels probe their stack frames.
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backends/backend.h"
#include "backends/cuda/cuda.h"
#include "backends/llvm/llvm.h"
#include "passes/pipeline.h"
#include "runtime/mc_cpu.h"
#include "unit_llvm.h"

/* to bf16 and back, round to nearest even (the values here are finite) */
static float
bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static float *
bf16_vec(int64_t n, double lo, double hi)
{
    float *v = rand_vec(n, lo, hi);
    for (int64_t i = 0; i < n; i++) v[i] = bf16(v[i]);
    return v;
}

typedef struct Net {
    Graph g;
    WeightStore ws;
    HostTensor in;
    McErr err;
} Net;

/* a graph with input x [B,H,W,C] (bf16 values) */
static int
net_init(Net *n, int B, int H, int W, int C)
{
    memset(n, 0, sizeof *n);
    mc_graph_init(&n->g, "amx");
    mc_weights_init(&n->ws);
    Shape s = S4(B, H, W, C);
    n->in.shape = s;
    n->in.data = bf16_vec(mc_shape_numel(&s), -1, 1);
    return mc_graph_input(&n->g, "x", DT_F32, &s, &n->err);
}

/* a weight of shape s; bf16 values unless `exact` (biases stay fp32) */
static int
net_weight(Net *n, const char *name, Shape s, double scale, int exact)
{
    int64_t k = mc_shape_numel(&s);
    mc_weights_put(&n->ws, name, DT_F32, DT_F32, &s, exact ? rand_vec(k, -scale, scale) : bf16_vec(k, -scale, scale));
    return mc_graph_weight(&n->g, name, DT_F32, &s, &n->err);
}

static int
net_op(Net *n, OpKind op, const int *in, int nin, const Attrs *a)
{
    Attrs d = mc_attrs_default();
    int id = mc_graph_add(&n->g, op, in, nin, a ? a : &d, NULL, &n->err);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

/* kernel program of n for this machine at --precision bf16, with
 * --features f (NULL: the host's); every GEMM and conv must be bf16 */
static int
net_program(Net *n, const char *f, KProgram *p)
{
    McTarget row = mc_llvm_target_row;
    row.desc.precision = MC_CUDA_BF16;
    row.desc.features = f;
    if (mc_pipeline_run(&n->g, &n->ws, &row, NULL, p, &n->err)) return -1;
    for (int i = 0; i < p->nk; i++)
        if (p->k[i].kind == KK_GEMM || p->k[i].kind == KK_CONV) CU_ASSERT(p->k[i].sched.bf16 == 1);
    return 0;
}

/* p compiled for this machine with features f (NULL: the host's), run on
 * n's input into out; whether its assembly has tdpbf16ps in *amx */
static int
net_run(Net *n, const KProgram *p, const char *f, float *out, int *amx)
{
    McErr err;
    McLlvmTarget *tg = mc_llvm_target_create(NULL, NULL, f, &err);
    McLlvmModule *m = tg ? mc_llvm_codegen(p, tg, &err) : NULL;
    uint8_t *as = NULL;
    size_t na = 0;
    if (m && !mc_llvm_emit_mem(m, MC_EMIT_ASM, &as, &na, &err)) {
        char *s = calloc(1, na + 1);
        memcpy(s, as, na);
        *amx = strstr(s, "tdpbf16ps") != NULL;
        free(s);
    }
    if (m && *amx == 1) { /* the AMX kernels probe their stack frame (the A copy) */
        uint8_t *ir = NULL;
        size_t ni = 0;
        CU_ASSERT(mc_llvm_emit_mem(m, MC_EMIT_IR, &ir, &ni, &err) == 0);
        char *s = calloc(1, ni + 1);
        if (ir) memcpy(s, ir, ni);
        CU_ASSERT(strstr(s, "\"probe-stack\"=\"inline-asm\"") != NULL);
        free(s);
        free(ir);
    }
    int rc = unit_llvm_run(m, p, &n->ws, tg, n->in.data, &out, &err);
    if (rc) fprintf(stderr, "amx: %s\n", err.msg);
    free(as);
    mc_llvm_module_free(m);
    mc_llvm_target_free(tg);
    return rc;
}

/* elements of y off the reference r by more than 2e-5 (|r| + rms(r)) */
static int
count_bad(const float *y, const float *r, int64_t k, const char *what)
{
    double ss = 0, worst = 0;
    for (int64_t i = 0; i < k; i++) ss += (double)r[i] * r[i];
    double rms = sqrt(ss / (double)(k ? k : 1));
    int bad = 0;
    for (int64_t i = 0; i < k; i++) {
        double e = fabs((double)y[i] - r[i]), tol = 2e-5 * (fabs(r[i]) + rms);
        if (e / (fabs(r[i]) + rms) > worst) worst = e / (fabs(r[i]) + rms);
        if (!(e <= tol) && bad++ < 5) fprintf(stderr, "%s[%lld]: %.9g, reference %.9g\n", what, (long long)i, y[i], r[i]);
    }
    if (getenv("MC_TEST_VERBOSE")) fprintf(stderr, "%s: %lld elements, worst %.3g\n", what, (long long)k, worst);
    return bad;
}

/* output `out` of n: the reference, then AMX and AVX512-BF16 against it */
static void
net_check(Net *n, int out, const char *what)
{
    mc_graph_add_output(&n->g, out);
    CU_ASSERT_FATAL(mc_graph_verify(&n->g, &n->err) == 0);
    HostTensor r;
    RunOpts o = {.threads = 2, .verbose = 0};
    CU_ASSERT_FATAL(mc_backend_ref.run_graph(&n->g, &n->ws, &n->in, 1, &r, 1, &o, &n->err) == 0);
    int64_t k = mc_shape_numel(&r.shape);
    static const char *const feats[2] = {NULL, "-amx-tile"};
    for (int v = 0; v < 2; v++) {
        KProgram p;
        CU_ASSERT_FATAL(net_program(n, feats[v], &p) == 0);
        float *y = malloc((size_t)k * sizeof *y);
        int amx = -1;
        char label[160];
        snprintf(label, sizeof label, "%s (%s)", what, v ? "avx512bf16" : "amx");
        CU_ASSERT(net_run(n, &p, feats[v], y, &amx) == 0);
        CU_ASSERT_EQUAL(amx, !v);
        CU_ASSERT_EQUAL(count_bad(y, r.data, k, label), 0);
        free(y);
        mc_kprogram_free(&p);
    }
    free(r.data);
    mc_graph_free(&n->g);
    mc_weights_free(&n->ws);
    free(n->in.data);
}

/* x [B,H,W,K] -> linear to N (+ bias) -> gelu */
static void
linear_case(int B, int H, int W, int K, int N, int bias)
{
    Net n;
    int x = net_init(&n, B, H, W, K);
    int in[3] = {x, net_weight(&n, "fc.weight", S2(N, K), 0.5, 0), 0};
    if (bias) in[2] = net_weight(&n, "fc.bias", S1(N), 1, 1);
    int y = net_op(&n, OP_LINEAR, in, bias ? 3 : 2, NULL);
    y = net_op(&n, OP_GELU, &y, 1, NULL);
    char what[96];
    snprintf(what, sizeof what, "linear %dx%dx%d K %d N %d", B, H, W, K, N);
    net_check(&n, y, what);
}

static void
test_gemm(void)
{
    linear_case(1, 7, 7, 64, 256, 1);   /* M 49: two 32-row blocks, the second of 17 rows */
    linear_case(1, 1, 1, 512, 1000, 1); /* M 1: the head; N 1000, a partial panel of 3 column tiles */
    linear_case(2, 5, 7, 37, 45, 1);    /* K 37 (kpad 64), N 45 */
    linear_case(1, 3, 11, 4, 70, 0);    /* K 4, N 70 (a lone 6-column tile) */
    linear_case(1, 14, 14, 128, 6, 1);  /* N 6 */
    linear_case(1, 28, 28, 130, 100, 1); /* several row blocks and panels */
    linear_case(1, 2, 9, 1030, 130, 0); /* long K, panel-major */
    linear_case(1, 16, 16, 128, 32, 1); /* N 32: panels of two vectors, row blocks of 16 rows */
}

/* x [B,H,W,Ci] -> conv k x k (stride s, pad, dilation d) to Co (+ bias) -> relu */
static void
conv_case(int B, int H, int W, int Ci, int Co, int k, int s, int pad, int d)
{
    Net n;
    int x = net_init(&n, B, H, W, Ci);
    int in[3] = {x, net_weight(&n, "conv.weight", S4(Co, Ci, k, k), 0.3, 0), net_weight(&n, "conv.bias", S1(Co), 0.5, 1)};
    Attrs a = mc_attrs_default();
    a.stride[0] = a.stride[1] = s;
    a.pad[0] = a.pad[1] = pad;
    a.dil[0] = a.dil[1] = d;
    a.groups = 1;
    int y = net_op(&n, OP_CONV2D, in, 3, &a);
    y = net_op(&n, OP_RELU, &y, 1, NULL);
    char what[96];
    snprintf(what, sizeof what, "conv %dx%dx%d ci %d co %d k%d s%d p%d d%d", B, H, W, Ci, Co, k, s, pad, d);
    net_check(&n, y, what);
}

static void
test_conv(void)
{
    conv_case(1, 24, 24, 32, 32, 3, 1, 1, 1); /* the stem's 3x3 */
    conv_case(2, 13, 37, 16, 70, 3, 2, 1, 1); /* stride 2, odd width, batch 2, Co 70 */
    conv_case(1, 9, 40, 33, 20, 3, 1, 2, 2);  /* Ci 33 (kpad 64), dilation 2 */
    conv_case(1, 6, 5, 48, 24, 1, 2, 0, 1);   /* 1x1 stride 2 */
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"AMX GEMM vs reference (and AVX512-BF16)", test_gemm},
    {"AMX convolution vs reference (and AVX512-BF16)", test_conv},
};

int
main(void)
{
    char miss[128];
    if (mc_cpu_missing(mc_cpu_arch(), "amx-tile,amx-bf16,avx512bf16", miss, sizeof miss) || mc_rt_amx_enable()) {
        printf("test_amx: skipped (this CPU or OS has no AMX-BF16: %s)\n", miss[0] ? miss : mc_rt_amx_enable());
        return 0;
    }
    uint64_t seed = (uint64_t)time(NULL);
    if (getenv("MC_TEST_SEED")) seed = strtoull(getenv("MC_TEST_SEED"), NULL, 10);
    rng_state = seed;
    printf("test_amx: seed %llu (MC_TEST_SEED=%llu to repeat)\n", (unsigned long long)seed, (unsigned long long)seed);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("amx", NULL, NULL);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) CU_add_test(s, tests[i].name, tests[i].fn);
    return mc_unit_finish();
}
