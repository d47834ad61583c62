/* runtime/exe/cuda_main.c -- main() of the executables `mambac compile
 * --target cuda --emit exe` writes.
 *
 * Takes: the model's .cu (its glue and GPU work: mc_cuda_glue.h; a model
 * with several outputs, their table too: mc_cuda_outputs.h), options.
 * Produces: the output .npy (several outputs: an .npz of them all, arrays
 * named after the graph's outputs), a benchmark line, a per-kernel profile, and
 * with --instrument's --kernel-outputs DIR every kernel's output as
 * DIR/k<i>.npy.  Everything that touches no GPU is done here with the
 * runtime the CPU executable uses: options and counts (mc_exe_cli.h), the
 * input through mc_npy_read (regular files only, sizes checked before
 * reading), the weights through mc_file_open, outputs through McOut
 * (atomic, removed on a signal or an exit before they are complete).  The
 * input, the weights and the outputs are checked before the GPU is looked
 * for, so bad usage is refused on any machine.
 *
 *   OUT [--input x.npy] [--output y.npy|y.npz] [--bench N] [--profile [N]]
 *       [--weights FILE | --synthetic-weights] [--kernel-outputs DIR]
 *
 * Exit status: 0 ok, 1 bad file, no usable GPU or a CUDA error, 2 bad
 * usage.  Compiled by cuda_host.c with the host C compiler (with npy.c and
 * out.c; for a one-output model -DMC_OUTPUT_NAME="NODE", its array's name
 * in an .npz, default "output"), linked by nvcc with the .cu.
 */
#include "../mc_file.h"
#include "../mc_npy.h"
#include "../mc_out.h"
#include "mc_cuda_glue.h"
#include "mc_cuda_outputs.h"
#include "mc_exe_cli.h"
#include "mc_exe_io.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MC_OUTPUT_NAME
#define MC_OUTPUT_NAME "output"
#endif

/* Defined by the .cu of a model with several outputs only (NULL else). */
extern const McCudaOutputs mc_cuda_outputs __attribute__((weak));

static const char *prog = "model";

/* The model's outputs: mc_cuda_outputs's, or the glue's one. */
typedef struct Outputs {
    int n;
    const char *name[MC_CUDA_MAX_OUTPUTS];
    int rank[MC_CUDA_MAX_OUTPUTS];
    const int64_t *shape[MC_CUDA_MAX_OUTPUTS];
} Outputs;

static void
outputs_of(Outputs *o)
{
    const McCudaOutputs *t = &mc_cuda_outputs;
    if (!t) {
        *o = (Outputs){1, {MC_OUTPUT_NAME}, {mc_cuda_glue.out_rank}, {mc_cuda_glue.out_shape}};
        return;
    }
    o->n = t->n;
    for (int j = 0; j < t->n && j < MC_CUDA_MAX_OUTPUTS; j++) {
        o->name[j] = t->name[j];
        o->rank[j] = t->rank[j];
        o->shape[j] = t->shape[j];
    }
}
static McOut *open_out, *open_map; /* outputs not yet committed: discarded at exit */

static void
discard_at_exit(void)
{
    if (open_out)
        mc_out_discard(open_out);
    if (open_map)
        mc_out_discard(open_map);
    open_out = open_map = NULL;
}

static void
print_shape(FILE *f, int rank, const int64_t *d)
{
    for (int i = 0; i < rank; i++)
        fprintf(f, "%s%lld", i ? ", " : "[", (long long)d[i]);
    fprintf(f, "]");
}

