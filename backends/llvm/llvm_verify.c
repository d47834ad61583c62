/* backends/llvm/llvm_verify.c -- kernel-by-kernel execution of a
 * JIT-compiled program (llvm_verify.h).
 *
 * mc_llvm_codegen_opt builds the module without optimizing it; here its
 * entry point <name>_run is replaced by one with the same signature that
 * writes the address of every kernel's function mc_k<i> (shared code: the
 * function of its class, with the table of offsets the entry point would
 * pass in ctx slot MC_LLVM_CTX_TAB) into the table passed as its first
 * argument (the kernels stay internal and are optimized as in
 * a normal compile, where they are also only passed by address), then the
 * module is optimized and JIT-compiled.  Running kernel k is then what the
 * original entry point does for it: mc_rt_parallel_for(mc_k<k>, ctx, n_k,
 * grain_k) with ctx = {weights, scratch, input, output 0, image, outputs
 * 1..} and n/grain
 * from the same plan (mc_llvm_plan).  Owns the target, the JIT, the packed
 * weights and the table.
 */
#include "llvm_verify.h"
#include "llvm_internal.h"
#include "../../runtime/mc_rt.h"
#include <stdlib.h>
#include <string.h>

int mc_llvm_optimize(McLlvmModule *m, McErr *err); /* llvm_emit.c */

struct McLlvmKernels {
    McLlvmTarget *t;
    McLlvmJit *j;
    uint8_t *blob;
    McRtBody *fn;     /* [nk] kernel functions */
    int64_t *n, *grain;
    int64_t (*tab)[MC_LLVM_MAX_SLOTS + 1]; /* [nk] the table of the kernel's call (shared code) */
    int nk;
};

/* Replaces m's <prefix>_run by `i32 <prefix>_run(ptr table, ptr, ptr, ptr)`
 * that stores the function of kernel i, mc_k<rep[i]> (shared code: the
 * first of its class), into table[i] for i < nk and returns 0. */
static void
add_table_entry(McLlvmModule *m, int nk, const int *rep)
{
    char name[192];
    snprintf(name, sizeof name, "%s_run", m->prefix);
    LLVMValueRef old = LLVMGetNamedFunction(m->mod, name);
    if (old) LLVMDeleteFunction(old);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(m->ctx, 0), i32 = LLVMInt32TypeInContext(m->ctx);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(m->ctx);
    LLVMTypeRef args[4] = {ptr, ptr, ptr, ptr};
    LLVMValueRef f = LLVMAddFunction(m->mod, name, LLVMFunctionType(i32, args, 4, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(m->ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(m->ctx, f, "entry"));
    for (int i = 0; i < nk; i++) {
        char kn[32];
        snprintf(kn, sizeof kn, "mc_k%d", rep ? rep[i] : i);
        LLVMValueRef idx = LLVMConstInt(i64, (unsigned long long)i, 0);
        LLVMValueRef slot = LLVMBuildGEP2(b, ptr, LLVMGetParam(f, 0), &idx, 1, "");
        LLVMBuildStore(b, LLVMGetNamedFunction(m->mod, kn), slot);
    }
    LLVMBuildRet(b, LLVMConstInt(i32, 0, 0));
    LLVMDisposeBuilder(b);
    m->noutputs = 1;
}

McLlvmModule *
mc_llvm_kernels_module(const KProgram *p, const McLlvmTarget *t, McErr *err)
{
    McLlvmModule *m = mc_llvm_codegen_opt(p, t, 0, err);
    if (!m) return NULL;
    Plan pl;
    mc_llvm_plan(p, t, NULL, &pl);
    mc_llvm_plan_classes(p, &pl);
    add_table_entry(m, p->nk, pl.rep);
    mc_llvm_plan_free(&pl);
    if (mc_llvm_optimize(m, err)) {
        mc_llvm_module_free(m);
        return NULL;
    }
    return m;
}

McLlvmKernels *
mc_llvm_kernels_create(const KProgram *p, const WeightStore *ws, McErr *err)
{
    McLlvmKernels *x = calloc(1, sizeof *x);
    McLlvmModule *m = NULL;
    Plan pl;
    int64_t bsize = 0;
    if (!x) {
        mc_err(err, "llvm: out of memory");
        return NULL;
    }
    x->nk = p->nk;
    x->fn = calloc((size_t)(p->nk ? p->nk : 1), sizeof *x->fn);
    x->n = calloc((size_t)(p->nk ? p->nk : 1), sizeof *x->n);
    x->grain = calloc((size_t)(p->nk ? p->nk : 1), sizeof *x->grain);
    x->tab = calloc((size_t)(p->nk ? p->nk : 1), sizeof *x->tab);
    if (!x->fn || !x->n || !x->grain || !x->tab) {
        mc_err(err, "llvm: out of memory");
        goto fail;
    }
    if (!(x->t = mc_llvm_target_create(NULL, NULL, NULL, err))) goto fail;
    if (!(m = mc_llvm_kernels_module(p, x->t, err))) goto fail;
    if (mc_llvm_pack_weights(p, ws, x->t, &x->blob, &bsize, err)) goto fail;
    if (!(x->j = mc_llvm_jit_create(m, err))) goto fail;
    mc_llvm_module_free(m);
    m = NULL;
    float *none = NULL;
    if (mc_llvm_jit_run(x->j, x->fn, NULL, &none, NULL, err)) goto fail;
    mc_llvm_plan(p, x->t, NULL, &pl);
    mc_llvm_plan_classes(p, &pl);
    for (int i = 0; i < p->nk; i++) {
        x->n[i] = pl.k[i].n;
        x->grain[i] = pl.k[i].grain;
        mc_llvm_call_table(p, &pl, i, x->tab[i]); /* what the entry point passes (read if shared) */
    }
    mc_llvm_plan_free(&pl);
    return x;
fail:
    mc_llvm_module_free(m);
    mc_llvm_kernels_free(x);
    return NULL;
}

void
mc_llvm_kernels_run(McLlvmKernels *x, int k, int64_t image, void *scratch, const float *input, float *const *outputs,
                    int noutputs)
{
    /* the generated code's ctx: weights, scratch, input, output 0, image (an
     * i64 in a pointer-sized slot), outputs 1.. */
    void *ctx[MC_LLVM_CTX_TAB + 1] = {x->blob, scratch, (void *)(uintptr_t)input, outputs[0], NULL};
    _Static_assert(sizeof(void *) == sizeof(int64_t), "ctx slots are 8 bytes");
    memcpy(&ctx[4], &image, sizeof image);
    for (int j = 1; j < noutputs && j < MC_MAX_OUTPUTS; j++) ctx[4 + j] = outputs[j];
    if (k >= 0 && k < x->nk) ctx[MC_LLVM_CTX_TAB] = x->tab[k];
    if (k >= 0 && k < x->nk && x->n[k] > 0) mc_rt_parallel_for(x->fn[k], ctx, x->n[k], x->grain[k]);
}

void
mc_llvm_kernels_free(McLlvmKernels *x)
{
    if (!x) return;
    mc_llvm_jit_free(x->j);
    mc_llvm_target_free(x->t);
    free(x->blob);
    free(x->fn);
    free(x->n);
    free(x->grain);
    free(x->tab);
    free(x);
}
