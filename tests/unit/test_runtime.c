/* tests/unit/test_runtime.c -- the runtime (runtime/rt.c), the executable
 * main (runtime/exe/exe_main.c) and the artifact writer (backends/artifact.c).
 *
 * Takes: nothing but the sources.  Until a code generator is wired in, the
 * artifacts are built around a hand-written C "model" (FAKE_SRC below,
 * compiled here with the C compiler): out[i] = 2 * in[i] + w[i % 64], in two
 * kernels through mc_rt_parallel_for and the profiling hook.  Expected
 * outputs are computed here from that formula.
 * Cross suites (aarch64, riscv64 with RVV under qemu-user) run when Debian's
 * cross compilers and qemu-user are installed (scripts/install-cross.sh) and
 * say "skipped" otherwise.  Run from tests/ (ctest does).
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <limits.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/artifact.h"
#include "backends/elf_obj.h"
#include "runtime/mc_npy.h"
#include "runtime/mc_rt.h"

/* ------------------------------------------------------------ helpers */

static char workdir[PATH_MAX];   /* scratch directory for this run */
static char srcdir[PATH_MAX];    /* the repository root */
static char cmd_out[1 << 16];    /* output of the last sh() */

/* Runs a shell command; returns its exit status, output in cmd_out. */
static int
sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    cmd_out[0] = 0;
    if (!p)
        return -1;
    size_t n = fread(cmd_out, 1, sizeof cmd_out - 1, p);
    cmd_out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
have(const char *prog)
{
    return sh("command -v %s >/dev/null", prog) == 0;
}

static char *
wpath(char *buf, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", workdir, name);
    return buf;
}

static int
same_file(const char *a, const char *b)
{
    return sh("cmp -s '%s' '%s'", a, b) == 0;
}

/* ------------------------------------------------------------ parallel_for */

typedef struct Cover {
    int *hits;
    int64_t grain, n;
    int calls, bad;
} Cover;

static void
cover_body(void *ctx, int64_t b, int64_t e)
{
    Cover *c = ctx;
    __atomic_fetch_add(&c->calls, 1, __ATOMIC_RELAXED);
    if (b >= e || b < 0 || e > c->n || (c->grain > 1 && b % c->grain))
        __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
    for (int64_t i = b; i < e && i >= 0 && i < c->n; i++)
        __atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
}

static void
test_parallel_for_covers(void)
{
    static const int threads[] = {1, 2, 3, 4, 7, 16};
    static const int64_t ns[] = {0, 1, 2, 5, 16, 17, 100, 1000, 12345};
    static const int64_t grains[] = {-5, 0, 1, 3, 16, 64, 1000, 100000};
    int *hits = malloc(12345 * sizeof *hits);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hits);
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        mc_rt_set_threads(threads[t]);
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) {
                int64_t n = ns[a];
                memset(hits, 0, 12345 * sizeof *hits);
                Cover c = {hits, grains[g], n, 0, 0};
                mc_rt_parallel_for(cover_body, &c, n, grains[g]);
                int once = 1;
                for (int64_t i = 0; i < n; i++)
                    once &= hits[i] == 1;
                CU_ASSERT(once);
                CU_ASSERT_EQUAL(c.bad, 0);
                int64_t gr = grains[g] < 1 ? 1 : grains[g];
                int64_t units = (n + gr - 1) / gr;
                int maxcalls = units < threads[t] ? (int)units : threads[t];
                CU_ASSERT(c.calls <= maxcalls);
                if (n == 0)
                    CU_ASSERT_EQUAL(c.calls, 0);
                if (n > 0 && (threads[t] == 1 || n <= gr))
                    CU_ASSERT_EQUAL(c.calls, 1);
            }
    }
    mc_rt_set_threads(0);
    free(hits);
}

typedef struct Where {
    int calls, off_main, in_par;
    int64_t b, e;
} Where;

static void
where_body(void *ctx, int64_t b, int64_t e)
{
    Where *w = ctx;
    __atomic_fetch_add(&w->calls, 1, __ATOMIC_RELAXED);
    if (omp_get_thread_num() != 0)
        __atomic_fetch_add(&w->off_main, 1, __ATOMIC_RELAXED);
    w->b = b, w->e = e;
}

typedef struct Nest {
    Where inner[8];
    int bad;
} Nest;

static void
nest_body(void *ctx, int64_t b, int64_t e)
{
    Nest *n = ctx;
    for (int64_t i = b; i < e; i++) {
        if (!omp_in_parallel())
            __atomic_fetch_add(&n->bad, 1, __ATOMIC_RELAXED);
        mc_rt_parallel_for(where_body, &n->inner[i], 1000, 1);
    }
}

static void
test_parallel_for_inline_and_nested(void)
{
    mc_rt_set_threads(4);
    Where w = {0};
    mc_rt_parallel_for(where_body, &w, 10, 10); /* n <= grain: inline */
    CU_ASSERT_EQUAL(w.calls, 1);
    CU_ASSERT_EQUAL(w.off_main, 0);
    CU_ASSERT_EQUAL(w.b, 0);
    CU_ASSERT_EQUAL(w.e, 10);

    Where w4 = {0};
    mc_rt_parallel_for(where_body, &w4, 4000, 1); /* one range per thread */
    CU_ASSERT_EQUAL(w4.calls, 4);
    CU_ASSERT_EQUAL(w4.off_main, 3);

    /* nested: each inner loop runs whole, inline, on its outer thread */
    Nest n;
    memset(&n, 0, sizeof n);
    mc_rt_parallel_for(nest_body, &n, 8, 1);
    CU_ASSERT_EQUAL(n.bad, 0);
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(n.inner[i].calls, 1);
        CU_ASSERT_EQUAL(n.inner[i].b, 0);
        CU_ASSERT_EQUAL(n.inner[i].e, 1000);
    }
    mc_rt_set_threads(0);
}

/* a team: kernel 1 fills a, kernel 2 reads all of a (reversed) into b; the
 * barrier of mc_rt_team_for is what makes b right, every round */
typedef struct Team {
    int64_t n;
    int64_t *a, *b;
    int rounds, calls_k1, prof;
} Team;

static void
team_k1(void *ctx, int64_t b, int64_t e)
{
    Team *t = ctx;
    __atomic_fetch_add(&t->calls_k1, 1, __ATOMIC_RELAXED);
    for (int64_t i = b; i < e; i++)
        t->a[i] += i + 1;
}

static void
team_k2(void *ctx, int64_t b, int64_t e)
{
    Team *t = ctx;
    for (int64_t i = b; i < e; i++)
        t->b[i] += t->a[t->n - 1 - i];
}

static void
team_body(void *arg)
{
    Team *t = arg;
    for (int r = 0; r < t->rounds; r++) {
        if (t->prof) mc_rt_kernel_begin(0);
        mc_rt_team_for(team_k1, t, t->n, 7);
        if (t->prof) mc_rt_kernel_end(0);
        if (t->prof) mc_rt_kernel_begin(1);
        mc_rt_team_for(team_k2, t, t->n, 1);
        if (t->prof) mc_rt_kernel_end(1);
    }
}

