/* backends/cuda/cuda_print.c -- prints a KProgram as CUDA C.
 *
 * Takes a lowered, memory-planned KProgram and the options (precision, SM);
 * produces the device half of OUT.cu: the prelude (tiled GEMM template,
 * reductions, tap table), one __global__ per fused kernel with every shape
 * a constant, and mc_forward(), which launches them in order on one stream
 * with every buffer at its planned offset in one device arena.  Which
 * adjacent kernels run as one (mc_cuda_fused_into) and the memory plan
 * that keeps them safe (mc_cuda_memplan): cuda_fuse.c.  The dense
 * products' kernels come from cuda_gemm.c, the selective scan's from
 * cuda_scan.c, the host half (main) from cuda_host.c.
 * Owns nothing.
 *
 * Device arena layout (bytes, each part 256-aligned):
 *   [ weights blob | scratch (memplan) | input | output | scan carries |
 *     scan flags | split-K partial tiles | split-K tile counters |
 *     bf16 weight copies ]
 * (everything after the blob zeroed at start-up, the scan flags again at
 * the start of every run; the bf16 copies, bf16 mode only, made from the
 * blob by mc_prepare()).
 * The weights blob is the graph-layout blob followed by re-packed weights:
 * dense convolutions as [Co][kh][kw][Ci] (the implicit-GEMM K order), the
 * 25-tap tables as [25][D] (coalesced across the channel threads).
 */
#include "cuda_internal.h"
#include "../../passes/lower.h"
#include <stdlib.h>
#include <string.h>

/* device/mc_prelude.cuh as mc_prelude_cuh[] (embedded by the build) */
#include "mc_prelude_cuh.h"

static int64_t
align256(int64_t v)
{
    return (v + 255) & ~(int64_t)255;
}

int64_t
mc_cuda_numel(const View *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++) n *= v->shape[i];
    return n;
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

/* M, N, K of a GEMM or implicit-GEMM convolution */
void
mc_cu_gemm_dims(const Kernel *k, int64_t *M, int64_t *N, int64_t *K)
{
    if (k->kind == KK_CONV) {
        *M = k->out.shape[0] * k->out.shape[1] * k->out.shape[2];
        *N = k->in[1].shape[0];
        *K = k->in[1].shape[1] * k->in[1].shape[2] * k->in[1].shape[3];
    } else {
        *M = k->M; *N = k->N; *K = k->K;
    }
}

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
    const Buffer *in = &p->bufs[p->input_buf], *out = &p->bufs[p->output_buf];
    lay->output_off = align256(lay->input_off + in->bytes);
    lay->carry_off = align256(lay->output_off + out->bytes);
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

int64_t
mc_cuda_buf_offset(const KProgram *p, const CudaLayout *lay, int buf)
{
    const Buffer *b = &p->bufs[buf];
    switch (b->kind) {
    case BUF_INPUT: return lay->input_off;
    case BUF_OUTPUT: return lay->output_off;
    case BUF_WEIGHT: return b->offset;
    case BUF_SCRATCH: return lay->scratch_off + b->offset;
    }
    return 0;
}

/* ------------------------------------------------------------ parameters */

static void
add_param(Params *ps, int buf)
{
    for (int i = 0; i < ps->n; i++)
        if (ps->buf[i] == buf) return;
    ps->buf[ps->n++] = buf;
}

/* the buffers kernel k reads and writes; with l (a LayerNorm k runs
 * inside itself, reading k's output) also l's other inputs and operands
 * and l's output: besides k's where k is a depthwise conv (the residual
 * stream), else instead of it (the 25-tap fusion's y, the MLP's hidden
 * activations never go to memory); with l2 too (a downsample's projection
 * after its depthwise conv l) l2's output instead of both */
static void
collect_params_with(const Kernel *k, const Kernel *l, const Kernel *l2, Params *ps)
{
    memset(ps, 0, sizeof *ps);
    for (int i = 0; i < k->nin; i++) add_param(ps, k->in[i].buf);
    for (int i = 0; i < k->nargs; i++) add_param(ps, k->args[i].buf);
    for (const Kernel *o = l; o; o = o == l ? l2 : NULL) {
        for (int i = 1; i < o->nin; i++) add_param(ps, o->in[i].buf);
        for (int i = 0; i < o->nargs; i++) add_param(ps, o->args[i].buf);
    }
    ps->out = l2 ? l2->out.buf : l ? l->out.buf : k->out.buf;
    ps->out2 = l && !l2 && k->kind == KK_DWCONV ? k->out.buf : -1;
    add_param(ps, ps->out);
    if (ps->out2 >= 0) add_param(ps, ps->out2);
}

