/* backends/cuda/cuda_gemm.c -- the printers of the dense products: the
 * tiled GEMM (mc_gemm: linear layers and implicit-GEMM convolutions, FFMA
 * or tensor cores), the direct stem conv, mc_conv3 (3x3 convs from input
 * rows in shared memory) and the MLP with its hidden layer on chip
 * (mc_mlp) and the downsample in one kernel (mc_down); their launch-time
 * shared memory.  Their forms (tile shapes, split-K, bf16 weight copies,
 * which convs run direct or as mc_conv3, mc_down's tile): cuda_forms.c.
 * Calls the printing utilities (cuda_emit.c); called by the program
 * printer (cuda_print.c). */
#include "cuda_gemm.h"
#include <stdio.h>
#include <string.h>

static const char *mode_name[] = {"MC_FP32_MODE", "MC_TF32", "MC_BF16"};

/* How a GEMM / implicit-GEMM conv reads its operands */
typedef struct GemmOps {
    int conv, skinny, va, vw, thin, a8, w16;
    int pipe; /* tensor cores through the cp.async pipeline (AP address loader, dynamic shared memory) */
    int ts;   /* thin product with rows staged through shared memory (mc_gemm_thin_s, AP) */
    int64_t M, N, K;
} GemmOps;

static void
gemm_ops(const Kernel *k, int ki, const CudaOpts *o, const CudaLayout *lay, GemmOps *g)
{
    const View *a = &k->in[0];
    g->conv = k->kind == KK_CONV;
    mc_cu_gemm_dims(k, &g->M, &g->N, &g->K);
    int64_t N = g->N, K = g->K, Ci = g->conv ? a->shape[3] : 0;
    /* skinny products (x_proj: N = R + 2; dt_projs: K = R; the first stem
     * convolution: K = 27) are memory-bound, gain nothing from tensor cores,
     * and feed the scan's exp(delta * A): they always run FFMA in fp32 */
    g->skinny = N < 32 || K < 32;
    /* 16-byte operand loads: four consecutive k are contiguous and aligned */
    g->vw = K % 4 == 0 && k->in[1].offset % 4 == 0;
    g->va = mc_cu_gemm_va(k);
    /* x_proj (and other thin products): a thread per row */
    g->thin = mc_cu_gemm_thin(k);
    /* bf16 storage feeding a bf16 tensor-core GEMM: A4 returns eight
     * consecutive k as raw bf16 (one 16-byte load, uint4) that go into
     * shared memory as they are (no float round trip); needs 8-element
     * alignment of k runs */
    int a8 = g->va && !g->skinny && o->precision == MC_CUDA_BF16 && mc_cu_buf_bf16(a->buf) && K % 8 == 0 && a->offset % 8 == 0;
    if (a8 && g->conv)
        a8 = Ci % 8 == 0 && a->stride[0] % 8 == 0 && a->stride[1] % 8 == 0 && a->stride[2] % 8 == 0;
    else if (a8)
        a8 = a->shape[0] == 1 || a->stride[0] % 8 == 0;
    g->a8 = a8;
    g->w16 = lay->w16[ki] >= 0 && !g->thin;
    /* the cp.async pipeline copies raw 16-byte chunks: bf16 A and bf16
     * weights (bf16 mode), float A and float weights (tf32, fp32) */
    g->pipe = !g->skinny && g->va && (o->precision == MC_CUDA_BF16 ? a8 && g->w16 : !mc_cu_buf_bf16(a->buf) && g->vw && !g->w16);
    /* thin products with many rows (else a warp per row) over bf16 rows,
     * 16-byte aligned (float rows: measured no faster) */
    g->ts = g->thin && !g->conv && g->M > MC_CUDA_FILL / 4 && a->stride[1] == 1 && mc_cu_buf_bf16(a->buf) && K % 8 == 0 &&
            a->offset % 8 == 0 && (a->shape[0] == 1 || a->stride[0] % 8 == 0);
}

