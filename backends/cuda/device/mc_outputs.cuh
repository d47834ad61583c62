/* backends/cuda/device/mc_outputs.cuh -- a model with several outputs:
 * the table runtime/exe/mc_cuda_outputs.h declares (pasted before this)
 * and the run that copies every output back, at the end of the .cu of such
 * a model only (after mc_main.cuh; a one-output model's .cu has neither).
 * It follows the #defines MC_NOUTPUTS, MC_OUTPUT_NAMES, _RANKS, _SHAPES,
 * _OFFS and _COUNTS that cuda_host.c emits before pasting it (output 0 is
 * also mc_cuda_glue's MC_OUTPUT_*).  Embedded at build time (embed.cmake:
 * everything after this comment, byte for byte).
 */
static const long long mc_out_off[MC_NOUTPUTS] = MC_OUTPUT_OFFS;
static const long long mc_out_count[MC_NOUTPUTS] = MC_OUTPUT_COUNTS;

static void
mc_cuda_run_outputs(float *const *y)
{
    mc_cuda_run(y[0]); /* the graph, then output 0 (the stream synchronized) */
    for (int j = 1; j < MC_NOUTPUTS; j++)
        CK(cudaMemcpy(y[j], P(mc_out_off[j]), (size_t)mc_out_count[j] * 4, cudaMemcpyDeviceToHost));
}

extern "C" const McCudaOutputs mc_cuda_outputs = {MC_NOUTPUTS, MC_OUTPUT_NAMES, MC_OUTPUT_RANKS, MC_OUTPUT_SHAPES,
                                                  mc_cuda_run_outputs};
