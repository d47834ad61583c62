/* tests/gpu/cudagen.c -- a stand-alone driver for the CUDA backend, used by
 * tests/gpu/run.sh and bench/gpu (it does what `mambac compile --target
 * cuda` does: build the graph, the pipeline for the cuda target row --
 * passes, lower, the CUDA fusion passes, memplan -- then mc_cuda_compile;
 * plus --fill, which the CLI does not have).
 *
 *   cudagen MODEL.yaml [--batch B] [--image-size H[xW]] [--weights W] [--seed N]
 *           [--precision fp32|tf32|bf16] [--sm 90] [--emit cuda|exe]
 *           [--external-weights] [--fill ROWS] -o OUT
 *
 * --fill ROWS lowers the row count from which kernels take their many-row
 * forms (mc_cuda_set_fill): the GPU suite's small models then run them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backends/cuda/cuda.h"
#include "frontend/frontend.h"
#include "frontend/weights.h"
#include "passes/pipeline.h"

int
main(int argc, char **argv)
{
    const char *model = NULL, *weights = NULL, *out = NULL;
    int B = 1, H = 0, W = 0, seed = 0;
    McCudaOptions o;
    memset(&o, 0, sizeof o);
    o.sm = 90;
    o.emit = MC_CUDA_EMIT_EXE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--batch") && v) B = atoi(argv[++i]);
        else if (!strcmp(a, "--image-size") && v) {
            const char *x = strchr(argv[++i], 'x');
            H = atoi(argv[i]);
            W = x ? atoi(x + 1) : H;
        }
        else if (!strcmp(a, "--weights") && v) weights = argv[++i];
        else if (!strcmp(a, "--seed") && v) seed = atoi(argv[++i]);
        else if (!strcmp(a, "--sm") && v) o.sm = atoi(argv[++i]);
        else if (!strcmp(a, "--fill") && v) mc_cuda_set_fill(atoi(argv[++i]));
        else if (!strcmp(a, "--precision") && v) {
            int p = mc_cuda_precision_parse(argv[++i]);
            if (p < 0) { fprintf(stderr, "cudagen: --precision must be fp32, tf32 or bf16\n"); return 2; }
            o.precision = (McCudaPrecision)p;
        } else if (!strcmp(a, "--emit") && v) {
            i++;
            if (!strcmp(v, "cuda")) o.emit = MC_CUDA_EMIT_CU;
            else if (!strcmp(v, "exe")) o.emit = MC_CUDA_EMIT_EXE;
            else { fprintf(stderr, "cudagen: --emit must be cuda or exe\n"); return 2; }
        } else if (!strcmp(a, "--external-weights")) o.external_weights = 1;
        else if (!strcmp(a, "-v")) o.verbose = 1;
        else if (!strcmp(a, "-o") && v) out = argv[++i];
        else if (a[0] != '-' && !model) model = a;
        else { fprintf(stderr, "cudagen: bad argument '%s'\n", a); return 2; }
    }
    if (!model || !out) { fprintf(stderr, "usage: cudagen MODEL.yaml [options] -o OUT\n"); return 2; }
    McErr err = {{0}};
    Graph g;
    memset(&g, 0, sizeof g);
    int kind = mc_frontend_kind(model, &err);
    if (kind == 1) {
        ModelConfig cfg;
        if (mc_config_load(model, &cfg, &err) || mc_model_build(&cfg, B, H > 0 ? H : cfg.img_size, W > 0 ? W : cfg.img_w, &g, &err)) goto fail;
    } else if (kind == 2) {
        if (mc_graph_yaml_load(model, &g, &err)) goto fail;
    } else {
        if (kind >= 0) mc_err(&err, "%s: cudagen reads public configs and graph YAML", model);
        goto fail;
    }
    WeightStore ws;
    mc_weights_init(&ws);
    if (weights) {
        if (mc_weights_load(weights, &ws, &err) || mc_weights_check(&g, &ws, &err)) goto fail;
    } else {
        mc_weights_random(&g, &ws, (uint64_t)seed);
    }
    McTarget t = mc_cuda_target_row;
    t.desc.precision = o.precision;
    t.desc.sm = o.sm;
    KProgram kp;
    if (mc_pipeline_run(&g, &ws, &t, NULL, &kp, &err)) goto fail;
    o.out = out;
    if (mc_cuda_compile(&kp, &ws, &o, &err)) goto fail;
    mc_kprogram_free(&kp);
    mc_weights_free(&ws);
    mc_graph_free(&g);
    return 0;
fail:
    fprintf(stderr, "cudagen: %s\n", err.msg);
    return 1;
}
