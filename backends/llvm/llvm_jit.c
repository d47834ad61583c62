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
 * backend's run_kernels takes the planned program and compiles it into
 * objects in parallel parts (mc_llvm_compile; or, when mambac run turned the
 * JIT cache on, reads the objects an earlier run stored: jit_cache.h), packs
 * the weights, links the objects into one LLJIT, runs.  Owns the LLJIT
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

static int
orc_err(McErr *err, const char *what, LLVMErrorRef e)
{
    char *msg = LLVMGetErrorMessage(e);
    mc_err(err, "llvm jit: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return -1;
}

/* A fresh LLJIT with the objects obj[0..n) (consumed) linked in, the
 * runtime calls bound, and <prefix>_run looked up. */
static McLlvmJit *
jit_from_objects(LLVMMemoryBufferRef *obj, int n, const char *prefix, int noutputs, McErr *err)
{
    McLlvmJit *j = calloc(1, sizeof *j);
    int added = 0;
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, LLVMOrcCreateLLJITBuilder());
    if (e) {
        orc_err(err, "cannot create LLJIT", e);
        j->jit = NULL;
        goto fail;
    }
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
    /* the runtime calls of the generated code, bound to libmc_runtime's
     * definitions (absolute symbols: works without exported symbols) */
    const struct {
        const char *name;
        const void *addr;
        int callable;
    } rt[] = {{"mc_rt_kernel_begin", (const void *)(uintptr_t)&mc_rt_kernel_begin, 1},
              {"mc_rt_kernel_end", (const void *)(uintptr_t)&mc_rt_kernel_end, 1},
              {"mc_rt_profile_active", (const void *)&mc_rt_profile_active, 0},
              {"mc_rt_team_run", (const void *)(uintptr_t)&mc_rt_team_run, 1},
              {"mc_rt_team_for", (const void *)(uintptr_t)&mc_rt_team_for, 1},
              {"mc_rt_team_group_begin", (const void *)(uintptr_t)&mc_rt_team_group_begin, 1},
              {"mc_rt_team_group_end", (const void *)(uintptr_t)&mc_rt_team_group_end, 1}};
    enum { NRT = sizeof rt / sizeof rt[0] };
    LLVMOrcCSymbolMapPair pairs[NRT];
    for (int i = 0; i < NRT; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->jit, rt[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)rt[i].addr;
        pairs[i].Sym.Flags.GenericFlags =
            LLVMJITSymbolGenericFlagsExported | (rt[i].callable ? LLVMJITSymbolGenericFlagsCallable : 0);
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    if ((e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, NRT)))) {
        orc_err(err, "cannot define the runtime symbols (mc_rt_*)", e);
        goto fail;
    }
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if ((e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL))) {
        orc_err(err, "cannot search the process for symbols", e);
        goto fail;
    }
    LLVMOrcJITDylibAddGenerator(jd, gen);
    for (; added < n; added++)
        if ((e = LLVMOrcLLJITAddObjectFile(j->jit, jd, obj[added]))) {
            added++;
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
    for (; added < n; added++) LLVMDisposeMemoryBuffer(obj[added]);
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
    const char *why = t->amx ? mc_rt_amx_enable() : NULL;
    return why ? mc_err(err, "llvm jit: %s (mambac compile --features -amx-tile builds code without AMX)", why) : 0;
}

