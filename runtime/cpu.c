/* runtime/cpu.c -- feature detection of the running CPU and the choice of a
 * compiled variant (mc_cpu.h).
 *
 * Takes the feature lists an artifact was compiled for; produces the variant
 * to run or one sentence saying why none can.  Owns nothing but the cached
 * decision inside each McCpuDispatch.  Compiled with the target's default
 * flags (no -march), so this code itself runs on every CPU of the
 * architecture.
 */
#define _GNU_SOURCE
#include "mc_cpu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MC_ARCH "x86_64"
#ifdef __linux__
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__)
#include <sys/auxv.h>
#define MC_ARCH "aarch64"
#elif defined(__riscv) && __riscv_xlen == 64
#include <sys/auxv.h>
#define MC_ARCH "riscv64"
#else
#define MC_ARCH "unknown"
#endif

/* Artifacts compile this file with -DMC_RT_WEAK, as rt.c: two models'
 * objects linked into one program keep one copy. */
#ifdef MC_RT_WEAK
#define MC_CPU_DEF __attribute__((weak))
#else
#define MC_CPU_DEF
#endif

/* How each feature is detected.  x86: cpuid leaf/subleaf, register (0..3 =
 * eax..edx), bit, and the XCR0 bits the OS must have enabled.  AArch64:
 * `leaf` 1 = AT_HWCAP, 2 = AT_HWCAP2, and the bit.  RISC-V: `leaf` 1 = the
 * AT_HWCAP letter bit, 3 = a minimum VLEN in bits (`bit`) read from vlenb. */
typedef struct Feat {
    const char *arch, *name;
    unsigned leaf, sub;
    int reg, bit;
    unsigned xcr0;
} Feat;

#define XCR_AVX 0x6u       /* SSE + AVX state */
#define XCR_AVX512 0xe6u   /* + opmask, ZMM_Hi256, Hi16_ZMM */
#define XCR_AMX 0x60000u   /* XTILECFG, XTILEDATA */
static const Feat feats[] = {
    {"x86_64", "sse3", 1, 0, 2, 0, 0},
    {"x86_64", "ssse3", 1, 0, 2, 9, 0},
    {"x86_64", "fma", 1, 0, 2, 12, XCR_AVX},
    {"x86_64", "sse4.1", 1, 0, 2, 19, 0},
    {"x86_64", "sse4.2", 1, 0, 2, 20, 0},
    {"x86_64", "movbe", 1, 0, 2, 22, 0},
    {"x86_64", "popcnt", 1, 0, 2, 23, 0},
    {"x86_64", "avx", 1, 0, 2, 28, XCR_AVX},
    {"x86_64", "f16c", 1, 0, 2, 29, XCR_AVX},
    {"x86_64", "bmi", 7, 0, 1, 3, 0},
    {"x86_64", "avx2", 7, 0, 1, 5, XCR_AVX},
    {"x86_64", "bmi2", 7, 0, 1, 8, 0},
    {"x86_64", "avx512f", 7, 0, 1, 16, XCR_AVX512},
    {"x86_64", "avx512dq", 7, 0, 1, 17, XCR_AVX512},
    {"x86_64", "avx512ifma", 7, 0, 1, 21, XCR_AVX512},
    {"x86_64", "avx512cd", 7, 0, 1, 28, XCR_AVX512},
    {"x86_64", "avx512bw", 7, 0, 1, 30, XCR_AVX512},
    {"x86_64", "avx512vl", 7, 0, 1, 31, XCR_AVX512},
    {"x86_64", "avx512vbmi", 7, 0, 2, 1, XCR_AVX512},
    {"x86_64", "avx512vbmi2", 7, 0, 2, 6, XCR_AVX512},
    {"x86_64", "gfni", 7, 0, 2, 8, 0},
    {"x86_64", "vaes", 7, 0, 2, 9, XCR_AVX},
    {"x86_64", "vpclmulqdq", 7, 0, 2, 10, XCR_AVX},
    {"x86_64", "avx512vnni", 7, 0, 2, 11, XCR_AVX512},
    {"x86_64", "avx512bitalg", 7, 0, 2, 12, XCR_AVX512},
    {"x86_64", "avx512vpopcntdq", 7, 0, 2, 14, XCR_AVX512},
    {"x86_64", "avx512vp2intersect", 7, 0, 3, 8, XCR_AVX512},
    {"x86_64", "amx-bf16", 7, 0, 3, 22, XCR_AMX},
    {"x86_64", "avx512fp16", 7, 0, 3, 23, XCR_AVX512},
    {"x86_64", "amx-tile", 7, 0, 3, 24, XCR_AMX},
    {"x86_64", "amx-int8", 7, 0, 3, 25, XCR_AMX},
    {"x86_64", "avxvnni", 7, 1, 0, 4, XCR_AVX},
    {"x86_64", "avx512bf16", 7, 1, 0, 5, XCR_AVX512},
    {"x86_64", "lzcnt", 0x80000001u, 0, 2, 5, 0},
    {"x86_64", "sse4a", 0x80000001u, 0, 2, 6, 0},
    {"aarch64", "fp-armv8", 1, 0, 0, 0, 0},
    {"aarch64", "neon", 1, 0, 0, 1, 0},
    {"aarch64", "aes", 1, 0, 0, 3, 0},
    {"aarch64", "sha2", 1, 0, 0, 6, 0},
    {"aarch64", "crc", 1, 0, 0, 7, 0},
    {"aarch64", "lse", 1, 0, 0, 8, 0},
    {"aarch64", "fullfp16", 1, 0, 0, 10, 0},
    {"aarch64", "rdm", 1, 0, 0, 12, 0},
    {"aarch64", "dotprod", 1, 0, 0, 20, 0},
    {"aarch64", "sve", 1, 0, 0, 22, 0},
    {"aarch64", "sve2", 2, 0, 0, 1, 0},
    {"aarch64", "i8mm", 2, 0, 0, 13, 0},
    {"aarch64", "bf16", 2, 0, 0, 14, 0},
    {"riscv64", "m", 1, 0, 0, 'm' - 'a', 0},
    {"riscv64", "a", 1, 0, 0, 'a' - 'a', 0},
    {"riscv64", "f", 1, 0, 0, 'f' - 'a', 0},
    {"riscv64", "d", 1, 0, 0, 'd' - 'a', 0},
    {"riscv64", "c", 1, 0, 0, 'c' - 'a', 0},
    {"riscv64", "v", 1, 0, 0, 'v' - 'a', 0},
    {"riscv64", "zvl128b", 3, 0, 0, 128, 0},
    {"riscv64", "zvl256b", 3, 0, 0, 256, 0},
    {"riscv64", "zvl512b", 3, 0, 0, 512, 0},
    {"riscv64", "zvl1024b", 3, 0, 0, 1024, 0},
};
#define NFEATS ((int)(sizeof feats / sizeof feats[0]))

