/* backends/llvm/llvm_artifact.c -- emit of the llvm backend row: a planned
 * kernel program (the pipeline ran for mc_llvm_target_row) to what
 * `mambac compile --emit KIND` asks for: llvm-ir / asm (one module as
 * text), or exe / shared / obj (one variant per --cpu entry, linked with
 * the start-up CPU check, backends/artifact.c). */
#include "llvm.h"
#include "../backend.h"
#include "../../runtime/mc_out.h"
#include <stdlib.h>
#include <string.h>

int
mc_llvm_emit_kind(const char *s)
{
    static const char *names[] = {"exe", "shared", "obj", "llvm-ir", "asm"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s ? s : "exe", names[i])) return i;
    return -1;
}

int
mc_llvm_emit_artifact(const KProgram *kp, const WeightStore *ws, const EmitOpts *o, McErr *err)
{
    int ek = mc_llvm_emit_kind(o->emit), rc = 0;
    if (ek < 0) return mc_err(err, "llvm: --emit must be exe, shared, obj, llvm-ir or asm, got '%s'", o->emit);
    if (ek >= 3) {
        McLlvmTarget *t = mc_llvm_target_create(o->triple, o->cpu, o->features, err);
        if (!t) return -1;
        if (o->verbose) fprintf(stderr, "mambac: target %s\n", mc_llvm_target_describe(t));
        McLlvmModule *m = mc_llvm_codegen(kp, t, err);
        if (!m) {
            mc_llvm_target_free(t);
            return -1;
        }
        uint8_t *text = NULL;
        size_t len = 0;
        rc = mc_llvm_emit_mem(m, ek == 3 ? MC_EMIT_IR : MC_EMIT_ASM, &text, &len, err);
        if (!rc) rc = mc_out_write_file(o->out, text, len, 0666, err->msg, sizeof err->msg);
        free(text);
        mc_llvm_module_free(m);
        mc_llvm_target_free(t);
        return rc;
    }
    char sym[256];
    McArtifact a;
    McLlvmVariants vs;
    memset(&a, 0, sizeof a);
    mc_llvm_symbol_prefix(kp, sym, sizeof sym);
    rc = mc_llvm_variants_build(kp, ws, o->triple, o->cpu, o->features, sym, o->verbose ? stderr : NULL, &vs, err);
    if (!rc) rc = mc_artifact_from_kprogram(&a, kp, sym, err);
    if (!rc) {
        a.emit = ek == 0 ? MC_ART_EXE : ek == 1 ? MC_ART_SHARED : MC_ART_OBJ;
        a.out = o->out;
        a.triple = o->triple;
        a.cpu = o->cpu;
        a.features = o->features;
        a.scratch_size = kp->scratch_bytes;
        a.arch = vs.arch;
        a.nvariants = vs.n;
        a.variants = vs.v;
        a.weights = vs.blob;
        a.weights_len = (size_t)vs.blob_len;
        a.verbose = o->verbose;
        a.io = o->io;
        for (int i = 0; i < kp->nk; i++)
            if (kp->k[i].sched.bf16) a.precision = "bf16"; /* --precision bf16 (its GEMMs and convs) */
        rc = mc_artifact_write(&a, err);
        mc_artifact_release(&a);
    }
    mc_llvm_variants_free(&vs);
    return rc;
}