/* the dynamic shared memory a GEMM kernel is launched with ("0": none) */
void
mc_cu_gemm_smem(const Kernel *k, int ki, const CudaOpts *o, const CudaLayout *lay, char *s, size_t n)
{
    GemmOps g;
    gemm_ops(k, ki, o, lay, &g);
    snprintf(s, n, "0");
    if (g.ts) snprintf(s, n, "mc_thin_dsm<%lld, %lld>()", (long long)g.N, (long long)g.K);
    if (!g.pipe) return;
    int bm, bn, sk;
    int64_t kc;
    mc_cuda_gemm_tiles(k, &bm, &bn, &sk, &kc);
    snprintf(s, n, "mc_gemm_dsm<%s, %d, %d, %lld>()", mode_name[o->precision], bm, bn, (long long)(sk > 1 ? kc : g.K));
}

/* the epilogue of a column pair (n0, n0 + 1) of row m of GEMM k (N
 * columns, a dense output): stored as one pair (ret 0), or returned as a
 * float2 (ret 1) */
static void
epi2_lambda(McBuf *b, const Kernel *k, int64_t N, const char *name, int ret, int nobias)
{
    const View *o = &k->out;
    mc_buf_printf(b, "    auto %s = [=](int64_t m, int n0, float acc0, float acc1)%s {\n", name, ret ? " -> float2" : "");
    mc_buf_printf(b, "        const int64_t i = m * %lld + n0;\n        float r0, r1;\n", (long long)N);
    for (int q = 0; q < 2; q++) {
        char res[32];
        mc_buf_puts(b, "        {\n");
        mc_buf_printf(b, "            float acc = acc%d;\n", q);
        if (k->nin == 3 && !nobias) {
            mc_buf_printf(b, "            const int n = n0 + %d;\n            acc += ", q);
            mc_cu_load(b, &k->in[2], "n");
            mc_buf_puts(b, ";\n");
        }
        mc_cemit_epilogue(b, &mc_dialect_cuda, k, "acc", q ? "(i + 1)" : "i", "            ", res, sizeof res);
        mc_buf_printf(b, "            r%d = %s;\n        }\n", q, res);
    }
    if (ret) {
        mc_buf_puts(b, "        (void)i;\n        return make_float2(r0, r1);\n    };\n");
    } else if (mc_cu_buf_bf16(o->buf)) {
        /* bf16 storage: both columns rounded and stored as one 4-byte pair */
        mc_buf_puts(b, "        *(__nv_bfloat162 *)&");
        mc_cu_ref(b, o, "i");
        mc_buf_puts(b, " = __floats2bfloat162_rn(r0, r1);\n    };\n");
    } else {
        mc_buf_puts(b, "        *(float2 *)&");
        mc_cu_ref(b, o, "i");
        mc_buf_puts(b, " = make_float2(r0, r1);\n    };\n");
    }
}

/* The GEMM epilogue for two adjacent columns n0, n0 + 1 of row m (the pair
 * a thread holds in the mma accumulator layout): one 8-byte store where the
 * output is a contiguous, 8-byte aligned [.., N] array (N even: every pair
 * starts at an even element; buffers are 64-byte aligned), else two epi.
 * With stage (bf16 output, N % 8 == 0, 8-aligned) also epv2, the same pair
 * computed but returned (the GEMM stages it through shared memory); returns
 * whether it printed epv2. */
static int
print_epi2(McBuf *b, const Kernel *k, int64_t N, int stage)
{
    const View *o = &k->out;
    int vec = N % 2 == 0 && o->offset % 2 == 0 && o->rank >= 1 && o->stride[o->rank - 1] == 1;
    for (int d = o->rank - 2; d >= 0 && vec; d--)
        if (o->shape[d] != 1 && o->stride[d] != o->stride[d + 1] * o->shape[d + 1]) vec = 0;
    if (!vec) {
        mc_buf_puts(b, "    auto epi2 = [=](int64_t m, int n0, float acc0, float acc1) {\n");
        mc_buf_puts(b, "        epi(m, n0, acc0);\n        epi(m, n0 + 1, acc1);\n    };\n");
        return 0;
    }
    stage = stage && mc_cu_buf_bf16(o->buf) && N % 8 == 0 && o->offset % 8 == 0;
    for (int f = 0; f < 1 + stage; f++) epi2_lambda(b, k, N, f ? "epv2" : "epi2", f, 0);
    return stage;
}

