/* ir/parse.c -- reads the textual graph IR (docs/ir.md) into a Graph.
 *
 * Takes: any bytes (the text need not be NUL-terminated or valid UTF-8).
 * Produces: a Graph built through mc_graph_input/mc_graph_weight/mc_graph_add
 * (so every shape is inferred, then checked against the written type), or
 * -1 with "file:line:col: error: ..." in McErr.
 * Owns: its token array and string pool (freed before return); the Graph
 * belongs to the caller, who mc_graph_init()s it before and frees it with
 * mc_graph_free() after, whether parsing succeeded or not.
 *
 * Two stages: a lexer turns the whole text into tokens (a lexical error
 * becomes an error token, reported only when the parser reaches it, so the
 * first error in the file is the one reported), then a line-by-line parser
 * walks them.  No recursion; names are found through the graph's hash index
 * (mc_graph_find), so the
 * work is linear in the input.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "ir/budget.h"

/* Integers in the text are limited so shape arithmetic cannot overflow. */
#define IR_INT_MAX ((int64_t)1 << 40)
#define IR_NUMEL_MAX ((int64_t)1 << 48)

/* ------------------------------------------------------------ lexer */

typedef enum TokKind {
    TK_EOF, TK_NL, TK_WORD, TK_REF, TK_PUNCT, TK_ERR
} TokKind;

typedef struct Tok {
    TokKind kind;
    int line, col;
    size_t off;     /* into the pool: NUL-terminated text (refs without the %) */
    size_t len;
    char punct;     /* TK_PUNCT */
} Tok;

typedef struct Lexer {
    const unsigned char *s;
    size_t n, pos;
    int line, col;
    Tok *toks;
    size_t ntoks, tokcap;
    char *pool;
    size_t plen, pcap;
    bool oom;
} Lexer;

