/* tests/unit/test_pass_files.c -- text-file IR tests for passes.
 *
 * Each tests/ir/passes/NAME.test holds an input graph, a "# pipeline: p1,p2"
 * line naming the passes to run (others disabled), and after "# expect:" the
 * expected graph, written by hand.  The test parses the input, runs the
 * passes on deterministic random weights, and compares the printed result
 * with the printed expectation; it also runs both graphs through the ref
 * backend and requires the same outputs (relative L2 <= 1e-5). */
#include <CUnit/Basic.h>
#include "unit.h"
#include "frontend/weights.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backends/backend.h"
#include "passes/pass.h"

#define PASS_DIR "ir/passes"

static float *
run(const Graph *g, const WeightStore *ws, const float *x, int64_t *n)
{
    int in = -1;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op == OP_INPUT) in = i;
    HostTensor it = {g->nodes[in].shape, (float *)x}, out;
    memset(&out, 0, sizeof out);
    RunOpts ro = {.threads = 1};
    McErr e;
    if (mc_backend_ref.run_graph(g, ws, &it, 1, &out, 1, &ro, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return NULL;
    }
    *n = mc_shape_numel(&out.shape);
    return out.data;
}

static int
check_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PASS_DIR, name);
    size_t len;
    char *text = unit_slurp(path, &len);
    if (!text) { fprintf(stderr, "%s: cannot read\n", path); return 0; }
    char *exp = strstr(text, "# expect:\n");
    char *pl = strstr(text, "# pipeline: ");
    if (!exp || !pl) { fprintf(stderr, "%s: needs '# pipeline:' and '# expect:'\n", path); free(text); return 0; }
    *exp = 0;
    exp += strlen("# expect:\n");
    char pipeline[256];
    sscanf(pl + strlen("# pipeline: "), "%255[^\n]", pipeline);

    Graph g, before, want;
    McErr e;
    mc_graph_init(&g, "t");
    mc_graph_init(&before, "t");
    mc_graph_init(&want, "t");
    int ok = mc_graph_parse(&g, text, strlen(text), path, &e) == 0 &&
             mc_graph_parse(&before, text, strlen(text), path, &e) == 0 &&
             mc_graph_parse(&want, exp, strlen(exp), path, &e) == 0;
    if (!ok) fprintf(stderr, "%s\n", e.msg);
    WeightStore ws;
    mc_weights_init(&ws);
    PassOptions o;
    memset(&o, 0, sizeof o);
    o.verify_each = true;
    for (int i = 0; i < mc_npasses && ok; i++) {
        char list[260];
        snprintf(list, sizeof list, ",%s,", pipeline);
        char key[80];
        snprintf(key, sizeof key, ",%s,", mc_passes[i].name);
        if (!strstr(list, key)) o.disable[o.n_disable++] = mc_passes[i].name;
    }
    if (ok) {
        mc_weights_random(&g, &ws, 42);
        ok = mc_passes_run(&g, &ws, &o, &e) == 0;
    }
    if (ok) {
        char *got = mc_graph_print_str(&g), *exp_s = mc_graph_print_str(&want);
        if (strcmp(got, exp_s)) {
            fprintf(stderr, "%s: after '%s' got:\n%s\nexpected:\n%s\n", path, pipeline, got, exp_s);
            ok = 0;
        }
        free(got);
        free(exp_s);
    }
    if (ok) { /* numerically the same */
        int in = -1;
        for (int i = 0; i < g.nnodes; i++)
            if (g.nodes[i].op == OP_INPUT) in = i;
        int64_t nx = mc_shape_numel(&g.nodes[in].shape), n1 = 0, n2 = 0;
        float *x = malloc(sizeof(float) * (size_t)nx);
        for (int64_t i = 0; i < nx; i++) x[i] = (float)sin((double)i * 0.7) * 2.0f;
        float *y1 = run(&before, &ws, x, &n1), *y2 = run(&g, &ws, x, &n2);
        ok = y1 && y2 && n1 == n2;
        double num = 0, den = 0;
        for (int64_t i = 0; ok && i < n1; i++) {
            num += ((double)y1[i] - y2[i]) * ((double)y1[i] - y2[i]);
            den += (double)y1[i] * y1[i];
        }
        if (ok && sqrt(num / (den > 0 ? den : 1)) > 1e-5) {
            fprintf(stderr, "%s: outputs differ after the pass (rel L2 %g)\n", path, sqrt(num / den));
            ok = 0;
        }
        free(x); free(y1); free(y2);
    }
    mc_weights_free(&ws);
    mc_graph_free(&g);
    mc_graph_free(&before);
    mc_graph_free(&want);
    free(text);
    return ok;
}

static void
test_all_files(void)
{
    DIR *d = opendir(PASS_DIR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *ent;
    int n = 0;
    while ((ent = readdir(d))) {
        size_t l = strlen(ent->d_name);
        if (l < 6 || strcmp(ent->d_name + l - 5, ".test")) continue;
        int ok = check_file(ent->d_name);
        printf("\n    %s: %s", ent->d_name, ok ? "ok" : "FAILED");
        CU_ASSERT(ok);
        n++;
    }
    closedir(d);
    CU_ASSERT(n >= 5);
}

static const struct {
    const char *name;
    CU_TestFunc fn;
} tests[] = {
    {"tests/ir/passes/*.test", test_all_files},
};

MC_UNIT_MAIN("pass files", tests)
