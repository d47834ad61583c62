/* ir/budget.c -- the parameter and activation budgets (budget.h).
 * Takes: sizes computed by the frontends and the MAMBAC_MAX_* variables.
 * Produces: a one-line user error naming the size and the limit.
 * Owns: nothing.
 */
#include "budget.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUDGET ((int64_t)1 << 40)

/* A positive integer or 2^N, at most 2^40; -1 if not. */
static int64_t
parse_budget(const char *s)
{
    char *end;
    if (!isdigit((unsigned char)s[0])) return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (end[0] == '^' && v == 2 && isdigit((unsigned char)end[1])) {
        unsigned long long e = strtoull(end + 1, &end, 10);
        v = e <= 40 ? 1ull << e : (unsigned long long)MAX_BUDGET + 1;
    }
    if (*end || v < 1 || v > (unsigned long long)MAX_BUDGET) return -1;
    return (int64_t)v;
}

static int
budget_get(const char *var, int64_t def, int64_t *out, McErr *err)
{
    const char *s = getenv(var);
    *out = def;
    if (!s || !*s) return 0;
    *out = parse_budget(s);
    if (*out < 0)
        return mc_err(err, "%s must be a positive integer or 2^N, at most 2^40; got '%.40s'", var, s);
    return 0;
}

int
mc_budget_max_params(int64_t *out, McErr *err)
{
    return budget_get("MAMBAC_MAX_PARAMS", MC_DEFAULT_MAX_PARAMS, out, err);
}

int
mc_budget_max_activation(int64_t *out, McErr *err)
{
    return budget_get("MAMBAC_MAX_ACTIVATION", MC_DEFAULT_MAX_ACTIVATION, out, err);
}

/* "17.2 TiB" */
static const char *
fmt_bytes(double b, char *buf, size_t n)
{
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (b >= 1024 && u < 6) b /= 1024, u++;
    snprintf(buf, n, "%.3g %s", b, unit[u]);
    return buf;
}

/* "2^30" for powers of two, else the number. */
static const char *
fmt_count(int64_t v, char *buf, size_t n)
{
    if ((v & (v - 1)) == 0) {
        int e = 0;
        while (((int64_t)1 << e) < v) e++;
        snprintf(buf, n, "2^%d", e);
    } else {
        snprintf(buf, n, "%lld", (long long)v);
    }
    return buf;
}

static int
budget_check(double elems, double bytes, int64_t max, const char *what, const char *unit,
             const char *var, const char *file, int line, int col, McErr *err)
{
    if (elems <= (double)max && bytes <= 4.0 * (double)max) return 0; /* f64 counts twice */
    char b1[32], b2[32], b3[32];
    return mc_err_at(err, file, line, col,
                     "%s has %.3g %s (%s); the limit is %s %s (%s of float32); set %s to raise it",
                     what, elems, unit, fmt_bytes(bytes, b1, sizeof b1), fmt_count(max, b2, sizeof b2),
                     unit, fmt_bytes(4.0 * (double)max, b3, sizeof b3), var);
}

int
mc_budget_check_params(double elems, double bytes, const char *what, const char *file, int line,
                       int col, McErr *err)
{
    int64_t max;
    if (mc_budget_max_params(&max, err)) return -1;
    return budget_check(elems, bytes, max, what, "parameters", "MAMBAC_MAX_PARAMS", file, line, col,
                        err);
}

int
mc_budget_check_activation(double elems, double bytes, const char *what, const char *file,
                           int line, int col, McErr *err)
{
    int64_t max;
    if (mc_budget_max_activation(&max, err)) return -1;
    return budget_check(elems, bytes, max, what, "elements", "MAMBAC_MAX_ACTIVATION", file, line,
                        col, err);
}

int
mc_budget_check_node(const Node *n, double *wparams, double *wbytes, const char *file, int line,
                     int col, McErr *err)
{
    char what[256];
    double e = (double)mc_shape_numel(&n->shape), bytes = e * mc_dtype_size(n->dtype);
    if (n->op == OP_WEIGHT) {
        *wparams += e;
        *wbytes += bytes;
        snprintf(what, sizeof what, "the graph (weights up to %%%.200s)", n->name);
        return mc_budget_check_params(*wparams, *wbytes, what, file, line, col, err);
    }
    snprintf(what, sizeof what, "%%%.200s", n->name);
    return mc_budget_check_activation(e, bytes, what, file, line, col, err);
}
