/* tests/unit/unit.h -- the shared main of the CUnit suites: each test file
 * lists its tests in a table `{name, fn}` and ends with
 * MC_UNIT_MAIN("suite", tests).  Exit status 1 when any assertion failed. */
#ifndef MC_UNIT_H
#define MC_UNIT_H
#include <CUnit/Basic.h>
#include <stddef.h>

static inline int
mc_unit_finish(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}

#define MC_UNIT_MAIN(suite_name, tests)                                         \
    int main(void)                                                              \
    {                                                                           \
        if (CU_initialize_registry() != CUE_SUCCESS) return 1;                  \
        CU_pSuite s_ = CU_add_suite(suite_name, NULL, NULL);                    \
        for (size_t i_ = 0; i_ < sizeof tests / sizeof tests[0]; i_++)         \
            CU_add_test(s_, tests[i_].name, tests[i_].fn);                      \
        return mc_unit_finish();                                                \
    }

/* The whole file at path, NUL-terminated (malloc'd), its length in *n;
 * NULL when it cannot be read. */
#include <stdio.h>
#include <stdlib.h>
static inline char *
unit_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!s) {
        fclose(f);
        return NULL;
    }
    *n = fread(s, 1, (size_t)len, f);
    s[*n] = 0;
    fclose(f);
    return s;
}

/* nvcc for the tests that compile CUDA: $NVCC, /usr/local/cuda/bin/nvcc or
 * on PATH; NULL when there is none (those tests skip and say so). */
#include <unistd.h>
static inline const char *
unit_nvcc_path(void)
{
    const char *e = getenv("NVCC");
    if (e && *e) return e;
    if (access("/usr/local/cuda/bin/nvcc", X_OK) == 0) return "/usr/local/cuda/bin/nvcc";
    return system("command -v nvcc >/dev/null 2>&1") == 0 ? "nvcc" : NULL;
}

/* ------------------------------------------------------------ shared helpers
 * A fixed-seed splitmix64 RNG and shape literals for the suites that build
 * graphs by hand. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ir/graph.h"

static uint64_t rng_state;

static inline void
rng_seed(uint64_t s)
{
    rng_state = s;
}

static inline double
rng_uniform(double lo, double hi) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) / 9007199254740992.0;
}

static inline float *
rand_vec(int64_t n, double lo, double hi)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = (float)rng_uniform(lo, hi);
    return p;
}

static inline Shape
shp(int rank, ...)
{
    Shape s;
    memset(&s, 0, sizeof s);
    va_list ap;
    va_start(ap, rank);
    s.rank = rank;
    for (int i = 0; i < rank; i++) s.d[i] = va_arg(ap, int64_t);
    va_end(ap);
    return s;
}
#define S1(a) shp(1, (int64_t)(a))
#define S2(a, b) shp(2, (int64_t)(a), (int64_t)(b))
#define S3(a, b, c) shp(3, (int64_t)(a), (int64_t)(b), (int64_t)(c))
#define S4(a, b, c, d) shp(4, (int64_t)(a), (int64_t)(b), (int64_t)(c), (int64_t)(d))

#endif
