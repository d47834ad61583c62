/* passes/concat_in_place.h -- the kernel pass concat-in-place, shared by
 * the targets: a concat's operands written straight into their channel
 * slices of the concat's buffer (no copy kernels).  See concat_in_place.c. */
#ifndef MC_CONCAT_IN_PLACE_H
#define MC_CONCAT_IN_PLACE_H
#include "pipeline.h"

/* A target's answer: its code for kernel k writes k->out through any
 * strided view (k's kind and fields as they are). */
typedef bool (*McStridedOutOk)(const KProgram *p, const Kernel *k);

/* The pass: a target lists it in its kernel-pass table through a wrapper
 * `bool fn(KProgram *p, KPassCtx *ctx) { return mc_concat_in_place(p, ctx,
 * its_predicate); }`.  Returns "changed"; ctx->changes += copies removed. */
bool mc_concat_in_place(KProgram *p, KPassCtx *ctx, McStridedOutOk strided_out_ok);

#endif
