/* tests/unit/test_ir_text.c -- CUnit suites for the textual graph IR and its
 * DOT view (ir/print.c, ir/parse.c).
 *
 * Takes: hand-built graphs, hand-written IR texts and the .mir files of
 * tests/ir (found from the working directory: ir/, tests/ir/ or $MC_IR_DIR).
 * Checks: printed text against hand-written expectations, print/parse round
 * trips, parse errors with exact file:line:col, golden .mir files
 * (bad_*.mir carry "# expect-error: LINE:COL: message" on their first line).
 */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "unit.h"

/* ------------------------------------------------------------ helpers */

static int
wt(Graph *g, const char *name, Shape s)
{
    McErr e;
    int id = mc_graph_weight(g, name, DT_F32, &s, &e);
    if (id < 0)
        fprintf(stderr, "weight %s: %s\n", name, e.msg);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

static int
op(Graph *g, OpKind k, const Attrs *a, const char *name, int nin, ...)
{
    int in[MC_MAX_INPUTS];
    va_list ap;
    va_start(ap, nin);
    for (int i = 0; i < nin; i++)
        in[i] = va_arg(ap, int);
    va_end(ap);
    McErr e;
    Attrs z;
    memset(&z, 0, sizeof z);
    int id = mc_graph_add(g, k, in, nin, a ? a : &z, name, &e);
    if (id < 0)
        fprintf(stderr, "add %s: %s\n", name, e.msg);
    CU_ASSERT_FATAL(id >= 0);
    return id;
}

/* Parses text; on failure returns -1 with the message in err. */
static int
parse_str(Graph *g, const char *text, const char *file, McErr *err)
{
    mc_graph_init(g, "x");
    err->msg[0] = 0;
    return mc_graph_parse(g, text, strlen(text), file, err);
}

static void
assert_streq(const char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "\n--- want\n%s--- got\n%s---\n", want, got);
        size_t i = 0;
        while (got[i] && got[i] == want[i])
            i++;
        fprintf(stderr, "first difference at byte %zu\n", i);
    }
    CU_ASSERT_STRING_EQUAL(got, want);
}

/* ------------------------------------------------------------ every op */

/* Hand-written: what the printer must produce for build_allops(). */
static const char ALLOPS[] =
    "# mambac graph IR\n"
    "graph allops {\n"
    "  %x = input : f32[1,3,8,8]\n"
    "  %x.nhwc = permute %x perm=[0,2,3,1] : f32[1,8,8,3]\n"
    "  %conv.weight = weight : f32[4,3,3,3]\n"
    "  %conv.bias = weight : f32[4]\n"
    "  %conv = conv2d %x.nhwc, %conv.weight, %conv.bias stride=[2,2] pad=[1,1] dilation=[1,1] groups=1 : f32[1,4,4,4]\n"
    "  %dw.weight = weight : f32[4,1,3,3]\n"
    "  %dw = conv2d %conv, %dw.weight stride=[1,1] pad=[2,2] dilation=[2,2] groups=4 : f32[1,4,4,4]\n"
    "  %bn.weight = weight : f32[4]\n"
    "  %bn.bias = weight : f32[4]\n"
    "  %bn.mean = weight : f32[4]\n"
    "  %bn.var = weight : f32[4]\n"
    "  %bn = batchnorm %dw, %bn.weight, %bn.bias, %bn.mean, %bn.var eps=1e-05 : f32[1,4,4,4]\n"
    "  %relu = relu %bn : f32[1,4,4,4]\n"
    "  %ln.weight = weight : f32[4]\n"
    "  %ln.bias = weight : f32[4]\n"
    "  %ln = layernorm %relu, %ln.weight, %ln.bias eps=0.33333333333333331 : f32[1,4,4,4]\n"
    "  %fc.weight = weight : f32[8,4]\n"
    "  %fc.bias = weight : f32[8]\n"
    "  %fc = linear %ln, %fc.weight, %fc.bias : f32[1,4,4,8]\n"
    "  %u = slice %fc start=0 len=4 : f32[1,4,4,4]\n"
    "  %z = slice %fc start=4 len=4 : f32[1,4,4,4]\n"
    "  %z.act = silu %z : f32[1,4,4,4]\n"
    "  %u.gelu = gelu %u : f32[1,4,4,4]\n"
    "  %delta = softplus %u.gelu : f32[1,4,4,4]\n"
    "  %A_logs = weight : f32[4,1]\n"
    "  %A.exp = exp %A_logs : f32[4,1]\n"
    "  %A = neg %A.exp : f32[4,1]\n"
    "  %Bv.proj = weight : f32[4,1]\n"
    "  %Bv = matmul %u, %Bv.proj : f32[1,4,4,1]\n"
    "  %scan = selective_scan %u, %delta, %A, %Bv : f32[1,4,4,4]\n"
    "  %k3 = weight : f32[4,1,3,3]\n"
    "  %k3_1 = weight : f32[4,1,3,3]\n"
    "  %k3_2 = weight : f32[4,1,3,3]\n"
    "  %alpha = weight : f32[3]\n"
    "  %fused = state_fusion %scan, %k3, %k3_1, %k3_2, %alpha : f32[1,4,4,4]\n"
    "  %taps = weight : f32[4,25]\n"
    "  %fused25 = state_fusion25 %fused, %taps : f32[1,4,4,4]\n"
    "  %gate = mul %fused25, %z.act : f32[1,4,4,4]\n"
    "  %res = add %gate, %relu : f32[1,4,4,4]\n"
    "  %pool = mean_hw %res : f32[1,4]\n"
    "  %ppm = adaptive_avg_pool %res size=[3,2] : f32[1,3,2,4]\n"
    "  %up = resize_bilinear %ppm size=[5,7] align_corners=1 : f32[1,5,7,4]\n"
    "  %down = resize_bilinear %res size=[5,7] align_corners=0 : f32[1,5,7,4]\n"
    "  %cat = concat %up, %down, %up : f32[1,5,7,12]\n"
    "  return %pool, %res, %cat\n"
    "}\n";

