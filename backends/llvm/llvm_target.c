/* backends/llvm/llvm_target.c -- target selection for the LLVM backend.
 *
 * Takes (triple, cpu, features) strings, NULL meaning the host's; produces a
 * McLlvmTarget owning an LLVMTargetMachine (PIC, O3) and the two numbers the
 * code generator sizes its tiles by, derived from the feature string exactly
 * as LLVM reports it:
 *
 *   x86:     +avx512f -> 16 lanes, 32 registers; +avx or +avx2 -> 8 lanes,
 *            16 registers; otherwise (SSE) 4 lanes, 16 registers.  With
 *            --cpu and no feature list, a table of CPU names decides.
 *   aarch64: NEON, 4 lanes, 32 registers (SVE is not used: fixed-width
 *            vectors keep the packed-weight layout target-independent of
 *            the runtime vector length).
 *   riscv:   +v -> 2 x (VLEN/32) lanes (LMUL 2 fixed-width vectors, VLEN from
 *            +zvlNb, at least 128), 16 register groups; without +v: 4 lanes
 *            and 8 "registers" (LLVM scalarizes).
 *   other:   4 lanes, 16 registers.
 *
 * Owns the strings and the target machine (mc_llvm_target_free).
 */
#include "llvm_internal.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int initialized;

static void
init_llvm(void)
{
    if (initialized) return;
    initialized = 1;
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    LLVMInitializeAllAsmParsers();
}

static char *
xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *r = malloc(n);
    memcpy(r, s, n);
    return r;
}

/* Is "+name" in the comma-separated feature list (last mention wins)? */
static int
has_feature(const char *features, const char *name)
{
    int on = 0;
    size_t n = strlen(name);
    const char *s = features;
    while (s && *s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n + 1 && (s[0] == '+' || s[0] == '-') && !strncmp(s + 1, name, n)) on = s[0] == '+';
        s = e ? e + 1 : NULL;
    }
    return on;
}

static int
starts(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

/* x86 CPU names whose feature sets include AVX-512F / AVX, for --cpu
 * without --features (the C API cannot expand a CPU name into features). */
static const char *const x86_avx512_cpus[] = {
    "skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
    "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d",
    "znver4", "znver5", "knl", "knm", "x86-64-v4", NULL};
static const char *const x86_avx_cpus[] = {
    "sandybridge", "ivybridge", "haswell", "broadwell", "skylake", "alderlake", "raptorlake",
    "meteorlake", "arrowlake", "lunarlake", "gracemont", "znver1", "znver2", "znver3", "bdver1",
    "bdver2", "bdver3", "bdver4", "btver2", "x86-64-v3", "sierraforest", "grandridge", "core-avx2",
    "core-avx-i", "corei7-avx", NULL};

static int
in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (!strcmp(*l, s)) return 1;
    return 0;
}

static void
derive_vector(McLlvmTarget *t)
{
    const char *tr = t->triple, *f = t->features;
    t->lanes = 4;
    t->vregs = 16;
    if (starts(tr, "x86_64") || starts(tr, "i386") || starts(tr, "i686")) {
        int known = strstr(f, "avx") != NULL; /* features given: they decide */
        if (has_feature(f, "avx512f") || (!known && in_list(x86_avx512_cpus, t->cpu))) {
            t->lanes = 16;
            t->vregs = 32;
            t->x86_avx512 = 1;
        } else if (has_feature(f, "avx") || has_feature(f, "avx2") || (!known && in_list(x86_avx_cpus, t->cpu))) {
            t->lanes = 8;
            t->vregs = 16;
        }
    } else if (starts(tr, "aarch64") || starts(tr, "arm64")) {
        t->lanes = 4;
        t->vregs = 32;
    } else if (starts(tr, "riscv")) {
        if (has_feature(f, "v")) {
            int vlen = 128;
            static const int zvl[] = {65536, 32768, 16384, 8192, 4096, 2048, 1024, 512, 256};
            for (size_t i = 0; i < sizeof zvl / sizeof zvl[0]; i++) {
                char nm[32];
                snprintf(nm, sizeof nm, "zvl%db", zvl[i]);
                if (has_feature(f, nm)) {
                    vlen = zvl[i];
                    break;
                }
            }
            if (vlen > 512) vlen = 512; /* keep tiles sane */
            t->lanes = 2 * vlen / 32;
            t->vregs = 16;
        } else {
            t->lanes = 4;
            t->vregs = 8;
        }
    }
}

