/* backends/llvm/llvm_jit.c -- in-memory execution through ORC LLJIT, and the
 * `llvm` backend vtable.
 *
 * Takes an optimized McLlvmModule for the host; emits its object file in
 * memory with the module's target machine (the very bytes `mambac compile`
 * writes), links it into an LLJIT instance, binds the runtime calls
 * (mc_rt_parallel_for, mc_rt_team_run/for, mc_rt_kernel_begin/end, mc_rt_profile_active) to
 * libmc_runtime's definitions linked into this program (absolute symbols, so
 * it works in executables that do not export their symbols) and resolves
 * anything else (libm, libc) from the process; looks up <name>_run.  The
 * backend's run_kernels takes the planned program and does codegen (or,
 * when mambac run turned the JIT cache on, reads the object an earlier run
 * stored: jit_cache.h), weight packing, JIT, run.  Owns the LLJIT
 * (mc_llvm_jit_free).
 */
#include "llvm_internal.h"
#include "jit_cache.h"
#include "../backend.h"
#include "../../runtime/mc_rt.h"
#include "../../runtime/mc_cpu.h"
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct McLlvmJit {
    LLVMOrcLLJITRef jit;
    uintptr_t run;       /* <name>_run */
    int noutputs;        /* its output pointers */
};

/* The entry point called with n output pointers (its signature has one
 * parameter per output: llvm_codegen.c). */
static int
call_run(uintptr_t fn, int n, const void *w, const float *x, float *const *y, void *s)
{
#define F float *
    switch (n) {
    case 1: return ((int (*)(const void *, const float *, F, void *))fn)(w, x, y[0], s);
    case 2: return ((int (*)(const void *, const float *, F, F, void *))fn)(w, x, y[0], y[1], s);
    case 3: return ((int (*)(const void *, const float *, F, F, F, void *))fn)(w, x, y[0], y[1], y[2], s);
    case 4: return ((int (*)(const void *, const float *, F, F, F, F, void *))fn)(w, x, y[0], y[1], y[2], y[3], s);
    case 5:
        return ((int (*)(const void *, const float *, F, F, F, F, F, void *))fn)(w, x, y[0], y[1], y[2], y[3], y[4], s);
    case 6:
        return ((int (*)(const void *, const float *, F, F, F, F, F, F, void *))fn)(w, x, y[0], y[1], y[2], y[3], y[4],
                                                                                   y[5], s);
    case 7:
        return ((int (*)(const void *, const float *, F, F, F, F, F, F, F, void *))fn)(w, x, y[0], y[1], y[2], y[3],
                                                                                      y[4], y[5], y[6], s);
    case 8:
        return ((int (*)(const void *, const float *, F, F, F, F, F, F, F, F, void *))fn)(w, x, y[0], y[1], y[2], y[3],
                                                                                         y[4], y[5], y[6], y[7], s);
    default: return -1;
    }
#undef F
}

void
mc_llvm_parallel_for(void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx, int64_t n, int64_t grain)
{
    mc_rt_parallel_for(fn, ctx, n, grain);
}

static int
orc_err(McErr *err, const char *what, LLVMErrorRef e)
{
    char *msg = LLVMGetErrorMessage(e);
    mc_err(err, "llvm jit: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return -1;
}

/* A fresh LLJIT with the object `obj` (consumed) linked in, the runtime
 * calls bound, and <prefix>_run looked up. */
static McLlvmJit *
jit_from_object(LLVMMemoryBufferRef obj, const char *prefix, int noutputs, McErr *err)
{
    McLlvmJit *j = calloc(1, sizeof *j);
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, LLVMOrcCreateLLJITBuilder());
    if (e) {
        orc_err(err, "cannot create LLJIT", e);
        LLVMDisposeMemoryBuffer(obj);
        free(j);
        return NULL;
    }
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
    /* the runtime calls of the generated code, bound to libmc_runtime's
     * definitions (absolute symbols: works without exported symbols) */
    static const struct {
        const char *name;
        int callable;
    } rt[6] = {{"mc_rt_parallel_for", 1}, {"mc_rt_kernel_begin", 1}, {"mc_rt_kernel_end", 1},
               {"mc_rt_profile_active", 0}, {"mc_rt_team_run", 1},     {"mc_rt_team_for", 1}};
    const void *rtaddr[6] = {(const void *)(uintptr_t)&mc_rt_parallel_for, (const void *)(uintptr_t)&mc_rt_kernel_begin,
                             (const void *)(uintptr_t)&mc_rt_kernel_end,   (const void *)&mc_rt_profile_active,
                             (const void *)(uintptr_t)&mc_rt_team_run,     (const void *)(uintptr_t)&mc_rt_team_for};
    LLVMOrcCSymbolMapPair pairs[6];
    for (int i = 0; i < 6; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->jit, rt[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)rtaddr[i];
        pairs[i].Sym.Flags.GenericFlags =
            LLVMJITSymbolGenericFlagsExported | (rt[i].callable ? LLVMJITSymbolGenericFlagsCallable : 0);
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    if ((e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, 6)))) {
        orc_err(err, "cannot define the runtime symbols (mc_rt_*)", e);
        goto fail;
    }
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if ((e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL))) {
        orc_err(err, "cannot search the process for symbols", e);
        goto fail;
    }
    LLVMOrcJITDylibAddGenerator(jd, gen);
    e = LLVMOrcLLJITAddObjectFile(j->jit, jd, obj);
    obj = NULL;
    if (e) {
        orc_err(err, "cannot add the object file", e);
        goto fail;
    }
    char name[192];
    snprintf(name, sizeof name, "%s_run", prefix);
    LLVMOrcExecutorAddress addr = 0;
    if ((e = LLVMOrcLLJITLookup(j->jit, &addr, name))) {
        orc_err(err, "cannot find the entry point", e);
        goto fail;
    }
    j->run = (uintptr_t)addr;
    j->noutputs = noutputs > 0 ? noutputs : 1;
    return j;