static void
build_allops(Graph *g)
{
    McErr e;
    mc_graph_init(g, "allops");
    Shape xs = S4(1, 3, 8, 8);
    int x = mc_graph_input(g, "x", DT_F32, &xs, &e);
    CU_ASSERT_FATAL(x >= 0);
    Attrs pa;
    memset(&pa, 0, sizeof pa);
    pa.perm[0] = 0, pa.perm[1] = 2, pa.perm[2] = 3, pa.perm[3] = 1;
    int xn = op(g, OP_PERMUTE, &pa, "x.nhwc", 1, x);
    Attrs ca = mc_attrs_default();
    ca.eps = 0;
    ca.stride[0] = ca.stride[1] = 2;
    ca.pad[0] = ca.pad[1] = 1;
    int cw = wt(g, "conv.weight", S4(4, 3, 3, 3));
    int cb = wt(g, "conv.bias", S1(4));
    int conv = op(g, OP_CONV2D, &ca, "conv", 3, xn, cw, cb);
    Attrs da = mc_attrs_default();
    da.eps = 0;
    da.pad[0] = da.pad[1] = 2;
    da.dil[0] = da.dil[1] = 2;
    da.groups = 4;
    int dww = wt(g, "dw.weight", S4(4, 1, 3, 3));
    int dw = op(g, OP_CONV2D, &da, "dw", 2, conv, dww);
    Attrs ea;
    memset(&ea, 0, sizeof ea);
    ea.eps = 1e-5;
    int bw = wt(g, "bn.weight", S1(4)), bb = wt(g, "bn.bias", S1(4));
    int bm = wt(g, "bn.mean", S1(4)), bv = wt(g, "bn.var", S1(4));
    int bn = op(g, OP_BATCHNORM, &ea, "bn", 5, dw, bw, bb, bm, bv);
    int relu = op(g, OP_RELU, NULL, "relu", 1, bn);
    int lw = wt(g, "ln.weight", S1(4)), lb = wt(g, "ln.bias", S1(4));
    ea.eps = 1.0 / 3.0; /* needs %.17g */
    int ln = op(g, OP_LAYERNORM, &ea, "ln", 3, relu, lw, lb);
    int fw = wt(g, "fc.weight", S2(8, 4)), fb = wt(g, "fc.bias", S1(8));
    int fc = op(g, OP_LINEAR, NULL, "fc", 3, ln, fw, fb);
    Attrs sa;
    memset(&sa, 0, sizeof sa);
    sa.start = 0, sa.len = 4;
    int u = op(g, OP_SLICE, &sa, "u", 1, fc);
    sa.start = 4;
    int z = op(g, OP_SLICE, &sa, "z", 1, fc);
    int za = op(g, OP_SILU, NULL, "z.act", 1, z);
    int ug = op(g, OP_GELU, NULL, "u.gelu", 1, u);
    int delta = op(g, OP_SOFTPLUS, NULL, "delta", 1, ug);
    int al = wt(g, "A_logs", S2(4, 1));
    int ae = op(g, OP_EXP, NULL, "A.exp", 1, al);
    int A = op(g, OP_NEG, NULL, "A", 1, ae);
    int bp = wt(g, "Bv.proj", S2(4, 1));
    int Bv = op(g, OP_MATMUL, NULL, "Bv", 2, u, bp);
    int scan = op(g, OP_SCAN, NULL, "scan", 4, u, delta, A, Bv);
    int k3 = wt(g, "k3", S4(4, 1, 3, 3));
    int k31 = wt(g, "k3_1", S4(4, 1, 3, 3));
    int k32 = wt(g, "k3_2", S4(4, 1, 3, 3));
    int alpha = wt(g, "alpha", S1(3));
    int fused = op(g, OP_STATE_FUSION, NULL, "fused", 5, scan, k3, k31, k32, alpha);
    int taps = wt(g, "taps", S2(4, 25));
    int f25 = op(g, OP_STATE_FUSION25, NULL, "fused25", 2, fused, taps);
    int gate = op(g, OP_MUL, NULL, "gate", 2, f25, za);
    int res = op(g, OP_ADD, NULL, "res", 2, gate, relu);
    int pool = op(g, OP_MEAN_HW, NULL, "pool", 1, res);
    Attrs ra;
    memset(&ra, 0, sizeof ra);
    ra.size[0] = 3, ra.size[1] = 2;
    int ppm = op(g, OP_ADAPTIVE_AVG_POOL, &ra, "ppm", 1, res);
    ra.size[0] = 5, ra.size[1] = 7, ra.align_corners = 1;
    int up = op(g, OP_RESIZE, &ra, "up", 1, ppm);
    ra.align_corners = 0;
    int down = op(g, OP_RESIZE, &ra, "down", 1, res);
    int cat = op(g, OP_CONCAT, NULL, "cat", 3, up, down, up);
    mc_graph_add_output(g, pool);
    mc_graph_add_output(g, res);
    mc_graph_add_output(g, cat);
}

