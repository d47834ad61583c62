/* frontend/pickle.c -- symbolic pickle machine (see pickle.h).
 *
 * Takes pickle bytes; produces PVal trees owned by a PickleCtx.  Nothing is
 * imported or called: classes stay names, calls stay records.  The machine
 * is a loop over opcodes with an explicit stack, a mark stack and a memo;
 * each opcode creates at most one value, and MC_PICKLE_MAX_VALUES bounds
 * values, stack, marks, memo and container items whatever the length.
 */
#include "pickle.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_BLOCK 512

typedef struct PoolBlock {
    struct PoolBlock *next;
    int used;
    PVal v[POOL_BLOCK];
} PoolBlock;

struct PickleCtx {
    PoolBlock *blocks;
    PVal **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    PVal **memo;
    size_t memocap, nmemo;
    size_t nvals, nitems;  /* values made, container items added (budgets) */
    const uint8_t *buf;
    size_t len, pos, oppos;
    const char *name;
    McErr *err;
};

static PVal *
pv_new(PickleCtx *c, PvKind k)
{
    if (c->nvals >= MC_PICKLE_MAX_VALUES) /* callers report "out of memory"; perr_budget says why */
        return NULL;
    c->nvals++;
    if (!c->blocks || c->blocks->used == POOL_BLOCK) {
        PoolBlock *b = malloc(sizeof *b);
        if (!b)
            return NULL;
        b->next = c->blocks;
        b->used = 0;
        c->blocks = b;
    }
    PVal *v = &c->blocks->v[c->blocks->used++];
    memset(v, 0, sizeof *v);
    v->kind = k;
    return v;
}

void
mc_pickle_free(PickleCtx *c)
{
    if (!c)
        return;
    for (PoolBlock *b = c->blocks, *nx; b; b = nx) {
        nx = b->next;
        for (int i = 0; i < b->used; i++) {
            PvKind k = b->v[i].kind;
            if (k == PV_TUPLE || k == PV_LIST || k == PV_DICT || k == PV_SET)
                free(b->v[i].items);
        }
        free(b);
    }
    free(c->stack);
    free(c->marks);
    free(c->memo);
    free(c);
}

static int
budget_err(PickleCtx *c)
{
    return mc_err(c->err, "%s: pickle: more than %d values, stack entries, marks or memo slots (the "
                  "limit for a checkpoint's data.pkl) at byte %zu", c->name, MC_PICKLE_MAX_VALUES, c->oppos);
}

static int
perr(PickleCtx *c, const char *what)
{
    if (c->nvals >= MC_PICKLE_MAX_VALUES || c->nitems >= 2 * (size_t)MC_PICKLE_MAX_VALUES)
        return budget_err(c); /* pv_new/item_add refused: say why */
    return mc_err(c->err, "%s: pickle: %s at byte %zu", c->name, what, c->oppos);
}

/* The budget shared by values, stack depth, marks and memo indices: a
 * pickle's memory is bounded whatever its length. */
static int
over_budget(PickleCtx *c, size_t n)
{
    return n < MC_PICKLE_MAX_VALUES ? 0 : budget_err(c);
}

static int
item_add(PickleCtx *c, PVal *cont, PVal *item)
{
    if (++c->nitems >= 2 * (size_t)MC_PICKLE_MAX_VALUES)
        return perr(c, "budget");
    if (cont->n == cont->cap) {
        int nc = cont->cap ? cont->cap * 2 : 4;
        if (nc < 0 || (size_t)nc > c->len * 2 + 16)
            return perr(c, "container too large");
        PVal **ni = realloc(cont->items, (size_t)nc * sizeof *ni);
        if (!ni)
            return perr(c, "out of memory");
        cont->items = ni;
        cont->cap = nc;
    }
    cont->items[cont->n++] = item;
    return 0;
}

