/* tests/unit/test_cuda_dense.c -- the CUDA backend's dense-prediction
 * kernels (resize, avgpool: backends/cuda/cuda_dense.c), its concat
 * copies and what it tells the concat-in-place pass, without a GPU.
 *
 * - mc_cuda_supports (the target row's supports()): every kind of
 *   kernels.def has a printer; a kind without one is refused with a
 *   sentence, by the row and by mc_cuda_print, never printed as nothing.
 * - mc_cu_strided_out_ok: the kinds whose printers write any out view.
 * - The printed text of a graph with every form (8 channels a thread with
 *   16-byte loads, 2, align_corners 0 and 1, out == 1, even and uneven
 *   bins, a fused add, channel-slice writes and copies) in fp32, tf32 and
 *   bf16, and nvcc -c of it
 *   (skipped, and said so, without nvcc); 64-bit coordinate arithmetic
 *   where the sizes need it.
 * - Emulated: the printed kernels and mc_forward of weight-free graphs of
 *   resizes, pools, ReLUs, adds, slices and concats, compiled as C++ for
 *   the CPU with a small stand-in for the CUDA built-ins (blockIdx,
 *   threadIdx, bf16, the 16-byte loads and stores, which check their
 *   alignment, the butterfly sums of a pool's lanes: OS threads at a
 *   barrier) and run block by block, thread by thread, in fp32 and bf16,
 *   against the reference kernels (mc_ref_resize, mc_ref_adaptive_avg_pool):
 *   fp32 within 1e-5 relative per element, bf16 within 1e-2 relative L2.
 *   Odd sizes, batch 2, both align_corners, out or in of 1, 8, 4, 2 and 1
 *   channels a thread, 1 to 32 lanes a pool's bin, strided inputs (channel
 *   slices, 8-aligned or not), the outputs channel slices of a concat.
 *   Skipped without a C++ compiler ($CXX, g++, c++).
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backends/cuda/cuda.h"
#include "backends/cuda/cuda_forms.h"
#include "backends/cuda/cuda_print.h"
#include "backends/ref/ref_kernels.h"
#include "frontend/weights.h"
#include "passes/pipeline.h"

/* ------------------------------------------------------------ helpers */

/* The cuda target's program for graph text (random weights, seed 5), in
 * precision prec; 0 or -1 (the message printed) */
