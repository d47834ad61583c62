/* frontend/verify.c -- `mambac verify MODEL [--input X.npy] [--backend llvm]
 * [--tolerance T]`: where a backend's answer goes wrong, kernel by kernel.
 *
 * The model's kernel program (the pipeline for the backend's target: graph
 * passes, lowering, the target's kernel passes, the memory plan; or a .kir
 * file) runs through the reference executor of the kernel IR
 * (backends/ref/ref_kexec.h), and each of its kernels also runs through the
 * backend on the reference's inputs of that kernel (copied into the
 * backend's own memory at the planned offsets before the kernel), so errors
 * do not add up from kernel to kernel.  After each kernel the elements it
 * wrote are compared: relative error = L2 norm of (backend - reference) /
 * L2 norm of the reference (over every image of a per-image segment).  One
 * line per kernel; the first kernel over the tolerance stops the run with
 * its name and the graph nodes it computes (Kernel.node_names), exit 1.
 *
 * Backends: llvm (the JIT-compiled program, one kernel at a time:
 * backends/llvm/llvm_verify.h; --precision bf16: the program with bf16
 * GEMMs and convolutions, default tolerance 2e-2).  cuda: the files DIR/k<i>.npy that an
 * executable built with `mambac compile --target cuda --instrument` writes
 * with --kernel-outputs DIR (every kernel's output buffer after one run of
 * the kernels one by one); the program is the cuda target's at --precision
 * (the same kernels as the executable's), the default tolerance the
 * precision's (fp32 1e-4, tf32 1e-3, bf16 2e-2).  Unlike llvm's, the CUDA
 * kernels ran on their own earlier outputs, not on the reference's: errors
 * add up from kernel to kernel.  A kernel whose output stays on chip inside
 * its host has no file and is not compared.  The hidden option
 * --write-reference DIR writes the reference's files of the same form
 * instead of comparing (for tests without a GPU).
 *
 * Testing hook: MAMBAC_VERIFY_BREAK=K perturbs the backend's output of
 * kernel K (every element x becomes x + 0.5*(|x| + 1)) after it ran, so a
 * test can check that verify names exactly that kernel.
 */
#include "frontend/verify.h"
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/cuda/cuda.h"
#include "backends/llvm/llvm.h"
#include "backends/llvm/llvm_verify.h"
#include "backends/ref/ref_kexec.h"
#include "frontend/frontend.h"
#include "frontend/program.h"
#include "frontend/weights.h"
#include "frontend/yamlutil.h"
#include "ir/weights_blob.h"
#include "passes/lower.h"
#include "passes/pipeline.h"
#include "runtime/mc_npy.h"
#include "runtime/mc_rt.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static const char *usage_verify =
    "usage: mambac verify MODEL [--input X.npy] [options]\n"
    "\n"
    "Runs the model's kernel program twice, kernel by kernel: through the reference\n"
    "executor of the kernel IR (plain C, a buffer of its own per tensor) and through\n"
    "a backend, each backend kernel on the reference's inputs of that kernel.  Prints\n"
    "every fused kernel's relative error (L2 norm of the difference over that of the\n"
    "reference, on what the kernel writes) and stops at the first one over the\n"
    "tolerance, naming it and the graph nodes it computes: exit status 1.  Exit\n"
    "status 0 when every kernel is within the tolerance.\n"
    "\n"
    "MODEL is a public config, a graph YAML, graph IR text (.mir) or kernel IR text\n"
    "(.kir, as 'mambac dump --format kernels' prints it, hand-edited or not).\n"
    "\n"
    "options:\n"
    "  --input X.npy      input (float32, the model's input shape); default: a\n"
    "                     deterministic random input of the model's shape\n"
    "  --weights W        checkpoint (.pth or .safetensors); default: random weights\n"
    "  --seed N           seed for the random weights and input (default 0)\n"
    "  --backend NAME     llvm (default: native code for this machine, JIT-compiled)\n"
    "                     or cuda: the kernel outputs of an executable built with\n"
    "                     mambac compile --target cuda --instrument, run on a GPU\n"
    "                     with --kernel-outputs DIR (give the same --input here)\n"
    "  --kernel-outputs DIR  cuda: the directory of k<i>.npy files it wrote; its\n"
    "                     kernels ran on their own outputs, so errors add up\n"
    "  --precision P      fp32 (default) or bf16: llvm: the kernels compiled at that\n"
    "                     precision (mambac compile --precision); cuda: the\n"
    "                     executable's fp32, tf32 or bf16\n"
    "  --tolerance T      the largest relative error accepted (default: fp32 1e-4,\n"
    "                     tf32 1e-3, bf16 2e-2)\n"
    "  --batch B          batch size for a public config without --input (default 1)\n"
    "  --image-size H[xW] input size for a public config without --input (default:\n"
    "                     the config's DATA.IMG_SIZE)\n"
    "  --model M.yaml     with a .kir MODEL: the model whose weights (--weights or\n"
    "                     random) and graph passes make the program's constants;\n"
    "                     without it each weight buffer gets random values\n"
    "  --threads N        worker threads (default: all cores)\n"
    "  -v                 print the program's size and each step's time\n";