static void
assert_same_graph(const Graph *a, const Graph *b)
{
    CU_ASSERT_STRING_EQUAL(a->name, b->name);
    CU_ASSERT_EQUAL_FATAL(a->nnodes, b->nnodes);
    for (int i = 0; i < a->nnodes; i++) {
        const Node *x = &a->nodes[i], *y = &b->nodes[i];
        CU_ASSERT_EQUAL(x->op, y->op);
        CU_ASSERT_STRING_EQUAL(x->name, y->name);
        CU_ASSERT_EQUAL(x->nin, y->nin);
        for (int k = 0; k < x->nin; k++)
            CU_ASSERT_EQUAL(x->in[k], y->in[k]);
        CU_ASSERT_EQUAL(x->dtype, y->dtype);
        CU_ASSERT(mc_shape_eq(&x->shape, &y->shape));
        const Attrs *p = &x->attrs, *q = &y->attrs;
        for (int k = 0; k < 2; k++) {
            CU_ASSERT_EQUAL(p->stride[k], q->stride[k]);
            CU_ASSERT_EQUAL(p->pad[k], q->pad[k]);
            CU_ASSERT_EQUAL(p->dil[k], q->dil[k]);
        }
        CU_ASSERT_EQUAL(p->groups, q->groups);
        CU_ASSERT(memcmp(&p->eps, &q->eps, sizeof p->eps) == 0);
        CU_ASSERT_EQUAL(p->start, q->start);
        CU_ASSERT_EQUAL(p->len, q->len);
        CU_ASSERT(memcmp(p->perm, q->perm, sizeof p->perm) == 0);
        CU_ASSERT(memcmp(p->size, q->size, sizeof p->size) == 0);
        CU_ASSERT_EQUAL(p->align_corners, q->align_corners);
    }
    CU_ASSERT_EQUAL_FATAL(a->noutputs, b->noutputs);
    for (int k = 0; k < a->noutputs; k++)
        CU_ASSERT_EQUAL(a->outputs[k], b->outputs[k]);
}

