/* backends/artifact.c -- write the executable / shared library / object,
 * OUT.h and OUT.weights (see artifact.h and docs/artifacts.md).
 *
 * Takes: a model object (bytes or path), the packed weights, metadata.
 * Produces: the files under OUT, by running the target's C compiler in a
 * private temporary directory (removed afterwards, kept when
 * MAMBAC_KEEP_TEMPS is set).  Owns nothing after it returns.
 *
 * Reproducibility: every generated file is a pure function of the inputs;
 * the compiler runs inside the temporary directory on relative names and
 * with -ffile-prefix-map for the runtime's directory, without -g, so no
 * path or time reaches the output.
 */
#define _GNU_SOURCE
#include "artifact.h"
#include "elf_obj.h"
#include "../runtime/mc_cpu.h"
#include "../runtime/mc_out.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#define HOST_ARCH "x86_64"
#elif defined(__aarch64__)
#define HOST_ARCH "aarch64"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_ARCH "riscv64"
#else
#define HOST_ARCH "unknown"
#endif

#define MAX_ARGS 320 /* 16 CPU variants of 16 objects each, and the rest */

/* ------------------------------------------------------------ small helpers */

uint64_t
mc_artifact_fnv1a64(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

char *
mc_artifact_symbol(const char *s, char *buf, size_t n)
{
    size_t k = 0;
    if (n == 0)
        return buf;
    if (!s || !*s)
        s = "model";
    if (*s >= '0' && *s <= '9' && k + 1 < n)
        buf[k++] = '_';
    for (; *s && k + 1 < n; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_';
        buf[k++] = ok ? c : '_';
    }
    buf[k] = 0;
    return buf;
}

int
mc_artifact_from_kprogram(McArtifact *a, const KProgram *p, const char *sym, McErr *err)
{
    if (p->input_buf < 0 || p->input_buf >= p->nbufs || p->noutputs < 1 || p->noutputs > MC_MAX_OUTPUTS)
        return mc_err(err, "internal: kernel program without input/output buffer");
    a->name = sym;
    a->in_shape = p->bufs[p->input_buf].shape;
    a->noutputs = p->noutputs;
    for (int j = 0; j < p->noutputs; j++) {
        a->out_shapes[j] = p->bufs[p->output_bufs[j]].shape;
        a->out_names[j] = p->bufs[p->output_bufs[j]].name;
    }
    a->scratch_size = p->scratch_bytes;
    a->nkernels = 0;
    a->kernel_names = NULL;
    a->kernel_flops = NULL;
    if (p->nk <= 0)
        return 0;
    const char **names = malloc((size_t)p->nk * sizeof *names);
    double *flops = malloc((size_t)p->nk * sizeof *flops);
    if (!names || !flops) {
        free(names);
        free(flops);
        return mc_err(err, "out of memory");
    }
    for (int i = 0; i < p->nk; i++) {
        names[i] = p->k[i].name ? p->k[i].name : "?";
        flops[i] = p->k[i].flops;
    }
    a->nkernels = p->nk;
    a->kernel_names = names;
    a->kernel_flops = flops;
    return 0;
}

void
mc_artifact_release(McArtifact *a)
{
    free((void *)a->kernel_names);
    free((void *)a->kernel_flops);
    a->kernel_names = NULL;
    a->kernel_flops = NULL;
    a->nkernels = 0;
}

static int
is_ident(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* The triple's architecture, normalized ("arm64" -> "aarch64"); host if none. */
static void
triple_arch(const char *triple, char *buf, size_t n)
{
    if (!triple || !*triple) {
        snprintf(buf, n, "%s", HOST_ARCH);
        return;
    }
    size_t k = strcspn(triple, "-");
    snprintf(buf, n, "%.*s", (int)k, triple);
    if (!strcmp(buf, "arm64"))
        snprintf(buf, n, "aarch64");
    if (!strcmp(buf, "amd64"))
        snprintf(buf, n, "x86_64");
}

static int
is_cross(const char *triple)
{
    char arch[64];
    triple_arch(triple, arch, sizeof arch);
    return strcmp(arch, HOST_ARCH) != 0;
}

int
mc_artifact_cc(const char *triple, char *buf, size_t n, McErr *err)
{
    const char *env = getenv("MAMBAC_CC");
    if (env && *env) {
        snprintf(buf, n, "%s", env);
        return 0;
    }
    if (!is_cross(triple)) {
        env = getenv("CC");
        snprintf(buf, n, "%s", env && *env ? env : "cc");
        return 0;
    }
    char arch[64];
    triple_arch(triple, arch, sizeof arch);
    if (!strcmp(arch, "aarch64") || !strcmp(arch, "riscv64") || !strcmp(arch, "x86_64")) {
        snprintf(buf, n, "%s-linux-gnu-gcc", arch);
        return 0;
    }
    return mc_err(err,
                  "no C compiler known to link for target '%s' (known: x86_64, aarch64, "
                  "riscv64 Linux); set MAMBAC_CC to one that does",
                  triple);
}

static int
has_file(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, R_OK) == 0;
}

int
mc_artifact_runtime_dir(char *buf, size_t n, McErr *err)
{
    const char *env = getenv("MAMBAC_RUNTIME_DIR");
    if (env && *env) {
        if (!has_file(env, "rt.c") || !has_file(env, "exe/exe_main.c"))
            return mc_err(err, "MAMBAC_RUNTIME_DIR=%s has no rt.c and exe/exe_main.c", env);
        snprintf(buf, n, "%s", env);
        return 0;
    }
#ifdef MC_SOURCE_DIR
    snprintf(buf, n, "%s/runtime", MC_SOURCE_DIR);
    if (has_file(buf, "rt.c"))
        return 0;
#endif
    char self[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
        self[k] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, n, "%s/../runtime", self);
            if (has_file(buf, "rt.c"))
                return 0;
            snprintf(buf, n, "%s/../../runtime", self);
            if (has_file(buf, "rt.c"))
                return 0;
        }
    }
    return mc_err(err, "cannot find the runtime sources (runtime/rt.c) that artifacts are "
                       "built with; set MAMBAC_RUNTIME_DIR to the runtime/ directory of the "
                       "mambac sources");
}

