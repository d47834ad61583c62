/* tests/unit/test_graph_yaml.c -- the generic graph YAML (frontend/graph_yaml.c):
 * loading a hand-written graph, one test per error class (file:line:col and
 * key, columns counted by hand), the writer's round trip (load(write(g))
 * prints the same IR as g) on hand-built graphs and on the Spatial-Mamba
 * model, file-kind detection, and -- when examples/spatialmamba_tiny.graph.yaml
 * exists -- that it gives the same IR as the public tiny config.
 * Run from tests/ (ctest does).
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

#define FIX "unit/data/yaml/"

static void
check_contains(const char *msg, const char *want)
{
    if (!strstr(msg, want)) fprintf(stderr, "\n  message: %s\n  missing: %s\n", msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
}

static void
expect_fail(const char *file, const char *w1, const char *w2)
{
    Graph g;
    McErr err = {{0}};
    char path[256];
    snprintf(path, sizeof path, FIX "%s", file);
    CU_ASSERT_EQUAL(mc_graph_yaml_load(path, &g, &err), -1);
    if (w1) check_contains(err.msg, w1);
    if (w2) check_contains(err.msg, w2);
    mc_graph_free(&g); /* harmless after a failed load */
}

static char *
yaml_of(const Graph *g, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    mc_graph_yaml_write(g, f);
    fclose(f);
    return buf;
}