typedef struct VOpts {
    const char *model, *weights, *input, *backend, *graph_model;
    const char *kdir, *wref, *precision; /* cuda: --kernel-outputs, --write-reference, --precision */
    double tol;                           /* < 0: the default */
    int batch, H, W, seed, threads, verbose;
} VOpts;

static int
usage_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mambac verify: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'mambac verify --help'.\n", stderr);
    return 2;
}

/* s as a number in [lo, hi], a whole one when `whole`: 0, or -1 */
static int
num_arg(const char *s, double lo, double hi, int whole, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi) || (whole && v != floor(v))) return -1;
    *out = v;
    return 0;
}

/* 0, 2 (usage error; message printed), or -1 after --help */
static int
parse_args(int argc, char **argv, VOpts *o)
{
    static const char *with_value[] = {"--input", "--weights", "--seed", "--backend", "--tolerance", "--batch",
                                       "--image-size", "--model", "--threads",
                                       "--kernel-outputs", "--write-reference", "--precision"};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        double d, d2;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_verify, stdout);
            return -1;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (o->model) return usage_err("unexpected argument '%s'", a);
            o->model = a;
            continue;
        }
        char key[64];
        snprintf(key, sizeof key, "%s", a);
        char *eq = strchr(key, '=');
        if (eq) {
            *eq = 0;
            val = a + (eq - key) + 1;
        }
        int known = 0;
        for (unsigned k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(key, with_value[k]);
        if (!known) return usage_err("unknown option '%s'", key);
        if (!val) {
            if (i + 1 >= argc) return usage_err("option '%s' needs a value", key);
            val = argv[++i];
        }
        if (!strcmp(key, "--input")) o->input = val;
        else if (!strcmp(key, "--weights")) o->weights = val;
        else if (!strcmp(key, "--backend")) o->backend = val;
        else if (!strcmp(key, "--model")) o->graph_model = val;
        else if (!strcmp(key, "--kernel-outputs")) o->kdir = val;
        else if (!strcmp(key, "--write-reference")) o->wref = val;
        else if (!strcmp(key, "--precision")) o->precision = val;
        else if (!strcmp(key, "--image-size")) {
            char buf[64], *x;
            snprintf(buf, sizeof buf, "%s", val);
            if ((x = strpbrk(buf, "xX"))) *x++ = 0;
            if (num_arg(buf, 1, 1 << 20, 1, &d) || num_arg(x ? x : buf, 1, 1 << 20, 1, &d2))
                return usage_err("--image-size wants H or HxW, got '%s'", val);
            o->H = (int)d;
            o->W = (int)d2;
        } else {
            static const struct { const char *key, *want; double lo, hi; int whole; } nums[] = {
                {"--seed", "a non-negative integer", 0, 2147483647, 1},
                {"--threads", "an integer in 1..1024", 1, 1024, 1},
                {"--batch", "an integer in 1..65536", 1, 65536, 1},
                {"--tolerance", "a non-negative number such as 1e-4", 0, DBL_MAX, 0},
            };
            unsigned k = 0;
            while (strcmp(key, nums[k].key)) k++; /* every other key with a value is a number */
            if (num_arg(val, nums[k].lo, nums[k].hi, nums[k].whole, &d))
                return usage_err("%s wants %s, got '%s'", key, nums[k].want, val);
            if (k == 0) o->seed = (int)d;
            else if (k == 1) o->threads = (int)d;
            else if (k == 2) o->batch = (int)d;
            else o->tol = d;
        }
    }
    if (!o->model) return usage_err("%s", "no MODEL file given");
    if (strcmp(o->backend, "llvm") && strcmp(o->backend, "cuda"))
        return usage_err("--backend must be llvm or cuda, got '%s'", o->backend);
    int cuda = !strcmp(o->backend, "cuda");
    if (!cuda && (o->kdir || o->wref))
        return usage_err("%s", "--kernel-outputs applies to --backend cuda only");
    if (cuda && !o->kdir == !o->wref)
        return usage_err("%s", "--backend cuda needs --kernel-outputs DIR (what an executable built with "
                               "mambac compile --target cuda --instrument wrote)");
    int prec = o->precision ? mc_cuda_precision_parse(o->precision) : MC_CUDA_FP32;
    if (prec < 0) return usage_err("--precision must be fp32, tf32 or bf16, got '%s'", o->precision);
    if (!cuda && prec == MC_CUDA_TF32) return usage_err("%s", "--precision tf32 is for --backend cuda; llvm takes fp32 or bf16");
    McErr e;
    int r = !cuda && prec == MC_CUDA_BF16 ? mc_llvm_bf16_check(NULL, NULL, NULL, &e) : 0;
    if (r > 0) return usage_err("%s", e.msg);
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ the program */