int
mc_artifact_which(const char *prog, char *buf, size_t n)
{
    if (strchr(prog, '/')) {
        if (access(prog, X_OK))
            return 0;
        if (buf)
            snprintf(buf, n, "%s", prog);
        return 1;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t k = strcspn(path, ":");
        char p[4096];
        snprintf(p, sizeof p, "%.*s/%s", (int)k, k ? path : ".", prog);
        if (access(p, X_OK) == 0) {
            if (buf)
                snprintf(buf, n, "%s", p);
            return 1;
        }
        path += k;
        if (*path == ':')
            path++;
    }
    return 0;
}

static int
write_file(const char *path, const void *data, size_t n, McErr *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return mc_err(err, "cannot write %s: %s", path, strerror(errno));
    int bad = n && fwrite(data, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad)
        return mc_err(err, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

static int
read_file(const char *path, unsigned char **data, size_t *n, McErr *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mc_err(err, "cannot read %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    unsigned char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    int bad = !b || ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return mc_err(err, "cannot read %s", path);
    }
    *data = b;
    *n = len;
    return 0;
}

/* Copies src (inside the temp dir) into the open output o, then commits
 * it: dst is replaced whole or not at all. */
static int
copy_out(const char *src, McOut *o, McErr *err)
{
    FILE *f = fopen(src, "rb");
    if (!f) {
        mc_out_discard(o);
        return mc_err(err, "cannot read %s: %s", src, strerror(errno));
    }
    static char buf[1 << 16];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        if (fwrite(buf, 1, r, o->f) != r)
            break;
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        mc_out_discard(o);
        return mc_err(err, "cannot read %s", src);
    }
    return mc_out_commit(o, err->msg, sizeof err->msg);
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

/* ------------------------------------------------------------ running tools */

typedef struct Cmd {
    const char *argv[MAX_ARGS + 1];
    int argc;
    char store[MAX_ARGS][512]; /* copies of formatted arguments */
    int nstore;
} Cmd;

static void
cmd_add(Cmd *c, const char *a)
{
    if (c->argc < MAX_ARGS)
        c->argv[c->argc++] = a;
    c->argv[c->argc] = NULL;
}

static void
cmd_addf(Cmd *c, const char *fmt, const char *s)
{
    if (c->nstore >= MAX_ARGS)
        return;
    char *b = c->store[c->nstore++];
    snprintf(b, 512, fmt, s);
    cmd_add(c, b);
}

/* Splits a compiler command ("ccache gcc", "clang --target=x") into words. */
static void
cmd_add_words(Cmd *c, const char *s)
{
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t k = strcspn(s, " \t");
        if (!k)
            break;
        if (c->nstore < MAX_ARGS) {
            char *b = c->store[c->nstore++];
            snprintf(b, 512, "%.*s", (int)k, s);
            cmd_add(c, b);
        }
        s += k;
    }
}

static void
cmd_str(const Cmd *c, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < c->argc && k < n; i++)
        k += snprintf(buf + k, n - k, "%s%s", i ? " " : "", c->argv[i]);
}

extern char **environ;

/* Runs c in dir with stdout+stderr to dir/log (and, with out, stdout to out).
 * The tool runs in its own process group with TMPDIR=. (its temporaries
 * inside dir), so that a signal's cleanup (mc_out.h) kills it and removes
 * everything it wrote.  Returns 0 on exit status 0; else -1 with the
 * command and the log's tail. */
