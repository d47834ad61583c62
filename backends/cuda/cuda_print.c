/* backends/cuda/cuda_print.c -- prints a KProgram as CUDA C.
 *
 * Takes a lowered, memory-planned KProgram and the options (precision, SM);
 * produces the device half of OUT.cu: the prelude (tiled GEMM template,
 * reductions, tap table), one __global__ per fused kernel with every shape
 * a constant, and mc_forward(), which launches them in order on one stream
 * with every buffer at its planned offset in one device arena.  A kernel
 * that runs inside another (Kernel.host/fuse, decided by the fusion passes
 * before the memory plan: cuda_fuse.c) is printed by its host.  The dense
 * products' kernels come from cuda_gemm.c, the selective scan's from
 * cuda_scan.c, the per-position ones from cuda_eltwise.c; the host half
 * (main) from cuda_host.c.  Owns nothing.
 *
 * Device arena layout (bytes, each part 256-aligned):
 *   [ weights blob | scratch (memplan) | input | output 0 | output 1 ... |
 *     scan carries | scan flags | split-K partial tiles | split-K tile
 *     counters | bf16 weight copies ]
 * (everything after the blob zeroed at start-up, the scan flags again at
 * the start of every run; the bf16 copies, bf16 mode only, made from the
 * blob by mc_prepare()).
 * The weights blob is the graph-layout blob followed by re-packed weights:
 * dense convolutions as [Co][kh][kw][Ci] (the implicit-GEMM K order), the
 * 25-tap tables as [25][D] (coalesced across the channel threads).
 */
#include "cuda_print.h"
#include "cuda_dense.h"
#include "cuda_eltwise.h"
#include "cuda_gemm.h"
#include "cuda_scan.h"
#include <stdlib.h>
#include <string.h>

/* device/mc_prelude.cuh as mc_prelude_cuh[] (embedded by the build) */
#include "mc_prelude_cuh.h"

static int64_t
align256(int64_t v)
{
    return (v + 255) & ~(int64_t)255;
}

/* which precisions use the fast SiLU / GELU / scan forms by default
 * (measured on the H100, docs/gpu.md): bf16 the hardware-tanh SiLU and
 * GELU (form 2: one MUFU op each, ~2^-11 relative), fp32 the __expf SiLU
 * (form 1); the scan's exp/softplus in both; tf32 keeps the libm forms
 * (its check of the C32 model has no margin for another rounding: 9.6e-4
 * against 1e-3); fp32's GELU stays libm (form 1 measured no gain) */
#define MC_CUDA_FAST_SILU(prec) ((prec) == MC_CUDA_BF16 ? 2 : (prec) == MC_CUDA_FP32 ? 1 : 0)
#define MC_CUDA_FAST_GELU(prec) ((prec) == MC_CUDA_BF16 ? 2 : 0)
#define MC_CUDA_FAST_SCAN(prec) ((prec) != MC_CUDA_TF32)

void
mc_cuda_layout_free(CudaLayout *lay)
{
    free(lay->repack);
    free(lay->w16);
    lay->repack = lay->w16 = NULL;
}

