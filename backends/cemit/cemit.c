/* backends/cemit/cemit.c -- the shared C/CUDA emitter (see cemit.h).
 *
 * Takes views and epilogue expressions of the kernel IR; produces text in
 * an McBuf.  Owns the buffer's memory.  Deterministic: the same input gives
 * the same text.  Every floating constant prints through
 * mc_cemit_float_literal / mc_cemit_double_literal: valid C and CUDA C,
 * read back as exactly the value printed.
 */
#include "cemit.h"
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const McDialect mc_dialect_cuda = {
    "cuda", "__global__ void", "static __device__ __forceinline__", "__restrict__",
    "expf", "sqrtf", "erff", "log1pf", 1,
};

const McDialect mc_dialect_c = {
    "c", "static void", "static inline", "restrict",
    "expf", "sqrtf", "erff", "log1pf", 0,
};

void
mc_buf_printf(McBuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = 1; return; }
        if ((size_t)n < room) { b->len += (size_t)n; return; }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->oom = 1; return; }
        b->s = s;
        b->cap = cap;
    }
}

void
mc_buf_puts(McBuf *b, const char *s)
{
    mc_buf_printf(b, "%s", s);
}

void
mc_buf_free(McBuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void
mc_cemit_prelude(McBuf *b, const McDialect *d)
{
    const char *q = d->func_qual;
    mc_buf_printf(b, "%s float mc_relu(float x) { return x > 0.0f ? x : 0.0f; }\n", q);
    if (d->fast_act) {
        /* fast forms (a few ulp): the libm ones cost ~25 instructions (a
         * precise division; erff's two polynomials and a branch) */
        mc_buf_printf(b, "%s float mc_tanh_approx(float x)\n{\n    float y;\n"
                         "    asm(\"tanh.approx.f32 %%0, %%1;\" : \"=f\"(y) : \"f\"(x));\n    return y;\n}\n", q);
        mc_buf_printf(b, "/* GELU: exact erf form; (MC_FAST_GELU 1) erfc by Abramowitz & Stegun 7.1.26\n"
                         " * (|error| <= 1.5e-7; GELU within 6.5e-7 of float64, as the erff form); (MC_FAST_GELU\n"
                         " * 2) the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) with the hardware\n"
                         " * tanh (one MUFU op instead of two; within 4.8e-4 of erf-GELU, plus tanh.approx's\n"
                         " * relative 2^-11: for bf16 activations only) */\n"
                         "#if MC_FAST_GELU == 2\n"
                         "%s float mc_gelu(float x)\n{\n"
                         "    const float h = 0.5f * x;\n"
                         "    return fmaf(h, mc_tanh_approx(x * fmaf(0.0356774081f, x * x, 0.7978845608f)), h);\n}\n"
                         "#elif MC_FAST_GELU\n", q);
        mc_buf_printf(b, "%s float mc_gelu(float x)\n{\n"
                         "    const float z = fabsf(x) * 0.70710678118654752f, t = __fdividef(1.0f, fmaf(0.3275911f, z, 1.0f));\n"
                         "    const float p = fmaf(t, fmaf(t, fmaf(t, fmaf(t, 1.061405429f, -1.453152027f), 1.421413741f), -0.284496736f),\n"
                         "                         0.254829592f);\n"
                         "    const float e = t * p * __expf(-z * z); /* erfc(|x| / sqrt 2) */\n"
                         "    return 0.5f * x * (x >= 0.0f ? 2.0f - e : e);\n}\n#else\n", q);
    } else {
        mc_buf_printf(b, "/* GELU, exact erf form */\n");
    }
    mc_buf_printf(b, "%s float mc_gelu(float x) { return 0.5f * x * (1.0f + %s(x * 0.70710678118654752f)); }\n",
                  q, d->erff);
    if (d->fast_act)
        mc_buf_printf(b, "#endif\n/* SiLU: x / (1 + e^-x); (MC_FAST_SILU 1) with __expf and __fdividef; (MC_FAST_SILU 2)\n"
                         " * 0.5 x (1 + tanh(x / 2)) with the hardware tanh (one MUFU op instead of two; relative\n"
                         " * 2^-11: for bf16 activations only) */\n"
                         "#if MC_FAST_SILU == 2\n"
                         "%s float mc_silu(float x) { const float h = 0.5f * x; return fmaf(h, mc_tanh_approx(h), h); }\n"
                         "#elif MC_FAST_SILU\n%s float mc_silu(float x) { return __fdividef(x, 1.0f + __expf(-x)); }\n#else\n", q, q);
    mc_buf_printf(b, "%s float mc_silu(float x) { return x / (1.0f + %s(-x)); }\n", q, d->expf);
    if (d->fast_act) mc_buf_puts(b, "#endif\n");
    mc_buf_printf(b, "/* softplus with PyTorch's threshold 20 */\n");
    mc_buf_printf(b, "%s float mc_softplus(float x) { return x > 20.0f ? x : %s(%s(x)); }\n", q,
                  d->log1pf, d->expf);
}

void
mc_cemit_view_index(McBuf *b, const View *v, const char *lin)
{
    /* dims (size, stride, inner product) after dropping size-1 dims */
    int64_t sz[MC_MAX_RANK], st[MC_MAX_RANK];
    int n = 0;
    for (int i = 0; i < v->rank; i++) {
        if (v->shape[i] == 1) continue;
        sz[n] = v->shape[i];
        st[n] = v->stride[i];
        n++;
    }
    /* merge dim j into j+1 when contiguous with it (or both broadcast) */
    for (int j = n - 2; j >= 0; j--) {
        if (st[j] == sz[j + 1] * st[j + 1] || (st[j] == 0 && st[j + 1] == 0)) {
            sz[j + 1] *= sz[j];
            for (int k = j; k < n - 1; k++) { sz[k] = sz[k + 1]; st[k] = st[k + 1]; }
            n--;
        }
    }
    int terms = 0;
    int64_t inner = 1;
    char t[MC_MAX_RANK][160];
    for (int j = n - 1; j >= 0; j--) {
        if (st[j] != 0) {
            char c[128];
            if (j == 0 && inner == 1) snprintf(c, sizeof c, "%s", lin);
            else if (j == 0) snprintf(c, sizeof c, "(%s) / %lld", lin, (long long)inner);
            else if (inner == 1) snprintf(c, sizeof c, "(%s) %% %lld", lin, (long long)sz[j]);
            else snprintf(c, sizeof c, "((%s) / %lld) %% %lld", lin, (long long)inner, (long long)sz[j]);
            if (st[j] == 1) snprintf(t[terms++], sizeof t[0], "%s%s%s", j == 0 && inner == 1 ? "" : "(", c,
                                     j == 0 && inner == 1 ? "" : ")");
            else snprintf(t[terms++], sizeof t[0], "(%s) * %lld", c, (long long)st[j]);
        }
        inner *= sz[j];
    }
    if (!terms) { mc_buf_printf(b, "%lld", (long long)v->offset); return; }
    if (v->offset) mc_buf_printf(b, "%lld + ", (long long)v->offset);
    for (int i = terms - 1; i >= 0; i--) mc_buf_printf(b, "%s%s", t[i], i ? " + " : "");
}

/* v rounded to the nearest float; a double past the float range converts
 * to infinity here, not undefined behaviour (C11 6.3.1.5): up to FLT_MAX +
 * half an ulp it rounds down to FLT_MAX, from there (ties to even: FLT_MAX's
 * last bit is odd) to infinity */
static float
nearest_float(double v)
{
    if (isfinite(v) && fabs(v) > FLT_MAX) {
        float m = fabs(v) < 0x1.ffffffp127 ? FLT_MAX : INFINITY;
        return v < 0 ? -m : m;
    }
    return (float)v;
}

static int
same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* the shared end of both printers: a finite value's decimal text `s`
 * (the sign included) made a floating literal with `suffix` */
static char *
literal(char *buf, size_t n, char *s, size_t ns, const char *suffix)
{
    int neg = s[0] == '-';
    if (!strpbrk(s, ".e") && strlen(s) + 2 < ns) strcat(s, ".0");
    snprintf(buf, n, "%s%s%s%s", neg ? "(" : "", s, suffix, neg ? ")" : "");
    return buf;
}

/* Is the decimal d exactly halfway between f and its neighbour towards d?
 * Such a literal's float is decided by the parser's tie rule, and nvcc's
 * device-code front end breaks ties differently from strtof (measured on
 * an H100: 16777217.0f gave 16777218, not 16777216). */
static int
is_tie(double d, float f)
{
    if (d == (double)f) return 0;
    float g = nextafterf(f, d > (double)f ? INFINITY : -INFINITY);
    return isfinite(g) && d == ((double)f + (double)g) / 2; /* exact: floats have 24-bit mantissas */
}

char *
mc_cemit_float_literal(char *buf, size_t n, double v)
{
    if (isnan(v)) { snprintf(buf, n, "NAN"); return buf; }
    float f = nearest_float(v);
    if (isinf(f)) { snprintf(buf, n, "%s", f > 0 ? "INFINITY" : "(-INFINITY)"); return buf; }
    char s[48];
    snprintf(s, sizeof s, "%.9g", v);
    /* a zero prints as such, not as a constant that underflows to it; a
     * text at a tie between two floats is the float's own text (its 9
     * digits are closer to it than half an ulp: never a tie) */
    if (f == 0 || !same_float(strtof(s, NULL), f) || is_tie(strtod(s, NULL), f))
        snprintf(s, sizeof s, "%.9g", (double)f);
    return literal(buf, n, s, sizeof s, "f");
}

char *
mc_cemit_double_literal(char *buf, size_t n, double v)
{
    if (isnan(v)) { snprintf(buf, n, "((double)NAN)"); return buf; }
    if (isinf(v)) { snprintf(buf, n, "%s", v > 0 ? "((double)INFINITY)" : "(-(double)INFINITY)"); return buf; }
    char s[48];
    snprintf(s, sizeof s, "%.17g", v);
    return literal(buf, n, s, sizeof s, "");
}

void
mc_cemit_epilogue(McBuf *b, const McDialect *d, const Kernel *k, const char *acc, const char *lin,
                  const char *indent, char *res, size_t nres)
{
    mc_cemit_epilogue_ex(b, d, k, acc, lin, indent, res, nres, NULL);
}

void
mc_cemit_epilogue_ex(McBuf *b, const McDialect *d, const Kernel *k, const char *acc, const char *lin,
                     const char *indent, char *res, size_t nres, const char *const *argexpr)
{
    if (k->nexpr == 0) { snprintf(res, nres, "%s", acc); return; }
    char nm[MC_MAX_EXPR][16];
    for (int i = 0; i < k->nexpr; i++) {
        const EInstr *e = &k->expr[i];
        if (e->op == E_ACC) { snprintf(nm[i], sizeof nm[i], "%s", acc); continue; }
        snprintf(nm[i], sizeof nm[i], "e%d", i);
        mc_buf_printf(b, "%sfloat e%d = ", indent, i);
        const char *A = e->a >= 0 ? nm[e->a] : "", *B = e->b >= 0 ? nm[e->b] : "";
        switch (e->op) {
        case E_LOAD: {
            if (argexpr && argexpr[e->arg]) {
                mc_buf_puts(b, argexpr[e->arg]);
                break;
            }
            const View *v = &k->args[e->arg];
            mc_buf_printf(b, "b%d[", v->buf);
            mc_cemit_view_index(b, v, lin);
            mc_buf_puts(b, "]");
            break;
        }
        case E_CONST: {
            char c[MC_CEMIT_LITERAL_MAX];
            mc_buf_puts(b, mc_cemit_float_literal(c, sizeof c, e->imm));
            break;
        }
        case E_ADD: mc_buf_printf(b, "%s + %s", A, B); break;
        case E_SUB: mc_buf_printf(b, "%s - %s", A, B); break;
        case E_MUL: mc_buf_printf(b, "%s * %s", A, B); break;
        case E_DIV: mc_buf_printf(b, "%s / %s", A, B); break;
        case E_NEG: mc_buf_printf(b, "-%s", A); break;
        case E_EXP: mc_buf_printf(b, "%s(%s)", d->expf, A); break;
        case E_SQRT: mc_buf_printf(b, "%s(%s)", d->sqrtf, A); break;
        case E_RELU: mc_buf_printf(b, "mc_relu(%s)", A); break;
        case E_GELU: mc_buf_printf(b, "mc_gelu(%s)", A); break;
        case E_SILU: mc_buf_printf(b, "mc_silu(%s)", A); break;
        case E_SOFTPLUS: mc_buf_printf(b, "mc_softplus(%s)", A); break;
        case E_ACC: break;
        }
        mc_buf_puts(b, ";\n");
    }
    snprintf(res, nres, "%s", nm[k->nexpr - 1]);
}

void
mc_cemit_ident(char *buf, size_t n, int k, const char *name)
{
    int w = snprintf(buf, n, "k%d_", k);
    size_t i = w > 0 ? (size_t)w : 0;
    for (const char *s = name ? name : ""; *s && i + 1 < n && i < 48; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        buf[i++] = ok ? c : '_';
    }
    if (i < n) buf[i] = 0;
    else if (n) buf[n - 1] = 0;
}
