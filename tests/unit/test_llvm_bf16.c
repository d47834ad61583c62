/* tests/unit/test_llvm_bf16.c -- CUnit tests of --precision bf16 on the
 * LLVM backend (llvm_gemm.c, the packing in llvm_codegen.c).
 *
 * - mc_llvm_bf16_round: ties to even (both parities), a carry into the
 *   exponent, the largest floats to infinity, infinities, NaNs (quiet, never
 *   an infinity), signed zeros, subnormals; on a CPU with AVX512-BF16 the
 *   same bits as vcvtneps2bf16 for a million random normal floats.
 * - The tile pass at precision bf16 sets bf16=1 on the GEMMs and convs
 *   (and nowhere else); the blob holds every GEMM/conv weight rounded at the
 *   documented VNNI-pair index (GEMM [N/pnr][kpad/2][pnr][2], conv
 *   [Co/pnr][kh*kw][kpad/2][pnr][2]) and zeros in all the padding, for
 *   sapphirerapids (any x86-64 host).
 * - On a host with AVX512-BF16, compiled for cooperlake (AVX512-BF16, no
 *   AMX: the vdpbf16ps kernels), GEMMs and convolutions at odd shapes (K and
 *   Ci odd, partial panels, remainder row tiles, several row blocks, panel-
 *   major order, stride, dilation, padding, batch 2, the stem's permuted
 *   NCHW input): with inputs and weights that are bf16 numbers already the
 *   results equal the fp32 reference backend's to 1e-5 (the products are
 *   exact, the sums fp32); with other inputs a linear layer equals a double
 *   sum of round(x) * round(w) (activations rounded to nearest even), not
 *   the unrounded one.
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backends/backend.h"
#include "backends/cuda/cuda.h"
#include "backends/llvm/llvm_internal.h"
#include "runtime/mc_cpu.h"
#include "unit_llvm.h"

static float
bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float
bf16_value(uint16_t h)
{
    return bits_float((uint32_t)h << 16);
}

static float
rounded(float x)
{
    return bf16_value(mc_llvm_bf16_round(x));
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx512f,avx512bf16"))) static void
hw_round16(const float *x, uint16_t *out)
{
    __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x));
    memcpy(out, &h, 32);
}
#endif

static void
test_round(void)
{
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1 */
        {0x3f808000u, 0x3f80}, /* halfway, even below: down */
        {0x3f818000u, 0x3f82}, /* halfway, odd below: up */
        {0x3f808001u, 0x3f81}, /* above halfway */
        {0x3f807fffu, 0x3f80}, /* below halfway */
        {0xbf818000u, 0xbf82}, /* negative */
        {0x3fffc000u, 0x4000}, /* carry into the exponent */
        {0x7f7fffffu, 0x7f80}, /* the largest float: infinity */
        {0x7f7f7fffu, 0x7f7f}, /* the largest bf16 stays */
        {0x7f800000u, 0x7f80}, /* +inf */
        {0xff800000u, 0xff80}, /* -inf */
        {0x00000000u, 0x0000}, /* +0 */
        {0x80000000u, 0x8000}, /* -0 */
        {0x00018000u, 0x0002}, /* subnormal, halfway, odd below: up */
        {0x00008000u, 0x0000}, /* the smallest tie: down to 0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = mc_llvm_bf16_round(bits_float(cases[i].in));
        if (h != cases[i].out) fprintf(stderr, "round(0x%08x) = 0x%04x, want 0x%04x\n", cases[i].in, h, cases[i].out);
        CU_ASSERT_EQUAL(h, cases[i].out);
    }
    static const uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0x7f80ffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t h = mc_llvm_bf16_round(bits_float(nans[i]));
        CU_ASSERT((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0 && (h & 0x40)); /* a quiet NaN */
        CU_ASSERT_EQUAL(h >> 15, nans[i] >> 31);
    }
