/* frontend/program.c -- loading a model, its weights and its kernel
 * program for the commands (frontend/program.h). */
#include "frontend/program.h"
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "frontend/weights.h"
#include "frontend/yamlutil.h"

int
mc_source_graph(const char *path, int kind, int B, int H, int W, Graph *g, McErr *err)
{
    int rc;
    memset(g, 0, sizeof *g);
    if (kind == 1) {
        ModelConfig cfg;
        rc = mc_config_load(path, &cfg, err);
        if (!rc) rc = mc_model_build(&cfg, B > 0 ? B : 1, H > 0 ? H : cfg.img_size, H > 0 ? W : cfg.img_w, g, err);
    } else if (kind == 2) {
        rc = mc_graph_yaml_load(path, g, err);
    } else if (kind == 3) {
        size_t n;
        char *text = mc_read_file(path, &n, err);
        if (!text) return -1;
        mc_graph_init(g, "graph");
        rc = mc_graph_parse(g, text, n, path, err);
        free(text);
    } else {
        return mc_err(err, "%s: error: kernel IR is not a model here (a graph model is needed)", path);
    }
    if (!rc) rc = mc_graph_verify(g, err);
    if (rc) mc_graph_free(g);
    return rc ? -1 : 0;
}

int
mc_source_weights(const McSource *s, const Graph *g, WeightStore *ws, McErr *err)
{
    mc_weights_init(ws);
    int nweights = 0;
    for (int i = 0; i < g->nnodes; i++) nweights += g->nodes[i].op == OP_WEIGHT;
    if (!s->weights && !nweights) return 0;
    if (!s->weights) {
        mc_warn("no --weights given: using random weights (seed %d); outputs are meaningless", s->seed);
        mc_weights_random(g, ws, (uint64_t)s->seed);
        return 0;
    }
    if (mc_weights_load(s->weights, ws, err) || mc_weights_check(g, ws, err)) {
        mc_weights_free(ws);
        return -1;
    }
    return 0;
}

/* --model's constants: the model at the program's input shape, its weights,
 * its graph passes */
static int
kirmodel_constants(const McSource *s, const KProgram *p, WeightStore *ws, McErr *err)
{
    const Shape *in = &p->bufs[p->input_buf].shape;
    int img = in->rank == 4, kind = mc_frontend_kind(s->kirmodel, err);
    Graph g;
    if (kind < 0) return -1;
    if (kind == 4) return mc_err(err, "--model %s: a model, not kernel IR", s->kirmodel);
    if (mc_source_graph(s->kirmodel, kind, img ? (int)in->d[0] : 1, img ? (int)in->d[2] : 0, img ? (int)in->d[3] : 0, &g,
                        err))
        return -1;
    mc_weights_free(ws);
    int rc = mc_source_weights(s, &g, ws, err);
    if (!rc) rc = mc_pipeline_graph(&g, ws, NULL, err);
    mc_graph_free(&g);
    return rc;
}

int
mc_source_kir(const McSource *s, const McTarget *t, const PassOptions *po, KProgram *p, WeightStore *ws, int need_weights,
              McErr *err)
{
    size_t n;
    mc_weights_init(ws);
    memset(p, 0, sizeof *p);
    char *buf = mc_read_file(s->model, &n, err);
    if (!buf) return -1;
    int rc = mc_kprogram_parse(p, buf, n, s->model, err);
    free(buf);
    if (rc) return -1;
    if (mc_kprogram_verify(p, err)) {
        mc_err_prefix(err, "%s: error", s->model);
        rc = -1;
    } else if (t) {
        rc = mc_pipeline_kir(p, t, po, err);
    }
    int nweights = 0;
    for (int i = 0; i < p->nbufs; i++) nweights += p->bufs[i].kind == BUF_WEIGHT;
    if (!rc && need_weights) {
        if (s->kirmodel) rc = kirmodel_constants(s, p, ws, err);
        else if (s->weights) rc = mc_weights_load(s->weights, ws, err);
        else if (nweights) mc_warn("no --weights given: using random weights (seed %d); outputs are meaningless", s->seed);
    }
    for (int i = 0; i < p->nbufs && !rc && need_weights; i++) {
        const Buffer *b = &p->bufs[i];
        if (b->kind != BUF_WEIGHT) continue;
        if (!s->weights && !s->kirmodel) {
            mc_weights_random_one(ws, b->name, DT_F32, &b->shape, (uint64_t)s->seed);
            continue;
        }
        WTensor *w = mc_weights_find(ws, b->name);
        const char *src = s->kirmodel ? s->kirmodel : s->weights;
        char s1[160], s2[160];
        if (!w)
            rc = mc_err(err, "%s: error: weight buffer b%d \"%s\" is not in %s%s", s->model, i, b->name, src,
                        s->kirmodel ? "'s constants after its graph passes"
                                    : " (constants the graph passes make, such as folded batchnorms, are in no checkpoint: "
                                      "give --model MODEL.yaml, with --weights for its checkpoint)");
        else if (w->dtype != DT_F32 || !mc_shape_eq(&w->shape, &b->shape))
            rc = mc_err(err, "%s: error: weight buffer b%d \"%s\" is f32%s, %s has %s%s", s->model, i, b->name,
                        mc_shape_str(&b->shape, s1, sizeof s1), src, mc_dtype_name(w->dtype),
                        mc_shape_str(&w->shape, s2, sizeof s2));
    }
    if (rc) {
        mc_kprogram_free(p);
        mc_weights_free(ws);
    }
    return rc;
}

int
mc_source_program(const McSource *s, int kind, const McTarget *t, const PassOptions *po, Graph *g, WeightStore *ws,
                  KProgram *p, int need_weights, McErr *err)
{
    memset(g, 0, sizeof *g);
    if (kind == 4) return mc_source_kir(s, t, po, p, ws, need_weights, err);
    if (s->kirmodel) mc_warn("--model applies to a .kir MODEL only; ignored");
    if (mc_source_graph(s->model, kind, s->batch, s->H, s->W, g, err)) return -1;
    if (mc_source_weights(s, g, ws, err)) {
        mc_graph_free(g);
        return -1;
    }
    if (mc_pipeline_run(g, ws, t, po, p, err)) {
        mc_weights_free(ws);
        mc_graph_free(g);
        return -1;
    }
    return 0;
}