/* The kernel program of MODEL through the pipeline for the backend's
 * target (t), its weights in ws (frontend/program.h); a public config is
 * built at the input's shape; g keeps the graph p's names point into. */
static int
load_program(const VOpts *o, int kind, const McNpy *x, const McTarget *t, Graph *g, WeightStore *ws, KProgram *p,
             McErr *err)
{
    PassOptions po;
    memset(&po, 0, sizeof po);
    po.out = stdout;
    McSource s = {o->model, o->graph_model, o->weights, o->seed, o->batch, o->H, o->W};
    if (kind == 1 && x) {
        if (x->rank != 4) return mc_err(err, "%s: error: input must be NCHW [B,C,H,W], got rank %d", o->input, x->rank);
        if ((o->batch && o->batch != x->shape[0]) || (o->H && (o->H != x->shape[2] || o->W != x->shape[3])))
            return mc_err(err, "%s: error: --batch/--image-size disagree with the input's shape", o->input);
        s.batch = (int)x->shape[0];
        s.H = (int)x->shape[2];
        s.W = (int)x->shape[3];
    } else if (kind != 1 && kind != 4 && (o->batch || o->H)) {
        mc_warn("--batch and --image-size apply to public configs only; %s fixes its shapes", o->model);
    }
    return mc_source_program(&s, kind, t, &po, g, ws, p, 1, err);
}

/* ------------------------------------------------------------ comparing */

typedef struct Verify {
    const VOpts *o;
    const KProgram *p;
    McLlvmKernels *lk;        /* llvm; NULL for cuda (its files) */
    float *kf;                /* cuda: one kernel's output buffer, read from its file */
    int64_t kf_n;
    uint8_t *arena;           /* the backend's memory: scratch at the planned offsets */
    float *in;                /* its input buffer */
    float *out[MC_MAX_OUTPUTS]; /* its output buffers (p->output_bufs' order) */
    float *ra, *ba;           /* one kernel's output, reference and backend */
    double *d2, *r2;          /* per kernel: sum of squared differences, of squared references */
    int *bad;                 /* per kernel: a non-finite difference */
    int *printed;             /* per kernel: its line is out */
    int brk;                  /* MAMBAC_VERIFY_BREAK, or -1 */
    int worst;                /* kernel with the largest error so far */
    double worst_rel;
} Verify;