#if defined(__x86_64__)
    if (mc_cpu_missing("x86_64", "avx512f,avx512bf16", (char[8]){0}, 8)) {
        printf("(no AVX512-BF16 here: the comparison with vcvtneps2bf16 is skipped) ");
        return;
    }
    int bad = 0;
    float x[16];
    uint16_t hw[16];
    for (int i = 0; i < (1 << 20) / 16; i++) {
        for (int j = 0; j < 16; j++) { /* normal numbers of every exponent, both signs */
            uint32_t u = (uint32_t)(rng_uniform(0, 4294967296.0));
            uint32_t e = (u >> 23) & 0xff;
            if (e == 0 || e == 0xff) u ^= 0x40000000u;
            x[j] = bits_float(u);
        }
        hw_round16(x, hw);
        for (int j = 0; j < 16; j++)
            if (hw[j] != mc_llvm_bf16_round(x[j]) && bad++ < 5)
                fprintf(stderr, "round(%a) = 0x%04x, vcvtneps2bf16 0x%04x\n", (double)x[j], mc_llvm_bf16_round(x[j]), hw[j]);
    }
    CU_ASSERT_EQUAL(bad, 0);
#endif
}

/* ------------------------------------------------------------ programs */

typedef struct TG {
    Graph g;
    WeightStore ws;
    HostTensor in;
    McErr err;
} TG;

static void
tg_init(TG *t, Shape in)
{
    memset(t, 0, sizeof *t);
    mc_graph_init(&t->g, "t");
    mc_weights_init(&t->ws);
    CU_ASSERT_FATAL(mc_graph_input(&t->g, "x", DT_F32, &in, &t->err) == 0);
    t->in.shape = in;
    t->in.data = rand_vec(mc_shape_numel(&in), -1, 1);
}

static void
tg_free(TG *t)
{
    mc_graph_free(&t->g);
    mc_weights_free(&t->ws);
    free(t->in.data);
}

static int
tg_weight(TG *t, const char *name, Shape s)
{
    int id = mc_graph_weight(&t->g, name, DT_F32, &s, &t->err);
    CU_ASSERT_FATAL(id >= 0);
    mc_weights_put(&t->ws, name, DT_F32, DT_F32, &s, rand_vec(mc_shape_numel(&s), -0.5, 0.5));
    return id;
}