static int
cmd_run(const Cmd *c, const char *dir, int verbose, char *out, size_t outn, McErr *err)
{
    char log[4096], line[4096];
    snprintf(log, sizeof log, "%s/tool.log", dir);
    cmd_str(c, line, sizeof line);
    if (verbose)
        fprintf(stderr, "mambac: (cd %s && %s)\n", dir, line);
    size_t nenv = 0;
    while (environ && environ[nenv])
        nenv++;
    char **env = malloc((nenv + 2) * sizeof *env);
    if (!env)
        return mc_err(err, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "TMPDIR=", 7))
            env[k++] = environ[i];
    env[k++] = "TMPDIR=.";
    env[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(env);
        return mc_err(err, "cannot run %s: %s", c->argv[0], strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(dir))
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execvpe(c->argv[0], (char *const *)c->argv, env);
        fprintf(stderr, "cannot execute %s: %s\n", c->argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no window where a signal misses the group */
    mc_cleanup_set_child(pid);
    free(env);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            mc_cleanup_set_child(0);
            return mc_err(err, "waiting for %s: %s", c->argv[0], strerror(errno));
        }
    mc_cleanup_set_child(0);
    unsigned char *text = NULL;
    size_t n = 0;
    McErr dummy;
    if (read_file(log, &text, &n, &dummy))
        text = NULL, n = 0;
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (ok && out && outn) {
        size_t k = n < outn - 1 ? n : outn - 1;
        memcpy(out, text, k);
        out[k] = 0;
        while (k && (out[k - 1] == '\n' || out[k - 1] == '\r'))
            out[--k] = 0;
    }
    if (!ok) {
        size_t keep = 1200;
        const char *tail = text ? (const char *)text + (n > keep ? n - keep : 0) : "";
        int tl = text ? (int)(n > keep ? keep : n) : 0;
        mc_err(err, "%s failed (%s %d):\n  %s\n%.*s", c->argv[0],
               WIFEXITED(st) ? "exit status" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? WTERMSIG(st) : -1, line, tl,
               tail);
    }
    free(text);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------ generated text */

static void
upper(const char *s, char *buf, size_t n)
{
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        buf[k++] = (*s >= 'a' && *s <= 'z') ? *s - 'a' + 'A' : *s;
    buf[k] = 0;
}

void
mc_artifact_shape_list(FILE *f, const Shape *s, const char *brackets)
{
    fputc(brackets[0], f);
    for (int i = 0; i < s->rank; i++)
        fprintf(f, "%s%lld", i ? ", " : "", (long long)s->d[i]);
    fputc(brackets[1], f);
}

static void
shape_list(FILE *f, const Shape *s)
{
    mc_artifact_shape_list(f, s, "{}");
}

static const char *
base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* OUT without a trailing .so / .o (shared/obj); OUT itself for exe. */
static void
out_base(const McArtifact *a, char *buf, size_t n)
{
    snprintf(buf, n, "%s", a->out);
    size_t k = strlen(buf);
    const char *ext = a->emit == MC_ART_SHARED ? ".so" : a->emit == MC_ART_OBJ ? ".o" : NULL;
    if (ext && k > strlen(ext) + 1 && !strcmp(buf + k - strlen(ext), ext) &&
        buf[k - strlen(ext) - 1] != '/')
        buf[k - strlen(ext)] = 0;
}

int
mc_artifact_outputs(McArtifactKind emit, const char *out, char paths[3][4096])
{
    McArtifact a;
    memset(&a, 0, sizeof a);
    a.emit = emit;
    a.out = out;
    if (emit == MC_ART_EXE) {
        snprintf(paths[0], 4096, "%s", out);
        return 1;
    }
    char base[4096];
    out_base(&a, base, sizeof base);
    snprintf(paths[0], 4096, "%s%s", base, emit == MC_ART_SHARED ? ".so" : ".o");
    snprintf(paths[1], 4096, "%s.weights", base);
    snprintf(paths[2], 4096, "%s.h", base);
    return 3;
}

int
mc_artifact_header(const McArtifact *a, FILE *f)
{
    char P[256], base[4096];
    const char *s = a->name;
    upper(s, P, sizeof P);
    out_base(a, base, sizeof base);
    const char *bn = base_name(base);
    const char *lib = a->emit == MC_ART_SHARED ? ".so" : ".o";
    int n = a->noutputs;
    int64_t nin = mc_shape_numel(&a->in_shape), nout = mc_shape_numel(&a->out_shapes[0]);
    fprintf(f, "/* %s.h -- generated by mambac: model \"%s\" for %s", bn, s,
            a->triple && *a->triple ? a->triple : "the host");
    if (a->cpu && *a->cpu)
        fprintf(f, ", cpu %s", a->cpu);
    if (a->features && *a->features)
        fprintf(f, ", features %s", a->features);
    fprintf(f, ".\n *\n"
               " * Link %s%s (and -fopenmp -lm); load %s.weights (%s_WEIGHTS_SIZE bytes)\n"
               " * into memory aligned to %s_ALIGNMENT, give %s_SCRATCH_SIZE bytes of\n"
               " * aligned scratch, then\n",
            bn, lib, bn, P, P, P);
    if (n == 1)
        fprintf(f, " *     int rc = %s_run(weights, input, output, scratch);   // 0 = ok\n"
                   " * input: float32 %s_INPUT_SHAPE, output: float32 %s_OUTPUT_SHAPE, both\n"
                   " * contiguous.",
                s, P, P);
    else
        fprintf(f, " *     int rc = %s_run(weights, input, output0, ..., output%d, scratch);   // 0 = ok\n"
                   " * input: float32 %s_INPUT_SHAPE; output j of the %s_NOUTPUTS (the graph's\n"
                   " * outputs in order, named %s_OUTPUTj_NAME): float32 %s_OUTPUTj_SHAPE; all\n"
                   " * contiguous.",
                s, n - 1, P, P, P, P);
    fprintf(f, "  %s_run allocates nothing; it is reentrant for distinct\n"
               " * scratch buffers.  Threads: mc_rt_set_threads(n) (0 = OpenMP default).\n"
               " * See docs/artifacts.md of mambac.\n */\n",
            s);
    fprintf(f, "#ifndef %s_MODEL_H\n#define %s_MODEL_H\n#include <stdint.h>\n\n", P, P);
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    fprintf(f, "#define %s_ALIGNMENT 64\n", P);
    fprintf(f, "#define %s_WEIGHTS_SIZE %lluull\n", P, (unsigned long long)a->weights_len);
    fprintf(f, "#define %s_WEIGHTS_FNV1A64 0x%016llxull\n", P,
            (unsigned long long)mc_artifact_fnv1a64(a->weights, a->weights_len));
    fprintf(f, "#define %s_SCRATCH_SIZE %lluull\n", P, (unsigned long long)a->scratch_size);
    fprintf(f, "#define %s_BATCH %lld\n", P, (long long)(a->in_shape.rank ? a->in_shape.d[0] : 1));
    fprintf(f, "#define %s_INPUT_RANK %d\n#define %s_INPUT_SHAPE ", P, a->in_shape.rank, P);
    shape_list(f, &a->in_shape);
    fprintf(f, "\n#define %s_INPUT_COUNT %lld\n", P, (long long)nin);
    if (n == 1) {
        fprintf(f, "#define %s_OUTPUT_RANK %d\n#define %s_OUTPUT_SHAPE ", P, a->out_shapes[0].rank, P);
        shape_list(f, &a->out_shapes[0]);
        fprintf(f, "\n#define %s_OUTPUT_COUNT %lld\n\n", P, (long long)nout);
    } else {
        fprintf(f, "#define %s_NOUTPUTS %d\n", P, n);
        for (int j = 0; j < n; j++) {
            fprintf(f, "#define %s_OUTPUT%d_NAME ", P, j);
            mc_artifact_c_string(f, a->out_names[j] ? a->out_names[j] : "");
            fprintf(f, "\n#define %s_OUTPUT%d_RANK %d\n#define %s_OUTPUT%d_SHAPE ", P, j, a->out_shapes[j].rank, P, j);
            shape_list(f, &a->out_shapes[j]);
            fprintf(f, "\n#define %s_OUTPUT%d_COUNT %lld\n", P, j, (long long)mc_shape_numel(&a->out_shapes[j]));
        }
        fputc('\n', f);
    }
    fprintf(f, "extern const int64_t %s_weights_size;  /* == %s_WEIGHTS_SIZE */\n", s, P);
    fprintf(f, "extern const int64_t %s_scratch_size;  /* == %s_SCRATCH_SIZE */\n", s, P);
    if (n == 1)
        fprintf(f, "int %s_run(const void *weights, const float *input, float *output, "
                   "void *scratch);\n",
                s);
    else {
        fprintf(f, "int %s_run(const void *weights, const float *input,", s);
        for (int j = 0; j < n; j++)
            fprintf(f, "%sfloat *output%d,", j % 4 ? " " : "\n           ", j);
        fprintf(f, " void *scratch);\n");
    }
    if (a->nvariants) {
        fprintf(f, "/* NULL when this CPU runs the model, else the sentence saying what it lacks\n"
                   " * (then %s_run returns %d and computes nothing); the compiled CPU variant\n"
                   " * it runs (the best of %d; MAMBAC_CPU=NAME forces one). */\n",
                s, MC_CPU_UNSUPPORTED, a->nvariants);
        fprintf(f, "const char *%s_check_cpu(void);\nconst char *%s_cpu_variant(void);\n", s, s);
    }
    fprintf(f, "\n/* From the mambac runtime linked into %s%s. */\n", bn, lib);
    fprintf(f, "#ifndef MC_RT_H\nvoid mc_rt_set_threads(int n);\n#endif\n\n");
    fprintf(f, "/* Model-independent names for programs that embed one model\n"
               " * (define MC_MODEL_NO_ALIASES before including to omit them). */\n");
    fprintf(f, "#if !defined(MC_MODEL_NO_ALIASES) && !defined(MC_MODEL_RUN)\n");
    fprintf(f, "#define MC_MODEL_NAME \"%s\"\n", s);
    fprintf(f, "#define MC_MODEL_RUN %s_run\n", s);
    static const char *const alias[] = {"ALIGNMENT",   "WEIGHTS_SIZE", "WEIGHTS_FNV1A64",
                                        "SCRATCH_SIZE", "BATCH",        "INPUT_RANK",
                                        "INPUT_SHAPE",  "INPUT_COUNT",  "OUTPUT_RANK",
                                        "OUTPUT_SHAPE", "OUTPUT_COUNT"};
    for (size_t i = 0; i < sizeof alias / sizeof *alias - (n > 1 ? 3 : 0); i++)
        fprintf(f, "#define MC_MODEL_%s %s_%s\n", alias[i], P, alias[i]);
    if (n > 1) { /* the outputs' macros instead of OUTPUT_RANK, _SHAPE, _COUNT */
        fprintf(f, "#define MC_MODEL_NOUTPUTS %s_NOUTPUTS\n", P);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < 4; i++) {
                static const char *const what[] = {"NAME", "RANK", "SHAPE", "COUNT"};
                fprintf(f, "#define MC_MODEL_OUTPUT%d_%s %s_OUTPUT%d_%s\n", j, what[i], P, j, what[i]);
            }
    }
    fprintf(f, "#endif\n\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
    return ferror(f) ? -1 : 0;
}

static int
write_glue(const McArtifact *a, const char *dir, McErr *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/mc_glue.c", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return mc_err(err, "cannot write %s: %s", path, strerror(errno));
    const char *s = a->name;
    fprintf(f, "/* mc_glue.c -- generated by mambac for model \"%s\". */\n", s);
    fprintf(f, "#include \"mc_model_glue.h\"\n\n");
    mc_artifact_write_io_c(f, a, "mc_model_io", 0);
    fputc('\n', f);
    fprintf(f, "extern const int64_t %s_weights_size, %s_scratch_size;\n", s, s);
    fprintf(f, "int %s_run(const void *, const float *, ", s);
    for (int j = 0; j < a->noutputs; j++)
        fputs("float *, ", f);
    fputs("void *);\n", f);
    if (a->nvariants)
        fprintf(f, "extern McCpuDispatch %s_cpu_dispatch;\n", s);
    /* the entry point with its output pointers from an array (McModelRun) */
    fprintf(f, "\nstatic int\nrun_outputs(const void *w, const float *x, float *const *y, void *s)\n{\n"
               "    return %s_run(w, x, ",
            s);
    for (int j = 0; j < a->noutputs; j++)
        fprintf(f, "y[%d], ", j);
    fputs("s);\n}\n\n", f);
    int nk = a->nkernels > 0 ? a->nkernels : 0;
    if (nk && a->kernel_names) {
        fprintf(f, "static const char *const kernel_names[%d] = {\n", nk);
        for (int k = 0; k < nk; k++) {
            fputs("    ", f);
            mc_artifact_c_string(f, a->kernel_names[k] ? a->kernel_names[k] : "?");
            fputs(",\n", f);
        }
        fputs("};\n", f);
    }
    if (nk && a->kernel_flops) {
        fprintf(f, "static const double kernel_flops[%d] = {\n", nk);
        for (int k = 0; k < nk; k++)
            fprintf(f, "    %.17g,\n", a->kernel_flops[k]);
        fputs("};\n", f);
    }
    fprintf(f, "\nconst McModelGlue mc_model_glue = {\n    .name = ");
    mc_artifact_c_string(f, s);
    fprintf(f, ",\n    .target = ");
    mc_artifact_c_string(f, a->triple && *a->triple ? a->triple : "the host");
    fprintf(f, ",\n    .in_rank = %d,\n    .in_shape = ", a->in_shape.rank);
    shape_list(f, &a->in_shape);
    fprintf(f, ",\n    .noutputs = %d,\n    .out = {\n", a->noutputs);
    for (int j = 0; j < a->noutputs; j++) {
        fputs("        {", f);
        mc_artifact_c_string(f, a->out_names[j] ? a->out_names[j] : "");
        fprintf(f, ", %d, ", a->out_shapes[j].rank);
        shape_list(f, &a->out_shapes[j]);
        fputs("},\n", f);
    }
    fprintf(f, "    },\n    .weights = mc_glue_weights,\n    .weights_len = %lluull,\n",
            (unsigned long long)a->weights_len);
    fprintf(f, "    .obj_weights_size = &%s_weights_size,\n", s);
    fprintf(f, "    .obj_scratch_size = &%s_scratch_size,\n", s);
    fprintf(f, "    .run = run_outputs,\n    .nkernels = %d,\n", nk);
    fprintf(f, "    .kernel_names = %s,\n", nk && a->kernel_names ? "kernel_names" : "0");
    fprintf(f, "    .kernel_flops = %s,\n", nk && a->kernel_flops ? "kernel_flops" : "0");
    if (a->nvariants)
        fprintf(f, "    .cpu = &%s_cpu_dispatch,\n", s);
    fprintf(f, "};\n");
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad)
        return mc_err(err, "cannot write %s", path);
    return 0;
}