static int
program(const char *text, McCudaPrecision prec, Graph *g, WeightStore *ws, KProgram *kp)
{
    McErr err = {{0}};
    mc_graph_init(g, "t");
    mc_weights_init(ws);
    if (mc_graph_parse(g, text, strlen(text), "case", &err)) {
        fprintf(stderr, "\n%s\n%s\n", text, err.msg);
        return -1;
    }
    mc_weights_random(g, ws, 5);
    McTarget t = mc_cuda_target_row;
    t.desc.precision = prec;
    if (mc_pipeline_run(g, ws, &t, NULL, kp, &err)) {
        fprintf(stderr, "\ncuda pipeline: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* the whole .cu of kp (malloc'd), or NULL with the message in err */
static char *
print_cu(const KProgram *kp, McCudaPrecision prec, McErr *err)
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

/* the .cu of graph text in precision prec (NULL: failed, said why) */
static char *
print_text(const char *text, McCudaPrecision prec)
{
    Graph g;
    WeightStore ws;
    KProgram kp;
    char *cu = NULL;
    McErr err = {{0}};
    if (!program(text, prec, &g, &ws, &kp)) {
        cu = print_cu(&kp, prec, &err);
        if (!cu) fprintf(stderr, "\nmc_cuda_print: %s\n", err.msg);
        mc_kprogram_free(&kp);
    }
    mc_weights_free(&ws);
    mc_graph_free(&g);
    return cu;
}

/* the text of kernel `id`'s __global__ (from its name to the closing
 * brace), or "" */
static const char *
kernel_text(const char *cu, const char *id, char *buf, size_t n)
{
    char head[96];
    snprintf(head, sizeof head, "\n%s(", id);
    const char *s = strstr(cu, head), *e = s ? strstr(s, "\n}\n") : NULL;
    buf[0] = 0;
    if (s && e && (size_t)(e - s) < n) {
        memcpy(buf, s, (size_t)(e - s));
        buf[e - s] = 0;
    }
    return buf;
}

static int
has(const char *s, const char *pat)
{
    if (strstr(s, pat)) return 1;
    fprintf(stderr, "\n  missing: %s\n", pat);
    return 0;
}

/* ------------------------------------------------------------ supports */

/* every kind is printed; a kind past the table is refused with a sentence
 * by the target row's supports() and by mc_cuda_print */
static void
test_supports(void)
{
    char why[200];
    Kernel k;
    memset(&k, 0, sizeof k);
    CU_ASSERT_PTR_EQUAL(mc_cuda_target_row.supports, mc_cuda_supports);
    for (int kind = 0; kind < KK_COUNT; kind++) {
        k.kind = (KernelKind)kind;
        CU_ASSERT_EQUAL(mc_cuda_supports(NULL, &k, why, sizeof why), 1);
    }
    k.kind = KK_COUNT;
    why[0] = 0;
    CU_ASSERT_EQUAL(mc_cuda_supports(NULL, &k, why, sizeof why), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "the CUDA backend has no kernel for the kind"));

    /* a program holding such a kernel: mc_cuda_print says which, prints nothing */
    Graph g;
    WeightStore ws;
    KProgram kp;
    CU_ASSERT_FATAL(program("graph t {\n  %x = input : f32[1,5,7,8]\n"
                            "  %y = resize_bilinear %x size=[3,4] align_corners=0 : f32[1,3,4,8]\n  return %y\n}\n",
                            MC_CUDA_FP32, &g, &ws, &kp) == 0);
    CU_ASSERT_FATAL(kp.nk == 1 && kp.k[0].kind == KK_RESIZE);
    McErr err = {{0}};
    char *cu = print_cu(&kp, MC_CUDA_FP32, &err);
    CU_ASSERT_PTR_NOT_NULL(cu);
    CU_ASSERT_PTR_NOT_NULL(cu ? strstr(cu, "__global__ void __launch_bounds__(256)\nk0_y(") : NULL);
    free(cu);
    kp.k[0].kind = KK_COUNT;
    CU_ASSERT_PTR_NULL(print_cu(&kp, MC_CUDA_FP32, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cuda: kernel k0 \"y\": the CUDA backend has no kernel for the kind"));
    mc_kprogram_free(&kp);
    mc_weights_free(&ws);
    mc_graph_free(&g);
}

/* the kinds whose printers write any out view; none inside a fusion */
static void
test_strided_out_ok(void)
{
    Kernel ks[2];
    memset(ks, 0, sizeof ks);
    KProgram p;
    memset(&p, 0, sizeof p);
    p.k = ks;
    p.nk = 2;
    ks[0].host = ks[1].host = -1;
    for (int kind = 0; kind < KK_COUNT; kind++) {
        ks[0].kind = (KernelKind)kind;
        CU_ASSERT_EQUAL(mc_cu_strided_out_ok(&p, &ks[0]), kind != KK_SCAN);
    }
    ks[0].kind = KK_FUSION25;
    ks[1].kind = KK_LAYERNORM;
    ks[1].host = 0;
    ks[1].fuse = FUSE_LN;
    CU_ASSERT_FALSE(mc_cu_strided_out_ok(&p, &ks[0]));
    CU_ASSERT_FALSE(mc_cu_strided_out_ok(&p, &ks[1]));
}

/* ------------------------------------------------------------ printed text */

/* the lead's example graph: a conv, a pool, resizes of 6 and 8 channels
 * (one and eight a thread), align_corners 1 down, a resize + add, a concat
 * of the input and two resizes; plus an out == 1 resize */
static const char example[] =
    "graph t1 {\n"
    "  %x = input : f32[1,9,11,8]\n"
    "  %w1 = weight : f32[6,8,1,1]\n"
    "  %c1 = conv2d %x, %w1 stride=[1,1] pad=[0,0] dilation=[1,1] groups=1 : f32[1,9,11,6]\n"
    "  %r1 = relu %c1 : f32[1,9,11,6]\n"
    "  %p = adaptive_avg_pool %r1 size=[3,3] : f32[1,3,3,6]\n"
    "  %up = resize_bilinear %p size=[9,11] align_corners=0 : f32[1,9,11,6]\n"
    "  %d = resize_bilinear %x size=[5,4] align_corners=1 : f32[1,5,4,8]\n"
    "  %u2 = resize_bilinear %d size=[9,11] align_corners=0 : f32[1,9,11,8]\n"
    "  %s = add %u2, %x : f32[1,9,11,8]\n"
    "  %one = resize_bilinear %s size=[1,11] align_corners=1 : f32[1,1,11,8]\n"
    "  %back = resize_bilinear %one size=[9,11] align_corners=1 : f32[1,9,11,8]\n"
    "  %cat = concat %x, %up, %back : f32[1,9,11,22]\n"
    "  return %cat\n}\n";

static void
check_example(const char *cu, McCudaPrecision prec)
{
    char kt[8192];
    const int bf = prec == MC_CUDA_BF16;
    /* the pool: uneven bins along x (11 -> 3), bins of 3 rows; 2 channels a thread */
    kernel_text(cu, "k1_p", kt, sizeof kt);
    CU_ASSERT(has(kt, "const idx_t y0 = oy * 3, y1 = y0 + 3;"));
    CU_ASSERT(has(kt, "x0 = (idx_t)((int)ox * 11 / 3), x1 = (idx_t)(((int)ox * 11 + 13) / 3);"));
    CU_ASSERT(has(kt, "const float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));"));
    CU_ASSERT(has(kt, "const idx_t c = (i2 % 3) * 2, ox = (i2 / 3) % 3, oy = (i2 / 9) % 3, bb = i2 / 27;"));
    CU_ASSERT(has(kt, bf ? "b3[i] = __float2bfloat16_rn(acc[q]);" : "b3[i] = acc[q];"));
    /* 3x3 -> 9x11, align_corners 0: n = max((2 oy + 1) 3 - 9, 0), src = n / 18 */
    kernel_text(cu, "k2_up", kt, sizeof kt);
    CU_ASSERT(has(kt, "const int ny = max(((int)oy * 2 + 1) * 3 - 9, (int)0);"));
    CU_ASSERT(has(kt, "const idx_t y0 = (idx_t)(ny / 18), y1 = min(y0 + 1, (idx_t)2);"));
    CU_ASSERT(has(kt, "const float wy = (float)(ny % 18) / 18.0f;"));
    CU_ASSERT(has(kt, "const float wx = (float)(nx % 22) / 22.0f;"));
    CU_ASSERT(has(kt, bf ? "v3[q] = mc_ld(b3[((bb * 3 + y1) * 3 + x1) * 6 + c + q]);"
                         : "v3[q] = b3[((bb * 3 + y1) * 3 + x1) * 6 + c + q];"));
    /* 9x11 -> 5x4, align_corners 1, 8 channels a thread from the (float) input */
    kernel_text(cu, "k3_d", kt, sizeof kt);
    CU_ASSERT(has(kt, "const int ny = (int)oy * 8;"));
    CU_ASSERT(has(kt, "const idx_t y0 = (idx_t)(ny / 4), y1 = min(y0 + 1, (idx_t)8);"));
    CU_ASSERT(has(kt, "const int nx = (int)ox * 10;"));
    CU_ASSERT(has(kt, "mc_ldv8(&b0[((bb * 9 + y1) * 11 + x1) * 8 + c], v3);"));
    CU_ASSERT(has(kt, "[i8 * 8], r);"));
    CU_ASSERT(has(kt, "if (i8 >= 20) return;"));
    /* the resize + add: the add's operand loaded 8-wide, one epilogue */
    kernel_text(cu, "k4_u2", kt, sizeof kt);
    CU_ASSERT(has(kt, "mc_ldv8(&b0[i8 * 8], av0);"));
    CU_ASSERT(has(kt, "float e2 = acc[q] + e1;"));
    /* out == 1 rows with align_corners 1: source row 0 */
    kernel_text(cu, "k5_one", kt, sizeof kt);
    CU_ASSERT(has(kt, "const idx_t y0 = 0, y1 = 0;\n    const float wy = 0.0f;"));
    kernel_text(cu, "k6_back", kt, sizeof kt);
    CU_ASSERT(has(kt, "const int ny = (int)oy * 0;"));
    /* concat-in-place: the resizes write their slices of the 22 channels
     * (the output: float in every precision), per element at offsets 8
     * and 14; the input's copy into channels 0..7 stays */
    CU_ASSERT(has(kt, "[14 + ((i) / 8) * 22 + ((i) % 8)] = acc[q];"));
    kernel_text(cu, "k2_up", kt, sizeof kt);
    CU_ASSERT(has(kt, "[8 + ((i) / 6) * 22 + ((i) % 6)] = acc[q];"));
    kernel_text(cu, "k7_cat", kt, sizeof kt);
    CU_ASSERT(has(kt, "[((i) / 8) * 22 + ((i) % 8)] = e0;"));
    CU_ASSERT_PTR_NULL(strstr(cu, "\nk8_"));
}

static void
test_example_text(void)
{
    const char *nvcc = unit_nvcc_path();
    char dir[] = "/tmp/mc_cuda_dense_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    for (int prec = MC_CUDA_FP32; prec <= MC_CUDA_BF16; prec++) {
        char *cu = print_text(example, (McCudaPrecision)prec);
        CU_ASSERT_PTR_NOT_NULL_FATAL(cu);
        check_example(cu, (McCudaPrecision)prec);
        /* every kernel has its __global__ and its launch (8: two copies went) */
        for (int i = 0; i < 8; i++) {
            char pat[32];
            snprintf(pat, sizeof pat, "mc_launch(k%d_", i);
            CU_ASSERT_PTR_NOT_NULL(strstr(cu, pat));
            snprintf(pat, sizeof pat, "\nk%d_", i);
            CU_ASSERT_PTR_NOT_NULL(strstr(cu, pat));
        }
        if (nvcc) {
            char src[96], cmd[512];
            snprintf(src, sizeof src, "%s/ex_%s.cu", dir, mc_cuda_precision_name((McCudaPrecision)prec));
            FILE *f = fopen(src, "w");
            CU_ASSERT_PTR_NOT_NULL_FATAL(f);
            fputs(cu, f);
            fclose(f);
            snprintf(cmd, sizeof cmd, "%s -std=c++17 -gencode=arch=compute_90a,code=sm_90a -c %s -o %s.o > %s.log 2>&1", nvcc,
                     src, src, src);
            int rc = system(cmd);
            if (rc) fprintf(stderr, "\n  nvcc failed: see %s.log\n", src);
            CU_ASSERT_EQUAL(rc, 0);
            if (!rc) {
                snprintf(cmd, sizeof cmd, "rm -f %s %s.o %s.log", src, src, src);
                CU_ASSERT_EQUAL(system(cmd), 0);
            }
        }
        free(cu);
    }
    if (!nvcc) fprintf(stderr, "\n  (no nvcc: the dense .cu files were not compiled) ");
    rmdir(dir);
}

/* sizes whose coordinate products pass 2^31: long long arithmetic */
static void
test_coord_type(void)
{
    char *cu = print_text("graph t {\n  %x = input : f32[1,2,40000,1]\n"
                          "  %y = resize_bilinear %x size=[1,60000] align_corners=0 : f32[1,1,60000,1]\n"
                          "  %z = adaptive_avg_pool %x size=[1,30000] : f32[1,1,30000,1]\n"
                          "  %a = resize_bilinear %z size=[1,60000] align_corners=1 : f32[1,1,60000,1]\n"
                          "  %s = add %y, %a : f32[1,1,60000,1]\n  return %s\n}\n",
                          MC_CUDA_FP32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cu);
    CU_ASSERT(has(cu, "const long long nx = max(((long long)ox * 2 + 1) * 40000 - 60000, (long long)0);"));
    CU_ASSERT(has(cu, "const idx_t x0 = (idx_t)(nx / 120000), x1 = min(x0 + 1, (idx_t)39999);"));
    CU_ASSERT(has(cu, "x0 = (idx_t)((long long)ox * 40000 / 30000), x1 = (idx_t)(((long long)ox * 40000 + 69999) / 30000);"));
    CU_ASSERT(has(cu, "const long long nx = (long long)ox * 29999;"));
    /* rows (2 -> 1): int */
    CU_ASSERT(has(cu, "const int ny = max(((int)oy * 2 + 1) * 2 - 1, (int)0);"));
    free(cu);
}

/* ------------------------------------------------------------ emulated */

/* The CUDA built-ins the dense and elementwise kernels use, for the CPU:
 * a block's threads one after another, or, for a kernel with butterfly
 * sums (mc_group_sum; listed by mc_lane_set), each an OS thread meeting
 * the others at a barrier (a thread leaving the kernel drops out of it);
 * the 16-byte loads and stores abort on a misaligned address, as the GPU
 * would fault. */
static const char shim[] =
    "#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n"
    "#include <algorithm>\n#include <barrier>\n#include <thread>\n#include <vector>\nusing std::min;\nusing std::max;\n"
    "struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };\n"
    "static thread_local dim3 blockIdx, threadIdx;\n"
    "typedef void *cudaStream_t;\ntypedef void *cudaEvent_t;\n"
    "static void cudaEventRecord(cudaEvent_t, cudaStream_t) {}\n"
    "#define __global__\n#define __launch_bounds__(n)\n#define __restrict__\n"
    "static inline void mc_pdl_begin(void) {}\n"
    "struct __nv_bfloat16 {\n    uint16_t x;\n"
    "    operator float() const { uint32_t u = (uint32_t)x << 16; float f; memcpy(&f, &u, 4); return f; }\n};\n"
    "static inline __nv_bfloat16 __float2bfloat16_rn(float f)\n{\n"
    "    uint32_t u;\n    memcpy(&u, &f, 4);\n    u += 0x7fffu + ((u >> 16) & 1u);\n"
    "    __nv_bfloat16 r;\n    r.x = (uint16_t)(u >> 16);\n    return r;\n}\n"
    "static inline float mc_ld(float v) { return v; }\n"
    "static inline float mc_ld(__nv_bfloat16 v) { return (float)v; }\n"
    "static inline void mc_al(const void *p)\n{\n"
    "    if ((uintptr_t)p % 16) { fprintf(stderr, \"misaligned 16-byte access %p\\n\", p); exit(3); }\n}\n"
    "static inline void mc_ldv8(const float *p, float *v) { mc_al(p); for (int q = 0; q < 8; q++) v[q] = p[q]; }\n"
    "static inline void mc_ldv8(const __nv_bfloat16 *p, float *v) { mc_al(p); for (int q = 0; q < 8; q++) v[q] = p[q]; }\n"
    "static inline void mc_stv8(float *p, const float *v) { mc_al(p); for (int q = 0; q < 8; q++) p[q] = v[q]; }\n"
    "static inline void mc_stv8(__nv_bfloat16 *p, const float *v)\n"
    "{\n    mc_al(p);\n    for (int q = 0; q < 8; q++) p[q] = __float2bfloat16_rn(v[q]);\n}\n"
    "static float mc_lanes[256];\nstatic std::barrier<> *mc_bar;\nstatic std::vector<const void *> mc_lane_kernels;\n"
    "template <class F>\nstatic void\nmc_lane_set(F f)\n{\n    mc_lane_kernels.push_back(reinterpret_cast<const void *>(f));\n}\n"
    "template <int G>\nstatic float\nmc_group_sum(float v)\n{\n"
    "    const unsigned t = threadIdx.x, g0 = t - t % G;\n    mc_lanes[t] = v;\n    mc_bar->arrive_and_wait();\n"
    "    float s = 0.0f;\n    for (unsigned j = g0; j < g0 + G; j++) s += mc_lanes[j];\n"
    "    mc_bar->arrive_and_wait();\n    return s;\n}\n"
    "template <typename... KA, typename... AA>\n"
    "static void\nmc_launch(void (*kernel)(KA...), dim3 grid, size_t smem, cudaStream_t s, AA... args)\n{\n"
    "    (void)smem;\n    (void)s;\n"
    "    const bool lanes = std::find(mc_lane_kernels.begin(), mc_lane_kernels.end(),\n"
    "                                 reinterpret_cast<const void *>(kernel)) != mc_lane_kernels.end();\n"
    "    for (unsigned by = 0; by < grid.y; by++)\n        for (unsigned bx = 0; bx < grid.x; bx++) {\n"
    "            if (!lanes) {\n                for (unsigned t = 0; t < 256; t++) {\n"
    "                    blockIdx = dim3(bx, by, 0);\n                    threadIdx = dim3(t, 0, 0);\n"
    "                    kernel(args...);\n                }\n                continue;\n            }\n"
    "            std::barrier<> bar(256);\n            mc_bar = &bar;\n            std::vector<std::thread> ts;\n"
    "            for (unsigned t = 0; t < 256; t++)\n"
    "                ts.emplace_back([&, bx, by, t] {\n"
    "                    blockIdx = dim3(bx, by, 0);\n                    threadIdx = dim3(t, 0, 0);\n"
    "                    kernel(args...);\n                    mc_bar->arrive_and_drop();\n                });\n"
    "            for (auto &th : ts) th.join();\n        }\n}\n";

/* main: argv = arena bytes, input offset, input floats, output offset,
 * output floats, input file, output file; the arena starts as NaNs (an
 * element no kernel wrote shows) */
static const char emu_main[] =
    "int\nmain(int argc, char **argv)\n{\n"
    "    if (argc != 8) return 2;\n"
    "    long long n = atoll(argv[1]), io = atoll(argv[2]), ni = atoll(argv[3]), oo = atoll(argv[4]), no = atoll(argv[5]);\n"
    "    mc_arena = (char *)aligned_alloc(256, (size_t)(n + 255) / 256 * 256);\n"
    "    if (!mc_arena) return 2;\n    memset(mc_arena, 0xff, (size_t)n);\n"
    "    FILE *f = fopen(argv[6], \"rb\");\n"
    "    if (!f || fread(mc_arena + io, 4, (size_t)ni, f) != (size_t)ni) return 2;\n    fclose(f);\n"
    "    mc_lanes_register();\n    mc_forward(0, 0);\n"
    "    f = fopen(argv[7], \"wb\");\n"
    "    if (!f || fwrite(mc_arena + oo, 4, (size_t)no, f) != (size_t)no) return 2;\n"
    "    return fclose(f) ? 2 : 0;\n}\n";

static const char *
cxx_path(void)
{
    const char *e = getenv("CXX");
    if (e && *e) return e;
    if (system("command -v g++ >/dev/null 2>&1") == 0) return "g++";
    return system("command -v c++ >/dev/null 2>&1") == 0 ? "c++" : NULL;
}

/* One concat operand: op (0 resize, 1 pool) of x's channels [start,
 * start + len) to oh x ow, relu after it, and (add) plus a second such
 * resize (align_corners 1 - align) */
typedef struct Operand {
    int op, align, relu, add;
} Operand;

typedef struct EmuCase {
    int B, H, W, C, start, len, oh, ow, n;
    Operand o[4];
} EmuCase;

static void
operand_ref(const EmuCase *c, const Operand *o, const float *xs, float *y)
{
    const int64_t n = (int64_t)c->B * c->oh * c->ow * c->len;
    if (o->op) mc_ref_adaptive_avg_pool(c->B, c->H, c->W, c->len, c->oh, c->ow, xs, y);
    else mc_ref_resize(c->B, c->H, c->W, c->len, c->oh, c->ow, o->align, xs, y);
    if (o->relu)
        for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0;
    if (o->add) {
        float *t = malloc((size_t)n * sizeof *t);
        mc_ref_resize(c->B, c->H, c->W, c->len, c->oh, c->ow, 1 - o->align, xs, t);
        for (int64_t i = 0; i < n; i++) y[i] += t[i];
        free(t);
    }
}

/* the graph text of case c */
static void
emu_text(const EmuCase *c, char *s, size_t n)
{
    int w = snprintf(s, n, "graph t {\n  %%x = input : f32[%d,%d,%d,%d]\n", c->B, c->H, c->W, c->C);
    const char *xs = "x";
    if (c->len != c->C) {
        w += snprintf(s + w, n - (size_t)w, "  %%s = slice %%x start=%d len=%d : f32[%d,%d,%d,%d]\n", c->start, c->len, c->B,
                      c->H, c->W, c->len);
        xs = "s";
    }
    char sh[64];
    snprintf(sh, sizeof sh, "f32[%d,%d,%d,%d]", c->B, c->oh, c->ow, c->len);
    for (int j = 0; j < c->n; j++) {
        const Operand *o = &c->o[j];
        if (o->op)
            w += snprintf(s + w, n - (size_t)w, "  %%a%d = adaptive_avg_pool %%%s size=[%d,%d] : %s\n", j, xs, c->oh, c->ow, sh);
        else
            w += snprintf(s + w, n - (size_t)w, "  %%a%d = resize_bilinear %%%s size=[%d,%d] align_corners=%d : %s\n", j, xs,
                          c->oh, c->ow, o->align, sh);
        if (o->relu) w += snprintf(s + w, n - (size_t)w, "  %%b%d = relu %%a%d : %s\n", j, j, sh);
        if (o->add)
            w += snprintf(s + w, n - (size_t)w,
                          "  %%r%d = resize_bilinear %%%s size=[%d,%d] align_corners=%d : %s\n  %%d%d = add %%%c%d, %%r%d : %s\n", j,
                          xs, c->oh, c->ow, 1 - o->align, sh, j, o->relu ? 'b' : 'a', j, j, sh);
    }
    w += snprintf(s + w, n - (size_t)w, "  %%y = concat");
    for (int j = 0; j < c->n; j++)
        w += snprintf(s + w, n - (size_t)w, "%s %%%c%d", j ? "," : "", c->o[j].add ? 'd' : c->o[j].relu ? 'b' : 'a', j);
    snprintf(s + w, n - (size_t)w, " : f32[%d,%d,%d,%d]\n  return %%y\n}\n", c->B, c->oh, c->ow, c->len * c->n);
}

/* the expected output of c for input x */
static float *
emu_ref(const EmuCase *c, const float *x)
{
    const int64_t pos = (int64_t)c->B * c->H * c->W, opos = (int64_t)c->B * c->oh * c->ow, on = opos * c->len;
    float *xs = malloc((size_t)(pos * c->len) * sizeof *xs), *t = malloc((size_t)on * sizeof *t);
    float *y = malloc((size_t)(on * c->n) * sizeof *y);
    for (int64_t q = 0; q < pos; q++) memcpy(xs + q * c->len, x + q * c->C + c->start, (size_t)c->len * sizeof *x);
    for (int j = 0; j < c->n; j++) {
        operand_ref(c, &c->o[j], xs, t);
        for (int64_t q = 0; q < opos; q++)
            memcpy(y + q * c->len * c->n + j * c->len, t + q * c->len, (size_t)c->len * sizeof *t);
    }
    free(xs);
    free(t);
    return y;
}

static int
write_floats(const char *path, const float *v, int64_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(v, sizeof *v, (size_t)n, f);
    return fclose(f) || w != (size_t)n ? -1 : 0;
}

/* kp's kernels and mc_forward compiled for the CPU and run on x into y
 * (nout floats); 0, or -1 (said why) */
static int
emulate(const KProgram *kp, McCudaPrecision prec, const char *dir, const char *cxx, const float *x, float *y,
        int64_t nout)
{
    McErr err = {{0}};
    char *cu = print_cu(kp, prec, &err);
    if (!cu) return fprintf(stderr, "\nmc_cuda_print: %s\n", err.msg), -1;
    /* the device half from the first kernel to mc_prepare (every kernel
     * of these programs uses nothing of the prelude but what the stand-in
     * defines) */
    const char *s = strstr(cu, "\n/* k0 "), *e = strstr(cu, "static void\nmc_prepare(");
    int inb = -1, outb = -1;
    for (int b = 0; b < kp->nbufs; b++) {
        if (kp->bufs[b].kind == BUF_INPUT) inb = b;
        if (kp->bufs[b].kind == BUF_OUTPUT) outb = b;
    }
    char src[160], bin[160], in[160], out[160], cmd[1024];
    snprintf(src, sizeof src, "%s/emu.cpp", dir);
    snprintf(bin, sizeof bin, "%s/emu", dir);
    snprintf(in, sizeof in, "%s/x.bin", dir);
    snprintf(out, sizeof out, "%s/y.bin", dir);
    FILE *f = s && e && inb >= 0 && outb >= 0 ? fopen(src, "w") : NULL;
    if (!f) {
        free(cu);
        return fprintf(stderr, "\nemulate: no device code or buffers\n"), -1;
    }
    McBuf act = {0};
    mc_cemit_prelude(&act, &mc_dialect_c);
    fputs(shim, f);
    fputs(act.s, f);
    fwrite(s, 1, (size_t)(e - s), f);
    /* the kernels with butterfly sums run thread by thread in lockstep */
    fputs("static void\nmc_lanes_register(void)\n{\n", f);
    for (const char *g = strstr(s, "__launch_bounds__(256)\n"); g && g < e; g = strstr(g + 1, "__launch_bounds__(256)\n")) {
        const char *nm = g + strlen("__launch_bounds__(256)\n"), *par = strchr(nm, '('), *end = strstr(nm, "\n}\n");
        const char *sum = strstr(nm, "mc_group_sum<");
        if (par && end && sum && sum < end) fprintf(f, "    mc_lane_set(%.*s);\n", (int)(par - nm), nm);
    }
    fputs("}\n", f);
    fputs(emu_main, f);
    fclose(f);
    mc_buf_free(&act);
    free(cu);
    CudaLayout lay;
    mc_cuda_layout(kp, prec, &lay);
    const int64_t io = mc_cuda_buf_offset(kp, &lay, inb), oo = mc_cuda_buf_offset(kp, &lay, outb), nin = kp->bufs[inb].bytes / 4;
    const int64_t arena = lay.arena_bytes;
    mc_cuda_layout_free(&lay);
    if (kp->bufs[outb].bytes / 4 != nout || write_floats(in, x, nin)) return fprintf(stderr, "\nemulate: sizes\n"), -1;
    snprintf(cmd, sizeof cmd, "%s -std=c++20 -O1 -w -pthread -o %s %s && %s %lld %lld %lld %lld %lld %s %s", cxx, bin, src, bin,
             (long long)arena, (long long)io, (long long)nin, (long long)oo, (long long)nout, in, out);
    if (system(cmd)) return fprintf(stderr, "\nemulate: %s failed (source %s)\n", cmd, src), -1;
    f = fopen(out, "rb");
    size_t got = f ? fread(y, sizeof *y, (size_t)nout, f) : 0;
    if (f) fclose(f);
    return got == (size_t)nout ? 0 : -1;
}

/* worst |y - r| / (|r| + rms(r)) and the relative L2 error */
static void
errors(const float *y, const float *r, int64_t n, double *worst, double *rel)
{
    double ss = 0, dd = 0;
    *worst = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)r[i] * r[i];
    const double rms = sqrt(ss / (double)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - r[i]);
        dd += d * d;
        double q = isfinite(y[i]) ? d / (fabs(r[i]) + rms) : INFINITY;
        if (q > *worst) *worst = q;
    }
    *rel = sqrt(dd / (ss > 0 ? ss : 1));
}