static int
tg_op(TG *t, OpKind op, const int *in, int nin, const Attrs *a)
{
    Attrs d = mc_attrs_default();
    int id = mc_graph_add(&t->g, op, in, nin, a ? a : &d, NULL, &t->err);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

/* y = linear(x, w, b) on x [B,H,W,K] */
static int
tg_linear(TG *t, int x, int K, int N)
{
    int w = tg_weight(t, "fc.weight", S2(N, K)), b = tg_weight(t, "fc.bias", S1(N));
    return tg_op(t, OP_LINEAR, (int[]){x, w, b}, 3, NULL);
}

static int
tg_conv(TG *t, int x, int Ci, int Co, int k, int s, int pad, int dil)
{
    int w = tg_weight(t, "conv.weight", S4(Co, Ci, k, k)), b = tg_weight(t, "conv.bias", S1(Co));
    Attrs a = mc_attrs_default();
    a.stride[0] = a.stride[1] = s;
    a.pad[0] = a.pad[1] = pad;
    a.dil[0] = a.dil[1] = dil;
    return tg_op(t, OP_CONV2D, (int[]){x, w, b}, 3, &a);
}

/* the LLVM pipeline at precision bf16 for `cpu` (NULL: this machine) on
 * t's graph with output y; the number of bf16 kernels in *nbf (every one a
 * GEMM or conv) */
static int
bf16_program(TG *t, int y, const char *cpu, KProgram *p, int *nbf)
{
    mc_graph_add_output(&t->g, y);
    McTarget tr = mc_llvm_target_row;
    tr.desc.precision = MC_CUDA_BF16;
    tr.desc.cpu = cpu;
    if (mc_pipeline_run(&t->g, &t->ws, &tr, NULL, p, &t->err)) {
        fprintf(stderr, "pipeline: %s\n", t->err.msg);
        return -1;
    }
    *nbf = 0;
    for (int i = 0; i < p->nk; i++) {
        CU_ASSERT(!p->k[i].sched.bf16 || p->k[i].kind == KK_GEMM || p->k[i].kind == KK_CONV);
        *nbf += p->k[i].sched.bf16 == 1;
    }
    return 0;
}

/* ------------------------------------------------------------ packing */

/* every bf16 element of kernel k's packed weights (nz of them) against
 * the layout: weight (n, k) of tap tap rounded, zeros in the padding */
static int
check_panels(const KProgram *p, const Kernel *k, const KPlan *kp, const WeightStore *ws, const uint16_t *pk)
{
    const View *w = &k->in[1];
    const WTensor *src = mc_weights_find(ws, p->bufs[w->buf].name);
    CU_ASSERT_FATAL(src != NULL);
    const float *wd = (const float *)src->data + w->offset;
    int conv = k->kind == KK_CONV;
    int64_t N = w->shape[0], K = w->shape[1], T = conv ? w->shape[2] * w->shape[3] : 1;
    int64_t kw = conv ? w->shape[3] : 1, pnr = kp->pnr, half = kp->kpad / 2, bad = 0;
    int64_t npan = (N + pnr - 1) / pnr;
    CU_ASSERT_EQUAL(kp->kpad % MC_LLVM_BF16_KPAD, 0);
    CU_ASSERT(kp->kpad >= K && kp->kpad < K + MC_LLVM_BF16_KPAD);
    CU_ASSERT_EQUAL(kp->pack_bytes, npan * T * kp->kpad * pnr * 2);
    for (int64_t n = 0; n < npan * pnr; n++)
        for (int64_t tap = 0; tap < T; tap++)
            for (int64_t q = 0; q < half; q++)
                for (int e = 0; e < 2; e++) {
                    int64_t kk = 2 * q + e, idx = ((((n / pnr) * T + tap) * half + q) * pnr + n % pnr) * 2 + e;
                    float want = 0;
                    if (n < N && kk < K) {
                        int64_t o = n * w->stride[0] + kk * w->stride[1];
                        if (conv) o += tap / kw * w->stride[2] + tap % kw * w->stride[3];
                        want = rounded(wd[o]);
                    }
                    uint16_t h = pk[idx];
                    if (memcmp(&(float){bf16_value(h)}, &want, 4) && bad++ < 5)
                        fprintf(stderr, "%s: n %lld tap %lld k %lld: 0x%04x, want %g\n", k->name ? k->name : "?",
                                (long long)n, (long long)tap, (long long)kk, h, (double)want);
                }
    return (int)bad;
}

static void
pack_case(TG *t, int y, int want_kernels)
{
#if defined(__x86_64__)
    KProgram p;
    int nbf = 0;
    CU_ASSERT_FATAL(bf16_program(t, y, "sapphirerapids", &p, &nbf) == 0);
    CU_ASSERT_EQUAL(nbf, want_kernels);
    McErr err;
    McLlvmTarget *tg = mc_llvm_target_create(NULL, "sapphirerapids", NULL, &err);
    CU_ASSERT_FATAL(tg != NULL);
    Plan pl;
    CU_ASSERT_EQUAL(mc_llvm_plan(&p, tg, NULL, &pl), 0);
    uint8_t *blob = NULL;
    int64_t size = 0;
    CU_ASSERT_FATAL(mc_llvm_pack_weights(&p, &t->ws, tg, &blob, &size, &err) == 0);
    int seen = 0;
    for (int i = 0; i < p.nk; i++) {
        const KPlan *kp = &pl.k[i];
        CU_ASSERT_EQUAL(kp->bf16, (int)p.k[i].sched.bf16);
        if (!kp->bf16) continue;
        seen++;
        CU_ASSERT_EQUAL(check_panels(&p, &p.k[i], kp, &t->ws, (const uint16_t *)(blob + kp->pack_off)), 0);
    }
    CU_ASSERT_EQUAL(seen, want_kernels);
    free(blob);
    mc_llvm_plan_free(&pl);
    mc_llvm_target_free(tg);
    mc_kprogram_free(&p);
#else
    (void)t, (void)y, (void)want_kernels;
    printf("(not x86-64: skipped) ");
#endif
}

static void
test_packing(void)
{
    TG t;
    tg_init(&t, S4(1, 3, 5, 37));
    pack_case(&t, tg_linear(&t, 0, 37, 70), 1); /* K odd, a partial second panel */
    tg_free(&t);
    tg_init(&t, S4(1, 6, 7, 5));
    pack_case(&t, tg_conv(&t, 0, 5, 21, 3, 1, 1, 1), 1); /* Ci 5 -> kpad 32, Co 21 */
    tg_free(&t);
    tg_init(&t, S4(1, 4, 4, 66));
    int h = tg_op(&t, OP_GELU, (int[]){tg_linear(&t, 0, 66, 130)}, 1, NULL); /* K 66 -> kpad 96, 3 panels */
    pack_case(&t, h, 1);
    tg_free(&t);
}

/* ------------------------------------------------------------ running */

static int have_bf16 = -1;

static int
host_bf16(void)
{
    if (have_bf16 < 0) {
        McErr err;
        have_bf16 = mc_llvm_bf16_check(NULL, NULL, NULL, &err) == 0;
        if (!have_bf16) printf("(this CPU has no AVX512-BF16: %s; skipped) ", err.msg);
    }
    return have_bf16;
}

/* p compiled for cpu (the AVX512-BF16 kernels: cooperlake, which has no
 * AMX) and run on this machine; *out malloc'd, of the output's shape */
static int
run_on(const char *cpu, const KProgram *p, TG *t, HostTensor *out)
{
    McLlvmTarget *tg = mc_llvm_target_create(NULL, cpu, NULL, &t->err);
    McLlvmModule *m = tg ? mc_llvm_codegen(p, tg, &t->err) : NULL;
    out->shape = p->bufs[p->output_bufs[0]].shape;
    out->data = malloc((size_t)p->bufs[p->output_bufs[0]].bytes);
    int rc = unit_llvm_run(m, p, &t->ws, tg, t->in.data, &out->data, &t->err);
    mc_llvm_module_free(m);
    mc_llvm_target_free(tg);
    return rc;
}

/* the values of every weight and of the input made bf16 numbers */
static void
round_all(TG *t)
{
    for (int i = 0; i < t->ws.n; i++) {
        float *d = t->ws.t[i].data;
        for (size_t j = 0; j < t->ws.t[i].nbytes / 4; j++) d[j] = rounded(d[j]);
    }
    for (int64_t j = 0; j < mc_shape_numel(&t->in.shape); j++) t->in.data[j] = rounded(t->in.data[j]);
}

/* elements of l off want (double) by more than 1e-5 relative (+ 1e-5 of
 * the RMS); the first few printed unless what is NULL */
static int
count_off(const char *what, const float *l, const double *want, int64_t n)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += want[i] * want[i];
    double rms = sqrt(ss / (double)(n ? n : 1));
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(l[i] - want[i]) <= 1e-5 * fabs(want[i]) + 1e-5 * rms) && bad++ < 5 && what)
            fprintf(stderr, "%s[%lld]: bf16 %.9g want %.9g\n", what, (long long)i, (double)l[i], want[i]);
    return bad;
}

