/* runtime/exe/mc_exe_cli.h -- the command line of the executables `mambac
 * compile --emit exe` writes, shared by the CPU one (exe_main.c) and the
 * CUDA one (cuda_main.c): counts, shapes in messages, the model's input.
 *
 * Header-only (static functions), so that each executable compiles the
 * same text with its own main and no file list changes.  prog is the
 * program's name at the start of every message.
 */
#ifndef MC_EXE_CLI_H
#define MC_EXE_CLI_H
#include "../mc_npy.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits of the counts (a run count's timings take 8 bytes each). */
#define MAX_RUNS 10000000L   /* --bench, --profile */
#define MAX_THREADS 1024L    /* --threads, as mambac's */
#define MAX_TOP 1000000L     /* --top, as mambac's */

static int
mc_cli_count(const char *prog, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "%s: error: %s needs an integer in %ld..%ld, got '%s'\n", prog, opt, lo, hi,
                s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int64_t
mc_cli_numel(int rank, const int64_t *d)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= d[i];
    return n;
}

static const char *
mc_cli_npy_type_name(McNpyType t)
{
    switch (t) {
    case MC_NPY_F32: return "float32";
    case MC_NPY_F64: return "float64";
    case MC_NPY_I64: return "int64";
    case MC_NPY_I32: return "int32";
    case MC_NPY_U8: return "uint8";
    default: return "an unsupported dtype";
    }
}