fail:
    if (obj) LLVMDisposeMemoryBuffer(obj);
    mc_llvm_jit_free(j);
    return NULL;
}

/* m's object file in memory (code emission) */
static LLVMMemoryBufferRef
emit_object(McLlvmModule *m, McErr *err)
{
    if (!m->t->host) {
        mc_err(err, "llvm jit: the target %s is not the host; the JIT runs host code only", m->t->triple);
        return NULL;
    }
    char *msg = NULL;
    LLVMMemoryBufferRef obj = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(m->t->tm, m->mod, LLVMObjectFile, &msg, &obj)) {
        mc_err(err, "llvm jit: code emission failed: %s", msg ? msg : "");
        LLVMDisposeMessage(msg);
        return NULL;
    }
    return obj;
}

/* Code for a CPU with AMX may use tiles: the OS must allow them first
 * (runtime/cpu.c; once per process) */
static int
jit_allow_amx(const McLlvmTarget *t, McErr *err)
{
    const char *why = strstr(t->required, "amx-tile") ? mc_rt_amx_enable() : NULL;
    return why ? mc_err(err, "llvm jit: %s (mambac compile --features -amx-tile builds code without AMX)", why) : 0;
}

McLlvmJit *
mc_llvm_jit_create(McLlvmModule *m, McErr *err)
{
    if (jit_allow_amx(m->t, err)) return NULL;
    LLVMMemoryBufferRef obj = emit_object(m, err);
    return obj ? jit_from_object(obj, m->prefix, m->noutputs, err) : NULL;
}

int
mc_llvm_jit_run(McLlvmJit *j, const void *weights, const float *input, float *const *outputs, void *scratch,
                McErr *err)
{
    int rc = call_run(j->run, j->noutputs, weights, input, outputs, scratch);
    if (rc) return mc_err(err, "llvm jit: generated code returned %d", rc);
    return 0;
}

void
mc_llvm_jit_free(McLlvmJit *j)
{
    if (!j) return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e) LLVMConsumeError(e);
    }
    free(j);
}

/* ------------------------------------------------------------ whole program */

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* The JIT of p for the host target t: the object from the JIT cache when it
 * holds p's (jit_cache.h), else generated, optimized and emitted here, and
 * stored there.  An entry that does not link is removed and compiled anew. */
static McLlvmJit *
jit_program(const KProgram *p, const McLlvmTarget *t, FILE *verbose, McErr *err)
{
    double t0 = now_ms();
    McJitKey key;
    int cached = !mc_jit_cache_key(&key, p, t, "run", verbose);
    uint8_t *bytes = NULL;
    size_t len = 0;
    McLlvmJit *j = NULL;
    if (cached && mc_jit_cache_get(&key, &bytes, &len)) {
        char prefix[128];
        mc_llvm_symbol_prefix(p, prefix, sizeof prefix);
        LLVMMemoryBufferRef obj = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)bytes, len, prefix);
        free(bytes);
        McErr bad = {{0}};
        if ((j = jit_from_object(obj, prefix, p->noutputs, &bad))) {
            if (verbose) fprintf(verbose, "mambac: llvm: key, cached object read and linked in %.1f ms\n", now_ms() - t0);
            mc_jit_key_free(&key);
            return j;
        }
        if (verbose) fprintf(verbose, "mambac: jit cache entry removed, it does not link: %s\n", bad.msg);
        mc_jit_cache_drop(&key);
        t0 = now_ms();
    }
    McLlvmModule *m = mc_llvm_codegen(p, t, err);
    double t1 = now_ms();
    LLVMMemoryBufferRef obj = m ? emit_object(m, err) : NULL;
    double t2 = now_ms();
    if (obj && cached) mc_jit_cache_put(&key, LLVMGetBufferStart(obj), LLVMGetBufferSize(obj));
    if (obj) j = jit_from_object(obj, m->prefix, m->noutputs, err);
    if (j && verbose)
        fprintf(verbose, "mambac: llvm: code generation + O3 %.1f ms, code emission %.1f ms, link %.1f ms\n", t1 - t0,
                t2 - t1, now_ms() - t2);
    mc_llvm_module_free(m);
    if (cached) mc_jit_key_free(&key);
    return j;
}

