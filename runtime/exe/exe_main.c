/* runtime/exe/exe_main.c -- main() of the executables `mambac compile
 * --emit exe` writes.
 *
 * Takes: the model glue (mc_model_glue.h: shapes, the embedded weights, the
 * entry point, kernel names and FLOPs), a float32 .npy input.  Produces: the
 * output .npy (a model with several outputs: one .npz of them all, arrays
 * named after the graph's outputs), a segmentor's class map (--argmax), a
 * benchmark line, a per-kernel profile.
 * Owns the scratch, input and output buffers (allocated once, 64-byte
 * aligned).
 *
 *   OUT --input x.npy --output y.npy|feats.npz [--argmax m.npy] [--threads N] [--bench N] [--profile [N]]
 *
 * Exit status: 0 ok, 1 bad input file or failed run, 2 bad usage.
 * Lives in runtime/exe/ so the runtime library's glob does not pick it up.
 */
#include "../mc_cpu.h"
#include "../mc_npy.h"
#include "../mc_out.h"
#include "../mc_rt.h"
#include "mc_exe_cli.h"
#include "mc_exe_io.h"
#include "mc_model_glue.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "model";

/* Which compiled CPU variants there are and which one this CPU runs. */
static void
print_cpu(FILE *f)
{
    McCpuDispatch *d = mc_model_glue.cpu;
    if (!d)
        return;
    fprintf(f, "Compiled for %s CPU%s:", d->arch, d->n == 1 ? "" : "s (one binary, the best variant runs)");
    for (int i = 0; i < d->n; i++)
        fprintf(f, " %s", d->v[i].name);
    const McCpuVariant *v = mc_cpu_pick(d);
    if (v)
        fprintf(f, "\nThis CPU runs: %s (needs %s)\n", v->name, v->features[0] ? v->features : "nothing special");
    else
        fprintf(f, "\nThis CPU runs none of them: %s\n", mc_cpu_error(d));
    fprintf(f, "MAMBAC_CPU=NAME forces a variant.\n");
}

/* One output [B, classes]: what --top reads. */
static int
classifier(void)
{
    return mc_model_glue.noutputs == 1 && mc_model_glue.out[0].rank == 2;
}

static void
usage(FILE *f)
{
    const McModelGlue *g = &mc_model_glue;
    char sh[160];
    fprintf(f,
            "usage: %s (--image FILE|DIR... | --input X.npy) [--output %s] [--threads N]%s [--bench N] [--profile [N]]\n"
            "Runs model '%s' (compiled by mambac for %s).\n",
            prog, g->noutputs > 1 ? "Y.npz" : "Y.npy", classifier() ? " [--top K]" : "", g->name, g->target);
    mc_cli_io_usage(f, &mc_model_io, g->in_rank, g->in_shape, mc_image_available());
    fprintf(f, "  --input X.npy   float32 input of shape ");
    mc_cli_shape_str(sh, sizeof sh, g->in_rank, g->in_shape);
    fprintf(f, "%s, already preprocessed\n                  (without --input, --bench/--profile run on zeros)\n", sh);
    if (g->noutputs == 1) {
        mc_cli_shape_str(sh, sizeof sh, g->out[0].rank, g->out[0].shape);
        fprintf(f, "  --output Y.npy  writes the float32 output, shape %s (Y.npz: as the array '%s')\n", sh,
                g->out[0].name);
    } else {
        fprintf(f, "  --output Y.npz  writes the %d float32 outputs as one .npz, arrays\n", g->noutputs);
        for (int j = 0; j < g->noutputs; j++) {
            mc_cli_shape_str(sh, sizeof sh, g->out[j].rank, g->out[j].shape);
            fprintf(f, "                    '%s' %s\n", g->out[j].name, sh);
        }
    }
    fprintf(f, "  --threads N     worker threads (default: OMP_NUM_THREADS or all cores)\n");
    if (classifier())
        mc_cli_top_usage(f, &mc_model_io);
    if (g->noutputs == 1 && g->out[0].rank == 4)
        mc_cli_seg_usage(f);
    fprintf(f, "  --bench N       after one warm-up run, times N runs and prints\n"
               "                  'median X ms, min Y ms, max Z ms, R images/s'\n"
               "  --profile [N]   times each fused kernel over N runs (default 10) and\n"
               "                  prints them sorted by time with share and GFLOP/s\n"
               "  -v              prints the CPU variant that runs, and each step\n"
               "  --help          this text\n");
    print_cpu(f);
}

