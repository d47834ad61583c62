/* backends/cuda/cuda_eltwise.c -- the printers of the per-position
 * kernels: depthwise convs (one channel a thread, or 8 channels x P
 * positions), the 25-tap fusion (one channel, 4, or 4 x 4 positions), with
 * the LayerNorm or the x_proj that runs inside them (Kernel.host/fuse, set
 * by the fusion passes: cuda_fuse.c); LayerNorms on their own (a warp per
 * row, or groups of lanes holding a row in registers), the spatial mean
 * and elementwise kernels.  Calls the printing utilities (cuda_emit.c) and
 * the forms (cuda_forms.c); called by the program printer (cuda_print.c).
 * Owns nothing.
 */
#include "cuda_eltwise.h"
#include <stdio.h>

/* one thread per output element (linear index i), the last axis fastest */
static void
elementwise_head(McBuf *b, const Kernel *k, const char *id, const char *extra, int64_t n, CudaLaunch *ln)
{
    mc_cu_thread_head(b, k, id, extra, "i", n, ln);
}

static void
finish(McBuf *b, const Kernel *k, const char *acc)
{
    char res[32];
    mc_cemit_epilogue(b, &mc_dialect_cuda, k, acc, "i", "    ", res, sizeof res);
    mc_cu_store(b, k, "    ", "i", res);
    mc_buf_puts(b, "}\n\n");
}

static void print_group_layernorm(McBuf *b, const Kernel *l, int V, long long P, const char *ch, const char *yvar,
                                  const char *xv, long long H, long long W);

/* The head of kernel ki with kernel ki + 1 (a LayerNorm, x_proj) inside
 * it, NT threads (G per position): every thread reaches the shuffles and
 * barriers of the sums across a position's threads, those past the end
 * compute on the last unit (it clamped) and store nothing (live false) */
static void
fused_pair_head(McBuf *b, const KProgram *p, int ki, const char *id, long long NT, long long G, const char *note,
                CudaLaunch *ln)
{
    const Kernel *k = &p->k[ki], *l = &p->k[ki + 1];
    Params ps;
    mc_cu_collect_launch_params(p, ki, &ps);
    if (l->kind == KK_LAYERNORM)
        mc_buf_printf(b, "/* with k%d %s \"%s\": LayerNorm over the %lld channels of each position (%lld threads)\n"
                         " * and its epilogue; %s */\n",
                      ki + 1, mc_kernel_kind_name(l->kind), l->name, (long long)k->out.shape[3], G, note);
    else
        mc_buf_printf(b, "/* with k%d %s \"%s\": its %lld-column product of each position, summed across the\n"
                         " * position's %lld threads (shared memory); %s */\n",
                      ki + 1, mc_kernel_kind_name(l->kind), l->name, (long long)l->N, G, note);
    mc_buf_printf(b, "%s __launch_bounds__(256)\n%s(", mc_dialect_cuda.kernel_qual, id);
    mc_cu_print_params(b, &ps, "const float *__restrict__ wp");
    mc_buf_puts(b, KERNEL_BODY);
    mc_cu_idx_typedef(b, k);
    mc_buf_printf(b, "    const bool live = (idx_t)blockIdx.x * 256 + threadIdx.x < %lld;\n", NT);
    mc_buf_printf(b, "    const idx_t it = min((idx_t)blockIdx.x * 256 + threadIdx.x, (idx_t)%lld);\n", NT - 1);
    ln->gx = (NT + 255) / 256;
    ln->gy = 1;
}

/* x_proj l over the P x 8 values yv[p][q] of this thread (channels c ..
 * c + 7 of positions ow0 + p of row oh), u as stored (bf16 storage: the
 * rounded values the unfused product read): N partial sums per position,
 * into this warp's rows of shared memory; then each of the position's G
 * lanes sums its share of the P x N outputs over the G lanes and stores it */
static void
print_group_xproj(McBuf *b, const Kernel *k, const Kernel *l, long long P, long long Ho, long long Wo)
{
    long long D = k->out.shape[3], G = D / 8, N = l->N, PN = P * N;
    const View *w = &l->in[1];
    char lin[160];
    if (mc_cu_buf_bf16(k->out.buf))
        mc_buf_printf(b, "#pragma unroll\n    for (int p = 0; p < %lld; p++)\n#pragma unroll\n"
                         "        for (int q = 0; q < 8; q++) yv[p][q] = __bfloat162float(__float2bfloat16_rn(yv[p][q]));\n", P);
    mc_buf_printf(b, "    __shared__ float xr[8][32][%lld];\n", PN + 1);
    mc_buf_puts(b, "    float *xw = xr[threadIdx.x / 32][threadIdx.x % 32];\n");
    mc_buf_printf(b, "#pragma unroll\n    for (int n = 0; n < %lld; n++) {\n", N);
    mc_buf_printf(b, "        const float *wn = &b%d[%lld + n * %lld + c];\n", w->buf, (long long)w->offset, D);
    mc_buf_puts(b, "        const float4 w0 = *(const float4 *)wn, w1 = *(const float4 *)(wn + 4);\n");
    mc_buf_printf(b, "#pragma unroll\n        for (int p = 0; p < %lld; p++)\n", P);
    mc_buf_printf(b, "            xw[p * %lld + n] = ((yv[p][0] * w0.x + yv[p][1] * w0.y) + (yv[p][2] * w0.z + yv[p][3] * w0.w)) +\n"
                     "                               ((yv[p][4] * w1.x + yv[p][5] * w1.y) + (yv[p][6] * w1.z + yv[p][7] * w1.w));\n",
                  N);
    mc_buf_puts(b, "    }\n    __syncwarp();\n");
    mc_buf_printf(b, "    const int g0 = threadIdx.x %% 32 - threadIdx.x %% %lld;\n", G);
    mc_buf_printf(b, "    for (int o = threadIdx.x %% %lld; o < %lld; o += %lld) {\n", G, PN, G);
    mc_buf_printf(b, "        const int p = o / %lld, n = o %% %lld;\n", N, N);
    mc_buf_puts(b, "        float v = 0.0f;\n");
    mc_buf_printf(b, "#pragma unroll\n        for (int j = 0; j < %lld; j++) v += xr[threadIdx.x / 32][g0 + j][o];\n", G);
    if (Wo % P) mc_buf_printf(b, "        if (!live || ow0 + p >= %lld) continue;\n", Wo);
    else mc_buf_puts(b, "        if (!live) continue;\n");
    snprintf(lin, sizeof lin, "((bb * %lld + oh) * %lld + ow0 + p) * %lld + n", Ho, Wo, N);
    mc_cu_store(b, l, "        ", lin, "v");
    mc_buf_puts(b, "    }\n}\n\n");
}

