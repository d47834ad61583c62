/* backends/cuda/cuda_fuse.c -- the CUDA target's kernel passes: first
 * concat-in-place (passes/concat_in_place.c; which producers may write a
 * concat's channel slice: mc_cu_strided_out_ok), then the fusion passes,
 * which kernels of the kernel program run inside another one, then
 * cuda-tile.  The fusion passes (passes/pipeline.h), run in this order
 * before the memory plan:
 *
 *   cuda-fuse-down   a downsample's depthwise conv and projection inside
 *                    its expansion GEMM (mc_down; bf16)
 *   cuda-fuse-ln     a LayerNorm inside the 25-tap fusion or the depthwise
 *                    conv that produces its input (every precision)
 *   cuda-fuse-mlp    fc2 inside fc1, the hidden activations on chip
 *                    (mc_mlp, mc_mlp32; bf16, tf32)
 *   cuda-fuse-xproj  the SSM's x_proj inside its depthwise conv (every
 *                    precision)
 *
 * Each pass, wherever the kernels have the fusion's shape (in any
 * precision), makes the guest's output live from the host kernel on
 * (Buffer.first): the memory plan then gives it no bytes of what the host
 * still reads, and is the same in every precision.  Where the precision
 * allows the fusion too (its form), the pass sets the guest's Kernel.host
 * and Kernel.fuse (a downsample: both kernels after the expansion), which
 * the printers obey.  A kernel runs inside at most one other, and neither
 * a host nor a guest takes part in another fusion: the downsample comes
 * first, and no kernel of a downsample's shape (taken or not) runs inside
 * another kernel.  The shapes and forms: cuda_forms.c; the passes use
 * nothing else of the backend.
 */
#include "cuda_forms.h"
#include "../../passes/concat_in_place.h"
#include "../../passes/lower.h"
#include <string.h>

/* the output of kernel g, run inside kernel i, is written from kernel i on */
static bool
live_from(KProgram *p, int i, int g)
{
    Buffer *o = &p->bufs[p->k[g].out.buf];
    if (o->kind != BUF_SCRATCH || o->first <= i) return false;
    o->first = i;
    return true;
}

/* kernel i neither runs inside another kernel nor hosts one */
static int
unfused(const KProgram *p, int i)
{
    if (p->k[i].host >= 0) return 0;
    for (int j = i + 1; j < p->nk && j <= i + 2; j++)
        if (p->k[j].host == i) return 0;
    return 1;
}

/* kernel j is the expansion, depthwise conv or projection of a
 * downsample's shape */
static int
in_down_shape(const KProgram *p, int j)
{
    for (int d = 0; d <= 2; d++)
        if (mc_cu_fuse_shape(p, j - d, FUSE_DOWN)) return 1;
    return 0;
}

/* fusion f wherever it applies, in the precision of ctx's target: the
 * lifetimes for every shape, Kernel.host/fuse for every form whose kernels
 * are in no fusion yet; ctx->changes counts the fusions made */
static bool
fuse_pass(KProgram *p, KPassCtx *ctx, FuseKind f)
{
    const McCudaPrecision prec = ctx && ctx->t ? (McCudaPrecision)ctx->t->precision : MC_CUDA_FP32;
    const int n = f == FUSE_DOWN ? 2 : 1;
    bool changed = false;
    for (int i = 0; i + n < p->nk; i++) {
        if (!mc_cu_fuse_shape(p, i, f)) continue;
        changed |= live_from(p, i, i + n);
        if (!mc_cu_fuse_form(p, i, f, prec) || (f != FUSE_DOWN && in_down_shape(p, i + 1))) continue;
        int apart = 1;
        for (int j = i; j <= i + n; j++) apart &= unfused(p, j);
        if (!apart) continue;
        for (int j = i + 1; j <= i + n; j++) {
            p->k[j].host = i;
            p->k[j].fuse = f;
        }
        if (ctx) ctx->changes++;
        changed = true;
    }
    return changed;
}

/* the pass of fusion `kind` */
#define FUSE_PASS(fn, kind) \
    static bool fn(KProgram *p, KPassCtx *ctx) { return fuse_pass(p, ctx, kind); }
FUSE_PASS(fuse_down, FUSE_DOWN)
FUSE_PASS(fuse_ln, FUSE_LN)
FUSE_PASS(fuse_mlp, FUSE_MLP)
FUSE_PASS(fuse_xproj, FUSE_XPROJ)

/* cuda-tile: every kernel's schedule as the printers take it in the
 * precision of ctx's target (mc_cu_sched_fill: GEMM tiles and split-K, the
 * scan's chunks and channels); fields set already (a kernel-IR file) are
 * kept and the rest filled to match them; a schedule the printers cannot
 * honour is left as it is (mc_cuda_print refuses it, naming the kernel) */
static bool
tile(KProgram *p, KPassCtx *ctx)
{
    const McCudaPrecision prec = ctx && ctx->t ? (McCudaPrecision)ctx->t->precision : MC_CUDA_FP32;
    bool changed = false;
    char why[256];
    for (int i = 0; i < p->nk; i++) {
        Sched s;
        if (!mc_cu_sched_check(p, i, prec, why, sizeof why)) continue;
        mc_cu_sched_fill(p, i, prec, &s);
        if (!memcmp(&s, &p->k[i].sched, sizeof s)) continue;
        p->k[i].sched = s;
        if (ctx) ctx->changes++;
        changed = true;
    }
    return changed;
}

/* concat-in-place (passes/concat_in_place.c): a concat operand's producer
 * writes its channel slice where the printers of its kind write any out
 * view (mc_cu_strided_out_ok).  First of the passes: the fusion passes
 * read the out views as they will be printed (a GEMM writing a slice is no
 * MLP or downsample host, its LayerNorm guest keeps its 8-wide stores only
 * on 8-aligned slices), their Kernel.host indices would not survive the
 * kernels it removes, and cuda-tile's forms (mc_conv3 only on dense rows)
 * follow the views too. */
static bool
concat_in_place(KProgram *p, KPassCtx *ctx)
{
    KPassCtx none = {0};
    return mc_concat_in_place(p, ctx ? ctx : &none, mc_cu_strided_out_ok);
}

const KPassInfo mc_cuda_kpasses[MC_CUDA_NKPASSES] = {
    {concat_in_place, "concat-in-place", "a concat's operands written by their producers straight into its channel slices"},
    {fuse_down, "cuda-fuse-down", "a downsample's depthwise conv and projection inside its expansion GEMM (bf16)"},
    {fuse_ln, "cuda-fuse-ln", "a LayerNorm inside the 25-tap fusion or depthwise conv that produces its input"},
    {fuse_mlp, "cuda-fuse-mlp", "fc2 inside fc1, the hidden activations on chip (bf16, tf32)"},
    {fuse_xproj, "cuda-fuse-xproj", "the SSM's x_proj inside the depthwise conv that produces its input"},
    {tile, "cuda-tile", "the printers' tiles as schedules: GEMM tiles and split-K, the scan's chunks"},
};
const int mc_cuda_nkpasses = MC_CUDA_NKPASSES;