void
mc_cuda_layout(const KProgram *p, McCudaPrecision prec, CudaLayout *lay)
{
    memset(lay, 0, sizeof *lay);
    int64_t off = p->weights_bytes;
    lay->repack = calloc((size_t)(p->nk ? p->nk : 1), sizeof(int64_t));
    lay->w16 = calloc((size_t)(p->nk ? p->nk : 1), sizeof(int64_t));
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        lay->repack[i] = -1;
        /* depthwise weights [C,1,kh,kw] -> [kh][kw][C] (C % 8 == 0; used by
         * the bf16 mode's 8-channel kernel, packed in every mode so that the
         * blob does not depend on the precision) */
        if (k->kind != KK_CONV && k->kind != KK_FUSION25 && !(k->kind == KK_DWCONV && k->out.shape[3] % 8 == 0))
            continue;
        off = (off + 63) & ~(int64_t)63;
        lay->repack[i] = off;
        off += mc_cuda_numel(&k->in[1]) * 4;
    }
    lay->blob_bytes = (off + 63) & ~(int64_t)63;
    lay->scratch_off = align256(lay->blob_bytes);
    lay->input_off = align256(lay->scratch_off + p->scratch_bytes);
    off = lay->input_off + p->bufs[p->input_buf].bytes;
    for (int j = 0; j < p->noutputs; j++) {
        lay->output_off[j] = align256(off);
        off = lay->output_off[j] + p->bufs[p->output_bufs[j]].bytes;
    }
    lay->carry_off = align256(off);
    int64_t carry = 0, flags = 0, ws = 0, cnt = 0;
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        if (k->kind == KK_SCAN) {
            int64_t n, f;
            mc_cu_scan_carry_bytes(k, &n, &f);
            if (n > carry) carry = n;
            if (f > flags) flags = f;
        }
        if (k->kind == KK_GEMM || (k->kind == KK_CONV && !mc_cu_conv_direct(p, i))) {
            int bm, bn, sk;
            int64_t kc, M, N, K;
            mc_cuda_gemm_tiles(k, &bm, &bn, &sk, &kc);
            if (sk < 2) continue;
            mc_cu_gemm_dims(k, &M, &N, &K);
            if (sk * M * N * 4 > ws) ws = sk * M * N * 4;
            int64_t tiles = ((M + bm - 1) / bm) * ((N + bn - 1) / bn);
            if (tiles * 4 > cnt) cnt = tiles * 4;
        }
    }
    lay->flags_off = align256(lay->carry_off + carry);
    lay->flags_bytes = flags;
    lay->splitk_off = align256(lay->flags_off + flags);
    lay->counter_off = align256(lay->splitk_off + ws);
    off = align256(lay->counter_off + cnt);
    for (int i = 0; i < p->nk; i++) {
        lay->w16[i] = -1;
        if (!mc_cu_gemm_w16(p, i, prec)) continue;
        lay->w16[i] = off;
        off = align256(off + mc_cuda_numel(&p->k[i].in[1]) * 2);
    }
    lay->arena_bytes = off;
}

/* ------------------------------------------------------------ the program */

/* the dynamic shared memory of kernel i as launched ("0": none) */
static void
kernel_smem(const KProgram *p, int i, const CudaOpts *o, const CudaLayout *lay, char *s, size_t n)
{
    const Kernel *k = &p->k[i];
    snprintf(s, n, "0");
    const FuseKind f = mc_cu_guest_kind(p, i);
    if (f == FUSE_DOWN) {
        const View *x = &p->k[i + 1].in[0];
        int64_t M, N, K, M2, N2, K2;
        int R = 1, TW = 1, MT3 = 1;
        mc_cu_gemm_dims(k, &M, &N, &K);
        mc_cu_gemm_dims(&p->k[i + 2], &M2, &N2, &K2);
        mc_cu_down_tile(x->shape[0], x->shape[1], x->shape[2], K, N, N2, &R, &TW, &MT3);
        snprintf(s, n, "mc_down_dsm<%lld, %lld, %d, %d, %d>()", (long long)K, (long long)N2, R, TW, MT3);
    } else if (f == FUSE_MLP) {
        int64_t M, N, K, M2, N2, K2;
        mc_cu_gemm_dims(k, &M, &N, &K);
        mc_cu_gemm_dims(&p->k[i + 1], &M2, &N2, &K2);
        snprintf(s, n, "mc_mlp%s_dsm<%lld, %lld>()", o->precision == MC_CUDA_TF32 ? "32" : "", (long long)K, (long long)N2);
    } else if (k->kind == KK_CONV && mc_cu_conv3_tc(p, i, o->precision)) {
        snprintf(s, n, "mc_conv3%s_dsm<%lld, %lld, %lld, %lld>()", o->precision == MC_CUDA_TF32 ? "t" : "", (long long)k->in[0].shape[2], (long long)k->in[0].shape[3],
                 (long long)k->out.shape[3], (long long)k->out.shape[2]);
    } else if (k->kind == KK_GEMM || (k->kind == KK_CONV && !mc_cu_conv_direct(p, i))) {
        mc_cu_gemm_smem(k, i, o, lay, s, n);
    }
}

/* The fusions of p (Kernel.host/fuse, from the fusion passes or a
 * kernel-IR file) are ones this precision prints: kernel h + 1 inside
 * kernel h (a downsample: h + 1 and h + 2), h itself inside none, in a form
 * of cuda_forms.c. */
static int
check_fusions(const KProgram *p, McCudaPrecision prec, McErr *err)
{
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        const int h = k->host, n = k->fuse == FUSE_DOWN ? 2 : 1;
        if (h < 0) continue;
        int ok = h < i && i <= h + n && h + n < p->nk && p->k[h].host < 0 && mc_cu_fuse_form(p, h, k->fuse, prec);
        for (int j = h + 1; ok && j <= h + n; j++) ok = p->k[j].host == h && p->k[j].fuse == k->fuse;
        if (!ok)
            return mc_err(err, "cuda: kernel k%d \"%s\" cannot run inside k%d as %s in %s", i, k->name, h,
                          mc_fuse_kind_name(k->fuse), mc_cuda_precision_name(prec));
    }
    return 0;
}