int
mc_artifact_blob_object(const char *dir, const char *triple, const char *cc, const char *base, const char *symbol,
                        const void *data, size_t n, int verbose, McErr *err)
{
    char path[4096], arch[64], section[300];
    uint16_t machine;
    uint32_t flags;
    triple_arch(triple, arch, sizeof arch);
    snprintf(section, sizeof section, ".rodata.%s", symbol);
    snprintf(path, sizeof path, "%s/%s.o", dir, base);
    if (!mc_elf_machine(arch, &machine, &flags))
        return mc_elf_blob_write(path, arch, section, symbol, 64, data, n, err);
    snprintf(path, sizeof path, "%s/%s.bin", dir, base);
    if (write_file(path, data, n, err))
        return -1;
    snprintf(path, sizeof path, "%s/%s.S", dir, base);
    FILE *f = fopen(path, "w");
    if (!f)
        return mc_err(err, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "/* %s.S -- generated by mambac: %s. */\n", base, symbol);
    fprintf(f, "    .file \"%s.S\"\n", base); /* else the temp file's name is a symbol */
    fprintf(f, "    .section %s,\"a\",%%progbits\n    .balign 64\n", section);
    fprintf(f, "    .globl %s\n    .type %s, %%object\n%s:\n", symbol, symbol, symbol);
    fprintf(f, "    .incbin \"%s.bin\"\n    .byte 0\n", base); /* an empty blob still has an address */
    fprintf(f, "    .size %s, . - %s\n    .section .note.GNU-stack,\"\",%%progbits\n", symbol, symbol);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad)
        return mc_err(err, "cannot write %s", path);
    Cmd c = {0};
    cmd_add_words(&c, cc);
    cmd_add(&c, "-c");
    cmd_addf(&c, "%s.S", base);
    cmd_add(&c, "-o");
    cmd_addf(&c, "%s.o", base);
    return cmd_run(&c, dir, verbose, NULL, 0, err);
}

