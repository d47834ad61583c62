/* backends/cuda/cuda_backend.c -- the cuda backend row (backends/backend.h):
 * its target row for the pipeline (the CUDA fusion passes of cuda_fuse.c,
 * run before the memory plan) and its emit (mc_cuda_compile: OUT.cu, OUT.weights, and for
 * --emit exe the executable built with nvcc).  It runs nothing in memory:
 * `mambac run` has no cuda backend (the executable runs on the GPU). */
#include "cuda.h"
#include "../backend.h"
#include <string.h>

const McTarget mc_cuda_target_row = {"cuda", mc_cuda_kpasses, MC_CUDA_NKPASSES,
                                     {"cuda", NULL, NULL, NULL, 0, 0, MC_CUDA_FP32, 90}, mc_cuda_supports};

static int
cuda_emit(const KProgram *p, const WeightStore *ws, const EmitOpts *o, McErr *err)
{
    McCudaOptions co;
    memset(&co, 0, sizeof co);
    co.out = o->out;
    co.sm = o->sm ? o->sm : 90;
    co.verbose = o->verbose;
    co.instrument = o->instrument;
    co.io = o->io;
    co.precision = (McCudaPrecision)o->precision;
    if (o->emit && strcmp(o->emit, "cuda") && strcmp(o->emit, "exe"))
        return mc_err(err, "cuda: --emit must be cuda or exe, got '%s'", o->emit);
    co.emit = o->emit && !strcmp(o->emit, "cuda") ? MC_CUDA_EMIT_CU : MC_CUDA_EMIT_EXE;
    return mc_cuda_compile(p, ws, &co, err);
}

const Backend mc_backend_cuda = {
    .name = "cuda",
    .descr = "CUDA C for NVIDIA GPUs (mambac compile --target cuda; needs nvcc for --emit exe)",
    .target = &mc_cuda_target_row,
    .emit = cuda_emit,
};
