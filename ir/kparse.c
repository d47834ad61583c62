/* ir/kparse.c -- the kernel IR's text form read back (the printer:
 * kernel.c; the grammar: docs/kernel-ir.md).  One record per line; '#'
 * starts a comment line.  Any bytes are safe input: every count is bounded
 * (buffers, kernels, operands, expression length), every number checked
 * for its range, and the first error is reported as file:line:col.  The
 * program's invariants are not checked here but by mc_kprogram_verify. */
#include "kernel.h"
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KIR_MAX_BUFS (1 << 20)
#define KIR_MAX_KERNELS (1 << 20)
#define KIR_MAX_SEGS 1024

typedef struct Lex {
    const char *file;
    const char *s, *end;  /* the current line [s, end) */
    const char *line0;
    int line;
    McErr *err;
    KProgram *p;
    int bufcap, kcap;
} Lex;

static int
fail(Lex *L, const char *at, const char *fmt, const char *arg)
{
    char m[600];
    snprintf(m, sizeof m, fmt, arg ? arg : "");
    return mc_err_at(L->err, L->file, L->line, (int)(at - L->line0) + 1, "%s", m);
}

static void
ws(Lex *L)
{
    while (L->s < L->end && (*L->s == ' ' || *L->s == '\t' || *L->s == '\r')) L->s++;
}

static int
at_end(Lex *L)
{
    ws(L);
    return L->s >= L->end;
}

/* a word [A-Za-z0-9_.] into w (at most n-1 chars); 0 or -1 */
static int
word(Lex *L, char *w, size_t n)
{
    ws(L);
    size_t k = 0;
    const char *at = L->s;
    while (L->s < L->end && (isalnum((unsigned char)*L->s) || *L->s == '_')) {
        if (k + 1 >= n) return fail(L, at, "%s", "word too long");
        w[k++] = *L->s++;
    }
    w[k] = 0;
    return k ? 0 : fail(L, at, "%s", "expected a word");
}

static int
keyword(Lex *L, const char *kw)
{
    char w[64];
    const char *at = (ws(L), L->s);
    if (word(L, w, sizeof w)) return -1;
    if (strcmp(w, kw)) {
        char m[160];
        snprintf(m, sizeof m, "expected '%s', got '%s'", kw, w);
        return fail(L, at, "%s", m);
    }
    return 0;
}

static int
lit(Lex *L, const char *t)
{
    size_t n = strlen(t);
    if ((size_t)(L->end - L->s) < n || memcmp(L->s, t, n)) {
        char m[64];
        snprintf(m, sizeof m, "expected '%s'", t);
        return fail(L, L->s, "%s", m);
    }
    L->s += n;
    return 0;
}

