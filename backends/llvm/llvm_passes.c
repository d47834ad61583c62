/* backends/llvm/llvm_passes.c -- the LLVM target's kernel passes, run by
 * the pipeline (passes/pipeline.c) after lowering, before memplan:
 *
 *   concat-in-place  a concat's operands written by their producers into
 *                    its channel slices, the copy kernels gone
 *                    (passes/concat_in_place.c; every LLVM generator
 *                    writes through a strided out view).
 *   schedule-images  a batched program (input dim 0 > 1) runs its early
 *                    kernels image by image (mc_kprogram_schedule_images,
 *                    docs/kernel-ir.md), kept only when its planned arena is
 *                    no larger than the batched program's; with copies of
 *                    the per-image scratch for up to MC_LLVM_IMAGE_GROUPS
 *                    image groups, so several threads' groups can run
 *                    images side by side.
 *   tile             records each kernel's schedule (Kernel.sched,
 *                    ir/sched.def): every tiling decision the code generator
 *                    makes for the target (llvm_schedule.c: register tile
 *                    tile_m x tile_n, GEMM row block block_m and task order,
 *                    scan/fusion25 channels per task, vec = the target's
 *                    f32 lanes, parallel-for grain; with --precision
 *                    bf16, bf16=1 on the GEMMs and convs that can run
 *                    in bf16).  The code generator
 *                    obeys it, so `--print-after=tile` / `dump --format
 *                    kernels` show the tiling and a hand-edited .kir changes
 *                    it; fields already set (a .kir without a memory plan)
 *                    are kept and the others derived from them.  Disabled
 *                    (--disable-pass=tile), the code generator decides the
 *                    same as recorded: the code is identical.
 *
 * The target: --target/--cpu/--features as given (NULL: this machine).  A
 * multi-CPU artifact (--cpu A,B,C or portable) gets one schedule, for its
 * widest CPU (the one whose weight packing the variants share): a variant
 * whose lanes differ from a kernel's vec decides that kernel itself; a
 * schedule whose vec is no CPU's lanes is an error (mc_llvm_schedule_check).
 */
#include "llvm_internal.h"
#include "../cuda/cuda.h"
#include "../../passes/concat_in_place.h"
#include "../../passes/lower.h"
#include <string.h>

static bool
kpass_schedule_images(KProgram *p, KPassCtx *ctx)
{
    if (p->nsegs || p->input_buf < 0 || p->bufs[p->input_buf].shape.rank < 1 || p->bufs[p->input_buf].shape.d[0] <= 1)
        return false;
    KProgram batched, per_image;
    if (mc_kprogram_copy(p, &batched)) return false;
    if (mc_kprogram_copy(p, &per_image)) {
        mc_kprogram_free(&batched);
        return false;
    }
    mc_memplan(&batched);
    int n = mc_kprogram_schedule_images(&per_image, -1);
    if (n > 0) mc_memplan(&per_image);
    int keep = n > 0 && per_image.scratch_bytes <= batched.scratch_bytes;
    mc_kprogram_free(&batched);
    mc_kprogram_free(&per_image);
    if (!keep) return false;
    /* up to MC_LLVM_IMAGE_GROUPS images side by side, each on its own group
     * of threads (the runtime picks how many, mc_rt_team_group_begin); the
     * copies of the per-image scratch a group does not use are never touched */
    ctx->changes += mc_kprogram_schedule_images_groups(p, -1, MC_LLVM_IMAGE_GROUPS);
    return true;
}

static bool
kpass_tile(KProgram *p, KPassCtx *ctx)
{
    McErr err;
    McLlvmTarget *t = mc_llvm_variants_widest(ctx->t->triple, ctx->t->cpu, ctx->t->features, &err);
    if (!t) return false; /* the code generator reports the target's error */
    int n = 0, bf16 = ctx->t->precision == MC_CUDA_BF16;
    for (int i = 0; i < p->nk; i++) {
        Kernel *k = &p->k[i];
        Sched s;
        /* --precision bf16: GEMMs and convs in bf16 where the code
         * generator can (else they stay fp32: a blocked conv, a K too deep) */
        if (bf16 && (k->kind == KK_GEMM || k->kind == KK_CONV) && !k->sched.bf16) {
            k->sched.bf16 = 1;
            if (mc_llvm_schedule(k, t, &s, NULL)) k->sched.bf16 = 0;
        }
        /* a schedule made for another target or one that cannot be
         * honoured is left as it is: the code generator reports it */
        if (mc_llvm_schedule(k, t, &s, NULL) || !memcmp(&s, &k->sched, sizeof s)) continue;
        k->sched = s;
        n++;
    }
    mc_llvm_target_free(t);
    ctx->changes += n;
    return n > 0;
}