/* LLVM only warns about an unknown CPU or feature name ("... is not a
 * recognized processor/feature for this target") and may then abort deep in
 * code generation.  So a CPU or feature list the user gave is tried first in
 * a child process that builds an empty module for it; its warnings become a
 * proper error here. */
static int
probe_subtarget(McLlvmTarget *t, McErr *err)
{
    int fd[2];
    if (pipe(fd)) return 0; /* cannot probe: let LLVM speak for itself */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return 0;
    }
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        LLVMModuleRef m = LLVMModuleCreateWithName("probe");
        LLVMSetTarget(m, t->triple);
        LLVMTypeRef fty = LLVMFunctionType(LLVMVoidType(), NULL, 0, 0);
        LLVMValueRef f = LLVMAddFunction(m, "probe", fty);
        LLVMBuilderRef b = LLVMCreateBuilder();
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlock(f, "entry"));
        LLVMBuildRetVoid(b);
        LLVMMemoryBufferRef out = NULL;
        char *msg = NULL;
        int bad = LLVMTargetMachineEmitToMemoryBuffer(t->tm, m, LLVMObjectFile, &msg, &out);
        _exit(bad ? 3 : 0);
    }
    close(fd[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    while (read(fd[0], buf + n, 0) > 0) {
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strstr(buf, "is not a recognized");
    if (ok) return 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    return mc_err(err, "llvm: target %s does not accept cpu '%s' / features '%s': %s (see --list-cpus %s)", t->triple,
                  t->cpu, t->features[0] ? t->features : "(default)", buf[0] ? buf : "code generation failed",
                  t->triple);
}

McLlvmTarget *
mc_llvm_target_create(const char *triple, const char *cpu, const char *features, McErr *err)
{
    init_llvm();
    McLlvmTarget *t = calloc(1, sizeof *t);
    char *host = LLVMGetDefaultTargetTriple();
    char *nt = LLVMNormalizeTargetTriple(triple ? triple : host);
    t->triple = xstrdup(nt);
    LLVMDisposeMessage(nt);
    char *hn = LLVMNormalizeTargetTriple(host);
    t->host = !strcmp(hn, t->triple);
    LLVMDisposeMessage(hn);
    LLVMDisposeMessage(host);
    if (t->host && !cpu) {
        char *c = LLVMGetHostCPUName();
        t->cpu = xstrdup(c);
        LLVMDisposeMessage(c);
    } else {
        t->cpu = xstrdup(cpu ? cpu : "generic");
    }
    if (features) {
        t->features = xstrdup(features);
    } else if (t->host && !cpu) {
        char *f = LLVMGetHostCPUFeatures();
        t->features = xstrdup(f);
        LLVMDisposeMessage(f);
    } else if (starts(t->triple, "aarch64")) {
        t->features = xstrdup("+neon,+fp-armv8");
    } else if (starts(t->triple, "riscv64")) {
        t->features = xstrdup("+m,+a,+f,+d,+c,+v");
    } else {
        t->features = xstrdup("");
    }
    if (starts(t->triple, "riscv64")) t->abi = xstrdup(has_feature(t->features, "d") ? "lp64d" : "lp64");
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &t->target, &msg)) {
        mc_err(err, "llvm: unknown target triple '%s': %s (see --list-targets)", t->triple, msg ? msg : "");
        LLVMDisposeMessage(msg);
        mc_llvm_target_free(t);
        return NULL;
    }
    LLVMTargetMachineOptionsRef o = LLVMCreateTargetMachineOptions();
    LLVMTargetMachineOptionsSetCPU(o, t->cpu);
    LLVMTargetMachineOptionsSetFeatures(o, t->features);
    if (t->abi) LLVMTargetMachineOptionsSetABI(o, t->abi);
    LLVMTargetMachineOptionsSetCodeGenOptLevel(o, LLVMCodeGenLevelAggressive);
    LLVMTargetMachineOptionsSetRelocMode(o, LLVMRelocPIC);
    LLVMTargetMachineOptionsSetCodeModel(o, LLVMCodeModelDefault);
    t->tm = LLVMCreateTargetMachineWithOptions(t->target, t->triple, o);
    LLVMDisposeTargetMachineOptions(o);
    if (!t->tm) {
        mc_err(err, "llvm: cannot create a target machine for %s (cpu %s)", t->triple, t->cpu);
        mc_llvm_target_free(t);
        return NULL;
    }
    if ((cpu || features) && probe_subtarget(t, err)) {
        mc_llvm_target_free(t);
        return NULL;
    }
    derive_vector(t);
    size_t n = strlen(t->triple) + strlen(t->cpu) + strlen(t->features) + 96;
    t->descr = malloc(n);
    snprintf(t->descr, n, "triple=%s cpu=%s features=%s vector=%dxf32 vregs=%d", t->triple, t->cpu,
             t->features[0] ? t->features : "(default)", t->lanes, t->vregs);
    return t;
}

