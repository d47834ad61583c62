/* backends/cuda/cuda_dense.c -- the printers of the dense-prediction
 * kernels: bilinear resize (F.interpolate, align_corners 0 or 1) and
 * adaptive average pooling (PyTorch's bins), both x [B,H,W,C] -> out
 * [B,h,w,C], with their epilogues (the resize + add of a top-down path is
 * one kernel).
 *
 * A thread per output position and 8 channels where C % 8 == 0 and x's
 * view keeps 8-element alignment (mc_cu_dense_vec8: one 16-byte mc_ldv8
 * per source pixel, bf16 or float storage; the 8-wide epilogue and store
 * of cuda_emit.c), else a thread per output element.  Source coordinates
 * and bin edges are integer arithmetic on the thread's output indices
 * (exact; a resize weight is one float division of the remainder), sums
 * and blends fp32 in every precision.  x and out may be any views: a
 * channel slice of a concat buffer, a permuted output, written and read
 * through their strides.  Calls the printing utilities (cuda_emit.c) and
 * the forms (cuda_forms.c); called by the program printer (cuda_print.c).
 * Owns nothing.
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

/* The opening: a thread per output position and V channels (its unit i8
 * or i), and the unit's channel c, column ox, row oy and image bb */
static void
dense_head(McBuf *b, const Kernel *k, const char *id, int V, CudaLaunch *ln)
{
    const View *o = &k->out;
    const long long h = o->shape[1], w = o->shape[2], CV = o->shape[3] / V;
    const char *u = V == 8 ? "i8" : "i";
    mc_cu_thread_head(b, k, id, NULL, u, mc_cuda_numel(o) / V, ln);
    if (CV == 1)
        mc_buf_printf(b, "    const idx_t c = 0, ox = %s %% %lld, oy = (%s / %lld) %% %lld, bb = %s / %lld;\n", u, w, u, w, h, u,
                      w * h);
    else
        mc_buf_printf(b, "    const idx_t c = (%s %% %lld)%s, ox = (%s / %lld) %% %lld, oy = (%s / %lld) %% %lld, bb = %s / %lld;\n",
                      u, CV, V == 8 ? " * 8" : "", u, CV, w, u, CV * w, h, u, CV * w * h);
}

/* the epilogue of the one channel i and its store */
static void
finish1(McBuf *b, const Kernel *k)
{
    char res[32];
    mc_cemit_epilogue(b, &mc_dialect_cuda, k, "acc", "i", "    ", res, sizeof res);
    mc_cu_store(b, k, "    ", "i", res);
    mc_buf_puts(b, "}\n\n");
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
    const long long H = x->shape[1], W = x->shape[2], C = x->shape[3], h = k->out.shape[1], w = k->out.shape[2];
    const int V = mc_cu_dense_vec8(k) ? 8 : 1, al = k->attrs.align_corners != 0;
    char lin[192];
    mc_cu_header(b, p, k, ki);
    mc_buf_printf(b, "/* bilinear %lldx%lld -> %lldx%lld, align_corners %d; %s a thread */\n", H, W, h, w, al,
                  V == 8 ? "8 channels" : "one channel");
    dense_head(b, k, id, V, ln);
    resize_axis(b, "oy", "y", H, h, al);
    resize_axis(b, "ox", "x", W, w, al);
    if (V == 8) mc_buf_puts(b, "    float v[4][8];\n");
    for (int j = 0; j < 4; j++) {
        snprintf(lin, sizeof lin, "((bb * %lld + %s) * %lld + %s) * %lld + c", H, corner[j][0], W, corner[j][1], C);
        if (V == 8) {
            mc_buf_puts(b, "    mc_ldv8(&");
            mc_cu_ref(b, x, lin);
            mc_buf_printf(b, ", v[%d]);\n", j);
        } else {
            mc_buf_printf(b, "    const float v%d = ", j);
            mc_cu_load(b, x, lin);
            mc_buf_puts(b, ";\n");
        }
    }
    if (V == 1) {
        mc_buf_puts(b, "    const float acc = (1.0f - wy) * ((1.0f - wx) * v0 + wx * v1) + wy * ((1.0f - wx) * v2 + wx * v3);\n");
        finish1(b, k);
        return;
    }
    mc_buf_puts(b, "    float acc[8];\n#pragma unroll\n    for (int q = 0; q < 8; q++)\n"
                   "        acc[q] = (1.0f - wy) * ((1.0f - wx) * v[0][q] + wx * v[1][q]) + wy * ((1.0f - wx) * v[2][q] + wx * v[3][q]);\n");
    mc_cu_vec8_finish(b, k, "    ");
    mc_buf_puts(b, "}\n\n");
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
    const long long H = x->shape[1], W = x->shape[2], C = x->shape[3], h = k->out.shape[1], w = k->out.shape[2];
    const int V = mc_cu_dense_vec8(k) ? 8 : 1, even = H % h == 0 && W % w == 0;
    char lin[192], inv[64];
    mc_cu_header(b, p, k, ki);
    mc_buf_printf(b, "/* adaptive average pooling %lldx%lld -> %lldx%lld: ", H, W, h, w);
    if (even) mc_buf_printf(b, "bins of %lldx%lld", H / h, W / w);
    else mc_buf_puts(b, "bins floor(i * H / h) .. ceil((i + 1) * H / h), columns alike");
    mc_buf_printf(b, "; %s a thread */\n", V == 8 ? "8 channels" : "one channel");
    dense_head(b, k, id, V, ln);
    pool_axis(b, "oy", "y", H, h);
    pool_axis(b, "ox", "x", W, w);
    if (V == 8) mc_buf_puts(b, "    float acc[8];\n#pragma unroll\n    for (int q = 0; q < 8; q++) acc[q] = 0.0f;\n");
    else mc_buf_puts(b, "    float acc = 0.0f;\n");
    mc_buf_puts(b, "    for (idx_t yy = y0; yy < y1; yy++)\n        for (idx_t xx = x0; xx < x1; xx++) {\n");
    snprintf(lin, sizeof lin, "((bb * %lld + yy) * %lld + xx) * %lld + c", H, W, C);
    if (V == 8) {
        mc_buf_puts(b, "            float v[8];\n            mc_ldv8(&");
        mc_cu_ref(b, x, lin);
        mc_buf_puts(b, ", v);\n#pragma unroll\n            for (int q = 0; q < 8; q++) acc[q] += v[q];\n        }\n");
    } else {
        mc_buf_puts(b, "            acc += ");
        mc_cu_load(b, x, lin);
        mc_buf_puts(b, ";\n        }\n");
    }
    if (even) snprintf(inv, sizeof inv, "%s", MC_FLOAT_LIT(1.0 / (double)(H / h * (W / w))));
    else mc_buf_puts(b, "    const float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));\n");
    if (V == 1) {
        mc_buf_printf(b, "    acc *= %s;\n", even ? inv : "inv");
        finish1(b, k);
        return;
    }
    mc_buf_printf(b, "#pragma unroll\n    for (int q = 0; q < 8; q++) acc[q] *= %s;\n", even ? inv : "inv");
    mc_cu_vec8_finish(b, k, "    ");
    mc_buf_puts(b, "}\n\n");
}