/* concat-in-place (passes/concat_in_place.c): every generator stores
 * through cg_emit_out, which addresses out by its view's strides (GEMM and
 * conv tiles too, llvm_gemm.c store_tile; eltwise rows merge only where
 * out's strides allow): any kind may write a concat's channel slice.  A
 * switch without default: a new kind is a compile warning here. */
static bool
strided_out_ok(const KProgram *p, const Kernel *k)
{
    switch (k->kind) {
    case KK_GEMM:
    case KK_CONV:
    case KK_DWCONV:
    case KK_SCAN:
    case KK_FUSION25:
    case KK_LAYERNORM:
    case KK_MEAN_HW:
    case KK_RESIZE:
    case KK_AVGPOOL:
    case KK_ELTWISE:
        return true;
    case KK_COUNT:
        break;
    }
    return false;
}

static bool
kpass_concat_in_place(KProgram *p, KPassCtx *ctx)
{
    return mc_concat_in_place(p, ctx, strided_out_ok);
}

static const KPassInfo llvm_kpasses[] = {
    {kpass_concat_in_place, "concat-in-place",
     "a concat's operands written by their producers straight into its channel slices (no copy kernels)"},
    {kpass_schedule_images, "schedule-images",
     "batched programs: the early kernels run image by image in a smaller arena (kept when it is smaller)"},
    {kpass_tile, "tile",
     "each kernel's schedule for the target: register tiles, task blocks and order, vector width, grain"},
};

/* the kernels the code generator can run: the kinds it has a generator
 * for (a switch without default: a new kind of kernels.def is a compile
 * warning here, and refused until it has one), within these limits */
int
mc_llvm_supports(const KProgram *p, const Kernel *k, char *why, size_t n)
{
    if (k->out.rank < 1) return snprintf(why, n, "a rank-0 output"), 0;
    switch (k->kind) {
    case KK_CONV:
    case KK_DWCONV:
    case KK_GEMM:
    case KK_FUSION25:
        if ((k->kind == KK_CONV || k->kind == KK_DWCONV) && (k->in[1].rank != 4 || k->in[0].rank != 4))
            return snprintf(why, n, "convolution operands must be rank 4"), 0;
        if (p->bufs[k->in[1].buf].kind != BUF_WEIGHT)
            return snprintf(why, n, "the %s operand must be a constant weight (the code generator packs it)",
                            k->kind == KK_FUSION25 ? "taps" : "weight"),
                   0;
        if (k->kind == KK_DWCONV && k->in[1].shape[2] * k->in[1].shape[3] > 64)
            return snprintf(why, n, "depthwise kernels above 64 taps are not supported"), 0;
        return 1;
    case KK_RESIZE:
    case KK_AVGPOOL:
        if (k->in[0].rank != 4 || k->out.rank != 4)
            return snprintf(why, n, "%s operands must be rank 4", mc_kernel_kind_name(k->kind)), 0;
        return 1;
    case KK_SCAN:
    case KK_LAYERNORM:
    case KK_MEAN_HW:
    case KK_ELTWISE:
        return 1;
    case KK_COUNT:
        break;
    }
    snprintf(why, n, "the LLVM backend has no code generator for %s kernels", mc_kernel_kind_name(k->kind));
    return 0;
}

const McTarget mc_llvm_target_row = {"llvm", llvm_kpasses, (int)(sizeof llvm_kpasses / sizeof *llvm_kpasses),
                                     {"llvm", NULL, NULL, NULL, 0, 0, 0, 0}, mc_llvm_supports};
