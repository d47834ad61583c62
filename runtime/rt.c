/* runtime/rt.c -- parallel-for, a team per inference, threads, clock, aligned memory, profiling
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

static _Thread_local int rt_team; /* this thread runs a team body, team > 1 */

/* the thread that times kernels: the caller, or thread 0 of a team */
static int
team_leader(void)
{
#ifdef _OPENMP
    return !rt_team || omp_get_thread_num() == 0;
#else
    return 1;
#endif
}

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

/* One team for a whole inference: body(arg) on every thread; inside it,
 * mc_rt_team_for splits each kernel and ends with a barrier, so the threads
 * are forked and joined once per call instead of once per kernel. */
MC_RT_DEF void
mc_rt_team_run(McRtTeamBody body, void *arg)
{
    int nt = mc_rt_get_threads();
#ifdef _OPENMP
    if (nt > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(nt)
        {
            rt_team = omp_get_num_threads() > 1;
            body(arg);
            rt_team = 0;
        }
        return;
    }
#endif
    (void)nt;
    int saved = rt_team; /* inline (also from inside a team): whole ranges */
    rt_team = 0;
    body(arg);
    rt_team = saved;
}

MC_RT_DEF void
mc_rt_team_for(McRtBody fn, void *ctx, int64_t n, int64_t grain)
{
    if (n <= 0)
        return;
#ifdef _OPENMP
    if (rt_team) {
        int64_t T = omp_get_num_threads();
        if (grain < 1)
            grain = 1;
        int64_t t = omp_get_thread_num();
        int64_t nchunks = (n + grain - 1) / grain;
        /* at most one range per grain-sized unit: threads >= nchunks idle */
        int64_t used = nchunks < T ? nchunks : T;
        if (t < used) {
            int64_t b = nchunks * t / used * grain;
            int64_t e = nchunks * (t + 1) / used * grain;
            if (e > n)
                e = n;
            if (b < e)
                fn(ctx, b, e);
        }
#pragma omp barrier
        return;
    }
#endif
    fn(ctx, 0, n);
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
    if (!mc_rt_profile_active || !team_leader())
        return;
    rt_t0 = mc_rt_now_ns();
}

MC_RT_DEF void
mc_rt_kernel_end(int k)
{
    McRtProfile *p = mc_rt_profile_active;
    if (!p || k < 0 || k >= p->nk || !team_leader())
        return;
    uint64_t now = mc_rt_now_ns();
    p->ns[k] += now >= rt_t0 ? now - rt_t0 : 0;
    p->calls[k]++;
}