MC_CPU_DEF const char *
mc_cpu_arch(void)
{
    return MC_ARCH;
}

static const Feat *
find_feat(const char *arch, const char *name, size_t len)
{
    for (int i = 0; i < NFEATS; i++)
        if (!strcmp(feats[i].arch, arch) && strlen(feats[i].name) == len &&
            !strncmp(feats[i].name, name, len))
            return &feats[i];
    return NULL;
}

MC_CPU_DEF int
mc_cpu_feature_index(const char *arch, const char *name)
{
    const Feat *f = name ? find_feat(arch, name, strlen(name)) : NULL;
    return f ? (int)(f - feats) : -1;
}

#if defined(__riscv) && __riscv_xlen == 64
static long
rv_vlen_bits(void)
{
    if (!(getauxval(AT_HWCAP) & (1ul << ('v' - 'a'))))
        return 0;
    unsigned long vlenb;
    __asm__ volatile("csrr %0, 0xc22" : "=r"(vlenb)); /* vlenb */
    return (long)vlenb * 8;
}
#endif

/* Does the running CPU (and OS) support f?  Only called for f->arch == MC_ARCH. */
static int
has_feat(const Feat *f)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned r[4] = {0, 0, 0, 0};
    unsigned max = __get_cpuid_max(f->leaf & 0x80000000u, NULL);
    if (max < f->leaf)
        return 0;
    __cpuid_count(f->leaf, f->sub, r[0], r[1], r[2], r[3]);
    if (!((r[f->reg] >> f->bit) & 1))
        return 0;
    if (f->xcr0) {
        unsigned a, b, c, d, lo, hi;
        __cpuid(1, a, b, c, d);
        if (!((c >> 27) & 1)) /* OSXSAVE: the OS manages extended state */
            return 0;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        (void)a, (void)b, (void)d;
        if ((lo & f->xcr0) != f->xcr0)
            return 0;
    }
    return 1;
#elif defined(__aarch64__)
    unsigned long caps = getauxval(f->leaf == 2 ? AT_HWCAP2 : AT_HWCAP);
    if (!strcmp(f->name, "fullfp16")) /* FP and ASIMD half precision: bits 9 and 10 */
        return (caps & (3ul << 9)) == (3ul << 9);
    return (int)((caps >> f->bit) & 1);
#elif defined(__riscv) && __riscv_xlen == 64
    if (f->leaf == 3)
        return rv_vlen_bits() >= f->bit;
    return (int)((getauxval(AT_HWCAP) >> f->bit) & 1);