static int
run_program(const KProgram *p, const WeightStore *ws, const float *input, float *const *outputs, FILE *verbose,
            McErr *err)
{
    int rc = -1;
    McLlvmTarget *t = mc_llvm_target_create(NULL, NULL, NULL, err);
    if (!t) return -1;
    if (jit_allow_amx(t, err)) {
        mc_llvm_target_free(t);
        return -1;
    }
    McLlvmJit *j = NULL;
    uint8_t *blob = NULL;
    void *scratch = NULL;
    int64_t bsize = 0;
    if (!(j = jit_program(p, t, verbose, err))) goto done;
    double t0 = now_ms();
    if (mc_llvm_pack_weights(p, ws, t, &blob, &bsize, err)) goto done;
    if (verbose) fprintf(verbose, "mambac: llvm: weights packed in %.1f ms\n", now_ms() - t0);
    int64_t ns = p->scratch_bytes;
    if (posix_memalign(&scratch, 64, (size_t)(ns > 0 ? ns : 64))) {
        scratch = NULL;
        mc_err(err, "llvm: out of memory for %lld bytes of scratch", (long long)ns);
        goto done;
    }
    t0 = now_ms();
    rc = mc_llvm_jit_run(j, blob, input, outputs, scratch, err);
    if (verbose) fprintf(verbose, "mambac: llvm: ran in %.1f ms\n", now_ms() - t0);
done:
    free(scratch);
    free(blob);
    mc_llvm_jit_free(j);
    mc_llvm_target_free(t);
    return rc;
}

int
mc_llvm_run_program(const KProgram *p, const WeightStore *ws, const float *input, float *const *outputs, McErr *err)
{
    return run_program(p, ws, input, outputs, NULL, err);
}

/* run_kernels of the llvm row: a planned program (the pipeline ran for
 * mc_llvm_target_row) compiled for this machine and run once */
static int
llvm_run_kernels(const KProgram *p, const WeightStore *ws, const HostTensor *input, HostTensor *outputs,
                 const RunOpts *o, McErr *err)
{
    if (p->input_buf < 0 || p->noutputs < 1)
        return mc_err(err, "llvm: the program has no input or no output buffer");
    const Buffer *ib = &p->bufs[p->input_buf];
    if (mc_shape_numel(&input->shape) * 4 != ib->bytes) {
        char a[64], b[64];
        return mc_err(err, "llvm: input shape %s does not match the program's %s", mc_shape_str(&input->shape, a, sizeof a),
                      mc_shape_str(&ib->shape, b, sizeof b));
    }
    int rc = -1;
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    if (o && o->threads > 0) omp_set_num_threads(o->threads);
#else
    (void)o;
#endif
    float *y[MC_MAX_OUTPUTS];
    int n = 0;
    for (; n < p->noutputs; n++) {
        const Buffer *ob = &p->bufs[p->output_bufs[n]];
        outputs[n].shape = ob->shape;
        if (!(y[n] = outputs[n].data = malloc((size_t)(ob->bytes > 0 ? ob->bytes : 4)))) break;
    }
    if (n < p->noutputs) mc_err(err, "llvm: out of memory for the outputs");
    else rc = run_program(p, ws, input->data, y, o && o->verbose ? stderr : NULL, err);
    for (int j = 0; rc && j < n; j++) {
        free(outputs[j].data);
        outputs[j].data = NULL;
    }
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    return rc;
}

const Backend mc_backend_llvm = {
    .name = "llvm",
    .descr = "native code through LLVM (ORC LLJIT in memory; mambac compile writes artifacts)",
    .target = &mc_llvm_target_row,
    .run_kernels = llvm_run_kernels,
    .emit = mc_llvm_emit_artifact,
};