/* ------------------------------------------------------------ building */

static void
add_common_flags(Cmd *c, const char *rt)
{
    cmd_add(c, "-O2");
    cmd_add(c, "-std=gnu11");
    cmd_add(c, "-fopenmp");
    cmd_add(c, "-fno-ident");
    cmd_add(c, "-DMC_RT_WEAK");
    cmd_addf(c, "-ffile-prefix-map=%s=runtime", rt);
    cmd_addf(c, "-I%s", rt);
    cmd_addf(c, "-I%s/exe", rt);
}

/* The flags the runtime's sources are compiled with for an artifact kind:
 * pic for shared libraries and objects, else (-no-pie) for executables;
 * images: with the image libraries (image.c's readers and writers). */
static void
add_runtime_flags(Cmd *c, const char *rt, int pic, int images)
{
    add_common_flags(c, rt);
    cmd_add(c, pic ? "-fPIC" : "-no-pie");
    if (images)
        cmd_add(c, "-DMC_HAVE_IMAGE");
}

void
mc_artifact_runtime_flags(const char *rt, int pic, int images, char *buf, size_t n)
{
    Cmd c = {0};
    add_runtime_flags(&c, rt, pic, images);
    cmd_str(&c, buf, n);
}

int
mc_artifact_runtime_sources(int pic, const char *const **srcs)
{
    /* link order; image.c reads files and writes PNGs with npy.c and out.c */
    static const char *const exe[] = {"rt.c", "npy.c", "out.c", "cpu.c", "labels.c", "exe/exe_main.c", "image.c"};
    static const char *const lib[] = {"rt.c", "npy.c", "out.c", "cpu.c", "image.c"};
    *srcs = pic ? lib : exe;
    return pic ? (int)(sizeof lib / sizeof *lib) : (int)(sizeof exe / sizeof *exe);
}