static int
team_check(Team *t)
{
    int ok = 1;
    int64_t R = t->rounds;
    for (int64_t i = 0; i < t->n; i++) {
        ok &= t->a[i] == R * (i + 1);
        ok &= t->b[i] == R * (R + 1) / 2 * (t->n - i);
    }
    return ok;
}

static void
test_team(void)
{
    static const int threads[] = {1, 2, 3, 16};
    static const int64_t ns[] = {1, 5, 100, 20000};
    int64_t *a = malloc(20000 * sizeof *a), *b = malloc(20000 * sizeof *b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    uint64_t ns_[2], calls[2];
    McRtProfile prof = {2, ns_, calls};
    for (size_t ti = 0; ti < sizeof threads / sizeof *threads; ti++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
            mc_rt_set_threads(threads[ti]);
            Team t = {ns[ni], a, b, 30, 0, 1};
            memset(a, 0, 20000 * sizeof *a);
            memset(b, 0, 20000 * sizeof *b);
            mc_rt_profile_set(&prof);
            mc_rt_profile_reset();
            mc_rt_team_run(team_body, &t);
            mc_rt_profile_set(NULL);
            CU_ASSERT(team_check(&t));
            /* each round: at most one range per thread and per 7-unit */
            int64_t units = (t.n + 6) / 7;
            CU_ASSERT(t.calls_k1 <= t.rounds * (units < threads[ti] ? units : threads[ti]));
            /* timed once per kernel and round, by one thread of the team */
            CU_ASSERT_EQUAL(calls[0], (uint64_t)t.rounds);
            CU_ASSERT_EQUAL(calls[1], (uint64_t)t.rounds);
        }
    /* from inside a parallel region: the team is the calling thread */
    mc_rt_set_threads(4);
    int bad = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad)
    {
        int64_t la[50] = {0}, lb[50] = {0};
        Team t = {50, la, lb, 3, 0, 0};
        mc_rt_team_run(team_body, &t);
        bad += !team_check(&t) || t.calls_k1 != 3;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* outside a team, mc_rt_team_for is one call over the whole range */
    Team t1 = {100, a, b, 1, 0, 0};
    memset(a, 0, 100 * sizeof *a);
    memset(b, 0, 100 * sizeof *b);
    team_body(&t1);
    CU_ASSERT(team_check(&t1));
    CU_ASSERT_EQUAL(t1.calls_k1, 1);
    mc_rt_set_threads(0);
    free(a);
    free(b);
}

/* image groups: each image once, by one group; inside a group kernel 2
 * sees kernel 1 complete (the group's barrier); groups' G divides gmax */
typedef struct Groups {
    int64_t images, gmax, n;
    int64_t *a, *b;   /* [images][n] */
    int *seen;        /* [images] */
    int64_t G[64];    /* what each thread was told */
    int bad;
} Groups;

typedef struct GroupsImg {
    Groups *g;
    int64_t img;
} GroupsImg;

static void
grp_k1(void *ctx, int64_t b, int64_t e)
{
    GroupsImg *x = ctx;
    for (int64_t i = b; i < e; i++) x->g->a[x->img * x->g->n + i] = x->img * 1000 + i;
}

static void
grp_k2(void *ctx, int64_t b, int64_t e)
{
    GroupsImg *x = ctx;
    int64_t n = x->g->n, *a = x->g->a + x->img * n;
    for (int64_t i = b; i < e; i++) x->g->b[x->img * n + i] = a[n - 1 - i];
}

static void
groups_body(void *arg)
{
    Groups *g = arg;
    int64_t G = 0;
    int64_t grp = mc_rt_team_group_begin(g->images, g->gmax, &G);
    g->G[omp_get_thread_num() & 63] = G;
    if (G < 1 || grp < 0 || grp >= G || g->gmax % G) __atomic_fetch_add(&g->bad, 1, __ATOMIC_RELAXED);
    for (int64_t img = grp; img < g->images; img += G) {
        GroupsImg x = {g, img};
        mc_rt_team_for(grp_k1, &x, g->n, 3);
        __atomic_fetch_add(&g->seen[img], 1, __ATOMIC_RELAXED);
        mc_rt_team_for(grp_k2, &x, g->n, 1);
    }
    mc_rt_team_group_end();
}

static void
test_team_groups(void)
{
    static const int threads[] = {1, 2, 3, 4, 8, 12, 16};
    static const int64_t imgs[][2] = {{8, 8}, {6, 6}, {5, 5}, {16, 16}, {3, 2}};
    enum { N = 4000 };
    int64_t *a = malloc(16 * N * sizeof *a), *b = malloc(16 * N * sizeof *b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t ti = 0; ti < sizeof threads / sizeof *threads; ti++)
        for (size_t ii = 0; ii < sizeof imgs / sizeof *imgs; ii++) {
            int seen[16] = {0};
            Groups g = {imgs[ii][0], imgs[ii][1], N, a, b, seen, {0}, 0};
            memset(a, 0, 16 * N * sizeof *a);
            memset(b, 0, 16 * N * sizeof *b);
            mc_rt_set_threads(threads[ti]);
            mc_rt_team_run(groups_body, &g);
            CU_ASSERT_EQUAL(g.bad, 0);
            int ok = 1, G = (int)g.G[0];
            for (int t = 1; t < threads[ti]; t++) ok &= g.G[t] == G; /* one choice for the team */
            CU_ASSERT(ok);
            /* 16 threads, 8 images: 8 groups of 2; one thread: no groups */
            if (threads[ti] == 16 && g.images == 8) CU_ASSERT_EQUAL(G, 8);
            if (threads[ti] == 1) CU_ASSERT_EQUAL(G, 1);
            /* every image by exactly one group (each of its threads counted it once) */
            for (int64_t i = 0; i < g.images; i++) {
                int per = 0;
                for (int t = 0; t < threads[ti]; t++) per += (int)(t * G / threads[ti]) == (int)(i % G);
                CU_ASSERT_EQUAL(seen[i], per);
                for (int64_t k = 0; k < N; k++) ok &= b[i * N + k] == i * 1000 + (N - 1 - k);
            }
            CU_ASSERT(ok);
        }
    mc_rt_set_threads(0);
    free(a);
    free(b);
}

static void
test_threads_setting(void)
{
    mc_rt_set_threads(3);
    CU_ASSERT_EQUAL(mc_rt_get_threads(), 3);
    mc_rt_set_threads(-2);
    CU_ASSERT_EQUAL(mc_rt_get_threads(), omp_get_max_threads());
    mc_rt_set_threads(0);
    CU_ASSERT_EQUAL(mc_rt_get_threads(), omp_get_max_threads());
    CU_ASSERT(mc_rt_get_threads() >= 1);
}

/* ------------------------------------------------------------ timer, memory */

static void
test_timer(void)
{
    uint64_t prev = mc_rt_now_ns();
    int mono = 1;
    for (int i = 0; i < 100000; i++) {
        uint64_t t = mc_rt_now_ns();
        mono &= t >= prev;
        prev = t;
    }
    CU_ASSERT(mono);
    uint64_t t0 = mc_rt_now_ns();
    double m0 = mc_rt_now_ms();
    usleep(20000);
    uint64_t dt = mc_rt_now_ns() - t0;
    double dm = mc_rt_now_ms() - m0;
    CU_ASSERT(dt >= 19000000u && dt < 2000000000u);
    CU_ASSERT(dm >= 19.0 && dm < 2000.0);
}

static void
test_alloc_aligned(void)
{
    static const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 1 << 20};
    static const size_t aligns[] = {8, 16, 64, 256, 4096};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++) {
            unsigned char *p = mc_rt_alloc_aligned(sizes[s], aligns[a]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(p);
            CU_ASSERT_EQUAL((uintptr_t)p % aligns[a], 0);
            memset(p, 0xab, sizes[s]);
            mc_rt_free_aligned(p);
        }
    CU_ASSERT_PTR_NULL(mc_rt_alloc_aligned(100, 48)); /* not a power of two */
    CU_ASSERT_PTR_NULL(mc_rt_alloc_aligned((size_t)-8, 64));
}