static void
test_allops_print(void)
{
    Graph g;
    build_allops(&g);
    /* The graph must use every op of ops.def: a new op must be added here. */
    bool seen[OP_COUNT] = {0};
    for (int i = 0; i < g.nnodes; i++)
        seen[g.nodes[i].op] = true;
    for (int k = 0; k < OP_COUNT; k++) {
        if (!seen[k])
            fprintf(stderr, "op '%s' is not covered by build_allops\n", mc_op_info[k].name);
        CU_ASSERT(seen[k]);
    }
    McErr e;
    CU_ASSERT_EQUAL(mc_graph_verify(&g, &e), 0);
    char *s = mc_graph_print_str(&g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    assert_streq(s, ALLOPS);
    free(s);
    mc_graph_free(&g);
}

static void
test_allops_roundtrip(void)
{
    Graph g, h;
    build_allops(&g);
    char *s1 = mc_graph_print_str(&g);
    McErr e;
    int rc = parse_str(&h, s1, "allops.mir", &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    assert_same_graph(&g, &h);
    CU_ASSERT_EQUAL(mc_graph_verify(&h, &e), 0);
    char *s2 = mc_graph_print_str(&h);
    assert_streq(s2, s1);
    free(s1);
    free(s2);
    mc_graph_free(&g);
    mc_graph_free(&h);
}

/* Defaults, any attribute order, comments, blank lines, tabs and CRLF all
 * parse; the printer then writes the canonical form. */
static void
test_lenient_input(void)
{
    const char *in =
        "# a comment\r\n"
        "\n"
        "graph  g{\r\n"
        "\t%x = input:f32[1,5,5,2]   # trailing comment\n"
        "  %w = weight : f32[2,1,3,3]\n"
        "\n"
        "  %c = conv2d %x,%w groups=2 pad=[1,1] : f32[1,5,5,2]\n"
        "  %s = slice %c len=1 start=1 : f32[1,5,5,1]\n"
        "  return %s\n"
        "}";
    const char *want =
        "# mambac graph IR\n"
        "graph g {\n"
        "  %x = input : f32[1,5,5,2]\n"
        "  %w = weight : f32[2,1,3,3]\n"
        "  %c = conv2d %x, %w stride=[1,1] pad=[1,1] dilation=[1,1] groups=2 : f32[1,5,5,2]\n"
        "  %s = slice %c start=1 len=1 : f32[1,5,5,1]\n"
        "  return %s\n"
        "}\n";
    Graph g;
    McErr e;
    int rc = parse_str(&g, in, "lenient.mir", &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *s = mc_graph_print_str(&g);
    assert_streq(s, want);
    free(s);
    mc_graph_free(&g);
}

/* eps prints in the shortest of %.15g/%.17g that reads back exactly. */
static void
test_float_format(void)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {1e-5, "1e-05"},       {1e-6, "1e-06"}, {0.1, "0.1"},
        {0.5, "0.5"},          {1.0, "1"},      {1.0 / 3.0, "0.33333333333333331"},
        {2.5e-10, "2.5e-10"},  {0.2 + 0.1, "0.30000000000000004"},
        {4.9406564584124654e-324, "4.94065645841247e-324"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Graph g;
        McErr e;
        mc_graph_init(&g, "f");
        Shape s = S2(2, 3);
        int x = mc_graph_input(&g, "x", DT_F32, &s, &e);
        int gw = wt(&g, "g", S1(3)), gb = wt(&g, "b", S1(3));
        Attrs a;
        memset(&a, 0, sizeof a);
        a.eps = cases[i].v;
        int ln = op(&g, OP_LAYERNORM, &a, "ln", 3, x, gw, gb);
        mc_graph_add_output(&g, ln);
        char *txt = mc_graph_print_str(&g);
        char want[64];
        snprintf(want, sizeof want, " eps=%s : ", cases[i].text);
        if (!strstr(txt, want))
            fprintf(stderr, "want '%s' in:\n%s", want, txt);
        CU_ASSERT_PTR_NOT_NULL(strstr(txt, want));
        Graph h;
        int rc = parse_str(&h, txt, "f.mir", &e);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT(memcmp(&h.nodes[3].attrs.eps, &cases[i].v, sizeof(double)) == 0);
        free(txt);
        mc_graph_free(&g);
        mc_graph_free(&h);
    }
}

/* ------------------------------------------------------------ errors */

#define HEAD "# mambac graph IR\ngraph t {\n  %x = input : f32[1,4]\n"

static const struct {
    const char *what, *text, *want;
} ERRORS[] = {
    {"unknown op", HEAD "  %y = frob %x : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:8: error: unknown op 'frob'"},
    {"undefined ref", HEAD "  %y = relu %q : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:13: error: undefined value '%q'"},
    {"forward ref", HEAD "  %y = relu %z : f32[1,4]\n  %z = relu %x : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:13: error: undefined value '%z'"},
    {"bad dtype", HEAD "  %y = relu %x : f33[1,4]\n  return %y\n}\n",
     "t.mir:4:18: error: unknown dtype 'f33'"},
    {"bad dim", HEAD "  %y = relu %x : f32[1,a]\n  return %y\n}\n",
     "t.mir:4:24: error: expected dimension, got 'a'"},
    {"negative dim", HEAD "  %y = relu %x : f32[1,-4]\n  return %y\n}\n",
     "t.mir:4:24: error: dimension -4 out of range"},
    {"too many dims", HEAD "  %y = relu %x : f32[1,1,1,1,1,1,4]\n  return %y\n}\n",
     "t.mir:4:34: error: too many entries in dimension list (at most 6)"},
    {"type mismatch", HEAD "  %y = relu %x : f32[1,5]\n  return %y\n}\n",
     "t.mir:4:18: error: type mismatch for %y: written f32[1,5] but inferred f32[1,4]"},
    {"dtype mismatch", HEAD "  %y = relu %x : f64[1,4]\n  return %y\n}\n",
     "t.mir:4:18: error: type mismatch for %y: written f64[1,4] but inferred f32[1,4]"},
    {"duplicate name", HEAD "  %y = relu %x : f32[1,4]\n  %x = relu %y : f32[1,4]\n  return %x\n}\n",
     "t.mir:5:3: error: duplicate name '%x' (first defined at line 3)"},
    {"missing return", HEAD "}\n", "t.mir:4:1: error: missing 'return' before '}'"},
    {"garbage byte", HEAD "  %y = relu %x \x01 : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:16: error: unexpected byte 0x01"},
    {"garbage later still first error", HEAD "  %y = frob %x : f32[1,4]\n\x7f\n",
     "t.mir:4:8: error: unknown op 'frob'"},
    {"high byte", HEAD "  %y = relu %x : f32[1,4]\n  return %y\xc3\xa9\n}\n",
     "t.mir:5:12: error: unexpected byte 0xc3"},
    {"truncated after node", HEAD, "t.mir:4:1: error: unexpected end of file: missing 'return' and '}'"},
    {"truncated mid type", "# mambac graph IR\ngraph t {\n  %x = input : f32[1,",
     "t.mir:3:22: error: expected dimension, got end of file"},
    {"truncated before brace", HEAD "  return %x\n", "t.mir:5:1: error: expected '}', got end of file"},
    {"empty file", "", "t.mir:1:1: error: expected 'graph NAME {', got end of file"},
    {"arity", HEAD "  %y = add %x : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:8: error: op 'add' takes 2 operands, got 1"},
    {"arity range", HEAD "  %y = linear %x : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:8: error: op 'linear' takes 2 to 3 operands, got 1"},
    {"too many operands", HEAD "  %y = relu %x, %x : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:17: error: too many operands: op 'relu' takes at most 1"},
    {"missing comma", HEAD "  %y = add %x %x : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:15: error: expected ',' between operands, got '%x'"},
    {"shape error from inference", HEAD "  %w = weight : f32[3]\n  %y = add %x, %w : f32[1,4]\n  return %y\n}\n",
     "t.mir:5:8: error: %y: add: shapes [1,4] and [3] do not broadcast"},
    {"attr on wrong op", HEAD "  %y = relu %x eps=1e-5 : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:16: error: op 'relu' has no attribute 'eps'"},
    {"unknown attr", HEAD "  %y = relu %x colour=1 : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:16: error: unknown attribute 'colour'"},
    {"duplicate attr", HEAD "  %y = slice %x start=0 start=1 len=1 : f32[1,1]\n  return %y\n}\n",
     "t.mir:4:25: error: attribute 'start' given twice"},
    {"missing perm", HEAD "  %y = permute %x : f32[4,1]\n  return %y\n}\n",
     "t.mir:4:8: error: op 'permute' needs attribute 'perm'"},
    {"perm length", HEAD "  %y = permute %x perm=[1,0,2] : f32[4,1]\n  return %y\n}\n",
     "t.mir:4:24: error: perm has 3 entries but the operand has rank 2"},
    {"bad eps", HEAD "  %w = weight : f32[4]\n  %y = layernorm %x, %w, %w eps=1e-5x : f32[1,4]\n  return %y\n}\n",
     "t.mir:5:33: error: expected a number, got '1e-5x'"},
    {"infinite eps", HEAD "  %w = weight : f32[4]\n  %y = layernorm %x, %w, %w eps=1e999 : f32[1,4]\n  return %y\n}\n",
     "t.mir:5:33: error: eps must be finite, got 1e999"},
    {"undefined in return", HEAD "  return %x, %nope\n}\n",
     "t.mir:4:14: error: undefined value '%nope'"},
    {"junk after graph", HEAD "  return %x\n}\nmore\n",
     "t.mir:6:1: error: unexpected 'more' after the end of the graph"},
    {"bare percent", HEAD "  % = relu %x : f32[1,4]\n",
     "t.mir:4:3: error: expected a name after '%'"},
    {"no graph keyword", "grph t {\n", "t.mir:1:1: error: expected 'graph NAME {', got 'grph'"},
    {"leaf with operand", HEAD "  %y = input %x : f32[1,4]\n  return %y\n}\n",
     "t.mir:4:14: error: too many operands: op 'input' takes at most 0"},
    {"zero dim leaf", "graph t {\n  %x = input : f32[0,4]\n  return %x\n}\n",
     "t.mir:2:8: error: %x: input: dimension 0 is 0, must be positive"},
    {"huge tensor", "graph t {\n  %x = input : f32[1099511627776,1099511627776]\n  return %x\n}\n",
     "t.mir:2:19: error: tensor too large"},
    {"something else on node line", HEAD "  %y = relu %x : f32[1,4] ]\n  return %y\n}\n",
     "t.mir:4:27: error: expected end of line, got ']'"},
};

static void
test_errors(void)
{
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++) {
        Graph g;
        McErr e;
        int rc = parse_str(&g, ERRORS[i].text, "t.mir", &e);
        bool ok = rc == -1 && strstr(e.msg, ERRORS[i].want) == e.msg;
        if (!ok)
            fprintf(stderr, "\n[%s] rc=%d\n  want: %s\n  got:  %s\n", ERRORS[i].what, rc,
                    ERRORS[i].want, e.msg);
        CU_ASSERT(ok);
        mc_graph_free(&g);
    }
}

/* Text with NUL bytes and without a terminating NUL is handled by length. */
static void
test_binary_input(void)
{
    static const char bytes[] = "graph t {\n  %x = input : f32[2]\n  return %x\n}\n\0garbage";
    Graph g;
    McErr e;
    mc_graph_init(&g, "x");
    int rc = mc_graph_parse(&g, bytes, sizeof bytes - 1, "b.mir", &e);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "b.mir:5:1: error: unexpected byte 0x00"));
    mc_graph_free(&g);
    /* the same prefix, length-limited: parses */
    mc_graph_init(&g, "x");
    rc = mc_graph_parse(&g, bytes, strlen(bytes), "b.mir", &e);
    CU_ASSERT_EQUAL(rc, 0);
    mc_graph_free(&g);
    /* a text cut in the middle of a name, not NUL-terminated */
    char *cut = malloc(14);
    memcpy(cut, "graph t {\n  %x", 14);
    mc_graph_init(&g, "x");
    rc = mc_graph_parse(&g, cut, 14, "c.mir", &e);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "c.mir:2:5: error: expected '='"));
    free(cut);
    mc_graph_free(&g);
}

