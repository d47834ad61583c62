/* bench/hostrun.c -- times one model object written by `mambac compile ...
 * --emit obj -o X` at several thread counts, on a machine the weights file
 * does not travel to (bench/host links one driver per object).
 *
 * Takes: X.h at build time (-DMODEL_H='"X.h"', -DHR_PREFIX=<the header's
 * symbol prefix, e.g. tiny>, optionally -DHR_PRECISION='"bf16"' and
 * -DHR_CPU='"sapphirerapids"' for the report), linked with X.o, -fopenmp and
 * -lm; at run time the options below.
 * Produces: on stdout one CSV row per thread count (or one JSON object):
 * median / min / max of the timed runs, images/s, whether the output was
 * finite and its sum; with --profile, per thread count and kernel the
 * runtime's McRtProfile (ms per run, share of the run, GFLOP/s, calls per
 * run) as CSV rows in the --profile-csv file.  Progress goes to stderr.
 * Owns: the weights, input, output and scratch buffers it allocates.
 *
 * The weights are synthetic, not read from X.weights: every 32-bit word is a
 * small normal number both as one float32 and as each of its two bf16 halves
 * (magnitude 0.009-0.012, sign and low mantissa bits varied by position), so
 * an fp32 or a bf16 weights blob meets no NaN, infinity or denormal; a run
 * whose output is not finite fails (exit 1) rather than timing garbage, and
 * each row says how many of the scratch's words are subnormal afterwards.
 *
 *   hostrun [--threads 1,2,4,8,16] [--runs N] [--warmup N] [--max-s S]
 *           [--profile N --profile-csv FILE] [--kernels FILE] [--format csv|json]
 *           [--weights X.weights]
 *
 * --weights reads the real blob instead (size and FNV-1a hash checked), to
 * tell the synthetic weights' effects from the code's.  Every row also gives
 * the largest difference of the output from the first thread count's,
 * relative to that output's largest magnitude (0 when the code computes the
 * same at every thread count; a race shows here first).
 * --kernels FILE names the kernels in the profile: one line per kernel,
 * "index<TAB>kind<TAB>name<TAB>flops" (bench/host writes it from
 * `mambac dump --format kernels`); without it they are k0, k1, ...
 * Exit status: 0 ok, 1 a failed run / unusable file / this CPU cannot run
 * the object, 2 bad usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc_rt.h"

#ifndef MODEL_H
#error "build with -DMODEL_H='\"X.h\"' -DHR_PREFIX=<symbol prefix> (see bench/host)"
#endif
#include MODEL_H

#ifndef HR_PREFIX
#error "build with -DHR_PREFIX=<the model's symbol prefix, e.g. tiny>"
#endif
#ifdef MC_MODEL_NOUTPUTS
#error "hostrun times models with one output"
#endif
#ifndef HR_PRECISION
#define HR_PRECISION "fp32"
#endif
#ifndef HR_CPU
#define HR_CPU "host"
#endif

#define HR_CAT2(a, b) a##b
#define HR_CAT(a, b) HR_CAT2(a, b)
#define HR_CHECK_CPU HR_CAT(HR_PREFIX, _check_cpu)
#define HR_VARIANT HR_CAT(HR_PREFIX, _cpu_variant)

#define HR_MAX_THREADS 64   /* entries of --threads */
#define HR_MAX_RUNS 100000
#define HR_PROFILE_SLOTS 65536 /* kernels a profile table holds without --kernels */

static const char *prog = "hostrun";

typedef struct HrKernel {
    char kind[32];
    char name[160];
    double flops;
} HrKernel;