/* ------------------------------------------------------------ profiling */

static void
spin_ms(double ms)
{
    double t = mc_rt_now_ms();
    while (mc_rt_now_ms() - t < ms) {
    }
}

static void
test_profile_hook(void)
{
    uint64_t ns[3] = {0}, calls[3] = {0};
    McRtProfile p = {3, ns, calls};

    /* off: nothing is recorded, nothing crashes */
    mc_rt_profile_set(NULL);
    mc_rt_kernel_begin(1);
    spin_ms(1);
    mc_rt_kernel_end(1);
    CU_ASSERT_EQUAL(ns[1], 0);
    CU_ASSERT_PTR_NULL(mc_rt_profile_active);

    mc_rt_profile_set(&p);
    CU_ASSERT_PTR_EQUAL(mc_rt_profile_active, &p);
    mc_rt_kernel_begin(1);
    spin_ms(5);
    mc_rt_kernel_end(1);
    mc_rt_kernel_begin(1);
    spin_ms(5);
    mc_rt_kernel_end(1);
    mc_rt_kernel_begin(2);
    spin_ms(2);
    mc_rt_kernel_end(2);
    mc_rt_kernel_begin(7); /* out of range: ignored */
    mc_rt_kernel_end(7);
    mc_rt_kernel_begin(-1);
    mc_rt_kernel_end(-1);
    CU_ASSERT_EQUAL(calls[0], 0);
    CU_ASSERT_EQUAL(ns[0], 0);
    CU_ASSERT_EQUAL(calls[1], 2);
    CU_ASSERT(ns[1] >= 10000000u && ns[1] < 1000000000u);
    CU_ASSERT_EQUAL(calls[2], 1);
    CU_ASSERT(ns[2] >= 2000000u && ns[2] < ns[1]);

    mc_rt_profile_reset();
    CU_ASSERT_EQUAL(ns[1], 0);
    CU_ASSERT_EQUAL(calls[1], 0);
    CU_ASSERT_EQUAL(calls[2], 0);
    mc_rt_profile_set(NULL);
    mc_rt_kernel_begin(0);
    mc_rt_kernel_end(0);
    CU_ASSERT_EQUAL(calls[0], 0);
}

/* ------------------------------------------------------------ artifacts */

/* The stand-in for a generated model: [2,3,4,5] -> [2,60]. */
static const char FAKE_SRC[] =
    "#include <stdint.h>\n"
    "void mc_rt_parallel_for(void (*)(void *, int64_t, int64_t), void *, int64_t, int64_t);\n"
    "void mc_rt_kernel_begin(int);\n"
    "void mc_rt_kernel_end(int);\n"
    "#define N 120\n"
    "const int64_t fake_weights_size = 64 * 4;\n"
    "const int64_t fake_scratch_size = N * 4;\n"
    "typedef struct { const float *w, *in; float *out, *s; } Ctx;\n"
    "static void k0(void *c, int64_t b, int64_t e) {\n"
    "  Ctx *x = c; for (int64_t i = b; i < e; i++) x->s[i] = 2.0f * x->in[i]; }\n"
    "static void k1(void *c, int64_t b, int64_t e) {\n"
    "  Ctx *x = c; for (int64_t i = b; i < e; i++) x->out[i] = x->s[i] + x->w[i % 64]; }\n"
    "int fake_run(const void *w, const float *in, float *out, void *scratch) {\n"
    "  if (((uintptr_t)w | (uintptr_t)scratch) % 64) return 3;\n"
    "  Ctx c = {w, in, out, scratch};\n"
    "  mc_rt_kernel_begin(0); mc_rt_parallel_for(k0, &c, N, 16); mc_rt_kernel_end(0);\n"
    "  mc_rt_kernel_begin(1); mc_rt_parallel_for(k1, &c, N, 16); mc_rt_kernel_end(1);\n"
    "  return 0; }\n";

#define FAKE_N 120
static float fake_w[64];
static const char *const fake_names[2] = {"double_input", "add \"weights\""};
static const double fake_flops[2] = {120, 120};

static McArtifact
fake_artifact(McArtifactKind emit, const char *obj_path, const char *out, const char *triple)
{
    for (int i = 0; i < 64; i++)
        fake_w[i] = 0.5f * i - 3.0f;
    McArtifact a;
    memset(&a, 0, sizeof a);
    a.emit = emit;
    a.out = out;
    a.triple = triple;
    a.name = "fake";
    a.in_shape.rank = 4;
    a.in_shape.d[0] = 2, a.in_shape.d[1] = 3, a.in_shape.d[2] = 4, a.in_shape.d[3] = 5;
    a.noutputs = 1;
    a.out_shapes[0].rank = 2;
    a.out_shapes[0].d[0] = 2, a.out_shapes[0].d[1] = 60;
    a.out_names[0] = "logits";
    a.scratch_size = FAKE_N * 4;
    a.obj_path = obj_path;
    a.weights = fake_w;
    a.weights_len = sizeof fake_w;
    a.nkernels = 2;
    a.kernel_names = fake_names;
    a.kernel_flops = fake_flops;
    return a;
}

/* Compiles FAKE_SRC with `cc` (any compiler command) into workdir/obj. */
static int
build_fake(const char *cc, const char *obj)
{
    char src[PATH_MAX], o[PATH_MAX];
    wpath(src, "fake.c");
    FILE *f = fopen(src, "w");
    if (!f)
        return -1;
    fputs(FAKE_SRC, f);
    fclose(f);
    int rc = sh("%s -O2 -fPIC -c '%s' -o '%s'", cc, src, wpath(o, obj));
    if (rc)
        fprintf(stderr, "\n  %s\n", cmd_out);
    return rc;
}