/* A long chain parses in reasonable time (linear name lookup would not). */
static void
test_big_graph(void)
{
    enum { N = 100000 };
    size_t cap = (size_t)N * 48 + 256, k = 0;
    char *buf = malloc(cap);
    k += (size_t)snprintf(buf + k, cap - k, "graph big {\n  %%v0 = input : f32[2,3]\n");
    for (int i = 1; i < N; i++)
        k += (size_t)snprintf(buf + k, cap - k, "  %%v%d = relu %%v%d : f32[2,3]\n", i, i - 1);
    k += (size_t)snprintf(buf + k, cap - k, "  return %%v%d\n}\n", N - 1);
    Graph g;
    McErr e;
    mc_graph_init(&g, "x");
    int rc = mc_graph_parse(&g, buf, k, "big.mir", &e);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(g.nnodes, N);
    char *s = mc_graph_print_str(&g);
    CU_ASSERT_EQUAL(strlen(s), k + strlen("# mambac graph IR\n"));
    CU_ASSERT(strcmp(s + strlen("# mambac graph IR\n"), buf) == 0);
    free(s);
    free(buf);
    mc_graph_free(&g);
}

/* ------------------------------------------------------------ .mir files */

static const char *
ir_dir(void)
{
    static const char *cands[] = {"ir", "tests/ir", "../tests/ir", NULL};
    const char *env = getenv("MC_IR_DIR");
    if (env)
        return env;
    for (int i = 0; cands[i]; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/bad_missing_return.mir", cands[i]);
        FILE *f = fopen(p, "rb");
        if (f) {
            fclose(f);
            return cands[i];
        }
    }
    return "ir";
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *b = malloc(cap + 1);
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            b = realloc(b, (cap *= 2) + 1);
    }
    fclose(f);
    b[n] = 0;
    *len = n;
    return b;
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_mir_files(void)
{
    const char *dir = ir_dir();
    DIR *d = opendir(dir);
    if (!d)
        fprintf(stderr, "cannot open IR test dir '%s' (run from tests/ or set MC_IR_DIR)\n", dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char *names[512];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < 512) {
        size_t l = strlen(de->d_name);
        if (l > 4 && !strcmp(de->d_name + l - 4, ".mir"))
            names[nn++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], name_cmp);
    int good = 0, bad = 0;
    for (int i = 0; i < nn; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = 0;
        char *text = slurp(path, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        Graph g;
        McErr e;
        e.msg[0] = 0;
        mc_graph_init(&g, "x");
        int rc = mc_graph_parse(&g, text, len, path, &e);
        if (!strncmp(names[i], "bad_", 4)) {
            bad++;
            /* first line: "# expect-error: LINE:COL: message" */
            const char *tag = "# expect-error: ";
            char want[1200];
            const char *nl = strchr(text, '\n');
            bool has = !strncmp(text, tag, strlen(tag)) && nl;
            if (!has)
                fprintf(stderr, "%s: first line must be '%s LINE:COL: message'\n", path, tag);
            CU_ASSERT_FATAL(has);
            const char *spec = text + strlen(tag);
            int line, col, used = 0;
            bool parsed = sscanf(spec, "%d:%d: %n", &line, &col, &used) == 2 && used > 0;
            CU_ASSERT_FATAL(parsed);
            snprintf(want, sizeof want, "%s:%d:%d: error: %.*s", path, line, col,
                     (int)(nl - spec - used), spec + used);
            bool ok = rc == -1 && strstr(e.msg, want) != NULL;
            if (!ok)
                fprintf(stderr, "\n%s: want error '%s'\n  got (rc=%d) '%s'\n", path, want, rc, e.msg);
            CU_ASSERT(ok);
        } else {
            good++;
            if (rc)
                fprintf(stderr, "\n%s: %s\n", path, e.msg);
            CU_ASSERT_EQUAL(rc, 0);
            if (rc == 0) {
                CU_ASSERT_EQUAL(mc_graph_verify(&g, &e), 0);
                char *s = mc_graph_print_str(&g);
                if (strlen(s) != len || memcmp(s, text, len) != 0)
                    fprintf(stderr, "\n%s: printed text differs from the file:\n%s", path, s);
                CU_ASSERT(strlen(s) == len && memcmp(s, text, len) == 0);
                free(s);
            }
        }
        mc_graph_free(&g);
        free(text);
        free(names[i]);
    }
    /* the directory holds both kinds; an empty glob must not pass */
    CU_ASSERT(good >= 2);
    CU_ASSERT(bad >= 5);
}

/* ------------------------------------------------------------ DOT */

static char *
dot_str(const Graph *g, const int *group)
{
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (group)
        mc_graph_print_dot_groups(g, group, f);
    else
        mc_graph_print_dot(g, f);
    long n = ftell(f);
    rewind(f);
    char *buf = calloc((size_t)n + 1, 1);
    CU_ASSERT_EQUAL(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static int
count(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
        n++;
    return n;
}

static void
test_dot(void)
{
    Graph g;
    build_allops(&g);
    char *s = dot_str(&g, NULL);
    CU_ASSERT(!strncmp(s, "digraph \"allops\" {\n", 19));
    CU_ASSERT(s[strlen(s) - 2] == '}' && s[strlen(s) - 1] == '\n');
    /* a node: name, op, type; weights folded into their consumer */
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "n4 [label=\"conv\\nconv2d\\nf32[1,4,4,4]"
                                     "\\nw .weight f32[4,3,3,3]\\nw .bias f32[4]\""));
    CU_ASSERT_PTR_NULL(strstr(s, "n2 ["));     /* conv.weight is not a node */
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "n1 -> n4 [label=\"f32[1,8,8,3]\"];"));
    CU_ASSERT_PTR_NULL(strstr(s, "n2 -> "));
    /* shared dotted prefixes are cut; unrelated names stay whole */
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "n29 [label=\"scan\\nselective_scan\\nf32[1,4,4,4]\"];"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "n28 [label=\"Bv\\nmatmul\\nf32[1,4,4,1]\\nw .proj f32[4,1]\"];"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "n25 [label=\"A.exp\\nexp\\nf32[4,1]\\nw A_logs f32[4,1]\"];"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "n26 [label=\"A\\nneg\\nf32[4,1]\"];"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "n39 [label=\"pool\\nmean_hw\\nf32[1,4]\", peripheries=2];"));
    CU_ASSERT_EQUAL(count(s, "subgraph"), 0);
    /* 44 nodes of which 18 are weights */
    CU_ASSERT_EQUAL(count(s, "[label=\"") - count(s, "-> n"), 26);
    CU_ASSERT_EQUAL(count(s, "{"), count(s, "}"));
    free(s);

    int *group = malloc(sizeof(int) * (size_t)g.nnodes);
    for (int i = 0; i < g.nnodes; i++)
        group[i] = -1;
    group[4] = 7, group[6] = 7, group[11] = 3;
    s = dot_str(&g, group);
    CU_ASSERT_EQUAL(count(s, "subgraph cluster_"), 2);
    const char *c3 = strstr(s, "subgraph cluster_3 {"), *c7 = strstr(s, "subgraph cluster_7 {");
    CU_ASSERT_FATAL(c3 && c7 && c3 < c7);
    const char *n4 = strstr(s, "    n4 [label"), *n6 = strstr(s, "    n6 [label");
    const char *n11 = strstr(s, "    n11 [label");
    CU_ASSERT(n11 && n11 > c3 && n11 < c7);
    CU_ASSERT(n4 && n6 && n4 > c7 && n6 > n4);
    CU_ASSERT_EQUAL(count(s, "{"), count(s, "}"));
    /* the same drawing twice: deterministic */
    char *s2 = dot_str(&g, group);
    CU_ASSERT_STRING_EQUAL(s, s2);
    free(s);
    free(s2);
    free(group);
    mc_graph_free(&g);
}

/* ------------------------------------------------------------ main */

static const struct {
    const char *name;
    void (*fn)(void);
} TESTS[] = {
    {"print every op", test_allops_print},
    {"round trip every op", test_allops_roundtrip},
    {"lenient input, canonical output", test_lenient_input},
    {"float format", test_float_format},
    {"parse errors", test_errors},
    {"binary input", test_binary_input},
    {"big graph", test_big_graph},
    {"tests/ir/*.mir files", test_mir_files},
    {"dot", test_dot},
};

int
main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("ir_text", NULL, NULL);
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
        CU_add_test(s, TESTS[i].name, TESTS[i].fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
