/* tests/unit/test_cemit_literals.c -- the floating-literal printer of the
 * shared C/CUDA emitter (mc_cemit_float_literal / mc_cemit_double_literal):
 * golden text for the values a model prints (1, 1/49, eps, -0.5) and the
 * edge cases (zeros, denormals, FLT_MAX, values past the float range,
 * infinities, NaN); over 2^17 float bit patterns across every exponent and
 * 10^5 doubles, the grammar of a C floating literal and an exact read-back
 * (strtof); cc -Werror and nvcc (host and device code, -Werror
 * all-warnings) accept a file of literals, whose values are bit for bit the
 * floats printed (nvcc: skipped, and said so, when it is not installed). */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include "unit.h"
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backends/cemit/cemit.h"
#include "runtime/mc_file.h"

static const char *
flit(double v)
{
    static char buf[MC_CEMIT_LITERAL_MAX];
    return mc_cemit_float_literal(buf, sizeof buf, v);
}

static void
expect_float(double v, const char *want)
{
    const char *got = flit(v);
    if (strcmp(got, want)) fprintf(stderr, "\n  %a: got '%s', want '%s'\n", v, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
}

static void
expect_double(double v, const char *want)
{
    char buf[MC_CEMIT_LITERAL_MAX];
    const char *got = mc_cemit_double_literal(buf, sizeof buf, v);
    if (strcmp(got, want)) fprintf(stderr, "\n  %a: got '%s', want '%s'\n", v, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
}

static void
test_golden(void)
{
    expect_float(1.0, "1.0f");                      /* the 1x1 mean pool: was "1f" */
    expect_float(2.0, "2.0f");
    expect_float(100.0, "100.0f");
    expect_float(0.5, "0.5f");
    expect_float(-0.5, "(-0.5f)");
    expect_float(1.0 / 49, "0.0204081633f");        /* a double: its own 9 digits */
    expect_float(1.0 / 3, "0.333333333f");
    expect_float(1e-5, "1e-05f");
    expect_float(1e-7, "1e-07f");
    expect_float(1e10, "1e+10f");
    expect_float(0.0, "0.0f");
    expect_float(-0.0, "(-0.0f)");
    expect_float(1e-50, "0.0f");                    /* underflows: the zero it is */
    expect_float(-1e-50, "(-0.0f)");
    expect_float(0x1p-149, "1.40129846e-45f");      /* the smallest denormal */
    expect_float(FLT_MIN, "1.17549435e-38f");
    expect_float(FLT_MAX, "3.40282347e+38f");
    expect_float(-FLT_MAX, "(-3.40282347e+38f)");
    expect_float(0x1.fffffefp127, "3.40282356e+38f"); /* past FLT_MAX: reads back as FLT_MAX */
    expect_float(0x1.ffffffp127, "INFINITY");       /* the midpoint: ties to even, up */
    expect_float(1e300, "INFINITY");
    expect_float(-1e300, "(-INFINITY)");
    expect_float(INFINITY, "INFINITY");
    expect_float(-INFINITY, "(-INFINITY)");
    expect_float(NAN, "NAN");
    /* not a float, and halfway between 2^24 and 2^24 + 2: a parser's tie
     * rule would decide (nvcc's device code gave 2^24 + 2), so the float's
     * own text */
    expect_float(16777217.0, "16777216.0f");
    expect_float(16777219.0, "16777220.0f");        /* the tie that rounds up (to even) */
    expect_float(16777217.5, "16777217.5f");        /* not a tie: read as 2^24 + 2 by any parser */
    expect_double(528768.0, "528768.0");
    expect_double(0.1, "0.10000000000000001");
    expect_double(-2.5e-300, "(-2.5e-300)");
    expect_double(INFINITY, "((double)INFINITY)");
    expect_double(-INFINITY, "(-(double)INFINITY)");
    expect_double(NAN, "((double)NAN)");
}

/* 1 when s is a C floating literal (or one of the forms of the non-finite
 * values) whose value is bit for bit f (any NaN for a NaN) */
static int
literal_is(const char *s, float f)
{
    if (!strcmp(s, "NAN")) return isnan(f);
    if (!strcmp(s, "INFINITY")) return isinf(f) && f > 0;
    if (!strcmp(s, "(-INFINITY)")) return isinf(f) && f < 0;
    char body[MC_CEMIT_LITERAL_MAX];
    size_t n = strlen(s);
    int neg = s[0] == '(';
    if (neg && (n < 4 || s[1] != '-' || s[n - 1] != ')')) return 0;
    snprintf(body, sizeof body, "%.*s", (int)(neg ? n - 3 : n), s + (neg ? 2 : 0));
    /* digits [. digits] [e [+-] digits] f, with a '.' or an exponent */
    const char *p = body;
    int dot = 0, exp = 0, digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        dot = 1;
        for (p++; *p >= '0' && *p <= '9'; p++) digits++;
    }
    if (!digits) return 0;
    if (*p == 'e') {
        exp = 1;
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (strcmp(p, "f") || !(dot || exp)) return 0;
    float r = strtof(body, NULL);
    if (neg) r = -r;
    if (memcmp(&r, &f, sizeof r)) return 0;
    /* and never at a tie between two floats, where parsers differ */
    double d = strtod(body, NULL) * (neg ? -1 : 1);
    if (d != (double)f && isfinite(f)) {
        float g = nextafterf(f, d > (double)f ? INFINITY : -INFINITY);
        if (isfinite(g) && d == ((double)f + (double)g) / 2) return 0;
    }
    return 1;
}

static float
from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void
test_round_trip(void)
{
    int bad = 0;
    /* 2^17 bit patterns by a golden-ratio step: every exponent, both signs,
     * denormals, infinities and NaNs among them */
    for (uint32_t i = 0; i < (1u << 17); i++) {
        float f = from_bits(i * 0x9e3779b1u);
        if (!literal_is(flit(f), f) && bad++ < 5) fprintf(stderr, "\n  %a -> '%s'", (double)f, flit(f));
    }
    /* powers of two and their neighbours, the denormal range's ends */
    for (int e = -149; e <= 127; e++) {
        float p = ldexpf(1.0f, e);
        float v[4] = {p, nextafterf(p, 0.0f), nextafterf(p, INFINITY), -p};
        for (int j = 0; j < 4; j++)
            if (!literal_is(flit(v[j]), v[j]) && bad++ < 5) fprintf(stderr, "\n  %a -> '%s'", (double)v[j], flit(v[j]));
    }
    /* doubles: the literal is the float the conversion gives */
    rng_seed(17);
    for (int i = 0; i < 100000; i++) {
        double d = ldexp(rng_uniform(-1.0, 1.0), (int)rng_uniform(-160.0, 128.0));
        if (!literal_is(flit(d), (float)d) && bad++ < 5) fprintf(stderr, "\n  %a -> '%s'", d, flit(d));
    }
    for (int i = 0; i < 100000; i++) { /* exact ties between two floats */
        float f = from_bits((uint32_t)(i + 1) * 0x9e3779b1u);
        float g = nextafterf(f, INFINITY);
        if (!isfinite(f) || !isfinite(g)) continue;
        double tie = ((double)f + (double)g) / 2;
        if (!literal_is(flit(tie), (float)tie) && bad++ < 5) fprintf(stderr, "\n  tie %a -> '%s'", tie, flit(tie));
    }
    for (int i = 1; i <= 4096; i++) /* the mean's and LayerNorm's 1 / n */
        if (!literal_is(flit(1.0 / i), (float)(1.0 / i)) && bad++ < 5) fprintf(stderr, "\n  1/%d -> '%s'", i, flit(1.0 / i));
    CU_ASSERT_EQUAL(bad, 0);
}

/* the values compiled by test_compilers: the golden ones and 400 bit
 * patterns */
#define NCOMP 430
static int
compiled_values(float *v)
{
    const float named[] = {1.0f, 0.5f, 1e-7f, 0.1f, (float)(1.0 / 49), 0x1p-149f, 0x1.fffffcp-127f, FLT_MIN, FLT_MAX,
                           -FLT_MAX, 0.0f, -0.0f, INFINITY, -INFINITY, -1.5f, 16777216.0f, 1e10f};
    int n = 0;
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) v[n++] = named[i];
    for (uint32_t i = 1; n < NCOMP; i++) {
        float f = from_bits(i * 0x3c6ef35fu);
        if (!isnan(f)) v[n++] = f;
    }
    return n;
}

/* a program whose main compares the literals' values, as compiled, with
 * their bits (and NAN with isnan); in CUDA (cuda != 0) also a kernel that
 * stores each literal (device code) */
static void
write_program(FILE *f, int cuda)
{
    float v[NCOMP];
    int n = compiled_values(v);
    fputs("#include <math.h>\n#include <stdio.h>\n#include <string.h>\n", f);
    if (cuda) {
        fputs("__global__ void lits(float *o)\n{\n", f);
        for (int i = 0; i < n; i++) fprintf(f, "    o[%d] = %s;\n", i, flit(v[i]));
        fprintf(f, "    o[%d] = NAN;\n}\n", n);
    }
    fputs("static const float v[] = {\n", f);
    for (int i = 0; i < n; i++) fprintf(f, "    %s,\n", flit(v[i]));
    fputs("};\nstatic const unsigned w[] = {\n", f);
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        fprintf(f, "    0x%08xu,\n", u);
    }
    fprintf(f, "};\nint main(void)\n{\n    const float nan = NAN;\n    int bad = !isnan(nan);\n"
               "    for (int i = 0; i < %d; i++) {\n"
               "        unsigned u;\n        memcpy(&u, &v[i], sizeof u);\n"
               "        if (u != w[i]) { printf(\"literal %%d: 0x%%08x, want 0x%%08x\\n\", i, u, w[i]); bad = 1; }\n"
               "    }\n    return bad;\n}\n", n);
}