typedef struct HrOpts {
    int threads[HR_MAX_THREADS];
    int nthreads;
    long runs, warmup, nprof;
    double max_s;
    const char *profile_csv, *kernels, *format, *weights;
} HrOpts;

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--threads 1,2,4,8,16] [--runs N] [--warmup N] [--max-s S]\n"
            "          [--profile N --profile-csv FILE] [--kernels FILE] [--format csv|json]\n"
            "Times model '%s' (%s, %s, batch %d) on synthetic weights: per thread count,\n"
            "N warm-up runs then up to --runs timed runs (fewer once --max-s seconds are\n"
            "spent, at least 3); prints median/min/max ms and images/s.\n"
            "  --threads LIST     thread counts (default 1,2,4,8,16)\n"
            "  --runs N           timed runs per thread count (default 20)\n"
            "  --warmup N         untimed runs first (default 2)\n"
            "  --max-s S          stop timing a thread count after S seconds (default 0: never)\n"
            "  --profile N        N runs per thread count with the per-kernel profile\n"
            "  --profile-csv FILE where the profile's rows go (needed with --profile)\n"
            "  --kernels FILE     kernel names: index<TAB>kind<TAB>name<TAB>flops per line\n"
            "  --format csv|json  stdout format (default csv)\n"
            "  --weights FILE     the real weights (X.weights) instead of synthetic ones\n",
            prog, MC_MODEL_NAME, HR_PRECISION, HR_CPU, (int)MC_MODEL_BATCH);
}

static int
bad_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "%s: error: %s%s%s (see --help)\n", prog, msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

/* A whole decimal number in [lo, hi], or -1. */
static long
parse_long(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    return v;
}

static int
parse_threads(HrOpts *o, const char *s)
{
    o->nthreads = 0;
    char buf[512];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        long t = parse_long(tok, 1, 4096);
        if (t < 0 || o->nthreads == HR_MAX_THREADS)
            return -1;
        o->threads[o->nthreads++] = (int)t;
    }
    return o->nthreads ? 0 : -1;
}

/* 0 ok, 1 --help printed, 2 bad usage (message printed). */
static int
parse_args(HrOpts *o, int argc, char **argv)
{
    *o = (HrOpts){.runs = 20, .warmup = 2, .format = "csv"};
    parse_threads(o, "1,2,4,8,16");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc)
            return bad_usage("unknown option or missing value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--threads")) {
            if (parse_threads(o, v))
                return bad_usage("--threads takes a comma-separated list of counts 1..4096", v);
        } else if (!strcmp(a, "--runs")) {
            if ((o->runs = parse_long(v, 1, HR_MAX_RUNS)) < 0)
                return bad_usage("--runs takes a count 1..100000", v);
        } else if (!strcmp(a, "--warmup")) {
            if ((o->warmup = parse_long(v, 0, 1000)) < 0)
                return bad_usage("--warmup takes a count 0..1000", v);
        } else if (!strcmp(a, "--profile")) {
            if ((o->nprof = parse_long(v, 1, HR_MAX_RUNS)) < 0)
                return bad_usage("--profile takes a count 1..100000", v);
        } else if (!strcmp(a, "--max-s")) {
            char *end;
            o->max_s = strtod(v, &end);
            if (end == v || *end || !(o->max_s >= 0 && o->max_s < 1e6))
                return bad_usage("--max-s takes seconds >= 0", v);
        } else if (!strcmp(a, "--profile-csv")) {
            o->profile_csv = v;
        } else if (!strcmp(a, "--kernels")) {
            o->kernels = v;
        } else if (!strcmp(a, "--weights")) {
            o->weights = v;
        } else if (!strcmp(a, "--format")) {
            if (strcmp(v, "csv") && strcmp(v, "json"))
                return bad_usage("--format takes csv or json", v);
            o->format = v;
        } else {
            return bad_usage("unknown option", a);
        }
    }
    if (o->nprof && !o->profile_csv)
        return bad_usage("--profile needs --profile-csv FILE", NULL);
    return 0;
}

/* Reads "index<TAB>kind<TAB>name<TAB>flops" lines; *n = 1 + the largest
 * index.  NULL with a message on failure. */