static int
run_once(const void *w, const float *in, float *const *out, void *scratch)
{
    int rc = mc_model_glue.run(w, in, out, scratch);
    if (rc)
        fprintf(stderr, "%s: error: model '%s' returned %d\n", prog, mc_model_glue.name, rc);
    return rc;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int
bench(long n, const void *w, const float *in, float *const *out, void *scratch)
{
    uint64_t *t = calloc((size_t)n, sizeof *t); /* n <= MAX_RUNS */
    if (!t) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        return -1;
    }
    if (run_once(w, in, out, scratch)) /* warm-up */
        goto fail;
    for (long i = 0; i < n; i++) {
        uint64_t t0 = mc_rt_now_ns();
        if (run_once(w, in, out, scratch))
            goto fail;
        t[i] = mc_rt_now_ns() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_u64);
    double med = n % 2 ? t[n / 2] * 1e-6 : (t[n / 2 - 1] + t[n / 2]) * 0.5e-6;
    double batch = mc_model_glue.in_rank > 0 ? (double)mc_model_glue.in_shape[0] : 1.0;
    printf("bench: %s, %ld runs, %d threads: median %.3f ms, min %.3f ms, max %.3f ms, "
           "%.2f images/s\n",
           mc_model_glue.name, n, mc_rt_get_threads(), med, t[0] * 1e-6, t[n - 1] * 1e-6,
           med > 0 ? batch * 1000.0 / med : 0.0);
    free(t);
    return 0;
fail:
    free(t);
    return -1;
}

static const uint64_t *sort_ns;

static int
cmp_kernel(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_ns[x] != sort_ns[y])
        return sort_ns[x] > sort_ns[y] ? -1 : 1;
    return x - y;
}

static int
profile(long n, const void *w, const float *in, float *const *out, void *scratch)
{
    const McModelGlue *g = &mc_model_glue;
    int nk = g->nkernels > 0 ? g->nkernels : 0;
    uint64_t *ns = calloc((size_t)nk + 1, sizeof *ns);
    uint64_t *calls = calloc((size_t)nk + 1, sizeof *calls);
    int *order = calloc((size_t)nk + 1, sizeof *order);
    int rc = -1;
    if (!ns || !calls || !order) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        goto done;
    }
    if (run_once(w, in, out, scratch)) /* warm-up, not profiled */
        goto done;
    McRtProfile p = {nk, ns, calls};
    mc_rt_profile_set(&p);
    uint64_t total = 0;
    for (long i = 0; i < n; i++) {
        uint64_t t0 = mc_rt_now_ns();
        int r = run_once(w, in, out, scratch);
        total += mc_rt_now_ns() - t0;
        if (r) {
            mc_rt_profile_set(NULL);
            goto done;
        }
    }
    mc_rt_profile_set(NULL);
    uint64_t sum = 0;
    for (int k = 0; k < nk; k++) {
        order[k] = k;
        sum += ns[k];
    }
    sort_ns = ns;
    qsort(order, (size_t)nk, sizeof *order, cmp_kernel);
    double run_ms = total * 1e-6 / n;
    printf("profile: %s, %ld runs, %d threads, %.3f ms/run, %d kernels (%.1f%% of the time "
           "inside kernels)\n",
           g->name, n, mc_rt_get_threads(), run_ms, nk, total ? 100.0 * sum / total : 0.0);
    uint64_t ncalls = 0;
    for (int k = 0; k < nk; k++)
        ncalls += calls[k];
    if (!ncalls)
        printf("profile: no kernel reported its time (the model object calls no "
               "mc_rt_kernel_begin/end)\n");
    printf("%5s  %-56s %10s %7s %9s %6s\n", "rank", "kernel", "ms/run", "share", "GFLOP/s",
           "calls");
    for (int i = 0; i < nk; i++) {
        int k = order[i];
        double ms = ns[k] * 1e-6 / n;
        double fl = g->kernel_flops ? g->kernel_flops[k] : 0.0;
        double gfs = ns[k] ? fl * n / (double)ns[k] : 0.0; /* flop/ns = GFLOP/s */
        const char *name = g->kernel_names ? g->kernel_names[k] : "?";
        printf("%5d  %-56s %10.4f %6.2f%% %9.2f %6llu\n", i + 1, name, ms,
               total ? 100.0 * ns[k] / total : 0.0, gfs, (unsigned long long)(calls[k] / n));
    }
    rc = 0;
done:
    free(ns);
    free(calls);
    free(order);
    return rc;
}

/* --top reads a classifier's one output [B, classes]: 0, or -1 with a
 * message for any other model (its outputs named). */