/* C % 8 == 0, x and out 8-aligned: 8 channels per thread, one mc_ldv8 of x
 * per tap (bf16: 16 bytes; float: two float4), the taps re-packed
 * [kh][kw][C] (two float4) */
static int
print_dwconv8(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *x = &k->in[0], *w = &k->in[1];
    long long Ho = k->out.shape[1], Wo = k->out.shape[2], C = k->out.shape[3];
    long long H = x->shape[1], W = x->shape[2], KH = w->shape[2], KW = w->shape[3];
    char lin[160];
    long long P = 1, NT = mc_cu_dwconv8_form(k, &P), WG = (Wo + P - 1) / P;
    if (!NT) return 0;
    const Kernel *l = mc_cu_guest_kind(p, ki) != FUSE_NONE ? &p->k[ki + 1] : NULL;
    if (P > 1) mc_buf_printf(b, "/* 8 channels x %lld positions per thread */\n", P);
    if (l) fused_pair_head(b, p, ki, id, NT, C / 8, "from the registers that hold this kernel's output", ln);
    else mc_cu_thread_head(b, k, id, "const float *__restrict__ wp", "it", NT, ln);
    mc_buf_printf(b, "    const idx_t c = (it %% %lld) * 8, ow0 = ((it / %lld) %% %lld) * %lld, oh = (it / %lld) %% %lld, bb = it / %lld;\n",
                  C / 8, C / 8, WG, P, C / 8 * WG, Ho, C / 8 * WG * Ho);
    mc_buf_printf(b, "    float accp[%lld][8];\n#pragma unroll\n    for (int p = 0; p < %lld; p++)\n"
                     "#pragma unroll\n        for (int q = 0; q < 8; q++) accp[p][q] = 0.0f;\n", P, P);
    mc_buf_printf(b, "#pragma unroll\n    for (int kh = 0; kh < %lld; kh++) {\n", KH);
    mc_buf_printf(b, "        const idx_t ih = oh * %lld - %lld + kh * %lld;\n", (long long)k->attrs.stride[0],
                  (long long)k->attrs.pad[0], (long long)k->attrs.dil[0]);
    mc_buf_printf(b, "        if (ih < 0 || ih >= %lld) continue;\n", H);
    if (k->attrs.stride[1] == 1 && k->attrs.dil[1] == 1) {
        /* stride 1: the P + KW - 1 input columns of this row loaded once
         * (zeros outside), each used by every (position, tap) that reads it */
        mc_buf_printf(b, "        float v[%lld][8];\n#pragma unroll\n        for (int j = 0; j < %lld; j++) {\n", P + KW - 1,
                      P + KW - 1);
        mc_buf_printf(b, "            const idx_t iw = ow0 - %lld + j;\n", (long long)k->attrs.pad[1]);
        mc_buf_printf(b, "            if (iw < 0 || iw >= %lld) {\n#pragma unroll\n                for (int q = 0; q < 8; q++) v[j][q] = 0.0f;\n"
                         "                continue;\n            }\n            mc_ldv8(&", W);
        snprintf(lin, sizeof lin, "((bb * %lld + ih) * %lld + iw) * %lld + c", H, W, C);
        mc_cu_ref(b, x, lin);
        mc_buf_puts(b, ", v[j]);\n        }\n");
        mc_buf_printf(b, "#pragma unroll\n        for (int kw = 0; kw < %lld; kw++) {\n", KW);
        mc_buf_printf(b, "            const float *wt = &wp[(kh * %lld + kw) * %lld + c];\n", KW, C);
        mc_buf_puts(b, "            const float4 w0 = *(const float4 *)wt, w1 = *(const float4 *)(wt + 4);\n");
        mc_buf_printf(b, "#pragma unroll\n            for (int p = 0; p < %lld; p++) {\n", P);
        mc_buf_puts(b, "                const float *u = v[p + kw];\n                float *acc = accp[p];\n");
        mc_buf_puts(b, "                acc[0] = fmaf(u[0], w0.x, acc[0]); acc[1] = fmaf(u[1], w0.y, acc[1]); "
                       "acc[2] = fmaf(u[2], w0.z, acc[2]); acc[3] = fmaf(u[3], w0.w, acc[3]);\n");
        mc_buf_puts(b, "                acc[4] = fmaf(u[4], w1.x, acc[4]); acc[5] = fmaf(u[5], w1.y, acc[5]); "
                       "acc[6] = fmaf(u[6], w1.z, acc[6]); acc[7] = fmaf(u[7], w1.w, acc[7]);\n");
        mc_buf_puts(b, "            }\n        }\n    }\n");
    } else {
    mc_buf_printf(b, "#pragma unroll\n        for (int kw = 0; kw < %lld; kw++) {\n", KW);
    mc_buf_printf(b, "            const float *wt = &wp[(kh * %lld + kw) * %lld + c];\n", KW, C);
    mc_buf_puts(b, "            const float4 w0 = *(const float4 *)wt, w1 = *(const float4 *)(wt + 4);\n");
    mc_buf_printf(b, "#pragma unroll\n            for (int p = 0; p < %lld; p++) {\n", P);
    mc_buf_printf(b, "                const idx_t iw = (ow0 + p) * %lld - %lld + kw * %lld;\n", (long long)k->attrs.stride[1],
                  (long long)k->attrs.pad[1], (long long)k->attrs.dil[1]);
    mc_buf_printf(b, "                if (iw < 0 || iw >= %lld) continue;\n", W);
    snprintf(lin, sizeof lin, "((bb * %lld + ih) * %lld + iw) * %lld + c", H, W, C);
    mc_buf_puts(b, "                float v[8], *acc = accp[p];\n                mc_ldv8(&");
    mc_cu_ref(b, x, lin);
    mc_buf_puts(b, ", v);\n");
    mc_buf_puts(b, "                acc[0] = fmaf(v[0], w0.x, acc[0]); acc[1] = fmaf(v[1], w0.y, acc[1]); "
                   "acc[2] = fmaf(v[2], w0.z, acc[2]); acc[3] = fmaf(v[3], w0.w, acc[3]);\n");
    mc_buf_puts(b, "                acc[4] = fmaf(v[4], w1.x, acc[4]); acc[5] = fmaf(v[5], w1.y, acc[5]); "
                   "acc[6] = fmaf(v[6], w1.z, acc[6]); acc[7] = fmaf(v[7], w1.w, acc[7]);\n");
    mc_buf_puts(b, "            }\n        }\n    }\n");
    }
    if (l) mc_buf_printf(b, "    float yv[%lld][8];\n", P);
    mc_buf_printf(b, "#pragma unroll\n    for (int p = 0; p < %lld; p++) {\n", P);
    if (l)
        /* past the right edge: the last position's index (not stored) */
        mc_buf_printf(b, "        const idx_t i8 = ((bb * %lld + oh) * %lld + min(ow0 + p, (idx_t)%lld)) * %lld + c / 8;\n", Ho, Wo,
                      Wo - 1, C / 8);
    else {
        if (Wo % P) mc_buf_printf(b, "        if (ow0 + p >= %lld) break;\n", Wo);
        mc_buf_printf(b, "        const idx_t i8 = ((bb * %lld + oh) * %lld + ow0 + p) * %lld + c / 8;\n", Ho, Wo, C / 8);
    }
    mc_buf_puts(b, "        float acc[8];\n#pragma unroll\n        for (int q = 0; q < 8; q++) acc[q] = accp[p][q];\n");
    if (k->nin == 3) {
        mc_buf_puts(b, "#pragma unroll\n        for (int q = 0; q < 8; q++) acc[q] += ");
        mc_cu_load(b, &k->in[2], "c + q");
        mc_buf_puts(b, ";\n");
    }
    if (l) {
        char guard[64];
        if (Wo % P) snprintf(guard, sizeof guard, "live && ow0 + p < %lld", Wo);
        else snprintf(guard, sizeof guard, "live");
        mc_cu_vec8_finish_ex(b, k, "        ", guard, "yv[p]");
        mc_buf_puts(b, "    }\n");
        if (l->kind == KK_LAYERNORM) print_group_layernorm(b, l, 8, P, "c", "oh", "ow0", Ho, Wo);
        else print_group_xproj(b, k, l, P, Ho, Wo);
        return 1;
    }
    mc_cu_vec8_finish(b, k, "        ");
    mc_buf_puts(b, "    }\n}\n\n");
    return 1;
}