static HrKernel *
read_kernels(const char *path, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: error: %s: %s\n", prog, path, strerror(errno));
        return NULL;
    }
    int cap = 512, line = 0;
    HrKernel *k = calloc((size_t)cap, sizeof *k);
    char buf[512];
    *n = 0;
    while (k && fgets(buf, sizeof buf, f)) {
        line++;
        char *idx = strtok(buf, "\t\n"), *kind = strtok(NULL, "\t\n"), *name = strtok(NULL, "\t\n"),
             *fl = strtok(NULL, "\t\n");
        long i = idx ? parse_long(idx, 0, HR_PROFILE_SLOTS - 1) : -1;
        char *end = NULL;
        double flops = fl ? strtod(fl, &end) : -1;
        if (i < 0 || !kind || !name || !fl || *end || flops < 0) {
            fprintf(stderr, "%s: error: %s: line %d is not index<TAB>kind<TAB>name<TAB>flops\n", prog,
                    path, line);
            free(k);
            fclose(f);
            return NULL;
        }
        while (i >= cap) {
            HrKernel *g = realloc(k, (size_t)cap * 2 * sizeof *k);
            if (!g) {
                free(k);
                k = NULL;
                break;
            }
            memset(g + cap, 0, (size_t)cap * sizeof *g);
            k = g;
            cap *= 2;
        }
        if (!k)
            break;
        snprintf(k[i].kind, sizeof k[i].kind, "%s", kind);
        snprintf(k[i].name, sizeof k[i].name, "%s", name);
        k[i].flops = flops;
        if (i + 1 > *n)
            *n = (int)i + 1;
    }
    fclose(f);
    if (!k)
        fprintf(stderr, "%s: error: out of memory\n", prog);
    else if (*n == 0) {
        fprintf(stderr, "%s: error: %s: no kernels listed\n", prog, path);
        free(k);
        return NULL;
    }
    return k;
}

/* Every 32-bit word: a normal float32 and two normal bf16 halves. */
static void
fill_weights(uint32_t *w, size_t nwords)
{
    for (size_t i = 0; i < nwords; i++) {
        uint32_t h = (uint32_t)i * 2654435761u;
        uint32_t hi = 0x3C10u + ((h >> 27) & 31u) + ((h >> 26) & 1u) * 0x8000u;
        uint32_t lo = 0x3C10u + ((h >> 21) & 31u) + ((h >> 20) & 1u) * 0x8000u;
        w[i] = hi << 16 | lo;
    }
}

