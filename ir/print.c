/* ir/print.c -- writes a Graph as text (docs/ir.md) and as Graphviz DOT.
 *
 * Takes: a Graph (read only) and an optional per-node group array.
 * Produces: the textual IR that ir/parse.c reads back byte for byte
 * (print(parse(print(g))) == print(g)), and a DOT drawing.
 * Owns: nothing; the string of mc_graph_print_str() belongs to the caller.
 * Output is a pure function of the graph: no addresses, no timestamps.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"

/* ------------------------------------------------------------ shared bits */

/* NAME := [A-Za-z0-9_.-]+ (docs/ir.md); the parser uses the same set. */
static bool
name_char(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* Node names are NAMEs already (mc_graph_add checks); the graph's own name
 * may come from anywhere, so characters outside NAME print as '_'. */
static void
print_graph_name(FILE *f, const char *s)
{
    if (!s || !*s)
        s = "graph";
    for (; *s; s++)
        fputc(name_char((unsigned char)*s) ? *s : '_', f);
}

/* Shortest of %.15g / %.17g that strtod reads back to the same double. */
static char *
double_str(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, n, "%.17g", v);
    return buf;
}

static void
print_type(FILE *f, DType t, const Shape *s)
{
    const char *dn = (unsigned)t < DT_COUNT ? mc_dtype_name(t) : "?";
    fprintf(f, "%s[", dn ? dn : "?");
    for (int i = 0; i < s->rank && i < MC_MAX_RANK; i++)
        fprintf(f, "%s%" PRId64, i ? "," : "", s->d[i]);
    fputc(']', f);
}

static void
print_pair(FILE *f, const char *key, const int64_t v[2])
{
    fprintf(f, " %s=[%" PRId64 ",%" PRId64 "]", key, v[0], v[1]);
}

/* The attributes an op uses, per its A_* flags, in ops.def order. */
static void
print_attrs(FILE *f, const Graph *g, const Node *n)
{
    unsigned at = mc_op_info[n->op].attrs;
    const Attrs *a = &n->attrs;
    if (at & A_CONV) {
        print_pair(f, "stride", a->stride);
        print_pair(f, "pad", a->pad);
        print_pair(f, "dilation", a->dil);
        fprintf(f, " groups=%" PRId64, a->groups);
    }
    if (at & A_EPS) {
        char buf[40];
        fprintf(f, " eps=%s", double_str(a->eps, buf, sizeof buf));
    }
    if (at & A_SLICE)
        fprintf(f, " start=%" PRId64 " len=%" PRId64, a->start, a->len);
    if (at & A_PERM) {
        int rank = n->shape.rank;
        if (n->nin > 0 && n->in[0] >= 0 && n->in[0] < g->nnodes)
            rank = g->nodes[n->in[0]].shape.rank;
        if (rank > MC_MAX_RANK)
            rank = MC_MAX_RANK;
        fputs(" perm=[", f);
        for (int i = 0; i < rank; i++)
            fprintf(f, "%s%d", i ? "," : "", a->perm[i]);
        fputc(']', f);
    }
    if (at & A_SIZE)
        print_pair(f, "size", a->size);
    if (at & A_ALIGN)
        fprintf(f, " align_corners=%" PRId64, a->align_corners);
}

static void
print_ref(FILE *f, const Graph *g, int id)
{
    if (id >= 0 && id < g->nnodes && g->nodes[id].name)
        fprintf(f, "%%%s", g->nodes[id].name);
    else
        fprintf(f, "%%<bad-id-%d>", id);
}

/* ------------------------------------------------------------ text */

void
mc_graph_print(const Graph *g, FILE *f)
{
    fputs("# mambac graph IR\ngraph ", f);
    print_graph_name(f, g->name);
    fputs(" {\n", f);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        fputs("  ", f);
        print_ref(f, g, i);
        fprintf(f, " = %s", (unsigned)n->op < OP_COUNT ? mc_op_info[n->op].name : "?");
        for (int k = 0; k < n->nin; k++) {
            fputs(k ? ", " : " ", f);
            print_ref(f, g, n->in[k]);
        }
        if ((unsigned)n->op < OP_COUNT)
            print_attrs(f, g, n);
        fputs(" : ", f);
        print_type(f, n->dtype, &n->shape);
        fputc('\n', f);
    }
    fputs("  return", f);
    for (int k = 0; k < g->noutputs; k++) {
        fputs(k ? ", " : " ", f);
        print_ref(f, g, g->outputs[k]);
    }
    fputs("\n}\n", f);
}

char *
mc_graph_print_str(const Graph *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    mc_graph_print(g, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ------------------------------------------------------------ DOT */

/* Writes s into a DOT double-quoted string body. */
static void
dot_str(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20 || *p == 0x7f)
            fputc('?', f);
        else
            fputc(*p, f);
    }
}

static void
dot_type(FILE *f, const Node *n)
{
    char buf[256];
    const char *dn = (unsigned)n->dtype < DT_COUNT ? mc_dtype_name(n->dtype) : "?";
    fprintf(f, "%s%s", dn ? dn : "?", mc_shape_str(&n->shape, buf, sizeof buf));
}