void
mc_llvm_target_free(McLlvmTarget *t)
{
    if (!t) return;
    if (t->tm) LLVMDisposeTargetMachine(t->tm);
    free(t->triple);
    free(t->cpu);
    free(t->features);
    free(t->abi);
    free(t->descr);
    free(t);
}

const char *
mc_llvm_target_describe(const McLlvmTarget *t)
{
    return t->descr;
}

int
mc_llvm_target_lanes(const McLlvmTarget *t)
{
    return t->lanes;
}

int
mc_llvm_target_is_host(const McLlvmTarget *t)
{
    return t->host;
}

void
mc_llvm_list_targets(FILE *f)
{
    init_llvm();
    for (LLVMTargetRef t = LLVMGetFirstTarget(); t; t = LLVMGetNextTarget(t))
        fprintf(f, "  %-12s %s\n", LLVMGetTargetName(t), LLVMGetTargetDescription(t));
}

int
mc_llvm_list_cpus(const char *triple, FILE *f, McErr *err)
{
    init_llvm();
    char *host = LLVMGetDefaultTargetTriple();
    char *nt = LLVMNormalizeTargetTriple(triple ? triple : host);
    LLVMTargetRef tg;
    char *msg = NULL;
    int rc = 0;
    if (LLVMGetTargetFromTriple(nt, &tg, &msg)) {
        rc = mc_err(err, "llvm: unknown target triple '%s': %s", nt, msg ? msg : "");
        LLVMDisposeMessage(msg);
    } else {
        fprintf(f, "target %s (%s): %s\n", nt, LLVMGetTargetName(tg), LLVMGetTargetDescription(tg));
        if (!strcmp(nt, host)) {
            char *cpu = LLVMGetHostCPUName();
            fprintf(f, "this machine's cpu: %s\n", cpu);
            LLVMDisposeMessage(cpu);
        }
        /* The C API has no CPU enumeration, but a subtarget created for the
         * CPU name "help" prints LLVM's own table of CPUs and features (to
         * stderr); do that in a child whose stderr is f. */
        fflush(f);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(fileno(f), 2);
            LLVMTargetMachineRef tm = LLVMCreateTargetMachine(tg, nt, "help", "", LLVMCodeGenLevelDefault,
                                                              LLVMRelocDefault, LLVMCodeModelDefault);
            LLVMModuleRef m = LLVMModuleCreateWithName("cpus");
            LLVMSetTarget(m, nt);
            LLVMMemoryBufferRef out = NULL;
            char *emsg = NULL;
            LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &emsg, &out);
            fflush(stderr);
            _exit(0);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
            fprintf(f, "(LLVM's CPU table is not available; any CPU name LLVM knows is accepted by --cpu)\n");
    }
    LLVMDisposeMessage(nt);
    LLVMDisposeMessage(host);
    return rc;
}