static const EmuCase emu_cases[] = {
    /* 8 channels a thread from an 8-aligned slice; resize up and down, a pool, a resize + add */
    {2, 13, 17, 24, 8, 8, 7, 5, 4, {{0, 0, 1, 0}, {0, 1, 0, 0}, {1, 0, 0, 0}, {0, 0, 0, 1}}},
    {2, 7, 5, 16, 0, 16, 13, 17, 3, {{0, 0, 0, 0}, {0, 1, 1, 0}, {1, 0, 0, 1}}},
    /* 4, 2 and 1 channels a thread: unaligned slices, odd widths */
    {2, 9, 11, 14, 1, 12, 6, 13, 3, {{0, 1, 0, 0}, {1, 0, 1, 0}, {0, 0, 0, 1}}},
    {1, 7, 9, 6, 0, 6, 13, 4, 2, {{0, 0, 1, 0}, {1, 0, 0, 0}}},
    {2, 9, 11, 13, 3, 5, 4, 23, 3, {{0, 1, 0, 0}, {1, 0, 1, 0}, {0, 0, 0, 1}}},
    {1, 9, 11, 5, 0, 5, 17, 3, 2, {{0, 0, 0, 0}, {1, 0, 0, 0}}},
    {2, 9, 7, 13, 3, 8, 5, 4, 2, {{0, 1, 0, 0}, {1, 0, 0, 0}}}, /* 8 channels, not 8-aligned */
    /* out == 1 along an axis, and on both; in == 1 */
    {2, 9, 11, 8, 0, 8, 1, 7, 3, {{0, 0, 0, 0}, {0, 1, 0, 0}, {1, 0, 1, 0}}},
    {1, 6, 10, 3, 0, 3, 1, 1, 3, {{0, 0, 0, 0}, {0, 1, 0, 0}, {1, 0, 0, 1}}},
    {2, 1, 1, 8, 0, 8, 5, 3, 2, {{0, 0, 0, 0}, {0, 1, 0, 1}}},
    /* pools of a PPM: 1, 6 of 13x17 (uneven), even bins, identity; 8 to 32
     * lanes per bin (mc_cu_pool_lanes), odd channels and 8 */
    {2, 32, 32, 16, 0, 16, 1, 1, 2, {{1, 0, 0, 0}, {0, 1, 0, 0}}},
    {1, 37, 45, 13, 4, 5, 2, 3, 2, {{1, 0, 1, 0}, {1, 0, 0, 1}}},
    {2, 13, 17, 24, 8, 16, 1, 1, 2, {{1, 0, 0, 0}, {0, 0, 1, 0}}},
    {1, 13, 17, 16, 0, 16, 6, 6, 2, {{1, 0, 0, 0}, {0, 0, 0, 0}}},
    {2, 12, 18, 8, 0, 8, 3, 6, 2, {{1, 0, 0, 0}, {0, 1, 0, 0}}},
    {1, 5, 7, 8, 0, 8, 5, 7, 2, {{1, 0, 0, 0}, {0, 0, 0, 0}}},
};