/* Where buffer b is in the backend's memory (NULL: a weight, which the
 * backend holds packed). */
static float *
backend_buf(Verify *v, int b, int k, int64_t img)
{
    const Buffer *bf = &v->p->bufs[b];
    int64_t copy = 0; /* a segment's per-image scratch: image img's group copy */
    if (bf->group_bytes && mc_kprogram_segment_of(v->p, k) >= 0 && v->p->segs[0].groups > 1)
        copy = img % v->p->segs[0].groups * bf->group_bytes;
    switch (bf->kind) {
    case BUF_INPUT: return v->in;
    case BUF_OUTPUT: return v->out[mc_kprogram_output_index(v->p, b)];
    case BUF_SCRATCH: return (float *)(v->arena + bf->offset + copy);
    default: return NULL;
    }
}

static double
rel_error(const Verify *v, int k)
{
    if (v->bad[k]) return INFINITY;
    if (v->r2[k] == 0) return v->d2[k] == 0 ? 0 : INFINITY;
    return sqrt(v->d2[k] / v->r2[k]);
}

/* kernel k's line: index, kind, name, relative error */
static void
print_line(Verify *v, int k)
{
    const Kernel *kn = &v->p->k[k];
    double rel = rel_error(v, k);
    printf("k%-4d %-10s %-56s %.3e%s\n", k, mc_kernel_kind_name(kn->kind), kn->name ? kn->name : "?", rel,
           rel <= v->o->tol ? "" : "  over the tolerance");
    v->printed[k] = 1;
    if (rel > v->worst_rel || v->worst < 0) {
        v->worst = k;
        v->worst_rel = rel;
    }
}

static void
print_nodes(const Kernel *k)
{
    printf("verify: it computes the graph node%s", k->nnodes == 1 ? "" : "s");
    for (int j = 0; j < k->nnodes; j++) printf(" %%%s", k->node_names[j] ? k->node_names[j] : "?");
    printf("%s\n", k->nnodes ? "" : " (none recorded)");
}

/* --write-reference: kernel k's whole output buffer as DIR/k<k>.npy */
static int
write_reference(Verify *v, int k, float *const *bufs)
{
    const Buffer *b = &v->p->bufs[v->p->k[k].out.buf];
    char path[4200], msg[1024];
    snprintf(path, sizeof path, "%s/k%d.npy", v->o->wref, k);
    if (mc_npy_write_f32(path, bufs[v->p->k[k].out.buf], b->shape.rank, b->shape.d, msg, sizeof msg)) {
        fprintf(stderr, "mambac verify: error: %s\n", msg);
        return 2;
    }
    return 0;
}

/* cuda: kernel k's output buffer from DIR/k<k>.npy (the buffer's shape,
 * float32), read once per kernel.  NULL with kf_n = -1 on an error, or
 * with kf_n = 0 for a kernel inside another whose file is missing (its
 * output stays on chip: a line says so). */
static float *
kernel_file(Verify *v, int k)
{
    const Kernel *kn = &v->p->k[k];
    const Buffer *b = &v->p->bufs[kn->out.buf];
    char path[4200], msg[1024];
    snprintf(path, sizeof path, "%s/k%d.npy", v->o->kdir, k);
    if (v->kf_n == -2 - k) return v->kf; /* read for an earlier image */
    if (kn->host >= 0 && access(path, F_OK)) {
        printf("k%-4d %-10s %-56s not written (on chip inside k%d)\n", k, mc_kernel_kind_name(kn->kind),
               kn->name ? kn->name : "?", kn->host);
        v->printed[k] = 1;
        v->kf_n = 0;
        return NULL;
    }
    McNpy a;
    v->kf_n = -1;
    if (mc_npy_read(path, &a, msg, sizeof msg)) {
        fprintf(stderr, "mambac verify: error: %s (kernel k%d's output; --kernel-outputs names the directory the "
                        "instrumented executable wrote)\n", msg, k);
        return NULL;
    }
    int same = a.type == MC_NPY_F32 && a.rank == b->shape.rank;
    for (int d = 0; same && d < a.rank; d++) same = a.shape[d] == b->shape.d[d];
    if (!same) {
        char want[128];
        fprintf(stderr, "mambac verify: error: %s: not float32 of shape %s, kernel k%d's output buffer (an "
                        "executable of another model, shape or precision?)\n", path,
                mc_shape_str(&b->shape, want, sizeof want), k);
        mc_npy_free(&a);
        return NULL;
    }
    free(v->kf);
    v->kf = a.data;
    v->kf_n = -2 - k;
    return v->kf;
}