static int
push(PickleCtx *c, PVal *v)
{
    if (!v)
        return perr(c, "out of memory");
    if (over_budget(c, c->sp))
        return -1;
    if (c->sp == c->scap) {
        size_t nc = c->scap ? c->scap * 2 : 64;
        PVal **ns = realloc(c->stack, nc * sizeof *ns);
        if (!ns)
            return perr(c, "out of memory");
        c->stack = ns;
        c->scap = nc;
    }
    c->stack[c->sp++] = v;
    return 0;
}

static size_t
stack_floor(PickleCtx *c)
{
    return c->nmarks ? c->marks[c->nmarks - 1] : 0;
}

static PVal *
pop(PickleCtx *c)
{
    if (c->sp <= stack_floor(c)) {
        perr(c, "stack underflow");
        return NULL;
    }
    return c->stack[--c->sp];
}

static PVal *
top(PickleCtx *c)
{
    if (c->sp <= stack_floor(c)) {
        perr(c, "stack underflow");
        return NULL;
    }
    return c->stack[c->sp - 1];
}

/* Pops the topmost mark; returns the stack index where its items begin. */
static int
pop_mark(PickleCtx *c, size_t *at)
{
    if (!c->nmarks)
        return perr(c, "MARK expected but missing");
    *at = c->marks[--c->nmarks];
    return 0;
}

static int
need(PickleCtx *c, size_t n)
{
    if (c->len - c->pos < n)
        return perr(c, "truncated data");
    return 0;
}