McLlvmJit *
mc_llvm_jit_create(McLlvmModule *m, McErr *err)
{
    if (jit_allow_amx(m->t, err)) return NULL;
    LLVMMemoryBufferRef obj = emit_object(m, err);
    return obj ? jit_from_objects(&obj, 1, m->prefix, m->noutputs, err) : NULL;
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

/* The cache's entry for a program's objects (mc_llvm_compile): one object
 * as it is; several as "MCOBJS1" and a zero byte, their number (u32 LE),
 * 4 zero bytes, each one's length (u64 LE), then the objects. */
static const char objs_magic[8] = "MCOBJS1";

static void
put_le(uint8_t *b, uint64_t v, int size)
{
    for (int i = 0; i < size; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_le(const uint8_t *b, int size)
{
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static uint8_t *
objects_pack(const McLlvmObjects *o, size_t *len)
{
    size_t n = 16 + 8 * (size_t)o->n, k = n;
    for (int i = 0; i < o->n; i++) n += o->len[i];
    uint8_t *b = o->n == 1 ? NULL : calloc(1, n);
    if (o->n == 1) {
        *len = o->len[0];
        return o->obj[0];
    }
    if (!b) return NULL;
    memcpy(b, objs_magic, 8);
    put_le(b + 8, (uint64_t)o->n, 4);
    for (int i = 0; i < o->n; i++) {
        put_le(b + 16 + 8 * i, o->len[i], 8);
        memcpy(b + k, o->obj[i], o->len[i]);
        k += o->len[i];
    }
    *len = n;
    return b;
}

/* The objects of an entry's bytes as memory buffers (copies) in obj[];
 * their number, or -1 when the bytes are not such an entry. */
static int
objects_unpack(const uint8_t *b, size_t len, const char *name, LLVMMemoryBufferRef *obj, int max)
{
    if (len < 16 || memcmp(b, objs_magic, 8)) {
        obj[0] = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)b, len, name);
        return 1;
    }
    uint64_t n = get_le(b + 8, 4), k = 16 + 8 * n;
    if (n < 1 || (int)n > max || k > len) return -1;
    for (uint64_t i = 0, off = k; i < n; i++) {
        uint64_t l = get_le(b + 16 + 8 * i, 8);
        if (l > len - off || (i == n - 1 && off + l != len)) return -1;
        off += l;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = get_le(b + 16 + 8 * i, 8);
        obj[i] = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)b + k, l, name);
        k += l;
    }
    return (int)n;
}

#define MAX_OBJS 64

/* The JIT of p for the host target t: the objects from the JIT cache when it
 * holds p's (jit_cache.h), else compiled here (mc_llvm_compile), and stored
 * there.  An entry that does not link is removed and compiled anew. */
static McLlvmJit *
jit_program(const KProgram *p, const McLlvmTarget *t, FILE *verbose, McErr *err)
{
    double t0 = now_ms();
    McJitKey key;
    int cached = !mc_jit_cache_key(&key, p, t, "run", verbose);
    uint8_t *bytes = NULL;
    size_t len = 0;
    McLlvmJit *j = NULL;
    char prefix[128];
    LLVMMemoryBufferRef obj[MAX_OBJS];
    mc_llvm_symbol_prefix(p, prefix, sizeof prefix);
    if (cached && mc_jit_cache_get(&key, &bytes, &len)) {
        int n = objects_unpack(bytes, len, prefix, obj, MAX_OBJS);
        free(bytes);
        McErr bad = {{0}};
        if (n < 0) mc_err(&bad, "not a list of objects");
        if (n > 0 && (j = jit_from_objects(obj, n, prefix, p->noutputs, &bad))) {
            if (verbose) fprintf(verbose, "mambac: llvm: key, cached object read and linked in %.1f ms\n", now_ms() - t0);
            mc_jit_key_free(&key);
            return j;
        }
        if (verbose) fprintf(verbose, "mambac: jit cache entry removed, it does not link: %s\n", bad.msg);
        mc_jit_cache_drop(&key);
        t0 = now_ms();
    }
    McLlvmObjects o;
    if (!t->host) mc_err(err, "llvm jit: the target %s is not the host; the JIT runs host code only", t->triple);
    else if (!mc_llvm_compile(p, t, NULL, NULL, verbose, &o, err)) { /* at most MAX_OBJS parts */
        double t1 = now_ms();
        uint8_t *packed = cached ? objects_pack(&o, &len) : NULL;
        if (packed) mc_jit_cache_put(&key, packed, len);
        if (packed && packed != o.obj[0]) free(packed);
        for (int i = 0; i < o.n; i++) obj[i] = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)o.obj[i], o.len[i], prefix);
        double t2 = now_ms();
        j = jit_from_objects(obj, o.n, prefix, p->noutputs, err);
        if (j && verbose)
            fprintf(verbose, "mambac: llvm: code generation, O3 and emission %.1f ms, link %.1f ms\n", t1 - t0,
                    now_ms() - t2);
        mc_llvm_objects_free(&o);
    }
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