static int
build_and_run(const char *dir, const char *name, int cuda, const char *compile)
{
    char src[256], cmd[1024];
    snprintf(src, sizeof src, "%s/%s", dir, name);
    FILE *f = fopen(src, "w");
    if (!f) return -1;
    write_program(f, cuda);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s '%s' -o '%s/%s.exe' > '%s/%s.log' 2>&1 && '%s/%s.exe'", compile, src, dir, name, dir,
             name, dir, name);
    int rc = system(cmd);
    if (rc) {
        fprintf(stderr, "\n%s failed (rc %d):\n", name, rc);
        snprintf(cmd, sizeof cmd, "head -20 '%s/%s.log' >&2", dir, name);
        if (system(cmd)) {}
    }
    return rc;
}

static void
test_compilers(void)
{
    char dir[] = "/tmp/mc-cemit-unit-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    CU_ASSERT_EQUAL(build_and_run(dir, "lits.c", 0, "cc -std=c11 -Wall -Wextra -Werror"), 0);
    const char *nvcc = unit_nvcc_path();
    if (nvcc) {
        char c[512];
        snprintf(c, sizeof c, "'%s' -std=c++17 -Werror all-warnings -gencode=arch=compute_90a,code=sm_90a", nvcc);
        CU_ASSERT_EQUAL(build_and_run(dir, "lits.cu", 1, c), 0);
    } else {
        fprintf(stderr, " (nvcc not found: C only) ");
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

/* nvcc (sm_90, and sm_90a: the wgmma forms) compiles the whole .cu of: the 16-channel model in bf16 at
 * batch 3; a 24-channel one in bf16 at batch 400, 96x84 (4-position 25-tap
 * fusion and depthwise kernels with an x tail, layernorm rows of 3, 6, 12
 * vectors of 8, staged GEMM epilogues); the same in fp32 at batch 1
 * (split-K 3xTF32 GEMMs, warp-per-row x_proj) and in tf32 at batch 400
 * (cp.async tf32 GEMMs, thin products over float rows); the 16-channel
 * model in tf32 at batch 2048 (out_norm inside the 25-tap fusion); the
 * 32-channel model at batch 512, 64x64, in bf16 (the on-chip MLP, the
 * one-pass scan, mc_down, the 25-tap inner path) and in tf32 (the one-pass
 * scan over float rows, mc_mlp32, mc_conv3t); the 64-channel one in bf16
 * (mc_conv3), and at batch 8 built with mc_cuda_set_fill(1024) (mc_mlp at
 * 64 and 128 channels).  In parallel, ~60 s on 2 cores. */

static const struct {
    const char *name;
    CU_TestFunc fn;
} tests[] = {
    {"float / double literal text", test_golden},
    {"literals are C floating literals that read back exactly", test_round_trip},
    {"cc and nvcc accept the literals, with the same values", test_compilers},
};

MC_UNIT_MAIN("cemit_literals", tests)
