/* tests/unit/test_cuda_emit.c -- the shared C/CUDA emitter and the CUDA
 * printer, without a GPU.
 *
 * (The floating-literal printer: test_cemit_literals.c.)  Golden text for view
 * indexing (contiguous, broadcast, channel slice) and epilogue expressions
 * in both dialects; the structure of a whole generated .cu (one __global__
 * per fused kernel, three for a scan, the precision's GEMM instantiations,
 * graph capture); every floating literal of the .cu valid at 1x1 last
 * stages, odd sizes, batch 1 and 3, each precision; and, when nvcc is
 * installed (/usr/local/cuda/bin/nvcc, $NVCC or on PATH), that the .cu
 * compiles for sm_90 and sm_90a (skipped, and said so, otherwise).  The
 * fusion passes (cuda-fuse-down/ln/mlp/xproj): what each takes per
 * precision, one memory plan for every precision, verified programs, the
 * downsample's precedence; moved plans refused by the verifier, fusions
 * set by hand that the precision cannot print refused by the printer.  The GPU
 * suite that runs the code is tests/gpu/run.sh; tests/e2e/test_cuda_shapes.py
 * compiles the .cu of `mambac compile` at such shapes.
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include "unit.h"
#include "frontend/weights.h"
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backends/cuda/cuda.h"
#include "backends/cuda/cuda_forms.h"
#include "backends/cuda/cuda_print.h"
#include "ir/fusion25.h"
#include "runtime/mc_file.h"
#include "frontend/frontend.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "passes/pipeline.h"

static View
view3(int buf, int64_t a, int64_t b, int64_t c, int64_t sa, int64_t sb, int64_t sc, int64_t off)
{
    View v;
    memset(&v, 0, sizeof v);
    v.buf = buf;
    v.rank = 3;
    v.shape[0] = a; v.shape[1] = b; v.shape[2] = c;
    v.stride[0] = sa; v.stride[1] = sb; v.stride[2] = sc;
    v.offset = off;
    return v;
}

static void
expect_index(View v, const char *want)
{
    McBuf b = {0};
    mc_cemit_view_index(&b, &v, "i");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b.s);
    if (strcmp(b.s, want)) fprintf(stderr, "\n  got  '%s'\n  want '%s'\n", b.s, want);
    CU_ASSERT_STRING_EQUAL(b.s, want);
    mc_buf_free(&b);
}

static void
test_view_index(void)
{
    expect_index(view3(1, 2, 3, 4, 12, 4, 1, 0), "i");                  /* contiguous */
    expect_index(view3(1, 2, 3, 4, 12, 4, 1, 5), "5 + i");              /* offset */
    expect_index(view3(1, 2, 3, 5, 0, 0, 1, 0), "((i) % 5)");           /* bias broadcast */
    expect_index(view3(1, 2, 4, 8, 64, 16, 1, 8), "8 + ((i) / 8) * 16 + ((i) % 8)"); /* slice */
    expect_index(view3(1, 2, 3, 1, 3, 1, 1, 4), "4 + i");               /* trailing 1 */
    expect_index(view3(1, 2, 3, 4, 0, 0, 0, 7), "7");                   /* scalar */
    expect_index(view3(1, 2, 3, 4, 1, 2, 6, 0), "((i) / 12) + (((i) / 4) % 3) * 2 + ((i) % 4) * 6"); /* permute */
}

static void
test_epilogue(void)
{
    Kernel k;
    memset(&k, 0, sizeof k);
    k.out = view3(9, 2, 3, 4, 12, 4, 1, 0);
    k.args[0] = view3(7, 2, 3, 4, 12, 4, 1, 0);
    k.nargs = 1;
    EInstr e[] = {{E_ACC, -1, -1, -1, 0}, {E_LOAD, -1, -1, 0, 0}, {E_ADD, 0, 1, -1, 0},
                  {E_GELU, 2, -1, -1, 0}, {E_CONST, -1, -1, -1, -0.5f}, {E_MUL, 3, 4, -1, 0}};
    memcpy(k.expr, e, sizeof e);
    k.nexpr = 6;
    char res[32];
    McBuf b = {0};
    mc_cemit_epilogue(&b, &mc_dialect_cuda, &k, "acc", "i", "  ", res, sizeof res);
    CU_ASSERT_STRING_EQUAL(b.s, "  float e1 = b7[i];\n  float e2 = acc + e1;\n  float e3 = mc_gelu(e2);\n"
                                "  float e4 = (-0.5f);\n  float e5 = e3 * e4;\n");
    CU_ASSERT_STRING_EQUAL(res, "e5");
    mc_buf_free(&b);
    k.nexpr = 0;
    mc_cemit_epilogue(&b, &mc_dialect_c, &k, "acc", "i", "", res, sizeof res);
    CU_ASSERT_STRING_EQUAL(res, "acc");
    CU_ASSERT_TRUE(b.len == 0);
    mc_buf_free(&b);
}

static void
test_dialects(void)
{
    McBuf c = {0}, g = {0};
    mc_cemit_prelude(&c, &mc_dialect_c);
    mc_cemit_prelude(&g, &mc_dialect_cuda);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.s, "static inline float mc_gelu(float x) { return 0.5f * x * (1.0f + erff("));
    CU_ASSERT_PTR_NULL(strstr(c.s, "__device__"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g.s, "static __device__ __forceinline__ float mc_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }"));
    /* CUDA: the libm SiLU / GELU, or their fast forms under MC_FAST_SILU /
     * MC_FAST_GELU (2: hardware tanh, 1: __expf); the C dialect has only
     * the libm forms */
    const char *fg = strstr(g.s, "#if MC_FAST_GELU == 2\n"), *fg1 = strstr(g.s, "#elif MC_FAST_GELU\n");
    const char *fs = strstr(g.s, "#if MC_FAST_SILU == 2\n"), *fs1 = strstr(g.s, "#elif MC_FAST_SILU\n");
    CU_ASSERT_TRUE_FATAL(fg && fg1 && fs && fs1 && fg < fg1 && fg1 < fs && fs < fs1);
    const char *tgelu = strstr(g.s, "mc_tanh_approx(x * fmaf(0.0356774081f, x * x, 0.7978845608f))");
    const char *fgelu = strstr(g.s, "float mc_gelu(float x)\n{\n    const float z"), *pgelu = strstr(g.s, "(1.0f + erff(x * 0.70710678118654752f))");
    const char *tsilu = strstr(g.s, "mc_silu(float x) { const float h = 0.5f * x; return fmaf(h, mc_tanh_approx(h), h); }");
    const char *fsilu = strstr(g.s, "mc_silu(float x) { return __fdividef(x, 1.0f + __expf(-x)); }");
    const char *psilu = strstr(g.s, "mc_silu(float x) { return x / (1.0f + expf(-x)); }");
    CU_ASSERT_TRUE(tgelu && fg < tgelu && tgelu < fg1);
    CU_ASSERT_TRUE(fgelu && pgelu && fg1 < fgelu && fgelu < pgelu && pgelu < fs);
    CU_ASSERT_TRUE(tsilu && fs < tsilu && tsilu < fs1);
    CU_ASSERT_TRUE(fsilu && psilu && fs1 < fsilu && fsilu < psilu);
    CU_ASSERT_PTR_NULL(strstr(c.s, "MC_FAST_"));
    CU_ASSERT_PTR_NULL(strstr(c.s, "__fdividef"));
    mc_buf_free(&c);
    mc_buf_free(&g);
    char id[64];
    mc_cemit_ident(id, sizeof id, 12, "layers.0.blocks.1.mlp.fc2");
    CU_ASSERT_STRING_EQUAL(id, "k12_layers_0_blocks_1_mlp_fc2");
    CU_ASSERT_EQUAL(mc_cuda_precision_parse("bf16"), MC_CUDA_BF16);
    CU_ASSERT_EQUAL(mc_cuda_precision_parse("fp16"), -1);
}

static const char cfg_text[] =
    "MODEL:\n  TYPE: spatial_mamba\n  NAME: t16\n  NUM_CLASSES: 5\n  SPATIALMAMBA:\n"
    "    EMBED_DIM: 16\n    DEPTHS: [1, 1, 1, 1]\n    D_STATE: 1\n    MLP_RATIO: 2.0\n";

/* a 24-channel model: layernorm rows of 24/48/96/192 channels (8-channel
 * vectors not a power of two per row) */
static const char cfg24_text[] =
    "MODEL:\n  TYPE: spatial_mamba\n  NAME: t24\n  NUM_CLASSES: 7\n  SPATIALMAMBA:\n"
    "    EMBED_DIM: 24\n    DEPTHS: [1, 1, 2, 1]\n    D_STATE: 1\n    MLP_RATIO: 2.0\n";

/* a 32-channel model with a 2.5x MLP (hidden 80: a 64-column chunk and a
 * 16-column tail) */
static const char cfg32_text[] =
    "MODEL:\n  TYPE: spatial_mamba\n  NAME: t32\n  NUM_CLASSES: 6\n  SPATIALMAMBA:\n"
    "    EMBED_DIM: 32\n    DEPTHS: [1, 1, 1, 1]\n    D_STATE: 1\n    MLP_RATIO: 2.5\n";

/* a 64-channel model: a 32-channel stem, so that its 3x3 convs run mc_conv3 */
static const char cfg64_text[] =
    "MODEL:\n  TYPE: spatial_mamba\n  NAME: t64\n  NUM_CLASSES: 6\n  SPATIALMAMBA:\n"
    "    EMBED_DIM: 64\n    DEPTHS: [1, 1, 1, 1]\n    D_STATE: 1\n    MLP_RATIO: 2.5\n";

static char *print_model_cfg(const char *text, size_t len, McCudaPrecision prec, int B, int H, int W, int *nk,
                             int *nscan);

/* the .cu of a small model (16 channels, one block per stage) at B x 37x45 */
static char *
print_model(McCudaPrecision prec, int B, int *nk, int *nscan)
{
    return print_model_cfg(cfg_text, sizeof cfg_text - 1, prec, B, 37, 45, nk, nscan);
}

/* when set, lower_hook runs on the lowered program before the kernel
 * passes (else the pipeline runs them), plan_hook on the planned one
 * before printing (tests that change the program or move buffers' slots);
 * the verifier's verdict on the program printed (0 or -1) and its message,
 * and mc_cuda_print's when print_may_fail is set (the .cu is then NULL
 * where it fails) */
static void (*lower_hook)(KProgram *), (*plan_hook)(KProgram *);
static int last_verify, print_may_fail;
static char last_msg[512];

