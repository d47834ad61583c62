/* backends/cuda/device/mc_main.cuh -- the host half of every generated .cu:
 * .npy I/O, the device arena, the CUDA graph, --input/--output/--bench/
 * --profile.  Files the user names (--input, --weights) are opened as the
 * runtime's mc_file_open does: regular files only (no wait on a FIFO),
 * sizes checked before reading; the input is read and checked, and the
 * --output opened (as a temporary beside it, renamed when complete,
 * removed on error or signal), before the GPU is looked for; --bench/
 * --profile counts are range-checked.  It follows the model's #defines
 * (MC_NAME, shapes, arena offsets), mc_arena, mc_prepare() and
 * mc_forward(), which cuda_host.c emits before pasting it.  Embedded at
 * build time (embed.cmake: everything after this comment, byte for
 * byte).
 */
/* ---------------------------------------------------------------- host */
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s: error: CUDA %s (%s) at line %d\n", MC_NAME, cudaGetErrorName(e_), \
            cudaGetErrorString(e_), __LINE__); exit(1); } } while (0)

#if MC_EMBEDDED_WEIGHTS
extern "C" const unsigned char mc_cuda_weights[];
#endif

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens a file the user named: a regular file only (a FIFO would block, a
 * device never end), and without waiting on a FIFO's writer. */
static FILE *
open_regular(const char *path, const char *what, long long *size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) { fprintf(stderr, "%s: error: %s: cannot open: %s\n", MC_NAME, path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st)) { fprintf(stderr, "%s: error: %s: cannot stat: %s\n", MC_NAME, path, strerror(errno)); close(fd); return NULL; }
    if (!S_ISREG(st.st_mode)) {
        const mode_t m = st.st_mode;
        const char *k = S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" :
                        S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a plain file";
        fprintf(stderr, "%s: error: %s: not a regular file (%s); give the path of %s\n", MC_NAME, path, k, what);
        close(fd);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    FILE *f = fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? NULL : fdopen(fd, "rb");
    if (!f) { fprintf(stderr, "%s: error: %s: cannot open: %s\n", MC_NAME, path, strerror(errno)); close(fd); return NULL; }
    *size = (long long)st.st_size;
    return f;
}

/* Reads a little-endian float32 C-order .npy of shape want[0..wrank):
 * the header first, then the data only when the shape is the model's and
 * the file's size is exactly header + data.  Returns malloc'd data. */