void
mc_artifact_runtime_object(const char *src, char *buf, size_t n)
{
    const char *b = base_name(src);
    snprintf(buf, n, "%.*s.o", (int)(strcspn(b, ".")), b);
}

int
mc_artifact_compile_runtime(const char *rt, const char *cc, int pic, int images, const char *const *srcs, int n,
                            const char *dir, int verbose, McErr *err)
{
    Cmd c = {0};
    char path[MC_ART_RT_MAX][4096];
    if (n > MC_ART_RT_MAX)
        return mc_err(err, "internal: %d runtime sources", n);
    cmd_add_words(&c, cc);
    add_runtime_flags(&c, rt, pic, images);
    cmd_add(&c, "-c"); /* into dir: rt.o, npy.o, ... */
    for (int i = 0; i < n; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", rt, srcs[i]);
        cmd_add(&c, path[i]);
    }
    return cmd_run(&c, dir, verbose, NULL, 0, err);
}

int
mc_artifact_image_libs(const char *cc, const char *dir, int shared, char libs[3][4096])
{
    static const char *const names[3] = {"jpeg", "png16", "z"};
    const char *env = getenv("MAMBAC_NO_IMAGE");
    if (env && *env && strcmp(env, "0"))
        return 0;
    for (int i = 0; i < 3; i++) {
        Cmd c = {0};
        char arg[64];
        snprintf(arg, sizeof arg, "-print-file-name=lib%s.%s", names[i], shared ? "so" : "a");
        cmd_add_words(&c, cc);
        cmd_add(&c, arg);
        McErr e;
        if (cmd_run(&c, dir, 0, libs[i], 4096, &e))
            return 0;
        libs[i][strcspn(libs[i], "\n")] = 0;
        if (libs[i][0] != '/' || access(libs[i], R_OK))
            return 0;
    }
    return 1;
}

/* A shared library's mambac_info() and the image functions over the
 * model's own transform (docs/python.md), as mc_info.c in dir. */
static int
write_info(const McArtifact *a, const char *dir, int images, McErr *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/mc_info.c", dir);
    char *json = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&json, &len);
    if (!m)
        return mc_err(err, "out of memory");
    mc_artifact_info_json(m, a, images);
    if (fclose(m)) {
        free(json);
        return mc_err(err, "out of memory");
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        free(json);
        return mc_err(err, "cannot write %s: %s", path, strerror(errno));
    }
    fprintf(f, "/* mc_info.c -- generated by mambac for model \"%s\". */\n", a->name);
    fprintf(f, "#include \"mc_labels.h\"\n\n");
    mc_artifact_write_io_c(f, a, "io", 1);
    fputs("\nconst char *\nmambac_info(void)\n{\n    return ", f);
    mc_artifact_c_string(f, json);
    free(json);
    const Shape *y = &a->out_shapes[0];
    fputs(";\n}\n\nint\nmambac_load_image(const char *path, float *dst, int *w0, int *h0, char *msg, size_t n)\n{\n"
          "    return mc_image_load(path, &io.pre, dst, w0, h0, msg, n);\n}\n\n", f);
    fputs("int\nmambac_classmap(const float *logits, int w0, int h0, int32_t *out)\n{\n", f);
    if (a->noutputs == 1 && y->rank == 4)
        fprintf(f, "    return mc_image_classmap(logits, %lld, %lld, %lld, io.align_corners, h0, w0, out);\n",
                (long long)y->d[1], (long long)y->d[2], (long long)y->d[3]);
    else
        fputs("    (void)logits, (void)w0, (void)h0, (void)out;\n    return -1; /* not a segmentor */\n", f);
    fputs("}\n", f);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    return bad ? mc_err(err, "cannot write %s", path) : 0;
}

/* Does the compiler have a static libgomp (for qemu-friendly executables)? */
static int
has_static_gomp(const char *cc, const char *dir, int verbose)
{
    const char *env = getenv("MAMBAC_STATIC");
    if (env && *env)
        return strcmp(env, "0") != 0;
    Cmd c = {0};
    cmd_add_words(&c, cc);
    cmd_add(&c, "-print-file-name=libgomp.a");
    char out[4096];
    McErr e;
    if (cmd_run(&c, dir, verbose, out, sizeof out, &e))
        return 0;
    return out[0] == '/' && access(out, R_OK) == 0;
}

/* The model's object(s): one per CPU variant, and then (dispatch: for a
 * command that compiles) the dispatcher's source; else the single model.o. */
static void
add_model(Cmd *c, const McArtifact *a, int dispatch)
{
    if (!a->nvariants) {
        cmd_add(c, "model.o");
        return;
    }
    for (int i = 0; i < a->nvariants; i++)
        for (int j = 0; j < a->variants[i].nobjs; j++) {
            char nm[32];
            mc_artifact_variant_obj(i, j, nm, sizeof nm);
            cmd_addf(c, "%s", nm);
        }
    if (dispatch)
        cmd_add(c, "mc_dispatch.c");
}

