/* frontend/program.h -- what the commands load: a model's graph (public
 * config, graph YAML, graph IR text), its weights (a checkpoint or
 * deterministic random ones), and its kernel program (the pipeline for a
 * target, or a .kir read back).  Shared by main.c (run, dump, compile) and
 * verify.c. */
#ifndef MC_PROGRAM_H
#define MC_PROGRAM_H
#include "ir/graph.h"
#include "ir/kernel.h"
#include "ir/weights.h"
#include "passes/pipeline.h"

typedef struct McSource {
    const char *model;      /* MODEL: .yaml (config or graph), .mir, .kir */
    const char *kirmodel;   /* --model: with a .kir, the model whose graph passes make its constants */
    const char *weights;    /* --weights, or NULL: random weights (seed) */
    int seed;
    int batch, H, W;        /* a public config's shape (0: batch 1, its image size) */
} McSource;

/* The graph of path (kind: mc_frontend_kind, 1..3), a public config built
 * for B x H x W (H <= 0: its image size), verified. */
int mc_source_graph(const char *path, int kind, int B, int H, int W, Graph *g, McErr *err);
/* g's weights into ws (initialized here): --weights checked against g, or
 * random ones with a warning; nothing when g has no weights. */
int mc_source_weights(const McSource *s, const Graph *g, WeightStore *ws, McErr *err);
/* A .kir (s->model) into p, verified, through what remains of the pipeline
 * for t (mc_pipeline_kir; t NULL: as read, e.g. for printing it back).  With need_weights, every weight buffer in ws:
 * from --model's constants after its graph passes (built at the program's
 * input shape, with --weights or random weights), or --weights by name, or
 * random by name; a buffer the source lacks is an error naming it. */
int mc_source_kir(const McSource *s, const McTarget *t, const PassOptions *po, KProgram *p, WeightStore *ws,
                  int need_weights, McErr *err);
/* The kernel program of s for t: a .kir as above, or the model's graph and
 * weights through the whole pipeline (g keeps the graph p's names point
 * into; free g, ws and p on success, nothing to free on failure). */
int mc_source_program(const McSource *s, int kind, const McTarget *t, const PassOptions *po, Graph *g, WeightStore *ws,
                      KProgram *p, int need_weights, McErr *err);

#endif