void
mc_cu_print_dwconv(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln, int repacked)
{
    const View *x = &k->in[0], *w = &k->in[1];
    long long Ho = k->out.shape[1], Wo = k->out.shape[2], C = k->out.shape[3];
    long long H = x->shape[1], W = x->shape[2], KH = w->shape[2], KW = w->shape[3];
    char lin[160], wl[64];
    mc_cu_header(b, p, k, ki);
    if (repacked && print_dwconv8(b, p, k, ki, id, ln)) return;
    elementwise_head(b, k, id, repacked ? "const float *__restrict__ wp" : NULL, mc_cuda_numel(&k->out), ln);
    mc_buf_printf(b, "    const idx_t c = i %% %lld, ow = (i / %lld) %% %lld, oh = (i / %lld) %% %lld, bb = i / %lld;\n",
                  C, C, Wo, C * Wo, Ho, C * Wo * Ho);
    mc_buf_puts(b, "    float acc = 0.0f;\n");
    mc_buf_printf(b, "#pragma unroll\n    for (int kh = 0; kh < %lld; kh++) {\n", KH);
    mc_buf_printf(b, "        const idx_t ih = oh * %lld - %lld + kh * %lld;\n", (long long)k->attrs.stride[0],
                  (long long)k->attrs.pad[0], (long long)k->attrs.dil[0]);
    mc_buf_printf(b, "        if (ih < 0 || ih >= %lld) continue;\n", H);
    mc_buf_printf(b, "#pragma unroll\n        for (int kw = 0; kw < %lld; kw++) {\n", KW);
    mc_buf_printf(b, "            const idx_t iw = ow * %lld - %lld + kw * %lld;\n", (long long)k->attrs.stride[1],
                  (long long)k->attrs.pad[1], (long long)k->attrs.dil[1]);
    mc_buf_printf(b, "            if (iw < 0 || iw >= %lld) continue;\n", W);
    snprintf(lin, sizeof lin, "((bb * %lld + ih) * %lld + iw) * %lld + c", H, W, C);
    snprintf(wl, sizeof wl, "(c * %lld + kh) * %lld + kw", KH, KW);
    mc_buf_puts(b, "            acc = fmaf(");
    mc_cu_load(b, x, lin);
    mc_buf_puts(b, ", ");
    mc_cu_load(b, w, wl);
    mc_buf_puts(b, ", acc);\n        }\n    }\n");
    if (k->nin == 3) {
        mc_buf_puts(b, "    acc += ");
        mc_cu_load(b, &k->in[2], "c");
        mc_buf_puts(b, ";\n");
    }
    finish(b, k, "acc");
}