void
mc_cu_collect_params(const Kernel *k, Params *ps)
{
    collect_params_with(k, NULL, NULL, ps);
}

/* the parameters of kernel i of p as launched (with the kernels it runs
 * inside itself, if any: a LayerNorm, an fc2, an x_proj; a downsample's
 * depthwise conv and projection) */
void
mc_cu_collect_launch_params(const KProgram *p, int i, Params *ps)
{
    const int down = mc_cu_down_fused(p, i);
    collect_params_with(&p->k[i], mc_cuda_fused_into(p, i + 1) == i ? &p->k[i + 1] : NULL, down ? &p->k[i + 2] : NULL, ps);
}

/* bf16 activation storage (bf16 mode): every scratch buffer holds
 * __nv_bfloat16 (in its planned slot, of which it uses half); the input,
 * output, weights and scan carries stay float.  Loads convert to float
 * (mc_ld, mc_ldv4), stores round once (__float2bfloat16_rn): the arithmetic,
 * the scan state and every reduction stay fp32. */
static const KProgram *cur_prog;
static int cur_bf16, cur_tf32;

int
mc_cu_bf16_mode(void)
{
    return cur_bf16;
}

int
mc_cu_tf32_mode(void)
{
    return cur_tf32;
}

int
mc_cu_buf_bf16(int buf)
{
    return cur_bf16 && cur_prog->bufs[buf].kind == BUF_SCRATCH;
}

void
mc_cu_print_params(McBuf *b, const Params *ps, const char *extra)
{
    for (int i = 0; i < ps->n; i++)
        mc_buf_printf(b, "%s%s%s *__restrict__ b%d", i ? ", " : "", ps->buf[i] == ps->out || ps->buf[i] == ps->out2 ? "" : "const ",
                      mc_cu_buf_bf16(ps->buf[i]) ? "__nv_bfloat16" : "float", ps->buf[i]);
    if (extra) mc_buf_printf(b, ", %s", extra);
}

void
mc_cu_print_args(McBuf *b, const KProgram *p, const CudaLayout *lay, const Params *ps, const char *extra)
{
    for (int i = 0; i < ps->n; i++)
        mc_buf_printf(b, "%s%s(%lld)", i ? ", " : "", mc_cu_buf_bf16(ps->buf[i]) ? "PB" : "P",
                      (long long)mc_cuda_buf_offset(p, lay, ps->buf[i]));
    if (extra) mc_buf_printf(b, ", %s", extra);
}

/* b<buf>[<index of view v at lin>] */
void
mc_cu_ref(McBuf *b, const View *v, const char *lin)
{
    mc_buf_printf(b, "b%d[", v->buf);
    mc_cemit_view_index(b, v, lin);
    mc_buf_puts(b, "]");
}

/* the element as a float rvalue */
void
mc_cu_load(McBuf *b, const View *v, const char *lin)
{
    if (!mc_cu_buf_bf16(v->buf)) { mc_cu_ref(b, v, lin); return; }
    mc_buf_puts(b, "mc_ld(");
    mc_cu_ref(b, v, lin);
    mc_buf_puts(b, ")");
}

void
mc_cu_store_view(McBuf *b, const View *v, const char *indent, const char *lin, const char *val)
{
    mc_buf_printf(b, "%s", indent);
    mc_cu_ref(b, v, lin);
    if (mc_cu_buf_bf16(v->buf)) mc_buf_printf(b, " = __float2bfloat16_rn(%s);\n", val);
    else mc_buf_printf(b, " = %s;\n", val);
}

void
mc_cu_store(McBuf *b, const Kernel *k, const char *indent, const char *lin, const char *val)
{
    mc_cu_store_view(b, &k->out, indent, lin, val);
}

void
mc_cu_header(McBuf *b, const KProgram *p, const Kernel *k, int ki)
{
    (void)p;
    mc_buf_printf(b, "/* k%d %s \"%s\"  %.3f MFLOP", ki, mc_kernel_kind_name(k->kind), k->name, k->flops / 1e6);
    if (k->nexpr) mc_buf_printf(b, "; epilogue of %d instructions", k->nexpr);
    mc_buf_puts(b, " */\n");
}