static float *
npy_read(const char *path, int wrank, const int64_t *want)
{
    long long fsize;
    FILE *f = open_regular(path, "a .npy file", &fsize);
    if (!f) return NULL;
    unsigned char m[10];
    float *data = NULL;
    char hdr[4096];
    const char *why = "not a .npy file (no \\x93NUMPY magic)";
    size_t hl, pre;
    int rank = 0, zero = 0;
    int64_t shape[8], n = 1;
    if (fread(m, 1, 8, f) != 8 || memcmp(m, "\x93NUMPY", 6)) goto bad;
    why = "truncated .npy header";
    if (m[6] == 1) { if (fread(m, 1, 2, f) != 2) goto bad; hl = m[0] | m[1] << 8; pre = 10; }
    else if (m[6] == 2 || m[6] == 3) {
        if (fread(m, 1, 4, f) != 4) goto bad;
        hl = m[0] | m[1] << 8 | (size_t)m[2] << 16 | (size_t)m[3] << 24;
        pre = 12;
    } else { why = "unknown .npy format version"; goto bad; }
    if (hl >= sizeof hdr) { why = "the .npy header is longer than 4096 bytes"; goto bad; }
    if (fread(hdr, 1, hl, f) != hl) goto bad;
    hdr[hl] = 0;
    if (!strstr(hdr, "'<f4'")) { fprintf(stderr, "%s: error: %s: not float32 (<f4); convert it with x.astype(numpy.float32)\n", MC_NAME, path); fclose(f); return NULL; }
    if (strstr(hdr, "True")) { fprintf(stderr, "%s: error: %s: fortran order is not supported\n", MC_NAME, path); fclose(f); return NULL; }
    {
        why = "malformed .npy header (shape)";
        const char *s = strstr(hdr, "'shape'");
        if (!s || !(s = strchr(s, '('))) goto bad;
        for (s++;;) {
            while (*s == ' ') s++;
            if (*s == ')') break;
            if (*s < '0' || *s > '9' || rank >= 8) goto bad;
            char *e;
            errno = 0;
            long long v = strtoll(s, &e, 10);
            if (errno) { why = "a .npy shape entry is too large"; goto bad; }
            shape[rank++] = v;
            if (v == 0) zero = 1;
            else if (n > INT64_MAX / 4 / v) { why = "the .npy shape is too large (more than 2^63 bytes)"; goto bad; }
            else n *= v;
            for (s = e; *s == ' '; s++) {}
            if (*s == ',') s++;
            else if (*s != ')') goto bad;
        }
    }
    {
        int same = rank == wrank;
        for (int i = 0; same && i < rank; i++) same = shape[i] == want[i];
        if (!same) {
            fprintf(stderr, "%s: error: %s: input has shape [", MC_NAME, path);
            for (int i = 0; i < rank; i++) fprintf(stderr, "%s%lld", i ? "," : "", (long long)shape[i]);
            if (zero)
                fprintf(stderr, "], %s; this model takes " MC_INPUT_SHAPE_STR "\n",
                        shape[0] == 0 && rank > 1 ? "an empty batch (batch 0)" : "a zero-size dimension");
            else
                fprintf(stderr, "], this model was compiled for " MC_INPUT_SHAPE_STR " (recompile with mambac compile --batch/--image-size to change it)\n");
            fclose(f);
            return NULL;
        }
    }
    if (fsize != (long long)(pre + hl) + n * 4) {
        fprintf(stderr, "%s: error: %s: .npy data is %lld bytes but the shape needs %lld (truncated?)\n", MC_NAME,
                path, fsize - (long long)(pre + hl), (long long)n * 4);
        fclose(f);
        return NULL;
    }
    why = "cannot read the .npy data";
    data = (float *)malloc((size_t)n * 4 + 4);
    if (!data || fread(data, 4, (size_t)n, f) != (size_t)n) { free(data); data = NULL; goto bad; }
    fclose(f);
    return data;
bad:
    fprintf(stderr, "%s: error: %s: %s\n", MC_NAME, path, why);
    fclose(f);
    return NULL;
}

/* The output: a temporary beside the destination, opened before the
 * model runs (a path that cannot be written is refused at once), renamed
 * over it when complete; removed on error or on SIGINT/SIGTERM/SIGHUP.  An
 * existing device or FIFO (/dev/null) is written in place. */