/* four channels per thread (VEC4): the main loads are float4, the epilogue
 * runs per element with i = i4 * 4 + q */
static void
vec4_head(McBuf *b, const Kernel *k, const char *id, const char *extra, int64_t n, CudaLaunch *ln)
{
    mc_cu_thread_head(b, k, id, extra, "i4", n / 4, ln);
}

/* the epilogue of the four channels i4 * 4 + q, q < 4, of the float4 acc:
 * stored, or (dst) assigned to dst[q] */
static void
vec4_epi_to(McBuf *b, const Kernel *k, const char *acc, const char *indent, const char *dst)
{
    char res[32], names[MC_MAX_ARGS][24], ind2[32];
    const char *ax[MC_MAX_ARGS];
    snprintf(ind2, sizeof ind2, "%s    ", indent);
    mc_buf_printf(b, "%sconst float accv[4] = {%s.x, %s.y, %s.z, %s.w};\n", indent, acc, acc, acc, acc);
    mc_cu_vec_args(b, k, 4, "i4 * 4", indent, names, ax);
    mc_buf_printf(b, "#pragma unroll\n%sfor (int q = 0; q < 4; q++) {\n", indent);
    mc_buf_printf(b, "%s    const idx_t i = i4 * 4 + q;\n%s    (void)i;\n", indent, indent);
    mc_cemit_epilogue_ex(b, &mc_dialect_cuda, k, "accv[q]", "i", ind2, res, sizeof res, ax);
    if (dst) mc_buf_printf(b, "%s%s[q] = %s;\n", ind2, dst, res);
    else mc_cu_store(b, k, ind2, "i", res);
    mc_buf_printf(b, "%s}\n", indent);
}

static void
vec4_epi(McBuf *b, const Kernel *k, const char *acc, const char *indent)
{
    vec4_epi_to(b, k, acc, indent, NULL);
}

static void
vec4_finish(McBuf *b, const Kernel *k)
{
    vec4_epi(b, k, "acc", "    ");
    mc_buf_puts(b, "}\n\n");
}

static void
fma4(McBuf *b, const char *acc, const char *w, const char *x)
{
    mc_buf_printf(b, "%s.x = fmaf(%s.x, %s.x, %s.x); %s.y = fmaf(%s.y, %s.y, %s.y); "
                     "%s.z = fmaf(%s.z, %s.z, %s.z); %s.w = fmaf(%s.w, %s.w, %s.w);\n",
                  acc, w, x, acc, acc, w, x, acc, acc, w, x, acc, acc, w, x, acc);
}

/* The LayerNorm l over the P x V values yv[p][q] of this thread (V
 * channels from ch, P positions along x from xv at row yvar): sums of the
 * G threads of a position (shuffles; over G / 32 warps through shared
 * memory), then (yv - mean) * rstd * gamma + beta and l's epilogue, stored
 * for the live positions. */