static void
fake_input(float *x)
{
    for (int i = 0; i < FAKE_N; i++)
        x[i] = (float)((i * 37) % 23) - 11.0f;
    x[17] = 100.0f; /* image 0: class 17 first, 33 second */
    x[33] = 50.0f;
    x[60 + 5] = 80.0f; /* image 1: class 5 first */
}

static int
write_input(const char *path)
{
    float x[FAKE_N];
    fake_input(x);
    int64_t shape[4] = {2, 3, 4, 5};
    char msg[256];
    return mc_npy_write_f32(path, x, 4, shape, msg, sizeof msg);
}

/* Checks y.npy against 2 * x + w[i % 64]; returns the number of mismatches. */
static int
check_output(const char *path)
{
    McNpy y;
    char msg[256];
    if (mc_npy_read(path, &y, msg, sizeof msg)) {
        fprintf(stderr, "\n  %s\n", msg);
        return -1;
    }
    float x[FAKE_N];
    fake_input(x);
    int bad = y.type != MC_NPY_F32 || y.rank != 2 || y.shape[0] != 2 || y.shape[1] != 60;
    for (int i = 0; !bad && i < FAKE_N; i++) {
        float want = 2.0f * x[i] + (0.5f * (i % 64) - 3.0f);
        bad += ((float *)y.data)[i] != want;
    }
    mc_npy_free(&y);
    return bad;
}

/* A float64 .npy of the right shape, written by hand. */
static void
write_f64_input(const char *path)
{
    const char *hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, 4, 5), }";
    char h[128];
    int len = snprintf(h, sizeof h, "%s", hdr);
    while ((10 + len + 1) % 64)
        h[len++] = ' ';
    h[len++] = '\n';
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(len & 255, f);
    fputc(len >> 8, f);
    fwrite(h, 1, len, f);
    double d[FAKE_N] = {0};
    fwrite(d, sizeof d, 1, f);
    fclose(f);
}

static int fake_ok; /* the host fake object was built */

