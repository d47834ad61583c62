/* ir/diag.h -- error values and diagnostics shared by every module.
 *
 * Library code never exits: it fills an McErr and returns -1 (or NULL), so
 * readers can run under a fuzzer.  The CLI prints err.msg and exits 1.
 * User errors about a file carry "file:line:col: error: ..." in msg.
 * mc_die() is for internal errors only (bugs), and aborts.
 */
#ifndef MC_DIAG_H
#define MC_DIAG_H
#include <stddef.h>

typedef struct McErr {
    char msg[2048];
} McErr;

/* Sets err->msg (printf-style); returns -1 so callers can `return mc_err(...)`. */
int mc_err(McErr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, prefixed with "file:line:col: error: " (line/col 1-based; 0 omits). */
int mc_err_at(McErr *err, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Prepends "prefix: " to an existing message. */
void mc_err_prefix(McErr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Internal error: prints "mambac: internal error: ..." and aborts. */
_Noreturn void mc_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One-line warnings/notes to stderr ("mambac: warning: ..."). */
void mc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mc_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