void
mc_cu_print_conv_direct(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *x = &k->in[0], *w = &k->in[1];
    long long Ho = k->out.shape[1], Wo = k->out.shape[2], Co = k->out.shape[3];
    long long H = x->shape[1], W = x->shape[2], Ci = x->shape[3], KH = w->shape[2], KW = w->shape[3];
    long long K = Ci * KH * KW, M = k->out.shape[0] * Ho * Wo;
    char lin[192];
    mc_cu_header(b, p, k, ki);
    mc_buf_printf(b, "/* direct: a thread per output position, its %lld inputs in registers, the weights\n"
                     " * [co][kh][kw][ci] in constant memory (copied from wp by mc_prepare) */\n", K);
    mc_buf_printf(b, "__constant__ float %s_wc[%lld];\n", id, K * Co);
    mc_cu_kernel_open(b, k, id, "const float *__restrict__ wp");
    mc_buf_puts(b, "    (void)wp;\n");
    mc_buf_puts(b, "    const idx_t m = (idx_t)blockIdx.x * 256 + threadIdx.x;\n");
    mc_buf_printf(b, "    if (m >= %lld) return;\n", M);
    mc_buf_printf(b, "    const idx_t ow = m %% %lld, oh = (m / %lld) %% %lld, bb = m / %lld;\n", Wo, Wo, Ho, Wo * Ho);
    mc_buf_printf(b, "    float xv[%lld];\n", K);
    mc_buf_printf(b, "#pragma unroll\n    for (int kh = 0; kh < %lld; kh++)\n#pragma unroll\n        for (int kw = 0; kw < %lld; kw++) {\n",
                  KH, KW);
    mc_buf_printf(b, "            const idx_t ih = oh * %lld - %lld + kh * %lld, iw = ow * %lld - %lld + kw * %lld;\n",
                  (long long)k->attrs.stride[0], (long long)k->attrs.pad[0], (long long)k->attrs.dil[0],
                  (long long)k->attrs.stride[1], (long long)k->attrs.pad[1], (long long)k->attrs.dil[1]);
    mc_buf_printf(b, "            const bool in = ih >= 0 && ih < %lld && iw >= 0 && iw < %lld;\n", H, W);
    mc_buf_printf(b, "#pragma unroll\n            for (int ci = 0; ci < %lld; ci++)\n", Ci);
    /* the element (bb, ih, iw, ci) through the view's strides (the input is
     * a permuted view of the NCHW image) */
    snprintf(lin, sizeof lin, "%lld + bb * %lld + ih * %lld + iw * %lld + ci * %lld", (long long)x->offset,
             (long long)x->stride[0], (long long)x->stride[1], (long long)x->stride[2], (long long)x->stride[3]);
    mc_buf_printf(b, "                xv[(kh * %lld + kw) * %lld + ci] = in ? %sb%d[%s]%s : 0.0f;\n        }\n", KW, Ci,
                  mc_cu_buf_bf16(x->buf) ? "mc_ld(" : "", x->buf, lin, mc_cu_buf_bf16(x->buf) ? ")" : "");
    mc_buf_printf(b, "#pragma unroll\n    for (int j = 0; j < %lld; j++) {\n", Co / 8);
    mc_buf_puts(b, "        float acc[8];\n#pragma unroll\n        for (int q = 0; q < 8; q++) {\n            acc[q] = 0.0f;\n");
    mc_buf_printf(b, "#pragma unroll\n            for (int kk = 0; kk < %lld; kk++) acc[q] = fmaf(xv[kk], %s_wc[(j * 8 + q) * %lld + kk], acc[q]);\n        }\n",
                  K, id, K);
    if (k->nin == 3) {
        mc_buf_puts(b, "#pragma unroll\n        for (int q = 0; q < 8; q++) acc[q] += ");
        mc_cu_load(b, &k->in[2], "j * 8 + q");
        mc_buf_puts(b, ";\n");
    }
    mc_buf_printf(b, "        const idx_t i8 = m * %lld + j;\n", Co / 8);
    mc_cu_vec8_finish(b, k, "        ");
    mc_buf_puts(b, "    }\n}\n\n");
    ln->gx = (M + 255) / 256;
    ln->gy = 1;
}

