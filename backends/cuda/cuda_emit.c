/* backends/cuda/cuda_emit.c -- the printing utilities every CUDA printer
 * shares: the printing context (the program and precision being printed),
 * element references, loads and stores (bf16 storage converted), a
 * kernel's parameter list and launch arguments, its opening, the 8-wide
 * epilogue.  Calls only the forms (cuda_forms.c); the printers above it:
 * cuda_gemm.c, cuda_scan.c, cuda_eltwise.c, cuda_print.c.  Owns nothing.
 */
#include "cuda_emit.h"
#include <string.h>

/* the program and precision being printed (mc_cu_emit_begin) */
static const KProgram *cur_prog;
static McCudaPrecision cur_prec;

void
mc_cu_emit_begin(const KProgram *p, McCudaPrecision prec)
{
    cur_prog = p;
    cur_prec = prec;
}

McCudaPrecision
mc_cu_emit_precision(void)
{
    return cur_prec;
}

int
mc_cu_buf_bf16(int buf)
{
    return mc_cu_stores_bf16(cur_prog, cur_prec, buf);
}

int64_t
mc_cuda_buf_offset(const KProgram *p, const CudaLayout *lay, int buf)
{
    const Buffer *b = &p->bufs[buf];
    switch (b->kind) {
    case BUF_INPUT: return lay->input_off;
    case BUF_OUTPUT: return lay->output_off[mc_kprogram_output_index(p, buf)];
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
    const FuseKind f = mc_cu_guest_kind(p, i);
    collect_params_with(&p->k[i], f != FUSE_NONE ? &p->k[i + 1] : NULL, f == FUSE_DOWN ? &p->k[i + 2] : NULL, ps);
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

/* Index arithmetic in 32 bits when every buffer the kernel touches (and
 * 4x its largest one, for the scan carries) stays under 2^31 elements:
 * 64-bit division and multiplication cost several instructions each.  The
 * output's whole buffer counts: its view may be a slice of a larger one
 * (a concat's channels). */
static int
small_index(const Kernel *k)
{
    int64_t mx = mc_cuda_numel(&k->out);
    if (cur_prog->bufs[k->out.buf].bytes / 4 > mx) mx = cur_prog->bufs[k->out.buf].bytes / 4;
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

/* The epilogue operands of a thread's W consecutive channels (linear index
 * lin0 + q, q < W), loaded once before the per-element epilogue: an operand
 * broadcast along the channel axis as one scalar (as<a>), one contiguous
 * along it with W-aligned strides as one mc_ldv8 / mc_ldv4 (av<a>[q]);
 * ax[a] is the expression to use, NULL where the operand is loaded per
 * element as before. */
void
mc_cu_vec_args(McBuf *b, const Kernel *k, int W, const char *lin0, const char *indent, char names[][24], const char **ax)
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
void
mc_cu_vec8_finish_ex(McBuf *b, const Kernel *k, const char *indent, const char *guard, const char *keep)
{
    char res[32], ind2[32], names[MC_MAX_ARGS][24];
    const char *ax[MC_MAX_ARGS];
    snprintf(ind2, sizeof ind2, "%s    ", indent);
    mc_buf_printf(b, "%sfloat r[8];\n", indent);
    mc_cu_vec_args(b, k, 8, "i8 * 8", indent, names, ax);
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
    mc_cu_vec8_finish_ex(b, k, indent, NULL, NULL);
}