/* The hook of the reference run: before kernel k, the backend runs it on
 * the reference's inputs; after it, the outputs are compared. */
static int
verify_hook(void *user, int k, int64_t img, McKexecPhase phase, float *const *bufs)
{
    Verify *v = user;
    const KProgram *p = v->p;
    const Kernel *kn = &p->k[k];
    if (phase == MC_KEXEC_BEFORE) {
        for (int j = 0; j < kn->nin + kn->nargs; j++) {
            int b = j < kn->nin ? kn->in[j].buf : kn->args[j - kn->nin].buf;
            float *dst = backend_buf(v, b, k, img);
            if (dst) memcpy(dst, bufs[b], (size_t)p->bufs[b].bytes);
        }
        if (v->lk) mc_llvm_kernels_run(v->lk, k, img, v->arena, v->in, v->out, p->noutputs);
        return 0;
    }
    const View *o = &kn->out;
    int s = mc_kprogram_segment_of(p, k);
    int64_t images = s >= 0 ? p->segs[s].images : 1;
    if (v->o->wref) return img == images - 1 ? write_reference(v, k, bufs) : 0;
    int64_t n = 1;
    for (int d = 0; d < o->rank; d++) n *= o->shape[d];
    float *bb = v->lk ? backend_buf(v, o->buf, k, img) : kernel_file(v, k);
    if (!bb) return v->kf_n < 0 ? 2 : 0; /* an error, or a kernel on chip (its line printed) */
    mc_ref_view_copy(p, k, img, o, bufs[o->buf], 0, n, v->ra, 0);
    mc_ref_view_copy(p, k, img, o, bb, 0, n, v->ba, 0);
    if (k == v->brk) /* the testing hook: a broken kernel */
        for (int64_t i = 0; i < n; i++) v->ba[i] += 0.5f * (fabsf(v->ba[i]) + 1.0f);
    double d2 = 0, r2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = v->ba[i], r = v->ra[i];
        if (isnan(a) && isnan(r)) continue;
        if (!isfinite(a - r)) v->bad[k] = 1;
        else d2 += (a - r) * (a - r);
        if (isfinite(r)) r2 += r * r;
    }
    v->d2[k] += d2;
    v->r2[k] += r2;
    double rel = rel_error(v, k);
    int over = !(rel <= v->o->tol);
    if (over && s >= 0) /* the segment's kernels before k, checked on the images so far */
        for (int j = p->segs[s].k0; j < k; j++)
            if (!v->printed[j]) print_line(v, j);
    if (img == images - 1 || over) print_line(v, k);
    if (!over) return 0;
    printf("verify: kernel k%d (%s \"%s\") is over the tolerance %.1e: relative error %.3e", k,
           mc_kernel_kind_name(kn->kind), kn->name ? kn->name : "?", v->o->tol, rel);
    if (images > 1) printf(" (image %lld of the per-image segment's 0..%lld)", (long long)img, (long long)images - 1);
    printf("\n");
    print_nodes(kn);
    return 1;
}

/* Runs the comparison: 0 all within the tolerance, 1 a kernel over it,
 * 2 a kernel's file is bad (message printed), -1 with err. */