int
mc_cu_print_gemm(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, const CudaOpts *o,
           const CudaLayout *lay, CudaLaunch *ln, McErr *err)
{
    GemmOps g;
    gemm_ops(k, ki, o, lay, &g);
    int64_t M = g.M, N = g.N, K = g.K;
    const View *a = &k->in[0];
    int conv = g.conv;
    int64_t Ho = 0, Wo = 0, H = 0, W = 0, Ci = 0, KH = 0, KW = 0;
    if (conv) {
        Ho = k->out.shape[1]; Wo = k->out.shape[2];
        H = a->shape[1]; W = a->shape[2]; Ci = a->shape[3];
        KH = k->in[1].shape[2]; KW = k->in[1].shape[3];
    } else if (!mc_cu_is_contig(&k->in[1], N, K)) {
        return mc_err(err, "cuda: %s: GEMM weight is not a contiguous [N,K] matrix", k->name);
    }
    int bm, bn, sk;
    int64_t kc;
    mc_cuda_gemm_tiles(k, &bm, &bn, &sk, &kc);
    int skinny = g.skinny, va = g.va, vw = g.vw, thin = g.thin, a8 = g.a8;
    const char *mode = skinny ? "MC_FP32" : mode_name[o->precision];
    /* the loaders emitted: A (one element) only where the GEMM reads it, A4
     * (a 16-byte chunk), AP (its address, for the cp.async pipeline) */
    int v0 = thin || g.pipe || (va && !skinny && o->precision != MC_CUDA_FP32) ? 1 : 0;
    int vn = g.pipe || g.ts ? 3 : 1 + va;
    /* mc_conv3 reads the input rows itself and stores through epi2 alone */
    const int c3 = conv && mc_cu_conv3_tc(p, ki, o->precision);
    if (c3) vn = v0;
    if (g.ts) v0 = 2; /* mc_gemm_thin_s reads AP only */
    const char *ty4 = a8 ? "uint4" : "float4", *ld4 = a8 ? "*(const uint4 *)&" : "mc_ldv4(&", *cl4 = a8 ? "" : ")";
    const char *typ = mc_cu_buf_bf16(a->buf) ? "const __nv_bfloat16 *" : "const float *";
    /* per loader: result type, the load around the element reference, zero */
    const char *lty[3] = {"float", ty4, typ}, *lpre[3] = {"mc_ld(", ld4, "&"}, *lpost[3] = {")", cl4, ""};
    const char *lzero[3] = {"0.0f", a8 ? "make_uint4(0u, 0u, 0u, 0u)" : "make_float4(0.0f, 0.0f, 0.0f, 0.0f)", "nullptr"};
    const char *lname[3] = {"A", "A4", "AP"};
    Params ps;
    mc_cu_collect_params(k, &ps);
    mc_cu_header(b, p, k, ki);
    /* blocks per SM the register allocation must allow (MC_GEMM_MINB_L for
     * 128-row or 128-column tensor-core tiles, MC_GEMM_MINB_S otherwise;
     * one for mc_conv3t, whose float rows and weights leave one block per SM) */
    mc_buf_printf(b, "%s __launch_bounds__(256, %s)\n%s(", mc_dialect_cuda.kernel_qual,
                  thin || (c3 && !g.w16) ? "1" : (bm == 128 || bn == 128) && !skinny ? "MC_GEMM_MINB_L" : "MC_GEMM_MINB_S", id);
    char extra[192];
    int w16 = g.w16;
    snprintf(extra, sizeof extra, "%s%s%s%s%s", conv ? "const float *__restrict__ wp" : "", conv && sk > 1 ? ", " : "",
             sk > 1 ? "float *__restrict__ ws, unsigned *__restrict__ cnt" : "", w16 && (conv || sk > 1) ? ", " : "",
             w16 ? "const __nv_bfloat16 *__restrict__ w16" : "");
    mc_cu_print_params(b, &ps, extra[0] ? extra : NULL);
    mc_buf_puts(b, KERNEL_BODY);
    if (conv) {
        mc_buf_printf(b, "    /* implicit GEMM: m = (b, oh, ow) of [%lld,%lld,%lld], k = (kh, kw, ci) of [%lld,%lld,%lld] */\n",
                      (long long)k->out.shape[0], (long long)Ho, (long long)Wo, (long long)KH, (long long)KW,
                      (long long)Ci);
        mc_cu_idx_typedef(b, k);
        for (int v = v0; v < vn; v++) {
            mc_buf_printf(b, "    auto %s = [=](int64_t m64, int k) -> %s {\n", lname[v], lty[v]);
            mc_buf_puts(b, "        const idx_t m = (idx_t)m64;\n");
            mc_buf_printf(b, "        idx_t ow = m %% %lld, oh = (m / %lld) %% %lld, bb = m / %lld;\n", (long long)Wo,
                          (long long)Wo, (long long)Ho, (long long)(Ho * Wo));
            mc_buf_printf(b, "        int ci = k %% %lld, kw = (k / %lld) %% %lld, kh = k / %lld;\n", (long long)Ci,
                          (long long)Ci, (long long)KW, (long long)(Ci * KW));
            mc_buf_printf(b, "        idx_t ih = oh * %lld - %lld + kh * %lld, iw = ow * %lld - %lld + kw * %lld;\n",
                          (long long)k->attrs.stride[0], (long long)k->attrs.pad[0], (long long)k->attrs.dil[0],
                          (long long)k->attrs.stride[1], (long long)k->attrs.pad[1], (long long)k->attrs.dil[1]);
            mc_buf_printf(b, "        if (ih < 0 || ih >= %lld || iw < 0 || iw >= %lld) return %s;\n", (long long)H,
                          (long long)W, lzero[v]);
            mc_buf_printf(b, "        return %sb%d[%lld + bb * %lld + ih * %lld + iw * %lld + ci * %lld]%s;\n",
                          lpre[v], a->buf, (long long)a->offset, (long long)a->stride[0],
                          (long long)a->stride[1], (long long)a->stride[2], (long long)a->stride[3], lpost[v]);
            mc_buf_puts(b, "    };\n");
        }
    } else {
        for (int v = v0; v < vn; v++) {
            mc_buf_printf(b, "    auto %s = [=](int64_t m, int k) -> %s { return %sb%d[", lname[v], lty[v], lpre[v], a->buf);
            if (a->offset) mc_buf_printf(b, "%lld + ", (long long)a->offset);
            if (a->shape[0] == 1) mc_buf_puts(b, "0");
            else mc_buf_printf(b, "m * %lld", (long long)a->stride[0]);
            if (a->stride[1] == 1) mc_buf_printf(b, " + k]%s; };\n", lpost[v]);
            else mc_buf_printf(b, " + k * %lld]%s; };\n", (long long)a->stride[1], lpost[v]);
        }
    }
    char res[32], wptr[64];
    if (c3) {
        epi2_lambda(b, k, N, "epi2", 0, 0);
        mc_buf_printf(b, "    mc_conv3%s<%lld, %lld, %lld, %lld, %lld>(b%d + %lld, %s, epi2);\n}\n\n", w16 ? "" : "t", (long long)a->shape[0],
                      (long long)H, (long long)W, (long long)Ci, (long long)N, a->buf, (long long)a->offset, w16 ? "w16" : "wp");
        ln->gx = (M + 255) / 256;
        ln->gy = 1;
        return 0;
    }
    mc_buf_puts(b, "    auto epi = [=](int64_t m, int n, float acc) {\n");
    mc_buf_printf(b, "        int64_t i = m * %lld + n;\n", (long long)N);
    if (k->nin == 3) {
        mc_buf_puts(b, "        acc += ");
        mc_cu_load(b, &k->in[2], "n");
        mc_buf_puts(b, ";\n");
    }
    mc_cemit_epilogue(b, &mc_dialect_cuda, k, "acc", "i", "        ", res, sizeof res);
    mc_cu_store(b, k, "        ", "i", res);
    mc_buf_puts(b, "    };\n");
    /* bf16 tensor-core GEMMs stage their bf16 results through shared memory */
    int staged = !thin && print_epi2(b, k, N, !skinny && o->precision == MC_CUDA_BF16);
    if (w16) snprintf(wptr, sizeof wptr, "w16");
    else if (conv) snprintf(wptr, sizeof wptr, "wp");
    else if (k->in[1].offset) snprintf(wptr, sizeof wptr, "b%d + %lld", k->in[1].buf, (long long)k->in[1].offset);
    else snprintf(wptr, sizeof wptr, "b%d", k->in[1].buf);
    ln->gy = 1;
    if (thin && M <= MC_CUDA_FILL / 4) { /* few rows: a warp per row */
        mc_buf_printf(b, "    mc_gemm_warp<%lldll, %lld, %lld>(A4, %s, epi);\n}\n\n", (long long)M, (long long)N,
                      (long long)K, wptr);
        ln->gx = (M + 7) / 8;
        return 0;
    }
    if (thin) {
        mc_buf_printf(b, "    mc_gemm_thin%s<%lldll, %lld, %lld>(%s, %s, epi);\n}\n\n", g.ts ? "_s" : "", (long long)M, (long long)N,
                      (long long)K, g.ts ? "AP" : "A4", wptr);
        ln->gx = (M + 255) / 256;
        return 0;
    }
    mc_buf_printf(b, "    mc_gemm<%s, %d, %d, %lldll, %lld, %lld, %s, %s", mode, bm, bn, (long long)M, (long long)N,
                  (long long)K, va ? "true" : "false", vw ? "true" : "false");
    if (sk > 1) mc_buf_printf(b, ", %d, %lld", sk, (long long)kc);
    mc_buf_printf(b, ">(%s, %s, %s, epi, epi2", g.pipe ? "AP" : v0 ? "A4" : "A", va ? "A4" : "A", wptr);
    if (sk > 1) mc_buf_puts(b, ", ws, cnt");
    if (staged)
        mc_buf_printf(b, "%s, epv2, b%d + %lld", sk > 1 ? "" : ", nullptr, nullptr", k->out.buf, (long long)k->out.offset);
    mc_buf_puts(b, ");\n}\n\n");
    ln->gx = ((M + bm - 1) / bm) * ((N + bn - 1) / bn) * sk;
    return 0;
}