/* NAME := [A-Za-z0-9_.-]+ */
static bool
name_char(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* Characters of a bare word: NAME characters, plus '+' for floats (1e+20). */
static bool
word_char(unsigned c)
{
    return name_char(c) || c == '+';
}

static size_t
pool_put(Lexer *lx, const void *p, size_t n)
{
    if (lx->plen + n + 1 > lx->pcap) {
        size_t cap = lx->pcap ? lx->pcap : 4096;
        while (cap < lx->plen + n + 1)
            cap *= 2;
        char *np = realloc(lx->pool, cap);
        if (!np) {
            lx->oom = true;
            return 0;
        }
        lx->pool = np;
        lx->pcap = cap;
    }
    size_t off = lx->plen;
    if (n)
        memcpy(lx->pool + off, p, n);
    lx->pool[off + n] = 0;
    lx->plen += n + 1;
    return off;
}

static Tok *
tok_push(Lexer *lx, TokKind k, int line, int col)
{
    if (lx->ntoks == lx->tokcap) {
        size_t cap = lx->tokcap ? lx->tokcap * 2 : 1024;
        Tok *nt = realloc(lx->toks, cap * sizeof *nt);
        if (!nt) {
            lx->oom = true;
            return NULL;
        }
        lx->toks = nt;
        lx->tokcap = cap;
    }
    Tok *t = &lx->toks[lx->ntoks++];
    memset(t, 0, sizeof *t);
    t->kind = k;
    t->line = line;
    t->col = col;
    return t;
}

static void
advance(Lexer *lx, size_t k)
{
    lx->pos += k;
    lx->col += (int)k;
}

/* Appends "'c'" or "byte 0xNN" describing one input byte. */
static void
describe_byte(char *buf, size_t n, unsigned c)
{
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02x", c);
}

static void
lex_error(Lexer *lx, int line, int col, const char *msg)
{
    Tok *t = tok_push(lx, TK_ERR, line, col);
    if (t) {
        t->off = pool_put(lx, msg, strlen(msg));
        t->len = strlen(msg);
    }
}

/* Lexes the whole text; stops at the first lexical error (an error token). */
static void
lex_all(Lexer *lx)
{
    while (!lx->oom) {
        if (lx->pos >= lx->n) {
            tok_push(lx, TK_EOF, lx->line, lx->col);
            break;
        }
        unsigned c = lx->s[lx->pos];
        if (c == ' ' || c == '\t' || c == '\r') {
            advance(lx, 1);
            continue;
        }
        if (c == '#') {
            while (lx->pos < lx->n && lx->s[lx->pos] != '\n')
                advance(lx, 1);
            continue;
        }
        int line = lx->line, col = lx->col;
        if (c == '\n') {
            tok_push(lx, TK_NL, line, col);
            lx->pos++;
            lx->line++;
            lx->col = 1;
            continue;
        }
        if (word_char(c)) {
            size_t b = lx->pos;
            while (lx->pos < lx->n && word_char(lx->s[lx->pos]))
                advance(lx, 1);
            Tok *t = tok_push(lx, TK_WORD, line, col);
            if (t) {
                t->off = pool_put(lx, lx->s + b, lx->pos - b);
                t->len = lx->pos - b;
            }
            continue;
        }
        if (c == '%') {
            advance(lx, 1);
            size_t b = lx->pos;
            while (lx->pos < lx->n && name_char(lx->s[lx->pos]))
                advance(lx, 1);
            if (lx->pos == b) {
                lex_error(lx, line, col, "expected a name after '%' (NAME := [A-Za-z0-9_.-]+)");
                break;
            }
            Tok *t = tok_push(lx, TK_REF, line, col);
            if (t) {
                t->off = pool_put(lx, lx->s + b, lx->pos - b);
                t->len = lx->pos - b;
            }
            continue;
        }
        if (c == '=' || c == ',' || c == ':' || c == '[' || c == ']' || c == '{' || c == '}') {
            Tok *t = tok_push(lx, TK_PUNCT, line, col);
            if (t)
                t->punct = (char)c;
            advance(lx, 1);
            continue;
        }
        char what[32], msg[96];
        describe_byte(what, sizeof what, c);
        snprintf(msg, sizeof msg, "unexpected %s", what);
        lex_error(lx, line, col, msg);
        break;
    }
}

/* ------------------------------------------------------------ parser */

typedef struct Parser {
    Lexer lx;
    size_t p;           /* current token */
    Graph *g;
    const char *file;
    McErr *err;
    int *defline;       /* per node id: line of its definition */
    int defcap;
    double wparams, wbytes; /* weights so far (the parameter budget) */
} Parser;

static const Tok *
peek(Parser *ps)
{
    return &ps->lx.toks[ps->p];
}

static const Tok *
next(Parser *ps)
{
    const Tok *t = &ps->lx.toks[ps->p];
    if (t->kind != TK_EOF && t->kind != TK_ERR)
        ps->p++;
    return t;
}

static const char *
tok_text(const Parser *ps, const Tok *t)
{
    return ps->lx.pool + t->off;
}

/* A short, printable description of a token for messages. */
static void
describe(const Parser *ps, const Tok *t, char *buf, size_t n)
{
    char tmp[48];
    size_t k = 0;
    const char *s = tok_text(ps, t);
    switch (t->kind) {
    case TK_EOF: snprintf(buf, n, "end of file"); return;
    case TK_NL: snprintf(buf, n, "end of line"); return;
    case TK_PUNCT: snprintf(buf, n, "'%c'", t->punct); return;
    case TK_ERR: snprintf(buf, n, "%s", s); return;
    default: break;
    }
    size_t i = 0;
    for (; i < t->len && k + 5 < sizeof tmp; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'')
            tmp[k++] = (char)c;
        else
            k += (size_t)snprintf(tmp + k, sizeof tmp - k, "\\x%02x", c);
    }
    tmp[k] = 0;
    const char *more = i < t->len ? "..." : "";
    snprintf(buf, n, t->kind == TK_REF ? "'%%%s%s'" : "'%s%s'", tmp, more);
}