static void
usage(FILE *f)
{
    const McCudaGlue *g = &mc_cuda_glue;
    Outputs y;
    outputs_of(&y);
    fprintf(f, "usage: %s [--image FILE|DIR... | --input x.npy] [--top K] [--output %s] [--bench N] [--profile [N]]\n"
               "          [--weights FILE | --synthetic-weights]%s [--help]\n"
               "Runs the model '%s' (%s) on the GPU: input float32 ",
            prog, y.n > 1 ? "y.npz" : "y.npy", g->instrument ? " [--kernel-outputs DIR]" : "", g->name, g->precision);
    print_shape(f, g->in_rank, g->in_shape);
    fprintf(f, ",\noutput%s float32", y.n > 1 ? "s (one .npz)" : "");
    for (int j = 0; j < y.n; j++) {
        fprintf(f, "%s%s ", j ? ", " : " ", y.name[j]);
        print_shape(f, y.rank[j], y.shape[j]);
    }
    fprintf(f, ".  Without --input, a fixed pseudo-random input.\n");
    mc_cli_io_usage(f, &mc_model_io, g->in_rank, g->in_shape, mc_image_available());
    if (y.n == 1 && y.rank[0] == 2)
        mc_cli_top_usage(f, &mc_model_io);
    fprintf(f,
               "  --bench N          one warm-up, then N timed runs of the captured CUDA graph\n"
               "  --profile [N]      per-kernel times (CUDA events) over N runs (default 10)\n"
               "  --weights FILE     the weights blob (default: embedded, else <exe>.weights)\n"
               "  --synthetic-weights  pseudo-random weights (timing only)\n");
    if (g->instrument)
        fprintf(f, "  --kernel-outputs DIR  (built with --instrument) runs the kernels one by one\n"
                   "                     and writes each kernel's output buffer as DIR/k<i>.npy\n"
                   "                     (float32), for mambac verify --backend cuda\n");
    if (y.n == 1 && y.rank[0] == 4)
        mc_cli_seg_usage(f);
    fprintf(f, "  --threads N        accepted for the CPU executable's command lines; no effect\n");
}

/* deterministic pseudo-random floats in [-scale, scale) */
static void
fill_random(float *p, int64_t n, uint64_t seed, float scale)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = scale * ((float)(s >> 40) * (2.0f / 16777216.0f) - 1.0f);
    }
}

/* The weights file: regular, exactly weights_bytes long.  NULL with a
 * message. */
static unsigned char *
read_weights(const char *path)
{
    const McCudaGlue *g = &mc_cuda_glue;
    char msg[1024];
    uint64_t size;
    int fd = mc_file_open(path, "weights file (or pass --synthetic-weights)", 0, &size, msg, sizeof msg);
    if (fd < 0) {
        fprintf(stderr, "%s: error: %s\n", prog, msg);
        return NULL;
    }
    unsigned char *w = NULL;
    if (size != (uint64_t)g->weights_bytes)
        fprintf(stderr, "%s: error: %s: %llu bytes, this model needs %lld\n", prog, path, (unsigned long long)size,
                (long long)g->weights_bytes);
    else if (!(w = malloc((size_t)g->weights_bytes + 4)))
        fprintf(stderr, "%s: error: out of memory for %lld bytes of weights\n", prog, (long long)g->weights_bytes);
    else if (mc_file_read_at(fd, w, (size_t)g->weights_bytes, 0)) {
        fprintf(stderr, "%s: error: %s: cannot read: %s\n", prog, path, strerror(errno));
        free(w);
        w = NULL;
    }
    close(fd);
    return w;
}

static int
cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static void
bench(long n, const char *dev)
{
    const McCudaGlue *g = &mc_cuda_glue;
    float *t = malloc(sizeof(float) * (size_t)n);
    if (!t) {
        fprintf(stderr, "%s: error: out of memory for %ld timings\n", prog, n);
        exit(1);
    }
    mc_cuda_bench((int)n, t);
    qsort(t, (size_t)n, sizeof(float), cmp_float);
    double med = n % 2 ? t[n / 2] : 0.5 * ((double)t[n / 2 - 1] + t[n / 2]), gflop = 0;
    for (int k = 0; k < g->nk; k++)
        gflop += g->kernel_flops[k] / 1e9;
    printf("bench: %s, %ld runs, batch %d, %s, %s: median %.3f ms, min %.3f ms, max %.3f ms, %.1f images/s, "
           "%.1f GFLOP/run, %.2f TFLOP/s\n",
           g->name, n, g->batch, dev, g->precision, med, t[0], t[n - 1], g->batch * 1000.0 / med, gflop, gflop / med);
    free(t);
}