/* fc1 (kernel ki) with fc2 (ki + 1) inside it: mc_mlp */
void
mc_cu_print_mlp(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const Kernel *l = &p->k[ki + 1];
    const View *a = &k->in[0];
    int64_t M, N, K, M2, N2, K2;
    mc_cu_gemm_dims(k, &M, &N, &K);
    mc_cu_gemm_dims(l, &M2, &N2, &K2);
    Params ps;
    mc_cu_collect_launch_params(p, ki, &ps);
    mc_cu_header(b, p, k, ki);
    const int bf = mc_cu_emit_precision() == MC_CUDA_BF16;
    mc_buf_printf(b, "/* with k%d gemm \"%s\": the MLP, its %lld hidden activations per row on chip (mc_mlp%s) */\n",
                  ki + 1, l->name, (long long)N, bf ? "" : "32");
    /* two blocks per SM where the registers allow (bf16: CO <= 64; tf32,
     * whose A fragments take twice the registers: C, CO <= 64) */
    mc_buf_printf(b, "%s __launch_bounds__(256, %d)\n%s(", mc_dialect_cuda.kernel_qual, N2 <= 64 && (bf || K <= 64) ? 2 : 1, id);
    mc_cu_print_params(b, &ps, bf ? "const __nv_bfloat16 *__restrict__ w16, const __nv_bfloat16 *__restrict__ w16b" : NULL);
    mc_buf_puts(b, KERNEL_BODY);
    if (bf)
        mc_buf_printf(b, "    auto AP = [=](int64_t m, int k) -> const __nv_bfloat16 * { return &b%d[%lld + m * %lld + k]; };\n",
                      a->buf, (long long)a->offset, (long long)K);
    /* fc1's bias: added by mc_mlp from registers (8-byte aligned), else by h2 */
    const View *bv = k->nin == 3 ? &k->in[2] : NULL;
    char b1[64] = "nullptr";
    int nobias = bv && bv->rank == 1 && bv->stride[0] == 1 && bv->offset % 2 == 0 && !mc_cu_buf_bf16(bv->buf);
    if (nobias) snprintf(b1, sizeof b1, "b%d + %lld", bv->buf, (long long)bv->offset);
    mc_buf_printf(b, "    /* fc1's epilogue%s, returned (rounded to %s by mc_mlp%s); fc2's, stored */\n",
                  nobias ? " after the bias" : "", bf ? "bf16" : "tf32", bf ? "" : "32");
    epi2_lambda(b, k, N, "h2", 1, nobias);
    epi2_lambda(b, l, N2, "epi2", 0, 0);
    if (bf) {
        mc_buf_printf(b, "    mc_mlp<%lldll, %lld, %lld, %lld>(AP, w16, w16b, %s, h2, epi2);\n}\n\n", (long long)M, (long long)K,
                      (long long)N, (long long)N2, b1);
    } else {
        mc_buf_printf(b, "    mc_mlp32<%lldll, %lld, %lld, %lld>(b%d + %lld, b%d + %lld, b%d + %lld, %s, h2, epi2);\n}\n\n",
                      (long long)M, (long long)K, (long long)N, (long long)N2, a->buf, (long long)a->offset, k->in[1].buf,
                      (long long)k->in[1].offset, l->in[1].buf, (long long)l->in[1].offset, b1);
    }
    ln->gx = (M + 127) / 128;
    ln->gy = 1;
}

