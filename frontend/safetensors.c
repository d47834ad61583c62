/* frontend/safetensors.c -- .safetensors files into a WeightStore.
 *
 * Takes: 8-byte little-endian header length, a JSON header
 * {"key": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 *  "__metadata__": {...}}, then the data block.  Produces one contiguous
 * tensor per key (F16/BF16/F64 converted to f32, I64/I32 kept; other known
 * dtypes, U8, BOOL, I8..., are recorded by name only).  The JSON
 * parser here is small, strict (RFC 8259 grammar, no duplicates in the
 * tensor table) and bounded (depth, size); offsets are checked against the
 * data block and against each other (no overlap).
 */
#include <stdlib.h>
#include <string.h>
#include "weights.h"
#include "zip.h"
#include "mc_file.h"

#define JSON_MAX_DEPTH 32
#define ST_MAX_HEADER (100u << 20) /* the format's own limit */
/* JSON values in a header: ~10 a tensor; bounds the parse to ~130 MB. */
#define ST_MAX_VALUES (1 << 21)

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } JKind;

typedef struct JNode {
    JKind kind;
    int is_int;          /* J_NUM: integral and fits int64 */
    int64_t i;
    const char *s;       /* J_STR, and the key when a member of an object */
    size_t slen;
    const char *key;
    size_t klen;
    int first, next;     /* children list (J_ARR, J_OBJ); -1 ends */
    int n;               /* number of children */
} JNode;

typedef struct Json {
    const char *p, *end, *start;
    JNode *nodes;
    int nn, cap;
    char *strbuf;        /* decoded strings */
    size_t sblen;
    const char *name;
    McErr *err;
} Json;

static int
jerr(Json *j, const char *what)
{
    return mc_err(j->err, "%s: safetensors header: %s at byte %zu", j->name, what,
                  (size_t)(j->p - j->start) + 8);
}

static void
skip_ws(Json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int
new_node(Json *j, JKind k)
{
    if (j->nn == j->cap) {
        if (j->cap >= ST_MAX_VALUES)
            return mc_err(j->err, "%s: safetensors header: more than %d JSON values (the limit for a "
                          "checkpoint header) at byte %zu", j->name, ST_MAX_VALUES,
                          (size_t)(j->p - j->start) + 8);
        int nc = j->cap ? 2 * j->cap : 1024;
        JNode *nn = realloc(j->nodes, (size_t)nc * sizeof *nn);
        if (!nn)
            return jerr(j, "out of memory");
        j->nodes = nn;
        j->cap = nc;
    }
    JNode *n = &j->nodes[j->nn];
    memset(n, 0, sizeof *n);
    n->kind = k;
    n->first = n->next = -1;
    return j->nn++;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int
read_hex4(Json *j, uint32_t *out)
{
    if (j->end - j->p < 4)
        return jerr(j, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0)
            return jerr(j, "bad \\u escape");
        v = v << 4 | (uint32_t)h;
    }
    j->p += 4;
    *out = v;
    return 0;
}

/* Parses a string at j->p (on the opening quote) into strbuf. */
static int
parse_string(Json *j, const char **s, size_t *len)
{
    j->p++;
    char *o = j->strbuf + j->sblen, *o0 = o;
    for (;;) {
        if (j->p >= j->end)
            return jerr(j, "unterminated string");
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"')
            break;
        if (c < 0x20)
            return jerr(j, "control character in string");
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (j->p >= j->end)
            return jerr(j, "unterminated string");
        c = (unsigned char)*j->p++;
        switch (c) {
        case '"': case '\\': case '/': *o++ = (char)c; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (read_hex4(j, &cp))
                return -1;
            if (cp >= 0xD800 && cp < 0xDC00) {
                uint32_t lo;
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                    return jerr(j, "unpaired surrogate");
                j->p += 2;
                if (read_hex4(j, &lo))
                    return -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return jerr(j, "unpaired surrogate");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000)
                return jerr(j, "unpaired surrogate");
            if (cp == 0)
                return jerr(j, "NUL in string");
            /* UTF-8: never longer than the 6 (or 12) escape bytes it replaces */
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | cp >> 6);
                *o++ = (char)(0x80 | (cp & 63));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | cp >> 12);
                *o++ = (char)(0x80 | ((cp >> 6) & 63));
                *o++ = (char)(0x80 | (cp & 63));
            } else {
                *o++ = (char)(0xF0 | cp >> 18);
                *o++ = (char)(0x80 | ((cp >> 12) & 63));
                *o++ = (char)(0x80 | ((cp >> 6) & 63));
                *o++ = (char)(0x80 | (cp & 63));
            }
            break;
        }
        default:
            return jerr(j, "bad escape in string");
        }
    }
    *s = o0;
    *len = (size_t)(o - o0);
    *o++ = 0;
    j->sblen = (size_t)(o - j->strbuf);
    return 0;
}

