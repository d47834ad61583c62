/* frontend/yamlutil.c -- YAML text into a YNode tree with marks (libyaml
 * event API), plus typed-scalar helpers with file:line:col messages.
 * Takes: a byte buffer.  Produces: a YDoc whose nodes live in its arena.
 * Owns: nothing beyond the YDoc (freed by mc_ydoc_free).
 */
#include "yamlutil.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "mc_file.h"

#define Y_MAX_DEPTH 64
#define Y_MAX_NODES (1 << 20)

typedef struct Anchor {
    const char *name;       /* NULL: free slot */
    YNode *node;
} Anchor;

typedef struct Builder {
    YDoc *d;
    YNode *stack[Y_MAX_DEPTH];
    char *stack_anchor[Y_MAX_DEPTH];
    int depth;
    Anchor *anchors;        /* open-addressing table by name (malloc'd) */
    size_t nanchors, acap;  /* acap: 0 or a power of two */
    int nnodes;
} Builder;

static void
line_col_at(const char *text, size_t len, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') { l++; c = 1; } else c++;
    }
    *line = l;
    *col = c;
}

static void
push_kid(Arena *a, YNode *p, YNode *k)
{
    if (p->nkids == p->kcap) {
        int cap = p->kcap ? 2 * p->kcap : 8;
        YNode **nk = mc_arena_alloc(a, sizeof *nk * (size_t)cap);
        if (p->nkids) memcpy(nk, p->kids, sizeof *nk * (size_t)p->nkids);
        p->kids = nk;
        p->kcap = cap;
    }
    p->kids[p->nkids++] = k;
}

static int
attach(Builder *b, YNode *n, const yaml_mark_t *m, McErr *err)
{
    if (b->depth == 0) {
        if (b->d->root)
            return mc_err_at(err, b->d->file, (int)m->line + 1, (int)m->column + 1,
                             "more than one YAML document (expected exactly one)");
        b->d->root = n;
        return 0;
    }
    push_kid(&b->d->arena, b->stack[b->depth - 1], n);
    return 0;
}

/* Slot of name in the anchor table (the free slot where it would go). */
static Anchor *
anchor_slot(Anchor *t, size_t cap, const char *name)
{
    size_t h = (size_t)mc_hash_bytes(name, strlen(name)) & (cap - 1);
    while (t[h].name && strcmp(t[h].name, name) != 0)
        h = (h + 1) & (cap - 1);
    return &t[h];
}

static int
add_anchor(Builder *b, const char *name, YNode *n)
{
    if (!name) return 0;
    if (2 * (b->nanchors + 1) > b->acap) { /* keep the load at most 1/2 */
        size_t cap = b->acap ? 2 * b->acap : 64;
        Anchor *na = calloc(cap, sizeof *na);
        if (!na) return -1;
        for (size_t i = 0; i < b->acap; i++)
            if (b->anchors[i].name) *anchor_slot(na, cap, b->anchors[i].name) = b->anchors[i];
        free(b->anchors);
        b->anchors = na;
        b->acap = cap;
    }
    Anchor *a = anchor_slot(b->anchors, b->acap, name);
    if (!a->name) b->nanchors++;
    a->name = name; /* a later definition replaces the earlier one */
    a->node = n;
    return 0;
}

static YNode *
find_anchor(const Builder *b, const char *name)
{
    if (!b->acap) return NULL;
    Anchor *a = anchor_slot(b->anchors, b->acap, name);
    return a->name ? a->node : NULL;
}