static void
print_group_layernorm(McBuf *b, const Kernel *l, int V, long long P, const char *ch, const char *yvar, const char *xv,
                      long long H, long long W)
{
    long long D = l->out.shape[3], G = D / V;
    double eps = l->attrs.eps > 0 ? l->attrs.eps : 1e-5;
    if (G > 32) mc_buf_printf(b, "    __shared__ float red[8][%lld];\n", P);
    for (int pass = 0; pass < 2; pass++) {
        const char *v = pass ? "ss" : "s";
        mc_buf_printf(b, "    float %s[%lld];\n#pragma unroll\n    for (int p = 0; p < %lld; p++) {\n", v, P, P);
        if (pass)
            mc_buf_printf(b, "        ss[p] = 0.0f;\n#pragma unroll\n        for (int q = 0; q < %d; q++) { const float t = yv[p][q] - mean[p]; ss[p] = fmaf(t, t, ss[p]); }\n", V);
        else if (V == 4)
            mc_buf_puts(b, "        s[p] = (yv[p][0] + yv[p][1]) + (yv[p][2] + yv[p][3]);\n");
        else
            mc_buf_puts(b, "        s[p] = ((yv[p][0] + yv[p][1]) + (yv[p][2] + yv[p][3])) + ((yv[p][4] + yv[p][5]) + (yv[p][6] + yv[p][7]));\n");
        if (G > 32) mc_buf_printf(b, "        %s[p] = mc_warp_sum(%s[p]);\n    }\n", v, v);
        else mc_buf_printf(b, "        %s[p] = mc_group_sum<%lld>(%s[p]);\n    }\n", v, G, v);
        if (G > 32) {
            /* warps w0 .. w0 + G / 32 - 1 hold the position group */
            mc_buf_printf(b, "    if (threadIdx.x %% 32 == 0)\n#pragma unroll\n        for (int p = 0; p < %lld; p++) red[threadIdx.x / 32][p] = %s[p];\n",
                          P, v);
            mc_buf_puts(b, "    __syncthreads();\n");
            mc_buf_printf(b, "#pragma unroll\n    for (int p = 0; p < %lld; p++) {\n        %s[p] = 0.0f;\n", P, v);
            mc_buf_printf(b, "#pragma unroll\n        for (int w = 0; w < %lld; w++) %s[p] += red[threadIdx.x / %lld * %lld + w][p];\n    }\n",
                          G / 32, v, G, G / 32);
            mc_buf_puts(b, "    __syncthreads();\n");
        }
        if (pass)
            mc_buf_printf(b, "    float rstd[%lld];\n#pragma unroll\n    for (int p = 0; p < %lld; p++) rstd[p] = 1.0f / sqrtf(ss[p] * %s + %s);\n",
                          P, P, MC_FLOAT_LIT(1.0 / (double)D), MC_FLOAT_LIT(eps));
        else
            mc_buf_printf(b, "    float mean[%lld];\n#pragma unroll\n    for (int p = 0; p < %lld; p++) mean[p] = s[p] * %s;\n",
                          P, P, MC_FLOAT_LIT(1.0 / (double)D));
    }
    mc_buf_puts(b, "    if (!live) return;\n");
    mc_buf_printf(b, "#pragma unroll\n    for (int p = 0; p < %lld; p++) {\n", P);
    if (W % P) mc_buf_printf(b, "        if (%s + p >= %lld) break;\n", xv, W);
    if (V == 4) {
        mc_buf_printf(b, "        const idx_t i4 = ((bb * %lld + %s) * %lld + %s + p) * %lld + %s / 4;\n", H, yvar, W, xv, D / 4, ch);
        mc_buf_puts(b, "        float o[4];\n#pragma unroll\n        for (int q = 0; q < 4; q++) o[q] = (yv[p][q] - mean[p]) * rstd[p] * ");
    } else {
        mc_buf_printf(b, "        const idx_t i8 = ((bb * %lld + %s) * %lld + %s + p) * %lld + %s / 8;\n", H, yvar, W, xv, D / 8, ch);
        mc_buf_puts(b, "        float acc[8];\n#pragma unroll\n        for (int q = 0; q < 8; q++) acc[q] = (yv[p][q] - mean[p]) * rstd[p] * ");
    }
    char cq[16];
    snprintf(cq, sizeof cq, "%s + q", ch);
    mc_cu_load(b, &l->in[1], cq);
    mc_buf_puts(b, " + ");
    mc_cu_load(b, &l->in[2], cq);
    mc_buf_puts(b, ";\n");
    if (V == 4) {
        mc_buf_puts(b, "        const float4 o4 = make_float4(o[0], o[1], o[2], o[3]);\n");
        vec4_epi(b, l, "o4", "        ");
    } else {
        mc_cu_vec8_finish(b, l, "        ");
    }
    mc_buf_puts(b, "    }\n}\n\n");
}

/* the loop over the 25 taps of position (y, x), each clamped to the image
 * (row yy, column xx; lin: the index of that element, channel d) */
static void
f25_taps(McBuf *b, long long H, long long W, long long D, char *lin, size_t n)
{
    mc_buf_puts(b, "#pragma unroll\n    for (int t = 0; t < 25; t++) {\n");
    mc_buf_printf(b, "        const idx_t yy = min(max(y + mc_f25_dy(t), (idx_t)0), (idx_t)%lld);\n", H - 1);
    mc_buf_printf(b, "        const idx_t xx = min(max(x + mc_f25_dx(t), (idx_t)0), (idx_t)%lld);\n", W - 1);
    snprintf(lin, n, "((bb * %lld + yy) * %lld + xx) * %lld + d", H, W, D);
}