static uint64_t
rdle(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Text line up to '\n' (protocol 0 opcodes). */
static int
read_line(PickleCtx *c, const char **s, uint32_t *n)
{
    const uint8_t *p = c->buf + c->pos;
    const uint8_t *nl = memchr(p, '\n', c->len - c->pos);
    if (!nl)
        return perr(c, "unterminated text line");
    *s = (const char *)p;
    *n = (uint32_t)(nl - p);
    c->pos += (size_t)(nl - p) + 1;
    return 0;
}

static int
memo_put(PickleCtx *c, uint64_t idx)
{
    PVal *v = top(c);
    if (!v)
        return -1;
    if (idx >= c->len + 1)
        return perr(c, "memo index out of range");
    if (over_budget(c, idx))
        return -1;
    if (idx >= c->memocap) {
        size_t nc = c->memocap ? c->memocap : 64;
        while (nc <= idx)
            nc *= 2;
        PVal **nm = realloc(c->memo, nc * sizeof *nm);
        if (!nm)
            return perr(c, "out of memory");
        memset(nm + c->memocap, 0, (nc - c->memocap) * sizeof *nm);
        c->memo = nm;
        c->memocap = nc;
    }
    if (!c->memo[idx])
        c->nmemo++;
    c->memo[idx] = v;
    return 0;
}

static int
memo_get(PickleCtx *c, uint64_t idx)
{
    if (idx >= c->memocap || !c->memo[idx])
        return perr(c, "memo key not found");
    return push(c, c->memo[idx]);
}

static int
parse_dec(PickleCtx *c, const char *s, uint32_t n, int64_t *out)
{
    char tmp[64];
    while (n && (s[n - 1] == 'L' || s[n - 1] == '\r'))
        n--;
    if (n == 0 || n >= sizeof tmp)
        return perr(c, "bad decimal number");
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *e;
    errno = 0;
    long long v = strtoll(tmp, &e, 10);
    if (*e || errno)
        return perr(c, "bad decimal number");
    *out = v;
    return 0;
}

/* Builds a container of kind k from the stack items above position at. */
static int
collect(PickleCtx *c, PvKind k, size_t at)
{
    PVal *v = pv_new(c, k);
    if (!v)
        return perr(c, "out of memory");
    size_t n = c->sp - at;
    if (k == PV_DICT && n % 2)
        return perr(c, "odd number of items for a dict");
    for (size_t i = at; i < c->sp; i++)
        if (item_add(c, v, c->stack[i]))
            return -1;
    c->sp = at;
    return push(c, v);
}

static int
is_container(const PVal *v, PvKind k)
{
    return v->kind == k;
}

/* Adds stack items above `at` to the container below them. */
static int
add_items(PickleCtx *c, size_t at, int pairs)
{
    if (at == 0 || at <= stack_floor(c))
        return perr(c, "stack underflow");
    PVal *cont = c->stack[at - 1];
    size_t n = c->sp - at;
    if (pairs && n % 2)
        return perr(c, "odd number of items for SETITEMS");
    PvKind want = pairs ? PV_DICT : PV_LIST;
    if (!pairs && cont->kind == PV_SET)
        want = PV_SET;
    if (cont->kind == PV_CALL || cont->kind == PV_OPAQUE) {
        /* items of an object we do not model (dict/list subclass): dropped */
        c->sp = at;
        return 0;
    }
    if (!is_container(cont, want))
        return perr(c, pairs ? "SETITEM(S) on a value that is not a dict"
                             : "APPEND(S)/ADDITEMS on a value that is not a list or set");
    for (size_t i = at; i < c->sp; i++)
        if (item_add(c, cont, c->stack[i]))
            return -1;
    c->sp = at;
    return 0;
}

static int
make_call(PickleCtx *c, PVal *fn, PVal *args)
{
    /* collections.OrderedDict() is the one call we evaluate */
    if (mc_pv_global_is(fn, "collections", "OrderedDict") && args->kind == PV_TUPLE && args->n == 0)
        return push(c, pv_new(c, PV_DICT));
    PVal *v = pv_new(c, PV_CALL);
    if (!v)
        return perr(c, "out of memory");
    v->a = fn;
    v->b = args;
    return push(c, v);
}

static int
run(PickleCtx *c, PVal **out)
{
    while (c->pos < c->len) {
        c->oppos = c->pos;
        uint8_t op = c->buf[c->pos++];
        const uint8_t *p;
        uint64_t n;
        size_t at = 0;
        PVal *v, *a, *b;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(c, 1))
                return -1;
            if (c->buf[c->pos] > 5)
                return perr(c, "unsupported protocol");
            c->pos++;
            break;
        case 0x95: /* FRAME */
            if (need(c, 8))
                return -1;
            c->pos += 8;
            break;
        case '.': /* STOP */
            if (!(v = pop(c)))
                return -1;
            *out = v;
            return 0;
        case '(': /* MARK */
            if (over_budget(c, c->nmarks))
                return -1;
            if (c->nmarks == c->mcap) {
                size_t nc = c->mcap ? c->mcap * 2 : 16;
                size_t *nm = realloc(c->marks, nc * sizeof *nm);
                if (!nm)
                    return perr(c, "out of memory");
                c->marks = nm;
                c->mcap = nc;
            }
            c->marks[c->nmarks++] = c->sp;
            break;
        case '0': /* POP */
            if (c->sp > stack_floor(c))
                c->sp--;
            else if (c->nmarks && c->sp == stack_floor(c))
                c->nmarks--; /* popping a mark */
            else
                return perr(c, "stack underflow");
            break;
        case '1': /* POP_MARK */
            if (pop_mark(c, &at))
                return -1;
            c->sp = at;
            break;
        case '2': /* DUP */
            if (!(v = top(c)) || push(c, v))
                return -1;
            break;
        case '}': if (push(c, pv_new(c, PV_DICT))) return -1; break;
        case ']': if (push(c, pv_new(c, PV_LIST))) return -1; break;
        case ')': if (push(c, pv_new(c, PV_TUPLE))) return -1; break;
        case 0x8f: if (push(c, pv_new(c, PV_SET))) return -1; break; /* EMPTY_SET */
        case 'N': if (push(c, pv_new(c, PV_NONE))) return -1; break;
        case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
            if (!(v = pv_new(c, PV_BOOL)))
                return perr(c, "out of memory");
            v->i = op == 0x88;
            if (push(c, v))
                return -1;
            break;
        case 'd': case 'l': case 't': case 0x91: /* DICT, LIST, TUPLE, FROZENSET */
            if (pop_mark(c, &at) ||
                collect(c, op == 'd' ? PV_DICT : op == 'l' ? PV_LIST : op == 't' ? PV_TUPLE : PV_SET, at))
                return -1;
            break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            int k = op - 0x84;
            if (c->sp < stack_floor(c) + (size_t)k)
                return perr(c, "stack underflow");
            if (collect(c, PV_TUPLE, c->sp - (size_t)k))
                return -1;
            break;
        }
        case 'X': case 0x8d: case 0x8c: case 'T': case 'U': case 'B': case 'C': case 0x8e: case 0x96: {
            int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
            if (need(c, (size_t)w))
                return -1;
            n = rdle(c->buf + c->pos, w);
            c->pos += (size_t)w;
            if (n > c->len - c->pos)
                return perr(c, "string runs past the end of the data");
            PvKind k = (op == 'X' || op == 0x8d || op == 0x8c || op == 'T' || op == 'U') ? PV_STR : PV_BYTES;
            if (!(v = pv_new(c, k)))
                return perr(c, "out of memory");
            v->s = (const char *)c->buf + c->pos;
            v->len = (uint32_t)n;
            if (n > 0xFFFFFFFFu)
                return perr(c, "string too long");
            c->pos += (size_t)n;
            if (push(c, v))
                return -1;
            break;
        }
        case 'S': case 'V': /* STRING, UNICODE (protocol 0; kept raw) */
            if (!(v = pv_new(c, PV_STR)))
                return perr(c, "out of memory");
            if (read_line(c, &v->s, &v->len))
                return -1;
            if (op == 'S' && v->len >= 2 && (v->s[0] == '\'' || v->s[0] == '"')) {
                v->s++;
                v->len -= 2;
            }
            if (push(c, v))
                return -1;
            break;
        case 'q': case 'r': /* BINPUT, LONG_BINPUT */
            if (need(c, op == 'q' ? 1 : 4))
                return -1;
            n = rdle(c->buf + c->pos, op == 'q' ? 1 : 4);
            c->pos += op == 'q' ? 1 : 4;
            if (memo_put(c, n))
                return -1;
            break;
        case 'h': case 'j': /* BINGET, LONG_BINGET */
            if (need(c, op == 'h' ? 1 : 4))
                return -1;
            n = rdle(c->buf + c->pos, op == 'h' ? 1 : 4);
            c->pos += op == 'h' ? 1 : 4;
            if (memo_get(c, n))
                return -1;
            break;
        case 0x94: /* MEMOIZE: index = number of memo entries so far */
            if (memo_put(c, c->nmemo))
                return -1;
            break;
        case 'p': case 'g': { /* PUT, GET (text) */
            const char *s = NULL;
            uint32_t ln = 0;
            int64_t idx;
            if (read_line(c, &s, &ln) || parse_dec(c, s, ln, &idx))
                return -1;
            if (idx < 0)
                return perr(c, "negative memo index");
            if (op == 'p' ? memo_put(c, (uint64_t)idx) : memo_get(c, (uint64_t)idx))
                return -1;
            break;
        }
        case 'J': case 'K': case 'M': { /* BININT, BININT1, BININT2 */
            int w = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if (need(c, (size_t)w))
                return -1;
            if (!(v = pv_new(c, PV_INT)))
                return perr(c, "out of memory");
            n = rdle(c->buf + c->pos, w);
            c->pos += (size_t)w;
            v->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)n : (int64_t)n;
            if (push(c, v))
                return -1;
            break;
        }
        case 0x8a: case 0x8b: { /* LONG1, LONG4 */
            int w = op == 0x8a ? 1 : 4;
            if (need(c, (size_t)w))
                return -1;
            n = rdle(c->buf + c->pos, w);
            c->pos += (size_t)w;
            if (n > c->len - c->pos)
                return perr(c, "long integer runs past the end of the data");
            p = c->buf + c->pos;
            c->pos += (size_t)n;
            if (n <= 8) {
                if (!(v = pv_new(c, PV_INT)))
                    return perr(c, "out of memory");
                uint64_t u = n ? rdle(p, (int)n) : 0;
                if (n && n < 8 && (p[n - 1] & 0x80)) /* sign extend */
                    u |= ~(uint64_t)0 << (8 * n);
                v->i = (int64_t)u;
            } else if (!(v = pv_new(c, PV_BIGINT)))
                return perr(c, "out of memory");
            if (push(c, v))
                return -1;
            break;
        }
        case 'I': case 'L': { /* INT, LONG (text) */
            const char *s = NULL;
            uint32_t ln = 0;
            if (read_line(c, &s, &ln))
                return -1;
            if (!(v = pv_new(c, PV_INT)))
                return perr(c, "out of memory");
            if (op == 'I' && ln == 2 && (s[0] == '0' || s[0] == '1') && s[1] == '0') {
                v->kind = PV_BOOL; /* I00 / I01 */
                v->i = s[0] == '1';
            } else if (parse_dec(c, s, ln, &v->i)) {
                v->kind = PV_BIGINT; /* too long for int64 or not a number we model */
                if (ln == 0)
                    return -1;
            }
            if (push(c, v))
                return -1;
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            if (need(c, 8))
                return -1;
            if (!(v = pv_new(c, PV_FLOAT)))
                return perr(c, "out of memory");
            uint64_t u = 0;
            for (int i = 0; i < 8; i++)
                u = u << 8 | c->buf[c->pos + i];
            c->pos += 8;
            memcpy(&v->f, &u, 8);
            if (push(c, v))
                return -1;
            break;
        }
        case 'F': { /* FLOAT (text) */
            const char *s = NULL;
            uint32_t ln = 0;
            char tmp[64];
            if (read_line(c, &s, &ln))
                return -1;
            if (ln == 0 || ln >= sizeof tmp)
                return perr(c, "bad float");
            memcpy(tmp, s, ln);
            tmp[ln] = 0;
            if (!(v = pv_new(c, PV_FLOAT)))
                return perr(c, "out of memory");
            v->f = strtod(tmp, NULL);
            if (push(c, v))
                return -1;
            break;
        }
        case 'c': case 'i': { /* GLOBAL, INST */
            if (!(v = pv_new(c, PV_GLOBAL)))
                return perr(c, "out of memory");
            if (read_line(c, &v->s, &v->len) || read_line(c, &v->s2, &v->len2))
                return -1;
            if (op == 'i') {
                if (pop_mark(c, &at) || collect(c, PV_TUPLE, at))
                    return -1;
                a = c->stack[--c->sp];
                if (make_call(c, v, a))
                    return -1;
            } else if (push(c, v))
                return -1;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if (!(b = pop(c)) || !(a = pop(c)))
                return -1;
            if (a->kind != PV_STR || b->kind != PV_STR)
                return perr(c, "STACK_GLOBAL needs two strings");
            if (!(v = pv_new(c, PV_GLOBAL)))
                return perr(c, "out of memory");
            v->s = a->s, v->len = a->len, v->s2 = b->s, v->len2 = b->len;
            if (push(c, v))
                return -1;
            break;
        case 'R': /* REDUCE */
        case 0x81: /* NEWOBJ */
            if (!(b = pop(c)) || !(a = pop(c)))
                return -1;
            if (make_call(c, a, b))
                return -1;
            break;
        case 0x92: /* NEWOBJ_EX: cls, args, kwargs */
            if (!(v = pop(c)) || !(b = pop(c)) || !(a = pop(c)))
                return -1;
            if (make_call(c, a, b))
                return -1;
            break;
        case 'o': /* OBJ: MARK cls args... */
            if (pop_mark(c, &at))
                return -1;
            if (c->sp == at)
                return perr(c, "OBJ without a class");
            a = c->stack[at];
            if (collect(c, PV_TUPLE, at + 1))
                return -1;
            b = c->stack[--c->sp];
            c->sp--; /* the class */
            if (make_call(c, a, b))
                return -1;
            break;
        case 'b': /* BUILD */
            if (!(b = pop(c)) || !(a = top(c)))
                return -1;
            if (a->kind == PV_CALL)
                a->c = b;
            /* state for dicts (e.g. an OrderedDict's _metadata) and others is dropped */
            break;
        case 's': /* SETITEM */
            if (c->sp < stack_floor(c) + 3)
                return perr(c, "stack underflow");
            if (add_items(c, c->sp - 2, 1))
                return -1;
            break;
        case 'u': /* SETITEMS */
            if (pop_mark(c, &at) || add_items(c, at, 1))
                return -1;
            break;
        case 'a': /* APPEND */
            if (c->sp < stack_floor(c) + 2)
                return perr(c, "stack underflow");
            if (add_items(c, c->sp - 1, 0))
                return -1;
            break;
        case 'e': case 0x90: /* APPENDS, ADDITEMS */
            if (pop_mark(c, &at))
                return -1;
            if (at > 0 && at > stack_floor(c) && op == 0x90 && c->stack[at - 1]->kind != PV_SET)
                return perr(c, "ADDITEMS on a value that is not a set");
            if (add_items(c, at, 0))
                return -1;
            break;
        case 'Q': /* BINPERSID */
            if (!(a = pop(c)) || !(v = pv_new(c, PV_PERSID)))
                return a ? perr(c, "out of memory") : -1;
            v->a = a;
            if (push(c, v))
                return -1;
            break;
        case 'P': /* PERSID (text) */
            if (!(a = pv_new(c, PV_STR)) || !(v = pv_new(c, PV_PERSID)))
                return perr(c, "out of memory");
            if (read_line(c, &a->s, &a->len))
                return -1;
            v->a = a;
            if (push(c, v))
                return -1;
            break;
        case 0x82: case 0x83: case 0x84: { /* EXT1, EXT2, EXT4 */
            size_t w = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
            if (need(c, w))
                return -1;
            c->pos += w;
            if (push(c, pv_new(c, PV_OPAQUE)))
                return -1;
            break;
        }
        default: {
            char m[64];
            snprintf(m, sizeof m, "unsupported opcode 0x%02x", op);
            return perr(c, m);
        }
        }
    }
    c->oppos = c->pos;
    return perr(c, "data end without STOP (truncated?)");
}