/* The runtime's objects for an artifact of kind pic (shared library or
 * object; else executable), with images or not: srcs[0..n) (under rt)
 * as objs[0..n), the paths to link.  For the host, the prebuilt ones
 * (artifact_rt.c) when they were compiled by cc with these flags from these
 * very sources; else (a cross target, MAMBAC_RUNTIME_DIR, none or stale)
 * compiled into dir now. */
static int
runtime_objects(const McArtifact *a, const char *dir, const char *rt, const char *cc, int pic, int images,
                const char *const *srcs, int n, char objs[][4096], McErr *err)
{
    char pre[4096], why[600] = "";
    int found = 0;
    const char *env = getenv("MAMBAC_RUNTIME_DIR");
    if (env && *env)
        snprintf(why, sizeof why, "MAMBAC_RUNTIME_DIR is set");
    else if (is_cross(a->triple))
        snprintf(why, sizeof why, "for %s", a->triple);
    else
        found = mc_artifact_prebuilt_find(rt, cc, pic, images, pre, sizeof pre, why, sizeof why);
    if (a->verbose && found)
        fprintf(stderr, "mambac: the runtime's objects, prebuilt: %s\n", pre);
    else if (a->verbose)
        fprintf(stderr, "mambac: compiling the runtime (%s)\n", why);
    for (int i = 0; i < n; i++) {
        char o[64];
        mc_artifact_runtime_object(srcs[i], o, sizeof o);
        snprintf(objs[i], 4096, "%s/%s", found ? pre : ".", o);
    }
    return found ? 0 : mc_artifact_compile_runtime(rt, cc, pic, images, srcs, n, dir, a->verbose, err);
}

static int
build(const McArtifact *a, const char *dir, const char *rt, const char *cc, McErr *err)
{
    Cmd c = {0};
    char objs[MC_ART_RT_MAX][4096], libs[3][4096];
    const char *const *all;
    const char *srcs[MC_ART_RT_MAX];
    int n = mc_artifact_runtime_sources(a->emit != MC_ART_EXE, &all), images = 0;
    if (a->emit == MC_ART_EXE) {
        images = mc_artifact_image_libs(cc, dir, 0, libs);
        if (write_glue(a, dir, err) ||
            mc_artifact_blob_object(dir, a->triple, cc, "mc_weights", "mc_glue_weights", a->weights,
                                    a->weights_len, a->verbose, err) ||
            runtime_objects(a, dir, rt, cc, 0, images, all, n, objs, err))
            return -1;
        cmd_add_words(&c, cc);
        add_common_flags(&c, rt);
        cmd_add(&c, "-no-pie");
        if (is_cross(a->triple) && has_static_gomp(cc, dir, a->verbose))
            cmd_add(&c, "-static");
        else if (!is_cross(a->triple) && getenv("MAMBAC_STATIC") &&
                 strcmp(getenv("MAMBAC_STATIC"), "0"))
            cmd_add(&c, "-static");
        cmd_add(&c, "mc_glue.c");
        cmd_add(&c, "mc_weights.o");
        add_model(&c, a, 1);
    } else if (a->emit == MC_ART_SHARED) {
        int k = 0;
        for (int i = 0; i < n; i++) /* the CPU check only for a dispatcher */
            if (a->nvariants || strcmp(all[i], "cpu.c"))
                srcs[k++] = all[i];
        n = k;
        images = mc_artifact_image_libs(cc, dir, 1, libs);
        if (write_info(a, dir, images, err) || runtime_objects(a, dir, rt, cc, 1, images, srcs, n, objs, err))
            return -1;
        cmd_add_words(&c, cc);
        add_common_flags(&c, rt);
        cmd_add(&c, "-fPIC");
        cmd_add(&c, "-shared");
        add_model(&c, a, 1);
        cmd_add(&c, "mc_info.c");
    } else {
        /* object: the model and the runtime (rt.c, and for a dispatcher
         * cpu.c) in one relocatable object */
        srcs[0] = "rt.c";
        srcs[1] = "cpu.c";
        n = a->nvariants ? 2 : 1;
        if (runtime_objects(a, dir, rt, cc, 1, 0, srcs, n, objs, err))
            return -1;
        if (a->nvariants) {
            cmd_add_words(&c, cc);
            add_common_flags(&c, rt);
            cmd_add(&c, "-fPIC");
            cmd_add(&c, "-c");
            cmd_add(&c, "mc_dispatch.c");
            if (cmd_run(&c, dir, a->verbose, NULL, 0, err))
                return -1;
        }
        Cmd l = {0};
        cmd_add_words(&l, cc);
        cmd_add(&l, "-nostdlib");
        cmd_add(&l, "-r");
        add_model(&l, a, 0);
        for (int i = 0; i < n; i++)
            cmd_add(&l, objs[i]);
        if (a->nvariants)
            cmd_add(&l, "mc_dispatch.o");
        cmd_add(&l, "-o");
        cmd_add(&l, "out.bin");
        return cmd_run(&l, dir, a->verbose, NULL, 0, err);
    }
    for (int i = 0; i < n; i++)
        cmd_add(&c, objs[i]);
    for (int i = 0; images && i < 3; i++)
        cmd_add(&c, libs[i]);
    cmd_add(&c, "-lm");
    cmd_add(&c, "-o");
    cmd_add(&c, "out.bin");
    return cmd_run(&c, dir, a->verbose, NULL, 0, err);
}