static int
fail_at(Parser *ps, const Tok *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail_at(Parser *ps, const Tok *t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mc_err_at(ps->err, ps->file, t->line, t->col, "%s", msg);
}

/* Reports "expected X, got Y" (or the lexical error the token carries). */
static int
fail_expected(Parser *ps, const Tok *t, const char *what)
{
    char got[96];
    if (t->kind == TK_ERR)
        return fail_at(ps, t, "%s", tok_text(ps, t));
    describe(ps, t, got, sizeof got);
    return fail_at(ps, t, "expected %s, got %s", what, got);
}

static bool
is_punct(const Tok *t, char c)
{
    return t->kind == TK_PUNCT && t->punct == c;
}

static bool
is_word(const Parser *ps, const Tok *t, const char *w)
{
    return t->kind == TK_WORD && strcmp(tok_text(ps, t), w) == 0;
}

static int
expect_punct(Parser *ps, char c)
{
    const Tok *t = peek(ps);
    if (!is_punct(t, c)) {
        char what[8];
        snprintf(what, sizeof what, "'%c'", c);
        return fail_expected(ps, t, what);
    }
    next(ps);
    return 0;
}

static void
skip_nl(Parser *ps)
{
    while (peek(ps)->kind == TK_NL)
        next(ps);
}

/* An integer in [lo, hi]. */
static int
parse_int(Parser *ps, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    const Tok *t = peek(ps);
    if (t->kind != TK_WORD)
        return fail_expected(ps, t, what);
    const char *s = tok_text(ps, t);
    size_t i = s[0] == '-' ? 1 : 0;
    if (!s[i])
        return fail_expected(ps, t, what);
    int64_t v = 0;
    for (; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail_expected(ps, t, what);
        if (v > IR_INT_MAX)
            break;
        v = v * 10 + (s[i] - '0');
    }
    if (s[0] == '-')
        v = -v;
    if (v < lo || v > hi)
        return fail_at(ps, t, "%s %s out of range [%" PRId64 ", %" PRId64 "]", what, s, lo, hi);
    next(ps);
    *out = v;
    return 0;
}

/* "[" INT ("," INT)* "]" or "[]"; at most max entries. */
static int
parse_int_list(Parser *ps, int64_t lo, int64_t hi, const char *what, int64_t *v, int max,
               int *count)
{
    if (expect_punct(ps, '['))
        return -1;
    *count = 0;
    if (is_punct(peek(ps), ']')) {
        next(ps);
        return 0;
    }
    for (;;) {
        if (*count == max)
            return fail_at(ps, peek(ps), "too many entries in %s list (at most %d)", what, max);
        if (parse_int(ps, lo, hi, what, &v[(*count)++]))
            return -1;
        const Tok *t = peek(ps);
        if (is_punct(t, ']')) {
            next(ps);
            return 0;
        }
        if (!is_punct(t, ','))
            return fail_expected(ps, t, "',' or ']'");
        next(ps);
    }
}

/* DTYPE "[" dims "]" */
static int
parse_type(Parser *ps, DType *dt, Shape *sh)
{
    const Tok *t = peek(ps);
    if (t->kind != TK_WORD || mc_dtype_parse(tok_text(ps, t), dt) != 0) {
        if (t->kind == TK_WORD) {
            char got[96];
            describe(ps, t, got, sizeof got);
            return fail_at(ps, t, "unknown dtype %s (want f32, f64, f16, bf16, i64 or i32)", got);
        }
        return fail_expected(ps, t, "a type such as f32[1,3,224,224]");
    }
    next(ps);
    const Tok *open = peek(ps);
    int64_t d[MC_MAX_RANK];
    int rank;
    if (parse_int_list(ps, 0, IR_INT_MAX, "dimension", d, MC_MAX_RANK, &rank))
        return -1;
    memset(sh, 0, sizeof *sh);
    sh->rank = rank;
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        sh->d[i] = d[i];
        if (d[i] && numel > IR_NUMEL_MAX / d[i])
            return fail_at(ps, open, "tensor too large (more than 2^48 elements)");
        numel *= d[i] ? d[i] : 1;
    }
    return 0;
}

/* The attributes of one node, any order, each at most once; conv and eps
 * attributes default to mc_attrs_default(), perm/start/len are required. */