/* the graph of a model config at B x H x W (random weights, the graph
 * passes run) */
static void
build_cfg(const char *text, size_t len, int B, int H, int W, Graph *g, WeightStore *ws)
{
    McErr err = {{0}};
    ModelConfig cfg;
    memset(g, 0, sizeof *g);
    CU_ASSERT_FATAL(mc_config_load_mem(text, len, "t.yaml", &cfg, &err) == 0);
    CU_ASSERT_FATAL(mc_model_build(&cfg, B, H, W, g, &err) == 0);
    mc_weights_init(ws);
    mc_weights_random(g, ws, 3);
    PassOptions po;
    memset(&po, 0, sizeof po);
    po.out = stdout;
    CU_ASSERT_FATAL(mc_passes_run(g, ws, &po, &err) == 0);
}

/* ... lowered (no kernel passes); g and ws hold what it points into */
static void
lower_cfg(const char *text, size_t len, int B, int H, int W, Graph *g, WeightStore *ws, KProgram *kp)
{
    McErr err = {{0}};
    build_cfg(text, len, B, H, W, g, ws);
    CU_ASSERT_FATAL(mc_lower(g, ws, kp, &err) == 0);
}

/* ... through the pipeline for the cuda target in precision prec: the
 * kernel passes (fusions, cuda-tile) and the memory plan */
static void
plan_cfg(const char *text, size_t len, McCudaPrecision prec, int B, int H, int W, Graph *g, WeightStore *ws,
         KProgram *kp)
{
    McErr err = {{0}};
    build_cfg(text, len, B, H, W, g, ws);
    McTarget t = mc_cuda_target_row;
    t.desc.precision = prec;
    PassOptions po;
    memset(&po, 0, sizeof po);
    po.out = stdout;
    CU_ASSERT_FATAL(mc_pipeline_kernels(g, ws, &t, &po, kp, &err) == 0);
}

/* the cuda kernel passes in precision prec, then the memory plan, on a
 * lowered program (tests that look at it between the steps) */
/* cuda kernel pass i in precision prec; its decisions in *changes */
static bool
cuda_pass(KProgram *kp, McCudaPrecision prec, int i, int *changes)
{
    McTargetDesc t;
    memset(&t, 0, sizeof t);
    t.backend = "cuda";
    t.precision = prec;
    KPassCtx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.t = &t;
    bool r = mc_cuda_kpasses[i].fn(kp, &ctx);
    *changes = ctx.changes;
    return r;
}

static void
cuda_passes(KProgram *kp, McCudaPrecision prec)
{
    int n;
    for (int i = 0; i < mc_cuda_nkpasses; i++) cuda_pass(kp, prec, i, &n);
    mc_memplan(kp);
}

static char *
print_model_cfg(const char *text, size_t len, McCudaPrecision prec, int B, int H, int W, int *nk, int *nscan)
{
    McErr err = {{0}};
    Graph g;
    WeightStore ws;
    KProgram kp;
    if (lower_hook) {
        lower_cfg(text, len, B, H, W, &g, &ws, &kp);
        lower_hook(&kp);
        cuda_passes(&kp, prec);
    } else {
        plan_cfg(text, len, prec, B, H, W, &g, &ws, &kp);
    }
    if (plan_hook) plan_hook(&kp);
    last_verify = mc_kprogram_verify(&kp, &err);
    snprintf(last_msg, sizeof last_msg, "%s", last_verify ? err.msg : "");
    /* the fusion passes and the plan leave a program the verifier accepts */
    if (!plan_hook && last_verify) fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_TRUE(plan_hook || last_verify == 0);
    McCudaOptions o;
    memset(&o, 0, sizeof o);
    o.precision = prec;
    o.sm = 90;
    McBuf b = {0};
    int64_t blob = 0;
    if (print_may_fail && mc_cuda_print(&kp, &o, &b, &blob, &err)) {
        snprintf(last_msg, sizeof last_msg, "%s", err.msg);
        mc_buf_free(&b);
        mc_kprogram_free(&kp);
        mc_weights_free(&ws);
        mc_graph_free(&g);
        return NULL;
    }
    if (!print_may_fail) CU_ASSERT_FATAL(mc_cuda_print(&kp, &o, &b, &blob, &err) == 0);
    CU_ASSERT_TRUE(blob >= kp.weights_bytes);
    *nk = kp.nk;
    *nscan = 0;
    for (int i = 0; i < kp.nk; i++) *nscan += kp.k[i].kind == KK_SCAN;
    int64_t wl = 0;
    uint8_t *w = mc_cuda_weights_blob(&kp, &ws, &wl, &err);
    CU_ASSERT_PTR_NOT_NULL(w);
    CU_ASSERT_EQUAL(wl, blob);
    free(w);
    mc_kprogram_free(&kp);
    mc_weights_free(&ws);
    mc_graph_free(&g);
    return b.s;
}

static int
count(const char *s, const char *pat)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, pat)); p += strlen(pat)) n++;
    return n;
}