static int
check(const McArtifact *a, McErr *err)
{
    if (!a->out || !*a->out)
        return mc_err(err, "no output file given (-o)");
    if (!is_ident(a->name))
        return mc_err(err, "model name '%s' is not a C identifier (see mc_artifact_symbol)",
                      a->name ? a->name : "");
    if (!a->nvariants && !a->obj && !a->obj_path)
        return mc_err(err, "internal: no model object to link");
    if (!a->weights && a->weights_len)
        return mc_err(err, "internal: weights length without weights");
    if (a->in_shape.rank < 1 || a->in_shape.rank > 8 || a->noutputs < 1 || a->noutputs > MC_MAX_OUTPUTS)
        return mc_err(err, "internal: input rank or output count out of range");
    for (int j = 0; j < a->noutputs; j++)
        if (a->out_shapes[j].rank < 1 || a->out_shapes[j].rank > 8)
            return mc_err(err, "internal: output %d's rank out of range", j);
    if (a->scratch_size < 0)
        return mc_err(err, "internal: negative scratch size");
    if (a->nkernels > 0 && !a->kernel_names)
        return mc_err(err, "internal: kernel count without kernel names");
    return 0;
}

int
mc_artifact_write(const McArtifact *a, McErr *err)
{
    if (check(a, err))
        return -1;
    char rt[4096], cc[1024];
    if (mc_artifact_runtime_dir(rt, sizeof rt, err) || mc_artifact_cc(a->triple, cc, sizeof cc, err))
        return -1;
    char cc0[1024];
    snprintf(cc0, sizeof cc0, "%.*s", (int)strcspn(cc, " \t"), cc);
    if (!mc_artifact_which(cc0, NULL, 0)) {
        if (is_cross(a->triple))
            return mc_err(err,
                          "C compiler '%s' for target '%s' not found: install Debian's cross "
                          "toolchain (sh scripts/install-cross.sh) or set MAMBAC_CC",
                          cc0, a->triple);
        return mc_err(err, "C compiler '%s' not found: install gcc or set CC/MAMBAC_CC", cc0);
    }

    /* the outputs first: a path that cannot be written is refused before the
     * compiler runs, and the files appear only when all are complete */
    char outs[3][4096];
    int nout = mc_artifact_outputs(a->emit, a->out, outs);
    McOut o[3];
    for (int i = 0; i < nout; i++)
        if (mc_out_open(&o[i], outs[i], i == 0 && a->emit != MC_ART_OBJ ? 0777 : 0666, err->msg,
                        sizeof err->msg)) {
            while (i--)
                mc_out_discard(&o[i]);
            return -1;
        }

    char dir[4096];
    int slot;
    if (mc_artifact_tempdir(dir, sizeof dir, &slot, err)) {
        for (int i = 0; i < nout; i++)
            mc_out_discard(&o[i]);
        return -1;
    }

    int rc = -1, committed = 0;
    char p[4096];

    /* inputs into the temp dir */
    snprintf(p, sizeof p, "%s/model.o", dir);
    if (a->nvariants) {
        for (int i = 0; i < a->nvariants; i++)
            for (int j = 0; j < a->variants[i].nobjs; j++) {
                char nm[32];
                mc_artifact_variant_obj(i, j, nm, sizeof nm);
                snprintf(p, sizeof p, "%s/%s", dir, nm);
                if (write_file(p, a->variants[i].objs[j], a->variants[i].obj_lens[j], err))
                    goto done;
            }
        if (mc_artifact_write_dispatch(a, dir, err))
            goto done;
    } else if (a->obj) {
        if (write_file(p, a->obj, a->obj_len, err))
            goto done;
    } else {
        unsigned char *d;
        size_t n;
        if (read_file(a->obj_path, &d, &n, err))
            goto done;
        int r = write_file(p, d, n, err);
        free(d);
        if (r)
            goto done;
    }
    if (build(a, dir, rt, cc, err))
        goto done;

    /* OUT (or OUT.so / OUT.o), then OUT.weights and OUT.h */
    if (nout > 1) {
        /* a failed write sets the stream's error flag: its commit reports it */
        if (a->weights_len)
            fwrite(a->weights, 1, a->weights_len, o[1].f);
        mc_artifact_header(a, o[2].f);
    }
    snprintf(p, sizeof p, "%s/out.bin", dir);
    for (; committed < nout; committed++) {
        int r = committed ? mc_out_commit(&o[committed], err->msg, sizeof err->msg)
                          : copy_out(p, &o[0], err);
        if (r) {
            committed++;
            goto done;
        }
    }
    rc = 0;
done:
    for (int i = committed; i < nout; i++)
        mc_out_discard(&o[i]);
    mc_artifact_tempdir_remove(dir, slot);
    return rc;
}

int
mc_artifact_tempdir(char *dir, size_t n, int *slot, McErr *err)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/mambac-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    /* registered at once: its files are removed if a signal ends mambac */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    int made = mkdtemp(dir) != NULL, e = errno;
    *slot = made ? mc_cleanup_add(dir, 1) : -1;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (!made)
        return mc_err(err, "cannot create a temporary directory %s: %s", dir, strerror(e));
    return 0;
}

void
mc_artifact_tempdir_remove(const char *dir, int slot)
{
    if (getenv("MAMBAC_KEEP_TEMPS"))
        fprintf(stderr, "mambac: temporary files kept in %s\n", dir);
    else
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    mc_cleanup_remove(slot);
}

int
mc_artifact_run(const char *prog, const char *const *args, const char *dir, int verbose, char *out, size_t outn,
                McErr *err)
{
    Cmd c = {0};
    cmd_add_words(&c, prog);
    for (; args && *args; args++)
        cmd_add(&c, *args);
    return cmd_run(&c, dir, verbose, out, outn, err);
}

int
mc_artifact_copy_out(const char *src, McOut *o, McErr *err)
{
    return copy_out(src, o, err);
}
