/* passes/manager.c -- the pass table, the pipeline driver and its
 * observability options (print before/after, disable, verify, timing, stats). */
#include "pass.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

const PassInfo mc_passes[] = {
#define PASS(fn, name, purpose) {fn, name, purpose},
#include "passes.def"
#undef PASS
};
const int mc_npasses = sizeof mc_passes / sizeof mc_passes[0];

const PassInfo *
mc_pass_find(const char *name)
{
    for (int i = 0; i < mc_npasses; i++)
        if (!strcmp(mc_passes[i].name, name)) return &mc_passes[i];
    return NULL;
}

void
mc_passes_list(FILE *f)
{
    for (int i = 0; i < mc_npasses; i++) fprintf(f, "%-20s %s\n", mc_passes[i].name, mc_passes[i].purpose);
}

bool
mc_pass_listed(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return true;
    return false;
}

double
mc_pass_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
mc_passes_run(Graph *g, WeightStore *ws, const PassOptions *o, McErr *err)
{
    PassOptions none;
    memset(&none, 0, sizeof none);
    if (!o) o = &none;
    (void)err; /* option names are checked by the pipeline (pipeline.c), which knows every step */
    FILE *out = o->out ? o->out : stdout;
    double total = 0;
    for (int i = 0; i < mc_npasses; i++) {
        const PassInfo *p = &mc_passes[i];
        if (mc_pass_listed(o->disable, o->n_disable, p->name)) {
            if (o->stats) fprintf(stderr, "pass %-20s disabled\n", p->name);
            continue;
        }
        if (o->print_before_all || mc_pass_listed(o->print_before, o->n_print_before, p->name)) {
            fprintf(out, "# IR before %s\n", p->name);
            mc_graph_print(g, out);
        }
        PassCtx ctx = {ws, o, 0};
        int before = g->nnodes;
        double t0 = mc_pass_now();
        bool changed = p->fn(g, &ctx);
        int removed = mc_graph_compact(g);
        double dt = mc_pass_now() - t0;
        total += dt;
        if (o->verify_each) {
            McErr e;
            if (mc_graph_verify(g, &e))
                mc_die("after pass %s: %s\n(rerun with --print-after=%s to see the IR)", p->name, e.msg, p->name);
        }
        if (o->stats)
            fprintf(stderr, "pass %-20s %s  %d rewrites, nodes %d -> %d (%d removed)\n", p->name,
                    changed ? "changed" : "no change", ctx.changes, before, g->nnodes, removed);
        if (o->time_passes) fprintf(stderr, "pass %-20s %8.3f ms\n", p->name, dt * 1e3);
        if (o->print_after_all || mc_pass_listed(o->print_after, o->n_print_after, p->name)) {
            fprintf(out, "# IR after %s\n", p->name);
            mc_graph_print(g, out);
        }
    }
    if (o->time_passes) fprintf(stderr, "pass %-20s %8.3f ms\n", "(total)", total * 1e3);
    return 0;
}

float *
mc_pass_const_data(const Graph *g, const PassCtx *ctx, int id)
{
    if (id < 0 || id >= g->nnodes || g->nodes[id].op != OP_WEIGHT || !ctx->ws) return NULL;
    WTensor *t = mc_weights_find(ctx->ws, g->nodes[id].name);
    if (!t || t->dtype != DT_F32 || !mc_shape_eq(&t->shape, &g->nodes[id].shape)) return NULL;
    return t->data;
}

int
mc_pass_add_const(Graph *g, PassCtx *ctx, const char *name, const Shape *s, float *data)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    for (int k = 1; mc_graph_find(g, buf) >= 0 || mc_weights_find(ctx->ws, buf); k++)
        snprintf(buf, sizeof buf, "%s.%d", name, k);
    McErr e;
    int id = mc_graph_weight(g, buf, DT_F32, s, &e);
    if (id < 0) mc_die("pass: cannot add constant %s: %s", buf, e.msg);
    mc_weights_put(ctx->ws, buf, DT_F32, DT_F32, s, data);
    return id;
}
