/* runtime/rt.c -- parallel-for, threads, clock, aligned memory, profiling
 * hook, top-k of a row of scores (see mc_rt.h).
 *
 * Takes: outlined loop bodies from generated code.  Owns: the thread-count
 * setting and the pointer to the caller's profile table (never the table).
 * Built with -fopenmp; without it everything runs on one thread.
 *
 * Artifacts compile this file with -DMC_RT_WEAK so that the runtime copies
 * inside two models' objects linked into one program do not clash: the
 * definitions are weak and identical, the linker keeps one.
 */
#include "mc_rt.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef MC_RT_WEAK
#define MC_RT_DEF __attribute__((weak))
#else
#define MC_RT_DEF
#endif

static int rt_threads; /* 0 = default */
static uint64_t rt_t0; /* start of the open kernel */

MC_RT_DEF McRtProfile *volatile mc_rt_profile_active;

MC_RT_DEF void
mc_rt_set_threads(int n)
{
    rt_threads = n > 0 ? n : 0;
}

MC_RT_DEF int
mc_rt_get_threads(void)
{
    if (rt_threads > 0)
        return rt_threads;
#ifdef _OPENMP
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

MC_RT_DEF void
mc_rt_parallel_for(McRtBody fn, void *ctx, int64_t n, int64_t grain)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    int nt = mc_rt_get_threads();
#ifdef _OPENMP
    if (omp_in_parallel())
        nt = 1;
#endif
    int64_t nchunks = (n + grain - 1) / grain; /* grain-sized units */
    if (nt > nchunks)
        nt = (int)nchunks;
    if (nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
        /* thread t gets units [nchunks*t/T, nchunks*(t+1)/T) */
        int64_t b = nchunks * t / T * grain;
        int64_t e = nchunks * (t + 1) / T * grain;
        if (e > n)
            e = n;
        if (b < e)
            fn(ctx, b, e);
    }
#else
    fn(ctx, 0, n);
#endif
}

MC_RT_DEF uint64_t
mc_rt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

MC_RT_DEF double
mc_rt_now_ms(void)
{
    return (double)mc_rt_now_ns() * 1e-6;
}

MC_RT_DEF void *
mc_rt_alloc_aligned(size_t size, size_t align)
{
    if (align < sizeof(void *))
        align = sizeof(void *);
    if (align & (align - 1))
        return NULL;
    /* round up so the size is a multiple of the alignment (aligned_alloc) */
    size_t n = size ? (size + align - 1) / align * align : align;
    if (n < size)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, n))
        return NULL;
    return p;
}

MC_RT_DEF void
mc_rt_free_aligned(void *p)
{
    free(p);
}

MC_RT_DEF void
mc_rt_profile_set(McRtProfile *p)
{
    mc_rt_profile_active = p;
}

MC_RT_DEF void
mc_rt_profile_reset(void)
{
    McRtProfile *p = mc_rt_profile_active;
    if (!p)
        return;
    for (int i = 0; i < p->nk; i++) {
        p->ns[i] = 0;
        p->calls[i] = 0;
    }
}

MC_RT_DEF void
mc_rt_kernel_begin(int k)
{
    if (!mc_rt_profile_active)
        return;
    rt_t0 = mc_rt_now_ns();
}

MC_RT_DEF void
mc_rt_kernel_end(int k)
{
    McRtProfile *p = mc_rt_profile_active;
    if (!p || k < 0 || k >= p->nk)
        return;
    uint64_t now = mc_rt_now_ns();
    p->ns[k] += now >= rt_t0 ? now - rt_t0 : 0;
    p->calls[k]++;
}

/* Does index a come before b in the top-k order of x? */
static int
topk_before(const float *x, int64_t a, int64_t b)
{
    int na = isnan(x[a]), nb = isnan(x[b]);
    if (na != nb)
        return nb;
    if (!na && x[a] != x[b])
        return x[a] > x[b];
    return a < b;
}

MC_RT_DEF int64_t
mc_rt_topk(const float *x, int64_t n, int64_t k, int64_t *out)
{
    if (n <= 0 || k <= 0)
        return 0;
    if (k > n)
        k = n;
    if ((uint64_t)n > SIZE_MAX / 2 / sizeof(int64_t))
        return -1;
    int64_t *a = malloc(2 * (size_t)n * sizeof *a);
    if (!a)
        return -1;
    int64_t *b = a + n;
    for (int64_t i = 0; i < n; i++)
        a[i] = i;
    /* bottom-up merge sort of the indices */
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                b[o++] = topk_before(x, a[j], a[i]) ? a[j++] : a[i++];
            while (i < mid)
                b[o++] = a[i++];
            while (j < hi)
                b[o++] = a[j++];
        }
        int64_t *t = a;
        a = b;
        b = t;
    }
    memcpy(out, a, (size_t)k * sizeof *out);
    free(a < b ? a : b);
    return k;
}

MC_RT_DEF int
mc_rt_print_top(void *file, const float *y, int64_t B, int64_t N, int64_t k)
{
    FILE *f = file;
    int64_t *best = malloc((size_t)(k < N ? k : N > 0 ? N : 1) * sizeof *best);
    for (int64_t b = 0; b < B; b++) {
        const float *row = y + b * N;
        int64_t n = best ? mc_rt_topk(row, N, k, best) : -1;
        if (n < 0) {
            free(best);
            return -1;
        }
        fprintf(f, "image %lld: top-%lld", (long long)b, (long long)n);
        for (int64_t j = 0; j < n; j++)
            fprintf(f, "  class %lld (%.4f)", (long long)best[j], row[best[j]]);
        fprintf(f, "\n");
    }
    free(best);
    return 0;
}
