/* tests/unit/test_ref_kernels.c -- CUnit tests of the reference backend.
 *
 * Every op is run through mc_backend_ref on small graphs built with
 * mc_graph_add, and compared with an independent naive computation written
 * here (NCHW loops in double, explicit clamping, plain recursions) or with
 * hand-computed answers.  Shapes are odd on purpose (5x7, stride 2,
 * dilation 3, groups) and random data comes from a fixed-seed RNG.
 *
 * Tolerances: |got - want| <= ATOL + RTOL * |want| with ATOL = RTOL = 1e-5
 * against a double-precision naive result unless a test states otherwise;
 * GEMMs are checked against 5e-7 * sum|a_k b_k| (the float round-off bound
 * we promise, well under 1e-5 relative).
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backends/backend.h"
#include "backends/ref/ref_kernels.h"

#define ATOL 1e-5
#define RTOL 1e-5

/* ------------------------------------------------------------ helpers */


/* A test graph with its weights and inputs. */
typedef struct TG {
    Graph g;
    WeightStore ws;
    HostTensor in[4];
    int nin;
    McErr err;
} TG;

static void
tg_init(TG *t)
{
    memset(t, 0, sizeof *t);
    mc_graph_init(&t->g, "test");
    mc_weights_init(&t->ws);
}

static void
tg_free(TG *t)
{
    mc_graph_free(&t->g);
    mc_weights_free(&t->ws);
}

/* INPUT node bound to data (borrowed). */
static int
tg_input(TG *t, const char *name, Shape s, float *data)
{
    int id = mc_graph_input(&t->g, name, DT_F32, &s, &t->err);
    CU_ASSERT_FATAL(id >= 0);
    t->in[t->nin].shape = s;
    t->in[t->nin].data = data;
    t->nin++;
    return id;
}

/* WEIGHT node; the store gets a copy of data. */
static int
tg_weight(TG *t, const char *name, Shape s, const float *data)
{
    int id = mc_graph_weight(&t->g, name, DT_F32, &s, &t->err);
    CU_ASSERT_FATAL(id >= 0);
    int64_t n = mc_shape_numel(&s);
    float *copy = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(copy, data, (size_t)n * sizeof(float));
    mc_weights_put(&t->ws, name, DT_F32, DT_F32, &s, copy);
    return id;
}

static int
tg_op(TG *t, OpKind op, const int *in, int nin, const Attrs *a)
{
    int id = mc_graph_add(&t->g, op, in, nin, a, NULL, &t->err);
    if (id < 0) fprintf(stderr, "mc_graph_add: %s\n", t->err.msg);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

/* Runs the graph with `threads`; returns the outputs (caller frees .data). */
static int
tg_run(TG *t, HostTensor *out, int nout, int threads)
{
    RunOpts o = {.threads = threads, .verbose = 0};
    int rc = mc_backend_ref.run_graph(&t->g, &t->ws, t->in, t->nin, out, nout, &o, &t->err);
    if (rc) fprintf(stderr, "ref run: %s\n", t->err.msg);
    return rc;
}

/* Runs a one-output graph; returns the malloc'd result or NULL. */
static float *
tg_run1(TG *t, int out_id)
{
    HostTensor o;
    mc_graph_add_output(&t->g, out_id);
    if (mc_graph_verify(&t->g, &t->err)) {
        fprintf(stderr, "verify: %s\n", t->err.msg);
        return NULL;
    }
    if (tg_run(t, &o, 1, 2)) return NULL;
    CU_ASSERT(mc_shape_eq(&o.shape, &t->g.nodes[out_id].shape));
    return o.data;
}

/* Counts elements outside ATOL + RTOL*|want|; prints the first few. */
static int
count_bad(const char *what, const float *got, const double *want, int64_t n, double atol,
          double rtol)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= atol + rtol * fabs(want[i]))) {
            if (bad < 5)
                fprintf(stderr, "%s[%lld]: got %.9g want %.9g\n", what, (long long)i,
                        (double)got[i], want[i]);
            bad++;
        }
    }
    return bad;
}

/* NCHW <-> NHWC by hand (the graph's permute is tested on its own) */
static float *
nchw_to_nhwc(const float *x, int64_t B, int64_t C, int64_t H, int64_t W)
{
    float *y = malloc((size_t)(B * C * H * W) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++)
                    y[((b * H + h) * W + w) * C + c] = x[((b * C + c) * H + h) * W + w];
    return y;
}

/* ------------------------------------------------------------ conv2d */

typedef struct ConvCase {
    int B, Ci, H, W, Co, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias;
} ConvCase;

/* The textbook definition, NCHW, double accumulation. */
static double *
naive_conv_nchw(const ConvCase *c, const float *x, const float *w, const float *b, int Ho,
                int Wo)
{
    double *y = calloc((size_t)c->B * c->Co * Ho * Wo, sizeof(double));
    int cig = c->Ci / c->groups, cog = c->Co / c->groups;
    for (int n = 0; n < c->B; n++)
        for (int co = 0; co < c->Co; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double s = b ? b[co] : 0.0;
                    int g = co / cog;
                    for (int ci = 0; ci < cig; ci++)
                        for (int ky = 0; ky < c->kh; ky++)
                            for (int kx = 0; kx < c->kw; kx++) {
                                int iy = oy * c->sh - c->ph + ky * c->dh;
                                int ix = ox * c->sw - c->pw + kx * c->dw;
                                if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                                s += (double)x[((n * c->Ci + g * cig + ci) * c->H + iy) * c->W + ix] *
                                     w[((co * cig + ci) * c->kh + ky) * c->kw + kx];
                            }
                    y[((n * c->Co + co) * Ho + oy) * Wo + ox] = s;
                }
    return y;
}

