/* runtime/mc_cpu.h -- what the running CPU can execute, and the choice of a
 * compiled variant (runtime/cpu.c).
 *
 * Every artifact `mambac compile` writes carries, per compiled variant, the
 * list of instruction-set features its code was compiled for (LLVM's names:
 * "avx2", "avx512f", "sve", "v", "zvl256b", ...).  Before the model runs the
 * first time, the variant whose features the running CPU (and the OS) all
 * support is picked -- the one with the most features -- or, when none is,
 * the model refuses to run with one sentence naming what is missing and how
 * to recompile.  Detection: x86-64 cpuid + xgetbv (the OS saves the AVX /
 * AVX-512 / AMX state), AArch64 getauxval(AT_HWCAP, AT_HWCAP2), RISC-V
 * AT_HWCAP's letter bits and, for zvl<N>b, the vlenb CSR.
 *
 * MAMBAC_CPU=NAME forces the variant called NAME (for tests and for
 * comparing variants); a forced variant the CPU cannot run is refused too.
 */
#ifndef MC_CPU_H
#define MC_CPU_H
#include <stdint.h>

typedef int (*McCpuRun)(const void *weights, const float *input, float *output, void *scratch);

typedef struct McCpuVariant {
    const char *name;        /* "x86-64-v3", "neoverse-v1", "generic-rv64+v" */
    const char *features;    /* comma-separated features it needs, "" for none */
    McCpuRun run;            /* its entry point (a model with n > 1 outputs: cast, its
                                type takes n output pointers) */
    int64_t weights_offset;  /* its packed weights inside the shared blob */
} McCpuVariant;

typedef struct McCpuDispatch {
    const char *model;       /* model name, for messages */
    const char *arch;        /* "x86_64", "aarch64", "riscv64" */
    int n;
    const McCpuVariant *v;   /* [n], in the order given to --cpu */
    int state;               /* 0 not decided yet, 1 + index chosen, -1 none runs here */
    char msg[1024];          /* why none runs, when state == -1 */
} McCpuDispatch;

/* The variant this CPU runs (decided once, then cached; safe to call from
 * several threads), or NULL when none can run here. */
const McCpuVariant *mc_cpu_pick(McCpuDispatch *d);
/* NULL when a variant runs here, else the one-sentence reason. */
const char *mc_cpu_error(McCpuDispatch *d);

/* The entries of the comma-separated `features` the running CPU lacks,
 * comma-separated into buf ("" when none).  Names this file cannot detect are
 * not reported.  Returns the number missing. */
int mc_cpu_missing(const char *arch, const char *features, char *buf, int n);
/* The place of `name` in this file's table of the features it can detect
 * on `arch` (a canonical order for lists), or -1 when it cannot. */
int mc_cpu_feature_index(const char *arch, const char *name);
/* Asks the OS for the AMX tile state (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM,
 * XFEATURE_XTILEDATA), once per process; mc_cpu_pick does it before it
 * picks a variant compiled with amx-tile).  NULL when granted or when there
 * is nothing to ask, else the one-sentence reason ("this kernel does not
 * allow AMX: ..."). */
const char *mc_rt_amx_enable(void);
/* The architecture this runtime was compiled for ("x86_64", ...). */
const char *mc_cpu_arch(void);

/* Status a model's entry point returns when no variant runs on this CPU. */
#define MC_CPU_UNSUPPORTED 86

#endif