static int
parse_attrs(Parser *ps, OpKind op, const Tok *optok, const int *in, int nin, Attrs *a)
{
    unsigned allowed = mc_op_info[op].attrs;
    Attrs def = mc_attrs_default();
    memset(a, 0, sizeof *a);
    if (allowed & A_CONV) {
        memcpy(a->stride, def.stride, sizeof a->stride);
        memcpy(a->pad, def.pad, sizeof a->pad);
        memcpy(a->dil, def.dil, sizeof a->dil);
        a->groups = def.groups;
    }
    if (allowed & A_EPS)
        a->eps = def.eps;
    enum { S_STRIDE = 1, S_PAD = 2, S_DIL = 4, S_GROUPS = 8, S_EPS = 16, S_START = 32,
           S_LEN = 64, S_PERM = 128, S_SIZE = 256, S_ALIGN = 512 };
    unsigned seen = 0;
    while (peek(ps)->kind == TK_WORD) {
        const Tok *key = next(ps);
        const char *k = tok_text(ps, key);
        unsigned bit, need;
        if (!strcmp(k, "stride")) bit = S_STRIDE, need = A_CONV;
        else if (!strcmp(k, "pad")) bit = S_PAD, need = A_CONV;
        else if (!strcmp(k, "dilation")) bit = S_DIL, need = A_CONV;
        else if (!strcmp(k, "groups")) bit = S_GROUPS, need = A_CONV;
        else if (!strcmp(k, "eps")) bit = S_EPS, need = A_EPS;
        else if (!strcmp(k, "start")) bit = S_START, need = A_SLICE;
        else if (!strcmp(k, "len")) bit = S_LEN, need = A_SLICE;
        else if (!strcmp(k, "perm")) bit = S_PERM, need = A_PERM;
        else if (!strcmp(k, "size")) bit = S_SIZE, need = A_SIZE;
        else if (!strcmp(k, "align_corners")) bit = S_ALIGN, need = A_ALIGN;
        else {
            char got[96];
            describe(ps, key, got, sizeof got);
            return fail_at(ps, key, "unknown attribute %s", got);
        }
        if (!(allowed & need))
            return fail_at(ps, key, "op '%s' has no attribute '%s'", mc_op_info[op].name, k);
        if (seen & bit)
            return fail_at(ps, key, "attribute '%s' given twice", k);
        seen |= bit;
        if (expect_punct(ps, '='))
            return -1;
        int cnt;
        int64_t v[MC_MAX_RANK];
        const Tok *vt = peek(ps);
        switch (bit) {
        case S_STRIDE:
        case S_PAD:
        case S_DIL:
        case S_SIZE: {
            int64_t *dst = bit == S_STRIDE ? a->stride : bit == S_PAD ? a->pad : bit == S_DIL ? a->dil : a->size;
            if (parse_int_list(ps, -IR_INT_MAX, IR_INT_MAX, k, v, 2, &cnt))
                return -1;
            if (cnt != 2)
                return fail_at(ps, vt, "'%s' takes two values [h,w]", k);
            dst[0] = v[0], dst[1] = v[1];
            break;
        }
        case S_GROUPS:
            if (parse_int(ps, -IR_INT_MAX, IR_INT_MAX, "groups", &a->groups))
                return -1;
            break;
        case S_ALIGN:
            if (parse_int(ps, 0, 1, "align_corners", &a->align_corners))
                return -1;
            break;
        case S_START:
            if (parse_int(ps, -IR_INT_MAX, IR_INT_MAX, "start", &a->start))
                return -1;
            break;
        case S_LEN:
            if (parse_int(ps, -IR_INT_MAX, IR_INT_MAX, "len", &a->len))
                return -1;
            break;
        case S_EPS: {
            if (vt->kind != TK_WORD)
                return fail_expected(ps, vt, "a number");
            const char *s = tok_text(ps, vt);
            char *end;
            errno = 0;
            double x = strtod(s, &end);
            if (end == s || *end)
                return fail_expected(ps, vt, "a number");
            if (!isfinite(x))
                return fail_at(ps, vt, "eps must be finite, got %s", s);
            a->eps = x;
            next(ps);
            break;
        }
        case S_PERM: {
            int rank = nin > 0 ? ps->g->nodes[in[0]].shape.rank : 0;
            if (parse_int_list(ps, -IR_INT_MAX, IR_INT_MAX, "perm", v, MC_MAX_RANK, &cnt))
                return -1;
            if (cnt != rank)
                return fail_at(ps, vt, "perm has %d entries but the operand has rank %d", cnt, rank);
            for (int i = 0; i < cnt; i++) {
                if (v[i] < 0 || v[i] >= rank)
                    return fail_at(ps, vt, "perm entry %" PRId64 " out of range [0, %d)", v[i], rank);
                a->perm[i] = (int)v[i];
            }
            break;
        }
        }
    }
    if ((allowed & A_PERM) && !(seen & S_PERM))
        return fail_at(ps, optok, "op '%s' needs attribute 'perm'", mc_op_info[op].name);
    if ((allowed & A_SIZE) && !(seen & S_SIZE))
        return fail_at(ps, optok, "op '%s' needs attribute 'size'", mc_op_info[op].name);
    if ((allowed & A_SLICE) && (seen & (S_START | S_LEN)) != (S_START | S_LEN))
        return fail_at(ps, optok, "op '%s' needs attributes 'start' and 'len'", mc_op_info[op].name);
    return 0;
}

static int
lookup_ref(Parser *ps, const Tok *t, int *id)
{
    *id = mc_graph_find(ps->g, tok_text(ps, t));
    if (*id < 0) {
        char got[96];
        describe(ps, t, got, sizeof got);
        return fail_at(ps, t, "undefined value %s (values must be defined before use)", got);
    }
    return 0;
}