int
mc_cu_is_contig(const View *v, int64_t rows, int64_t cols)
{
    return v->rank == 2 && v->shape[0] == rows && v->shape[1] == cols && (v->stride[0] == cols || rows == 1) &&
           v->stride[1] == 1;
}

/* Index arithmetic in 32 bits when every buffer the kernel touches (and
 * 4x its largest one, for the scan carries) stays under 2^31 elements:
 * 64-bit division and multiplication cost several instructions each. */
static int
small_index(const Kernel *k)
{
    int64_t mx = mc_cuda_numel(&k->out);
    for (int i = 0; i < k->nin; i++) {
        int64_t n = cur_prog->bufs[k->in[i].buf].bytes / 4;
        if (n > mx) mx = n;
    }
    for (int i = 0; i < k->nargs; i++) {
        int64_t n = cur_prog->bufs[k->args[i].buf].bytes / 4;
        if (n > mx) mx = n;
    }
    return 4 * mx < ((int64_t)1 << 31);
}

void
mc_cu_idx_typedef(McBuf *b, const Kernel *k)
{
    mc_buf_printf(b, "    typedef %s idx_t;\n", small_index(k) ? "int" : "int64_t");
}

/* ------------------------------------------------------------ kernels */

/* the dense-layer GEMM mode per precision; MC_FP32_MODE is MC_F32X3 (split
 * products on tensor cores: tf32 high parts, bf16 corrections) unless the
 * .cu is built with -DMC_FP32_MODE=MC_FP32 */

/* "__global__ void __launch_bounds__(256) ID(buffers, extra) {" and idx_t */
void
mc_cu_kernel_open(McBuf *b, const Kernel *k, const char *id, const char *extra)
{
    Params ps;
    mc_cu_collect_params(k, &ps);
    mc_buf_printf(b, "%s __launch_bounds__(256)\n%s(", mc_dialect_cuda.kernel_qual, id);
    mc_cu_print_params(b, &ps, extra);
    mc_buf_puts(b, KERNEL_BODY);
    mc_cu_idx_typedef(b, k);
}

/* kernel_open, then one thread per unit: `var` = the global thread index,
 * threads past n units return; the launch is ceil(n / 256) blocks */
void
mc_cu_thread_head(McBuf *b, const Kernel *k, const char *id, const char *extra, const char *var, int64_t n, CudaLaunch *ln)
{
    mc_cu_kernel_open(b, k, id, extra);
    mc_buf_printf(b, "    const idx_t %s = (idx_t)blockIdx.x * 256 + threadIdx.x;\n", var);
    mc_buf_printf(b, "    if (%s >= %lld) return;\n", var, (long long)n);
    ln->gx = (n + 255) / 256;
    ln->gy = 1;
}

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

/* Vector loads of n elements along the last (channel) axis (n = 4: 16
 * bytes of float; n = 8: 16 bytes of bf16 or two float4): it is contiguous,
 * and every other stride and the offset are multiples of n (buffers are
 * 64-byte aligned) */
int
mc_cu_vecn_view(const View *v, int64_t C, int n)
{
    if (C % n || v->rank < 1 || v->stride[v->rank - 1] != 1 || v->offset % n) return 0;
    for (int i = 0; i < v->rank - 1; i++)
        if (v->stride[i] % n) return 0;
    return 1;
}

/* The epilogue operands of a thread's W consecutive channels (linear index
 * lin0 + q, q < W), loaded once before the per-element epilogue: an operand
 * broadcast along the channel axis as one scalar (as<a>), one contiguous
 * along it with W-aligned strides as one mc_ldv8 / mc_ldv4 (av<a>[q]);
 * ax[a] is the expression to use, NULL where the operand is loaded per
 * element as before. */