static int
verify_program(const VOpts *o, const KProgram *p, const WeightStore *ws, const float *x, McErr *err)
{
    Verify v;
    memset(&v, 0, sizeof v);
    v.o = o;
    v.p = p;
    v.worst = -1;
    const char *brk = getenv("MAMBAC_VERIFY_BREAK");
    v.brk = -1;
    if (brk && *brk) { /* the testing hook (file comment) */
        char *end;
        long b = strtol(brk, &end, 10);
        if (*end || b < 0 || b >= p->nk) mc_warn("MAMBAC_VERIFY_BREAK=%s is no kernel index of the program; ignored", brk);
        else v.brk = (int)b;
    }
    int64_t maxout = 1;
    for (int k = 0; k < p->nk; k++) {
        int64_t n = 1;
        for (int d = 0; d < p->k[k].out.rank; d++) n *= p->k[k].out.shape[d];
        if (n > maxout) maxout = n;
    }
    int rc = -1;
    uint8_t *blob = mc_weights_blob(p, ws, NULL, NULL, err);
    float *yref[MC_MAX_OUTPUTS] = {0};
    int have = 1;
    for (int j = 0; j < p->noutputs; j++) {
        size_t n = (size_t)p->bufs[p->output_bufs[j]].bytes + 4;
        have &= (yref[j] = malloc(n)) && (v.out[j] = malloc(n));
    }
    v.arena = mc_rt_alloc_aligned((size_t)(p->scratch_bytes > 0 ? p->scratch_bytes : 64), 64);
    v.in = malloc((size_t)p->bufs[p->input_buf].bytes + 4);
    v.ra = malloc(sizeof(float) * (size_t)maxout);
    v.ba = malloc(sizeof(float) * (size_t)maxout);
    v.d2 = calloc((size_t)p->nk + 1, sizeof(double));
    v.r2 = calloc((size_t)p->nk + 1, sizeof(double));
    v.bad = calloc((size_t)p->nk + 1, sizeof(int));
    v.printed = calloc((size_t)p->nk + 1, sizeof(int));
    if (!blob) goto done;
    if (!have || !v.arena || !v.in || !v.ra || !v.ba || !v.d2 || !v.r2 || !v.bad || !v.printed) {
        mc_err(err, "mambac verify: out of memory");
        goto done;
    }
    memset(v.arena, 0, (size_t)p->scratch_bytes);
    memcpy(v.in, x, (size_t)p->bufs[p->input_buf].bytes);
    if (!o->kdir && !o->wref && !(v.lk = mc_llvm_kernels_create(p, ws, err))) goto done;
    if (o->kdir)
        printf("verify: the CUDA kernels' outputs in %s, from one run of the whole program: each kernel ran on the "
               "earlier kernels' CUDA outputs, so errors add up from kernel to kernel (the llvm backend's do not)\n",
               o->kdir);
    if (!o->wref) printf("%-5s %-10s %-56s %s\n", "", "kind", "kernel", "rel error");
    rc = mc_ref_kexec_run(p, blob, x, yref, verify_hook, &v, err);
    if (rc == 0 && o->wref)
        printf("verify: the reference's %d kernel outputs written to %s/k<i>.npy\n", p->nk, o->wref);
    else if (rc == 0)
        printf("verify: all %d kernels within the tolerance %.1e (largest relative error %.3e, k%d %s)\n", p->nk, o->tol,
               v.worst_rel, v.worst, v.worst >= 0 && p->k[v.worst].name ? p->k[v.worst].name : "-");
done:
    mc_llvm_kernels_free(v.lk);
    free(v.kf);
    free(blob);
    for (int j = 0; j < p->noutputs; j++) {
        free(yref[j]);
        free(v.out[j]);
    }
    mc_rt_free_aligned(v.arena);
    free(v.in);
    free(v.ra);
    free(v.ba);
    free(v.d2);
    free(v.r2);
    free(v.bad);
    free(v.printed);
    return rc;
}

/* ------------------------------------------------------------ the command */

static void
random_input(float *x, int64_t n, uint64_t seed)
{
    uint64_t s = seed ^ 0x6a09e667f3bcc909ull;
    for (int64_t i = 0; i < n; i++) { /* splitmix64, uniform in [-1, 1) */
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        x[i] = (float)((double)(z >> 11) / 4503599627370496.0 - 1.0);
    }
}