static void
test_emulated(void)
{
    const char *cxx = cxx_path();
    if (!cxx) {
        fprintf(stderr, "\n  (no C++ compiler: the emulated kernels did not run) ");
        return;
    }
    char dir[] = "/tmp/mc_cuda_emu_XXXXXX", text[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    rng_seed(77);
    int failed = 0;
    for (size_t ci = 0; ci < sizeof emu_cases / sizeof emu_cases[0]; ci++) {
        const EmuCase *c = &emu_cases[ci];
        emu_text(c, text, sizeof text);
        const int64_t nin = (int64_t)c->B * c->H * c->W * c->C, nout = (int64_t)c->B * c->oh * c->ow * c->len * c->n;
        float *x = rand_vec(nin, -1, 1), *r = emu_ref(c, x), *y = malloc((size_t)nout * sizeof *y);
        for (int prec = MC_CUDA_FP32; prec <= MC_CUDA_BF16; prec += MC_CUDA_BF16 - MC_CUDA_FP32) {
            Graph g;
            WeightStore ws;
            KProgram kp;
            CU_ASSERT_FATAL(program(text, (McCudaPrecision)prec, &g, &ws, &kp) == 0);
            /* concat-in-place: a resize or pool writes its slice (an
             * operand the graph passes merged with another stays a copy) */
            int inplace = 0;
            for (int i = 0; i < kp.nk; i++)
                inplace += kp.k[i].kind != KK_ELTWISE && kp.bufs[kp.k[i].out.buf].kind == BUF_OUTPUT;
            CU_ASSERT_TRUE(inplace > 0);
            double worst = INFINITY, rel = INFINITY;
            if (!emulate(&kp, (McCudaPrecision)prec, dir, cxx, x, y, nout)) errors(y, r, nout, &worst, &rel);
            const int ok = prec == MC_CUDA_FP32 ? worst <= 1e-5 : rel <= 1e-2;
            if (!ok) {
                fprintf(stderr, "\n  case %zu %s: worst %.3g, rel L2 %.3g\n%s", ci, mc_cuda_precision_name((McCudaPrecision)prec),
                        worst, rel, text);
                failed = 1;
            }
            CU_ASSERT_TRUE(ok);
            mc_kprogram_free(&kp);
            mc_weights_free(&ws);
            mc_graph_free(&g);
        }
        free(x);
        free(r);
        free(y);
    }
    if (!failed) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"supports: every kind printed, one past the table refused", test_supports},
    {"strided out views: the kinds that write them", test_strided_out_ok},
    {"resize, avgpool, concat copies: printed text in each precision, nvcc -c", test_example_text},
    {"coordinates past 2^31: 64-bit arithmetic", test_coord_type},
    {"emulated on the CPU against the reference kernels (fp32, bf16)", test_emulated},
};

MC_UNIT_MAIN("cuda_dense", tests)