static char out_tmp[4200];
static void
out_cleanup(int sig)
{
    if (out_tmp[0]) unlink(out_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
out_atexit(void)
{
    if (out_tmp[0]) unlink(out_tmp);
}

static FILE *
out_open(const char *path)
{
    struct stat st;
    FILE *f;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        f = fopen(path, "wb");
    } else {
        const char *slash = strrchr(path, '/');
        snprintf(out_tmp, sizeof out_tmp, "%.*s.%s.%ld.tmp", slash ? (int)(slash - path + 1) : 0, path,
                 slash ? slash + 1 : path, (long)getpid());
        signal(SIGINT, out_cleanup);
        signal(SIGTERM, out_cleanup);
        signal(SIGHUP, out_cleanup);
        atexit(out_atexit); /* every exit before the rename (no GPU, a CUDA error) */
        int fd = open(out_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        f = fd < 0 ? NULL : fdopen(fd, "wb");
        if (!f) out_tmp[0] = 0;
    }
    if (!f) fprintf(stderr, "%s: error: cannot write %s: %s\n", MC_NAME, path, strerror(errno));
    return f;
}

static int
npy_write(FILE *f, const char *path, const float *data, int rank, const int64_t *shape)
{
    char h[256], d[128] = "";
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        snprintf(d + strlen(d), sizeof d - strlen(d), "%lld%s", (long long)shape[i], rank == 1 ? "," : i + 1 < rank ? ", " : "");
        n *= shape[i];
    }
    int hl = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", d);
    while ((10 + hl + 1) % 64) h[hl++] = ' ';
    h[hl++] = '\n';
    unsigned char m[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
    int ok = fwrite(m, 1, 10, f) == 10 && fwrite(h, 1, (size_t)hl, f) == (size_t)hl &&
             fwrite(data, 4, (size_t)n, f) == (size_t)n && fflush(f) == 0 && (!out_tmp[0] || fsync(fileno(f)) == 0);
    int e = errno;
    ok = (fclose(f) == 0) && ok;
    if (ok && out_tmp[0] && rename(out_tmp, path)) ok = 0, e = errno;
    if (!ok) {
        if (out_tmp[0]) unlink(out_tmp);
        fprintf(stderr, "%s: error: cannot write %s: %s\n", MC_NAME, path, strerror(e ? e : EIO));
    }
    out_tmp[0] = 0;
    return ok ? 0 : -1;
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

static int
cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* --bench / --profile N: 1..10^7 (the CPU executable's range) */
static int
count_arg(const char *opt, const char *v)
{
    char *e;
    errno = 0;
    long long n = strtoll(v, &e, 10);
    if (!*v || *e || errno || n < 1 || n > 10000000) {
        fprintf(stderr, "%s: error: %s needs an integer in 1..10000000, got '%s'\n", MC_NAME, opt, v);
        return -1;
    }
    return (int)n;
}

static const char *usage =
    "usage: %s [--input x.npy] [--output y.npy] [--bench N] [--profile [N]]\n"
    "          [--weights FILE | --synthetic-weights] [--help]\n"
    "Runs the model '" MC_NAME "' (" MC_PRECISION ") on the GPU: input float32 " MC_INPUT_SHAPE_STR ",\n"
    "output float32 " MC_OUTPUT_SHAPE_STR ".  Without --input, a fixed pseudo-random input.\n"
    "  --bench N          one warm-up, then N timed runs of the captured CUDA graph\n"
    "  --profile [N]      per-kernel times (CUDA events) over N runs (default 10)\n"
    "  --weights FILE     the weights blob (default: embedded, else <exe>.weights)\n"
    "  --synthetic-weights  pseudo-random weights (timing only)\n";

int
main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *wfile = NULL;
    int bench = 0, profile = 0, synth = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { printf(usage, argv[0]); return 0; }
        else if (!strcmp(a, "--input") && i + 1 < argc) in = argv[++i];
        else if (!strcmp(a, "--output") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(a, "--weights") && i + 1 < argc) wfile = argv[++i];
        else if (!strcmp(a, "--synthetic-weights")) synth = 1;
        else if (!strcmp(a, "--bench") && i + 1 < argc) { if ((bench = count_arg(a, argv[++i])) < 0) return 2; }
        else if (!strcmp(a, "--profile")) { profile = 10; if (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9' && (profile = count_arg(a, argv[++i])) < 0) return 2; }
        else if (!strcmp(a, "--threads") && i + 1 < argc) i++; /* accepted for CPU compatibility */
        else { fprintf(stderr, "%s: unknown or incomplete option '%s'\n", argv[0], a); fprintf(stderr, usage, argv[0]); return 2; }
    }
    if (bench < 0 || profile < 0) { fprintf(stderr, usage, argv[0]); return 2; }
    /* weights */
    const unsigned char *w = NULL;
    unsigned char *wown = NULL;
    if (synth) {
        wown = (unsigned char *)malloc(MC_WEIGHTS_BYTES + 4);
        fill_random((float *)wown, MC_WEIGHTS_BYTES / 4, 7, 0.05f);
        w = wown;
    } else if (wfile || !MC_EMBEDDED_WEIGHTS) {
        char def[4096];
        if (!wfile) { snprintf(def, sizeof def, "%s.weights", argv[0]); wfile = def; }
        long long wsize;
        FILE *f = open_regular(wfile, "the weights (or pass --synthetic-weights)", &wsize);
        if (!f) return 1;
        if (wsize != MC_WEIGHTS_BYTES) { fprintf(stderr, "%s: error: %s: %lld bytes, this model needs %lld\n", MC_NAME, wfile, wsize, (long long)MC_WEIGHTS_BYTES); fclose(f); return 1; }
        wown = (unsigned char *)malloc(MC_WEIGHTS_BYTES + 1);
        size_t got = fread(wown, 1, MC_WEIGHTS_BYTES + 1, f);
        fclose(f);
        if (got != MC_WEIGHTS_BYTES) { fprintf(stderr, "%s: error: %s: %zu bytes, this model needs %lld\n", MC_NAME, wfile, got, (long long)MC_WEIGHTS_BYTES); return 1; }
        w = wown;
    } else {
#if MC_EMBEDDED_WEIGHTS
        w = mc_cuda_weights;
#endif
    }
    /* the input, checked before the GPU is */
    const int64_t ishape[] = MC_INPUT_SHAPE, oshape[] = MC_OUTPUT_SHAPE;
    float *x = NULL;
    if (in && !(x = npy_read(in, MC_INPUT_RANK, ishape))) return 1;
    FILE *yf = NULL;
    if (out && !(yf = out_open(out))) return 1;
    /* a GPU this code was built for, or a clear message (before any other
     * CUDA call) */
    int ndev = 0;
    const cudaError_t de = cudaGetDeviceCount(&ndev);
    if (de != cudaSuccess || ndev == 0) {
        fprintf(stderr, "%s: error: no usable NVIDIA GPU (%s); this executable needs one of compute capability %d.%d%s, with its driver\n",
                MC_NAME, de != cudaSuccess ? cudaGetErrorString(de) : "no device", MC_SM / 10, MC_SM % 10,
                MC_SM == 90 ? "" : " (or a later one of the same major version)");
        return 1;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    /* its machine code runs on MC_SM's major version, from MC_SM on (sm_90:
     * built as sm_90a, compute capability 9.0 only) */
    if (prop.major != MC_SM / 10 || prop.minor < MC_SM % 10 || (MC_SM == 90 && prop.minor != 0)) {
        fprintf(stderr, "%s: error: %s is compute capability %d.%d; this executable was built for %d.%d (mambac compile --sm)\n",
                MC_NAME, prop.name, prop.major, prop.minor, MC_SM / 10, MC_SM % 10);
        return 1;
    }
    float *hin, *hout;
    CK(cudaMallocHost((void **)&hin, MC_INPUT_COUNT * 4));
    CK(cudaMallocHost((void **)&hout, MC_OUTPUT_COUNT * 4));
    if (x) {
        memcpy(hin, x, MC_INPUT_COUNT * 4);
        free(x);
    } else {
        fill_random(hin, MC_INPUT_COUNT, 1, 1.0f);
    }
    /* device: one arena, weights uploaded once */
    CK(cudaMalloc((void **)&mc_arena, MC_ARENA_BYTES));
    CK(cudaMemcpy(mc_arena, w, MC_WEIGHTS_BYTES, cudaMemcpyHostToDevice));
    /* everything after the weights starts zeroed: the split-K tile counters
     * must (each kernel leaves them zero again) */
    CK(cudaMemset(mc_arena + MC_WEIGHTS_BYTES, 0, MC_ARENA_BYTES - MC_WEIGHTS_BYTES));
    free(wown);
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    mc_prepare(s);
    CK(cudaStreamSynchronize(s));
    CK(cudaGetLastError());
    /* the whole forward pass as one CUDA graph, captured once */
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    mc_forward(s, NULL);
    CK(cudaStreamEndCapture(s, &graph));
    CK(cudaGetLastError());
    CK(cudaGraphInstantiate(&exec, graph, 0));
    CK(cudaMemcpyAsync(P(MC_INPUT_OFF), hin, MC_INPUT_COUNT * 4, cudaMemcpyHostToDevice, s));
    CK(cudaGraphLaunch(exec, s));
    CK(cudaMemcpyAsync(hout, P(MC_OUTPUT_OFF), MC_OUTPUT_COUNT * 4, cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaGetLastError());
    if (out && npy_write(yf, out, hout, MC_OUTPUT_RANK, oshape)) return 1;
    if (bench > 0) {
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
        CK(cudaGraphLaunch(exec, s));
        float *t = (float *)malloc(sizeof(float) * (size_t)bench);
        if (!t) { fprintf(stderr, "%s: error: out of memory for %d timings\n", MC_NAME, bench); return 1; }
        for (int r = 0; r < bench; r++) {
            CK(cudaEventRecord(e0, s));
            CK(cudaGraphLaunch(exec, s));
            CK(cudaEventRecord(e1, s));
            CK(cudaEventSynchronize(e1));
            CK(cudaEventElapsedTime(&t[r], e0, e1));
        }
        qsort(t, (size_t)bench, sizeof(float), cmp_float);
        float med = t[bench / 2];
        double gflop = 0;
        for (int k = 0; k < MC_NK; k++) gflop += mc_kernel_flops[k] / 1e9;
        printf("bench: %s, %d runs, batch %d, %s, %s: median %.3f ms, min %.3f ms, max %.3f ms, %.1f images/s, %.1f GFLOP/run, %.2f TFLOP/s\n",
               MC_NAME, bench, MC_BATCH, prop.name, MC_PRECISION, med, t[0], t[bench - 1], MC_BATCH * 1000.0 / med,
               gflop, gflop / med);
        free(t);
    }
    if (profile > 0) {
        cudaEvent_t ev[MC_NK + 1];
        for (int k = 0; k <= MC_NK; k++) CK(cudaEventCreate(&ev[k]));
        static double ms[MC_NK];
        static int order[MC_NK];
        double total = 0;
        for (int r = 0; r < profile; r++) {
            mc_forward(s, ev);
            CK(cudaStreamSynchronize(s));
            CK(cudaGetLastError());
            for (int k = 0; k < MC_NK; k++) {
                float x;
                CK(cudaEventElapsedTime(&x, ev[k], ev[k + 1]));
                ms[k] += x / profile;
                total += x / profile;
            }
        }
        for (int k = 0; k < MC_NK; k++) order[k] = k;
        for (int a = 1; a < MC_NK; a++)
            for (int b = a; b > 0 && ms[order[b]] > ms[order[b - 1]]; b--) { int x = order[b]; order[b] = order[b - 1]; order[b - 1] = x; }
        printf("profile: %s, %d runs, batch %d, %s, %s, %d kernels, %.3f ms per run (events, no graph)\n",
               MC_NAME, profile, MC_BATCH, prop.name, MC_PRECISION, MC_NK, total);
        printf("%5s  %-56s %9s %7s %10s %6s\n", "rank", "kernel", "ms/run", "share", "GFLOP/s", "calls");
        for (int r = 0; r < MC_NK; r++) {
            int k = order[r];
            printf("%5d  %-56s %9.4f %6.2f%% %10.1f %6d\n", r + 1, mc_kernel_names[k], ms[k], 100.0 * ms[k] / total,
                   ms[k] > 0 ? mc_kernel_flops[k] / (ms[k] * 1e6) : 0.0, 1);
        }
    }
    CK(cudaGraphExecDestroy(exec));
    CK(cudaGraphDestroy(graph));
    CK(cudaFree(mc_arena));
    return 0;
}
