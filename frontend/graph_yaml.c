/* frontend/graph_yaml.c -- the generic graph YAML (docs/graph-yaml.md):
 * reader into graph IR and writer from graph IR.
 * Takes: YAML text with a top-level `graph` mapping (reader) or a Graph
 * (writer).  Produces: a Graph built node by node through mc_graph_add (so
 * every node is shape-checked; errors carry file:line:col and the node name),
 * or YAML text that loads back to a graph printing identically.
 * Owns: nothing after return; the loaded Graph belongs to the caller.
 */
#include "frontend.h"
#include "yamlutil.h"
#include "../ir/budget.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct Loader {
    YDoc *d;
    Graph *g;
    McErr *err;
    double wparams, wbytes; /* weights so far (the parameter budget) */
} Loader;

/* Keys of a node mapping; the attribute keys and the A_* class they belong to. */
static const struct {
    const char *key;
    unsigned attr; /* 0: structural key */
} node_keys[] = {
    {"name", 0}, {"op", 0}, {"inputs", 0}, {"dtype", 0}, {"shape", 0},
    {"stride", A_CONV}, {"pad", A_CONV}, {"dilation", A_CONV}, {"groups", A_CONV},
    {"eps", A_EPS}, {"start", A_SLICE}, {"len", A_SLICE}, {"perm", A_PERM},
    {"size", A_SIZE}, {"align_corners", A_ALIGN},
};
#define N_NODE_KEYS (int)(sizeof node_keys / sizeof node_keys[0])

static const char *
attr_keys_of(unsigned attrs)
{
    if (attrs & A_CONV) return "stride, pad, dilation, groups";
    if (attrs & A_EPS) return "eps";
    if (attrs & A_SLICE) return "start, len";
    if (attrs & A_PERM) return "perm";
    if (attrs & A_ALIGN) return "size, align_corners";
    if (attrs & A_SIZE) return "size";
    return "none";
}