void
mc_cu_print_fusion25(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *h = &k->in[0];
    long long H = k->out.shape[1], W = k->out.shape[2], D = k->out.shape[3];
    char lin[160];
    mc_cu_header(b, p, k, ki);
    /* 4 channels x P = 4 positions along x per thread: each tap's weights
     * loaded once for the P positions (the loads of h and of the taps went
     * through L1 at 2 : 4 wavefronts; Nsight: L1-bound), while that still
     * leaves enough threads */
    const long long P = MC_CU_F25_P, WG = (W + P - 1) / P, NT = mc_cu_fusion25_wide(k);
    const Kernel *l = mc_cu_guest_kind(p, ki) != FUSE_NONE ? &p->k[ki + 1] : NULL;
    if (NT) {
        mc_buf_printf(b, "/* 4 channels x %lld positions per thread */\n", P);
        if (l) fused_pair_head(b, p, ki, id, NT, D / 4, "y stays in registers", ln);
        else mc_cu_thread_head(b, k, id, "const float *__restrict__ wp", "it", NT, ln);
        /* a block's 256 / (D / 4) position groups as a TX x TY tile of
         * them (TX groups of P along x, TY rows) where the tiles cover the
         * image: the taps of neighbouring rows hit lines L1 already holds
         * (docs/gpu.md, "25-tap fusion: 2D tiles of positions") */
        const long long GPB = D / 4 <= 256 && 256 % (D / 4) == 0 ? 256 / (D / 4) : 1;
        const long long TY = GPB >= 4 ? 4 : GPB, TX = GPB / TY;
        if (GPB > 1 && WG % TX == 0 && H % TY == 0) {
            mc_buf_printf(b, "    /* position groups in tiles of %lld x %lld (x groups of %lld, rows) */\n", TX, TY, P);
            mc_buf_printf(b, "    const idx_t d = (it %% %lld) * 4, q = it / %lld, tq = q / %lld, r = q %% %lld;\n", D / 4, D / 4, GPB, GPB);
            mc_buf_printf(b, "    const idx_t x0 = ((tq %% %lld) * %lld + r %% %lld) * %lld, y = ((tq / %lld) %% %lld) * %lld + r / %lld, bb = tq / %lld;\n",
                          WG / TX, TX, TX, P, WG / TX, H / TY, TY, TX, WG / TX * (H / TY));
        } else {
            mc_buf_printf(b, "    const idx_t d = (it %% %lld) * 4, x0 = ((it / %lld) %% %lld) * %lld, y = (it / %lld) %% %lld, bb = it / %lld;\n",
                          D / 4, D / 4, WG, P, D / 4 * WG, H, D / 4 * WG * H);
        }
        mc_buf_printf(b, "    float4 acc[%lld];\n#pragma unroll\n    for (int p = 0; p < %lld; p++) acc[p] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);\n",
                      P, P);
        /* positions whose 25 taps all fall inside the image (the same for
         * a warp's threads: its lanes are channels): no clamps, every tap a
         * constant offset from one pointer; the same loads and sums */
        const int inner = h->rank == 4 && h->stride[3] == 1 && h->stride[2] == D && h->stride[1] == W * D &&
                          h->stride[0] == H * W * D && H > 10 && W > P + 9;
        if (inner) {
            mc_buf_printf(b, "    if (y >= 5 && y < %lld && x0 >= 5 && x0 < %lld) {\n", H - 5, W - P - 4);
            mc_buf_printf(b, "        const auto *hp = &b%d[%lld + ((bb * %lld + y) * %lld + x0) * %lld + d];\n", h->buf,
                          (long long)h->offset, H, W, D);
            mc_buf_puts(b, "#pragma unroll\n        for (int t = 0; t < 25; t++) {\n");
            mc_buf_printf(b, "            const float4 w = *(const float4 *)&wp[t * %lld + d];\n", D);
            mc_buf_printf(b, "#pragma unroll\n            for (int p = 0; p < %lld; p++) {\n", P);
            mc_buf_printf(b, "                const float4 v = mc_ldv4(hp + (mc_f25_dy(t) * %lld + p + mc_f25_dx(t)) * %lld);\n                ",
                          W, D);
            fma4(b, "acc[p]", "w", "v");
            mc_buf_puts(b, "            }\n        }\n    } else {\n");
        }
        mc_buf_puts(b, "#pragma unroll\n    for (int t = 0; t < 25; t++) {\n");
        mc_buf_printf(b, "        const idx_t yy = min(max(y + mc_f25_dy(t), (idx_t)0), (idx_t)%lld);\n", H - 1);
        mc_buf_printf(b, "        const float4 w = *(const float4 *)&wp[t * %lld + d];\n", D);
        mc_buf_printf(b, "#pragma unroll\n        for (int p = 0; p < %lld; p++) {\n", P);
        mc_buf_printf(b, "            const idx_t xx = min(max(x0 + p + mc_f25_dx(t), (idx_t)0), (idx_t)%lld);\n", W - 1);
        snprintf(lin, sizeof lin, "((bb * %lld + yy) * %lld + xx) * %lld + d", H, W, D);
        mc_buf_printf(b, "            const float4 v = mc_ldv4(&b%d[", h->buf);
        mc_cemit_view_index(b, h, lin);
        mc_buf_puts(b, "]);\n            ");
        fma4(b, "acc[p]", "w", "v");
        mc_buf_puts(b, "        }\n    }\n");
        if (inner) mc_buf_puts(b, "    }\n");
        if (l) {
            /* y of each position (past the right edge: of the last one) */
            mc_buf_printf(b, "    float yv[%lld][4];\n#pragma unroll\n    for (int p = 0; p < %lld; p++) {\n", P, P);
            mc_buf_printf(b, "        const idx_t i4 = ((bb * %lld + y) * %lld + min(x0 + p, (idx_t)%lld)) * %lld + d / 4;\n", H, W,
                          W - 1, D / 4);
            vec4_epi_to(b, k, "acc[p]", "        ", "yv[p]");
            mc_buf_puts(b, "    }\n");
            print_group_layernorm(b, l, 4, P, "d", "y", "x0", H, W);
            return;
        }
        mc_buf_printf(b, "#pragma unroll\n    for (int p = 0; p < %lld; p++) {\n", P);
        if (W % P) mc_buf_printf(b, "        if (x0 + p >= %lld) break;\n", W);
        mc_buf_printf(b, "        const idx_t i4 = ((bb * %lld + y) * %lld + x0 + p) * %lld + d / 4;\n", H, W, D / 4);
        vec4_epi(b, k, "acc[p]", "        ");
        mc_buf_puts(b, "    }\n}\n\n");
        return;
    }
    if (vec4_view(h, D)) {
        vec4_head(b, k, id, "const float *__restrict__ wp", mc_cuda_numel(&k->out), ln);
        mc_buf_printf(b, "    const idx_t d = (i4 %% %lld) * 4, x = (i4 / %lld) %% %lld, y = (i4 / %lld) %% %lld, bb = i4 / %lld;\n",
                      D / 4, D / 4, W, D / 4 * W, H, D / 4 * W * H);
        mc_buf_puts(b, "    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);\n");
        f25_taps(b, H, W, D, lin, sizeof lin);
        mc_buf_printf(b, "        const float4 w = *(const float4 *)&wp[t * %lld + d];\n", D);
        mc_buf_printf(b, "        const float4 v = mc_ldv4(&b%d[", h->buf);
        mc_cemit_view_index(b, h, lin);
        mc_buf_puts(b, "]);\n        ");
        fma4(b, "acc", "w", "v");
        mc_buf_puts(b, "    }\n");
        vec4_finish(b, k);
        return;
    }
    elementwise_head(b, k, id, "const float *__restrict__ wp", mc_cuda_numel(&k->out), ln);
    mc_buf_printf(b, "    const idx_t d = i %% %lld, x = (i / %lld) %% %lld, y = (i / %lld) %% %lld, bb = i / %lld;\n",
                  D, D, W, D * W, H, D * W * H);
    mc_buf_puts(b, "    float acc = 0.0f;\n");
    f25_taps(b, H, W, D, lin, sizeof lin);
    mc_buf_printf(b, "        acc = fmaf(wp[t * %lld + d], ", D);
    mc_cu_load(b, h, lin);
    mc_buf_puts(b, ", acc);\n    }\n");
    finish(b, k, "acc");
}