static int
parse_number(Json *j, int id)
{
    const char *q = j->p;
    int neg = 0, integral = 1;
    if (q < j->end && *q == '-')
        neg = 1, q++;
    if (q >= j->end || *q < '0' || *q > '9')
        return jerr(j, "bad number");
    if (*q == '0' && q + 1 < j->end && q[1] >= '0' && q[1] <= '9')
        return jerr(j, "leading zero in number");
    uint64_t v = 0;
    int over = 0;
    while (q < j->end && *q >= '0' && *q <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            over = 1;
        else
            v = v * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (q < j->end && *q == '.') {
        integral = 0;
        q++;
        if (q >= j->end || *q < '0' || *q > '9')
            return jerr(j, "bad number");
        while (q < j->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < j->end && (*q == 'e' || *q == 'E')) {
        integral = 0;
        q++;
        if (q < j->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= j->end || *q < '0' || *q > '9')
            return jerr(j, "bad number");
        while (q < j->end && *q >= '0' && *q <= '9')
            q++;
    }
    j->p = q;
    JNode *n = &j->nodes[id];
    if (integral && !over && v <= (uint64_t)INT64_MAX) {
        n->is_int = 1;
        n->i = neg ? -(int64_t)v : (int64_t)v;
    }
    return 0;
}

static int
parse_value(Json *j, int depth, int *out)
{
    if (depth > JSON_MAX_DEPTH)
        return jerr(j, "nesting too deep");
    skip_ws(j);
    if (j->p >= j->end)
        return jerr(j, "unexpected end");
    char c = *j->p;
    int id;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        if ((id = new_node(j, obj ? J_OBJ : J_ARR)) < 0)
            return -1;
        j->p++;
        skip_ws(j);
        int last = -1;
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
            j->p++;
            *out = id;
            return 0;
        }
        for (;;) {
            const char *k = NULL;
            size_t kl = 0;
            skip_ws(j);
            if (obj) {
                if (j->p >= j->end || *j->p != '"')
                    return jerr(j, "expected a string key");
                if (parse_string(j, &k, &kl))
                    return -1;
                skip_ws(j);
                if (j->p >= j->end || *j->p != ':')
                    return jerr(j, "expected ':'");
                j->p++;
            }
            int child;
            if (parse_value(j, depth + 1, &child))
                return -1;
            j->nodes[child].key = k;
            j->nodes[child].klen = kl;
            if (last < 0)
                j->nodes[id].first = child;
            else
                j->nodes[last].next = child;
            last = child;
            j->nodes[id].n++;
            skip_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
                j->p++;
                break;
            }
            return jerr(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        *out = id;
        return 0;
    }
    if (c == '"') {
        if ((id = new_node(j, J_STR)) < 0)
            return -1;
        const char *s;
        size_t l;
        if (parse_string(j, &s, &l))
            return -1;
        j->nodes[id].s = s;
        j->nodes[id].slen = l;
        *out = id;
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if ((id = new_node(j, J_NUM)) < 0 || parse_number(j, id))
            return -1;
        *out = id;
        return 0;
    }
    static const struct { const char *w; JKind k; int v; } lit[] = {
        {"true", J_BOOL, 1}, {"false", J_BOOL, 0}, {"null", J_NULL, 0}};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lit[i].w);
        if ((size_t)(j->end - j->p) >= l && memcmp(j->p, lit[i].w, l) == 0) {
            if ((id = new_node(j, lit[i].k)) < 0)
                return -1;
            j->nodes[id].i = lit[i].v;
            j->p += l;
            *out = id;
            return 0;
        }
    }
    return jerr(j, "unexpected character");
}