static int
note_def(Parser *ps, int id, int line)
{
    if (id >= ps->defcap) {
        int cap = ps->defcap ? ps->defcap * 2 : 256;
        while (cap <= id)
            cap *= 2;
        int *nd = realloc(ps->defline, (size_t)cap * sizeof *nd);
        if (!nd)
            return mc_err(ps->err, "%s: out of memory", ps->file);
        ps->defline = nd;
        ps->defcap = cap;
    }
    ps->defline[id] = line;
    return 0;
}

/* "  %name = OP [%a, %b] attrs : TYPE NL", the current token being the ref. */
static int
parse_node(Parser *ps)
{
    Graph *g = ps->g;
    const Tok *nt = next(ps);
    const char *name = tok_text(ps, nt);
    int prev = mc_graph_find(g, name);
    if (prev >= 0) {
        char got[96];
        describe(ps, nt, got, sizeof got);
        return fail_at(ps, nt, "duplicate name %s (first defined at line %d)", got,
                       ps->defline[prev]);
    }
    if (expect_punct(ps, '='))
        return -1;
    const Tok *optok = peek(ps);
    OpKind op;
    if (optok->kind != TK_WORD)
        return fail_expected(ps, optok, "an op name");
    if (mc_op_parse(tok_text(ps, optok), &op) != 0 || (unsigned)op >= OP_COUNT) {
        char got[96];
        describe(ps, optok, got, sizeof got);
        return fail_at(ps, optok, "unknown op %s", got);
    }
    next(ps);
    const OpInfo *info = &mc_op_info[op];

    int in[MC_MAX_INPUTS], nin = 0;
    if (peek(ps)->kind == TK_REF) {
        for (;;) {
            const Tok *rt = peek(ps);
            if (rt->kind != TK_REF)
                return fail_expected(ps, rt, "an operand '%name'");
            if (nin == info->max_in || nin == MC_MAX_INPUTS)
                return fail_at(ps, rt, "too many operands: op '%s' takes at most %d",
                               info->name, info->max_in);
            if (lookup_ref(ps, rt, &in[nin]))
                return -1;
            nin++;
            next(ps);
            if (peek(ps)->kind == TK_REF)
                return fail_expected(ps, peek(ps), "',' between operands");
            if (!is_punct(peek(ps), ','))
                break;
            next(ps);
        }
    }
    if (nin < info->min_in) {
        if (info->min_in == info->max_in)
            return fail_at(ps, optok, "op '%s' takes %d operand%s, got %d", info->name,
                           info->min_in, info->min_in == 1 ? "" : "s", nin);
        return fail_at(ps, optok, "op '%s' takes %d to %d operands, got %d", info->name,
                       info->min_in, info->max_in, nin);
    }

    Attrs a;
    if (parse_attrs(ps, op, optok, in, nin, &a))
        return -1;
    if (!is_punct(peek(ps), ':')) {
        if (peek(ps)->kind == TK_REF)
            return fail_expected(ps, peek(ps), "',' between operands");
        return fail_expected(ps, peek(ps), "' : ' and a type");
    }
    next(ps);
    const Tok *tt = peek(ps);
    DType dt;
    Shape sh;
    if (parse_type(ps, &dt, &sh))
        return -1;
    if (peek(ps)->kind != TK_NL)
        return fail_expected(ps, peek(ps), "end of line");
    next(ps);

    McErr e;
    e.msg[0] = 0;
    int id;
    if (op == OP_INPUT)
        id = mc_graph_input(g, name, dt, &sh, &e);
    else if (op == OP_WEIGHT)
        id = mc_graph_weight(g, name, dt, &sh, &e);
    else {
        if (info->attrs & A_TYPE) {
            a.type = dt;
            a.shape = sh;
        }
        id = mc_graph_add(g, op, in, nin, &a, name, &e);
    }
    if (id < 0)
        return fail_at(ps, optok, "%s", e.msg[0] ? e.msg : "cannot add node");
    if (id != g->nnodes - 1 || strcmp(g->nodes[id].name, name) != 0)
        return fail_at(ps, nt, "internal: node %s was not added under its own name", name);
    const Node *n = &g->nodes[id];
    if (n->dtype != dt || !mc_shape_eq(&n->shape, &sh)) {
        char w[160], inf[160];
        snprintf(w, 16, "%s", mc_dtype_name(dt));
        mc_shape_str(&sh, w + strlen(w), sizeof w - strlen(w));
        snprintf(inf, 16, "%s", mc_dtype_name(n->dtype));
        mc_shape_str(&n->shape, inf + strlen(inf), sizeof inf - strlen(inf));
        return fail_at(ps, tt, "type mismatch for %%%s: written %s but inferred %s", name, w, inf);
    }
    if (mc_budget_check_node(n, &ps->wparams, &ps->wbytes, ps->file, tt->line, tt->col, ps->err))
        return -1;
    return note_def(ps, id, nt->line);
}

