/* frontend/main.c -- the mambac command line.
 *
 *   mambac run  MODEL [--weights W] --input X.npy --output Y.npy [--backend B] [--threads N]
 *   mambac dump MODEL [--weights W] [--batch B] [--image-size H[xW]] [--format ir|dot|yaml]
 *
 * Exit status: 0 ok, 1 user error (message on stderr), 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backends/backend.h"
#include "frontend/frontend.h"
#include "frontend/program.h"
#include "frontend/weights.h"
#include "frontend/yamlutil.h"
#include "passes/pass.h"
#include "passes/lower.h"
#include "passes/pipeline.h"
#include "backends/artifact.h"
#include "backends/llvm/llvm.h"
#include "backends/llvm/jit_cache.h"
#include "backends/cuda/cuda.h"
#include "frontend/verify.h"
#include "frontend/io.h"
#include "runtime/mc_npy.h"
#include "runtime/mc_out.h"
#include "runtime/mc_rt.h"

#define MC_VERSION "0.1.0"

static const char *usage_main =
    "usage: mambac <command> [options]\n"
    "\n"
    "mambac compiles vision state-space models (Spatial-Mamba) described in YAML.\n"
    "\n"
    "commands:\n"
    "  compile  compile a model to a native executable, library, object, LLVM IR or\n"
    "           assembly for any LLVM target, or to CUDA C (--target cuda)\n"
    "  run      run a model on an input tensor (.npy) with a backend (ref or llvm)\n"
    "  dump     print a model's graph IR (text, Graphviz DOT or graph YAML) or kernel IR\n"
    "  verify   compare a backend's kernels one by one with the kernel-IR reference executor\n"
    "\n"
    "MODEL is a public Spatial-Mamba config (.yaml with a MODEL key), a generic\n"
    "graph YAML (.yaml with a graph key, docs/graph-yaml.md) or graph IR text (.mir);\n"
    "dump and compile also take kernel IR text (.kir, docs/kernel-ir.md).\n"
    "Run 'mambac <command> --help' for the options of a command.\n"
    "  --version   print the version\n";

static const char *usage_run =
    "usage: mambac run MODEL (--image FILE|DIR... | --input X.npy) [--top K | --output Y.npy] [options]\n"
    "\n"
    "Runs the model on images or on X (float32 NCHW [B,C,H,W], any B >= 1, H and\n"
    "W >= 32) and prints the best classes or writes the outputs.  For a public\n"
    "config the graph is built for the input's shape; a graph YAML or .mir fixes it.\n"
    "\n"
    "options:\n"
    "  --image FILE|DIR...  JPEG/PNG files (a directory: its .jpg/.jpeg/.png files), one\n"
    "                   batch, prepared as the config's evaluation transform says\n"
    "                   (DATA.IMG_SIZE, TEST.CROP, DATA.INTERPOLATION; docs/images.md)\n"
    "  --save-input X.npy  write the prepared images (float32 NCHW)\n"
    "  --labels FILE    class names for --top, one a line (default: the checkpoint's,\n"
    "                   or ImageNet-1k's for a 1000-class classifier)\n"
    "  --json           print --top as JSON\n"
    "  --mask M.png     a segmentation model's class map of each --image at its own size,\n"
    "                   coloured (several images: M is a directory)\n"
    "  --overlay O.png  as --mask, blended over the image\n"
    "  --weights W      checkpoint: .pth (torch.save) or .safetensors; without it\n"
    "                   deterministic random weights are used (outputs meaningless)\n"
    "  --seed N         seed for the random weights (default 0)\n"
    "  --input X.npy    input tensor, already prepared\n"
    "  --output Y.npy   where to write the output\n"
    "  --backend NAME   ref (plain C kernels, the oracle; default) or llvm (the\n"
    "                   optimized native code, compiled in memory by ORC LLJIT)\n"
    "  --no-cache       llvm: compile anew, without the JIT cache ($MAMBAC_CACHE_DIR,\n"
    "                   else $XDG_CACHE_HOME/mambac or ~/.cache/mambac; empty: none)\n"
    "  --precision P    llvm: fp32 (default) or bf16 (GEMM and convolution weights\n"
    "                   stored bf16, products on bf16 pairs with fp32 sums:\n"
    "                   AVX512-BF16, AMX, AArch64 BF16)\n"
    "  --threads N      worker threads (default: all cores)\n"
    "  --top K          print each image's K best classes with names and probabilities\n"
    "  --argmax M.npy   also write the class map of a segmentation model's output\n"
    "                   [B,classes,H,W]: int32 [B,H,W], each pixel's best class\n"
    "  --list-backends  list the backends and exit\n"
    "  -v               print timings and sizes\n"
;

static const char *usage_dump =
    "usage: mambac dump MODEL [options]\n"
    "\n"
    "Prints the model's graph IR.  'mambac dump FILE.mir' reads IR text back\n"
    "and prints it again (byte-identical for IR that mambac printed); so does\n"
    "'mambac dump FILE.kir' for kernel IR (verified, printed as read; with -O1,\n"
    "--target or a pass option, after the steps an unplanned program still needs,\n"
    "as compile runs them).\n"
    "\n"
    "options:\n"
    "  --format F         ir (default), dot (Graphviz), yaml (generic graph YAML), or\n"
    "                     kernels (the kernel IR after the whole pipeline for the\n"
    "                     target: passes, lowering, the target's kernel passes, memory plan)\n"
    "  --target T         kernels: the pipeline of T: this machine (default), a triple,\n"
    "                     or cuda (with --precision fp32|tf32|bf16: its fusions differ)\n"
    "  --precision P      kernels: fp32 or bf16 for an LLVM target (bf16=1 on the\n"
    "                     schedules of its GEMMs and convolutions; see compile)\n"
    "  --batch B          batch size for a public config (default 1)\n"
    "  --image-size H[xW] input size for a public config (default: the config's\n"
    "                     DATA.IMG_SIZE, 224)\n"
    "  --weights W        also check a checkpoint against the model\n"
    "  -o FILE            write to FILE instead of standard output\n"
;

static const char *pass_help =
    "\nthe pipeline (graph passes, lower, the target's kernel passes, memplan; run and\n"
    "dump: the graph passes with -O1 or any option below; compile, run --backend llvm\n"
    "and dump --format kernels: always, all of it):\n"
    "  -O0 | -O1              no graph passes (default) | the whole pipeline\n"
    "  --list-passes          list every step with its purpose and exit\n"
    "  --print-after=PASS     print the IR after PASS (repeatable): graph IR after a\n"
    "                         graph pass, kernel IR after lower, a kernel pass or memplan\n"
    "  --print-before=PASS    print the IR before PASS (repeatable)\n"
    "  --print-after-all      print the IR after every step\n"
    "  --disable-pass=PASS    skip PASS (repeatable; not lower or memplan)\n"
    "  --verify-each          verify the graph / kernel IR after every step\n"
    "  --time-passes          print each pass's time to stderr\n"
    "  --stats                print each pass's rewrites and node counts to stderr\n"
    "  --dump-dot=FILE        write the optimized graph as Graphviz DOT, fusion groups\n"
    "                         (one per kernel) drawn as clusters\n";

static const char *usage_compile =
    "usage: mambac compile MODEL [options] -o OUT\n"
    "\n"
    "Compiles the model for one input shape and one target through LLVM: the graph\n"
    "passes fold and simplify, lowering fuses kernels and plans memory, and every\n"
    "kernel is generated as LLVM IR (constant shapes, target-sized vectors),\n"
    "optimized at O3 and emitted.\n"
    "\n"
    "options:\n"
    "MODEL may be kernel IR (.kir, e.g. from 'mambac dump M.yaml --format kernels',\n"
    "possibly edited): it is verified, and compiled as it stands when it carries a\n"
    "memory plan (else the target's kernel passes and the plan run first).\n"
    "\n"
    "  -o OUT             output path (required)\n"
    "  --labels FILE      class names the artifact prints (--top), one a line (default:\n"
    "                     the checkpoint's, or ImageNet-1k's for a 1000-class classifier)\n"
    "  --emit KIND        exe (default): OUT, a self-contained executable (weights inside)\n"
    "                       that runs 'OUT --input x.npy --output y.npy [--threads N]\n"
    "                       [--bench N] [--profile]';\n"
    "                     shared | obj: OUT.so | OUT.o plus OUT.h and OUT.weights;\n"
    "                     llvm-ir | asm: the optimized module as text in OUT\n"
    "  --weights W        checkpoint (.pth or .safetensors); default: random weights\n"
    "  --model M          with a .kir: the weights are M's constants after its graph\n"
    "                     passes (M's checkpoint: --weights), M built at the .kir's shape\n"
    "  --seed N           seed for the random weights (default 0)\n"
    "  --batch B          batch size (default 1)\n"
    "  --image-size H[xW] input size (default: the config's DATA.IMG_SIZE, 224)\n"
    "  --target TRIPLE    target triple (default: this machine), e.g. aarch64-linux-gnu,\n"
    "                     riscv64-linux-gnu; executables are linked with the triple's\n"
    "                     Debian cross gcc ($MAMBAC_CC overrides)\n"
    "  --cpu NAME         target CPU (default: this machine's, or generic when cross);\n"
    "                     the artifact checks at start-up that the CPU it runs on has\n"
    "                     every feature its code uses, and refuses with a sentence if not\n"
    "  --cpu A,B,...      one executable/.so/.o with the kernels compiled per CPU; at\n"
    "                     start-up the best one the running CPU supports is picked (-v and\n"
    "                     --help of the executable say which; MAMBAC_CPU=NAME forces one).\n"
    "                     An entry CPU+feat adds features, +feat alone is the default CPU\n"
    "                     with them (riscv64: generic-rv64,+v)\n"
    "  --cpu portable     every level of the target: x86-64,x86-64-v2,x86-64-v3,x86-64-v4;\n"
    "                     aarch64 generic,neoverse-n1,neoverse-v1; riscv64 generic-rv64,+v\n"
    "  --features F       target features, e.g. +avx512f,-avx512bw or +v\n"
    "  --list-targets     list the targets this LLVM knows and exit\n"
    "  --target cuda      CUDA C for NVIDIA GPUs instead (needs nvcc for --emit exe):\n"
    "                     --emit cuda writes OUT.cu + OUT.weights, --emit exe also builds OUT\n"
    "  --sm N             CUDA compute capability, 80 or newer (default 90: built\n"
    "                     for sm_90a, bf16 GEMMs on Hopper's wgmma)\n"
    "  --precision P      fp32 (default) or bf16: GEMM and convolution weights stored\n"
    "                     bf16 (half the bytes), products on bf16 pairs with fp32\n"
    "                     sums (x86-64 AVX512-BF16 vdpbf16ps or AMX tiles, AArch64\n"
    "                     bfdot), the rest fp32; every CPU compiled for needs it\n"
    "                     (avx512bf16, AArch64 bf16).  CUDA: fp32, tf32 or bf16\n"
    "                     tensor cores\n"
    "  --instrument       CUDA only: the executable takes --kernel-outputs DIR (every\n"
    "                     kernel's output, for mambac verify --backend cuda)\n"
    "  --list-cpus TRIPLE what is known of the CPUs of TRIPLE, and exit\n"
    "  -v                 print the triple, CPU and features used, the memory plan and\n"
    "                     the progress of each step\n"
    "%s";

typedef struct Opts {
    const char *model, *kirmodel, *weights, *input, *output, *argmax, *backend, *format, *outfile, *dot;
    const char *labels, *mask, *overlay, *save_input;
    const char **image;   /* --image's files and directories */
    int nimage, json;
    const char *target, *cpu, *features, *emit, *precision;
    int sm, instrument;
    int threads, batch, H, W, verbose, seed, top, opt, no_cache;
    PassOptions po;
} Opts;

