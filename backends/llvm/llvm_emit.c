/* backends/llvm/llvm_emit.c -- optimize and write an LLVM module.
 *
 * Takes a verified McLlvmModule; runs the new pass manager's default<O3>
 * pipeline through LLVMRunPasses with the module's target machine, verifies
 * again, and writes an object file, assembly or IR text to a file or a
 * malloc'd buffer.  Output is deterministic: names are kernel indices, no
 * addresses or timestamps enter the module.  Owns nothing.
 */
#include "llvm_internal.h"
#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

int mc_llvm_optimize(McLlvmModule *m, McErr *err);

int
mc_llvm_optimize(McLlvmModule *m, McErr *err)
{
    LLVMPassBuilderOptionsRef o = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(o, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(o, 1);
    LLVMPassBuilderOptionsSetLoopInterleaving(o, 1);
    LLVMPassBuilderOptionsSetLoopUnrolling(o, 1);
    LLVMErrorRef e = LLVMRunPasses(m->mod, "default<O3>", m->t->tm, o);
    LLVMDisposePassBuilderOptions(o);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        mc_err(err, "llvm: optimization failed: %s", msg);
        LLVMDisposeErrorMessage(msg);
        return -1;
    }
    char *msg = NULL;
    if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg)) {
        mc_err(err, "llvm: internal error: module does not verify after O3: %.1500s", msg ? msg : "");
        LLVMDisposeMessage(msg);
        return -1;
    }
    LLVMDisposeMessage(msg);
    return 0;
}

int
mc_llvm_emit_mem(McLlvmModule *m, McLlvmEmit kind, uint8_t **out, size_t *len, McErr *err)
{
    if (kind == MC_EMIT_IR) {
        char *s = LLVMPrintModuleToString(m->mod);
        size_t n = strlen(s);
        *out = malloc(n + 1);
        memcpy(*out, s, n + 1);
        *len = n;
        LLVMDisposeMessage(s);
        return 0;
    }
    char *msg = NULL;
    LLVMMemoryBufferRef mb = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(m->t->tm, m->mod, kind == MC_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile,
                                            &msg, &mb)) {
        mc_err(err, "llvm: code emission for %s failed: %s", m->t->triple, msg ? msg : "");
        LLVMDisposeMessage(msg);
        return -1;
    }
    size_t n = LLVMGetBufferSize(mb);
    *out = malloc(n ? n : 1);
    memcpy(*out, LLVMGetBufferStart(mb), n);
    *len = n;
    LLVMDisposeMemoryBuffer(mb);
    return 0;
}

int
mc_llvm_emit_file(McLlvmModule *m, McLlvmEmit kind, const char *path, McErr *err)
{
    uint8_t *buf;
    size_t n;
    if (mc_llvm_emit_mem(m, kind, &buf, &n, err)) return -1;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(buf);
        return mc_err(err, "%s: cannot open for writing", path);
    }
    size_t w = fwrite(buf, 1, n, f);
    int bad = fclose(f) != 0 || w != n;
    free(buf);
    if (bad) return mc_err(err, "%s: write failed", path);
    return 0;
}