/* "[d0,d1,...]" */
static void
mc_cli_shape_str(char *buf, size_t n, int rank, const int64_t *d)
{
    size_t k = 0;
    k += snprintf(buf + k, n - k, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)d[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* Loads and checks the model's input (float32 of exactly the given shape,
 * read with mc_npy_read: regular files only, sizes checked before the
 * data); copies it into dst.  0, or -1 with one message on stderr. */
static int
mc_cli_load_input(const char *prog, const char *path, int rank, const int64_t *shape, float *dst)
{
    McNpy a;
    char msg[512];
    if (mc_npy_read(path, &a, msg, sizeof msg)) {
        fprintf(stderr, "%s: error: %s\n", prog, msg);
        return -1;
    }
    char want[128], got[128];
    mc_cli_shape_str(want, sizeof want, rank, shape);
    mc_cli_shape_str(got, sizeof got, a.rank, a.shape);
    int ok = a.rank == rank;
    for (int i = 0; ok && i < a.rank; i++)
        ok = a.shape[i] == shape[i];
    if (a.type != MC_NPY_F32) {
        fprintf(stderr,
                "%s: error: %s: input has dtype %s, this model takes float32 %s "
                "(convert with x.astype(numpy.float32))\n",
                prog, path, mc_cli_npy_type_name(a.type), want);
        mc_npy_free(&a);
        return -1;
    }
    int zero = -1;
    for (int i = a.rank - 1; i >= 0; i--)
        if (a.shape[i] == 0)
            zero = i;
    if (!ok && zero >= 0) { /* no recompiling helps */
        fprintf(stderr, "%s: error: %s: input has shape %s, %s; this model takes %s\n", prog, path, got,
                zero == 0 && a.rank > 1 ? "an empty batch (batch 0)" : "a zero-size dimension", want);
        mc_npy_free(&a);
        return -1;
    }
    if (!ok) {
        fprintf(stderr,
                "%s: error: %s: input has shape %s, this model was compiled for %s "
                "(recompile with mambac compile --batch/--image-size to change it)\n",
                prog, path, got, want);
        mc_npy_free(&a);
        return -1;
    }
    memcpy(dst, a.data, (size_t)mc_cli_numel(rank, shape) * sizeof(float));
    mc_npy_free(&a);
    return 0;
}

/* What --output PATH gets for the model's n outputs, before any work: 1
 * an .npz of them all, 0 a .npy (one output); -1 with the message printed
 * (several outputs and no .npz name, names an .npz cannot tell apart). */
static int
mc_cli_output_kind(const char *prog, const char *path, int n, const char *const *names)
{
    char msg[1024];
    int k = mc_npz_output_kind(path, n, names, msg, sizeof msg);
    if (k < 0)
        fprintf(stderr, "%s: error: %s\n", prog, msg);
    return k;
}

/* The outputs (data[j] of ranks[j], shapes[j]) into the open o: an .npz
 * of them all (npz), else the one as .npy.  0, or -1 with the message
 * printed (o discarded). */
static int
mc_cli_write_outputs(const char *prog, McOut *o, int npz, int n, const char *const *names, float *const *data,
                     const int *ranks, const int64_t *const *shapes)
{
    McNpzArray a[MC_NPZ_MAX_ARRAYS];
    char msg[1024];
    for (int j = 0; j < n && j < MC_NPZ_MAX_ARRAYS; j++)
        a[j] = (McNpzArray){names[j], data[j], ranks[j], shapes[j]};
    if (!mc_npy_write_arrays_out(o, npz, a, n, msg, sizeof msg))
        return 0;
    fprintf(stderr, "%s: error: %s\n", prog, msg);
    return -1;
}

/* 0, or 1 with a message when what was printed could not be written
 * (a full disk, a closed pipe). */
/* --argmax PATH: the class map of a segmentor, whose one output is
 * [B, classes, H, W].  0, or -1 with a message naming the outputs. */
static int
mc_cli_argmax_check(const char *prog, const char *model, int n, const int *ranks, const int64_t *const *shapes)
{
    if (n == 1 && ranks[0] == 4)
        return 0;
    fprintf(stderr, "%s: error: --argmax writes the class map of a segmentation model's output [B, classes, H, W]; "
                    "model '%s' has %d output%s%s\n",
            prog, model, n, n == 1 ? " of rank " : "s", n == 1 ? (ranks[0] == 2 ? "2 (use --top)" : "other than 4") : "");
    return -1;
}

/* Writes the class map (int32 [B, H, W]) of y [B, C, H, W] into the open o:
 * 0, or -1 with the message printed (o discarded). */
static int
mc_cli_write_argmax(const char *prog, McOut *o, const float *y, const int64_t *shape)
{
    char msg[1024];
    int rc = mc_npy_write_argmax_out(o, y, shape, msg, sizeof msg);
    if (rc)
        fprintf(stderr, "%s: error: %s\n", prog, msg);
    return rc;
}

/* The options both executables take. */
typedef struct McCliOpts {
    const char *in_path, *out_path, *argmax_path;
    long threads, nbench, nprof;
} McCliOpts;

/* argv[*i] if it is one of the shared options (--input/-i, --output/-o, --argmax,
 * --threads, --bench, --profile [N]): stored in c, *i past its value;
 * returns 1, 0 when argv[*i] is none of them, or 2 (a usage error, the
 * message printed). */
static int
mc_cli_common(const char *prog, int argc, char **argv, int *i, McCliOpts *c)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    const char **path = !strcmp(a, "--input") || !strcmp(a, "-i")    ? &c->in_path
                        : !strcmp(a, "--output") || !strcmp(a, "-o") ? &c->out_path
                        : !strcmp(a, "--argmax")                     ? &c->argmax_path
                                                                     : NULL;
    if (path) {
        if (!v) {
            fprintf(stderr, "%s: error: %s needs a file name\n", prog, a);
            return 2;
        }
        *path = v;
    } else if (!strcmp(a, "--threads")) {
        if (mc_cli_count(prog, a, v, 1, MAX_THREADS, &c->threads)) return 2;
    } else if (!strcmp(a, "--bench")) {
        if (mc_cli_count(prog, a, v, 1, MAX_RUNS, &c->nbench)) return 2;
    } else if (!strcmp(a, "--profile")) {
        c->nprof = 10;
        if (!v || v[0] < '0' || v[0] > '9') return 1; /* no count given */
        if (mc_cli_count(prog, a, v, 1, MAX_RUNS, &c->nprof)) return 2;
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

static int
mc_cli_check_stdout(const char *prog)
{
    char msg[512];
    if (mc_out_check_stdout(msg, sizeof msg)) {
        fprintf(stderr, "%s: error: %s\n", prog, msg);
        return 1;
    }
    return 0;
}

#endif