static const double *sort_ms;

static int
cmp_kernel(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_ms[x] != sort_ms[y])
        return sort_ms[x] > sort_ms[y] ? -1 : 1;
    return x - y;
}

static void
profile(long n, const char *dev)
{
    const McCudaGlue *g = &mc_cuda_glue;
    double *ms = calloc((size_t)g->nk + 1, sizeof *ms), total = 0;
    int *order = calloc((size_t)g->nk + 1, sizeof *order);
    if (!ms || !order) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        exit(1);
    }
    mc_cuda_profile((int)n, ms);
    for (int k = 0; k < g->nk; k++) {
        order[k] = k;
        total += ms[k];
    }
    sort_ms = ms;
    qsort(order, (size_t)g->nk, sizeof *order, cmp_kernel);
    printf("profile: %s, %ld runs, batch %d, %s, %s, %d kernels, %.3f ms per run (events, no graph)\n", g->name, n,
           g->batch, dev, g->precision, g->nk, total);
    printf("%5s  %-56s %9s %7s %10s %6s\n", "rank", "kernel", "ms/run", "share", "GFLOP/s", "calls");
    for (int r = 0; r < g->nk; r++) {
        int k = order[r];
        printf("%5d  %-56s %9.4f %6.2f%% %10.1f %6d\n", r + 1, g->kernel_names[k], ms[k],
               total > 0 ? 100.0 * ms[k] / total : 0.0, ms[k] > 0 ? g->kernel_flops[k] / (ms[k] * 1e6) : 0.0, 1);
    }
    free(ms);
    free(order);
}

/* --kernel-outputs: DIR/k<i>.npy for each kernel, written atomically */
static int
write_kernel_output(void *user, int k, const float *data, int rank, const int64_t *shape)
{
    char path[MC_OUT_PATH], msg[1024];
    snprintf(path, sizeof path, "%s/k%d.npy", (const char *)user, k);
    if (mc_npy_write_f32(path, data, rank, shape, msg, sizeof msg)) {
        fprintf(stderr, "%s: error: %s\n", prog, msg);
        return 1;
    }
    return 0;
}

/* DIR exists and is a directory (made when missing). */
static int
check_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) && (errno != ENOENT || mkdir(dir, 0777))) {
        fprintf(stderr, "%s: error: --kernel-outputs %s: %s\n", prog, dir, strerror(errno));
        return -1;
    }
    if (!stat(dir, &st) && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: error: --kernel-outputs %s: not a directory\n", prog, dir);
        return -1;
    }
    return 0;
}

static int nouts_run; /* the model's outputs, for gpu_run */

/* One batch on the GPU: the input uploaded, the graph run, the outputs back. */
static int
gpu_run(void *ctx, const float *in, float *const *out)
{
    (void)ctx;
    mc_cuda_set_input(in);
    if (nouts_run > 1)
        mc_cuda_outputs.run(out);
    else
        mc_cuda_run(out[0]);
    return 0;
}