void
mc_cu_print_eltwise(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    mc_cu_header(b, p, k, ki);
    elementwise_head(b, k, id, NULL, mc_cuda_numel(&k->out), ln);
    finish(b, k, "0.0f");
}

void
mc_cu_print_mean(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *x = &k->in[0];
    long long C = x->shape[3], HW = x->shape[1] * x->shape[2];
    char lin[128];
    mc_cu_header(b, p, k, ki);
    elementwise_head(b, k, id, NULL, mc_cuda_numel(&k->out), ln);
    mc_buf_printf(b, "    const idx_t c = i %% %lld, bb = i / %lld;\n", C, C);
    mc_buf_puts(b, "    float acc = 0.0f;\n");
    mc_buf_printf(b, "    for (idx_t q = 0; q < %lld; q++) acc += ", HW);
    snprintf(lin, sizeof lin, "(bb * %lld + q) * %lld + c", HW, C);
    mc_cu_load(b, x, lin);
    mc_buf_printf(b, ";\n    acc *= %s;\n", MC_FLOAT_LIT(1.0 / (double)HW));
    finish(b, k, "acc");
}

/* Rows of C % 8 == 0 contiguous elements: a group of G lanes per row (G
 * the power of two >= C / 8, at most 32), each lane holding VPL vectors of
 * 8 channels in registers (one mc_ldv8 each): mean and variance from the
 * registers (two passes, butterfly sums within the group), one mc_stv8 per
 * vector. */