/* the bf16 program of t's graph (output y) on this machine against the
 * fp32 reference backend, with every value a bf16 number: equal to 1e-5 */
static void
exact_case(TG *t, int y, const char *what)
{
    if (!host_bf16()) return;
    round_all(t);
    KProgram p;
    int nbf = 0;
    CU_ASSERT_FATAL(bf16_program(t, y, NULL, &p, &nbf) == 0);
    CU_ASSERT(nbf >= 1);
    HostTensor r, l;
    RunOpts o = {.threads = 2, .verbose = 0};
    CU_ASSERT_FATAL(mc_backend_ref.run_graph(&t->g, &t->ws, &t->in, 1, &r, 1, &o, &t->err) == 0);
    int rc = run_on("cooperlake", &p, t, &l);
    if (rc) fprintf(stderr, "%s: %s\n", what, t->err.msg);
    CU_ASSERT_FATAL(rc == 0);
    int64_t n = mc_shape_numel(&r.shape);
    double *want = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) want[i] = r.data[i];
    CU_ASSERT_EQUAL(count_off(what, l.data, want, n), 0);
    free(want);
    free(r.data);
    free(l.data);
    mc_kprogram_free(&p);
}

static void
linear_exact(int B, int H, int W, int K, int N)
{
    TG t;
    tg_init(&t, S4(B, H, W, K));
    char what[64];
    snprintf(what, sizeof what, "linear %dx%dx%dx%d->%d", B, H, W, K, N);
    exact_case(&t, tg_op(&t, OP_RELU, (int[]){tg_linear(&t, 0, K, N)}, 1, NULL), what);
    tg_free(&t);
}

