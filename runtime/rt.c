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
#include <sched.h>
#include <stdatomic.h>
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

/* Image groups of a team (mc_rt_team_group_begin): a barrier per group, in
 * the team's shared state (on the stack of mc_rt_team_run's caller). */
#define RT_MAX_GROUPS 64
typedef struct RtGroupBar {
    _Atomic int count, gen;
    char pad[64 - 2 * sizeof(int)];
} RtGroupBar;
typedef struct RtTeamShared {
    RtGroupBar bar[RT_MAX_GROUPS];
} RtTeamShared;
static _Thread_local RtTeamShared *rt_shared;
static _Thread_local int rt_gsize, rt_grank; /* in a group: its threads, this one's rank */
static _Thread_local RtGroupBar *rt_gbar;

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

/* thread t of T's share of [0, n) in grain-sized units (at most one range
 * per unit: threads >= the unit count idle) */
static void
run_share(McRtBody fn, void *ctx, int64_t n, int64_t grain, int64_t t, int64_t T)
{
    if (grain < 1)
        grain = 1;
    int64_t nchunks = (n + grain - 1) / grain;
    int64_t used = nchunks < T ? nchunks : T;
    if (t >= used)
        return;
    int64_t b = nchunks * t / used * grain, e = nchunks * (t + 1) / used * grain;
    if (e > n)
        e = n;
    if (b < e)
        fn(ctx, b, e);
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
    run_share(fn, ctx, n, grain, omp_get_thread_num(), omp_get_num_threads());
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
        RtTeamShared sh;
        memset(&sh, 0, sizeof sh);
#pragma omp parallel num_threads(nt)
        {
            rt_team = omp_get_num_threads() > 1;
            rt_shared = &sh;
            body(arg);
            rt_team = 0;
            rt_shared = NULL;
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

/* a group's barrier: sense by generation; spins, then yields */
static void
group_barrier(RtGroupBar *b, int n)
{
    int gen = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == n - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->gen, 1, memory_order_release);
        return;
    }
    for (long spin = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == gen; spin++)
        if (spin > 2000)
            sched_yield();
}

/* G image groups of the T threads: the number of rounds of images per
 * thread of a group, ceil(images/G) / floor(T/G), smallest; a tie goes to
 * more groups (fewer threads per image: less to synchronize).  G divides
 * gmax (the copies of the scratch: two groups never share one). */
static int64_t
choose_groups(int64_t images, int64_t gmax, int64_t T)
{
    int64_t best = 1;
    double bestc = (double)images / (double)T;
    for (int64_t G = 2; G <= gmax && G <= T && G <= images && G <= RT_MAX_GROUPS; G++) {
        if (gmax % G)
            continue;
        double cost = (double)((images + G - 1) / G) / (double)(T / G);
        if (cost <= bestc) {
            best = G;
            bestc = cost;
        }
    }
    return best;
}

MC_RT_DEF int64_t
mc_rt_team_group_begin(int64_t images, int64_t gmax, int64_t *ngroups)
{
    *ngroups = 1;
#ifdef _OPENMP
    /* profiling times thread 0's kernels: the whole team on every image */
    if (!rt_team || !rt_shared || mc_rt_profile_active)
        return 0;
    int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t G = choose_groups(images, gmax, T);
    if (G <= 1)
        return 0;
    int64_t g = t * G / T, first = (g * T + G - 1) / G, next = ((g + 1) * T + G - 1) / G;
    rt_gsize = (int)(next - first);
    rt_grank = (int)(t - first);
    rt_gbar = &rt_shared->bar[g];
    *ngroups = G;
    return g;
#else
    (void)images, (void)gmax;
    return 0;
#endif
}

MC_RT_DEF void
mc_rt_team_group_end(void)
{
    rt_gsize = 0;
    rt_gbar = NULL;
#ifdef _OPENMP
    if (rt_team) {
#pragma omp barrier
    }
#endif
}

MC_RT_DEF void
mc_rt_team_for(McRtBody fn, void *ctx, int64_t n, int64_t grain)
{
    if (n <= 0)
        return;
    if (rt_gsize > 1) { /* in an image group: its threads, its barrier */
        run_share(fn, ctx, n, grain, rt_grank, rt_gsize);
        group_barrier(rt_gbar, rt_gsize);
        return;
    }
#ifdef _OPENMP
    if (rt_team && rt_gsize == 0) {
        run_share(fn, ctx, n, grain, omp_get_thread_num(), omp_get_num_threads());
#pragma omp barrier
        return;
    }
#endif
    fn(ctx, 0, n); /* one thread: alone, or a group of one */
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