static int
i64(Lex *L, int64_t lo, int64_t hi, int64_t *out)
{
    ws(L);
    const char *at = L->s;
    int neg = 0;
    if (L->s < L->end && *L->s == '-') neg = 1, L->s++;
    if (L->s >= L->end || !isdigit((unsigned char)*L->s)) return fail(L, at, "%s", "expected an integer");
    uint64_t v = 0;
    while (L->s < L->end && isdigit((unsigned char)*L->s)) {
        unsigned d = (unsigned)(*L->s++ - '0');
        if (v > (UINT64_MAX - d) / 10) return fail(L, at, "%s", "integer out of range");
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX) return fail(L, at, "%s", "integer out of range");
    int64_t x = neg ? -(int64_t)v : (int64_t)v;
    if (x < lo || x > hi) {
        char m[120];
        snprintf(m, sizeof m, "%" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", x, lo, hi);
        return fail(L, at, "%s", m);
    }
    *out = x;
    return 0;
}

static int
int_(Lex *L, int lo, int hi, int *out)
{
    int64_t v;
    if (i64(L, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

/* a floating-point number (what %.17g / %.9g print, inf and nan too) */
static int
real(Lex *L, double *out)
{
    ws(L);
    char b[64];
    size_t k = 0;
    const char *at = L->s;
    while (L->s < L->end && !strchr(" \t;\r", *L->s) && k + 1 < sizeof b) b[k++] = *L->s++;
    b[k] = 0;
    char *e;
    errno = 0;
    double v = strtod(b, &e);
    if (!k || *e) return fail(L, at, "%s", "expected a number");
    *out = v;
    return 0;
}

/* "prefix" followed by an index, e.g. b12 or k3 */
static int
ref(Lex *L, char prefix, int hi, int *out)
{
    ws(L);
    if (L->s >= L->end || *L->s != prefix) {
        char m[48];
        snprintf(m, sizeof m, "expected %c<index>", prefix);
        return fail(L, L->s, "%s", m);
    }
    L->s++;
    return int_(L, 0, hi, out);
}

static int
string(Lex *L, const char **out)
{
    ws(L);
    const char *at = L->s;
    if (L->s >= L->end || *L->s != '"') return fail(L, at, "%s", "expected a quoted string");
    L->s++;
    char *b = malloc((size_t)(L->end - L->s) + 1);
    size_t k = 0;
    if (!b) return mc_err(L->err, "kernel IR: out of memory");
    for (;;) {
        if (L->s >= L->end) {
            free(b);
            return fail(L, at, "%s", "unterminated string");
        }
        char c = *L->s++;
        if (c == '"') break;
        if (c == '\\') {
            unsigned v;
            if (L->end - L->s < 3 || L->s[0] != 'x' || !isxdigit((unsigned char)L->s[1]) ||
                !isxdigit((unsigned char)L->s[2]) || sscanf(L->s + 1, "%2x", &v) != 1 || !v) {
                free(b);
                return fail(L, L->s - 1, "%s", "bad escape (\\xNN, NN not 00)");
            }
            L->s += 3;
            c = (char)v;
        }
        b[k++] = c;
    }
    b[k] = 0;
    *out = mc_arena_strdup(L->p->strings, b);
    free(b);
    return 0;
}

/* bN or bN<d:s,... +off> */
static int
view(Lex *L, View *v)
{
    KProgram *p = L->p;
    int id;
    const char *at = (ws(L), L->s);
    if (ref(L, 'b', p->nbufs - 1, &id)) return p->nbufs ? -1 : fail(L, at, "%s", "no buffer is defined yet");
    memset(v, 0, sizeof *v);
    v->buf = id;
    const Shape *s = &p->bufs[id].shape;
    if (L->s >= L->end || *L->s != '<') { /* the whole contiguous buffer */
        v->rank = s->rank;
        int64_t st = 1;
        for (int d = s->rank - 1; d >= 0; d--) {
            v->shape[d] = s->d[d];
            v->stride[d] = st;
            st *= s->d[d] ? s->d[d] : 1;
        }
        return 0;
    }
    L->s++;
    while (L->s < L->end && *L->s != '>' && *L->s != ' ') {
        if (v->rank == MC_MAX_RANK) return fail(L, L->s, "%s", "a view has at most 6 dimensions");
        if (v->rank && lit(L, ",")) return -1;
        if (i64(L, 0, INT64_MAX / 2, &v->shape[v->rank]) || lit(L, ":") || i64(L, 0, INT64_MAX / 2, &v->stride[v->rank]))
            return -1;
        v->rank++;
    }
    if (L->s < L->end && *L->s == ' ') {
        if (lit(L, " +") || i64(L, 0, INT64_MAX / 2, &v->offset)) return -1;
    }
    return lit(L, ">");
}

static int
grow(void **a, int *cap, int n, size_t elem)
{
    if (n < *cap) return 0;
    int c = *cap ? 2 * *cap : 64;
    void *q = realloc(*a, elem * (size_t)c);
    if (!q) return -1;
    *a = q;
    *cap = c;
    return 0;
}

static int
parse_program(Lex *L)
{
    KProgram *p = L->p;
    char w[32];
    if (string(L, &p->name) || word(L, w, sizeof w)) return -1;
    if (!strcmp(w, "target")) {
        if (word(L, w, sizeof w)) return -1;
        p->target = mc_arena_strdup(p->strings, w);
        if (keyword(L, "weights")) return -1;
    } else if (strcmp(w, "weights")) {
        return fail(L, L->s, "%s", "expected 'target' or 'weights'");
    }
    if (i64(L, 0, INT64_MAX / 2, &p->weights_bytes)) return -1;
    if (!at_end(L)) {
        if (keyword(L, "scratch") || i64(L, 0, INT64_MAX / 2, &p->scratch_bytes) || keyword(L, "unplanned") ||
            i64(L, 0, INT64_MAX / 2, &p->unplanned_bytes))
            return -1;
        p->planned = 1;
    }
    return 0;
}

static int
parse_buffer(Lex *L)
{
    KProgram *p = L->p;
    int id;
    char w[32];
    const char *at = (ws(L), L->s);
    if (ref(L, 'b', KIR_MAX_BUFS - 1, &id)) return -1;
    if (id != p->nbufs) {
        char m[80];
        snprintf(m, sizeof m, "buffers are numbered in order: expected b%d", p->nbufs);
        return fail(L, at, "%s", m);
    }
    if (grow((void **)&p->bufs, &L->bufcap, p->nbufs, sizeof(Buffer))) return mc_err(L->err, "kernel IR: out of memory");
    Buffer *b = &p->bufs[p->nbufs];
    memset(b, 0, sizeof *b);
    b->id = id;
    b->first = b->last = -1;
    at = (ws(L), L->s);
    if (word(L, w, sizeof w)) return -1;
    int k;
    for (k = 0; k < 4 && strcmp(w, mc_buf_kind_name((BufKind)k)); k++) {}
    if (k == 4) return fail(L, at, "unknown buffer kind '%s' (input, output, weight or scratch)", w);
    b->kind = (BufKind)k;
    if (string(L, &b->name)) return -1;
    ws(L);
    if (lit(L, "f32[")) return -1;
    int64_t numel = 1;
    while (L->s < L->end && *L->s != ']') {
        if (b->shape.rank == MC_MAX_RANK) return fail(L, L->s, "%s", "a buffer has at most 6 dimensions");
        if (b->shape.rank && lit(L, ",")) return -1;
        at = L->s;
        if (i64(L, 0, INT64_MAX / 8, &b->shape.d[b->shape.rank])) return -1;
        int64_t d = b->shape.d[b->shape.rank++];
        if (d && numel > (INT64_MAX / 8) / d) return fail(L, at, "%s", "buffer too large");
        numel *= d;
    }
    if (lit(L, "]")) return -1;
    b->bytes = numel * 4;
    if (keyword(L, "node") || int_(L, -1, INT_MAX, &b->node)) return -1;
    while (!at_end(L)) {
        at = L->s;
        if (*L->s == '@') {
            L->s++;
            if (word(L, w, sizeof w)) return -1;
            if (strcmp(w, b->kind == BUF_WEIGHT ? "weights" : "arena") || (b->kind != BUF_WEIGHT && b->kind != BUF_SCRATCH))
                return fail(L, at, "%s", "only a weight has @weights+OFFSET, only a planned scratch buffer @arena+OFFSET");
            if (lit(L, "+") || i64(L, 0, INT64_MAX / 2, &b->offset)) return -1;
        } else {
            if (word(L, w, sizeof w)) return -1;
            if (!strcmp(w, "live")) {
                ws(L);
                if (int_(L, -1, KIR_MAX_KERNELS, &b->first) || lit(L, "..") || int_(L, -1, KIR_MAX_KERNELS, &b->last))
                    return -1;
            } else if (!strcmp(w, "image")) {
                if (lit(L, "+") || i64(L, 1, INT64_MAX / 2, &b->image_bytes)) return -1;
            } else if (!strcmp(w, "group")) {
                if (lit(L, "+") || i64(L, 1, INT64_MAX / 2, &b->group_bytes)) return -1;
            } else {
                return fail(L, at, "unexpected '%s' (@weights+, @arena+, live, image+ or group+)", w);
            }
        }
    }
    if (b->kind == BUF_INPUT && p->input_buf < 0) p->input_buf = id;
    p->nbufs++;
    return 0;
}

/* outputs bI bJ ...: the output buffers in the graph's order */
static int
parse_outputs(Lex *L)
{
    KProgram *p = L->p;
    while (!at_end(L)) {
        const char *at = L->s;
        if (p->noutputs == MC_MAX_OUTPUTS) return fail(L, at, "%s", "a program has at most 8 outputs");
        if (ref(L, 'b', p->nbufs - 1, &p->output_bufs[p->noutputs]))
            return p->nbufs ? -1 : fail(L, at, "%s", "no buffer is defined yet");
        p->noutputs++;
    }
    return p->noutputs ? 0 : fail(L, L->s, "%s", "expected b<index>");
}

/* without an outputs record: the output buffers in buffer order */
static int
default_outputs(KProgram *p, const char *file, McErr *err)
{
    for (int i = 0; i < p->nbufs; i++) {
        if (p->bufs[i].kind != BUF_OUTPUT) continue;
        if (p->noutputs == MC_MAX_OUTPUTS)
            return mc_err_at(err, file, 0, 0, "%s", "more than 8 output buffers (a program has at most 8 outputs)");
        p->output_bufs[p->noutputs++] = i;
    }
    return 0;
}

static int
parse_segment(Lex *L, int *segcap)
{
    KProgram *p = L->p;
    int id;
    const char *at = (ws(L), L->s);
    if (ref(L, 's', KIR_MAX_SEGS - 1, &id)) return -1;
    if (id != p->nsegs) return fail(L, at, "%s", "segments are numbered in order");
    if (grow((void **)&p->segs, segcap, p->nsegs, sizeof(Segment))) return mc_err(L->err, "kernel IR: out of memory");
    Segment *s = &p->segs[p->nsegs];
    int last;
    if (ref(L, 'k', KIR_MAX_KERNELS - 1, &s->k0) || lit(L, "..") || ref(L, 'k', KIR_MAX_KERNELS - 1, &last) ||
        keyword(L, "images") || (ws(L), i64(L, 1, 1 << 16, &s->images)))
        return -1;
    s->groups = 1;
    ws(L);
    if ((size_t)(L->end - L->s) >= 6 && !memcmp(L->s, "groups", 6) &&
        (keyword(L, "groups") || (ws(L), i64(L, 1, 1 << 16, &s->groups))))
        return -1;
    s->k1 = last + 1;
    p->nsegs++;
    return 0;
}

static int
parse_kernel_head(Lex *L)
{
    KProgram *p = L->p;
    int id;
    char w[32];
    const char *at = (ws(L), L->s);
    if (ref(L, 'k', KIR_MAX_KERNELS - 1, &id)) return -1;
    if (id != p->nk) {
        char m[80];
        snprintf(m, sizeof m, "kernels are numbered in order: expected k%d", p->nk);
        return fail(L, at, "%s", m);
    }
    if (grow((void **)&p->k, &L->kcap, p->nk, sizeof(Kernel))) return mc_err(L->err, "kernel IR: out of memory");
    Kernel *k = &p->k[p->nk];
    memset(k, 0, sizeof *k);
    k->host = -1;
    k->attrs = mc_attrs_default();
    at = (ws(L), L->s);
    if (word(L, w, sizeof w)) return -1;
    if (mc_kernel_kind_parse(w, &k->kind)) return fail(L, at, "unknown kernel kind '%s'", w);
    if (string(L, &k->name) || keyword(L, "flops") || real(L, &k->flops)) return -1;
    p->nk++;
    return 0;
}

/* one line of a kernel's body, starting with its keyword kw */
static int
parse_kernel_line(Lex *L, Kernel *k, const char *kw, const char *at)
{
    const KernelInfo *ki = &mc_kernel_info[k->kind];
    char w[32];
    if (!strcmp(kw, "nodes")) {
        while (!at_end(L)) {
            if (k->nnodes == MC_MAX_FUSED) return fail(L, L->s, "%s", "a kernel fuses at most 24 nodes");
            if (int_(L, 0, INT_MAX, &k->nodes[k->nnodes]) || string(L, &k->node_names[k->nnodes])) return -1;
            k->nnodes++;
        }
    } else if (!strcmp(kw, "in")) {
        while (!at_end(L)) {
            const char *o = L->s;
            if (k->nin == ki->max_in) return fail(L, o, "a %s kernel takes at most that many operands", ki->name);
            if (word(L, w, sizeof w)) return -1;
            if (!ki->oper[k->nin] || strcmp(w, ki->oper[k->nin])) {
                char m[160];
                snprintf(m, sizeof m, "operand %d of a %s kernel is '%s', not '%s'", k->nin, ki->name,
                         ki->oper[k->nin] ? ki->oper[k->nin] : "?", w);
                return fail(L, o, "%s", m);
            }
            if (lit(L, "=") || view(L, &k->in[k->nin])) return -1;
            k->nin++;
        }
    } else if (!strcmp(kw, "sizes") && (ki->fields & KF_MNK)) {
        if (keyword(L, "M") || lit(L, "=") || i64(L, 0, INT64_MAX / 2, &k->M) || keyword(L, "N") || lit(L, "=") ||
            i64(L, 0, INT64_MAX / 2, &k->N) || keyword(L, "K") || lit(L, "=") || i64(L, 0, INT64_MAX / 2, &k->K))
            return -1;
    } else if (!strcmp(kw, "conv") && (ki->fields & KF_CONV)) {
        Attrs *a = &k->attrs;
        const char *names[3] = {"stride", "pad", "dil"};
        int64_t *f[3] = {a->stride, a->pad, a->dil};
        for (int j = 0; j < 3; j++)
            if (keyword(L, names[j]) || lit(L, "=") || i64(L, j == 1 ? 0 : 1, 1 << 20, &f[j][0]) || lit(L, ",") ||
                i64(L, j == 1 ? 0 : 1, 1 << 20, &f[j][1]))
                return -1;
    } else if (!strcmp(kw, "eps") && (ki->fields & KF_EPS)) {
        if (real(L, &k->attrs.eps)) return -1;
    } else if (!strcmp(kw, "softplus_dt") && (ki->fields & KF_SOFTPLUS)) {
        k->softplus_dt = 1;
    } else if (!strcmp(kw, "align_corners") && (ki->fields & KF_ALIGN)) {
        if (i64(L, 0, 1, &k->attrs.align_corners)) return -1;
    } else if (!strcmp(kw, "out")) {
        if (view(L, &k->out)) return -1;
    } else if (!strcmp(kw, "args")) {
        while (!at_end(L)) {
            if (k->nargs == MC_MAX_ARGS) return fail(L, L->s, "%s", "a kernel has at most 12 epilogue operands");
            if (view(L, &k->args[k->nargs++])) return -1;
        }
    } else if (!strcmp(kw, "expr")) {
        while (!at_end(L)) {
            const char *o = L->s;
            if (k->nexpr == MC_MAX_EXPR) return fail(L, o, "%s", "an epilogue has at most 32 instructions");
            EInstr *e = &k->expr[k->nexpr];
            memset(e, 0, sizeof *e);
            e->a = e->b = e->arg = -1;
            if (word(L, w, sizeof w)) return -1;
            if (mc_eop_parse(w, &e->op)) return fail(L, o, "unknown epilogue instruction '%s'", w);
            ws(L);
            if (e->op == E_LOAD) {
                if (int_(L, 0, MC_MAX_ARGS - 1, &e->arg)) return -1;
            } else if (e->op == E_CONST) {
                double d;
                if (real(L, &d)) return -1;
                e->imm = (float)d;
            } else if (e->op != E_ACC) {
                if (lit(L, "%") || int_(L, 0, MC_MAX_EXPR - 1, &e->a)) return -1;
                if (e->op >= E_ADD && e->op <= E_DIV && ((ws(L), lit(L, "%")) || int_(L, 0, MC_MAX_EXPR - 1, &e->b)))
                    return -1;
            }
            k->nexpr++;
            if (!at_end(L) && lit(L, ";")) return -1;
        }
    } else if (!strcmp(kw, "inside")) {
        if (ref(L, 'k', KIR_MAX_KERNELS - 1, &k->host) || keyword(L, "as")) return -1;
        const char *o = (ws(L), L->s);
        if (word(L, w, sizeof w)) return -1;
        if (mc_fuse_kind_parse(w, &k->fuse) || k->fuse == FUSE_NONE) return fail(L, o, "unknown fusion '%s'", w);
    } else if (!strcmp(kw, "schedule")) {
        while (!at_end(L)) {
            const char *o = L->s;
            if (word(L, w, sizeof w) || lit(L, "=")) return -1;
            int64_t *f = NULL;
#define SCHED(field, nm, doc) if (!strcmp(w, nm)) f = &k->sched.field;
#include "sched.def"
#undef SCHED
            if (!f) return fail(L, o, "unknown schedule field '%s' (ir/sched.def)", w);
            if (i64(L, 0, 1 << 30, f)) return -1;
        }
    } else {
        char m[160];
        snprintf(m, sizeof m, "unexpected '%s' in a %s kernel", kw, ki->name);
        return fail(L, at, "%s", m);
    }
    if (!at_end(L)) return fail(L, L->s, "%s", "unexpected text at the end of the line");
    return 0;
}

int
mc_kprogram_parse(KProgram *p, const char *text, size_t len, const char *file, McErr *err)
{
    memset(p, 0, sizeof *p);
    p->input_buf = -1;
    p->strings = calloc(1, sizeof *p->strings);
    if (!p->strings) return mc_err(err, "kernel IR: out of memory");
    Lex L = {file, text, text, text, 0, err, p, 0, 0};
    int segcap = 0, have_program = 0, have_outputs = 0, rc = 0;
    const char *end = text + len, *line = text;
    if (memchr(text, 0, len)) {
        const char *z = memchr(text, 0, len);
        for (const char *c = text; c < z; c++) L.line += *c == '\n';
        L.line++;
        L.line0 = L.s = z;
        while (L.line0 > text && L.line0[-1] != '\n') L.line0--;
        rc = fail(&L, z, "%s", "a NUL byte in kernel IR text");
    }
    while (!rc && line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        L.line0 = L.s = line;
        L.end = nl ? nl : end;
        L.line++;
        line = nl ? nl + 1 : end;
        if (at_end(&L) || *L.s == '#') continue;
        char kw[32];
        const char *at = L.s;
        int indented = at > L.line0;
        if (word(&L, kw, sizeof kw)) {
            rc = -1;
            break;
        }
        if (indented) {
            if (!p->nk) rc = fail(&L, at, "%s", "an indented line belongs to a kernel: no kernel yet");
            else rc = parse_kernel_line(&L, &p->k[p->nk - 1], kw, at);
            continue;
        }
        if (!strcmp(kw, "program")) {
            rc = have_program ? fail(&L, at, "%s", "a second 'program' line") : parse_program(&L);
            have_program = 1;
        } else if (!have_program) {
            rc = fail(&L, at, "%s", "kernel IR starts with a 'program' line");
        } else if (!strcmp(kw, "buffer")) {
            rc = p->nk           ? fail(&L, at, "%s", "buffers come before the kernels")
                 : have_outputs ? fail(&L, at, "%s", "buffers come before the 'outputs' record")
                                : parse_buffer(&L);
        } else if (!strcmp(kw, "outputs")) {
            rc = have_outputs ? fail(&L, at, "%s", "a second 'outputs' record") : parse_outputs(&L);
            have_outputs = 1;
        } else if (!strcmp(kw, "segment")) {
            rc = parse_segment(&L, &segcap);
        } else if (!strcmp(kw, "kernel")) {
            rc = parse_kernel_head(&L);
        } else {
            rc = fail(&L, at, "unknown record '%s' (program, buffer, outputs, segment or kernel)", kw);
        }
        if (!rc && !at_end(&L)) rc = fail(&L, L.s, "%s", "unexpected text at the end of the line");
    }
    if (!rc && !have_program) rc = mc_err_at(err, file, 0, 0, "%s", "no 'program' line: not kernel IR text");
    if (!rc && !have_outputs) rc = default_outputs(p, file, err);
    if (rc) mc_kprogram_free(p);
    return rc;
}