/* "return %a (, %b)* NL" after the 'return' word. */
static int
parse_return(Parser *ps)
{
    if (peek(ps)->kind != TK_REF)
        return fail_expected(ps, peek(ps), "a returned value '%name'");
    for (;;) {
        const Tok *rt = peek(ps);
        if (rt->kind != TK_REF)
            return fail_expected(ps, rt, "a returned value '%name'");
        int id;
        if (lookup_ref(ps, rt, &id))
            return -1;
        mc_graph_add_output(ps->g, id);
        next(ps);
        if (peek(ps)->kind == TK_REF)
            return fail_expected(ps, peek(ps), "',' between returned values");
        if (!is_punct(peek(ps), ','))
            break;
        next(ps);
    }
    if (peek(ps)->kind != TK_NL)
        return fail_expected(ps, peek(ps), "',' or end of line after the returned values");
    next(ps);
    return 0;
}

static int
parse_file(Parser *ps)
{
    skip_nl(ps);
    const Tok *t = peek(ps);
    if (!is_word(ps, t, "graph"))
        return fail_expected(ps, t, "'graph NAME {'");
    next(ps);
    t = peek(ps);
    if (t->kind == TK_WORD) {
        const char *s = tok_text(ps, t);
        for (size_t i = 0; s[i]; i++)
            if (!name_char((unsigned char)s[i]))
                return fail_at(ps, t, "invalid graph name '%s' (NAME := [A-Za-z0-9_.-]+)", s);
        ps->g->name = mc_arena_strdup(&ps->g->arena, s);
    } else {
        return fail_expected(ps, t, "a graph name");
    }
    next(ps);
    if (expect_punct(ps, '{'))
        return -1;
    if (peek(ps)->kind != TK_NL)
        return fail_expected(ps, peek(ps), "end of line after '{'");
    for (;;) {
        skip_nl(ps);
        t = peek(ps);
        if (t->kind == TK_REF) {
            if (parse_node(ps))
                return -1;
            continue;
        }
        if (is_word(ps, t, "return")) {
            next(ps);
            if (parse_return(ps))
                return -1;
            break;
        }
        if (is_punct(t, '}'))
            return fail_at(ps, t, "missing 'return' before '}'");
        if (t->kind == TK_EOF)
            return fail_at(ps, t, "unexpected end of file: missing 'return' and '}'");
        return fail_expected(ps, t, "a node '%name = op ...' or 'return'");
    }
    skip_nl(ps);
    if (expect_punct(ps, '}'))
        return -1;
    skip_nl(ps);
    t = peek(ps);
    if (t->kind != TK_EOF) {
        if (t->kind == TK_ERR)
            return fail_expected(ps, t, "end of file");
        char got[96];
        describe(ps, t, got, sizeof got);
        return fail_at(ps, t, "unexpected %s after the end of the graph", got);
    }
    return 0;
}

int
mc_graph_parse(Graph *g, const char *text, size_t len, const char *file, McErr *err)
{
    if (g->nnodes != 0)
        return mc_err(err, "%s: internal: mc_graph_parse needs an empty graph", file ? file : "<ir>");
    Parser ps;
    memset(&ps, 0, sizeof ps);
    ps.g = g;
    ps.file = file ? file : "<ir>";
    ps.err = err;
    ps.lx.s = (const unsigned char *)(text ? text : "");
    ps.lx.n = text ? len : 0;
    ps.lx.line = 1;
    ps.lx.col = 1;
    pool_put(&ps.lx, "", 0); /* offset 0: the text of tokens without text */
    lex_all(&ps.lx);
    int rc;
    if (ps.lx.oom || ps.lx.ntoks == 0)
        rc = mc_err(err, "%s: out of memory", ps.file);
    else
        rc = parse_file(&ps);
    free(ps.lx.toks);
    free(ps.lx.pool);
    free(ps.defline);
    return rc;
}
