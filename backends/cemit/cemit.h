/* backends/cemit/cemit.h -- a C-like source emitter shared by the CUDA
 * printer (backends/cuda) and a portable-C printer.
 *
 * Takes kernel-IR pieces (views, epilogue expressions) and a dialect table;
 * produces C or CUDA C text in a growable buffer (McBuf).  Owns only the
 * buffer's memory.  The dialects differ in qualifiers, the restrict keyword
 * and the math functions; the expression and index printers are the same.
 */
#ifndef MC_CEMIT_H
#define MC_CEMIT_H
#include <stddef.h>
#include <stdint.h>
#include "../../ir/kernel.h"

typedef struct McBuf {
    char *s;
    size_t len, cap;
    int oom;               /* set when an allocation failed (text is truncated) */
} McBuf;

void mc_buf_printf(McBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mc_buf_puts(McBuf *b, const char *s);
void mc_buf_free(McBuf *b);

typedef struct McDialect {
    const char *name;          /* "cuda" | "c" */
    const char *kernel_qual;   /* before a kernel's return type */
    const char *func_qual;     /* before a helper function */
    const char *restrict_kw;   /* "__restrict__" | "restrict" */
    const char *expf, *sqrtf, *erff, *log1pf;
    int fast_act;              /* also fast SiLU / GELU forms, chosen by MC_FAST_SILU / MC_FAST_GELU (cuda) */
} McDialect;

extern const McDialect mc_dialect_cuda;
extern const McDialect mc_dialect_c;

/* Helper functions the expressions call (mc_relu, mc_gelu, mc_silu,
 * mc_softplus), defined in the dialect. */
void mc_cemit_prelude(McBuf *b, const McDialect *d);

/* The element offset of view v at linear index `lin` (a C expression over
 * v's own shape, row-major).  Adjacent dimensions that are contiguous with
 * each other are merged, broadcast (stride 0) and size-1 dimensions dropped,
 * so a contiguous view prints as "lin" (+ offset). */
void mc_cemit_view_index(McBuf *b, const View *v, const char *lin);

/* Prints the epilogue of k as statements "float eN = ...;" at `indent`,
 * with E_ACC = `acc` and E_LOAD reading b<buf>[view index at `lin`].
 * Writes the name of the final value into res (acc when k has no epilogue). */
void mc_cemit_epilogue(McBuf *b, const McDialect *d, const Kernel *k, const char *acc,
                       const char *lin, const char *indent, char *res, size_t nres);

/* The same, where argexpr[a] (when argexpr and it are not NULL) is printed
 * instead of the load of epilogue operand a (a value the caller loaded). */
void mc_cemit_epilogue_ex(McBuf *b, const McDialect *d, const Kernel *k, const char *acc, const char *lin,
                          const char *indent, char *res, size_t nres, const char *const *argexpr);

/* Floating literals: the one printer of every floating constant in the
 * generated C / CUDA C text (n >= MC_CEMIT_LITERAL_MAX; returns buf).
 *
 * mc_cemit_float_literal writes an expression of type float whose value is
 * exactly (float)v, v rounded to the nearest float as a conversion does
 * (past FLT_MAX + half an ulp: infinity): a decimal literal with a '.' or
 * an exponent and the f suffix, never "1f".  The text is v's own %.9g when
 * that reads back as the same float (1/49 prints 0.0204081633f, a float
 * constant as it always did), else the float's %.9g (9 significant digits
 * read back every float; a zero prints 0.0f or (-0.0f)).  Negative values, -0.0 included, are in
 * parentheses ("(-0.5f)"), so that the text may follow any operator.
 * Infinities print INFINITY / (-INFINITY), NaN NAN (<math.h>, valid in
 * CUDA device code too).
 *
 * mc_cemit_double_literal: the same for a double (%.17g, no suffix, the
 * non-finite values cast to double). */
#define MC_CEMIT_LITERAL_MAX 40
char *mc_cemit_float_literal(char *buf, size_t n, double v);
char *mc_cemit_double_literal(char *buf, size_t n, double v);
/* the same in a compound literal, which lives to the end of the enclosing
 * block: mc_buf_printf(b, "x * %s", MC_FLOAT_LIT(1.0 / n)) */
#define MC_FLOAT_LIT(v) mc_cemit_float_literal((char[MC_CEMIT_LITERAL_MAX]){0}, MC_CEMIT_LITERAL_MAX, (v))
#define MC_DOUBLE_LIT(v) mc_cemit_double_literal((char[MC_CEMIT_LITERAL_MAX]){0}, MC_CEMIT_LITERAL_MAX, (v))

/* A C identifier from a kernel name: "k12_layers_0_blocks_0_ssm_add". */
void mc_cemit_ident(char *buf, size_t n, int k, const char *name);

#endif