int
main(int argc, char **argv)
{
    const McCudaGlue *g = &mc_cuda_glue;
    McIoOpts io;
    McImageList imgs = {0, 0, NULL};
    long top = 0;
    memset(&io, 0, sizeof io);
    const char *wfile = NULL, *kdir = NULL;
    McCliOpts c;
    int synth = 0;
    memset(&c, 0, sizeof c);
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
            return mc_cli_check_stdout(prog);
        } else if (!strcmp(a, "--top")) {
            if (mc_cli_count(prog, a, v, 1, MAX_TOP, &top)) return 2;
            i++;
        } else if (!strcmp(a, "--synthetic-weights")) {
            synth = 1;
        } else if (!strcmp(a, "--weights") || !strcmp(a, "--kernel-outputs")) {
            if (!v) {
                fprintf(stderr, "%s: error: %s needs a %s\n", prog, a, a[2] == 'w' ? "file name" : "directory");
                return 2;
            }
            *(a[2] == 'w' ? &wfile : &kdir) = v;
            i++;
        } else {
            fprintf(stderr, "%s: error: unknown option '%s' (see --help)\n", prog, a);
            return 2;
        }
    }
    const char *in_path = c.in_path, *out_path = c.out_path;
    long nbench = c.nbench, nprof = c.nprof; /* --threads: accepted, no effect on a GPU */
    if (kdir && !g->instrument) {
        fprintf(stderr, "%s: error: --kernel-outputs needs an executable built with mambac compile --instrument\n",
                prog);
        return 2;
    }
    if (synth && wfile) {
        fprintf(stderr, "%s: error: give --weights or --synthetic-weights, not both\n", prog);
        return 2;
    }
    if (mc_io_usage_check(prog, &io, in_path, top))
        return 2;
    /* the weights */
    const unsigned char *w = g->weights;
    unsigned char *wown = NULL;
    if (synth) {
        if (!(wown = malloc((size_t)g->weights_bytes + 4))) {
            fprintf(stderr, "%s: error: out of memory for %lld bytes of weights\n", prog, (long long)g->weights_bytes);
            return 1;
        }
        fill_random((float *)wown, g->weights_bytes / 4, 7, 0.05f);
        w = wown;
    } else if (wfile || !w) {
        char def[MC_OUT_PATH];
        if (!wfile) {
            snprintf(def, sizeof def, "%s.weights", argv[0]);
            wfile = def;
        }
        if (!(w = wown = read_weights(wfile))) return 1;
    }
    /* the input, the outputs and DIR, checked before the GPU is */
    Outputs outs;
    outputs_of(&outs);
    int npz = out_path ? mc_cli_output_kind(prog, out_path, outs.n, outs.name) : 0;
    if (npz < 0) return 1;
    if (c.argmax_path && mc_cli_argmax_check(prog, g->name, outs.n, outs.rank, outs.shape)) return 1;
    if (top && (outs.n != 1 || outs.rank[0] != 2)) {
        fprintf(stderr, "%s: error: --top lists the best classes of a classifier's output [B, classes]; model '%s' "
                        "is not a classifier%s\n", prog, g->name,
                outs.n == 1 && outs.rank[0] == 4 ? " (a segmentation model's class map: --argmax M.npy, --mask)" : "");
        return 1;
    }
    if (io.nimage && (g->in_rank != 4 || g->in_shape[1] != 3)) {
        fprintf(stderr, "%s: error: --image needs a model whose input is RGB images [B, 3, H, W]\n", prog);
        return 1;
    }
    if (io.nimage && mc_image_list(prog, io.nimage, io.image, &imgs)) return 1;
    if ((io.nimage || io.mask || io.overlay || io.json) &&
        mc_io_check(prog, &mc_model_io, &io, imgs.n, (int)g->in_shape[0], out_path || c.argmax_path || io.save_input))
        return 1;
    int64_t nin = mc_cli_numel(g->in_rank, g->in_shape);
    float *x = malloc((size_t)nin * sizeof(float) + 4), *y[MC_CUDA_MAX_OUTPUTS] = {0};
    int have = x != NULL;
    for (int j = 0; j < outs.n; j++) have &= (y[j] = malloc((size_t)mc_cli_numel(outs.rank[j], outs.shape[j]) * 4 + 4)) != NULL;
    if (!have) {
        fprintf(stderr, "%s: error: out of memory for the input and outputs\n", prog);
        return 1;
    }
    if (in_path) {
        if (mc_cli_load_input(prog, in_path, g->in_rank, g->in_shape, x)) return 1;
    } else if (io.nimage) {
        memset(x, 0, (size_t)nin * sizeof(float));
    } else {
        fill_random(x, nin, 1, 1.0f);
    }
    static McOut yo, mo; /* static: discard_at_exit runs after main returns */
    char msg[1024], dev[256];
    if (io.nimage) {
        if (mc_cuda_open(dev, sizeof dev, msg, sizeof msg)) {
            fprintf(stderr, "%s: error: %s\n", prog, msg);
            return 1;
        }
        mc_cuda_setup(w, x);
        free(wown);
        nouts_run = outs.n;
        int rc = mc_io_images(prog, &mc_model_io, &io, &c, &imgs, g->in_rank, g->in_shape, x, y, outs.n, outs.name,
                              outs.rank, outs.shape, npz, top, gpu_run, NULL, dev);
        mc_image_list_free(&imgs);
        if (rc < 0) return 1;
        if (nbench) bench(nbench, dev);
        if (nprof) profile(nprof, dev);
        mc_cuda_close();
        free(x);
        for (int j = 0; j < outs.n; j++) free(y[j]);
        return mc_cli_check_stdout(prog) ? 1 : rc;
    }
    if (out_path || c.argmax_path) {
        mc_cleanup_install();
        if (out_path && mc_out_open(&yo, out_path, 0666, msg, sizeof msg)) {
            fprintf(stderr, "%s: error: %s\n", prog, msg);
            return 1;
        }
        open_out = out_path ? &yo : NULL;
        if (c.argmax_path && mc_out_open(&mo, c.argmax_path, 0666, msg, sizeof msg)) {
            fprintf(stderr, "%s: error: %s\n", prog, msg);
            return 1;
        }
        open_map = c.argmax_path ? &mo : NULL;
        atexit(discard_at_exit); /* every exit before the commit (no GPU, a CUDA error) */
    }
    if (kdir && check_dir(kdir)) return 1;
    if (mc_cuda_open(dev, sizeof dev, msg, sizeof msg)) {
        fprintf(stderr, "%s: error: %s\n", prog, msg);
        return 1;
    }
    mc_cuda_setup(w, x);
    free(wown);
    if (outs.n > 1) mc_cuda_outputs.run(y);
    else mc_cuda_run(y[0]);
    if (top) {
        McLabels lab = {0, NULL};
        const char *const *names;
        int64_t printed = 0;
        if (mc_io_names(prog, &mc_model_io, &io, (int)outs.shape[0][1], &lab, &names)) return 1;
        if (io.json) mc_labels_json_begin(stdout);
        if (mc_labels_print_top(stdout, y[0], outs.shape[0][0], outs.shape[0][1], top, names, NULL, io.json, &printed)) {
            fprintf(stderr, "%s: error: out of memory for --top\n", prog);
            return 1;
        }
        if (io.json) mc_labels_json_end(stdout, -1);
        mc_labels_free(&lab);
    }
    if (out_path) {
        open_out = NULL;
        if (mc_cli_write_outputs(prog, &yo, npz, outs.n, outs.name, y, outs.rank, outs.shape)) return 1;
    }
    if (c.argmax_path) {
        open_map = NULL;
        if (mc_cli_write_argmax(prog, &mo, y[0], outs.shape[0])) return 1;
    }
    if (nbench) bench(nbench, dev);
    if (nprof) profile(nprof, dev);
    if (kdir && mc_cuda_kernel_outputs(write_kernel_output, (void *)kdir)) return 1;
    if (kdir) fprintf(stderr, "%s: wrote %d kernels' outputs to %s/k<i>.npy\n", prog, g->nk, kdir);
    mc_cuda_close();
    free(x);
    for (int j = 0; j < outs.n; j++) free(y[j]);
    return mc_cli_check_stdout(prog);
}