/* load(write(g)) prints the same IR as g, and writing it again gives the same YAML. */
static void
check_round_trip(const Graph *g)
{
    size_t len, len2;
    char *y = yaml_of(g, &len);
    Graph h;
    McErr err = {{0}};
    int rc = mc_graph_yaml_load_mem(y, len, "rt.yaml", &h, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *p1 = mc_graph_print_str(g), *p2 = mc_graph_print_str(&h);
    CU_ASSERT_STRING_EQUAL(p1, p2);
    if (strcmp(p1, p2)) {
        FILE *a = fopen("/tmp/mc_rt_a.mir", "w"), *b = fopen("/tmp/mc_rt_b.mir", "w");
        if (a) { fputs(p1, a); fclose(a); }
        if (b) { fputs(p2, b); fclose(b); }
        fprintf(stderr, "\n  IR differs: see /tmp/mc_rt_a.mir /tmp/mc_rt_b.mir\n");
    }
    char *y2 = yaml_of(&h, &len2);
    CU_ASSERT_STRING_EQUAL(y, y2);
    CU_ASSERT_EQUAL(mc_graph_verify(&h, &err), 0);
    free(p1);
    free(p2);
    free(y);
    free(y2);
    mc_graph_free(&h);
}

static void
test_load_block(void)
{
    Graph g;
    McErr err = {{0}};
    int rc = mc_graph_yaml_load(FIX "graph_block.yaml", &g, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(g.name, "block");
    CU_ASSERT_EQUAL_FATAL(g.nnodes, 7);
    static const char *names[7] = {"x", "ln.weight", "ln.bias", "fc.weight", "ln", "fc", "act"};
    static const OpKind ops[7] = {OP_INPUT, OP_WEIGHT, OP_WEIGHT, OP_WEIGHT, OP_LAYERNORM, OP_LINEAR, OP_GELU};
    for (int i = 0; i < 7; i++) {
        CU_ASSERT_STRING_EQUAL(g.nodes[i].name, names[i]);
        CU_ASSERT_EQUAL(g.nodes[i].op, ops[i]);
        CU_ASSERT_EQUAL(g.nodes[i].dtype, DT_F32);
    }
    CU_ASSERT_EQUAL(g.nodes[3].shape.rank, 2);
    CU_ASSERT_EQUAL(g.nodes[3].shape.d[0], 32);
    CU_ASSERT_EQUAL(g.nodes[3].shape.d[1], 16);
    CU_ASSERT_EQUAL(g.nodes[4].nin, 3);
    CU_ASSERT_EQUAL(g.nodes[4].in[0], 0);
    CU_ASSERT_EQUAL(g.nodes[4].in[1], 1);
    CU_ASSERT_EQUAL(g.nodes[4].in[2], 2);
    CU_ASSERT_DOUBLE_EQUAL(g.nodes[4].attrs.eps, 1e-5, 0);
    CU_ASSERT_EQUAL(g.nodes[5].in[0], 4);
    CU_ASSERT_EQUAL(g.nodes[6].shape.rank, 4);
    CU_ASSERT_EQUAL(g.nodes[6].shape.d[3], 32);
    CU_ASSERT_EQUAL(g.noutputs, 1);
    CU_ASSERT_EQUAL(g.outputs[0], 6);
    check_round_trip(&g);
    mc_graph_free(&g);
}

/* Sections are taken in the order inputs, weights, nodes whatever the key
 * order; attributes default; pairs may be one integer. */
static void
test_section_order_and_defaults(void)
{
    static const char txt[] =
        "graph:\n"
        "  outputs: [c, c]\n"
        "  nodes:\n"
        "    - {name: c, op: conv2d, inputs: [x, w], stride: 2, pad: 1, groups: 2}\n"
        "  weights:\n"
        "    - {name: w, op: weight, shape: [4, 1, 3, 3]}\n"
        "  inputs:\n"
        "    - {name: x, shape: [1, 9, 7, 2]}\n";
    Graph g;
    McErr err = {{0}};
    int rc = mc_graph_yaml_load_mem(txt, sizeof txt - 1, "o.yaml", &g, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(g.name, "graph");
    CU_ASSERT_STRING_EQUAL(g.nodes[0].name, "x");
    CU_ASSERT_STRING_EQUAL(g.nodes[1].name, "w");
    CU_ASSERT_STRING_EQUAL(g.nodes[2].name, "c");
    const Attrs *a = &g.nodes[2].attrs;
    CU_ASSERT_EQUAL(a->stride[0], 2);
    CU_ASSERT_EQUAL(a->stride[1], 2);
    CU_ASSERT_EQUAL(a->pad[1], 1);
    CU_ASSERT_EQUAL(a->dil[0], 1);
    CU_ASSERT_EQUAL(a->dil[1], 1);
    CU_ASSERT_EQUAL(a->groups, 2);
    /* (9 + 2 - 3) / 2 + 1 = 5, (7 + 2 - 3) / 2 + 1 = 4 */
    CU_ASSERT_EQUAL(g.nodes[2].shape.d[1], 5);
    CU_ASSERT_EQUAL(g.nodes[2].shape.d[2], 4);
    CU_ASSERT_EQUAL(g.nodes[2].shape.d[3], 4);
    CU_ASSERT_EQUAL(g.noutputs, 2);
    check_round_trip(&g);
    mc_graph_free(&g);
}

static void
test_errors(void)
{
    expect_fail("graph_bad_op.yaml", FIX "graph_bad_op.yaml:5:22: error: unknown op 'conv' for node 'c1'",
                "known: input, weight, conv2d");
    expect_fail("graph_bad_shape.yaml", FIX "graph_bad_shape.yaml:7:7: error: node 'fc': linear:",
                "[1,8,8,16]");
    expect_fail("graph_bad_undef.yaml",
                FIX "graph_bad_undef.yaml:5:36: error: input 'y' of node 'a' is not defined", NULL);
    expect_fail("graph_bad_later.yaml",
                FIX "graph_bad_later.yaml:5:38: error: input 'c' of node 'b' is defined later (at 6:14)",
                NULL);
    expect_fail("graph_bad_dup.yaml", FIX "graph_bad_dup.yaml:6:14: error: duplicate node name 'r'", NULL);
    expect_fail("graph_bad_attr.yaml",
                FIX "graph_bad_attr.yaml:7:45: error: attribute 'eps' does not apply to op 'conv2d'", NULL);
    expect_fail("graph_bad_type.yaml",
                FIX "graph_bad_type.yaml:10:15: error: expected an integer for 'groups' of node 'c', got 'two'",
                NULL);
    expect_fail("graph_bad_key.yaml",
                FIX "graph_bad_key.yaml:10:7: error: unknown key 'strides' in node 'c'", NULL);
    expect_fail("graph_bad_decl_shape.yaml",
                FIX "graph_bad_decl_shape.yaml:5:47: error: node 'r': declared shape [2,5], but relu gives [2,4]",
                NULL);
    expect_fail("graph_bad_output.yaml",
                FIX "graph_bad_output.yaml:4:16: error: output 'nope' is not defined", NULL);
    expect_fail("graph_bad_arity.yaml",
                FIX "graph_bad_arity.yaml:5:34: error: op 'add' takes 2 inputs, node 's' lists 1", NULL);
    expect_fail("graph_bad_toplevel.yaml",
                FIX "graph_bad_toplevel.yaml:4:1: error: unknown top-level key 'extra'", NULL);
    expect_fail("empty.yaml", FIX "empty.yaml: error: empty file", NULL);
    expect_fail("bad_syntax.yaml", FIX "bad_syntax.yaml:5:4: error: ", NULL);
    expect_fail("nope.yaml", FIX "nope.yaml", "cannot open");
}

static void
test_mem_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"graph:\n  nodez: []\n", "g.yaml:2:3: error: unknown key 'nodez' in graph"},
        {"graph: [1]\n", "g.yaml:1:8: error: expected a mapping for 'graph'"},
        {"graph:\n  name: g\n", "g.yaml:2:3: error: graph has no 'outputs'"},
        {"graph:\n  inputs:\n    - {name: x}\n  outputs: [x]\n", "g.yaml:3:7: error: input 'x' needs a 'shape'"},
        {"graph:\n  inputs:\n    - {name: x, shape: [0]}\n  outputs: [x]\n",
         "g.yaml:3:25: error: 'shape' of node 'x'[0] must be between 1 and"},
        {"graph:\n  inputs:\n    - {name: x, shape: [2], dtype: f33}\n  outputs: [x]\n",
         "g.yaml:3:36: error: expected a dtype"},
        {"graph:\n  inputs:\n    - {name: 'a b', shape: [2]}\n  outputs: [x]\n",
         "g.yaml:3:14: error: bad name 'a b'"},
        {"graph:\n  weights:\n    - {name: w, op: relu, shape: [2]}\n  outputs: [w]\n",
         "g.yaml:3:21: error: node 'w' in graph.weights must have op 'weight'"},
        {"graph:\n  inputs:\n    - {name: x, shape: [2, 3]}\n  nodes:\n"
         "    - {name: p, op: permute, inputs: [x], perm: [0]}\n  outputs: [p]\n",
         "g.yaml:5:49: error: perm of node 'p' has 1 axes but its input 'x' has rank 2"},
        {"graph:\n  inputs:\n    - {name: x, shape: [2, 3]}\n  nodes:\n"
         "    - {name: p, op: permute, inputs: [x]}\n  outputs: [p]\n",
         "g.yaml:5:7: error: node 'p' (op 'permute') needs 'perm'"},
        {"graph:\n  inputs:\n    - {name: x, shape: [2, 3]}\n  nodes:\n"
         "    - {name: s, op: slice, inputs: [x], start: 2, len: 2}\n  outputs: [s]\n",
         "g.yaml:5:7: error: node 's': slice: start=2 len=2 is outside"},
        {"graph:\n  inputs:\n    - {name: x, shape: [2, 3]}\n  nodes:\n"
         "    - {name: n, op: layernorm, inputs: [x, x, x], eps: -1}\n  outputs: [n]\n",
         "g.yaml:5:56: error: 'eps' of node 'n' must be in (0, 1]"},
        {"graph:\n  inputs:\n    - {name: x, shape: [2, 3]}\n  nodes:\n"
         "    - {name: r, op: relu}\n  outputs: [r]\n",
         "g.yaml:5:7: error: node 'r' (op 'relu') has no 'inputs'"},
        {"graph:\n  inputs:\n    - {name: x, shape: [2, 3]}\n    - {name: x, shape: [2, 3]}\n  outputs: [x]\n",
         "g.yaml:4:14: error: duplicate node name 'x'"},
        {"graph:\n  nodes:\n    - {name: x, op: input, shape: [2], name: y}\n  outputs: [x]\n",
         "g.yaml:3:40: error: duplicate key 'name' in a node (first at 3:8)"},
        {"graph:\n  nodes: [3]\n  outputs: [x]\n", "g.yaml:2:11: error: expected a mapping for item 0 of graph.nodes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Graph g;
        McErr err = {{0}};
        CU_ASSERT_EQUAL(mc_graph_yaml_load_mem(cases[i].text, strlen(cases[i].text), "g.yaml", &g, &err), -1);
        check_contains(err.msg, cases[i].want);
        mc_graph_free(&g);
    }
}

static int
leaf(Graph *g, OpKind op, const char *name, int rank, const int64_t *d)
{
    Shape s = {rank, {0}};
    for (int i = 0; i < rank; i++) s.d[i] = d[i];
    McErr err;
    int id = op == OP_INPUT ? mc_graph_input(g, name, DT_F32, &s, &err)
                            : mc_graph_weight(g, name, DT_F32, &s, &err);
    if (id < 0) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

static int
add(Graph *g, OpKind op, const char *name, const Attrs *a, int nin, int i0, int i1, int i2, int i3, int i4)
{
    int in[5] = {i0, i1, i2, i3, i4};
    McErr err;
    Attrs d = mc_attrs_default();
    int id = mc_graph_add(g, op, in, nin, a ? a : &d, name, &err);
    if (id < 0) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

/* A graph using every op of ops.def, odd names and non-default attributes. */
static void
test_round_trip_all_ops(void)
{
    Graph g;
    mc_graph_init(&g, "all ops: \"quoted\"");
    int x = leaf(&g, OP_INPUT, "x", 4, (int64_t[]){2, 3, 11, 9});
    int xn = add(&g, OP_PERMUTE, "x.nhwc", &(Attrs){.perm = {0, 2, 3, 1}}, 1, x, 0, 0, 0, 0);
    int w = leaf(&g, OP_WEIGHT, "1", 4, (int64_t[]){8, 3, 3, 3});
    int b = leaf(&g, OP_WEIGHT, "yes", 1, (int64_t[]){8});
    Attrs ca = mc_attrs_default();
    ca.stride[0] = 2; ca.stride[1] = 1; ca.pad[0] = 1; ca.pad[1] = 2; ca.dil[0] = 1; ca.dil[1] = 2;
    int c = add(&g, OP_CONV2D, "conv", &ca, 3, xn, w, b, 0, 0);
    int dw = leaf(&g, OP_WEIGHT, "dw.weight", 4, (int64_t[]){8, 1, 3, 3});
    Attrs da = mc_attrs_default();
    da.pad[0] = da.pad[1] = 1; da.groups = 8;
    int c2 = add(&g, OP_CONV2D, "null", &da, 2, c, dw, 0, 0, 0);
    int v[4];
    for (int i = 0; i < 4; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "bn.p%d", i);
        v[i] = leaf(&g, OP_WEIGHT, nm, 1, (int64_t[]){8});
    }
    Attrs ea = mc_attrs_default();
    ea.eps = 1e-3;
    int bn = add(&g, OP_BATCHNORM, "bn", &ea, 5, c2, v[0], v[1], v[2], v[3]);
    ea.eps = 0.1 + 0.2; /* needs 17 digits */
    int ln = add(&g, OP_LAYERNORM, "ln", &ea, 3, bn, v[0], v[1], 0, 0);
    int fw = leaf(&g, OP_WEIGHT, "fc.weight", 2, (int64_t[]){16, 8});
    int fb = leaf(&g, OP_WEIGHT, "fc.bias", 1, (int64_t[]){16});
    int fc = add(&g, OP_LINEAR, "fc", NULL, 3, ln, fw, fb, 0, 0);
    int fc2 = add(&g, OP_LINEAR, "fc2", NULL, 2, ln, fw, 0, 0, 0);
    (void)fc2;
    int mw = leaf(&g, OP_WEIGHT, "m.w", 2, (int64_t[]){16, 4});
    int mm = add(&g, OP_MATMUL, "mm", NULL, 2, fc, mw, 0, 0, 0);
    int ad = add(&g, OP_ADD, "a-d-d", NULL, 2, mm, leaf(&g, OP_WEIGHT, "bias4", 1, (int64_t[]){4}), 0, 0, 0);
    int mu = add(&g, OP_MUL, "mul", NULL, 2, ad, ad, 0, 0, 0);
    int u = mu;
    OpKind un[6] = {OP_RELU, OP_GELU, OP_SILU, OP_SOFTPLUS, OP_EXP, OP_NEG};
    for (int i = 0; i < 6; i++) u = add(&g, un[i], NULL, NULL, 1, u, 0, 0, 0, 0);
    Attrs sa = mc_attrs_default();
    sa.start = 1; sa.len = 2;
    int sl = add(&g, OP_SLICE, "sl", &sa, 1, u, 0, 0, 0, 0);
    (void)sl;
    int A = leaf(&g, OP_WEIGHT, "A", 2, (int64_t[]){4, 1});
    Attrs s1 = mc_attrs_default();
    s1.start = 0; s1.len = 1;
    int Bv = add(&g, OP_SLICE, "Bv", &s1, 1, u, 0, 0, 0, 0);
    int sc = add(&g, OP_SCAN, "scan", NULL, 4, u, mu, A, Bv, 0);
    int k[3];
    for (int i = 0; i < 3; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "k%d", i);
        k[i] = leaf(&g, OP_WEIGHT, nm, 4, (int64_t[]){4, 1, 3, 3});
    }
    int al = leaf(&g, OP_WEIGHT, "alpha", 1, (int64_t[]){3});
    int sf = add(&g, OP_STATE_FUSION, "sf", NULL, 5, sc, k[0], k[1], k[2], al);
    int mh = add(&g, OP_MEAN_HW, "pool", NULL, 1, sf, 0, 0, 0, 0);
    mc_graph_add_output(&g, mh);
    mc_graph_add_output(&g, sc);
    mc_graph_add_output(&g, mh);
    McErr err;
    CU_ASSERT_EQUAL_FATAL(mc_graph_verify(&g, &err), 0);
    check_round_trip(&g);
    /* the writer quotes names a YAML reader would take for numbers/booleans */
    size_t len;
    char *y = yaml_of(&g, &len);
    CU_ASSERT_PTR_NOT_NULL(strstr(y, "{name: \"1\", op: weight"));
    CU_ASSERT_PTR_NOT_NULL(strstr(y, "{name: \"yes\", op: weight"));
    CU_ASSERT_PTR_NOT_NULL(strstr(y, "{name: \"null\", op: conv2d"));
    CU_ASSERT_PTR_NOT_NULL(strstr(y, "eps: 0.30000000000000004"));
    CU_ASSERT_PTR_NOT_NULL(strstr(y, "stride: [2, 1], pad: [1, 2], dilation: [1, 2], groups: 1"));
    free(y);
    mc_graph_free(&g);
}

static int
load_cfg_build(const char *cfgpath, int B, int H, int W, Graph *g)
{
    ModelConfig cfg;
    McErr err = {{0}};
    if (mc_config_load(cfgpath, &cfg, &err) || mc_model_build(&cfg, B, H, W, g, &err)) {
        fprintf(stderr, "\n  %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void
test_round_trip_model(void)
{
    Graph g;
    CU_ASSERT_EQUAL_FATAL(load_cfg_build("../examples/spatialmamba_tiny.yaml", 1, 64, 64, &g), 0);
    CU_ASSERT(g.nnodes > 100);
    check_round_trip(&g);
    mc_graph_free(&g);
    CU_ASSERT_EQUAL_FATAL(load_cfg_build(FIX "ignored_keys.yaml", 2, 96, 80, &g), 0);
    check_round_trip(&g);
    mc_graph_free(&g);
}

/* The tiny model written independently as graph YAML (by scripts/) gives the
 * same IR as the public config, at the batch and image size of its input. */
static void
test_tiny_graph_yaml_example(void)
{
    const char *path = "../examples/spatialmamba_tiny.graph.yaml";
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, " (%s not present: skipped) ", path);
        return;
    }
    fclose(f);
    Graph a, b;
    McErr err = {{0}};
    int rc = mc_graph_yaml_load(path, &a, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    int x = mc_graph_find(&a, "x");
    CU_ASSERT_FATAL(x >= 0 && a.nodes[x].op == OP_INPUT && a.nodes[x].shape.rank == 4);
    const int64_t *d = a.nodes[x].shape.d;
    CU_ASSERT_EQUAL_FATAL(load_cfg_build("../examples/spatialmamba_tiny.yaml", (int)d[0], (int)d[2],
                                         (int)d[3], &b), 0);
    char *pa = mc_graph_print_str(&a), *pb = mc_graph_print_str(&b);
    CU_ASSERT_STRING_EQUAL(pa, pb);
    if (strcmp(pa, pb)) {
        FILE *fa = fopen("/tmp/mc_tiny_graph_yaml.mir", "w"), *fb = fopen("/tmp/mc_tiny_config.mir", "w");
        if (fa) { fputs(pa, fa); fclose(fa); }
        if (fb) { fputs(pb, fb); fclose(fb); }
        fprintf(stderr, "\n  IR differs: /tmp/mc_tiny_graph_yaml.mir vs /tmp/mc_tiny_config.mir\n");
    }
    free(pa);
    free(pb);
    mc_graph_free(&a);
    mc_graph_free(&b);
}

static void
test_kind(void)
{
    McErr err = {{0}};
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "graph_block.yaml", &err), 2);
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "graph_bad_op.yaml", &err), 2);
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "kind_ir.txt", &err), 3);
    CU_ASSERT_EQUAL(mc_frontend_kind("../examples/spatialmamba_base.yaml", &err), 1);
    CU_ASSERT_EQUAL(mc_frontend_kind(FIX "bad_top_list.yaml", &err), -1);
    check_contains(err.msg, FIX "bad_top_list.yaml:1:1: error: ");
    /* what the writer emits starts with a comment and is still graph YAML */
    Graph g;
    CU_ASSERT_EQUAL_FATAL(mc_graph_yaml_load(FIX "graph_block.yaml", &g, &err), 0);
    const char *tmp = "/tmp/mc_test_kind.graph.yaml";
    FILE *f = fopen(tmp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    mc_graph_yaml_write(&g, f);
    fclose(f);
    CU_ASSERT_EQUAL(mc_frontend_kind(tmp, &err), 2);
    /* and the IR printer's output is IR */
    const char *tmp2 = "/tmp/mc_test_kind.mirtext";
    f = fopen(tmp2, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    mc_graph_print(&g, f);
    fclose(f);
    CU_ASSERT_EQUAL(mc_frontend_kind(tmp2, &err), 3);
    remove(tmp);
    remove(tmp2);
    mc_graph_free(&g);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"load_block", test_load_block},
    {"section_order_and_defaults", test_section_order_and_defaults},
    {"errors", test_errors},
    {"mem_errors", test_mem_errors},
    {"round_trip_all_ops", test_round_trip_all_ops},
    {"round_trip_model", test_round_trip_model},
    {"tiny_graph_yaml_example", test_tiny_graph_yaml_example},
    {"kind", test_kind},
};

MC_UNIT_MAIN("graph_yaml", tests)