#else
    (void)f;
    return 1;
#endif
}

/* AMX on Linux: the tile data state (8 KB per thread) is the process's only
 * after it asks, arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); a
 * tile instruction before that dies of SIGILL.  Asked once; the answer is
 * kept.  NULL when granted (or nothing to ask on this OS), else why not. */
#define MC_ARCH_REQ_XCOMP_PERM 0x1023
#define MC_XFEATURE_XTILEDATA 18
MC_CPU_DEF const char *
mc_rt_amx_enable(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__linux__)
    static int state; /* 0 not asked, 1 granted, -1 refused */
    static char why[200];
    int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (!s) {
        if (!syscall(SYS_arch_prctl, MC_ARCH_REQ_XCOMP_PERM, MC_XFEATURE_XTILEDATA)) {
            s = 1;
        } else {
            int e = errno;
            snprintf(why, sizeof why, "this kernel does not allow AMX: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): %s%s",
                     strerror(e),
                     e == ENOSPC ? " (an alternate signal stack of this process is too small for the AMX state)"
                     : e == EINVAL ? " (Linux 5.16 or later grants it)" : "");
            s = -1;
        }
        __atomic_store_n(&state, s, __ATOMIC_RELEASE);
    }
    return s > 0 ? NULL : why;
#else
    return NULL;
#endif
}

/* Appends s to buf (comma-separated), truncating safely. */
static void
append(char *buf, int n, const char *s, size_t len)
{
    size_t k = strlen(buf);
    if (n <= 0 || k + 1 >= (size_t)n)
        return;
    snprintf(buf + k, (size_t)n - k, "%s%.*s", k ? ", " : "", (int)len, s);
}

MC_CPU_DEF int
mc_cpu_missing(const char *arch, const char *features, char *buf, int n)
{
    int missing = 0;
    if (n > 0)
        buf[0] = 0;
    int here = !strcmp(arch, MC_ARCH);
    for (const char *s = features; s && *s;) {
        size_t len = strcspn(s, ",");
        const Feat *f = find_feat(arch, s, len);
        if (f && here && !has_feat(f)) {
            append(buf, n, s, len);
            missing++;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return missing;
}

static int
count_features(const char *features)
{
    int c = 0;
    for (const char *s = features; s && *s; s++)
        c += *s != ',' && (s == features || s[-1] == ',');
    return c;
}

/* Is `name` one of the ", "-separated entries of `list`? */
static int
listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = list; s && *s;) {
        size_t len = strcspn(s, ",");
        if (len == n && !strncmp(s, name, n))
            return 1;
        s += len;
        while (*s == ',' || *s == ' ')
            s++;
    }
    return 0;
}

/* Code compiled for a CPU with AMX (amx-tile among its features) may use
 * tiles: its variant runs only where the OS grants them. */
static int
needs_amx(const char *features)
{
    return listed(features, "amx-tile");
}

/* What to recompile with, for a CPU that lacks `missing`. */
static void
advice(const char *arch, const char *missing, char *buf, size_t n)
{
    if (!strcmp(arch, "x86_64")) {
        static const char *const levels[][2] = {
            {"x86-64-v4", "sse3,ssse3,sse4.1,sse4.2,popcnt,movbe,fma,f16c,avx,avx2,bmi,bmi2,lzcnt,"
                          "avx512f,avx512dq,avx512cd,avx512bw,avx512vl"},
            {"x86-64-v3", "sse3,ssse3,sse4.1,sse4.2,popcnt,movbe,fma,f16c,avx,avx2,bmi,bmi2,lzcnt"},
            {"x86-64-v2", "sse3,ssse3,sse4.1,sse4.2,popcnt"},
            {"x86-64", ""}};
        char tmp[8];
        const char *best = "x86-64";
        for (int i = 0; i < 4; i++)
            if (!mc_cpu_missing(arch, levels[i][1], tmp, sizeof tmp)) {
                best = levels[i][0];
                break;
            }
        snprintf(buf, n, "recompile with --cpu %s (the best x86-64 level this CPU has) or --cpu "
                         "portable (one binary for every x86-64 level)%s", best,
                 listed(missing, "avx512bf16") ? ", and with --precision fp32 if it was bf16 (that needs avx512bf16)"
                                               : "");
    } else if (!strcmp(arch, "riscv64")) {
        if (!listed(missing, "v"))
            snprintf(buf, n, "recompile with a smaller +zvl<N>b in --features (or none)");
        else
            snprintf(buf, n, "recompile with --features -v or --cpu generic-rv64");
    } else if (!strcmp(arch, "aarch64")) {
        snprintf(buf, n, "recompile with --cpu generic or --cpu portable%s",
                 listed(missing, "bf16") ? ", and with --precision fp32 if it was bf16 (that needs bf16)" : "");
    } else {
        snprintf(buf, n, "recompile for this CPU");
    }
}