static YNode *
new_node(Builder *b, YKind k, const yaml_mark_t *m, McErr *err)
{
    if (++b->nnodes > Y_MAX_NODES) {
        mc_err_at(err, b->d->file, (int)m->line + 1, (int)m->column + 1,
                  "too many YAML nodes (more than %d)", Y_MAX_NODES);
        return NULL;
    }
    YNode *n = mc_arena_alloc(&b->d->arena, sizeof *n);
    n->kind = k;
    n->str = "";
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

static int
syntax_error(yaml_parser_t *p, YDoc *d, const char *text, size_t len, McErr *err)
{
    int line, col;
    const char *prob = p->problem ? p->problem : "invalid YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return mc_err_at(err, d->file, 0, 0, "out of memory while parsing YAML");
    case YAML_READER_ERROR:
        line_col_at(text, len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return mc_err_at(err, d->file, line, col, "%s (byte #x%X)", prob, p->problem_value);
        return mc_err_at(err, d->file, line, col, "%s", prob);
    default:
        line = (int)p->problem_mark.line + 1;
        col = (int)p->problem_mark.column + 1;
        if (p->context)
            return mc_err_at(err, d->file, line, col, "%s (%s that started at %d:%d)", prob,
                             p->context, (int)p->context_mark.line + 1,
                             (int)p->context_mark.column + 1);
        return mc_err_at(err, d->file, line, col, "%s", prob);
    }
}

int
mc_ydoc_load(YDoc *d, const char *text, size_t len, const char *file, McErr *err)
{
    memset(d, 0, sizeof *d);
    d->file = file ? file : "<input>";
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return mc_err(err, "%s: cannot initialize libyaml", d->file);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    Builder b = {.d = d};
    int rc = 0, done = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(&p, d, text, len, err);
            break;
        }
        yaml_mark_t m = ev.start_mark;
        YNode *n = NULL;
        char esc[80];
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (d->root)
                rc = mc_err_at(err, d->file, (int)m.line + 1, (int)m.column + 1,
                               "more than one YAML document (expected exactly one)");
            break;
        case YAML_ALIAS_EVENT:
            n = find_anchor(&b, (const char *)ev.data.alias.anchor);
            if (!n)
                rc = mc_err_at(err, d->file, (int)m.line + 1, (int)m.column + 1,
                               "undefined alias '*%s'", MC_ESC(esc, (const char *)ev.data.alias.anchor));
            else
                rc = attach(&b, n, &m, err);
            break;
        case YAML_SCALAR_EVENT:
            if (!(n = new_node(&b, YN_SCALAR, &m, err))) { rc = -1; break; }
            n->str = mc_arena_strndup(&d->arena, (const char *)ev.data.scalar.value,
                                      ev.data.scalar.length);
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            rc = attach(&b, n, &m, err);
            if (!rc && ev.data.scalar.anchor &&
                add_anchor(&b, mc_arena_strdup(&d->arena, (const char *)ev.data.scalar.anchor), n))
                rc = mc_err(err, "%s: out of memory while parsing YAML", d->file);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            int is_map = ev.type == YAML_MAPPING_START_EVENT;
            const yaml_char_t *anchor = is_map ? ev.data.mapping_start.anchor
                                               : ev.data.sequence_start.anchor;
            if (b.depth >= Y_MAX_DEPTH) {
                rc = mc_err_at(err, d->file, (int)m.line + 1, (int)m.column + 1,
                               "YAML nested deeper than %d levels", Y_MAX_DEPTH);
                break;
            }
            if (!(n = new_node(&b, is_map ? YN_MAP : YN_SEQ, &m, err))) { rc = -1; break; }
            if ((rc = attach(&b, n, &m, err))) break;
            b.stack_anchor[b.depth] = anchor ? mc_arena_strdup(&d->arena, (const char *)anchor) : NULL;
            b.stack[b.depth++] = n;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b.depth > 0) {
                b.depth--;
                if (add_anchor(&b, b.stack_anchor[b.depth], b.stack[b.depth]))
                    rc = mc_err(err, "%s: out of memory while parsing YAML", d->file);
            }
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc) break;
    }
    yaml_parser_delete(&p);
    free(b.anchors);
    if (rc) {
        mc_ydoc_free(d);
        return -1;
    }
    return 0;
}

void
mc_ydoc_free(YDoc *d)
{
    mc_arena_free(&d->arena);
    d->root = NULL;
}

char *
mc_read_file(const char *path, size_t *len, McErr *err)
{
    return mc_file_read_all(path, "model file (YAML or IR text)", MC_TEXT_MAX_BYTES, len, err->msg,
                            sizeof err->msg);
}

bool
y_is_null(const YNode *n)
{
    return n && n->kind == YN_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
            strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0);
}

bool
y_key_is(const YNode *k, const char *s)
{
    return k && k->kind == YN_SCALAR && strlen(s) == k->len && memcmp(k->str, s, k->len) == 0;
}

YNode *
y_get(const YNode *m, const char *key)
{
    if (!m || m->kind != YN_MAP) return NULL;
    for (int i = 0; i < y_npairs(m); i++)
        if (y_key_is(y_key(m, i), key)) return y_val(m, i);
    return NULL;
}