static int
usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "mambac%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'mambac%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    return 2;
}

static int
parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int
parse_size(const char *s, int *H, int *W)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *x = strchr(buf, 'x');
    if (!x) x = strchr(buf, 'X');
    if (x) *x = 0;
    if (parse_int(buf, 1, 1 << 20, H)) return -1;
    if (x) return parse_int(x + 1, 1, 1 << 20, W);
    *W = *H;
    return 0;
}

/* Parses options of `cmd`; returns 0, or an exit status (2 usage, 0 for --help). */
/* every target's row, for --list-passes and pass names */
static const McTarget *const target_rows[] = {&mc_llvm_target_row, &mc_cuda_target_row, NULL};

static int
parse_opts(const char *cmd, int argc, char **argv, Opts *o, const char *usage, int *done)
{
    *done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char key[64];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            fputs(pass_help, stdout);
            *done = 1;
            return 0;
        }
        if (a[0] != '-' || !a[1]) {
            if (o->model) return usage_error(cmd, "unexpected argument '%s'", a);
            o->model = a;
            continue;
        }
        snprintf(key, sizeof key, "%s", a);
        char *eq = strchr(key, '=');
        if (eq) { *eq = 0; val = a + (eq - key) + 1; }
        if (!strcmp(key, "-v") || !strcmp(key, "--verbose")) { o->verbose = 1; continue; }
        if (!strcmp(key, "--instrument")) { o->instrument = 1; continue; }
        if (!strcmp(key, "--json")) { o->json = 1; continue; }
        if (!strcmp(key, "--no-cache")) { o->no_cache = 1; continue; }
        if (!strcmp(key, "--image")) { /* every following argument up to the next option */
            int j = i + 1;
            while (j < argc && (argv[j][0] != '-' || !argv[j][1])) j++;
            if (j == i + 1) return usage_error(cmd, "%s", "--image needs one or more JPEG/PNG files or directories");
            o->image = (const char **)argv + i + 1;
            o->nimage = j - i - 1;
            i = j - 1;
            continue;
        }
        if (!strcmp(key, "-O0") || !strcmp(key, "-O1")) { o->opt = key[2] - '0'; continue; }
        if (!strcmp(key, "--list-passes")) { mc_pipeline_list(stdout, target_rows); *done = 1; return 0; }
        if (!strcmp(key, "--print-after-all")) { o->po.print_after_all = true; o->opt = 1; continue; }
        if (!strcmp(key, "--verify-each")) { o->po.verify_each = true; o->opt = 1; continue; }
        if (!strcmp(key, "--time-passes")) { o->po.time_passes = true; o->opt = 1; continue; }
        if (!strcmp(key, "--stats")) { o->po.stats = true; o->opt = 1; continue; }
        if (!strcmp(key, "--print-after") || !strcmp(key, "--print-before") || !strcmp(key, "--disable-pass")) {
            if (!val) {
                if (i + 1 >= argc) return usage_error(cmd, "option '%s' needs a pass name", key);
                val = argv[++i];
            }
            const char **list = key[2] == 'd' ? o->po.disable : key[8] == 'a' ? o->po.print_after : o->po.print_before;
            int *cnt = key[2] == 'd' ? &o->po.n_disable : key[8] == 'a' ? &o->po.n_print_after : &o->po.n_print_before;
            if (*cnt >= MC_MAX_PASS_OPTS) return usage_error(cmd, "too many '%s' options", key);
            list[(*cnt)++] = val;
            McErr e;
            if (mc_pipeline_check_names(&o->po, target_rows, &e)) return usage_error(cmd, "%s", e.msg);
            o->opt = 1;
            continue;
        }
        if (!strcmp(key, "--list-targets")) { mc_llvm_list_targets(stdout); *done = 1; return 0; }
        if (!strcmp(key, "--list-backends")) {
            for (int k = 0; mc_backends[k]; k++)
                if (mc_backends[k]->run_graph || mc_backends[k]->run_kernels)
                    printf("%-8s %s\n", mc_backends[k]->name, mc_backends[k]->descr);
            *done = 1;
            return 0;
        }
        static const char *with_value[] = {"--weights", "--model", "--input", "--output", "--backend", "--threads",
                                           "--batch", "--image-size", "--format", "-o", "--seed", "--top", "--dump-dot", "--argmax",
                                           "--target", "--cpu", "--features", "--emit", "--list-cpus",
                                           "--precision", "--sm", "--labels", "--mask", "--overlay", "--save-input"};
        int known = 0;
        for (unsigned k = 0; k < sizeof with_value / sizeof *with_value; k++)
            if (!strcmp(key, with_value[k])) known = 1;
        if (!known) return usage_error(cmd, "unknown option '%s'", key);
        if (!val) {
            if (i + 1 >= argc) return usage_error(cmd, "option '%s' needs a value", key);
            val = argv[++i];
        }
        if (!strcmp(key, "--weights")) o->weights = val;
        else if (!strcmp(key, "--model")) o->kirmodel = val;
        else if (!strcmp(key, "--input")) o->input = val;
        else if (!strcmp(key, "--output")) o->output = val;
        else if (!strcmp(key, "--argmax")) o->argmax = val;
        else if (!strcmp(key, "--labels")) o->labels = val;
        else if (!strcmp(key, "--mask")) o->mask = val;
        else if (!strcmp(key, "--overlay")) o->overlay = val;
        else if (!strcmp(key, "--save-input")) o->save_input = val;
        else if (!strcmp(key, "--backend")) o->backend = val;
        else if (!strcmp(key, "--format")) o->format = val;
        else if (!strcmp(key, "-o")) o->outfile = val;
        else if (!strcmp(key, "--dump-dot")) { o->dot = val; o->opt = 1; }
        else if (!strcmp(key, "--target")) o->target = val;
        else if (!strcmp(key, "--cpu")) o->cpu = val;
        else if (!strcmp(key, "--features")) o->features = val;
        else if (!strcmp(key, "--emit")) o->emit = val;
        else if (!strcmp(key, "--precision")) o->precision = val;
        else if (!strcmp(key, "--sm")) {
            if (parse_int(val, 80, 200, &o->sm))
                return usage_error(cmd, "--sm wants a compute capability of 80 or newer such as 90 (the generated code uses "
                                        "cp.async and bf16 mma.sync), got '%s'", val);
        }
        else if (!strcmp(key, "--list-cpus")) {
            McErr e;
            if (mc_llvm_list_cpus(val, stdout, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            *done = 1;
            return 0;
        }
        else if (!strcmp(key, "--threads")) {
            if (parse_int(val, 1, 1024, &o->threads)) return usage_error(cmd, "--threads wants an integer in 1..1024, got '%s'", val);
        } else if (!strcmp(key, "--seed")) {
            if (parse_int(val, 0, 2147483647, &o->seed)) return usage_error(cmd, "--seed wants a non-negative integer, got '%s'", val);
        } else if (!strcmp(key, "--top")) {
            if (parse_int(val, 1, 1000000, &o->top)) return usage_error(cmd, "--top wants a positive integer, got '%s'", val);
        } else if (!strcmp(key, "--batch")) {
            if (parse_int(val, 1, 1 << 16, &o->batch)) {
                char *end;
                if (strtoll(val, &end, 10) > (1 << 16) && end != val && !*end) /* LLONG_MAX past its range */
                    return usage_error(cmd, "--batch %s is too large: at most 65536 images a batch", val);
                return usage_error(cmd, "--batch wants a positive integer, got '%s'", val);
            }
        } else if (!strcmp(key, "--image-size")) {
            if (parse_size(val, &o->H, &o->W)) return usage_error(cmd, "--image-size wants H or HxW, got '%s'", val);
        }
    }
    if (!o->model) return usage_error(cmd, "%s", "no MODEL file given");
    int run = !strcmp(cmd, "run");
    const char *only_run = o->image ? "--image" : o->mask ? "--mask" : o->overlay ? "--overlay"
                           : o->save_input ? "--save-input" : o->json ? "--json" : NULL;
    if (!run && only_run) return usage_error(cmd, "%s is an option of 'mambac run' and of compiled executables", only_run);
    if (!run && o->labels && strcmp(cmd, "compile")) return usage_error(cmd, "%s", "--labels applies to run and compile");
    if (!run && o->no_cache) return usage_error(cmd, "%s", "--no-cache is an option of 'mambac run' (its JIT cache)");
    return 0;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* An input shape no model takes: a zero-size dimension, an empty batch, or
 * (public configs, image NCHW) past the batch and image-size limits. */
static int
input_shape_check(const char *path, const McNpy *x, int image)
{
    char b[160];
    Shape s = {x->rank > MC_MAX_RANK ? MC_MAX_RANK : x->rank, {0}};
    for (int i = 0; i < s.rank; i++) s.d[i] = x->shape[i];
    mc_shape_str(&s, b, sizeof b);
    int zero = -1;
    for (int i = x->rank - 1; i >= 0; i--)
        if (x->shape[i] == 0) zero = i;
    if (zero == 0 && x->rank > 1)
        fprintf(stderr, "%s: error: input shape %s is an empty batch (batch 0): give at least one image\n", path, b);
    else if (zero >= 0)
        fprintf(stderr, "%s: error: input shape %s has a zero-size dimension (dimension %d): every dimension "
                "must be at least 1\n", path, b, zero);
    else if (image && x->shape[0] > 65536)
        fprintf(stderr, "%s: error: input shape %s: batch %lld is more than the 65536 limit\n", path, b,
                (long long)x->shape[0]);
    else if (image && (x->shape[2] > 16384 || x->shape[3] > 16384))
        fprintf(stderr, "%s: error: input shape %s: the image is larger than the 16384x16384 limit\n", path, b);
    else
        return 0;
    return 1;
}

static McSource
source_of(const Opts *o)
{
    McSource src = {o->model, o->kirmodel, o->weights, o->seed, o->batch, o->H, o->W};
    return src;
}

/* --batch and --image-size shape public configs (kind 1) only */
static void
warn_fixed(const Opts *o, int kind)
{
    if (kind != 1 && kind != 4 && (o->H || o->batch != 1))
        mc_warn("--batch and --image-size apply to public configs only; %s fixes its shapes", o->model);
}

/* The pipeline's target for the options: --target cuda (with --precision,
 * --sm) or LLVM (--target TRIPLE, --cpu, --features, --precision; this
 * machine by default). */
static void
pick_target(const Opts *o, int prec, McTarget *t)
{
    int cuda = o->target && !strcmp(o->target, "cuda");
    *t = cuda ? mc_cuda_target_row : mc_llvm_target_row;
    t->desc.precision = prec;
    if (cuda) {
        t->desc.sm = o->sm ? o->sm : 90;
    } else {
        t->desc.triple = o->target;
        t->desc.cpu = o->cpu;
        t->desc.features = o->features;
    }
}

/* --precision for an LLVM target (compile, run --backend llvm, dump):
 * fp32 or bf16, bf16 only where every CPU of the build has bf16 dot
 * products and the tile pass (which records it) runs.  0; 2, a usage
 * error; 1, a bad target (message printed). */
static int
llvm_precision(const char *cmd, const Opts *o, int prec, int host)
{
    if (prec == MC_CUDA_TF32)
        return usage_error(cmd, "%s", "--precision tf32 is for --target cuda; LLVM targets take fp32 or bf16");
    if (prec != MC_CUDA_BF16) return 0;
    for (int i = 0; i < o->po.n_disable; i++)
        if (!strcmp(o->po.disable[i], "tile"))
            return usage_error(cmd, "%s", "--precision bf16 is recorded by the tile pass: --disable-pass=tile "
                                          "would compile fp32");
    McErr e;
    int r = host ? mc_llvm_bf16_check(NULL, NULL, NULL, &e) : mc_llvm_bf16_check(o->target, o->cpu, o->features, &e);
    if (r > 0) return usage_error(cmd, "%s", e.msg);
    if (r < 0) fprintf(stderr, "%s\n", e.msg);
    return r < 0;
}

/* Writes the (optimized) graph as DOT with each kernel's nodes as a cluster. */
static int
write_dot(const Graph *g, WeightStore *ws, const char *path, McErr *err)
{
    KProgram kp;
    if (mc_pipeline_kernels(g, ws, NULL, NULL, &kp, err)) return -1;
    int *group = malloc(sizeof(int) * (size_t)(g->nnodes ? g->nnodes : 1));
    for (int i = 0; i < g->nnodes; i++) group[i] = -1;
    for (int k = 0; k < kp.nk; k++)
        for (int j = 0; j < kp.k[k].nnodes; j++) group[kp.k[k].nodes[j]] = k;
    McOut o;
    char msg[1024];
    int rc = mc_out_open(&o, path, 0666, msg, sizeof msg);
    if (!rc) {
        mc_graph_print_dot_groups(g, group, o.f);
        rc = mc_out_commit(&o, msg, sizeof msg);
    }
    free(group);
    mc_kprogram_free(&kp);
    return rc ? mc_err(err, "mambac: error: %s", msg) : 0;
}

/* A file named on the command line and its role in messages. */
typedef struct Named {
    const char *path, *role;
} Named;

/* Before any work: refuses an output that is the same file as an input or
 * as another output (device and inode; resolved paths for files that do not
 * exist yet), and one whose directory does not take a new file (a
 * temporary is created and removed there).  0, or 1 with a message. */
static int
check_outputs(const Named *outs, int nout, const Named *ins, int nin)
{
    for (int i = 0; i < nout; i++) {
        if (!outs[i].path) continue;
        for (int j = 0; j < nin + i; j++) {
            const Named *other = j < nin ? &ins[j] : &outs[j - nin];
            if (!other->path || !mc_out_same_file(outs[i].path, other->path)) continue;
            fprintf(stderr, "mambac: error: %s %s is the same file as the %s %s; %s\n", outs[i].role,
                    outs[i].path, other->role, other->path,
                    j < nin ? "refusing to overwrite an input" : "give each output its own path");
            return 1;
        }
        struct stat st;
        if (stat(outs[i].path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
            continue; /* a device or FIFO: opened only when written */
        McOut o;
        char msg[1024];
        if (mc_out_open(&o, outs[i].path, 0666, msg, sizeof msg)) {
            fprintf(stderr, "mambac: error: %s\n", msg);
            return 1;
        }
        mc_out_discard(&o);
    }
    return 0;
}

static int
fail(McErr *err)
{
    fprintf(stderr, "%s\n", err->msg);
    return 1;
}


/* Before the run: --top needs one output [B, classes]; --output gets an
 * .npz of every output, or a .npy of the one.  0 (*npz set), or 1 with a
 * message. */
static int
check_run_outputs(const Graph *g, const Opts *o, int *npz)
{
    const char *names[MC_NPZ_MAX_ARRAYS];
    char msg[1024], sh[128];
    int n = g->noutputs < MC_NPZ_MAX_ARRAYS ? g->noutputs : MC_NPZ_MAX_ARRAYS;
    const Shape *y0 = &g->nodes[g->outputs[0]].shape;
    if (o->top && (g->noutputs != 1 || y0->rank != 2)) {
        if (g->noutputs == 1)
            fprintf(stderr, "mambac: error: --top lists a classifier's best classes; %s's output %%%s is %s, not "
                            "[B, classes]%s\n", o->model, g->nodes[g->outputs[0]].name, mc_shape_str(y0, sh, sizeof sh),
                    y0->rank == 4 ? " (a segmentation model's class map: --argmax M.npy)" : "");
        else
            fprintf(stderr, "mambac: error: --top lists a classifier's best classes; %s has %d outputs (write them "
                            "with --output FILE.npz)\n", o->model, g->noutputs);
        return 1;
    }
    if (o->argmax && (g->noutputs != 1 || y0->rank != 4)) {
        fprintf(stderr, "mambac: error: --argmax writes the class map of a segmentation model's output [B, classes, H, "
                        "W]; %s has %d output%s%s\n", o->model, g->noutputs, g->noutputs == 1 ? " " : "s",
                g->noutputs == 1 ? mc_shape_str(y0, sh, sizeof sh) : "");
        return 1;
    }
    for (int j = 0; j < n; j++) names[j] = g->nodes[g->outputs[j]].name;
    if (g->noutputs > MC_NPZ_MAX_ARRAYS) {
        fprintf(stderr, "mambac: error: %s has %d outputs; an .npz holds at most %d\n", o->model, g->noutputs,
                MC_NPZ_MAX_ARRAYS);
        return 1;
    }
    if ((*npz = mc_npz_output_kind(o->output, n, names, msg, sizeof msg)) < 0) {
        fprintf(stderr, "mambac: error: %s\n", msg);
        return 1;
    }
    return 0;
}

/* --image for `mambac run`: a public config's images (all in one batch)
 * through its evaluation transform into x [n, 3, H, W]; sizes[2i], [2i+1]
 * image i's own width and height.  0, or 1 with the message printed. */
static int
run_images_in(const Opts *o, McImageList *imgs, McNpy *x, int **sizes)
{
    McErr err = {{0}};
    int kind = mc_frontend_kind(o->model, &err);
    if (kind < 0) return fail(&err);
    if (kind != 1) {
        fprintf(stderr, "%s: error: --image needs a public Spatial-Mamba config (its DATA and TEST keys say how "
                        "images are prepared); for a graph YAML or IR give --input X.npy\n", o->model);
        return 1;
    }
    ModelConfig cfg;
    if (mc_config_load(o->model, &cfg, &err)) return fail(&err);
    if (mc_image_list("mambac", o->nimage, (char **)o->image, imgs)) return 1;
    McIoSource ios;
    Shape in = {4, {imgs->n, cfg.in_chans, o->H ? o->H : cfg.img_size, o->H ? o->W : cfg.img_w}};
    if (cfg.in_chans != 3) {
        fprintf(stderr, "%s: error: --image gives RGB images, the model takes %d channels (IN_CHANS)\n", o->model,
                cfg.in_chans);
        return 1;
    }
    if (mc_io_source(&ios, o->model, kind, &in, NULL, 0, NULL, NULL, &err)) return fail(&err);
    McPreproc pre = ios.io.pre;
    mc_io_source_free(&ios);
    memset(x, 0, sizeof *x);
    x->type = MC_NPY_F32;
    x->rank = 4;
    memcpy(x->shape, in.d, sizeof in.d[0] * 4);
    size_t per = (size_t)3 * pre.H * pre.W;
    x->nbytes = per * (size_t)imgs->n * sizeof(float);
    x->data = malloc(x->nbytes);
    *sizes = malloc((size_t)imgs->n * 2 * sizeof **sizes);
    if (!x->data || !*sizes) {
        fprintf(stderr, "mambac: error: out of memory for %d images of %dx%d\n", imgs->n, pre.W, pre.H);
        return 1;
    }
    for (int i = 0; i < imgs->n; i++) {
        char msg[1024];
        if (mc_image_load(imgs->path[i], &pre, (float *)x->data + per * i, &(*sizes)[2 * i], &(*sizes)[2 * i + 1], msg,
                          sizeof msg)) {
            fprintf(stderr, "mambac: error: %s\n", msg);
            return 1;
        }
    }
    return 0;
}

static int
cmd_run(int argc, char **argv)
{
    Opts o = {0};
    o.backend = "ref";
    int done, rc = parse_opts("run", argc, argv, &o, usage_run, &done);
    if (rc || done) return rc;
    mc_jit_cache_enable(!o.no_cache);
    if (o.outfile) /* compile's and dump's output; run would have ignored it */
        return usage_error("run", "%s", "-o is not an option of run: its outputs are --output Y.npy, --mask, --overlay");
    if (o.input && o.image) return usage_error("run", "%s", "give --input X.npy or --image FILE..., not both");
    if (!o.input && !o.image) return usage_error("run", "%s", "--input X.npy (or --image FILE...) is required");
    if (!o.output && !o.top && !o.argmax && !o.mask && !o.overlay && !o.save_input)
        return usage_error("run", "%s", "--output Y.npy is required (or --top, --argmax, --mask, --overlay, "
                                        "--save-input)");
    if ((o.json || o.labels) && !o.top) return usage_error("run", "%s", "--json and --labels apply to --top K");
    if ((o.mask || o.overlay || o.save_input) && !o.image)
        return usage_error("run", "%s", "--mask, --overlay and --save-input need --image FILE...");
    const Backend *be = mc_backend_find(o.backend);
    if (!be) return usage_error("run", "unknown backend '%s' (see --list-backends)", o.backend);
    if (!be->run_graph && !be->run_kernels)
        return usage_error("run", "the %s backend runs nothing in this process: mambac compile --target cuda builds an "
                                  "executable for the GPU", be->name);
    int prec = mc_cuda_precision_parse(o.precision ? o.precision : "fp32");
    if (prec < 0) return usage_error("run", "--precision must be fp32 or bf16, got '%s'", o.precision);
    if (o.precision && strcmp(be->name, "llvm"))
        return usage_error("run", "--precision applies to --backend llvm (the %s backend computes in fp32)", be->name);
    if ((rc = llvm_precision("run", &o, prec, 1))) return rc;
    const Named run_outs[] = {{o.output, "--output"}, {o.dot, "--dump-dot"}, {o.argmax, "--argmax"},
                              {o.save_input, "--save-input"}};
    const Named run_ins[] = {{o.model, "MODEL file"}, {o.weights, "--weights file"}, {o.input, "--input file"},
                             {o.labels, "--labels file"}};
    if (check_outputs(run_outs, 4, run_ins, 4)) return 1;

    McErr err = {{0}};
    McNpy x;
    McImageList imgs = {0, 0, NULL};
    McIoSource ios;
    char emsg[1024];
    int *sizes = NULL; /* the images' own w, h */
    if (o.image) {
        if (run_images_in(&o, &imgs, &x, &sizes)) return 1;
    } else if (mc_npy_read(o.input, &x, emsg, sizeof emsg)) {
        fprintf(stderr, "%s\n", emsg);
        return 1;
    }
    if (x.type != MC_NPY_F32) {
        fprintf(stderr, "%s: error: input must be float32 (dtype '<f4'); convert it with x.astype(numpy.float32)\n", o.input);
        mc_npy_free(&x);
        return 1;
    }
    /* a public config is built for x's shape, which must be an image batch;
     * a graph YAML or .mir fixes its input shape (checked below) */
    int kind = mc_frontend_kind(o.model, &err);
    if (kind < 0) {
        mc_npy_free(&x);
        return fail(&err);
    }
    if (kind == 4) {
        fprintf(stderr, "%s: error: 'run' takes a model; kernel IR compiles with 'mambac compile %s -o OUT'\n", o.model,
                o.model);
        mc_npy_free(&x);
        return 1;
    }
    if (kind == 1 && x.rank != 4) {
        fprintf(stderr, "%s: error: input must be NCHW [B,C,H,W], got rank %d\n", o.input, x.rank);
        mc_npy_free(&x);
        return 1;
    }
    if (input_shape_check(o.input, &x, kind == 1)) {
        mc_npy_free(&x);
        return 1;
    }
    double t0 = now_s();
    Graph g;
    int fixed = kind != 1;
    McSource src = source_of(&o);
    if (mc_source_graph(o.model, kind, kind == 1 ? (int)x.shape[0] : 1, kind == 1 ? (int)x.shape[2] : 0,
                        kind == 1 ? (int)x.shape[3] : 0, &g, &err)) {
        mc_npy_free(&x);
        return fail(&err);
    }
    /* bind: the graph's single input must have x's shape */
    int nin = 0, in_id = -1;
    for (int i = 0; i < g.nnodes; i++)
        if (g.nodes[i].op == OP_INPUT) { nin++; in_id = i; }
    if (nin != 1) {
        fprintf(stderr, "%s: error: 'run' needs a model with exactly one input, this one has %d\n", o.model, nin);
        return 1;
    }
    Shape xs = {x.rank, {0}};
    for (int i = 0; i < x.rank; i++) xs.d[i] = x.shape[i];
    if (!mc_shape_eq(&xs, &g.nodes[in_id].shape)) {
        char b1[128], b2[128];
        const Shape *want = &g.nodes[in_id].shape;
        if (!fixed && want->rank == 4 && xs.d[1] != want->d[1])
            fprintf(stderr, "%s: error: input has %lld channels, the model takes %lld (IN_CHANS)\n", o.input,
                    (long long)xs.d[1], (long long)want->d[1]);
        else
            fprintf(stderr, "%s: error: input shape %s does not match the model's input %%%s %s\n", o.input,
                    mc_shape_str(&xs, b1, sizeof b1), g.nodes[in_id].name, mc_shape_str(want, b2, sizeof b2));
        return 1;
    }
    WeightStore ws;
    if (mc_source_weights(&src, &g, &ws, &err)) return fail(&err);
    /* a compiling backend gets the program the pipeline makes for its target */
    int compiling = !be->run_graph;
    KProgram kp;
    memset(&kp, 0, sizeof kp);
    o.po.out = stdout;
    McTarget rt; /* the backend's target at --precision */
    if (compiling) {
        rt = *be->target;
        rt.desc.precision = prec;
    }
    if (compiling && mc_pipeline_run(&g, &ws, &rt, &o.po, &kp, &err)) return fail(&err);
    if (!compiling && o.opt && mc_pipeline_graph(&g, &ws, &o.po, &err)) return fail(&err);
    if (o.dot && write_dot(&g, &ws, o.dot, &err)) return fail(&err);
    int npz; /* the output nodes as the passes left them */
    if (check_run_outputs(&g, &o, &npz)) return 1;
    double t1 = now_s();
    HostTensor in = {xs, (float *)x.data};
    HostTensor *outs = calloc((size_t)g.noutputs, sizeof *outs);
    RunOpts ro = {o.threads, o.verbose};
    if (compiling ? be->run_kernels(&kp, &ws, &in, outs, &ro, &err)
                  : be->run_graph(&g, &ws, &in, 1, outs, g.noutputs, &ro, &err))
        return fail(&err);
    mc_kprogram_free(&kp);
    double t2 = now_s();
    McNpzArray ya[MC_NPZ_MAX_ARRAYS];
    for (int j = 0; j < g.noutputs; j++)
        ya[j] = (McNpzArray){g.nodes[g.outputs[j]].name, outs[j].data, outs[j].shape.rank, outs[j].shape.d};
    McOut yo;
    if (o.output && (mc_out_open(&yo, o.output, 0666, emsg, sizeof emsg) ||
                     mc_npy_write_arrays_out(&yo, npz, ya, g.noutputs, emsg, sizeof emsg))) {
        fprintf(stderr, "%s\n", emsg);
        return 1;
    }
    McNpzArray xa = {"x", x.data, x.rank, x.shape};
    if (o.save_input && (mc_out_open(&yo, o.save_input, 0666, emsg, sizeof emsg) ||
                         mc_npy_write_arrays_out(&yo, 0, &xa, 1, emsg, sizeof emsg))) {
        fprintf(stderr, "%s\n", emsg);
        return 1;
    }
    /* class names, colours: --labels, the checkpoint, ImageNet-1k */
    Shape osh[MC_MAX_OUTPUTS];
    for (int j = 0; j < g.noutputs && j < MC_MAX_OUTPUTS; j++) osh[j] = outs[j].shape;
    if ((o.top || o.mask || o.overlay) &&
        mc_io_source(&ios, o.model, kind, &xs, osh, g.noutputs, &ws, o.labels, &err))
        return fail(&err);
    for (int i = 0; (o.mask || o.overlay) && i < imgs.n; i++) {
        if (mc_seg_write(&ios.io, o.mask, o.overlay, imgs.path[i], imgs.n > 1, outs[0].data, outs[0].shape.d, i,
                         sizes[2 * i], sizes[2 * i + 1], emsg, sizeof emsg)) {
            fprintf(stderr, "mambac: error: %s\n", emsg);
            return 1;
        }
        mc_seg_print(stdout, imgs.path[i], imgs.n > 1, o.mask, o.overlay, sizes[2 * i], sizes[2 * i + 1]);
    }
    McOut mo;
    if (o.argmax && (mc_out_open(&mo, o.argmax, 0666, emsg, sizeof emsg) ||
                     mc_npy_write_argmax_out(&mo, outs[0].data, outs[0].shape.d, emsg, sizeof emsg))) {
        fprintf(stderr, "%s\n", emsg);
        return 1;
    }
    if (o.top) {
        int64_t printed = 0;
        if (o.json) mc_labels_json_begin(stdout);
        if (mc_labels_print_top(stdout, outs[0].data, outs[0].shape.d[0], outs[0].shape.d[1], o.top, ios.io.classes,
                                o.image ? (const char *const *)imgs.path : NULL, o.json, &printed)) {
            fprintf(stderr, "mambac: error: out of memory for --top\n");
            return 1;
        }
        if (o.json)
            mc_labels_json_end(stdout, (t2 - t1) * 1e3);
        else
            printf("time: %.1f ms (%s backend, %lld image%s)\n", (t2 - t1) * 1e3, be->name,
                   (long long)xs.d[0], xs.d[0] > 1 ? "s" : "");
    }
    if (o.top || o.mask || o.overlay) mc_io_source_free(&ios);
    mc_image_list_free(&imgs);
    free(sizes);
    if (o.verbose)
        fprintf(stderr, "mambac: %d nodes; load %.1f ms; %s backend %.1f ms\n", g.nnodes, (t1 - t0) * 1e3,
                be->name, (t2 - t1) * 1e3);
    for (int i = 0; i < g.noutputs; i++) free(outs[i].data);
    free(outs);
    mc_weights_free(&ws);
    mc_graph_free(&g);
    mc_npy_free(&x);
    return 0;
}

static int
cmd_dump(int argc, char **argv)
{
    Opts o = {0};
    o.batch = 1;
    int done, rc = parse_opts("dump", argc, argv, &o, usage_dump, &done);
    if (rc || done) return rc;
    McErr err = {{0}};
    int kind = mc_frontend_kind(o.model, &err);
    if (kind < 0) return fail(&err);
    if (!o.format) o.format = kind == 4 ? "kernels" : "ir";
    if (strcmp(o.format, "ir") && strcmp(o.format, "dot") && strcmp(o.format, "yaml") && strcmp(o.format, "kernels"))
        return usage_error("dump", "--format must be ir, dot, yaml or kernels, got '%s'", o.format);
    if (kind == 4 && strcmp(o.format, "kernels"))
        return usage_error("dump", "%s is kernel IR: it prints as --format kernels only", o.model);
    int prec = mc_cuda_precision_parse(o.precision ? o.precision : "fp32");
    if (prec < 0) return usage_error("dump", "--precision must be fp32, tf32 or bf16, got '%s'", o.precision);
    int kernels = !strcmp(o.format, "kernels");
    if (kernels && !(o.target && !strcmp(o.target, "cuda")) && (rc = llvm_precision("dump", &o, prec, 0))) return rc;
    int steps = o.target || o.opt; /* a .kir: run what remains of the pipeline (-O1, --target, a pass option) */
    if (kernels) o.opt = 1;
    const Named dump_outs[] = {{o.outfile, "-o"}, {o.dot, "--dump-dot"}};
    const Named dump_ins[] = {{o.model, "MODEL file"}, {o.weights, "--weights file"}};
    if (check_outputs(dump_outs, 2, dump_ins, 2)) return 1;
    Graph g;
    WeightStore ws;
    KProgram kp;
    memset(&g, 0, sizeof g);
    mc_weights_init(&ws);
    o.po.out = stdout;
    McSource src = source_of(&o);
    warn_fixed(&o, kind);
    if (kernels) {
        McTarget t;
        pick_target(&o, prec, &t);
        /* a .kir prints as read (verified) unless asked for the remaining steps */
        if (mc_source_program(&src, kind, kind == 4 && !steps ? NULL : &t, &o.po, &g, &ws, &kp, o.weights != NULL, &err))
            return fail(&err);
        if (o.dot && kind != 4 && write_dot(&g, &ws, o.dot, &err)) rc = 1;
        if (o.verbose || o.po.stats) mc_memplan_report(&kp, stderr);
    } else {
        if (mc_source_graph(o.model, kind, o.batch, o.H, o.W, &g, &err)) return fail(&err);
        int bad = 0;
        if (o.weights || o.opt) bad = mc_source_weights(&src, &g, &ws, &err);
        if (!bad && o.opt) bad = mc_pipeline_graph(&g, &ws, &o.po, &err);
        if (!bad && o.dot) bad = write_dot(&g, &ws, o.dot, &err);
        if (bad) rc = 1;
    }
    McOut out;
    char msg[1024];
    if (!rc && mc_out_open(&out, o.outfile, 0666, msg, sizeof msg)) {
        fprintf(stderr, "mambac: error: %s\n", msg);
        rc = 2;
    }
    if (!rc) {
        FILE *f = out.f;
        if (kernels) mc_kprogram_print(&kp, f);
        else if (!strcmp(o.format, "ir")) mc_graph_print(&g, f);
        else if (!strcmp(o.format, "dot")) mc_graph_print_dot(&g, f);
        else mc_graph_yaml_write(&g, f);
        if (mc_out_commit(&out, msg, sizeof msg)) {
            fprintf(stderr, "mambac: error: %s\n", msg);
            rc = 1;
        }
    } else if (rc == 1) {
        fprintf(stderr, "%s\n", err.msg);
    }
    if (kernels) mc_kprogram_free(&kp);
    mc_weights_free(&ws);
    mc_graph_free(&g);
    return rc ? 1 : 0;
}

static void
progress(const Opts *o, const char *what, double t0)
{
    if (o->verbose) fprintf(stderr, "mambac: %-28s %8.1f ms\n", what, (now_s() - t0) * 1e3);
}

static int
cmd_compile(int argc, char **argv)
{
    Opts o = {0};
    o.batch = 1;
    o.emit = "exe";
    char usage[8192];
    snprintf(usage, sizeof usage, usage_compile, "\n(compile always runs the graph passes; -O0 is ignored)\n");
    int done, rc = parse_opts("compile", argc, argv, &o, usage, &done);
    if (rc || done) return rc;
    int cuda = o.target && !strcmp(o.target, "cuda");
    int ek = mc_llvm_emit_kind(o.emit);
    if (!cuda && ek < 0) return usage_error("compile", "--emit must be exe, shared, obj, llvm-ir or asm, got '%s'", o.emit);
    if (cuda && strcmp(o.emit, "cuda") && strcmp(o.emit, "exe"))
        return usage_error("compile", "--target cuda: --emit must be cuda or exe, got '%s'", o.emit);
    if (!cuda && (o.sm || o.instrument))
        return usage_error("compile", "%s", "--sm and --instrument apply to --target cuda only");
    int prec = mc_cuda_precision_parse(o.precision ? o.precision : "fp32");
    if (prec < 0) return usage_error("compile", "--precision must be fp32, tf32 or bf16, got '%s'", o.precision);
    if (!cuda && (rc = llvm_precision("compile", &o, prec, 0))) return rc;
    if (!o.outfile) return usage_error("compile", "%s", "-o OUT is required");
    if (!cuda && ek >= 3 && o.cpu && (strchr(o.cpu, ',') || !strcmp(o.cpu, "portable")))
        return usage_error("compile", "--emit %s writes one module: give --cpu one CPU (a list or 'portable' "
                                      "needs --emit exe, shared or obj)", o.emit);
    /* every file compile writes: -o (or what the artifact derives from it), --dump-dot */
    char paths[3][4096];
    Named outs[4];
    int nout = 0;
    if (cuda) {
        snprintf(paths[0], sizeof paths[0], "%s.cu", o.outfile);
        snprintf(paths[1], sizeof paths[1], "%s.weights", o.outfile);
        outs[nout++] = (Named){paths[0], "output"};
        outs[nout++] = (Named){paths[1], "output"};
        if (!strcmp(o.emit, "exe")) outs[nout++] = (Named){o.outfile, "-o"};
    } else if (ek >= 3) {
        outs[nout++] = (Named){o.outfile, "-o"};
    } else {
        int n = mc_artifact_outputs(ek == 0 ? MC_ART_EXE : ek == 1 ? MC_ART_SHARED : MC_ART_OBJ, o.outfile, paths);
        for (int i = 0; i < n; i++) outs[nout++] = (Named){paths[i], i ? "output" : "-o"};
    }
    outs[nout++] = (Named){o.dot, "--dump-dot"};
    const Named compile_ins[] = {{o.model, "MODEL file"}, {o.weights, "--weights file"}};
    if (check_outputs(outs, nout, compile_ins, 2)) return 1;

    double t0 = now_s();
    McErr err = {{0}};
    int kind = mc_frontend_kind(o.model, &err);
    if (kind < 0) return fail(&err);
    const Backend *be = cuda ? &mc_backend_cuda : &mc_backend_llvm;
    McTarget t;
    pick_target(&o, prec, &t);
    Graph g;
    WeightStore ws;
    KProgram kp;
    o.po.out = stdout;
    McSource src = source_of(&o);
    warn_fixed(&o, kind);
    if (mc_source_program(&src, kind, &t, &o.po, &g, &ws, &kp, 1, &err)) return fail(&err);
    if (o.dot && kind != 4 && write_dot(&g, &ws, o.dot, &err)) return fail(&err);
    if (o.verbose && !o.po.stats) mc_memplan_report(&kp, stderr);
    progress(&o, kind == 4 ? "kernel IR read" : "passes, lowering, memory plan", t0);
    /* what --image, --top and --mask of the artifact need */
    McIoSource ios;
    Shape outsh[MC_MAX_OUTPUTS];
    for (int j = 0; j < kp.noutputs; j++) outsh[j] = kp.bufs[kp.output_bufs[j]].shape;
    if (mc_io_source(&ios, o.model, kind == 4 ? 0 : kind, &kp.bufs[kp.input_buf].shape, outsh, kp.noutputs, &ws,
                     o.labels, &err))
        return fail(&err);
    EmitOpts eo = {o.outfile, o.emit, cuda ? NULL : o.target, o.cpu, o.features, o.sm, prec, o.verbose, o.instrument,
                   &ios.io};
    rc = be->emit(&kp, &ws, &eo, &err);
    mc_io_source_free(&ios);
    progress(&o, cuda ? "CUDA written" : "artifact written", t0);
    mc_kprogram_free(&kp);
    mc_weights_free(&ws);
    mc_graph_free(&g);
    return rc ? fail(&err) : 0;
}

/* rc, or 1 with a message when what was printed on standard output could
 * not be written (a full disk, a closed pipe). */
static int
check_stdout(int rc)
{
    char msg[1024];
    if (mc_out_check_stdout(msg, sizeof msg)) {
        fprintf(stderr, "mambac: error: %s\n", msg);
        return rc ? rc : 1;
    }
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return check_stdout(0);
    }
    if (!strcmp(cmd, "--version")) {
        printf("mambac %s\n", MC_VERSION);
        return check_stdout(0);
    }
    mc_cleanup_install(); /* temporaries go when a signal ends mambac */
    int rc;
    if (!strcmp(cmd, "run")) rc = cmd_run(argc - 2, argv + 2);
    else if (!strcmp(cmd, "compile")) rc = cmd_compile(argc - 2, argv + 2);
    else if (!strcmp(cmd, "dump")) rc = cmd_dump(argc - 2, argv + 2);
    else if (!strcmp(cmd, "verify")) rc = mc_cmd_verify(argc - 2, argv + 2);
    else {
        fprintf(stderr, "mambac: unknown command '%s'\nTry 'mambac --help'.\n", cmd);
        return 2;
    }
    return check_stdout(rc);
}
