/* backends/cuda/cuda_dense.c -- the printers of the dense-prediction
 * kernels: bilinear resize (F.interpolate, align_corners 0 or 1) and
 * adaptive average pooling (PyTorch's bins), both x [B,H,W,C] -> out
 * [B,h,w,C], with their epilogues (the resize + add of a top-down path is
 * one kernel).
 *
 * A thread per output position and V channels (mc_cu_dense_width: 8, 4, 2
 * or 1, the largest dividing C), so that the coordinates are computed once
 * for V channels; x read with one 16-byte mc_ldv8 per source pixel where
 * V is 8 and x's view keeps 8-element alignment (mc_cu_dense_vec8; bf16
 * or float storage), else element by element; the 8-wide epilogue and
 * store of cuda_emit.c, else per element.  A pool whose bins are large
 * and outputs few (the pyramid pooling module's 1x1) runs S lanes per
 * output unit instead (mc_cu_pool_lanes), each summing every S-th pixel
 * of the bin, then a butterfly sum across them.  Source coordinates and
 * bin edges are integer arithmetic on the unit's output indices (exact; a
 * resize weight is one float division of the remainder), sums and blends
 * fp32 in every precision.  x and out may be any views: a channel slice of
 * a concat buffer, a permuted output, written and read through their
 * strides.  Calls the printing utilities (cuda_emit.c) and the forms
 * (cuda_forms.c); called by the program printer (cuda_print.c).  Owns
 * nothing.
 */
#include "cuda_dense.h"
#include <stdio.h>

/* The integer type of the coordinate arithmetic along an axis (in ->
 * out): int while every product (at most (2 * out + 1) * in + 2 * out)
 * stays below 2^31 */
static const char *
coord_type(int64_t in, int64_t out)
{
    return (2 * out + 1) * in + 2 * out < ((int64_t)1 << 31) ? "int" : "long long";
}

/* The opening: a thread per output position and V channels, its unit u
 * ("i" for one channel, else "i<V>"), or (S > 1) S lanes per unit, every
 * thread reaching the butterfly sums (those past the end on the last
 * unit, live false); then the unit's channel c, column ox, row oy and
 * image bb */
static void
dense_head(McBuf *b, const Kernel *k, const char *id, int V, int S, char *u, size_t nu, CudaLaunch *ln)
{
    const View *o = &k->out;
    const long long h = o->shape[1], w = o->shape[2], CV = o->shape[3] / V, U = mc_cuda_numel(o) / V;
    snprintf(u, nu, V == 1 ? "i" : "i%d", V);
    if (S == 1) {
        mc_cu_thread_head(b, k, id, NULL, u, U, ln);
    } else {
        mc_cu_kernel_open(b, k, id, NULL);
        mc_buf_printf(b, "    const idx_t t = (idx_t)blockIdx.x * 256 + threadIdx.x;\n    const bool live = t < %lld;\n", U * S);
        mc_buf_printf(b, "    const idx_t %s = min(t / %d, (idx_t)%lld);\n    const int s = threadIdx.x %% %d;\n", u, S, U - 1, S);
        ln->gx = (U * S + 255) / 256;
        ln->gy = 1;
    }
    if (CV == 1)
        mc_buf_printf(b, "    const idx_t c = 0, ox = %s %% %lld, oy = (%s / %lld) %% %lld, bb = %s / %lld;\n", u, w, u, w, h, u,
                      w * h);
    else if (V == 1)
        mc_buf_printf(b, "    const idx_t c = %s %% %lld, ox = (%s / %lld) %% %lld, oy = (%s / %lld) %% %lld, bb = %s / %lld;\n", u,
                      CV, u, CV, w, u, CV * w, h, u, CV * w * h);
    else
        mc_buf_printf(b, "    const idx_t c = (%s %% %lld) * %d, ox = (%s / %lld) %% %lld, oy = (%s / %lld) %% %lld, bb = %s / %lld;\n",
                      u, CV, V, u, CV, w, u, CV * w, h, u, CV * w * h);
}

/* the V values acc (V == 1: a scalar) through k's epilogue into out:
 * element i = u * V + q of it */
static void
finish(McBuf *b, const Kernel *k, int V, const char *u, const char *indent)
{
    char res[32], ind2[32];
    if (V == 8) {
        mc_cu_vec8_finish(b, k, indent);
    } else if (V == 1) {
        mc_cemit_epilogue(b, &mc_dialect_cuda, k, "acc", "i", indent, res, sizeof res);
        mc_cu_store(b, k, indent, "i", res);
    } else {
        snprintf(ind2, sizeof ind2, "%s    ", indent);
        mc_buf_printf(b, "#pragma unroll\n%sfor (int q = 0; q < %d; q++) {\n%s    const idx_t i = %s * %d + q;\n", indent, V,
                      indent, u, V);
        mc_cemit_epilogue(b, &mc_dialect_cuda, k, "acc[q]", "i", ind2, res, sizeof res);
        mc_cu_store(b, k, ind2, "i", res);
        mc_buf_printf(b, "%s}\n", indent);
    }
    mc_buf_puts(b, "}\n\n");
}

