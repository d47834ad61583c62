/* ir/graph.h -- the graph IR: value semantics, typed shapes, no memory.
 *
 * Nodes live in one growable array and refer to each other by integer id
 * (ids are dense, 0..nnodes-1, and every input id is smaller than the node's
 * own id: the array is in topological order).  Strings live in the graph's
 * arena.  Shapes are inferred by mc_graph_add() from ops.def's shape rules;
 * a node that cannot be typed is never added.
 */
#ifndef MC_GRAPH_H
#define MC_GRAPH_H
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include "arena.h"
#include "diag.h"

#define MC_MAX_RANK 6
#define MC_MAX_INPUTS 8

typedef enum DType { DT_F32 = 0, DT_F64, DT_F16, DT_BF16, DT_I64, DT_I32, DT_COUNT } DType;
const char *mc_dtype_name(DType t);     /* "f32", "f64", "f16", "bf16", "i64", "i32" */
int mc_dtype_size(DType t);
int mc_dtype_parse(const char *s, DType *out); /* 0 ok, -1 unknown */

typedef struct Shape {
    int rank;
    int64_t d[MC_MAX_RANK];
} Shape;
int64_t mc_shape_numel(const Shape *s);
bool mc_shape_eq(const Shape *a, const Shape *b);
/* "[1,3,224,224]" into buf; returns buf. */
char *mc_shape_str(const Shape *s, char *buf, size_t n);

typedef enum OpKind {
#define OP(e, name, mn, mx, tr, at) OP_##e,
#include "ops.def"
#undef OP
    OP_COUNT
} OpKind;

enum {
    T_LEAF = 1 << 0, T_CONST = 1 << 1, T_ELEMWISE = 1 << 2, T_UNARY = 1 << 3,
    T_BINARY = 1 << 4, T_COMMUTATIVE = 1 << 5, T_REDUCTION = 1 << 6, T_LAYOUT = 1 << 7,
};
enum { A_CONV = 1 << 0, A_EPS = 1 << 1, A_SLICE = 1 << 2, A_PERM = 1 << 3, A_TYPE = 1 << 4,
       A_SIZE = 1 << 5, A_ALIGN = 1 << 6 };

typedef struct OpInfo {
    const char *name;
    int min_in, max_in;
    unsigned traits, attrs;
} OpInfo;
extern const OpInfo mc_op_info[OP_COUNT];
int mc_op_parse(const char *name, OpKind *out); /* 0 ok, -1 unknown */

/* Attributes: one flat struct; ops.def's attrs column says which fields an
 * op uses.  Unused fields must be zero (mc_attrs_default gives conv defaults). */
typedef struct Attrs {
    int64_t stride[2], pad[2], dil[2], groups; /* A_CONV */
    double eps;                                /* A_EPS */
    int64_t start, len;                        /* A_SLICE, last axis */
    int perm[MC_MAX_RANK];                     /* A_PERM, rank of the input */
    DType type;                                /* A_TYPE: leaves' dtype */
    Shape shape;                               /* A_TYPE: leaves' shape */
    int64_t size[2];                           /* A_SIZE: result [h, w] */
    int64_t align_corners;                     /* A_ALIGN: 0 or 1 */
} Attrs;
Attrs mc_attrs_default(void); /* stride 1, pad 0, dilation 1, groups 1, eps 1e-5 */

typedef struct Node {
    int id;
    OpKind op;
    const char *name;          /* unique; for weights the checkpoint key */
    int nin;
    int in[MC_MAX_INPUTS];
    Attrs attrs;
    DType dtype;               /* result type */
    Shape shape;
} Node;

typedef struct Graph {
    Arena arena;
    const char *name;          /* model name, e.g. "tiny" */
    Node *nodes;
    int nnodes, cap;
    int *outputs;
    int noutputs, outcap;
    int *hash;                 /* name -> id index (open addressing), internal */
    int hashcap;
} Graph;

void mc_graph_init(Graph *g, const char *name);
void mc_graph_free(Graph *g);

/* Adds a node, inferring its type and shape.  `name` may be NULL (a name is
 * made from the op) and is made unique by appending ".1", ".2", ... when
 * taken.  On a type/shape error returns -1 with err set (message names the
 * op, the node and the offending shapes) and adds nothing. */
int mc_graph_add(Graph *g, OpKind op, const int *in, int nin, const Attrs *attrs,
                 const char *name, McErr *err);
/* Convenience for leaves. */
int mc_graph_input(Graph *g, const char *name, DType t, const Shape *s, McErr *err);
int mc_graph_weight(Graph *g, const char *key, DType t, const Shape *s, McErr *err);
void mc_graph_add_output(Graph *g, int id);
int mc_graph_find(const Graph *g, const char *name); /* id or -1 */

/* Editing (for passes).  A pass may append nodes that later nodes use
 * (breaking the id order), rewire operands in place and redirect uses; then
 * mc_graph_compact() drops every node that no output depends on, restores
 * topological id order (keeping the original relative order, placing a new
 * node right before its first user) and rebuilds the name index.
 * Returns the number of nodes removed. */
void mc_graph_replace_uses(Graph *g, int from, int to); /* operands and outputs */
int mc_graph_compact(Graph *g);
/* Renames node id (name must be new and valid; it is not copied). */
void mc_graph_rename(Graph *g, int id, const char *name);
/* users[i] = number of operand slots (and outputs) that refer to node i. */
void mc_graph_use_counts(const Graph *g, int *users);

/* Re-infers every node's shape and checks names unique, ids topological,
 * arities, attrs.  Returns 0 or -1 with err naming the first bad node. */
int mc_graph_verify(const Graph *g, McErr *err);

/* Textual IR (docs/ir.md): print(parse(print(g))) == print(g), byte for byte. */
void mc_graph_print(const Graph *g, FILE *f);
char *mc_graph_print_str(const Graph *g); /* malloc'd */
/* Parses IR text (any bytes) into g, which must be mc_graph_init'ed and
 * empty; sets g->name.  `file` is used in file:line:col messages.  The
 * caller frees g with mc_graph_free() on success and on error. */
int mc_graph_parse(Graph *g, const char *text, size_t len, const char *file, McErr *err);
/* Graphviz view of the graph. */
void mc_graph_print_dot(const Graph *g, FILE *f);
/* Same, with group[i] >= 0 drawing node i inside cluster "group <id>"
 * (-1: no group); group may be NULL. */
void mc_graph_print_dot_groups(const Graph *g, const int *group, FILE *f);

/* Shape inference for one op (used by mc_graph_add and the verifier). */
int mc_infer_shape(const Graph *g, OpKind op, const int *in, int nin, const Attrs *a,
                   DType *dt, Shape *out, McErr *err);

#endif