int
mc_cmd_verify(int argc, char **argv)
{
    VOpts o;
    memset(&o, 0, sizeof o);
    o.backend = "llvm";
    o.tol = -1;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    /* the program: the backend's target row (cuda: at the executable's precision) */
    int prec = mc_cuda_precision_parse(o.precision ? o.precision : "fp32");
    McTarget target = strcmp(o.backend, "cuda") ? mc_llvm_target_row : mc_cuda_target_row;
    target.desc.precision = prec;
    if (o.wref && mkdir(o.wref, 0777) && errno != EEXIST) {
        fprintf(stderr, "mambac verify: error: --write-reference %s: %s\n", o.wref, strerror(errno));
        return 1;
    }
    if (o.tol < 0) o.tol = prec == MC_CUDA_FP32 ? 1e-4 : prec == MC_CUDA_TF32 ? 1e-3 : 2e-2;
    if (o.threads) {
        mc_rt_set_threads(o.threads);
#ifdef _OPENMP
        omp_set_num_threads(o.threads);
#endif
    }
    McErr err = {{0}};
    McNpy x;
    int have_x = 0;
    char emsg[1024];
    memset(&x, 0, sizeof x);
    if (o.input) {
        if (mc_npy_read(o.input, &x, emsg, sizeof emsg)) {
            fprintf(stderr, "%s\n", emsg);
            return 1;
        }
        have_x = 1;
        if (x.type != MC_NPY_F32) {
            fprintf(stderr, "%s: error: input must be float32 (dtype '<f4')\n", o.input);
            mc_npy_free(&x);
            return 1;
        }
    }
    double t0 = mc_rt_now_ms();
    Graph g;
    WeightStore ws;
    KProgram p;
    memset(&g, 0, sizeof g);
    memset(&p, 0, sizeof p);
    mc_weights_init(&ws);
    float *rx = NULL;
    int kind = mc_frontend_kind(o.model, &err);
    rc = kind < 0 || load_program(&o, kind, have_x ? &x : NULL, &target, &g, &ws, &p, &err) ? -1 : 0;
    if (!rc && o.verbose)
        fprintf(stderr, "mambac verify: %d kernels (%d per image), %d buffers, %.1f MB arena; built in %.1f ms\n", p.nk,
                p.nsegs ? p.segs[0].k1 - p.segs[0].k0 : 0, p.nbufs, p.scratch_bytes / 1e6, mc_rt_now_ms() - t0);
    const Buffer *ib = rc ? NULL : &p.bufs[p.input_buf];
    if (ib && have_x) {
        Shape xs = {x.rank > MC_MAX_RANK ? MC_MAX_RANK : x.rank, {0}};
        for (int i = 0; i < xs.rank; i++) xs.d[i] = x.shape[i];
        if (x.rank > MC_MAX_RANK || !mc_shape_eq(&xs, &ib->shape)) {
            char a[128], b[128];
            rc = mc_err(&err, "%s: error: input shape %s does not match the program's input %s", o.input,
                        mc_shape_str(&xs, a, sizeof a), mc_shape_str(&ib->shape, b, sizeof b));
        }
    } else if (ib) {
        mc_note("no --input given: a random input %s (seed %d)", mc_shape_str(&ib->shape, emsg, sizeof emsg), o.seed);
        if (!(rx = malloc((size_t)ib->bytes + 4))) rc = mc_err(&err, "mambac verify: out of memory");
        else random_input(rx, ib->bytes / 4, (uint64_t)o.seed);
    }
    if (!rc) {
        rc = verify_program(&o, &p, &ws, have_x ? (const float *)x.data : rx, &err);
        if (o.verbose) fprintf(stderr, "mambac verify: %.1f ms in all\n", mc_rt_now_ms() - t0);
    }
    if (rc < 0) fprintf(stderr, "%s\n", err.msg);
    mc_kprogram_free(&p);
    free(rx);
    mc_weights_free(&ws);
    mc_graph_free(&g);
    if (have_x) mc_npy_free(&x);
    return rc ? 1 : 0;
}