static void
run_conv_case(const ConvCase *c, uint64_t seed)
{
    rng_seed(seed);
    int cig = c->Ci / c->groups;
    int Ho = (c->H + 2 * c->ph - c->dh * (c->kh - 1) - 1) / c->sh + 1;
    int Wo = (c->W + 2 * c->pw - c->dw * (c->kw - 1) - 1) / c->sw + 1;
    float *x = rand_vec((int64_t)c->B * c->Ci * c->H * c->W, -1, 1);
    float *w = rand_vec((int64_t)c->Co * cig * c->kh * c->kw, -1, 1);
    float *b = c->bias ? rand_vec(c->Co, -1, 1) : NULL;
    float *xh = nchw_to_nhwc(x, c->B, c->Ci, c->H, c->W);

    TG t;
    tg_init(&t);
    int ops[3];
    ops[0] = tg_input(&t, "x", S4(c->B, c->H, c->W, c->Ci), xh);
    ops[1] = tg_weight(&t, "w", S4(c->Co, cig, c->kh, c->kw), w);
    if (b) ops[2] = tg_weight(&t, "b", S1(c->Co), b);
    Attrs a = mc_attrs_default();
    a.stride[0] = c->sh; a.stride[1] = c->sw;
    a.pad[0] = c->ph;    a.pad[1] = c->pw;
    a.dil[0] = c->dh;    a.dil[1] = c->dw;
    a.groups = c->groups;
    int y = tg_op(&t, OP_CONV2D, ops, b ? 3 : 2, &a);
    CU_ASSERT_EQUAL(t.g.nodes[y].shape.d[1], Ho);
    CU_ASSERT_EQUAL(t.g.nodes[y].shape.d[2], Wo);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);

    double *want_nchw = naive_conv_nchw(c, x, w, b, Ho, Wo);
    int64_t n = (int64_t)c->B * c->Co * Ho * Wo;
    double *want = malloc((size_t)n * sizeof(double)); /* to NHWC */
    for (int nn = 0; nn < c->B; nn++)
        for (int co = 0; co < c->Co; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++)
                    want[((nn * Ho + oy) * Wo + ox) * c->Co + co] =
                        want_nchw[((nn * c->Co + co) * Ho + oy) * Wo + ox];
    CU_ASSERT_EQUAL(count_bad("conv2d", got, want, n, ATOL, RTOL), 0);
    free(want);
    free(want_nchw);
    free(got);
    free(x); free(w); free(b); free(xh);
    tg_free(&t);
}