/* Weights are folded into their consumers' labels (one "w name type" line
 * each, the name shortened by the prefix it shares with the consumer) so the drawing of a real model stays readable; a weight is drawn as
 * a node of its own only when nothing consumes it or it is an output. */
static bool
dot_drawn(const Node *n, const bool *used, const bool *is_out)
{
    if (n->op != OP_WEIGHT)
        return true;
    return !used[n->id] || is_out[n->id];
}

/* A weight's name without the dotted prefix it shares with its consumer:
 * "blocks.0.norm.weight" in "blocks.0.norm" reads ".weight". */
static const char *
strip_common(const char *w, const char *consumer)
{
    size_t cut = 0;
    if (!w || !consumer)
        return w;
    size_t lc = strlen(consumer);
    if (!strncmp(w, consumer, lc) && w[lc] == '.')
        return w + lc;
    for (size_t i = 0; w[i] && w[i] == consumer[i]; i++)
        if (w[i] == '.')
            cut = i;
    return w + cut;
}

static void
dot_node(FILE *f, const Graph *g, const Node *n, const bool *is_out, const char *indent)
{
    fprintf(f, "%sn%d [label=\"", indent, n->id);
    dot_str(f, n->name);
    fputs("\\n", f);
    dot_str(f, (unsigned)n->op < OP_COUNT ? mc_op_info[n->op].name : "?");
    fputs("\\n", f);
    dot_type(f, n);
    for (int k = 0; k < n->nin; k++) {
        int src = n->in[k];
        if (src < 0 || src >= g->nnodes || g->nodes[src].op != OP_WEIGHT)
            continue;
        fputs("\\nw ", f);
        dot_str(f, strip_common(g->nodes[src].name, n->name));
        fputc(' ', f);
        dot_type(f, &g->nodes[src]);
    }
    fputc('"', f);
    if (n->op == OP_INPUT)
        fputs(", shape=ellipse, style=filled, fillcolor=\"#d8e8ff\"", f);
    else if (n->op == OP_WEIGHT)
        fputs(", fontsize=9, color=grey, fontcolor=grey40", f);
    if (is_out[n->id])
        fputs(", peripheries=2", f);
    fputs("];\n", f);
}

typedef struct GroupKey {
    int group, id;
} GroupKey;

static int
group_key_cmp(const void *pa, const void *pb)
{
    const GroupKey *a = pa, *b = pb;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

void
mc_graph_print_dot_groups(const Graph *g, const int *group, FILE *f)
{
    int n = g->nnodes;
    bool *used = calloc((size_t)n + 1, sizeof *used);
    bool *is_out = calloc((size_t)n + 1, sizeof *is_out);
    GroupKey *keys = calloc((size_t)n + 1, sizeof *keys);
    if (!used || !is_out || !keys) {
        free(used), free(is_out), free(keys);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] >= 0 && g->nodes[i].in[k] < n)
                used[g->nodes[i].in[k]] = true;
    for (int k = 0; k < g->noutputs; k++)
        if (g->outputs[k] >= 0 && g->outputs[k] < n)
            is_out[g->outputs[k]] = true;

    fputs("digraph \"", f);
    dot_str(f, g->name ? g->name : "main");
    fputs("\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n"
          "  edge [fontname=\"monospace\", fontsize=8];\n", f);

    /* Ungrouped nodes first, then one cluster per group, in group order. */
    int nk = 0;
    for (int i = 0; i < n; i++) {
        const Node *nd = &g->nodes[i];
        if (!dot_drawn(nd, used, is_out))
            continue;
        if (group && group[i] >= 0)
            keys[nk++] = (GroupKey){group[i], i};
        else
            dot_node(f, g, nd, is_out, "  ");
    }
    qsort(keys, (size_t)nk, sizeof *keys, group_key_cmp);
    for (int j = 0; j < nk; j++) {
        if (j == 0 || keys[j].group != keys[j - 1].group)
            fprintf(f, "  subgraph cluster_%d {\n    label=\"group %d\";\n"
                       "    style=rounded; color=\"#4060a0\";\n", keys[j].group, keys[j].group);
        dot_node(f, g, &g->nodes[keys[j].id], is_out, "    ");
        if (j == nk - 1 || keys[j + 1].group != keys[j].group)
            fputs("  }\n", f);
    }

    /* Edges between drawn nodes, labelled with the value's type. */
    for (int i = 0; i < n; i++) {
        const Node *nd = &g->nodes[i];
        if (!dot_drawn(nd, used, is_out))
            continue;
        for (int k = 0; k < nd->nin; k++) {
            int src = nd->in[k];
            if (src < 0 || src >= n || !dot_drawn(&g->nodes[src], used, is_out))
                continue;
            fprintf(f, "  n%d -> n%d [label=\"", src, i);
            dot_type(f, &g->nodes[src]);
            fputs("\"];\n", f);
        }
    }
    fputs("}\n", f);
    free(used);
    free(is_out);
    free(keys);
}

void
mc_graph_print_dot(const Graph *g, FILE *f)
{
    mc_graph_print_dot_groups(g, NULL, f);
}