static void
test_program_structure(void)
{
    int nk, nscan;
    char *fp = print_model(MC_CUDA_FP32, 2, &nk, &nscan);
    CU_ASSERT_EQUAL(nscan, 4);
    /* one per kernel, two more per scan, the start-up bf16 converter and
     * tf32 rounding */
    CU_ASSERT_EQUAL(count(fp, "__global__ void"), nk + 2 * nscan + 2);
    CU_ASSERT_EQUAL(count(fp, "    mc_gemm<MC_BF16"), 0);
    CU_ASSERT_EQUAL(count(fp, "    mc_gemm<MC_TF32"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "cudaStreamBeginCapture"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "#define MC_INPUT_SHAPE {2, 3, 37, 45}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "#define MC_OUTPUT_SHAPE {2, 5}"));
    char *bf = print_model(MC_CUDA_BF16, 1, &nk, &nscan);
    CU_ASSERT_TRUE(count(bf, "    mc_gemm<MC_BF16") > 0);
    /* skinny x_proj / dt_projs stay fp32 (FFMA): the thin-row or the tiled
     * FFMA kernel, never a tensor-core mode */
    CU_ASSERT_TRUE(count(bf, "    mc_gemm_warp<") + count(bf, "    mc_gemm<MC_FP32,") >= 2 * nscan);
    /* batch 1: x_proj's few rows a warp each; the tiled GEMMs leave SMs idle
     * and split K (workspace and tile counters passed in) */
    CU_ASSERT_TRUE(count(bf, "    mc_gemm_warp<") > 0);
    CU_ASSERT_EQUAL(count(bf, "    mc_gemm_thin<"), 0);
    CU_ASSERT_TRUE(count(bf, ", epi, epi2, ws, cnt") > 0);
    CU_ASSERT_EQUAL(count(bf, ", epi, epi2, ws, cnt"), count(bf, "float *__restrict__ ws, unsigned *__restrict__ cnt"));
    /* bf16 mode: the tensor-core GEMMs read bf16 weight copies made once at
     * start-up (one converter launch each); fp32 mode makes none */
    CU_ASSERT_TRUE(count(bf, "const __nv_bfloat16 *__restrict__ w16)") > 0);
    CU_ASSERT_EQUAL(count(bf, "    mc_f2bf<<<"), count(bf, "const __nv_bfloat16 *__restrict__ w16)"));
    CU_ASSERT_EQUAL(count(bf, "    mc_f2bf<<<"), count(bf, "    mc_gemm<MC_BF16,"));
    /* every tiled GEMM passes a pair epilogue; contiguous outputs store it
     * as one float2 */
    CU_ASSERT_EQUAL(count(bf, "    auto epi2 = "), count(bf, "    mc_gemm<"));
    /* the 25-tap offsets are constant expressions in the kernels (no table
     * in memory), checked against the table at compile time */
    CU_ASSERT_TRUE(count(bf, "mc_f25_dy(t)") >= nscan);
    CU_ASSERT_EQUAL(count(bf, "mc_f25_dy["), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(bf, "static_assert(mc_f25_check(), "));
    CU_ASSERT_EQUAL(count(bf, ", epi, epi2);") + count(bf, ", epi, epi2, ws, cnt") + count(bf, ", epi, epi2, nullptr, nullptr, epv2, b"),
                    count(bf, "    mc_gemm<"));
    /* tensor-core GEMMs whose operands are stored as the tensor cores read
     * them (bf16 A and w16 in bf16 mode, float in fp32 mode) run the
     * cp.async pipeline: an address loader AP, launched with the dynamic
     * shared memory mc_gemm_dsm gives, its limit raised once at start-up */
    CU_ASSERT_TRUE(count(bf, "    auto AP = [=](int64_t m") > 0);
    CU_ASSERT_EQUAL(count(bf, "    auto AP = [=](int64_t m"), count(bf, ">(AP, A4, "));
    CU_ASSERT_EQUAL(count(bf, ">(AP, A4, "), count(bf, "), mc_gemm_dsm<MC_BF16, "));
    CU_ASSERT_EQUAL(count(bf, ">(AP, A4, "), count(bf, "cudaFuncAttributeMaxDynamicSharedMemorySize, mc_gemm_dsm<MC_BF16, "));
    CU_ASSERT_TRUE(count(bf, "-> const __nv_bfloat16 * {") > 0);
    CU_ASSERT_TRUE(count(fp, ">(AP, A4, ") > 0);
    CU_ASSERT_EQUAL(count(fp, ">(AP, A4, "), count(fp, "), mc_gemm_dsm<MC_FP32_MODE, "));
    CU_ASSERT_EQUAL(count(fp, "-> const __nv_bfloat16 * {"), 0);
    CU_ASSERT_TRUE(count(fp, "-> const float * {") > 0);
    /* skinny FFMA products are never pipelined */
    int nffma = 0;
    for (const char *q = bf; (q = strstr(q, "    mc_gemm<MC_FP32, ")); q++, nffma++) {
        const char *eol = strchr(q, '\n'), *ap = strstr(q, ">(AP, ");
        CU_ASSERT_TRUE(ap == NULL || ap > eol);
    }
    CU_ASSERT_TRUE(nffma > 0);
    CU_ASSERT_EQUAL(count(bf, ", 256, mc_gemm_dsm<MC_FP32, "), 0);
    /* the scan's carry pass: one block per (b, 32 channels) */
    CU_ASSERT_EQUAL(count(bf, "_scan_carry(const float *__restrict__ cs, float *__restrict__ cin)"), nscan);
    /* bf16 mode stores activations (scratch buffers) as bf16: loads through
     * mc_ld/mc_ldv4 or raw 16-byte bf16 A tiles, GEMM pairs as one
     * __nv_bfloat162; the input stays float; fp32 mode has no bf16 */
    CU_ASSERT_TRUE(count(bf, " = __floats2bfloat162_rn(r0, r1);") > 0);
    /* bf16 GEMMs with dense bf16 outputs stage the tile through shared
     * memory: an epv2 lambda and the output pointer passed to mc_gemm */
    CU_ASSERT_TRUE(count(bf, "    auto epv2 = ") > 0);
    CU_ASSERT_EQUAL(count(bf, "    auto epv2 = "), count(bf, ", epv2, b"));
    CU_ASSERT_EQUAL(count(fp, "    auto epv2 = "), 0);
    CU_ASSERT_EQUAL(count(bf, " = make_float2(r0, r1);"), 0);
    CU_ASSERT_TRUE(count(bf, "__nv_bfloat16 *__restrict__ b") > 0);
    CU_ASSERT_TRUE(count(bf, " = __float2bfloat16_rn(") > 0);
    CU_ASSERT_TRUE(count(bf, "mc_ldv4(&b") > 0);
    CU_ASSERT_TRUE(count(bf, "-> uint4 { return *(const uint4 *)&b") > 0);
    CU_ASSERT_TRUE(count(bf, ", PB(") + count(bf, "(PB(") > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(bf, "(const float *__restrict__ b0,"));
    CU_ASSERT_EQUAL(count(fp, "__nv_bfloat16 *__restrict__ b"), 0);
    CU_ASSERT_EQUAL(count(fp, "__float2bfloat16_rn("), 1); /* the converter, never launched */
    CU_ASSERT_EQUAL(count(fp, "    mc_f2bf<<<"), 0);
    CU_ASSERT_EQUAL(count(fp, "-> uint4"), 0);
    CU_ASSERT_EQUAL(count(fp, "PB("), 1); /* the macro's definition only */
    CU_ASSERT_TRUE(count(fp, " = make_float2(r0, r1);") > 0);
    /* fast SiLU in fp32 (__expf) and bf16 (hardware tanh), the tanh GELU
     * in bf16, neither in tf32 */
    CU_ASSERT_PTR_NOT_NULL(strstr(bf, "#define MC_FAST_SILU 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(bf, "#define MC_FAST_GELU 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(bf, "asm(\"tanh.approx.f32 %0, %1;\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "#define MC_FAST_SILU 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "#define MC_FAST_GELU 0\n"));
    char *tf = print_model(MC_CUDA_TF32, 1, &nk, &nscan);
    CU_ASSERT_PTR_NOT_NULL(strstr(tf, "#define MC_FAST_SILU 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(tf, "#define MC_FAST_GELU 0\n"));
    /* the scan's fast exp / softplus in bf16 and fp32, not in tf32 */
    CU_ASSERT_PTR_NOT_NULL(strstr(bf, "#define MC_FAST_SCAN 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "#define MC_FAST_SCAN 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(tf, "#define MC_FAST_SCAN 0\n"));
    CU_ASSERT_TRUE(count(bf, "const float decay = mc_scan_exp(delta * a[c]);") >= 2 * nscan);
    CU_ASSERT_PTR_NOT_NULL(strstr(tf, "#define MC_TF32_INT 0\n"));
    free(tf);
    /* fp32: dense layers through MC_FP32_MODE (3xTF32 unless overridden) */
    CU_ASSERT_TRUE(count(fp, "    mc_gemm<MC_FP32_MODE,") > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "#define MC_FP32_MODE MC_F32X3"));
    /* its two correction products as one bf16 MMA by default, its tf32
     * rounding on the integer pipes (tf32 mode: cvt.rna) */
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "#define MC_F32X3_BF16C 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "#define MC_TF32_INT 1\n"));
    CU_ASSERT_PTR_NULL(strstr(bf, "#define MC_TF32_INT 1\n"));
    /* depthwise convs and the scan: 8 channels per thread (16-byte bf16
     * loads and stores, dwconv taps re-packed [kh][kw][C]) only in bf16 mode
     * and only with enough threads (batch 2048 here, not batch 1);
     * layernorms 8 channels per lane in bf16 mode at any batch */
    char *bf128 = print_model(MC_CUDA_BF16, 2048, &nk, &nscan);
    CU_ASSERT_TRUE(count(bf128, "const float *wt = &wp[(kh * ") > 0);
    /* stride 1: each input column of a row loaded once for all the
     * (position, tap) pairs that read it */
    CU_ASSERT_TRUE(count(bf128, "                const float *u = v[p + kw];\n") > 0);
    CU_ASSERT_TRUE(count(bf128, " 8 channels per thread */") > 0);
    CU_ASSERT_TRUE(count(bf128, "    mc_stv8(&b") > 0);
    /* epilogue operands of 8-channel kernels loaded once per thread:
     * contiguous ones as one mc_ldv8, per-position ones as one scalar */
    CU_ASSERT_TRUE(count(bf128, "        mc_ldv8(&b") + count(bf128, "    mc_ldv8(&b") > 0);
    CU_ASSERT_TRUE(count(bf128, "float av") > 0);
    CU_ASSERT_TRUE(count(fp, "const float4 a4_") > 0);
    /* the RGB stem conv (K = 27) at batch 2048: direct, its weights in
     * constant memory, copied there once at start-up */
    CU_ASSERT_EQUAL(count(bf128, "/* direct: a thread per output position"), 1);
    CU_ASSERT_EQUAL(count(bf128, "    cudaMemcpyToSymbolAsync("), 1);
    CU_ASSERT_EQUAL(count(bf128, "__constant__ float k0_"), 1);
    /* batch 1 (few positions): the GEMM, as before */
    CU_ASSERT_EQUAL(count(bf, "/* direct: a thread per output position"), 0);
    CU_ASSERT_EQUAL(count(bf, "__constant__"), 0);
    /* the 25-tap fusion: 4 positions per thread when that fills the GPU */
    CU_ASSERT_TRUE(count(bf128, "/* 4 channels x 4 positions per thread */") > 0);
    CU_ASSERT_EQUAL(count(bf, "/* 4 channels x 4 positions per thread */"), 0);
    CU_ASSERT_TRUE(count(bf128, ", ws, cnt") < count(bf, ", ws, cnt"));
    CU_ASSERT_TRUE(count(bf128, "    mc_gemm_thin<") > 0);
    /* thin products with many rows (not convs): rows staged through shared
     * memory, launched with mc_thin_dsm bytes, the limit raised at start-up */
    CU_ASSERT_TRUE(count(bf128, "    mc_gemm_thin_s<") > 0);
    CU_ASSERT_EQUAL(count(bf128, "    mc_gemm_thin_s<"), count(bf128, "), mc_thin_dsm<"));
    CU_ASSERT_EQUAL(count(bf128, "    mc_gemm_thin_s<"), count(bf128, "MaxDynamicSharedMemorySize, mc_thin_dsm<"));
    CU_ASSERT_EQUAL(count(bf, "    mc_gemm_thin_s<"), 0);
    CU_ASSERT_EQUAL(count(bf, "const float *wt = &wp[(kh * "), 0);
    CU_ASSERT_EQUAL(count(bf, " 1 channel per thread */"), nscan);
    /* the scan in one pass (decoupled look-back) where its views are
     * 8-aligned, 8 channels a thread fill the GPU and D % 64 == 0: stage 0 of the
     * 32-channel model at batch 512, 64x64 (D = 64: 8 groups of 8 channels
     * a block, 2 chunks of 128 positions); its later stages keep three
     * passes (too few threads for 8 channels a thread); the flags zeroed
     * once at the start of mc_forward; none at batch 1 */
    {
        int nk32, ns32;
        char *s32 = print_model_cfg(cfg32_text, sizeof cfg32_text - 1, MC_CUDA_BF16, 512, 64, 64, &nk32, &ns32);
        CU_ASSERT_EQUAL(count(s32, "/* one pass: 2 chunks of 128 positions, a block per (chunk, b, 64 channels)"), 1);
        CU_ASSERT_EQUAL(count(s32, "/* one pass: "), 1);
        CU_ASSERT_EQUAL(count(s32, "_scan_carry(const float *__restrict__ cs"), ns32 - 1);
        CU_ASSERT_EQUAL(count(s32, "(flags tag 4) */"), 1);
        CU_ASSERT_EQUAL(count(s32, "mc_flag_wait(&flags[j * 8 + g], 5)"), 1);
        CU_ASSERT_EQUAL(count(s32, "mc_flag_set(&flags[f * 8 + g], 6)"), 1);
        CU_ASSERT_EQUAL(count(s32, "    cudaMemsetAsync(mc_arena + "), 1);
        /* the downsample in one kernel (mc_down) at stage 0 (16x16 -> 8x8,
         * 32 -> 256 hidden -> 64 channels, 8 x 8 outputs a block): the
         * depthwise conv and the projection inside the expansion (their
         * kernels and launches gone, their names marked), its shared memory
         * limit raised; stages 1-2 (a few outputs per image) unfused */
        CU_ASSERT_EQUAL(count(s32, "    mc_down<512, 16, 16, 32, 256, 64, 8, 8, 4>(b"), 1);
        CU_ASSERT_EQUAL(count(s32, "    mc_down<"), 1);
        CU_ASSERT_EQUAL(count(s32, "downsample.conv.1.conv\": inside k"), 1);
        CU_ASSERT_EQUAL(count(s32, "downsample.conv.2.conv\": inside k"), 1);
        CU_ASSERT_EQUAL(count(s32, "downsample.conv.2.conv (inside layers.0.downsample.conv.0.conv)\""), 1);
        CU_ASSERT_EQUAL(count(s32, ", dim3(512, 1), mc_down_dsm<32, 64, 8, 8, 4>(), s, "), 1);
        CU_ASSERT_EQUAL(count(s32, "MaxDynamicSharedMemorySize, mc_down_dsm<32, 64, 8, 8, 4>()"), 1);
        CU_ASSERT_EQUAL(count(s32, "downsample_conv_1_conv("), 2);
        /* the 25-tap fusion's unclamped path for positions whose taps all
         * fall inside the image: stage 0 only (16 x 16; stage 1's 8 x 8 has
         * none), the tap offsets constant from one pointer */
        CU_ASSERT_EQUAL(count(s32, "    if (y >= 5 && y < 11 && x0 >= 5 && x0 < 8) {\n"), 1);
        CU_ASSERT_EQUAL(count(s32, "    if (y >= 5 && "), 1);
        CU_ASSERT_EQUAL(count(s32, "mc_ldv4(hp + (mc_f25_dy(t) * 16 + p + mc_f25_dx(t)) * 64);"), 1);
        free(s32);
        /* float storage: the downsample unfused; the scan in one pass too */
        s32 = print_model_cfg(cfg32_text, sizeof cfg32_text - 1, MC_CUDA_FP32, 512, 64, 64, &nk32, &ns32);
        CU_ASSERT_EQUAL(count(s32, "    mc_down<"), 0);
        CU_ASSERT_EQUAL(count(s32, "/* one pass: 2 chunks of 128 positions, a block per (chunk, b, 64 channels)"), 1);
        CU_ASSERT_EQUAL(count(s32, "downsample_conv_1_conv("), 3);
        free(s32);
    }
    CU_ASSERT_EQUAL(count(bf, "/* one pass: "), 0);
    CU_ASSERT_EQUAL(count(bf, "    cudaMemsetAsync(mc_arena + "), 0);
    CU_ASSERT_TRUE(count(bf, " lanes per row, ") > 0);
    /* at batch 2048 each out_norm (LN(y) * SiLU(z)) runs inside the 25-tap
     * fusion before it: its kernel and its launch are gone, y is never
     * stored; ln_1 and ln_2 inside the cpe depthwise convs before them
     * (which still store their output, the residual stream), and the SSM's
     * x_proj inside its depthwise conv (u still stored; partial sums across
     * the position's threads through shared memory); at batch 1 (one
     * position per thread) they stay apart */
    int nfused = count(bf128, "\": inside k"), non = count(bf128, ".out_norm\": inside k");
    int nln = count(bf128, ".ln_1\": inside k") + count(bf128, ".ln_2\": inside k");
    int nxp = count(bf128, ".x_proj\": inside k");
    CU_ASSERT_TRUE(non > 0);
    CU_ASSERT_TRUE(nln > 0);
    CU_ASSERT_TRUE(nxp > 0);
    CU_ASSERT_EQUAL(non + nln + nxp, nfused);
    CU_ASSERT_EQUAL(nln + nxp, count(bf128, "from the registers that hold this kernel's output */"));
    CU_ASSERT_EQUAL(non + nln, count(bf128, "LayerNorm over the "));
    CU_ASSERT_EQUAL(nxp, count(bf128, "    __shared__ float xr[8][32]["));
    CU_ASSERT_EQUAL(nxp, count(bf128, "-column product of each position, summed across the\n"));
    CU_ASSERT_EQUAL(nfused, count(bf128, "    /* k") - count(bf, "    /* k"));
    CU_ASSERT_EQUAL(count(bf, "\": inside k"), 0);
    /* --profile names each absorbed kernel so and counts its FLOPs in the
     * kernel that runs it (the absorbed one: 0) */
    CU_ASSERT_EQUAL(count(bf128, ".out_norm (inside "), non);
    CU_ASSERT_EQUAL(count(bf128, " (inside "), nfused);
    CU_ASSERT_EQUAL(count(bf, ".out_norm (inside "), 0);
    CU_ASSERT_EQUAL(count(bf, " lanes per row, "), count(bf128, " lanes per row, ") + non + nln);
    /* float storage (fp32 mode) takes the same 8-wide layernorms (two float4
     * per mc_ldv8 / mc_stv8) */
    CU_ASSERT_EQUAL(count(fp, " lanes per row, "), count(bf, " lanes per row, "));
    CU_ASSERT_TRUE(count(fp, "mc_ldv8(&b") > 0);
    free(bf128);
    /* programmatic dependent launch: every kernel starts with
     * mc_pdl_begin() and is launched through mc_launch (only the start-up
     * bf16 weight copies keep <<< >>>) */
    CU_ASSERT_EQUAL(count(bf, "    mc_pdl_begin();\n"), count(bf, "__global__ void __launch_bounds__("));
    CU_ASSERT_EQUAL(count(bf, "    mc_launch("), count(bf, "__global__ void __launch_bounds__("));
    CU_ASSERT_EQUAL(count(bf, "<<<"), count(bf, "    mc_f2bf<<<"));
    CU_ASSERT_PTR_NOT_NULL(strstr(bf, "mc_prepare(cudaStream_t s)\n{\n    (void)s;\n    mc_pdl_init();\n"));
    /* deterministic */
    char *bf2 = print_model(MC_CUDA_BF16, 1, &nk, &nscan);
    CU_ASSERT_STRING_EQUAL(bf, bf2);
    free(fp);
    free(bf);
    free(bf2);
}

static void
test_nvcc_compiles(void)
{
    const char *nvcc = unit_nvcc_path();
    if (!nvcc) {
        fprintf(stderr, " skipped (no nvcc) ");
        return;
    }
    int nk, nscan;
    char *src[9];
    src[0] = print_model(MC_CUDA_BF16, 3, &nk, &nscan);
    src[1] = print_model_cfg(cfg24_text, sizeof cfg24_text - 1, MC_CUDA_BF16, 400, 96, 84, &nk, &nscan);
    src[2] = print_model_cfg(cfg24_text, sizeof cfg24_text - 1, MC_CUDA_FP32, 1, 96, 80, &nk, &nscan);
    src[3] = print_model_cfg(cfg24_text, sizeof cfg24_text - 1, MC_CUDA_TF32, 400, 96, 84, &nk, &nscan);
    src[4] = print_model(MC_CUDA_TF32, 2048, &nk, &nscan);
    src[5] = print_model_cfg(cfg32_text, sizeof cfg32_text - 1, MC_CUDA_BF16, 512, 64, 64, &nk, &nscan);
    /* bf16, 131072 rows at stage 0: the MLP with its hidden activations on
     * chip (C = CO = 32, hidden 80); stage 1 (32768 rows) unfused: fc2's
     * kernel and launch gone, both bf16 weight copies passed, the shared
     * memory limit raised; not in float storage */
    CU_ASSERT_EQUAL(count(src[5], "    mc_mlp<131072ll, 32, 80, 32>(AP, w16, w16b, b"), 1);
    CU_ASSERT_EQUAL(count(src[5], ", dim3(1024, 1), mc_mlp_dsm<32, 32>(), s, "), 1);
    /* fc1's bias added from registers by mc_mlp, not by its epilogue */
    CU_ASSERT_EQUAL(count(src[5], "/* fc1's epilogue after the bias, returned"), 1);
    CU_ASSERT_EQUAL(count(src[5], "    mc_mlp<"), 1);
    /* ... its scans in one pass, its downsample in one kernel: compiled here */
    CU_ASSERT_TRUE(count(src[5], "/* one pass: ") > 0);
    CU_ASSERT_EQUAL(count(src[5], "    mc_down<"), 1);
    CU_ASSERT_EQUAL(count(src[5], ".fc2\": inside k"), 1);
    CU_ASSERT_EQUAL(count(src[5], ".fc2 (inside "), 1);
    CU_ASSERT_EQUAL(count(src[5], "mc_mlp_dsm<32, 32>()"), 3);
    /* the 25-tap fusion's position groups in 2D tiles (stage 0: D = 64, 16
     * groups a block as 4 x 4; 16 x 16 positions: 4 groups of 4 along x;
     * then 2 x 4, 1 x 4, 1 x 2 at stages 1-3) */
    CU_ASSERT_EQUAL(count(src[5], "    /* position groups in tiles of 4 x 4 (x groups of 4, rows) */\n"
                                  "    const idx_t d = (it % 16) * 4, q = it / 16, tq = q / 16, r = q % 16;\n"
                                  "    const idx_t x0 = ((tq % 1) * 4 + r % 4) * 4, y = ((tq / 1) % 4) * 4 + r / 4, bb = tq / 4;\n"), 1);
    CU_ASSERT_EQUAL(count(src[5], "position groups in tiles of 2 x 4 "), 1);
    CU_ASSERT_EQUAL(count(src[5], "position groups in tiles of 1 x 4 "), 1);
    CU_ASSERT_EQUAL(count(src[5], "position groups in tiles of 1 x 2 "), 1);
    char *f32 = print_model_cfg(cfg32_text, sizeof cfg32_text - 1, MC_CUDA_FP32, 512, 64, 64, &nk, &nscan);
    CU_ASSERT_EQUAL(count(f32, "    mc_mlp<"), 0);
    CU_ASSERT_EQUAL(count(f32, "    mc_conv3<"), 0);
    free(f32);
    /* 3x3 stride-1 convs without im2col copies (bf16, 16 <= C, CO <= 64,
     * many positions): the 64-channel model's 32 -> 32 stem convs at batch
     * 80 (the 32-channel model's 16-channel ones stay GEMMs: no bf16 weight
     * copy below 32 outputs; stride-2 convs stay GEMMs) */
    CU_ASSERT_EQUAL(count(src[5], "    mc_conv3<"), 0);
    src[6] = print_model_cfg(cfg64_text, sizeof cfg64_text - 1, MC_CUDA_BF16, 80, 128, 128, &nk, &nscan);
    CU_ASSERT_EQUAL(count(src[6], "    mc_conv3<80, 64, 64, 32, 32>(b"), 2);
    CU_ASSERT_EQUAL(count(src[6], "    mc_conv3<"), 2);
    CU_ASSERT_EQUAL(count(src[6], ", dim3(1280, 1), mc_conv3_dsm<64, 32, 32, 64>(), s, "), 2);
    CU_ASSERT_EQUAL(count(src[6], "cudaFuncAttributeMaxDynamicSharedMemorySize, mc_conv3_dsm<"), 2);
    /* float storage's one-pass scan (two float4 per 8 channels) and, in
     * tf32 mode, the on-chip MLP over float rows (mc_mlp32: stage 0, C =
     * CO = 32, hidden 80; fc1's and fc2's weights rounded to tf32 once at
     * start-up), compiled */
    src[7] = print_model_cfg(cfg32_text, sizeof cfg32_text - 1, MC_CUDA_TF32, 512, 64, 64, &nk, &nscan);
    CU_ASSERT_EQUAL(count(src[7], "/* one pass: "), 1);
    CU_ASSERT_TRUE(count(src[7], "const float *__restrict__ b") > 0);
    CU_ASSERT_EQUAL(count(src[7], "    mc_mlp32<131072ll, 32, 80, 32>(b"), 1);
    CU_ASSERT_EQUAL(count(src[7], "    mc_mlp32<"), 1);
    CU_ASSERT_EQUAL(count(src[7], "    mc_mlp<"), 0);
    CU_ASSERT_EQUAL(count(src[7], ", dim3(1024, 1), mc_mlp32_dsm<32, 32>(), s, "), 1);
    CU_ASSERT_EQUAL(count(src[7], "mc_mlp32_dsm<32, 32>()"), 3);
    CU_ASSERT_EQUAL(count(src[7], ".fc2\": inside k"), 1);
    CU_ASSERT_EQUAL(count(src[7], "    mc_round_tf32<<<"), 4);
    CU_ASSERT_EQUAL(count(src[7], "/* fc1's epilogue after the bias, returned (rounded to tf32 by mc_mlp32)"), 1);
    CU_ASSERT_EQUAL(count(src[7], "(mc_mlp32) */\n__global__ void __launch_bounds__(256, 2)\n"), 1);
    /* ... and its 16 -> 16 stem convs as mc_conv3t (float rows and weights,
     * one block per SM, the re-packed weights rounded to tf32 at start-up:
     * two more mc_round_tf32) */
    CU_ASSERT_EQUAL(count(src[7], "    mc_conv3t<512, 32, 32, 16, 16>(b"), 2);
    CU_ASSERT_EQUAL(count(src[7], ", wp, epi2);\n"), 2);
    CU_ASSERT_EQUAL(count(src[7], ", dim3(2048, 1), mc_conv3t_dsm<32, 16, 16, 32>(), s, "), 2);
    CU_ASSERT_EQUAL(count(src[7], "cudaFuncAttributeMaxDynamicSharedMemorySize, mc_conv3t_dsm<"), 2);
    CU_ASSERT_EQUAL(count(src[7], "    mc_conv3<"), 0);
    /* mc_cuda_set_fill (cudagen --fill, for the GPU suite's small models):
     * from 1024 rows on the many-row forms, so the 64-channel model at
     * batch 8 keeps the MLP on chip at stages 0 and 1 (64 and 128 channels,
     * mc_mlp's wgmma forms on sm_90a), which the default leaves as GEMMs;
     * 0 restores the default */
    char *d64 = print_model_cfg(cfg64_text, sizeof cfg64_text - 1, MC_CUDA_BF16, 8, 128, 128, &nk, &nscan);
    CU_ASSERT_EQUAL(count(d64, "    mc_mlp<"), 0);
    mc_cuda_set_fill(1024);
    src[8] = print_model_cfg(cfg64_text, sizeof cfg64_text - 1, MC_CUDA_BF16, 8, 128, 128, &nk, &nscan);
    mc_cuda_set_fill(0);
    CU_ASSERT_EQUAL(count(src[8], "    mc_mlp<8192ll, 64, 160, 64>(AP, w16, w16b, b"), 1);
    CU_ASSERT_EQUAL(count(src[8], "    mc_mlp<2048ll, 128, 320, 128>(AP, w16, w16b, b"), 1);
    CU_ASSERT_EQUAL(count(src[8], "    mc_mlp<"), 2);
    char *d64b = print_model_cfg(cfg64_text, sizeof cfg64_text - 1, MC_CUDA_BF16, 8, 128, 128, &nk, &nscan);
    CU_ASSERT_STRING_EQUAL(d64b, d64);
    free(d64);
    free(d64b);
    /* the paths named above are in the text */
    CU_ASSERT_TRUE(count(src[1], "if (x0 + p >= ") > 0);
    CU_ASSERT_TRUE(count(src[1], "if (ow0 + p >= ") > 0);
    CU_ASSERT_TRUE(count(src[1], "v[j][q] = 0.0f; continue; }") > 0);
    CU_ASSERT_TRUE(count(src[1], ", epv2, b") > 0);
    CU_ASSERT_TRUE(count(src[2], "    mc_gemm<MC_FP32_MODE,") > 0);
    CU_ASSERT_TRUE(count(src[2], ", ws, cnt") > 0);
    CU_ASSERT_TRUE(count(src[2], "    mc_gemm_warp<") > 0);
    /* staged thin products over bf16 rows only; tf32's cp.async GEMMs */
    CU_ASSERT_TRUE(count(src[1], "    mc_gemm_thin_s<") > 0);
    CU_ASSERT_EQUAL(count(src[3], "    mc_gemm_thin_s<"), 0);
    CU_ASSERT_TRUE(count(src[3], "    mc_gemm_thin<") > 0);
    CU_ASSERT_TRUE(count(src[3], "    mc_gemm<MC_TF32, ") > 0);
    CU_ASSERT_TRUE(count(src[3], ">(AP, A4, ") > 0);
    /* out_norm inside the 25-tap fusion, its sums across warps through
     * shared memory where a position spans several */
    CU_ASSERT_TRUE(count(src[4], "\": inside k") > 0);
    CU_ASSERT_TRUE(count(src[4], "    __shared__ float red[8][4];\n") > 0);
    char dir[] = "/tmp/mc-cuda-unit-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[256], cmd[2048];
    int m = snprintf(cmd, sizeof cmd, "(");
    for (int i = 0; i < 9; i++) {
        snprintf(path, sizeof path, "%s/t%d.cu", dir, i);
        FILE *f = fopen(path, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(src[i], f);
        fclose(f);
        free(src[i]);
        m += snprintf(cmd + m, sizeof cmd - (size_t)m,
                      "'%s' -std=c++17 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90a,code=sm_90a "
                      "-c '%s' -o '%s/t%d.o' > '%s/t%d.log' 2>&1 & ",
                      nvcc, path, dir, i, dir, i);
    }
    snprintf(cmd + m, sizeof cmd - (size_t)m, "wait)");
    if (system(cmd)) {}
    for (int i = 0; i < 9; i++) {
        snprintf(path, sizeof path, "%s/t%d.o", dir, i);
        int ok = access(path, R_OK) == 0;
        if (!ok) {
            fprintf(stderr, "\nnvcc failed on t%d.cu (first lines of its errors):\n", i);
            snprintf(cmd, sizeof cmd, "grep -A3 error '%s/t%d.log' | head -30 >&2", dir, i);
            if (system(cmd)) {}
        }
        CU_ASSERT_TRUE(ok);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

/* backends/cuda/device/NAME.cuh after its leading comment (the part the
 * build embeds, backends/cuda/device/embed.cmake), or NULL */
static char *
device_file_body(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/backends/cuda/device/%s.cuh", MC_SOURCE_DIR, name);
    size_t len;
    char msg[600];
    char *text = mc_file_read_all(path, "device source", 1 << 20, &len, msg, sizeof msg);
    if (!text) {
        fprintf(stderr, "\n%s\n", msg);
        return NULL;
    }
    const char *end = strncmp(text, "/*", 2) ? text : strstr(text, "*/\n");
    char *body = end ? strdup(end == text ? text : end + 3) : NULL;
    free(text);
    return body;
}

/* nvcc -c one source into DIR/NAME.o (output in DIR/NAME.log, its errors
 * shown on failure); 0 when the object exists */
static int
nvcc_object(const char *nvcc, const char *dir, const char *name, const char *src)
{
    char cmd[1536];
    snprintf(cmd, sizeof cmd, "'%s' -std=c++17 -gencode=arch=compute_90a,code=sm_90a -x cu -c '%s' -o '%s/%s.o' > '%s/%s.log' 2>&1",
             nvcc, src, dir, name, dir, name);
    if (system(cmd) == 0) return 0;
    fprintf(stderr, "\nnvcc failed on %s (first lines of its errors):\n", src);
    snprintf(cmd, sizeof cmd, "grep -A3 error '%s/%s.log' | head -30 >&2", dir, name);
    if (system(cmd)) {}
    return -1;
}

/* The prelude and the executable's main are real files
 * (backends/cuda/device/mc_prelude.cuh, mc_main.cuh): a generated .cu
 * holds each verbatim (after its leading comment), the main last; nvcc
 * compiles the prelude alone as a file, and the main as a file after the
 * prelude and a stub of the model part (the #defines, mc_arena, P(),
 * mc_prepare, mc_forward, the kernel tables) that cuda_host.c emits
 * before it. */
static void
test_device_files(void)
{
    char *prelude = device_file_body("mc_prelude"), *hmain = device_file_body("mc_main");
    CU_ASSERT_PTR_NOT_NULL_FATAL(prelude);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hmain);
    CU_ASSERT_EQUAL(strncmp(prelude, "#include <cuda_runtime.h>\n", 26), 0);
    CU_ASSERT_EQUAL(strncmp(hmain, "/* ---------------------------------------------------------------- host */\n", 76), 0);
    int nk, nscan;
    char *cu = print_model(MC_CUDA_BF16, 3, &nk, &nscan);
    size_t lc = strlen(cu), lm = strlen(hmain);
    /* the prelude verbatim but for its tap table (the #include of
     * ir/fusion25_taps.def), written out as values in the table's order */
    char *tab = strstr(prelude, "#define TAP("), *end = NULL;
    for (char *q = tab; q && (q = strstr(q, "#undef TAP\n")); q++) end = q;
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    *tab = 0;
    CU_ASSERT_PTR_NOT_NULL(strstr(cu, prelude));
    CU_ASSERT_PTR_NOT_NULL(strstr(cu, end + strlen("#undef TAP\n")));
    CU_ASSERT_PTR_NULL(strstr(cu, "fusion25_taps.def"));
    for (int c = 0; c < 2; c++) {
        char want[256];
        int n = snprintf(want, sizeof want, "    const int %s[25] = {", c ? "dx" : "dy");
        for (int t = 0; t < MC_F25_NTAPS; t++) /* the centre, then a group of 8 per ring */
            n += snprintf(want + n, sizeof want - (size_t)n, "%s%d", !t ? "" : t % 8 == 1 ? ", " : ",",
                          c ? mc_f25_dx(t) : mc_f25_dy(t));
        snprintf(want + n, sizeof want - (size_t)n, "};\n");
        CU_ASSERT_PTR_NOT_NULL(strstr(cu, want));
    }
    CU_ASSERT_TRUE(lc > lm && !strcmp(cu + lc - lm, hmain));
    free(cu);
    free(prelude);
    free(hmain);
    const char *nvcc = unit_nvcc_path();
    if (!nvcc) {
        fprintf(stderr, " (nvcc not found: nvcc part skipped) ");
        return;
    }
    char dir[] = "/tmp/mc-cuda-files-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/backends/cuda/device/mc_prelude.cuh", MC_SOURCE_DIR);
    CU_ASSERT_EQUAL(nvcc_object(nvcc, dir, "prelude", path), 0);
    snprintf(path, sizeof path, "%s/main.cu", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "#include \"%s/backends/cuda/device/mc_prelude.cuh\"\n", MC_SOURCE_DIR);
    fputs("#define P(off) ((float *)(mc_arena + (off)))\n"
          "static char *mc_arena;\n"
          "static void mc_prepare(cudaStream_t s) { (void)s; }\n"
          "static void mc_forward(cudaStream_t s, cudaEvent_t *ev) { (void)s; (void)ev; }\n"
          "#ifndef MC_EMBEDDED_WEIGHTS\n#define MC_EMBEDDED_WEIGHTS 0\n#endif\n"
          "#define MC_NAME \"stub\"\n#define MC_PRECISION \"bf16\"\n#define MC_BATCH 2\n#define MC_SM 90\n"
          "#define MC_NK 1\n#define MC_WEIGHTS_BYTES 256ll\n#define MC_ARENA_BYTES 1024ll\n"
          "#define MC_INPUT_OFF 256ll\n#define MC_OUTPUT_OFF 768ll\n"
          "#define MC_INPUT_RANK 4\n#define MC_INPUT_COUNT 96ll\n#define MC_OUTPUT_RANK 2\n#define MC_OUTPUT_COUNT 10ll\n"
          "#define MC_INPUT_SHAPE {2, 3, 4, 4}\n#define MC_OUTPUT_SHAPE {2, 5}\n"
          "#define MC_INPUT_SHAPE_STR \"[2, 3, 4, 4]\"\n#define MC_OUTPUT_SHAPE_STR \"[2, 5]\"\n"
          "static const char *mc_kernel_names[1] = {\"k0\"};\n"
          "static const double mc_kernel_flops[1] = {1.0};\n", f);
    fprintf(f, "#include \"%s/runtime/exe/mc_cuda_glue.h\"\n", MC_SOURCE_DIR); /* pasted before the main */
    fprintf(f, "#include \"%s/backends/cuda/device/mc_main.cuh\"\n", MC_SOURCE_DIR);
    fclose(f);
    CU_ASSERT_EQUAL(nvcc_object(nvcc, dir, "main", path), 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

/* the number of invalid floating literals in s (a digit sequence with the
 * f suffix and neither '.' nor an exponent, e.g. "1f"), each shown */
static int
bad_literals(const char *s)
{
    int bad = 0;
    for (const char *p = s; *p; p++) {
        if (!(*p >= '0' && *p <= '9') || (p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '.')))
            continue;
        const char *q = p;
        int fl = 0;
        while (isalnum((unsigned char)*q) || *q == '_' || *q == '.' ||
               ((*q == '+' || *q == '-') && (q[-1] == 'e' || q[-1] == 'E')))
            fl |= *q == '.' || *q == 'e' || *q == 'E', q++;
        if (q[-1] == 'f' && !fl && strncmp(p, "0x", 2)) {
            if (bad++ < 3) fprintf(stderr, "\n  invalid literal '%.*s' in '%.40s'", (int)(q - p), p, p > s + 20 ? p - 20 : s);
        }
        p = q - 1;
    }
    return bad;
}

/* every floating literal valid in the .cu of the 16-channel model where
 * its last stage is 1x1 (32x32: the mean pool's "acc *= 1f;" that nvcc
 * rejected), at odd non-square sizes (33x47, 37x45), batch 1 and 3, in
 * each precision; and the 1x1 mean pool's scale is 1.0f */
static void
test_literals_shapes(void)
{
    static const int shapes[][3] = {{1, 32, 32}, {3, 32, 32}, {1, 33, 47}, {3, 33, 47}, {2, 37, 45}};
    static const McCudaPrecision precs[] = {MC_CUDA_FP32, MC_CUDA_TF32, MC_CUDA_BF16};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (size_t j = 0; j < 3; j++) {
            int nk, nscan;
            char *s = print_model_cfg(cfg_text, sizeof cfg_text - 1, precs[j], shapes[i][0], shapes[i][1],
                                      shapes[i][2], &nk, &nscan);
            int bad = bad_literals(s);
            if (bad) fprintf(stderr, "\n  batch %d, %dx%d, precision %zu: %d invalid literals", shapes[i][0],
                             shapes[i][1], shapes[i][2], j, bad);
            CU_ASSERT_EQUAL(bad, 0);
            if (shapes[i][1] == 32) CU_ASSERT_EQUAL(count(s, "    acc *= 1.0f;\n"), 1);
            free(s);
        }
    CU_ASSERT_EQUAL(bad_literals("x * 1f + 2.0f * 3e-05f + 0x7f + 5.f + 1e+10f"), 1);
}

/* slot moves for test_fuse_alias: out_norm's output onto the slot of the
 * fusion's stencil input h, onto u's slot shifted by 64 bytes, or onto
 * u's slot exactly (modes 0-2); ln_1 / ln_2's output onto the slot of the
 * depthwise conv's input (mode 3); fc2's output onto the slot of fc1's
 * input (mode 4); x_proj's output onto the slot of the depthwise conv's
 * input (mode 5); the head GEMM reading the first fc1's weight buffer too
 * (mode 6, a change of the program, not of the plan) */
static int alias_mode;

static void
alias_out_norm(KProgram *kp)
{
    for (int i = 0; i + 1 < kp->nk; i++) {
        const Kernel *k = &kp->k[i], *l = &kp->k[i + 1];
        if (alias_mode == 3 && k->kind == KK_DWCONV && l->kind == KK_LAYERNORM)
            kp->bufs[l->out.buf].offset = kp->bufs[k->in[0].buf].offset;
        if (alias_mode == 4 && k->kind == KK_GEMM && l->kind == KK_GEMM && l->in[0].buf == k->out.buf)
            kp->bufs[l->out.buf].offset = kp->bufs[k->in[0].buf].offset + 64;
        if (alias_mode == 5 && k->kind == KK_DWCONV && l->kind == KK_GEMM)
            kp->bufs[l->out.buf].offset = kp->bufs[k->in[0].buf].offset;
        if (alias_mode == 6 && k->kind == KK_GEMM && l->kind == KK_GEMM && l->in[0].buf == k->out.buf &&
            strstr(k->name, "mlp.fc1")) {
            for (int j = kp->nk - 1; j > i + 1; j--)
                if (kp->k[j].kind == KK_GEMM) {
                    kp->k[j].in[1].buf = k->in[1].buf;
                    break;
                }
            alias_mode = 7;
        }
        if (alias_mode >= 3 || k->kind != KK_FUSION25 || l->kind != KK_LAYERNORM) continue;
        Buffer *o = &kp->bufs[l->out.buf];
        int u = -1;
        for (int a = 0; a < k->nargs; a++) {
            const View *v = &k->args[a];
            if (kp->bufs[v->buf].kind == BUF_SCRATCH && v->rank == 4 && v->stride[3] == 1 && v->shape[3] == l->out.shape[3])
                u = v->buf;
        }
        CU_ASSERT_TRUE_FATAL(u >= 0);
        if (alias_mode == 0) o->offset = kp->bufs[k->in[0].buf].offset;
        else o->offset = kp->bufs[u].offset + (alias_mode == 1 ? 64 : 0);
    }
}

/* the 32-channel model at batch 512, 64x64, changed by alias_out_norm in
 * mode m before the fusion passes (lower: 1) or after the plan */
static char *
print_moved32(McCudaPrecision prec, int m, int lower)
{
    int nk, nscan;
    *(lower ? &lower_hook : &plan_hook) = alias_out_norm;
    alias_mode = m;
    char *s = print_model_cfg(cfg32_text, sizeof cfg32_text - 1, prec, 512, 64, 64, &nk, &nscan);
    lower_hook = plan_hook = NULL;
    return s;
}

/* The fusion passes decide before the memory plan, and make a guest's
 * output live from its host on: no plan puts it on what the host reads.
 * A plan moved so that it does is refused by the verifier (the same
 * fusions printed: the printer trusts the plan); a fusion the program no
 * longer allows (tf32 rounds the MLP's weights in place: not where another
 * kernel reads them) is not made, and one set by hand is refused by the
 * printer. */
static void
test_fuse_alias(void)
{
    int nk, nscan;
    char *plain = print_model(MC_CUDA_BF16, 2048, &nk, &nscan);
    CU_ASSERT_EQUAL(last_verify, 0);
    int n = count(plain, ".out_norm\": inside k"), nxp = count(plain, ".x_proj\": inside k");
    int nln = count(plain, "\": inside k") - n - nxp;
    CU_ASSERT_TRUE(n > 0);
    CU_ASSERT_TRUE(nln > 0);
    CU_ASSERT_TRUE(nxp > 0);
    plan_hook = alias_out_norm;
    for (int m = 0; m <= 5; m++) {
        if (m == 4) continue;
        alias_mode = m;
        char *s = print_model(MC_CUDA_BF16, 2048, &nk, &nscan);
        CU_ASSERT_EQUAL(last_verify, -1);
        if (!strstr(last_msg, "share arena bytes")) fprintf(stderr, "\n  mode %d: %s", m, last_msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(last_msg, "share arena bytes"));
        CU_ASSERT_EQUAL(count(s, "\": inside k"), n + nln + nxp);
        free(s);
    }
    plan_hook = NULL;
    /* the MLP pair likewise (the 32-channel model at batch 512) */
    char *mlp = print_model_cfg(cfg32_text, sizeof cfg32_text - 1, MC_CUDA_BF16, 512, 64, 64, &nk, &nscan);
    CU_ASSERT_EQUAL(count(mlp, "    mc_mlp<"), 1);
    char *moved = print_moved32(MC_CUDA_BF16, 4, 0);
    CU_ASSERT_EQUAL(last_verify, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_msg, "share arena bytes"));
    CU_ASSERT_EQUAL(count(moved, "    mc_mlp<"), 1);
    char *t32 = print_model_cfg(cfg32_text, sizeof cfg32_text - 1, MC_CUDA_TF32, 512, 64, 64, &nk, &nscan);
    CU_ASSERT_EQUAL(count(t32, "    mc_mlp32<"), 1);
    char *shared = print_moved32(MC_CUDA_TF32, 6, 1);
    CU_ASSERT_EQUAL(last_verify, 0);
    CU_ASSERT_EQUAL(count(shared, "    mc_mlp32<"), 0);
    CU_ASSERT_EQUAL(count(shared, "mlp.fc2\": inside k"), 0);
    print_may_fail = 1;
    char *late = print_moved32(MC_CUDA_TF32, 6, 0);
    print_may_fail = 0;
    CU_ASSERT_PTR_NULL(late);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_msg, ".fc2\" cannot run inside k"));
    CU_ASSERT_PTR_NOT_NULL(strstr(last_msg, " as mlp in tf32"));
    free(late);
    free(t32);
    free(shared);
    free(mlp);
    free(moved);
    free(plain);
}

/* the guests of kernel program p by FuseKind; 0 where a guest does not sit
 * right after its host (a downsample's projection: two after) */
static int
guests(const KProgram *p, int n[FUSE_COUNT])
{
    memset(n, 0, sizeof(int) * FUSE_COUNT);
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        if (k->host < 0) continue;
        n[k->fuse]++;
        if (i - k->host != 1 && !(k->fuse == FUSE_DOWN && i - k->host == 2 && p->k[i - 1].host == k->host)) return 0;
    }
    return 1;
}

/* The fusion passes on the 32-channel model at batch 512, 64x64 (the
 * shapes of every fusion): the table's passes in order (concat-in-place
 * first, with nothing to do here, the four fusions, cuda-tile); per
 * precision, which fusions each takes (the downsample in bf16, the MLP in
 * bf16 and tf32, LayerNorms and x_proj in all three); the same memory plan
 * in every precision; a verified program; a second run changes nothing;
 * without the downsample's pass no other fusion takes its kernels; and the
 * printer refuses half a downsample set by hand. */
static void
test_fuse_passes(void)
{
    static const char *names[] = {"concat-in-place", "cuda-fuse-down", "cuda-fuse-ln", "cuda-fuse-mlp", "cuda-fuse-xproj",
                                  "cuda-tile"};
    CU_ASSERT_EQUAL_FATAL(mc_cuda_nkpasses, 6);
    for (int i = 0; i < mc_cuda_nkpasses; i++) {
        CU_ASSERT_STRING_EQUAL(mc_cuda_kpasses[i].name, names[i]);
        CU_ASSERT_TRUE(mc_cuda_kpasses[i].purpose && mc_cuda_kpasses[i].purpose[0]);
    }
    int64_t *plan = NULL;
    int nplan = 0, taken[3][6];
    for (int prec = MC_CUDA_FP32; prec <= MC_CUDA_BF16; prec++) {
        Graph g;
        WeightStore ws;
        KProgram kp;
        McErr err = {{0}};
        lower_cfg(cfg32_text, sizeof cfg32_text - 1, 512, 64, 64, &g, &ws, &kp);
        McTargetDesc t;
        memset(&t, 0, sizeof t);
        t.backend = "cuda";
        t.precision = prec;
        for (int i = 0; i < mc_cuda_nkpasses; i++) {
            KPassCtx ctx;
            memset(&ctx, 0, sizeof ctx);
            ctx.t = &t;
            /* every fusion pass extends a lifetime here; no concat */
            CU_ASSERT_EQUAL(mc_cuda_kpasses[i].fn(&kp, &ctx), i > 0);
            taken[prec][i] = ctx.changes;
        }
        int n[FUSE_COUNT];
        CU_ASSERT_TRUE(guests(&kp, n));
        CU_ASSERT_EQUAL(taken[prec][0], 0);
        CU_ASSERT_EQUAL(n[FUSE_DOWN], 2 * taken[prec][1]);
        CU_ASSERT_EQUAL(n[FUSE_LN], taken[prec][2]);
        CU_ASSERT_EQUAL(n[FUSE_MLP], taken[prec][3]);
        CU_ASSERT_EQUAL(n[FUSE_XPROJ], taken[prec][4]);
        for (int i = 0; i < mc_cuda_nkpasses; i++) {
            KPassCtx ctx;
            memset(&ctx, 0, sizeof ctx);
            ctx.t = &t;
            CU_ASSERT_FALSE(mc_cuda_kpasses[i].fn(&kp, &ctx));
            CU_ASSERT_EQUAL(ctx.changes, 0);
        }
        mc_memplan(&kp);
        CU_ASSERT_EQUAL(mc_kprogram_verify(&kp, &err), 0);
        if (!plan) {
            nplan = kp.nbufs;
            plan = calloc((size_t)nplan, sizeof *plan);
            for (int b = 0; b < nplan; b++) plan[b] = kp.bufs[b].offset;
        }
        CU_ASSERT_EQUAL_FATAL(kp.nbufs, nplan);
        int same = 1;
        for (int b = 0; b < nplan; b++) same &= kp.bufs[b].offset == plan[b];
        CU_ASSERT_TRUE(same);
        if (prec == MC_CUDA_BF16) {
            /* half a downsample: refused by the printer */
            int h = -1;
            for (int i = 0; i < kp.nk && h < 0; i++)
                if (kp.k[i].fuse == FUSE_DOWN) h = kp.k[i].host;
            CU_ASSERT_FATAL(h >= 0);
            kp.k[h + 2].host = -1;
            kp.k[h + 2].fuse = FUSE_NONE;
            McCudaOptions o;
            memset(&o, 0, sizeof o);
            o.precision = MC_CUDA_BF16;
            McBuf b = {0};
            CU_ASSERT_EQUAL(mc_cuda_print(&kp, &o, &b, NULL, &err), -1);
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot run inside"));
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, " as down in bf16"));
            mc_buf_free(&b);
        }
        mc_kprogram_free(&kp);
        if (prec == MC_CUDA_BF16) {
            /* the passes but the downsample's: its kernels stay apart */
            CU_ASSERT_FATAL(mc_lower(&g, &ws, &kp, &err) == 0);
            for (int i = 0; i < mc_cuda_nkpasses; i++) {
                if (!strcmp(mc_cuda_kpasses[i].name, "cuda-fuse-down")) continue;
                KPassCtx ctx;
                memset(&ctx, 0, sizeof ctx);
                ctx.t = &t;
                mc_cuda_kpasses[i].fn(&kp, &ctx);
            }
            CU_ASSERT_TRUE(guests(&kp, n));
            CU_ASSERT_EQUAL(n[FUSE_DOWN], 0);
            CU_ASSERT_EQUAL(n[FUSE_LN] + n[FUSE_MLP] + n[FUSE_XPROJ], taken[prec][2] + taken[prec][3] + taken[prec][4]);
            mc_kprogram_free(&kp);
        }
        mc_weights_free(&ws);
        mc_graph_free(&g);
    }
    free(plan);
    CU_ASSERT_EQUAL(taken[MC_CUDA_FP32][1] + taken[MC_CUDA_TF32][1], 0);
    CU_ASSERT_EQUAL(taken[MC_CUDA_BF16][1], 1);
    CU_ASSERT_EQUAL(taken[MC_CUDA_FP32][3], 0);
    CU_ASSERT_EQUAL(taken[MC_CUDA_TF32][3], 1);
    CU_ASSERT_EQUAL(taken[MC_CUDA_BF16][3], 1);
    for (int prec = MC_CUDA_FP32; prec <= MC_CUDA_BF16; prec++) {
        CU_ASSERT_TRUE(taken[prec][2] > 0 && taken[prec][2] == taken[MC_CUDA_FP32][2]);
        CU_ASSERT_TRUE(taken[prec][4] > 0 && taken[prec][4] == taken[MC_CUDA_FP32][4]);
    }
}

/* A graph of four products at batch 32, 64x64: fc (16 -> 32), exp (32 ->
 * 64), a 3x3 stride-2 depthwise conv, proj (64 -> 32).  exp, the conv and
 * proj have a downsample's shape; fc and exp an MLP pair's (tf32: C, CO <=
 * 64), the conv and proj an x_proj pair's.  The downsample goes first and
 * blocks the others whatever the precision: bf16 runs it in one kernel,
 * tf32 and fp32 keep all four apart. */
static const char down3_yaml[] =
    "graph:\n  name: down3\n  nodes:\n"
    "    - {name: x, op: input, dtype: f32, shape: [32, 64, 64, 16]}\n"
    "    - {name: fc.weight, op: weight, dtype: f32, shape: [32, 16]}\n"
    "    - {name: fc, op: linear, inputs: [x, fc.weight], dtype: f32, shape: [32, 64, 64, 32]}\n"
    "    - {name: exp.weight, op: weight, dtype: f32, shape: [64, 32]}\n"
    "    - {name: exp, op: linear, inputs: [fc, exp.weight], dtype: f32, shape: [32, 64, 64, 64]}\n"
    "    - {name: dw.weight, op: weight, dtype: f32, shape: [64, 1, 3, 3]}\n"
    "    - {name: dw, op: conv2d, inputs: [exp, dw.weight], stride: [2, 2], pad: [1, 1], dilation: [1, 1], groups: 64, "
    "dtype: f32, shape: [32, 32, 32, 64]}\n"
    "    - {name: proj.weight, op: weight, dtype: f32, shape: [32, 64]}\n"
    "    - {name: proj, op: linear, inputs: [dw, proj.weight], dtype: f32, shape: [32, 32, 32, 32]}\n"
    "  outputs: [proj]\n";

static void
test_fuse_down_first(void)
{
    McErr err = {{0}};
    Graph g;
    memset(&g, 0, sizeof g);
    CU_ASSERT_FATAL(mc_graph_yaml_load_mem(down3_yaml, sizeof down3_yaml - 1, "down3.yaml", &g, &err) == 0);
    WeightStore ws;
    mc_weights_init(&ws);
    mc_weights_random(&g, &ws, 3);
    for (int prec = MC_CUDA_FP32; prec <= MC_CUDA_BF16; prec++) {
        KProgram kp;
        CU_ASSERT_FATAL(mc_lower(&g, &ws, &kp, &err) == 0);
        CU_ASSERT_FATAL(kp.nk == 4 && kp.k[0].kind == KK_GEMM && kp.k[2].kind == KK_DWCONV);
        /* the shapes are there */
        CU_ASSERT_TRUE(mc_cu_fuse_shape(&kp, 1, FUSE_DOWN));
        CU_ASSERT_TRUE(mc_cu_fuse_shape(&kp, 0, FUSE_MLP));
        CU_ASSERT_TRUE(mc_cu_fuse_shape(&kp, 2, FUSE_XPROJ));
        cuda_passes(&kp, (McCudaPrecision)prec);
        CU_ASSERT_EQUAL(mc_kprogram_verify(&kp, &err), 0);
        int n[FUSE_COUNT];
        CU_ASSERT_TRUE(guests(&kp, n));
        CU_ASSERT_EQUAL(n[FUSE_MLP] + n[FUSE_XPROJ] + n[FUSE_LN], 0);
        CU_ASSERT_EQUAL(n[FUSE_DOWN], prec == MC_CUDA_BF16 ? 2 : 0);
        if (prec == MC_CUDA_BF16) CU_ASSERT_TRUE(kp.k[2].host == 1 && kp.k[3].host == 1);
        mc_kprogram_free(&kp);
    }
    mc_weights_free(&ws);
    mc_graph_free(&g);
}

/* the .cu of kp in precision prec, NULL where mc_cuda_print refuses it
 * (the message in err) */
static char *
print_kp(const KProgram *kp, McCudaPrecision prec, McErr *err)
{
    McCudaOptions o;
    memset(&o, 0, sizeof o);
    o.precision = prec;
    o.sm = 90;
    McBuf b = {0};
    if (mc_cuda_print(kp, &o, &b, NULL, err)) {
        mc_buf_free(&b);
        return NULL;
    }
    return b.s;
}

/* kernel i's schedule field *f set to v is refused by the printer, the
 * message naming the kernel and "what" */
static void
refused(KProgram *kp, McCudaPrecision prec, int i, int64_t *f, int64_t v, const char *what)
{
    McErr err = {{0}};
    char name[128];
    const int64_t keep = *f;
    *f = v;
    char *cu = print_kp(kp, prec, &err);
    CU_ASSERT_PTR_NULL(cu);
    snprintf(name, sizeof name, "kernel k%d \"%s\": schedule %s", i, kp->k[i].name, what);
    if (!strstr(err.msg, name)) fprintf(stderr, "\n  want '%s' in: %s", name, err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, name));
    CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
    free(cu);
    *f = keep;
}

/* The cuda-tile pass on the 32-channel model (batch 512 at 64x64: 128-row
 * tiles, one-pass scans; batch 1: split-K, three-pass scans), every
 * precision: it records the mc_gemm kernels' tiles, split-K and threads and
 * the scans' chunks and channels, and nothing else; the .cu is the one the
 * printer makes with no schedule; a second run changes nothing.  Hand-set
 * schedules: another tile_n, split-K where there was none (its workspace
 * in the layout), shorter scan chunks, 64-channel one-pass blocks change
 * the .cu as asked; impossible ones are refused naming the kernel. */
static void
test_tile_pass(void)
{
    static const int batch[] = {512, 1};
    int nsplit = 0, nscan1 = 0, nscan3 = 0, nedit = 0;
    for (int bi = 0; bi < 2; bi++)
        for (int prec = MC_CUDA_FP32; prec <= MC_CUDA_BF16; prec++) {
            Graph g;
            WeightStore ws;
            KProgram kp;
            McErr err = {{0}};
            plan_cfg(cfg32_text, sizeof cfg32_text - 1, (McCudaPrecision)prec, batch[bi], 64, 64, &g, &ws, &kp);
            char *cu = print_kp(&kp, (McCudaPrecision)prec, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(cu);
            Sched *keep = calloc((size_t)kp.nk, sizeof *keep);
            int gemm = -1, thin = -1, scan = -1, ln = -1;
            for (int i = 0; i < kp.nk; i++) {
                const Kernel *k = &kp.k[i];
                const Sched *sc = &k->sched;
                keep[i] = *sc;
                if (mc_cu_gemm_tiled(&kp, i, (McCudaPrecision)prec)) {
                    CU_ASSERT_TRUE(sc->tile_m && sc->tile_n && sc->split && sc->threads == 256 && !sc->vec);
                    CU_ASSERT_TRUE(sc->split > 1 ? sc->tile_k > 0 : sc->tile_k == 0);
                    nsplit += sc->split > 1;
                    if (gemm < 0 && sc->split == 1 && k->N >= 64 && k->K >= 128 && k->kind == KK_GEMM) gemm = i;
                } else if (k->kind == KK_SCAN) {
                    CU_ASSERT_TRUE(sc->tile_k > 0 && (sc->vec == 1 || sc->vec == 8));
                    if (sc->tile_n) CU_ASSERT_TRUE(sc->threads == 256 && sc->vec == 8);
                    if (sc->tile_n) nscan1++;
                    else nscan3++;
                    scan = i;
                } else {
                    Sched z;
                    memset(&z, 0, sizeof z);
                    CU_ASSERT_EQUAL(memcmp(sc, &z, sizeof z), 0);
                    if (k->kind == KK_GEMM && k->host < 0 && mc_cu_gemm_thin(k)) thin = i;
                    if (k->kind == KK_LAYERNORM && k->host < 0) ln = i;
                }
            }
            /* the schedules are what the printer does without them */
            for (int i = 0; i < kp.nk; i++) memset(&kp.k[i].sched, 0, sizeof(Sched));
            char *cu0 = print_kp(&kp, (McCudaPrecision)prec, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(cu0);
            CU_ASSERT_STRING_EQUAL(cu, cu0);
            free(cu0);
            for (int i = 0; i < kp.nk; i++) kp.k[i].sched = keep[i];
            int changes = -1;
            CU_ASSERT_FALSE(cuda_pass(&kp, (McCudaPrecision)prec, mc_cuda_nkpasses - 1, &changes));
            CU_ASSERT_EQUAL(changes, 0);
            CU_ASSERT_FATAL(gemm >= 0 && scan >= 0 && thin >= 0 && ln >= 0);
            /* hand-set: the other tile width */
            Sched *sg = &kp.k[gemm].sched;
            const int64_t M = kp.k[gemm].M, N = kp.k[gemm].N, K = kp.k[gemm].K, bn = sg->tile_n == 64 ? 128 : 64;
            char want[160];
            sg->tile_n = bn;
            char *e = print_kp(&kp, (McCudaPrecision)prec, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(e);
            snprintf(want, sizeof want, ", %d, %d, %lldll, %lld, %lld, ", (int)sg->tile_m, (int)bn, (long long)M, (long long)N,
                     (long long)K);
            CU_ASSERT_PTR_NOT_NULL(strstr(e, want));
            CU_ASSERT_STRING_NOT_EQUAL(e, cu);
            free(e);
            /* ... and split-K in two slices of K / 2 (rounded up to 32) */
            sg->split = 2;
            e = print_kp(&kp, (McCudaPrecision)prec, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(e);
            snprintf(want, sizeof want, ", 2, %lld>(", (long long)(((K + 1) / 2 + 31) / 32 * 32));
            if (!strstr(e, want)) fprintf(stderr, "\n  no '%s'", want);
            CU_ASSERT_PTR_NOT_NULL(strstr(e, want));
            CudaLayout lay;
            mc_cuda_layout(&kp, (McCudaPrecision)prec, &lay);
            CU_ASSERT_TRUE(lay.counter_off - lay.splitk_off >= 2 * M * N * 4);
            mc_cuda_layout_free(&lay);
            free(e);
            nedit++;
            refused(&kp, (McCudaPrecision)prec, gemm, &sg->tile_k, 16, "tile_k=16");
            refused(&kp, (McCudaPrecision)prec, gemm, &sg->tile_k, K, "split=2 tile_k=");
            sg->split = 0;
            refused(&kp, (McCudaPrecision)prec, gemm, &sg->tile_m, 96, "tile_m=96");
            refused(&kp, (McCudaPrecision)prec, gemm, &sg->tile_n, 256, "tile_n=256");
            refused(&kp, (McCudaPrecision)prec, gemm, &sg->threads, 128, "threads=128");
            refused(&kp, (McCudaPrecision)prec, gemm, &sg->vec, 4, "vec=4");
            refused(&kp, (McCudaPrecision)prec, gemm, &sg->tile_m, -64, "tile_m=-64");
            refused(&kp, (McCudaPrecision)prec, thin, &kp.k[thin].sched.tile_n, 64, "tile_n=64: the CUDA printer takes no");
            refused(&kp, (McCudaPrecision)prec, ln, &kp.k[ln].sched.grain, 4, "grain=4");
            *sg = keep[gemm];
            /* the scan: shorter chunks (three passes), 64 channels a block (one pass) */
            Sched *ss = &kp.k[scan].sched;
            const int64_t L = kp.k[scan].out.shape[1] * kp.k[scan].out.shape[2], D = kp.k[scan].out.shape[3];
            refused(&kp, (McCudaPrecision)prec, scan, &ss->vec, 4, "vec=4");
            refused(&kp, (McCudaPrecision)prec, scan, &ss->split, 2, "split=2");
            if (!ss->tile_n) {
                refused(&kp, (McCudaPrecision)prec, scan, &ss->tile_k, L + 1, "tile_k=");
                refused(&kp, (McCudaPrecision)prec, scan, &ss->tile_n, 64, "tile_n=64");
                ss->tile_k = ss->tile_k > 1 ? ss->tile_k / 2 : 2;
                snprintf(want, sizeof want, "/* %lld chunks of %lld positions", (long long)((L + ss->tile_k - 1) / ss->tile_k),
                         (long long)ss->tile_k);
            } else {
                refused(&kp, (McCudaPrecision)prec, scan, &ss->tile_n, 32, "tile_n=32");
                refused(&kp, (McCudaPrecision)prec, scan, &ss->tile_k, ss->tile_k + 1, "tile_k=");
                ss->tile_n = ss->tile_n == 128 ? 64 : 128;
                ss->tile_k = 0;
                if (D % ss->tile_n) ss->tile_n = 64;
                snprintf(want, sizeof want, "a block per (chunk, b, %d channels)", (int)ss->tile_n);
            }
            e = print_kp(&kp, (McCudaPrecision)prec, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(e);
            if (!strstr(e, want)) fprintf(stderr, "\n  no '%s'", want);
            CU_ASSERT_PTR_NOT_NULL(strstr(e, want));
            free(e);
            free(keep);
            free(cu);
            mc_kprogram_free(&kp);
            mc_weights_free(&ws);
            mc_graph_free(&g);
        }
    CU_ASSERT_TRUE(nsplit > 0);
    CU_ASSERT_TRUE(nscan1 > 0);
    CU_ASSERT_TRUE(nscan3 > 0);
    CU_ASSERT_EQUAL(nedit, 6);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"view index: contiguous, broadcast, slice, permute", test_view_index},
    {"epilogue text (cuda and c dialects)", test_epilogue},
    {"dialect preludes, identifiers, precision names", test_dialects},
    {"fusions decided before the plan: moved plans refused, fusions no longer allowed not made", test_fuse_alias},
    {"the fusion passes: per precision, one plan for all, verified, idempotent", test_fuse_passes},
    {"the downsample first: no kernel of its shape runs inside another", test_fuse_down_first},
    {"cuda-tile: the printers' tiles recorded, hand-set ones printed or refused", test_tile_pass},
    {"whole program: kernels, precision, determinism", test_program_structure},
    {"floating literals valid at 1x1, odd sizes, batch 1 and 3, every precision", test_literals_shapes},
    {"generated .cu compiles with nvcc for sm_90 and sm_90a", test_nvcc_compiles},
    {"the prelude and main are files: embedded verbatim, each compiled by nvcc", test_device_files},
};

MC_UNIT_MAIN("cuda_emit", tests)