static void
conv_exact(int B, int H, int W, int Ci, int Co, int k, int s, int pad, int dil)
{
    TG t;
    tg_init(&t, S4(B, H, W, Ci));
    char what[64];
    snprintf(what, sizeof what, "conv %dx%d ci%d co%d k%d s%d p%d d%d", H, W, Ci, Co, k, s, pad, dil);
    exact_case(&t, tg_conv(&t, 0, Ci, Co, k, s, pad, dil), what);
    tg_free(&t);
}

static void
test_gemm_exact(void)
{
    linear_exact(1, 5, 7, 37, 45);    /* K odd, one partial panel, a remainder row tile */
    linear_exact(2, 3, 3, 64, 256);
    linear_exact(1, 1, 13, 1, 3);     /* K 1 */
    linear_exact(1, 7, 7, 130, 70);   /* a full and a partial panel */
    linear_exact(1, 40, 40, 64, 100); /* several row blocks */
    linear_exact(1, 1, 11, 200, 300); /* panel-major (weights larger than A) */
    linear_exact(1, 7, 7, 1030, 130); /* deep K, few rows */
}

static void
test_conv_exact(void)
{
    conv_exact(1, 9, 11, 5, 21, 3, 1, 1, 1);
    conv_exact(2, 8, 7, 16, 40, 3, 2, 1, 1);
    conv_exact(1, 10, 9, 7, 9, 3, 1, 2, 2);
    conv_exact(1, 7, 5, 4, 12, 1, 2, 0, 1); /* 1x1 stride 2 */
    conv_exact(1, 12, 10, 64, 70, 3, 1, 1, 1);
    /* the stem: NCHW input through a permute (channel stride H*W) */
    TG t;
    tg_init(&t, S4(2, 3, 13, 15));
    Attrs pa = mc_attrs_default();
    pa.perm[0] = 0, pa.perm[1] = 2, pa.perm[2] = 3, pa.perm[3] = 1;
    int xn = tg_op(&t, OP_PERMUTE, (int[]){0}, 1, &pa);
    exact_case(&t, tg_conv(&t, xn, 3, 19, 3, 2, 1, 1), "stem conv on permuted NCHW");
    tg_free(&t);
}

/* inputs that are not bf16 numbers: the activations are rounded to nearest
 * even like the weights (a double sum over the rounded operands, 1e-5),
 * which the unrounded fp32 product misses by far more */
static void
test_gemm_rounding(void)
{
    if (!host_bf16()) return;
    int M = 3 * 7, K = 45, N = 40;
    TG t;
    tg_init(&t, S4(1, 3, 7, K));
    int y = tg_linear(&t, 0, K, N);
    KProgram p;
    int nbf = 0;
    CU_ASSERT_FATAL(bf16_program(&t, y, NULL, &p, &nbf) == 0);
    CU_ASSERT_EQUAL(nbf, 1);
    HostTensor l;
    CU_ASSERT_FATAL(run_on("cooperlake", &p, &t, &l) == 0);
    const float *x = t.in.data, *w = mc_weights_find(&t.ws, "fc.weight")->data, *b = mc_weights_find(&t.ws, "fc.bias")->data;
    double *want = malloc(sizeof(double) * (size_t)(M * N)), *plain = malloc(sizeof(double) * (size_t)(M * N));
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = b[n], s2 = b[n];
            for (int k = 0; k < K; k++) {
                s += (double)rounded(x[m * K + k]) * rounded(w[n * K + k]);
                s2 += (double)x[m * K + k] * w[n * K + k];
            }
            want[m * N + n] = s;
            plain[m * N + n] = s2;
        }
    CU_ASSERT_EQUAL(count_off("linear, rounded operands", l.data, want, M * N), 0);
    CU_ASSERT(count_off(NULL, l.data, plain, M * N) > M * N / 2);
    free(want);
    free(plain);
    free(l.data);
    mc_kprogram_free(&p);
    tg_free(&t);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"bf16 rounding", test_round},
    {"bf16 packing (VNNI pairs, padding)", test_packing},
    {"bf16 gemm on bf16 numbers", test_gemm_exact},
    {"bf16 conv on bf16 numbers", test_conv_exact},
    {"bf16 gemm rounds its activations", test_gemm_rounding},
};

MC_UNIT_MAIN("llvm_bf16", tests)
