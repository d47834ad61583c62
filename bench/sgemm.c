/* bench/sgemm.c -- OpenBLAS single-precision GEMM rate, for the benchmarks.
 *
 * Takes: shapes on the command line or on stdin; a thread count.
 * Produces: one line per shape on stdout,
 *     sgemm M N K threads ms GFLOP/s best_ms best_GFLOP/s
 * (ms = median of the timed calls, GFLOP/s = 2*M*N*K / median; best_ = the
 * fastest call) and, first,
 *     openblas core=<name> config=<build config>
 * Owns: its matrices (filled with small deterministic values).
 *
 * Not part of mambac: bench/cpu compiles it at bench time with
 *     cc -O2 -o sgemm bench/sgemm.c -lopenblas
 * (Debian: libopenblas-dev).  The product is mambac's GEMM layout,
 * Y[M,N] = X[M,K] * W[N,K]^T, row-major: cblas_sgemm(RowMajor, NoTrans,
 * Trans, ...).  Each shape is warmed up, then timed for at least --min-ms
 * milliseconds and at least --reps calls; the median is reported.
 *
 *   sgemm [--threads N] [--reps R] [--min-ms T] --square S      one S x S x S product
 *   sgemm [--threads N] [--reps R] [--min-ms T] M N K [M N K ...]
 *   sgemm [--threads N] [--reps R] [--min-ms T] -               shapes "M N K" from stdin
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS extensions (declared in its cblas.h; repeated for other headers). */
extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *
filled(long n, unsigned seed)
{
    float *p = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64);
    if (!p)
        return NULL;
    unsigned s = seed;
    for (long i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

static int
time_shape(long M, long N, long K, int threads, int reps, double min_ms)
{
    float *a = filled(M * K, 1), *w = filled(N * K, 2), *c = filled(M * N, 3);
    if (!a || !w || !c) {
        fprintf(stderr, "sgemm: out of memory for %ld x %ld x %ld\n", M, N, K);
        free(a), free(w), free(c);
        return -1;
    }
    /* warm-up: at least 2 calls and ~50 ms */
    double t0 = now_ms();
    for (int i = 0; i < 2 || now_ms() - t0 < 50; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, a,
                    (int)K, w, (int)K, 0.0f, c, (int)N);
    int cap = 1 << 20, n = 0;
    double *t = malloc((size_t)cap * sizeof *t);
    double start = now_ms();
    while (n < cap && (n < reps || now_ms() - start < min_ms)) {
        double s = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, a,
                    (int)K, w, (int)K, 0.0f, c, (int)N);
        t[n++] = now_ms() - s;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    double gf = med > 0 ? 2.0 * M * N * K / (med * 1e6) : 0.0;
    double best = t[0] > 0 ? 2.0 * M * N * K / (t[0] * 1e6) : 0.0;
    printf("sgemm %ld %ld %ld %d %.6f %.2f %.6f %.2f\n", M, N, K, threads, med, gf, t[0], best);
    fflush(stdout);
    free(t);
    free(a), free(w), free(c);
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: sgemm [--threads N] [--reps R] [--min-ms T] (--square S | M N K ... | -)\n");
}

int
main(int argc, char **argv)
{
    int threads = 1, reps = 5;
    double min_ms = 300;
    long square = 0;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc)
            min_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--square") && i + 1 < argc)
            square = atol(argv[++i]);
        else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else
            break;
    }
    if (threads < 1 || reps < 1) {
        usage(stderr);
        return 2;
    }
    openblas_set_num_threads(threads);
    printf("openblas core=%s config=%s\n", openblas_get_corename(), openblas_get_config());
    if (square > 0)
        return time_shape(square, square, square, threads, reps, min_ms) ? 1 : 0;
    if (i < argc && !strcmp(argv[i], "-")) {
        long M, N, K;
        while (scanf("%ld %ld %ld", &M, &N, &K) == 3)
            if (M > 0 && N > 0 && K > 0 && time_shape(M, N, K, threads, reps, min_ms))
                return 1;
        return 0;
    }
    if (i >= argc || (argc - i) % 3) {
        usage(stderr);
        return 2;
    }
    for (; i + 2 < argc; i += 3) {
        long M = atol(argv[i]), N = atol(argv[i + 1]), K = atol(argv[i + 2]);
        if (M <= 0 || N <= 0 || K <= 0) {
            fprintf(stderr, "sgemm: bad shape %s %s %s\n", argv[i], argv[i + 1], argv[i + 2]);
            return 2;
        }
        if (time_shape(M, N, K, threads, reps, min_ms))
            return 1;
    }
    return 0;
}
