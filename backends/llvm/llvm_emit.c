/* backends/llvm/llvm_emit.c -- optimize and write an LLVM module; compile
 * a program into object files in parallel.
 *
 * Takes a verified McLlvmModule; runs the new pass manager's default<O3>
 * pipeline through LLVMRunPasses with the module's target machine, verifies
 * again, and writes an object file, assembly or IR text to a file or a
 * malloc'd buffer.  Output is deterministic: names are kernel indices, no
 * addresses or timestamps enter the module.
 * mc_llvm_compile (llvm.h): a program's kernels in parts, each part's module
 * built, optimized and emitted by a worker thread with a context and a
 * target machine of its own (LLVM's unit of thread safety); the parts are
 * a function of the program only.  Owns nothing after it returns.
 */
#define _GNU_SOURCE
#include "llvm_internal.h"
#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ------------------------------------------------------------ parallel compile */

#define MAX_PARTS 16
#define KERNELS_PER_PART 8 /* fewer parts for small programs: each costs a context and a pass pipeline */

/* Estimated compile time of kernel k, in layer norms (about 20 ms on the
 * 2-core Xeon, from compiling each of tiny's kernels alone): the 25-tap
 * fusion's and the convolutions' unrolled loops and the GEMMs'
 * micro-kernels dominate. */
static double
kernel_cost(const Kernel *k)
{
    switch (k->kind) {
    case KK_FUSION25: return 9;
    case KK_CONV: return 6;
    case KK_GEMM: return 4;
    case KK_DWCONV:
    case KK_SCAN: return 2;
    default: return 1;
    }
}

typedef struct Part {
    int k0, k1;
    double cost;
} Part;

/* Cuts p's kernels into *n ranges of about equal cost (a kernel that runs
 * another's function, rep[i] != i, costs nothing: it has no code); returns
 * the number of parts. */
static int
plan_parts(const KProgram *p, const int *rep, Part *part)
{
    int nf = 0;
    for (int i = 0; i < p->nk; i++) nf += !rep || rep[i] == i;
    int n = (nf + KERNELS_PER_PART - 1) / KERNELS_PER_PART;
    n = n < 1 ? 1 : n > MAX_PARTS ? MAX_PARTS : n;
    double total = 0, acc = 0;
    for (int i = 0; i < p->nk; i++) total += !rep || rep[i] == i ? kernel_cost(&p->k[i]) : 0;
    int j = 0;
    part[0].k0 = 0;
    part[0].cost = 0;
    for (int i = 0; i < p->nk; i++) {
        double c = !rep || rep[i] == i ? kernel_cost(&p->k[i]) : 0;
        /* close part j before kernel i once it holds its share */
        if (j + 1 < n && part[j].k0 < i && acc + c / 2 > total * (j + 1) / n) {
            part[j].k1 = i;
            part[++j].k0 = i;
            part[j].cost = 0;
        }
        acc += c;
        part[j].cost += c;
    }
    part[j].k1 = p->nk;
    return j + 1;
}

typedef struct Work {
    const KProgram *p;
    const McLlvmTarget *t, *pack;
    const char *prefix;
    const Part *part;
    const int *order;
    int n, next, failed;
    McLlvmObjects *out;
    McErr err;
    pthread_mutex_t mu;
} Work;

static void *
worker(void *arg)
{
    Work *w = arg;
    McLlvmTarget t = *w->t; /* its own target machine: one per thread */
    McErr err = {{0}};
    if (!(t.tm = mc_llvm_target_machine(w->t))) mc_err(&err, "llvm: cannot create a target machine for %s", t.triple);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int i = err.msg[0] || w->failed || w->next >= w->n ? -1 : w->order[w->next++];
        pthread_mutex_unlock(&w->mu);
        if (i < 0) break;
        const Part *pt = &w->part[i];
        McLlvmModule *m = mc_llvm_codegen_part(w->p, &t, w->prefix, w->pack, pt->k0, pt->k1, i == 0, &err);
        if (m) mc_llvm_emit_mem(m, MC_EMIT_OBJ, &w->out->obj[i], &w->out->len[i], &err);
        mc_llvm_module_free(m);
    }
    if (t.tm) LLVMDisposeTargetMachine(t.tm);
    pthread_mutex_lock(&w->mu);
    if (err.msg[0] && !w->failed++) w->err = err;
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int
cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    return 1;
}

void
mc_llvm_objects_free(McLlvmObjects *o)
{
    for (int i = 0; o->obj && i < o->n; i++) free(o->obj[i]);
    free(o->obj);
    free(o->len);
    memset(o, 0, sizeof *o);
}

int
mc_llvm_compile(const KProgram *p, const McLlvmTarget *t, const char *prefix, const McLlvmTarget *pack,
                FILE *verbose, McLlvmObjects *out, McErr *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    Part part[MAX_PARTS];
    Plan pl; /* the classes of shared code: what is compiled */
    mc_llvm_plan(p, t, pack, &pl);
    mc_llvm_plan_classes(p, &pl);
    int order[MAX_PARTS], n = plan_parts(p, pl.rep, part), nfn = pl.rep ? pl.nclasses : p->nk;
    mc_llvm_plan_free(&pl);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* costliest first: the last to start are short */
        for (int j = i; j > 0 && part[order[j]].cost > part[order[j - 1]].cost; j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    memset(out, 0, sizeof *out);
    out->n = n;
    out->obj = calloc((size_t)n, sizeof *out->obj);
    out->len = calloc((size_t)n, sizeof *out->len);
    if (!out->obj || !out->len) {
        mc_llvm_objects_free(out);
        return mc_err(err, "out of memory");
    }
    char pre[128];
    if (!prefix) mc_llvm_symbol_prefix(p, pre, sizeof pre);
    Work w = {.p = p, .t = t, .pack = pack, .prefix = prefix ? prefix : pre, .part = part, .order = order, .n = n,
              .out = out};
    pthread_mutex_init(&w.mu, NULL);
    int nt = cores() < n ? cores() : n, started = 0;
    pthread_t th[MAX_PARTS];
    for (; started < nt - 1; started++) /* and this thread */
        if (pthread_create(&th[started], NULL, worker, &w)) break;
    worker(&w);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&w.mu);
    if (w.failed) {
        *err = w.err;
        mc_llvm_objects_free(out);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (verbose)
        fprintf(verbose,
                "mambac: llvm: %d kernels (%d functions) in %d parts on %d threads: code generation, O3, emission "
                "%.1f ms\n",
                p->nk, nfn, n, started + 1, (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6);
    return 0;
}
