/* runtime/mc_rt.h -- the runtime that generated model code links with.
 *
 * A parallel-for over OpenMP, the thread count, a monotonic clock, aligned
 * allocation, and the per-kernel profiling hook.  Plain C, nothing from the
 * compiler; the same sources are compiled into mambac's libmc_runtime and,
 * for every target, into the artifacts `mambac compile` writes.
 *
 * Calls the code generator makes (see docs/artifacts.md):
 *
 *   mc_rt_kernel_begin(k);                       // k = kernel index, 0..nk-1
 *   mc_rt_parallel_for(body, &ctx, n, grain);    // body(ctx, begin, end)
 *   mc_rt_kernel_end(k);
 *
 * or, one parallel region per inference (what the LLVM backend emits):
 *
 *   mc_rt_team_run(body, args);    // body(args) on every thread:
 *     mc_rt_kernel_begin(k); mc_rt_team_for(fn, &ctx, n, grain); mc_rt_kernel_end(k); ...
 *
 * mc_rt_kernel_begin/end cost one call and one load of a global when
 * profiling is off; they count on the thread that runs the model or on
 * thread 0 of its team (other threads' calls are ignored), in begin/end
 * pairs that do not nest.
 */
#ifndef MC_RT_H
#define MC_RT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Alignment of weights, scratch, input and output memory in artifacts. */
#define MC_RT_ALIGN 64

/* A loop body outlined by the code generator: does iterations [begin, end). */
typedef void (*McRtBody)(void *ctx, int64_t begin, int64_t end);

/* Runs fn over [0, n) split into at most one contiguous, grain-aligned range
 * per thread (static schedule).  grain (>= 1; smaller counts as 1) is the
 * least number of iterations worth a thread: n <= grain, one thread, or a
 * call from inside a parallel region (no nested oversubscription) runs
 * fn(ctx, 0, n) inline on the calling thread.  Every index in [0, n) is
 * passed to exactly one call of fn; n <= 0 does nothing. */
void mc_rt_parallel_for(McRtBody fn, void *ctx, int64_t n, int64_t grain);

/* A team: body(arg) runs on every thread of one OpenMP parallel region
 * (mc_rt_get_threads() threads; inline on the calling thread when that is 1
 * or when called from inside a parallel region).  Inside body, every thread
 * calls mc_rt_team_for for the same kernels in the same order: each runs its
 * own share of [0, n) (the split of mc_rt_parallel_for) and waits at a
 * barrier, so a kernel starts when the previous one is complete everywhere.
 * Outside a team, mc_rt_team_for runs fn(ctx, 0, n). */
typedef void (*McRtTeamBody)(void *arg);
void mc_rt_team_run(McRtTeamBody body, void *arg);
void mc_rt_team_for(McRtBody fn, void *ctx, int64_t n, int64_t grain);

/* Image groups, for a per-image segment of `images` images whose scratch
 * has gmax copies: every thread of the team calls it; the team is split
 * into G groups of consecutive threads (G divides gmax, G <= images; 1 when
 * that is best, outside a team, or while profiling) and the call returns
 * this thread's group g (0..G-1), *ngroups = G.  The group then runs images
 * g, g+G, ... with mc_rt_team_for splitting each kernel over the group's
 * threads and waiting at the group's own barrier; mc_rt_team_group_end
 * (every thread) leaves the groups with a barrier of the whole team. */
int64_t mc_rt_team_group_begin(int64_t images, int64_t gmax, int64_t *ngroups);
void mc_rt_team_group_end(void);

/* Threads for later parallel-fors: n >= 1 sets it, n <= 0 returns to the
 * default (OMP_NUM_THREADS, else the number of cores). */
void mc_rt_set_threads(int n);
/* The count the next parallel-for uses (>= 1). */
int mc_rt_get_threads(void);

/* Monotonic clock (CLOCK_MONOTONIC), nanoseconds / milliseconds. */
uint64_t mc_rt_now_ns(void);
double mc_rt_now_ms(void);

/* Aligned allocation (align: a power of two >= sizeof(void *)); size 0 gives
 * a valid unique pointer.  Free with mc_rt_free_aligned.  NULL on failure. */
void *mc_rt_alloc_aligned(size_t size, size_t align);
void mc_rt_free_aligned(void *p);


/* ------------------------------------------------------------ profiling
 * A table of nk kernels owned by the caller.  While one is installed,
 * mc_rt_kernel_end(k) adds the time since the matching mc_rt_kernel_begin
 * to ns[k] and one to calls[k]; indices outside [0, nk) are ignored. */
typedef struct McRtProfile {
    int nk;
    uint64_t *ns;      /* [nk] accumulated nanoseconds */
    uint64_t *calls;   /* [nk] completed begin/end pairs */
} McRtProfile;

/* Installs p (NULL turns profiling off).  The table is not cleared. */
void mc_rt_profile_set(McRtProfile *p);
/* Zeroes the installed table's counters. */
void mc_rt_profile_reset(void);

/* The hook the code generator emits around each fused kernel. */
void mc_rt_kernel_begin(int k);
void mc_rt_kernel_end(int k);

/* The installed table, or NULL: generated code may test this itself to skip
 * the calls (`if (mc_rt_profile_active) mc_rt_kernel_begin(k);`). */
extern McRtProfile *volatile mc_rt_profile_active;

#ifdef __cplusplus
}
#endif
#endif