/* The schedules of p (Kernel.sched, from the cuda-tile pass or a
 * kernel-IR file) are ones the printers honour in this precision
 * (mc_cu_sched_check): a hand-edited tile they cannot print is refused,
 * never rounded to another. */
static int
check_schedules(const KProgram *p, McCudaPrecision prec, McErr *err)
{
    char why[256];
    for (int i = 0; i < p->nk; i++)
        if (!mc_cu_sched_check(p, i, prec, why, sizeof why))
            return mc_err(err, "cuda: kernel k%d \"%s\": %s in %s (edit or delete the schedule line)", i, p->k[i].name, why,
                          mc_cuda_precision_name(prec));
    return 0;
}

/* Every kernel of p is of a kind the backend prints (mc_cuda_supports:
 * the pipeline asks too, this catches a program handed in directly). */
static int
check_kinds(const KProgram *p, McErr *err)
{
    char why[200];
    for (int i = 0; i < p->nk; i++)
        if (!mc_cuda_supports(p, &p->k[i], why, sizeof why))
            return mc_err(err, "cuda: kernel k%d \"%s\": %s", i, p->k[i].name ? p->k[i].name : "?", why);
    return 0;
}

int
mc_cuda_print_device(const KProgram *p, const CudaOpts *o, const CudaLayout *lay, McBuf *b, McErr *err)
{
    if (check_kinds(p, err) || check_fusions(p, o->precision, err) || check_schedules(p, o->precision, err)) return -1;
    mc_cu_emit_begin(p, o->precision);
    /* fp32 mode rounds its split's high parts to tf32 on the integer pipes
     * (measured faster, byte-identical outputs: docs/gpu.md); tf32 mode
     * keeps cvt.rna (the two disagree on some values, and tf32's C32 check
     * has no margin) */
    mc_buf_printf(b, "#ifndef MC_TF32_INT\n#define MC_TF32_INT %d\n#endif\n", o->precision == MC_CUDA_FP32);
    mc_buf_puts(b, mc_prelude_cuh);
    /* the activations' fast forms (mc_silu, mc_gelu below) */
    mc_buf_printf(b, "#ifndef MC_FAST_SILU\n#define MC_FAST_SILU %d\n#endif\n#ifndef MC_FAST_GELU\n#define MC_FAST_GELU %d\n#endif\n",
                  MC_CUDA_FAST_SILU(o->precision), MC_CUDA_FAST_GELU(o->precision));
    mc_cemit_prelude(b, &mc_dialect_cuda);
    /* the scan's softplus(delta) and exp(delta * A): the libm forms, or fast ones */
    mc_buf_printf(b, "/* the scan's exp and softplus: libm forms, or (MC_FAST_SCAN) __expf / __logf, with\n"
                     " * softplus(x) = max(x, 0) + log1p(e^-|x|) and log1p(y) = y (1 - y/2 + y^2/3) below\n"
                     " * y = 1/64 (relative error <= 7e-6; x > 20 still gives x) */\n"
                     "#ifndef MC_FAST_SCAN\n#define MC_FAST_SCAN %d\n#endif\n"
                     "#if MC_FAST_SCAN\n"
                     "static __device__ __forceinline__ float mc_scan_exp(float x) { return __expf(x); }\n"
                     "static __device__ __forceinline__ float\nmc_scan_softplus(float x)\n{\n"
                     "    const float y = __expf(-fabsf(x));\n"
                     "    return fmaxf(x, 0.0f) + (y < 0.015625f ? y * fmaf(y, fmaf(y, 0.333333333f, -0.5f), 1.0f) : __logf(1.0f + y));\n}\n"
                     "#else\n"
                     "static __device__ __forceinline__ float mc_scan_exp(float x) { return expf(x); }\n"
                     "static __device__ __forceinline__ float mc_scan_softplus(float x) { return mc_softplus(x); }\n"
                     "#endif\n", MC_CUDA_FAST_SCAN(o->precision));
    mc_buf_puts(b, "\n");
    CudaLaunch *ln = calloc((size_t)(p->nk ? p->nk : 1), sizeof *ln);
    char id[96];
    int rc = 0;
    for (int i = 0; i < p->nk && !rc; i++) {
        const Kernel *k = &p->k[i];
        mc_cemit_ident(id, sizeof id, i, k->name);
        if (k->host >= 0) {
            mc_buf_printf(b, "/* k%d \"%s\": inside k%d */\n\n", i, k->name, k->host);
            continue;
        }
        switch (k->kind) {
        case KK_GEMM:
            if (mc_cu_guest_kind(p, i) == FUSE_DOWN) mc_cu_print_down(b, p, k, i, id, &ln[i]);
            else if (mc_cu_guest_kind(p, i) == FUSE_MLP) mc_cu_print_mlp(b, p, k, i, id, &ln[i]);
            else rc = mc_cu_print_gemm(b, p, k, i, id, o, lay, &ln[i], err);
            break;
        case KK_CONV:
            if (mc_cu_conv_direct(p, i)) mc_cu_print_conv_direct(b, p, k, i, id, &ln[i]);
            else rc = mc_cu_print_gemm(b, p, k, i, id, o, lay, &ln[i], err);
            break;
        case KK_DWCONV: mc_cu_print_dwconv(b, p, k, i, id, &ln[i], lay->repack[i] >= 0); break;
        case KK_FUSION25: mc_cu_print_fusion25(b, p, k, i, id, &ln[i]); break;
        case KK_LAYERNORM: mc_cu_print_layernorm(b, p, k, i, id, &ln[i]); break;
        case KK_MEAN_HW: mc_cu_print_mean(b, p, k, i, id, &ln[i]); break;
        case KK_SCAN: mc_cu_print_scan(b, p, k, i, id, &ln[i]); break;
        case KK_RESIZE: mc_cu_print_resize(b, p, k, i, id, &ln[i]); break;
        case KK_AVGPOOL: mc_cu_print_avgpool(b, p, k, i, id, &ln[i]); break;
        case KK_ELTWISE: mc_cu_print_eltwise(b, p, k, i, id, &ln[i]); break;
        case KK_COUNT: break;
        }
    }
    if (rc) { free(ln); return rc; }
    /* mc_forward: the launches in order; ev (when not NULL) gets an event
     * before each kernel and one after the last (profiling) */
    mc_buf_puts(b, "#define P(off) ((float *)(mc_arena + (off)))\n");
    mc_buf_puts(b, "#define PB(off) ((__nv_bfloat16 *)(mc_arena + (off)))\n");
    mc_buf_puts(b, "static char *mc_arena;   /* the device arena */\n\n");
    mc_buf_puts(b, "static void\nmc_forward(cudaStream_t s, cudaEvent_t *ev)\n{\n");
    /* the one-pass scans' chunk flags: zero at the start of every run */
    for (int i = 0; i < p->nk; i++)
        if (p->k[i].kind == KK_SCAN && mc_cu_scan1(&p->k[i], NULL, NULL, NULL)) {
            mc_buf_printf(b, "    cudaMemsetAsync(mc_arena + %lld, 0, %lld, s);\n", (long long)lay->flags_off,
                          (long long)lay->flags_bytes);
            break;
        }
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        Params ps;
        mc_cu_collect_launch_params(p, i, &ps);
        mc_cemit_ident(id, sizeof id, i, k->name);
        mc_buf_printf(b, "    if (ev) cudaEventRecord(ev[%d], s);\n", i);
        if (k->host >= 0) {
            mc_buf_printf(b, "    /* k%d: inside k%d */\n", i, k->host);
            continue;
        }
        char extra[192];
        if (k->kind == KK_SCAN) {
            mc_cu_print_scan_launch(b, p, lay, i, id, &ps, &ln[i]);
            continue;
        }
        int n = 0, bm, bn, sk = 1;
        int64_t kc;
        extra[0] = 0;
        const int down = mc_cu_guest_kind(p, i) == FUSE_DOWN, mlp = mc_cu_guest_kind(p, i) == FUSE_MLP;
        const int gemm = !mlp && !down && (k->kind == KK_GEMM || (k->kind == KK_CONV && !mc_cu_conv_direct(p, i)));
        if (gemm) mc_cuda_gemm_tiles(k, &bm, &bn, &sk, &kc);
        if (lay->repack[i] >= 0) n = snprintf(extra, sizeof extra, "P(%lld)", (long long)lay->repack[i]);
        if (sk > 1)
            n += snprintf(extra + n, sizeof extra - (size_t)n, "%sP(%lld), (unsigned *)P(%lld)", n ? ", " : "",
                          (long long)lay->splitk_off, (long long)lay->counter_off);
        if (lay->w16[i] >= 0)
            n += snprintf(extra + n, sizeof extra - (size_t)n, "%sPB(%lld)", n ? ", " : "", (long long)lay->w16[i]);
        if (mlp && lay->w16[i + 1] >= 0) snprintf(extra + n, sizeof extra - (size_t)n, ", PB(%lld)", (long long)lay->w16[i + 1]);
        if (down)
            snprintf(extra + n, sizeof extra - (size_t)n, ", P(%lld), PB(%lld)", (long long)lay->repack[i + 1],
                     (long long)lay->w16[i + 2]);
        char smem[96];
        kernel_smem(p, i, o, lay, smem, sizeof smem);
        mc_buf_printf(b, "    mc_launch(%s, dim3(%lld, %lld), %s, s, ", id, (long long)ln[i].gx, (long long)ln[i].gy, smem);
        mc_cu_print_args(b, p, lay, &ps, extra[0] ? extra : NULL);
        mc_buf_puts(b, ");\n");
    }
    mc_buf_printf(b, "    if (ev) cudaEventRecord(ev[%d], s);\n}\n\n", p->nk);
    /* mc_prepare: once, after the weights are uploaded */
    mc_buf_puts(b, "/* start-up work on the uploaded weights: bf16 copies for the tensor-core GEMMs, the\n * direct convs' weights into constant memory */\n");
    mc_buf_puts(b, "static void\nmc_prepare(cudaStream_t s)\n{\n    (void)s;\n    mc_pdl_init();\n");
    /* the pipelined GEMMs: their dynamic shared memory may pass 48 KiB */
    for (int i = 0; i < p->nk; i++) {
        char smem[96];
        const Kernel *k = &p->k[i];
        if (k->host >= 0) continue;
        kernel_smem(p, i, o, lay, smem, sizeof smem);
        if (!strcmp(smem, "0")) continue;
        mc_cemit_ident(id, sizeof id, i, k->name);
        mc_buf_printf(b, "    if (cudaFuncSetAttribute(%s, cudaFuncAttributeMaxDynamicSharedMemorySize, %s) != cudaSuccess) {\n"
                         "        fprintf(stderr, \"%s: %%d bytes of shared memory refused\\n\", %s);\n        exit(1);\n    }\n",
                      id, smem, id, smem);
    }
    for (int i = 0; i < p->nk; i++) {
        if (!mc_cu_conv_direct(p, i)) continue;
        mc_cemit_ident(id, sizeof id, i, p->k[i].name);
        mc_buf_printf(b, "    cudaMemcpyToSymbolAsync(%s_wc, P(%lld), %lld, 0, cudaMemcpyDeviceToDevice, s);\n", id,
                      (long long)lay->repack[i], (long long)mc_cuda_numel(&p->k[i].in[1]) * 4);
    }
    for (int i = 0; i < p->nk; i++) {
        if (lay->w16[i] < 0) continue;
        const View *w = &p->k[i].in[1];
        int64_t n = mc_cuda_numel(w);
        int64_t src = lay->repack[i] >= 0 ? lay->repack[i] : mc_cuda_buf_offset(p, lay, w->buf) + w->offset * 4;
        mc_buf_printf(b, "    mc_f2bf<<<%lld, 256, 0, s>>>(P(%lld), PB(%lld), %lldll);\n", (long long)((n + 255) / 256),
                      (long long)src, (long long)lay->w16[i], (long long)n);
    }
    /* mc_mlp32: fc1's and fc2's weights rounded to tf32 in place; mc_conv3t:
     * its re-packed weights */
    for (int i = 0; i < p->nk && o->precision == MC_CUDA_TF32; i++) {
        const int mlp = mc_cu_guest_kind(p, i) == FUSE_MLP;
        for (int q = 0; q < (mlp ? 2 : mc_cu_conv3_tc(p, i, o->precision)); q++) {
            const View *w = &p->k[i + q].in[1];
            int64_t n = mc_cuda_numel(w), at = mlp ? mc_cuda_buf_offset(p, lay, w->buf) + w->offset * 4 : lay->repack[i];
            mc_buf_printf(b, "    mc_round_tf32<<<%lld, 256, 0, s>>>(P(%lld), %lldll);\n", (long long)((n + 255) / 256),
                          (long long)at, (long long)n);
        }
    }
    mc_buf_puts(b, "}\n\n");
    free(ln);
    return b->oom ? mc_err(err, "cuda: out of memory printing the program") : 0;
}
