/* passes/pipeline.c -- the pipeline (passes/pipeline.h): one table of steps
 * from the graph passes to the memory plan, run in order with the
 * observability options of PassOptions applying to every step.
 *
 * Rows: the graph passes (passes.def, run by manager.c), "lower"
 * (passes/lower.c), the target's kernel passes (its row's kpasses, in
 * order), "memplan" (passes/memplan.c).  lower and memplan cannot be
 * disabled: without them there is no program.  With --verify-each the
 * kernel IR is verified after every kernel step (mc_kprogram_verify); a
 * program read from text is always verified. */
#include "pipeline.h"
#include "lower.h"
#include <stdlib.h>
#include <string.h>

static const char *lower_purpose = "graph IR -> kernel IR: fused kernels over buffers, views, epilogues";
static const char *memplan_purpose = "scratch buffers share one arena where their lifetimes allow";

void
mc_pipeline_list(FILE *f, const McTarget *const *targets)
{
    mc_passes_list(f);
    fprintf(f, "%-20s %s\n", "lower", lower_purpose);
    for (int t = 0; targets && targets[t]; t++)
        for (int i = 0; i < targets[t]->nkpasses; i++)
            fprintf(f, "%-20s [%s] %s\n", targets[t]->kpasses[i].name, targets[t]->name, targets[t]->kpasses[i].purpose);
    fprintf(f, "%-20s %s\n", "memplan", memplan_purpose);
}

static const KPassInfo *
kpass_find(const McTarget *t, const char *name)
{
    for (int i = 0; t && i < t->nkpasses; i++)
        if (!strcmp(t->kpasses[i].name, name)) return &t->kpasses[i];
    return NULL;
}

static int
check_list(const char *const *names, int n, const char *opt, const McTarget *const *targets, int disabling, McErr *err)
{
    for (int i = 0; i < n; i++) {
        const char *s = names[i];
        if (mc_pass_find(s)) continue;
        if (!strcmp(s, "lower") || !strcmp(s, "memplan")) {
            if (disabling) return mc_err(err, "%s=%s: %s cannot be disabled (no program without it)", opt, s, s);
            continue;
        }
        int found = 0;
        for (int t = 0; targets && targets[t] && !found; t++) found = kpass_find(targets[t], s) != NULL;
        if (!found) return mc_err(err, "%s=%s: no such pass (see --list-passes)", opt, s);
    }
    return 0;
}

int
mc_pipeline_check_names(const PassOptions *o, const McTarget *const *targets, McErr *err)
{
    if (!o) return 0;
    return check_list(o->print_after, o->n_print_after, "--print-after", targets, 0, err) ||
                   check_list(o->print_before, o->n_print_before, "--print-before", targets, 0, err) ||
                   check_list(o->disable, o->n_disable, "--disable-pass", targets, 1, err)
               ? -1
               : 0;
}

int
mc_pipeline_graph(Graph *g, WeightStore *ws, const PassOptions *o, McErr *err)
{
    return mc_pipeline_check_names(o, NULL, err) ? -1 : mc_passes_run(g, ws, o, err);
}

/* --print-before for one kernel step */
static void
before(const KProgram *p, const PassOptions *o, const char *name)
{
    if (o && (o->print_before_all || mc_pass_listed(o->print_before, o->n_print_before, name))) {
        FILE *out = o->out ? o->out : stdout;
        fprintf(out, "# kernel IR before %s\n", name);
        mc_kprogram_print(p, out);
    }
}