static int
name_ok(const YNode *n)
{
    if (n->len == 0 || strlen(n->str) != n->len) return 0;
    for (const char *s = n->str; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

/* A value name (node name or reference). */
static int
get_name(Loader *L, const YNode *n, const char *what, const char **out)
{
    char b[96];
    if (!n || n->kind != YN_SCALAR || y_is_null(n))
        return y_err(L->d, n, L->err, "expected a name for %s, got %s", what, y_desc(n, b, sizeof b));
    if (!name_ok(n))
        return y_err(L->d, n, L->err,
                     "bad name %s for %s (use letters, digits, '_', '.' and '-')",
                     y_desc(n, b, sizeof b), what);
    *out = n->str;
    return 0;
}

static int
get_shape(Loader *L, const YNode *n, const char *what, Shape *s)
{
    char b[96], w[320];
    if (n->kind != YN_SEQ)
        return y_err(L->d, n, L->err, "expected a list of dimensions for %s, got %s", what,
                     y_desc(n, b, sizeof b));
    if (n->nkids > MC_MAX_RANK)
        return y_err(L->d, n, L->err, "%s has rank %d; at most %d dimensions are supported", what,
                     n->nkids, MC_MAX_RANK);
    memset(s, 0, sizeof *s);
    s->rank = n->nkids;
    for (int i = 0; i < n->nkids; i++) {
        snprintf(w, sizeof w, "%s[%d]", what, i);
        if (y_int(L->d, n->kids[i], w, 1, (int64_t)1 << 40, &s->d[i], L->err)) return -1;
    }
    return 0;
}

static int
get_dtype(Loader *L, const YNode *n, const char *what, DType *t)
{
    char b[96];
    if (n->kind != YN_SCALAR || mc_dtype_parse(n->str, t))
        return y_err(L->d, n, L->err,
                     "expected a dtype (f32, f64, f16, bf16, i64, i32) for %s, got %s", what,
                     y_desc(n, b, sizeof b));
    return 0;
}

/* stride/pad/dilation: [h, w] or one integer for both. */
static int
get_pair(Loader *L, const YNode *n, const char *what, int64_t lo, int64_t v[2])
{
    char b[96], w[320];
    if (n->kind == YN_SCALAR) {
        if (y_int(L->d, n, what, lo, 1 << 20, &v[0], L->err)) return -1;
        v[1] = v[0];
        return 0;
    }
    if (n->kind != YN_SEQ || n->nkids != 2)
        return y_err(L->d, n, L->err, "expected [h, w] or one integer for %s, got %s", what,
                     n->kind == YN_SEQ ? "a list of another length" : y_desc(n, b, sizeof b));
    for (int i = 0; i < 2; i++) {
        snprintf(w, sizeof w, "%s[%d]", what, i);
        if (y_int(L->d, n->kids[i], w, lo, 1 << 20, &v[i], L->err)) return -1;
    }
    return 0;
}

/* Is `name` defined by a later item of seq (from index i on)?  For hints. */
static const YNode *
defined_later(const YNode *seq, int from, const char *name)
{
    if (!seq) return NULL;
    for (int i = from; i < seq->nkids; i++) {
        const YNode *nm = y_get(seq->kids[i], "name");
        if (nm && nm->kind == YN_SCALAR && strcmp(nm->str, name) == 0) return nm;
    }
    return NULL;
}

/* One node mapping.  `forced` is OP_INPUT/OP_WEIGHT for the inputs:/weights:
 * sections (no `op` key there), or -1.  seq/idx locate it for hints. */
static int
load_node(Loader *L, const YNode *m, int forced, const char *section, const YNode *seq, int idx)
{
    YDoc *d = L->d;
    McErr *err = L->err;
    char b[96], what[256];
    if (m->kind != YN_MAP)
        return y_err(d, m, err, "expected a mapping for item %d of graph.%s, got %s", idx, section,
                     y_desc(m, b, sizeof b));
    if (y_check_dups(d, m, "a node", err)) return -1;

    /* name and op first: later messages mention them */
    const YNode *nn = y_get(m, "name");
    const char *name;
    if (!nn) return y_err(d, m, err, "item %d of graph.%s has no 'name'", idx, section);
    snprintf(what, sizeof what, "the name of item %d of graph.%s", idx, section);
    if (get_name(L, nn, what, &name)) return -1;
    int prev = mc_graph_find(L->g, name);
    if (prev >= 0)
        return y_err(d, nn, err, "duplicate node name '%s' (each value needs a unique name)", name);

    OpKind op;
    const YNode *on = y_get(m, "op");
    if (forced >= 0) {
        op = (OpKind)forced;
        if (on && !(on->kind == YN_SCALAR && strcmp(on->str, mc_op_info[op].name) == 0))
            return y_err(d, on, err, "node '%s' in graph.%s must have op '%s' (or no op key)", name,
                         section, mc_op_info[op].name);
    } else {
        if (!on) return y_err(d, m, err, "node '%s' has no 'op'", name);
        if (on->kind != YN_SCALAR || mc_op_parse(on->str, &op)) {
            char known[1024];
            size_t kl = 0;
            known[0] = 0;
            for (int i = 0; i < OP_COUNT && kl < sizeof known; i++)
                kl += (size_t)snprintf(known + kl, sizeof known - kl, "%s%s", i ? ", " : "",
                                       mc_op_info[i].name);
            return y_err(d, on, err, "unknown op %s for node '%s' (known: %s)",
                         y_desc(on, b, sizeof b), name, known);
        }
    }
    const OpInfo *oi = &mc_op_info[op];

    Attrs a;
    memset(&a, 0, sizeof a);
    if (oi->attrs & A_CONV) {
        a.stride[0] = a.stride[1] = 1;
        a.dil[0] = a.dil[1] = 1;
        a.groups = 1;
    }
    if (oi->attrs & A_EPS) a.eps = 1e-5;
    a.type = DT_F32;

    int in[MC_MAX_INPUTS], nin = 0;
    const YNode *shape_n = NULL, *dtype_n = NULL, *len_n = NULL, *perm_n = NULL, *size_n = NULL;
    DType dt = DT_F32;
    Shape sh;
    memset(&sh, 0, sizeof sh);
    for (int i = 0; i < y_npairs(m); i++) {
        const YNode *k = y_key(m, i), *v = y_val(m, i);
        int which = -1;
        for (int j = 0; j < N_NODE_KEYS; j++)
            if (y_key_is(k, node_keys[j].key)) which = j;
        if (which < 0)
            return y_err(d, k, err,
                         "unknown key %s in node '%s' (known: name, op, inputs, dtype, shape, "
                         "and the attributes of its op: %s)",
                         y_desc(k, b, sizeof b), name, attr_keys_of(oi->attrs));
        const char *key = node_keys[which].key;
        if (node_keys[which].attr && !(node_keys[which].attr & oi->attrs))
            return y_err(d, k, err, "attribute '%s' does not apply to op '%s' (its attributes: %s)",
                         key, oi->name, attr_keys_of(oi->attrs));
        snprintf(what, sizeof what, "'%s' of node '%s'", key, name);
        if (!strcmp(key, "name") || !strcmp(key, "op")) {
            continue;
        } else if (!strcmp(key, "inputs")) {
            if (v->kind != YN_SEQ && !y_is_null(v))
                return y_err(d, v, err, "expected a list of value names for %s, got %s", what,
                             y_desc(v, b, sizeof b));
            int cnt = v->kind == YN_SEQ ? v->nkids : 0;
            if (cnt < oi->min_in || cnt > oi->max_in) {
                if (oi->min_in == oi->max_in)
                    return y_err(d, v, err, "op '%s' takes %d inputs, node '%s' lists %d", oi->name,
                                 oi->min_in, name, cnt);
                return y_err(d, v, err, "op '%s' takes %d to %d inputs, node '%s' lists %d",
                             oi->name, oi->min_in, oi->max_in, name, cnt);
            }
            for (int j = 0; j < cnt; j++) {
                const YNode *r = v->kids[j];
                const char *rn;
                char w2[300];
                snprintf(w2, sizeof w2, "input %d of node '%s'", j, name);
                if (get_name(L, r, w2, &rn)) return -1;
                int id = mc_graph_find(L->g, rn);
                if (id < 0) {
                    const YNode *later = defined_later(seq, idx, rn);
                    if (later)
                        return y_err(d, r, err,
                                     "input '%s' of node '%s' is defined later (at %d:%d); "
                                     "list nodes after their inputs", rn, name, later->line,
                                     later->col);
                    return y_err(d, r, err, "input '%s' of node '%s' is not defined", rn, name);
                }
                in[nin++] = id;
            }
        } else if (!strcmp(key, "dtype")) {
            if (get_dtype(L, v, what, &dt)) return -1;
            dtype_n = v;
        } else if (!strcmp(key, "shape")) {
            if (get_shape(L, v, what, &sh)) return -1;
            shape_n = v;
        } else if (!strcmp(key, "stride")) {
            if (get_pair(L, v, what, 1, a.stride)) return -1;
        } else if (!strcmp(key, "pad")) {
            if (get_pair(L, v, what, 0, a.pad)) return -1;
        } else if (!strcmp(key, "dilation")) {
            if (get_pair(L, v, what, 1, a.dil)) return -1;
        } else if (!strcmp(key, "groups")) {
            if (y_int(d, v, what, 1, (int64_t)1 << 40, &a.groups, err)) return -1;
        } else if (!strcmp(key, "eps")) {
            if (y_double(d, v, what, &a.eps, err)) return -1;
            if (!(a.eps > 0) || a.eps > 1)
                return y_err(d, v, err, "%s must be in (0, 1], got %g", what, a.eps);
        } else if (!strcmp(key, "start")) {
            if (y_int(d, v, what, 0, (int64_t)1 << 40, &a.start, err)) return -1;
        } else if (!strcmp(key, "len")) {
            if (y_int(d, v, what, 1, (int64_t)1 << 40, &a.len, err)) return -1;
            len_n = v;
        } else if (!strcmp(key, "size")) {
            if (get_pair(L, v, what, 1, a.size)) return -1;
            size_n = v;
        } else if (!strcmp(key, "align_corners")) {
            if (v->kind != YN_SCALAR || (strcmp(v->str, "true") && strcmp(v->str, "false")))
                return y_err(d, v, err, "expected true or false for %s, got %s", what, y_desc(v, b, sizeof b));
            a.align_corners = !strcmp(v->str, "true");
        } else if (!strcmp(key, "perm")) {
            if (v->kind != YN_SEQ || v->nkids > MC_MAX_RANK)
                return y_err(d, v, err, "expected a list of at most %d axes for %s, got %s",
                             MC_MAX_RANK, what, v->kind == YN_SEQ ? "a longer list" : y_desc(v, b, sizeof b));
            for (int j = 0; j < v->nkids; j++) {
                int64_t p;
                char w2[300];
                snprintf(w2, sizeof w2, "%s[%d]", what, j);
                if (y_int(d, v->kids[j], w2, 0, MC_MAX_RANK - 1, &p, err)) return -1;
                a.perm[j] = (int)p;
            }
            perm_n = v;
        }
    }
    if (!y_get(m, "inputs") && oi->min_in > 0)
        return y_err(d, m, err, "node '%s' (op '%s') has no 'inputs' (it takes %d)", name,
                     oi->name, oi->min_in);
    if ((oi->attrs & A_SLICE) && !len_n)
        return y_err(d, m, err, "node '%s' (op 'slice') needs 'len'", name);
    if ((oi->attrs & A_SIZE) && !size_n)
        return y_err(d, m, err, "node '%s' (op '%s') needs 'size'", name, oi->name);
    if ((oi->attrs & A_PERM) && !perm_n)
        return y_err(d, m, err, "node '%s' (op 'permute') needs 'perm'", name);
    if (perm_n && nin > 0 && perm_n->nkids != L->g->nodes[in[0]].shape.rank)
        return y_err(d, perm_n, err, "perm of node '%s' has %d axes but its input '%s' has rank %d",
                     name, perm_n->nkids, L->g->nodes[in[0]].name, L->g->nodes[in[0]].shape.rank);
    if (oi->attrs & A_TYPE) {
        if (!shape_n) return y_err(d, m, err, "%s '%s' needs a 'shape'", oi->name, name);
        a.type = dt;
        a.shape = sh;
    }

    int id = mc_graph_add(L->g, op, in, nin, &a, name, err);
    if (id < 0) {
        /* mc_graph_add says "%name: op: ..."; say it the YAML way */
        char msg[sizeof err->msg];
        size_t nl = strlen(name);
        const char *rest = err->msg;
        if (rest[0] == '%' && strncmp(rest + 1, name, nl) == 0 && strncmp(rest + 1 + nl, ": ", 2) == 0)
            rest += nl + 3;
        snprintf(msg, sizeof msg, "%s", rest);
        return y_err(d, m, err, "node '%s': %s", name, msg);
    }
    const Node *node = &L->g->nodes[id];
    if (mc_budget_check_node(node, &L->wparams, &L->wbytes, d->file, m->line, m->col, err)) return -1;
    if (!(oi->attrs & A_TYPE)) {
        char b1[160], b2[160];
        if (dtype_n && node->dtype != dt)
            return y_err(d, dtype_n, err, "node '%s': declared dtype %s, but %s gives %s", name,
                         mc_dtype_name(dt), oi->name, mc_dtype_name(node->dtype));
        if (shape_n && !mc_shape_eq(&node->shape, &sh))
            return y_err(d, shape_n, err, "node '%s': declared shape %s, but %s gives %s", name,
                         mc_shape_str(&sh, b1, sizeof b1), oi->name,
                         mc_shape_str(&node->shape, b2, sizeof b2));
    }
    return 0;
}

static int
load_section(Loader *L, const YNode *gm, const char *section, int forced)
{
    char b[96];
    const YNode *s = y_get(gm, section);
    if (!s || y_is_null(s)) return 0;
    if (s->kind != YN_SEQ)
        return y_err(L->d, s, L->err, "expected a list for graph.%s, got %s", section,
                     y_desc(s, b, sizeof b));
    for (int i = 0; i < s->nkids; i++)
        if (load_node(L, s->kids[i], forced, section, s, i)) return -1;
    return 0;
}

static int
load_graph(Loader *L, const char *file)
{
    YDoc *d = L->d;
    McErr *err = L->err;
    char b[96];
    const YNode *r = d->root;
    if (!r || y_is_null(r))
        return mc_err_at(err, file, 0, 0, "empty file (expected a top-level 'graph' mapping)");
    if (r->kind != YN_MAP)
        return y_err(d, r, err, "expected a mapping with a 'graph' key at the top level, got %s",
                     y_desc(r, b, sizeof b));
    if (y_check_dups(d, r, "the top level", err)) return -1;
    for (int i = 0; i < y_npairs(r); i++)
        if (!y_key_is(y_key(r, i), "graph"))
            return y_err(d, y_key(r, i), err,
                         "unknown top-level key %s (a graph YAML has only 'graph')",
                         y_desc(y_key(r, i), b, sizeof b));
    const YNode *gm = y_get(r, "graph");
    if (!gm) return y_err(d, r, err, "no top-level 'graph' key");
    if (gm->kind != YN_MAP)
        return y_err(d, gm, err, "expected a mapping for 'graph', got %s", y_desc(gm, b, sizeof b));
    if (y_check_dups(d, gm, "graph", err)) return -1;
    static const char *const gkeys[] = {"name", "inputs", "weights", "nodes", "outputs"};
    for (int i = 0; i < y_npairs(gm); i++) {
        int ok = 0;
        for (int j = 0; j < 5; j++) ok |= y_key_is(y_key(gm, i), gkeys[j]);
        if (!ok)
            return y_err(d, y_key(gm, i), err,
                         "unknown key %s in graph (known: name, inputs, weights, nodes, outputs)",
                         y_desc(y_key(gm, i), b, sizeof b));
    }
    const YNode *nm = y_get(gm, "name");
    if (nm) {
        const char *s;
        if (y_str(d, nm, "graph.name", &s, err)) return -1;
        if (strlen(s) != nm->len) return y_err(d, nm, err, "graph.name holds a NUL byte");
        L->g->name = mc_arena_strdup(&L->g->arena, s);
    }
    if (load_section(L, gm, "inputs", OP_INPUT)) return -1;
    if (load_section(L, gm, "weights", OP_WEIGHT)) return -1;
    if (load_section(L, gm, "nodes", -1)) return -1;
    const YNode *outs = y_get(gm, "outputs");
    if (!outs) return y_err(d, gm, err, "graph has no 'outputs' (a list of value names)");
    if (outs->kind != YN_SEQ || outs->nkids == 0)
        return y_err(d, outs, err, "expected a non-empty list of value names for graph.outputs, got %s",
                     outs->kind == YN_SEQ ? "an empty list" : y_desc(outs, b, sizeof b));
    for (int i = 0; i < outs->nkids; i++) {
        const char *on;
        char w[64];
        snprintf(w, sizeof w, "graph.outputs[%d]", i);
        if (get_name(L, outs->kids[i], w, &on)) return -1;
        int id = mc_graph_find(L->g, on);
        if (id < 0) return y_err(d, outs->kids[i], err, "output '%s' is not defined", on);
        mc_graph_add_output(L->g, id);
    }
    return 0;
}

int
mc_graph_yaml_load_mem(const char *text, size_t len, const char *name, Graph *g, McErr *err)
{
    const char *file = name ? name : "<graph>";
    mc_graph_init(g, "graph");
    YDoc d;
    if (mc_ydoc_load(&d, text, len, file, err)) {
        mc_graph_free(g);
        return -1;
    }
    Loader L = {.d = &d, .g = g, .err = err};
    int rc = load_graph(&L, file);
    mc_ydoc_free(&d);
    if (rc) mc_graph_free(g);
    return rc;
}

int
mc_graph_yaml_load(const char *path, Graph *g, McErr *err)
{
    size_t len;
    char *text = mc_read_file(path, &len, err);
    if (!text) {
        memset(g, 0, sizeof *g);
        return -1;
    }
    int rc = mc_graph_yaml_load_mem(text, len, path, g, err);
    free(text);
    return rc;
}

/* ------------------------------------------------------------ writer */

/* A string as a YAML scalar: plain when it cannot be read as anything but a
 * string (YAML 1.1 and 1.2 resolvers alike), else double-quoted. */
static void
write_str(FILE *f, const char *s)
{
    static const char *const special[] = {"y", "n", "yes", "no", "on", "off", "true", "false",
                                          "null", "~"};
    int plain = s && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_');
    for (const char *p = s; plain && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            plain = 0;
    for (size_t i = 0; plain && i < sizeof special / sizeof special[0]; i++)
        if (!strcasecmp(s, special[i])) plain = 0;
    if (plain) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void
write_ints(FILE *f, const int64_t *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%" PRId64, i ? ", " : "", v[i]);
    fputc(']', f);
}

void
mc_graph_yaml_write(const Graph *g, FILE *f)
{
    fputs("# mambac generic graph YAML (docs/graph-yaml.md)\ngraph:\n  name: ", f);
    write_str(f, g->name ? g->name : "graph");
    fputs("\n  nodes:\n", f);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        const OpInfo *oi = &mc_op_info[n->op];
        const Attrs *a = &n->attrs;
        fputs("    - {name: ", f);
        write_str(f, n->name);
        fprintf(f, ", op: %s", oi->name);
        if (n->nin > 0 || oi->min_in > 0) {
            fputs(", inputs: [", f);
            for (int k = 0; k < n->nin; k++) {
                if (k) fputs(", ", f);
                write_str(f, n->in[k] >= 0 && n->in[k] < g->nnodes ? g->nodes[n->in[k]].name : "?");
            }
            fputc(']', f);
        }
        if (oi->attrs & A_CONV) {
            fputs(", stride: ", f);
            write_ints(f, a->stride, 2);
            fputs(", pad: ", f);
            write_ints(f, a->pad, 2);
            fputs(", dilation: ", f);
            write_ints(f, a->dil, 2);
            fprintf(f, ", groups: %" PRId64, a->groups);
        }
        if (oi->attrs & A_EPS) {
            char buf[40];
            snprintf(buf, sizeof buf, "%.15g", a->eps);
            if (strtod(buf, NULL) != a->eps) snprintf(buf, sizeof buf, "%.17g", a->eps);
            fprintf(f, ", eps: %s", buf);
        }
        if (oi->attrs & A_SLICE)
            fprintf(f, ", start: %" PRId64 ", len: %" PRId64, a->start, a->len);
        if (oi->attrs & A_PERM) {
            int rank = n->nin > 0 && n->in[0] >= 0 && n->in[0] < g->nnodes
                           ? g->nodes[n->in[0]].shape.rank : n->shape.rank;
            int64_t p[MC_MAX_RANK];
            for (int k = 0; k < rank && k < MC_MAX_RANK; k++) p[k] = a->perm[k];
            fputs(", perm: ", f);
            write_ints(f, p, rank < MC_MAX_RANK ? rank : MC_MAX_RANK);
        }
        if (oi->attrs & A_SIZE) {
            fputs(", size: ", f);
            write_ints(f, a->size, 2);
        }
        if (oi->attrs & A_ALIGN) fprintf(f, ", align_corners: %s", a->align_corners ? "true" : "false");
        fprintf(f, ", dtype: %s, shape: ", mc_dtype_name(n->dtype));
        write_ints(f, n->shape.d, n->shape.rank);
        fputs("}\n", f);
    }
    fputs("  outputs: [", f);
    for (int i = 0; i < g->noutputs; i++) {
        if (i) fputs(", ", f);
        int id = g->outputs[i];
        write_str(f, id >= 0 && id < g->nnodes ? g->nodes[id].name : "?");
    }
    fputs("]\n", f);
}