static void
test_conv2d_general(void)
{
    static const ConvCase cases[] = {
        /* B Ci H W Co kh kw sh sw ph pw dh dw g bias */
        {2, 4, 5, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0},  /* stride 2, odd sizes */
        {1, 6, 7, 5, 4, 3, 3, 1, 1, 2, 2, 3, 3, 2, 1},  /* dilation 3, groups 2, bias */
        {1, 3, 9, 8, 5, 2, 3, 1, 2, 0, 1, 2, 1, 1, 1},  /* kh != kw, mixed stride/dilation */
        {2, 6, 5, 7, 9, 1, 1, 1, 1, 0, 0, 1, 1, 3, 0},  /* grouped 1x1 */
        {1, 8, 6, 6, 16, 3, 3, 2, 2, 1, 1, 1, 1, 8, 1}, /* depthwise x2 multiplier (general path) */
        {1, 3, 11, 13, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0}, /* the stem's shape, Co not a multiple of 16 */
        {1, 16, 37, 41, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, /* large enough to run in parallel */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_conv_case(&cases[i], 100 + i);
}

static void
test_conv2d_depthwise(void)
{
    static const ConvCase cases[] = {
        {1, 5, 5, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5, 1},     /* cpe-like dw3x3 pad 1 */
        {2, 19, 7, 5, 19, 3, 3, 2, 2, 1, 1, 1, 1, 19, 1},  /* downsample-like, stride 2 */
        {1, 4, 9, 8, 4, 3, 3, 1, 1, 3, 3, 3, 3, 4, 0},     /* dilation 3, no bias */
        {2, 32, 29, 31, 32, 3, 3, 1, 1, 1, 1, 1, 1, 32, 1}, /* parallel */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_conv_case(&cases[i], 200 + i);
}

static void
test_conv2d_pointwise(void)
{
    static const ConvCase cases[] = {
        {2, 33, 5, 7, 20, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},   /* 1x1 GEMM fast path */
        {1, 300, 3, 5, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0},   /* K = 300: several k chunks */
        {1, 16, 5, 7, 8, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1},    /* strided 1x1 (not the fast path) */
        {1, 64, 23, 19, 48, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1}, /* parallel */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_conv_case(&cases[i], 300 + i);
}

/* Hand case: a 1x1 identity convolution returns its input exactly, and a
 * 3x3 all-ones kernel with zero padding on a 3x3 ones image counts the
 * in-image taps (4 at corners, 6 on edges, 9 in the middle). */
static void
test_conv2d_hand(void)
{
    TG t;
    tg_init(&t);
    float x[2 * 3 * 4];
    for (int i = 0; i < 24; i++) x[i] = (float)(i * 0.37 - 3.1);
    float w[4 * 4] = {0};
    for (int i = 0; i < 4; i++) w[i * 4 + i] = 1.0f;
    int ops[2] = {tg_input(&t, "x", S4(1, 2, 3, 4), x), tg_weight(&t, "w", S4(4, 4, 1, 1), w)};
    int y = tg_op(&t, OP_CONV2D, ops, 2, NULL);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(memcmp(got, x, sizeof x), 0);
    free(got);
    tg_free(&t);

    tg_init(&t);
    float ones[9], k[9];
    for (int i = 0; i < 9; i++) ones[i] = k[i] = 1.0f;
    int o2[2] = {tg_input(&t, "x", S4(1, 3, 3, 1), ones), tg_weight(&t, "w", S4(1, 1, 3, 3), k)};
    Attrs a = mc_attrs_default();
    a.pad[0] = a.pad[1] = 1;
    y = tg_op(&t, OP_CONV2D, o2, 2, &a);
    got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    static const float want[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
    for (int i = 0; i < 9; i++) CU_ASSERT_EQUAL(got[i], want[i]);
    free(got);
    tg_free(&t);
}

/* ------------------------------------------------------------ GEMMs */

static void
check_linear(int64_t M, int64_t N, int64_t K, int bias, uint64_t seed)
{
    rng_seed(seed);
    float *x = rand_vec(M * K, -1, 1), *w = rand_vec(N * K, -1, 1);
    float *b = bias ? rand_vec(N, -1, 1) : NULL;
    TG t;
    tg_init(&t);
    int ops[3] = {tg_input(&t, "x", S3(1, M, K), x), tg_weight(&t, "w", S2(N, K), w), -1};
    if (b) ops[2] = tg_weight(&t, "b", S1(N), b);
    int y = tg_op(&t, OP_LINEAR, ops, b ? 3 : 2, NULL);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    int bad = 0;
    double worst = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = b ? b[n] : 0.0, mag = b ? fabs(b[n]) : 0.0;
            for (int64_t k = 0; k < K; k++) {
                s += (double)x[m * K + k] * w[n * K + k];
                mag += fabs((double)x[m * K + k] * w[n * K + k]);
            }
            double e = fabs(got[m * N + n] - s) / mag;
            if (e > worst) worst = e;
            if (e > 5e-7) bad++;
        }
    if (bad) fprintf(stderr, "linear %lldx%lldx%lld: worst relative error %.3g\n", (long long)M,
                     (long long)N, (long long)K, worst);
    CU_ASSERT_EQUAL(bad, 0);
    free(got); free(x); free(w); free(b);
    tg_free(&t);
}

static void
test_linear(void)
{
    check_linear(7, 19, 13, 1, 1);
    check_linear(37, 33, 64, 0, 2);      /* M, N over block edges */
    check_linear(5, 17, 3072, 1, 3);     /* the largest K of the model */
    check_linear(1, 1000, 512, 1, 4);    /* the head */
}

static void
test_matmul(void)
{
    rng_seed(7);
    int64_t B0 = 2, B1 = 3, M = 5, K = 7, N = 9;
    float *a = rand_vec(B0 * B1 * M * K, -1, 1), *bm = rand_vec(K * N, -1, 1);
    TG t;
    tg_init(&t);
    int ops[2] = {tg_input(&t, "a", S4(B0, B1, M, K), a), tg_weight(&t, "b", S2(K, N), bm)};
    int y = tg_op(&t, OP_MATMUL, ops, 2, NULL);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    double *want = calloc((size_t)(B0 * B1 * M * N), sizeof(double));
    for (int64_t p = 0; p < B0 * B1; p++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < K; k++)
                    want[(p * M + m) * N + n] += (double)a[(p * M + m) * K + k] * bm[k * N + n];
    CU_ASSERT_EQUAL(count_bad("matmul", got, want, B0 * B1 * M * N, ATOL, RTOL), 0);
    free(want); free(got); free(a); free(bm);
    tg_free(&t);
}

/* ------------------------------------------------------------ norms */

static void
test_batchnorm(void)
{
    rng_seed(11);
    int64_t R = 35, C = 6;
    float *x = rand_vec(R * C, -3, 3), *g = rand_vec(C, 0.5, 1.5), *be = rand_vec(C, -1, 1);
    float *mu = rand_vec(C, -1, 1), *var = rand_vec(C, 0.1, 2);
    TG t;
    tg_init(&t);
    int ops[5] = {tg_input(&t, "x", S4(1, 5, 7, C), x), tg_weight(&t, "g", S1(C), g),
                  tg_weight(&t, "b", S1(C), be), tg_weight(&t, "m", S1(C), mu),
                  tg_weight(&t, "v", S1(C), var)};
    Attrs a = mc_attrs_default();
    a.eps = 1e-3;
    int y = tg_op(&t, OP_BATCHNORM, ops, 5, &a);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    double want[35 * 6];
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++)
            want[r * C + c] = ((double)x[r * C + c] - mu[c]) / sqrt((double)var[c] + 1e-3) * g[c] + be[c];
    CU_ASSERT_EQUAL(count_bad("batchnorm", got, want, R * C, ATOL, RTOL), 0);
    free(got); free(x); free(g); free(be); free(mu); free(var);
    tg_free(&t);
}

static void
test_layernorm(void)
{
    rng_seed(12);
    int64_t R = 3 * 5, C = 37;
    float *x = rand_vec(R * C, -2, 4), *g = rand_vec(C, 0.5, 1.5), *be = rand_vec(C, -1, 1);
    for (int64_t c = 0; c < C; c++) x[4 * C + c] = 2.5f; /* one constant row -> beta */
    TG t;
    tg_init(&t);
    int ops[3] = {tg_input(&t, "x", S3(3, 5, C), x), tg_weight(&t, "g", S1(C), g),
                  tg_weight(&t, "b", S1(C), be)};
    int y = tg_op(&t, OP_LAYERNORM, ops, 3, NULL); /* eps 1e-5 by default */
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    double *want = malloc((size_t)(R * C) * sizeof(double));
    for (int64_t r = 0; r < R; r++) {
        double mu = 0, var = 0;
        for (int64_t c = 0; c < C; c++) mu += x[r * C + c];
        mu /= C;
        for (int64_t c = 0; c < C; c++) var += (x[r * C + c] - mu) * (x[r * C + c] - mu);
        var /= C;
        for (int64_t c = 0; c < C; c++)
            want[r * C + c] = (x[r * C + c] - mu) / sqrt(var + 1e-5) * g[c] + be[c];
    }
    CU_ASSERT_EQUAL(count_bad("layernorm", got, want, R * C, ATOL, RTOL), 0);
    for (int64_t c = 0; c < C; c++) CU_ASSERT_EQUAL(got[4 * C + c], be[c]); /* exactly */
    free(want); free(got); free(x); free(g); free(be);
    tg_free(&t);
}

/* ------------------------------------------------------------ elementwise */

static void
check_unary(OpKind op, const float *x, const double *want, int n)
{
    TG t;
    tg_init(&t);
    int in = tg_input(&t, "x", S1(n), (float *)x);
    int y = tg_op(&t, op, &in, 1, NULL);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(count_bad(mc_op_info[op].name, got, want, n, 1e-7, 1e-6), 0);
    free(got);
    tg_free(&t);
}

static void
test_unary(void)
{
    static const float x[8] = {-30, -2, -0.5f, 0, 0.5f, 1, 20, 25};
    double relu[8], neg[8], ex[8];
    for (int i = 0; i < 8; i++) {
        relu[i] = x[i] > 0 ? x[i] : 0;
        neg[i] = -x[i];
        ex[i] = exp(x[i]);
    }
    /* hand/table values: Phi(1) = 0.841344746..., sigmoid(1) = 0.731058578... */
    static const double gelu[8] = {0, -0.04550026389635842, -0.15426876936299347, 0,
                                   0.34573123063700656, 0.8413447460685429, 20, 25};
    static const double silu[8] = {-2.8072868906520526e-12, -0.2384058440442351,
                                   -0.18877033937902897, 0, 0.31122966062097103,
                                   0.7310585786300049, 19.999999958776925, 24.999999999652734};
    static const double softplus[8] = {9.357622968840175e-14, 0.12692801104297263,
                                       0.4740769841801067, 0.6931471805599453,
                                       0.9740769841801067, 1.3132616875182228,
                                       20.000000002061153, 25};
    check_unary(OP_RELU, x, relu, 8);
    check_unary(OP_NEG, x, neg, 8);
    check_unary(OP_EXP, x, ex, 8);
    check_unary(OP_GELU, x, gelu, 8);
    check_unary(OP_SILU, x, silu, 8);
    check_unary(OP_SOFTPLUS, x, softplus, 8);
}

/* a (shape sa) op b (shape sb), compared with a naive broadcast index walk */
static void
check_binary(OpKind op, Shape sa, Shape sb, Shape sy, uint64_t seed)
{
    rng_seed(seed);
    int64_t na = mc_shape_numel(&sa), nb = mc_shape_numel(&sb), ny = mc_shape_numel(&sy);
    float *a = rand_vec(na, -2, 2), *b = rand_vec(nb, -2, 2);
    TG t;
    tg_init(&t);
    int ops[2] = {tg_input(&t, "a", sa, a), tg_weight(&t, "b", sb, b)};
    int y = tg_op(&t, op, ops, 2, NULL);
    CU_ASSERT_FATAL(mc_shape_eq(&t.g.nodes[y].shape, &sy));
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    double *want = malloc((size_t)ny * sizeof(double));
    int R = sy.rank;
    for (int64_t i = 0; i < ny; i++) {
        int64_t idx[MC_MAX_RANK], rem = i;
        for (int d = R - 1; d >= 0; d--) { idx[d] = rem % sy.d[d]; rem /= sy.d[d]; }
        int64_t ia = 0, ib = 0;
        for (int d = 0; d < sa.rank; d++) {
            int64_t v = sa.d[d] == 1 ? 0 : idx[d + R - sa.rank];
            ia = ia * sa.d[d] + v;
        }
        for (int d = 0; d < sb.rank; d++) {
            int64_t v = sb.d[d] == 1 ? 0 : idx[d + R - sb.rank];
            ib = ib * sb.d[d] + v;
        }
        want[i] = op == OP_ADD ? (double)a[ia] + b[ib] : (double)a[ia] * b[ib];
    }
    CU_ASSERT_EQUAL(count_bad(mc_op_info[op].name, got, want, ny, 1e-6, 1e-6), 0);
    free(want); free(got); free(a); free(b);
    tg_free(&t);
}

static void
test_binary(void)
{
    check_binary(OP_ADD, S3(2, 5, 7), S3(2, 5, 7), S3(2, 5, 7), 21);          /* same shape */
    check_binary(OP_MUL, S3(2, 5, 7), S1(7), S3(2, 5, 7), 22);                /* last-axis vector */
    check_binary(OP_ADD, S1(7), S3(2, 5, 7), S3(2, 5, 7), 23);                /* vector first */
    check_binary(OP_MUL, S4(2, 1, 4, 3), S3(5, 1, 3), S4(2, 5, 4, 3), 24);    /* both broadcast */
    check_binary(OP_ADD, S4(1, 3, 1, 1), S4(2, 1, 4, 5), S4(2, 3, 4, 5), 25); /* channel-first style */
    check_binary(OP_MUL, S3(3, 4, 5), S1(1), S3(3, 4, 5), 26);                /* scalar */
    check_binary(OP_ADD, S3(3, 4, 1), S2(4, 6), S3(3, 4, 6), 27);             /* inner dim 1 */
    check_binary(OP_MUL, S4(2, 1, 40, 33), S4(1, 9, 40, 1), S4(2, 9, 40, 33), 28); /* parallel */
    check_binary(OP_ADD, S3(20, 30, 40), S1(40), S3(20, 30, 40), 29);          /* parallel */
}

/* ------------------------------------------------------------ scan */

static float *
run_scan(int64_t B, int64_t H, int64_t W, int64_t D, float *u, float *dl, const float *A,
         float *Bv)
{
    TG t;
    tg_init(&t);
    int ops[4] = {tg_input(&t, "u", S4(B, H, W, D), u), tg_input(&t, "delta", S4(B, H, W, D), dl),
                  tg_weight(&t, "A", S2(D, 1), A), tg_input(&t, "Bv", S4(B, H, W, 1), Bv)};
    int y = tg_op(&t, OP_SCAN, ops, 4, NULL);
    float *got = tg_run1(&t, y);
    tg_free(&t);
    return got;
}

static void
test_scan_cumsum(void)
{
    /* A = 0: exp(0) = 1, so h is the running sum of delta*Bv*u (row-major) */
    rng_seed(31);
    int64_t B = 2, H = 3, W = 5, D = 70, L = H * W;
    float *u = rand_vec(B * L * D, -1, 1), *dl = rand_vec(B * L * D, 0, 1);
    float *Bv = rand_vec(B * L, -1, 1), *A = calloc((size_t)D, sizeof(float));
    float *got = run_scan(B, H, W, D, u, dl, A, Bv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    double *want = malloc((size_t)(B * L * D) * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t d = 0; d < D; d++) {
            double s = 0;
            for (int64_t l = 0; l < L; l++) {
                int64_t o = (b * L + l) * D + d;
                s += (double)dl[o] * Bv[b * L + l] * u[o];
                want[o] = s;
            }
        }
    CU_ASSERT_EQUAL(count_bad("scan(A=0)", got, want, B * L * D, ATOL, RTOL), 0);
    free(want); free(got); free(u); free(dl); free(Bv); free(A);
}

static void
check_scan_random(int64_t B, int64_t H, int64_t W, int64_t D, uint64_t seed)
{
    rng_seed(seed);
    int64_t L = H * W;
    float *u = rand_vec(B * L * D, -1, 1), *dl = rand_vec(B * L * D, 0.01, 2);
    float *Bv = rand_vec(B * L, -1, 1), *A = rand_vec(D, -3, -0.05);
    float *got = run_scan(B, H, W, D, u, dl, A, Bv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    double *want = malloc((size_t)(B * L * D) * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t d = 0; d < D; d++) {
            double h = 0;
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++) {
                    int64_t l = y * W + x, o = (b * L + l) * D + d;
                    h = exp((double)dl[o] * A[d]) * h + (double)dl[o] * Bv[b * L + l] * u[o];
                    want[o] = h;
                }
        }
    CU_ASSERT_EQUAL(count_bad("scan", got, want, B * L * D, ATOL, RTOL), 0);
    /* first position: h_0 = delta*Bv*u, no history */
    CU_ASSERT_DOUBLE_EQUAL(got[5], (double)dl[5] * Bv[0] * u[5], 1e-6);
    free(want); free(got); free(u); free(dl); free(Bv); free(A);
}

static void
test_scan_random(void)
{
    check_scan_random(2, 5, 7, 67, 32);
    check_scan_random(2, 16, 21, 130, 33);  /* large enough to run in parallel */
}

/* ------------------------------------------------------------ state fusion */

static float *
run_fusion(int64_t B, int64_t H, int64_t W, int64_t D, float *h, const float *k1,
           const float *k2, const float *k3, const float *alpha)
{
    TG t;
    tg_init(&t);
    int ops[5] = {tg_input(&t, "h", S4(B, H, W, D), h), tg_weight(&t, "k3", S4(D, 1, 3, 3), k1),
                  tg_weight(&t, "k3_1", S4(D, 1, 3, 3), k2), tg_weight(&t, "k3_2", S4(D, 1, 3, 3), k3),
                  tg_weight(&t, "alpha", S1(3), alpha)};
    int y = tg_op(&t, OP_STATE_FUSION, ops, 5, NULL);
    float *got = tg_run1(&t, y);
    tg_free(&t);
    return got;
}

static int
clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* A delta kernel at tap (ty, tx) of the dilation-5 kernel copies the input
 * shifted by ((ty-1)*5, (tx-1)*5) with coordinates clamped into the image. */
static void
test_fusion_delta(void)
{
    int H = 4, W = 6, D = 2;
    float h[4 * 6 * 2];
    for (int i = 0; i < H * W * D; i++) h[i] = (float)(i + 1);
    float zero[2 * 9] = {0}, k[2 * 9], alpha[3] = {0, 0, 1};
    for (int ty = 0; ty < 3; ty++)
        for (int tx = 0; tx < 3; tx++) {
            memset(k, 0, sizeof k);
            k[0 * 9 + ty * 3 + tx] = 1.0f;   /* channel 0: the shift */
            k[1 * 9 + 4] = 2.0f;             /* channel 1: 2 x centre */
            float *got = run_fusion(1, H, W, D, h, zero, zero, k, alpha);
            CU_ASSERT_PTR_NOT_NULL_FATAL(got);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int sy = clampi(y + (ty - 1) * 5, 0, H - 1), sx = clampi(x + (tx - 1) * 5, 0, W - 1);
                    CU_ASSERT_EQUAL(got[(y * W + x) * D + 0], h[(sy * W + sx) * D + 0]);
                    CU_ASSERT_EQUAL(got[(y * W + x) * D + 1], 2.0f * h[(y * W + x) * D + 1]);
                }
            free(got);
        }
    /* the corners by hand: top-left tap of dilation 5 at (0,0) reads (0,0);
     * at (3,5) it reads (0,0) as well (3-5 -> 0, 5-5 = 0) */
    memset(k, 0, sizeof k);
    k[0] = 1.0f;
    float *got = run_fusion(1, H, W, D, h, zero, zero, k, alpha);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(got[0], h[0]);
    CU_ASSERT_EQUAL(got[(3 * W + 5) * D], h[0]);
    CU_ASSERT_EQUAL(got[(3 * W + 4) * D], h[0]); /* 4-5 -> 0 */
    free(got);
    /* constant input: each kernel sums its taps; output = sum alpha_k sum w_k */
    float c[4 * 6 * 2], k1[18], k2[18], k3[18], al[3] = {0.5f, -1.25f, 2.0f};
    for (int i = 0; i < H * W * D; i++) c[i] = 3.0f;
    for (int i = 0; i < 18; i++) { k1[i] = 0.125f * (i % 9); k2[i] = 0.25f; k3[i] = -0.5f * (i % 2); }
    got = run_fusion(1, H, W, D, c, k1, k2, k3, al);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    for (int dch = 0; dch < D; dch++) {
        double s = 0;
        for (int t = 0; t < 9; t++)
            s += al[0] * k1[dch * 9 + t] + al[1] * k2[dch * 9 + t] + al[2] * k3[dch * 9 + t];
        for (int p = 0; p < H * W; p++) CU_ASSERT_DOUBLE_EQUAL(got[p * D + dch], 3.0 * s, 1e-5);
    }
    free(got);
}

static void
check_fusion_random(int B, int H, int W, int D, uint64_t seed)
{
    rng_seed(seed);
    float *h = rand_vec(B * H * W * D, -1, 1);
    float *ks[3] = {rand_vec(D * 9, -1, 1), rand_vec(D * 9, -1, 1), rand_vec(D * 9, -1, 1)};
    float *al = rand_vec(3, -1, 1);
    float *got = run_fusion(B, H, W, D, h, ks[0], ks[1], ks[2], al);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    /* NCHW view of the same sum, one kernel at a time */
    static const int dil[3] = {1, 3, 5};
    double *want = calloc((size_t)(B * H * W * D), sizeof(double));
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++)
            for (int kk = 0; kk < 3; kk++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        double s = 0;
                        for (int ky = -1; ky <= 1; ky++)
                            for (int kx = -1; kx <= 1; kx++) {
                                int sy = clampi(y + ky * dil[kk], 0, H - 1);
                                int sx = clampi(x + kx * dil[kk], 0, W - 1);
                                s += (double)ks[kk][d * 9 + (ky + 1) * 3 + (kx + 1)] *
                                     h[((b * H + sy) * W + sx) * D + d];
                            }
                        want[((b * H + y) * W + x) * D + d] += al[kk] * s;
                    }
    CU_ASSERT_EQUAL(count_bad("state_fusion", got, want, B * H * W * D, ATOL, RTOL), 0);
    free(want); free(got); free(h); free(ks[0]); free(ks[1]); free(ks[2]); free(al);
}

static void
test_fusion_random(void)
{
    check_fusion_random(2, 5, 7, 3, 41);
    check_fusion_random(1, 13, 12, 40, 43);  /* parallel; 13 > 2*5+1 so interior exists */
}

/* state_fusion25 (the folded form): taps[D,25], tap 0 the centre, tap
 * 1+8*r+k the k-th non-centre 3x3 position (row-major) at dilation (1,3,5)[r].
 * Checked against a naive sum, and against state_fusion with the taps folded
 * here from three kernels and alpha. */
static void
test_fusion25(void)
{
    rng_seed(42);
    int B = 2, H = 5, W = 7, D = 3;
    static const int dil[3] = {1, 3, 5};
    static const int off[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};
    float *h = rand_vec(B * H * W * D, -1, 1);
    float *ks[3] = {rand_vec(D * 9, -1, 1), rand_vec(D * 9, -1, 1), rand_vec(D * 9, -1, 1)};
    float *al = rand_vec(3, 0.3, 1.2);
    float taps[3 * 25];
    for (int d = 0; d < D; d++) {
        double c = 0;
        for (int r = 0; r < 3; r++) c += (double)al[r] * ks[r][d * 9 + 4];
        taps[d * 25] = (float)c;
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 8; k++) {
                int ky = off[k][0] + 1, kx = off[k][1] + 1;
                taps[d * 25 + 1 + 8 * r + k] = (float)((double)al[r] * ks[r][d * 9 + ky * 3 + kx]);
            }
    }
    TG t;
    tg_init(&t);
    int ops[2] = {tg_input(&t, "h", S4(B, H, W, D), h), tg_weight(&t, "taps", S2(D, 25), taps)};
    int y = tg_op(&t, OP_STATE_FUSION25, ops, 2, NULL);
    float *got = tg_run1(&t, y);
    tg_free(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    double *want = malloc((size_t)(B * H * W * D) * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++)
                for (int d = 0; d < D; d++) {
                    double s = (double)taps[d * 25] * h[((b * H + yy) * W + xx) * D + d];
                    for (int r = 0; r < 3; r++)
                        for (int k = 0; k < 8; k++) {
                            int sy = clampi(yy + off[k][0] * dil[r], 0, H - 1);
                            int sx = clampi(xx + off[k][1] * dil[r], 0, W - 1);
                            s += (double)taps[d * 25 + 1 + 8 * r + k] * h[((b * H + sy) * W + sx) * D + d];
                        }
                    want[((b * H + yy) * W + xx) * D + d] = s;
                }
    CU_ASSERT_EQUAL(count_bad("state_fusion25", got, want, B * H * W * D, ATOL, RTOL), 0);
    /* the unfolded op agrees (folding rounds each tap once: 1e-5 is ample) */
    float *ref = run_fusion(B, H, W, D, h, ks[0], ks[1], ks[2], al);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    for (int i = 0; i < B * H * W * D; i++) want[i] = ref[i];
    CU_ASSERT_EQUAL(count_bad("fusion25 vs fusion", got, want, B * H * W * D, ATOL, RTOL), 0);
    free(ref); free(want); free(got); free(h); free(ks[0]); free(ks[1]); free(ks[2]); free(al);
}

/* ------------------------------------------------------------ reductions, layout */

static void
test_mean_hw(void)
{
    rng_seed(51);
    int B = 2, H = 5, W = 7, C = 9;
    float *x = rand_vec(B * H * W * C, -1, 1);
    TG t;
    tg_init(&t);
    int in = tg_input(&t, "x", S4(B, H, W, C), x);
    int y = tg_op(&t, OP_MEAN_HW, &in, 1, NULL);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    double want[2 * 9] = {0};
    for (int b = 0; b < B; b++)
        for (int p = 0; p < H * W; p++)
            for (int c = 0; c < C; c++) want[b * C + c] += x[(b * H * W + p) * C + c] / 35.0;
    CU_ASSERT_EQUAL(count_bad("mean_hw", got, want, B * C, 1e-6, 1e-6), 0);
    free(got); free(x);
    tg_free(&t);
}

static void
check_permute(Shape s, const int *perm, uint64_t seed)
{
    rng_seed(seed);
    int64_t n = mc_shape_numel(&s);
    float *x = rand_vec(n, -1, 1);
    TG t;
    tg_init(&t);
    int in = tg_input(&t, "x", s, x);
    Attrs a = mc_attrs_default();
    memcpy(a.perm, perm, sizeof(int) * (size_t)s.rank);
    int y = tg_op(&t, OP_PERMUTE, &in, 1, &a);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    const Shape *ys = &t.g.nodes[y].shape;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t oi[MC_MAX_RANK], ii[MC_MAX_RANK], rem = i, src = 0;
        for (int d = s.rank - 1; d >= 0; d--) { oi[d] = rem % ys->d[d]; rem /= ys->d[d]; }
        for (int d = 0; d < s.rank; d++) ii[perm[d]] = oi[d];
        for (int d = 0; d < s.rank; d++) src = src * s.d[d] + ii[d];
        bad += got[i] != x[src];
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(got); free(x);
    tg_free(&t);
}

static void
test_permute(void)
{
    static const int p4[4] = {0, 2, 3, 1}, p4b[4] = {0, 3, 1, 2}, p2[2] = {1, 0};
    static const int p5[5] = {4, 1, 3, 0, 2}, p6[6] = {5, 0, 4, 1, 3, 2};
    check_permute(S4(2, 3, 5, 7), p4, 61);
    check_permute(S4(2, 30, 25, 17), p4, 66);   /* parallel */
    check_permute(S4(2, 5, 7, 3), p4b, 62);
    check_permute(S2(5, 7), p2, 63);
    check_permute(shp(5, (int64_t)2, (int64_t)3, (int64_t)4, (int64_t)5, (int64_t)1), p5, 64);
    check_permute(shp(6, (int64_t)2, (int64_t)1, (int64_t)3, (int64_t)2, (int64_t)5, (int64_t)2),
                  p6, 65);
}

static void
test_slice(void)
{
    float x[2 * 3 * 10];
    for (int i = 0; i < 60; i++) x[i] = (float)i;
    TG t;
    tg_init(&t);
    int in = tg_input(&t, "x", S3(2, 3, 10), x);
    Attrs a = mc_attrs_default();
    a.start = 3;
    a.len = 4;
    int y = tg_op(&t, OP_SLICE, &in, 1, &a);
    float *got = tg_run1(&t, y);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    for (int r = 0; r < 6; r++)
        for (int j = 0; j < 4; j++) CU_ASSERT_EQUAL(got[r * 4 + j], (float)(r * 10 + 3 + j));
    free(got);
    tg_free(&t);
}

/* ------------------------------------------------------------ executor */

/* A small block-like chain with fan-out: x -> ln -> linear -> [u | z] ->
 * silu(u) * z + x.  Outputs: the final value, an intermediate that later
 * nodes also read, the same node twice, and the input itself.  Also checks
 * 1 thread == 2 threads bit for bit. */
/* Hand-computed: PyTorch's adaptive bins and F.interpolate's coordinates. */
static void
test_pool_resize(void)
{
    const float x5[5] = {1, 2, 3, 4, 5};
    float y[8];
    /* bins over 5 into 3: [0,2) [1,4) [3,5) */
    mc_ref_adaptive_avg_pool(1, 1, 5, 1, 1, 3, x5, y);
    CU_ASSERT_DOUBLE_EQUAL(y[0], 1.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(y[1], 3.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(y[2], 4.5, 1e-6);
    /* the same along H, two channels */
    const float x52[10] = {1, -1, 2, -2, 3, -3, 4, -4, 5, -5};
    mc_ref_adaptive_avg_pool(1, 5, 1, 2, 3, 1, x52, y);
    CU_ASSERT_DOUBLE_EQUAL(y[2], 3.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(y[5], -4.5, 1e-6);
    const float x2[2] = {0, 1};
    /* 2 -> 4, align_corners 0: src -0.25 (clamped to 0), 0.25, 0.75, 1.25 (edge) */
    mc_ref_resize(1, 1, 2, 1, 1, 4, 0, x2, y);
    CU_ASSERT_DOUBLE_EQUAL(y[0], 0.0, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(y[1], 0.25, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(y[2], 0.75, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(y[3], 1.0, 1e-7);
    /* align_corners 1: src = dst / 3 */
    mc_ref_resize(1, 1, 2, 1, 1, 4, 1, x2, y);
    CU_ASSERT_DOUBLE_EQUAL(y[1], 1.0 / 3, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(y[2], 2.0 / 3, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(y[3], 1.0, 1e-7);
    /* 2x2 -> 1x1, align_corners 0: src 0.5, 0.5: the mean */
    const float q[4] = {0, 1, 2, 3};
    mc_ref_resize(1, 2, 2, 1, 1, 1, 0, q, y);
    CU_ASSERT_DOUBLE_EQUAL(y[0], 1.5, 1e-7);
    /* downsampling 4 -> 3 along H: src (d + .5) * 4/3 - .5 = 1/6, 3/2, 17/6 */
    const float c4[4] = {0, 10, 20, 30};
    mc_ref_resize(1, 4, 1, 1, 3, 1, 0, c4, y);
    CU_ASSERT_DOUBLE_EQUAL(y[0], 10.0 / 6, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(y[1], 15.0, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(y[2], 170.0 / 6, 1e-5);
}

static void
test_exec_graph(void)
{
    rng_seed(71);
    int64_t C = 6, P = 35;
    float *x = rand_vec(P * C, -1, 1), *g = rand_vec(C, 0.5, 1.5), *be = rand_vec(C, -0.5, 0.5);
    float *w = rand_vec(2 * C * C, -0.5, 0.5);
    TG t;
    tg_init(&t);
    int xi = tg_input(&t, "x", S4(1, 5, 7, C), x);
    int ln_in[3] = {xi, tg_weight(&t, "ln.weight", S1(C), g), tg_weight(&t, "ln.bias", S1(C), be)};
    int ln = tg_op(&t, OP_LAYERNORM, ln_in, 3, NULL);
    int lin_in[2] = {ln, tg_weight(&t, "proj.weight", S2(2 * C, C), w)};
    int xz = tg_op(&t, OP_LINEAR, lin_in, 2, NULL);
    Attrs a = mc_attrs_default();
    a.start = 0; a.len = C;
    int u = tg_op(&t, OP_SLICE, &xz, 1, &a);
    a.start = C;
    int z = tg_op(&t, OP_SLICE, &xz, 1, &a);
    int su = tg_op(&t, OP_SILU, &u, 1, NULL);
    int m_in[2] = {su, z};
    int m = tg_op(&t, OP_MUL, m_in, 2, NULL);
    int r_in[2] = {m, xi};
    int r = tg_op(&t, OP_ADD, r_in, 2, NULL);
    mc_graph_add_output(&t.g, r);
    mc_graph_add_output(&t.g, xz);
    mc_graph_add_output(&t.g, r);
    mc_graph_add_output(&t.g, xi);
    CU_ASSERT_FATAL(mc_graph_verify(&t.g, &t.err) == 0);

    HostTensor o1[4], o2[4];
    CU_ASSERT_FATAL(tg_run(&t, o1, 4, 1) == 0);
    CU_ASSERT_FATAL(tg_run(&t, o2, 4, 2) == 0);
    for (int k = 0; k < 4; k++) {
        int64_t n = mc_shape_numel(&o1[k].shape);
        CU_ASSERT(memcmp(o1[k].data, o2[k].data, (size_t)n * sizeof(float)) == 0);
    }
    CU_ASSERT(o1[0].data != o1[2].data);
    CU_ASSERT(memcmp(o1[0].data, o1[2].data, (size_t)(P * C) * sizeof(float)) == 0);
    CU_ASSERT(o1[3].data != x && memcmp(o1[3].data, x, (size_t)(P * C) * sizeof(float)) == 0);
    CU_ASSERT_EQUAL(o1[1].shape.d[3], 2 * C);

    /* naive */
    double *want = malloc((size_t)(P * C) * sizeof(double)), *wxz = malloc((size_t)(P * 2 * C) * sizeof(double));
    for (int64_t p = 0; p < P; p++) {
        double mu = 0, var = 0, lnv[16];
        for (int64_t c = 0; c < C; c++) mu += x[p * C + c];
        mu /= C;
        for (int64_t c = 0; c < C; c++) var += (x[p * C + c] - mu) * (x[p * C + c] - mu);
        var /= C;
        for (int64_t c = 0; c < C; c++) lnv[c] = (x[p * C + c] - mu) / sqrt(var + 1e-5) * g[c] + be[c];
        for (int64_t n = 0; n < 2 * C; n++) {
            double s = 0;
            for (int64_t c = 0; c < C; c++) s += lnv[c] * w[n * C + c];
            wxz[p * 2 * C + n] = s;
        }
        for (int64_t c = 0; c < C; c++) {
            double uu = wxz[p * 2 * C + c], zz = wxz[p * 2 * C + C + c];
            want[p * C + c] = uu / (1 + exp(-uu)) * zz + x[p * C + c];
        }
    }
    CU_ASSERT_EQUAL(count_bad("exec.out", o1[0].data, want, P * C, ATOL, RTOL), 0);
    CU_ASSERT_EQUAL(count_bad("exec.xz", o1[1].data, wxz, P * 2 * C, ATOL, RTOL), 0);
    for (int k = 0; k < 4; k++) { free(o1[k].data); free(o2[k].data); }
    free(want); free(wxz); free(x); free(g); free(be); free(w);
    tg_free(&t);
}

static void
test_exec_errors(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    TG t;
    tg_init(&t);
    int xi = tg_input(&t, "x", S2(2, 3), x);
    Shape ws = S1(3);
    int wi = mc_graph_weight(&t.g, "missing.weight", DT_F32, &ws, &t.err);
    int in[2] = {xi, wi};
    int y = tg_op(&t, OP_ADD, in, 2, NULL);
    mc_graph_add_output(&t.g, y);
    HostTensor o;
    RunOpts ro = {0};
    /* missing weight: -1, the key in the message */
    CU_ASSERT_EQUAL(mc_backend_ref.run_graph(&t.g, &t.ws, t.in, 1, &o, 1, &ro, &t.err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.err.msg, "missing.weight"));
    /* no weight store at all */
    CU_ASSERT_EQUAL(mc_backend_ref.run_graph(&t.g, NULL, t.in, 1, &o, 1, &ro, &t.err), -1);
    /* weight with the wrong shape */
    float *bad = calloc(4, sizeof(float));
    Shape s4 = S1(4);
    mc_weights_put(&t.ws, "missing.weight", DT_F32, DT_F32, &s4, bad);
    CU_ASSERT_EQUAL(mc_backend_ref.run_graph(&t.g, &t.ws, t.in, 1, &o, 1, &ro, &t.err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.err.msg, "[4]"));
    float *good = calloc(3, sizeof(float));
    mc_weights_put(&t.ws, "missing.weight", DT_F32, DT_F32, &ws, good);
    /* wrong input count, wrong input shape, wrong output count */
    CU_ASSERT_EQUAL(mc_backend_ref.run_graph(&t.g, &t.ws, t.in, 0, &o, 1, &ro, &t.err), -1);
    HostTensor wrong = {.shape = S2(3, 2), .data = x};
    CU_ASSERT_EQUAL(mc_backend_ref.run_graph(&t.g, &t.ws, &wrong, 1, &o, 1, &ro, &t.err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.err.msg, "[3,2]"));
    HostTensor two[2];
    CU_ASSERT_EQUAL(mc_backend_ref.run_graph(&t.g, &t.ws, t.in, 1, two, 2, &ro, &t.err), -1);
    /* and now it runs: x + 0 */
    CU_ASSERT_EQUAL_FATAL(mc_backend_ref.run_graph(&t.g, &t.ws, t.in, 1, &o, 1, &ro, &t.err), 0);
    CU_ASSERT_EQUAL(memcmp(o.data, x, sizeof x), 0);
    free(o.data);
    tg_free(&t);
}

static void
test_registry(void)
{
    CU_ASSERT_PTR_EQUAL(mc_backend_find("ref"), &mc_backend_ref);
    CU_ASSERT_PTR_NULL(mc_backend_find("no-such-backend"));
    CU_ASSERT_PTR_NULL(mc_backend_find(NULL));
}

/* ------------------------------------------------------------ main */

typedef struct TestEntry {
    const char *name;
    CU_TestFunc fn;
} TestEntry;

static const TestEntry tests[] = {
    {"conv2d general (stride, dilation, groups)", test_conv2d_general},
    {"conv2d depthwise", test_conv2d_depthwise},
    {"conv2d pointwise", test_conv2d_pointwise},
    {"conv2d hand cases", test_conv2d_hand},
    {"linear vs double, K up to 3072", test_linear},
    {"matmul batched", test_matmul},
    {"batchnorm eval", test_batchnorm},
    {"layernorm (incl. constant row)", test_layernorm},
    {"unary table values", test_unary},
    {"add/mul broadcasting", test_binary},
    {"scan A=0 is a cumulative sum", test_scan_cumsum},
    {"scan random", test_scan_random},
    {"state fusion delta kernels, clamped", test_fusion_delta},
    {"state fusion random", test_fusion_random},
    {"state fusion25 (folded taps)", test_fusion25},
    {"mean_hw", test_mean_hw},
    {"permute rank 2..6", test_permute},
    {"slice last axis", test_slice},
    {"adaptive avg pool, bilinear resize", test_pool_resize},
    {"executor: fan-out, outputs, threads", test_exec_graph},
    {"executor: errors", test_exec_errors},
    {"backend registry", test_registry},
};

MC_UNIT_MAIN("ref_kernels", tests)