const char *
y_desc(const YNode *n, char *buf, size_t nbuf)
{
    if (!n) snprintf(buf, nbuf, "nothing");
    else if (n->kind == YN_SEQ) snprintf(buf, nbuf, "a sequence");
    else if (n->kind == YN_MAP) snprintf(buf, nbuf, "a mapping");
    else if (y_is_null(n)) snprintf(buf, nbuf, "nothing");
    else {
        char s[48];
        size_t k = 0;
        for (size_t i = 0; i < n->len && k < 40; i++) {
            unsigned char c = (unsigned char)n->str[i];
            s[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        s[k] = 0;
        snprintf(buf, nbuf, "'%s%s'%s", s, n->len > 40 ? "..." : "", n->plain ? "" : " (a quoted string)");
    }
    return buf;
}

int
y_err(const YDoc *d, const YNode *n, McErr *err, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mc_err_at(err, d->file, n ? n->line : 0, n ? n->col : 0, "%s", msg);
}

int
y_check_dups(const YDoc *d, const YNode *m, const char *where, McErr *err)
{
    if (!m || m->kind != YN_MAP) return 0;
    int n = y_npairs(m), rc = 0;
    if (n < 2) return 0;
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    int *t = malloc(cap * sizeof *t); /* key index per slot, -1 free */
    if (!t) return mc_err(err, "%s: out of memory", d->file);
    for (size_t i = 0; i < cap; i++) t[i] = -1;
    for (int i = 0; i < n && !rc; i++) {
        const YNode *k = y_key(m, i);
        if (k->kind != YN_SCALAR) continue;
        size_t h = (size_t)mc_hash_bytes(k->str, k->len) & (cap - 1);
        for (; t[h] >= 0; h = (h + 1) & (cap - 1)) {
            const YNode *o = y_key(m, t[h]);
            if (o->len == k->len && memcmp(o->str, k->str, k->len) == 0) {
                char esc[96];
                rc = y_err(d, k, err, "duplicate key '%s' in %s (first at %d:%d)",
                           mc_str_escape(esc, sizeof esc, k->str, k->len > 64 ? 64 : k->len), where,
                           o->line, o->col);
                break;
            }
        }
        t[h] = i;
    }
    free(t);
    return rc;
}

int
y_int(const YDoc *d, const YNode *n, const char *what, int64_t lo, int64_t hi, int64_t *out,
      McErr *err)
{
    char b[96];
    if (!n || n->kind != YN_SCALAR || !n->plain || n->len == 0 || n->len > 30)
        goto bad;
    const char *s = n->str;
    int neg = 0;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    if (!*s) goto bad;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') goto bad;
        if (v > (INT64_MAX - 9) / 10) return y_err(d, n, err, "integer out of range for %s", what);
        v = v * 10 + (*s - '0');
    }
    if (neg) v = -v;
    if (v < lo || v > hi)
        return y_err(d, n, err, "%s must be between %lld and %lld, got %lld", what, (long long)lo,
                     (long long)hi, (long long)v);
    *out = v;
    return 0;
bad:
    return y_err(d, n, err, "expected an integer for %s, got %s", what, y_desc(n, b, sizeof b));
}

int
y_double(const YDoc *d, const YNode *n, const char *what, double *out, McErr *err)
{
    char b[96];
    if (!n || n->kind != YN_SCALAR || !n->plain || n->len == 0 || n->len > 64) goto bad;
    int digits = 0;
    for (size_t i = 0; i < n->len; i++) {
        char c = n->str[i];
        if (c >= '0' && c <= '9') digits++;
        else if (c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') goto bad;
    }
    if (!digits) goto bad;
    char *end;
    errno = 0;
    double v = strtod(n->str, &end);
    if (*end || !isfinite(v)) goto bad;
    *out = v;
    return 0;
bad:
    return y_err(d, n, err, "expected a number for %s, got %s", what, y_desc(n, b, sizeof b));
}

int
y_str(const YDoc *d, const YNode *n, const char *what, const char **out, McErr *err)
{
    char b[96];
    if (!n || n->kind != YN_SCALAR || y_is_null(n))
        return y_err(d, n, err, "expected a string for %s, got %s", what, y_desc(n, b, sizeof b));
    *out = n->str;
    return 0;
}