/* after one kernel step: timing, stats, verification, --print-after */
static int
after(const KProgram *p, const PassOptions *o, const char *name, double t0, bool changed, int changes, McErr *err)
{
    if (!o) return 0;
    double dt = mc_pass_now() - t0;
    if (o->time_passes) fprintf(stderr, "pass %-20s %8.3f ms\n", name, dt * 1e3);
    if (o->stats)
        fprintf(stderr, "pass %-20s %s  %d decisions, %d kernels, %d buffers\n", name, changed ? "changed" : "no change",
                changes, p->nk, p->nbufs);
    if (o->verify_each && mc_kprogram_verify(p, err)) {
        mc_err_prefix(err, "after pass %s (rerun with --print-after=%s to see the kernel IR)", name, name);
        return -1;
    }
    if (o->print_after_all || mc_pass_listed(o->print_after, o->n_print_after, name)) {
        FILE *out = o->out ? o->out : stdout;
        fprintf(out, "# kernel IR after %s\n", name);
        mc_kprogram_print(p, out);
    }
    return 0;
}

/* every kernel is one t can run */
static int
supported(const KProgram *p, const McTarget *t, McErr *err)
{
    char why[300];
    for (int i = 0; t && t->supports && i < p->nk; i++)
        if (!t->supports(p, &p->k[i], why, sizeof why))
            return mc_err(err, "%s: kernel k%d (%s \"%s\"): %s", t->name, i, mc_kernel_kind_name(p->k[i].kind),
                          p->k[i].name ? p->k[i].name : "?", why);
    return 0;
}

/* t's kernel passes, then memplan */
static int
kernel_steps(KProgram *p, const McTarget *t, const PassOptions *o, McErr *err)
{
    if (supported(p, t, err)) return -1;
    if (t) p->target = t->name;
    for (int i = 0; t && i < t->nkpasses; i++) {
        const KPassInfo *k = &t->kpasses[i];
        if (o && mc_pass_listed(o->disable, o->n_disable, k->name)) {
            if (o->stats) fprintf(stderr, "pass %-20s disabled\n", k->name);
            continue;
        }
        before(p, o, k->name);
        KPassCtx ctx = {&t->desc, o, 0};
        double t0 = mc_pass_now();
        bool changed = k->fn(p, &ctx);
        if (after(p, o, k->name, t0, changed, ctx.changes, err)) return -1;
    }
    before(p, o, "memplan");
    double t0 = mc_pass_now();
    mc_memplan(p);
    if (o && o->stats) mc_memplan_report(p, stderr);
    return after(p, o, "memplan", t0, true, 0, err);
}

int
mc_pipeline_kernels(const Graph *g, WeightStore *ws, const McTarget *t, const PassOptions *o, KProgram *p, McErr *err)
{
    const McTarget *ts[] = {t, NULL};
    if (mc_pipeline_check_names(o, ts, err)) return -1;
    double t0 = mc_pass_now();
    if (mc_lower(g, ws, p, err)) return -1;
    if (after(p, o, "lower", t0, true, p->nk, err) || kernel_steps(p, t, o, err)) {
        mc_kprogram_free(p);
        return -1;
    }
    return 0;
}

int
mc_pipeline_kir(KProgram *p, const McTarget *t, const PassOptions *o, McErr *err)
{
    const McTarget *ts[] = {t, NULL};
    if (mc_pipeline_check_names(o, ts, err) || mc_kprogram_verify(p, err)) return -1;
    if (t && p->target && strcmp(p->target, t->name))
        return mc_err(err, "kernel IR: this program was made by the %s target's passes (its schedules, fusions and "
                      "plan are that target's): print it again for this one (mambac dump MODEL --format kernels "
                      "--target %s%s)", p->target, t->name, !strcmp(t->name, "cuda") ? " --precision P" : "");
    return p->planned ? supported(p, t, err) : kernel_steps(p, t, o, err);
}

int
mc_pipeline_run(Graph *g, WeightStore *ws, const McTarget *t, const PassOptions *o, KProgram *p, McErr *err)
{
    const McTarget *ts[] = {t, NULL};
    if (mc_pipeline_check_names(o, ts, err) || mc_passes_run(g, ws, o, err)) return -1;
    return mc_pipeline_kernels(g, ws, t, o, p, err);
}
