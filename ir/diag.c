/* ir/diag.c -- error values and diagnostics (see diag.h). */
#include "diag.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
mc_err(McErr *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int
mc_err_at(McErr *err, const char *file, int line, int col, const char *fmt, ...)
{
    if (!err) return -1;
    int n;
    if (line > 0 && col > 0)
        n = snprintf(err->msg, sizeof err->msg, "%s:%d:%d: error: ", file ? file : "<input>", line, col);
    else if (line > 0)
        n = snprintf(err->msg, sizeof err->msg, "%s:%d: error: ", file ? file : "<input>", line);
    else
        n = snprintf(err->msg, sizeof err->msg, "%s: error: ", file ? file : "<input>");
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof err->msg) n = sizeof err->msg - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

void
mc_err_prefix(McErr *err, const char *fmt, ...)
{
    if (!err) return;
    char pre[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old);
}

_Noreturn void
mc_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("mambac: internal error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void
mc_warn(const char *fmt, ...)
{
    va_list ap;
    fputs("mambac: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void
mc_note(const char *fmt, ...)
{
    va_list ap;
    fputs("mambac: note: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