/* dst[q] (q < V; V == 1: dst itself) `op` (= or +=) x at the pixel of
 * element index `pix` (its channels c ..): one mc_ldv8 where vec, else
 * element by element */
static void
load_pixel(McBuf *b, const View *x, int V, int vec, const char *pix, const char *dst, const char *op, const char *indent)
{
    char lin[224];
    const long long C = x->shape[3];
    if (vec && op[0] == '=') {
        snprintf(lin, sizeof lin, "(%s) * %lld + c", pix, C);
        mc_buf_printf(b, "%smc_ldv8(&", indent);
        mc_cu_ref(b, x, lin);
        mc_buf_printf(b, ", %s);\n", dst);
    } else if (vec) {
        snprintf(lin, sizeof lin, "(%s) * %lld + c", pix, C);
        mc_buf_printf(b, "%s{\n%s    float v[8];\n%s    mc_ldv8(&", indent, indent, indent);
        mc_cu_ref(b, x, lin);
        mc_buf_printf(b, ", v);\n#pragma unroll\n%s    for (int q = 0; q < 8; q++) %s[q] %s v[q];\n%s}\n", indent, dst, op,
                      indent);
    } else if (V == 1) {
        snprintf(lin, sizeof lin, "(%s) * %lld + c", pix, C);
        mc_buf_printf(b, "%s%s %s ", indent, dst, op);
        mc_cu_load(b, x, lin);
        mc_buf_puts(b, ";\n");
    } else {
        snprintf(lin, sizeof lin, "(%s) * %lld + c + q", pix, C);
        mc_buf_printf(b, "#pragma unroll\n%sfor (int q = 0; q < %d; q++) %s[q] %s ", indent, V, dst, op);
        mc_cu_load(b, x, lin);
        mc_buf_puts(b, ";\n");
    }
}

/* Along one axis (in -> out positions, output index d): source indices
 * <ax>0 <= <ax>1 = min(<ax>0 + 1, in - 1) and <ax>1's weight w<ax>, as
 * F.interpolate takes them, in integers.  align_corners 0: src = max((d +
 * 0.5) * in / out - 0.5, 0) = n / (2 out), n = max((2 d + 1) * in - out,
 * 0); align_corners 1: src = d * (in - 1) / (out - 1), 0 when out == 1. */
static void
resize_axis(McBuf *b, const char *d, const char *ax, long long in, long long out, int align)
{
    const char *ct = coord_type(in, out);
    const long long den = align ? out - 1 : 2 * out;
    if (align && out == 1) {
        mc_buf_printf(b, "    const idx_t %s0 = 0, %s1 = 0;\n    const float w%s = 0.0f;\n", ax, ax, ax);
        return;
    }
    if (align) mc_buf_printf(b, "    const %s n%s = (%s)%s * %lld;\n", ct, ax, ct, d, in - 1);
    else mc_buf_printf(b, "    const %s n%s = max(((%s)%s * 2 + 1) * %lld - %lld, (%s)0);\n", ct, ax, ct, d, in, out, ct);
    mc_buf_printf(b, "    const idx_t %s0 = (idx_t)(n%s / %lld), %s1 = min(%s0 + 1, (idx_t)%lld);\n", ax, ax, den, ax, ax,
                  in - 1);
    mc_buf_printf(b, "    const float w%s = (float)(n%s %% %lld) / %s;\n", ax, ax, den, MC_FLOAT_LIT((double)den));
}

void
mc_cu_print_resize(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    static const char *const corner[4][2] = {{"y0", "x0"}, {"y0", "x1"}, {"y1", "x0"}, {"y1", "x1"}};
    const View *x = &k->in[0];
    const long long H = x->shape[1], W = x->shape[2], h = k->out.shape[1], w = k->out.shape[2];
    const int V = mc_cu_dense_width(k), vec = mc_cu_dense_vec8(k), al = k->attrs.align_corners != 0;
    char u[8], pix[96], dst[8];
    mc_cu_header(b, p, k, ki);
    mc_buf_printf(b, "/* bilinear %lldx%lld -> %lldx%lld, align_corners %d; %d channel%s a thread */\n", H, W, h, w, al, V,
                  V > 1 ? "s" : "");
    dense_head(b, k, id, V, 1, u, sizeof u, ln);
    resize_axis(b, "oy", "y", H, h, al);
    resize_axis(b, "ox", "x", W, w, al);
    if (V > 1) mc_buf_printf(b, "    float v0[%d], v1[%d], v2[%d], v3[%d];\n", V, V, V, V);
    for (int j = 0; j < 4; j++) {
        snprintf(pix, sizeof pix, "(bb * %lld + %s) * %lld + %s", H, corner[j][0], W, corner[j][1]);
        snprintf(dst, sizeof dst, "v%d", j);
        if (V == 1) mc_buf_printf(b, "    float v%d;\n", j);
        load_pixel(b, x, V, vec, pix, dst, "=", "    ");
    }
    if (V == 1) {
        mc_buf_puts(b, "    const float acc = (1.0f - wy) * ((1.0f - wx) * v0 + wx * v1) + wy * ((1.0f - wx) * v2 + wx * v3);\n");
    } else {
        mc_buf_printf(b, "    float acc[%d];\n#pragma unroll\n    for (int q = 0; q < %d; q++)\n", V, V);
        mc_buf_puts(b, "        acc[q] = (1.0f - wy) * ((1.0f - wx) * v0[q] + wx * v1[q]) + wy * ((1.0f - wx) * v2[q] + wx * v3[q]);\n");
    }
    finish(b, k, V, u, "    ");
}