static void
test_artifact_exe(void)
{
    char obj[PATH_MAX], exe[PATH_MAX], in[PATH_MAX], out[PATH_MAX], bad[PATH_MAX];
    fake_ok = build_fake("cc", "fake.o") == 0;
    CU_ASSERT_FATAL(fake_ok);
    McArtifact a = fake_artifact(MC_ART_EXE, wpath(obj, "fake.o"), wpath(exe, "fake-exe"), NULL);
    McErr err = {{0}};
    int rc = mc_artifact_write(&a, &err);
    if (rc)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);

    CU_ASSERT_EQUAL(write_input(wpath(in, "x.npy")), 0);
    wpath(out, "y.npy");
    CU_ASSERT_EQUAL(sh("'%s' --input '%s' --output '%s'", exe, in, out), 0);
    CU_ASSERT_EQUAL(check_output(out), 0);
    CU_ASSERT_EQUAL(sh("'%s' --input '%s' --output '%s' --threads 3", exe, in, out), 0);
    CU_ASSERT_EQUAL(check_output(out), 0);

    /* bench line */
    CU_ASSERT_EQUAL(sh("'%s' --input '%s' --bench 7", exe, in), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "median "));
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, " ms, min "));
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "images/s"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "7 runs"));
    double med = -1;
    const char *m = strstr(cmd_out, "median ");
    if (m)
        med = atof(m + 7);
    CU_ASSERT(med >= 0 && med < 1000);

    /* profile: both kernels, each with one call per run */
    CU_ASSERT_EQUAL(sh("'%s' --profile 5", exe), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "double_input"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "add \"weights\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "GFLOP/s"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "5 runs"));

    /* wrong shape, wrong dtype, missing file, bad usage */
    float z[10] = {0};
    int64_t sh1[1] = {10};
    char msg[256];
    CU_ASSERT_EQUAL(mc_npy_write_f32(wpath(bad, "bad.npy"), z, 1, sh1, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(sh("'%s' --input '%s' --output '%s'", exe, bad, out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "shape [10]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "[2,3,4,5]"));
    write_f64_input(bad);
    CU_ASSERT_EQUAL(sh("'%s' --input '%s' --output '%s'", exe, bad, out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "float64"));
    CU_ASSERT_EQUAL(sh("'%s' --input '%s/none.npy' --output '%s'", exe, workdir, out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "none.npy"));
    CU_ASSERT_EQUAL(sh("'%s' --input '%s' --bench 0", exe, in), 2);
    CU_ASSERT_EQUAL(sh("'%s' --frobnicate", exe), 2);
    CU_ASSERT_EQUAL(sh("'%s' --help", exe), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "--bench N"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "[2,3,4,5]"));
}

static void
test_artifact_reproducible(void)
{
    if (!fake_ok)
        return;
    char obj[PATH_MAX], p1[PATH_MAX], p2[PATH_MAX], q1[PATH_MAX], q2[PATH_MAX];
    wpath(obj, "fake.o");
    static const McArtifactKind kinds[] = {MC_ART_EXE, MC_ART_OBJ, MC_ART_SHARED};
    static const char *const ext[] = {"", ".o", ".so"};
    for (int k = 0; k < 3; k++) {
        snprintf(p1, sizeof p1, "%s/rep1%s", workdir, ext[k]);
        snprintf(p2, sizeof p2, "%s/rep2%s", workdir, ext[k]);
        McErr err = {{0}};
        McArtifact a = fake_artifact(kinds[k], obj, p1, NULL);
        CU_ASSERT_EQUAL_FATAL(mc_artifact_write(&a, &err), 0);
        a.out = p2;
        CU_ASSERT_EQUAL_FATAL(mc_artifact_write(&a, &err), 0);
        CU_ASSERT(same_file(p1, p2));
        if (k) {
            snprintf(q1, sizeof q1, "%s/rep1.weights", workdir);
            snprintf(q2, sizeof q2, "%s/rep2.weights", workdir);
            CU_ASSERT(same_file(q1, q2));
            /* the headers differ only in the file name */
            snprintf(q1, sizeof q1, "%s/rep1.h", workdir);
            snprintf(q2, sizeof q2, "%s/rep2.h", workdir);
            CU_ASSERT_EQUAL(sh("sed s/rep2/rep1/g '%s' | cmp - '%s'", q2, q1), 0);
            CU_ASSERT_EQUAL(sh("grep -c rep1 '%s'", q1), 0);
            CU_ASSERT_EQUAL(atoi(cmd_out), 3);
        }
    }
}

/* The prebuilt runtime (artifact_rt.c): objects compiled once by
 * mc_artifact_prebuild give every kind of artifact byte for byte as the
 * runtime's sources do; they are used (a damaged object breaks the link)
 * only while their MANIFEST matches (a changed one, or changed sources:
 * compiled from the sources again). */
static void
test_artifact_prebuilt(void)
{
    if (!fake_ok)
        return;
    char obj[PATH_MAX], pre[PATH_MAX], p1[PATH_MAX], p2[PATH_MAX], rt[PATH_MAX], q[PATH_MAX + 64], why[600];
    char *save = strdup(getenv("MAMBAC_RUNTIME_DIR"));
    snprintf(rt, sizeof rt, "%s", save);
    unsetenv("MAMBAC_RUNTIME_DIR"); /* set: always the sources */
    wpath(obj, "fake.o");
    wpath(pre, "prebuilt");
    McErr err = {{0}};
    int rc = mc_artifact_prebuild(pre, "cc", 0, &err);
    if (rc)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    struct stat st0, st1;
    snprintf(q, sizeof q, "%s/exe/rt.o", pre);
    CU_ASSERT_EQUAL(stat(q, &st0), 0);
    CU_ASSERT_EQUAL(mc_artifact_prebuild(pre, "cc", 0, &err), 0); /* up to date: not compiled again */
    CU_ASSERT(stat(q, &st1) == 0 && st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec &&
              st1.st_mtim.tv_sec == st0.st_mtim.tv_sec);
    setenv("MAMBAC_PREBUILT_DIR", pre, 1);
    CU_ASSERT_EQUAL(mc_artifact_prebuilt_find(rt, "cc", 0, 0, p1, sizeof p1, why, sizeof why), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(p1, "/prebuilt/exe"));
    CU_ASSERT_EQUAL(mc_artifact_prebuilt_find(rt, "cc", 1, 0, p1, sizeof p1, why, sizeof why), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(p1, "/prebuilt/pic"));
    static const McArtifactKind kinds[] = {MC_ART_EXE, MC_ART_OBJ, MC_ART_SHARED};
    static const char *const ext[] = {"", ".o", ".so"};
    for (int k = 0; k < 3; k++) {
        snprintf(p1, sizeof p1, "%s/pre%s", workdir, ext[k]);
        snprintf(p2, sizeof p2, "%s/src%s", workdir, ext[k]);
        McArtifact a = fake_artifact(kinds[k], obj, p1, NULL);
        setenv("MAMBAC_PREBUILT_DIR", pre, 1);
        CU_ASSERT_EQUAL_FATAL(mc_artifact_write(&a, &err), 0);
        setenv("MAMBAC_PREBUILT_DIR", "", 1);
        a.out = p2;
        CU_ASSERT_EQUAL_FATAL(mc_artifact_write(&a, &err), 0);
        CU_ASSERT(same_file(p1, p2));
    }
    /* the same artifacts, compiled by the runtime's sources, run the same */
    char in[PATH_MAX], out[PATH_MAX];
    CU_ASSERT_EQUAL(write_input(wpath(in, "x.npy")), 0);
    snprintf(p1, sizeof p1, "%s/pre", workdir);
    CU_ASSERT_EQUAL(sh("'%s' --input '%s' --output '%s'", p1, in, wpath(out, "ypre.npy")), 0);
    CU_ASSERT_EQUAL(check_output(out), 0);

    /* used: a damaged object breaks the link ... */
    setenv("MAMBAC_PREBUILT_DIR", pre, 1);
    McArtifact a = fake_artifact(MC_ART_EXE, obj, wpath(p1, "damaged"), NULL);
    char img[PATH_MAX + 64];
    snprintf(img, sizeof img, "%s/exe-image", pre);
    int images = access(img, F_OK) == 0;
    snprintf(q, sizeof q, "%s/%s/npy.o", pre, images ? "exe-image" : "exe");
    CU_ASSERT_EQUAL(sh("cp '%s' '%s.save' && echo damaged > '%s'", q, q, q), 0);
    CU_ASSERT_EQUAL(mc_artifact_write(&a, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "npy.o"));
    /* ... unless its MANIFEST does not match: then the sources */
    snprintf(q, sizeof q, "%s/%s/MANIFEST", pre, images ? "exe-image" : "exe");
    CU_ASSERT_EQUAL(sh("cp '%s' '%s.save' && sed -i s/-O2/-O3/ '%s'", q, q, q), 0);
    CU_ASSERT_EQUAL(mc_artifact_write(&a, &err), 0);
    CU_ASSERT_EQUAL(sh("mv '%s.save' '%s' && cd '%s/%s' && mv npy.o.save npy.o", q, q, pre, images ? "exe-image" : "exe"), 0);
    /* changed sources: prebuilt from a copy of the runtime, then one of
     * its headers edited: not used */
    char rt2[PATH_MAX], pre2[PATH_MAX];
    CU_ASSERT_EQUAL(sh("cp -r '%s' '%s'", rt, wpath(rt2, "rtcopy")), 0);
    setenv("MAMBAC_RUNTIME_DIR", rt2, 1);
    CU_ASSERT_EQUAL(mc_artifact_prebuild(wpath(pre2, "prebuilt2"), "cc", 0, &err), 0);
    unsetenv("MAMBAC_RUNTIME_DIR");
    setenv("MAMBAC_PREBUILT_DIR", pre2, 1);
    CU_ASSERT_EQUAL(mc_artifact_prebuilt_find(rt2, "cc", 0, 0, p1, sizeof p1, why, sizeof why), 1);
    CU_ASSERT_EQUAL(mc_artifact_prebuilt_find(rt, "cc", 0, 0, p1, sizeof p1, why, sizeof why), 0); /* other flags (-I) */
    CU_ASSERT_EQUAL(sh("echo '/* edited */' >> '%s/exe/mc_model_glue.h'", rt2), 0);
    CU_ASSERT_EQUAL(mc_artifact_prebuilt_find(rt2, "cc", 0, 0, p1, sizeof p1, why, sizeof why), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not those of this compiler and these sources"));
    /* a compiler that is not there */
    CU_ASSERT_EQUAL(mc_artifact_prebuilt_find(rt2, "nonexistent-cc", 0, 0, p1, sizeof p1, why, sizeof why), 0);
    unsetenv("MAMBAC_PREBUILT_DIR");
    setenv("MAMBAC_RUNTIME_DIR", save, 1);
    free(save);
}

static void
check_top(const char *out)
{
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "image 0: 17 (205.5000) 33 (113.5000)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "image 1: 5 (157.5000)"));
}

static void
test_artifact_obj_embed(void)
{
    if (!fake_ok)
        return;
    char obj[PATH_MAX], base[PATH_MAX], in[PATH_MAX], hdr[PATH_MAX], p[PATH_MAX];
    wpath(obj, "fake.o");
    McErr err = {{0}};
    McArtifact a = fake_artifact(MC_ART_OBJ, obj, wpath(p, "emb/fakemodel.o"), NULL);
    mkdir(wpath(p, "emb"), 0755);
    wpath(p, "emb/fakemodel.o");
    int rc = mc_artifact_write(&a, &err);
    if (rc)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    wpath(base, "emb/fakemodel");
    snprintf(hdr, sizeof hdr, "%s.h", base);
    CU_ASSERT_EQUAL(sh("grep -c -e '#define FAKE_INPUT_SHAPE {2, 3, 4, 5}' "
                       "-e '#define FAKE_OUTPUT_COUNT 120' -e '#define FAKE_SCRATCH_SIZE 480ull' "
                       "-e '#define FAKE_WEIGHTS_SIZE 256ull' -e '#define FAKE_ALIGNMENT 64' "
                       "-e '^int fake_run(const void \\*weights, const float \\*input, float "
                       "\\*output, void \\*scratch);' '%s'",
                       hdr),
                    0);
    CU_ASSERT_EQUAL(atoi(cmd_out), 6);
    snprintf(p, sizeof p, "%s.weights", base);
    struct stat st;
    CU_ASSERT(stat(p, &st) == 0 && st.st_size == 256);
    /* the object holds the runtime: only libgomp and libm are needed */
    CU_ASSERT_EQUAL(sh("nm '%s.o' | grep -c ' [TW] mc_rt_parallel_for$'", base), 0);

    CU_ASSERT_EQUAL(write_input(wpath(in, "x.npy")), 0);
    /* examples/embed, as documented: make -f .../Makefile MODEL=OUT */
    rc = sh("cd '%s' && make -s -f '%s/examples/embed/Makefile' MODEL='%s' embed",
            workdir, srcdir, base);
    if (rc)
        fprintf(stderr, "\n  %s\n", cmd_out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sh("'%s/embed' '%s.weights' '%s' 2", workdir, base, in), 0);
    check_top(cmd_out);
    /* a wrong weights file is refused */
    CU_ASSERT_EQUAL(sh("head -c 256 /dev/zero > '%s/zero.weights' && '%s/embed' '%s/zero.weights'",
                       workdir, workdir, workdir),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "not compiled with this model"));

    /* shared library */
    a.emit = MC_ART_SHARED;
    a.out = base;
    CU_ASSERT_EQUAL_FATAL(mc_artifact_write(&a, &err), 0);
    rc = sh("cd '%s' && rm -f embed-so && make -s -f '%s/examples/embed/Makefile' MODEL='%s' "
            "embed-so",
            workdir, srcdir, base);
    if (rc)
        fprintf(stderr, "\n  %s\n", cmd_out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sh("'%s/embed-so' '%s.weights' '%s'", workdir, base, in), 0);
    check_top(cmd_out);
}

/* Two models in one program: the runtime copies inside the objects must not
 * clash (weak definitions). */
static void
test_artifact_two_models(void)
{
    if (!fake_ok)
        return;
    char obj[PATH_MAX], p[PATH_MAX];
    wpath(obj, "fake.o");
    McErr err = {{0}};
    McArtifact a = fake_artifact(MC_ART_OBJ, obj, wpath(p, "m1"), NULL);
    CU_ASSERT_EQUAL_FATAL(mc_artifact_write(&a, &err), 0);
    /* the second model: same code under another prefix */
    CU_ASSERT_EQUAL_FATAL(sh("sed 's/fake_/other_/g' '%s/fake.c' > '%s/other.c' && "
                             "cc -O2 -fPIC -c '%s/other.c' -o '%s/other.o'",
                             workdir, workdir, workdir, workdir),
                          0);
    McArtifact b = fake_artifact(MC_ART_OBJ, wpath(obj, "other.o"), wpath(p, "m2"), NULL);
    b.name = "other";
    CU_ASSERT_EQUAL_FATAL(mc_artifact_write(&b, &err), 0);
    const char *prog = "#define MC_MODEL_NO_ALIASES\n#include \"m1.h\"\n#include \"m2.h\"\n"
                       "#include <stdio.h>\n#include <stdlib.h>\n"
                       "int main(void){ float *w, *s, x[120], y[120];\n"
                       " if (posix_memalign((void**)&w, 64, 256) || posix_memalign((void**)&s, "
                       "64, 512)) return 9;\n"
                       " for (int i=0;i<64;i++) w[i]=1; for (int i=0;i<120;i++) x[i]=i;\n"
                       " if (fake_run(w,x,y,s) || y[7]!=15) return 1;\n"
                       " if (other_run(w,x,y,s) || y[9]!=19) return 2;\n"
                       " printf(\"ok %d %d\\n\", FAKE_INPUT_COUNT, OTHER_OUTPUT_COUNT); return 0; }\n";
    FILE *f = fopen(wpath(p, "two.c"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(prog, f);
    fclose(f);
    int rc = sh("cd '%s' && cc -O2 -I. two.c m1.o m2.o -fopenmp -lm -o two && ./two", workdir);
    if (rc)
        fprintf(stderr, "\n  %s\n", cmd_out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "ok 120 120"));
}

static void
test_artifact_errors(void)
{
    char p[PATH_MAX], obj[PATH_MAX];
    McErr err = {{0}};
    McArtifact a = fake_artifact(MC_ART_EXE, wpath(obj, "fake.o"), wpath(p, "e1"), NULL);
    a.name = "bad-name";
    CU_ASSERT_EQUAL(mc_artifact_write(&a, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a C identifier"));

    a = fake_artifact(MC_ART_EXE, wpath(obj, "fake.o"), wpath(p, "e1"), "sparc64-linux-gnu");
    CU_ASSERT_EQUAL(mc_artifact_write(&a, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "sparc64-linux-gnu"));

    /* an object that lacks the entry point: the linker's error comes back */
    a = fake_artifact(MC_ART_EXE, wpath(obj, "fake.o"), wpath(p, "e1"), NULL);
    a.name = "missing";
    CU_ASSERT_EQUAL(mc_artifact_write(&a, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "missing_run"));
    CU_ASSERT(access(p, F_OK) != 0);

    a = fake_artifact(MC_ART_EXE, wpath(obj, "nonexistent.o"), wpath(p, "e1"), NULL);
    CU_ASSERT_EQUAL(mc_artifact_write(&a, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nonexistent.o"));

    char buf[64];
    CU_ASSERT_STRING_EQUAL(mc_artifact_symbol("spatialmamba-t", buf, sizeof buf), "spatialmamba_t");
    CU_ASSERT_STRING_EQUAL(mc_artifact_symbol("3x.y", buf, sizeof buf), "_3x_y");
    CU_ASSERT_STRING_EQUAL(mc_artifact_symbol("", buf, sizeof buf), "model");
    /* FNV-1a 64 of "a" (published test vector) */
    CU_ASSERT_EQUAL(mc_artifact_fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
}

static void
test_artifact_from_kprogram(void)
{
    Buffer bufs[3];
    Kernel ks[2];
    memset(bufs, 0, sizeof bufs);
    memset(ks, 0, sizeof ks);
    bufs[0].kind = BUF_OUTPUT;
    bufs[0].shape.rank = 2, bufs[0].shape.d[0] = 1, bufs[0].shape.d[1] = 1000;
    bufs[2].kind = BUF_INPUT;
    bufs[2].shape.rank = 4;
    bufs[2].shape.d[0] = 1, bufs[2].shape.d[1] = 3, bufs[2].shape.d[2] = 224,
    bufs[2].shape.d[3] = 224;
    ks[0].name = "stem.conv", ks[0].flops = 1.5e9;
    ks[1].name = "head", ks[1].flops = 2048000;
    KProgram p = {.name = "tiny", .bufs = bufs, .nbufs = 3, .k = ks, .nk = 2, .input_buf = 2, .output_bufs = {0}, .noutputs = 1,
                  .weights_bytes = 1000, .scratch_bytes = 4096, .unplanned_bytes = 8192};
    McArtifact a;
    memset(&a, 0, sizeof a);
    McErr err;
    CU_ASSERT_EQUAL_FATAL(mc_artifact_from_kprogram(&a, &p, "tiny", &err), 0);
    CU_ASSERT_STRING_EQUAL(a.name, "tiny");
    CU_ASSERT_EQUAL(a.in_shape.rank, 4);
    CU_ASSERT_EQUAL(a.in_shape.d[2], 224);
    CU_ASSERT_EQUAL(a.noutputs, 1);
    CU_ASSERT_EQUAL(a.out_shapes[0].d[1], 1000);
    CU_ASSERT_EQUAL(a.scratch_size, 4096);
    CU_ASSERT_EQUAL(a.nkernels, 2);
    CU_ASSERT_STRING_EQUAL(a.kernel_names[1], "head");
    CU_ASSERT_EQUAL(a.kernel_flops[0], 1.5e9);
    mc_artifact_release(&a);
    CU_ASSERT_PTR_NULL(a.kernel_names);
    p.input_buf = 7;
    CU_ASSERT_EQUAL(mc_artifact_from_kprogram(&a, &p, "tiny", &err), -1);
}

static void
test_artifact_cc_choice(void)
{
    char cc[256];
    McErr err;
    char *save_m = getenv("MAMBAC_CC") ? strdup(getenv("MAMBAC_CC")) : NULL;
    char *save_c = getenv("CC") ? strdup(getenv("CC")) : NULL;
    unsetenv("MAMBAC_CC");
    unsetenv("CC");
    CU_ASSERT_EQUAL(mc_artifact_cc(NULL, cc, sizeof cc, &err), 0);
    CU_ASSERT_STRING_EQUAL(cc, "cc");
    CU_ASSERT_EQUAL(mc_artifact_cc("aarch64-unknown-linux-gnu", cc, sizeof cc, &err), 0);
    CU_ASSERT_STRING_EQUAL(cc, "aarch64-linux-gnu-gcc");
    CU_ASSERT_EQUAL(mc_artifact_cc("arm64-linux-gnu", cc, sizeof cc, &err), 0);
    CU_ASSERT_STRING_EQUAL(cc, "aarch64-linux-gnu-gcc");
    CU_ASSERT_EQUAL(mc_artifact_cc("riscv64-linux-gnu", cc, sizeof cc, &err), 0);
    CU_ASSERT_STRING_EQUAL(cc, "riscv64-linux-gnu-gcc");
    CU_ASSERT_EQUAL(mc_artifact_cc("mips-linux-gnu", cc, sizeof cc, &err), -1);
    setenv("CC", "gcc-12", 1);
    CU_ASSERT_EQUAL(mc_artifact_cc(NULL, cc, sizeof cc, &err), 0);
    CU_ASSERT_STRING_EQUAL(cc, "gcc-12");
    CU_ASSERT_EQUAL(mc_artifact_cc("riscv64-linux-gnu", cc, sizeof cc, &err), 0);
    CU_ASSERT_STRING_EQUAL(cc, "riscv64-linux-gnu-gcc"); /* $CC is the host's */
    setenv("MAMBAC_CC", "clang-19 --target=x", 1);
    CU_ASSERT_EQUAL(mc_artifact_cc("riscv64-linux-gnu", cc, sizeof cc, &err), 0);
    CU_ASSERT_STRING_EQUAL(cc, "clang-19 --target=x");
    if (save_m) setenv("MAMBAC_CC", save_m, 1); else unsetenv("MAMBAC_CC");
    if (save_c) setenv("CC", save_c, 1); else unsetenv("CC");
    free(save_m);
    free(save_c);
}

/* ------------------------------------------------------------ the weights object */

/* The ELF object of the weights (backends/elf_obj.c) for arch, linked by
 * cc into a program that prints the symbol's address modulo 64 and the
 * FNV-1a of its bytes, run by `run` ("" for the host, or qemu): the linker
 * takes it, the bytes are the blob's and a zero, the section is 64-byte
 * aligned, the symbol a global object of that size, the stack not
 * executable (no .note.GNU-stack: ld warns and makes it RWE). */
static void
elf_case(const char *arch, const char *cc, const char *run, size_t n)
{
    if (!have(cc) || (*run && !have(run))) {
        printf("\n    skipped %s: needs %s%s%s (sh scripts/install-cross.sh) ", arch, cc, *run ? ", " : "", run);
        return;
    }
    unsigned char *blob = malloc(n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blob);
    for (size_t i = 0; i < n; i++)
        blob[i] = (unsigned char)((i * 2654435761u) >> 13);
    blob[n] = 0;
    char obj[PATH_MAX], src[PATH_MAX], exe[PATH_MAX], name[64];
    snprintf(name, sizeof name, "blob-%s-%zu.o", arch, n);
    McErr err = {{0}};
    int rc = mc_elf_blob_write(wpath(obj, name), arch, ".rodata.mc_test_blob", "mc_test_blob", 64, blob, n, &err);
    if (rc)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sh("readelf -sW '%s' | grep -c ' OBJECT  GLOBAL DEFAULT    1 mc_test_blob$'", obj), 0);
    CU_ASSERT_EQUAL(sh("nm -S '%s' | grep -c '^0000000000000000 %016zx R mc_test_blob$'", obj, n + 1), 0);
    CU_ASSERT_EQUAL(sh("readelf -SW '%s' | grep -c '\\.rodata\\.mc_test_blob .* A  0   0 64$'", obj), 0);
    /* machine and flags (riscv64: the float ABI) as on cc's own objects */
    CU_ASSERT_EQUAL(sh("cd '%s' && echo 'int x;' > empty.c && %s -c empty.c -o empty-%s.o && "
                       "readelf -h empty-%s.o | grep -e Machine -e Flags > want.txt && "
                       "readelf -h '%s' | grep -e Machine -e Flags | cmp - want.txt",
                       workdir, cc, arch, arch, obj),
                    0);
    FILE *f = fopen(wpath(src, "blob_main.c"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "#include <stdint.h>\n#include <stdio.h>\nextern const unsigned char mc_test_blob[];\n"
               "int main(void) {\n  uint64_t h = 0xcbf29ce484222325ull;\n"
               "  for (unsigned long i = 0; i < %zuul; i++) { h ^= mc_test_blob[i]; h *= 0x100000001b3ull; }\n"
               "  printf(\"%%d %%016llx\\n\", (int)((uintptr_t)mc_test_blob %% 64), (unsigned long long)h);\n"
               "  return 0;\n}\n",
            n + 1);
    fclose(f);
    snprintf(exe, sizeof exe, "%s.exe", obj);
    rc = sh("%s %s -O2 '%s' '%s' -o '%s'", cc, *run ? "-static" : "", src, obj, exe);
    if (rc || strstr(cmd_out, "warning"))
        fprintf(stderr, "\n  %s\n", cmd_out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NULL(strstr(cmd_out, "executable stack"));
    CU_ASSERT_EQUAL(sh("readelf -lW '%s' | grep GNU_STACK | grep -c 'RW '", exe), 0);
    char want[64];
    snprintf(want, sizeof want, "0 %016llx\n", (unsigned long long)mc_artifact_fnv1a64(blob, n + 1));
    CU_ASSERT_EQUAL(sh("%s '%s'", run, exe), 0);
    CU_ASSERT_STRING_EQUAL(cmd_out, want);
    free(blob);
}

static void
test_elf_weights(void)
{
#if defined(__x86_64__)
    elf_case("x86_64", "cc", "", 100003);
    elf_case("x86_64", "cc", "", 0);
#endif
    elf_case("aarch64", "aarch64-linux-gnu-gcc", "qemu-aarch64", 100003);
    elf_case("riscv64", "riscv64-linux-gnu-gcc", "qemu-riscv64", 100003);
    /* an architecture it has no machine number for, a path it cannot write */
    char p[PATH_MAX];
    McErr err = {{0}};
    CU_ASSERT_EQUAL(mc_elf_blob_write(wpath(p, "x.o"), "sparc64", ".rodata.x", "x", 64, "ab", 2, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "sparc64"));
    CU_ASSERT_EQUAL(mc_elf_blob_write(wpath(p, "none/x.o"), "x86_64", ".rodata.x", "x", 64, "ab", 2, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "none/x.o"));
}

/* Cross: model object from a cross compiler (for riscv64 with RVV, clang
 * emitting vector code), exe linked by Debian's cross gcc, run under qemu. */
static void
cross_case(const char *triple, const char *model_cc, const char *qemu, const char *qemu_cpu)
{
    char gcc[128], obj[64], objp[PATH_MAX], exe[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    snprintf(gcc, sizeof gcc, "%.*s-linux-gnu-gcc", (int)strcspn(triple, "-"), triple);
    if (!have(gcc) || !have(qemu) || !have(model_cc)) {
        printf("\n    skipped %s (%s): needs %s, %s (sh scripts/install-cross.sh) ", triple,
               model_cc, gcc, qemu);
        return;
    }
    snprintf(obj, sizeof obj, "fake-%s-%d.o", triple, (int)strlen(model_cc));
    char mcc[256];
    if (!strncmp(model_cc, "clang", 5))
        snprintf(mcc, sizeof mcc, "%s --target=%s -march=rv64gcv -O3", model_cc, triple);
    else
        snprintf(mcc, sizeof mcc, "%s", model_cc);
    CU_ASSERT_EQUAL_FATAL(build_fake(mcc, obj), 0);
    snprintf(exe, sizeof exe, "%s/exe-%s", workdir, obj);
    McArtifact a = fake_artifact(MC_ART_EXE, wpath(objp, obj), exe, triple);
    McErr err = {{0}};
    int rc = mc_artifact_write(&a, &err);
    if (rc)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sh("file '%s' | grep -c -i -e aarch64 -e RISC-V", exe), 0);
    /* reproducible for cross targets too */
    char exe2[PATH_MAX + 8];
    snprintf(exe2, sizeof exe2, "%s.again", exe);
    a.out = exe2;
    CU_ASSERT_EQUAL(mc_artifact_write(&a, &err), 0);
    CU_ASSERT(same_file(exe, exe2));
    CU_ASSERT_EQUAL(write_input(wpath(in, "x.npy")), 0);
    wpath(out, "ycross.npy");
    remove(out);
    rc = sh("%s %s -L /usr/%.*s-linux-gnu '%s' --input '%s' --output '%s' --threads 2", qemu,
            qemu_cpu, (int)strcspn(triple, "-"), triple, exe, in, out);
    if (rc)
        fprintf(stderr, "\n  %s\n", cmd_out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(check_output(out), 0);
    rc = sh("%s %s -L /usr/%.*s-linux-gnu '%s' --bench 3", qemu, qemu_cpu,
            (int)strcspn(triple, "-"), triple, exe);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(cmd_out, "median "));
}

static void
test_cross_aarch64(void)
{
    cross_case("aarch64-linux-gnu", "aarch64-linux-gnu-gcc", "qemu-aarch64", "");
}

static void
test_cross_riscv64_rvv(void)
{
    cross_case("riscv64-linux-gnu", "riscv64-linux-gnu-gcc", "qemu-riscv64",
               "-cpu rv64,v=true,vlen=256,vext_spec=v1.0");
    /* vector code (clang -march=rv64gcv), linked by gcc, run with RVV on */
    cross_case("riscv64-linux-gnu", "clang-19", "qemu-riscv64",
               "-cpu rv64,v=true,vlen=256,vext_spec=v1.0");
}

/* ------------------------------------------------------------ main */

static int
suite_init(void)
{
    if (!realpath("..", srcdir))
        return -1;
    char rt[PATH_MAX + 16];
    snprintf(rt, sizeof rt, "%s/runtime", srcdir);
    if (access(rt, F_OK)) /* not run from tests/: try the source dir of this file */
        return -1;
    if (!getenv("MAMBAC_RUNTIME_DIR"))
        setenv("MAMBAC_RUNTIME_DIR", rt, 1);
    const char *tmp = getenv("TMPDIR");
    snprintf(workdir, sizeof workdir, "%s/mc-test-runtime-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(workdir) ? 0 : -1;
}

static int
suite_clean(void)
{
    if (workdir[0] && !getenv("MC_KEEP_TEST_DIR"))
        sh("rm -rf '%s'", workdir);
    return 0;
}

int
main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"parallel_for covers each index once", test_parallel_for_covers},
        {"parallel_for inline and nested", test_parallel_for_inline_and_nested},
        {"team: kernels in order, barriers, profile", test_team},
        {"team: image groups", test_team_groups},
        {"thread count setting", test_threads_setting},
        {"monotonic timer", test_timer},
        {"aligned allocation", test_alloc_aligned},
        {"profile hook accounting", test_profile_hook},
        {"exe artifact: run, bench, profile, bad inputs", test_artifact_exe},
        {"artifacts are byte-identical", test_artifact_reproducible},
        {"prebuilt runtime: the same artifacts as from the sources", test_artifact_prebuilt},
        {"obj/shared artifact + examples/embed", test_artifact_obj_embed},
        {"two models in one program", test_artifact_two_models},
        {"artifact errors", test_artifact_errors},
        {"compiler choice", test_artifact_cc_choice},
        {"weights object: ELF for x86_64, aarch64, riscv64", test_elf_weights},
        {"metadata from a kernel program", test_artifact_from_kprogram},
        {"cross aarch64 under qemu", test_cross_aarch64},
        {"cross riscv64 (RVV) under qemu", test_cross_riscv64_rvv},
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("runtime", suite_init, suite_clean);
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++)
        CU_add_test(s, tests[i].name, tests[i].fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