/* 64-bit FNV-1a, the hash the header gives of the weights file */
static uint64_t
fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The whole weights file into w (exactly the size compiled for, same hash). */
static int
read_weights(const char *path, void *w, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: error: %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    size_t got = fread(w, 1, size, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != size || extra) {
        fprintf(stderr, "%s: error: %s: not %zu bytes: not the weights of this model\n", prog, path, size);
        return -1;
    }
    if (fnv1a64(w, size) != MC_MODEL_WEIGHTS_FNV1A64) {
        fprintf(stderr, "%s: error: %s: the hash differs: not the weights this object was compiled with\n",
                prog, path);
        return -1;
    }
    return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct HrBufs {
    void *weights, *scratch;
    float *input, *output, *first; /* first: the first thread count's output */
} HrBufs;

static int
run_once(const HrBufs *b)
{
    int rc = MC_MODEL_RUN(b->weights, b->input, b->output, b->scratch);
    if (rc)
        fprintf(stderr, "%s: error: %s_run returned %d\n", prog, MC_MODEL_NAME, rc);
    return rc;
}

typedef struct HrRow {
    int threads, runs, finite;
    double median_ms, min_ms, max_ms, img_s, out_sum, subnormal_ppm, max_rel_diff;
} HrRow;

/* Parts per million of the scratch's 32-bit words that are subnormal
 * float32 numbers after a run: activations that slow every CPU down (a
 * bf16 pair counts by its upper half). */
static double
subnormal_ppm(const void *scratch, size_t bytes)
{
    const uint32_t *w = scratch;
    size_t n = bytes / 4, sub = 0;
    for (size_t i = 0; i < n; i++)
        sub += (w[i] & 0x7F800000u) == 0 && (w[i] & 0x007FFFFFu) != 0;
    return n ? 1e6 * (double)sub / (double)n : 0.0;
}

/* Up to `runs` runs, each one's nanoseconds into t[] (if t), stopping once
 * max_s seconds are spent (max_s > 0, at least 3 runs); the number done in
 * *n and their total time in *total.  -1 when a run failed. */
static int
run_many(const HrBufs *b, long runs, double max_s, uint64_t *t, long *n, uint64_t *total)
{
    uint64_t start = mc_rt_now_ns(), t1 = start;
    for (*n = 0; *n < runs;) {
        uint64_t t0 = t1;
        if (run_once(b))
            return -1;
        t1 = mc_rt_now_ns();
        if (t)
            t[*n] = t1 - t0;
        ++*n;
        if (max_s > 0 && *n >= 3 && (t1 - start) * 1e-9 >= max_s)
            break;
    }
    *total = t1 - start;
    return 0;
}

/* warm-up, then timed runs at the current thread count */
static int
time_threads(const HrOpts *o, const HrBufs *b, uint64_t *t, HrRow *r)
{
    long n;
    uint64_t total;
    if (run_many(b, o->warmup, 0, NULL, &n, &total) || run_many(b, o->runs, o->max_s, t, &n, &total))
        return -1;
    qsort(t, (size_t)n, sizeof *t, cmp_u64);
    r->runs = (int)n;
    r->median_ms = n % 2 ? t[n / 2] * 1e-6 : (t[n / 2 - 1] + t[n / 2]) * 0.5e-6;
    r->min_ms = t[0] * 1e-6;
    r->max_ms = t[n - 1] * 1e-6;
    r->img_s = r->median_ms > 0 ? MC_MODEL_BATCH * 1000.0 / r->median_ms : 0.0;
    double s = 0, big = 0, diff = 0;
    int finite = 1;
    for (long i = 0; i < (long)MC_MODEL_OUTPUT_COUNT; i++) {
        finite &= isfinite(b->output[i]) != 0;
        s += b->output[i];
        big = fmax(big, fabs(b->first[i]));
        diff = fmax(diff, fabs((double)b->output[i] - b->first[i]));
    }
    r->max_rel_diff = finite ? (big > 0 ? diff / big : diff) : INFINITY;
    r->finite = finite;
    r->out_sum = s;
    r->subnormal_ppm = subnormal_ppm(b->scratch, (size_t)MC_MODEL_SCRATCH_SIZE);
    return 0;
}

/* --profile: nprof profiled runs, rows appended to f */
static int
profile_threads(const HrOpts *o, const HrBufs *b, const HrKernel *names, int nnames, int threads,
                FILE *f)
{
    int nk = names ? nnames : HR_PROFILE_SLOTS;
    uint64_t *ns = calloc((size_t)nk, sizeof *ns), *calls = calloc((size_t)nk, sizeof *calls);
    int *order = calloc((size_t)nk, sizeof *order);
    int rc = -1, used = 0;
    if (!ns || !calls || !order) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        goto done;
    }
    McRtProfile p = {nk, ns, calls};
    long nrun;
    uint64_t total;
    mc_rt_profile_set(&p);
    int failed = run_many(b, o->nprof, 0, NULL, &nrun, &total);
    mc_rt_profile_set(NULL);
    if (failed)
        goto done;
    uint64_t sum = 0;
    for (int k = 0; k < nk; k++)
        if (calls[k]) {
            order[used++] = k;
            sum += ns[k];
        }
    /* by time, largest first (a few hundred kernels: insertion sort) */
    for (int i = 1; i < used; i++)
        for (int j = i; j > 0 && ns[order[j]] > ns[order[j - 1]]; j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    double n = (double)o->nprof;
    fprintf(f, "%s,%s,%d,%d,0,-1,run,\"(whole run)\",%.4f,%.2f,,%.0f\n", MC_MODEL_NAME, HR_PRECISION,
            (int)MC_MODEL_BATCH, threads, total * 1e-6 / n, total ? 100.0 * sum / total : 0.0, 1.0);
    for (int i = 0; i < used; i++) {
        int k = order[i];
        char kname[24];
        snprintf(kname, sizeof kname, "k%d", k);
        const char *kind = names && names[k].name[0] ? names[k].kind : "";
        const char *name = names && names[k].name[0] ? names[k].name : kname;
        double fl = names ? names[k].flops : 0.0;
        fprintf(f, "%s,%s,%d,%d,%d,%d,%s,\"%s\",%.4f,%.2f,%.2f,%.0f\n", MC_MODEL_NAME, HR_PRECISION,
                (int)MC_MODEL_BATCH, threads, i + 1, k, kind, name, ns[k] * 1e-6 / n,
                total ? 100.0 * ns[k] / total : 0.0, ns[k] ? fl * n / (double)ns[k] : 0.0,
                calls[k] / n);
    }
    if (!used)
        fprintf(stderr, "%s: warning: no kernel reported its time (the object calls no "
                        "mc_rt_kernel_begin/end)\n", prog);
    rc = ferror(f) ? -1 : 0;
done:
    free(ns);
    free(calls);
    free(order);
    return rc;
}

static void
print_row(const HrOpts *o, const HrRow *r, int first, int last)
{
    static const int64_t ishape[] = MC_MODEL_INPUT_SHAPE;
    int h = MC_MODEL_INPUT_RANK >= 4 ? (int)ishape[2] : 0, w = MC_MODEL_INPUT_RANK >= 4 ? (int)ishape[3] : 0;
    const char *variant = HR_VARIANT();
    if (!strcmp(o->format, "csv")) {
        if (first)
            printf("model,precision,cpu,variant,batch,height,width,threads,runs,median_ms,min_ms,"
                   "max_ms,img_s,finite,out_sum,subnormal_ppm,max_rel_diff,weights\n");
        printf("%s,%s,%s,%s,%d,%d,%d,%d,%d,%.4f,%.4f,%.4f,%.3f,%d,%.6e,%.1f,%.3e,%s\n", MC_MODEL_NAME,
               HR_PRECISION, HR_CPU, variant ? variant : "", (int)MC_MODEL_BATCH, h, w, r->threads,
               r->runs, r->median_ms, r->min_ms, r->max_ms, r->img_s, r->finite, r->out_sum,
               r->subnormal_ppm, r->max_rel_diff, o->weights ? "file" : "synthetic");
    } else {
        if (first)
            printf("{\"model\": \"%s\", \"precision\": \"%s\", \"cpu\": \"%s\", \"variant\": \"%s\", "
                   "\"batch\": %d, \"height\": %d, \"width\": %d, \"weights\": \"%s\", \"rows\": [\n",
                   MC_MODEL_NAME, HR_PRECISION, HR_CPU, variant ? variant : "", (int)MC_MODEL_BATCH, h,
                   w, o->weights ? "file" : "synthetic");
        printf("  {\"threads\": %d, \"runs\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, "
               "\"max_ms\": %.4f, \"img_s\": %.3f, \"finite\": %s, \"out_sum\": %.6e, "
               "\"subnormal_ppm\": %.1f, \"max_rel_diff\": %.3e}%s\n",
               r->threads, r->runs, r->median_ms, r->min_ms, r->max_ms, r->img_s,
               r->finite ? "true" : "false", isfinite(r->out_sum) ? r->out_sum : 0.0, r->subnormal_ppm,
               isfinite(r->max_rel_diff) ? r->max_rel_diff : -1.0, last ? "" : ",");
        if (last)
            printf("]}\n");
    }
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    HrOpts o;
    int pr = parse_args(&o, argc, argv);
    if (pr)
        return pr == 1 ? 0 : 2;
    const char *why = HR_CHECK_CPU();
    if (why) {
        fprintf(stderr, "%s: error: %s\n", prog, why);
        return 1;
    }
    int nnames = 0;
    HrKernel *names = NULL;
    if (o.kernels && !(names = read_kernels(o.kernels, &nnames)))
        return 1;
    FILE *pf = NULL;
    if (o.nprof) {
        if (!(pf = fopen(o.profile_csv, "w"))) {
            fprintf(stderr, "%s: error: %s: %s\n", prog, o.profile_csv, strerror(errno));
            free(names);
            return 1;
        }
        fprintf(pf, "model,precision,batch,threads,rank,k,kind,name,ms_per_run,share_pct,gflops,"
                    "calls_per_run\n");
    }
    size_t wsize = (size_t)MC_MODEL_WEIGHTS_SIZE;
    HrBufs b = {
        .weights = mc_rt_alloc_aligned((wsize + 3) / 4 * 4, MC_MODEL_ALIGNMENT),
        .scratch = mc_rt_alloc_aligned((size_t)MC_MODEL_SCRATCH_SIZE, MC_MODEL_ALIGNMENT),
        .input = mc_rt_alloc_aligned((size_t)MC_MODEL_INPUT_COUNT * sizeof(float), MC_MODEL_ALIGNMENT),
        .output = mc_rt_alloc_aligned((size_t)MC_MODEL_OUTPUT_COUNT * sizeof(float), MC_MODEL_ALIGNMENT),
        .first = mc_rt_alloc_aligned((size_t)MC_MODEL_OUTPUT_COUNT * sizeof(float), MC_MODEL_ALIGNMENT),
    };
    uint64_t *t = calloc((size_t)o.runs, sizeof *t);
    int rc = 1;
    if (!b.weights || !b.scratch || !b.input || !b.output || !b.first || !t) {
        fprintf(stderr, "%s: error: out of memory (%zu bytes of weights, %llu of scratch)\n", prog,
                wsize, (unsigned long long)MC_MODEL_SCRATCH_SIZE);
        goto done;
    }
    memset(b.first, 0, (size_t)MC_MODEL_OUTPUT_COUNT * sizeof(float));
    if (o.weights) {
        if (read_weights(o.weights, b.weights, wsize))
            goto done;
    } else {
        fill_weights(b.weights, (wsize + 3) / 4);
    }
    for (long long i = 0; i < (long long)MC_MODEL_INPUT_COUNT; i++)
        b.input[i] = (float)((i * 7919) % 255) / 127.5f - 1.0f;
    int bad = 0;
    for (int j = 0; j < o.nthreads; j++) {
        HrRow r = {.threads = o.threads[j]};
        mc_rt_set_threads(o.threads[j]);
        if (time_threads(&o, &b, t, &r))
            goto done;
        if (j == 0) { /* the reference for max_rel_diff: this run's output */
            memcpy(b.first, b.output, (size_t)MC_MODEL_OUTPUT_COUNT * sizeof(float));
            r.max_rel_diff = r.finite ? 0.0 : INFINITY;
        }
        print_row(&o, &r, j == 0, j == o.nthreads - 1);
        fprintf(stderr, "%s: %s %s batch %d, %d threads: median %.3f ms, min %.3f ms, %.2f images/s (%d runs)\n",
                prog, MC_MODEL_NAME, HR_PRECISION, (int)MC_MODEL_BATCH, o.threads[j], r.median_ms, r.min_ms,
                r.img_s, r.runs);
        if (!r.finite) {
            fprintf(stderr, "%s: error: the output at %d threads is not finite: the timing is not "
                            "meaningful\n", prog, o.threads[j]);
            bad = 1;
        }
        if (pf && profile_threads(&o, &b, names, nnames, o.threads[j], pf))
            goto done;
    }
    rc = bad;
done:
    if (pf && fclose(pf) && !rc) {
        fprintf(stderr, "%s: error: %s: %s\n", prog, o.profile_csv, strerror(errno));
        rc = 1;
    }
    free(t);
    free(names);
    mc_rt_free_aligned(b.weights);
    mc_rt_free_aligned(b.scratch);
    mc_rt_free_aligned(b.input);
    mc_rt_free_aligned(b.output);
    mc_rt_free_aligned(b.first);
    return rc;
}