static void
vec_args(McBuf *b, const Kernel *k, int W, const char *lin0, const char *indent, char names[][24], const char **ax)
{
    int64_t C = k->out.shape[k->out.rank - 1];
    for (int a = 0; a < k->nargs; a++) {
        const View *v = &k->args[a];
        ax[a] = NULL;
        if (v->rank != k->out.rank || v->shape[v->rank - 1] != C || cur_prog->bufs[v->buf].offset % 64) continue;
        int64_t st = v->stride[v->rank - 1];
        if (st == 0) {
            mc_buf_printf(b, "%sconst float as%d = ", indent, a);
            mc_cu_load(b, v, lin0);
            mc_buf_puts(b, ";\n");
            snprintf(names[a], sizeof names[a], "as%d", a);
        } else if (W == 8 && vec8_view(v, C)) {
            mc_buf_printf(b, "%sfloat av%d[8];\n%smc_ldv8(&", indent, a, indent);
            mc_cu_ref(b, v, lin0);
            mc_buf_printf(b, ", av%d);\n", a);
            snprintf(names[a], sizeof names[a], "av%d[q]", a);
        } else if (W == 4 && vec4_view(v, C)) {
            mc_buf_printf(b, "%sconst float4 a4_%d = mc_ldv4(&", indent, a);
            mc_cu_ref(b, v, lin0);
            mc_buf_printf(b, ");\n%sconst float av%d[4] = {a4_%d.x, a4_%d.y, a4_%d.z, a4_%d.w};\n", indent, a, a, a, a, a);
            snprintf(names[a], sizeof names[a], "av%d[q]", a);
        } else {
            continue;
        }
        ax[a] = names[a];
    }
}

/* eight channels per thread i8: the epilogue runs per element (i = i8 * 8 +
 * q) into r[8]; an output whose view keeps 8-element alignment gets one
 * mc_stv8 (bf16: one 16-byte store; float: two), else per-element stores */
static void
vec8_finish_ex(McBuf *b, const Kernel *k, const char *indent, const char *guard, const char *keep)
{
    char res[32], ind2[32], names[MC_MAX_ARGS][24];
    const char *ax[MC_MAX_ARGS];
    snprintf(ind2, sizeof ind2, "%s    ", indent);
    mc_buf_printf(b, "%sfloat r[8];\n", indent);
    vec_args(b, k, 8, "i8 * 8", indent, names, ax);
    mc_buf_printf(b, "#pragma unroll\n%sfor (int q = 0; q < 8; q++) {\n", indent);
    mc_buf_printf(b, "%s    const idx_t i = i8 * 8 + q;\n%s    (void)i;\n", indent, indent);
    mc_cemit_epilogue_ex(b, &mc_dialect_cuda, k, "acc[q]", "i", ind2, res, sizeof res, ax);
    if (vec8_view(&k->out, k->out.shape[k->out.rank - 1])) {
        mc_buf_printf(b, "%s    r[q] = %s;\n%s}\n", indent, res, indent);
        mc_buf_printf(b, guard ? "%sif (%s) mc_stv8(&" : "%s%smc_stv8(&", indent, guard ? guard : "");
        mc_cu_ref(b, &k->out, "i8 * 8");
        mc_buf_puts(b, ", r);\n");
        if (keep) mc_buf_printf(b, "#pragma unroll\n%sfor (int q = 0; q < 8; q++) %s[q] = r[q];\n", indent, keep);
    } else {
        mc_cu_store(b, k, ind2, "i", res);
        mc_buf_printf(b, "%s}\n", indent);
    }
}

void
mc_cu_vec8_finish(McBuf *b, const Kernel *k, const char *indent)
{
    vec8_finish_ex(b, k, indent, NULL, NULL);
}

/* the 8-channel x P-position form of a depthwise conv (print_dwconv8):
 * its thread count, P in *pp; 0 where it does not apply */
long long
mc_cu_dwconv8_form(const Kernel *k, long long *pp)
{
    if (k->kind != KK_DWCONV || k->out.rank != 4 || k->out.shape[3] % 8) return 0;
    long long Ho = k->out.shape[1], Wo = k->out.shape[2], C = k->out.shape[3];
    int64_t n = mc_cuda_numel(&k->out);
    /* fewer than ~4 blocks of 256 threads per SM (batch 1): one channel per
     * thread keeps more loads in flight (measured: 8-wide made batch 1 slower) */
    if (n / 8 < 4 * 132 * 256) return 0;
    if (!vec8_view(&k->in[0], C) || !vec8_view(&k->out, C)) return 0;
    /* P = 4 output positions along x per thread where that still leaves
     * ~4 blocks per SM: each tap's weights (two float4: twice the L1 bytes
     * of the 16-byte load of x) loaded once for the 4 */
    long long P = n / 32 >= 4 * 132 * 256 ? 4 : 1, WG = (Wo + P - 1) / P;
    *pp = P;
    return k->out.shape[0] * Ho * WG * (C / 8);
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
    const Kernel *l = mc_cuda_fused_into(p, ki + 1) == ki ? &p->k[ki + 1] : NULL;
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
        vec8_finish_ex(b, k, "        ", guard, "yv[p]");
        mc_buf_puts(b, "    }\n");
        if (l->kind == KK_LAYERNORM) print_group_layernorm(b, l, 8, P, "c", "oh", "ow0", Ho, Wo);
        else print_group_xproj(b, k, l, P, Ho, Wo);
        return 1;
    }
    mc_cu_vec8_finish(b, k, "        ");
    mc_buf_puts(b, "    }\n}\n\n");
    return 1;
}