/* The bin of output index d along one axis (in -> out): rows <ax>0 ..
 * <ax>1 - 1, floor(d * in / out) .. ceil((d + 1) * in / out) - 1; of in /
 * out each where out divides in */
static void
pool_axis(McBuf *b, const char *d, const char *ax, long long in, long long out)
{
    const char *ct = coord_type(in, out);
    if (in % out == 0) {
        mc_buf_printf(b, "    const idx_t %s0 = %s * %lld, %s1 = %s0 + %lld;\n", ax, d, in / out, ax, ax, in / out);
        return;
    }
    mc_buf_printf(b, "    const idx_t %s0 = (idx_t)((%s)%s * %lld / %lld), %s1 = (idx_t)(((%s)%s * %lld + %lld) / %lld);\n", ax,
                  ct, d, in, out, ax, ct, d, in, in + out - 1, out);
}

void
mc_cu_print_avgpool(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln)
{
    const View *x = &k->in[0];
    const long long H = x->shape[1], W = x->shape[2], h = k->out.shape[1], w = k->out.shape[2];
    const int V = mc_cu_dense_width(k), vec = mc_cu_dense_vec8(k), S = mc_cu_pool_lanes(k), even = H % h == 0 && W % w == 0;
    char u[8], pix[96], inv[64];
    mc_cu_header(b, p, k, ki);
    mc_buf_printf(b, "/* adaptive average pooling %lldx%lld -> %lldx%lld: ", H, W, h, w);
    if (even) mc_buf_printf(b, "bins of %lldx%lld", H / h, W / w);
    else mc_buf_puts(b, "bins floor(i * H / h) .. ceil((i + 1) * H / h), columns alike");
    mc_buf_printf(b, "; %d channel%s a thread", V, V > 1 ? "s" : "");
    if (S > 1) mc_buf_printf(b, ",\n * %d lanes per bin, each summing every %d-th pixel, then across the lanes", S, S);
    mc_buf_puts(b, " */\n");
    dense_head(b, k, id, V, S, u, sizeof u, ln);
    pool_axis(b, "oy", "y", H, h);
    pool_axis(b, "ox", "x", W, w);
    if (V > 1) mc_buf_printf(b, "    float acc[%d];\n#pragma unroll\n    for (int q = 0; q < %d; q++) acc[q] = 0.0f;\n", V, V);
    else mc_buf_puts(b, "    float acc = 0.0f;\n");
    snprintf(pix, sizeof pix, "(bb * %lld + yy) * %lld + xx", H, W);
    if (S > 1) {
        mc_buf_puts(b, "    const idx_t bw = x1 - x0, n = (y1 - y0) * bw;\n");
        mc_buf_printf(b, "    for (idx_t j = s; j < n; j += %d) {\n        const idx_t yy = y0 + j / bw, xx = x0 + j %% bw;\n", S);
        load_pixel(b, x, V, vec, pix, "acc", "+=", "        ");
        mc_buf_puts(b, "    }\n");
        if (V > 1) mc_buf_printf(b, "#pragma unroll\n    for (int q = 0; q < %d; q++) acc[q] = mc_group_sum<%d>(acc[q]);\n", V, S);
        else mc_buf_printf(b, "    acc = mc_group_sum<%d>(acc);\n", S);
        mc_buf_puts(b, "    if (!live || s) return;\n");
    } else {
        mc_buf_puts(b, "    for (idx_t yy = y0; yy < y1; yy++)\n        for (idx_t xx = x0; xx < x1; xx++) {\n");
        load_pixel(b, x, V, vec, pix, "acc", "+=", "            ");
        mc_buf_puts(b, "        }\n");
    }
    if (even) snprintf(inv, sizeof inv, "%s", MC_FLOAT_LIT(1.0 / (double)(H / h * (W / w))));
    else mc_buf_puts(b, "    const float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));\n");
    if (V == 1) mc_buf_printf(b, "    acc *= %s;\n", even ? inv : "inv");
    else mc_buf_printf(b, "#pragma unroll\n    for (int q = 0; q < %d; q++) acc[q] *= %s;\n", V, even ? inv : "inv");
    finish(b, k, V, u, "    ");
}