/* The sentence for a single variant this CPU cannot run. */
static void
explain(const McCpuDispatch *d, const McCpuVariant *v, const char *missing, char *buf, size_t n)
{
    char adv[320];
    advice(d->arch, missing, adv, sizeof adv);
    if (!strcmp(d->arch, "riscv64") && listed(missing, "v"))
        snprintf(buf, n, "compiled for riscv64 with +v (vector); this CPU has no V extension: %s", adv);
    else
        snprintf(buf, n, "compiled for %s cpu %s; this CPU lacks %s: %s", d->arch, v->name, missing, adv);
}

static void
decide(McCpuDispatch *d, int *state)
{
    char miss[512];
    const char *force = getenv("MAMBAC_CPU");
    if (strcmp(d->arch, MC_ARCH)) {
        snprintf(d->msg, sizeof d->msg, "compiled for %s, but this runtime runs on %s", d->arch,
                 MC_ARCH);
        *state = -1;
        return;
    }
    if (force && *force) {
        for (int i = 0; i < d->n; i++) {
            if (strcmp(d->v[i].name, force))
                continue;
            if (!mc_cpu_missing(d->arch, d->v[i].features, miss, sizeof miss)) {
                const char *amx = needs_amx(d->v[i].features) ? mc_rt_amx_enable() : NULL;
                if (amx)
                    snprintf(d->msg, sizeof d->msg, "MAMBAC_CPU=%s: %s", force, amx);
                *state = amx ? -1 : 1 + i;
                return;
            }
            char why[800];
            explain(d, &d->v[i], miss, why, sizeof why);
            snprintf(d->msg, sizeof d->msg, "MAMBAC_CPU=%s: %s", force, why);
            *state = -1;
            return;
        }
        int k = snprintf(d->msg, sizeof d->msg, "MAMBAC_CPU=%s names no compiled variant (compiled:",
                         force);
        for (int i = 0; i < d->n && k > 0 && (size_t)k < sizeof d->msg; i++)
            k += snprintf(d->msg + k, sizeof d->msg - (size_t)k, " %s", d->v[i].name);
        if (k > 0 && (size_t)k < sizeof d->msg)
            snprintf(d->msg + k, sizeof d->msg - (size_t)k, ")");
        *state = -1;
        return;
    }
    int best = -1, bestc = -1;
    const char *amx = NULL; /* why the AMX variants this CPU has cannot run */
    for (int i = 0; i < d->n; i++) {
        int c = count_features(d->v[i].features);
        if (c > bestc && !mc_cpu_missing(d->arch, d->v[i].features, miss, sizeof miss)) {
            const char *no = needs_amx(d->v[i].features) ? mc_rt_amx_enable() : NULL;
            if (no) {
                amx = no;
                continue;
            }
            best = i;
            bestc = c;
        }
    }
    if (best >= 0) {
        *state = 1 + best;
        return;
    }
    if (amx) {
        snprintf(d->msg, sizeof d->msg, "%s: recompile with --features -amx-tile to run without AMX", amx);
        *state = -1;
        return;
    }
    /* none runs: explain with the least demanding variant */
    int low = 0;
    for (int i = 1; i < d->n; i++)
        if (count_features(d->v[i].features) < count_features(d->v[low].features))
            low = i;
    mc_cpu_missing(d->arch, d->v[low].features, miss, sizeof miss);
    if (d->n == 1) {
        explain(d, &d->v[0], miss, d->msg, sizeof d->msg);
    } else {
        char why[800];
        explain(d, &d->v[low], miss, why, sizeof why);
        snprintf(d->msg, sizeof d->msg, "none of the %d compiled variants runs on this CPU; the least "
                                        "demanding one was %s",
                 d->n, why);
    }
    *state = -1;
}

MC_CPU_DEF const McCpuVariant *
mc_cpu_pick(McCpuDispatch *d)
{
    int s = __atomic_load_n(&d->state, __ATOMIC_ACQUIRE);
    if (!s) {
        /* Threads racing here compute the same answer; msg is written
         * before the state that publishes it. */
        decide(d, &s);
        __atomic_store_n(&d->state, s, __ATOMIC_RELEASE);
    }
    return s > 0 && s <= d->n ? &d->v[s - 1] : NULL;
}

MC_CPU_DEF const char *
mc_cpu_error(McCpuDispatch *d)
{
    return mc_cpu_pick(d) ? NULL : d->msg;
}