static void
print_dwconv(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln, int repacked)
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
    vec_args(b, k, 4, "i4 * 4", indent, names, ax);
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

/* the threads of the 4-channels x 4-positions form of the 25-tap fusion,
 * 0 where that form does not apply */
#define F25_P 4
long long
mc_cu_fusion25_wide(const Kernel *k)
{
    long long H = k->out.shape[1], W = k->out.shape[2], D = k->out.shape[3];
    long long NT = k->out.shape[0] * H * ((W + F25_P - 1) / F25_P) * D / 4;
    return vec4_view(&k->in[0], D) && vec4_view(&k->out, D) && NT >= MC_CUDA_FILL ? NT : 0;
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

static void
print_fusion25(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *h = &k->in[0];
    long long H = k->out.shape[1], W = k->out.shape[2], D = k->out.shape[3];
    char lin[160];
    mc_cu_header(b, p, k, ki);
    /* 4 channels x P = 4 positions along x per thread: each tap's weights
     * loaded once for the P positions (the loads of h and of the taps went
     * through L1 at 2 : 4 wavefronts; Nsight: L1-bound), while that still
     * leaves enough threads */
    const long long P = F25_P, WG = (W + P - 1) / P, NT = mc_cu_fusion25_wide(k);
    const Kernel *l = mc_cuda_fused_into(p, ki + 1) == ki ? &p->k[ki + 1] : NULL;
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
        mc_buf_puts(b, "#pragma unroll\n    for (int t = 0; t < 25; t++) {\n");
        mc_buf_printf(b, "        const idx_t yy = min(max(y + mc_f25_dy(t), (idx_t)0), (idx_t)%lld);\n", H - 1);
        mc_buf_printf(b, "        const idx_t xx = min(max(x + mc_f25_dx(t), (idx_t)0), (idx_t)%lld);\n", W - 1);
        snprintf(lin, sizeof lin, "((bb * %lld + yy) * %lld + xx) * %lld + d", H, W, D);
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
    mc_buf_puts(b, "#pragma unroll\n    for (int t = 0; t < 25; t++) {\n");
    mc_buf_printf(b, "        const idx_t yy = min(max(y + mc_f25_dy(t), (idx_t)0), (idx_t)%lld);\n", H - 1);
    mc_buf_printf(b, "        const idx_t xx = min(max(x + mc_f25_dx(t), (idx_t)0), (idx_t)%lld);\n", W - 1);
    snprintf(lin, sizeof lin, "((bb * %lld + yy) * %lld + xx) * %lld + d", H, W, D);
    mc_buf_printf(b, "        acc = fmaf(wp[t * %lld + d], ", D);
    mc_cu_load(b, h, lin);
    mc_buf_puts(b, ", acc);\n    }\n");
    finish(b, k, "acc");
}

static void
print_eltwise(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    mc_cu_header(b, p, k, ki);
    elementwise_head(b, k, id, NULL, mc_cuda_numel(&k->out), ln);
    finish(b, k, "0.0f");
}

static void
print_mean(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
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

/* the view is a dense [rows, C] array (row * C + c) */
int
mc_cu_is_contig_rows(const View *v, int64_t C)
{
    int64_t st = 1;
    for (int d = v->rank - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != st) return 0;
        st *= v->shape[d];
    }
    return v->shape[v->rank - 1] == C;
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

static void
print_layernorm(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
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

/* ------------------------------------------------------------ the program */

/* the dynamic shared memory of kernel i as launched ("0": none) */
static void
kernel_smem(const KProgram *p, int i, const CudaOpts *o, const CudaLayout *lay, char *s, size_t n)
{
    const Kernel *k = &p->k[i];
    snprintf(s, n, "0");
    if (mc_cu_down_fused(p, i)) {
        const View *x = &p->k[i + 1].in[0];
        int64_t M, N, K, M2, N2, K2;
        int R = 1, TW = 1, MT3 = 1;
        mc_cu_gemm_dims(k, &M, &N, &K);
        mc_cu_gemm_dims(&p->k[i + 2], &M2, &N2, &K2);
        mc_cu_down_tile(x->shape[0], x->shape[1], x->shape[2], K, N, N2, &R, &TW, &MT3);
        snprintf(s, n, "mc_down_dsm<%lld, %lld, %d, %d, %d>()", (long long)K, (long long)N2, R, TW, MT3);
    } else if (k->kind == KK_GEMM && mc_cuda_fused_into(p, i + 1) == i) {
        int64_t M, N, K, M2, N2, K2;
        mc_cu_gemm_dims(k, &M, &N, &K);
        mc_cu_gemm_dims(&p->k[i + 1], &M2, &N2, &K2);
        snprintf(s, n, "mc_mlp%s_dsm<%lld, %lld>()", cur_tf32 ? "32" : "", (long long)K, (long long)N2);
    } else if (k->kind == KK_CONV && mc_cu_conv3_tc(p, i)) {
        snprintf(s, n, "mc_conv3%s_dsm<%lld, %lld, %lld, %lld>()", cur_tf32 ? "t" : "", (long long)k->in[0].shape[2], (long long)k->in[0].shape[3],
                 (long long)k->out.shape[3], (long long)k->out.shape[2]);
    } else if (k->kind == KK_GEMM || (k->kind == KK_CONV && !mc_cu_conv_direct(p, i))) {
        mc_cu_gemm_smem(k, i, o, lay, s, n);
    }
}

int
mc_cuda_print_device(const KProgram *p, const CudaOpts *o, const CudaLayout *lay, McBuf *b, McErr *err)
{
    cur_prog = p;
    cur_bf16 = o->precision == MC_CUDA_BF16;
    cur_tf32 = o->precision == MC_CUDA_TF32;
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
        if (mc_cuda_fused_into(p, i) >= 0) {
            mc_buf_printf(b, "/* k%d \"%s\": inside k%d */\n\n", i, k->name, mc_cuda_fused_into(p, i));
            continue;
        }
        switch (k->kind) {
        case KK_GEMM:
            if (mc_cu_down_fused(p, i)) mc_cu_print_down(b, p, k, i, id, &ln[i]);
            else if (mc_cuda_fused_into(p, i + 1) == i) mc_cu_print_mlp(b, p, k, i, id, &ln[i]);
            else rc = mc_cu_print_gemm(b, p, k, i, id, o, lay, &ln[i], err);
            break;
        case KK_CONV:
            if (mc_cu_conv_direct(p, i)) mc_cu_print_conv_direct(b, p, k, i, id, &ln[i]);
            else rc = mc_cu_print_gemm(b, p, k, i, id, o, lay, &ln[i], err);
            break;
        case KK_DWCONV: print_dwconv(b, p, k, i, id, &ln[i], lay->repack[i] >= 0); break;
        case KK_FUSION25: print_fusion25(b, p, k, i, id, &ln[i]); break;
        case KK_LAYERNORM: print_layernorm(b, p, k, i, id, &ln[i]); break;
        case KK_MEAN_HW: print_mean(b, p, k, i, id, &ln[i]); break;
        case KK_SCAN: mc_cu_print_scan(b, p, k, i, id, &ln[i]); break;
        case KK_ELTWISE: print_eltwise(b, p, k, i, id, &ln[i]); break;
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
        if (mc_cuda_fused_into(p, i) >= 0) {
            mc_buf_printf(b, "    /* k%d: inside k%d */\n", i, mc_cuda_fused_into(p, i));
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
        const int down = mc_cu_down_fused(p, i), mlp = !down && k->kind == KK_GEMM && mc_cuda_fused_into(p, i + 1) == i;
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
        if (mc_cuda_fused_into(p, i) >= 0) continue;
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
        const int mlp = i + 1 < p->nk && p->k[i].kind == KK_GEMM && mc_cuda_fused_into(p, i + 1) == i;
        for (int q = 0; q < (mlp ? 2 : mc_cu_conv3_tc(p, i)); q++) {
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