int
mc_pickle_load(const uint8_t *buf, size_t len, const char *name, PickleCtx **ctx, PVal **out,
               McErr *err)
{
    PickleCtx *c = calloc(1, sizeof *c);
    *ctx = c;
    *out = NULL;
    if (!c)
        return mc_err(err, "%s: out of memory", name);
    c->buf = buf;
    c->len = len;
    c->name = name;
    c->err = err;
    return run(c, out);
}

int
mc_pv_str_eq(const PVal *v, const char *s)
{
    size_t n = strlen(s);
    return v && v->kind == PV_STR && v->len == n && memcmp(v->s, s, n) == 0;
}

int
mc_pv_global_is(const PVal *v, const char *module, const char *name)
{
    size_t m = strlen(module), n = strlen(name);
    return v && v->kind == PV_GLOBAL && v->len == m && v->len2 == n && memcmp(v->s, module, m) == 0 &&
           memcmp(v->s2, name, n) == 0;
}

const PVal *
mc_pv_dict_get(const PVal *d, const char *key)
{
    if (!d || d->kind != PV_DICT)
        return NULL;
    for (int i = d->n - 2; i >= 0; i -= 2)
        if (mc_pv_str_eq(d->items[i], key))
            return d->items[i + 1];
    return NULL;
}