static int
key_is(const JNode *n, const char *k)
{
    return n->klen == strlen(k) && memcmp(n->key, k, n->klen) == 0;
}

typedef struct Ent {
    const JNode *n;
    DType dt;
    int skip;          /* a dtype we do not read: recorded by name (mc_weights_skip) */
    const JNode *dtn;
    Shape s;
    uint64_t b, e;
} Ent;

static int
cmp_ent(const void *a, const void *b)
{
    const Ent *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b ? 1 : (x->e < y->e ? -1 : x->e > y->e);
}

static int
cmp_name(const void *a, const void *b)
{
    const Ent *x = a, *y = b;
    size_t l = x->n->klen < y->n->klen ? x->n->klen : y->n->klen;
    int c = memcmp(x->n->key, y->n->key, l);
    return c ? c : (x->n->klen > y->n->klen) - (x->n->klen < y->n->klen);
}

static int
dtype_of(const JNode *v, DType *dt, int64_t *es)
{
    static const struct { const char *n; DType t; int es; } map[] = {
        {"F32", DT_F32, 4}, {"F16", DT_F16, 2}, {"BF16", DT_BF16, 2}, {"F64", DT_F64, 8},
        {"I64", DT_I64, 8}, {"I32", DT_I32, 4},
        /* known, not read (skipped) */
        {"BOOL", DT_COUNT, 1}, {"U8", DT_COUNT, 1}, {"I8", DT_COUNT, 1}, {"F8_E4M3", DT_COUNT, 1},
        {"F8_E5M2", DT_COUNT, 1}, {"I16", DT_COUNT, 2}, {"U16", DT_COUNT, 2}, {"U32", DT_COUNT, 4},
        {"U64", DT_COUNT, 8},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (v->slen == strlen(map[i].n) && memcmp(v->s, map[i].n, v->slen) == 0) {
            *dt = map[i].t;
            *es = map[i].es;
            return 0;
        }
    return -1;
}

static int
entry_parse(Json *j, const JNode *t, Ent *e, uint64_t dlen)
{
    const char *nm = j->name;
    char kn[220], fn[80];
    mc_str_escape(kn, sizeof kn, t->key, t->klen > 200 ? 200 : t->klen);
    if (t->kind != J_OBJ)
        return mc_err(j->err, "%s: safetensors: entry '%s' is not an object", nm, kn);
    const JNode *dt = NULL, *sh = NULL, *off = NULL;
    for (int c = t->first; c >= 0; c = j->nodes[c].next) {
        const JNode *m = &j->nodes[c];
        if (key_is(m, "dtype") && !dt) dt = m;
        else if (key_is(m, "shape") && !sh) sh = m;
        else if (key_is(m, "data_offsets") && !off) off = m;
        else
            return mc_err(j->err, "%s: safetensors: entry '%s' has an unexpected or repeated field '%s'",
                          nm, kn, mc_str_escape(fn, sizeof fn, m->key, m->klen > 60 ? 60 : m->klen));
    }
    if (!dt || !sh || !off || dt->kind != J_STR || sh->kind != J_ARR || off->kind != J_ARR)
        return mc_err(j->err, "%s: safetensors: entry '%s' needs \"dtype\" (string), \"shape\" and "
                      "\"data_offsets\" (arrays)", nm, kn);
    int64_t es;
    if (dtype_of(dt, &e->dt, &es))
        return mc_err(j->err, "%s: safetensors: entry '%s' has unknown dtype '%s'", nm, kn,
                      mc_str_escape(fn, sizeof fn, dt->s, dt->slen > 20 ? 20 : dt->slen));
    e->skip = e->dt == DT_COUNT;
    e->dtn = dt;
    if (sh->n > MC_MAX_RANK)
        return mc_err(j->err, "%s: safetensors: entry '%s' has rank %d (at most %d supported)", nm, kn,
                      sh->n, MC_MAX_RANK);
    e->s.rank = sh->n;
    uint64_t numel, nb;
    int k = 0;
    for (int c = sh->first; c >= 0; c = j->nodes[c].next, k++) {
        const JNode *d = &j->nodes[c];
        if (d->kind != J_NUM || !d->is_int || d->i < 0)
            return mc_err(j->err, "%s: safetensors: entry '%s': shape entries must be non-negative integers",
                          nm, kn);
        e->s.d[k] = d->i;
    }
    /* checked for the stored size too (f16/bf16 become 4-byte floats) */
    if (mc_dims_numel(e->s.d, e->s.rank, (uint64_t)(es < 4 ? 4 : es), &numel, &nb))
        return mc_err(j->err, "%s: safetensors: entry '%s': shape is too large (its dimensions multiply "
                      "past 2^63 bytes)", nm, kn);
    const JNode *b = off->n == 2 ? &j->nodes[off->first] : NULL;
    const JNode *en = b ? &j->nodes[b->next] : NULL;
    if (!b || b->kind != J_NUM || en->kind != J_NUM || !b->is_int || !en->is_int || b->i < 0 || en->i < b->i)
        return mc_err(j->err, "%s: safetensors: entry '%s': data_offsets must be [begin, end] with "
                      "0 <= begin <= end", nm, kn);
    e->b = (uint64_t)b->i;
    e->e = (uint64_t)en->i;
    if (e->e > dlen)
        return mc_err(j->err, "%s: safetensors: entry '%s': data_offsets [%llu, %llu] reach past the end "
                      "of the data (%llu bytes; truncated?)", nm, kn, (unsigned long long)e->b,
                      (unsigned long long)e->e, (unsigned long long)dlen);
    nb = numel * (uint64_t)es;
    if (nb != e->e - e->b)
        return mc_err(j->err, "%s: safetensors: entry '%s': %llu bytes of data for a %s tensor of %llu "
                      "elements", nm, kn, (unsigned long long)(e->e - e->b),
                      e->skip ? "" : mc_dtype_name(e->dt), (unsigned long long)numel);
    e->n = t;
    return 0;
}

int
mc_safetensors_load_mem(const uint8_t *buf, size_t len, const char *name, WeightStore *ws, McErr *err)
{
    if (len < 8)
        return mc_err(err, "%s: not a safetensors file (shorter than its 8-byte header length)", name);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > len - 8 || hlen > ST_MAX_HEADER)
        return mc_err(err, "%s: not a safetensors file (header length %llu exceeds the file size %zu%s)",
                      name, (unsigned long long)hlen, len, hlen > ST_MAX_HEADER ? " or the 100 MB limit" : "");
    if (hlen < 2 || buf[8] != '{')
        return mc_err(err, "%s: not a safetensors file (header does not start with '{')", name);
    Json j = {.p = (const char *)buf + 8, .end = (const char *)buf + 8 + hlen, .start = (const char *)buf + 8,
              .name = name, .err = err};
    j.strbuf = malloc(hlen + 1); /* decoded strings are never longer than their JSON text */
    Ent *ents = NULL;
    int rc = -1, n0 = ws->n, s0 = ws->nskipped, prior = ws->n > 0;
    if (!j.strbuf) {
        mc_err(err, "%s: out of memory", name);
        goto out;
    }
    int root;
    if (parse_value(&j, 0, &root))
        goto out;
    skip_ws(&j);
    if (j.p != j.end) {
        jerr(&j, "trailing characters after the header object");
        goto out;
    }
    const uint8_t *data = buf + 8 + hlen;
    uint64_t dlen = len - 8 - hlen;
    ents = calloc((size_t)j.nodes[root].n + 1, sizeof *ents);
    if (!ents) {
        mc_err(err, "%s: out of memory", name);
        goto out;
    }
    int ne = 0;
    for (int c = j.nodes[root].first; c >= 0; c = j.nodes[c].next) {
        const JNode *t = &j.nodes[c];
        if (key_is(t, "__metadata__")) {
            if (t->kind != J_OBJ) {
                mc_err(err, "%s: safetensors: __metadata__ is not an object", name);
                goto out;
            }
            continue;
        }
        if (memchr(t->key, 0, t->klen) || t->klen == 0) {
            mc_err(err, "%s: safetensors: empty tensor name", name);
            goto out;
        }
        if (entry_parse(&j, t, &ents[ne], dlen))
            goto out;
        ne++;
    }
    qsort(ents, (size_t)ne, sizeof *ents, cmp_name);
    for (int i = 1; i < ne; i++)
        if (cmp_name(&ents[i - 1], &ents[i]) == 0) {
            char kn[220];
            mc_err(err, "%s: safetensors: tensor '%s' appears twice in the header", name,
                   mc_str_escape(kn, sizeof kn, ents[i].n->key, ents[i].n->klen > 200 ? 200 : ents[i].n->klen));
            goto out;
        }
    qsort(ents, (size_t)ne, sizeof *ents, cmp_ent);
    for (int i = 1; i < ne; i++)
        if (ents[i].b < ents[i - 1].e) {
            char ka[220], kb[220];
            const JNode *a = ents[i - 1].n, *b = ents[i].n;
            mc_err(err, "%s: safetensors: data of '%s' and '%s' overlap", name,
                   mc_str_escape(ka, sizeof ka, a->key, a->klen > 200 ? 200 : a->klen),
                   mc_str_escape(kb, sizeof kb, b->key, b->klen > 200 ? 200 : b->klen));
            goto out;
        }
    for (int i = 0; i < ne; i++) {
        Ent *e = &ents[i];
        if (e->skip) {
            if (mc_weights_skip(ws, e->n->key, e->dtn->s, e->dtn->slen)) {
                mc_err(err, "%s: out of memory", name);
                goto out;
            }
            continue;
        }
        int64_t stride[MC_MAX_RANK], acc = 1; /* row-major */
        for (int k = e->s.rank - 1; k >= 0; k--) {
            stride[k] = acc;
            acc *= e->s.d[k] ? e->s.d[k] : 1;
        }
        size_t nb;
        void *d = mc_weights_gather(e->dt, data + e->b, 0, &e->s, stride, &nb);
        WTensor *w = NULL;
        if (d)
            w = prior ? mc_weights_put(ws, e->n->key, mc_weights_store_type(e->dt), e->dt, &e->s, d)
                      : mc_weights_append(ws, e->n->key, mc_weights_store_type(e->dt), e->dt, &e->s, d);
        if (!w) {
            free(d);
            mc_err(err, "%s: out of memory", name);
            goto out;
        }
    }
    rc = 0;
out:
    if (rc < 0 && !prior)
        mc_weights_truncate(ws, n0, s0);
    free(ents);
    free(j.nodes);
    free(j.strbuf);
    return rc;
}

int
mc_safetensors_load(const char *path, WeightStore *ws, McErr *err)
{
    const uint8_t *buf;
    size_t len;
    if (mc_file_map(path, &buf, &len, err))
        return -1;
    int rc = mc_safetensors_load_mem(buf, len, path, ws, err);
    mc_file_unmap(buf, len);
    return rc;
}
