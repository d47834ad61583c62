/* bench/stream.c -- this machine's memory bandwidth, the way mambac's
 * memory-bound kernels use it: T OpenMP threads, static halves, ordinary
 * (write-allocating) vector stores, one buffer of the kernel's size used
 * over and over (as a kernel timed by `EXE --bench N` uses its output).
 *
 *   stream THREADS MBYTES [RUNS]   prints one line: read X GB/s, write Y GB/s, copy Z GB/s
 *
 * read: the sum of an MBYTES array (16 independent lanes, so the loop is
 * bound by memory, not by the adds' latency); write: a computed value
 * stored to every element of an MBYTES array (not a memset, which glibc
 * does with non-temporal stores); copy: b[i] = a[i] between two such
 * arrays, counted as 2 x MBYTES.  Each is timed RUNS (default 9) times in a
 * row on the same arrays, the best kept (on a shared machine many runs find
 * the moments when every thread has its core); GB = 1e9 bytes (the bytes the loop asks for:
 * a write also reads the line in first, which is not counted: that is the
 * rate a kernel writing N bytes sees).  Built by bench/dense with cc -O3
 * -march=native -fopenmp.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define LANES 16

int
main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: stream THREADS MBYTES [RUNS]\n");
        return 2;
    }
    int threads = atoi(argv[1]), runs = argc == 4 ? atoi(argv[3]) : 9;
    long n = (long)(atof(argv[2]) * 1e6) / 4 / LANES * LANES;
    if (threads < 1 || n < 1024 || runs < 1) {
        fprintf(stderr, "stream: bad arguments\n");
        return 2;
    }
    omp_set_num_threads(threads);
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    if (!a || !b) {
        fprintf(stderr, "stream: out of memory\n");
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) a[i] = b[i] = (float)(i & 1023);
    double best[3] = {1e30, 1e30, 1e30}, sink = 0;
    for (int what = 0; what < 3; what++)
        for (int r = 0; r < runs; r++) {
            double t0 = omp_get_wtime();
            if (what == 0) {
#pragma omp parallel
                {
                    float acc[LANES] = {0};
#pragma omp for schedule(static)
                    for (long i = 0; i < n; i += LANES)
                        for (int j = 0; j < LANES; j++) acc[j] += a[i + j];
                    float s = 0;
                    for (int j = 0; j < LANES; j++) s += acc[j];
#pragma omp atomic
                    sink += s;
                }
            } else if (what == 1) {
                float v = (float)r;
#pragma omp parallel for schedule(static)
                for (long i = 0; i < n; i++) b[i] = v;
            } else {
#pragma omp parallel for schedule(static)
                for (long i = 0; i < n; i++) b[i] = a[i];
            }
            double dt = omp_get_wtime() - t0;
            if (dt < best[what]) best[what] = dt;
        }
    double bytes = 4.0 * (double)n;
    printf("read %.2f GB/s, write %.2f GB/s, copy %.2f GB/s (threads %d, %.1f MB, check %d)\n",
           bytes / best[0] / 1e9, bytes / best[1] / 1e9, 2 * bytes / best[2] / 1e9, threads, bytes / 1e6,
           sink + b[n - 1] > 0);
    free(a);
    free(b);
    return 0;
}
