/* backends/llvm/llvm_passes.c -- the LLVM target's kernel passes, run by
 * the pipeline (passes/pipeline.c) after lowering, before memplan:
 *
 *   schedule-images  a batched program (input dim 0 > 1) runs its early
 *                    kernels image by image (mc_kprogram_schedule_images,
 *                    docs/kernel-ir.md), kept only when its planned arena is
 *                    no larger than the batched program's.
 */
#include "llvm.h"
#include "../../passes/lower.h"

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
    ctx->changes += mc_kprogram_schedule_images(p, -1);
    return true;
}

static const KPassInfo llvm_kpasses[] = {
    {kpass_schedule_images, "schedule-images",
     "batched programs: the early kernels run image by image in a smaller arena (kept when it is smaller)"},
};

const McTarget mc_llvm_target_row = {"llvm", llvm_kpasses, (int)(sizeof llvm_kpasses / sizeof *llvm_kpasses), {"llvm", NULL, NULL, NULL, 0, 0, 0, 0}};