static int
print_layernorm8(McBuf *b, const Kernel *k, const char *id, CudaLaunch *ln)
{
    const View *x = &k->in[0];
    long long C = x->shape[x->rank - 1], rows = mc_cuda_numel(x) / C, C8 = C / 8;
    double eps = k->attrs.eps > 0 ? k->attrs.eps : 1e-5;
    if (!vec8_view(x, C) || !vec8_view(&k->out, C)) return 0;
    if (!mc_cu_is_contig_rows(x, C) || !mc_cu_is_contig_rows(&k->out, C)) return 0;
    int G = 1;
    while (G < 32 && G < C8) G *= 2;
    long long VPL = (C8 + G - 1) / G, RPB = 256 / G;
    /* float storage with more than one vector per lane: measured slower */
    if (!mc_cu_buf_bf16(x->buf) && VPL > 1) return 0;
    mc_buf_printf(b, "/* %d lanes per row, %lld x 8 channels per lane */\n", G, VPL);
    mc_cu_kernel_open(b, k, id, NULL);
    /* rows past the end compute on the last row (the shuffles need every
     * lane of the warp) and store nothing */
    mc_buf_printf(b, "    const idx_t row = min((idx_t)blockIdx.x * %lld + threadIdx.x / %d, (idx_t)%lld);\n", RPB, G, rows - 1);
    mc_buf_printf(b, "    const bool live = (idx_t)blockIdx.x * %lld + threadIdx.x / %d < %lld;\n", RPB, G, rows);
    mc_buf_printf(b, "    const int g = threadIdx.x %% %d;\n", G);
    mc_buf_printf(b, "    float v[%lld][8];\n    float s = 0.0f;\n", VPL);
    mc_buf_printf(b, "#pragma unroll\n    for (int j = 0; j < %lld; j++) {\n", VPL);
    mc_buf_printf(b, "        const int c = (g + %d * j) * 8;\n", G);
    if (C8 % G) mc_buf_printf(b, "        if (c >= %lld) { for (int q = 0; q < 8; q++) v[j][q] = 0.0f; continue; }\n", C);
    mc_buf_printf(b, "        mc_ldv8(&b%d[%lld + row * %lld + c], v[j]);\n", x->buf, (long long)x->offset, C);
    mc_buf_puts(b, "#pragma unroll\n        for (int q = 0; q < 8; q++) s += v[j][q];\n    }\n");
    mc_buf_printf(b, "    const float mean = mc_group_sum<%d>(s) * %s;\n", G, MC_FLOAT_LIT(1.0 / (double)C));
    mc_buf_puts(b, "    float ss = 0.0f;\n");
    mc_buf_printf(b, "#pragma unroll\n    for (int j = 0; j < %lld; j++) {\n", VPL);
    if (C8 % G) mc_buf_printf(b, "        if ((g + %d * j) * 8 >= %lld) continue;\n", G, C);
    mc_buf_puts(b, "#pragma unroll\n        for (int q = 0; q < 8; q++) { const float t = v[j][q] - mean; ss = fmaf(t, t, ss); }\n    }\n");
    mc_buf_printf(b, "    const float rstd = 1.0f / sqrtf(mc_group_sum<%d>(ss) * %s + %s);\n", G,
                  MC_FLOAT_LIT(1.0 / (double)C), MC_FLOAT_LIT(eps));
    mc_buf_puts(b, "    if (!live) return;\n");
    mc_buf_printf(b, "#pragma unroll\n    for (int j = 0; j < %lld; j++) {\n", VPL);
    mc_buf_printf(b, "        const int c = (g + %d * j) * 8;\n", G);
    if (C8 % G) mc_buf_printf(b, "        if (c >= %lld) continue;\n", C);
    mc_buf_printf(b, "        const idx_t i8 = (row * %lld + c) / 8;\n", C);
    mc_buf_puts(b, "        float acc[8];\n");
    mc_buf_puts(b, "#pragma unroll\n        for (int q = 0; q < 8; q++) acc[q] = (v[j][q] - mean) * rstd * ");
    mc_cu_load(b, &k->in[1], "c + q");
    mc_buf_puts(b, " + ");
    mc_cu_load(b, &k->in[2], "c + q");
    mc_buf_puts(b, ";\n");
    mc_cu_vec8_finish(b, k, "        ");
    mc_buf_puts(b, "    }\n}\n\n");
    ln->gx = (rows + RPB - 1) / RPB;
    ln->gy = 1;
    return 1;
}

void
mc_cu_print_layernorm(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *x = &k->in[0];
    long long C = x->shape[x->rank - 1], rows = mc_cuda_numel(x) / C;
    double eps = k->attrs.eps > 0 ? k->attrs.eps : 1e-5;
    char lin[64];
    mc_cu_header(b, p, k, ki);
    if (print_layernorm8(b, k, id, ln)) return;
    mc_buf_puts(b, "/* one warp per row */\n");
    mc_cu_kernel_open(b, k, id, NULL);
    mc_buf_puts(b, "    const idx_t row = (idx_t)blockIdx.x * 8 + threadIdx.x / 32;\n");
    mc_buf_puts(b, "    const int lane = threadIdx.x % 32;\n");
    mc_buf_printf(b, "    if (row >= %lld) return;\n", rows);
    snprintf(lin, sizeof lin, "row * %lld + c", C);
    mc_buf_printf(b, "    float s = 0.0f;\n    for (int c = lane; c < %lld; c += 32) s += ", C);
    mc_cu_load(b, x, lin);
    mc_buf_printf(b, ";\n    const float mean = mc_warp_sum(s) * %s;\n", MC_FLOAT_LIT(1.0 / (double)C));
    mc_buf_printf(b, "    float v = 0.0f;\n    for (int c = lane; c < %lld; c += 32) { float t = ", C);
    mc_cu_load(b, x, lin);
    mc_buf_printf(b, " - mean; v = fmaf(t, t, v); }\n");
    mc_buf_printf(b, "    const float rstd = 1.0f / sqrtf(mc_warp_sum(v) * %s + %s);\n",
                  MC_FLOAT_LIT(1.0 / (double)C), MC_FLOAT_LIT(eps));
    mc_buf_printf(b, "    for (int c = lane; c < %lld; c += 32) {\n", C);
    mc_buf_printf(b, "        const idx_t i = row * %lld + c;\n", C);
    mc_buf_puts(b, "        float acc = (");
    mc_cu_load(b, x, "i");
    mc_buf_puts(b, " - mean) * rstd * ");
    mc_cu_load(b, &k->in[1], "c");
    mc_buf_puts(b, " + ");
    mc_cu_load(b, &k->in[2], "c");
    mc_buf_puts(b, ";\n");
    char res[32];
    mc_cemit_epilogue(b, &mc_dialect_cuda, k, "acc", "i", "        ", res, sizeof res);
    mc_cu_store(b, k, "        ", "i", res);
    mc_buf_puts(b, "    }\n}\n\n");
    ln->gx = (rows + 7) / 8;
    ln->gy = 1;
}