static int
top_check(const char *model, int n, const char *const *names, const int *ranks, const int64_t *const *shapes)
{
    if (n == 1 && ranks[0] == 2)
        return 0;
    char list[512], sh[128];
    size_t k = 0;
    list[0] = 0;
    for (int j = 0; j < n && k < sizeof list; j++) {
        mc_cli_shape_str(sh, sizeof sh, ranks[j], shapes[j]);
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s %s", j ? ", " : "", names[j], sh);
    }
    fprintf(stderr,
            "%s: error: --top lists the best classes of a classifier's output [B, classes]; model '%s' outputs %s "
            "(write %s with --output%s)\n",
            prog, model, list, n > 1 ? "them to an .npz" : "it",
            n == 1 && ranks[0] == 4 ? "; a segmentation model's class map: --argmax M.npy" : "");
    return -1;
}

/* The k best classes of each row of out [B, N] with names and
 * probabilities (or JSON), and the run's time. */
static int
print_top(const McIoOpts *io, const float *out, const int64_t *shape, int k, double ms)
{
    McLabels lab = {0, NULL};
    const char *const *names;
    int64_t printed = 0;
    if (mc_io_names(prog, &mc_model_io, io, (int)shape[1], &lab, &names))
        return -1;
    if (io->json)
        mc_labels_json_begin(stdout);
    int bad = mc_labels_print_top(stdout, out, shape[0], shape[1], k, names, NULL, io->json, &printed);
    mc_labels_free(&lab);
    if (bad) {
        fprintf(stderr, "%s: error: out of memory for --top\n", prog);
        return -1;
    }
    if (io->json)
        mc_labels_json_end(stdout, ms);
    else
        printf("time: %.1f ms (one run after a warm-up, %d threads)\n", ms, mc_rt_get_threads());
    return 0;
}

static int
run_cb(void *ctx, const float *in, float *const *out)
{
    return run_once(mc_model_glue.weights, in, out, ctx);
}