/* the 1x1 expansion (kernel ki) with the depthwise conv (ki + 1) and the
 * 1x1 projection (ki + 2) inside it: mc_down */
void
mc_cu_print_down(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const Kernel *d = &p->k[ki + 1], *l = &p->k[ki + 2];
    const View *a = &k->in[0], *x = &d->in[0];
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], HID = x->shape[3], M, N, C, M2, CO, K2;
    mc_cu_gemm_dims(k, &M, &N, &C);
    mc_cu_gemm_dims(l, &M2, &CO, &K2);
    int R = 1, TW = 1, MT3 = 1;
    mc_cu_down_tile(B, H, W, C, HID, CO, &R, &TW, &MT3);
    Params ps;
    mc_cu_collect_launch_params(p, ki, &ps);
    mc_cu_header(b, p, k, ki);
    mc_buf_printf(b, "/* with k%d dwconv \"%s\" and k%d gemm \"%s\": the downsample in one kernel (mc_down),\n"
                     " * %d x %d outputs a block, its %lld hidden channels (at full and half resolution) on chip */\n",
                  ki + 1, d->name, ki + 2, l->name, R, TW, (long long)HID);
    mc_buf_printf(b, "%s __launch_bounds__(256, 2)\n%s(", mc_dialect_cuda.kernel_qual, id);
    mc_cu_print_params(b, &ps, "const __nv_bfloat16 *__restrict__ w16, const float *__restrict__ wp, "
                               "const __nv_bfloat16 *__restrict__ w16b");
    mc_buf_puts(b, KERNEL_BODY);
    const View *bv = k->nin == 3 ? &k->in[2] : NULL;
    char b1[64] = "nullptr", res[32];
    int nobias = bv && bv->rank == 1 && bv->stride[0] == 1 && bv->offset % 2 == 0 && !mc_cu_buf_bf16(bv->buf);
    if (nobias) snprintf(b1, sizeof b1, "b%d + %lld", bv->buf, (long long)bv->offset);
    mc_buf_printf(b, "    /* the expansion's epilogue%s, returned (rounded to bf16 by mc_down); the depthwise\n"
                     "     * conv's, returned; the projection's, stored */\n", nobias ? " after the bias" : "");
    epi2_lambda(b, k, N, "h2", 1, nobias);
    mc_buf_puts(b, "    auto e2 = [=](int n, float acc) -> float {\n        const int64_t i = n;\n        (void)i;\n");
    if (d->nin == 3) {
        mc_buf_puts(b, "        acc += ");
        mc_cu_load(b, &d->in[2], "n");
        mc_buf_puts(b, ";\n");
    }
    mc_cemit_epilogue(b, &mc_dialect_cuda, d, "acc", "i", "        ", res, sizeof res);
    mc_buf_printf(b, "        return %s;\n    };\n", res);
    epi2_lambda(b, l, CO, "epi2", 0, 0);
    mc_buf_printf(b, "    mc_down<%lld, %lld, %lld, %lld, %lld, %lld, %d, %d, %d>(b%d + %lld, w16, %s, wp, w16b, h2, e2, epi2);\n}\n\n",
                  (long long)B, (long long)H, (long long)W, (long long)C, (long long)HID, (long long)CO, R, TW, MT3, a->buf,
                  (long long)a->offset, b1);
    int64_t HO = (H - 1) / 2 + 1, WO = (W - 1) / 2 + 1;
    ln->gx = B * ((HO + R - 1) / R) * ((WO + TW - 1) / TW);
    ln->gy = 1;
}