int
main(int argc, char **argv)
{
    const McModelGlue *g = &mc_model_glue;
    McCliOpts c;
    McIoOpts io;
    McImageList imgs = {0, 0, NULL};
    long top = 0;
    int verbose = 0;
    memset(&c, 0, sizeof c);
    memset(&io, 0, sizeof io);
    if (argc > 0 && argv[0] && *argv[0]) {
        const char *s = strrchr(argv[0], '/');
        prog = s ? s + 1 : argv[0];
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = mc_cli_common(prog, argc, argv, &i, &c);
        if (!r)
            r = mc_io_option(prog, argc, argv, &i, &io);
        if (r == 2) return 2;
        if (r) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "--top")) {
            if (mc_cli_count(prog, a, v, 1, MAX_TOP, &top)) return 2;
            i++;
        } else {
            fprintf(stderr, "%s: error: unknown option '%s' (see --help)\n", prog, a);
            return 2;
        }
    }
    const char *in_path = c.in_path, *out_path = c.out_path;
    long threads = c.threads, nbench = c.nbench, nprof = c.nprof;
    if (!in_path && !io.nimage && !nbench && !nprof) {
        fprintf(stderr, "%s: error: no --image or --input given (see --help)\n", prog);
        return 2;
    }
    if (!out_path && !c.argmax_path && !nbench && !nprof && !top && !io.mask && !io.overlay && !io.save_input) {
        fprintf(stderr, "%s: error: nothing to do: give --top, --output, --argmax, --mask, --overlay, --bench or "
                        "--profile\n", prog);
        return 2;
    }
    if (mc_io_usage_check(prog, &io, in_path, top))
        return 2;
    /* what the outputs go to, before any work: one .npy, or an .npz of them all */
    int nout = g->noutputs, npz = 0;
    const char *names[MC_GLUE_MAX_OUTPUTS];
    const int64_t *shapes[MC_GLUE_MAX_OUTPUTS];
    int ranks[MC_GLUE_MAX_OUTPUTS];
    for (int j = 0; j < nout; j++) {
        names[j] = g->out[j].name;
        ranks[j] = g->out[j].rank;
        shapes[j] = g->out[j].shape;
    }
    if (top && top_check(g->name, nout, names, ranks, shapes))
        return 1;
    if (c.argmax_path && mc_cli_argmax_check(prog, g->name, nout, ranks, shapes))
        return 1;
    if (out_path && (npz = mc_cli_output_kind(prog, out_path, nout, names)) < 0)
        return 1;
    if (io.nimage && (g->in_rank != 4 || g->in_shape[1] != 3)) {
        fprintf(stderr, "%s: error: --image needs a model whose input is RGB images [B, 3, H, W]\n", prog);
        return 1;
    }
    if (io.nimage && mc_image_list(prog, io.nimage, io.image, &imgs))
        return 1;
    if ((io.nimage || io.mask || io.overlay || io.json) &&
        mc_io_check(prog, &mc_model_io, &io, imgs.n, (int)g->in_shape[0],
                    out_path || c.argmax_path || io.save_input)) {
        mc_image_list_free(&imgs);
        return 1;
    }
    /* the CPU check: one sentence and status 1 instead of an illegal
     * instruction when no compiled variant runs on this CPU */
    if (g->cpu) {
        const McCpuVariant *v = mc_cpu_pick(g->cpu);
        if (!v) {
            fprintf(stderr, "%s: error: %s\n", prog, mc_cpu_error(g->cpu));
            return 1;
        }
        if (verbose)
            fprintf(stderr, "%s: model %s, CPU variant %s (%d compiled; needs %s)\n", prog, g->name, v->name,
                    g->cpu->n, v->features[0] ? v->features : "nothing special");
    }
    if (threads)
        mc_rt_set_threads((int)threads);
    if ((uint64_t)*g->obj_weights_size != g->weights_len) {
        fprintf(stderr, "%s: error: embedded weights have %llu bytes, the model expects %lld\n",
                prog, (unsigned long long)g->weights_len, (long long)*g->obj_weights_size);
        return 1;
    }

    int64_t nin = mc_cli_numel(g->in_rank, g->in_shape), nall = 0;
    int64_t nscratch = *g->obj_scratch_size;
    float *in = mc_rt_alloc_aligned((size_t)nin * sizeof(float), MC_RT_ALIGN);
    float *out[MC_GLUE_MAX_OUTPUTS] = {0};
    int have = 1;
    for (int j = 0; j < nout; j++) {
        int64_t n = mc_cli_numel(ranks[j], shapes[j]);
        nall += n;
        have &= (out[j] = mc_rt_alloc_aligned((size_t)n * sizeof(float), MC_RT_ALIGN)) != NULL;
        if (have)
            memset(out[j], 0, (size_t)n * sizeof(float));
    }
    void *scratch = mc_rt_alloc_aligned((size_t)(nscratch > 0 ? nscratch : 0), MC_RT_ALIGN);
    int rc = 1;
    if (!in || !have || !scratch) {
        fprintf(stderr, "%s: error: cannot allocate %lld bytes of scratch and buffers\n", prog,
                (long long)(nscratch + 4 * (nin + nall)));
        goto done;
    }
    if (in_path) {
        if (mc_cli_load_input(prog, in_path, g->in_rank, g->in_shape, in))
            goto done;
    } else {
        memset(in, 0, (size_t)nin * sizeof(float));
    }
    if (io.nimage) {
        char how[64];
        snprintf(how, sizeof how, "%d threads", mc_rt_get_threads());
        rc = mc_io_images(prog, &mc_model_io, &io, &c, &imgs, g->in_rank, g->in_shape, in, out, nout, names, ranks,
                          shapes, npz, top, run_cb, scratch, how);
        if (rc < 0) {
            rc = 1;
            goto done;
        }
    } else if (out_path || top || c.argmax_path) {
        /* the outputs are created (as temporaries beside them) before the run:
         * a path that cannot be written is refused at once, with the reason */
        McOut yo, mo;
        char msg[512];
        mc_cleanup_install();
        if (out_path && mc_out_open(&yo, out_path, 0666, msg, sizeof msg)) {
            fprintf(stderr, "%s: error: %s\n", prog, msg);
            goto done;
        }
        if (c.argmax_path && mc_out_open(&mo, c.argmax_path, 0666, msg, sizeof msg)) {
            fprintf(stderr, "%s: error: %s\n", prog, msg);
            if (out_path)
                mc_out_discard(&yo);
            goto done;
        }
        int bad = top && run_once(g->weights, in, out, scratch); /* warm-up, so the time shown is steady */
        double t0 = mc_rt_now_ms();
        bad = bad || run_once(g->weights, in, out, scratch);
        bad = bad || (top && print_top(&io, out[0], shapes[0], (int)top, mc_rt_now_ms() - t0));
        if (bad) {
            if (out_path)
                mc_out_discard(&yo);
            if (c.argmax_path)
                mc_out_discard(&mo);
            goto done;
        }
        if (out_path && mc_cli_write_outputs(prog, &yo, npz, nout, names, out, ranks, shapes)) {
            if (c.argmax_path)
                mc_out_discard(&mo);
            goto done;
        }
        if (c.argmax_path && mc_cli_write_argmax(prog, &mo, out[0], shapes[0]))
            goto done;
    }
    if (nbench && bench(nbench, g->weights, in, out, scratch))
        goto done;
    if (nprof && profile(nprof, g->weights, in, out, scratch))
        goto done;
    rc = mc_cli_check_stdout(prog) ? 1 : rc == 1 && io.nimage ? 1 : 0;
done:
    mc_image_list_free(&imgs);
    mc_rt_free_aligned(in);
    for (int j = 0; j < nout; j++)
        mc_rt_free_aligned(out[j]);
    mc_rt_free_aligned(scratch);
    return rc;
}
